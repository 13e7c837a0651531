"""Tests for focal.data: LDAM counts and subsets, dataset loading, the on-device loader."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import focal.data as fd
import focal.datasets as fds
from focal.data import (DATASETS, DeviceLoader, default_data_root, load_data, longtail_counts, longtail_indices,
                        synthetic_images, write_fake_cifar)


# ---------------------------------------------------------------- counts


def test_cifar10_exp_100_counts_match_ldam():
    assert longtail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.mark.parametrize("n_max, classes, imbalance, total, last", [
    (5000, 10, 100, 12406, 50), (5000, 10, 50, 13996, 100), (5000, 10, 10, 20431, 500),
    (500, 100, 100, 10847, 5), (500, 100, 10, 19573, 50),
])
def test_published_totals(n_max, classes, imbalance, total, last):
    counts = longtail_counts(n_max, classes, imbalance)
    assert (sum(counts), counts[0], counts[-1]) == (total, n_max, last)
    assert all(a >= b for a, b in zip(counts, counts[1:]))


@pytest.mark.parametrize("classes, imbalance", [(10, 100), (10, 10), (100, 100), (7, 3.5)])
def test_step_profile(classes, imbalance):
    counts = longtail_counts(5000, classes, imbalance, "step")
    head = classes // 2
    assert counts == [5000] * head + [int(5000 / imbalance)] * (classes - head)


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_imbalance_one_is_balanced(profile):
    assert longtail_counts(123, 6, 1, profile) == [123] * 6


@pytest.mark.parametrize("kwargs, error", [
    (dict(imbalance=0.5), ValueError), (dict(imbalance=float("inf")), ValueError), (dict(imbalance="100"), TypeError),
    (dict(profile="linear"), ValueError), (dict(n_max=0), ValueError), (dict(num_classes=2.0), TypeError),
])
def test_counts_reject_bad_arguments(kwargs, error):
    args = dict(n_max=100, num_classes=10, imbalance=10) | kwargs
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        longtail_counts(**args)


# ---------------------------------------------------------------- LDAM subset


def ldam_subset(targets, img_num_per_cls, rand_number):
    """LDAM-DRW's IMBALANCECIFAR10.gen_imbalanced_data, re-done here with numpy's *global* RNG."""
    saved = np.random.get_state()
    try:
        np.random.seed(rand_number)
        targets_np = np.array(targets, dtype=np.int64)
        chosen = []
        for the_class, the_img_num in zip(np.unique(targets_np), img_num_per_cls):
            idx = np.where(targets_np == the_class)[0]
            np.random.shuffle(idx)
            chosen.append(idx[:the_img_num])
        return np.concatenate(chosen)
    finally:
        np.random.set_state(saved)


@pytest.mark.parametrize("classes, n_max, imbalance, profile", [
    (10, 5000, 100, "exp"), (10, 5000, 10, "step"), (100, 500, 100, "exp"), (100, 500, 50, "step"),
])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_subset_is_ldams(classes, n_max, imbalance, profile, seed):
    targets = np.random.default_rng(seed + 99).permutation(np.repeat(np.arange(classes), n_max))
    counts = longtail_counts(n_max, classes, imbalance, profile)
    idx = longtail_indices(targets, counts, seed=seed)
    np.testing.assert_array_equal(idx, ldam_subset(targets, counts, seed))
    assert idx.dtype == np.int64 and len(np.unique(idx)) == len(idx) == sum(counts)
    assert np.bincount(targets[idx], minlength=classes).tolist() == counts


def test_subset_depends_on_seed_and_accepts_tensors():
    targets = np.tile(np.arange(10), 100)
    a = longtail_indices(torch.from_numpy(targets), [50] * 10, seed=0)
    b = longtail_indices(targets.tolist(), [50] * 10, seed=1)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, longtail_indices(targets, [50] * 10, seed=0))


def test_subset_leaves_global_rng_untouched():
    np.random.seed(2024)
    state = np.random.get_state()
    longtail_indices(np.tile(np.arange(10), 50), longtail_counts(50, 10, 10), seed=0)
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state, after))


@pytest.mark.parametrize("targets, counts, match", [
    (np.array([0, 0, 1]), [1, 2], "counts\\[1\\] = 2"),
    (np.array([0, 1, 2]), [1, 1], "targets must lie"),
    (np.array([0.0, 1.0]), [1, 1], "integer"),
    (np.array([0, 1]), [1, -1], "counts\\[1\\]"),
])
def test_subset_rejects_bad_input(targets, counts, match):
    with pytest.raises(ValueError, match=match):
        longtail_indices(targets, counts)


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_balanced():
    x, y = synthetic_images(20, num_classes=5, seed=3)
    x2, y2 = synthetic_images(20, num_classes=5, seed=3)
    assert x.shape == (100, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.bincount(y).tolist() == [20] * 5
    assert not np.array_equal(x, synthetic_images(20, num_classes=5, seed=4)[0])
    assert not np.array_equal(x, synthetic_images(20, num_classes=5, seed=3, train=False)[0])
    assert 20 < x.std() < 100  # neither flat nor saturated


def test_synthetic_lt_bundle():
    data = load_data("synthetic-lt", imbalance=10, seed=0)
    other = load_data("synthetic-lt", imbalance=10, seed=1)
    assert data.train_counts == longtail_counts(500, 10, 10) == other.train_counts
    assert torch.bincount(data.train_targets).tolist() == data.train_counts
    assert not torch.equal(data.train_images, other.train_images)  # the seed picks the subset
    assert torch.equal(data.test_images, other.test_images) and len(data.test_targets) == 1000
    assert (data.num_classes, data.in_channels, data.train_images.dtype) == (10, 3, torch.uint8)
    pixels = data.test_images.float() / 255
    assert np.allclose(data.mean, pixels.mean((0, 2, 3)), atol=0.01)
    assert np.allclose(data.std, pixels.std((0, 2, 3)), atol=0.01)
    assert "imbalance 10" in data.description and "Synthetic-LT" in data.description


@pytest.mark.slow
def test_synthetic_is_learnable_by_small_cnn():
    from focal.models import small_cnn

    torch.manual_seed(0)
    data = load_data("synthetic")
    model = small_cnn(10, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DeviceLoader(data.train_images, data.train_targets, 128, shuffle=True, augment=True,
                          mean=data.mean, std=data.std)
    for epoch in range(2):
        loader.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    (x, y), = DeviceLoader(data.test_images, data.test_targets, 1000, mean=data.mean, std=data.std)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.7


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="cifar10-lt"):
        load_data("cifar-10")


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FOCAL_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("FOCAL_DATA")
    repo = Path(fd.__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():  # a checkout (editable install)
        assert default_data_root() == repo / "data"
    else:
        monkeypatch.chdir(tmp_path)
        assert default_data_root() == tmp_path / "data"


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

    lt = load_data(f"{name}-lt", tmp_path, verify=False, imbalance=4, profile="exp", seed=7)
    counts = longtail_counts(12, classes, 4)
    subset = ldam_subset(y_train, counts, 7)
    assert lt.train_counts == counts
    assert torch.equal(lt.train_images, torch.from_numpy(x_train[subset]))
    assert torch.equal(lt.train_targets, torch.from_numpy(y_train[subset]))
    assert torch.equal(lt.test_images, full.test_images)  # the test split stays balanced


def test_fake_cifar100_has_coarse_labels(tmp_path):
    write_fake_cifar(tmp_path, num_classes=100, n_train_per_class=1, n_test_per_class=1)
    with open(tmp_path / "cifar-100-python" / "train", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    assert [c // 5 for c in entry["fine_labels"]] == entry["coarse_labels"]
    with open(tmp_path / "cifar-100-python" / "meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    assert len(meta["fine_label_names"]) == 100 and len(meta["coarse_label_names"]) == 20


@pytest.mark.parametrize("name", ["cifar10", "cifar100-lt"])
def test_verify_refuses_fake_cifar(tmp_path, name):
    write_fake_cifar(tmp_path, num_classes=100 if "100" in name else 10, n_train_per_class=2, n_test_per_class=1)
    with pytest.raises(RuntimeError, match="verify=False.*--no-verify"):
        load_data(name, tmp_path)


def test_verified_cifar_uses_torchvision_unchanged():
    from torchvision.datasets import CIFAR10, CIFAR100

    assert fds._cifar_class(10, True) is CIFAR10 and fds._cifar_class(100, True) is CIFAR100
    assert issubclass(fds._cifar_class(10, False), CIFAR10)


def test_missing_cifar_names_path_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py") as info:
        load_data("cifar10-lt", tmp_path)
    assert str(tmp_path) in str(info.value) and "--download" in str(info.value)


def test_write_fake_cifar_rejects_other_class_counts(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        write_fake_cifar(tmp_path, num_classes=20)


# ---------------------------------------------------------------- Fashion-MNIST


def write_idx(path: Path, array: np.ndarray) -> None:
    header = np.array([0x0800 + array.ndim, *array.shape], dtype=">i4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def fake_fashion(folder: Path, suffix: str, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", 30), ("t10k", 10)):
        arrays[split] = (rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10)
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", arrays[split][0])
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", arrays[split][1])
    return arrays


@pytest.mark.parametrize("where", ["debian", "torchvision"])
def test_fashion_mnist_round_trip(tmp_path, monkeypatch, where):
    debian = tmp_path / "debian"
    if where == "debian":
        arrays = fake_fashion(debian, ".gz")
    else:  # torchvision's layout: unpacked files under <root>/FashionMNIST/raw
        arrays = fake_fashion(tmp_path / "root" / "FashionMNIST" / "raw", "")
    monkeypatch.setattr(fds, "DEBIAN_FASHION_MNIST", debian)
    data = load_data("fashion-mnist-lt", tmp_path / "root", verify=False, imbalance=3, seed=2)
    counts = longtail_counts(3, 10, 3)
    subset = ldam_subset(arrays["train"][1], counts, 2)
    assert data.train_images.shape == (sum(counts), 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert torch.equal(data.train_images[:, 0], torch.from_numpy(arrays["train"][0][subset].astype(np.uint8)))
    assert torch.equal(data.test_targets, torch.from_numpy(arrays["t10k"][1]))
    assert data.classes[0] == "T-shirt/top" and data.in_channels == 1
    with pytest.raises(RuntimeError, match="per class.*verify=False"):
        load_data("fashion-mnist", tmp_path / "root")


def test_fashion_mnist_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(fds, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as info:
        load_data("fashion-mnist", tmp_path)
    message = str(info.value)
    for needle in (str(tmp_path / "nowhere"), str(tmp_path / "FashionMNIST" / "raw"),
                   "apt-get install dataset-fashion-mnist", "--download"):
        assert needle in message


def test_fashion_mnist_corrupt(tmp_path, monkeypatch):
    fake_fashion(tmp_path, ".gz")
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))
    monkeypatch.setattr(fds, "DEBIAN_FASHION_MNIST", tmp_path)
    with pytest.raises(RuntimeError, match="train-images-idx3-ubyte.gz.*truncated"):
        load_data("fashion-mnist", verify=False)


@pytest.mark.skipif(not (fd.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_lt():
    data = load_data("fashion-mnist-lt", imbalance=100)
    assert data.train_counts == longtail_counts(6000, 10, 100) and data.train_counts[-1] == 60
    assert data.test_images.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.test_targets).tolist() == [1000] * 10
    test_pixels = data.test_images.float() / 255  # the constants come from the training set
    assert abs(test_pixels.mean().item() - fd.FASHION_MNIST_MEAN[0]) < 0.01
    assert abs(test_pixels.std().item() - fd.FASHION_MNIST_STD[0]) < 0.01


# ---------------------------------------------------------------- DeviceLoader


def random_images(n, channels=3, size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen)


MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def to_uint8(x):
    mean, std = torch.tensor(MEAN).view(1, -1, 1, 1), torch.tensor(STD).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).round().to(torch.uint8)


def collect(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("n, batch, drop_last, expected", [(10, 4, False, 3), (10, 4, True, 2), (8, 4, True, 2),
                                                           (3, 5, False, 1), (3, 5, True, 0)])
def test_loader_length_and_shapes(n, batch, drop_last, expected):
    loader = DeviceLoader(random_images(n), torch.arange(n), batch, shuffle=True, augment=True, drop_last=drop_last,
                          mean=MEAN, std=STD)
    batches = list(loader)
    assert len(loader) == len(batches) == expected
    for x, y in batches:
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (3, 8, 8)
        assert len(x) == len(y) <= batch
    if drop_last:
        assert all(len(y) == batch for _, y in batches)


def test_loader_normalises_in_order():
    images = random_images(10)
    x, y = collect(DeviceLoader(images, torch.arange(10) % 3, 4, mean=MEAN, std=STD))
    expected = (images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected)
    assert y.tolist() == (torch.arange(10) % 3).tolist()


@pytest.mark.parametrize("augment", [False, True])
def test_loader_determinism(augment):
    def epoch(seed, number):
        loader = DeviceLoader(random_images(50), torch.arange(50), 16, shuffle=True, augment=augment, seed=seed,
                              mean=MEAN, std=STD)
        loader.set_epoch(number)
        return collect(loader)

    x, y = epoch(0, 3)
    assert sorted(y.tolist()) == list(range(50))  # a permutation
    x2, y2 = epoch(0, 3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, epoch(0, 4)[1]) and not torch.equal(y, epoch(1, 3)[1])


def test_augmentation_is_a_padded_crop_with_flips():
    n, pad = 400, 4
    images = random_images(n, size=8)
    loader = DeviceLoader(images, torch.arange(n), 64, shuffle=True, augment=True, pad=pad, mean=MEAN, std=STD)
    x, y = collect(loader)
    out = to_uint8(x)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    offsets, flips = set(), 0
    for img, k in zip(out, y.tolist()):
        found = [(dy, dx, flip) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for flip in (0, 1)
                 if torch.equal(img, padded[k, :, dy:dy + 8, dx:dx + 8].flip(-1) if flip
                                else padded[k, :, dy:dy + 8, dx:dx + 8])]
        assert len(found) == 1, f"image {k} is not a single crop of its padded source"
        offsets.add(found[0][:2])
        flips += found[0][2]
    assert len(offsets) > 60  # of 81 possible offsets
    assert 0.4 < flips / n < 0.6


def test_augmentation_changes_with_epoch_only():
    loader = DeviceLoader(random_images(32), torch.arange(32), 32, augment=True, mean=MEAN, std=STD)
    first, again = collect(loader)[0], collect(loader)[0]
    loader.set_epoch(1)
    assert torch.equal(first, again) and not torch.equal(first, collect(loader)[0])


@pytest.mark.parametrize("n", [20, 21])
def test_sharding_gives_disjoint_equal_shards(n):
    images = random_images(n)

    def shard(rank, world_size, batch):
        loader = DeviceLoader(images, torch.arange(n), batch, shuffle=True, augment=True, seed=5, rank=rank,
                              world_size=world_size, mean=MEAN, std=STD)
        loader.set_epoch(2)
        return collect(loader)

    (x0, y0), (x1, y1), (x_all, y_all) = shard(0, 2, 4), shard(1, 2, 4), shard(0, 1, 7)
    assert len(y0) == len(y1) == n // 2 and not set(y0.tolist()) & set(y1.tolist())
    assert set(y0.tolist()) | set(y1.tolist()) == set(y_all[: n // 2 * 2].tolist())
    # an image's augmentation depends on (seed, epoch, image), not on the split
    by_id = {k: img for img, k in zip(x_all, y_all.tolist())}
    assert all(torch.equal(img, by_id[k]) for img, k in zip(torch.cat([x0, x1]), torch.cat([y0, y1]).tolist()))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(images=torch.zeros(4, 3, 8, 8)), TypeError, "uint8"),
    (dict(targets=torch.zeros(3, dtype=torch.int64)), ValueError, "targets"),
    (dict(mean=(0.5,)), ValueError, "mean"),
    (dict(std=(0.2, 0.0, 0.2)), ValueError, "std"),
    (dict(rank=2, world_size=2), ValueError, "rank"),
    (dict(world_size=5), ValueError, "world_size"),
    (dict(batch_size=0), ValueError, "batch_size"),
])
def test_loader_rejects_bad_arguments(kwargs, error, match):
    args = dict(images=random_images(4), targets=torch.arange(4), batch_size=2, mean=MEAN, std=STD) | kwargs
    with pytest.raises(error, match=match):
        DeviceLoader(args.pop("images"), args.pop("targets"), **args)


def test_all_dataset_names_have_a_loader():
    assert {name.removesuffix("-lt") for name in DATASETS} == set(fd._TITLES)
    assert all(f"{base}-lt" in DATASETS for base in fd._TITLES)


# ------------------------------------------------------------------------------------ balanced reference (n_max)
def test_n_max_with_imbalance_1_gives_a_balanced_subset_drawn_like_ldam():
    from focal.data import BALANCED_SIZES, load_data, longtail_indices

    ref = load_data("synthetic-lt", imbalance=1, n_max=37, seed=3)
    assert ref.train_counts == [37] * 10 and len(ref.train_targets) == 370
    assert torch.bincount(ref.train_targets).tolist() == [37] * 10
    full = load_data("synthetic")
    idx = longtail_indices(full.train_targets.numpy(), [37] * 10, seed=3)
    assert torch.equal(ref.train_images, full.train_images[idx])  # the same per-class shuffle as the LT subsets
    assert BALANCED_SIZES["synthetic"] == (max(full.train_counts), full.num_classes)


def test_n_max_scales_a_long_tail():
    from focal.data import load_data

    lt = load_data("synthetic-lt", imbalance=10, n_max=200)
    assert lt.train_counts[0] == 200 and lt.train_counts[-1] == 20


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(name="synthetic", n_max=10), ValueError, "long-tailed"),
    (dict(name="synthetic-lt", n_max=0), ValueError, "n_max"),
    (dict(name="synthetic-lt", n_max=501), ValueError, "n_max=501 exceeds"),
    (dict(name="synthetic-lt", n_max=2.5), TypeError, "n_max"),
])
def test_n_max_errors_name_the_argument(kwargs, error, match):
    from focal.data import load_data

    with pytest.raises(error, match=match):
        load_data(kwargs.pop("name"), **kwargs)


def test_fashion_mnist_balanced_size_is_what_the_files_hold():
    from focal.data import BALANCED_SIZES, DEBIAN_FASHION_MNIST, load_data

    if not (DEBIAN_FASHION_MNIST / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data = load_data("fashion-mnist")
    assert BALANCED_SIZES["fashion-mnist"] == (max(data.train_counts), data.num_classes)


def test_config_n_max_is_part_of_the_run_name_and_validated():
    from focal.train import Config, run_name

    a = Config(dataset="synthetic-lt", imbalance=1, n_max=120)
    assert "_if1_n120_" in run_name(a) and run_name(a) != run_name(a.replace(n_max=121))
    assert run_name(Config(dataset="synthetic-lt")) == run_name(Config(dataset="synthetic-lt", n_max=None))
    with pytest.raises(ValueError, match="Config.n_max"):
        Config(dataset="synthetic", n_max=10)
    with pytest.raises(TypeError, match="Config.n_max"):
        Config(dataset="synthetic-lt", n_max=1.5)
    assert Config.from_dict(a.to_dict()) == a
