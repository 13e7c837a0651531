"""focal.engine.metrics.calibration: the ECE family against hand examples and a loop reference; temperature
scaling and its warning at a search bound."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from focal.engine.metrics import calibration as C
from focal.engine.metrics import classification as M

from runhelpers import random_probs, reference_bins  # noqa: E402

# ---------------------------------------------------------------------------------------------------- calibration
def test_ece_mce_hand_example():
    probs = [[0.95, 0.05], [0.35, 0.65], [0.55, 0.45], [0.15, 0.85]]
    labels = [0, 0, 0, 1]
    # n_bins=4, top-1 confidences .95 (hit), .65 (miss), .55 (hit), .85 (hit)
    # bin (.5, .75]: conf mean .6, acc .5 -> gap .1 * 2/4; bin (.75, 1]: conf .9, acc 1 -> gap .1 * 2/4
    assert C.expected_calibration_error(probs, labels, n_bins=4) == pytest.approx(0.1)
    assert C.max_calibration_error(probs, labels, n_bins=4) == pytest.approx(0.1)
    # n_bins=1: |3/4 - .75| = 0 ; n_bins=10: bins .55 (+.45) .65 (-.65) .85 (+.15) .95 (+.05) -> 1.3/4, max .65
    assert C.expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.0)
    assert C.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(1.3 / 4)
    assert C.max_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.65)


@pytest.mark.parametrize("n_bins, edge", [(2, 0.5), (4, 0.75), (4, 0.5), (5, 0.6), (15, 0.6)])
def test_confidence_on_an_edge_goes_to_the_lower_bin(n_bins, edge):
    probs = np.array([[edge, 1 - edge]])
    diagram = C.reliability_diagram(probs, [0], n_bins=n_bins)
    (occupied,) = np.flatnonzero(diagram["count"])
    assert diagram["upper"][occupied] == edge  # (l, u]: the edge is this bin's upper end
    # classwise: p_0 = edge is in the bin ending at edge, hit -> gap 1 - edge; p_1 = 1 - edge, miss -> 1 - edge
    assert C.classwise_calibration_error(probs, [0], n_bins) == pytest.approx(1 - edge)


def test_probability_zero_counts_in_the_first_bin():
    # class 0: p = 1, miss -> gap 1; class 1: p = 0 for a sample of class 1 -> gap 1 in bin 0: (1 + 1) / 2.
    # Dropping p = 0 (as bins (l, u] alone would) gives 0.5 instead.
    assert C.classwise_calibration_error([[1.0, 0.0]], [1], n_bins=5) == pytest.approx(1.0)


@pytest.mark.parametrize("seed, n_bins", [(0, 15), (1, 7), (2, 1), (3, 40)])
def test_ece_family_matches_a_loop_reference(seed, n_bins):
    probs, labels = random_probs(300, 4, seed, concentration=0.5)
    conf, hits = probs.max(1), probs.argmax(1) == labels
    bins = reference_bins(conf, hits, n_bins)
    ece = sum(n / 300 * abs(acc - c) for n, c, acc in bins)
    mce = max(abs(acc - c) for n, c, acc in bins if n)
    classwise = np.mean([sum(n / 300 * abs(acc - c) for n, c, acc in reference_bins(probs[:, k], labels == k,
                                                                                    n_bins)) for k in range(4)])
    assert C.expected_calibration_error(probs, labels, n_bins) == pytest.approx(ece, abs=1e-12)
    assert C.max_calibration_error(probs, labels, n_bins) == pytest.approx(mce, abs=1e-12)
    assert C.classwise_calibration_error(probs, labels, n_bins) == pytest.approx(classwise, abs=1e-12)
    diagram = C.reliability_diagram(probs, labels, n_bins)
    assert diagram["count"].tolist() == [n for n, _, _ in bins]
    full = diagram["count"] > 0
    np.testing.assert_allclose(diagram["accuracy"][full], [a for n, _, a in bins if n])
    np.testing.assert_allclose(diagram["confidence"][full], [c for n, c, _ in bins if n])
    assert np.isnan(diagram["accuracy"][~full]).all()
    np.testing.assert_allclose(diagram["lower"], np.arange(n_bins) / n_bins)


def test_adaptive_ece_hand_example():
    probs = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.45, 0.55], [0.05, 0.95]]
    labels = [0, 1, 1, 0, 1, 1]
    # sorted confidences (hit?): .55 y, .6 n, .7 y, .8 n, .9 y, .95 y; 3 bins of 2
    # gaps: |.5 - .575| = .075, |.5 - .75| = .25, |1 - .925| = .075 -> (2/6) * .4
    assert C.adaptive_calibration_error(probs, labels, n_bins=3) == pytest.approx(0.4 / 3)
    # one bin: |4/6 - mean conf 4.5/6| = .5/6, same as plain ECE
    assert C.adaptive_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.5 / 6)
    assert C.expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.5 / 6)


def test_adaptive_bins_hold_equal_mass():
    # no public name exposes the equal-mass bins, so this reads calibration's private helper
    conf = torch.linspace(0.3, 1.0, 103, dtype=torch.float64)[torch.randperm(103)]
    bins = C._equal_mass_bins(conf, 10)
    assert (bins[torch.argsort(conf)].diff() >= 0).all() and 0 <= bins.min() <= bins.max() <= 9  # sorted runs
    sizes = torch.bincount(bins, minlength=10)
    assert sizes.max() - sizes.min() <= 1
    few = C._equal_mass_bins(conf[:4], 10)  # N < bins: one sample per occupied bin, the rest empty
    assert few.unique().numel() == 4 and 0 <= few.min() <= few.max() <= 9


@pytest.mark.parametrize("num_classes", [2, 10])
def test_calibrated_data_has_near_zero_ece(num_classes):
    probs, labels = random_probs(40_000, num_classes, seed=num_classes)
    for metric in (C.expected_calibration_error, C.adaptive_calibration_error, C.classwise_calibration_error):
        assert metric(probs, labels) < 0.02, metric.__name__  # sampling noise is ~0.005 at N = 40k
    # sharpening the same probabilities makes them overconfident: ECE must notice
    sharp = torch.softmax(3 * torch.log(torch.as_tensor(probs).clamp_min(1e-12)), 1)
    assert C.expected_calibration_error(sharp, labels) > 0.05
    assert C.adaptive_calibration_error(sharp, labels) > 0.05


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60), c=st.integers(2, 6), n_bins=st.integers(1, 20))
def test_calibration_error_bounds(seed, n, c, n_bins):
    probs, labels = random_probs(n, c, seed, concentration=0.3)
    ece = C.expected_calibration_error(probs, labels, n_bins)
    assert 0 <= ece <= C.max_calibration_error(probs, labels, n_bins) + 1e-12 <= 1 + 1e-12
    assert 0 <= C.adaptive_calibration_error(probs, labels, n_bins) <= 1
    assert 0 <= C.classwise_calibration_error(probs, labels, n_bins) <= 1


# ----------------------------------------------------------------------------------------------- temperature
@pytest.mark.filterwarnings("error")  # a normal fit must not warn
def test_fit_temperature_hand_example():
    # all samples share the margin 2: best p_correct = 3/4 = sigmoid(2 / T) -> T = 2 / log 3
    z = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    assert C.fit_temperature(z, [0, 0, 1, 1]) == pytest.approx(2 / math.log(3), rel=1e-8)
    assert C.fit_temperature(torch.zeros(3, 4), [0, 1, 2]) == 1.0  # NLL independent of T: no bound, no warning


@pytest.mark.parametrize("scale, t_max", [(s, 100.0) for s in (0.05, 0.5, 2.0, 4.0, 50.0)] + [(1000.0, 1e4)])
def test_fit_temperature_recovers_logit_scaling_without_a_warning(scale, t_max):
    gen = torch.Generator().manual_seed(int(scale * 10))
    true_logits = torch.randn(10_000, 5, generator=gen, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=gen).squeeze(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fit inside the bounds must not warn
        temperature = C.fit_temperature(true_logits * scale, labels, bounds=(0.01, t_max))  # 1e3: range widened
    assert temperature == pytest.approx(scale, rel=0.05)  # 1/T undoes the scaling
    scaled = true_logits * scale
    best = M.nll(scaled / temperature, labels)
    assert best <= M.nll(scaled, labels)
    assert best <= min(M.nll(scaled / (temperature * f), labels) for f in (0.98, 1.02))  # a true minimum


def test_fit_temperature_clips_to_bounds_with_a_warning():
    z = torch.tensor([[5.0, -5.0], [-5.0, 5.0]])  # separable: NLL keeps falling as T -> 0
    with pytest.warns(C.TemperatureBoundWarning, match=r"stopped at the lower bound T = 0\.1 .*far from calibrated"):
        assert C.fit_temperature(z, [0, 1], bounds=(0.1, 10.0)) == 0.1
    with pytest.warns(C.TemperatureBoundWarning, match=r"stopped at the upper bound T = 10 .*Widen bounds"):
        assert C.fit_temperature(z, [1, 0], bounds=(0.1, 10.0)) == 10.0  # always wrong: flatten as far as allowed
    # margins of 1e4 (two right, one wrong): best p = 2/3 = sigmoid(1e4 / T), T = 1e4 / log 2, past the default bound
    z = torch.tensor([[1e4, 0.0], [0.0, 1e4], [1e4, 0.0]])
    with pytest.warns(C.TemperatureBoundWarning, match="upper bound T = 100 "):
        assert C.fit_temperature(z, [0, 1, 1]) == 100.0
    assert C.fit_temperature(z, [0, 1, 1], bounds=(0.01, 1e6)) == pytest.approx(1e4 / math.log(2), rel=1e-8)


def test_fit_temperature_warns_at_the_upper_bound_for_logits_on_a_1e3_scale():
    gen = torch.Generator().manual_seed(0)
    logits, labels = 1000 * torch.randn(2000, 10, generator=gen), torch.randint(0, 10, (2000,), generator=gen)
    with pytest.warns(RuntimeWarning) as record:
        assert C.fit_temperature(logits, labels) == 100.0
    assert M.nll(logits / 1000, labels) < M.nll(logits / 100, labels)  # the NLL does keep falling past the bound
    assert [w.category for w in record] == [C.TemperatureBoundWarning] and record[0].filename == __file__  # caller
    parts = ("stopped at the upper bound T = 100 ", "(0.01, 100.0)", "far from calibrated", "Widen bounds")
    assert all(part in str(record[0].message) for part in parts)
