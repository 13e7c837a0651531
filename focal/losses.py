"""Focal loss for PyTorch: softmax and sigmoid forms, stable for every γ ≥ 0.

The softmax focal loss of :cite:`lin2017focal`, written with torch's conventions (those of
:func:`torch.nn.functional.cross_entropy`), and the sigmoid form that :func:`torchvision.ops.sigmoid_focal_loss`
popularised. Both are computed in log space with a closed-form derivative, so the loss and its gradient stay finite
for confident and hopeless logits alike, including 0 < γ < 1 where the naive ``exp(-CE)`` formulation returns NaN.

This module imports nothing from the rest of the project.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from numbers import Real
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = [
    "focal_loss",
    "FocalLoss",
    "sigmoid_focal_loss",
    "SigmoidFocalLoss",
    "class_balanced_weights",
    "set_fused",
]

GammaLike = Union[float, Tensor, str]
ClassVector = Optional[Union[Sequence[float], Tensor]]

_REDUCTIONS = ("none", "mean", "sum")
_GAMMA_SCHEDULES = ("flsd53",)
_LOG_FLSD_THRESHOLD = math.log(0.2)  # Mukhoti et al. 2020: γ = 5 where p_t < 0.2, else 3
_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------------------------------------------
# Elementwise cores with closed-form derivatives
# ----------------------------------------------------------------------------------------------------------------
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


def _focal_term_kernel(logp: Tensor, gamma: Union[float, Tensor]):
    r"""ℓ(l) = -(1 - e^l)^γ · l for log-probabilities l ≤ 0, and dℓ/dl, elementwise.

    dℓ/dl = -(1-p)^γ · (1 - γ · p · l / (1 - p)), where l / (1 - p) → -1 as p → 1: finite for every γ ≥ 0, whereas
    autograd through ``(1-p)**γ`` forms ``(1-p)**(γ-1) · 0``, NaN for γ < 1. Returns ``None`` for the derivative when
    γ = 0 (it is -1 everywhere).
    """
    q = torch.expm1(logp).neg()  # 1 - p without cancellation near p = 1
    mod = _modulating(q, gamma)
    loss = mod * logp.neg()
    if not isinstance(gamma, Tensor) and gamma == 0:
        return loss, None
    ratio = torch.where(q > 0, logp / q, -1.0)  # l / (1 - p), -1 in the limit p -> 1
    return loss, mod * (gamma * ratio * torch.exp(logp) - 1.0)


def _sigmoid_focal_kernel(x: Tensor, t: Tensor, alpha: float, gamma: float):
    r"""ℓ(x, t) = α_t · (1 - p_t)^γ · BCE(x, t) and dℓ/dx, elementwise.

    With s = σ(x), q = 1 - p_t = t + s(1 - 2t) and ce = softplus(x) - t·x:
    dℓ/dx = α_t · q^γ · [(s - t) + γ · ce · s(1-s)(1-2t) / q]. For binary t the ratio s(1-s)(1-2t)/q is ±(1 - q), and
    where q underflows to 0 the whole term does too, so it is set to 0 there.
    """
    s = torch.sigmoid(x)
    ce = F.softplus(x) - t * x
    u = 1.0 - 2.0 * t
    q = t + s * u
    mod = _modulating(q, gamma)
    slope = s - t
    if gamma != 0:
        slope = slope + gamma * ce * torch.where(q > 0, s * (1.0 - s) * u / q, 0.0)
    loss, grad = mod * ce, mod * slope
    if alpha >= 0:
        alpha_t = (1.0 - alpha) + (2.0 * alpha - 1.0) * t  # α·t + (1-α)·(1-t)
        loss, grad = loss * alpha_t, grad * alpha_t
    return loss, grad


# Fused kernels: the pointwise math above compiled by torch.compile into one loop (C++/OpenMP on CPU, Triton on CUDA),
# used for tensors large enough to pay for the call. Falls back to the same functions run as eager ops wherever
# compiling is unavailable or fails, and inside a caller's own torch.compile region (which fuses them anyway).
_FUSED_MIN_NUMEL = 1 << 16
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
    fused = _fused_mode if _fused_mode is not None else x.numel() >= _FUSED_MIN_NUMEL
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
    return tuple(o.view(x.shape) if o is not None else None for o in outs)


class _FocalTerm(torch.autograd.Function):
    """Autograd wrapper of :func:`_focal_term_kernel`: saves the closed-form derivative, backward multiplies."""

    @staticmethod
    def forward(ctx, logp: Tensor, gamma: Union[float, Tensor]) -> Tensor:
        loss, slope = _run_kernel(_focal_term_kernel, logp, gamma)
        ctx.save_for_backward(slope)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (slope,) = ctx.saved_tensors
        return (grad.neg() if slope is None else grad * slope), None


class _SigmoidFocal(torch.autograd.Function):
    """Autograd wrapper of :func:`_sigmoid_focal_kernel`."""

    @staticmethod
    def forward(ctx, x: Tensor, t: Tensor, alpha: float, gamma: float) -> Tensor:
        loss, slope = _run_kernel(_sigmoid_focal_kernel, x, t, alpha, gamma)
        ctx.save_for_backward(slope)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None, None


# ----------------------------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------------------------
def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half, bfloat16 and float32 inputs; float64 stays float64."""
    return torch.float32 if x.dtype in _LOW_PRECISION else x.dtype


def _class_vector(value: ClassVector, name: str, num_classes: int, like: Tensor) -> Optional[Tensor]:
    """Turn a per-class sequence or tensor into a tensor of shape (C,) in the compute dtype on ``like``'s device."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.numel() != num_classes:
            raise ValueError(f"{name} must hold one value per class ({num_classes}), got shape {tuple(value.shape)}")
        if not value.is_floating_point():
            value = value.float()
        return value.to(device=like.device, dtype=_compute_dtype(like))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be None, a sequence or a tensor of {num_classes} floats, got {type(value).__name__}")
    if len(value) != num_classes:
        raise ValueError(f"{name} must hold one value per class ({num_classes}), got {len(value)} values")
    return torch.tensor([float(v) for v in value], dtype=_compute_dtype(like), device=like.device)


def _check_alpha(alpha: ClassVector) -> None:
    if alpha is None:
        return
    if isinstance(alpha, (Real, bool)) or (isinstance(alpha, Tensor) and alpha.dim() == 0):
        raise ValueError(
            "alpha must be None or one factor per class. A single alpha in softmax focal loss multiplies every "
            "element by the same number, so it only rescales the loss (and the learning rate); it does not balance "
            "classes as the sigmoid form's alpha does. Pass e.g. alpha=[a_0, ..., a_{C-1}] or "
            "focal.class_balanced_weights(counts)."
        )


def _check_gamma(gamma: GammaLike, num_classes: Optional[int]) -> None:
    if isinstance(gamma, str):
        if gamma not in _GAMMA_SCHEDULES:
            raise ValueError(f"gamma must be a float >= 0, a tensor of per-class values or one of {_GAMMA_SCHEDULES}, got {gamma!r}")
        return
    if isinstance(gamma, Tensor):
        if num_classes is None or gamma.dim() != 1 or gamma.numel() != num_classes:
            expected = f"({num_classes},)" if num_classes is not None else "a 0-d float"
            raise ValueError(f"gamma as a tensor must hold one value per class, shape {expected}; got {tuple(gamma.shape)}")
        if not gamma.is_floating_point():
            raise TypeError(f"gamma tensor must be floating point, got {gamma.dtype}")
        if gamma.device.type == "cpu" and not torch.compiler.is_compiling() and bool((gamma < 0).any() | gamma.isnan().any()):
            raise ValueError(f"gamma must be >= 0 for every class, got {gamma.tolist()}")
        return
    if isinstance(gamma, bool) or not isinstance(gamma, Real):
        raise TypeError(f"gamma must be a float >= 0, a tensor or {_GAMMA_SCHEDULES}, got {type(gamma).__name__}")
    if not gamma >= 0 or math.isinf(gamma):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma}")


def _check_label_smoothing(label_smoothing: float) -> None:
    if not isinstance(label_smoothing, Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}")


def _check_targets_in_range(safe_target: Tensor, num_classes: int, ignore_index: int) -> None:
    """Raise IndexError naming the first bad class index (CPU only: on CUDA this would synchronise).

    ``safe_target`` already has ignored elements replaced by 0.
    """
    if safe_target.device.type != "cpu" or safe_target.numel() == 0 or torch.compiler.is_compiling():
        return
    low, high = torch.aminmax(safe_target)
    if low < 0 or high >= num_classes:
        value = int(safe_target[(safe_target < 0) | (safe_target >= num_classes)][0])
        raise IndexError(
            f"target holds class index {value}, expected values in [0, {num_classes - 1}] or ignore_index={ignore_index}"
        )


def _class_shape(logits: Tensor) -> tuple:
    """Shape that broadcasts a (C,) vector along dim 1 of logits."""
    return (1, -1) + (1,) * (logits.dim() - 2)


# ----------------------------------------------------------------------------------------------------------------
# Softmax focal loss
# ----------------------------------------------------------------------------------------------------------------
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
    _check_reduction(reduction)
    _check_label_smoothing(label_smoothing)
    _check_alpha(alpha)
    num_classes = input.size(1)
    _check_gamma(gamma, num_classes)
    alpha_v = _class_vector(alpha, "alpha", num_classes, input)
    weight_v = _class_vector(weight, "weight", num_classes, input)

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

    logp = F.log_softmax(input, dim=1, dtype=_compute_dtype(input))
    class_factor = alpha_v if weight_v is None else (weight_v if alpha_v is None else alpha_v * weight_v)

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


def _gamma_for(gamma: GammaLike, logp: Tensor, per_class: Optional[Tensor]) -> Union[float, Tensor]:
    """γ for each element of ``logp`` (per-class γ comes in already gathered or broadcast as ``per_class``)."""
    if isinstance(gamma, str):  # flsd53, chosen from p_t itself; no gradient flows through the choice
        return torch.where(logp < _LOG_FLSD_THRESHOLD, 5.0, 3.0)
    if isinstance(gamma, Tensor):
        return per_class
    return float(gamma)


def _index_target_loss(logp, target, gamma, class_factor, weight_v, ignore_index, label_smoothing, num_classes):
    target = target.long()
    ignored = target == ignore_index
    safe_target = target.masked_fill(ignored, 0)
    _check_targets_in_range(safe_target, num_classes, ignore_index)
    logp_t = logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    gamma_t = gamma.to(logp.device, logp.dtype)[safe_target] if isinstance(gamma, Tensor) else None
    loss = _FocalTerm.apply(logp_t, _gamma_for(gamma, logp_t, gamma_t))
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
    per_class = gamma.to(logp.device, logp.dtype).view(_class_shape(logp)) if isinstance(gamma, Tensor) else None
    return _FocalTerm.apply(logp, _gamma_for(gamma, logp, per_class))


def _smoothing_term(logp, gamma, class_factor, label_smoothing, num_classes):
    """(ε / C) Σ_c f_c ℓ(log p_c): the uniform part of a label-smoothed target."""
    dense = _dense_focal_term(logp, gamma)
    if class_factor is not None:
        dense = dense * class_factor.view(_class_shape(logp))
    return dense.sum(1) * (label_smoothing / num_classes)


def _soft_target_loss(logp, target, gamma, class_factor, label_smoothing, num_classes):
    q = target.to(logp.dtype)
    if label_smoothing > 0:
        q = q * (1.0 - label_smoothing) + label_smoothing / num_classes
    if class_factor is not None:
        q = q * class_factor.view(_class_shape(logp))
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
        _check_reduction(reduction)
        _check_label_smoothing(label_smoothing)
        _check_alpha(alpha)
        gamma_classes = gamma.numel() if isinstance(gamma, Tensor) and gamma.dim() == 1 else None
        _check_gamma(gamma, gamma_classes)
        self.register_buffer("alpha", _as_buffer(alpha, "alpha"))
        self.register_buffer("weight", _as_buffer(weight, "weight"))
        if isinstance(gamma, Tensor):
            self.register_buffer("gamma", gamma.detach().clone().float())
        else:
            self.gamma = gamma if isinstance(gamma, str) else float(gamma)
        for name, vec in (("alpha", self.alpha), ("weight", self.weight)):
            other = self.gamma if isinstance(self.gamma, Tensor) else None
            if vec is not None and other is not None and vec.numel() != other.numel():
                raise ValueError(f"{name} has {vec.numel()} classes but gamma has {other.numel()}")
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
        parts = [f"gamma={_short(self.gamma)}"]
        if self.alpha is not None:
            parts.append(f"alpha={_short(self.alpha)}")
        if self.weight is not None:
            parts.append(f"weight={_short(self.weight)}")
        parts.append(f"reduction={self.reduction!r}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


def _as_buffer(value: ClassVector, name: str) -> Optional[Tensor]:
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.dim() != 1:
            raise ValueError(f"{name} must be a 1-d tensor with one value per class, got shape {tuple(value.shape)}")
        return value.detach().clone().float()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be None, a sequence or a tensor of per-class floats, got {type(value).__name__}")
    return torch.tensor([float(v) for v in value], dtype=torch.float32)


def _short(value) -> str:
    if isinstance(value, Tensor):
        values = [round(v, 4) for v in value.tolist()]
        return str(values) if len(values) <= 6 else f"[{', '.join(map(str, values[:3]))}, ..., {values[-1]}] ({len(values)} classes)"
    return repr(value)


# ----------------------------------------------------------------------------------------------------------------
# Sigmoid focal loss
# ----------------------------------------------------------------------------------------------------------------
def sigmoid_focal_loss(
    input: Tensor,
    target: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    weight: Optional[Tensor] = None,
) -> Tensor:
    r"""Sigmoid focal loss :cite:`lin2017focal`, a drop-in for :func:`torchvision.ops.sigmoid_focal_loss`.

    .. math::

        \mathrm{FL}(x, t) = -\alpha_t (1 - p_t)^{\gamma} \log p_t, \quad
        p_t = t\,\sigma(x) + (1 - t)(1 - \sigma(x)), \quad \alpha_t = t\,\alpha + (1 - t)(1 - \alpha)

    Same arguments, defaults and values as torchvision's, computed in one pass with a closed-form backward: the
    gradient is finite for every γ ≥ 0 at any logit.

    Args:
        input: logits of any shape.
        target: binary (0/1) or soft labels in [0, 1] of ``input``'s shape.
        alpha: weight of the positive class in [0, 1]; a negative value turns α off (default 0.25).
        gamma: focusing parameter γ ≥ 0 (default 2.0).
        reduction: ``"none"`` (default, as torchvision), ``"mean"`` or ``"sum"``.
        weight: optional elementwise weight broadcastable to ``input`` (for example a per-class vector).

    Example:
        >>> import torch
        >>> from focal import sigmoid_focal_loss
        >>> logits = torch.tensor([[3.0, -2.0], [-1.0, 0.5]])
        >>> labels = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> sigmoid_focal_loss(logits, labels, reduction="sum")
        tensor(0.4599)
    """
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"input and target must be tensors, got {type(input).__name__} and {type(target).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be floating point logits, got {input.dtype}")
    if target.shape != input.shape:
        raise ValueError(f"target must have input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    _check_reduction(reduction)
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha > 1 or math.isnan(alpha):
        raise ValueError(f"alpha must be a float in [0, 1] (or negative to turn it off), got {alpha!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0 or math.isinf(gamma):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}")
    if weight is not None and not isinstance(weight, Tensor):
        raise TypeError(f"weight must be None or a tensor broadcastable to input, got {type(weight).__name__}")

    x = input.float() if input.dtype in _LOW_PRECISION else input
    t = target.to(x.dtype)
    loss = _SigmoidFocal.apply(x, t, float(alpha), float(gamma))
    if weight is not None:
        try:
            loss = loss * weight.to(loss.dtype)
        except RuntimeError as err:
            raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to input {tuple(input.shape)}") from err
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(input.dtype)


class SigmoidFocalLoss(nn.Module):
    r"""Module form of :func:`sigmoid_focal_loss`.

    .. math::

        \mathrm{FL}(x, t) = -\alpha_t (1 - p_t)^{\gamma} \log p_t

    Example:
        >>> import torch
        >>> from focal import SigmoidFocalLoss
        >>> criterion = SigmoidFocalLoss(alpha=0.25, gamma=2.0, reduction="mean")
        >>> criterion
        SigmoidFocalLoss(alpha=0.25, gamma=2.0, reduction='mean')
        >>> criterion(torch.zeros(2, 3), torch.ones(2, 3))
        tensor(0.0433)
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "none",
                 weight: Optional[Tensor] = None) -> None:
        super().__init__()
        _check_reduction(reduction)
        if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha > 1:
            raise ValueError(f"alpha must be a float in [0, 1] (or negative to turn it off), got {alpha!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0 or math.isinf(gamma):
            raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return sigmoid_focal_loss(input, target, self.alpha, self.gamma, self.reduction, self.weight)

    def extra_repr(self) -> str:
        extra = ", weight=..." if self.weight is not None else ""
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}{extra}"


# ----------------------------------------------------------------------------------------------------------------
# Class-balanced weights
# ----------------------------------------------------------------------------------------------------------------
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
