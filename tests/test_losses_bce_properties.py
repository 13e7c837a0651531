"""sigmoid_focal_loss against BCE-with-logits, eager and fused: γ = 0 is BCE, focal ≤ BCE elementwise, and the ratio
focal / BCE is α_t (1 - p_t)^γ."""
import math

import pytest
import torch
import torch.nn.functional as F

import focal.losses.kernels as kernels
from focal import sigmoid_focal_loss

EXTREMES = [1e4, 100.0, 40.0, 20.0, 17.0, 9.0, 1.0, 1e-3, 0.0]


@pytest.fixture(params=[False, pytest.param(True, marks=pytest.mark.slow)], ids=["eager", "fused"])
def fused(request):
    kernels.set_fused(request.param)
    yield request.param
    kernels.set_fused(None)
    assert not kernels._fused_broken, "the fused kernels failed to compile and fell back to eager ops"


def logits_and_targets(dtype, soft=False, seed=0):
    """Logits at every scale (random, from probabilities near 0, near 1 and anywhere, and ±extremes), each paired
    with targets 0 and 1 (or soft ones)."""
    g = torch.Generator().manual_seed(seed)
    uniform = torch.rand(600, generator=g)
    probs = torch.cat([uniform[:200] * 0.2, 0.8 + uniform[200:400] * 0.2, uniform[400:]])
    extremes = torch.tensor(EXTREMES)
    x = torch.cat([torch.randn(400, generator=g) * 6, torch.logit(probs.clamp(1e-7, 1 - 1e-7)), extremes, -extremes])
    x = torch.cat([x, x]).to(dtype)
    if soft:
        t = torch.rand(x.shape, generator=g).to(dtype)
    else:
        t = torch.cat([torch.zeros(x.numel() // 2), torch.ones(x.numel() // 2)]).to(dtype)
    return x, t


def with_grad(fn, x, t, reduction):
    x = x.clone().requires_grad_()
    out = fn(x, t, reduction)
    (out * torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True])
def test_gamma0_is_bce_with_logits_in_value_and_gradient(fused, dtype, reduction, soft):
    x, t = logits_and_targets(dtype, soft)
    ours, ours_grad = with_grad(lambda a, b, r: sigmoid_focal_loss(a, b, -1, 0.0, r), x, t, reduction)
    ref, ref_grad = with_grad(lambda a, b, r: F.binary_cross_entropy_with_logits(a, b, reduction=r), x, t, reduction)
    if reduction == "none":  # the same expression as torch's, so the same bits
        assert torch.equal(ours, ref)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_confident_positive_keeps_full_precision(fused, dtype):
    """Logit 20, target 1: BCE = log1p(e^-20) = 2.06e-9, not 0 (a form max(x, 0) + log1p(e^-|x|) - t·x cancels)."""
    x = torch.tensor([20.0, 40.0, -20.0], dtype=dtype)
    t = torch.tensor([1.0, 1.0, 0.0], dtype=dtype)
    got = sigmoid_focal_loss(x, t, alpha=-1, gamma=0.0)
    assert got[0].item() == pytest.approx(math.log1p(math.exp(-20.0)), rel=1e-6)
    assert got[1].item() == pytest.approx(math.log1p(math.exp(-40.0)), rel=1e-6)
    # a confident negative carries BCE's own rounding, (1 - t)·x - logsigmoid(x): below half an ulp of x, absolutely
    assert torch.equal(got[2], F.binary_cross_entropy_with_logits(x[2], t[2]))
    if dtype == torch.float64:
        assert got[2].item() == pytest.approx(math.log1p(math.exp(-20.0)), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.25, 0.58, 1.0])
@pytest.mark.parametrize("soft", [False, True])
def test_focal_never_exceeds_bce_elementwise(fused, dtype, gamma, alpha, soft):
    x, t = logits_and_targets(dtype, soft, seed=1)
    focal = sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert bool((focal >= 0).all()) and bool((focal <= bce).all()), (x[focal > bce], t[focal > bce])


@pytest.mark.parametrize("gamma", [0.25, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_focal_never_exceeds_reduced_bce(fused, gamma, reduction):
    for soft in (False, True):
        x, t = logits_and_targets(torch.float32, soft, seed=2)
        focal = sigmoid_focal_loss(x, t, alpha=-1, gamma=gamma, reduction=reduction)
        assert focal.item() <= F.binary_cross_entropy_with_logits(x, t, reduction=reduction).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.58, 1.0])
@pytest.mark.parametrize("soft", [False, True])
def test_focal_over_bce_is_the_modulating_factor(fused, dtype, gamma, alpha, soft):
    """focal / BCE = α_t (1 - p_t)^γ, with 1 - p_t = t σ(-x) + (1 - t) σ(x) in float64, wherever BCE is a normal
    number; where BCE is 0 so is the focal loss."""
    x, t = logits_and_targets(dtype, soft, seed=3)
    focal = sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    xd, td = x.double(), t.double()
    expected = (td * torch.sigmoid(-xd) + (1 - td) * torch.sigmoid(xd)) ** gamma
    if alpha >= 0:
        expected = expected * (alpha * td + (1 - alpha) * (1 - td))
    assert bool((focal[bce == 0] == 0).all())
    kept = bce >= torch.finfo(dtype).tiny  # a subnormal BCE (x = 100, t = 1 in float32) has few significant bits
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close((focal / bce)[kept].double(), expected[kept], rtol=10 * tol, atol=tol)
