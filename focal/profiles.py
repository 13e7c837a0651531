"""Book profiles: one parameter that sizes every chapter, same code path for all.

The book's chapters run at one of three profiles:

* ``smoke`` -- continuous integration: the synthetic long-tailed set, a small CNN, 1 epoch, 2 seeds; every
  chapter in well under two minutes on two CPU cores. Its numbers only show that the pipeline runs.
* ``cpu`` -- the default without a GPU: Fashion-MNIST-LT (exponential profile, imbalance 100), the small CNN,
  12 epochs (test set evaluated every 4), **5 seeds** per loss setting, plus the balanced reference: 36 runs, trained
  two at a time on two cores. Sized for the 45-minute budget of the whole book on two cores of the slowest machine
  seen (an AMD EPYC without AVX-512, 2,200 images/s for the small CNN): 20 epochs took 2 min 52 s per run there, so
  the 36 runs would have taken about 52 minutes on their own. Focal γ = 3 is left out for the same reason (chapter 6
  then judges Mukhoti et al.'s claim on FLSD-53). Chapter 4 reports the training time it measured.
* ``gpu`` -- the default with CUDA and CIFAR present: CIFAR-10-LT and CIFAR-100-LT at imbalance 100/50/10,
  ResNet-32, the 200-epoch recipe of Cao et al. (2019), 3 seeds.

The loss settings (:data:`LOSS_SETTINGS`, all of them in the ``smoke`` and ``gpu`` profiles): cross-entropy, softmax
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

__all__ = [
    "Profile",
    "PROFILES",
    "LOSS_SETTINGS",
    "LOSS_LABELS",
    "loss_label",
    "default_profile",
    "get_profile",
    "configs",
    "reference_configs",
    "all_configs",
    "reference_n_max",
    "hardware_string",
    "cifar_present",
]

#: The (loss, γ) settings every profile trains, in the book's order. γ is None where the loss fixes it (CE,
#: FLSD-53). Focal γ = 3 is Mukhoti et al.'s fixed-γ setting, held against CE with FLSD-53 in chapter 6.
LOSS_SETTINGS: tuple[tuple[str, float | None], ...] = (
    ("ce", None),
    ("focal", 0.5),
    ("focal", 1.0),
    ("focal", 2.0),
    ("focal", 3.0),
    ("focal-flsd53", None),
    ("cb-focal", 1.0),
)

#: Loss settings of the balanced reference (:func:`reference_configs`).
REFERENCE_LOSSES: tuple[tuple[str, float | None], ...] = (("ce", None), ("focal", 1.0))

_LOSS_NAMES = {"ce": "CE", "focal": "focal", "focal-flsd53": "FLSD-53", "cb-focal": "CB focal",
               "sigmoid-focal": "sigmoid focal"}


def loss_label(loss: str, gamma: float | None = None) -> str:
    """Human-readable name of a loss setting, used in every table and legend of the book.

    Args:
        loss: a loss name of :class:`focal.train.Config` (``"ce"``, ``"focal"``, ``"focal-flsd53"``,
            ``"cb-focal"``, ``"sigmoid-focal"``).
        gamma: the focusing parameter; ignored for losses that fix it (CE, FLSD-53).

    Returns:
        e.g. ``"CE"``, ``"focal γ=2"``, ``"FLSD-53"``, ``"CB focal γ=1"``.

    Example:
        >>> loss_label("focal", 0.5), loss_label("ce", 1.0), loss_label("cb-focal", 1.0)
        ('focal γ=0.5', 'CE', 'CB focal γ=1')
    """
    if loss not in _LOSS_NAMES:
        raise ValueError(f"loss must be one of {sorted(_LOSS_NAMES)}, got {loss!r}")
    name = _LOSS_NAMES[loss]
    if loss in ("ce", "focal-flsd53") or gamma is None:
        return name
    return f"{name} γ={float(gamma):g}"


#: Labels of :data:`LOSS_SETTINGS`, in the order every table and legend of the book uses (sigmoid focal, which a
#: profile may add, goes last).
LOSS_LABELS: tuple[str, ...] = tuple(loss_label(loss, gamma) for loss, gamma in LOSS_SETTINGS) + ("sigmoid focal γ=1",)


@dataclass(frozen=True)
class Profile:
    """Everything that sizes the book's experiments.

    Example:
        >>> p = get_profile("smoke")
        >>> p.name, p.datasets, p.epochs, len(p.losses) * len(p.seeds)
        ('smoke', ('synthetic-lt',), 1, 14)
    """

    name: str  # "smoke", "cpu" or "gpu" (or a custom name)
    datasets: tuple[str, ...]  # long-tailed datasets of chapters 4-5 (names of focal.data.DATASETS)
    imbalances: tuple[float, ...]  # imbalance ratios rho = n_max / n_min; the first is the main one
    model: str  # a name of focal.models.MODELS
    epochs: int  # training epochs per run
    seeds: tuple[int, ...]  # one run per seed; paired differences over these
    losses: tuple[tuple[str, float | None], ...] = LOSS_SETTINGS  # (loss, gamma) pairs
    reference_losses: tuple[tuple[str, float | None], ...] = REFERENCE_LOSSES  # balanced reference, () for none
    reference_seeds: tuple[int, ...] = (0, 1, 2)  # seeds of the balanced reference
    lt_profile: str = "exp"  # long-tail profile of the training set: "exp" or "step"
    batch_size: int = 128  # SGD batch size
    lr: float = 0.1  # peak learning rate (after warm-up)
    eval_every: int = 1  # evaluate on the test set every k epochs (and after the last): learning-curve points
    beta: float = 0.9999  # class-balanced beta (Cui et al. 2019) for cb-focal
    data_root: str | None = None  # None: focal.data.default_data_root()
    verify: bool = True  # check dataset checksums (False only for fake CIFAR in tests)
    device: str = "auto"  # "auto", "cpu" or "cuda"
    note: str = ""  # a caveat appended to the description, e.g. what the smoke profile's numbers mean

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
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
        for attr in ("epochs", "eval_every", "batch_size"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{attr} must be a positive int, got {value!r}")
        for attr in ("seeds", "reference_seeds"):
            if any(isinstance(s, bool) or not isinstance(s, int) for s in getattr(self, attr)):
                raise TypeError(f"{attr} must be ints, got {getattr(self, attr)!r}")
        if any(float(i) < 1 for i in self.imbalances):
            raise ValueError(f"imbalances must be >= 1, got {self.imbalances!r}")
        for pair in self.losses + self.reference_losses:
            if not (isinstance(pair, tuple) and len(pair) == 2 and pair[0] in _LOSS_NAMES):
                raise ValueError(f"losses must be (loss, gamma) pairs with loss in {sorted(_LOSS_NAMES)}, "
                                 f"got {pair!r}")
        if self.lt_profile not in ("exp", "step"):
            raise ValueError(f"lt_profile must be 'exp' or 'step', got {self.lt_profile!r}")

    @property
    def description(self) -> str:
        """One line for the page, built from the fields (so overrides such as ``epochs=1`` show up in it).

        Example:
            >>> get_profile("cpu", epochs=1, seeds=2).description
            'fashion-mnist-lt (exp profile, imbalance 100), small-cnn, 1 epoch, 2 seeds'
        """
        imbalances = "/".join(f"{float(i):g}" for i in self.imbalances)
        text = (f"{' and '.join(self.datasets)} ({self.lt_profile} profile, imbalance {imbalances}), {self.model}, "
                f"{self.epochs} epoch{'s' * (self.epochs != 1)}, {len(self.seeds)} seed{'s' * (len(self.seeds) != 1)}")
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
        return dict(profile=self.name, profile_description=self.description, model=self.model,
                    epochs=self.epochs, seeds=", ".join(map(str, self.seeds)), n_seeds=len(self.seeds),
                    n_runs=self.num_runs, n_reference_runs=len(self.reference_losses) * len(self.reference_seeds),
                    reference_seeds=", ".join(map(str, self.reference_seeds)), eval_every=self.eval_every)

    def load_data(self, seed: int = 0):
        """The main long-tailed dataset of this profile (:func:`focal.data.load_data`), subset ``seed``."""
        from focal.data import load_data

        return load_data(self.dataset, self.data_root, imbalance=self.imbalance, profile=self.lt_profile,
                         seed=seed, verify=self.verify)

    def load_reference_data(self, seed: int = 0):
        """The balanced reference's training set (:func:`reference_n_max` images per class), subset ``seed``."""
        from focal.data import load_data

        return load_data(self.dataset, self.data_root, imbalance=1.0, profile=self.lt_profile, seed=seed,
                         verify=self.verify, n_max=reference_n_max(self))

    @property
    def num_runs(self) -> int:
        """Number of training runs of chapter 4 (datasets x imbalances x losses x seeds)."""
        return len(self.datasets) * len(self.imbalances) * len(self.losses) * len(self.seeds)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        datasets=("synthetic-lt",), imbalances=(100.0,), model="small-cnn", epochs=1, seeds=(0, 1),
        reference_seeds=(0, 1), note="a CI smoke test: its numbers only show that the pipeline runs",
    ),
    "cpu": Profile(
        name="cpu",
        datasets=("fashion-mnist-lt",), imbalances=(100.0,), model="small-cnn", epochs=12,
        seeds=(0, 1, 2, 3, 4), eval_every=4, losses=tuple(s for s in LOSS_SETTINGS if s != ("focal", 3.0)),
    ),
    "gpu": Profile(
        name="gpu",
        datasets=("cifar10-lt", "cifar100-lt"), imbalances=(100.0, 50.0, 10.0), model="resnet32", epochs=200,
        seeds=(0, 1, 2), note="the training recipe of Cao et al. (2019)",
    ),
}


def cifar_present(root: str | os.PathLike | None = None) -> bool:
    """True when both CIFAR-10 and CIFAR-100 (python versions) are unpacked under ``root``.

    Args:
        root: data root; None uses :func:`focal.data.default_data_root`.

    Example:
        >>> cifar_present("/nonexistent")
        False
    """
    from focal.data import default_data_root

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
        **overrides: fields of :class:`Profile` to replace (None values are skipped).

    Returns:
        The (possibly modified) frozen :class:`Profile`.

    Example:
        >>> get_profile("cpu", epochs=2, seeds=None).epochs
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
    valid = {f.name for f in dataclasses.fields(Profile)}
    unknown = set(overrides) - valid
    if unknown:
        raise TypeError(f"unknown Profile field(s) {sorted(unknown)}; valid fields: {sorted(valid)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "seeds" in changes and isinstance(changes["seeds"], int):
        changes["seeds"] = tuple(range(changes["seeds"]))  # SEEDS=3 means seeds 0, 1, 2
    return dataclasses.replace(profile, **changes) if changes else profile


def configs(profile: Profile | str | None = None, *, dataset: str | None = None,
            imbalance: float | None = None) -> list:
    """The training runs of chapter 4 (chapter 5 reuses them): one :class:`focal.train.Config` per
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
    from focal.train import Config

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
            n_max: int | None = None):
    from focal.train import Config

    kwargs = dict(dataset=dataset, imbalance=imbalance, profile=profile.lt_profile, model=profile.model, loss=loss,
                  epochs=profile.epochs, batch_size=profile.batch_size, lr=profile.lr, beta=profile.beta,
                  eval_every=profile.eval_every, seed=seed, device=profile.device, data_root=profile.data_root,
                  verify=profile.verify, n_max=n_max)
    if gamma is not None:
        kwargs["gamma"] = float(gamma)
    return Config(**kwargs)


def reference_n_max(profile: Profile | str | None = None) -> int:
    """Images per class of the balanced reference: the main long-tailed set's total divided by the number of
    classes (rounded down), so that the reference trains on as many images as the long-tailed runs.

    Example:
        >>> reference_n_max("cpu")  # Fashion-MNIST-LT at imbalance 100 has 14,886 images
        1488
    """
    from focal.data import BALANCED_SIZES, longtail_counts

    profile = get_profile(profile)
    per_class, num_classes = BALANCED_SIZES[profile.image_dataset]
    return sum(longtail_counts(per_class, num_classes, profile.imbalance, profile.lt_profile)) // num_classes


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


def hardware_string(device: str | None = None) -> str:
    """One line naming the hardware and torch version, for the book's pages.

    The same text that :func:`focal.train.train` stores with every run (:func:`focal.train.hardware`), so a
    chapter that trains nothing reads like one that does.

    Args:
        device: ``"cuda"`` or ``"cpu"``; None picks CUDA when available.

    Returns:
        e.g. ``"CPU: AMD EPYC (2 threads), torch 2.14.1"`` or ``"NVIDIA H200, torch 2.14.1"``.

    Example:
        >>> "torch" in hardware_string("cpu")
        True
    """
    from focal.train import hardware

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available")
    return hardware(device)
