"""The loss library: focal loss for PyTorch, softmax and sigmoid, stable for every γ ≥ 0.

This layer imports nothing but torch and nothing else of ``focal``; it is the part worth ``pip install``-ing.

- :mod:`focal.losses.softmax` — :func:`focal_loss`, :class:`FocalLoss`, :func:`class_balanced_weights`
- :mod:`focal.losses.sigmoid` — :func:`sigmoid_focal_loss`, :class:`SigmoidFocalLoss` (a drop-in for torchvision's)
- :mod:`focal.losses.linear` — :func:`linear_focal_loss`, :class:`LinearFocalLoss` (no N×C logits for many classes)
- :mod:`focal.losses.indexed` — the reduced loss of class-index targets, with a one-pass fused backward (what
  :func:`focal_loss` runs for ``reduction="mean"`` or ``"sum"``)
- :mod:`focal.losses.kernels` — the elementwise kernels with closed-form derivatives; :func:`set_fused`
- :mod:`focal.losses.checks` — the argument checks both forms share
"""
from focal.losses.kernels import set_fused
from focal.losses.linear import LinearFocalLoss, linear_focal_loss
from focal.losses.sigmoid import SigmoidFocalLoss, sigmoid_focal_loss
from focal.losses.softmax import FocalLoss, class_balanced_weights, focal_loss

__all__ = ["focal_loss", "FocalLoss", "sigmoid_focal_loss", "SigmoidFocalLoss", "class_balanced_weights", "set_fused",
           "linear_focal_loss", "LinearFocalLoss"]
