"""Where datasets come from: the shared reader result, the default data root, and the synthetic textures.

The file readers behind :func:`focal.engine.data.load_data` live in :mod:`focal.engine.data.cifar`
(:func:`~focal.engine.data.cifar.load_cifar`) and :mod:`focal.engine.data.fashion_mnist`
(:func:`~focal.engine.data.fashion_mnist.load_fashion_mnist`); this module holds what they share — the
:class:`SourceData` every reader returns (uint8 ``(N, C, H, W)`` CPU images, int64 labels, class names,
normalisation constants, and the data root and files it read) and :func:`default_data_root` — and the generated
``synthetic`` set (:func:`synthetic_images`, :func:`load_synthetic`). A file that exists but cannot be read raises
:class:`~focal.engine.files.UnreadableFile` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from focal.engine.checks import check_int

__all__ = ["TITLES", "SourceData", "default_data_root", "load_synthetic", "synthetic_images"]

#: Display names of the base datasets, in error messages and in :func:`~focal.engine.data.load_data`'s descriptions.
TITLES = {"synthetic": "Synthetic", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
          "cifar100": "CIFAR-100"}

class SourceData(NamedTuple):
    """What a reader of this module returns: a whole balanced dataset and where it came from."""

    train_images: torch.Tensor  #: uint8 (N, C, H, W)
    train_targets: torch.Tensor  #: int64 (N,)
    test_images: torch.Tensor  #: uint8 (M, C, H, W)
    test_targets: torch.Tensor  #: int64 (M,)
    classes: list  #: class names, index = label
    mean: tuple  #: per-channel mean on the 0..1 scale
    std: tuple  #: per-channel std on the 0..1 scale
    root: str | None  #: absolute data root the files were found under (None: generated)
    files: tuple  #: absolute paths of the files read (empty: generated)


def default_data_root() -> Path:
    """Folder holding datasets and runs: ``$FOCAL_DATA``, else ``<repo>/data``, else ``./data``.

    ``<repo>`` is the checkout that contains the package (an editable install); when ``focal`` is
    installed elsewhere the current directory's ``data`` is used.

    Example:
        >>> isinstance(default_data_root(), Path)
        True
    """
    env = os.environ.get("FOCAL_DATA")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[3]  # <repo>/focal/engine/data/sources.py
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.cwd() / "data"


def synthetic_images(n_per_class: int, num_classes: int = 10, seed: int = 0,
                     train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Generate learnable 3x32x32 uint8 images: class-specific smooth textures plus noise.

    Class :math:`k` owns a template made of four random colour plane waves with integer wave
    vectors (so it tiles 32x32); each image is its class template circularly shifted by a random
    offset, mirrored with probability 1/2, scaled by a random contrast, on a grey background plus
    Gaussian noise. The class is therefore in the texture, not in the mean colour or position.

    Args:
        n_per_class: images per class.
        num_classes: number of classes.
        seed: seed of the class templates; the images are drawn from ``(seed, split)``.
        train: draw the training split's images, else the test split's (same templates).

    Returns:
        ``(images, labels)``: uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``, classes in random order.

    Example:
        >>> x, y = synthetic_images(2, num_classes=3)
        >>> x.shape, x.dtype, np.bincount(y).tolist()
        ((6, 3, 32, 32), dtype('uint8'), [2, 2, 2])
    """
    n_per_class = check_int("n_per_class", n_per_class, 0)
    num_classes = check_int("num_classes", num_classes, 1)
    seed = check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    grid = np.arange(32, dtype=np.float32) * np.float32(2 * np.pi / 32)
    wave = rng.integers(-3, 4, size=(num_classes, 4, 2))
    wave[(wave == 0).all(-1)] = (1, 2)  # a zero wave vector would be a flat, texture-less term
    phase = rng.uniform(0, 2 * np.pi, size=(num_classes, 4, 1, 1)).astype(np.float32)
    colour = rng.uniform(-1, 1, size=(num_classes, 4, 3)).astype(np.float32)
    planes = np.cos(wave[..., 0, None, None] * grid[:, None] + wave[..., 1, None, None] * grid + phase)
    templates = np.einsum("kjhw,kjc->khwc", planes, colour)
    templates /= templates.std(axis=(1, 2, 3), keepdims=True)
    rng = np.random.default_rng([seed, 0 if train else 1])
    labels = rng.permutation(np.repeat(np.arange(num_classes), n_per_class))
    n = len(labels)
    dy, dx = rng.integers(0, 32, size=(2, n, 1))
    cols = np.where(rng.random((n, 1)) < 0.5, 31 - np.arange(32), np.arange(32))
    rows, cols = (np.arange(32) + dy) % 32, (cols + dx) % 32
    shifted = templates[labels[:, None, None], rows[:, :, None], cols[:, None, :]]  # (N, H, W, 3)
    contrast = rng.uniform(0.05, 0.15, size=(n, 1, 1, 1)).astype(np.float32) * 255
    noise = rng.standard_normal(shifted.shape, dtype=np.float32) * np.float32(0.2 * 255)
    images = shifted * contrast + noise + np.float32(127.5)
    images = np.clip(images, 0, 255, out=images).round().astype(np.uint8).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def load_synthetic() -> SourceData:
    """The ``synthetic`` set: 10 texture classes (:func:`synthetic_images`), 500 training and 100 test images each.

    Generated with fixed seeds (``load_data``'s seed only picks the long-tailed subset, as for real data);
    normalisation statistics are computed from the training set. Nothing is read: ``root`` is None, ``files`` empty.

    Example:
        >>> data = load_synthetic()
        >>> tuple(data.train_images.shape), data.root, data.files
        ((5000, 3, 32, 32), None, ())
    """
    x_tr, y_tr = synthetic_images(500, 10, seed=0)
    x_te, y_te = synthetic_images(100, 10, seed=0, train=False)
    hist = np.stack([np.bincount(x_tr[:, c].ravel(), minlength=256) for c in range(3)]) / x_tr[:, 0].size
    levels = np.arange(256) / 255.0
    mean = hist @ levels
    std = np.sqrt(hist @ levels**2 - mean**2)
    mean, std = tuple(mean.round(4).tolist()), tuple(std.round(4).tolist())
    tensors = [torch.from_numpy(a) for a in (x_tr, y_tr, x_te, y_te)]
    return SourceData(*tensors, [f"texture {k}" for k in range(10)], mean, std, None, ())
