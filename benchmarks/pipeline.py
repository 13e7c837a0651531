"""Shared parts of the training benchmarks (benchmarks/train.py, benchmarks/train_speedups.py): fake images, a
torchvision PIL dataset, one training step of a model, and timers that synchronise the device."""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from focal.engine.models import build_model

CIFAR10_LT_IMAGES = 12406  # CIFAR-10-LT, exponential long tail, imbalance 100 (LDAM-DRW)
DEFAULT_STEPS = {"small-cnn": 10, "resnet20": 4, "resnet32": 3}  # timed steps per repeat: ~2 min in all on 2 cores


class PILImages(Dataset):
    """Images stored as torchvision's CIFAR10 stores them (uint8 HWC numpy), turned into PIL per item."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform) -> None:
        self.data = images.permute(0, 2, 3, 1).numpy()
        if self.data.shape[-1] == 1:
            self.data = self.data[..., 0]  # (N, H, W) -> mode "L"
        self.targets = targets.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def fake_images(n: int, channels: int = 3, size: int = 32, num_classes: int = 10, seed: int = 0):
    """``n`` random uint8 images (N, C, H, W) and labels: throughput does not depend on the pixels."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen)
    return images, torch.randint(0, num_classes, (n,), generator=gen), num_classes


def build_step(model_name: str, channels: int, num_classes: int, device: torch.device, amp: bool,
               channels_last: bool, compile: bool = False):
    """(model, step): one SGD training step of the recipe (lr 0.1, momentum 0.9, wd 2e-4, cross-entropy) as
    ``step(x, y)``; with ``compile`` the forward goes through ``torch.compile(model)`` (default mode), and the
    backward through the graph AOTAutograd compiled with it."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(model_name, num_classes, channels).to(device=device, memory_format=fmt).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()
    forward = torch.compile(model) if compile else model

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast:
            logits = forward(x.contiguous(memory_format=fmt))
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return model, step


def make_step(model_name: str, channels: int, num_classes: int, device: torch.device, amp: bool, channels_last: bool):
    """One SGD training step of the recipe (lr 0.1, momentum 0.9, wd 2e-4, cross-entropy) as ``step(x, y)``."""
    return build_step(model_name, channels, num_classes, device, amp, channels_last)[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def endless(loader, device: torch.device):
    """Batches on ``device`` forever (a new epoch whenever one ends)."""
    epoch = 0
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        epoch += 1


def time_steps(batches, step, device: torch.device, steps: int, warmup: int = 1) -> tuple[float, float]:
    """(seconds per step, seconds per step spent waiting for the batch) over ``steps`` steps after a warm-up."""
    for _ in range(warmup):
        step(*next(batches))
    sync(device)
    wait, start = 0.0, time.perf_counter()
    for _ in range(steps):
        tic = time.perf_counter()
        x, y = next(batches)
        sync(device)  # on CUDA the batch must be ready before we stop the data clock
        wait += time.perf_counter() - tic
        step(x, y)
        sync(device)
    return (time.perf_counter() - start) / steps, wait / steps
