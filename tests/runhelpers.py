"""Helpers shared by the engine's tests: a tiny run config, a counter of trained epochs, LDAM-DRW's subset."""
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
    """Wraps focal.engine.train._train_epoch to count the epochs actually trained."""

    def __init__(self, monkeypatch):
        self.calls, self._orig = 0, ft._train_epoch
        monkeypatch.setattr(ft, "_train_epoch", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._orig(*args, **kwargs)


def numbers(run: dict) -> dict:
    """Everything in metrics.json that must not depend on interruptions (no timings or paths)."""
    history = [{k: v for k, v in row.items() if k != "time_s"} for row in run["history"]]
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
