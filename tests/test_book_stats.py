"""focal.book.stats: paired differences over seeds, t-intervals and the three-valued verdicts."""
import math

import numpy as np
import pytest

from focal.book.stats import (
    PairedDifference, directional_verdict, equivalence_verdict, paired_difference, t_quantile,
)


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042)])
def test_t_quantile_matches_the_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_paired_difference_is_the_textbook_interval():
    a = np.array([30.0, 31.0, 29.5, 30.2, 30.8])
    b = np.array([29.1, 30.4, 29.0, 29.9, 29.6])
    d = paired_difference(a, b)
    diffs = b - a
    half = 2.776445 * diffs.std(ddof=1) / math.sqrt(5)
    assert d.mean == pytest.approx(diffs.mean()) and d.n == 5
    assert (d.low, d.high) == pytest.approx((diffs.mean() - half, diffs.mean() + half), abs=1e-6)
    assert d.sd == pytest.approx(diffs.std(ddof=1))


def test_pairing_is_by_seed_not_by_position():
    by_seed = paired_difference({0: 1.0, 1: 5.0, 2: 2.0}, {2: 2.6, 0: 1.5, 1: 5.5})
    assert by_seed.mean == pytest.approx(0.5 + 0.1 / 3)
    # an unpaired comparison of the same numbers would see the seed-to-seed spread; the paired one does not
    assert by_seed.high - by_seed.low < 0.5
    by_position = paired_difference([1.0, 5.0, 2.0], [2.6, 1.5, 5.5])
    assert by_position.high - by_position.low > 5


def test_differences_without_spread_give_no_interval_and_no_verdict():
    d = paired_difference([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])  # e.g. a tail class nobody gets right
    assert d.n == 3 and d.sd == 0 and math.isnan(d.low) and "no spread: no interval" in d.text()
    assert equivalence_verdict(d, 1.0) == "inconclusive" and directional_verdict(d, "positive") == "inconclusive"


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(4000):
        base = rng.normal(30, 2, 5)
        other = base + 0.4 + rng.normal(0, 0.5, 5)  # true mean difference 0.4
        d = paired_difference(base, other)
        hits += d.low <= 0.4 <= d.high
    assert 0.935 <= hits / 4000 <= 0.965


@pytest.mark.parametrize("kwargs, match", [
    (dict(baseline=[1.0, 2.0], other=[1.0]), "same length"),
    (dict(baseline={0: 1.0}, other={1: 1.0}), "same seeds"),
    (dict(baseline={0: 1.0}, other=[1.0]), "both be mappings"),
    (dict(baseline=[], other=[]), "empty"),
    (dict(baseline=[1.0, float("nan")], other=[1.0, 2.0]), "finite"),
    (dict(baseline=[1.0, 2.0], other=[1.0, 2.0], confidence=1.5), "confidence"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        paired_difference(**kwargs)


def test_one_seed_has_no_interval_and_no_verdict():
    d = paired_difference([1.0], [3.0])
    assert d.mean == 2.0 and math.isnan(d.low) and "no interval" in d.text()
    assert directional_verdict(d, "positive") == "inconclusive"
    assert equivalence_verdict(d, 5.0) == "inconclusive"


@pytest.mark.parametrize("low, high, claimed, verdict", [
    (-1.5, -0.5, "negative", "reproduced"), (0.5, 1.5, "negative", "contradicted"),
    (-0.5, 0.5, "negative", "inconclusive"), (0.5, 1.5, "positive", "reproduced"),
    (-1.5, -0.5, "positive", "contradicted"), (-0.5, 0.5, "positive", "inconclusive"),
])
def test_directional_verdicts(low, high, claimed, verdict):
    d = PairedDifference((low + high) / 2, low, high, 1.0, 5)
    assert directional_verdict(d, claimed) == verdict


@pytest.mark.parametrize("low, high, verdict", [
    (-0.4, 0.6, "reproduced"),  # inside the margin
    (-1.6, 1.4, "inconclusive"),  # straddles zero ("no significant difference") but is not inside the margin
    (0.2, 1.6, "inconclusive"),  # significant, but not surely beyond the margin
    (1.2, 2.0, "contradicted"), (-3.0, -1.0, "contradicted"),  # wholly outside the margin
])
def test_equivalence_needs_the_whole_interval_inside_the_margin(low, high, verdict):
    assert equivalence_verdict(PairedDifference((low + high) / 2, low, high, 1.0, 5), margin=1.0) == verdict


def test_verdict_arguments_are_checked():
    d = PairedDifference(0.0, -1.0, 1.0, 1.0, 5)
    with pytest.raises(ValueError, match="claimed"):
        directional_verdict(d, "lower")
    with pytest.raises(ValueError, match="margin"):
        equivalence_verdict(d, 0)
