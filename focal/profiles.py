"""Book profiles: one parameter that sizes every chapter, same code path for all.

The book's chapters run at one of three profiles:

* ``smoke`` -- continuous integration: the synthetic long-tailed set, a small CNN, 1 epoch, 2 seeds; every
  chapter in well under two minutes on two CPU cores. Its numbers only show that the pipeline runs.
* ``cpu`` -- the default without a GPU: Fashion-MNIST-LT (exponential profile, imbalance 100), the small CNN,
  3 seeds, 20 epochs (test set evaluated every 2). Measured on two AMD EPYC cores: one run takes about 75 s
  (about 3.0 s per training epoch of 14,886 images plus 1.3 s per evaluation of the 10,000 test images), so the
  18 runs take about 23 minutes and the whole book well under 40. Imbalance 10 would add about 33 minutes
  (``get_profile("cpu", imbalances=(100, 10))``).
* ``gpu`` -- the default with CUDA and CIFAR present: CIFAR-10-LT and CIFAR-100-LT at imbalance 100/50/10,
  ResNet-32, the 200-epoch recipe of Cao et al. (2019), 3 seeds.

Every profile trains the same six loss settings: cross-entropy, softmax focal loss with
:math:`\\gamma \\in \\{0.5, 1, 2\\}`, FLSD-53 (Mukhoti et al. 2020: :math:`\\gamma = 5` where
:math:`p_t < 0.2`, else 3) and class-balanced focal loss. For class-balanced focal we use :math:`\\gamma = 1`
(the γ Cao et al. 2019 use for their focal rows) with :math:`\\beta = 0.9999`; Cui et al. (2019) tuned β and γ per
column, so their "class-balanced (best)" row is not one fixed setting.
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
    "hardware_string",
    "cifar_present",
]

#: The six (loss, γ) settings every profile trains. γ is None where the loss fixes it (CE, FLSD-53).
LOSS_SETTINGS: tuple[tuple[str, float | None], ...] = (
    ("ce", None),
    ("focal", 0.5),
    ("focal", 1.0),
    ("focal", 2.0),
    ("focal-flsd53", None),
    ("cb-focal", 1.0),
)

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


#: Labels of :data:`LOSS_SETTINGS`, in the order every table and legend of the book uses.
LOSS_LABELS: tuple[str, ...] = tuple(loss_label(loss, gamma) for loss, gamma in LOSS_SETTINGS)


@dataclass(frozen=True)
class Profile:
    """Everything that sizes the book's experiments.

    Example:
        >>> p = get_profile("smoke")
        >>> p.name, p.datasets, p.epochs, len(p.losses) * len(p.seeds)
        ('smoke', ('synthetic-lt',), 1, 12)
    """

    name: str  # "smoke", "cpu" or "gpu" (or a custom name)
    datasets: tuple[str, ...]  # long-tailed datasets of chapters 4-5 (names of focal.data.DATASETS)
    imbalances: tuple[float, ...]  # imbalance ratios rho = n_max / n_min; the first is the main one
    model: str  # a name of focal.models.MODELS
    epochs: int  # training epochs per run
    seeds: tuple[int, ...]  # one run per seed; mean +- std over these
    losses: tuple[tuple[str, float | None], ...] = LOSS_SETTINGS  # (loss, gamma) pairs
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
        for attr in ("datasets", "imbalances", "seeds", "losses"):
            value = getattr(self, attr)
            if isinstance(value, (str, bytes)) or len(tuple(value)) == 0:
                raise ValueError(f"{attr} must be a non-empty sequence, got {value!r}")
            object.__setattr__(self, attr, tuple(value))
        for attr in ("epochs", "eval_every", "batch_size"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{attr} must be a positive int, got {value!r}")
        if any(not isinstance(s, int) for s in self.seeds):
            raise TypeError(f"seeds must be ints, got {self.seeds!r}")
        if any(float(i) < 1 for i in self.imbalances):
            raise ValueError(f"imbalances must be >= 1, got {self.imbalances!r}")
        for pair in self.losses:
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
                    epochs=self.epochs, seeds=", ".join(map(str, self.seeds)), n_runs=self.num_runs,
                    eval_every=self.eval_every)

    def load_data(self, seed: int = 0):
        """The main long-tailed dataset of this profile (:func:`focal.data.load_data`), subset ``seed``."""
        from focal.data import load_data

        return load_data(self.dataset, self.data_root, imbalance=self.imbalance, profile=self.lt_profile,
                         seed=seed, verify=self.verify)

    @property
    def num_runs(self) -> int:
        """Number of training runs of chapter 4 (datasets x imbalances x losses x seeds)."""
        return len(self.datasets) * len(self.imbalances) * len(self.losses) * len(self.seeds)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        datasets=("synthetic-lt",), imbalances=(100.0,), model="small-cnn", epochs=1, seeds=(0, 1),
        note="a CI smoke test: its numbers only show that the pipeline runs",
    ),
    "cpu": Profile(
        name="cpu",
        datasets=("fashion-mnist-lt",), imbalances=(100.0,), model="small-cnn", epochs=20, seeds=(0, 1, 2),
        eval_every=2,
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
        (12, 'ce', 1, 'cb-focal', 1)
    """
    from focal.train import Config

    profile = get_profile(profile)
    datasets = profile.datasets if dataset is None else (dataset,)
    imbalances = profile.imbalances if imbalance is None else (float(imbalance),)
    if dataset is not None and dataset not in profile.datasets:
        raise ValueError(f"dataset {dataset!r} is not in profile {profile.name!r}: {profile.datasets}")
    if imbalance is not None and float(imbalance) not in {float(i) for i in profile.imbalances}:
        raise ValueError(f"imbalance {imbalance!r} is not in profile {profile.name!r}: {profile.imbalances}")
    out = []
    for ds in datasets:
        for imb in imbalances:
            for loss, gamma in profile.losses:
                for seed in profile.seeds:
                    kwargs = dict(dataset=ds, imbalance=float(imb), profile=profile.lt_profile,
                                  model=profile.model, loss=loss, epochs=profile.epochs,
                                  batch_size=profile.batch_size, lr=profile.lr, beta=profile.beta,
                                  eval_every=profile.eval_every,
                                  seed=seed, device=profile.device, data_root=profile.data_root,
                                  verify=profile.verify)
                    if gamma is not None:
                        kwargs["gamma"] = float(gamma)
                    out.append(Config(**kwargs))
    return out


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
