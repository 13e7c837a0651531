"""focal.book.plots.loss: the figures of the loss follow its formulas; the gradient weight w_γ(p_t) and its
amplification threshold."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from focal.book.plots.loss import (FLSD53, amplification_threshold, gradient_weight,  # noqa: E402
                                   plot_focal_curves, plot_gradient_weight, plot_logit_gradient)
from focal.losses import focal_loss  # noqa: E402

GAMMAS = (0.05, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 50.0)


def _weight_by_autograd(p_t, gamma):
    """dFL/dz divided by dCE/dz for two-class logits that give the true class exactly p_t (float64 autograd)."""
    pt = torch.as_tensor(p_t, dtype=torch.float64)
    z = torch.stack([pt.log(), (-pt).log1p()], dim=1).requires_grad_()
    t = torch.zeros(len(pt), dtype=torch.long)
    (g_fl,) = torch.autograd.grad(focal_loss(z, t, gamma=gamma, reduction="sum"), z)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(z, t, reduction="sum"), z)
    return (g_fl[:, 0] / g_ce[:, 0]).numpy()


# ------------------------------------------------------------------------------------------- gradient_weight
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.0, 5.0])
def test_gradient_weight_is_the_ratio_of_focal_to_cross_entropy_gradients(gamma):
    p = np.array([1e-4, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99])
    np.testing.assert_allclose(gradient_weight(p, gamma), _weight_by_autograd(p, gamma), rtol=1e-9)


def test_gradient_weight_matches_the_first_form_of_the_formula():
    p = np.linspace(0.01, 0.99, 99)
    for g in GAMMAS:
        expected = (1 - p) ** g - g * p * (1 - p) ** (g - 1) * np.log(p)
        np.testing.assert_allclose(gradient_weight(p, g), expected, rtol=1e-10)


def test_gradient_weight_limits_and_cross_entropy():
    assert np.all(gradient_weight(np.linspace(0, 1, 11), 0.0) == 1.0)  # γ = 0: cross-entropy everywhere
    for g in GAMMAS:
        assert gradient_weight(0.0, g) == 1.0 and gradient_weight(1.0, g) == 0.0
    near_one = gradient_weight(1 - 1e-12, 0.5)  # 0 < γ < 1: the first form would be 0 · ∞ here
    assert np.isfinite(near_one) and 0 < near_one < 1e-5
    assert gradient_weight(0.3, 2).shape == () and gradient_weight([[0.3, 0.4]], 2).shape == (1, 2)


# ------------------------------------------------------------------------------------ amplification_threshold
@pytest.mark.parametrize("gamma", GAMMAS)
def test_threshold_is_where_the_weight_crosses_one(gamma):
    star = amplification_threshold(gamma)
    assert 0 < star < 0.5
    assert gradient_weight(star, gamma) == pytest.approx(1.0, abs=1e-12)
    below = np.linspace(0, star, 2002)[1:-1]
    above = np.linspace(star, 1, 2002)[1:]
    assert np.all(gradient_weight(below, gamma) > 1), "w > 1 (amplified) everywhere below the threshold"
    assert np.all(gradient_weight(above, gamma) < 1), "w < 1 (damped) everywhere above the threshold"
    # the root to float64 resolution: one step either side flips the sign of w - 1 (allowing rounding of w)
    assert gradient_weight(star * (1 - 1e-9), gamma) > 1 > gradient_weight(star * (1 + 1e-9), gamma)


def test_threshold_known_values():
    # γ = 1: w = 1 - p - p log p = 1 exactly where log p = -1
    assert amplification_threshold(1.0) == pytest.approx(1 / math.e, rel=1e-15)
    # γ = 5: about 0.2, the switch point of FLSD-53
    assert amplification_threshold(5.0) == pytest.approx(0.196803, abs=1e-6)
    assert amplification_threshold(3.0) == pytest.approx(0.252584, abs=1e-6)
    # γ -> 0: the first-order condition (1 - p) log(1 - p) = p log p has its root at 1/2
    assert amplification_threshold(1e-8) == pytest.approx(0.5, abs=1e-6)


def test_threshold_falls_as_gamma_grows():
    stars = [amplification_threshold(g) for g in (0.01, *GAMMAS, 1e3, 1e6)]
    assert all(a > b for a, b in zip(stars, stars[1:]))
    assert 0 < stars[-1] < 1e-5


@pytest.mark.parametrize("gamma", [0, 0.0, -1.0, float("nan"), float("inf"), "two", None])
def test_threshold_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        amplification_threshold(gamma)


@pytest.mark.parametrize("p_t, gamma, match", [
    (1.5, 2.0, "p_t"), (-0.1, 2.0, "p_t"), ([0.2, float("nan")], 2.0, "p_t"),
    (0.5, -1.0, "gamma"), (0.5, float("nan"), "gamma"), (0.5, "x", "gamma"),
])
def test_gradient_weight_rejects_bad_input(p_t, gamma, match):
    with pytest.raises(ValueError, match=match):
        gradient_weight(p_t, gamma)


def test_flsd53_constant_is_the_packages_schedule():
    threshold, g_below, g_above = FLSD53
    p = np.array([0.02, 0.1, threshold * 0.99, threshold * 1.01, 0.4, 0.8])
    expected = np.where(p < threshold, gradient_weight(p, g_below), gradient_weight(p, g_above))
    np.testing.assert_allclose(_weight_by_autograd(p, "flsd53"), expected, rtol=1e-9)


# --------------------------------------------------------------------------------------- plot_gradient_weight
def test_gradient_weight_figure_shows_weights_threshold_and_both_scales():
    before = plt.get_fignums()
    fig = plot_gradient_weight((3, 5))
    assert plt.get_fignums() == before
    linear, log = fig.axes
    assert (linear.get_yscale(), log.get_yscale()) == ("linear", "log")
    assert linear.get_ylim()[1] > gradient_weight(np.linspace(0, 1, 1001), 5).max() > 1, "w > 1 must be on the axes"
    curves = [line for line in linear.lines if line.get_label().startswith("γ = ")]
    assert [c.get_label().split(":")[0] for c in curves] == ["γ = 3", "γ = 5"]
    for curve, g in zip(curves, (3, 5)):
        np.testing.assert_allclose(curve.get_ydata(), gradient_weight(curve.get_xdata(), g))
        assert f"{amplification_threshold(g):.3f}" in curve.get_label()
    markers = [line for line in linear.lines if line.get_marker() == "o"]
    assert sorted(float(m.get_xdata()[0]) for m in markers) == sorted(amplification_threshold(g) for g in (3, 5))
    assert any(np.allclose(line.get_ydata(), 1.0) for line in linear.lines), "the line w = 1 is drawn"
    for a in fig.axes:
        assert a.get_xlabel() and a.get_ylabel()


def test_gradient_weight_figure_flsd53_jumps_at_the_switch():
    fig = plot_gradient_weight((5,))
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    threshold, g_below, g_above = FLSD53
    below, above = dashed
    x = below.get_xdata()
    np.testing.assert_allclose(below.get_ydata()[x < threshold], gradient_weight(x[x < threshold], g_below))
    np.testing.assert_allclose(above.get_ydata()[x >= threshold], gradient_weight(x[x >= threshold], g_above))
    assert np.isnan(below.get_ydata()[x >= threshold]).all() and np.isnan(above.get_ydata()[x < threshold]).all()
    assert not any(line.get_linestyle() == "--" for line in plot_gradient_weight((5,), flsd53=False).axes[0].lines)


def test_gradient_weight_figure_draws_into_given_axes_and_rejects_gamma_zero():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_gradient_weight((2,), ax=ax) is fig and fig.axes == [ax]
    with pytest.raises(ValueError, match="gamma"):
        plot_gradient_weight((0, 2))


# ------------------------------------------------------------------------------ the loss and its gradient
@pytest.mark.parametrize("gamma", [0, 0.5, 2])
def test_focal_curves_follow_the_formula(gamma):
    line = plot_focal_curves((gamma,)).axes[0].lines[0]
    p, loss = line.get_xdata(), line.get_ydata()
    np.testing.assert_allclose(loss, -(1 - p) ** gamma * np.log(p), rtol=1e-12)


def test_logit_gradient_matches_autograd():
    line = plot_logit_gradient((2,)).axes[0].lines[0]
    p = torch.tensor(line.get_xdata()[::40], dtype=torch.float64)
    z = torch.logit(p).requires_grad_()
    pt = torch.sigmoid(z)
    (-(1 - pt) ** 2 * torch.log(pt)).sum().backward()
    np.testing.assert_allclose(line.get_ydata()[::40], z.grad.numpy(), rtol=1e-6, atol=1e-12)
