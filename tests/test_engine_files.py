"""focal.engine.files: atomic writes leave no partial file; readers name the file they cannot read."""
import json
import os
import pickle

import numpy as np
import pytest

from focal.engine.files import UnreadableFile, atomic_write, read_json, write_json, write_npz, write_pickle


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})

    def half_then_crash(tmp):
        tmp.write_text('{"a": 2, "b": [')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_crash)
    assert read_json(target) == {"a": 1} and sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_writers_write_exactly_the_named_file(tmp_path):
    write_npz(tmp_path / "x.npz", a=np.arange(3))
    write_pickle(tmp_path / "batch", {"k": 1})
    write_json(tmp_path / "n.json", {"nan": float("nan")})
    assert sorted(os.listdir(tmp_path)) == ["batch", "n.json", "x.npz"]
    with np.load(tmp_path / "x.npz") as data:
        assert data["a"].tolist() == [0, 1, 2]
    assert json.loads((tmp_path / "n.json").read_text().replace("NaN", "null")) == {"nan": None}


def test_read_json_names_a_truncated_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"loss": "ce", "gam')
    with pytest.raises(UnreadableFile, match=f"^{path}: not valid JSON .*truncated") as info:
        read_json(path)
    assert info.value.path == path and isinstance(info.value, OSError)
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "missing.json")


def test_unreadable_file_crosses_process_boundaries_intact(tmp_path):
    err = pickle.loads(pickle.dumps(UnreadableFile(tmp_path / "batch", "truncated")))
    assert isinstance(err, UnreadableFile) and err.path == tmp_path / "batch" and str(err) == f"{tmp_path}/batch: truncated"
