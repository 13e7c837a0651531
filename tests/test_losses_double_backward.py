"""Double backward of the losses: closed-form second derivatives, checked by gradgradcheck and against autograd of the
naive formulas; finite where the naive ones are not; the first-order backward untouched."""
import pytest
import torch
import torchvision

import focal.losses.kernels as kernels
from focal import focal_loss, sigmoid_focal_loss


def batch(shape, seed, ignore=False, soft=False):
    """float64 logits and index (or soft) targets for ``focal_loss``."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    if soft:
        return logits, torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), dim=1)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    if ignore:
        target[torch.rand(target.shape, generator=g) < 0.3] = -100
    return logits, target


def sigmoid_batch(shape, seed, soft=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    t = torch.rand(shape, generator=g, dtype=torch.float64)
    return logits, t if soft else (t < 0.4).to(torch.float64)


def naive_focal(x, target, gamma):
    """-(1 - p_t)^γ log p_t with plain autograd everywhere (finite while p_t < 1)."""
    logp_t = torch.log_softmax(x, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return -(1 - logp_t.exp()) ** gamma * logp_t


def hessian(fn, x):
    return torch.autograd.functional.hessian(fn, x)


def weighted_sum(out):
    """A scalar from any output, weighting each element differently (so "none" is checked entry by entry)."""
    return (out * torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)).sum()


# ------------------------------------------------------------------------------------- focal_loss, gradgradcheck
FOCAL_CASES = {
    "gamma0": dict(gamma=0.0),
    "gamma0.5": dict(gamma=0.5),
    "gamma1": dict(gamma=1.0),
    "gamma2": dict(gamma=2.0),
    "gamma3.5": dict(gamma=3.5),
    "per-class gamma": dict(gamma=torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=torch.float64)),
    "flsd53": dict(gamma="flsd53"),
    "alpha": dict(gamma=2.0, alpha=[0.25, 0.5, 1.0, 2.0]),
    "weight": dict(gamma=1.5, weight=torch.tensor([0.3, 1.0, 2.0, 0.7], dtype=torch.float64)),
    "smoothing": dict(gamma=0.5, label_smoothing=0.2, alpha=[1.0, 2.0, 0.5, 1.0]),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", list(FOCAL_CASES))
def test_focal_loss_gradgradcheck(case, reduction):
    x, t = batch((5, 4), seed=len(case), ignore=True)
    x.requires_grad_()
    kw = dict(FOCAL_CASES[case], reduction=reduction)
    assert torch.autograd.gradgradcheck(lambda z: focal_loss(z, t, **kw), (x,))


@pytest.mark.parametrize("kw", [dict(gamma=2.0), dict(gamma=0.5, label_smoothing=0.1), dict(gamma="flsd53")],
                         ids=["gamma2", "gamma0.5-smoothing", "flsd53"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_focal_loss_gradgradcheck_segmentation_and_soft_targets(kw, reduction):
    x, t = batch((2, 3, 2, 3), seed=3, ignore=True)
    assert torch.autograd.gradgradcheck(lambda z: focal_loss(z, t, reduction=reduction, **kw), (x.requires_grad_(),))
    x, q = batch((4, 3), seed=4, soft=True)
    assert torch.autograd.gradgradcheck(lambda z: focal_loss(z, q, reduction=reduction, **kw), (x.requires_grad_(),))


# ------------------------------------------------------------------------------- focal_loss, against naive autograd
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_focal_loss_hessian_equals_naive_autograd_4x5(reduction):
    x, t = batch((4, 5), seed=0)
    reduce = (lambda out: out) if reduction == "none" else torch.mean
    ours = hessian(lambda z: weighted_sum(focal_loss(z, t, gamma=2.0, reduction=reduction)), x)
    ref = hessian(lambda z: weighted_sum(reduce(naive_focal(z, t, 2.0))), x)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.5])
def test_focal_loss_hessian_equals_naive_autograd_across_gammas(gamma):
    x, t = batch((6, 4), seed=1)
    ours = hessian(lambda z: weighted_sum(focal_loss(z, t, gamma=gamma, reduction="none")), x)
    ref = hessian(lambda z: weighted_sum(naive_focal(z, t, gamma)), x)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def test_focal_term_second_derivative_formula():
    """ℓ''(l) in closed form against autograd of -(1 - e^l)^γ l, elementwise in l, for every γ form."""
    logp = -torch.logspace(-3, 1, 50, dtype=torch.float64)
    for gamma in (0.5, 1.0, 2.0, 3.5, torch.linspace(0.0, 5.0, 50, dtype=torch.float64)):
        l = logp.clone().requires_grad_()
        (d1,) = torch.autograd.grad((-(1 - l.exp()) ** gamma * l).sum(), l, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), l)
        slope, curve = kernels.focal_term_curvature_kernel(logp, gamma)
        torch.testing.assert_close(slope, d1.detach())
        torch.testing.assert_close(curve, d2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_focal_term_second_derivative_finite_as_p_tends_to_1(dtype):
    """ℓ'' is 0 where 1 - p rounds to 0 and finite where it is subnormal, even for γ → 0 (q^(γ-1) ~ 1/q)."""
    info = torch.finfo(dtype)
    logp = torch.tensor([0.0, -info.tiny * info.eps, -info.tiny, -1e-30, -1e-7, -0.5], dtype=dtype)
    for gamma in (0.01, 0.5, 0.99, torch.full((6,), 0.01, dtype=dtype)):
        slope, curve = kernels.focal_term_curvature_kernel(logp, gamma)
        assert torch.isfinite(slope).all() and torch.isfinite(curve).all() and (curve >= 0).all()
        assert curve[0].item() == 0.0


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("kind", ["none", "mean", "smoothing", "soft"])
def test_focal_loss_hessian_vector_product_finite_at_large_logits(gamma, kind):
    """0 < γ < 1: ℓ'' diverges as p_t → 1, the Hessian in the logits does not. At a logit gap of 60 float64 rounds
    log p_t to 0 while the other classes keep p ~ e^-60."""
    x, t = batch((6, 5), seed=5)
    x = x * 50
    x[torch.arange(6), t] = x.max(dim=1).values + 60.0
    x[0, t[0]] = x[0].max() + 30.0  # one row short of the rounding, 1 - p_t ~ 1e-13
    x.requires_grad_()
    kw = dict(gamma=gamma, reduction="none" if kind == "none" else "mean")
    if kind == "smoothing":
        kw["label_smoothing"] = 0.1
    target = torch.nn.functional.one_hot(t, 5).double() if kind == "soft" else t
    (g,) = torch.autograd.grad(weighted_sum(focal_loss(x, target, **kw)), x, create_graph=True)
    v = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    (hv,) = torch.autograd.grad(g, x, v)
    assert torch.isfinite(g).all() and torch.isfinite(hv).all()
    assert hv.abs().max().item() < 10 * v.abs().max().item()  # the Hessian of a focal loss in the logits is O(1)


# --------------------------------------------------------------------------------------------- sigmoid_focal_loss
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True])
def test_sigmoid_gradgradcheck(gamma, alpha, reduction, soft):
    x, t = sigmoid_batch((4, 3), seed=7, soft=soft)
    x.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda z: sigmoid_focal_loss(z, t, alpha, gamma, reduction), (x,))


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_sigmoid_gradgradcheck_weight_and_normalizer(reduction):
    x, t = sigmoid_batch((4, 3), seed=8, soft=True)
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    for kw in (dict(weight=w), dict(normalizer=2.5), dict(normalizer=torch.tensor(3.0)), dict(weight=w, normalizer=2)):
        assert torch.autograd.gradgradcheck(
            lambda z: sigmoid_focal_loss(z, t, 0.25, 2.0, reduction, **kw), (x.detach().requires_grad_(),))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.3])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("soft", [False, True])
def test_sigmoid_hessian_equals_torchvision_autograd(gamma, alpha, soft):
    x, t = sigmoid_batch((4, 5), seed=9, soft=soft)
    ours = hessian(lambda z: weighted_sum(sigmoid_focal_loss(z, t, alpha, gamma)), x)
    ref = hessian(lambda z: weighted_sum(torchvision.ops.sigmoid_focal_loss(z, t, alpha, gamma)), x)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 2.0])
def test_sigmoid_second_derivative_finite_at_extreme_logits(gamma):
    x = torch.tensor([1e4, -1e4, 1e4, -1e4, 40.0, -40.0], requires_grad=True)
    t = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    (g,) = torch.autograd.grad(sigmoid_focal_loss(x, t, -1, gamma).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(h).all() and (h >= 0).all()  # convex in each logit where the logit is extreme


# ------------------------------------------------------------------------------------- fused, order, first order
@pytest.mark.slow  # compiles the curvature kernels
def test_fused_double_backward():
    kernels.set_fused(True)
    try:
        x, t = sigmoid_batch((6, 4), seed=10, soft=True)
        x.requires_grad_()
        assert torch.autograd.gradgradcheck(lambda z: sigmoid_focal_loss(z, t, 0.25, 2.0, "mean"), (x,))
        x, q = batch((5, 4), seed=11, soft=True)
        assert torch.autograd.gradgradcheck(lambda z: focal_loss(z, q, gamma=0.5), (x.requires_grad_(),))
    finally:
        kernels.set_fused(None)
    assert not kernels._fused_broken


def test_third_derivative_raises():
    x, t = sigmoid_batch((3, 2), seed=12)
    x.requires_grad_()
    (g,) = torch.autograd.grad(sigmoid_focal_loss(x, t).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="third derivatives"):
        torch.autograd.grad(h.sum(), x)
    logits, target = batch((4, 3), seed=12)
    logits.requires_grad_()
    (g,) = torch.autograd.grad(focal_loss(logits, target, gamma=0.5, reduction="none").sum(), logits, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), logits, create_graph=True)  # log_softmax's part alone would be differentiable
    with pytest.raises(RuntimeError, match="third derivatives"):
        torch.autograd.grad(h.sum(), logits)


def test_hessian_vector_product_by_the_double_backward_trick():
    """torch.autograd.functional.hvp differentiates a second backward with respect to its incoming gradient."""
    x, t = sigmoid_batch((4, 3), seed=15, soft=True)
    v = torch.rand(4, 3, dtype=torch.float64)
    _, hv = torch.autograd.functional.hvp(lambda z: sigmoid_focal_loss(z, t, 0.25, 2.0, "sum"), x, v)
    _, ref = torch.autograd.functional.hvp(lambda z: torchvision.ops.sigmoid_focal_loss(z, t, 0.25, 2.0, "sum"), x, v)
    torch.testing.assert_close(hv, ref)


def test_first_order_backward_multiplies_the_saved_derivative(monkeypatch):
    """Without create_graph no second Function is built; with it, one is (so the patch can catch it)."""

    def refuse(*args):
        raise AssertionError("the differentiable slope was built")

    monkeypatch.setattr(kernels._Slope, "apply", staticmethod(refuse))
    x, t = sigmoid_batch((5, 3), seed=13, soft=True)
    v = torch.rand(5, 3, dtype=torch.float64)
    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(sigmoid_focal_loss(xg, t, 0.25, 2.0), xg, v)
    _, slope = kernels._sigmoid_focal_kernel(x, t, 0.25, 2.0)
    assert torch.equal(grad, v * slope)  # bit for bit: one multiplication
    logits, target = batch((5, 4), seed=14)
    focal_loss(logits.requires_grad_(), target, gamma=0.5, reduction="none", label_smoothing=0.1).sum().backward()
    with pytest.raises(AssertionError, match="slope was built"):
        torch.autograd.grad(sigmoid_focal_loss(xg, t).sum(), xg, create_graph=True)
