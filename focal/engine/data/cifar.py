"""CIFAR-10/100 in the real pickle layout: torchvision's readers (with or without their MD5 check), and a small fake
CIFAR written in the same layout for tests (:func:`write_fake_cifar`).

A truncated or corrupt batch raises :class:`~focal.engine.files.UnreadableFile` naming the file; a failed MD5
check names the folder and the files that fail it.
"""

from __future__ import annotations

import os
import pickle
from functools import cache
from pathlib import Path

import numpy as np
import torch

from focal.engine.checks import check_int
from focal.engine.data.sources import TITLES, SourceData, default_data_root, synthetic_images
from focal.engine.files import UnreadableFile, write_pickle

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "fetch_cifar", "load_cifar", "write_fake_cifar"]

#: LDAM-DRW's normalisation constants, used for CIFAR-10 and CIFAR-100 alike (the recipe's values).
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
# What pickle.load and torchvision's CIFAR parser raise on a truncated or corrupt batch file.
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError,
                  ImportError, OverflowError)



def write_fake_cifar(root, num_classes: int = 10, n_train_per_class: int = 50, n_test_per_class: int = 10,
                     seed: int = 0) -> Path:
    """Write a small fake CIFAR-10/100 in the real pickle layout, for tests and smoke runs.

    CIFAR-10 gets ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` with keys
    ``data`` (uint8 ``(N, 3072)``), ``labels``, ``filenames``, ``batch_label`` and ``label_names``;
    CIFAR-100 gets ``cifar-100-python/{train, test, meta}`` with ``fine_labels``,
    ``coarse_labels`` (``k // 5``) and ``fine_label_names``/``coarse_label_names``. Images come from
    :func:`synthetic_images`, so they are learnable. The MD5s cannot match the real files: load the
    fake with ``load_data(..., verify=False)`` (CLI ``--no-verify``).

    Args:
        root: folder in which the dataset folder is created.
        num_classes: 10 (CIFAR-10 layout) or 100 (CIFAR-100 layout).
        n_train_per_class: training images per class.
        n_test_per_class: test images per class.
        seed: seed of :func:`synthetic_images`.

    Returns:
        ``Path(root)``, the value to pass as ``root`` to :func:`~focal.engine.data.load_data`.

    Example:
        >>> import tempfile
        >>> root = write_fake_cifar(tempfile.mkdtemp(), n_train_per_class=2, n_test_per_class=1)
        >>> sorted(p.name for p in (root / "cifar-10-batches-py").iterdir())[:3]
        ['batches.meta', 'data_batch_1', 'data_batch_2']
    """
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes!r}")
    seed = check_int("seed", seed, 0)
    train = synthetic_images(check_int("n_train_per_class", n_train_per_class, 1), num_classes, seed)
    test = synthetic_images(check_int("n_test_per_class", n_test_per_class, 1), num_classes, seed, train=False)
    names = [f"fake_{k:02d}" for k in range(num_classes)]
    root = Path(root)

    def batch(x, y, label, start=0):
        entry = {"batch_label": label, "data": x.reshape(len(x), 3072),
                 "filenames": [f"fake_{start + i:06d}.png" for i in range(len(x))]}
        if num_classes == 10:
            return {**entry, "labels": y.tolist()}
        return {**entry, "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist()}

    if num_classes == 10:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(np.array_split(np.arange(len(train[1])), 5), start=1):
            obj = batch(train[0][part], train[1][part], f"training batch {i} of 5", int(part[0]) if len(part) else 0)
            write_pickle(folder / f"data_batch_{i}", obj)
        write_pickle(folder / "test_batch", batch(*test, "testing batch 1 of 1"))
        write_pickle(folder / "batches.meta",
                     {"num_cases_per_batch": len(train[1]) // 5, "label_names": names, "num_vis": 3072})
    else:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        write_pickle(folder / "train", batch(*train, "training batch 1 of 1"))
        write_pickle(folder / "test", batch(*test, "testing batch 1 of 1"))
        write_pickle(folder / "meta",
                     {"fine_label_names": names, "coarse_label_names": [f"fake_coarse_{k:02d}" for k in range(20)]})
    return root


@cache
def _cifar_class(num_classes: int, verify: bool):
    """torchvision's CIFAR10/CIFAR100, or a subclass that only checks that the files exist."""
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if num_classes == 10 else CIFAR100
    if verify:
        return base
    unchecked = {"train_list": [[f, None] for f, _ in base.train_list],
                 "test_list": [[f, None] for f, _ in base.test_list],
                 "meta": {**base.meta, "md5": None}}  # check_integrity(path, None) only tests existence
    return type(f"Unverified{base.__name__}", (base,), unchecked)


def _cifar_files(cls) -> list[str]:
    """The file names torchvision's ``cls`` reads: training batches, test batch, meta."""
    return [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def _md5_failure(title: str, folder: Path, num_classes: int) -> UnreadableFile:
    """The error for CIFAR files that fail torchvision's MD5 check, naming the folder and the failing files."""
    from torchvision.datasets.utils import check_integrity

    cls = _cifar_class(num_classes, True)
    sums = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    bad = [f for f, md5 in sums if not check_integrity(str(folder / f), md5)] or ["some files"]
    return UnreadableFile(folder, (
        f"{', '.join(bad)} fail torchvision's MD5 check, so these are not the real {title} files. If they are a fake "
        f"written by focal.engine.data.write_fake_cifar, load them with verify=False (CLI --no-verify); if they should "
        f"be the real data, delete {folder} and download again with download=True (CLI --download)"))


def _cifar_problem(path: Path, meta_key: str | None) -> str | None:
    """Why torchvision cannot parse the CIFAR pickle ``path`` (a batch, or the meta file when ``meta_key``), or None."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except _PICKLE_ERRORS as err:
        return f"not a readable pickle ({type(err).__name__}: {err})"
    if not isinstance(entry, dict):
        return f"holds a {type(entry).__name__}, expected a dict"
    if meta_key is not None:
        return None if meta_key in entry else f"lacks the key {meta_key!r} of a CIFAR meta file"
    data = entry.get("data")
    labels = entry.get("labels", entry.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or labels is None:
        return "is not a CIFAR batch: expected 'data' of shape (N, 3072) and 'labels' or 'fine_labels'"
    return None


def _unreadable_cifar(title: str, folder: Path, cls, err: Exception) -> UnreadableFile:
    """The error for a CIFAR batch torchvision could not parse: names the first bad file (else the folder)."""
    fix = (f"delete {folder} and download {title} again with download=True (CLI --download), or, for a fake, "
           f"write it again with focal.engine.data.write_fake_cifar")
    for name in _cifar_files(cls):
        problem = _cifar_problem(folder / name, cls.meta["key"] if name == cls.meta["filename"] else None)
        if problem:
            return UnreadableFile(folder / name, f"{problem}; the file is truncated or corrupt: {fix}")
    return UnreadableFile(folder, f"torchvision cannot parse these {title} files ({type(err).__name__}: {err}): {fix}")


def load_cifar(num_classes: int, root=None, download: bool = False, verify: bool = True) -> SourceData:
    """CIFAR-10 or CIFAR-100 from ``<root>/cifar-10-batches-py`` or ``<root>/cifar-100-python``.

    The files are parsed by torchvision's ``CIFAR10``/``CIFAR100``, which also checks their MD5 sums
    unless ``verify=False`` (needed for a fake written by :func:`write_fake_cifar`).

    Args:
        num_classes: 10 (CIFAR-10) or 100 (CIFAR-100).
        root: the folder that holds the dataset folder; None: :func:`default_data_root`.
        download: let torchvision download missing (or, with ``verify``, corrupt) files.
        verify: check torchvision's MD5 sums.

    Returns:
        The balanced dataset, normalised with LDAM-DRW's :data:`CIFAR_MEAN`/:data:`CIFAR_STD`; ``root`` and
        ``files`` are absolute.

    Raises:
        FileNotFoundError: files are missing and ``download`` is False; names the folder and the files.
        UnreadableFile: a file fails the MD5 check (names the folder) or, with ``verify=False``, cannot be parsed
            (names the file).

    Example:
        >>> import tempfile
        >>> root = write_fake_cifar(tempfile.mkdtemp(), n_train_per_class=2, n_test_per_class=1)
        >>> data = load_cifar(10, root, verify=False)
        >>> tuple(data.train_images.shape), len(data.files), Path(data.files[0]).name
        ((20, 3, 32, 32), 7, 'data_batch_1')
    """
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes!r}")
    root = Path(os.path.abspath(default_data_root() if root is None else root))
    cls = _cifar_class(num_classes, verify)
    title = TITLES[f"cifar{num_classes}"]
    folder = root / cls.base_folder
    missing = [f for f in _cifar_files(cls) if not (folder / f).is_file()]
    if missing and not download:
        raise FileNotFoundError(
            f"{title} not found: searched {folder} for {', '.join(missing)}. Download it with "
            f"load_data(..., download=True) (CLI --download), or point root / $FOCAL_DATA at the folder "
            f"that contains {cls.base_folder}/ (extracted from {cls.filename}).")
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted", i.e. an MD5 check failed
        if not verify:
            raise
        raise _md5_failure(title, folder, num_classes) from err
    except _PICKLE_ERRORS as err:
        raise _unreadable_cifar(title, folder, cls, err) from err

    def tensors(ds):
        x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        return x, torch.as_tensor(np.asarray(ds.targets, dtype=np.int64))

    files = tuple(str(folder / f) for f in _cifar_files(cls))
    return SourceData(*tensors(train), *tensors(test), list(train.classes), CIFAR_MEAN, CIFAR_STD, str(root), files)


def fetch_cifar(root=None) -> list[Path]:
    """Make CIFAR-10 and CIFAR-100 ready under ``root`` with torchvision: each dataset folder that is missing or fails
    torchvision's MD5 check is unpacked from its archive in ``root`` when that archive is there and passes its MD5
    check, and downloaded (then checked and unpacked) otherwise. ``make data`` runs it; so does ``make book`` at a
    profile that reads CIFAR, before any run trains.

    Args:
        root: the data root; None: :func:`default_data_root`.

    Returns:
        The two dataset folders, ``<root>/cifar-10-batches-py`` and ``<root>/cifar-100-python``.

    Raises:
        FileNotFoundError: a dataset could be neither unpacked nor downloaded (an offline host, say); the message
            names the two archives, their MD5 sums and the folder to copy them into.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    root = Path(os.path.abspath(default_data_root() if root is None else root))
    folders, failed = [], []
    for cls in (CIFAR10, CIFAR100):
        try:
            cls(str(root), train=True, download=True)  # skips what passes the MD5 check; unpacks a good archive
            cls(str(root), train=False)
        except (OSError, RuntimeError) as err:  # no network (URLError is an OSError), or a corrupt download
            failed.append(f"{cls.__name__} ({type(err).__name__}: {err})")
        else:
            folders.append(root / cls.base_folder)
    if failed:
        archives = " and ".join(f"{cls.filename} (MD5 {cls.tgz_md5})" for cls in (CIFAR10, CIFAR100))
        raise FileNotFoundError(
            f"could not obtain {' and '.join(failed)}. On a host without internet access, copy the two archives "
            f"{archives} into {root}/ and run `make data` again: it checks them and unpacks them there.")
    return folders
