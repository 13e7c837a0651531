"""Sigmoid focal loss: a drop-in for torchvision's, one fused pass with a closed-form backward."""
from __future__ import annotations

import math
from numbers import Real
from typing import Optional

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
    check_reduction(reduction)
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha > 1 or math.isnan(alpha):
        raise ValueError(f"alpha must be a float in [0, 1] (or negative to turn it off), got {alpha!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0 or math.isinf(gamma):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma!r}")
    if weight is not None and not isinstance(weight, Tensor):
        raise TypeError(f"weight must be None or a tensor broadcastable to input, got {type(weight).__name__}")

    x = input.float() if input.dtype in LOW_PRECISION else input
    t = target.to(x.dtype)
    if weight is None and reduction != "none" and x.numel() > 0:  # reduce inside the kernel's loop
        scale = 1.0 / x.numel() if reduction == "mean" else 1.0
        return sigmoid_focal_term(x, t, float(alpha), float(gamma), scale).to(input.dtype)
    loss = sigmoid_focal_term(x, t, float(alpha), float(gamma), None)
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
        check_reduction(reduction)
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
