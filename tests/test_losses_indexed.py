"""The reduced index-target path of focal_loss (focal.losses.indexed): cross-entropy's own kernels plus one pass, and
the one-pass fused backward that large contiguous logits take."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import focal.losses
from focal import focal_loss

GAMMAS = [0.0, 0.5, 2.0, "flsd53", "per-class"]


def batch(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3
    t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    t[torch.rand(t.shape, generator=g) < 0.2] = -100
    return x, t


def gamma_value(gamma, classes):
    return torch.linspace(0.0, 3.0, classes) if gamma == "per-class" else gamma


class BigOps(TorchDispatchMode):
    """Records the ATen ops that read or write a tensor of at least ``size`` elements."""

    def __init__(self, size):
        super().__init__()
        self.size, self.ops = size, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(a, torch.Tensor)]
        if any(t.numel() >= self.size for t in tensors):
            self.ops.add(func.overloadpacket.__name__)
        return out


def big_ops(loss_fn, x, t):
    x = x.clone().requires_grad_()
    with BigOps(x.numel()) as mode:
        loss_fn(x, t).backward()
    return mode.ops


@pytest.mark.parametrize("shape", [(64, 10), (2, 5, 6, 7)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_only_cross_entropys_ops_touch_the_logits(shape, reduction):
    """Eager (small or unfused) inputs: every op on a logits-sized tensor is one cross-entropy runs too; the focal
    part only ever touches target-sized tensors."""
    x, t = batch(shape)
    alpha, weight = torch.rand(shape[1]) + 0.5, torch.rand(shape[1]) + 0.5
    ce_ops = big_ops(lambda x, t: F.cross_entropy(x, t, weight=weight, reduction=reduction), x, t)
    for gamma in GAMMAS:
        focal_ops = big_ops(lambda x, t: focal_loss(x, t, gamma=gamma_value(gamma, shape[1]), alpha=alpha,
                                                    weight=weight, reduction=reduction), x, t)
        assert focal_ops <= ce_ops, (gamma, focal_ops - ce_ops)


def test_the_check_catches_a_path_with_extra_logit_passes():
    x, t = batch((64, 10))
    ce_ops = big_ops(lambda x, t: F.cross_entropy(x, t), x, t)
    assert big_ops(lambda x, t: focal_loss(x, t, reduction="none").mean(), x, t) - ce_ops  # gathers from log-probs


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(300, 7), (2, 7, 9, 11)])
def test_fused_equals_eager_and_the_unreduced_loss(gamma, reduction, shape):
    x, t = batch(shape, seed=1)
    alpha, weight = torch.rand(shape[1]) + 0.5, torch.rand(shape[1]) + 0.5
    g = gamma_value(gamma, shape[1])
    results = {}
    for fused in (False, True):
        focal.losses.set_fused(fused)
        try:
            xi = x.clone().requires_grad_()
            loss = focal_loss(xi, t, gamma=g, alpha=alpha, weight=weight, reduction=reduction)
            loss.backward()
            results[fused] = (loss.detach(), xi.grad)
        finally:
            focal.losses.set_fused(None)
    xr = x.clone().requires_grad_()
    per_element = focal_loss(xr, t, gamma=g, alpha=alpha, weight=weight, reduction="none")
    kept = t != -100
    denominator = weight[t.masked_fill(~kept, 0)].masked_fill(~kept, 0).sum()
    ref = per_element.sum() if reduction == "sum" else per_element.sum() / denominator
    ref.backward()
    for loss, grad in results.values():
        torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, xr.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fused", [None, True], ids=["cross-entropy's kernels", "one-pass backward"])
@pytest.mark.parametrize("gamma", [0.5, 2.0, "flsd53", "per-class"])
def test_second_derivatives(gamma, fused):
    """Small (N, C) logits run on cross-entropy's kernels; fused, they take the one-pass backward, whose
    create_graph=True path rebuilds the loss from differentiable ops."""
    x, t = batch((5, 4), seed=2, dtype=torch.float64)
    alpha = torch.rand(4, dtype=torch.float64) + 0.5
    g = gamma_value(gamma, 4)
    g = g.double() if isinstance(g, torch.Tensor) else g
    focal.losses.set_fused(fused)
    try:
        assert torch.autograd.gradgradcheck(lambda x: focal_loss(x, t, gamma=g, alpha=alpha), (x.requires_grad_(),))
    finally:
        focal.losses.set_fused(None)


def test_first_order_backward_does_not_build_the_second_derivative(monkeypatch):
    from focal.losses import indexed

    calls = []
    monkeypatch.setattr(indexed._IndexedSlope, "forward", staticmethod(lambda *a: calls.append(1)))
    x, t = batch((8, 3))
    focal_loss(x.requires_grad_(), t).backward()
    assert calls == []


def test_out_of_range_target_is_named():
    with pytest.raises(IndexError, match="class index 7"):
        focal_loss(torch.randn(3, 4), torch.tensor([0, 7, 1]))


# --------------------------------------------------------------------- (N, C) logits: the one-pass fused backward


@pytest.fixture
def fused():
    focal.losses.set_fused(True)
    yield
    focal.losses.set_fused(None)


def test_fused_contiguous_logits_take_the_one_pass_backward_and_others_keep_cross_entropys(fused):
    x, t = batch((64, 10))
    assert type(focal_loss(x.requires_grad_(), t).grad_fn).__name__ == "DivBackward0"
    assert "LogitsFocal" in type(focal_loss(x, t, reduction="sum").grad_fn).__name__
    x, t = batch((2, 5, 6, 7))  # maps, classes strided: the same one pass
    assert "LogitsFocal" in type(focal_loss(x.requires_grad_(), t, reduction="sum").grad_fn).__name__
    x = x.detach().to(memory_format=torch.channels_last).requires_grad_()  # not contiguous: cross-entropy's kernels
    assert "IndexedFocal" in type(focal_loss(x, t, reduction="sum").grad_fn).__name__


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(300, 7), (3, 7, 5, 9), (2, 7, 40), (2, 7, 3, 4, 5)])
def test_the_one_pass_backward_equals_cross_entropys_path(fused, gamma, reduction, shape):
    x, t = batch(shape, seed=3, dtype=torch.float64)
    alpha, weight = torch.rand(7, dtype=torch.float64) + 0.5, torch.rand(7, dtype=torch.float64) + 0.5
    g = gamma_value(gamma, 7)
    kw = dict(gamma=g.double() if isinstance(g, torch.Tensor) else g, alpha=alpha, weight=weight, reduction=reduction)
    xf = x.clone().requires_grad_()
    loss = focal_loss(xf, t, **kw)
    node = loss.grad_fn if reduction == "sum" else loss.grad_fn.next_functions[0][0]  # the mean: sum / D
    assert "LogitsFocal" in type(node).__name__
    loss.backward(torch.tensor(0.7, dtype=torch.float64))  # an incoming gradient other than 1
    focal.losses.set_fused(False)  # cross-entropy's kernels
    xe = x.clone().requires_grad_()
    ref = focal_loss(xe, t, **kw)
    ref.backward(torch.tensor(0.7, dtype=torch.float64))
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(xf.grad, xe.grad)


def _both_paths(x, t, **kw):
    """(loss, grad) of the fused one-pass path and of cross-entropy's kernels (eager), for the same inputs."""
    out = []
    for mode in (True, False):
        focal.losses.set_fused(mode)
        xi = x.clone().requires_grad_()
        loss = focal_loss(xi, t, **kw)
        loss.backward()
        out.append((loss, xi.grad))
    focal.losses.set_fused(True)
    return out


@pytest.mark.parametrize("case", ["ignore_index inside the classes", "non-contiguous target", "empty batch",
                                  "empty map", "one class", "one class map"])
def test_the_one_pass_backward_at_the_edges(fused, case):
    shape = {"empty batch": (0, 5, 3, 4), "empty map": (2, 5, 0, 3), "one class": (40, 1),
             "one class map": (2, 1, 3, 4)}.get(case, (3, 5, 4, 6))
    x, t = batch(shape, seed=4, dtype=torch.float64)
    t = t.clamp_min(0)
    kw = dict(gamma=2.0, alpha=torch.rand(shape[1], dtype=torch.float64) + 0.5)
    if case == "ignore_index inside the classes":
        kw["ignore_index"] = 2
    if case == "non-contiguous target":
        t = t.transpose(1, 2).contiguous().transpose(1, 2)
        assert not t.is_contiguous()
    (loss, grad), (ref, ref_grad) = _both_paths(x, t, **kw)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("class_args", ["alpha", "weight", "per-class gamma", "none"])
def test_the_one_pass_backward_of_a_map_is_second_differentiable(fused, class_args):
    x, t = batch((2, 4, 3, 5), seed=5, dtype=torch.float64)
    x.requires_grad_()
    vector = torch.rand(4, dtype=torch.float64) + 0.5
    kw = {"alpha": dict(alpha=vector), "weight": dict(weight=vector), "none": {},
          "per-class gamma": dict(gamma=torch.tensor([0.5, 1.0, 2.0, 0.0], dtype=torch.float64))}[class_args]
    kw = dict(dict(gamma=0.5), **kw)
    assert "LogitsFocal" in type(focal_loss(x, t, reduction="sum", **kw).grad_fn).__name__
    assert torch.autograd.gradgradcheck(lambda x: focal_loss(x, t, reduction="sum", **kw), (x,))


@pytest.mark.parametrize("shape", [(64, 10), (2, 10, 8, 8)])
@pytest.mark.parametrize("bad", [10, -3])
@pytest.mark.parametrize("class_args", ["none", "alpha, weight", "per-class gamma"])
def test_the_one_pass_backward_names_a_bad_target_and_survives_it(fused, shape, bad, class_args):
    """A bad index must never be used, of the logits or of a per-class vector: on the CPU a compiled load out of
    bounds aborts the whole process (and this test run with it)."""
    x, t = batch(shape)
    kw = {"none": {}, "alpha, weight": dict(alpha=torch.rand(10) + 0.5, weight=torch.rand(10) + 0.5),
          "per-class gamma": dict(gamma=torch.linspace(0.0, 3.0, 10))}[class_args]
    t.view(-1)[5] = bad
    with pytest.raises(IndexError, match=f"class index {bad}, expected values in \\[0, 9\\]") as err:
        focal_loss(x.requires_grad_(), t, **kw)
    assert err.value.__context__ is None  # named once, not re-checked while handling its own error
    t.view(-1)[5] = 3  # the process goes on, and the same compiled pass serves the mended target
    focal_loss(x, t, **kw).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(300, 7), (2, 7, 6, 5)])
def test_the_one_pass_path_keeps_the_log_softmax_not_the_logits(fused, shape):
    """In a network the logits are an intermediate tensor: like cross-entropy, the loss must not keep it alive until
    backward (for a segmentation map, one more tensor of the logits' size)."""
    x, t = batch(shape)
    scale = torch.ones((), requires_grad=True)
    logits = x * scale  # not a leaf, as a network's output
    loss = focal_loss(logits, t, reduction="sum")
    assert "LogitsFocal" in type(loss.grad_fn).__name__
    kept = {s.untyped_storage().data_ptr() for s in loss.grad_fn.saved_tensors if s is not None}
    assert logits.untyped_storage().data_ptr() not in kept
    assert torch.log_softmax(logits, 1).numel() in {s.numel() for s in loss.grad_fn.saved_tensors if s is not None}
    loss.backward()
    grad_x, = torch.autograd.grad(focal_loss(x.requires_grad_(), t, reduction="sum"), x)
    torch.testing.assert_close(scale.grad, (x * grad_x).sum())  # the chain rule through the logits' producer


@pytest.mark.parametrize("shape", [(300, 7), (2, 7, 6, 5)])
def test_a_gradient_penalty_through_the_one_pass_path(fused, shape):
    """loss + |∇loss|² backpropagated at once: the first-order gradient and the second-order one meet in the same
    backward call (the incoming gradients of the loss and of the log-softmax both arrive)."""
    x, t = batch(shape, seed=6, dtype=torch.float64)
    kw = dict(gamma=0.5, alpha=torch.rand(7, dtype=torch.float64) + 0.5)
    grads = []
    for mode in (True, False):
        focal.losses.set_fused(mode)
        xi = x.clone().requires_grad_()
        loss = focal_loss(xi, t, **kw)
        g, = torch.autograd.grad(loss, xi, create_graph=True)
        (loss + (g ** 2).sum()).backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1])
