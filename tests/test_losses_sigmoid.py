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


# ------------------------------------------------------------------------------------------------- normalizer
def normalizer_batch(seed=11):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    return x, (torch.rand(6, 5, generator=g) < 0.3).double()


@pytest.mark.parametrize("n", [0, 0.5, 1, 3, 7.5])
@pytest.mark.parametrize("use_weight", [False, True])
def test_normalizer_divides_the_sum_by_max_n_1(n, use_weight):
    x, t = normalizer_batch()
    w = torch.tensor([0.5, 1.0, 2.0, 0.0, 1.5], dtype=torch.float64) if use_weight else None
    elementwise = sigmoid_focal_loss(x, t, 0.25, 2.0, "none", w)
    mean = sigmoid_focal_loss(x, t, 0.25, 2.0, "mean", w, normalizer=n)
    none = sigmoid_focal_loss(x, t, 0.25, 2.0, "none", w, normalizer=n)
    torch.testing.assert_close(mean, elementwise.sum() / max(n, 1))
    torch.testing.assert_close(none, elementwise / max(n, 1))
    torch.testing.assert_close(none.sum(), mean)
    module = SigmoidFocalLoss(0.25, 2.0, "mean", weight=w)
    torch.testing.assert_close(module(x, t, normalizer=n), mean)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("use_weight", [False, True])
def test_normalizer_tensor_equals_number(reduction, use_weight):
    x, t = normalizer_batch(12)
    w = torch.rand(5, dtype=torch.float64) if use_weight else None
    for number, tensor in [(4, torch.tensor(4)), (2.5, torch.tensor(2.5)), (0.0, torch.tensor(0.0)),
                           (1.0, torch.tensor(-3.0)), (6.0, torch.tensor(6.0, dtype=torch.float16))]:
        ours = sigmoid_focal_loss(x, t, 0.25, 2.0, reduction, w, normalizer=tensor)
        assert isinstance(ours, torch.Tensor) and ours.dtype == x.dtype
        torch.testing.assert_close(ours, sigmoid_focal_loss(x, t, 0.25, 2.0, reduction, w, normalizer=number))


def test_normalizer_clamps_zero_to_one():
    x, t = normalizer_batch(13)
    total = sigmoid_focal_loss(x, t, reduction="sum")
    for zero in (0, 0.0, torch.tensor(0), torch.tensor(0.0)):
        torch.testing.assert_close(sigmoid_focal_loss(x, t, reduction="mean", normalizer=zero), total)


def test_normalizer_gradients_and_detached_tensor():
    x, t = normalizer_batch(14)
    n = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    for w in (None, torch.rand(5, dtype=torch.float64)):
        got, got_grad = value_and_grad(lambda a, b: sigmoid_focal_loss(a, b, 0.25, 2.0, "mean", w, normalizer=n), x, t)
        ref, ref_grad = value_and_grad(lambda a, b: sigmoid_focal_loss(a, b, 0.25, 2.0, "sum", w) / 3.0, x, t)
        torch.testing.assert_close(got, ref)
        torch.testing.assert_close(got_grad, ref_grad)
    assert n.grad is None  # a count: the normalizer is a constant of the loss
    x32 = torch.randn(3, 4, dtype=torch.float16, requires_grad=True)
    out = sigmoid_focal_loss(x32, (x32 > 0).half(), reduction="mean", normalizer=torch.tensor(2))
    assert out.dtype == torch.float16
    out.backward()
    assert torch.isfinite(x32.grad).all()


@pytest.mark.parametrize(
    "normalizer,reduction,error,match",
    [(3.0, "sum", ValueError, 'reduction="mean"'), (-1.0, "mean", ValueError, "normalizer"),
     (float("nan"), "mean", ValueError, "normalizer"), (float("inf"), "none", ValueError, "normalizer"),
     (True, "mean", TypeError, "normalizer"), ("4", "mean", TypeError, "normalizer"),
     (torch.tensor([4.0]), "mean", ValueError, "0-d"), (torch.ones(2, 2), "mean", ValueError, "0-d"),
     (torch.tensor(True), "mean", TypeError, "integer or floating"),
     (torch.tensor(1 + 2j), "mean", TypeError, "integer or floating")],
)
def test_normalizer_errors(normalizer, reduction, error, match):
    x, t = normalizer_batch(15)
    with pytest.raises(error, match=match):
        sigmoid_focal_loss(x, t, reduction=reduction, normalizer=normalizer)
    with pytest.raises(error, match=match):
        SigmoidFocalLoss(reduction=reduction)(x, t, normalizer=normalizer)


@pytest.mark.parametrize("use_weight", [False, True])
def test_normalizer_tensor_is_never_read_back(monkeypatch, use_weight):
    """A tensor normalizer must stay a tensor: reading it on the host would synchronise a CUDA stream."""
    import focal.losses.kernels

    x, t = normalizer_batch(16)
    w = torch.rand(5, dtype=torch.float64) if use_weight else None
    expected = sigmoid_focal_loss(x, t, 0.25, 2.0, "none", w).sum() / 5.0
    focal.losses.kernels.set_fused(False)

    def host_read(*args):
        raise AssertionError("a tensor was read back to the host")

    try:
        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
                m.setattr(torch.Tensor, name, host_read)
            got = sigmoid_focal_loss(x, t, 0.25, 2.0, "mean", w, normalizer=torch.tensor(5.0, dtype=torch.float64))
    finally:
        focal.losses.kernels.set_fused(None)
    torch.testing.assert_close(got, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_normalizer_does_not_synchronise_on_cuda():
    x = torch.randn(64, 80, device="cuda", requires_grad=True)
    t = (torch.rand(64, 80, device="cuda") < 0.05).float()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for w in (None, torch.rand(80, device="cuda")):
            sigmoid_focal_loss(x, t, reduction="mean", weight=w, normalizer=t.sum()).backward()
            sigmoid_focal_loss(x, t, reduction="none", weight=w, normalizer=t.sum()).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
