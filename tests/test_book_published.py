"""focal.book.published: the published numbers, their rows, and our numbers beside them."""
import pytest

from focal.book import published
from focal.book.labels import loss_label
from focal.engine.data import longtail_counts


def test_published_counts_agree_with_our_construction():
    assert list(published.CIFAR10_LT_COUNTS[100]) == longtail_counts(5000, 10, 100)
    sizes = {"cifar10-lt": (5000, 10), "cifar100-lt": (500, 100)}
    for (dataset, rho), total in published.CIFAR_LT_TOTALS.items():
        assert sum(longtail_counts(*sizes[dataset], rho)) == total


def test_published_rows_and_known_cells():
    rows = published.published_top1_rows()
    assert {r["source"] for r in rows} == {"Cui et al. 2019, Table 2", "Cao et al. 2019, Table 2"}
    cell = {(r["source"], r["dataset"], r["lt_profile"], r["loss"], r["imbalance"]): r["top1_error"] for r in rows}
    # the one cell where the two papers differ: each number stays with its paper
    assert cell[("Cui et al. 2019, Table 2", "cifar100-lt", "exp", "Softmax CE", 10.0)] == 44.29
    assert cell[("Cao et al. 2019, Table 2", "cifar100-lt", "exp", "ERM (CE)", 10.0)] == 44.30
    assert cell[("Cao et al. 2019, Table 2", "cifar10-lt", "step", "CB Focal", 100.0)] == 39.73
    assert len(published.published_top1_rows("cifar10-lt", [100])) == 4 + 4 * 2
    with pytest.raises(ValueError, match="dataset must be one of"):
        published.published_top1_rows("mnist")


@pytest.mark.parametrize("dataset, comparable", [("cifar10-lt", True), ("fashion-mnist-lt", False)])
def test_comparison_table_labels_theirs_and_ours(dataset, comparable):
    ours = {"CE": "20.00 ± 0.50", "focal γ=2": "21.00 ± 0.40", "CB focal γ=1": "18.00 ± 0.30"}
    t = published.comparison_table(ours, dataset, 100, "my runs")
    assert t.columns[0] == "ours: my runs"
    assert all(c.startswith("published: ") for c in t.columns[1:])
    assert all(("not comparable" in c) != comparable for c in t.columns[1:])
    assert t.loc["CE"].tolist()[1:] == ["29.64", "= Cui et al."]  # Cao et al. reprint Cui et al.'s CE row
    assert t.loc["focal γ=2"].tolist()[1:] == ["—", "—"]  # no matching published row
    assert t.loc["CB focal γ=1"].tolist()[1:] == ["25.43", "= Cui et al."]  # Cao's cell equals Cui's best CB


def test_comparison_table_missing_imbalance_is_a_dash():
    t = published.comparison_table({"CE": "x"}, "cifar10-lt", 50, "ours")
    assert t.loc["CE"].tolist() == ["x", "25.19", "—"]  # Cao et al. report rho 100 and 10 only


def test_published_calibration_rows():
    rows = {r["loss"]: r for r in published.published_calibration_rows()}
    assert set(rows) == {loss_label("ce"), loss_label("focal", 3), loss_label("focal-flsd53")}  # our labels
    assert rows["CE"]["temperature"] == 2.5 and rows["FLSD-53"]["ece_after"] == 0.95
    assert all("balanced CIFAR-10" in r["source"] for r in rows.values())


def test_comparison_table_marks_reprints_and_forms():
    t = published.comparison_table({"CE": "x", "focal γ=1": "y", "CB focal γ=1": "z"}, "cifar10-lt", 100, "ours")
    cui, cao = t.columns[1], t.columns[2]
    assert "sigmoid form" in cui and "cells equal to Cui et al.'s are reprints" in cao
    assert t.loc["focal γ=1", cui] == "29.62" and t.loc["focal γ=1", cao] == "= Cui et al."
    assert t.loc["CB focal γ=1", cao] == "= Cui et al."  # equal to Cui et al.'s best class-balanced number
    assert published.is_reprint("cifar10-lt", "exp", "CB Focal", 100)
    assert not published.is_reprint("cifar10-lt", "exp", "CB Focal", 10)  # 12.90 (Cao) vs 12.51 (Cui)
    assert not published.is_reprint("cifar10-lt", "step", "Focal", 100)  # the step profile is Cao et al.'s own
    step = published.comparison_table({"focal γ=1": "y"}, "cifar10-lt", 100, "ours", lt_profile="step")
    assert step.loc["focal γ=1", step.columns[2]] == "36.09" and "its focal cells: softmax form" in step.columns[2]
