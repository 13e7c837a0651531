"""Metrics of a run: accuracy by class and group, proper scores and :func:`summarize`
(:mod:`~focal.engine.metrics.classification`), and the ECE family with temperature scaling
(:mod:`~focal.engine.metrics.calibration`). Both check their inputs with :mod:`~focal.engine.metrics.inputs`.

``__all__`` here is exactly the union of the two modules' ``__all__``.
"""
from focal.engine.metrics.calibration import (
    TemperatureBoundWarning, adaptive_calibration_error, classwise_calibration_error, expected_calibration_error,
    fit_temperature, max_calibration_error, reliability_diagram,
)
from focal.engine.metrics.classification import (
    FEW_SHOT, MANY_SHOT, brier, class_groups, confusion_matrix, group_accuracy, mean_std, nll, per_class_accuracy,
    summarize, top1_error,
)

__all__ = [
    "FEW_SHOT", "MANY_SHOT", "confusion_matrix", "top1_error", "per_class_accuracy", "class_groups", "group_accuracy",
    "nll", "brier", "mean_std", "summarize", "expected_calibration_error", "max_calibration_error",
    "adaptive_calibration_error", "classwise_calibration_error", "reliability_diagram", "fit_temperature",
    "TemperatureBoundWarning",
]
