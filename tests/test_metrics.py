"""Tests for focal.metrics: hand-computed examples, properties, and input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from focal import calibration as C
from focal import metrics as M

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def random_probs(n: int, c: int, seed: int, concentration: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet probabilities and labels drawn from them, i.e. perfectly calibrated data."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(c, concentration), size=n)
    labels = (rng.random((n, 1)) > probs.cumsum(1)).sum(1).clip(max=c - 1)
    return probs, labels


def reference_bins(conf: np.ndarray, hits: np.ndarray, n_bins: int) -> list[tuple[int, float, float]]:
    """Slow, independent (l, u] binning: (count, mean confidence, accuracy) per bin; 0 joins the first bin."""
    out = []
    for b in range(n_bins):
        lower, upper = b / n_bins, (b + 1) / n_bins
        inside = (conf > lower) & (conf <= upper) | ((conf == 0) & (b == 0))
        out.append((int(inside.sum()), conf[inside].mean() if inside.any() else 0.0,
                    hits[inside].mean() if inside.any() else 0.0))
    return out


def as_input(x: np.ndarray, kind: str):
    return {"numpy": x, "torch": torch.as_tensor(x), "float32": torch.as_tensor(x).float()}[kind]


# ------------------------------------------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_confusion_matrix_hand_example(kind):
    preds = np.array([0, 2, 2, 1, 0])
    labels = np.array([0, 2, 1, 1, 2])
    # (true, pred) pairs: (0,0) (2,2) (1,2) (1,1) (2,0)
    expected = [[1, 0, 0], [0, 1, 1], [1, 0, 1]]
    cm = M.confusion_matrix(as_input(preds, kind), as_input(labels, kind), num_classes=3)
    assert cm.tolist() == expected and cm.dtype == np.int64
    scores = F.one_hot(torch.as_tensor(preds), 3).double() * 3.0  # argmax of scores == preds
    assert M.confusion_matrix(scores, labels, 3).tolist() == expected


def test_confusion_matrix_rows_are_class_support():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    cm = M.confusion_matrix(preds, labels, 7)
    assert cm.sum(1).tolist() == np.bincount(labels, minlength=7).tolist()
    assert cm.sum(0).tolist() == np.bincount(preds, minlength=7).tolist()


@pytest.mark.parametrize("kind", ["numpy", "torch", "float32"])
def test_top1_error_hand_example(kind):
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [0.5, 0.2, 0.1]])
    labels = np.array([0, 1, 1, 2])  # argmax 0, 1, 2, 0: two of four wrong
    assert M.top1_error(as_input(logits, kind), labels) == 50.0
    assert M.top1_error(torch.softmax(torch.as_tensor(logits), 1), labels) == 50.0  # probs give the same
    assert M.top1_error(np.array([0, 1, 2, 0]), labels) == 50.0  # so do predicted indices


def test_per_class_accuracy_hand_example():
    logits = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [3.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 0, 3.0, 0]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    # class 0: 1 of 2 right; class 1: 0 of 1; class 2: 2 of 2; class 3: no test example
    acc = M.per_class_accuracy(logits, labels)
    np.testing.assert_equal(acc, [0.5, 0.0, 1.0, np.nan])


@pytest.mark.parametrize("counts, expected", [
    ([101, 100, 20, 19, 0], {"many": [0], "medium": [1, 2], "few": [3, 4]}),
    ([5, 500], {"many": [1], "medium": [], "few": [0]}),
])
def test_class_groups_boundaries(counts, expected):
    assert M.class_groups(counts) == expected


@pytest.mark.parametrize("perm_seed", [None, 1, 2])
def test_class_groups_thirds_for_ten_classes(perm_seed):
    counts = np.array(CIFAR10_LT_100)
    order = np.arange(10) if perm_seed is None else np.random.default_rng(perm_seed).permutation(10)
    groups = M.class_groups(counts[order])
    rank_of = {c: r for r, c in enumerate(np.argsort(-counts[order], kind="stable"))}
    assert [len(groups[g]) for g in ("head", "middle", "tail")] == [3, 4, 3]
    assert all(rank_of[c] < 3 for c in groups["head"]) and all(rank_of[c] >= 7 for c in groups["tail"])
    if perm_seed is None:  # CIFAR-10-LT ρ=100: 232, 139 many; 83, 50 medium
        assert groups["many"] == list(range(8)) and groups["medium"] == [8, 9] and groups["few"] == []
        assert groups["head"] == [0, 1, 2] and groups["middle"] == [3, 4, 5, 6] and groups["tail"] == [7, 8, 9]


def test_class_groups_no_thirds_unless_ten_classes():
    assert set(M.class_groups([500] * 9)) == {"many", "medium", "few"}


def test_group_accuracy_hand_example():
    acc = [0.9, 0.6, np.nan, 0.5, 0.2, 0.0]
    counts = [1000, 200, 150, 50, 10, 5]
    # many: mean(0.9, 0.6) = 0.75 (nan class skipped); medium: 0.5; few: mean(0.2, 0.0) = 0.1
    out = M.group_accuracy(acc, counts)
    assert out == pytest.approx({"many": 0.75, "medium": 0.5, "few": 0.1})
    assert math.isnan(M.group_accuracy([0.3, 0.4], [500, 500])["few"])  # empty group


def test_group_accuracy_thirds():
    acc = np.arange(10) / 10  # accuracy k/10 for class k
    out = M.group_accuracy(acc, CIFAR10_LT_100)
    # head classes 0-2 -> 0.1; middle 3-6 -> 0.45; tail 7-9 -> 0.8
    assert out["head"] == pytest.approx(0.1) and out["middle"] == pytest.approx(0.45)
    assert out["tail"] == pytest.approx(0.8)


# -------------------------------------------------------------------------------------------------- proper scores
def test_nll_hand_example_and_cross_entropy():
    # sample 0: -log softmax([0, log 3])[1] = -log(3/4); sample 1: -log(1/2)
    logits = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])
    assert M.nll(logits, [1, 0]) == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)
    z = torch.randn(64, 5, generator=torch.Generator().manual_seed(0)) * 4
    y = torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(1))
    assert M.nll(z, y) == pytest.approx(F.cross_entropy(z.double(), y).item(), rel=1e-12)


@pytest.mark.parametrize("num_classes", [2, 5, 100])
def test_brier_hand_example_and_extremes(num_classes):
    # [.5, .25, .25] label 1: .25 + .5625 + .0625 = .875; [1, 0, 0] label 0: 0
    assert M.brier([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]], [1, 0]) == pytest.approx(0.875 / 2)
    uniform = np.full((4, num_classes), 1 / num_classes)
    # (1 - 1/C)^2 + (C - 1)/C^2 = 1 - 1/C
    assert M.brier(uniform, [0, 1, 0, 1]) == pytest.approx(1 - 1 / num_classes)
    assert M.brier(np.eye(num_classes)[[1, 0]], [0, 1]) == pytest.approx(2.0)  # confidently wrong


# ---------------------------------------------------------------------------------------------------- calibration
def test_ece_mce_hand_example():
    probs = [[0.95, 0.05], [0.35, 0.65], [0.55, 0.45], [0.15, 0.85]]
    labels = [0, 0, 0, 1]
    # n_bins=4, top-1 confidences .95 (hit), .65 (miss), .55 (hit), .85 (hit)
    # bin (.5, .75]: conf mean .6, acc .5 -> gap .1 * 2/4; bin (.75, 1]: conf .9, acc 1 -> gap .1 * 2/4
    assert M.expected_calibration_error(probs, labels, n_bins=4) == pytest.approx(0.1)
    assert M.max_calibration_error(probs, labels, n_bins=4) == pytest.approx(0.1)
    # n_bins=1: |3/4 - .75| = 0 ; n_bins=10: bins .55 (+.45) .65 (-.65) .85 (+.15) .95 (+.05) -> 1.3/4, max .65
    assert M.expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.0)
    assert M.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(1.3 / 4)
    assert M.max_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.65)


@pytest.mark.parametrize("n_bins, edge", [(2, 0.5), (4, 0.75), (4, 0.5), (5, 0.6), (15, 0.6)])
def test_confidence_on_an_edge_goes_to_the_lower_bin(n_bins, edge):
    probs = np.array([[edge, 1 - edge]])
    diagram = M.reliability_diagram(probs, [0], n_bins=n_bins)
    (occupied,) = np.flatnonzero(diagram["count"])
    assert diagram["upper"][occupied] == edge  # (l, u]: the edge is this bin's upper end
    # classwise: p_0 = edge is in the bin ending at edge, hit -> gap 1 - edge; p_1 = 1 - edge, miss -> 1 - edge
    assert M.classwise_calibration_error(probs, [0], n_bins) == pytest.approx(1 - edge)


def test_probability_zero_counts_in_the_first_bin():
    # class 0: p = 1, miss -> gap 1; class 1: p = 0 for a sample of class 1 -> gap 1 in bin 0: (1 + 1) / 2.
    # Dropping p = 0 (as bins (l, u] alone would) gives 0.5 instead.
    assert M.classwise_calibration_error([[1.0, 0.0]], [1], n_bins=5) == pytest.approx(1.0)


@pytest.mark.parametrize("seed, n_bins", [(0, 15), (1, 7), (2, 1), (3, 40)])
def test_ece_family_matches_a_loop_reference(seed, n_bins):
    probs, labels = random_probs(300, 4, seed, concentration=0.5)
    conf, hits = probs.max(1), probs.argmax(1) == labels
    bins = reference_bins(conf, hits, n_bins)
    ece = sum(n / 300 * abs(acc - c) for n, c, acc in bins)
    mce = max(abs(acc - c) for n, c, acc in bins if n)
    classwise = np.mean([sum(n / 300 * abs(acc - c) for n, c, acc in reference_bins(probs[:, k], labels == k,
                                                                                    n_bins)) for k in range(4)])
    assert M.expected_calibration_error(probs, labels, n_bins) == pytest.approx(ece, abs=1e-12)
    assert M.max_calibration_error(probs, labels, n_bins) == pytest.approx(mce, abs=1e-12)
    assert M.classwise_calibration_error(probs, labels, n_bins) == pytest.approx(classwise, abs=1e-12)
    diagram = M.reliability_diagram(probs, labels, n_bins)
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
    assert M.adaptive_calibration_error(probs, labels, n_bins=3) == pytest.approx(0.4 / 3)
    # one bin: |4/6 - mean conf 4.5/6| = .5/6, same as plain ECE
    assert M.adaptive_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.5 / 6)
    assert M.expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.5 / 6)


def test_adaptive_bins_hold_equal_mass():
    conf = torch.linspace(0.3, 1.0, 103, dtype=torch.float64)[torch.randperm(103)]
    sizes = torch.bincount(C._equal_mass_bins(conf, 10), minlength=10)
    assert sizes.sum() == 103 and sizes.max() - sizes.min() <= 1
    assert torch.bincount(C._equal_mass_bins(conf[:4], 10), minlength=10).sum() == 4  # N < bins: some empty


@pytest.mark.parametrize("num_classes", [2, 10])
def test_calibrated_data_has_near_zero_ece(num_classes):
    probs, labels = random_probs(40_000, num_classes, seed=num_classes)
    for metric in (M.expected_calibration_error, M.adaptive_calibration_error, M.classwise_calibration_error):
        assert metric(probs, labels) < 0.02, metric.__name__  # sampling noise is ~0.005 at N = 40k
    # sharpening the same probabilities makes them overconfident: ECE must notice
    sharp = torch.softmax(3 * torch.log(torch.as_tensor(probs).clamp_min(1e-12)), 1)
    assert M.expected_calibration_error(sharp, labels) > 0.05
    assert M.adaptive_calibration_error(sharp, labels) > 0.05


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60), c=st.integers(2, 6), n_bins=st.integers(1, 20))
def test_calibration_error_bounds(seed, n, c, n_bins):
    probs, labels = random_probs(n, c, seed, concentration=0.3)
    ece = M.expected_calibration_error(probs, labels, n_bins)
    assert 0 <= ece <= M.max_calibration_error(probs, labels, n_bins) + 1e-12 <= 1 + 1e-12
    assert 0 <= M.adaptive_calibration_error(probs, labels, n_bins) <= 1
    assert 0 <= M.classwise_calibration_error(probs, labels, n_bins) <= 1


# ----------------------------------------------------------------------------------------------- temperature
def test_fit_temperature_hand_example():
    # all samples share the margin 2: best p_correct = 3/4 = sigmoid(2 / T) -> T = 2 / log 3
    z = torch.tensor([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    assert M.fit_temperature(z, [0, 0, 1, 1]) == pytest.approx(2 / math.log(3), rel=1e-8)


@pytest.mark.parametrize("scale", [0.5, 2.0, 4.0])
def test_fit_temperature_recovers_logit_scaling(scale):
    gen = torch.Generator().manual_seed(int(scale * 10))
    true_logits = torch.randn(10_000, 5, generator=gen, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=gen).squeeze(1)
    temperature = M.fit_temperature(true_logits * scale, labels)
    assert temperature == pytest.approx(scale, rel=0.05)  # 1/T undoes the scaling
    scaled = true_logits * scale
    best = M.nll(scaled / temperature, labels)
    assert best <= M.nll(scaled, labels)
    assert best <= min(M.nll(scaled / (temperature * f), labels) for f in (0.98, 1.02))  # a true minimum


def test_fit_temperature_clips_to_bounds():
    z = torch.tensor([[5.0, -5.0], [-5.0, 5.0]])  # separable: NLL keeps falling as T -> 0
    assert M.fit_temperature(z, [0, 1], bounds=(0.1, 10.0)) == 0.1
    assert M.fit_temperature(z, [1, 0], bounds=(0.1, 10.0)) == 10.0  # always wrong: flatten as much as allowed
    assert M.fit_temperature(torch.zeros(3, 4), [0, 1, 2]) == 1.0  # NLL independent of T


def test_fit_temperature_handles_extreme_confidence():
    # margins of 1e4: every slope underflows in float64; the answer must still be finite and in bounds
    z = torch.tensor([[1e4, 0.0], [0.0, 1e4], [1e4, 0.0]])
    assert 0.01 <= M.fit_temperature(z, [0, 1, 1]) <= 100.0


# --------------------------------------------------------------------------------------------------- aggregation
@pytest.mark.parametrize("values, expected", [
    ([1.0, 2.0, 3.0], (2.0, 1.0)),
    ([2.0, np.nan, 4.0], (3.0, math.sqrt(2.0))),  # NaN ignored; sample std of (2, 4) is sqrt(2)
    ([4.0], (4.0, np.nan)),
    ([np.nan, np.nan], (np.nan, np.nan)),
    ([], (np.nan, np.nan)),
])
def test_mean_std(values, expected):
    mean, std = M.mean_std(values)
    assert isinstance(mean, float) and isinstance(std, float)
    np.testing.assert_allclose([mean, std], expected)


def test_mean_std_over_seeds_per_class():
    mean, std = M.mean_std([[0.0, 1.0, np.nan], [2.0, 1.0, 5.0]])
    np.testing.assert_allclose(mean, [1.0, 1.0, 5.0])
    np.testing.assert_allclose(std, [math.sqrt(2.0), 0.0, np.nan])


def test_summarize_keys_values_and_json():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(30)
    logits = 4 * F.one_hot(labels, 10).double() + 2 * torch.randn(300, 10, generator=gen, dtype=torch.float64)
    out = M.summarize(logits, labels, CIFAR10_LT_100)
    probs = torch.softmax(logits, 1)
    assert out["top1_error"] == M.top1_error(logits, labels) and out["nll"] == M.nll(logits, labels)
    assert out["ece"] == M.expected_calibration_error(probs, labels)
    assert out["classwise_ece"] == M.classwise_calibration_error(probs, labels)
    assert out["mce"] >= out["ece"] and out["brier"] == pytest.approx(M.brier(probs, labels))
    assert out["per_class_accuracy"] == M.per_class_accuracy(logits, labels).tolist()
    assert out["group_sizes"] == {"many": 8, "medium": 2, "few": 0, "head": 3, "middle": 4, "tail": 3}
    assert not any(key.startswith("ts_") or key == "temperature" for key in out)
    assert json.loads(json.dumps(out)).keys() == out.keys()


def test_summarize_temperature_scaling_on_held_out_logits():
    gen = torch.Generator().manual_seed(3)
    true_logits = torch.randn(6000, 4, generator=gen, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=gen).squeeze(1)
    overconfident = 3 * true_logits
    out = M.summarize(overconfident[:3000], labels[:3000], calib_logits=overconfident[3000:],
                      calib_labels=labels[3000:])
    assert out["temperature"] == pytest.approx(3.0, rel=0.15)
    assert out["ts_ece"] < out["ece"] / 3 and out["ts_nll"] < out["nll"] and out["ts_brier"] < out["brier"]
    assert {"ts_adaptive_ece", "ts_classwise_ece", "ts_mce"} <= out.keys() and "groups" not in out
    json.dumps(out)


# ------------------------------------------------------------------------------------------------------- errors
GOOD_P = [[0.6, 0.4], [0.2, 0.8]]


@pytest.mark.parametrize("call, error, match", [
    (lambda: M.nll([[1.0, 0.0]], [0, 1]), ValueError, "1 rows but labels has 2"),
    (lambda: M.nll([[1.0, 0.0]], [2]), ValueError, r"labels must lie in \[0, 1\]"),
    (lambda: M.nll([[1.0, 0.0]], [-1]), ValueError, "labels must lie"),
    (lambda: M.nll([[1.0, 0.0]], [0.0]), TypeError, "integer class indices"),
    (lambda: M.nll([[float("nan"), 0.0]], [0]), ValueError, "NaN or inf"),
    (lambda: M.nll(np.zeros((0, 3)), np.zeros(0, dtype=int)), ValueError, "at least one sample"),
    (lambda: M.nll([1.0, 0.0], [0]), ValueError, "logits must be 2-D"),
    (lambda: M.nll("logits", [0]), TypeError, "logits must be a torch tensor"),
    (lambda: M.nll([[object(), 1]], [0]), TypeError, "logits must be a torch tensor"),
    (lambda: M.expected_calibration_error([0.6, 0.4], [0]), ValueError, "probs must be 2-D"),
    (lambda: M.expected_calibration_error([[2.0, -1.0]], [0]), ValueError, "not logits"),
    (lambda: M.brier([[0.3, 0.3]], [0]), ValueError, "sum to 1"),
    (lambda: M.expected_calibration_error(GOOD_P, [0, 1], n_bins=0), ValueError, "n_bins must be >= 1"),
    (lambda: M.adaptive_calibration_error(GOOD_P, [0, 1], n_bins=2.5), TypeError, "n_bins must be an int"),
    (lambda: M.classwise_calibration_error(GOOD_P, [0, 1], n_bins=-3), ValueError, "n_bins"),
    (lambda: M.reliability_diagram(GOOD_P, [0, 1], n_bins=True), TypeError, "n_bins"),
    (lambda: M.confusion_matrix([0, 3], [0, 1], 3), ValueError, r"preds must lie in \[0, 2\]"),
    (lambda: M.confusion_matrix([0, 1], [0, 1], 0), ValueError, "num_classes"),
    (lambda: M.top1_error([[1.0, 0.0]], [0, 0]), ValueError, "as many predictions as labels"),
    (lambda: M.group_accuracy([0.5, 0.5], [100, 10, 1]), ValueError, "train_counts has 3 classes"),
    (lambda: M.class_groups([10, -1]), ValueError, "non-negative"),
    (lambda: M.fit_temperature([[1.0, 0.0]], [0], bounds=(2.0, 1.0)), ValueError, "bounds"),
    (lambda: M.mean_std(3.0), ValueError, "sequence"),
    (lambda: M.summarize([[1.0, 0.0]], [0], calib_logits=[[1.0, 0.0]]), ValueError, "both calib_logits"),
    (lambda: M.summarize([[1.0, 0.0]], [0], calib_logits=[[1.0, 0, 0]], calib_labels=[0]), ValueError,
     "3 classes but logits has 2"),
])
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_accepts_grad_and_float32_tensors():
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    labels = torch.randint(0, 3, (20,), generator=torch.Generator().manual_seed(1))
    assert M.nll(logits, labels) == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    probs = torch.softmax(logits, 1)
    assert M.expected_calibration_error(probs, labels) == pytest.approx(
        M.expected_calibration_error(probs.detach().double().numpy(), labels.numpy()), abs=1e-6)
