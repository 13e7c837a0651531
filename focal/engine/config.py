"""What a run is: :class:`Config`, the single source of run settings, its identity, name and learning-rate schedule.

Every setting of a training run is a field of the frozen :class:`Config`, declared once with its default, its
validation and its help text (the field's ``metadata``). The command line's flags are generated from these fields
(:func:`focal.engine.cli.build_parser`) and the book's profiles vary fields of a base ``Config``
(:mod:`focal.book.profiles`), so a new setting is added here and nowhere else.

Example:
    >>> Config(loss="focal", gamma=1).to_dict()["gamma"]
    1.0
    >>> run_name(Config(dataset="synthetic", model="small-cnn", loss="focal", gamma=2, epochs=12))
    'synthetic_small-cnn_focal_g2_e12_s0'
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from typing import Any

from focal.engine.checks import check_choice
from focal.engine.data import DATASETS
from focal.engine.models import MODELS

__all__ = ["Config", "LOSSES", "LT_PROFILES", "GAMMA_LOSSES", "RECIPE_EPOCHS", "identity", "run_name", "lr_schedule"]

LOSSES = ("ce", "focal", "sigmoid-focal", "focal-flsd53", "cb-focal")
"""Valid ``Config.loss`` names."""
LT_PROFILES = ("exp", "step")
"""Valid long-tail shapes, the shape of the class counts (see :func:`focal.engine.data.longtail_counts`)."""
GAMMA_LOSSES = ("focal", "sigmoid-focal", "cb-focal")
"""Losses whose result depends on ``Config.gamma``."""
RECIPE_EPOCHS = 200
"""Length of the published recipe; warm-up and milestones are stated for it and scaled to ``Config.epochs``."""
_LEGACY_KEYS = {"profile": "lt_profile"}  # config.json files written before the rename
_RECORDS = ("data_files",)  # what config.json records about a run besides its settings


def setting(default: Any, help: str, group: str, *, type: Any = None, choices: tuple | None = None,
            metavar: str | None = None, grid: str | None = None, identity: bool = True) -> Any:
    """A :class:`Config` field with what the command line needs to offer it.

    Args:
        default: the field's default.
        help: one line for ``--help`` (``%(default)s`` is filled in by argparse).
        group: the ``--help`` section it is listed under.
        type: the element type when ``default`` does not show it (``None`` defaults).
        choices: the valid values, listed in ``--help`` and checked by argparse.
        metavar: the placeholder in ``--help``.
        grid: the plural flag of ``python -m focal grid`` that takes several values (e.g. ``seeds``).
        identity: False for settings that say where or how a run is computed, never what it computes.
    """
    meta = dict(help=help, group=group, type=type, choices=choices, metavar=metavar, grid=grid, identity=identity)
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_DATA, _RECIPE, _HW = "data", "model and recipe", "hardware"


@dataclasses.dataclass(frozen=True)
class Config:
    """Every knob of one training run. Invalid values raise ``ValueError``/``TypeError`` naming the field.

    The defaults are the LDAM-DRW CIFAR recipe :cite:`cao2019ldam`.

    Example:
        >>> Config.from_dict(Config(lr_milestones=[100]).to_dict()).lr_milestones
        (100,)
        >>> Config(lt_profile="linear")
        Traceback (most recent call last):
        ...
        ValueError: Config.lt_profile='linear' is not valid; expected one of: exp, step
    """

    dataset: str = setting("cifar10-lt", "dataset (default %(default)s)", _DATA, choices=DATASETS)
    data_root: str | None = setting(
        None, "folder holding the dataset's files; default: $FOCAL_DATA, else <repo>/data in a checkout, else "
        "./data; Fashion-MNIST without this flag is read from Debian's copy when it is installed", _DATA, type=str,
        metavar="DIR", identity=False)
    imbalance: float = setting(100.0, "imbalance ratio n_max/n_min of -lt datasets (default %(default)s)", _DATA,
                               grid="imbalances", metavar="RHO")
    lt_profile: str = setting("exp", "long tail (shape of the class counts) of -lt datasets "
                              "(default %(default)s)", _DATA, choices=LT_PROFILES)
    n_max: int | None = setting(
        None, "head-class images of an -lt subset (with --imbalance 1: a balanced subset of N per class); "
        "default: the balanced set's per-class count", _DATA, type=int, metavar="N")
    subset_seed: int = setting(0, "seed of the long-tailed subset, fixed across training seeds as in LDAM-DRW "
                               "(default %(default)s)", _DATA)
    verify: bool = setting(True, "check the dataset when loading (CIFAR: MD5 checksums; Fashion-MNIST: the images "
                           "per class)", _DATA, identity=False)
    download: bool = setting(False, "download a missing dataset", _DATA, identity=False)
    augment: bool = setting(True, "random crop (4-pixel zero padding) and horizontal flip", _DATA)
    model: str = setting("resnet32", "network (default %(default)s)", _RECIPE, choices=MODELS)
    loss: str = setting("ce", "training loss (default %(default)s)", _RECIPE, choices=LOSSES, grid="losses")
    gamma: float = setting(1.0, "focusing parameter of focal, sigmoid-focal and cb-focal (default %(default)s)",
                           _RECIPE, grid="gammas", metavar="G")
    beta: float = setting(0.9999, "class-balanced beta of cb-focal: weight ∝ (1-β)/(1-β^n) (default %(default)s)",
                          _RECIPE)
    epochs: int = setting(200, "training epochs (default %(default)s)", _RECIPE)
    batch_size: int = setting(128, "global batch size, split across DDP ranks (default %(default)s)", _RECIPE)
    lr: float = setting(0.1, "peak learning rate of SGD (default %(default)s)", _RECIPE)
    momentum: float = setting(0.9, "SGD momentum (default %(default)s)", _RECIPE)
    weight_decay: float = setting(2e-4, "L2 weight decay on all parameters, as in LDAM-DRW (default %(default)s)",
                                  _RECIPE)
    warmup_epochs: int = setting(5, "linear warm-up epochs of a 200-epoch run, scaled by epochs/200 "
                                 "(default %(default)s)", _RECIPE)
    lr_milestones: tuple[int, ...] = setting((160, 180), "epochs of a 200-epoch run where lr *= --lr-decay, scaled "
                                             "by epochs/200 (default %(default)s)", _RECIPE, type=int, metavar="E")
    lr_decay: float = setting(0.01, "lr factor applied at each milestone (default %(default)s)", _RECIPE)
    seed: int = setting(0, "seed of model init, shuffling and augmentation (default %(default)s)", _RECIPE,
                        grid="seeds", metavar="S")
    eval_every: int = setting(1, "evaluate on the test set every k epochs, and after the last (default %(default)s)",
                              _RECIPE)
    checkpoint_every: int = setting(1, "write the checkpoint every k epochs and after the last; a killed run resumes "
                                    "from the last one written (default %(default)s)", _HW, identity=False)
    device: str = setting("auto", "auto (cuda if available), cpu, cuda or cuda:N (default %(default)s)", _HW,
                          identity=False)
    amp: bool = setting(True, "bf16 autocast (CUDA only)", _HW)
    channels_last: bool = setting(True, "channels_last (NHWC) memory format, faster on CUDA and with oneDNN on the "
                                  "CPU", _HW)
    compile: bool = setting(False, "compile the model with torch.compile, static shapes; on CUDA with CUDA graphs "
                            "(mode reduce-overhead); compiled once per process, reused by its later runs", _HW,
                            identity=False)

    def __post_init__(self) -> None:
        for name in ("dataset", "lt_profile", "model", "loss"):
            check_choice(f"Config.{name}", getattr(self, name), _field(name).metadata["choices"])
        for name in ("imbalance", "gamma", "beta", "lr", "momentum", "weight_decay", "lr_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Config.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Config.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("epochs", "batch_size", "warmup_epochs", "seed", "subset_seed", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"Config.{name} must be an int, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("amp", "channels_last", "augment", "verify", "download", "compile"):
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
            ("eval_every", self.eval_every >= 1, ">= 1"), ("checkpoint_every", self.checkpoint_every >= 1, ">= 1"),
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
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the valid fields.

        A ``profile`` key (the long tail, as files written before it was renamed call it) is read as
        ``lt_profile``; ``data_files``, which a run's ``config.json`` records beside its settings, is not a setting.
        """
        if not isinstance(data, dict):
            raise TypeError(f"a Config is read from a dict, got {type(data).__name__}")
        data = {_LEGACY_KEYS.get(k, k): v for k, v in data.items() if k not in _RECORDS}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown Config field(s) {sorted(unknown)}; valid fields: {sorted(fields)}")
        if "lr_milestones" in data:
            data["lr_milestones"] = tuple(data["lr_milestones"])
        return cls(**data)

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _field(name: str) -> dataclasses.Field:
    return Config.__dataclass_fields__[name]


def _fmt(x: float) -> str:
    """Shortest exact text for a number: 100.0 -> '100', 0.5 -> '0.5'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def identity(config: Config) -> dict[str, Any]:
    """The fields that decide a run's result: no paths or devices, γ/β/imbalance only where they matter.

    Example:
        >>> sorted(set(Config().to_dict()) - set(identity(Config())))
        ['beta', 'checkpoint_every', 'compile', 'data_root', 'device', 'download', 'gamma', 'n_max', 'verify']
    """
    ident = {k: v for k, v in config.to_dict().items() if _field(k).metadata["identity"]}
    if config.loss not in GAMMA_LOSSES:
        del ident["gamma"]
    if config.loss != "cb-focal":
        del ident["beta"]
    if not config.dataset.endswith("-lt"):
        del ident["imbalance"], ident["lt_profile"], ident["subset_seed"]
    if config.n_max is None:
        del ident["n_max"]
    return ident


def run_name(config: Config) -> str:
    """Readable, unique directory name of a run.

    ``{dataset}[_if{imbalance}[_{lt_profile}][_n{n_max}]]_{model}_{loss}[_g{gamma}][_b{beta}]_e{epochs}_s{seed}[_{hash}]``,
    where the long tail appears only when it is not ``exp``, ``n_max`` only when set, and the 8-hex hash
    covers every other identity field that differs from its default, so two configs with different results never
    share a name.

    Example:
        >>> run_name(Config(loss="cb-focal", gamma=0.5))
        'cifar10-lt_if100_resnet32_cb-focal_g0.5_b0.9999_e200_s0'
        >>> run_name(Config(lr=0.05)) != run_name(Config())
        True
        >>> run_name(Config(imbalance=1, n_max=1240)), run_name(Config(lt_profile="step"))
        ('cifar10-lt_if1_n1240_resnet32_ce_e200_s0', 'cifar10-lt_if100_step_resnet32_ce_e200_s0')
    """
    ident = identity(config)
    parts = [config.dataset]
    if "imbalance" in ident:
        parts.append(f"if{_fmt(config.imbalance)}")
        if config.lt_profile != "exp":
            parts.append(config.lt_profile)
        if config.n_max is not None:
            parts.append(f"n{config.n_max}")
    parts += [config.model, config.loss]
    if "gamma" in ident:
        parts.append(f"g{_fmt(config.gamma)}")
    if "beta" in ident:
        parts.append(f"b{_fmt(config.beta)}")
    parts += [f"e{config.epochs}", f"s{config.seed}"]
    named = {"dataset", "imbalance", "lt_profile", "n_max", "model", "loss", "gamma", "beta", "epochs", "seed"}
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
        >>> lr_schedule(Config(epochs=200))[:6], lr_schedule(Config(epochs=200))[159:161]
        ([0.02, 0.04, 0.06, 0.08, 0.1, 0.1], [0.1, 0.001])
    """
    scale = config.epochs / RECIPE_EPOCHS
    warmup = round(config.warmup_epochs * scale)
    milestones = [round(m * scale) for m in config.lr_milestones]
    return [
        config.lr * min(1.0, (e + 1) / warmup if warmup else 1.0) * config.lr_decay ** sum(m <= e for m in milestones)
        for e in range(config.epochs)
    ]
