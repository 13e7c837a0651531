"""Long-tailed image datasets: LDAM-identical counts and subsets, loaded whole as a :class:`DataBundle`.

A long-tailed training set keeps :math:`n_i` images of class :math:`i` (class 0 is the head), with
the exponential long tail of :cite:`cao2019ldam` and :cite:`cui2019classbalanced`

.. math:: n_i = \\left\\lfloor n_{\\max} \\, \\rho^{-i/(C-1)} \\right\\rfloor, \\qquad i = 0, \\dots, C-1,

or the step long tail (the first half of the classes keep :math:`n_{\\max}`, the rest
:math:`\\lfloor n_{\\max}/\\rho \\rfloor`); ``lt_profile`` picks one. The test split stays balanced.

Datasets (:data:`DATASETS`) are loaded whole into a :class:`DataBundle` of uint8 tensors, which records the
data root and files it was read from. The file readers and :func:`~focal.engine.data.synthetic_images` live in
:mod:`focal.engine.data.sources`, the on-device loader in :mod:`focal.engine.data.loader`; the public names of
all three modules are re-exported by :mod:`focal.engine.data`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from focal.engine.checks import check_int
from focal.engine.data.cifar import load_cifar
from focal.engine.data.fashion_mnist import load_fashion_mnist
from focal.engine.data.sources import TITLES, load_synthetic

__all__ = [
    "BALANCED_SIZES", "DATASETS", "DataBundle", "load_data", "longtail_counts", "longtail_indices", "train_size",
]

#: Training images per class and number of classes of each balanced base set (what ``-lt`` subsets start from).
BALANCED_SIZES: dict[str, tuple[int, int]] = {
    "synthetic": (500, 10), "fashion-mnist": (6000, 10), "cifar10": (5000, 10), "cifar100": (500, 100),
}

#: Names accepted by :func:`load_data`.
DATASETS = (
    "synthetic", "synthetic-lt", "fashion-mnist", "fashion-mnist-lt",
    "cifar10", "cifar10-lt", "cifar100", "cifar100-lt",
)


def longtail_counts(n_max: int, num_classes: int, imbalance: float, lt_profile: str = "exp") -> list[int]:
    """Per-class image counts of a long-tailed training set, computed as LDAM-DRW does.

    Exponential long tail :math:`n_i = \\lfloor n_{\\max} \\cdot (1/\\rho)^{i/(C-1)} \\rfloor`; step long tail
    :math:`n_{\\max}` for the first :math:`\\lfloor C/2 \\rfloor` classes and
    :math:`\\lfloor n_{\\max} \\cdot (1/\\rho) \\rfloor` for the rest. The float expression is LDAM's
    (``img_max * imb_factor ** (i / (C - 1.0))`` with ``imb_factor = 1/ρ``), so truncation matches.

    Args:
        n_max: images of the head class (the per-class count of the balanced set).
        num_classes: number of classes :math:`C`.
        imbalance: ratio :math:`\\rho = n_0 / n_{C-1} \\geq 1` (1 keeps the set balanced).
        lt_profile: shape of the long tail, ``"exp"`` or ``"step"``.

    Returns:
        A list of ``num_classes`` ints, class 0 first.

    Example:
        >>> longtail_counts(5000, 10, 100)
        [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
        >>> longtail_counts(5000, 4, 10, "step")
        [5000, 5000, 500, 500]
    """
    n_max = check_int("n_max", n_max, 1)
    num_classes = check_int("num_classes", num_classes, 1)
    if isinstance(imbalance, bool) or not isinstance(imbalance, (int, float)):
        raise TypeError(f"imbalance must be a number >= 1, got {type(imbalance).__name__}")
    if not imbalance >= 1.0 or math.isinf(imbalance):
        raise ValueError(f"imbalance must be a finite number >= 1, got {imbalance}")
    factor, img_max = 1.0 / imbalance, float(n_max)
    if lt_profile == "exp":
        if num_classes == 1:
            return [n_max]
        return [int(img_max * factor ** (i / (num_classes - 1.0))) for i in range(num_classes)]
    if lt_profile == "step":
        head = num_classes // 2
        return [n_max] * head + [int(img_max * factor)] * (num_classes - head)
    raise ValueError(f"lt_profile must be 'exp' or 'step', got {lt_profile!r}")


def train_size(name: str, imbalance: float = 100.0, lt_profile: str = "exp", n_max: int | None = None) -> int:
    """Training images of :func:`load_data`'s set ``name`` with these arguments, computed without reading a file.

    Example:
        >>> train_size("cifar10-lt", imbalance=100)
        12406
        >>> train_size("cifar100"), train_size("fashion-mnist-lt", imbalance=1, n_max=1488)
        (50000, 14880)
    """
    if name not in DATASETS:
        raise ValueError(f"dataset name must be one of {DATASETS}, got {name!r}")
    per_class, num_classes = BALANCED_SIZES[name.removesuffix("-lt")]
    if n_max is not None:  # as load_data checks it
        n_max = check_int("n_max", n_max, 1)
        if not name.endswith("-lt"):
            raise ValueError(f"n_max applies to long-tailed ('-lt') datasets only, got name={name!r}")
        if n_max > per_class:
            raise ValueError(f"n_max={n_max} exceeds the {per_class} training images of the smallest class of "
                             f"{name!r}")
    if not name.endswith("-lt"):
        return per_class * num_classes
    return sum(longtail_counts(per_class if n_max is None else n_max, num_classes, imbalance, lt_profile))


def longtail_indices(targets, counts: Sequence[int], seed: int = 0) -> np.ndarray:
    """Indices of the long-tailed subset that LDAM-DRW draws for ``seed``.

    LDAM seeds numpy's legacy RNG once, then for each class in label order shuffles that class's
    indices and keeps the first :math:`n_i`. This does the same with a private
    ``np.random.RandomState(seed)`` (same stream, numpy's global RNG untouched).

    Args:
        targets: 1-D integer labels in ``[0, len(counts))`` (array, list or CPU tensor).
        counts: images to keep per class (e.g. from :func:`longtail_counts`).
        seed: the legacy RNG seed (LDAM's ``rand_number``, default 0).

    Returns:
        int64 array of indices into ``targets``: class 0's kept images first, in LDAM's order.

    Example:
        >>> targets = np.array([0, 1, 0, 1, 0, 1])
        >>> idx = longtail_indices(targets, [3, 1])
        >>> targets[idx].tolist()
        [0, 0, 0, 1]
    """
    labels = np.asarray(targets)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"targets must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    counts = [check_int(f"counts[{i}]", n, 0) for i, n in enumerate(counts)]
    if labels.size and (labels.min() < 0 or labels.max() >= len(counts)):
        raise ValueError(f"targets must lie in [0, {len(counts)}) for {len(counts)} counts, "
                         f"got labels from {labels.min()} to {labels.max()}")
    rng = np.random.RandomState(check_int("seed", seed, 0))
    kept = []
    for cls, n in enumerate(counts):
        idx = np.where(labels == cls)[0]
        if len(idx) < n:
            raise ValueError(f"counts[{cls}] = {n} but targets hold only {len(idx)} images of class {cls}")
        rng.shuffle(idx)
        kept.append(idx[:n])
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)


@dataclass
class DataBundle:
    """A whole dataset in memory: uint8 ``(N, C, H, W)`` CPU images and int64 labels, and the files they came from."""

    name: str  #: the :data:`DATASETS` name it was loaded by
    train_images: torch.Tensor = field(repr=False)  #: uint8 (N, C, H, W), long-tailed for ``-lt``
    train_targets: torch.Tensor = field(repr=False)  #: int64 (N,)
    test_images: torch.Tensor = field(repr=False)  #: uint8 (M, C, H, W), always balanced
    test_targets: torch.Tensor = field(repr=False)  #: int64 (M,)
    classes: list[str]  #: class names, index = label
    num_classes: int
    in_channels: int
    mean: tuple  #: per-channel mean on the 0..1 scale, for normalisation
    std: tuple  #: per-channel std on the 0..1 scale
    train_counts: list[int]  #: training images per class (after long-tailing)
    description: str  #: human readable, e.g. "Fashion-MNIST-LT, exp long tail, imbalance 100, subset seed 0"
    #: absolute data root the files were found under; passed back as ``root`` it reads the same files
    #: (Debian's folder for its Fashion-MNIST); None for ``synthetic``
    root: str | None
    files: tuple[str, ...] = field(repr=False)  #: absolute paths of the files actually read; empty for ``synthetic``


def _describe(base: str, lt_profile: str, imbalance: float, seed: int, n_max: int | None) -> str:
    """The :attr:`DataBundle.description` of an ``-lt`` subset of ``base``."""
    if n_max is not None and float(imbalance) == 1.0:
        return f"{TITLES[base]}, balanced subset of {n_max:,} per class, subset seed {seed}"
    return f"{TITLES[base]}-LT, {lt_profile} long tail, imbalance {imbalance:g}, subset seed {seed}"


def load_data(name: str, root=None, *, imbalance: float = 100.0, lt_profile: str = "exp", seed: int = 0,
              download: bool = False, verify: bool = True, n_max: int | None = None) -> DataBundle:
    """Load a dataset by name (one of :data:`DATASETS`) as a :class:`DataBundle`.

    ``synthetic``: 10 classes of 3x32x32 textures (:func:`~focal.engine.data.synthetic_images`), 500 training and
    100 test images per class, generated in a fraction of a second; normalisation statistics computed from its
    balanced training set. ``fashion-mnist``: 1x28x28, 6,000/1,000 per class; with ``root=None`` read from Debian's
    ``/usr/share/datasets/fashion-mnist`` when present, else from the default root; a given ``root`` is always
    honoured (``<root>/*.gz`` with Debian's names, or torchvision's ``<root>/FashionMNIST/raw``; see
    :func:`~focal.engine.data.load_fashion_mnist`). ``cifar10``/``cifar100``: torchvision's parsers on
    ``<root>/cifar-10-batches-py`` or ``<root>/cifar-100-python``, with its MD5 check unless
    ``verify=False``; normalised with LDAM-DRW's constants. An ``-lt`` name keeps the LDAM subset
    (:func:`longtail_counts`, :func:`longtail_indices`) with :math:`n_{\\max}` = the balanced set's
    per-class count (or ``n_max``); the test split stays balanced. With ``imbalance=1`` and a smaller ``n_max`` an
    ``-lt`` name gives a *balanced* subset of ``n_max`` images per class, drawn the same way: the book's balanced
    reference, the same size as a long-tailed set.

    Args:
        name: dataset name, e.g. ``"cifar10-lt"``.
        root: data folder; None: :func:`~focal.engine.data.default_data_root` (for Fashion-MNIST, Debian's copy
            first).
        imbalance: :math:`\\rho` for ``-lt`` names (ignored otherwise).
        lt_profile: shape of the long tail, ``"exp"`` or ``"step"``, for ``-lt`` names.
        seed: seed of the long-tailed subset (``-lt`` names only).
        download: let torchvision download missing CIFAR/Fashion-MNIST files.
        verify: check that the files are the real data (MD5 for CIFAR, class counts for Fashion-MNIST).
        n_max: images of the head class of an ``-lt`` subset; None keeps the balanced set's per-class count.

    Returns:
        The bundle, images on the CPU, with the data root and files read.

    Raises:
        FileNotFoundError: the dataset's files are not under ``root`` (the message says where it looked and how to
            get them).
        focal.engine.files.UnreadableFile: a file is truncated, corrupt or (with ``verify``) not the real data; the
            message names it.

    Example:
        >>> data = load_data("synthetic-lt", imbalance=10)
        >>> data.train_counts[0], data.train_counts[-1], data.description
        (500, 50, 'Synthetic-LT, exp long tail, imbalance 10, subset seed 0')
        >>> ref = load_data("synthetic-lt", imbalance=1, n_max=120)
        >>> sum(ref.train_counts), ref.description, ref.root, ref.files
        (1200, 'Synthetic, balanced subset of 120 per class, subset seed 0', None, ())
    """
    if name not in DATASETS:
        raise ValueError(f"dataset name must be one of {DATASETS}, got {name!r}")
    if n_max is not None:
        n_max = check_int("n_max", n_max, 1)
        if not name.endswith("-lt"):
            raise ValueError(f"n_max applies to long-tailed ('-lt') datasets only, got name={name!r}")
    base, longtail = name.removesuffix("-lt"), name.endswith("-lt")
    if longtail:
        longtail_counts(1, 2, imbalance, lt_profile)  # refuse a bad imbalance or lt_profile before reading any file
    if base == "synthetic":
        src = load_synthetic()
    elif base == "fashion-mnist":
        src = load_fashion_mnist(root, download, verify)
    else:
        src = load_cifar(10 if base == "cifar10" else 100, root, download, verify)
    x_tr, y_tr, classes = src.train_images, src.train_targets, src.classes
    counts = torch.bincount(y_tr, minlength=len(classes)).tolist()
    description = f"{TITLES[base]}, balanced"
    if longtail:
        if n_max is not None and n_max > min(counts):
            raise ValueError(f"n_max={n_max} exceeds the {min(counts)} training images of the smallest class of "
                             f"{name!r}")
        counts = longtail_counts(max(counts) if n_max is None else n_max, len(classes), imbalance, lt_profile)
        idx = torch.from_numpy(longtail_indices(y_tr.numpy(), counts, seed))
        x_tr, y_tr = x_tr[idx], y_tr[idx]
        description = _describe(base, lt_profile, imbalance, seed, n_max)
    return DataBundle(name, x_tr, y_tr, src.test_images, src.test_targets, classes, len(classes), x_tr.shape[1],
                      tuple(src.mean), tuple(src.std), counts, description, root=src.root, files=tuple(src.files))
