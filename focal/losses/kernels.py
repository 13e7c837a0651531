"""Elementwise focal-loss kernels with closed-form derivatives, optionally fused by ``torch.compile``.

Each kernel returns the loss and its derivative together; the autograd Functions save the derivative and their
backward is one multiplication. The same Python functions run either as eager PyTorch ops or compiled into one fused
loop (C++/OpenMP on CPU, Triton on CUDA); :func:`set_fused` chooses.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Optional, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["set_fused"]


def _modulating(q: Tensor, gamma: Union[float, Tensor]) -> Tensor:
    """(1 - p)^γ from q = 1 - p, with cheap special cases for the common γ."""
    if isinstance(gamma, Tensor):
        return q.pow(gamma)
    if gamma == 0:
        return torch.ones_like(q)
    if gamma == 1:
        return q
    if gamma == 2:
        return q * q
    return q.pow(gamma)


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


def _log1p(e: Tensor) -> Tensor:
    """log(1 + e) for e ≥ 0, accurate for tiny e, without ``log1p`` (as slow as ``expm1`` on CPU) outside float64.

    Uses log(1+e) = log(u) · e / (u - 1) with u = fl(1 + e), which cancels the rounding of u (Goldberg 1991).
    """
    if e.dtype == torch.float64:
        return torch.log1p(e)
    u = 1.0 + e
    return torch.where(u == 1.0, e, torch.log(u) * (e / (u - 1.0)))


def _focal_term_kernel(logp: Tensor, gamma: Union[float, Tensor]):
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


def _sigmoid_focal_kernel(x: Tensor, t: Tensor, alpha: float, gamma: float, scale: Optional[float] = None):
    r"""ℓ(x, t) = α_t · (1 - p_t)^γ · BCE(x, t) and dℓ/dx, elementwise.

    With ``scale`` set, returns ``scale · Σ ℓ`` (the mean or sum, reduced in the same loop) and ``scale · dℓ/dx``.

    With s = σ(x), q = 1 - p_t = t + s(1 - 2t) and ce = softplus(x) - t·x:
    dℓ/dx = α_t · q^γ · [(s - t) + γ · ce · s(1-s)(1-2t) / q]. For binary t the ratio s(1-s)(1-2t)/q is ±(1 - q), and
    where q underflows to 0 the whole term does too, so it is set to 0 there.
    """
    # one exp serves σ(x), σ(x)(1-σ(x)) and softplus(x): with e = exp(-|x|), r = 1 / (1 + e),
    # σ(x) = r (x ≥ 0) or e·r (x < 0), σ(x)(1 - σ(x)) = e·r², softplus(x) = max(x, 0) + log1p(e)
    e = torch.exp(-x.abs())
    r = 1.0 / (1.0 + e)
    s = torch.where(x >= 0, r, e * r)
    ce = x.clamp_min(0.0) + _log1p(e) - t * x
    u = 1.0 - 2.0 * t
    q = t + s * u
    mod = _modulating(q, gamma)
    slope = s - t
    if gamma != 0:
        slope = slope + gamma * ce * torch.where(q > 0, e * r * r * u / q, 0.0)
    loss, grad = mod * ce, mod * slope
    if alpha >= 0:
        alpha_t = (1.0 - alpha) + (2.0 * alpha - 1.0) * t  # α·t + (1-α)·(1-t)
        loss, grad = loss * alpha_t, grad * alpha_t
    if scale is not None:
        return loss.sum() * scale, grad * scale
    return loss, grad


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


def _run_kernel(kernel, *args):
    """Run an elementwise kernel on flattened tensors, fused when worthwhile, and restore the first input's shape."""
    global _fused_broken
    x = args[0]
    fused = _fused_mode if _fused_mode is not None else x.numel() >= FUSED_MIN_NUMEL
    if not fused or _fused_broken or torch.compiler.is_compiling():
        return kernel(*args)
    flat = [a.expand_as(x).reshape(-1) if isinstance(a, Tensor) else a for a in args]
    compiled = _compiled.get(kernel)
    if compiled is None:
        # inductor logs "No CUDA runtime is found" when it compiles for the CPU; it is noise here
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        compiled = _compiled[kernel] = torch.compile(kernel, dynamic=True)
    try:
        outs = compiled(*flat)
    except Exception as err:  # no C++ compiler, unsupported platform, ...: stay correct, lose the fusion
        _fused_broken = True
        warnings.warn(f"focal: fused loss kernels are unavailable ({type(err).__name__}: {err}); using eager ops",
                      RuntimeWarning, stacklevel=3)
        return kernel(*args)
    return tuple(o.view(x.shape) if o is not None and o.dim() == 1 else o for o in outs)


class _ClosedForm(torch.autograd.Function):
    """Autograd wrapper of an elementwise kernel returning ``(loss, dloss/dx)``: forward saves the derivative, backward
    multiplies it by the incoming gradient. ``None`` as derivative means -1 everywhere (γ = 0 in the focal term)."""

    @staticmethod
    def forward(ctx, kernel, x: Tensor, *args) -> Tensor:
        loss, slope = _run_kernel(kernel, x, *args)
        ctx.save_for_backward(slope)
        ctx.num_args = len(args)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (slope,) = ctx.saved_tensors
        return (None, grad.neg() if slope is None else grad * slope) + (None,) * ctx.num_args


def focal_term(logp: Tensor, gamma: Union[float, Tensor]) -> Tensor:
    """-(1 - p)^γ · log p elementwise from log-probabilities, differentiable (see :func:`_focal_term_kernel`)."""
    return _ClosedForm.apply(_focal_term_kernel, logp, gamma)


def sigmoid_focal_term(x: Tensor, t: Tensor, alpha: float, gamma: float, scale: Optional[float] = None) -> Tensor:
    """Sigmoid focal loss elementwise (or ``scale``·sum), differentiable in ``x`` (see :func:`_sigmoid_focal_kernel`)."""
    return _ClosedForm.apply(_sigmoid_focal_kernel, x, t, alpha, gamma, scale)
