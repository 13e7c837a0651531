"""focal.book.plots.training: the figures of chapters 3-5 draw what their inputs say, in the book's loss order."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from focal.book.plots.training import (plot_class_counts, plot_reliability_diagrams,  # noqa: E402
                                       plot_top1_error)

LOSSES = ["CE", "focal γ=1", "FLSD-53"]


def _diagram():
    return dict(lower=np.array([0, 0.25, 0.5, 0.75]), upper=np.array([0.25, 0.5, 0.75, 1.0]),
                confidence=np.array([np.nan, 0.4, 0.6, 0.9]), accuracy=np.array([np.nan, 0.3, 0.5, 0.95]),
                count=np.array([0, 3, 5, 12]))


def test_class_counts_log_axis_one_line_per_imbalance():
    counts = pd.DataFrame([dict(lt_profile=p, imbalance=r, class_index=k, count=int(100 * r ** (-k / 2)))
                           for p in ("exp", "step") for r in (10.0, 100.0) for k in range(3)])
    fig = plot_class_counts(counts)
    assert [a.get_title() for a in fig.axes] == ["exp long tail", "step long tail"]
    for a in fig.axes:
        assert a.get_yscale() == "log"
        assert len(a.lines) == 2  # rho = 10 and 100


def test_reliability_skips_empty_bins():
    fig = plot_reliability_diagrams({"CE": _diagram()})
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * 3  # accuracy bar + gap bar for each of the 3 non-empty bins
    heights = sorted(round(p.get_height(), 6) for p in ax.patches[:3])
    assert heights == [0.3, 0.5, 0.95]


def test_loss_order_follows_the_book():
    rng = np.random.default_rng(0)
    runs = pd.DataFrame([dict(loss=loss, seed=s, top1_error=30 + rng.normal()) for loss in LOSSES for s in (0, 1)])
    fig = plot_top1_error(runs.iloc[::-1])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == LOSSES


def test_reliability_diagrams_show_bin_counts():
    from focal.book.plots import plot_reliability_diagrams

    d = dict(lower=np.array([0, .5]), upper=np.array([.5, 1]), accuracy=np.array([.2, .9]),
             confidence=np.array([.4, .8]), count=np.array([3, 7]))
    fig = plot_reliability_diagrams({"CE": d, "FLSD-53": d})
    hist = fig.axes[2]  # second row, first column
    assert hist.get_ylabel() == "share of images (%)"
    assert sorted(round(p.get_height()) for p in hist.patches) == [30, 70]
