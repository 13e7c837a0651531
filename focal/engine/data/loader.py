"""On-device batching: uint8 images kept on the training device, augmented there in whole batches.

A :class:`DeviceLoader` normalises :math:`x = (u/255 - \\mu)/\\sigma` and applies the random crop +
horizontal flip of the CIFAR recipe as one gather per batch; its order and augmentation depend only on
``(seed, epoch)``, so they are the same on any device and for any batch size or number of processes.
Re-exported by :mod:`focal.engine.data`.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from focal.engine.checks import check_int

__all__ = ["DeviceLoader"]


class DeviceLoader:
    """Batches of normalised images from uint8 tensors kept on ``device``, augmented there.

    Each epoch draws, from a CPU ``torch.Generator`` seeded by ``(seed, epoch)``, the order
    (``shuffle``) and per-image crop offsets and flips (``augment``), so batches are identical on any
    device and for any ``batch_size``/``world_size`` split. Augmentation = zero-pad by ``pad``
    pixels, random ``H x W`` crop, horizontal flip with probability 1/2 (torchvision's
    ``RandomCrop(padding=pad)`` + ``RandomHorizontalFlip``), done as one gather on the whole batch.
    Output: :math:`x = (u/255 - \\mu)/\\sigma` as float32 ``(B, C, H, W)`` and int64 labels.

    With ``world_size > 1`` the epoch's order is cut to a multiple of ``world_size`` (the last
    ``N mod world_size`` images of that order are skipped) and rank ``r`` takes every
    ``world_size``-th image from position ``r``: disjoint, equal shards, as ``DistributedSampler``
    with ``drop_last=True``. Call :meth:`set_epoch` before each epoch; otherwise every pass repeats
    epoch 0.

    Args:
        images: uint8 ``(N, C, H, W)``.
        targets: integer labels ``(N,)``.
        batch_size: images per batch.
        shuffle: new random order each epoch.
        augment: random crop + flip.
        mean: per-channel mean (0..1 scale).
        std: per-channel std (0..1 scale).
        device: where images live and batches are made.
        seed: base seed.
        drop_last: drop this rank's last incomplete batch.
        pad: zero padding of the random crop, in pixels.
        rank: this process's rank.
        world_size: number of processes.

    Example:
        >>> images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
        >>> loader = DeviceLoader(images, torch.arange(10), 4, shuffle=True, augment=True, mean=(0.5,), std=(0.25,))
        >>> len(loader), [tuple(x.shape) for x, y in loader]
        (3, [(4, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)])
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 128, *,
                 shuffle: bool = False, augment: bool = False, mean: Sequence[float], std: Sequence[float],
                 device="cpu", seed: int = 0, drop_last: bool = False, pad: int = 4, rank: int = 0,
                 world_size: int = 1) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise TypeError(f"images must be a uint8 tensor of shape (N, C, H, W), got "
                            f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}")
        targets = torch.as_tensor(targets)
        if targets.shape != images.shape[:1] or targets.dtype.is_floating_point:
            raise ValueError(f"targets must be integer labels of shape ({len(images)},), "
                             f"got {targets.dtype} {tuple(targets.shape)}")
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.seed, self.pad = check_int("seed", seed, 0), check_int("pad", pad, 0)
        self.world_size = check_int("world_size", world_size, 1)
        self.rank = check_int("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size = {world_size}, got {rank}")
        self.num_samples = len(images) // self.world_size  # per rank
        if self.num_samples == 0:
            raise ValueError(f"need at least world_size = {world_size} images, got {len(images)}")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels or min(std) <= 0:
            raise ValueError(f"mean and std must hold {channels} values (std > 0), got mean={mean}, std={std}")
        self.shuffle, self.augment, self.drop_last = bool(shuffle), bool(augment), bool(drop_last)
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.targets = targets.to(self.device, torch.int64)
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1) / std_t
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration draws."""
        self.epoch = check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def _generator(self) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2, np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def _crop_flip(self, x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.pad
        padded = F.pad(x, (p, p, p, p)).view(n, c, -1)
        cols = torch.arange(w, device=x.device)
        cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # flip after crop
        rows = torch.arange(h, device=x.device) + dy[:, None]
        flat = (rows[:, :, None] * (w + 2 * p) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
        return padded.gather(2, flat).view(n, c, h, w)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.targets)
        gen = self._generator()
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        order = order[: self.num_samples * self.world_size][self.rank:: self.world_size].to(self.device)
        if self.augment:  # drawn per image id, so independent of batch_size and world_size
            dy, dx = torch.randint(0, 2 * self.pad + 1, (2, n), generator=gen).to(self.device)
            flip = (torch.rand(n, generator=gen) < 0.5).to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size: (i + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                x = self._crop_flip(x, dy[idx], dx[idx], flip[idx])
            yield x.float().mul_(self._scale).sub_(self._shift), self.targets[idx]
