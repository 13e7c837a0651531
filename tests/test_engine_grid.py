"""Tests of focal.engine.grid: the grid's configs, train_many's progress lines, parallel workers, stale runs."""
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import focal.engine.grid as fg
from focal.engine.config import run_name
from focal.engine.grid import grid, grid_configs, train_many
from focal.engine.runs import find_runs

from runhelpers import EpochCounter, tiny  # noqa: E402


def test_grid_configs_vary_gamma_only_where_it_matters(fake_root):
    base = tiny(fake_root)
    configs = grid_configs(base, ["ce", "focal-flsd53", "focal", "cb-focal"], gammas=[1.0, 2.0], seeds=[0, 1],
                           imbalances=[4.0, 2.0])
    assert len(configs) == 2 * (1 + 1 + 2 + 2) * 2 and len({run_name(c) for c in configs}) == len(configs)
    assert [c.imbalance for c in configs[:12]] == [4.0] * 12


@pytest.mark.slow
def test_grid_trains_each_distinct_run_once_and_skips_finished_ones(fake_root, tmp_path, monkeypatch):
    base = tiny(fake_root, epochs=1)
    counter = EpochCounter(monkeypatch)
    results = grid(base, ["ce", "focal-flsd53", "focal"], gammas=[1.0, 2.0], seeds=[0], imbalances=[4.0],
                   out=tmp_path, progress=False)
    assert [(c.loss, c.gamma) for c, _ in results] == [("ce", 1.0), ("focal-flsd53", 1.0), ("focal", 1.0),
                                                      ("focal", 2.0)]
    assert counter.calls == 4 and all(m["name"] == run_name(c) for c, m in results)
    again = grid(base, ["ce", "focal"], gammas=[2.0, 1.0], seeds=[0], out=tmp_path, progress=False)
    assert counter.calls == 4 and len(again) == 3 and {m["status"] for _, m in again} == {"reused"}
    assert len(find_runs(tmp_path)) == 4


def test_train_many_says_which_run_of_how_many_and_the_time_left(monkeypatch, fake_root, tmp_path):
    seen = []

    def fake_train(config, out, progress, reuse_stale=False):
        seen.append(run_name(config))
        return {"train_time_s": 1.0, "status": "trained"}

    monkeypatch.setattr(fg, "train", fake_train)
    cs = [tiny(fake_root, seed=s) for s in range(3)]
    monkeypatch.setattr(fg, "prepare_run", lambda c, out, reuse_stale: ("reused" if c.seed == 0 else "train", None))
    out = io.StringIO()
    results = train_many(cs, tmp_path, file=out)
    assert [c for c, _ in results] == cs and seen == [run_name(c) for c in cs]
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert lines[0] == "3 runs: 1 finished earlier (loaded from disk), 2 to train"
    assert lines[1] == f"run 1/2 training {run_name(cs[1])}"
    assert lines[-1].startswith(f"run 2/2 done: {run_name(cs[2])} in 1 s; elapsed") and lines[-1].endswith("0 s left")
    with pytest.raises(ValueError, match="workers"):
        train_many(cs, tmp_path, workers=0)


@pytest.mark.slow
def test_train_many_names_each_stale_run_before_training(fake_root, tmp_path):
    config = tiny(fake_root, epochs=1)
    train_many([config], tmp_path, progress=False)
    metrics_file = tmp_path / run_name(config) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["code"]["fingerprint"] = "feedfacecafe"
    metrics_file.write_text(json.dumps(metrics))
    out = io.StringIO()
    kept = train_many([config], tmp_path, file=out, reuse_stale=True)
    assert kept[0][1]["status"] == "reused-stale"
    assert f"run {run_name(config)} is stale" in out.getvalue()
    assert "1 run: 1 finished earlier (loaded from disk, 1 of them stale), 0 to train" in out.getvalue()
    out = io.StringIO()
    again = train_many([config], tmp_path, file=out)
    assert again[0][1]["status"] == "trained" and "retraining it" in out.getvalue()


@pytest.mark.slow
def test_parallel_workers_give_the_numbers_of_one_process(fake_root, tmp_path):
    cs = [tiny(fake_root, epochs=1, seed=s, device="auto") for s in (0, 1)]
    said = io.StringIO()
    parallel = train_many(cs, tmp_path / "par", file=said, workers=2, devices=["cpu", "cpu"])
    serial = train_many(cs, tmp_path / "ser", file=io.StringIO())
    assert "in 2 worker processes of 1 thread each on cpu" in said.getvalue()
    for (_, p), (_, s) in zip(parallel, serial):
        assert p["config"]["device"] == "cpu" and s["config"]["device"] == "auto"  # each worker's device, or the run's
        assert p["final"]["top1_error"] == s["final"]["top1_error"]  # thread counts differ: losses agree to ~1e-6
        assert p["history"][0]["train_loss"] == pytest.approx(s["history"][0]["train_loss"], rel=1e-4)


def test_one_worker_trains_on_the_device_it_is_given(fake_root, tmp_path):
    (_, result), = train_many([tiny(fake_root, epochs=1, device="auto")], tmp_path, file=io.StringIO(), devices=["cpu"])
    assert result["config"]["device"] == "cpu"


@pytest.mark.parametrize("devices", ["cuda:0", []])
def test_devices_must_be_a_list_of_device_names(fake_root, tmp_path, devices):
    with pytest.raises(ValueError, match="devices must be a non-empty sequence"):
        train_many([tiny(fake_root, epochs=1)], tmp_path, file=io.StringIO(), devices=devices)


def _children(pid: int) -> set[int]:
    """The worker processes (multiprocessing's spawn_main) whose parent is ``pid``."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and "spawn_main" in (stat.parent / "cmdline").read_text(errors="replace"):
                out.add(int(stat.parent.name))
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_workers_end_with_a_grid_command_that_is_killed(fake_root, tmp_path):
    """A grid command killed by a signal (SIGKILL: no cleanup of its own) takes its worker processes with it."""
    script = tmp_path / "grid.py"
    script.write_text(
        "import sys, io\nsys.path.insert(0, %r)\nfrom runhelpers import tiny\nfrom focal.engine.grid import train_many\n"
        "if __name__ == '__main__':\n"
        "    train_many([tiny(%r, epochs=5000, seed=s) for s in (0, 1)], %r, file=io.StringIO(), workers=2)\n"
        % (str(Path(__file__).parent), str(fake_root), str(tmp_path / "runs")))
    parent = subprocess.Popen([sys.executable, str(script)])
    workers: set[int] = set()
    try:
        deadline = time.time() + 120
        while len(workers := _children(parent.pid)) < 2:
            assert time.time() < deadline and parent.poll() is None, "the workers did not start"
            time.sleep(0.2)
        time.sleep(3)  # both are training now
        assert parent.poll() is None and all(_alive(p) for p in workers), "the grid command ended by itself"
        parent.kill()
        parent.wait()
        deadline = time.time() + 30
        while any(_alive(p) for p in workers):
            assert time.time() < deadline, "the workers kept training after their grid command was killed"
            time.sleep(0.2)
    finally:
        parent.kill()
        for pid in workers | _children(parent.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
