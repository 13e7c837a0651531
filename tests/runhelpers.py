"""Helpers shared by the tests: a tiny run config, a counter of trained epochs, LDAM-DRW's subset, value-and-gradient
of a loss, and calibration fixtures."""
import numpy as np
import torch

import focal.engine.train as ft
from focal.engine.config import Config


def tiny(root, **changes) -> Config:
    """A run of a few seconds: 10-class fake CIFAR-LT (24 -> 6 images per class), small CNN, batch 32."""
    base = dict(dataset="cifar10-lt", imbalance=4.0, data_root=str(root), verify=False, model="small-cnn",
                loss="focal", epochs=3, batch_size=32, warmup_epochs=100)  # warm-up scales to 2 of 3 epochs
    return Config(**{**base, **changes})


class EpochCounter:
    """Wraps focal.engine.train.train_epoch to count the epochs actually trained."""

    def __init__(self, monkeypatch):
        self.calls, self._orig = 0, ft.train_epoch
        monkeypatch.setattr(ft, "train_epoch", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._orig(*args, **kwargs)


def numbers(run: dict) -> dict:
    """Everything in metrics.json that must not depend on interruptions (no timings or paths)."""
    history = [{k: v for k, v in row.items() if k not in ("time_s", "ended_at")} for row in run["history"]]
    return {"history": history, "final": run["final"], "best": (run["best_epoch"], run["best_top1_error"])}


def ldam_subset(targets, img_num_per_cls, rand_number):
    """LDAM-DRW's IMBALANCECIFAR10.gen_imbalanced_data, re-done here with numpy's *global* RNG."""
    saved = np.random.get_state()
    try:
        np.random.seed(rand_number)
        targets_np = np.array(targets, dtype=np.int64)
        chosen = []
        for the_class, the_img_num in zip(np.unique(targets_np), img_num_per_cls):
            idx = np.where(targets_np == the_class)[0]
            np.random.shuffle(idx)
            chosen.append(idx[:the_img_num])
        return np.concatenate(chosen)
    finally:
        np.random.set_state(saved)


def value_and_grad(fn, logits, target, **kw):
    x = logits.clone().requires_grad_()
    out = fn(x, target, **kw)
    (out * torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), x.grad


# ------------------------------------------------------------------------------------------ metric fixtures
CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def random_probs(n: int, c: int, seed: int, concentration: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet probabilities and labels drawn from them, i.e. perfectly calibrated data."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(c, concentration), size=n)
    labels = (rng.random((n, 1)) > probs.cumsum(1)).sum(1).clip(max=c - 1)
    return probs, labels


def reference_bins(conf: np.ndarray, hits: np.ndarray, n_bins: int) -> list[tuple[int, float, float]]:
    """Slow, independent (l, u] binning: (count, mean confidence, accuracy) per bin; 0 joins the first bin."""
    out = []
    for b in range(n_bins):
        lower, upper = b / n_bins, (b + 1) / n_bins
        inside = (conf > lower) & (conf <= upper) | ((conf == 0) & (b == 0))
        out.append((int(inside.sum()), conf[inside].mean() if inside.any() else 0.0,
                    hits[inside].mean() if inside.any() else 0.0))
    return out


def as_input(x: np.ndarray, kind: str):
    return {"numpy": x, "torch": torch.as_tensor(x), "float32": torch.as_tensor(x).float()}[kind]
