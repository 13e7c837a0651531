"""focal: focal loss for PyTorch, and the engine behind an executable book on long-tailed learning.

The loss functions are importable from the top level, and ``import focal`` loads nothing but torch::

    from focal import focal_loss, FocalLoss, sigmoid_focal_loss, SigmoidFocalLoss, class_balanced_weights

The package is three layers; imports run one way (book -> engine -> losses):

- **the losses** (:mod:`focal.losses`): :mod:`focal.losses.softmax`, :mod:`focal.losses.sigmoid`,
  :mod:`focal.losses.kernels`, :mod:`focal.losses.checks`.
- **the engine** (:mod:`focal.engine`): :mod:`focal.engine.config` (``Config``, the single source of run
  settings), :mod:`focal.engine.data` (:mod:`focal.engine.data.sources`, :mod:`focal.engine.data.cifar`,
  :mod:`focal.engine.data.fashion_mnist`, :mod:`focal.engine.data.longtail`, :mod:`focal.engine.data.loader`),
  :mod:`focal.engine.models`, :mod:`focal.engine.metrics` (:mod:`focal.engine.metrics.classification`,
  :mod:`focal.engine.metrics.calibration`, :mod:`focal.engine.metrics.inputs`), :mod:`focal.engine.train`,
  :mod:`focal.engine.grid`, :mod:`focal.engine.runs`, :mod:`focal.engine.files`, :mod:`focal.engine.system`,
  :mod:`focal.engine.checks` and :mod:`focal.engine.cli` (``python -m focal train|grid``, via ``focal.__main__``).
- **the book** (:mod:`focal.book`): :mod:`focal.book.profiles`, :mod:`focal.book.labels`, :mod:`focal.book.results`,
  :mod:`focal.book.stats`, :mod:`focal.book.comparisons`, :mod:`focal.book.claims`, :mod:`focal.book.published`,
  :mod:`focal.book.bench`, :mod:`focal.book.plots` (:mod:`focal.book.plots.style`, :mod:`focal.book.plots.loss`,
  :mod:`focal.book.plots.training`, :mod:`focal.book.plots.compare`), :mod:`focal.book.build`,
  :mod:`focal.book.check` and :mod:`focal.book.cli` (``python -m focal.book build|execute|check``, via
  ``focal.book.__main__``).
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
