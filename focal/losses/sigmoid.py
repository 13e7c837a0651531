"""Sigmoid focal loss: a drop-in for torchvision's, one fused pass with a closed-form backward."""
from __future__ import annotations

import math
from numbers import Real
from typing import Optional, Union

import torch
from torch import Tensor, nn

from focal.losses.checks import LOW_PRECISION, check_reduction
from focal.losses.kernels import sigmoid_focal_term

__all__ = ["sigmoid_focal_loss", "SigmoidFocalLoss"]


def sigmoid_focal_loss(
    input: Tensor,
    target: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    weight: Optional[Tensor] = None,
    normalizer: Union[float, Tensor, None] = None,
) -> Tensor:
    r"""Sigmoid focal loss :cite:`lin2017focal`, a drop-in for :func:`torchvision.ops.sigmoid_focal_loss`.

    .. math::

        \mathrm{FL}(x, t) = -\alpha_t (1 - p_t)^{\gamma} \log p_t, \quad
        p_t = t\,\sigma(x) + (1 - t)(1 - \sigma(x)), \quad \alpha_t = t\,\alpha + (1 - t)(1 - \alpha)

    Same arguments, defaults and values as torchvision's, computed in one pass with a closed-form backward: the
    gradient is finite for every γ ≥ 0 at any logit. The cross-entropy inside is formed exactly as
    :func:`torch.nn.functional.binary_cross_entropy_with_logits` forms it, so γ = 0 with ``alpha=-1`` gives BCE's
    values (bit for bit on the CPU, eager and fused) and the focal loss does not exceed BCE elementwise; 1 - p_t is
    formed without cancellation, so confident positives keep (1 - p_t)^γ where torchvision's 1 - σ(x) rounds to 0.
    Double backward (``create_graph=True``, e.g. Hessian-vector products) is supported with a closed-form second
    derivative, for every option.

    ``normalizer`` divides the summed loss by a count of your choosing instead of the number of elements: RetinaNet
    divides by the number of positive anchors (mmdetection's ``avg_factor``, Detectron's normaliser). With
    :math:`n` = ``normalizer``:

    ==============  ==========================  ==================================
    ``reduction``   ``normalizer=None``         ``normalizer=n``
    ==============  ==========================  ==================================
    ``"none"``      :math:`\ell`                :math:`\ell / \max(n, 1)` (so its sum is the normalised sum)
    ``"mean"``      :math:`\sum \ell / N`       :math:`\sum \ell / \max(n, 1)` (n replaces the count N)
    ``"sum"``       :math:`\sum \ell`           ``ValueError``: use ``"mean"`` with a normalizer
    ==============  ==========================  ==================================

    (ℓ includes ``weight``.) A tensor normalizer stays on its device and is never read back to the host, so there is no
    synchronisation on CUDA; for the same reason its value is not checked: a negative one counts as 1 and NaN gives NaN.
    It is a constant of the loss: one that requires grad is detached (it stands for a count, which has no gradient).

    Args:
        input: logits of any shape.
        target: binary (0/1) or soft labels in [0, 1] of ``input``'s shape.
        alpha: weight of the positive class in [0, 1]; a negative value turns α off (default 0.25).
        gamma: focusing parameter γ ≥ 0 (default 2.0).
        reduction: ``"none"`` (default, as torchvision), ``"mean"`` or ``"sum"``.
        weight: optional elementwise weight broadcastable to ``input`` (for example a per-class vector).
        normalizer: None (default), a number ≥ 0 or a 0-d integer or floating tensor; clamped to at least 1 (see the
            table above).

    Returns:
        The loss in ``input``'s dtype: of ``input``'s shape for ``"none"``, else a scalar.

    Example:
        >>> import torch
        >>> from focal import sigmoid_focal_loss
        >>> logits = torch.tensor([[3.0, -2.0], [-1.0, 0.5]])
        >>> labels = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> sigmoid_focal_loss(logits, labels, reduction="sum")
        tensor(0.4599)
        >>> num_positives = labels.sum()  # RetinaNet: the summed loss over the number of positive anchors
        >>> sigmoid_focal_loss(logits, labels, reduction="mean", normalizer=num_positives)
        tensor(0.2300)
    """
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"input and target must be tensors, got {type(input).__name__} and {type(target).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"input must be floating point logits, got {input.dtype}")
    if target.shape != input.shape:
        raise ValueError(f"target must have input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    check_reduction(reduction)
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha > 1 or math.isnan(alpha):
        raise ValueError(f"alpha must be a float in [0, 1] (or negative to turn it off), got {alpha!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0 or math.isinf(gamma):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}")
    if weight is not None and not isinstance(weight, Tensor):
        raise TypeError(f"weight must be None or a tensor broadcastable to input, got {type(weight).__name__}")

    x = input.float() if input.dtype in LOW_PRECISION else input
    t = target.to(x.dtype)
    divisor = _divisor(normalizer, reduction, x.dtype)  # None, or max(normalizer, 1): a float or a 0-d tensor
    if weight is None and reduction != "none" and x.numel() > 0:  # reduce inside the kernel's loop
        if divisor is None:
            scale = 1.0 / x.numel() if reduction == "mean" else 1.0
        else:  # the kernel's scale is a number: a float divides inside the loop, a tensor after it
            scale = 1.0 / divisor if isinstance(divisor, float) else 1.0
        loss = sigmoid_focal_term(x, t, float(alpha), float(gamma), scale)
        return (loss / divisor if isinstance(divisor, Tensor) else loss).to(input.dtype)
    loss = sigmoid_focal_term(x, t, float(alpha), float(gamma), None)
    if weight is not None:
        try:
            loss = loss * weight.to(loss.dtype)
        except RuntimeError as err:
            raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to input {tuple(input.shape)}") from err
    if divisor is not None:
        return ((loss.sum() if reduction == "mean" else loss) / divisor).to(input.dtype)
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(input.dtype)


def _divisor(normalizer: Union[float, Tensor, None], reduction: str, dtype: torch.dtype) -> Union[float, Tensor, None]:
    """max(normalizer, 1) after checking it; a tensor becomes ``dtype`` on its own device, detached, never read back
    to the host."""
    if normalizer is None:
        return None
    if reduction == "sum":
        raise ValueError(
            'normalizer divides the summed loss, which is reduction="mean" with a normalizer (as mmdetection\'s '
            'avg_factor); reduction="sum" with a normalizer is ambiguous: pass reduction="mean" (or "none")'
        )
    if isinstance(normalizer, Tensor):
        if normalizer.dim() != 0:
            shape = tuple(normalizer.shape)
            raise ValueError(f"normalizer must be a number or a 0-d tensor, got a tensor of shape {shape}")
        if normalizer.dtype == torch.bool or normalizer.is_complex():
            raise TypeError(f"normalizer tensor must hold an integer or floating count, got {normalizer.dtype}")
        return normalizer.detach().to(dtype).clamp_min(1.0)
    if isinstance(normalizer, bool) or not isinstance(normalizer, Real):
        raise TypeError(f"normalizer must be None, a number or a 0-d tensor, got {type(normalizer).__name__}")
    if not 0 <= normalizer < math.inf:  # False for NaN
        raise ValueError(f"normalizer must be a finite number >= 0 (a count, e.g. of positives), got {normalizer!r}")
    return max(float(normalizer), 1.0)


class SigmoidFocalLoss(nn.Module):
    r"""Module form of :func:`sigmoid_focal_loss`; ``forward(input, target, normalizer=None)`` takes the per-batch
    ``normalizer`` (e.g. the number of positive anchors) as the function does.

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
        >>> criterion(torch.zeros(2, 3), torch.ones(2, 3), normalizer=torch.tensor(6))
        tensor(0.0433)
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "none",
                 weight: Optional[Tensor] = None) -> None:
        super().__init__()
        check_reduction(reduction)
        if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha > 1:
            raise ValueError(f"alpha must be a float in [0, 1] (or negative to turn it off), got {alpha!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0 or math.isinf(gamma):
            raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}")
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, input: Tensor, target: Tensor, normalizer: Union[float, Tensor, None] = None) -> Tensor:
        """The loss of ``input`` against ``target``; ``normalizer`` as in :func:`sigmoid_focal_loss`."""
        return sigmoid_focal_loss(input, target, self.alpha, self.gamma, self.reduction, self.weight, normalizer)

    def extra_repr(self) -> str:
        extra = ", weight=..." if self.weight is not None else ""
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}{extra}"
