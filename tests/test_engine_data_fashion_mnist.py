"""focal.engine.data.fashion_mnist: the data root rule, Debian's copy, corrupt idx files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import focal.engine.data as fd
import focal.engine.data.fashion_mnist as fdf
from focal.engine.data import (FASHION_MNIST_FILES, load_data,
                               longtail_counts)
from focal.engine.files import UnreadableFile

DEBIAN_INSTALLED = all((fd.DEBIAN_FASHION_MNIST / f"{name}.gz").is_file() for name in FASHION_MNIST_FILES)
needs_debian = pytest.mark.skipif(not DEBIAN_INSTALLED, reason="Debian's dataset-fashion-mnist is not installed")

from runhelpers import ldam_subset  # noqa: E402


# ---------------------------------------------------------------- Fashion-MNIST


def write_idx(path: Path, array: np.ndarray) -> None:
    header = np.array([0x0800 + array.ndim, *array.shape], dtype=">i4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def fake_fashion(folder: Path, suffix: str, seed=0):
    """Small random Fashion-MNIST idx files (30 training, 10 test images) in ``folder``; their arrays by split."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", 30), ("t10k", 10)):
        arrays[split] = (rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10)
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", arrays[split][0])
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", arrays[split][1])
    return arrays


def fashion_paths(folder: Path, suffix: str) -> tuple[str, ...]:
    return tuple(str(folder / f"{name}{suffix}") for name in FASHION_MNIST_FILES)


LAYOUTS = {  # where the files go under the root, and their suffix
    "debian-names-in-root": ("", ".gz"), "torchvision-raw": ("FashionMNIST/raw", ""),
    "torchvision-gz": ("FashionMNIST/raw", ".gz"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fashion_mnist_reads_the_given_root(tmp_path, layout):
    """A given root is read even though Debian's copy may exist: the data are the fake's, not Debian's."""
    sub, suffix = LAYOUTS[layout]
    arrays = fake_fashion(tmp_path / sub, suffix)
    data = load_data("fashion-mnist-lt", tmp_path, verify=False, imbalance=3, seed=2)
    counts = longtail_counts(3, 10, 3)
    subset = ldam_subset(arrays["train"][1], counts, 2)
    assert data.train_images.shape == (sum(counts), 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert torch.equal(data.train_images[:, 0], torch.from_numpy(arrays["train"][0][subset].astype(np.uint8)))
    assert torch.equal(data.test_targets, torch.from_numpy(arrays["t10k"][1]))
    assert data.classes[0] == "T-shirt/top" and data.in_channels == 1
    assert data.root == str(tmp_path) and data.files == fashion_paths(tmp_path / sub, suffix)
    with pytest.raises(UnreadableFile, match="train-labels-idx1-ubyte.*per class.*verify=False"):
        load_data("fashion-mnist", tmp_path)


def test_fashion_mnist_prefers_debian_names_then_unpacked_files(tmp_path):
    fake_fashion(tmp_path / "FashionMNIST" / "raw", ".gz", seed=1)
    fake_fashion(tmp_path / "FashionMNIST" / "raw", "", seed=2)
    assert load_data("fashion-mnist", tmp_path, verify=False).files == fashion_paths(tmp_path / "FashionMNIST/raw", "")
    fake_fashion(tmp_path, ".gz", seed=3)
    assert load_data("fashion-mnist", tmp_path, verify=False).files == fashion_paths(tmp_path, ".gz")


def test_fashion_mnist_root_without_data_is_refused(tmp_path):
    """Even with Debian's copy installed, a given root without the files is an error, not a silent fallback."""
    fake_fashion(tmp_path / "FashionMNIST" / "raw", "")
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()  # an incomplete set does not count
    with pytest.raises(FileNotFoundError) as info:
        load_data("fashion-mnist", tmp_path)
    message = str(info.value)
    assert message.startswith(f"Fashion-MNIST not found in the given data root {tmp_path}: ")
    for needle in (f"{tmp_path}/*.gz", f"{tmp_path / 'FashionMNIST' / 'raw'}/", *FASHION_MNIST_FILES, "--download",
                   "apt-get install dataset-fashion-mnist", str(fd.DEBIAN_FASHION_MNIST), "omit root / --data-root"):
        assert needle in message
    assert "\n" not in message


def test_fashion_mnist_without_root_falls_back_to_the_default_root(tmp_path, monkeypatch):
    monkeypatch.setattr(fdf, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.setenv("FOCAL_DATA", str(tmp_path / "default"))
    with pytest.raises(FileNotFoundError) as info:
        load_data("fashion-mnist")
    message = str(info.value)
    for needle in (f"{tmp_path / 'nowhere'}/*.gz", f"{tmp_path / 'default' / 'FashionMNIST' / 'raw'}/",
                   "apt-get install dataset-fashion-mnist", "--download"):
        assert needle in message
    fake_fashion(tmp_path / "default" / "FashionMNIST" / "raw", "")
    data = load_data("fashion-mnist", verify=False)
    assert data.root == str(tmp_path / "default")
    assert data.files == fashion_paths(tmp_path / "default" / "FashionMNIST" / "raw", "")


def test_fashion_mnist_without_root_reads_debians_copy(tmp_path, monkeypatch):
    arrays = fake_fashion(tmp_path / "debian", ".gz")
    fake_fashion(tmp_path / "default" / "FashionMNIST" / "raw", "", seed=1)  # not read: Debian's copy comes first
    monkeypatch.setattr(fdf, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setenv("FOCAL_DATA", str(tmp_path / "default"))
    data = load_data("fashion-mnist", verify=False)
    assert torch.equal(data.train_images[:, 0], torch.from_numpy(arrays["train"][0].astype(np.uint8)))
    assert data.root == str(tmp_path / "debian") and data.files == fashion_paths(tmp_path / "debian", ".gz")


def test_fashion_mnist_download_fills_the_given_root(tmp_path, monkeypatch):
    calls = []

    def fake_download(root):
        calls.append(root)
        fake_fashion(root / "FashionMNIST" / "raw", "")

    monkeypatch.setattr(fdf, "_download_fashion_mnist", fake_download)
    with pytest.raises(FileNotFoundError):
        load_data("fashion-mnist", tmp_path)
    assert calls == []  # no download unless asked
    data = load_data("fashion-mnist", tmp_path, download=True, verify=False)
    assert calls == [tmp_path] and data.files == fashion_paths(tmp_path / "FashionMNIST" / "raw", "")
    load_data("fashion-mnist", tmp_path, download=True, verify=False)
    assert calls == [tmp_path]  # present files are not downloaded again


def test_failed_fashion_mnist_download_is_one_line(tmp_path, monkeypatch):
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", [f"{(tmp_path / 'no-mirror').as_uri()}/"])  # no network needed
    with pytest.raises(ConnectionError, match="downloading Fashion-MNIST into .*FashionMNIST/raw failed") as info:
        load_data("fashion-mnist", tmp_path, download=True)
    assert "\n" not in str(info.value)  # a ConnectionError is an OSError: the CLI prints it as one line


def truncate_gzip_stream(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def truncate_payload(path: Path) -> None:
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))


def cut_header(path: Path) -> None:
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:6]))


def bad_magic(path: Path) -> None:
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x07" + gzip.decompress(path.read_bytes())[4:]))


def not_gzip(path: Path) -> None:
    path.write_bytes(b"<html>Service unavailable</html>")


@pytest.mark.parametrize("damage, reason", [
    (truncate_gzip_stream, "EOFError.*truncated or corrupt"), (truncate_payload, "truncated"),
    (cut_header, "fewer than an idx header.*truncated"), (bad_magic, "not an idx file of 3 dimension"),
    (not_gzip, "BadGzipFile.*truncated or corrupt"),
])
def test_corrupt_idx_gz_names_the_file(tmp_path, damage, reason):
    fake_fashion(tmp_path, ".gz")
    path = tmp_path / "train-images-idx3-ubyte.gz"
    damage(path)
    with pytest.raises(UnreadableFile, match=reason) as info:
        load_data("fashion-mnist", tmp_path, verify=False)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and info.value.path == path and "\n" not in message
    assert "--download" in message  # what to do about it


def test_truncated_raw_idx_names_the_file(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    fake_fashion(raw, "")
    path = raw / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(UnreadableFile, match="holds 7 bytes of data but its header says \\(10,\\); the file is "
                                             "truncated"):
        load_data("fashion-mnist", tmp_path, verify=False)


def test_corrupt_debian_file_says_reinstall(tmp_path, monkeypatch):
    fake_fashion(tmp_path, ".gz")
    truncate_gzip_stream(tmp_path / "t10k-images-idx3-ubyte.gz")
    monkeypatch.setattr(fdf, "DEBIAN_FASHION_MNIST", tmp_path)
    with pytest.raises(UnreadableFile, match="t10k-images-idx3-ubyte.gz: .*apt-get install --reinstall"):
        load_data("fashion-mnist", verify=False)


def test_malformed_fashion_mnist_names_the_file(tmp_path):
    fake_fashion(tmp_path, ".gz")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(9) % 10)
    with pytest.raises(UnreadableFile, match="t10k-labels-idx1-ubyte.gz: holds 9 labels for the 10 images"):
        load_data("fashion-mnist", tmp_path, verify=False)


@needs_debian
def test_real_fashion_mnist_lt():
    data = load_data("fashion-mnist-lt", imbalance=100)
    assert data.train_counts == longtail_counts(6000, 10, 100) and data.train_counts[-1] == 60
    assert data.test_images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.test_targets).tolist() == [1000] * 10
    test_pixels = data.test_images.float() / 255  # the constants come from the training set
    assert abs(test_pixels.mean().item() - fd.FASHION_MNIST_MEAN[0]) < 0.01
    assert abs(test_pixels.std().item() - fd.FASHION_MNIST_STD[0]) < 0.01
    assert data.root == str(fd.DEBIAN_FASHION_MNIST) and data.files == fashion_paths(fd.DEBIAN_FASHION_MNIST, ".gz")


@needs_debian
def test_copy_of_debians_files_is_read_from_the_copy(tmp_path):
    shutil.copytree(fd.DEBIAN_FASHION_MNIST, tmp_path / "copy")
    copy = load_data("fashion-mnist", tmp_path / "copy")
    assert copy.root == str(tmp_path / "copy") and copy.files == fashion_paths(tmp_path / "copy", ".gz")
    assert copy.train_counts == [6000] * 10
    truncate_gzip_stream(tmp_path / "copy" / "train-labels-idx1-ubyte.gz")  # the copy is what is read
    with pytest.raises(UnreadableFile, match=str(tmp_path / "copy" / "train-labels-idx1-ubyte.gz")):
        load_data("fashion-mnist", tmp_path / "copy")
