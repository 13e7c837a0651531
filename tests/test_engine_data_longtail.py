"""focal.engine.data.longtail and sources: long-tailed counts, LDAM subsets, synthetic data, n_max, the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import focal.engine.data as fd
import focal.engine.data.loader as fdl
import focal.engine.data.longtail as fdlt
import focal.engine.data.cifar as fdc
import focal.engine.data.fashion_mnist as fdf
import focal.engine.data.sources as fds
from focal.engine.data import (FASHION_MNIST_FILES, DeviceLoader, default_data_root, load_data,
                               longtail_counts, longtail_indices, synthetic_images)

DEBIAN_INSTALLED = all((fd.DEBIAN_FASHION_MNIST / f"{name}.gz").is_file() for name in FASHION_MNIST_FILES)
needs_debian = pytest.mark.skipif(not DEBIAN_INSTALLED, reason="Debian's dataset-fashion-mnist is not installed")

from runhelpers import ldam_subset  # noqa: E402


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


@pytest.mark.parametrize("lt_profile", ["exp", "step"])
def test_imbalance_one_is_balanced(lt_profile):
    assert longtail_counts(123, 6, 1, lt_profile=lt_profile) == [123] * 6


def test_lt_profile_error_names_the_argument():
    with pytest.raises(ValueError, match="^lt_profile must be 'exp' or 'step', got 'linear'$"):
        longtail_counts(100, 10, 10, lt_profile="linear")
    with pytest.raises(TypeError, match="profile"):  # the old keyword is gone
        longtail_counts(100, 10, 10, profile="step")


def test_load_data_takes_lt_profile():
    step = load_data("synthetic-lt", imbalance=10, lt_profile="step")
    assert step.train_counts == [500] * 5 + [50] * 5 == torch.bincount(step.train_targets).tolist()
    assert step.description == "Synthetic-LT, step long tail, imbalance 10, subset seed 0"
    with pytest.raises(ValueError, match="lt_profile"):
        load_data("synthetic-lt", lt_profile="linear")
    with pytest.raises(TypeError, match="profile"):
        load_data("synthetic-lt", profile="step")


@pytest.mark.parametrize("kwargs, error", [
    (dict(imbalance=0.5), ValueError), (dict(imbalance=float("inf")), ValueError), (dict(imbalance="100"), TypeError),
    (dict(lt_profile="linear"), ValueError), (dict(n_max=0), ValueError), (dict(num_classes=2.0), TypeError),
])
def test_counts_reject_bad_arguments(kwargs, error):
    args = dict(n_max=100, num_classes=10, imbalance=10) | kwargs
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        longtail_counts(**args)


# ---------------------------------------------------------------- LDAM subset


@pytest.mark.parametrize("classes, n_max, imbalance, lt_profile", [
    (10, 5000, 100, "exp"), (10, 5000, 10, "step"), (100, 500, 100, "exp"), (100, 500, 50, "step"),
])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_subset_is_ldams(classes, n_max, imbalance, lt_profile, seed):
    targets = np.random.default_rng(seed + 99).permutation(np.repeat(np.arange(classes), n_max))
    counts = longtail_counts(n_max, classes, imbalance, lt_profile)
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
    assert data.description == "Synthetic-LT, exp long tail, imbalance 10, subset seed 0"
    assert (data.root, data.files) == (None, ())  # generated, nothing read


@pytest.mark.slow
def test_synthetic_is_learnable_by_small_cnn():
    from focal.engine.models import small_cnn

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
    repo = Path(fd.__file__).resolve().parents[3]  # <repo>/focal/engine/data/__init__.py
    monkeypatch.chdir(tmp_path)
    if (repo / "pyproject.toml").is_file():  # a checkout (editable install)
        assert default_data_root() == repo / "data"
    else:
        assert default_data_root() == tmp_path / "data"


# ------------------------------------------------------------------------------------ balanced reference (n_max)
def test_n_max_with_imbalance_1_gives_a_balanced_subset_drawn_like_ldam():
    from focal.engine.data import BALANCED_SIZES, load_data, longtail_indices

    ref = load_data("synthetic-lt", imbalance=1, n_max=37, seed=3)
    assert ref.train_counts == [37] * 10 and len(ref.train_targets) == 370
    assert torch.bincount(ref.train_targets).tolist() == [37] * 10
    full = load_data("synthetic")
    idx = longtail_indices(full.train_targets.numpy(), [37] * 10, seed=3)
    assert torch.equal(ref.train_images, full.train_images[idx])  # the same per-class shuffle as the LT subsets
    assert BALANCED_SIZES["synthetic"] == (max(full.train_counts), full.num_classes)


def test_n_max_scales_a_long_tail():
    from focal.engine.data import load_data

    lt = load_data("synthetic-lt", imbalance=10, n_max=200)
    assert lt.train_counts[0] == 200 and lt.train_counts[-1] == 20


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(name="synthetic", n_max=10), ValueError, "long-tailed"),
    (dict(name="synthetic-lt", n_max=0), ValueError, "n_max"),
    (dict(name="synthetic-lt", n_max=501), ValueError, "n_max=501 exceeds"),
    (dict(name="synthetic-lt", n_max=2.5), TypeError, "n_max"),
])
def test_n_max_errors_name_the_argument(kwargs, error, match):
    from focal.engine.data import load_data

    with pytest.raises(error, match=match):
        load_data(kwargs.pop("name"), **kwargs)


@needs_debian
def test_fashion_mnist_balanced_size_is_what_the_files_hold():
    from focal.engine.data import BALANCED_SIZES, load_data

    data = load_data("fashion-mnist")
    assert BALANCED_SIZES["fashion-mnist"] == (max(data.train_counts), data.num_classes)


# ------------------------------------------------------------------------------------ module structure


def test_package_reexports_every_public_name_once():
    modules = (fdlt, fds, fdl, fdc, fdf)
    names = [name for module in modules for name in module.__all__]
    assert sorted(fd.__all__) == sorted(names) and len(set(names)) == len(names)
    for module in modules:
        assert all(getattr(fd, name) is getattr(module, name) for name in module.__all__)
    assert not {"synthetic_images", "write_fake_cifar", "DeviceLoader", "CIFAR_MEAN"} & set(vars(fdlt))


@pytest.mark.parametrize("name, kwargs", [
    ("synthetic", {}), ("synthetic-lt", {}), ("synthetic-lt", dict(imbalance=10, lt_profile="step")),
    ("synthetic-lt", dict(imbalance=1, n_max=120)), ("synthetic-lt", dict(imbalance=50, n_max=300)),
])
def test_train_size_is_what_load_data_gives(name, kwargs):
    assert fd.train_size(name, **kwargs) == len(load_data(name, **kwargs).train_targets)


def test_train_size_of_the_real_sets_and_bad_names():
    assert fd.train_size("cifar10-lt", imbalance=100) == 12406  # LDAM-DRW's CIFAR-10-LT at ρ = 100
    assert fd.train_size("cifar100-lt", imbalance=100) == 10847
    with pytest.raises(ValueError, match="dataset name must be one of"):
        fd.train_size("imagenet-lt")
    for name, n_max, match in [("synthetic", 100, "long-tailed"), ("synthetic-lt", 501, "exceeds the 500"),
                               ("synthetic-lt", 0, "n_max")]:  # the refusals of load_data, without reading a file
        with pytest.raises(ValueError, match=match):
            fd.train_size(name, n_max=n_max)
        with pytest.raises(ValueError, match=match):
            load_data(name, n_max=n_max)
