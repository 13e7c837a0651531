"""focal.book.plots.bench: the benchmark's bars start at 1 and carry their ratio and spread; the memory curve."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from focal.book.plots.bench import plot_benchmark, plot_memory_curve  # noqa: E402


# --------------------------------------------------------------------------------------------- plot_benchmark
def test_benchmark_skips_memory_panel_when_unmeasured():
    rows = [dict(case="a", impl="focal", time_ratio=1.1, mem_ratio=None, peak_mb=None)]
    assert len(plot_benchmark(rows).axes) == 1
    rows[0]["mem_ratio"] = 1.0
    assert [a.get_ylabel() for a in plot_benchmark(rows).axes] == [
        "time / baseline", "peak memory / baseline"]


def test_benchmark_bars_start_at_one_and_carry_their_ratio():
    rows = [dict(case="s 8", impl="cross_entropy (baseline)", time_ratio=1.0, mem_ratio=1.0),
            dict(case="s 8", impl="focal.focal_loss", time_ratio=1.08, mem_ratio=1.0),
            dict(case="s 8", impl="one-hot", time_ratio=6.25, mem_ratio=3.5),
            dict(case="b 8", impl="bce_with_logits (baseline)", time_ratio=1.0, mem_ratio=1.0),
            dict(case="b 8", impl="focal.sigmoid_focal_loss", time_ratio=0.23, mem_ratio=1.0)]
    fig = plot_benchmark(rows)
    time_ax = fig.axes[0]
    assert time_ax.get_yscale() == "log"
    tops = sorted(round(p.get_y() + p.get_height(), 6) for p in time_ax.patches)
    assert tops == [0.23, 1.08, 6.25], "one bar per non-baseline implementation, from 1 to its ratio"
    assert all(p.get_y() == 1.0 for p in time_ax.patches)
    assert sorted(t.get_text() for t in time_ax.texts) == ["0.23", "1.08", "6.25"]
    lo, hi = time_ax.get_ylim()
    assert lo < 0.23 and hi > 6.25
    labels = fig.legends[0].get_texts()
    assert any("cross_entropy / bce_with_logits" in t.get_text() for t in labels)
    focal_colours = {p.get_facecolor() for p in time_ax.patches if p.get_height() in (1.08 - 1, 0.23 - 1)}
    assert len(focal_colours) == 1, "the package's two losses share one colour"


def test_benchmark_whiskers_span_the_middle_half_of_the_rounds():
    rows = [dict(case="s 8", impl="cross_entropy (baseline)", time_ratio=1.0, ratio_q1=1.0, ratio_q3=1.0),
            dict(case="s 8", impl="focal.focal_loss", time_ratio=1.02, ratio_q1=0.97, ratio_q3=1.06)]
    ax = plot_benchmark(rows).axes[0]
    segments = [seg for coll in ax.collections for seg in coll.get_segments()]
    assert [(round(s[0][1], 6), round(s[1][1], 6)) for s in segments] == [(0.97, 1.06)]


# ------------------------------------------------------------------------------------------ plot_memory_curve
def test_memory_curve_draws_one_line_per_implementation_and_the_ratio_at_the_largest_c():
    rows = [dict(impl=i, classes=c, peak_mb=m) for i, c, m in [
        ("focal_loss on materialised logits (baseline)", 4096, 300.0),
        ("focal_loss on materialised logits (baseline)", 1024, 80.0),
        ("focal.linear_focal_loss", 1024, 10.0), ("focal.linear_focal_loss", 4096, 12.0)]]
    ax = plot_memory_curve(rows).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["focal.linear_focal_loss"].get_xdata()) == [1024, 4096], "sorted by C"
    assert list(lines["focal_loss on materialised logits"].get_ydata()) == [80.0, 300.0]
    assert [t.get_text() for t in ax.texts] == ["0.04×"]


def test_memory_curve_needs_its_columns():
    with pytest.raises(ValueError, match="classes"):
        plot_memory_curve([dict(impl="a", peak_mb=1.0)])
