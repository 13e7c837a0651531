"""The benchmark's figures, chapter 2: each implementation's time and memory relative to its case's baseline
(:func:`plot_benchmark`), and a classifier head's peak memory against its number of classes
(:func:`plot_memory_curve`). Reading the benchmark's results against its goals is :mod:`focal.book.bench`.
"""
from __future__ import annotations

import matplotlib.ticker
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from focal.book.plots.style import check_columns, figure_axes, new_figure, set_style

__all__ = ["plot_benchmark", "plot_memory_curve"]


def _impl_group(impl: str) -> str:
    """Legend group of a benchmark implementation: the baselines share one, so do the package's two losses."""
    if "(baseline)" in impl:
        return "baseline"
    return "focal" if impl.startswith("focal") else impl


def plot_benchmark(rows, *, ax=None) -> Figure:
    """Speed (and peak memory, when measured) of each implementation relative to the plain loss of its case.

    Each bar starts at the baseline's 1 and ends at the implementation's ratio, on a log axis (so 0.5× and 2× are
    equally far from 1) and is labelled with the ratio; the baseline itself is the dashed line. Where the rows give
    the quartiles of the per-round time ratios (``ratio_q1``, ``ratio_q3``), a whisker spans them: the middle half
    of the rounds. The baselines (``F.cross_entropy``, ``F.binary_cross_entropy_with_logits``, ``focal_loss`` on
    materialised logits) share one legend entry and so do the package's losses, so each kind of implementation has
    one colour across cases.

    Args:
        rows: dicts with keys ``case``, ``impl``, ``time_ratio`` and optionally ``ratio_q1``, ``ratio_q3`` and
            ``mem_ratio`` (None if unmeasured), as ``benchmarks/loss.py --json`` writes them.
        ax: draw only the time panel into this axes.

    Example:
        >>> rows = [dict(case="N=8", impl="focal", time_ratio=1.2, ratio_q1=1.1, ratio_q3=1.3, mem_ratio=None)]
        >>> fig = plot_benchmark(rows)
        >>> [a.get_ylabel() for a in fig.axes], [t.get_text() for t in fig.axes[0].texts]
        (['time / baseline'], ['1.20'])
    """
    df = pd.DataFrame(list(rows))
    check_columns(df, ("case", "impl", "time_ratio"), "plot_benchmark")
    panels = [("time_ratio", "time / baseline")]
    if ax is None and "mem_ratio" in df and df["mem_ratio"].notna().any():
        panels.append(("mem_ratio", "peak memory / baseline"))
    if ax is not None:
        fig, axes = ax.figure, [ax]
        set_style()
    else:
        fig, grid = new_figure(len(panels), width=5.4 if len(panels) > 1 else 7.0, height=3.9)
        axes = list(grid[0])
    groups = list(dict.fromkeys(_impl_group(i) for i in df["impl"]))
    palette = iter(sns.color_palette("colorblind", 10))
    colours = {g: "0.55" if g == "baseline" else next(palette) for g in groups}
    names = {g: " / ".join(dict.fromkeys(i.replace(" (baseline)", "") for i in df["impl"] if _impl_group(i) == g))
             for g in groups}
    cases = list(dict.fromkeys(df["case"]))
    for a, (col, label) in zip(axes, panels):
        data = df.dropna(subset=[col])
        values = data[col].astype(float)
        lo, hi = min(values.min(), 1.0) / 1.7, max(values.max(), 1.0) * 1.7
        drawn = set()
        for x, case in enumerate(cases):
            bars = data[(data["case"] == case) & (data["impl"].map(_impl_group) != "baseline")]
            width = 0.8 / max(len(bars), 1)
            for j, (_, row) in enumerate(bars.iterrows()):
                group, value = _impl_group(row["impl"]), float(row[col])
                pos = x - 0.4 + (j + 0.5) * width
                a.bar(pos, value - 1.0, bottom=1.0, width=0.9 * width, color=colours[group],
                      label=None if group in drawn else names[group])
                if col == "time_ratio" and {"ratio_q1", "ratio_q3"} <= set(row.index) and \
                        pd.notna(row["ratio_q1"]) and pd.notna(row["ratio_q3"]):
                    a.vlines(pos, float(row["ratio_q1"]), float(row["ratio_q3"]), color="0.15", lw=1.2)
                drawn.add(group)
                a.text(pos, value * (1.04 if value >= 1 else 1 / 1.04), f"{value:.2f}", ha="center",
                       va="bottom" if value >= 1 else "top", fontsize=8)
        a.axhline(1.0, ls="--", color="0.3", lw=1,
                  label="baseline = 1" + (f": {names['baseline']}" if "baseline" in names else ""))
        a.set_yscale("log")
        a.set(ylim=(lo, hi), xlabel="case", ylabel=label, xlim=(-0.6, len(cases) - 0.4))
        a.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=2))
        a.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        a.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.set_xticks(range(len(cases)), [c.replace(" ", "\n", 1) for c in cases])
        a.grid(axis="x", visible=False)
    if "ratio_q1" in df and df["ratio_q1"].notna().any():
        axes[0].plot([], [], color="0.15", lw=1.2, label="middle half of the rounds")
    if ax is None:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 1 + len(axes)),
                   frameon=False, fontsize=9)
    else:
        axes[0].legend(fontsize=8)
    return fig


def plot_memory_curve(rows, *, ax=None) -> Figure:
    """Peak extra memory of a classifier head's focal loss against the number of classes C, log-log: the
    materialised logits (``focal_loss(F.linear(x, W), t)``) against :func:`focal.linear_focal_loss`.

    Each implementation is one line; the ratio of the two at the largest C is written at its end.

    Args:
        rows: dicts with keys ``impl``, ``classes`` and ``peak_mb``, as ``benchmarks/loss.py --memory-sweep``
            writes them (the baseline's ``impl`` contains ``"(baseline)"``).
        ax: draw into this axes.

    Example:
        >>> rows = [dict(impl=i, classes=c, peak_mb=m) for i, c, m in [
        ...     ("logits (baseline)", 1024, 40.0), ("logits (baseline)", 4096, 160.0),
        ...     ("focal.linear_focal_loss", 1024, 4.0), ("focal.linear_focal_loss", 4096, 6.0)]]
        >>> fig = plot_memory_curve(rows)
        >>> fig.axes[0].get_xscale(), [t.get_text() for t in fig.axes[0].texts]
        ('log', ['0.04×'])
    """
    df = pd.DataFrame(list(rows))
    check_columns(df, ("impl", "classes", "peak_mb"), "plot_memory_curve")
    if df.empty:
        raise ValueError("plot_memory_curve needs at least one row")
    fig, ax = figure_axes(ax)
    palette = iter(sns.color_palette("colorblind", 10))
    for impl, group in df.groupby("impl", sort=False):
        group = group.sort_values("classes")
        baseline = "(baseline)" in impl
        ax.plot(group["classes"], group["peak_mb"], marker="o", ls="--" if baseline else "-",
                color="0.45" if baseline else next(palette), label=impl.replace(" (baseline)", ""))
    largest = df[df["classes"] == df["classes"].max()]
    base = largest[largest["impl"].str.contains("(baseline)", regex=False)]
    for _, row in largest[~largest.index.isin(base.index)].iterrows():
        if len(base) == 1 and float(base["peak_mb"].iloc[0]) > 0:
            ratio = float(row["peak_mb"]) / float(base["peak_mb"].iloc[0])
            ax.annotate(f"{ratio:.2f}×", (row["classes"], row["peak_mb"]), textcoords="offset points",
                        xytext=(4, 6), fontsize=9)
    ax.set(xscale="log", yscale="log", xlabel="classes C", ylabel="peak extra memory (MiB)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.legend(fontsize=9)
    return fig
