"""Figures of the loss itself for chapters 1-2: focal loss and its modulating factor against :math:`p_t`, its
gradient, a gradient check and the speed/memory benchmark. Same style and conventions as :mod:`focal.plots` (each
function returns a :class:`matplotlib.figure.Figure`, or draws into ``ax`` when given); importable from either
module.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from focal.plots import _check_columns, _fig_ax, _figure, _numpy, set_style, sns

__all__ = ["plot_focal_curves", "plot_modulating_factor", "plot_logit_gradient", "plot_gradient_check",
           "plot_benchmark"]


def plot_focal_curves(gammas=(0, 0.5, 1, 2, 5), *, alpha=None, ax=None) -> Figure:
    """Focal loss against the probability of the true class (Lin et al. 2017, Fig. 1).

    .. math:: \\mathrm{FL}(p_t) = -\\alpha (1 - p_t)^\\gamma \\log p_t

    Example:
        >>> fig = plot_focal_curves((0, 2)); fig.axes[0].get_xlabel()
        'probability of the true class $p_t$'
    """
    fig, ax = _fig_ax(ax)
    p = np.linspace(1e-3, 1.0, 400)
    a = 1.0 if alpha is None else float(alpha)
    for g in gammas:
        ax.plot(p, -a * (1 - p) ** g * np.log(p), label=f"γ = {g:g}" + (" (CE)" if g == 0 else ""))
    ax.axvspan(0.6, 1.0, color="0.9", zorder=0, label="well-classified")
    ax.set(xlabel="probability of the true class $p_t$", ylabel="loss", ylim=(0, 5), xlim=(0, 1))
    ax.legend()
    return fig


def plot_modulating_factor(gammas=(0, 0.5, 1, 2, 5), *, ax=None) -> Figure:
    """The modulating factor :math:`(1-p_t)^\\gamma` on a log axis: how much each example is down-weighted.

    Example:
        >>> plot_modulating_factor((1, 2)).axes[0].get_yscale()
        'log'
    """
    fig, ax = _fig_ax(ax)
    p = np.linspace(0.0, 0.999, 400)
    for g in gammas:
        ax.plot(p, np.clip((1 - p) ** g, 1e-6, None), label=f"γ = {g:g}")
    ax.set(yscale="log", xlabel="$p_t$", ylabel="modulating factor $(1-p_t)^\\gamma$", xlim=(0, 1))
    ax.legend()
    return fig


def plot_logit_gradient(gammas=(0, 0.5, 1, 2, 5), *, ax=None) -> Figure:
    """Gradient of binary focal loss with respect to the true-class logit, :math:`p_t = \\sigma(z_t)`.

    .. math:: \\frac{\\partial \\mathrm{FL}}{\\partial z_t} = (1-p_t)^\\gamma (\\gamma p_t \\log p_t + p_t - 1)

    Example:
        >>> plot_logit_gradient((0, 2)).axes[0].get_ylabel()
        '$\\\\partial FL / \\\\partial z_t$'
    """
    fig, ax = _fig_ax(ax)
    p = np.linspace(1e-3, 0.999, 400)
    for g in gammas:
        ax.plot(p, (1 - p) ** g * (g * p * np.log(p) + p - 1), label=f"γ = {g:g}")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set(xlabel="$p_t$", ylabel="$\\partial FL / \\partial z_t$", xlim=(0, 1))
    ax.legend()
    return fig


def plot_gradient_check(analytic, autograd, *, ax=None) -> Figure:
    """Hand-derived gradients against autograd's, with the y = x line and the largest difference.

    Example:
        >>> g = np.linspace(-1, 1, 5)
        >>> plot_gradient_check(g, g).axes[0].get_title()
        'max |difference| = 0'
    """
    analytic = np.asarray(_numpy(analytic), dtype=float).ravel()
    autograd = np.asarray(_numpy(autograd), dtype=float).ravel()
    if analytic.shape != autograd.shape:
        raise ValueError(f"analytic and autograd must have the same number of entries, got "
                         f"{analytic.size} and {autograd.size}")
    fig, ax = _fig_ax(ax, width=4.5, height=4.5)
    lo, hi = float(min(analytic.min(), autograd.min())), float(max(analytic.max(), autograd.max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1, zorder=0, label="y = x")
    ax.scatter(autograd, analytic, s=12, alpha=0.7)
    ax.set(xlabel="autograd $\\partial FL / \\partial z$", ylabel="hand-derived $\\partial FL / \\partial z$",
           title=f"max |difference| = {np.abs(analytic - autograd).max():.2g}")
    ax.legend()
    return fig


def plot_benchmark(rows, *, ax=None) -> Figure:
    """Speed (and peak memory, when measured) of each implementation relative to cross-entropy.

    Args:
        rows: dicts with keys ``case``, ``impl``, ``time_ratio`` and optionally ``mem_ratio`` (None if unmeasured),
            as ``benchmarks/loss.py --json`` writes them.
        ax: draw only the time panel into this axes.

    Example:
        >>> rows = [dict(case="N=8", impl="focal", time_ratio=1.2, mem_ratio=None)]
        >>> [a.get_ylabel() for a in plot_benchmark(rows).axes]
        ['time / cross-entropy']
    """
    import pandas as pd

    df = pd.DataFrame(list(rows))
    _check_columns(df, ("case", "impl", "time_ratio"), "plot_benchmark")
    panels = [("time_ratio", "time / cross-entropy")]
    if ax is None and "mem_ratio" in df and df["mem_ratio"].notna().any():
        panels.append(("mem_ratio", "peak memory / cross-entropy"))
    if ax is not None:
        fig, axes = ax.figure, [ax]
        set_style()
    else:
        fig, grid = _figure(len(panels), width=4.6)
        axes = list(grid[0])
    for a, (col, label) in zip(axes, panels):
        sns.barplot(data=df.dropna(subset=[col]), x="case", y=col, hue="impl", ax=a)
        a.axhline(1.0, ls="--", color="0.3", lw=1, label="cross-entropy")
        a.set(xlabel="case", ylabel=label)
        a.tick_params(axis="x", rotation=20)
        a.legend()
    return fig
