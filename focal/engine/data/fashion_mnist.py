"""Fashion-MNIST from its four idx files: Debian's ``dataset-fashion-mnist`` package or a data root you name.

A truncated or corrupt idx file raises :class:`~focal.engine.files.UnreadableFile` naming it and saying how to get a
good copy; a data root without the files is a ``FileNotFoundError`` that names it (see :func:`load_fashion_mnist`).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from focal.engine.data.sources import SourceData, default_data_root
from focal.engine.files import UnreadableFile

__all__ = ["DEBIAN_FASHION_MNIST", "FASHION_MNIST_CLASSES", "FASHION_MNIST_FILES", "FASHION_MNIST_MEAN",
           "FASHION_MNIST_STD", "load_fashion_mnist"]

#: Computed once from the 60,000 balanced Fashion-MNIST training images (pixel values / 255).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
#: The four Fashion-MNIST idx files (without ``.gz``): training images and labels, then test images and labels.
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Where Debian's ``dataset-fashion-mnist`` package puts the four ``.gz`` files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

def _idx_fix(folder: Path) -> str:
    """What to do about an unreadable Fashion-MNIST file in ``folder``."""
    if folder == DEBIAN_FASHION_MNIST:
        return "reinstall Debian's package: apt-get install --reinstall dataset-fashion-mnist"
    return ("delete it and download again with load_data(..., download=True) (CLI --download), or copy it again "
            f"from Debian's dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})")


def _read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Parse an idx file (``.gz`` or raw): magic ``0x0000 08 ndim``, big-endian int32 sizes, then uint8 data.

    Raises:
        UnreadableFile: naming ``path``, if it cannot be decompressed, is too short, or its header is wrong.
    """
    fix = _idx_fix(path.parent)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as err:
        raise UnreadableFile(path, f"cannot be read ({type(err).__name__}: {err}); the file is truncated or "
                                   f"corrupt; {fix}") from err
    header = 4 + 4 * expected_ndim
    if len(raw) < header:
        raise UnreadableFile(path, f"holds {len(raw)} bytes, fewer than an idx header; the file is truncated; {fix}")
    magic, *shape = (int(v) for v in np.frombuffer(raw[:header], dtype=">i4"))
    if magic != 0x0800 + expected_ndim:
        raise UnreadableFile(path, f"is not an idx file of {expected_ndim} dimension(s) (magic 0x{magic:08x}, "
                                   f"expected 0x{0x0800 + expected_ndim:08x}); {fix}")
    size = len(raw) - header
    if size != math.prod(shape):
        state = "truncated" if size < math.prod(shape) else "corrupt"
        raise UnreadableFile(path, f"holds {size:,} bytes of data but its header says {tuple(shape)}; the file is "
                                   f"{state}; {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable, for torch


def _fashion_mnist_layouts(root: Path) -> list[tuple[Path, str]]:
    """``(folder, suffix)`` pairs searched under ``root``, in order: Debian's names, torchvision's raw, its ``.gz``."""
    raw = root / "FashionMNIST" / "raw"
    return [(root, ".gz"), (raw, ""), (raw, ".gz")]


def _complete_layout(layouts) -> list[Path] | None:
    """The four files of the first ``(folder, suffix)`` layout that holds all of them, or None."""
    for folder, suffix in layouts:
        paths = [folder / f"{name}{suffix}" for name in FASHION_MNIST_FILES]
        if all(p.is_file() for p in paths):
            return paths
    return None


def _download_fashion_mnist(root: Path) -> None:
    """Let torchvision download and unpack Fashion-MNIST into ``<root>/FashionMNIST/raw``."""
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
    except RuntimeError as err:  # torchvision's message spans lines, one per mirror tried
        raise ConnectionError(f"downloading Fashion-MNIST into {root / 'FashionMNIST' / 'raw'} failed: "
                              f"{' '.join(str(err).split())}") from err


def _fashion_mnist_missing(root: Path, searched: list[str], given: bool) -> FileNotFoundError:
    """The error for a data root without Fashion-MNIST: where it looked, for what, and how to get the files."""
    names = ", ".join(f"{n}[.gz]" for n in FASHION_MNIST_FILES)
    where = f"in the given data root {root}" if given else f"in Debian's folder or in the default data root {root}"
    debian = (f"install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist, which puts the files "
              f"in {DEBIAN_FASHION_MNIST}) and omit root / --data-root" if given
              else "apt-get install dataset-fashion-mnist")
    return FileNotFoundError(
        f"Fashion-MNIST not found {where}: searched {'; '.join(searched)} for {names}. Download it into "
        f"{root / 'FashionMNIST' / 'raw'} with load_data(..., download=True) (CLI --download), or {debian}.")


def _locate_fashion_mnist(root: Path | None, download: bool) -> tuple[Path, list[Path]]:
    """``(data root, the four files)`` following :func:`load_fashion_mnist`'s rule."""
    searched = []
    if root is None:
        debian = _complete_layout([(DEBIAN_FASHION_MNIST, ".gz")])
        if debian:
            return DEBIAN_FASHION_MNIST, debian
        searched.append(f"{DEBIAN_FASHION_MNIST}/*.gz")
        given, root = False, Path(os.path.abspath(default_data_root()))
    else:
        given, root = True, Path(os.path.abspath(root))
    layouts = _fashion_mnist_layouts(root)
    paths = _complete_layout(layouts)
    if paths is None and download:
        _download_fashion_mnist(root)
        paths = _complete_layout(layouts)
    if paths is None:
        searched += [f"{folder}/*{suffix}" if suffix else f"{folder}/" for folder, suffix in layouts]
        raise _fashion_mnist_missing(root, searched, given)
    return root, paths


def _check_fashion_mnist(paths: list[Path], arrays: list[np.ndarray], verify: bool) -> None:
    """Raise :class:`UnreadableFile` if the arrays are not Fashion-MNIST (with ``verify``: not the real one)."""
    for (x_path, y_path), (x, y), n in zip((paths[:2], paths[2:]), (arrays[:2], arrays[2:]), (6000, 1000)):
        if x.shape[1:] != (28, 28):
            raise UnreadableFile(x_path, f"holds images of shape {x.shape[1:]}, expected 28x28 Fashion-MNIST images")
        if len(x) != len(y):
            raise UnreadableFile(y_path, f"holds {len(y)} labels for the {len(x)} images of {x_path.name}")
        if y.size and not 0 <= y.min() <= y.max() <= 9:
            raise UnreadableFile(y_path, f"holds labels from {y.min()} to {y.max()}, expected 0..9")
        if verify and np.bincount(y, minlength=10).tolist() != [n] * 10:
            raise UnreadableFile(y_path, f"does not hold {n} images per class, so it is not the real Fashion-MNIST "
                                         f"(pass verify=False, CLI --no-verify, to load it anyway)")


def load_fashion_mnist(root=None, download: bool = False, verify: bool = True) -> SourceData:
    """Fashion-MNIST (1x28x28, 60,000 training and 10,000 test images) from its four idx files.

    Where the files are read from (the first place that holds all four wins):

    - ``root=None``: Debian's :data:`DEBIAN_FASHION_MNIST` (``*.gz``, package ``dataset-fashion-mnist``); if it
      lacks them, the places below under :func:`default_data_root`.
    - ``root`` given: ``<root>/<name>.gz`` (Debian's names, e.g. ``root`` = a copy of Debian's folder), then
      torchvision's layout ``<root>/FashionMNIST/raw/<name>``, then ``<root>/FashionMNIST/raw/<name>.gz``.
      Debian's folder is *not* searched: a given root is used or refused.

    ``<name>`` runs over :data:`FASHION_MNIST_FILES`. With ``download=True`` and no complete set, torchvision
    downloads the files into ``<root>/FashionMNIST/raw``.

    Args:
        root: data root, see above.
        download: download missing files with torchvision.
        verify: check that each class holds 6,000 training and 1,000 test images (the real data set).

    Returns:
        The balanced dataset; ``root`` is the data root searched (Debian's folder when its files were read),
        ``files`` the four absolute paths read.

    Raises:
        FileNotFoundError: no complete set of files; names the places searched and how to get the files.
        UnreadableFile: a file is truncated or corrupt, or (with ``verify``) not the real data; names the file.

    Example:
        >>> import tempfile
        >>> load_fashion_mnist(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        FileNotFoundError: Fashion-MNIST not found in the given data root /...: searched ... omit root / --data-root.
    """
    root, paths = _locate_fashion_mnist(None if root is None else Path(root), download)
    arrays = [_read_idx(p, 3 if "images" in p.name else 1) for p in paths]
    _check_fashion_mnist(paths, arrays, verify)
    x_tr, x_te = (torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1) for x in arrays[::2])
    y_tr, y_te = (torch.from_numpy(y.astype(np.int64)) for y in arrays[1::2])
    return SourceData(x_tr, y_tr, x_te, y_te, list(FASHION_MNIST_CLASSES), FASHION_MNIST_MEAN, FASHION_MNIST_STD,
                      str(root), tuple(str(p) for p in paths))
