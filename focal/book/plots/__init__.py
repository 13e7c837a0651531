"""The book's figures: one function per figure, one seaborn style, labelled axes; each returns a Figure.

The chapters call them as ``plots.<name>`` (``from focal.book import plots``); this package re-exports every
public name of the figure modules, and :func:`set_style` and :func:`loss_palette` of the style:

- :mod:`focal.book.plots.style` — :func:`set_style`, :func:`loss_palette` and the helpers the figure modules share
- :mod:`focal.book.plots.loss` — chapters 1-2: the loss, its gradient and gradient weight
- :mod:`focal.book.plots.bench` — chapter 2: the loss benchmark, a classifier head's memory against its classes
- :mod:`focal.book.plots.training` — chapters 3-5: the data, learning curves, accuracy, calibration
- :mod:`focal.book.plots.compare` — chapters 4-6: paired differences, the γ sweep, the balanced reference,
  confusion matrices

The modules import :mod:`~focal.book.plots.style` and never this package.
"""
from focal.book.plots.bench import plot_benchmark, plot_memory_curve
from focal.book.plots.compare import (
    SWEEP_LOSSES,
    plot_calibration_sweep,
    plot_confusion_matrices,
    plot_paired_differences,
    plot_reference_relative,
)
from focal.book.plots.loss import (
    FLSD53,
    amplification_threshold,
    gradient_weight,
    plot_focal_curves,
    plot_gradient_check,
    plot_gradient_weight,
    plot_logit_gradient,
    plot_modulating_factor,
)
from focal.book.plots.style import loss_palette, set_style
from focal.book.plots.training import (
    plot_calibration,
    plot_class_counts,
    plot_group_accuracy,
    plot_learning_curves,
    plot_per_class_accuracy,
    plot_reliability_diagrams,
    plot_sample_grid,
    plot_temperatures,
    plot_top1_error,
)

__all__ = [
    # style
    "set_style", "loss_palette",
    # chapters 1-2: the loss
    "plot_focal_curves", "plot_modulating_factor", "plot_logit_gradient", "plot_gradient_check", "plot_gradient_weight",
    "plot_benchmark", "plot_memory_curve", "gradient_weight", "amplification_threshold", "FLSD53",
    # chapters 3-5: data and training runs
    "plot_class_counts", "plot_sample_grid", "plot_learning_curves", "plot_top1_error", "plot_per_class_accuracy",
    "plot_group_accuracy", "plot_reliability_diagrams", "plot_calibration", "plot_temperatures",
    # chapters 4-6: comparisons
    "plot_paired_differences", "plot_calibration_sweep", "plot_reference_relative", "plot_confusion_matrices",
    "SWEEP_LOSSES",
]
