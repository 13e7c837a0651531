r"""Classification metrics for long-tailed runs, and :func:`summarize`, which bundles every metric a run stores.

Accuracy (top-1 error, per-class accuracy, many/medium/few groups), proper scores (NLL, Brier), mean ± std over
seeds, and :func:`summarize`. The calibration errors and temperature scaling that :func:`summarize` reports live in
:mod:`focal.engine.metrics.calibration` (import them from there or from :mod:`focal.engine.metrics`, not from here);
the input checks both modules share live in :mod:`focal.engine.metrics.inputs`.

Conventions: inputs may be torch tensors (any device; detached) or numpy arrays; ``logits``/``probs`` are
``(N, C)``, ``labels`` are ``(N,)`` integer class indices. Every computation runs in float64 on the CPU.
Scalars come back as Python floats; calibration errors are fractions in [0, 1] (not percent), top-1 error is in
percent. ``nan`` marks a quantity that is undefined (a class without test examples, an empty group).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from focal.engine.metrics.calibration import (
    adaptive_calibration_error, classwise_calibration_error, expected_calibration_error, fit_temperature,
    max_calibration_error,
)
from focal.engine.metrics.inputs import as_tensor, check_n_bins, check_range, probs_and_labels, scores_and_labels

__all__ = [
    "MANY_SHOT", "FEW_SHOT", "confusion_matrix", "top1_error", "per_class_accuracy", "class_groups",
    "group_accuracy", "nll", "brier", "mean_std", "summarize",
]

MANY_SHOT = 100  # a class with more than this many training images is "many"
FEW_SHOT = 20  # fewer than this is "few"; 20..100 inclusive is "medium"
THIRDS_10 = (3, 4, 3)  # head / middle / tail sizes, by training-count rank, for 10-class data


# ------------------------------------------------------------------------------------------------ predictions
def _predictions(scores_or_preds: Any) -> tuple[torch.Tensor, int | None]:
    """Returns (predicted class per sample, number of columns or None) from ``(N, C)`` scores or ``(N,)`` preds."""
    x = scores_or_preds
    if (x.dim() if isinstance(x, torch.Tensor) else np.ndim(x)) == 1:
        return as_tensor(scores_or_preds, "preds", 1, integer=True), None
    s = as_tensor(scores_or_preds, "logits_or_probs", 2)
    return s.argmax(1), s.shape[1]  # ties go to the first (lowest) class index


# ----------------------------------------------------------------------------------------------------- accuracy
def confusion_matrix(preds: Any, labels: Any, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        preds: ``(N,)`` predicted class indices, or ``(N, C)`` logits/probabilities (their argmax is used).
        labels: ``(N,)`` true class indices.
        num_classes: number of classes C.

    Returns:
        int64 array ``cm`` of shape ``(C, C)``: ``cm[i, j]`` = number of samples of class i predicted as j.

    Example:
        >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3)
        array([[1, 0, 0],
               [0, 1, 0],
               [0, 1, 1]])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    pred, _ = _predictions(preds)
    y = as_tensor(labels, "labels", 1, integer=True)
    if pred.shape != y.shape:
        raise ValueError(f"preds has {pred.shape[0]} entries but labels has {y.shape[0]}")
    check_range(pred, "preds", num_classes)
    check_range(y, "labels", num_classes)
    flat = torch.bincount(y * num_classes + pred, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes).numpy().astype(np.int64)


def top1_error(logits_or_probs: Any, labels: Any) -> float:
    """Top-1 error in percent: ``100 * mean(argmax != label)``.

    Args:
        logits_or_probs: ``(N, C)`` scores, or ``(N,)`` predicted class indices.
        labels: ``(N,)`` true class indices.

    Example:
        >>> top1_error([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.2]], [0, 1, 1, 1])
        50.0
    """
    pred, num_classes = _predictions(logits_or_probs)
    y = as_tensor(labels, "labels", 1, integer=True)
    if pred.shape != y.shape or y.numel() == 0:
        raise ValueError(f"need as many predictions as labels (>= 1), got {pred.shape[0]} and {y.shape[0]}")
    if num_classes is not None:
        check_range(y, "labels", num_classes)
    return 100.0 * float((pred != y).double().mean())


def per_class_accuracy(logits_or_probs: Any, labels: Any, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class, read off the confusion matrix: ``cm[k, k] / cm[k, :].sum()``.

    Args:
        logits_or_probs: ``(N, C)`` scores, or ``(N,)`` predicted class indices.
        labels: ``(N,)`` true class indices.
        num_classes: C; defaults to the number of score columns (or ``max(index) + 1`` for index input).

    Returns:
        float64 array of shape ``(C,)`` with values in [0, 1]; ``nan`` for a class with no test example.

    Example:
        >>> per_class_accuracy([0, 1, 1, 1], [0, 0, 1, 1], num_classes=3)
        array([0.5, 1. , nan])
    """
    pred, columns = _predictions(logits_or_probs)
    if num_classes is None:
        num_classes = columns
    if num_classes is None:  # index input: the largest index seen decides
        y = as_tensor(labels, "labels", 1, integer=True)
        num_classes = int(max(pred.max(), y.max())) + 1 if y.numel() and pred.numel() else 1
    cm = confusion_matrix(pred, labels, num_classes)
    support = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def class_groups(train_counts: Any) -> dict[str, list[int]]:
    """Splits classes into shot groups by their number of training images.

    ``many``: more than 100 images; ``medium``: 20 to 100 (inclusive); ``few``: fewer than 20 (the OLTR
    convention). For exactly 10 classes, also ``head`` / ``middle`` / ``tail``: the 3 / 4 / 3 classes with the
    most / next / fewest training images (ties broken by class index).

    Args:
        train_counts: C non-negative training-image counts, one per class.

    Returns:
        dict from group name to the sorted class indices in it (possibly empty).

    Example:
        >>> class_groups([500, 120, 100, 20, 19])
        {'many': [0, 1], 'medium': [2, 3], 'few': [4]}
    """
    counts = np.asarray(train_counts)
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.number):
        raise ValueError(f"train_counts must be a non-empty 1-D sequence of numbers, got {train_counts!r}")
    if (counts < 0).any():
        raise ValueError("train_counts must be non-negative")
    groups = {
        "many": np.flatnonzero(counts > MANY_SHOT).tolist(),
        "medium": np.flatnonzero((counts >= FEW_SHOT) & (counts <= MANY_SHOT)).tolist(),
        "few": np.flatnonzero(counts < FEW_SHOT).tolist(),
    }
    if counts.size == sum(THIRDS_10):
        ranked = np.argsort(-counts, kind="stable")
        bounds = np.cumsum((0,) + THIRDS_10)
        for name, lo, hi in zip(("head", "middle", "tail"), bounds[:-1], bounds[1:]):
            groups[name] = sorted(ranked[lo:hi].tolist())
    return groups


def group_accuracy(per_class_acc: Any, train_counts: Any) -> dict[str, float]:
    """Mean per-class accuracy over each group of :func:`class_groups`.

    Classes with ``nan`` accuracy (no test example) are skipped; an empty group gives ``nan``. On a balanced test
    set this equals the accuracy over the group's test images.

    Args:
        per_class_acc: C accuracies, e.g. from :func:`per_class_accuracy`.
        train_counts: C training-image counts.

    Example:
        >>> group_accuracy([0.9, 0.7, 0.5, 0.1], [1000, 101, 50, 5])
        {'many': 0.8, 'medium': 0.5, 'few': 0.1}
    """
    acc = np.asarray(per_class_acc, dtype=np.float64)
    groups = class_groups(train_counts)
    num_classes = len(np.asarray(train_counts))
    if acc.shape != (num_classes,):
        raise ValueError(f"per_class_acc has shape {acc.shape} but train_counts has {num_classes} classes")
    out = {}
    for name, members in groups.items():
        values = acc[members]
        values = values[~np.isnan(values)]
        out[name] = float(values.mean()) if values.size else math.nan
    return out


# ------------------------------------------------------------------------------------------------ proper scores
def nll(logits: Any, labels: Any) -> float:
    r"""Mean negative log-likelihood (cross-entropy, nats): :math:`-\frac1N \sum_i \log \mathrm{softmax}(z_i)_{y_i}`.

    Example:
        >>> round(nll([[0.0, 0.0], [0.0, 0.0]], [0, 1]), 4)  # log 2
        0.6931
    """
    z, y = scores_and_labels(logits, labels)
    return float(-torch.log_softmax(z, 1).gather(1, y[:, None]).mean())


def brier(probs: Any, labels: Any) -> float:
    r"""Brier score: :math:`\frac1N \sum_i \sum_c (p_{ic} - [y_i = c])^2` (in [0, 2], lower is better).

    Example:
        >>> brier([[0.75, 0.25], [0.5, 0.5]], [0, 1])  # ((.25² + .25²) + (.5² + .5²)) / 2
        0.3125
    """
    p, y = probs_and_labels(probs, labels)
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(1).mean())


# ------------------------------------------------------------------------------------------------- aggregation
def mean_std(values: Any) -> tuple[Any, Any]:
    r"""Mean and sample standard deviation (ddof = 1) over the first axis (e.g. seeds), ignoring NaN.

    With fewer than two non-NaN values the std is ``nan`` (one seed shows no spread; ``0`` would claim there is
    none), and with none the mean is ``nan`` too. 1-D input gives floats; ``(S, ...)`` input gives arrays.

    Example:
        >>> mean_std([1.0, 2.0, float("nan"), 3.0])
        (2.0, 1.0)
        >>> mean_std([4.0])
        (4.0, nan)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError(f"values must be a sequence (one entry per seed), got the scalar {values!r}")
    valid = ~np.isnan(x)
    n = valid.sum(0)
    filled = np.where(valid, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(0) / n, np.nan)
        var = np.where(valid, (x - mean) ** 2, 0.0).sum(0) / (n - 1)
        std = np.where(n > 1, np.sqrt(var), np.nan)
    if mean.ndim == 0:
        return float(mean), float(std)
    return mean, std


def _calibration_errors(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(probs, labels, n_bins),
        "adaptive_ece": adaptive_calibration_error(probs, labels, n_bins),
        "classwise_ece": classwise_calibration_error(probs, labels, n_bins),
        "mce": max_calibration_error(probs, labels, n_bins),
    }


def summarize(logits: Any, labels: Any, train_counts: Any = None, *, calib_logits: Any = None,
              calib_labels: Any = None, n_bins: int = 15) -> dict[str, Any]:
    """Every metric a run stores, as a JSON-serialisable dict of Python numbers and lists.

    Keys: ``num_samples``, ``num_classes``, ``n_bins``, ``top1_error`` (percent), ``per_class_accuracy`` (list of
    fractions, ``nan`` for a class without test data), ``nll``, ``brier``, ``ece``, ``adaptive_ece``,
    ``classwise_ece``, ``mce`` (fractions in [0, 1]); with ``train_counts``: ``groups`` (from
    :func:`group_accuracy`) and ``group_sizes`` (classes per group); with held-out ``calib_logits``/``calib_labels``:
    ``temperature`` (fitted there by :func:`~focal.engine.metrics.calibration.fit_temperature`) and ``ts_nll``,
    ``ts_brier``, ``ts_ece``, ``ts_adaptive_ece``, ``ts_classwise_ece``, ``ts_mce`` on the test logits divided by
    it (top-1 is unchanged). ``nan`` is written as ``NaN`` by :mod:`json`, which reads it back.

    Warns:
        ~focal.engine.metrics.calibration.TemperatureBoundWarning: when the temperature fit stops at a bound of its
        search range (see :func:`~focal.engine.metrics.calibration.fit_temperature`).

    Example:
        >>> s = summarize([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1], [300, 10])
        >>> s["top1_error"], s["per_class_accuracy"], s["groups"]
        (33.33..., [1.0, 0.5], {'many': 1.0, 'medium': nan, 'few': 0.5})
    """
    z, y = scores_and_labels(logits, labels)
    n_bins = check_n_bins(n_bins)
    probs = torch.softmax(z, 1)
    out: dict[str, Any] = {
        "num_samples": int(z.shape[0]), "num_classes": int(z.shape[1]), "n_bins": n_bins,
        "top1_error": top1_error(z, y),
        "per_class_accuracy": [float(a) for a in per_class_accuracy(z, y)],
        "nll": nll(z, y), "brier": brier(probs, y), **_calibration_errors(probs, y, n_bins),
    }
    if train_counts is not None:
        out["groups"] = group_accuracy(out["per_class_accuracy"], train_counts)
        out["group_sizes"] = {name: len(members) for name, members in class_groups(train_counts).items()}
    if (calib_logits is None) != (calib_labels is None):
        raise ValueError("pass both calib_logits and calib_labels, or neither")
    if calib_logits is not None:
        zc, _ = scores_and_labels(calib_logits, calib_labels, "calib_logits")
        if zc.shape[1] != z.shape[1]:
            raise ValueError(f"calib_logits has {zc.shape[1]} classes but logits has {z.shape[1]}")
        temperature = fit_temperature(zc, calib_labels)
        scaled = torch.softmax(z / temperature, 1)
        out["temperature"] = temperature
        out["ts_nll"] = nll(z / temperature, y)
        out["ts_brier"] = brier(scaled, y)
        out.update({f"ts_{key}": value for key, value in _calibration_errors(scaled, y, n_bins).items()})
    return out
