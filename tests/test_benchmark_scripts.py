"""Tests of the training benchmark script (benchmarks/train.py): both modes run and report sane numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


# ------------------------------------------------------------------------------------------------- benchmark

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "train.py"


@pytest.mark.slow
@pytest.mark.parametrize("argv, expected", [
    (["--models", "small-cnn", "--fake-cifar", "200", "--steps", "1", "--repeats", "1", "--workers", "0"],
     ["focal DeviceLoader", "DataLoader+PIL, 0 workers", "1.00x"]),
    (["--models", "small-cnn", "--fake-cifar", "200", "--epochs", "1", "--amp", "--channels-last"],
     ["training images/s", "projected 200-epoch CIFAR-10-LT run"]),
])
def test_benchmark_script_runs_both_modes(argv, expected):
    proc = subprocess.run([sys.executable, str(BENCHMARK), *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(text in proc.stdout for text in expected)


@pytest.mark.slow
def test_benchmark_speedups_mode_reports_every_row_with_positive_numbers(tmp_path):
    out = tmp_path / "speedups.json"
    argv = ["--speedups", "--quick", "--models", "small-cnn", "resnet32", "--batch-size", "32", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(BENCHMARK), *argv], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["meta"]["hardware"] in proc.stdout and "torch" in result["meta"]["hardware"]
    rows = result["rows"]
    sections = {s: [r for r in rows if r["section"] == s] for s in ("train", "eval", "eval-share", "workers")}
    # (a) both memory formats for both models, (c) torch.compile for the first model only
    assert [(r["model"], r["variant"]) for r in sections["train"]] == [
        ("small-cnn", "contiguous (baseline)"), ("small-cnn", "channels_last"),
        ("small-cnn", "torch.compile, contiguous"), ("resnet32", "contiguous (baseline)"),
        ("resnet32", "channels_last")]
    # (b) every memory format x batch x grad mode, and the eval share at every 1, 2, 5 epochs (+ the profile's)
    assert {(r["memory_format"], r["batch"], r["grad_mode"]) for r in sections["eval"]} == {
        (f, b, g) for f in ("contiguous", "channels_last") for b in (512, 1024, 2048)
        for g in ("no_grad", "inference_mode")}
    assert {1, 2, 5} <= {r["eval_every"] for r in sections["eval-share"]}
    assert {r["setup"] for r in sections["eval-share"]} == {"baseline", "fastest"}
    assert sum(r["baseline"] for r in sections["eval-share"]) == 1
    # (d) parallel single-threaded runs against one run with every thread (two-core machines and up)
    cores = os.cpu_count() or 1
    assert [(r["processes"], r["threads"]) for r in sections["workers"]] == ([(1, cores), (cores, 1)]
                                                                              if cores >= 2 else [])
    numbers = {"workers": ["images_per_s", "speedup"], "train": ["images_per_s", "ms_per_step", "speedup", "epoch_s"],
               "eval": ["images_per_s", "ms_per_step", "speedup", "pass_s"],
               "eval-share": ["images_per_s", "speedup", "run_s", "eval_share", "epoch_s", "pass_s"]}
    for section, keys in numbers.items():
        for row in sections[section]:
            for key in keys:
                assert 0 < row[key] < float("inf"), (section, row["variant"], key, row[key])  # NaN fails too
            assert row["variant"] in proc.stdout or section == "eval-share"
    compiled = sections["train"][2]
    assert all(compiled[k] > 0 for k in ("compile_s", "compile_warm_cache_s", "same_process_first_step_s"))
    assert "compile s" in proc.stdout and "load average" in proc.stdout
    for section in ("train", "eval"):  # the baseline row is the baseline of its own speed-ups
        assert all(r["speedup"] == 1.0 for r in sections[section] if "(baseline)" in r["variant"])
    shares = {(r["setup"], r["eval_every"]): r for r in sections["eval-share"]}
    assert shares[("baseline", 1)]["eval_share"] > shares[("baseline", 5)]["eval_share"]  # fewer evaluations
    assert shares[("baseline", 1)]["evaluations"] == shares[("baseline", 1)]["epochs"]


def test_benchmark_speedups_only_options_need_speedups():
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--quick needs --speedups" in proc.stderr


# ------------------------------------------------------------------------------------------------ grid mode


def test_the_grid_projection_counts_every_run_image_and_evaluation_of_the_gpu_profile():
    sys.path.insert(0, str(BENCHMARK.parent))
    from train_grid import grid_work, projected_seconds
    from focal.book.profiles import get_profile

    work = grid_work(get_profile("gpu"))
    # LDAM-DRW's training-set sizes: CIFAR-10-LT at imbalance 100/50/10, CIFAR-100-LT at 100/50/10; 7 loss settings
    # x 3 seeds each, plus the balanced reference (6 runs of 1,240 x 10 images), 200 epochs, a test pass every 10
    lt_sizes = (12406, 13996, 20431) + (10847, 12608, 19573)
    assert work == {"runs": 132, "train_images": 200 * (7 * 3 * sum(lt_sizes) + 6 * 12400), "eval_passes": 132 * 20,
                    "class_counts": 2}
    assert projected_seconds(work, 1e5, 1.0, 30.0, 4) == pytest.approx(work["train_images"] / 1e5 + 2640 / 4 + 60)


@pytest.mark.slow
def test_grid_mode_trains_one_and_several_runs_compiled_and_not_and_projects_the_grid(tmp_path):
    out = tmp_path / "grid.json"
    argv = ["--grid", "--quick", "--models", "small-cnn", "--grid-workers", "2", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(BENCHMARK), *argv], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [(r["compile"], r["workers"]) for r in result["rows"]] == [(False, 1), (False, 2), (True, 1), (True, 2)]
    for row in result["rows"]:
        assert row["run_images_per_s"] > 0 and row["first_epoch_s"] > 0 and row["epochs"] == 4
        assert row["overlap"] == pytest.approx(1.0) if row["workers"] == 1 else 0 <= row["overlap"] <= 1.5
    compiled = [r for r in result["rows"] if r["compile"]]
    assert all(r["first_epoch_s"] > 2 * r["steady_epoch_s"] for r in compiled)  # the compilation is in epoch 1
    projection = result["projection"]
    overlapping = [r["images_per_s"] for r in result["rows"] if r["overlap"] >= 0.5]
    assert projection["runs"] == 132 and projection["projected_s"] > projection["train_images"] / max(overlapping)
    assert "projected wall time of the gpu profile's grid (132 runs" in proc.stdout
    assert result["meta"]["hardware"] in proc.stdout


@pytest.mark.parametrize("argv, message", [(["--grid", "--grid-epochs", "2"], "--grid-epochs must be >= 3"),
                                           (["--grid", "--grid-workers", "0"], "--grid-workers must be >= 1"),
                                           (["--grid", "--amp"], "have no effect with --grid"),
                                           (["--quick"], "--quick needs --speedups")])
def test_grid_mode_rejects_bad_arguments(argv, message):
    proc = subprocess.run([sys.executable, str(BENCHMARK), *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr


# ------------------------------------------------------------------------------------------- the GPU check script

GPU_CHECK = BENCHMARK.parent / "gpu_check.sh"


def test_the_gpu_check_script_passes_shellcheck():
    from test_workflows import shellcheck

    proc = subprocess.run([shellcheck(), str(GPU_CHECK)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.slow
def test_the_gpu_check_script_runs_its_steps_and_resumes_a_killed_run_on_the_cpu(tmp_path):
    """The script the first GPU runs, at toy sizes on the CPU: grid benchmark, loss benchmark, kill and resume."""
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "OUT": str(tmp_path)}
    proc = subprocess.run(["bash", str(GPU_CHECK), sys.executable], capture_output=True, text=True, timeout=900,
                          env=env, cwd=BENCHMARK.parents[1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert json.loads((tmp_path / "grid.json").read_text())["projection"]["runs"] == 132
    assert json.loads((tmp_path / "loss.json").read_text())["rows"]
    assert "killed the run after its first checkpoint: " in proc.stdout and "none" not in proc.stdout
    assert "resumed and trained: " in (tmp_path / "resume.log").read_text()
