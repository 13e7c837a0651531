"""focal.losses.sigmoid: parity with torchvision, gradients, stability, the Module, errors."""

import pytest
import torch
import torchvision

from focal import SigmoidFocalLoss, sigmoid_focal_loss

from runhelpers import value_and_grad  # noqa: E402

SHAPES = [(7, 5), (3, 4, 6), (2, 3, 4, 5)]  # (N, C), (N, C, d1), (N, C, d1, d2)
GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 5.0]


@pytest.mark.parametrize("alpha", [0.25, 0.6, -1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.3])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True])
def test_sigmoid_matches_torchvision(alpha, gamma, reduction, soft):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 5, 3, generator=g, dtype=torch.float64) * 4
    t = torch.rand(x.shape, generator=g, dtype=torch.float64)
    t = t if soft else (t < 0.3).to(x.dtype)
    ours, ours_grad = value_and_grad(lambda a, b: sigmoid_focal_loss(a, b, alpha, gamma, reduction), x, t)
    ref, ref_grad = value_and_grad(lambda a, b: torchvision.ops.sigmoid_focal_loss(a, b, alpha, gamma, reduction), x, t)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)


def test_sigmoid_defaults_match_torchvision():
    x, t = torch.randn(4, 3), (torch.rand(4, 3) > 0.5).float()
    torch.testing.assert_close(sigmoid_focal_loss(x, t), torchvision.ops.sigmoid_focal_loss(x, t))


def test_sigmoid_weight_is_elementwise():
    x, t = torch.randn(5, 3, dtype=torch.float64), (torch.rand(5, 3) > 0.5).double()
    w = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(sigmoid_focal_loss(x, t, weight=w), sigmoid_focal_loss(x, t) * w)


@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 2.7])
@pytest.mark.parametrize("soft", [False, True])
def test_sigmoid_gradcheck(alpha, gamma, soft):
    g = torch.Generator().manual_seed(10)
    x = (torch.randn(4, 3, generator=g, dtype=torch.float64) * 3).requires_grad_()
    t = torch.rand(4, 3, generator=g, dtype=torch.float64)
    t = t if soft else (t > 0.5).double()
    assert torch.autograd.gradcheck(lambda z: sigmoid_focal_loss(z, t, alpha, gamma, "none"), (x,))


@pytest.mark.parametrize("scale", [100.0, 1e4])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_finite_at_extreme_logits(scale, gamma):
    x = torch.tensor([scale, -scale, scale, -scale], requires_grad=True)
    t = torch.tensor([1.0, 1.0, 0.0, 0.0])  # certain, hopeless, hopeless, certain
    loss = sigmoid_focal_loss(x, t, alpha=-1, gamma=gamma)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()
    assert loss[1].item() == pytest.approx(scale, rel=1e-6) and loss[2].item() == pytest.approx(scale, rel=1e-6)
    assert x.grad[1].item() == pytest.approx(-1.0) and x.grad[2].item() == pytest.approx(1.0)


def test_sigmoid_module_equals_function():
    x, t = torch.randn(5, 3), (torch.rand(5, 3) > 0.5).float()
    module = SigmoidFocalLoss(alpha=0.4, gamma=1.0, reduction="mean")
    torch.testing.assert_close(module(x, t), sigmoid_focal_loss(x, t, 0.4, 1.0, "mean"))
    assert repr(module) == "SigmoidFocalLoss(alpha=0.4, gamma=1.0, reduction='mean')"


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(alpha=2.0), "alpha"), (dict(gamma=-0.5), "gamma"), (dict(reduction="batchmean"), "reduction")],
)
def test_sigmoid_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sigmoid_focal_loss(torch.randn(3, 2), torch.ones(3, 2), **kwargs)
    with pytest.raises(ValueError, match=match):
        SigmoidFocalLoss(**kwargs)
    with pytest.raises(ValueError, match="shape"):
        sigmoid_focal_loss(torch.randn(3, 2), torch.ones(3))
