"""What a run is and where it lives: :class:`Config`, run names, the learning-rate schedule, run-directory files.

Everything here is pure bookkeeping, no training: a frozen :class:`Config` with its validation, the fields that
decide a run's result (:func:`identity`) and its directory name (:func:`run_name`), the LDAM-DRW learning-rate rule
scaled to ``Config.epochs`` (:func:`lr_schedule`), atomic writes of the JSON/npz files of a run directory, readers of
finished runs (:func:`load_run`, :func:`load_logits`, :func:`find_runs`) and :func:`hardware`. :mod:`focal.train`
trains a :class:`Config` into such a directory and re-exports every public name of this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import platform
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from focal.data import DATASETS, default_data_root
from focal.models import MODELS

__all__ = [
    "Config", "LOSSES", "PROFILES", "GAMMA_LOSSES", "RECIPE_EPOCHS", "identity", "run_name", "lr_schedule",
    "load_run", "load_logits", "find_runs", "hardware",
]

LOSSES = ("ce", "focal", "sigmoid-focal", "focal-flsd53", "cb-focal")
"""Valid ``Config.loss`` names."""
PROFILES = ("exp", "step")
"""Valid long-tail profiles (see :func:`focal.data.longtail_counts`)."""
GAMMA_LOSSES = ("focal", "sigmoid-focal", "cb-focal")
"""Losses whose result depends on ``Config.gamma``."""
RECIPE_EPOCHS = 200
"""Length of the published recipe; warm-up and milestones are stated for it and scaled to ``Config.epochs``."""
_NOT_IDENTITY = ("data_root", "verify", "download", "device")  # where/how, not what: never part of a run's name


@dataclasses.dataclass(frozen=True)
class Config:
    """Every knob of one training run. Invalid values raise ``ValueError``/``TypeError`` naming the field.

    Example:
        >>> Config(loss="focal", gamma=1).to_dict()["gamma"]
        1.0
        >>> Config.from_dict(Config(lr_milestones=[100]).to_dict()).lr_milestones
        (100,)
    """

    dataset: str = "cifar10-lt"  # one of focal.data.DATASETS
    data_root: str | None = None  # dataset folder; None -> focal.data.default_data_root() (not part of the identity)
    imbalance: float = 100.0  # n_max / n_min of the long-tailed train split (-lt datasets only)
    profile: str = "exp"  # long-tail profile: exp or step (-lt datasets only)
    n_max: int | None = None  # head-class images of an -lt subset; None: the balanced set's per-class count
    model: str = "resnet32"  # one of focal.models.MODELS
    loss: str = "ce"  # one of LOSSES
    gamma: float = 1.0  # focusing parameter of focal, sigmoid-focal and cb-focal
    beta: float = 0.9999  # class-balanced β of cb-focal: weight ∝ (1-β)/(1-β^n)
    epochs: int = 200  # training epochs
    batch_size: int = 128  # global batch (split across DDP ranks)
    lr: float = 0.1  # peak learning rate of SGD
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 2e-4  # L2 weight decay (all parameters, as in LDAM-DRW)
    warmup_epochs: int = 5  # linear warm-up length in a 200-epoch run (scaled like the milestones)
    lr_milestones: tuple[int, ...] = (160, 180)  # epochs of a 200-epoch run where lr *= lr_decay
    lr_decay: float = 0.01  # lr factor applied at each milestone
    seed: int = 0  # seeds model init, shuffling and augmentation
    subset_seed: int = 0  # seed of the long-tailed subset; LDAM-DRW keeps 0 whatever the training seed
    device: str = "auto"  # auto (cuda if available), cpu, cuda, cuda:N (not part of the identity)
    amp: bool = True  # bf16 autocast; effective on CUDA only
    channels_last: bool = True  # NHWC memory format (faster on CUDA and, with oneDNN, on CPU)
    augment: bool = True  # random crop (4-pixel zero padding) + horizontal flip
    eval_every: int = 1  # evaluate on the test set every k epochs (and always after the last)
    verify: bool = True  # check dataset checksums when loading (not part of the identity)
    download: bool = False  # download a missing dataset (not part of the identity)

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("profile", self.profile, PROFILES)
        _check_choice("model", self.model, MODELS)
        _check_choice("loss", self.loss, LOSSES)
        for name in ("imbalance", "gamma", "beta", "lr", "momentum", "weight_decay", "lr_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Config.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Config.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("epochs", "batch_size", "warmup_epochs", "seed", "subset_seed", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"Config.{name} must be an int, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("amp", "channels_last", "augment", "verify", "download"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Config.{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.device, str):
            raise TypeError(f"Config.device must be a string, got {self.device!r}")
        milestones = self.lr_milestones
        if not isinstance(milestones, (list, tuple)) or not all(
            isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 0 for m in milestones
        ):
            raise TypeError(f"Config.lr_milestones must be a sequence of ints >= 0, got {milestones!r}")
        object.__setattr__(self, "lr_milestones", tuple(sorted(int(m) for m in milestones)))
        if self.data_root is not None:
            object.__setattr__(self, "data_root", os.fspath(self.data_root))
        if self.n_max is not None:
            if isinstance(self.n_max, bool) or not isinstance(self.n_max, numbers.Integral):
                raise TypeError(f"Config.n_max must be an int or None, got {self.n_max!r}")
            if self.n_max < 1:
                raise ValueError(f"Config.n_max must be >= 1, got {self.n_max!r}")
            if not self.dataset.endswith("-lt"):
                raise ValueError(f"Config.n_max applies to long-tailed ('-lt') datasets only, got "
                                 f"dataset={self.dataset!r}")
            object.__setattr__(self, "n_max", int(self.n_max))
        checks = [
            ("imbalance", self.imbalance >= 1, ">= 1"), ("gamma", self.gamma >= 0, ">= 0"),
            ("beta", 0 <= self.beta < 1, "in [0, 1)"), ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"), ("lr", self.lr > 0, "> 0"),
            ("momentum", 0 <= self.momentum < 1, "in [0, 1)"), ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"), ("lr_decay", 0 < self.lr_decay <= 1, "in (0, 1]"),
            ("seed", self.seed >= 0, ">= 0"), ("subset_seed", self.subset_seed >= 0, ">= 0"),
            ("eval_every", self.eval_every >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"Config.{name} must be {expected}, got {getattr(self, name)!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"Config.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the valid fields."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown Config field(s) {sorted(unknown)}; valid fields: {sorted(fields)}")
        data = dict(data)
        if "lr_milestones" in data:
            data["lr_milestones"] = tuple(data["lr_milestones"])
        return cls(**data)

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_choice(name: str, value: Any, valid: Iterable[str]) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"Config.{name}={value!r} is not valid; expected one of: {', '.join(valid)}")


def _fmt(x: float) -> str:
    """Shortest exact text for a number: 100.0 -> '100', 0.5 -> '0.5'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def identity(config: Config) -> dict[str, Any]:
    """The fields that decide a run's result: no paths or devices, γ/β/imbalance only where they matter."""
    ident = {k: v for k, v in config.to_dict().items() if k not in _NOT_IDENTITY}
    if config.loss not in GAMMA_LOSSES:
        del ident["gamma"]
    if config.loss != "cb-focal":
        del ident["beta"]
    if not config.dataset.endswith("-lt"):
        del ident["imbalance"], ident["profile"], ident["subset_seed"]
    if config.n_max is None:
        del ident["n_max"]
    return ident


def run_name(config: Config) -> str:
    """Readable, unique directory name of a run.

    ``{dataset}[_if{imbalance}[_{profile}][_n{n_max}]]_{model}_{loss}[_g{gamma}][_b{beta}]_e{epochs}_s{seed}[_{hash}]``,
    where the profile appears only when it is not ``exp``, ``n_max`` only when set, and the 8-hex hash covers every other identity field that differs
    from its default, so two configs with different results never share a name.

    Example:
        >>> run_name(Config(loss="cb-focal", gamma=0.5))
        'cifar10-lt_if100_resnet32_cb-focal_g0.5_b0.9999_e200_s0'
        >>> run_name(Config(lr=0.05)) != run_name(Config())
        True
        >>> run_name(Config(imbalance=1, n_max=1240))
        'cifar10-lt_if1_n1240_resnet32_ce_e200_s0'
    """
    ident = identity(config)
    parts = [config.dataset]
    if "imbalance" in ident:
        parts.append(f"if{_fmt(config.imbalance)}")
        if config.profile != "exp":
            parts.append(config.profile)
        if config.n_max is not None:
            parts.append(f"n{config.n_max}")
    parts += [config.model, config.loss]
    if "gamma" in ident:
        parts.append(f"g{_fmt(config.gamma)}")
    if "beta" in ident:
        parts.append(f"b{_fmt(config.beta)}")
    parts += [f"e{config.epochs}", f"s{config.seed}"]
    named = {"dataset", "imbalance", "profile", "n_max", "model", "loss", "gamma", "beta", "epochs", "seed"}
    default = Config().to_dict()
    rest = {k: v for k, v in ident.items() if k not in named and v != default[k]}
    if rest:
        parts.append(hashlib.sha1(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:8])
    return "_".join(parts)


def lr_schedule(config: Config) -> list[float]:
    """Learning rate of each epoch (0-based), the LDAM-DRW rule scaled to ``config.epochs``.

    With s = epochs / 200, warm-up w = round(s · warmup_epochs) and milestones m_j = round(s · milestone_j):

    .. math:: \\mathrm{lr}_e = \\mathrm{lr} \\cdot \\min\\bigl(1, \\tfrac{e+1}{w}\\bigr)
              \\cdot \\mathrm{decay}^{\\#\\{j : m_j \\le e\\}}

    Example:
        >>> [round(x, 6) for x in lr_schedule(Config(epochs=10, warmup_epochs=40))]
        [0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.001, 1e-05]
    """
    scale = config.epochs / RECIPE_EPOCHS
    warmup = round(config.warmup_epochs * scale)
    milestones = [round(m * scale) for m in config.lr_milestones]
    return [
        config.lr * min(1.0, (e + 1) / warmup if warmup else 1.0) * config.lr_decay ** sum(m <= e for m in milestones)
        for e in range(config.epochs)
    ]


# ----------------------------------------------------------------------------------------------- files on disk


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the file into place, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1, allow_nan=True) + "\n"))


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object stops numpy from appending ".npz" to the tmp name
            np.savez(fh, **arrays)

    _atomic_write(path, write)


def load_run(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` of a finished run directory, plus ``run_dir`` (str).

    Raises:
        FileNotFoundError: if ``path`` holds no finished run.
    """
    path = Path(path)
    if not (path / "metrics.json").is_file():
        raise FileNotFoundError(f"no finished run in {path} (metrics.json missing)")
    return {**json.loads((path / "metrics.json").read_text()), "run_dir": str(path)}


def load_logits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Final-epoch test ``(logits float32 (N, C), labels int64 (N,))`` of the run in ``path``."""
    with np.load(Path(path) / "test_logits.npz") as data:
        return data["logits"], data["labels"]


def find_runs(out: str | os.PathLike | None = None, **filters: Any) -> list[tuple[Config, dict[str, Any]]]:
    """Finished runs under ``out`` whose config matches every filter, sorted by run name.

    A filter value is either one value or a list/tuple/set of accepted values, e.g.
    ``find_runs(loss=["ce", "focal"], imbalance=100)``.
    """
    root = Path(out) if out is not None else default_data_root() / "runs"
    valid = {f.name for f in dataclasses.fields(Config)}
    if set(filters) - valid:
        raise ValueError(f"unknown filter(s) {sorted(set(filters) - valid)}; valid: {sorted(valid)}")
    found = []
    for metrics_file in sorted(root.glob("*/metrics.json")) if root.is_dir() else []:
        run = load_run(metrics_file.parent)
        config = Config.from_dict(run["config"])
        if all(getattr(config, k) in (v if isinstance(v, (list, tuple, set)) else (v,)) for k, v in filters.items()):
            found.append((config, run))
    return found


# ------------------------------------------------------------------------------------------------ hardware


def hardware(device: torch.device | str = "cpu", world_size: int = 1) -> str:
    """Human-readable hardware string for result pages, e.g. ``'CPU: AMD EPYC 7B13 (2 threads), torch 2.x'``."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as fh:
                name = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        threads = torch.get_num_threads()
        name = f"CPU: {name} ({threads} thread{'s' * (threads != 1)})"
    return f"{f'{world_size} x ' if world_size > 1 else ''}{name}, torch {torch.__version__}"
