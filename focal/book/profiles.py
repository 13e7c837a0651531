"""Book profiles: one parameter that sizes every chapter, same code path for all.

The book's chapters run at one of three profiles:

* ``smoke`` -- continuous integration: the synthetic long-tailed set, a small CNN, 1 epoch, 2 seeds; every
  chapter in well under two minutes on two CPU cores. Its numbers only show that the pipeline runs.
* ``cpu`` -- the default without a GPU: Fashion-MNIST-LT (exponential long tail, imbalance 100), the small CNN,
  12 epochs (test set evaluated every 4), **5 seeds** per loss setting, plus the balanced reference: 36 runs, trained
  two at a time on two cores. Sized for the 45-minute budget of the whole book on two cores of the slowest machine
  seen (an AMD EPYC without AVX-512, 2,200 images/s for the small CNN): 20 epochs took 2 min 52 s per run there, so
  the 36 runs would have taken about 52 minutes on their own. Focal γ = 3 is left out for the same reason (chapter 6
  then judges Mukhoti et al.'s claim on FLSD-53). Chapter 4 reports the training time it measured.
* ``gpu`` -- the default with CUDA and CIFAR present: CIFAR-10-LT and CIFAR-100-LT at imbalance 100/50/10,
  ResNet-32, the 200-epoch recipe of Cao et al. (2019), 3 seeds; the model compiled with CUDA graphs
  (``Config.compile``), test set and checkpoint every 10 epochs, several runs at once on each GPU
  (:data:`focal.engine.system.RUNS_PER_GPU`).

The loss settings (:data:`focal.book.labels.LOSS_SETTINGS`, all of them in the ``smoke`` and ``gpu`` profiles): cross-entropy, softmax
focal loss with
:math:`\\gamma \\in \\{0.5, 1, 2, 3\\}`, FLSD-53 (Mukhoti et al. 2020: :math:`\\gamma = 5` where
:math:`p_t < 0.2`, else 3) and class-balanced focal loss. For class-balanced focal we use :math:`\\gamma = 1`
(the γ Cao et al. 2019 use for their focal rows) with :math:`\\beta = 0.9999`; Cui et al. (2019) tuned β and γ per
column, so their "class-balanced (best)" row is not one fixed setting.

Every seed trains on the **same** long-tailed subset (``Config.subset_seed`` = 0, as in LDAM-DRW); the seed changes
the initial weights, the batch order and the augmentation. Two runs with the same seed and different losses are
therefore paired, and the intervals of chapter 6 measure training noise, not subset noise.

The **balanced reference** (:func:`reference_configs`): CE and focal γ = 1 trained on a *balanced* subset of the
main dataset with as many training images as its long-tailed set (imbalance 1, ``n_max`` = long-tailed total / C),
so that a class's accuracy in a long-tailed run can be read relative to what the same amount of data, spread evenly,
gives that class: frequency effects separated from class difficulty.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from focal.book.labels import LOSS_SETTINGS, loss_label
from focal.engine.config import Config
from focal.engine.data import BALANCED_SIZES, default_data_root, load_data, train_size

__all__ = [
    "Profile",
    "PROFILES",
    "REFERENCE_LOSSES",
    "default_profile",
    "get_profile",
    "configs",
    "reference_configs",
    "all_configs",
    "reference_n_max",
    "cifar_present",
]

#: Loss settings of the balanced reference (:func:`reference_configs`).
REFERENCE_LOSSES: tuple[tuple[str, float | None], ...] = (("ce", None), ("focal", 1.0))


@dataclass(frozen=True)
class Profile:
    """Everything that sizes the book's experiments: a base :class:`~focal.engine.config.Config` (model, epochs,
    recipe, data root, device: every run setting the profile does not vary) and the fields it varies across runs.

    Example:
        >>> p = get_profile("smoke")
        >>> p.name, p.datasets, p.base.epochs, len(p.losses) * len(p.seeds)
        ('smoke', ('synthetic-lt',), 1, 14)
    """

    name: str  # "smoke", "cpu" or "gpu" (or a custom name)
    base: Config  # the settings every run shares; dataset, imbalance, loss, gamma and seed are varied below
    datasets: tuple[str, ...]  # long-tailed datasets of chapters 4-5 (names of focal.engine.data.DATASETS)
    imbalances: tuple[float, ...]  # imbalance ratios rho = n_max / n_min; the first is the main one
    seeds: tuple[int, ...]  # one run per seed; paired differences over these
    losses: tuple[tuple[str, float | None], ...] = LOSS_SETTINGS  # (loss, gamma) pairs
    reference_losses: tuple[tuple[str, float | None], ...] = REFERENCE_LOSSES  # balanced reference, () for none
    reference_seeds: tuple[int, ...] = (0, 1, 2)  # seeds of the balanced reference
    note: str = ""  # a caveat appended to the description, e.g. what the smoke profile's numbers mean

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.base, Config):
            raise TypeError(f"base must be a focal.engine.config.Config, got {type(self.base).__name__}")
        for attr in ("reference_losses", "reference_seeds"):
            value = getattr(self, attr)
            if isinstance(value, (str, bytes)):
                raise ValueError(f"{attr} must be a sequence, got {value!r}")
            object.__setattr__(self, attr, tuple(value))
        if self.reference_losses and not self.reference_seeds:
            raise ValueError("reference_seeds must be non-empty when reference_losses are given")
        for attr in ("datasets", "imbalances", "seeds", "losses"):
            value = getattr(self, attr)
            if isinstance(value, (str, bytes)) or len(tuple(value)) == 0:
                raise ValueError(f"{attr} must be a non-empty sequence, got {value!r}")
            object.__setattr__(self, attr, tuple(value))
        for attr in ("seeds", "reference_seeds"):
            if any(isinstance(s, bool) or not isinstance(s, int) for s in getattr(self, attr)):
                raise TypeError(f"{attr} must be ints, got {getattr(self, attr)!r}")
        for pair in self.losses + self.reference_losses:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"losses must be (loss, gamma) pairs, got {pair!r}")
            loss_label(*pair)  # an unknown loss name raises here, naming the valid ones
        for dataset in self.datasets:  # every varied value is a valid Config value
            for imbalance in self.imbalances:
                self.base.replace(dataset=dataset, imbalance=imbalance)

    @property
    def description(self) -> str:
        """One line for the page, built from the fields (so overrides such as ``epochs=1`` show up in it).

        Example:
            >>> get_profile("cpu", epochs=1, seeds=2).description
            'fashion-mnist-lt (exp long tail, imbalance 100), small-cnn, 1 epoch, 2 seeds'
        """
        base, imbalances = self.base, "/".join(f"{float(i):g}" for i in self.imbalances)
        text = (f"{' and '.join(self.datasets)} ({base.lt_profile} long tail, imbalance {imbalances}), {base.model}, "
                f"{base.epochs} epoch{'s' * (base.epochs != 1)}, {len(self.seeds)} seed{'s' * (len(self.seeds) != 1)}")
        return f"{text}; {self.note}" if self.note else text

    @property
    def dataset(self) -> str:
        """The main long-tailed dataset (the first of ``datasets``)."""
        return self.datasets[0]

    @property
    def imbalance(self) -> float:
        """The main imbalance ratio (the first of ``imbalances``)."""
        return float(self.imbalances[0])

    @property
    def image_dataset(self) -> str:
        """The balanced dataset behind the main long-tailed one (for chapter 3's sample grid)."""
        return self.dataset.removesuffix("-lt")

    def facts(self) -> dict:
        """What a chapter states about its profile (for ``myst_nb.glue``): name, description, model, epochs,
        seeds, number of runs and evaluation interval.

        Example:
            >>> get_profile("smoke").facts()["seeds"]
            '0, 1'
        """
        return dict(profile=self.name, profile_description=self.description, model=self.base.model,
                    epochs=self.base.epochs, seeds=", ".join(map(str, self.seeds)), n_seeds=len(self.seeds),
                    n_runs=self.num_runs, n_reference_runs=len(self.reference_losses) * len(self.reference_seeds),
                    reference_seeds=", ".join(map(str, self.reference_seeds)), eval_every=self.base.eval_every)

    def load_data(self, seed: int = 0):
        """The main long-tailed dataset of this profile (:func:`focal.engine.data.load_data`), subset ``seed``."""
        return load_data(self.dataset, self.base.data_root, imbalance=self.imbalance, lt_profile=self.base.lt_profile,
                         seed=seed, verify=self.base.verify)

    def load_reference_data(self, seed: int = 0):
        """The balanced reference's training set (:func:`reference_n_max` images per class), subset ``seed``."""
        return load_data(self.dataset, self.base.data_root, imbalance=1.0, lt_profile=self.base.lt_profile, seed=seed,
                         verify=self.base.verify, n_max=reference_n_max(self))

    @property
    def num_runs(self) -> int:
        """Number of training runs of chapter 4 (datasets x imbalances x losses x seeds)."""
        return len(self.datasets) * len(self.imbalances) * len(self.losses) * len(self.seeds)


#: The run settings the profiles share: the recipe of Cao et al. (2019) on the CPU-friendly small CNN.
_SMALL = Config(dataset="synthetic-lt", model="small-cnn", beta=0.9999)

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", base=_SMALL.replace(epochs=1),
        datasets=("synthetic-lt",), imbalances=(100.0,), seeds=(0, 1),
        reference_seeds=(0, 1), note="a CI smoke test: its numbers only show that the pipeline runs",
    ),
    "cpu": Profile(
        name="cpu", base=_SMALL.replace(dataset="fashion-mnist-lt", epochs=12, eval_every=4),
        datasets=("fashion-mnist-lt",), imbalances=(100.0,),
        seeds=(0, 1, 2, 3, 4), losses=tuple(s for s in LOSS_SETTINGS if s != ("focal", 3.0)),
    ),
    "gpu": Profile(
        # device "cuda", not "auto": without a usable GPU the profile stops with the reason, never trains on the CPU;
        # the step compiled with CUDA graphs, the test set and the checkpoint every 10 epochs (of 200)
        name="gpu", base=Config(dataset="cifar10-lt", model="resnet32", epochs=200, device="cuda", compile=True,
                                eval_every=10, checkpoint_every=10),
        datasets=("cifar10-lt", "cifar100-lt"), imbalances=(100.0, 50.0, 10.0),
        seeds=(0, 1, 2), note="the training recipe of Cao et al. (2019)",
    ),
}


def cifar_present(root: str | os.PathLike | None = None) -> bool:
    """True when both CIFAR-10 and CIFAR-100 (python versions) are unpacked under ``root``.

    Args:
        root: data root; None uses :func:`focal.engine.data.default_data_root`.

    Example:
        >>> cifar_present("/nonexistent")
        False
    """
    root = Path(default_data_root() if root is None else root)
    return (root / "cifar-10-batches-py").is_dir() and (root / "cifar-100-python").is_dir()


def default_profile() -> str:
    """The profile a machine runs by default: ``"gpu"`` with CUDA and CIFAR present, else ``"cpu"``.

    Example:
        >>> default_profile() in ("cpu", "gpu")
        True
    """
    return "gpu" if torch.cuda.is_available() and cifar_present() else "cpu"


def get_profile(name: str | Profile | None = None, **overrides) -> Profile:
    """Look up a profile by name and optionally override some of its fields.

    Notebooks call it from their ``parameters`` cell, e.g.
    ``get_profile(PROFILE, epochs=EPOCHS, seeds=SEEDS)``; an override that is None is ignored, so the
    notebook's knobs can default to None ("whatever the profile says").

    Args:
        name: ``"smoke"``, ``"cpu"``, ``"gpu"``, a :class:`Profile`, or None for :func:`default_profile`.
        **overrides: fields of :class:`Profile`, or of its base :class:`~focal.engine.config.Config` (e.g.
            ``epochs``), to replace; None values are skipped.

    Returns:
        The (possibly modified) frozen :class:`Profile`.

    Example:
        >>> get_profile("cpu", epochs=2, seeds=None).base.epochs
        2
        >>> get_profile("tpu")
        Traceback (most recent call last):
        ...
        ValueError: unknown profile 'tpu'; expected one of ['cpu', 'gpu', 'smoke'] or None
    """
    if name is None:
        profile = PROFILES[default_profile()]
    elif isinstance(name, Profile):
        profile = name
    elif isinstance(name, str) and name in PROFILES:
        profile = PROFILES[name]
    else:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(PROFILES)} or None")
    own = {f.name for f in dataclasses.fields(Profile)} - {"base"}
    settings = {f.name for f in dataclasses.fields(Config)}
    unknown = set(overrides) - own - settings
    if unknown:
        raise TypeError(f"unknown Profile or Config field(s) {sorted(unknown)}; valid fields: {sorted(own | settings)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "seeds" in changes and isinstance(changes["seeds"], int):
        changes["seeds"] = tuple(range(changes["seeds"]))  # SEEDS=3 means seeds 0, 1, 2
    base = {k: changes.pop(k) for k in list(changes) if k in settings}
    if base:
        changes["base"] = profile.base.replace(**base)
    return dataclasses.replace(profile, **changes) if changes else profile


def configs(profile: Profile | str | None = None, *, dataset: str | None = None,
            imbalance: float | None = None) -> list:
    """The training runs of chapter 4 (chapter 5 reuses them): one :class:`focal.engine.train.Config` per
    dataset x imbalance x loss setting x seed, in that order.

    Args:
        profile: a :class:`Profile` or a profile name (None: the default profile).
        dataset: keep only this dataset (must be one of ``profile.datasets``).
        imbalance: keep only this imbalance ratio (must be one of ``profile.imbalances``).

    Returns:
        A list of frozen ``Config`` objects.

    Example:
        >>> cs = configs("smoke")
        >>> len(cs), cs[0].loss, cs[0].epochs, cs[-1].loss, cs[-1].seed
        (14, 'ce', 1, 'cb-focal', 1)
    """
    profile = get_profile(profile)
    datasets = profile.datasets if dataset is None else (dataset,)
    imbalances = profile.imbalances if imbalance is None else (float(imbalance),)
    if dataset is not None and dataset not in profile.datasets:
        raise ValueError(f"dataset {dataset!r} is not in profile {profile.name!r}: {profile.datasets}")
    if imbalance is not None and float(imbalance) not in {float(i) for i in profile.imbalances}:
        raise ValueError(f"imbalance {imbalance!r} is not in profile {profile.name!r}: {profile.imbalances}")
    return [_config(profile, ds, float(imb), loss, gamma, seed)
            for ds in datasets for imb in imbalances for loss, gamma in profile.losses for seed in profile.seeds]


def _config(profile: Profile, dataset: str, imbalance: float, loss: str, gamma: float | None, seed: int,
            n_max: int | None = None) -> Config:
    changes = dict(dataset=dataset, imbalance=imbalance, loss=loss, seed=seed, n_max=n_max)
    if gamma is not None:
        changes["gamma"] = float(gamma)
    return profile.base.replace(**changes)


def reference_n_max(profile: Profile | str | None = None) -> int:
    """Images per class of the balanced reference: the main long-tailed set's total divided by the number of
    classes (rounded down), so that the reference trains on as many images as the long-tailed runs.

    Example:
        >>> reference_n_max("cpu")  # Fashion-MNIST-LT at imbalance 100 has 14,886 images
        1488
    """
    profile = get_profile(profile)
    num_classes = BALANCED_SIZES[profile.image_dataset][1]
    return train_size(f"{profile.image_dataset}-lt", profile.imbalance, profile.base.lt_profile) // num_classes


def reference_configs(profile: Profile | str | None = None) -> list:
    """The balanced reference runs: every ``profile.reference_losses`` setting x ``profile.reference_seeds`` on
    the main dataset at imbalance 1 with :func:`reference_n_max` images per class (same subset for every seed).

    Example:
        >>> cs = reference_configs("cpu")
        >>> len(cs), cs[0].imbalance, cs[0].n_max, cs[-1].loss, cs[-1].gamma
        (6, 1.0, 1488, 'focal', 1.0)
    """
    profile = get_profile(profile)
    n_max = reference_n_max(profile)
    return [_config(profile, profile.dataset, 1.0, loss, gamma, seed, n_max=n_max)
            for loss, gamma in profile.reference_losses for seed in profile.reference_seeds]


def all_configs(profile: Profile | str | None = None) -> list:
    """Every run the book trains for a profile: :func:`configs` then :func:`reference_configs`.

    Example:
        >>> len(all_configs("smoke")) == len(configs("smoke")) + len(reference_configs("smoke"))
        True
    """
    return configs(profile) + reference_configs(profile)
