"""focal: focal loss for PyTorch, and the engine behind an executable book on long-tailed learning.

The loss functions are importable from the top level::

    from focal import focal_loss, FocalLoss, sigmoid_focal_loss, SigmoidFocalLoss, class_balanced_weights

The experiment engine lives in submodules (``focal.data``, ``focal.models``, ``focal.train``, ``focal.metrics``,
``focal.plots``), imported on demand so that ``import focal`` stays light.
"""
from focal.losses import (
    FocalLoss,
    SigmoidFocalLoss,
    class_balanced_weights,
    focal_loss,
    set_fused,
    sigmoid_focal_loss,
)

__all__ = ["focal_loss", "FocalLoss", "sigmoid_focal_loss", "SigmoidFocalLoss", "class_balanced_weights", "set_fused"]
__version__ = "0.1.0"
