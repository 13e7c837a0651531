"""focal.engine.data.loader: on-device batches, augmentation, determinism, sharding."""

from __future__ import annotations


import pytest
import torch

from focal.engine.data import (DATASETS, TITLES, DeviceLoader)



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
    assert {name.removesuffix("-lt") for name in DATASETS} == set(TITLES)
    assert all(f"{base}-lt" in DATASETS for base in TITLES)
