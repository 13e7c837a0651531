"""Argument checks shared by the focal losses: every bad argument gets an error that names it."""
from __future__ import annotations

import math
from numbers import Real
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

GammaLike = Union[float, Tensor, str]
ClassVector = Optional[Union[Sequence[float], Tensor]]

REDUCTIONS = ("none", "mean", "sum")
GAMMA_SCHEDULES = ("flsd53",)
LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for half, bfloat16 and float32 inputs; float64 stays float64."""
    return torch.float32 if x.dtype in LOW_PRECISION else x.dtype


def per_class(value: Union[Sequence[float], Tensor], name: str) -> Tensor:
    """A per-class sequence or tensor as a 1-d floating tensor (not copied when it already is one)."""
    if isinstance(value, Tensor):
        if value.dim() != 1:
            raise ValueError(f"{name} must be a 1-d tensor with one value per class, got shape {tuple(value.shape)}")
        return value if value.is_floating_point() else value.float()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be None, a sequence or a tensor of per-class floats, got {type(value).__name__}")
    return torch.tensor([float(v) for v in value], dtype=torch.float32)


def class_vector(value: ClassVector, name: str, num_classes: int, like: Tensor) -> Optional[Tensor]:
    """Turn a per-class sequence or tensor into a tensor of shape (C,) in the compute dtype on ``like``'s device."""
    if value is None:
        return None
    vector = per_class(value, name)
    if vector.numel() != num_classes:
        raise ValueError(f"{name} must hold one value per class ({num_classes}), got {vector.numel()} values")
    return vector.to(device=like.device, dtype=compute_dtype(like))


def check_alpha(alpha: ClassVector) -> None:
    if alpha is None:
        return
    if isinstance(alpha, (Real, bool)) or (isinstance(alpha, Tensor) and alpha.dim() == 0):
        raise ValueError(
            "alpha must be None or one factor per class. A single alpha in softmax focal loss multiplies every "
            "element by the same number, so it only rescales the loss (and the learning rate); it does not balance "
            "classes as the sigmoid form's alpha does. Pass e.g. alpha=[a_0, ..., a_{C-1}] or "
            "focal.class_balanced_weights(counts)."
        )


def check_gamma(gamma: GammaLike, num_classes: Optional[int]) -> None:
    if isinstance(gamma, str):
        if gamma not in GAMMA_SCHEDULES:
            raise ValueError(f"gamma must be a float >= 0, a tensor of per-class values or one of {GAMMA_SCHEDULES}, got {gamma!r}")
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
        raise TypeError(f"gamma must be a float >= 0, a tensor or {GAMMA_SCHEDULES}, got {type(gamma).__name__}")
    if not gamma >= 0 or math.isinf(gamma):
        raise ValueError(f"gamma must be a finite float >= 0, got {gamma}")


def check_label_smoothing(label_smoothing: float) -> None:
    if not isinstance(label_smoothing, Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}")


def check_targets_in_range(safe_target: Tensor, num_classes: int, ignore_index: int) -> None:
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


def class_shape(logits: Tensor) -> tuple:
    """Shape that broadcasts a (C,) vector along dim 1 of logits."""
    return (1, -1) + (1,) * (logits.dim() - 2)


def as_buffer(value: ClassVector, name: str) -> Optional[Tensor]:
    """A per-class argument as a float32 tensor the Module owns (a copy, so later edits of the caller's don't leak)."""
    return None if value is None else per_class(value, name).detach().clone().float()


def register_class_arguments(module: torch.nn.Module, gamma: GammaLike, alpha: ClassVector, weight: ClassVector,
                             num_classes: Optional[int] = None) -> None:
    """Check γ, α and weight of a loss Module and keep them on it: α and weight (and a per-class γ) as float32
    buffers, which follow ``.to()`` and the state dict; a float or named γ as a plain attribute.

    ``num_classes`` (when the Module knows it) is what every per-class argument must match; without it a per-class γ
    sets the count for α and weight.
    """
    check_alpha(alpha)
    if num_classes is None and isinstance(gamma, Tensor) and gamma.dim() == 1:
        num_classes = gamma.numel()
    check_gamma(gamma, num_classes)
    for name, value in (("alpha", alpha), ("weight", weight)):
        vector = as_buffer(value, name)
        if vector is not None and num_classes is not None and vector.numel() != num_classes:
            raise ValueError(f"{name} must hold one value per class ({num_classes}), got {vector.numel()} values")
        module.register_buffer(name, vector)
    if isinstance(gamma, Tensor):
        module.register_buffer("gamma", gamma.detach().clone().float())
    else:
        module.gamma = gamma if isinstance(gamma, str) else float(gamma)


def short_repr(value) -> str:
    if isinstance(value, Tensor):
        values = [round(v, 4) for v in value.tolist()]
        return str(values) if len(values) <= 6 else f"[{', '.join(map(str, values[:3]))}, ..., {values[-1]}] ({len(values)} classes)"
    return repr(value)
