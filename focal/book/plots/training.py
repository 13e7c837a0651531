"""The figures of chapters 3-5 drawn from the data and the training runs: class counts and sample images of the
long-tailed data, learning curves, top-1 error, per-class and per-group accuracy, reliability diagrams, calibration
before and after temperature scaling, and fitted temperatures. One function per figure.

Every function draws into a new :class:`matplotlib.figure.Figure` (not registered with pyplot, so a notebook
shows it only where it is returned or glued) or, where it takes ``ax``, into the given axes, in the style of
:mod:`focal.book.plots.style`. Captions live in the notebooks (``myst_nb.glue`` + ``{glue:figure}``). Results come in
as tidy :class:`pandas.DataFrame` s built by :mod:`focal.book.results`; the loss column holds labels from
:func:`focal.book.labels.loss_label`, so one loss has one colour in every figure and the book's order
(:func:`focal.book.labels.book_order`).
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.ticker
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from focal.book.labels import book_order
from focal.book.plots.style import (as_numpy, check_columns, figure_axes, legend_below, loss_palette, new_figure,
                                    set_style)

__all__ = [
    "plot_class_counts", "plot_sample_grid", "plot_learning_curves", "plot_top1_error", "plot_per_class_accuracy",
    "plot_group_accuracy", "plot_reliability_diagrams", "plot_calibration", "plot_temperatures",
]

_AXIS_LABELS = {
    "top1_error": "test top-1 error (%)", "test_top1_error": "test top-1 error (%)", "ece": "test ECE (%)",
    "test_ece": "test ECE (%)", "train_loss": "training loss", "train_acc": "training accuracy (%)",
    "train_top1_error": "training top-1 error (%)", "lr": "learning rate",
}


# ------------------------------------------------------------------------------------------- chapter 3
def plot_class_counts(counts, *, ax=None) -> Figure:
    """Training images per class, head to tail, on a log axis: one line per imbalance ratio, one panel per
    long tail.

    Args:
        counts: tidy DataFrame with columns ``lt_profile`` ("exp"/"step"), ``imbalance``, ``class_index``
            (0 = head), ``count``.
        ax: draw everything into one axes (profiles then differ by line style).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame(dict(lt_profile="exp", imbalance=10, class_index=[0, 1], count=[100, 10]))
        >>> plot_class_counts(df).axes[0].get_yscale()
        'log'
    """
    check_columns(counts, ("lt_profile", "imbalance", "class_index", "count"), "plot_class_counts")
    profiles = list(dict.fromkeys(counts["lt_profile"]))
    if ax is not None:
        fig, axes = figure_axes(ax)[0], [ax] * len(profiles)
    else:
        fig, grid = new_figure(len(profiles), width=4.4, sharey=True)
        axes = list(grid[0])
    imbalances = sorted(set(counts["imbalance"]))
    pal = dict(zip(imbalances, sns.color_palette("rocket_r", len(imbalances))))
    for a, (prof, ls) in zip(axes, zip(profiles, ("-", "--", ":", "-."))):
        for imb in imbalances:
            sub = counts[(counts["lt_profile"] == prof) & (counts["imbalance"] == imb)].sort_values("class_index")
            a.plot(sub["class_index"], sub["count"], ls, marker="o", ms=3, color=pal[imb],
                   label=f"ρ = {imb:g}" + ("" if ax is None else f" ({prof})"))
        a.set(yscale="log", xlabel="class index (0 = head)", ylabel="training images per class",
              title=None if ax is not None else f"{prof} long tail")
        a.legend(title="imbalance")
    return fig


def plot_sample_grid(images, targets, classes, *, per_class: int = 8, counts=None, max_classes: int = 10,
                     seed: int = 0) -> Figure:
    """A grid of random training images, one row per class (head at the top).

    Args:
        images: uint8 (N, C, H, W) with C = 1 or 3.
        targets: int (N,) class indices.
        classes: class names.
        per_class: images per row (fewer if a class has fewer).
        counts: optional training images per class, shown next to the class name.
        max_classes: show at most this many classes, evenly spaced from head to tail.
        seed: which images are drawn.

    Example:
        >>> imgs = np.zeros((4, 1, 8, 8), np.uint8); t = np.array([0, 0, 1, 1])
        >>> plot_sample_grid(imgs, t, ["a", "b"], per_class=2).axes[0].get_ylabel()
        'a'
    """
    images, targets = as_numpy(images), as_numpy(targets).astype(int)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1 or 3, H, W), got shape {images.shape}")
    if len(targets) != len(images):
        raise ValueError(f"targets must have one label per image: {len(targets)} labels, {len(images)} images")
    shown = np.unique(np.linspace(0, len(classes) - 1, min(max_classes, len(classes))).round().astype(int))
    set_style()
    fig = Figure(figsize=(0.9 * per_class + 1.6, 0.9 * len(shown) + 0.4), layout="constrained")
    axes = fig.subplots(len(shown), per_class, squeeze=False)
    rng = np.random.default_rng(seed)
    for row, k in zip(axes, shown):
        idx = np.flatnonzero(targets == k)
        idx = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else idx
        for j, a in enumerate(row):
            a.set(xticks=[], yticks=[])
            a.grid(False)
            for side in a.spines.values():
                side.set_visible(False)
            if j < len(idx):
                img = images[idx[j]].transpose(1, 2, 0)
                a.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=255)
        name = classes[k] + (f" ({int(counts[k])})" if counts is not None else "")
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.supxlabel("random training images")
    return fig


# ------------------------------------------------------------------------------------------ chapter 4
def plot_learning_curves(history, *, metrics=("top1_error", "ece"), ax=None) -> Figure:
    """Per-epoch curves, mean over seeds with a ±1 std band, one panel per metric.

    Args:
        history: tidy DataFrame with columns ``loss``, ``seed``, ``epoch`` and one column per metric.
        metrics: which columns to plot.
        ax: draw the first metric only, into this axes.

    Example:
        >>> import pandas as pd
        >>> h = pd.DataFrame(dict(loss="CE", seed=0, epoch=[1, 2], top1_error=[50., 40.], ece=[9., 5.]))
        >>> [a.get_ylabel() for a in plot_learning_curves(h).axes]
        ['test top-1 error (%)', 'test ECE (%)']
    """
    check_columns(history, ("loss", "seed", "epoch", *metrics), "plot_learning_curves")
    if ax is not None:
        fig, axes, metrics = figure_axes(ax)[0], [ax], metrics[:1]
    else:
        fig, grid = new_figure(len(metrics), width=4.4, height=3.4)
        axes = list(grid[0])
    order = book_order(history["loss"])
    for i, (a, m) in enumerate(zip(axes, metrics)):
        sns.lineplot(data=history.dropna(subset=[m]), x="epoch", y=m, hue="loss", hue_order=order,
                     palette=loss_palette(order), errorbar="sd", marker="o", markersize=4, ax=a, legend=i == 0)
        a.set(xlabel="epoch", ylabel=_AXIS_LABELS.get(m, m.replace("_", " ")))
        a.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if history["epoch"].nunique() == 1:  # a single epoch: one tick, not a fractional axis
            a.set_xticks(sorted(history["epoch"].unique()))
    legend_below(axes[0], len(order))
    return fig


def plot_top1_error(runs, *, ax=None) -> Figure:
    """Test top-1 error per loss: bar = mean over seeds, error bar = ±1 std, dots = single seeds.

    Args:
        runs: DataFrame with columns ``loss``, ``seed``, ``top1_error`` (percent).

    Example:
        >>> import pandas as pd
        >>> r = pd.DataFrame(dict(loss=["CE", "CE"], seed=[0, 1], top1_error=[30., 32.]))
        >>> plot_top1_error(r).axes[0].get_ylabel()
        'test top-1 error (%)'
    """
    check_columns(runs, ("loss", "seed", "top1_error"), "plot_top1_error")
    fig, ax = figure_axes(ax, width=6.5)
    order = book_order(runs["loss"])
    pal = loss_palette(order)
    sns.barplot(data=runs, x="loss", y="top1_error", hue="loss", order=order, hue_order=order, palette=pal,
                errorbar="sd", capsize=0.2, ax=ax, legend=False, alpha=0.8)
    sns.stripplot(data=runs, x="loss", y="top1_error", order=order, color="0.15", size=4, ax=ax)
    ax.set(xlabel="loss", ylabel="test top-1 error (%)")
    ax.tick_params(axis="x", rotation=15)
    return fig


def plot_per_class_accuracy(per_class, *, ax=None) -> Figure:
    """Test accuracy per class from head to tail (mean ± std over seeds), over the training counts.

    Args:
        per_class: DataFrame with columns ``loss``, ``seed``, ``class_rank`` (0 = most training images),
            ``accuracy`` (percent), ``train_count``, and optionally ``class`` (names for the ticks).

    Example:
        >>> import pandas as pd
        >>> d = pd.DataFrame(dict(loss="CE", seed=0, class_rank=[0, 1], accuracy=[90., 20.],
        ...                       train_count=[100, 1], **{"class": ["a", "b"]}))
        >>> plot_per_class_accuracy(d).axes[0].get_ylabel()
        'test accuracy (%)'
    """
    check_columns(per_class, ("loss", "seed", "class_rank", "accuracy", "train_count"), "plot_per_class_accuracy")
    fig, ax = figure_axes(ax, width=8.0, height=4.0)
    counts = per_class.groupby("class_rank")["train_count"].first().sort_index()
    twin = ax.twinx()
    twin.bar(counts.index, counts.values, color="0.88", width=0.8, zorder=0)
    twin.set(yscale="log", ylabel="training images (log scale, grey bars)")
    twin.grid(False)
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    order = book_order(per_class["loss"])
    sns.lineplot(data=per_class, x="class_rank", y="accuracy", hue="loss", hue_order=order,
                 palette=loss_palette(order), errorbar="sd", err_style="bars", marker="o", ax=ax,
                 err_kws={"capsize": 2})
    legend_below(ax, len(order), offset=-0.22)
    ax.set(xlabel="class, head → tail", ylabel="test accuracy (%)", ylim=(-2, 102))
    if "class" in per_class and len(counts) <= 20:
        names = per_class.groupby("class_rank")["class"].first().sort_index()
        ax.set_xticks(list(names.index), [f"{n}\n({c})" for n, c in zip(names, counts)], fontsize=8)
    return fig


def plot_group_accuracy(groups, *, ax=None) -> Figure:
    """Mean test accuracy of class groups (many/medium/few or head/middle/tail), ±1 std over seeds.

    Args:
        groups: DataFrame with columns ``loss``, ``seed``, ``group``, ``accuracy`` (percent).

    Example:
        >>> import pandas as pd
        >>> g = pd.DataFrame(dict(loss="CE", seed=0, group=["head", "tail"], accuracy=[90., 10.]))
        >>> plot_group_accuracy(g).axes[0].get_xlabel()
        'class group'
    """
    check_columns(groups, ("loss", "seed", "group", "accuracy"), "plot_group_accuracy")
    fig, ax = figure_axes(ax, width=6.5)
    order = book_order(groups["loss"])
    sns.barplot(data=groups, x="group", y="accuracy", hue="loss", hue_order=order, palette=loss_palette(order),
                errorbar="sd", capsize=0.1, ax=ax)
    ax.set(xlabel="class group", ylabel="test accuracy (%)", ylim=(0, 100))
    legend_below(ax, len(order))
    return fig


# ------------------------------------------------------------------------------------------ chapter 5
def plot_reliability_diagrams(diagrams: Mapping[str, Mapping], *, ece: Mapping[str, float] | None = None) -> Figure:
    """Reliability diagrams side by side (accuracy per confidence bin against the diagonal, gaps shaded), each over a
    histogram of how many images fall in each bin, so that a bar drawn from a handful of images is seen as such.

    Args:
        diagrams: ``{loss label: dict}`` with numpy arrays ``lower``, ``upper`` (bin edges), ``accuracy`` and
            ``count`` per bin (as :func:`focal.engine.metrics.reliability_diagram` returns).
        ece: optional ``{loss label: ECE in percent}`` written into each panel.

    Example:
        >>> d = dict(lower=np.array([0, .5]), upper=np.array([.5, 1]), accuracy=np.array([.2, .9]),
        ...          confidence=np.array([.4, .8]), count=np.array([3, 7]))
        >>> [a.get_ylabel() for a in plot_reliability_diagrams({"CE": d}).axes]
        ['accuracy', 'share of images (%)']
    """
    if not diagrams:
        raise ValueError("diagrams must hold at least one {label: reliability data} entry")
    set_style()
    fig = Figure(figsize=(3.2 * len(diagrams), 4.6), layout="constrained")
    grid = fig.subplots(2, len(diagrams), squeeze=False, sharex=True, sharey="row",
                        gridspec_kw=dict(height_ratios=[3, 1.1]))
    pal = loss_palette(list(diagrams))
    for i, (label, d) in enumerate(diagrams.items()):
        a, h = grid[0][i], grid[1][i]
        lower, upper = np.asarray(d["lower"], float), np.asarray(d["upper"], float)
        acc, count = np.asarray(d["accuracy"], float), np.asarray(d["count"])
        mid, width = (lower + upper) / 2, upper - lower
        conf = np.asarray(d.get("confidence", mid), float)
        full = count > 0  # empty bins have no accuracy: draw nothing there
        a.bar(mid[full], acc[full], width=width[full], color=pal[label], edgecolor="white", label="accuracy")
        a.bar(mid[full], conf[full] - acc[full], bottom=acc[full], width=width[full], color="tab:red", alpha=0.25,
              hatch="//", edgecolor="tab:red", label="gap to mean confidence")
        a.plot([0, 1], [0, 1], "--", color="0.3", lw=1)
        title = label if ece is None or label not in ece else f"{label}\nECE {ece[label]:.2f}%"
        a.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy" if i == 0 else "", title=title)
        share = 100 * count / max(int(count.sum()), 1)
        h.bar(mid, share, width=width, color=pal[label], edgecolor="white")
        h.set(xlabel="confidence", ylabel="share of images (%)" if i == 0 else "")
    grid[0][0].legend(loc="upper left", fontsize=8)
    return fig


def plot_calibration(calib, *, ax=None) -> Figure:
    """Calibration errors before and after temperature scaling, one panel per metric.

    Args:
        calib: DataFrame with columns ``loss``, ``seed``, ``metric`` (e.g. "ECE"), ``stage``
            ("before T" / "after T") and ``value`` (percent).
        ax: draw only the first metric into this axes.

    Example:
        >>> import pandas as pd
        >>> c = pd.DataFrame(dict(loss="CE", seed=0, metric="ECE", stage=["before T", "after T"], value=[4., 1.]))
        >>> plot_calibration(c).axes[0].get_ylabel()
        'ECE (%)'
    """
    check_columns(calib, ("loss", "seed", "metric", "stage", "value"), "plot_calibration")
    metrics = list(dict.fromkeys(calib["metric"]))
    if ax is not None:
        fig, axes, metrics = figure_axes(ax)[0], [ax], metrics[:1]
    else:  # one row per metric, so the loss names fit under the bars
        fig, grid = new_figure(1, len(metrics), width=7.0, height=2.4, sharex=True)
        axes = list(grid[:, 0])
    order = book_order(calib["loss"])
    for i, (a, m) in enumerate(zip(axes, metrics)):
        sns.barplot(data=calib[calib["metric"] == m], x="loss", y="value", hue="stage", order=order,
                    palette=["0.55", "tab:blue"], errorbar="sd", capsize=0.1, ax=a, legend=i == 0)
        a.set(xlabel="loss", ylabel=f"{m} (%)")
    if axes[0].get_legend() is not None:
        sns.move_legend(axes[0], "upper right", title=None, ncol=2, fontsize=9)
    return fig


def plot_temperatures(temps, *, ax=None) -> Figure:
    """Fitted temperature per loss (bars: mean over seeds, dots: single seeds); T = 1 means "already calibrated".

    Args:
        temps: DataFrame with columns ``loss``, ``seed``, ``temperature``.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame(dict(loss=["CE", "FLSD-53"], seed=0, temperature=[2.0, 1.1]))
        >>> plot_temperatures(t).axes[0].get_ylabel()
        'fitted temperature T'
    """
    check_columns(temps, ("loss", "seed", "temperature"), "plot_temperatures")
    fig, ax = figure_axes(ax, width=6.5)
    order = book_order(temps["loss"])
    sns.barplot(data=temps, x="loss", y="temperature", hue="loss", order=order, hue_order=order,
                palette=loss_palette(order), errorbar=None, ax=ax, legend=False, alpha=0.8)
    sns.stripplot(data=temps, x="loss", y="temperature", order=order, color="0.15", size=4, ax=ax)
    ax.axhline(1.0, ls="--", color="0.3", lw=1)
    ax.set(xlabel="loss", ylabel="fitted temperature T")
    ax.tick_params(axis="x", rotation=15)
    return fig
