"""focal.losses.softmax: parity with cross_entropy, the focal ratio, stability, gradients, the Module, errors,
class-balanced weights, torch.compile."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from focal import FocalLoss, SigmoidFocalLoss, class_balanced_weights, focal_loss, sigmoid_focal_loss

from runhelpers import value_and_grad  # noqa: E402

SHAPES = [(7, 5), (3, 4, 6), (2, 3, 4, 5)]  # (N, C), (N, C, d1), (N, C, d1, d2)
GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 5.0]


def make_batch(shape, seed=0, dtype=torch.float64, ignore=False, soft=False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=dtype) * 3
    n, c, rest = shape[0], shape[1], shape[2:]
    if soft:
        target = torch.softmax(torch.randn(shape, generator=g, dtype=dtype), dim=1)
    else:
        target = torch.randint(0, c, (n, *rest), generator=g)
        if ignore:
            target[torch.rand(target.shape, generator=g) < 0.3] = -100
    return logits, target


# ---------------------------------------------------------------------------------------------- softmax parity
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("use_weight,ignore,smoothing", list(itertools.product([False, True], [False, True], [0.0, 0.2])))
def test_gamma0_equals_cross_entropy_index_targets(shape, reduction, use_weight, ignore, smoothing):
    logits, target = make_batch(shape, seed=len(shape) * 10 + len(reduction), ignore=ignore)
    weight = torch.rand(shape[1], dtype=torch.float64) + 0.1 if use_weight else None
    kw = dict(weight=weight, reduction=reduction, ignore_index=-100, label_smoothing=smoothing)
    got, got_grad = value_and_grad(lambda x, t, **k: focal_loss(x, t, gamma=0.0, **k), logits, target, **kw)
    ref, ref_grad = value_and_grad(F.cross_entropy, logits, target, **kw)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got_grad, ref_grad)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("use_weight,smoothing", list(itertools.product([False, True], [0.0, 0.3])))
def test_gamma0_equals_cross_entropy_soft_targets(shape, reduction, use_weight, smoothing):
    logits, target = make_batch(shape, seed=1, soft=True)
    weight = torch.rand(shape[1], dtype=torch.float64) + 0.1 if use_weight else None
    kw = dict(weight=weight, reduction=reduction, label_smoothing=smoothing)
    got, got_grad = value_and_grad(lambda x, t, **k: focal_loss(x, t, gamma=0, **k), logits, target, **kw)
    ref, ref_grad = value_and_grad(F.cross_entropy, logits, target, **kw)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got_grad, ref_grad)


def test_reduction_none_keeps_target_shape():
    logits, target = make_batch((2, 3, 4, 5))
    assert focal_loss(logits, target, reduction="none").shape == target.shape
    logits, soft = make_batch((2, 3, 4), soft=True)
    assert focal_loss(logits, soft, reduction="none").shape == (2, 4)


# ---------------------------------------------------------------------------------------------- the focal ratio
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_focal_over_ce_is_alpha_t_times_modulating_factor(gamma, shape):
    logits, target = make_batch(shape, seed=2)
    alpha = torch.rand(shape[1], dtype=torch.float64) + 0.5
    fl = focal_loss(logits, target, gamma=gamma, alpha=alpha, reduction="none")
    ce = F.cross_entropy(logits, target, reduction="none")
    p_t = torch.exp(-ce)
    torch.testing.assert_close(fl / ce, alpha[target] * (1 - p_t) ** gamma)
    assert bool((fl <= ce * alpha[target] + 1e-12).all())


def test_alpha_mean_divides_by_kept_elements_not_alpha_sum():
    logits, target = make_batch((6, 3), seed=3, ignore=True)
    target[0] = 1  # at least one kept element
    alpha = torch.tensor([0.2, 0.5, 3.0], dtype=torch.float64)
    kept = target != -100
    per_element = focal_loss(logits, target, gamma=1.5, alpha=alpha, reduction="none")
    torch.testing.assert_close(focal_loss(logits, target, gamma=1.5, alpha=alpha), per_element.sum() / kept.sum())


def test_weight_uses_weighted_mean_like_cross_entropy():
    logits, target = make_batch((6, 3), seed=4)
    weight = torch.tensor([0.2, 0.5, 3.0], dtype=torch.float64)
    per_element = focal_loss(logits, target, gamma=2.0, weight=weight, reduction="none")
    torch.testing.assert_close(focal_loss(logits, target, gamma=2.0, weight=weight), per_element.sum() / weight[target].sum())


def test_per_class_gamma_matches_scalar_gamma_per_class():
    logits, target = make_batch((9, 3), seed=5)
    gammas = torch.tensor([0.5, 2.0, 4.0], dtype=torch.float64)
    got = focal_loss(logits, target, gamma=gammas, reduction="none")
    for c, g in enumerate(gammas.tolist()):
        ref = focal_loss(logits, target, gamma=g, reduction="none")
        torch.testing.assert_close(got[target == c], ref[target == c])


def test_flsd53_uses_gamma5_below_p02_and_gamma3_above():
    logits, target = make_batch((64, 4), seed=6)
    p_t = torch.softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    got = focal_loss(logits, target, gamma="flsd53", reduction="none")
    g5 = focal_loss(logits, target, gamma=5.0, reduction="none")
    g3 = focal_loss(logits, target, gamma=3.0, reduction="none")
    low = p_t < 0.2
    assert low.any() and (~low).any()
    torch.testing.assert_close(got, torch.where(low, g5, g3))


def test_all_ignored_batch_returns_connected_zero():
    logits = torch.randn(4, 3, requires_grad=True)
    target = torch.full((4,), -100)
    out = focal_loss(logits, target)
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert torch.isnan(F.cross_entropy(logits, target))  # the documented difference


# ---------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("gamma", [0.5, 2.0, "flsd53", "per-class"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_gradcheck(gamma, smoothing):
    logits, target = make_batch((5, 4), seed=8)
    if gamma == "per-class":
        gamma = torch.tensor([0.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    alpha = torch.tensor([0.5, 1.0, 2.0, 0.7], dtype=torch.float64)
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda z: focal_loss(z, target, gamma=gamma, alpha=alpha, label_smoothing=smoothing, reduction="none"), (x,)
    )


def test_softmax_gradcheck_soft_targets():
    logits, soft = make_batch((4, 3, 2), seed=9, soft=True)
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, soft, gamma=0.7), (x,))


# ---------------------------------------------------------------------------------------------- stability
@pytest.mark.parametrize("scale", [100.0, 1e4])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_finite_at_extreme_logits(scale, gamma, dtype):
    # row 0: true class certain; row 1: true class hopeless; row 2: ties; row 3: certain, the others at -scale
    logits = torch.tensor([[scale, 0.0, -scale], [scale, 0.0, -scale], [scale, scale, -scale], [scale, -scale, -scale]],
                          dtype=dtype, requires_grad=True)
    target = torch.tensor([0, 2, 1, 0])
    loss = focal_loss(logits, target, gamma=gamma, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()
    assert loss[0].item() == pytest.approx(0.0, abs=1e-30) and loss[3].item() == 0.0
    assert loss[1].item() == pytest.approx(2 * scale, rel=1e-6)  # hopeless: (1-p)^γ = 1, -log p = 2·scale
    assert logits.grad[1, 2].item() == pytest.approx(-1.0, rel=1e-6)  # d/dx_t of -log p_t at p_t = 0
    assert logits.grad[0].abs().max().item() < 1e-20  # certain: no gradient left


def test_naive_formulation_really_is_nan_where_ours_is_not():
    """Guards the stability tests: the case they cover does break the textbook formula."""
    x = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)
    ce = F.cross_entropy(x, torch.tensor([0]), reduction="none")
    ((1 - torch.exp(-ce)) ** 0.5 * ce).sum().backward()
    assert torch.isnan(x.grad).any()
    y = x.detach().clone().requires_grad_()
    focal_loss(y, torch.tensor([0]), gamma=0.5).backward()
    assert torch.isfinite(y.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_matches_fp32(dtype):
    logits, target = make_batch((32, 10), seed=11, dtype=torch.float32)
    low = logits.to(dtype).requires_grad_()
    ref_in = low.detach().float().requires_grad_()
    alpha = torch.linspace(0.5, 1.5, 10)
    out = focal_loss(low, target, gamma=2.0, alpha=alpha)
    assert out.dtype == dtype
    ref = focal_loss(ref_in, target, gamma=2.0, alpha=alpha)
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-3)
    out1 = focal_loss(low, target, gamma=2.0)
    ref1 = focal_loss(ref_in, target, gamma=2.0)
    torch.testing.assert_close(out1.float(), ref1, rtol=1e-2, atol=1e-3)
    out1.backward(), ref1.backward()
    assert low.grad.dtype == dtype
    torch.testing.assert_close(low.grad.float(), ref_in.grad, rtol=2e-2, atol=1e-3)
    xs = logits.to(dtype)
    ts = (torch.rand(xs.shape) > 0.8).to(dtype)
    s = sigmoid_focal_loss(xs, ts, reduction="mean")
    assert s.dtype == dtype
    torch.testing.assert_close(s.float(), sigmoid_focal_loss(xs.float(), ts.float(), reduction="mean"), rtol=1e-2, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6), c=st.integers(2, 6), gamma=st.floats(0, 6), seed=st.integers(0, 2**16),
    scale=st.sampled_from([0.1, 1.0, 10.0, 100.0]),
)
def test_property_focal_between_zero_and_ce(n, c, gamma, seed, scale):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64) * scale
    target = torch.randint(0, c, (n,), generator=g)
    fl = focal_loss(logits, target, gamma=gamma, reduction="none")
    ce = F.cross_entropy(logits, target, reduction="none")
    assert bool((fl >= 0).all()) and bool((fl <= ce + 1e-12).all())


# ---------------------------------------------------------------------------------------------- Module
def test_module_equals_function_and_moves_buffers():
    logits, target = make_batch((8, 4), seed=12, dtype=torch.float32, ignore=True)
    kw = dict(gamma=1.5, alpha=[0.1, 0.2, 0.3, 0.4], weight=torch.tensor([1.0, 2.0, 1.0, 0.5]), ignore_index=-100,
              label_smoothing=0.1, reduction="sum")
    module = FocalLoss(**kw)
    torch.testing.assert_close(module(logits, target), focal_loss(logits, target, **kw))
    assert set(module.state_dict()) == {"alpha", "weight"}
    assert module.double().alpha.dtype == torch.float64  # buffers follow .to()/.double()
    assert "gamma=1.5" in repr(module) and "alpha=[0.1, 0.2, 0.3, 0.4]" in repr(module)
    per_class = FocalLoss(gamma=torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert "gamma" in per_class.state_dict()
    torch.testing.assert_close(per_class(logits, target),
                               focal_loss(logits, target, gamma=torch.tensor([0.0, 1.0, 2.0, 3.0])))


# ---------------------------------------------------------------------------------------------- errors
LOGITS, TARGET = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(gamma=-1.0), ValueError, "gamma"),
        (dict(gamma=float("nan")), ValueError, "gamma"),
        (dict(gamma="focal"), ValueError, "gamma"),
        (dict(gamma=torch.tensor([1.0, 2.0])), ValueError, "gamma"),
        (dict(gamma=torch.tensor([1.0, -2.0, 0.0])), ValueError, "gamma"),
        (dict(alpha=0.25), ValueError, "only rescales"),
        (dict(alpha=torch.tensor(0.25)), ValueError, "only rescales"),
        (dict(alpha=[0.1, 0.2]), ValueError, "alpha"),
        (dict(weight=torch.ones(5)), ValueError, "weight"),
        (dict(weight="balanced"), TypeError, "weight"),
        (dict(reduction="avg"), ValueError, "reduction"),
        (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
        (dict(label_smoothing=-0.1), ValueError, "label_smoothing"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        focal_loss(LOGITS, TARGET, **kwargs)
    knows_classes = isinstance(next(iter(kwargs.values())), (list, torch.Tensor)) and match != "only rescales"
    if not knows_classes:  # the Module sees no input at construction, so it checks all but per-class lengths
        with pytest.raises(error, match=match):
            FocalLoss(**kwargs)


@pytest.mark.parametrize(
    "logits,target,error,match",
    [
        (torch.randn(4), torch.tensor([0, 1, 2, 1]), ValueError, "1-d"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2]), ValueError, "shape"),
        (torch.randn(4, 3), torch.rand(4, 2), ValueError, "shape"),
        (torch.randn(4, 3), torch.tensor([True, False, True, True]), TypeError, "target"),
        (torch.randint(0, 3, (4, 3)), torch.tensor([0, 1, 2, 1]), TypeError, "floating"),
        (torch.randn(4, 3), torch.tensor([0, 1, 3, 1]), IndexError, "class index 3"),
        (torch.randn(4, 3), torch.tensor([0, -5, 2, 1]), IndexError, "class index -5"),
    ],
)
def test_bad_inputs_raise(logits, target, error, match):
    with pytest.raises(error, match=match):
        focal_loss(logits, target)


# ---------------------------------------------------------------------------------------------- class-balanced
def test_class_balanced_weights_formula_and_limits():
    counts = [5000, 2997, 1796, 50]
    w = class_balanced_weights(counts, beta=0.999)
    inv = torch.tensor([(1 - 0.999) / (1 - 0.999**n) for n in counts], dtype=torch.float64)
    torch.testing.assert_close(w, (inv / inv.sum() * 4).float())
    assert w.sum().item() == pytest.approx(4.0)
    torch.testing.assert_close(class_balanced_weights(counts, beta=0.0), torch.ones(4))
    inv_freq = 1 / torch.tensor(counts, dtype=torch.float64)
    torch.testing.assert_close(class_balanced_weights(counts, beta=1 - 1e-12), (inv_freq / inv_freq.sum() * 4).float(),
                               rtol=1e-4, atol=1e-6)
    assert bool((w[:-1] <= w[1:]).all())  # rarer classes weigh more


@pytest.mark.parametrize("counts,beta", [([10, 0, 3], 0.99), ([], 0.9), ([10, 5], 1.0), ([10, 5], -0.1)])
def test_class_balanced_weights_errors(counts, beta):
    with pytest.raises(ValueError):
        class_balanced_weights(counts, beta)


# ---------------------------------------------------------------------------------------------- torch.compile
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph(backend):
    torch._dynamo.reset()
    logits, target = make_batch((16, 5), seed=13, dtype=torch.float32, ignore=True)
    alpha = torch.rand(5) + 0.5

    def step(x, t, xs, ts):
        return focal_loss(x, t, gamma=2.0, alpha=alpha) + focal_loss(x, t, gamma="flsd53") + sigmoid_focal_loss(xs, ts, reduction="mean")

    xs, ts = torch.randn(8, 3), (torch.rand(8, 3) > 0.5).float()
    compiled = torch.compile(step, fullgraph=True, backend=backend)
    x1, x2 = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    xs1, xs2 = xs.clone().requires_grad_(), xs.clone().requires_grad_()
    got, ref = compiled(x1, target, xs1, ts), step(x2, target, xs2, ts)
    got.backward(), ref.backward()
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(xs1.grad, xs2.grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_path_does_not_synchronise():
    logits, target = make_batch((64, 10), seed=14, dtype=torch.float32, ignore=True)
    logits, target = logits.cuda().requires_grad_(), target.cuda()
    criterion = FocalLoss(gamma=2.0, alpha=torch.rand(10), weight=torch.rand(10)).cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        criterion(logits, target).backward()
        sigmoid_focal_loss(logits, (logits > 0).float(), reduction="mean")
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_docstring_math_block_present():
    for fn in (focal_loss, sigmoid_focal_loss, class_balanced_weights, FocalLoss, SigmoidFocalLoss):
        assert ".. math::" in fn.__doc__ and "Example:" in fn.__doc__
