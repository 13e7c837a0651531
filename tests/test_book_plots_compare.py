"""focal.book.plots.compare: forest plots, the γ sweep in focusing order, the balanced reference, confusion matrices."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from focal.book.labels import LOSS_LABELS, book_order  # noqa: E402
from focal.book.plots.compare import (SWEEP_LOSSES, plot_calibration_sweep, plot_confusion_matrices,  # noqa: E402
                                      plot_paired_differences, plot_reference_relative)


def test_forest_plot_draws_every_interval_and_the_margin():
    t = pd.DataFrame(dict(loss=["focal γ=1", "FLSD-53"], diff=[0.2, -1.0], low=[-0.3, -1.5], high=[0.7, -0.5]))
    fig = plot_paired_differences(t, xlabel="Δ top-1", margin=1.0, better="left")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Δ top-1" and [x.get_text() for x in ax.get_yticklabels()] == ["focal γ=1", "FLSD-53"]
    segments = [list(np.asarray(line.get_xdata(), float)) for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert [-0.3, 0.7] in segments and [-1.5, -0.5] in segments
    panels = plot_paired_differences(t.assign(group="tail"), xlabel="Δ", panel="group")
    assert panels.axes[0].get_title() == "tail"


def test_sweep_losses_are_book_labels_in_book_order():
    assert set(SWEEP_LOSSES) <= set(LOSS_LABELS)
    assert book_order(SWEEP_LOSSES) == list(SWEEP_LOSSES)


def test_calibration_sweep_puts_the_losses_in_focusing_order():
    labels = ["FLSD-53", "CE", "focal γ=1", "CB focal γ=1"]
    calib = pd.DataFrame([dict(loss=lab, seed=s, metric="ECE", stage=st, value=1.0 + s)
                          for lab in labels for s in (0, 1) for st in ("before T", "after T")])
    temps = pd.DataFrame([dict(loss=lab, seed=s, temperature=1.2 + 0.1 * s) for lab in labels for s in (0, 1)])
    fig = plot_calibration_sweep(calib, temps)
    ece_ax, t_ax = fig.axes
    assert [x.get_text() for x in ece_ax.get_xticklabels()] == ["CE", "focal γ=1", "FLSD-53"]
    assert t_ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="none of"):
        plot_calibration_sweep(calib, temps, losses=("nope",))


def test_reference_and_confusion_figures():
    rel = pd.DataFrame(dict(loss=["CE", "CE"], class_index=[0, 1], **{"class": ["a", "b"]}, class_rank=[0, 1],
                            train_count=[100, 10], delta=[1.0, -20.0], reference_spread=[0.5, 0.5]))
    ax = plot_reference_relative(rel).axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["a\n(100)", "b\n(10)"]
    m = {"CE": np.eye(3) * 100, "focal γ=1": np.eye(3) * 100}
    assert len(plot_confusion_matrices(m, list("abc")).axes) == 3 + 2  # three panels and two colour bars
    with pytest.raises(ValueError, match="expected"):
        plot_confusion_matrices(m, list("ab"))
