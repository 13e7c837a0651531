"""focal.book.comparisons (paired tables, the balanced reference, confusion matrices, words from numbers) and the
figures of focal.book.plots.compare."""
import numpy as np
import pandas as pd
import pytest

from focal.book import comparisons as C
from focal.book.stats import paired_difference


def _frame():
    rows = []
    for s in range(5):
        for loss, shift in (("CE", 0.0), ("focal γ=1", -0.5), ("CB focal γ=1", 1.0)):
            for group, g in (("head", 0.0), ("tail", 10.0)):
                rows.append(dict(loss=loss, seed=s, group=group,
                                 value=50 + g + shift + 0.3 * np.sin(s + g + 2 * shift)))
    return pd.DataFrame(rows)


def test_paired_table_agrees_with_stats_and_keeps_book_order():
    f = _frame()
    t = C.paired_table(f[f["group"] == "head"], "value")
    assert t["loss"].tolist() == ["focal γ=1", "CB focal γ=1"]
    ce = f[(f["group"] == "head") & (f["loss"] == "CE")].set_index("seed")["value"].to_dict()
    cb = f[(f["group"] == "head") & (f["loss"] == "CB focal γ=1")].set_index("seed")["value"].to_dict()
    d = paired_difference(ce, cb)
    row = t.set_index("loss").loc["CB focal γ=1"]
    assert (row["diff"], row["low"], row["high"], row["n"]) == pytest.approx((d.mean, d.low, d.high, 5))
    by = C.paired_table(f, "value", by=("group",))
    assert len(by) == 4 and set(by["group"]) == {"head", "tail"}
    with pytest.raises(ValueError, match="baseline 'XE'"):
        C.paired_table(f, "value", baseline="XE")
    with pytest.raises(ValueError, match="missing"):
        C.paired_table(f, "nope")


def test_reference_relative_takes_difficulty_out():
    lt = pd.DataFrame(dict(loss="CE", seed=[0, 1, 0, 1], class_index=[0, 0, 1, 1], **{"class": ["a", "a", "b", "b"]},
                           class_rank=[0, 0, 1, 1], train_count=[100, 100, 10, 10], accuracy=[90., 92., 50., 54.]))
    ref = lt.assign(accuracy=[95., 95., 60., 62.])
    rel = C.reference_relative(lt, ref).set_index("class")
    assert rel.loc["a", "delta"] == pytest.approx(-4.0) and rel.loc["b", "delta"] == pytest.approx(-9.0)
    with pytest.raises(ValueError, match="reference_loss"):
        C.reference_relative(lt, ref, reference_loss="focal γ=1")


def test_difficulty_ranks_and_sentence():
    ref = pd.DataFrame(dict(loss="CE", seed=0, class_index=range(4), **{"class": list("abcd")},
                            accuracy=[60.0, 90.0, 99.0, 80.0]))
    table = C.difficulty(ref)
    assert table["class"].tolist() == ["c", "b", "d", "a"] and table["easiest_rank"].tolist() == [1, 2, 3, 4]
    text = C.difficulty_sentence(table, tail=[2, 3], head=[0])
    assert "the tail classes (c, d) rank 1, 3 of 4 from the easiest (99.0, 80.0 %)" in text
    assert "the head class (a) ranks 4 (60.0 %)" in text and "the hardest class is a" in text


@pytest.mark.parametrize("temps, trend, under", [
    ((2.0, 1.5, 1.2, 0.9), "falls at every step", "c (0.90)"),
    ((2.0, 1.5, 1.7, 0.9), "falls overall but not at every step", "c (0.90)"),
    ((1.0, 1.5, 1.7, 1.9), "does not fall", "none"),
])
def test_temperature_trend_words_follow_the_numbers(temps, trend, under):
    labels = ["CE", "a", "b", "c"]
    t = pd.DataFrame([dict(loss=lab, seed=s, temperature=v * j) for lab, v in zip(labels, temps)
                      for s, j in enumerate((0.99, 1.0, 1.01))])
    words = C.temperature_trend(t, labels)
    assert words["trend"] == trend and words["under"] == under and words["first"] == f"CE ({temps[0]:.2f})"
    assert words["sentence"].startswith(f"Along the sweep the fitted temperature (geometric mean over seeds) {trend}")
    assert ("overshot" in words["sentence"]) == (under != "none" and temps[0] > 1)
    assert ("not distinguishable from 1" in words["sentence"]) == (1.0 in temps)  # T = 1 ± 1 %: interval holds 1
    assert ("lowers the model's confidence" in words["sentence"]) == (trend != "does not fall")


def test_confusion_matrices_pool_seeds_and_normalise_rows(tmp_path):
    from types import SimpleNamespace

    runs = []
    for seed, preds in ((0, [0, 1, 1]), (1, [0, 0, 1])):
        logits = np.eye(2)[preds].astype(np.float32)
        d = tmp_path / str(seed)
        d.mkdir()
        np.savez(d / "test_logits.npz", logits=logits, labels=np.array([0, 0, 1]))
        runs.append((SimpleNamespace(loss="ce", gamma=1.0), {"run_dir": str(d)}))
    m = C.confusion_matrices(runs, ["CE"])["CE"]
    assert m.tolist() == [[75.0, 25.0], [0.0, 100.0]]
    with pytest.raises(ValueError, match="no runs of"):
        C.confusion_matrices(runs, ["FLSD-53"])
    assert C.confusion_matrix([[2.0, 1.0], [0.0, 3.0]], [1, 1]).tolist() == [[0, 0], [1, 1]]


# ------------------------------------------------------------------------------------------------- figures
