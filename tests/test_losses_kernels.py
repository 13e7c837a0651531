"""The fused (torch.compile'd) elementwise kernels give the eager results: parity, stability and gradients."""
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision

import focal.losses.kernels
from focal import focal_loss, sigmoid_focal_loss

pytestmark = pytest.mark.slow  # the first call of each kernel compiles it


@pytest.fixture(autouse=True)
def fused():
    focal.losses.kernels.set_fused(True)
    yield
    focal.losses.kernels.set_fused(None)
    assert not focal.losses.kernels._fused_broken, "the fused kernels failed to compile and fell back to eager ops"


def grads(fn, x, *args, **kw):
    x = x.clone().requires_grad_()
    out = fn(x, *args, **kw)
    out.sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(64, 7), (4, 5, 6, 3)])
def test_fused_softmax_matches_cross_entropy_and_eager(dtype, shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3
    t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    t[torch.rand(t.shape, generator=g) < 0.2] = -100
    w = torch.rand(shape[1], generator=g, dtype=dtype) + 0.2
    got, got_grad = grads(focal_loss, x, t, gamma=0.0, weight=w, label_smoothing=0.1)
    ref, ref_grad = grads(F.cross_entropy, x, t, weight=w, label_smoothing=0.1)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got_grad, ref_grad)
    for gamma in (0.5, 2.0, "flsd53"):
        fused = grads(focal_loss, x, t, gamma=gamma, alpha=w, reduction="none")
        focal.losses.kernels.set_fused(False)
        eager = grads(focal_loss, x, t, gamma=gamma, alpha=w, reduction="none")
        focal.losses.kernels.set_fused(True)
        torch.testing.assert_close(fused, eager)


@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_fused_sigmoid_matches_torchvision(alpha, gamma):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 5, 3, generator=g, dtype=torch.float64) * 4
    t = (torch.rand(x.shape, generator=g) < 0.3).double()
    ours = grads(sigmoid_focal_loss, x, t, alpha, gamma, "mean")
    ref = grads(torchvision.ops.sigmoid_focal_loss, x, t, alpha, gamma, "mean")
    torch.testing.assert_close(ours, ref)


def test_fused_gradcheck_and_extremes():
    x = (torch.randn(6, 4, dtype=torch.float64) * 3).requires_grad_()
    t = torch.tensor([0, 1, 2, 3, 1, 0])
    assert torch.autograd.gradcheck(lambda z: focal_loss(z, t, gamma=0.5, reduction="none"), (x,))
    xs = (torch.randn(5, 3, dtype=torch.float64) * 3).requires_grad_()
    ts = (torch.rand(5, 3) > 0.5).double()
    assert torch.autograd.gradcheck(lambda z: sigmoid_focal_loss(z, ts, 0.25, 0.5), (xs,))
    big = torch.tensor([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4]], requires_grad=True)
    loss = focal_loss(big, torch.tensor([0, 2]), gamma=0.25, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(big.grad).all()
    assert loss[1].item() == pytest.approx(2e4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_one_minus_exp_and_log1p_keep_full_precision(dtype):
    from focal.losses.kernels import _log1p, _one_minus_exp

    logp = -torch.logspace(-40, 1.5, 20001, dtype=torch.float64).to(dtype)
    ref = -torch.expm1(logp.double())
    assert ((_one_minus_exp(logp).double() - ref).abs() / ref).max().item() < 3e-7
    assert _one_minus_exp(torch.zeros(1, dtype=dtype)).item() == 0.0
    e = torch.logspace(-40, 0, 20001, dtype=torch.float64).to(dtype)
    ref = torch.log1p(e.double())
    assert ((_log1p(e).double() - ref).abs() / ref).max().item() < 3e-7


@pytest.mark.parametrize("kernel", ["sigmoid", "focal_term"])
def test_fused_kernel_keeps_gamma_symbolic(kernel):
    """A fused kernel compiled for one γ serves every other γ (outside 0, 1, 2) without recompiling: γ stays an input.

    Were a γ baked into the kernel, inductor's on-disk cache would hand that kernel to later processes for other γ
    (pytorch/pytorch#194976), and the fused loss would silently use the wrong γ.
    """
    torch._dynamo.reset()
    focal.losses.kernels._compiled.clear()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, generator=g)
    t = (torch.rand(300, generator=g) < 0.3).float()

    def loss(gamma):
        if kernel == "sigmoid":
            return sigmoid_focal_loss(x, t, -1.0, gamma)
        return focal_loss(x.view(60, 5), t[:60].long() * 3, gamma=gamma, reduction="none", label_smoothing=0.1)

    loss(0.25)
    with torch._dynamo.config.patch(error_on_recompile=True):
        fused = {gamma: loss(gamma) for gamma in (0.5, 3.5, 1.7)}
    focal.losses.kernels.set_fused(False)
    for gamma, value in fused.items():
        torch.testing.assert_close(value, loss(gamma))


def test_a_kernel_that_cannot_compile_warns_once_and_stays_correct(monkeypatch):
    """No C++ compiler (simulated): the first fused call warns, every loss path gives the eager result, later calls
    stay silent. This covers the reduced index-target paths (cross-entropy + one pass, and the one-pass backward),
    whose kernels take per-class vectors that :func:`run_kernel` must pass through unexpanded."""
    kernels = focal.losses.kernels

    def no_compiler(fn, **kwargs):
        def broken(*args):
            raise RuntimeError("no C++ compiler")
        return broken

    monkeypatch.setattr(torch, "compile", no_compiler)
    monkeypatch.setattr(kernels, "_compiled", {})
    monkeypatch.setattr(kernels, "_fused_broken", False)  # restored to False afterwards, for the other tests
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, 4, generator=g)
    t = torch.randint(0, 5, (6, 4), generator=g)
    t[0, 0] = -100
    alpha, w = torch.rand(5, generator=g) + 0.5, torch.rand(5, generator=g) + 0.5
    xs, ts = torch.randn(6, 3, generator=g), (torch.rand(6, 3, generator=g) < 0.3).float()
    kernels.set_fused(False)
    eager = [grads(focal_loss, x, t, gamma=g_, alpha=alpha, weight=w, reduction=r)
             for g_ in (2.0, 0.5, "flsd53") for r in ("mean", "sum", "none")]
    eager.append(grads(sigmoid_focal_loss, xs, ts, reduction="mean"))
    kernels.set_fused(True)
    with pytest.warns(RuntimeWarning, match="fused loss kernels are unavailable.*no C\\+\\+ compiler"):
        first = grads(focal_loss, x, t, gamma=2.0, alpha=alpha, weight=w, reduction="mean")
    assert kernels._fused_broken
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fused = [grads(focal_loss, x, t, gamma=g_, alpha=alpha, weight=w, reduction=r)
                 for g_ in (2.0, 0.5, "flsd53") for r in ("mean", "sum", "none")]
        fused.append(grads(sigmoid_focal_loss, xs, ts, reduction="mean"))
    for (value, grad), (ref_value, ref_grad) in zip([first] + fused, eager[:1] + eager):
        torch.testing.assert_close(value, ref_value)
        torch.testing.assert_close(grad, ref_grad)


def test_run_kernel_flattens_only_the_elementwise_arguments():
    """``elementwise=k``: the first k tensors are flattened to the input's elements, later ones (a (C,) vector that
    cannot broadcast to the input) pass unchanged; a 1-d output with the input's element count comes back in the
    input's shape, others as they are. Eager and fused alike."""
    x, vec = torch.randn(2, 3), torch.arange(4.0)

    def kernel(a, v):
        return a * 2, v.sum() + a.sum() * 0, a.reshape(-1)[:2]

    for mode in (False, True):
        focal.losses.kernels.set_fused(mode)
        out, total, head = focal.losses.kernels.run_kernel(kernel, x, vec, elementwise=1)
        assert out.shape == (2, 3) and torch.equal(out, x * 2)
        assert total.shape == () and total == 6
        assert torch.equal(head, x.reshape(-1)[:2])
