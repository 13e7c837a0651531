"""Elementwise focal-loss kernels with closed-form derivatives, optionally fused by ``torch.compile``.

Each kernel returns the loss and its derivative together; the autograd Functions save the derivative and their
backward is one multiplication. Double backward (``create_graph=True``) is supported: a second kernel per loss gives
the derivative and the closed-form second derivative, and runs only then. The same Python functions run either as
eager PyTorch ops or compiled into one fused loop (C++/OpenMP on CPU, Triton on CUDA); :func:`set_fused` chooses.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["set_fused"]


def _modulating(q: Tensor, gamma: Union[float, Tensor]) -> Tensor:
    """(1 - p)^γ from q = 1 - p, with cheap special cases for the common γ.

    Any other float γ becomes a 0-d tensor exponent. Compiled with ``dynamic=True``, a float argument is symbolic and
    ``pow(Tensor, float)`` is the one use inductor cannot turn into tensor arithmetic: it bakes the first γ into the
    kernel, and its on-disk cache then serves that kernel to later processes for every other γ (fused losses silently
    computed with γ = 0.5 when asked for 0.25 or 3.5; pytorch/pytorch#194976 and #197889).
    """
    if isinstance(gamma, Tensor):
        return q.pow(gamma)
    if gamma == 0:
        return torch.ones_like(q)
    if gamma == 1:
        return q
    if gamma == 2:
        return q * q
    return q.pow(q.new_ones(()) * gamma)


def _one_minus_exp(logp: Tensor) -> Tensor:
    """1 - e^l for l ≤ 0 without cancellation near l = 0.

    float64 uses ``expm1``. Other dtypes avoid it, because its CPU kernels (eager and compiled) run about 10x slower
    than ``exp``: for -1/4 < l ≤ 0 the Taylor series of -expm1 up to l^6 (truncation error < 5e-8 relatively), below
    it 1 - e^l, which loses under 3e-7 relatively there since 1 - e^l > 0.22.
    """
    if logp.dtype == torch.float64:
        return torch.expm1(logp).neg()
    series = logp * (1.0 + logp / 2 * (1.0 + logp / 3 * (1.0 + logp / 4 * (1.0 + logp / 5 * (1.0 + logp / 6)))))
    return torch.where(logp > -0.25, series.neg(), 1.0 - torch.exp(logp))


def focal_term_kernel(logp: Tensor, gamma: Union[float, Tensor]):
    r"""ℓ(l) = -(1 - e^l)^γ · l for log-probabilities l ≤ 0, and dℓ/dl, elementwise.

    dℓ/dl = -(1-p)^γ · (1 - γ · p · l / (1 - p)), where l / (1 - p) → -1 as p → 1: finite for every γ ≥ 0, whereas
    autograd through ``(1-p)**γ`` forms ``(1-p)**(γ-1) · 0``, NaN for γ < 1. Returns ``None`` for the derivative when
    γ = 0 (it is -1 everywhere).
    """
    q = _one_minus_exp(logp)  # 1 - p without cancellation near p = 1
    mod = _modulating(q, gamma)
    loss = mod * logp.neg()
    if not isinstance(gamma, Tensor) and gamma == 0:
        return loss, None
    ratio = torch.where(q > 0, logp / q, -1.0)  # l / (1 - p), -1 in the limit p -> 1
    return loss, mod * (gamma * ratio * torch.exp(logp) - 1.0)


def focal_term_curvature_kernel(logp: Tensor, gamma: Union[float, Tensor]):
    r"""dℓ/dl and d²ℓ/dl² of :func:`focal_term_kernel`'s ℓ, elementwise (γ > 0 or a tensor γ).

    With p = e^l and q = 1 - p:

    .. math::

        \ell'' = \gamma \, q^{\gamma - 1} p \left[2 + l - (\gamma - 1) \, p \, l / q\right]

    For γ < 1 this diverges as q → 0, but the Hessian with respect to the logits multiplies it by (dl/dx)² ~ q², which
    vanishes faster. So ℓ'' is set to 0 where q rounds to 0 (float64 ``log_softmax`` returns l = 0 at logit gaps above
    ~37), and q is clamped from below by the dtype's smallest normal number elsewhere: q^(γ-1) ≤ 1 / tiny and the
    bracket is at most 2 for γ < 1, so ℓ'' stays finite.
    """
    q = _one_minus_exp(logp)
    p = torch.exp(logp)
    ratio = torch.where(q > 0, logp / q, -1.0)
    slope = _modulating(q, gamma) * (gamma * ratio * p - 1.0)
    q_safe = q.clamp_min(torch.finfo(q.dtype).tiny)
    curve = (gamma * p * (2.0 + logp - (gamma - 1.0) * p * ratio)) * _modulating(q_safe, gamma - 1.0)
    return slope, torch.where(q > 0, curve, 0.0)


def _log1p(e: Tensor) -> Tensor:
    """log(1 + e) for e ≥ 0, accurate for tiny e, without ``log1p`` outside float64 (vectorised, it costs about a
    tenth of the fused sigmoid kernel, ~2 ms for 65536×91 on two cores; eager it is slower still).

    Uses log(1+e) = log(u) · e / (u - 1) with u = fl(1 + e), which cancels the rounding of u (Goldberg 1991).
    """
    if e.dtype == torch.float64:
        return torch.log1p(e)
    u = 1.0 + e
    return torch.where(u == 1.0, e, torch.log(u) * (e / (u - 1.0)))


def _sigmoid_parts(x: Tensor, t: Tensor, elementwise: bool):
    """σ(x), σ'(x), 1 - 2t, 1 - p_t and the cross-entropy BCE(x, t), sharing one exp.

    1 - p_t is formed as t·σ(-x) + (1 - t)·σ(x), whose terms are both ≥ 0: no cancellation for confident positives,
    where 1 - σ(x) (torchvision's form) rounds to 0 for x > 17 in float32 and (1 - p_t)^γ loses its precision.

    The cross-entropy has two forms. For elementwise results it is formed as
    :func:`torch.nn.functional.binary_cross_entropy_with_logits` forms it (torch 2.x): (1 - t)·x - logsigmoid(x),
    with ``logsigmoid`` itself, so it equals BCE to the last bit on the CPU, eager and fused (inductor expands
    ``logsigmoid`` into min(x, 0) - log1p(e^-|x|) with the same vectorised log1p; eager ``torch.log1p`` rounds
    differently on a few percent of elements). With α_t (1 - p_t)^γ ≤ 1 and monotone rounding the focal loss is then
    ≤ BCE elementwise. BCE's form cancels for confident negatives (t = 0, x ≪ 0: an absolute error under half an ulp
    of x, 0 at x = -20 in float32), so any more accurate form exceeds BCE there on about half the elements. For a
    sum, where no element is seen, it is the cancellation-free (1 - t)·relu(x) + t·relu(-x) + log1p(e^-|x|), both
    first terms ≥ 0, with the cheaper :func:`_log1p`: BCE's log1p would cost a tenth of the kernel for bits no one
    sees. (The form max(x, 0) + log1p(e^-|x|) - t·x of earlier versions cancelled to 0 for x = 20, t = 1.)
    """
    # one exp serves σ(x), σ(-x) and σ(x)(1 - σ(x)): with e = exp(-|x|), r = 1 / (1 + e),
    # σ(x) = r (x ≥ 0) or e·r (x < 0), σ(-x) the other one, σ(x)(1 - σ(x)) = e·r²
    e = torch.exp(-x.abs())
    r = 1.0 / (1.0 + e)
    er = e * r
    positive = x >= 0
    s = torch.where(positive, r, er)
    not_t = 1.0 - t
    if elementwise:
        ce = not_t * x - F.logsigmoid(x)
    else:
        ce = torch.where(positive, not_t, t.neg()) * x + _log1p(e)
    q = t * torch.where(positive, er, r) + not_t * s  # t·σ(-x) + (1-t)·σ(x): 1 - σ(x) would cancel for x ≫ 0
    return s, er * r, 1.0 - 2.0 * t, q, ce


def _alpha_t(t: Tensor, alpha: float, scale: float = 1.0) -> Tensor:
    """scale · α_t = scale · (α·t + (1-α)·(1-t)), in one multiply-add."""
    return (1.0 - alpha) * scale + (2.0 * alpha - 1.0) * scale * t


def _sigmoid_focal_kernel(x: Tensor, t: Tensor, alpha: float, gamma: float, scale: Optional[float] = None):
    r"""ℓ(x, t) = α_t · (1 - p_t)^γ · BCE(x, t) and dℓ/dx, elementwise.

    With ``scale`` set, returns ``scale · Σ ℓ`` (the mean or sum, reduced in the same loop) and ``scale · dℓ/dx``.

    With s = σ(x), s' = s(1 - s), u = 1 - 2t, q = 1 - p_t = t + s·u and ce = BCE(x, t) (from :func:`_sigmoid_parts`),
    and ρ = u·s'/q (= u·(1 - q) for binary t, |ρ| ≤ 1 for every t in [0, 1]): dℓ/dx = α_t · q^γ · [(s - t) + γ·ρ·ce].
    q is clamped from below by the dtype's smallest normal number in ρ: it is 0 only where s' underflows to 0 too.
    """
    s, ds, u, q, ce = _sigmoid_parts(x, t, elementwise=scale is None)
    mod = _modulating(q, gamma)
    slope = s - t
    if gamma != 0:
        slope = slope + gamma * ce * (ds * u / q.clamp_min(torch.finfo(q.dtype).tiny))
    loss, grad = mod * ce, mod * slope
    factor = _alpha_t(t, alpha, 1.0 if scale is None else scale) if alpha >= 0 else scale
    if factor is not None:
        loss, grad = loss * factor, grad * factor
    return (loss, grad) if scale is None else (loss.sum(), grad)


def _sigmoid_focal_curvature_kernel(x: Tensor, t: Tensor, alpha: float, gamma: float, scale: Optional[float] = None):
    r"""dℓ/dx and d²ℓ/dx² of :func:`_sigmoid_focal_kernel`'s ℓ, elementwise (both times ``scale`` when it is set).

    In the notation there, with ρ' = ρ(1 - 2s) - ρ² and q' = ρ·q:

    .. math::

        \frac{\ell''}{\alpha_t} = q^{\gamma} \left[ s' + \gamma \rho \left(2 (s - t) + \mathrm{ce}\,(1 - 2 s)\right)
            + \gamma (\gamma - 1) \rho^2 \, \mathrm{ce} \right]

    Every factor is bounded (|ρ| ≤ 1), so ℓ'' is finite for every γ ≥ 0; no q^(γ-1) appears.
    """
    s, ds, u, q, ce = _sigmoid_parts(x, t, elementwise=scale is None)
    mod = _modulating(q, gamma)
    rho = ds * u / q.clamp_min(torch.finfo(q.dtype).tiny)
    slope = mod * ((s - t) + gamma * rho * ce)
    curve = mod * (ds + gamma * rho * (2.0 * (s - t) + ce * (1.0 - 2.0 * s)) + gamma * (gamma - 1.0) * rho * rho * ce)
    factor = _alpha_t(t, alpha, 1.0 if scale is None else scale) if alpha >= 0 else scale
    return (slope, curve) if factor is None else (slope * factor, curve * factor)


# Fused kernels: the pointwise math above compiled by torch.compile into one loop (C++/OpenMP on CPU, Triton on CUDA),
# used for tensors large enough to pay for the call. Falls back to the same functions run as eager ops wherever
# compiling is unavailable or fails, and inside a caller's own torch.compile region (which fuses them anyway).
FUSED_MIN_NUMEL = 1 << 16
_fused_mode: Optional[bool] = {"0": False, "1": True}.get(os.environ.get("FOCAL_FUSED", ""), None)
_fused_broken = False
_compiled: dict = {}


def set_fused(enabled: Optional[bool]) -> None:
    """Choose how the elementwise part of the losses runs: ``True`` always fused (compiled with ``torch.compile``),
    ``False`` always eager PyTorch ops, ``None`` (default) fused for tensors of at least 65,536 elements.

    The environment variable ``FOCAL_FUSED=0`` or ``1`` sets the same at import. The first fused call of a dtype and
    device compiles its kernel (seconds; cached on disk by PyTorch afterwards). Results agree with eager mode to
    rounding.

    Example:
        >>> import focal.losses
        >>> focal.losses.set_fused(False)  # eager ops only
        >>> focal.losses.set_fused(None)   # back to the default
    """
    global _fused_mode
    if enabled not in (True, False, None):
        raise ValueError(f"enabled must be True, False or None, got {enabled!r}")
    _fused_mode = enabled


def compile_options() -> dict:
    """inductor options of the fused kernels.

    ``cpp.dynamic_threads`` lets OpenMP spread every call over the cores. Without it inductor decides at compile time,
    from the first call's size, whether the CPU loop is parallel at all, and its on-disk cache keeps that decision
    for later processes and every later size: one small first call (a test, a warm-up batch) left 65536×91 on one
    core, 1.5× slower on two.
    """
    import torch._inductor.config as inductor_config

    return {"cpp.dynamic_threads": True} if hasattr(inductor_config.cpp, "dynamic_threads") else {}


def fuses(x: Tensor) -> bool:
    """Whether :func:`run_kernel` runs a kernel on ``x`` (its first input) fused: the mode of :func:`set_fused`, the
    size, a working compiler, and not inside a caller's own ``torch.compile`` region."""
    fused = _fused_mode if _fused_mode is not None else x.numel() >= FUSED_MIN_NUMEL
    return bool(fused) and not _fused_broken and not torch.compiler.is_compiling()


def run_kernel(kernel, *args, elementwise: Optional[int] = None):
    """Run a kernel on flattened tensors, fused when worthwhile, and give 1-d outputs the first input's shape back.

    The first ``elementwise`` arguments (default: every tensor argument) are expanded to the first input's shape and
    flattened, and 1-d outputs of as many elements are viewed in that shape; later tensor arguments (per-class
    vectors, say) pass unchanged. With ``elementwise=0`` arguments and outputs pass as they are. A kernel that
    cannot be compiled (no C++ compiler, an unsupported platform) warns once and runs as eager ops from then on.
    """
    global _fused_broken
    x = args[0]
    restore = (lambda outs: outs) if elementwise == 0 else (lambda outs: _restore(outs, x))  # nothing flattened
    if not fuses(x):
        flat = args if elementwise is None else [a.reshape(-1) if i < elementwise else a for i, a in enumerate(args)]
        return restore(kernel(*flat))
    count = len(args) if elementwise is None else elementwise
    flat = [a.expand_as(x).reshape(-1) if i < count and isinstance(a, Tensor) else a for i, a in enumerate(args)]
    compiled = _compiled.get(kernel)
    if compiled is None:
        # inductor logs "No CUDA runtime is found" when it compiles for the CPU; it is noise here
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        compiled = _compiled[kernel] = torch.compile(kernel, dynamic=True, options=compile_options())
    try:
        return restore(compiled(*flat))
    except Exception as err:  # no C++ compiler, unsupported platform, ...: stay correct, lose the fusion
        _fused_broken = True
        warnings.warn(f"focal: fused loss kernels are unavailable ({type(err).__name__}: {err}); using eager ops",
                      RuntimeWarning, stacklevel=3)
        return run_kernel(kernel, *args, elementwise=elementwise)


def _restore(outs: tuple, x: Tensor) -> tuple:
    """A kernel's outputs, with those flattened from ``x`` (1-d, as many elements) viewed in ``x``'s shape."""
    return tuple(o.view(x.shape) if o is not None and o.dim() == 1 and o.numel() == x.numel() else o for o in outs)


# The kernel that gives each first-order kernel's (dloss/dx, d²loss/dx²), for double backward.
_CURVATURE = {focal_term_kernel: focal_term_curvature_kernel, _sigmoid_focal_kernel: _sigmoid_focal_curvature_kernel}


class _ClosedForm(torch.autograd.Function):
    """Autograd wrapper of an elementwise kernel returning ``(loss, dloss/dx)``: forward saves the derivative, backward
    multiplies it by the incoming gradient. ``None`` as derivative means -1 everywhere (γ = 0 in the focal term).

    Under ``create_graph=True`` (grad mode on inside backward) the derivative is rebuilt instead as
    :class:`_Slope`, a differentiable function of x, so that double backward gets the closed-form second derivative.
    Without it backward is the one multiplication by the saved derivative, as before.
    """

    @staticmethod
    def forward(ctx, kernel, x: Tensor, *args) -> Tensor:
        loss, slope = run_kernel(kernel, x, *args)
        ctx.tensor_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.save_for_backward(slope, x, *(args[i] for i in ctx.tensor_slots))
        ctx.kernel = kernel
        ctx.other_args = [None if isinstance(a, Tensor) else a for a in args]  # tensors go through saved_tensors
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor):
        slope, x, *tensors = ctx.saved_tensors
        if slope is not None and torch.is_grad_enabled():  # create_graph=True
            args = list(ctx.other_args)
            for i, tensor in zip(ctx.tensor_slots, tensors):
                args[i] = tensor
            slope = _Slope.apply(_CURVATURE[ctx.kernel], x, *args)
        return (None, grad.neg() if slope is None else grad * slope) + (None,) * len(ctx.other_args)


class _Slope(torch.autograd.Function):
    """dloss/dx as a function of x, from a kernel returning ``(dloss/dx, d²loss/dx²)``; its backward multiplies by the
    closed-form second derivative. Its own backward is exact in the incoming gradient; a third derivative in x raises
    (see :class:`_NoThirdDerivative`)."""

    @staticmethod
    def forward(ctx, kernel, x: Tensor, *args) -> Tensor:
        slope, curve = run_kernel(kernel, x, *args)
        ctx.save_for_backward(curve, x)
        ctx.num_args = len(args)
        return slope

    @staticmethod
    def backward(ctx, grad: Tensor):
        curve, x = ctx.saved_tensors
        out = grad * curve
        if torch.is_grad_enabled():  # create_graph=True once more
            out = out + _NoThirdDerivative.apply(x)
        return (None, out) + (None,) * ctx.num_args


class _NoThirdDerivative(torch.autograd.Function):
    """A zero that depends on x and whose derivative raises: added to the second derivative, it makes a third
    derivative in x fail loudly instead of silently dropping the loss's part. Gradients with respect to anything else
    (the incoming gradients, as in the double-backward trick) never reach it."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.new_zeros(())

    @staticmethod
    def backward(ctx, grad: Tensor):
        raise RuntimeError(
            "focal: third derivatives of the focal losses are not implemented (double backward is: the second "
            "derivative is closed-form, but it is not differentiable again)"
        )


def focal_term(logp: Tensor, gamma: Union[float, Tensor]) -> Tensor:
    """-(1 - p)^γ · log p elementwise from log-probabilities, differentiable twice (see :func:`focal_term_kernel`
    and :func:`focal_term_curvature_kernel`)."""
    return _ClosedForm.apply(focal_term_kernel, logp, gamma)


def sigmoid_focal_term(x: Tensor, t: Tensor, alpha: float, gamma: float, scale: Optional[float] = None) -> Tensor:
    """Sigmoid focal loss elementwise (or ``scale``·sum), differentiable twice in ``x`` (see
    :func:`_sigmoid_focal_kernel` and :func:`_sigmoid_focal_curvature_kernel`)."""
    return _ClosedForm.apply(_sigmoid_focal_kernel, x, t, alpha, gamma, scale)
