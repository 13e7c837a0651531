r"""The reduced focal loss of class-index targets: on cross-entropy's own kernels, or with a one-pass backward.

For index targets with ``reduction="mean"`` or ``"sum"`` (the common training case), :func:`focal.focal_loss`
calls :func:`torch.nn.functional.cross_entropy` with ``reduction="none"`` — the same log-softmax and NLL kernels,
forward and backward, as the cross-entropy it is compared with — and turns the per-element cross-entropy
:math:`c_i = -\log p_{t_i}` into the focal loss in one more pass:

.. math::

    L = \sum_i f_{t_i} \, \ell_\gamma(-c_i), \qquad \ell_\gamma(l) = -(1 - e^{l})^{\gamma} \, l, \qquad
    D = \sum_{i \text{ kept}} w_{t_i} \text{ (or the count of kept elements)},

with :math:`f = \alpha \cdot w` the class factor. That pass (gathering :math:`f_{t_i}`, γ per element, the focal
term, its derivative :math:`\partial L / \partial c_i = -f_{t_i} \ell_\gamma'(-c_i)`, the sum and the denominator)
is one fused loop for large inputs (see :func:`focal.losses.kernels.set_fused`); the backward is one
multiplication. Ignored elements have :math:`c_i = 0`, hence :math:`\ell_\gamma = 0`, and cross-entropy's backward
gives them no gradient.

Contiguous logits that need a gradient and are large enough to be fused, ``(N, C)`` or ``(N, C, d1, ...)`` maps
(viewed as ``(N, C, M)``), take :func:`logits_focal_sum` instead: the log-softmax, one fused pass that also picks
:math:`c_i = -\log p_{t_i}` from it, and a backward that writes
:math:`\partial L/\partial x_{ij} = g \, s_i (p_{ij} - [j = t_i])` in one fused pass over N×C (:math:`s_i` the
slope above, :math:`g` the incoming gradient), where cross-entropy's NLL backward fills and scatters an N×C
gradient and its log-softmax backward reads it back. The forward pass hands the targets to the backward one as
int32: compared with the class index in the inner loop, int64 targets made the pass over a map slower than
cross-entropy's two kernels on an AVX2 CPU. The same forward pass flags targets out of range; they are read as
class 0 and never used as an index (of the logits or of a per-class vector), and the forward raises an IndexError
naming one on the CPU, a device-side assert on CUDA (a compiled load out of bounds aborts the process).

Second derivatives (``create_graph=True``) use the closed form

.. math::

    \ell_\gamma''(l) = \gamma \, q^{\gamma - 1} p \left[2 + l - (\gamma - 1)\, p\, l / q\right],
    \qquad p = e^{l},\ q = 1 - p,

from :func:`focal.losses.kernels.focal_term_curvature_kernel` (set to 0 where :math:`q = 0`: for γ < 1 it diverges
as :math:`q \to 0`, but the Hessian with respect to the logits multiplies it by
:math:`(\partial l / \partial x)^2 \sim q^2` and tends to 0 there).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from focal.losses import kernels
from focal.losses.checks import check_targets_in_range

LOG_FLSD_THRESHOLD = math.log(0.2)  # Mukhoti et al. 2020: γ = 5 where p_t < 0.2, else 3


def _element_gamma(logp: Tensor, safe: Tensor, gamma: Optional[float], gamma_vec: Optional[Tensor]):
    """γ of each element: a float, the per-class vector gathered at the targets, or FLSD-53 (``gamma is None``)."""
    if gamma_vec is not None:
        return gamma_vec[safe]
    if gamma is None:
        return torch.where(logp < LOG_FLSD_THRESHOLD, 5.0, 3.0)
    return gamma


def _indexed_kernel(ce: Tensor, target: Tensor, factor: Optional[Tensor], weight: Optional[Tensor],
                    gamma: Optional[float], gamma_vec: Optional[Tensor], ignore_index: int):
    """(Σ f_t ℓ(-c), the mean's denominator, ∂/∂c of the sum) from flat cross-entropies and targets."""
    kept = target != ignore_index
    safe = torch.where(kept, target, 0)
    logp = ce.neg()
    loss, dl = kernels.focal_term_kernel(logp, _element_gamma(logp, safe, gamma, gamma_vec))
    slope = torch.ones_like(ce) if dl is None else dl.neg()
    if factor is not None:
        f = factor[safe]
        loss, slope = loss * f, slope * f
    slope = torch.where(kept, slope, 0.0)
    if weight is None:
        denominator = kept.sum().to(ce.dtype)
    else:
        denominator = torch.where(kept, weight[safe], 0.0).sum()
    return loss.sum(), denominator, slope


def _second_derivative(ce: Tensor, target: Tensor, factor: Optional[Tensor], gamma: Optional[float],
                       gamma_vec: Optional[Tensor], ignore_index: int) -> Tensor:
    """∂²L/∂c_i² = f_t ℓ''(-c_i), elementwise (0 for ignored elements and where q = 0)."""
    kept = target != ignore_index
    safe = torch.where(kept, target, 0)
    logp = ce.neg()
    _, curve = kernels.focal_term_curvature_kernel(logp, _element_gamma(logp, safe, gamma, gamma_vec))
    curve = torch.where(kept, curve, 0.0)
    if factor is not None:
        curve = curve * factor[safe]
    return curve


class _IndexedFocal(torch.autograd.Function):
    """(L, D) from per-element cross-entropies; L is differentiable in them, D is not."""

    @staticmethod
    def forward(ctx, ce, target, factor, weight, gamma, gamma_vec, ignore_index):
        total, denominator, slope = kernels.run_kernel(_indexed_kernel, ce, target, factor, weight, gamma,
                                                       gamma_vec, ignore_index, elementwise=2)
        ctx.save_for_backward(slope, ce, target, factor, gamma_vec)
        ctx.gamma, ctx.ignore_index = gamma, ignore_index
        ctx.mark_non_differentiable(denominator)
        return total, denominator

    @staticmethod
    def backward(ctx, grad_total, _grad_denominator):
        slope, ce, target, factor, gamma_vec = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the slope as a differentiable function of ce
            slope = _IndexedSlope.apply(ce, target, factor, ctx.gamma, gamma_vec, ctx.ignore_index)
        return grad_total * slope, None, None, None, None, None, None


class _IndexedSlope(torch.autograd.Function):
    """∂L/∂c as a function of c, whose derivative is the closed-form second derivative (for double backward)."""

    @staticmethod
    def forward(ctx, ce, target, factor, gamma, gamma_vec, ignore_index):
        ctx.save_for_backward(ce, target, factor, gamma_vec)
        ctx.gamma, ctx.ignore_index = gamma, ignore_index
        _, _, slope = _indexed_kernel(ce.reshape(-1), target.reshape(-1), factor, None, gamma, gamma_vec,
                                      ignore_index)
        return slope.view(ce.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        ce, target, factor, gamma_vec = ctx.saved_tensors
        curve = _second_derivative(ce, target, factor, ctx.gamma, gamma_vec, ctx.ignore_index)
        return grad * curve, None, None, None, None, None


def _picked_ce(logsm: Tensor, safe: Tensor, kept: Tensor) -> Tensor:
    """c_i = −logsm[i, t_i] along dim 1 where ``kept``, 0 elsewhere (``safe``: targets with ignored ones at 0)."""
    return torch.where(kept, logsm.gather(1, safe.long().unsqueeze(1)).squeeze(1).neg(), 0.0)


def _picked_kernel(logsm: Tensor, target: Tensor, factor, weight, gamma, gamma_vec, ignore_index: int):
    """:func:`_indexed_kernel` on ``c_i = −logsm[i, t_i]``, the target's log-probability picked in the same pass;
    also the targets as int32 with ignored ones at 0 (for :func:`_softmax_gradient_kernel`) and whether any target is
    out of range. Such a target is read as class 0, never used as an index: on the CPU a compiled load out of bounds
    aborts the process, so the caller raises instead."""
    kept = target != ignore_index
    outside = kept & ((target < 0) | (target >= logsm.shape[1]))
    target = torch.where(outside, 0, target)  # from here on every index is in range (per-class vectors too)
    safe = torch.where(kept, target, 0)
    return _indexed_kernel(_picked_ce(logsm, safe, kept), target, factor, weight, gamma, gamma_vec, ignore_index) + (
        safe.to(torch.int32), outside.any())


def _softmax_gradient_kernel(logsm: Tensor, slope: Tensor, target: Tensor, grad_total: Tensor):
    """∂L/∂x = g s_i (softmax − onehot(t_i)) along dim 1, from the log-softmax, in one pass over N×C(×M).

    ``target`` is int32: compared with the class index in the inner loop, an int64 target runs the pass twice as
    slowly on an AVX2 CPU (7.2 ms against 3.9 ms at 8×19×36864)."""
    s = (grad_total * slope).unsqueeze(1)
    classes = torch.arange(logsm.shape[1], device=logsm.device, dtype=torch.int32)
    classes = classes.view(-1, *([1] * (logsm.dim() - 2)))
    return (torch.exp(logsm) * s - torch.where(classes == target.unsqueeze(1), s, 0.0),)


class _LogitsFocal(torch.autograd.Function):
    """(L, D, log-softmax) from contiguous (N, C) or (N, C, d1, ...) logits: the log-softmax, one fused pass
    (:func:`_picked_kernel`), and in backward ∂L/∂x itself in one pass (``g s_i (softmax − onehot)``, where
    cross-entropy writes, scatters and reads back N×C twice).

    Like cross-entropy it keeps the log-softmax for backward, not the logits. The log-softmax is also an output (that
    callers drop): kept as an output, it stays connected to the logits, so that under ``create_graph=True`` the
    gradient, built from it with differentiable ops, differentiates back through this Function, whose backward then
    adds the log-softmax's own (``G − softmax · Σ_c G`` for an incoming gradient G)."""

    @staticmethod
    def forward(ctx, input, target, factor, weight, gamma, gamma_vec, ignore_index):
        logsm = torch.log_softmax(input, 1)
        flat = _classes_flat(logsm)  # maps as (N, C, M): maps of any number of dims share compiled kernels
        target = target.reshape(flat.shape[:1] + flat.shape[2:])
        total, denominator, slope, safe, outside = kernels.run_kernel(
            _picked_kernel, flat, target, factor, weight, gamma, gamma_vec, ignore_index, elementwise=0)
        if input.is_cuda:  # no host sync: a device-side assert, as cross-entropy's own
            torch._assert_async(~outside, "focal_loss: a target holds a class index out of range")
        elif outside:
            check_targets_in_range(target.masked_fill(target == ignore_index, 0), input.size(1), ignore_index)
            raise IndexError(f"target holds a class index out of range [0, {input.size(1) - 1}]")
        ctx.save_for_backward(logsm, slope, safe, target, factor, gamma_vec)
        ctx.gamma, ctx.ignore_index = gamma, ignore_index
        ctx.mark_non_differentiable(denominator)
        ctx.set_materialize_grads(False)
        return total, denominator, logsm

    @staticmethod
    def backward(ctx, grad_total, _grad_denominator, grad_logsm):
        logsm, slope, safe, target, factor, gamma_vec = ctx.saved_tensors
        flat, grad = _classes_flat(logsm), None
        if grad_total is not None and torch.is_grad_enabled():  # create_graph=True: differentiable in logsm
            ce = _picked_ce(flat, safe, target != ctx.ignore_index)
            slope = _IndexedSlope.apply(ce, target, factor, ctx.gamma, gamma_vec, ctx.ignore_index)
            grad, = _softmax_gradient_kernel(flat, slope, safe, grad_total)
        elif grad_total is not None:
            grad, = kernels.run_kernel(_softmax_gradient_kernel, flat, slope, safe, grad_total, elementwise=0)
        if grad_logsm is not None:  # reached in double backward, through the gradient built above
            own = grad_logsm - torch.exp(logsm) * grad_logsm.sum(1, keepdim=True)
            grad = own if grad is None else grad.view(logsm.shape) + own
        return None if grad is None else grad.view(logsm.shape), None, None, None, None, None, None


def _classes_flat(x: Tensor) -> Tensor:
    """(N, C) as it is, (N, C, d1, ...) viewed as (N, C, M)."""
    return x if x.dim() == 2 else x.view(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def logits_focal_sum(input: Tensor, target: Tensor, factor: Optional[Tensor], weight: Optional[Tensor],
                     gamma: Optional[float], gamma_vec: Optional[Tensor], ignore_index: int):
    """(Σ f_t ℓ_γ(-c), D) from contiguous (N, C) or (N, C, d1, ...) logits, as :func:`indexed_focal_sum` gives it
    from cross-entropies, with the gradient written in one fused pass (:class:`_LogitsFocal`)."""
    total, denominator, _ = _LogitsFocal.apply(input, target, factor, weight, gamma, gamma_vec, ignore_index)
    return total, denominator


def indexed_focal_sum(ce: Tensor, target: Tensor, factor: Optional[Tensor], weight: Optional[Tensor],
                      gamma: Optional[float], gamma_vec: Optional[Tensor], ignore_index: int):
    """(Σ f_t ℓ_γ(-c), D): the summed focal loss from per-element cross-entropies ``ce`` (target's shape) and the
    mean's denominator. ``gamma`` None with ``gamma_vec`` None means FLSD-53; ``factor`` and ``weight`` are (C,)
    vectors in ``ce``'s dtype or None."""
    return _IndexedFocal.apply(ce, target, factor, weight, gamma, gamma_vec, ignore_index)
