"""Paired comparisons over seeds and the three-valued verdicts of chapter 6.

Two runs of the book that differ only in the loss and share a seed share everything else: the long-tailed subset
(fixed for every seed, as in LDAM-DRW), the initial weights and the order of the batches. So a loss is compared with
cross-entropy seed by seed, as a **paired difference** :math:`d_s = x^{\\text{loss}}_s - x^{\\text{CE}}_s`, and
summarised by its mean and a Student-t confidence interval (:func:`paired_difference`):

.. math:: \\bar d \\pm t_{0.975,\\,n-1}\\, \\frac{s_d}{\\sqrt n}.

A claim gets one of three verdicts (:data:`VERDICTS`):

* a **directional** claim ("focal lowers the ECE") is *reproduced* when the interval excludes zero on the claimed
  side, *contradicted* when it excludes zero on the other side, and *inconclusive* otherwise
  (:func:`directional_verdict`);
* an **equivalence** claim ("focal is about as accurate as CE") is *reproduced* only when the whole interval lies
  inside a margin :math:`(-m, m)` declared before looking at the results -- two one-sided tests, each at the 2.5 %
  level when the interval is 95 % -- *contradicted* when the whole interval lies outside it, and *inconclusive*
  otherwise (:func:`equivalence_verdict`). "No significant difference" is never "reproduced".

With fewer than two seeds, or no spread at all among the differences, there is no interval and every verdict is
inconclusive.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["VERDICTS", "PairedDifference", "paired_difference", "mean_interval", "t_quantile",
           "directional_verdict",
           "equivalence_verdict"]

#: The three verdicts a claim can get.
VERDICTS = ("reproduced", "contradicted", "inconclusive")


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t distribution (``scipy.stats.t.ppf``).

    Example:
        >>> round(t_quantile(0.975, 4), 3), round(t_quantile(0.975, 2), 3)
        (2.776, 4.303)
    """
    from scipy.stats import t

    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df must be a positive int, got {df!r}")
    return float(t.ppf(p, df))


@dataclass(frozen=True)
class PairedDifference:
    """Mean paired difference ``other - baseline`` over ``n`` seeds with its ``confidence`` t-interval
    ``[low, high]`` (NaN with fewer than two seeds)."""

    mean: float
    low: float
    high: float
    sd: float
    n: int
    confidence: float = 0.95

    def text(self, digits: int = 2, unit: str = "") -> str:
        """``"+0.42 [-0.10, +0.94]"``: the mean difference and its interval, signed.

        Example:
            >>> PairedDifference(0.5, -0.25, 1.25, 0.6, 5).text(unit=" pt")
            '+0.50 pt [-0.25, +1.25]'
            >>> PairedDifference(0.5, math.nan, math.nan, math.nan, 1).text()
            '+0.50 (one seed: no interval)'
        """
        if math.isnan(self.low):
            return f"{self.mean:+.{digits}f}{unit} ({'one seed' if self.n < 2 else 'no spread'}: no interval)"
        return f"{self.mean:+.{digits}f}{unit} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of zero."""
        return bool(self.low > 0 or self.high < 0)


def paired_difference(baseline: Mapping | Sequence, other: Mapping | Sequence,
                      confidence: float = 0.95) -> PairedDifference:
    """Mean of ``other - baseline`` over paired seeds, with a Student-t confidence interval.

    Args:
        baseline: values of the reference loss, either a sequence (paired by position) or a mapping
            ``{seed: value}`` (e.g. a :class:`pandas.Series` indexed by seed).
        other: values of the compared loss, the same kind as ``baseline``; mappings must hold the same seeds.
        confidence: coverage of the two-sided interval, in (0, 1).

    Returns:
        A :class:`PairedDifference`; with one seed, or differences that are all equal (no spread to build a t-interval
        from), the interval is NaN and every verdict on it is inconclusive.

    Example:
        >>> d = paired_difference([30.0, 31.0, 29.0], [29.0, 30.5, 28.0])
        >>> round(d.mean, 3), round(d.low, 3), round(d.high, 3), d.n
        (-0.833, -1.551, -0.116, 3)
        >>> paired_difference({0: 1.0, 1: 2.0}, {1: 2.5, 0: 1.5}).mean
        0.5
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if isinstance(baseline, Mapping) != isinstance(other, Mapping):
        raise TypeError("baseline and other must both be mappings {seed: value} or both sequences")
    if isinstance(baseline, Mapping):
        if set(baseline) != set(other):
            raise ValueError(f"baseline and other must hold the same seeds, got {sorted(baseline)} and "
                             f"{sorted(other)}")
        seeds = sorted(baseline)
        a = np.array([baseline[s] for s in seeds], float)
        b = np.array([other[s] for s in seeds], float)
    else:
        a, b = np.asarray(baseline, float), np.asarray(other, float)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"baseline and other must be 1-D of the same length, got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("baseline and other are empty: at least one paired seed is needed")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("baseline and other must be finite")
    d = b - a
    n, mean = d.size, float(d.mean())
    if n < 2:
        return PairedDifference(mean, math.nan, math.nan, math.nan, n, confidence)
    sd = float(d.std(ddof=1))
    if sd == 0.0:  # every pair differs by exactly the same amount: the t-interval degenerates to a point
        return PairedDifference(mean, math.nan, math.nan, sd, n, confidence)
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, sd, n, confidence)


def mean_interval(values, confidence: float = 0.95, *, log: bool = False) -> tuple[float, float, float]:
    """Mean of ``values`` and its t-interval ``(mean, low, high)`` -- with ``log``, the geometric mean and its interval
    (computed on log values, for positive quantities such as temperatures); low and high are NaN when there is no
    interval (one value, or no spread).

    Example:
        >>> [round(x, 3) for x in mean_interval([1.0, 2.0, 3.0])]
        [2.0, -0.484, 4.484]
        >>> round(mean_interval([1.0, 4.0], log=True)[0], 6)
        2.0
    """
    v = np.asarray(values, float)
    w = np.log(v) if log else v
    d = paired_difference(np.zeros_like(w), w, confidence)
    back = np.exp if log else float
    return float(back(d.mean)), float(back(d.low)), float(back(d.high))


def directional_verdict(diff: PairedDifference, claimed: str) -> str:
    """Verdict on a claim that the difference is ``"negative"`` (e.g. lower ECE) or ``"positive"``.

    Example:
        >>> d = PairedDifference(-1.0, -1.5, -0.5, 0.4, 5)
        >>> directional_verdict(d, "negative"), directional_verdict(d, "positive")
        ('reproduced', 'contradicted')
        >>> directional_verdict(PairedDifference(-1.0, -2.0, 0.1, 0.9, 5), "negative")
        'inconclusive'
    """
    if claimed not in ("negative", "positive"):
        raise ValueError(f"claimed must be 'negative' or 'positive', got {claimed!r}")
    if math.isnan(diff.low):
        return "inconclusive"
    below, above = diff.high < 0, diff.low > 0
    if (claimed == "negative" and below) or (claimed == "positive" and above):
        return "reproduced"
    if below or above:
        return "contradicted"
    return "inconclusive"


def equivalence_verdict(diff: PairedDifference, margin: float) -> str:
    """Verdict on a claim that the difference is negligible, i.e. inside ``(-margin, margin)``.

    Reproduced when the whole interval lies inside the margin; contradicted when the whole interval lies outside it
    (the difference is larger than the margin, significantly); inconclusive otherwise.

    Example:
        >>> equivalence_verdict(PairedDifference(0.2, -0.3, 0.7, 0.4, 5), margin=1.0)
        'reproduced'
        >>> equivalence_verdict(PairedDifference(0.2, -1.3, 1.7, 1.2, 5), margin=1.0)
        'inconclusive'
        >>> equivalence_verdict(PairedDifference(-2.0, -2.6, -1.4, 0.5, 5), margin=1.0)
        'contradicted'
    """
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
        raise ValueError(f"margin must be a positive number, got {margin!r}")
    if math.isnan(diff.low):
        return "inconclusive"
    if -margin < diff.low and diff.high < margin:
        return "reproduced"
    if diff.low >= margin or diff.high <= -margin:
        return "contradicted"
    return "inconclusive"
