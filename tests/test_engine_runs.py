"""Tests of focal.engine.runs: the code fingerprint, what a run folder holds, reading runs back."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import focal
from focal.engine.config import Config, run_name
from focal.engine.files import UnreadableFile, write_json, write_npz
from focal.engine.runs import (TRAINING_SOURCES, archive_run, code_fingerprint, code_record, find_runs, inspect_run,
                               load_logits, load_run)

PACKAGE = Path(focal.__file__).parent


@pytest.fixture
def package_copy(tmp_path):
    copy = tmp_path / "focal"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_fingerprint_ignores_prose_and_follows_code(package_copy):
    base = code_fingerprint(package_copy)
    assert base == code_fingerprint() and len(base) == 12
    train = package_copy / "engine" / "train.py"
    text = train.read_text()
    train.write_text(text.replace('"""Config -> training run', '"""Edited prose. Config -> training run', 1)
                     .replace("\n\ndef make_criterion", "\n\n# a new comment\ndef make_criterion", 1))
    assert train.read_text() != text and code_fingerprint(package_copy) == base
    config = package_copy / "engine" / "config.py"
    config_text = config.read_text()
    config.write_text(config_text.replace('"training epochs (default %(default)s)"', '"epochs to train"', 1)
                      .replace('must be >= 1, got', 'should be at least 1, got', 1))
    assert config.read_text() != config_text and code_fingerprint(package_copy) == base  # help and error texts
    step = package_copy / "engine" / "step.py"
    step.write_text(step.read_text().replace("model.train()", "model.eval()", 1))
    assert code_fingerprint(package_copy) != base


@pytest.mark.parametrize("entry", TRAINING_SOURCES)
def test_every_training_source_exists_and_counts(package_copy, entry):
    target = package_copy / entry
    path = sorted(target.rglob("*.py"))[-1] if target.is_dir() else target
    assert path.is_file()
    before = code_fingerprint(package_copy)
    path.write_text(path.read_text() + "\n_FINGERPRINT_PROBE = 1\n")
    assert code_fingerprint(package_copy) != before


def test_plots_and_the_book_are_not_training_code(package_copy):
    before = code_fingerprint(package_copy)
    for rel in ("book/results.py", "engine/cli.py", "engine/grid.py"):
        (package_copy / rel).write_text((package_copy / rel).read_text() + "\nX = 1\n")
    assert code_fingerprint(package_copy) == before


def _fake_run(root: Path, config: Config, code=None) -> Path:
    run_dir = root / run_name(config)
    run_dir.mkdir(parents=True)
    write_json(run_dir / "config.json", config.to_dict())
    write_npz(run_dir / "test_logits.npz", logits=np.zeros((4, 3), np.float32), labels=np.arange(4) % 3)
    write_json(run_dir / "metrics.json", dict(config=config.to_dict(), final={}, history=[],
                                              **({"code": code} if code is not None else {})))
    return run_dir


@pytest.mark.parametrize("code, kind", [(None, "stale"), ({"fingerprint": "x", "torch": "1"}, "stale"),
                                        ("current", "finished")])
def test_inspect_run_tells_finished_from_stale(tmp_path, code, kind):
    run_dir = _fake_run(tmp_path, Config(), code_record() if code == "current" else code)
    state = inspect_run(run_dir)
    assert state.kind == kind and state.metrics["config"] == Config().to_dict()
    if kind == "stale":
        assert code_fingerprint() in state.reason


@pytest.mark.parametrize("name, damage", [("metrics.json", b'{"config": {'), ("config.json", b"{"),
                                          ("test_logits.npz", b"PK\x03\x04trunc"), ("test_logits.npz", None)])
def test_inspect_run_names_the_broken_file(tmp_path, name, damage):
    run_dir = _fake_run(tmp_path, Config(), code_record())
    if damage is None:
        (run_dir / name).unlink()
    else:
        (run_dir / name).write_bytes(damage)
    state = inspect_run(run_dir)
    assert state.kind == "broken" and str(run_dir / name) in state.reason


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        load_run(tmp_path)
    (tmp_path / "metrics.json").write_text('{"history": [')
    with pytest.raises(UnreadableFile, match=f"{tmp_path / 'metrics.json'}.*truncated"):
        load_run(tmp_path)
    with pytest.raises(UnreadableFile, match="test_logits.npz.*missing"):
        load_logits(tmp_path)


def test_find_runs_filters_and_skips_broken_folders(tmp_path):
    for loss, gamma in (("ce", 1.0), ("focal", 1.0), ("focal", 2.0)):
        _fake_run(tmp_path, Config(loss=loss, gamma=gamma), code_record())
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metrics.json").write_text("{")
    assert [c.loss for c, _ in find_runs(tmp_path, loss=["focal", "ce"])] == ["ce", "focal", "focal"]
    assert [c.gamma for c, _ in find_runs(tmp_path, loss="focal", gamma=2.0)] == [2.0]
    assert find_runs(tmp_path / "nothing") == []
    with pytest.raises(ValueError, match="gama"):
        find_runs(tmp_path, gama=1)


def test_archive_keeps_the_old_run_out_of_find_runs(tmp_path):
    run_dir = _fake_run(tmp_path, Config(), code_record())
    moved = archive_run(run_dir, "stale")
    again = archive_run(_fake_run(tmp_path, Config(), code_record()), "stale")
    assert not run_dir.exists() and moved != again and (moved / "metrics.json").is_file()
    assert json.loads((again / "config.json").read_text()) == Config().to_dict() and find_runs(tmp_path) == []
