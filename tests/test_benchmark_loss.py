"""Tests of the loss benchmark (benchmarks/loss.py): per-round ratios, the machine in every row, the memory sweep."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "loss.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))  # loss.py imports its sibling timing.py, as the script does
    spec = importlib.util.spec_from_file_location("bench_loss", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratios_are_taken_within_rounds_so_drift_cancels(bench):
    """The machine slows down 3x halfway; the implementation is always 2 % slower than the baseline of its round,
    and every per-round ratio, hence their median and quartiles, says exactly that."""
    base = [10.0] * 5 + [30.0] * 6
    impl = [b * 1.02 for b in base]
    stats = bench.ratio_summary({"base": base, "impl": impl}, "base")["impl"]
    assert stats["time_ratio"] == pytest.approx(1.02)
    assert stats["ratio_q1"] == pytest.approx(1.02) and stats["ratio_q3"] == pytest.approx(1.02)
    assert stats["below_one"] == 0 and stats["rounds"] == 11


def test_spread_shows_a_noisy_comparison(bench):
    stats = bench.ratio_summary({"b": [1.0] * 4, "f": [0.9, 1.0, 1.1, 1.3]}, "b")["f"]
    assert stats["ratio_q1"] < stats["time_ratio"] < stats["ratio_q3"]
    assert stats["below_one"] == 0.25


def test_median_interval_has_its_coverage(bench):
    """The interval's ranks give at least 95 % coverage by the binomial law, one rank further in would not; and on
    skewed draws (exponential, median ln 2) the interval covers the true median in about 95 % or more of trials."""
    import math
    import random

    for n in range(6, 80):
        low, high = bench.median_interval(list(range(n)))
        k = low + 1
        assert high == n - k
        cover = lambda k: 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n  # noqa: E731
        assert cover(k) >= 0.95 > cover(k + 1)
    assert all(math.isnan(v) for v in bench.median_interval([1.0] * 5))
    rng = random.Random(0)
    hits = 0
    for _ in range(2000):
        low, high = bench.median_interval([rng.expovariate(1.0) for _ in range(31)])
        hits += low <= math.log(2) <= high
    assert 0.95 <= hits / 2000 <= 0.99


def test_summary_reports_the_interval_of_the_median(bench):
    ratios = [1.0 + i / 100 for i in range(31)]  # 1.00 ... 1.30
    stats = bench.ratio_summary({"b": [1.0] * 31, "f": ratios}, "b")["f"]
    assert stats["ratio_ci_low"] == pytest.approx(1.09) and stats["ratio_ci_high"] == pytest.approx(1.21)
    assert stats["ratio_ci_low"] < stats["time_ratio"] < stats["ratio_ci_high"]


def test_a_round_plan_runs_its_minimum_then_fills_its_budget(bench):
    calls = []
    fast = bench.timed_rounds({"b": lambda: calls.append(1) or 1.0, "f": lambda: 1.0}, bench.RoundPlan(5, 0.0, 50))
    assert len(fast["b"]) == len(fast["f"]) == 5 == len(calls), "no budget: the minimum"
    budget = bench.timed_rounds({"b": lambda: 1.0, "f": lambda: 1.0}, bench.RoundPlan(5, 0.2, 40))
    assert 5 < len(budget["b"]) <= 40 and len(budget["b"]) == len(budget["f"]), "a budget adds rounds, up to the cap"
    assert len(bench.timed_rounds({"b": lambda: 1.0}, bench.RoundPlan.fixed(3))["b"]) == 3
    with pytest.raises(ValueError, match="min_rounds"):
        bench.RoundPlan(10, 1.0, 5)


def test_steady_allocator_reports_what_it_set(bench):
    """On glibc (these machines) it sets the two mallopt parameters; the string goes into the results' metadata."""
    assert bench.steady_allocator().startswith("glibc, freed memory kept")


def test_rounds_must_match(bench):
    with pytest.raises(ValueError, match="rounds"):
        bench.ratio_summary({"b": [1.0, 2.0], "f": [1.0]}, "b")


def test_round_orders_vary_positions_and_neighbours(bench):
    names = ["a", "b", "c", "d"]
    orders = [bench.round_order(names, i) for i in range(25)]
    assert all(sorted(o) == names for o in orders)
    assert all({o.index(n) for o in orders} == set(range(len(names))) for n in names), "every position"
    before_a = {o[o.index("a") - 1] for o in orders if o.index("a") > 0}
    assert before_a == {"b", "c", "d"}, "the baseline follows every other implementation"


def run_script(*argv, timeout=600):
    proc = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_quick_run_names_the_machine_and_the_spread_in_every_row(tmp_path, bench):
    out = tmp_path / "loss.json"
    proc = run_script("--quick", "--no-memory", "--rounds", "3", "--json", str(out), "--markdown")
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert {r["case"] for r in rows} == set(bench.QUICK_CASES)
    machine = result["meta"]["hardware"].rsplit(", torch", 1)[0]
    for r in rows:
        assert r["machine"] == machine and r["rounds"] == 3
        assert r["ratio_q1"] <= r["time_ratio"] <= r["ratio_q3"]
    table_rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "case" not in line]
    assert len(table_rows) == len(rows) and all(line.startswith(f"| {machine} |") for line in table_rows)


@pytest.mark.slow
def test_memory_sweep_measures_both_heads(tmp_path):
    out = tmp_path / "sweep.json"
    run_script("--memory-sweep", "64", "8", "64,2048", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert sorted((r["classes"], r["impl"].split()[0]) for r in rows) == [
        (64, "focal.linear_focal_loss"), (64, "focal_loss"), (2048, "focal.linear_focal_loss"), (2048, "focal_loss")]
    peak = {(r["classes"], r["impl"].startswith("focal.")): r["peak_mb"] for r in rows}
    # 64 x 2048 float32 logits are 0.5 MiB; materialising them and their gradients costs more than the chunks
    assert peak[(2048, False)] > peak[(2048, True)]


def test_bad_arguments_are_named():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "nonsense", "--no-memory"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and "--only nonsense matches no case" in proc.stderr
    proc = subprocess.run([sys.executable, str(SCRIPT), "--memory-sweep", "8", "x", "4"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--memory-sweep takes N HIDDEN C,C,..." in proc.stderr
