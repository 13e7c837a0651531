"""Softmax focal loss, stable for every γ ≥ 0, with torch's conventions; and class-balanced weights.

The softmax focal loss of :cite:`lin2017focal`, written with the conventions of
:func:`torch.nn.functional.cross_entropy`. It is computed in log space with a closed-form derivative (the kernels in
:mod:`focal.losses.kernels`), so the loss and its gradient stay finite for confident and hopeless logits alike,
including 0 < γ < 1 where the naive ``exp(-CE)`` formulation returns NaN.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from focal.losses.checks import (
    LOW_PRECISION,
    ClassVector,
    GammaLike,
    check_alpha,
    check_gamma,
    check_label_smoothing,
    check_reduction,
    check_targets_in_range,
    class_shape,
    class_vector,
    compute_dtype,
    register_class_arguments,
    short_repr,
)
from focal.losses.indexed import LOG_FLSD_THRESHOLD, indexed_focal_sum, logits_focal_sum
from focal.losses import kernels
from focal.losses.kernels import focal_term

__all__ = ["focal_loss", "FocalLoss", "class_balanced_weights"]



def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: GammaLike = 2.0,
    alpha: ClassVector = None,
    weight: ClassVector = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Softmax focal loss :cite:`lin2017focal` with the conventions of :func:`torch.nn.functional.cross_entropy`.

    .. math::

        \mathrm{FL}(p_t) = -\alpha_t \, w_t \, (1 - p_t)^{\gamma} \log p_t,
        \qquad p_t = \mathrm{softmax}(x)_t

    ``gamma=0`` with no ``alpha`` is exactly cross-entropy, in value and gradient, for every ``weight``,
    ``ignore_index``, ``label_smoothing``, ``reduction`` and for soft targets. With soft targets (or label smoothing)
    the loss is :math:`-\sum_c q_c \alpha_c w_c (1 - p_c)^{\gamma} \log p_c`.

    Args:
        input: logits of shape (N, C) or (N, C, d1, ..., dk). Half-precision inputs are computed in float32 and the
            result is returned in the input's dtype.
        target: class indices of shape (N) or (N, d1, ..., dk), or class probabilities of ``input``'s shape.
        gamma: focusing parameter γ ≥ 0 (default 2.0); a float tensor of C per-class values; or ``"flsd53"``
            (:cite:`mukhoti2020calibrating`: γ = 5 where p_t < 0.2, else 3).
        alpha: None or C per-class factors (sequence or tensor) multiplying each element's loss. ``"mean"`` divides
            by the number of kept elements, so α changes the balance between classes, not the loss scale's meaning.
            A scalar is rejected: in the softmax form it would only rescale the loss.
        weight: C per-class weights exactly as in cross_entropy, including its weighted mean
            (:math:`\sum \ell / \sum w_{t}`).
        reduction: ``"none"`` (shape of the target's batch dims), ``"mean"`` (default) or ``"sum"``.
        ignore_index: target value whose elements contribute neither loss nor gradient (index targets only).
        label_smoothing: in [0, 1], as in cross_entropy.

    Returns:
        The loss. If every target is ignored, ``"mean"`` returns 0 connected to the graph (cross_entropy returns nan).

    Index targets with ``"mean"`` or ``"sum"`` (float32/float64) run, for large contiguous logits that need a
    gradient, on the log-softmax and one fused pass over the targets, with a backward that writes the gradient in
    one fused pass; other inputs on cross-entropy's own kernels plus one pass (:mod:`focal.losses.indexed`). Second
    derivatives (``create_graph=True``) are exact, from closed forms, and finite for every γ ≥ 0.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from focal import focal_loss
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
        >>> target = torch.tensor([0, 1])
        >>> focal_loss(logits, target, gamma=2.0)
        tensor(1.3061)
        >>> torch.allclose(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target))
        True
    """
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"input and target must be tensors, got {type(input).__name__} and {type(target).__name__}")
    if input.dim() < 2:
        raise ValueError(
            f"input must have shape (N, C) or (N, C, d1, ..., dk) with the class dimension at dim 1, got a "
            f"{input.dim()}-d tensor of shape {tuple(input.shape)}"
        )
    if not input.is_floating_point():
        raise TypeError(f"input must be floating point logits, got {input.dtype}")
    check_reduction(reduction)
    check_label_smoothing(label_smoothing)
    check_alpha(alpha)
    num_classes = input.size(1)
    check_gamma(gamma, num_classes)
    alpha_v = class_vector(alpha, "alpha", num_classes, input)
    weight_v = class_vector(weight, "weight", num_classes, input)

    soft = target.is_floating_point()
    if soft:
        if target.shape != input.shape:
            raise ValueError(
                f"soft (probability) targets must have input's shape {tuple(input.shape)}, got {tuple(target.shape)}"
            )
    else:
        if target.dtype == torch.bool or target.is_complex():
            raise TypeError(f"target must hold integer class indices or float probabilities, got {target.dtype}")
        expected = input.shape[:1] + input.shape[2:]
        if target.shape != expected:
            raise ValueError(
                f"target of class indices must have shape {tuple(expected)} for input of shape {tuple(input.shape)}, "
                f"got {tuple(target.shape)}"
            )

    class_factor = alpha_v if weight_v is None else (weight_v if alpha_v is None else alpha_v * weight_v)
    if not soft and not label_smoothing and reduction != "none" and input.dtype not in LOW_PRECISION:
        return _reduced_index_target_loss(input, target, gamma, class_factor, weight_v, ignore_index, reduction)

    logp = F.log_softmax(input, dim=1, dtype=compute_dtype(input))

    if soft:
        loss = _soft_target_loss(logp, target, gamma, class_factor, label_smoothing, num_classes)
        denominator = None
    else:
        loss, denominator = _index_target_loss(
            logp, target, gamma, class_factor, weight_v, ignore_index, label_smoothing, num_classes
        )

    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    elif denominator is None:
        out = loss.mean()
    else:
        out = loss.sum() / torch.where(denominator > 0, denominator, 1.0)
    return out.to(input.dtype)


def _reduced_index_target_loss(input, target, gamma, class_factor, weight_v, ignore_index, reduction) -> Tensor:
    """The common training case: the log-softmax and fused passes, or cross-entropy's own kernels (see
    :mod:`focal.losses.indexed`)."""
    target = target.long()
    gamma_vec = gamma.to(input.device, input.dtype) if isinstance(gamma, Tensor) else None
    scalar_gamma = float(gamma) if not isinstance(gamma, (str, Tensor)) else None
    if _one_pass_backward(input, target):  # names a bad target index itself
        total, denominator = logits_focal_sum(input, target, class_factor, weight_v, scalar_gamma, gamma_vec,
                                              ignore_index)
    else:
        try:
            ce = F.cross_entropy(input, target, reduction="none", ignore_index=ignore_index)
        except (IndexError, RuntimeError):  # name the bad index the way the other paths do
            check_targets_in_range(target.masked_fill(target == ignore_index, 0), input.size(1), ignore_index)
            raise
        total, denominator = indexed_focal_sum(ce, target, class_factor, weight_v, scalar_gamma, gamma_vec,
                                               ignore_index)
    if reduction == "sum":
        return total
    return total / torch.where(denominator > 0, denominator, 1.0)


def _one_pass_backward(input: Tensor, target: Tensor) -> bool:
    """Whether the reduced loss takes :func:`~focal.losses.indexed.logits_focal_sum` (a fused one-pass backward):
    contiguous float32/64 logits, (N, C) or (N, C, d1, ...), on the CPU or CUDA, that need a gradient and are large
    enough to be fused (:func:`focal.losses.kernels.fuses`). Others (a channels-last map, say) keep cross-entropy's
    own kernels.
    """
    return input.requires_grad and input.dtype in (torch.float32, torch.float64) and input.is_contiguous() \
        and input.device.type in ("cpu", "cuda") and kernels.fuses(input)


def gamma_for(gamma: GammaLike, logp: Tensor, per_class: Optional[Tensor]) -> Union[float, Tensor]:
    """γ for each element of ``logp`` (per-class γ comes in already gathered or broadcast as ``per_class``)."""
    if isinstance(gamma, str):  # flsd53, chosen from p_t itself; no gradient flows through the choice
        return torch.where(logp < LOG_FLSD_THRESHOLD, 5.0, 3.0)
    if isinstance(gamma, Tensor):
        return per_class
    return float(gamma)


def _index_target_loss(logp, target, gamma, class_factor, weight_v, ignore_index, label_smoothing, num_classes):
    target = target.long()
    ignored = target == ignore_index
    safe_target = target.masked_fill(ignored, 0)
    check_targets_in_range(safe_target, num_classes, ignore_index)
    logp_t = logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    gamma_t = gamma.to(logp.device, logp.dtype)[safe_target] if isinstance(gamma, Tensor) else None
    loss = focal_term(logp_t, gamma_for(gamma, logp_t, gamma_t))
    if class_factor is not None:
        loss = loss * class_factor[safe_target]
    if label_smoothing > 0:
        loss = loss * (1.0 - label_smoothing) + _smoothing_term(logp, gamma, class_factor, label_smoothing, num_classes)
    loss = loss.masked_fill(ignored, 0.0)
    if weight_v is None:
        denominator = (~ignored).sum().to(logp.dtype)
    else:
        denominator = weight_v[safe_target].masked_fill(ignored, 0.0).sum()
    return loss, denominator


def _dense_focal_term(logp: Tensor, gamma: GammaLike) -> Tensor:
    per_class = gamma.to(logp.device, logp.dtype).view(class_shape(logp)) if isinstance(gamma, Tensor) else None
    return focal_term(logp, gamma_for(gamma, logp, per_class))


def _smoothing_term(logp, gamma, class_factor, label_smoothing, num_classes):
    """(ε / C) Σ_c f_c ℓ(log p_c): the uniform part of a label-smoothed target."""
    dense = _dense_focal_term(logp, gamma)
    if class_factor is not None:
        dense = dense * class_factor.view(class_shape(logp))
    return dense.sum(1) * (label_smoothing / num_classes)


def _soft_target_loss(logp, target, gamma, class_factor, label_smoothing, num_classes):
    q = target.to(logp.dtype)
    if label_smoothing > 0:
        q = q * (1.0 - label_smoothing) + label_smoothing / num_classes
    if class_factor is not None:
        q = q * class_factor.view(class_shape(logp))
    return (_dense_focal_term(logp, gamma) * q).sum(1)


class FocalLoss(nn.Module):
    r"""Module form of :func:`focal_loss`; validates and stores its arguments, then forwards to the function.

    .. math::

        \mathrm{FL}(p_t) = -\alpha_t \, w_t \, (1 - p_t)^{\gamma} \log p_t

    ``alpha``, ``weight`` and a per-class ``gamma`` are registered as buffers, so ``.to(device)`` moves them and
    they appear in ``state_dict``.

    Example:
        >>> import torch
        >>> from focal import FocalLoss
        >>> criterion = FocalLoss(gamma=1.0, alpha=[0.25, 0.75])
        >>> criterion
        FocalLoss(gamma=1.0, alpha=[0.25, 0.75], reduction='mean')
        >>> criterion(torch.tensor([[1.0, -1.0]]), torch.tensor([1])).shape
        torch.Size([])
    """

    def __init__(
        self,
        gamma: GammaLike = 2.0,
        alpha: ClassVector = None,
        weight: ClassVector = None,
        reduction: str = "mean",
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        check_reduction(reduction)
        check_label_smoothing(label_smoothing)
        register_class_arguments(self, gamma, alpha, weight)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return focal_loss(
            input,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        parts = [f"gamma={short_repr(self.gamma)}"]
        if self.alpha is not None:
            parts.append(f"alpha={short_repr(self.alpha)}")
        if self.weight is not None:
            parts.append(f"weight={short_repr(self.weight)}")
        parts.append(f"reduction={self.reduction!r}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


def class_balanced_weights(counts: Union[Sequence[int], Tensor], beta: float = 0.9999) -> Tensor:
    r"""Class-balanced weights of :cite:`cui2019classbalanced`, normalised to sum to the number of classes C.

    .. math::

        E_n = \frac{1 - \beta^{n}}{1 - \beta}, \qquad
        w_c = C \, \frac{1 / E_{n_c}}{\sum_k 1 / E_{n_k}}

    Args:
        counts: training examples per class (C positive numbers).
        beta: in [0, 1). β = 0 gives equal weights; β → 1 approaches inverse class frequency.

    Returns:
        float32 tensor of shape (C,) summing to C; use it as ``alpha`` (or ``weight``) of :func:`focal_loss`.

    Example:
        >>> from focal import class_balanced_weights
        >>> class_balanced_weights([5000, 500, 50], beta=0.999)
        tensor([0.1256, 0.3170, 2.5574])
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    n = torch.as_tensor(counts, dtype=torch.float64)
    if n.dim() != 1 or n.numel() == 0:
        raise ValueError(f"counts must be a 1-d sequence with one count per class, got shape {tuple(n.shape)}")
    if not bool((n > 0).all()):
        raise ValueError(f"counts must be positive for every class (a class with no example has no weight), got {n.tolist()}")
    if beta == 0:
        inv_effective = torch.ones_like(n)
    else:  # (1 - β) / (1 - β^n) = 1 / E_n; expm1 keeps the precision for β near 1
        inv_effective = (1.0 - beta) / -torch.expm1(n * math.log(beta))
    weights = inv_effective / inv_effective.sum() * n.numel()
    return weights.to(torch.float32)
