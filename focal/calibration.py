r"""Calibration metrics: the ECE family of Mukhoti et al. 2020 [mukhoti2020calibrating] and temperature scaling.

Expected, maximum, adaptive (equal-mass) and classwise calibration error, reliability-diagram data, and the
temperature of [guo2017calibration] fitted exactly on held-out logits. Also home of the input checks that
:mod:`focal.metrics` shares. The public functions are re-exported by :mod:`focal.metrics` and follow its conventions:
torch tensors (any device) or numpy arrays in, ``(N, C)`` probabilities or logits and ``(N,)`` integer labels,
float64 on the CPU, calibration errors as fractions in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "expected_calibration_error", "max_calibration_error", "adaptive_calibration_error",
    "classwise_calibration_error", "reliability_diagram", "fit_temperature",
]


# ----------------------------------------------------------------------------------------------- input checks
def _tensor(x: Any, name: str, ndim: int, *, integer: bool = False) -> torch.Tensor:
    """Converts ``x`` to a CPU float64 (or int64 if ``integer``) tensor with ``ndim`` dimensions, or raises."""
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


def _check_range(t: torch.Tensor, name: str, num_classes: int) -> None:
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}] for {num_classes} classes, "
                         f"got values in [{int(t.min())}, {int(t.max())}]")


def _scores_and_labels(scores: Any, labels: Any, name: str = "logits") -> tuple[torch.Tensor, torch.Tensor]:
    s = _tensor(scores, name, 2)
    y = _tensor(labels, "labels", 1, integer=True)
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"{name} has {s.shape[0]} rows but labels has {y.shape[0]} entries")
    if s.shape[0] == 0:
        raise ValueError(f"{name} and labels must hold at least one sample")
    _check_range(y, "labels", s.shape[1])
    return s, y


def _probs_and_labels(probs: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, y = _scores_and_labels(probs, labels, "probs")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("probs must lie in [0, 1]; pass softmax probabilities, not logits")
    # 1e-2 tolerates half-precision softmax output yet still catches unnormalised scores.
    if ((p.sum(1) - 1).abs() > 1e-2).any():
        raise ValueError("each row of probs must sum to 1; pass softmax probabilities, not logits")
    return p, y


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins must be an int, got {type(n_bins).__name__}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    return int(n_bins)


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
    p, y = _probs_and_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
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
    p, y = _probs_and_labels(probs, labels)
    n_bins = _check_n_bins(n_bins)
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


def fit_temperature(logits: Any, labels: Any, *, bounds: tuple[float, float] = (0.01, 100.0),
                    tol: float = 1e-10, max_iter: int = 100) -> float:
    r"""Temperature T minimising the NLL of ``softmax(logits / T)`` on held-out data [guo2017calibration].

    With :math:`\beta = 1/T` the NLL :math:`f(\beta) = \frac1N \sum_i [\operatorname{logsumexp}(\beta z_i) -
    \beta z_{iy_i}]` is convex, with :math:`f'(\beta) = \frac1N \sum_i (\mathbb{E}_{p_i}[z] - z_{iy_i})` and
    :math:`f''(\beta) = \frac1N \sum_i \mathrm{Var}_{p_i}[z] \ge 0`. The root of :math:`f'` is found by Newton
    steps safeguarded by bisection inside ``bounds`` — an exact minimiser, not a grid. If the minimum lies
    outside ``bounds`` the nearer bound is returned (e.g. separable data, whose NLL keeps falling as T -> 0).

    Args:
        logits: ``(N, C)`` held-out logits (not the test set).
        labels: ``(N,)`` held-out labels.
        bounds: ``(T_min, T_max)`` with ``0 < T_min < T_max``.
        tol: relative tolerance on :math:`\beta`.
        max_iter: maximum number of Newton/bisection steps.

    Returns:
        T as a float; divide the logits by it before the softmax.

    Example:
        >>> z = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
        >>> round(fit_temperature(z, [0, 0, 1, 1]), 3)  # best p = 3/4 = sigmoid(2/T): T = 2/log 3
        1.82
    """
    z, y = _scores_and_labels(logits, labels)
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
        return t_min
    if slope_lo >= 0:
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
