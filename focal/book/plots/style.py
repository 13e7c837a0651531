"""The book's figure style and the helpers every figure module shares: one seaborn theme (:func:`set_style`), one
colour per loss label (:func:`loss_palette`), new figures not registered with pyplot (:func:`new_figure`,
:func:`figure_axes`), the legend under the axes (:func:`legend_below`) and input checks (:func:`check_columns`,
:func:`as_numpy`).

This module imports nothing of :mod:`focal.book.plots`; :mod:`~focal.book.plots.training`,
:mod:`~focal.book.plots.loss` and :mod:`~focal.book.plots.compare` import it.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib  # noqa: F401  (set_style's doctest reads matplotlib.rcParams)
import matplotlib.pyplot as plt  # noqa: F401  (activates notebook figure display)
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from focal.book.labels import LOSS_LABELS

__all__ = ["set_style", "loss_palette", "new_figure", "figure_axes", "legend_below", "as_numpy", "check_columns"]

_STYLE_APPLIED = False


def set_style(*, force: bool = False) -> None:
    """Apply the book's seaborn theme once (whitegrid, colour-blind palette, readable fonts), and in a notebook show
    figures as PNG at twice the pixel density (sharp on high-density screens) and tables without truncated cells.

    Args:
        force: apply again even if already applied (e.g. after another library changed rcParams).

    Example:
        >>> set_style(); matplotlib.rcParams["axes.grid"]
        True
    """
    global _STYLE_APPLIED
    if _STYLE_APPLIED and not force:
        return
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold",
                      "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False})
    _notebook_display()
    _STYLE_APPLIED = True


def _notebook_display() -> None:
    """Inside IPython: figures as 2x-density PNG ("retina") and pandas tables with every cell shown in full."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book extra
        return
    if get_ipython() is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
    try:
        import pandas as pd

        pd.set_option("display.max_colwidth", None)
        pd.set_option("display.width", None)
    except ImportError:  # pragma: no cover
        pass


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 5.5, height: float = 3.6, **kw):
    """A new figure in the book's style with a grid of axes, ``width`` x ``height`` inches per panel.

    The figure is not registered with pyplot, so a notebook shows it only where it is returned or glued.

    Args:
        ncols, nrows: panels across and down.
        width, height: size of one panel in inches.
        **kw: passed to :meth:`matplotlib.figure.Figure.subplots` (e.g. ``sharey=True``).

    Returns:
        ``(fig, axes)`` with ``axes`` a 2-D array of shape ``(nrows, ncols)``.

    Example:
        >>> fig, axes = new_figure(2, width=4.0); axes.shape, fig.get_size_inches().tolist()
        ((1, 2), [8.0, 3.6])
    """
    set_style()
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def figure_axes(ax=None, **kw):
    """The figure and axes to draw one panel into: ``ax`` and its figure if given, else a new one-panel figure.

    Args:
        ax: axes to draw into, or None.
        **kw: passed to :func:`new_figure` when ``ax`` is None (e.g. ``width=6.5``).

    Example:
        >>> fig, ax = figure_axes(width=6.5); figure_axes(ax) == (fig, ax), fig.get_size_inches().tolist()
        (True, [6.5, 3.6])
    """
    if ax is not None:
        set_style()
        return ax.figure, ax
    fig, axes = new_figure(**kw)
    return fig, axes[0, 0]


def loss_palette(labels: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per loss label: the book's settings (:data:`focal.book.labels.LOSS_LABELS`) always get the same
    colours, other labels the colours left over.

    Example:
        >>> pal = loss_palette(["focal γ=2", "CE", "mine"])
        >>> pal["CE"] == loss_palette(["CE"])["CE"], len(pal)
        (True, 3)
    """
    colours = sns.color_palette("colorblind", 10)
    known = {name: colours[i] for i, name in enumerate(LOSS_LABELS)}
    extra = iter(colours[len(LOSS_LABELS):] + colours)
    return {lab: known[lab] if lab in known else next(extra) for lab in dict.fromkeys(labels)}


def legend_below(ax, n_entries: int, offset: float = -0.16) -> None:
    """Move the axes' legend under the plot, in as few rows as fit, so it never hides data; no-op without legend."""
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, offset), ncol=min(n_entries, 3), title=None,
                        frameon=False, fontsize=9)


def as_numpy(x) -> np.ndarray:
    """``x`` as a numpy array; a torch tensor is detached and copied to the CPU first.

    Example:
        >>> as_numpy([1, 2])
        array([1, 2])
    """
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def check_columns(df, columns, what: str) -> None:
    """Raise a ``ValueError`` naming ``what`` and the missing ones unless ``df`` has all of ``columns``.

    Example:
        >>> import pandas as pd
        >>> check_columns(pd.DataFrame(dict(loss=["CE"])), ("loss", "seed"), "plot_x")
        Traceback (most recent call last):
        ...
        ValueError: plot_x needs columns ['loss', 'seed']; missing ['seed'] (got ['loss'])
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs columns {list(columns)}; missing {missing} (got {list(df.columns)})")
