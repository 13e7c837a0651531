"""Figures of chapters 4-6 that compare losses: paired differences with their intervals, the γ sweep of calibration,
per-class accuracy relative to the balanced reference, and confusion matrices.

Inputs are the tidy frames of :mod:`focal.book.results` and :mod:`focal.book.comparisons`; each function returns a new
:class:`matplotlib.figure.Figure` in the style of :mod:`focal.book.plots.style`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from focal.book.labels import book_order, loss_label
from focal.book.plots.style import check_columns, loss_palette, new_figure
from focal.book.stats import mean_interval

__all__ = ["plot_paired_differences", "plot_calibration_sweep", "plot_reference_relative", "plot_confusion_matrices",
           "SWEEP_LOSSES"]

#: The γ sweep of chapter 5, in order of increasing focusing: CE is γ = 0, FLSD-53 uses γ = 3 and 5.
SWEEP_LOSSES: tuple[str, ...] = tuple(loss_label(loss, gamma) for loss, gamma in (
    ("ce", None), ("focal", 0.5), ("focal", 1.0), ("focal", 2.0), ("focal", 3.0), ("focal-flsd53", None)))


def plot_paired_differences(table: pd.DataFrame, *, xlabel: str, margin: float | None = None,
                            panel: str | None = None, better: str | None = None) -> Figure:
    """Forest plot: each loss's mean paired difference from the baseline with its 95 % interval.

    Args:
        table: :func:`focal.book.comparisons.paired_table` output (columns ``loss``, ``diff``, ``low``, ``high``, and
            optionally a ``panel`` column with one panel per value).
        xlabel: what the difference is, e.g. ``"top-1 error, loss − CE (points)"``.
        margin: draw the equivalence band ±margin.
        panel: column whose values get one panel each (e.g. ``"group"``).
        better: ``"left"`` or ``"right"``: which side of zero is an improvement (written under the axis).

    Example:
        >>> t = pd.DataFrame(dict(loss=["focal γ=1"], diff=[0.2], low=[-0.3], high=[0.7]))
        >>> plot_paired_differences(t, xlabel="Δ", margin=1.0).axes[0].get_xlabel()
        'Δ'
    """
    check_columns(table, ("loss", "diff", "low", "high"), "plot_paired_differences")
    panels = list(dict.fromkeys(table[panel])) if panel else [None]
    order = book_order(table["loss"])
    fig, grid = new_figure(len(panels), width=4.2 if panel else 6.0, height=0.45 * len(order) + 1.4, sharey=True)
    pal = loss_palette(order)
    for a, value in zip(grid[0], panels):
        sub = table if value is None else table[table[panel] == value]
        if margin is not None:
            a.axvspan(-margin, margin, color="tab:green", alpha=0.12, lw=0, label=f"margin ±{margin:g}")
        a.axvline(0, color="0.3", lw=1)
        for y, loss in enumerate(order):
            row = sub[sub["loss"] == loss]
            if row.empty:
                continue
            r = row.iloc[0]
            lo, hi = (r["low"], r["high"]) if np.isfinite(r["low"]) else (r["diff"], r["diff"])
            a.plot([lo, hi], [y, y], color=pal[loss], lw=2.5, solid_capstyle="butt")
            a.plot(r["diff"], y, "o", color=pal[loss], ms=6, mec="white")
        a.set_yticks(range(len(order)), order)
        a.set_ylim(len(order) - 0.5, -0.5)
        a.set(xlabel=xlabel, title=str(value) if value is not None else "")
        if better in ("left", "right"):
            a.annotate(f"better {'←' if better == 'left' else '→'}", xy=(0.0 if better == "left" else 1.0, 1.0),
                       xycoords="axes fraction", ha="left" if better == "left" else "right", va="bottom",
                       fontsize=8, color="0.35")
    if margin is not None:
        grid[0][0].legend(loc="lower left", fontsize=8)
    return fig


def plot_calibration_sweep(calib: pd.DataFrame, temps: pd.DataFrame, losses: Sequence[str] = SWEEP_LOSSES) -> Figure:
    """The γ sweep in one figure: ECE before and after temperature scaling (left) and the fitted T (right) against
    the focusing strength, mean over seeds with a 95 % t-interval of the mean; dots are single seeds.

    Args:
        calib: :func:`focal.book.results.calibration_frames` calibration rows (its ``ECE`` metric is used).
        temps: its temperature rows.
        losses: the settings on the x-axis, in order; those without runs are skipped.

    Example:
        >>> c = pd.DataFrame(dict(loss=["CE"] * 4, seed=[0, 1, 0, 1], metric="ECE",
        ...                       stage=["before T"] * 2 + ["after T"] * 2, value=[4.0, 5.0, 1.0, 1.2]))
        >>> t = pd.DataFrame(dict(loss="CE", seed=[0, 1], temperature=[1.5, 1.6]))
        >>> [a.get_ylabel() for a in plot_calibration_sweep(c, t).axes]
        ['ECE (%)', 'fitted temperature T (log scale)']
    """
    check_columns(calib, ("loss", "seed", "metric", "stage", "value"), "plot_calibration_sweep")
    check_columns(temps, ("loss", "seed", "temperature"), "plot_calibration_sweep")
    shown = [lab for lab in losses if lab in set(temps["loss"])]
    if not shown:
        raise ValueError(f"none of {list(losses)} has runs; losses present: {book_order(temps['loss'])}")
    fig, grid = new_figure(2, width=4.6, height=3.4)
    ece_ax, t_ax = grid[0]
    x = np.arange(len(shown))
    ece = calib[calib["metric"] == "ECE"]
    for stage, colour, dx in (("before T", "0.45", -0.08), ("after T", "tab:blue", 0.08)):
        _mean_ci(ece_ax, x + dx, [ece[(ece["loss"] == lab) & (ece["stage"] == stage)]["value"] for lab in shown],
                 colour, f"{stage[:-2]} temperature scaling")
    _mean_ci(t_ax, x, [temps[temps["loss"] == lab]["temperature"] for lab in shown], "tab:purple", "fitted T",
             log=True)
    t_ax.set_yscale("log")
    t_ax.axhline(1.0, ls="--", color="0.3", lw=1)
    t_ax.annotate("T > 1: over-confident", xy=(0.98, 0.97), xycoords="axes fraction", ha="right", va="top",
                  fontsize=8, color="0.35")
    t_ax.annotate("T < 1: under-confident", xy=(0.98, 0.03), xycoords="axes fraction", ha="right", va="bottom",
                  fontsize=8, color="0.35")
    for a in (ece_ax, t_ax):
        a.set_xticks(x, shown, rotation=25, ha="right")
        a.set_xlabel("loss (focusing grows to the right)")
    ece_ax.set(ylabel="ECE (%)", ylim=(0, None))
    t_ax.set(ylabel="fitted temperature T (log scale)")
    lo, hi = t_ax.get_ylim()
    ticks = [v for v in (0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
             if lo <= v <= hi]
    if len(ticks) > 8:  # a wide range: keep 1, 2, 5 per decade
        ticks = [v for v in ticks if f"{v:g}".lstrip("0.").rstrip("0") in ("1", "2", "5")] or ticks
    t_ax.yaxis.set_major_locator(FixedLocator(ticks))
    t_ax.yaxis.set_major_formatter("{x:g}")
    t_ax.yaxis.set_minor_locator(NullLocator())
    t_ax.yaxis.set_minor_formatter(NullFormatter())
    ece_ax.legend(loc="upper left", fontsize=8)
    return fig


def _mean_ci(ax, x, groups, colour: str, label: str, log: bool = False) -> None:
    """Dots per seed, and the mean with a 95 % t-interval of the mean (geometric for ``log``)."""
    means, lows, highs = [], [], []
    for xi, values in zip(x, groups):
        v = np.asarray(values, float)
        mean, low, high = mean_interval(v, log=log)
        means.append(mean)
        lows.append(low if np.isfinite(low) else mean)
        highs.append(high if np.isfinite(high) else mean)
        ax.plot(np.full(v.size, xi), v, ".", color=colour, alpha=0.35, ms=5)
    means, lows, highs = map(np.asarray, (means, lows, highs))
    ax.errorbar(x, means, yerr=[means - lows, highs - means], fmt="o-", color=colour, capsize=3, label=label)


def plot_reference_relative(relative: pd.DataFrame, *, classes: Sequence[str] | None = None) -> Figure:
    """Per-class accuracy of each long-tailed run minus the balanced reference, head (left) to tail (right).

    Args:
        relative: :func:`focal.book.comparisons.reference_relative` output.
        classes: class names to write under the ticks (default the ``class`` column).

    Example:
        >>> r = pd.DataFrame(dict(loss="CE", class_index=[0, 1], **{"class": ["a", "b"]}, class_rank=[0, 1],
        ...                       train_count=[100, 10], delta=[1.0, -20.0], reference_spread=[0.5, 0.5]))
        >>> plot_reference_relative(r).axes[0].get_ylabel()
        'accuracy − balanced reference (points)'
    """
    check_columns(relative, ("loss", "class_rank", "class", "train_count", "delta"), "plot_reference_relative")
    fig, grid = new_figure(1, width=8.5, height=3.8)
    ax = grid[0][0]
    order = book_order(relative["loss"])
    pal = loss_palette(order)
    ranks = sorted(set(relative["class_rank"]))
    first = relative.drop_duplicates("class_rank").set_index("class_rank").loc[ranks]
    if "reference_spread" in relative.columns:
        spread = first["reference_spread"].to_numpy(float)
        ax.fill_between(ranks, -spread, spread, color="0.85", lw=0, label="reference ±1 std over seeds")
    ax.axhline(0, color="0.3", lw=1)
    for loss in order:
        sub = relative[relative["loss"] == loss].sort_values("class_rank")
        ax.plot(sub["class_rank"], sub["delta"], "o-", color=pal[loss], ms=4, lw=1.5, label=loss)
    names = list(first["class"]) if classes is None else list(classes)
    ax.set_xticks(ranks, [f"{n}\n({c:,})" for n, c in zip(names, first["train_count"])], fontsize=8)
    ax.set(xlabel="class, head to tail (training images)", ylabel="accuracy − balanced reference (points)")
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    return fig


def plot_confusion_matrices(matrices: Mapping[str, np.ndarray], classes: Sequence[str]) -> Figure:
    """Row-normalised confusion matrices side by side, plus the difference of the last two (second − first).

    Args:
        matrices: ``{loss label: (C, C) percent}`` (:func:`focal.book.comparisons.confusion_matrices`), two or more.
        classes: class names, index = label.

    Example:
        >>> m = {"CE": np.eye(2) * 100, "focal γ=1": np.array([[90.0, 10.0], [0.0, 100.0]])}
        >>> [a.get_title() for a in plot_confusion_matrices(m, ["a", "b"]).axes][:3]
        ['CE', 'focal γ=1', 'focal γ=1 − CE']
    """
    if len(matrices) < 2:
        raise ValueError(f"matrices must hold at least two losses, got {list(matrices)}")
    labels = list(matrices)
    k = len(classes)
    for lab, m in matrices.items():
        if np.shape(m) != (k, k):
            raise ValueError(f"matrix of {lab!r} has shape {np.shape(m)}, expected ({k}, {k}) for {k} classes")
    fig, grid = new_figure(len(labels) + 1, width=4.3, height=4.2)
    axes = list(grid[0])
    for a, lab in zip(axes, labels):
        m = np.asarray(matrices[lab], float)
        im = a.imshow(m, cmap="Blues", vmin=0, vmax=100)
        _annotate(a, m, lambda v: f"{v:.0f}" if v >= 0.5 else "", threshold=60)
        a.set_title(lab)
    fig.colorbar(im, ax=axes[len(labels) - 1], shrink=0.7, label="% of the true class")
    diff = np.asarray(matrices[labels[-1]], float) - np.asarray(matrices[labels[0]], float)
    lim = max(1.0, float(np.abs(diff).max()))
    im = axes[-1].imshow(diff, cmap="RdBu", vmin=-lim, vmax=lim)
    _annotate(axes[-1], diff, lambda v: f"{v:+.0f}" if abs(v) >= 0.5 else "", threshold=0.6 * lim, absolute=True)
    axes[-1].set_title(f"{labels[-1]} − {labels[0]}")
    fig.colorbar(im, ax=axes[-1], shrink=0.7, label="points")
    for i, a in enumerate(axes):
        a.set_xticks(range(k), classes, rotation=90, fontsize=7)
        a.set_yticks(range(k), classes if i == 0 else [""] * k, fontsize=7)
        a.set_xlabel("predicted")
        a.grid(False)
    axes[0].set_ylabel("true class (head at the top)")
    return fig


def _annotate(ax, m: np.ndarray, fmt, threshold: float, absolute: bool = False) -> None:
    for (i, j), v in np.ndenumerate(m):
        text = fmt(v)
        if text:
            strong = (abs(v) if absolute else v) > threshold
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color="white" if strong else "0.15")
