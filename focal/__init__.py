"""focal: focal loss for PyTorch, and the engine behind an executable book on long-tailed learning.

The loss functions are importable from the top level, and ``import focal`` loads nothing but torch::

    from focal import focal_loss, FocalLoss, sigmoid_focal_loss, SigmoidFocalLoss, class_balanced_weights

The package is three layers; imports run one way (book -> engine -> losses):

- **the losses** (:mod:`focal.losses`): :mod:`focal.losses.softmax`, :mod:`focal.losses.sigmoid`,
  :mod:`focal.losses.linear`, :mod:`focal.losses.indexed`, :mod:`focal.losses.kernels`, :mod:`focal.losses.checks`.
- **the engine** (:mod:`focal.engine`): :mod:`focal.engine.config` (``Config``, the single source of run
  settings), :mod:`focal.engine.data` (:mod:`focal.engine.data.sources`, :mod:`focal.engine.data.cifar`,
  :mod:`focal.engine.data.fashion_mnist`, :mod:`focal.engine.data.longtail`, :mod:`focal.engine.data.loader`),
  :mod:`focal.engine.models`, :mod:`focal.engine.metrics` (:mod:`focal.engine.metrics.classification`,
  :mod:`focal.engine.metrics.calibration`, :mod:`focal.engine.metrics.inputs`), :mod:`focal.engine.train`, :mod:`focal.engine.step`,
  :mod:`focal.engine.grid`, :mod:`focal.engine.runs`, :mod:`focal.engine.files`, :mod:`focal.engine.system`,
  :mod:`focal.engine.checks` and :mod:`focal.engine.cli` (``python -m focal train|grid``, via ``focal.__main__``).
- **the book** (:mod:`focal.book`): :mod:`focal.book.profiles`, :mod:`focal.book.labels`, :mod:`focal.book.results`,
  :mod:`focal.book.stats`, :mod:`focal.book.comparisons`, :mod:`focal.book.claims`, :mod:`focal.book.published`,
  :mod:`focal.book.bench`, :mod:`focal.book.plots` (:mod:`focal.book.plots.style`, :mod:`focal.book.plots.loss`,
  :mod:`focal.book.plots.bench`, :mod:`focal.book.plots.training`, :mod:`focal.book.plots.compare`), :mod:`focal.book.build`,
  :mod:`focal.book.site`, :mod:`focal.book.lab`, :mod:`focal.book.check` and :mod:`focal.book.cli`
  (``python -m focal.book build|execute|check|lab``, via ``focal.book.__main__``).

``pip install focal`` brings torch and numpy, enough for the losses; the engine and the book need extras
(``focal[engine]``, ``focal[notebooks]``, ``focal[book]``), and using one without its extra raises
:class:`MissingExtra`, whose message is one line naming the extra to install.
"""
import importlib.util
import sys
from typing import Iterable

from focal.losses import (
    FocalLoss,
    LinearFocalLoss,
    SigmoidFocalLoss,
    class_balanced_weights,
    focal_loss,
    linear_focal_loss,
    set_fused,
    sigmoid_focal_loss,
)

__all__ = ["focal_loss", "FocalLoss", "sigmoid_focal_loss", "SigmoidFocalLoss", "class_balanced_weights", "set_fused",
           "linear_focal_loss", "LinearFocalLoss"]
__version__ = "0.1.0"


class MissingExtra(ModuleNotFoundError):
    """A part of focal was used without the extra that installs its dependencies; the message is one line."""


def require_extra(part: str, extra: str, modules: Iterable[str]) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` if any of ``modules`` cannot be imported (without importing them).

    The error's ``name`` is the first missing module. While ``python -m focal…`` is still locating its module (a
    package ``__init__`` checking its extra), it exits instead with the one line and status 1: there is no caller
    to print it without a traceback.

    >>> require_extra("focal.example", "example", ["sys", "no_such_module_x"])
    Traceback (most recent call last):
    focal.MissingExtra: focal.example needs the 'example' extra (missing: no_such_module_x): pip install 'focal[example]'
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    message = f"{part} needs the {extra!r} extra (missing: {', '.join(missing)}): pip install 'focal[{extra}]'"
    argv = sys.orig_argv
    if sys.argv[:1] == ["-m"] and any(a == "-m" and b.split(".")[0] == "focal" for a, b in zip(argv, argv[1:])):
        raise SystemExit(message)
    raise MissingExtra(message, name=missing[0])
