"""focal.engine.metrics.classification: accuracy by class and group, proper scores, aggregation, summarize;
the input checks (focal.engine.metrics.inputs) and the package's public names."""

from __future__ import annotations

import ast
import json
import math
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from focal.engine import metrics
from focal.engine.metrics import calibration as C
from focal.engine.metrics import classification as M
from focal.engine.metrics import inputs

from runhelpers import CIFAR10_LT_100, as_input  # noqa: E402

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
    assert out["ece"] == C.expected_calibration_error(probs, labels)
    assert out["classwise_ece"] == C.classwise_calibration_error(probs, labels)
    assert out["mce"] >= out["ece"] and out["brier"] == pytest.approx(M.brier(probs, labels))
    assert out["per_class_accuracy"] == M.per_class_accuracy(logits, labels).tolist()
    assert out["group_sizes"] == {"many": 8, "medium": 2, "few": 0, "head": 3, "middle": 4, "tail": 3}
    assert not any(key.startswith("ts_") or key == "temperature" for key in out)
    np.testing.assert_equal(json.loads(json.dumps(out)), out)  # plain numbers survive JSON, NaN included


@pytest.mark.filterwarnings("error")  # a normal fit must not warn
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
    (lambda: C.expected_calibration_error([0.6, 0.4], [0]), ValueError, "probs must be 2-D"),
    (lambda: C.expected_calibration_error([[2.0, -1.0]], [0]), ValueError, "not logits"),
    (lambda: M.brier([[0.3, 0.3]], [0]), ValueError, "sum to 1"),
    (lambda: C.expected_calibration_error(GOOD_P, [0, 1], n_bins=0), ValueError, "n_bins must be >= 1"),
    (lambda: C.adaptive_calibration_error(GOOD_P, [0, 1], n_bins=2.5), TypeError, "n_bins must be an int"),
    (lambda: C.classwise_calibration_error(GOOD_P, [0, 1], n_bins=-3), ValueError, "n_bins"),
    (lambda: C.reliability_diagram(GOOD_P, [0, 1], n_bins=True), TypeError, "n_bins"),
    (lambda: M.confusion_matrix([0, 3], [0, 1], 3), ValueError, r"preds must lie in \[0, 2\]"),
    (lambda: M.confusion_matrix([0, 1], [0, 1], 0), ValueError, "num_classes"),
    (lambda: M.top1_error([[1.0, 0.0]], [0, 0]), ValueError, "as many predictions as labels"),
    (lambda: M.group_accuracy([0.5, 0.5], [100, 10, 1]), ValueError, "train_counts has 3 classes"),
    (lambda: M.class_groups([10, -1]), ValueError, "non-negative"),
    (lambda: C.fit_temperature([[1.0, 0.0]], [0], bounds=(2.0, 1.0)), ValueError, "bounds"),
    (lambda: M.mean_std(3.0), ValueError, "sequence"),
    (lambda: inputs.scores_and_labels([[1.0, 0.0]], [0, 1], "calib_logits"), ValueError, "calib_logits has 1 rows"),
    (lambda: inputs.check_n_bins(np.float64(3.0)), TypeError, "n_bins must be an int"),
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
    assert C.expected_calibration_error(probs, labels) == pytest.approx(
        C.expected_calibration_error(probs.detach().double().numpy(), labels.numpy()), abs=1e-6)


# ------------------------------------------------------------------------------------------------------- layout
def test_layout_public_names_and_imports():
    assert sorted(metrics.__all__) == sorted(C.__all__ + M.__all__)
    assert all(getattr(metrics, n) is getattr(C if n in C.__all__ else M, n) for n in metrics.__all__)
    assert not set(C.__all__) & set(M.__all__)  # classification does not re-export calibration
    for module in (C, M, inputs):  # each public function is defined where its __all__ lists it
        assert {f.__module__ for f in map(module.__dict__.get, module.__all__) if callable(f)} == {module.__name__}
    for path in pathlib.Path(C.__file__).parent.glob("*.py"):  # focal imports: top level, public names only
        tree = ast.parse(path.read_text())
        for node in (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))):
            if (getattr(node, "module", None) or node.names[0].name).startswith("focal"):
                assert node in tree.body and not any(a.name.startswith("_") for a in node.names), path.name
