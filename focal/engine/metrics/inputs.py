"""Input checks shared by :mod:`focal.engine.metrics`: the one place that converts and validates metric inputs.

:mod:`~focal.engine.metrics.classification` and :mod:`~focal.engine.metrics.calibration` both call these, so
every metric accepts the same inputs and fails with the same messages: torch tensors (any device; detached) or
numpy arrays in, CPU float64 (scores) or int64 (labels) tensors out, and a ``TypeError`` or ``ValueError`` that
names the offending argument otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "check_range", "scores_and_labels", "probs_and_labels", "check_n_bins"]


def as_tensor(x: Any, name: str, ndim: int, *, integer: bool = False) -> torch.Tensor:
    """Converts ``x`` to a CPU float64 (or int64 if ``integer``) tensor with ``ndim`` dimensions, or raises.

    Float input must be finite; integer input must have an integer dtype (not bool, not float). ``name`` is the
    argument named in the error message.

    Example:
        >>> as_tensor([[1, 2]], "logits", 2).dtype, as_tensor([0, 1], "labels", 1, integer=True).dtype
        (torch.float64, torch.int64)
    """
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}") from err
    if t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if integer:
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise TypeError(f"{name} must hold integer class indices, got dtype {t.dtype}")
        return t.long()
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be real-valued, got dtype {t.dtype}")
    t = t.double()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def check_range(t: torch.Tensor, name: str, num_classes: int) -> None:
    """Raises ``ValueError`` unless every class index in ``t`` lies in ``[0, num_classes - 1]``."""
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}] for {num_classes} classes, "
                         f"got values in [{int(t.min())}, {int(t.max())}]")


def scores_and_labels(scores: Any, labels: Any, name: str = "logits") -> tuple[torch.Tensor, torch.Tensor]:
    """Checks ``(N, C)`` scores (named ``name``) against ``(N,)`` labels; returns them as float64 and int64.

    Requires N >= 1 and every label in ``[0, C - 1]``.
    """
    s = as_tensor(scores, name, 2)
    y = as_tensor(labels, "labels", 1, integer=True)
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"{name} has {s.shape[0]} rows but labels has {y.shape[0]} entries")
    if s.shape[0] == 0:
        raise ValueError(f"{name} and labels must hold at least one sample")
    check_range(y, "labels", s.shape[1])
    return s, y


def probs_and_labels(probs: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`scores_and_labels` for probabilities: also requires values in [0, 1] and rows summing to 1.

    Rows may be off by up to 1e-2, which tolerates half-precision softmax output yet still catches logits.
    """
    p, y = scores_and_labels(probs, labels, "probs")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probs must lie in [0, 1]; pass softmax probabilities, not logits")
    if ((p.sum(1) - 1).abs() > 1e-2).any():
        raise ValueError("each row of probs must sum to 1; pass softmax probabilities, not logits")
    return p, y


def check_n_bins(n_bins: Any) -> int:
    """Returns ``n_bins`` as an int, raising unless it is an integer (not a bool) >= 1."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins must be an int, got {type(n_bins).__name__}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    return int(n_bins)
