r"""Calibration metrics: the ECE family of Mukhoti et al. 2020 [mukhoti2020calibrating] and temperature scaling.

Expected, maximum, adaptive (equal-mass) and classwise calibration error, reliability-diagram data, and the
temperature of [guo2017calibration] fitted exactly on held-out logits (with :class:`TemperatureBoundWarning` when
the fit stops at a bound of its search range). Inputs are checked by :mod:`focal.engine.metrics.inputs`, shared
with :mod:`focal.engine.metrics.classification`. The public names (``__all__``) are also importable from
:mod:`focal.engine.metrics` and follow its conventions: torch tensors (any device) or numpy arrays in, ``(N, C)``
probabilities or logits and ``(N,)`` integer labels, float64 on the CPU, calibration errors as fractions in [0, 1].
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from focal.engine.metrics.inputs import check_n_bins, probs_and_labels, scores_and_labels

__all__ = [
    "expected_calibration_error", "max_calibration_error", "adaptive_calibration_error",
    "classwise_calibration_error", "reliability_diagram", "fit_temperature", "TemperatureBoundWarning",
]


# ------------------------------------------------------------------------------------------------- calibration
def _equal_width_bins(values: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin b = (b/n_bins, (b+1)/n_bins]: a value on an edge goes to the lower bin; 0 joins the first bin."""
    edges = torch.arange(n_bins + 1, dtype=torch.float64) / n_bins
    return (torch.searchsorted(edges, values.contiguous(), right=False) - 1).clamp_(0, n_bins - 1)


def _equal_mass_bins(values: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin b holds ranks [b·N/n_bins, (b+1)·N/n_bins) of the ascending values (stable sort); sizes differ by <= 1."""
    ranks = torch.empty_like(values, dtype=torch.long)
    ranks[torch.argsort(values, stable=True)] = torch.arange(values.numel())
    return ranks * n_bins // values.numel()


def _bin_sums(bins: torch.Tensor, conf: torch.Tensor, hits: torch.Tensor, n_bins: int):
    """Per-bin sample count, sum of confidences and sum of hits."""
    count = torch.bincount(bins, minlength=n_bins)
    return count, torch.bincount(bins, conf, minlength=n_bins), torch.bincount(bins, hits.double(), minlength=n_bins)


def _top1_bins(probs: Any, labels: Any, n_bins: int, equal_mass: bool = False):
    p, y = probs_and_labels(probs, labels)
    n_bins = check_n_bins(n_bins)
    pred = p.argmax(1)
    conf = p.gather(1, pred[:, None]).squeeze(1)
    bins = (_equal_mass_bins if equal_mass else _equal_width_bins)(conf, n_bins)
    return _bin_sums(bins, conf, pred == y, n_bins)


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    r"""Expected calibration error over equal-width bins of top-1 confidence.

    .. math::
        \mathrm{ECE} = \sum_{b=1}^{B} \frac{|B_b|}{N} \,\bigl|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\bigr|,
        \qquad B_b = \{i : \max_c p_{ic} \in (\tfrac{b-1}{B}, \tfrac{b}{B}]\}

    A confidence exactly on an edge goes to the lower bin (compared in float64 as given, so a float32 0.2 lands
    above the edge 0.2). [mukhoti2020calibrating]

    Args:
        probs: ``(N, C)`` softmax probabilities.
        labels: ``(N,)`` true class indices.
        n_bins: number of bins B (>= 1).

    Returns:
        ECE as a fraction in [0, 1].

    Example:
        >>> # bin (0.6, 0.8]: conf .7, .7, acc 1/2 -> gap .2; bin (0.8, 1]: conf .9, acc 1 -> gap .1
        >>> round(expected_calibration_error([[.7, .3], [.3, .7], [.9, .1]], [0, 0, 0], n_bins=5), 4)
        0.1667
    """
    count, conf_sum, hit_sum = _top1_bins(probs, labels, n_bins)
    return float((hit_sum - conf_sum).abs().sum() / count.sum())


def max_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    r"""Maximum calibration error: :math:`\max_b |\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|` over non-empty bins.

    Same bins as :func:`expected_calibration_error`; always >= ECE.

    Example:
        >>> round(max_calibration_error([[.7, .3], [.3, .7], [.9, .1]], [0, 0, 0], n_bins=5), 4)
        0.2
    """
    count, conf_sum, hit_sum = _top1_bins(probs, labels, n_bins)
    full = count > 0
    return float(((hit_sum[full] - conf_sum[full]) / count[full]).abs().max())


def adaptive_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    r"""Adaptive ECE: the ECE formula over equal-mass bins of top-1 confidence.

    The N samples, sorted by confidence (stable), are cut into ``n_bins`` consecutive runs whose sizes differ by at
    most one (bins stay empty when N < n_bins). [mukhoti2020calibrating]

    Example:
        >>> # bins {.6 hit, .7 miss} and {.8 hit, .9 hit}: (|.5 - .65| * 2 + |1 - .85| * 2) / 4
        >>> round(adaptive_calibration_error([[.6, .4], [.7, .3], [.8, .2], [.9, .1]], [0, 1, 0, 0], n_bins=2), 4)
        0.15
    """
    count, conf_sum, hit_sum = _top1_bins(probs, labels, n_bins, equal_mass=True)
    return float((hit_sum - conf_sum).abs().sum() / count.sum())


def classwise_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    r"""Classwise ECE: the ECE of every class's own probability, averaged over the K classes.

    .. math::
        \mathrm{cwECE} = \frac1K \sum_{k=1}^{K} \sum_{b=1}^{B} \frac{|B_{k,b}|}{N}
        \bigl|\mathrm{freq}(y = k \mid B_{k,b}) - \mathrm{mean}(p_k \mid B_{k,b})\bigr|

    with equal-width bins (l, u] of :math:`p_{ik}`. Unlike the reference code, a probability of exactly 0 is
    counted (in the first bin) rather than dropped. [mukhoti2020calibrating]

    Example:
        >>> # class 0: bins {.25, .25} freq 1/2 -> gap .25, {1.} freq 1 -> 0; class 1 mirrors it
        >>> round(classwise_calibration_error([[.25, .75], [.25, .75], [1., 0.]], [0, 1, 0], n_bins=2), 4)
        0.1667
    """
    p, y = probs_and_labels(probs, labels)
    n_bins = check_n_bins(n_bins)
    n, k = p.shape
    bins = _equal_width_bins(p.reshape(-1), n_bins).view(n, k) + torch.arange(k) * n_bins
    hits = torch.nn.functional.one_hot(y, k)
    _, conf_sum, hit_sum = _bin_sums(bins.reshape(-1), p.reshape(-1), hits.reshape(-1), n_bins * k)
    return float((hit_sum - conf_sum).abs().sum() / (n * k))


def reliability_diagram(probs: Any, labels: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin data for a reliability diagram (equal-width bins (l, u] of top-1 confidence).

    Returns:
        dict of length-``n_bins`` numpy arrays: ``lower`` and ``upper`` bin edges, ``confidence`` (mean top-1
        confidence), ``accuracy`` (fraction correct) — both ``nan`` for an empty bin — and ``count`` (int64).

    Example:
        >>> d = reliability_diagram([[.7, .3], [.3, .7], [.9, .1]], [0, 0, 0], n_bins=5)
        >>> d["count"].tolist(), d["accuracy"][3:].tolist(), d["upper"].tolist()[3]
        ([0, 0, 0, 2, 1], [0.5, 1.0], 0.8)
    """
    count, conf_sum, hit_sum = _top1_bins(probs, labels, n_bins)
    edges = np.arange(len(count) + 1, dtype=np.float64) / len(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "lower": edges[:-1], "upper": edges[1:],
            "confidence": np.where(count > 0, conf_sum.numpy() / count.numpy(), np.nan),
            "accuracy": np.where(count > 0, hit_sum.numpy() / count.numpy(), np.nan),
            "count": count.numpy().astype(np.int64),
        }


class TemperatureBoundWarning(RuntimeWarning):
    """:func:`fit_temperature` stopped at a bound of its search range: the NLL still falls beyond it."""


def _warn_at_bound(which: str, bound: float, meaning: str, bounds: tuple[float, float]) -> None:
    warnings.warn(
        f"fit_temperature stopped at the {which} bound T = {bound:g} of bounds={bounds!r}: the NLL is still falling "
        f"beyond it, so the returned T is the bound, not the minimiser. {meaning} Widen bounds to fit it.",
        TemperatureBoundWarning, stacklevel=3)


def fit_temperature(logits: Any, labels: Any, *, bounds: tuple[float, float] = (0.01, 100.0),
                    tol: float = 1e-10, max_iter: int = 100) -> float:
    r"""Temperature T minimising the NLL of ``softmax(logits / T)`` on held-out data [guo2017calibration].

    With :math:`\beta = 1/T` the NLL :math:`f(\beta) = \frac1N \sum_i [\operatorname{logsumexp}(\beta z_i) -
    \beta z_{iy_i}]` is convex, with :math:`f'(\beta) = \frac1N \sum_i (\mathbb{E}_{p_i}[z] - z_{iy_i})` and
    :math:`f''(\beta) = \frac1N \sum_i \mathrm{Var}_{p_i}[z] \ge 0`. The root of :math:`f'` is found by Newton
    steps safeguarded by bisection inside ``bounds`` — an exact minimiser, not a grid. If the minimum lies
    outside ``bounds`` the nearer bound is returned, with a warning (e.g. separable data, whose NLL keeps falling
    as T -> 0, or logits on a scale far from calibrated). If the NLL does not depend on T (e.g. constant logits)
    the T in ``bounds`` nearest 1 is returned, without a warning.

    Args:
        logits: ``(N, C)`` held-out logits (not the test set).
        labels: ``(N,)`` held-out labels.
        bounds: ``(T_min, T_max)`` with ``0 < T_min < T_max``.
        tol: relative tolerance on :math:`\beta`.
        max_iter: maximum number of Newton/bisection steps.

    Returns:
        T as a float; divide the logits by it before the softmax.

    Warns:
        TemperatureBoundWarning: (a :class:`RuntimeWarning`) when the fit stops at ``T_max`` — the logits are far
        more confident than their accuracy supports, by more than ``T_max`` — or at ``T_min`` — the NLL keeps
        falling as T -> 0 (separable data, or logits far less confident than their accuracy). The returned bound
        is then not the minimiser; widen ``bounds`` to fit it.

    Example:
        >>> z = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
        >>> round(fit_temperature(z, [0, 0, 1, 1]), 3)  # best p = 3/4 = sigmoid(2/T): T = 2/log 3
        1.82
    """
    z, y = scores_and_labels(logits, labels)
    t_min, t_max = (float(b) for b in bounds)
    if not 0 < t_min < t_max < math.inf:
        raise ValueError(f"bounds must satisfy 0 < T_min < T_max < inf, got {bounds!r}")
    shifted = z - z.gather(1, y[:, None])  # z_c - z_y: keeps tiny slopes of confident data from cancelling to 0

    def slope_curvature(beta: float) -> tuple[float, float]:
        p = torch.softmax(beta * shifted, 1)
        mean = (p * shifted).sum(1)
        return float(mean.mean()), float(((p * shifted**2).sum(1) - mean**2).clamp_min(0).mean())

    lo, hi = 1.0 / t_max, 1.0 / t_min
    slope_lo, slope_hi = slope_curvature(lo)[0], slope_curvature(hi)[0]
    if slope_lo == 0 and slope_hi == 0:  # the NLL does not depend on T (e.g. constant logits)
        return min(max(1.0, t_min), t_max)
    if slope_hi <= 0:
        _warn_at_bound("lower", t_min, "The logits' scale is far from calibrated (far less confident than their "
                       "accuracy), or the data are separable and no finite T is best.", (t_min, t_max))
        return t_min
    if slope_lo >= 0:
        _warn_at_bound("upper", t_max, "The logits' scale is far from calibrated: they are far more confident than "
                       "their accuracy supports.", (t_min, t_max))
        return t_max
    beta = min(max(1.0, lo), hi)
    for _ in range(max_iter):
        slope, curvature = slope_curvature(beta)
        if slope == 0:
            break
        if slope > 0:
            hi = beta
        else:
            lo = beta
        step = beta - slope / curvature if curvature > 0 else math.nan
        new = step if lo < step < hi else math.sqrt(lo * hi)
        converged = abs(new - beta) <= tol * beta
        beta = new
        if converged:
            break
    return 1.0 / beta
