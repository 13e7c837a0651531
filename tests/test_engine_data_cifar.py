"""focal.engine.data.cifar: the real CIFAR pickle layout through torchvision, fake CIFAR, clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import focal.engine.data as fd
import focal.engine.data.cifar as fdc
from focal.engine.data import (load_data,
                               longtail_counts, write_fake_cifar)
from focal.engine.files import UnreadableFile


from runhelpers import ldam_subset  # noqa: E402


# ---------------------------------------------------------------- CIFAR through torchvision


def read_pickles(folder: Path, names, label_key):
    x, y = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        assert entry["data"].dtype == np.uint8 and entry["data"].shape[1] == 3072
        x.append(entry["data"])
        y += entry[label_key]
    return np.concatenate(x).reshape(-1, 3, 32, 32), np.array(y)


@pytest.mark.parametrize("classes, folder, train_files, test_file, key", [
    (10, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "labels"),
    (100, "cifar-100-python", ["train"], "test", "fine_labels"),
])
def test_fake_cifar_round_trips_through_torchvision(tmp_path, classes, folder, train_files, test_file, key):
    root = write_fake_cifar(tmp_path, num_classes=classes, n_train_per_class=12, n_test_per_class=3, seed=5)
    assert root == tmp_path
    x_train, y_train = read_pickles(tmp_path / folder, train_files, key)
    x_test, y_test = read_pickles(tmp_path / folder, [test_file], key)
    name = f"cifar{classes}"

    full = load_data(name, tmp_path, verify=False)
    assert torch.equal(full.train_images, torch.from_numpy(x_train))
    assert torch.equal(full.train_targets, torch.from_numpy(y_train))
    assert torch.equal(full.test_images, torch.from_numpy(x_test))
    assert full.train_counts == [12] * classes and full.classes[:2] == ["fake_00", "fake_01"]
    assert full.mean == fd.CIFAR_MEAN and full.std == fd.CIFAR_STD
    assert full.root == str(tmp_path)  # what --data-root must be to read these files again
    names = train_files + [test_file, "batches.meta" if classes == 10 else "meta"]
    assert full.files == tuple(str(tmp_path / folder / f) for f in names)

    lt = load_data(f"{name}-lt", tmp_path, verify=False, imbalance=4, lt_profile="exp", seed=7)
    counts = longtail_counts(12, classes, 4)
    subset = ldam_subset(y_train, counts, 7)
    assert lt.train_counts == counts
    assert torch.equal(lt.train_images, torch.from_numpy(x_train[subset]))
    assert torch.equal(lt.train_targets, torch.from_numpy(y_train[subset]))
    assert torch.equal(lt.test_images, full.test_images)  # the test split stays balanced
    assert (lt.root, lt.files) == (full.root, full.files)


def test_fake_cifar100_has_coarse_labels(tmp_path):
    write_fake_cifar(tmp_path, num_classes=100, n_train_per_class=1, n_test_per_class=1)
    with open(tmp_path / "cifar-100-python" / "train", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    assert [c // 5 for c in entry["fine_labels"]] == entry["coarse_labels"]
    with open(tmp_path / "cifar-100-python" / "meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    assert len(meta["fine_label_names"]) == 100 and len(meta["coarse_label_names"]) == 20


@pytest.mark.parametrize("name, folder, first", [("cifar10", "cifar-10-batches-py", "data_batch_1"),
                                                  ("cifar100-lt", "cifar-100-python", "train")])
def test_verify_refuses_fake_cifar_in_one_line(tmp_path, name, folder, first):
    write_fake_cifar(tmp_path, num_classes=100 if "100" in name else 10, n_train_per_class=2, n_test_per_class=1)
    with pytest.raises(UnreadableFile, match="verify=False.*--no-verify") as info:
        load_data(name, tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / folder}: {first}, ") and "MD5" in message and "--download" in message
    assert "\n" not in message and "not found" not in message


@pytest.mark.parametrize("classes, folder, victim", [
    (10, "cifar-10-batches-py", "data_batch_3"), (10, "cifar-10-batches-py", "batches.meta"),
    (100, "cifar-100-python", "train"), (100, "cifar-100-python", "test"),
])
def test_truncated_cifar_names_the_file(tmp_path, classes, folder, victim):
    write_fake_cifar(tmp_path, num_classes=classes, n_train_per_class=3, n_test_per_class=2)
    path = tmp_path / folder / victim
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    name = f"cifar{classes}-lt"
    with pytest.raises(UnreadableFile, match="truncated or corrupt") as info:
        load_data(name, tmp_path, verify=False, imbalance=2)
    assert str(info.value).startswith(f"{path}: ") and info.value.path == path and "\n" not in str(info.value)
    with pytest.raises(UnreadableFile, match="MD5") as info:  # the MD5 check (verify=True) lists it too
        load_data(name, tmp_path, imbalance=2)
    assert victim in str(info.value).split(": ", 1)[1].split(" fail ")[0].split(", ")


def test_verified_cifar_uses_torchvision_unchanged():
    from torchvision.datasets import CIFAR10, CIFAR100

    assert fdc._cifar_class(10, True) is CIFAR10 and fdc._cifar_class(100, True) is CIFAR100
    assert issubclass(fdc._cifar_class(10, False), CIFAR10)


def test_missing_cifar_names_path_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py") as info:
        load_data("cifar10-lt", tmp_path)
    assert str(tmp_path) in str(info.value) and "--download" in str(info.value)


def test_cifar_root_defaults_to_default_data_root(tmp_path, monkeypatch):
    write_fake_cifar(tmp_path, n_train_per_class=1, n_test_per_class=1)
    monkeypatch.setenv("FOCAL_DATA", str(tmp_path))
    data = load_data("cifar10", verify=False)
    assert data.root == str(tmp_path) and len(data.files) == 7
    assert all(Path(f).parent == tmp_path / "cifar-10-batches-py" for f in data.files)


def test_write_fake_cifar_rejects_other_class_counts(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        write_fake_cifar(tmp_path, num_classes=20)


def _no_network(monkeypatch):
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network on this host")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_fetch_cifar_offline_names_the_archives_and_where_to_copy_them(tmp_path, monkeypatch, capsys):
    """No network and no archives: one error that names both archives with their MD5 sums and the folder; the CLI
    (`make data`) prints it as one line and exits 1."""
    from torchvision.datasets import CIFAR10, CIFAR100

    from focal.engine.cli import main

    _no_network(monkeypatch)
    with pytest.raises(FileNotFoundError) as err:
        fd.fetch_cifar(tmp_path)
    text = str(err.value)
    for cls in (CIFAR10, CIFAR100):
        assert f"{cls.filename} (MD5 {cls.tgz_md5})" in text
    assert f"into {tmp_path}/" in text and "make data" in text and "no network" in text
    assert main(["data", "--data-root", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m focal data: error: could not obtain CIFAR10")


def test_fetch_cifar_unpacks_archives_copied_in_without_network(tmp_path, monkeypatch):
    """An offline host with the two archives copied into the data root: fetch_cifar checks each archive's MD5, unpacks
    it and checks every file's MD5, with no network; the datasets then load with verification on. (The archives are
    fakes, so torchvision's MD5 table is pointed at them.)"""
    import hashlib
    import tarfile

    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import calculate_md5

    _no_network(monkeypatch)
    root = tmp_path / "data"
    root.mkdir()
    for cls, classes in ((CIFAR10, 10), (CIFAR100, 100)):
        made = fdc.write_fake_cifar(tmp_path / f"made{classes}", num_classes=classes, n_train_per_class=2,
                                    n_test_per_class=1) / cls.base_folder
        archive = root / cls.filename
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(made, arcname=cls.base_folder)
        md5 = {p.name: calculate_md5(p) for p in made.iterdir()}
        monkeypatch.setattr(cls, "tgz_md5", hashlib.md5(archive.read_bytes()).hexdigest())
        monkeypatch.setattr(cls, "train_list", [[name, md5[name]] for name, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[name, md5[name]] for name, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})
    folders = fd.fetch_cifar(root)
    assert folders == [root / CIFAR10.base_folder, root / CIFAR100.base_folder]
    assert fdc.load_cifar(10, root).train_images.shape[0] == 20
    assert fdc.load_cifar(100, root).train_images.shape[0] == 200
    assert fd.fetch_cifar(root) == folders, "a second call finds both ready"
