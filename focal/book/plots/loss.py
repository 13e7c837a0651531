"""The figures of the loss itself, chapters 1-2: focal loss and its modulating factor against :math:`p_t`, its
gradient, a gradient check and the gradient's weight relative to cross-entropy (the benchmark's figures are
:mod:`focal.book.plots.bench`). Each
function returns a :class:`matplotlib.figure.Figure` in the style of :mod:`focal.book.plots.style`, or draws into
``ax`` when given.

The computations behind chapter 1's figures live here too: :func:`gradient_weight`, the factor
:math:`w_\\gamma(p_t)` by which focal loss rescales cross-entropy's gradient, :func:`amplification_threshold`, the
:math:`p_t` below which that factor exceeds 1, and :data:`FLSD53`.
"""
from __future__ import annotations

import math

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from focal.book.plots.style import as_numpy, figure_axes, new_figure, set_style

__all__ = ["plot_focal_curves", "plot_modulating_factor", "plot_logit_gradient", "plot_gradient_check",
           "plot_gradient_weight", "gradient_weight", "amplification_threshold", "FLSD53"]


def plot_focal_curves(gammas=(0, 0.5, 1, 2, 5), *, alpha=None, ax=None) -> Figure:
    """Focal loss against the probability of the true class (Lin et al. 2017, Fig. 1).

    .. math:: \\mathrm{FL}(p_t) = -\\alpha (1 - p_t)^\\gamma \\log p_t

    Example:
        >>> fig = plot_focal_curves((0, 2)); fig.axes[0].get_xlabel()
        'probability of the true class $p_t$'
    """
    fig, ax = figure_axes(ax)
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
    fig, ax = figure_axes(ax)
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
    fig, ax = figure_axes(ax)
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
    analytic = np.asarray(as_numpy(analytic), dtype=float).ravel()
    autograd = np.asarray(as_numpy(autograd), dtype=float).ravel()
    if analytic.shape != autograd.shape:
        raise ValueError(f"analytic and autograd must have the same number of entries, got "
                         f"{analytic.size} and {autograd.size}")
    fig, ax = figure_axes(ax, width=4.5, height=4.5)
    lo, hi = float(min(analytic.min(), autograd.min())), float(max(analytic.max(), autograd.max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1, zorder=0, label="y = x")
    ax.scatter(autograd, analytic, s=12, alpha=0.7)
    ax.set(xlabel="autograd $\\partial FL / \\partial z$", ylabel="hand-derived $\\partial FL / \\partial z$",
           title=f"max |difference| = {np.abs(analytic - autograd).max():.2g}")
    ax.legend()
    return fig


# ------------------------------------------------------------------------------- the gradient's weight w_γ(p_t)
#: FLSD-53 of :cite:`mukhoti2020calibrating` as ``focal.losses.focal_loss(gamma="flsd53")`` applies it:
#: ``(threshold, gamma_below, gamma_above)``, i.e. γ = 5 where :math:`p_t < 0.2`, else γ = 3.
FLSD53 = (0.2, 5.0, 3.0)


def _check_gamma(gamma, *, positive: bool = False) -> float:
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a real number, got {gamma!r}") from None
    if not math.isfinite(g) or g < 0 or (positive and g == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"gamma must be a finite number {bound}, got {gamma!r}")
    return g


def gradient_weight(p_t, gamma):
    """The factor by which focal loss rescales cross-entropy's gradient with respect to the logits.

    .. math::

        \\frac{\\partial \\mathrm{FL}}{\\partial z} = w_\\gamma(p_t)\\,\\frac{\\partial \\mathrm{CE}}{\\partial z},
        \\qquad
        w_\\gamma(p_t) = (1 - p_t)^\\gamma - \\gamma\\, p_t (1 - p_t)^{\\gamma - 1} \\log p_t
                      = (1 - p_t)^\\gamma \\Bigl[1 - \\gamma\\, \\frac{p_t \\log p_t}{1 - p_t}\\Bigr]

    Evaluated in float64 in the second form, which stays finite as :math:`p_t \\to 1` for every γ (also
    0 < γ < 1), with the limits :math:`w_\\gamma(0) = 1` and :math:`w_\\gamma(1) = 0` (γ > 0). :math:`w_0 = 1`:
    cross-entropy. :math:`w_\\gamma > 1` (the gradient is *amplified*) for :math:`p_t` below
    :func:`amplification_threshold`, and :math:`w_\\gamma < 1` (damped) above it.

    Args:
        p_t: probability of the true class, a number or array with values in [0, 1].
        gamma: focusing parameter γ ≥ 0.

    Returns:
        a float64 array of ``p_t``'s shape (a 0-d array for a number).

    Example:
        >>> gradient_weight([0.0, 0.05, 0.5, 0.9, 1.0], 2.0).round(4)
        array([1.    , 1.1871, 0.5966, 0.029 , 0.    ])
        >>> float(gradient_weight(0.3, 0.0))
        1.0
    """
    g = _check_gamma(gamma)
    p = np.asarray(p_t, dtype=np.float64)
    if not np.all((p >= 0) & (p <= 1)):  # also rejects NaN
        raise ValueError(f"p_t must lie in [0, 1], got values from {np.nanmin(p)} to {np.nanmax(p)}"
                         if np.any(np.isfinite(p)) else f"p_t must lie in [0, 1], got {p_t!r}")
    inner = (p > 0) & (p < 1)
    q = np.where(inner, p, 0.5)  # placeholder away from the ends, replaced below
    w = (1 - q) ** g * (1 - g * q * np.log(q) / (1 - q))
    w = np.where(p == 0, 1.0, w)
    w = np.where(p == 1, 1.0 if g == 0 else 0.0, w)
    return w


def _weight_minus_one(p: float, g: float) -> float:
    """w_γ(p) - 1 without cancellation at small p: expm1(γ log1p(-p)) is (1 - p)^γ - 1 to full precision."""
    if p >= 1.0:
        return -1.0
    return math.expm1(g * math.log1p(-p)) - g * (1 - p) ** g * (p * math.log(p) / (1 - p))


def amplification_threshold(gamma) -> float:
    """The probability :math:`p^*_\\gamma` of the true class at which focal loss's gradient equals cross-entropy's.

    .. math::

        w_\\gamma(p^*_\\gamma) = 1, \\qquad w_\\gamma(p_t) > 1 \\text{ for } 0 < p_t < p^*_\\gamma, \\qquad
        w_\\gamma(p_t) < 1 \\text{ for } p^*_\\gamma < p_t \\le 1

    with :math:`w_\\gamma` of :func:`gradient_weight`: below :math:`p^*_\\gamma` focal loss *amplifies* the
    gradient of an example relative to cross-entropy, above it it damps it. Near 0,
    :math:`w_\\gamma(p_t) - 1 \\approx \\gamma\\, p_t (-\\log p_t - 1) > 0`, and :math:`w_\\gamma(1) = 0`, so the
    root is bracketed; it is found by bisection in float64 down to adjacent floats, on
    :math:`w_\\gamma - 1` evaluated without cancellation (``expm1``/``log1p``). :math:`p^*_\\gamma` falls from 1/2
    as γ → 0 towards 0 as γ grows.

    Args:
        gamma: focusing parameter γ > 0 (at γ = 0, :math:`w = 1` everywhere and there is no threshold).

    Returns:
        :math:`p^*_\\gamma` as a float in (0, 1/2).

    Example:
        >>> round(amplification_threshold(5.0), 4), round(amplification_threshold(1.0), 4)
        (0.1968, 0.3679)
        >>> float(gradient_weight(amplification_threshold(3.0), 3.0))
        1.0
    """
    g = _check_gamma(gamma, positive=True)
    lo, hi = 0.25, 1.0
    while _weight_minus_one(lo, g) <= 0:  # w(lo) > 1 holds once lo is small enough (see above)
        lo *= 0.5
        if lo < 1e-300:
            raise ValueError(f"gamma = {gamma!r} is too large: its threshold is below 1e-300")
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return lo if abs(_weight_minus_one(lo, g)) <= abs(_weight_minus_one(hi, g)) else hi
        if _weight_minus_one(mid, g) > 0:
            lo = mid
        else:
            hi = mid


def plot_gradient_weight(gammas=(0.5, 1, 2, 3, 5), *, flsd53: bool = True, ax=None) -> Figure:
    """The gradient's weight :math:`w_\\gamma(p_t)` of :func:`gradient_weight` against :math:`p_t`, with the line
    :math:`w = 1` (cross-entropy): hard examples amplified above it, easy ones damped below.

    Two panels: a linear axis, on which the amplified region :math:`w > 1` is shaded and each γ's
    :func:`amplification_threshold` is marked on the line :math:`w = 1`; and a log axis, which shows how strongly
    easy examples are damped. With ``flsd53``, the schedule of :data:`FLSD53` (γ = 5 below :math:`p_t = 0.2`, else
    γ = 3) is drawn in black, with its jump at the switch.

    Args:
        gammas: focusing parameters, each > 0.
        flsd53: also draw FLSD-53's weight.
        ax: draw only the linear panel into this axes.

    Example:
        >>> fig = plot_gradient_weight((3, 5))
        >>> [a.get_yscale() for a in fig.axes], fig.axes[0].get_ylabel()
        (['linear', 'log'], 'gradient weight $w_\\\\gamma(p_t)$')
    """
    gammas = [_check_gamma(g, positive=True) for g in gammas]
    if ax is not None:
        fig, axes = ax.figure, [ax]
        set_style()
    else:
        fig, grid = new_figure(2, width=5.2, height=3.8)
        axes = list(grid[0])
    p = np.linspace(0.0, 1.0, 2001)
    p_log = np.linspace(0.0, 0.999, 2001)
    palette = sns.color_palette("colorblind", 10)  # reordered so that neighbours in `gammas` differ in hue
    colours = [palette[i] for i in (0, 2, 1, 4, 3, 8, 5, 9, 6, 7) * (len(gammas) // 10 + 1)]
    threshold, g_low, g_high = FLSD53
    peak = max([1.0] + [float(gradient_weight(p, g).max()) for g in gammas])
    for i, a in enumerate(axes):
        x = p if i == 0 else p_log
        for g, colour in zip(gammas, colours):
            star = amplification_threshold(g)
            a.plot(x, gradient_weight(x, g), color=colour, label=f"γ = {g:g}: w > 1 for $p_t$ < {star:.3f}")
            a.plot([star], [1.0], "o", color=colour, ms=5, zorder=5)
        if flsd53:
            below = np.where(x < threshold, gradient_weight(x, g_low), np.nan)
            above = np.where(x >= threshold, gradient_weight(x, g_high), np.nan)
            label = f"FLSD-53 (γ = {g_low:g} below $p_t$ = {threshold:g}, else {g_high:g})"
            a.plot(x, below, color="k", lw=1.6, ls="--", label=label)
            a.plot(x, above, color="k", lw=1.6, ls="--")
            a.axvline(threshold, color="0.4", lw=0.8, ls=":")
        a.axhline(1.0, color="0.2", lw=1.0, label="w = 1: cross-entropy's gradient")
        a.set(xlabel="probability of the true class $p_t$", xlim=(0, 1))
        if i == 0:
            top = 1.08 * peak
            a.axhspan(1.0, top, color="#f4c7c3", alpha=0.45, lw=0, zorder=0, label="w > 1: amplified")
            a.set(ylim=(0, top), ylabel="gradient weight $w_\\gamma(p_t)$", title="hard examples: amplified")
        else:
            a.axhspan(1.0, 1.3 * peak, color="#f4c7c3", alpha=0.45, lw=0, zorder=0)
            a.set(yscale="log", ylim=(1e-6, 1.3 * peak), ylabel="gradient weight $w_\\gamma(p_t)$ (log)",
                  title="easy examples: damped")
    if ax is None:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False, fontsize=9)
    else:
        axes[0].legend(fontsize=8)
    return fig
