"""focal.losses.linear: parity with focal_loss on materialised logits (values and the gradients of input, weight and
bias), no N×C tensor ever, gradient work only where wanted, half precision, errors, the Module."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from focal import LinearFocalLoss, focal_loss, linear_focal_loss
from focal.losses.linear import CHUNK_ELEMENTS, chunk_rows

N, H, C = 13, 5, 7
GAMMAS = {"0": 0.0, "0.5": 0.5, "2": 2.0, "per-class": "per-class", "flsd53": "flsd53"}


def make_problem(seed=0, dtype=torch.float32, bias=True, ignore=None, n=N, h=H, c=C, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g, dtype=dtype)
    w = torch.randn(c, h, generator=g, dtype=dtype) * scale
    b = torch.randn(c, generator=g, dtype=dtype) if bias else None
    t = torch.randint(0, c, (n,), generator=g)
    if ignore == "some":
        t[::3] = -100
    elif ignore == "all":
        t[:] = -100
    return x, w, b, t


def options(gamma_name, c=C, alpha=True, weight=True, seed=1):
    g = torch.Generator().manual_seed(seed)
    gamma = GAMMAS[gamma_name]
    if gamma == "per-class":
        gamma = torch.rand(c, generator=g) * 3
    return dict(gamma=gamma, alpha=torch.rand(c, generator=g) + 0.5 if alpha else None,
                weight=torch.rand(c, generator=g) + 0.5 if weight else None)


def value_and_grads(fn, x, w, b):
    """The loss and the gradients of x, w (and b) under a non-uniform upstream gradient."""
    leaves = [v.detach().clone().requires_grad_() for v in (x, w, b) if v is not None]
    out = fn(*leaves) if b is not None else fn(*leaves, None)
    upstream = (1.25 + torch.arange(out.numel()) % 4 / 4).to(out.dtype).view_as(out)  # exact in every dtype, not 1
    grads = torch.autograd.grad((out * upstream).sum(), leaves)
    return out.detach(), grads


def assert_matches_materialised(x, w, b, t, tol=None, **kw):
    chunk_size = kw.pop("chunk_size", None)
    got = value_and_grads(lambda x, w, b: linear_focal_loss(x, w, t, linear_bias=b, chunk_size=chunk_size, **kw), x, w, b)
    ref = value_and_grads(lambda x, w, b: focal_loss(F.linear(x, w, b), t, **kw), x, w, b)
    tol = tol or {}
    torch.testing.assert_close(got[0], ref[0], **tol)
    for mine, theirs in zip(got[1], ref[1]):
        torch.testing.assert_close(mine, theirs, **tol)


# ---------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("bias,chunk_size", [(False, 1), (True, 4), (False, N), (True, 100)])  # 13 = 3·4 + 1
def test_equals_focal_loss_on_materialised_logits(gamma, reduction, bias, chunk_size):
    x, w, b, t = make_problem(seed=len(reduction), bias=bias, ignore="some")
    assert_matches_materialised(x, w, b, t, reduction=reduction, chunk_size=chunk_size, **options(gamma))


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha,weight,ignore", list(itertools.product([False, True], [False, True], [None, "some"])))
def test_equals_focal_loss_for_each_option(gamma, alpha, weight, ignore):
    x, w, b, t = make_problem(seed=3, ignore=ignore)
    for reduction in ("none", "mean", "sum"):
        assert_matches_materialised(x, w, b, t, reduction=reduction, chunk_size=5, ignore_index=-100,
                                    **options(gamma, alpha=alpha, weight=weight))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weight", [False, True])
def test_all_rows_ignored(reduction, weight):
    x, w, b, t = make_problem(seed=4, ignore="all")
    assert_matches_materialised(x, w, b, t, reduction=reduction, chunk_size=4, **options("2", weight=weight))
    loss, grads = value_and_grads(lambda x, w, b: linear_focal_loss(x, w, t, linear_bias=b, reduction=reduction), x, w, b)
    assert bool((loss == 0).all()) and all(bool((g == 0).all()) for g in grads)


def test_custom_ignore_index_and_float64():
    x, w, b, t = make_problem(seed=5, dtype=torch.float64)
    t[1::4] = 3  # class 3 is ignored
    assert_matches_materialised(x, w, b, t, ignore_index=3, chunk_size=3, tol=dict(rtol=1e-12, atol=1e-12),
                                **options("0.5"))


def test_confident_and_hopeless_logits_stay_finite_and_match():
    x, w, b, t = make_problem(seed=6, dtype=torch.float64, scale=300.0)  # logits of several hundreds
    for gamma in (0.0, 0.5, 2.0):
        assert_matches_materialised(x, w, b, t, gamma=gamma, chunk_size=4)
        loss, grads = value_and_grads(lambda x, w, b, g=gamma: linear_focal_loss(x, w, t, linear_bias=b, gamma=g), x, w, b)
        assert bool(loss.isfinite()) and all(bool(g.isfinite().all()) for g in grads)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_gradcheck_float64(reduction):
    x, w, b, t = make_problem(seed=7, dtype=torch.float64, n=6, h=3, c=4)
    t[2] = -100
    inputs = tuple(v.requires_grad_() for v in (x, w, b))
    fn = lambda x, w, b: linear_focal_loss(x, w, t, linear_bias=b, gamma=0.5, alpha=[1.0, 2.0, 0.5, 1.0],
                                           reduction=reduction, chunk_size=4)
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_half_precision_is_computed_in_float32(dtype, reduction):
    x, w, b, t = make_problem(seed=8, ignore="some")
    x, w, b = (v.to(dtype) for v in (x, w, b))
    got = value_and_grads(lambda x, w, b: linear_focal_loss(x, w, t, linear_bias=b, reduction=reduction, chunk_size=4),
                          x, w, b)
    assert got[0].dtype == dtype and [g.dtype for g in got[1]] == [dtype] * 3
    ref = value_and_grads(lambda x, w, b: focal_loss(F.linear(x, w, b), t, reduction=reduction),
                          *(v.float() for v in (x, w, b)))  # the same rounded inputs, float32 throughout
    torch.testing.assert_close(got[0], ref[0].to(dtype))  # within the dtype's rounding (and the upstream's)
    for mine, theirs in zip(got[1], ref[1]):
        torch.testing.assert_close(mine, theirs.to(dtype))


def test_mixed_dtypes_bfloat16_input_float32_weight():
    x, w, b, t = make_problem(seed=9)
    loss, grads = value_and_grads(lambda x, w, b: linear_focal_loss(x.bfloat16(), w, t, linear_bias=b), x, w, b)
    ref, ref_grads = value_and_grads(lambda x, w, b: focal_loss(F.linear(x.bfloat16().float(), w, b), t), x, w, b)
    torch.testing.assert_close(loss, ref.bfloat16())
    torch.testing.assert_close(grads[1:], ref_grads[1:])


# ---------------------------------------------------------------------------------------------- memory and work
class RecordOps(TorchDispatchMode):
    """Records every op's name and the largest tensor it returns."""

    def __init__(self):
        super().__init__()
        self.ops, self.largest = [], 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append(func.overloadpacket.__name__)
        sizes = [o.numel() for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        self.largest = max([self.largest] + sizes)
        return out


def record(fn, x, w, b, t, no_grad=False, **kw):
    with RecordOps() as mode, torch.set_grad_enabled(not no_grad):
        out = fn(x, w, t, **kw) if b is None else fn(x, w, t, linear_bias=b, **kw)
        if out.requires_grad:
            out.sum().backward()
    return mode


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_no_n_by_c_tensor_ever_exists(reduction):
    n, h, c = 64, 8, 50  # N·C = 3200, while the chunk buffer is 8·50 and the weight 50·8
    x, w, b, t = make_problem(n=n, h=h, c=c, ignore="some")
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    kw = dict(reduction=reduction, **options("per-class", c=c))
    chunked = record(linear_focal_loss, x, w, b, t, chunk_size=8, **kw)
    assert 0 < chunked.largest < n * c
    assert x.grad is not None and w.grad is not None and b.grad is not None
    materialise = lambda x, w, t, linear_bias, **k: focal_loss(F.linear(x, w, linear_bias), t, **k)
    materialised = record(materialise, x, w, b, t, **kw)
    assert materialised.largest >= n * c  # the check can see the tensor it forbids


def test_default_chunk_is_about_the_input_size_but_not_thin():
    for n, h, c in [(8192, 256, 32768), (8192, 4096, 131072), (2048, 256, 262144), (100, 16, 10), (7, 3, 1 << 23),
                    (512, 64, 4096)]:
        rows = chunk_rows(None, n, h, c)
        assert 1 <= rows <= -(-n // 2)  # at least two chunks: the N×C logits never exist
        assert rows == -(-n // 2) or rows * c <= max(n * h, CHUNK_ELEMENTS)  # a buffer of the input's size or 2^25
        assert rows >= min(max(n * h, CHUNK_ELEMENTS) // c, -(-n // 2)) and rows >= 1  # not thin
    assert chunk_rows(None, 8192, 256, 32768) == 1024


def test_gradient_work_only_for_tensors_that_need_it():
    x, w, _, t = make_problem(n=12, c=6, bias=False)
    chunks = 3
    no_grad = record(linear_focal_loss, x.requires_grad_(), w.requires_grad_(), None, t, no_grad=True, chunk_size=4)
    assert no_grad.ops.count("mm") == chunks and "addmm_" not in no_grad.ops  # logits only
    only_x = record(linear_focal_loss, x, w.detach(), None, t, chunk_size=4)
    assert only_x.ops.count("mm") == 2 * chunks and "addmm_" not in only_x.ops  # logits and the input's gradient
    only_w = record(linear_focal_loss, x.detach(), w, None, t, chunk_size=4)
    assert only_w.ops.count("mm") == chunks and only_w.ops.count("addmm_") == chunks
    only_x_per_row = record(linear_focal_loss, x, w.detach(), None, t, chunk_size=4, reduction="none")
    assert only_x_per_row.ops.count("mm") == 3 * chunks and "addmm_" not in only_x_per_row.ops  # logits twice
    for reduction in ("none", "mean"):
        frozen = record(linear_focal_loss, x.detach(), w.detach(), None, t, chunk_size=4, reduction=reduction)
        assert frozen.ops.count("mm") == chunks and "addmm_" not in frozen.ops


# ---------------------------------------------------------------------------------------------- errors
def test_label_smoothing_and_soft_targets_point_to_focal_loss():
    x, w, _, t = make_problem()
    with pytest.raises(ValueError, match="full distribution.*focal_loss"):
        linear_focal_loss(x, w, t, label_smoothing=0.1)
    with pytest.raises(TypeError, match="full distribution.*focal_loss"):
        linear_focal_loss(x, w, torch.softmax(torch.randn(N, C), 1))
    with pytest.raises(ValueError, match="full distribution"):
        LinearFocalLoss(H, C, label_smoothing=0.1)
    linear_focal_loss(x, w, t, label_smoothing=0.0)  # accepted, as in the signature it mirrors


@pytest.mark.parametrize("change,error,match", [
    (dict(x=torch.randn(N)), ValueError, "input must be hidden states of shape \\(N, H\\)"),
    (dict(x=torch.randn(2, N, H)), ValueError, "input must be hidden states"),
    (dict(x=torch.ones(N, H, dtype=torch.long)), TypeError, "input must be floating point"),
    (dict(w=torch.randn(C, H + 1)), ValueError, "linear_weight must have shape \\(C, H\\) with H = 5"),
    (dict(w=torch.randn(C)), ValueError, "linear_weight must have shape"),
    (dict(b=torch.randn(C + 1)), ValueError, "linear_bias must have shape \\(C,\\) = \\(7,\\)"),
    (dict(b=[0.0] * C), TypeError, "linear_bias must be a tensor"),
    (dict(t=torch.zeros(N + 1, dtype=torch.long)), ValueError, "target must have shape \\(N,\\) = \\(13,\\)"),
    (dict(t=torch.zeros(N, dtype=torch.bool)), TypeError, "target must hold integer class indices"),
    (dict(t=torch.full((N,), C)), IndexError, "class index 7, expected values in \\[0, 6\\]"),
    (dict(t=torch.full((N,), -1)), IndexError, "class index -1"),
    (dict(chunk_size=0), ValueError, "chunk_size must be None or a positive int"),
    (dict(chunk_size=2.5), ValueError, "chunk_size"),
    (dict(chunk_size=True), ValueError, "chunk_size"),
    (dict(alpha=0.25), ValueError, "alpha must be None or one factor per class"),
    (dict(alpha=[1.0] * (C - 1)), ValueError, "alpha must hold one value per class \\(7\\)"),
    (dict(weight=[1.0] * (C + 1)), ValueError, "weight must hold one value per class"),
    (dict(gamma=-1.0), ValueError, "gamma must be a finite float >= 0"),
    (dict(gamma=torch.ones(C + 1)), ValueError, "gamma as a tensor must hold one value per class"),
    (dict(reduction="avg"), ValueError, "reduction must be one of"),
])
def test_bad_arguments_raise_errors_naming_them(change, error, match):
    x, w, b, t = make_problem()
    args = dict(x=x, w=w, b=b, t=t)
    kw = {k: v for k, v in change.items() if k not in args}
    args.update({k: v for k, v in change.items() if k in args})
    with pytest.raises(error, match=match):
        linear_focal_loss(args["x"], args["w"], args["t"], linear_bias=args["b"], **kw)


# ---------------------------------------------------------------------------------------------- the Module
def test_module_equals_function_and_trains_its_linear_layer():
    x, _, _, t = make_problem(ignore="some")
    gamma = torch.rand(C) * 2
    criterion = LinearFocalLoss(H, C, bias=True, gamma=gamma, alpha=torch.rand(C) + 0.5, weight=[1.0] * C,
                                reduction="sum", chunk_size=3)
    loss = criterion(x, t)
    expected = focal_loss(criterion.linear(x), t, gamma=gamma, alpha=criterion.alpha, weight=criterion.weight,
                          reduction="sum")
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert criterion.linear.weight.grad.abs().sum() > 0 and criterion.linear.bias.grad.abs().sum() > 0
    assert set(criterion.state_dict()) == {"alpha", "weight", "gamma", "linear.weight", "linear.bias"}


def test_module_moves_its_buffers_and_makes_its_layer_as_asked():
    criterion = LinearFocalLoss(H, C, gamma=torch.ones(C), alpha=[1.0] * C, dtype=torch.float64)
    assert criterion.linear.weight.dtype == torch.float64 and criterion.linear.bias is None
    assert criterion.alpha.dtype == torch.float32
    criterion.to(torch.float64)
    assert criterion.alpha.dtype == torch.float64 and criterion.gamma.dtype == torch.float64
    x, _, _, t = make_problem(dtype=torch.float64)
    assert criterion(x, t).dtype == torch.float64


def test_module_repr_and_argument_checks():
    criterion = LinearFocalLoss(4, 3, gamma="flsd53", weight=[1.0, 2.0, 3.0], ignore_index=0, chunk_size=256)
    assert repr(criterion) == (
        "LinearFocalLoss(\n  gamma='flsd53', weight=[1.0, 2.0, 3.0], reduction='mean', ignore_index=0, chunk_size=256\n"
        "  (linear): Linear(in_features=4, out_features=3, bias=False)\n)"
    )
    with pytest.raises(ValueError, match="chunk_size"):
        LinearFocalLoss(4, 3, chunk_size=-2)
    with pytest.raises(ValueError, match="alpha must hold one value per class \\(3\\)"):
        LinearFocalLoss(4, 3, alpha=[1.0, 2.0])
    with pytest.raises(ValueError, match="gamma as a tensor"):
        LinearFocalLoss(4, 3, gamma=torch.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        LinearFocalLoss(4, 3, reduction="batchmean")
