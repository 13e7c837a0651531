"""focal.book.bench: the loss benchmark's cases against their goals, the sizes in a case name, and busy CPUs."""
import math
import os
import subprocess
import sys

import pandas as pd
import pytest

from focal.book.bench import benchmark_claims, busy_cpus, case_elements, goal_verdict
from focal.losses.kernels import FUSED_MIN_NUMEL


def _bench_rows(focal_softmax=1.08, focal_sigmoid=0.4):
    return [dict(case="segmentation 8x19x256x256", impl="cross_entropy (baseline)", time_ratio=1.0),
            dict(case="segmentation 8x19x256x256", impl="focal.focal_loss", time_ratio=focal_softmax),
            dict(case="segmentation 8x19x256x256", impl="one-hot", time_ratio=6.0),
            dict(case="softmax 4096x100", impl="cross_entropy (baseline)", time_ratio=1.0),
            dict(case="softmax 4096x100", impl="focal.focal_loss", time_ratio=3.0),
            dict(case="sigmoid 4096x80", impl="bce_with_logits (baseline)", time_ratio=1.0),
            dict(case="sigmoid 4096x80", impl="focal.sigmoid_focal_loss", time_ratio=focal_sigmoid)]


def test_benchmark_claims_compares_focal_with_the_goal_per_case():
    goals = {"segmentation 8x19x256x256": 1.10, "sigmoid 4096x80": 1.5, "softmax 65536x1000": 1.05}
    claims = benchmark_claims(_bench_rows(), goals)
    assert list(claims.index) == ["segmentation 8x19x256x256", "softmax 4096x100", "sigmoid 4096x80"]
    seg, small, sig = (claims.loc[c] for c in claims.index)
    assert (seg.baseline, seg.impl, seg.time_ratio, seg.goal, seg.within) == (
        "cross_entropy", "focal.focal_loss", 1.08, 1.10, True)
    assert (sig.baseline, sig.impl, sig.within) == ("bce_with_logits", "focal.sigmoid_focal_loss", True)
    assert math.isnan(small.goal) and small.within is None, "a size without a goal gets no verdict"
    assert benchmark_claims(_bench_rows(focal_softmax=1.11), goals).loc["segmentation 8x19x256x256", "within"] is False


def test_the_verdict_follows_the_interval_not_the_median():
    """A median under the goal whose interval reaches above it is unsettled; only an interval wholly under (or at) the
    goal meets it, only one wholly above misses it; without an interval (too few rounds) nothing is settled."""
    rows = _bench_rows(focal_softmax=1.03)
    rows[1].update(ratio_ci_low=0.99, ratio_ci_high=1.07)
    claims = benchmark_claims(rows, {"segmentation 8x19x256x256": 1.05, "sigmoid 4096x80": 1.5})
    seg = claims.loc["segmentation 8x19x256x256"]
    assert seg.within and seg.verdict == "unsettled" and (seg.ratio_ci_low, seg.ratio_ci_high) == (0.99, 1.07)
    assert claims.loc["sigmoid 4096x80", "verdict"] == "unsettled", "no interval in the rows: not settled"
    assert pd.isna(claims.loc["softmax 4096x100", "verdict"]), "a size without a goal gets no verdict"
    assert goal_verdict(0.9, 1.05, 1.05) == "met" and goal_verdict(1.0501, 1.2, 1.05) == "missed"
    assert goal_verdict(float("nan"), float("nan"), 1.05) == "unsettled"


def test_benchmark_claims_counts_elements_and_the_fused_path():
    claims = benchmark_claims(_bench_rows())
    assert claims.loc["segmentation 8x19x256x256", "input_elements"] == 8 * 19 * 256 * 256
    assert claims.loc["segmentation 8x19x256x256", "focal_elements"] == 8 * 256 * 256  # the target's
    assert claims.loc["softmax 4096x100", "focal_elements"] == 4096
    assert claims.loc["sigmoid 4096x80", "focal_elements"] == 4096 * 80  # every logit
    for case, row in claims.iterrows():
        assert row.fused == (row.focal_elements >= FUSED_MIN_NUMEL), case
    assert claims.fused.tolist() == [True, False, True]


@pytest.mark.parametrize("rows, match", [
    ([dict(case="softmax 8x4", impl="focal.focal_loss", time_ratio=1.0)], "baseline"),
    ([dict(case="softmax 8x4", impl="cross_entropy (baseline)", time_ratio=1.0)], "focal"),
    ([dict(case="softmax", impl="cross_entropy (baseline)", time_ratio=1.0),
      dict(case="softmax", impl="focal.focal_loss", time_ratio=1.0)], "shape"),
    ([dict(case="softmax 8x4", impl="focal.focal_loss")], "time_ratio"),
])
def test_benchmark_claims_rejects_rows_it_cannot_read(rows, match):
    with pytest.raises(ValueError, match=match):
        benchmark_claims(rows)


def test_case_elements_reads_the_shape_from_the_name():
    assert case_elements("softmax 65536x1000") == (65536 * 1000, 65536)
    assert case_elements("segmentation 2x19x64x64") == (2 * 19 * 64 * 64, 2 * 64 * 64)
    assert case_elements("sigmoid 65536x91") == (65536 * 91, 65536 * 91)
    with pytest.raises(ValueError, match="shape"):
        case_elements("softmax big")


def test_busy_cpus_counts_a_spinning_process():
    if not os.path.exists("/proc/stat"):
        pytest.skip("needs Linux /proc/stat")
    ncpu = os.cpu_count()
    quiet = busy_cpus(0.3)
    assert 0.0 <= quiet <= ncpu
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = busy_cpus(0.5)
    finally:
        spin.kill()
        spin.wait()
    assert loaded >= 0.8, "one process spinning keeps about one CPU busy"
    with pytest.raises(ValueError, match="interval"):
        busy_cpus(0)
