"""Training throughput of focal's on-device pipeline against torchvision's DataLoader + PIL transforms.

Compare mode (default): on the same images and the same model, time training steps fed by
(a) ``focal.data.DeviceLoader`` (uint8 images kept on the device, crop + flip on whole batches) and
(b) a torchvision ``DataLoader`` over PIL images with ``RandomCrop(size, padding=4)``, ``RandomHorizontalFlip``,
``ToTensor``, ``Normalize`` (as the LDAM-DRW code does), with 0 and 2 worker processes. Repeats are interleaved
(a, b0, b2, a, b0, b2, ...) so load changes on a shared machine hit every pipeline alike; the table shows medians:
images/s, ``speed-up`` (how many times faster focal's pipeline is than that row's), the time spent waiting for
the batch (``data ms``), the whole step (``step ms``) and their ratio (``data share``).

Epoch mode (``--epochs E``): focal's pipeline only, whole epochs over ``--fake-cifar N`` random CIFAR-shaped
images, reporting images/s and the projected training time of the 200-epoch CIFAR-10-LT recipe (12,406 images).

    python benchmarks/train.py                                   # CPU comparison, small CNN and ResNet-32
    python benchmarks/train.py --models resnet32 --device cuda --amp --channels-last
    python benchmarks/train.py --fake-cifar 50000 --device cuda --amp --channels-last --epochs 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from focal.data import DATASETS, DeviceLoader, load_data
from focal.models import MODELS, build_model
from focal.train import RECIPE_EPOCHS, hardware

CIFAR10_LT_IMAGES = 12406  # CIFAR-10-LT, exponential profile, imbalance 100 (LDAM-DRW)
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


def make_step(model_name: str, channels: int, num_classes: int, device: torch.device, amp: bool, channels_last: bool):
    """One SGD training step of the recipe (lr 0.1, momentum 0.9, wd 2e-4, cross-entropy) as ``step(x, y)``."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(model_name, num_classes, channels).to(device=device, memory_format=fmt).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast:
            logits = model(x.contiguous(memory_format=fmt))
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _endless(loader, device: torch.device):
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
    _sync(device)
    wait, start = 0.0, time.perf_counter()
    for _ in range(steps):
        tic = time.perf_counter()
        x, y = next(batches)
        _sync(device)  # on CUDA the batch must be ready before we stop the data clock
        wait += time.perf_counter() - tic
        step(x, y)
        _sync(device)
    return (time.perf_counter() - start) / steps, wait / steps


def pipelines(images, targets, mean, std, args, device):
    """name -> endless batch iterator, for focal's loader and each DataLoader worker count."""
    size = images.shape[-1]
    out = {"focal DeviceLoader": _endless(DeviceLoader(images, targets, args.batch_size, shuffle=True, augment=True,
                                                       mean=mean, std=std, device=device), device)}
    tf = transforms.Compose([transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(mean, std)])
    for workers in args.workers:
        loader = DataLoader(PILImages(images, targets, tf), args.batch_size, shuffle=True, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        out[f"DataLoader+PIL, {workers} workers"] = _endless(loader, device)
    return out


def compare(args, images, targets, num_classes, mean, std, device) -> None:
    print(f"{len(images)} images {tuple(images.shape[1:])}, batch {args.batch_size}, {args.repeats} interleaved "
          f"repeats, {hardware(device)}, amp={args.amp}, channels_last={args.channels_last}\n")
    header = f"{'model':<10} {'pipeline':<26} {'steps':>5} {'images/s':>9} {'speed-up':>9} {'data ms':>8} " \
             f"{'step ms':>8} {'data share':>10}"
    print(header + "\n" + "-" * len(header))
    for model_name in args.models:
        step = make_step(model_name, images.shape[1], num_classes, device, args.amp, args.channels_last)
        feeds = pipelines(images, targets, mean, std, args, device)
        steps = args.steps or DEFAULT_STEPS[model_name]
        times = {name: [] for name in feeds}
        for _ in tqdm(range(args.repeats), desc=model_name, leave=False):
            for name, batches in feeds.items():
                times[name].append(time_steps(batches, step, device, steps))
        med = {name: (statistics.median(t for t, _ in ts), statistics.median(w / t for t, w in ts),
                      statistics.median(w for _, w in ts)) for name, ts in times.items()}
        ours = med["focal DeviceLoader"][0]
        for name, (per_step, share, wait) in med.items():
            print(f"{model_name:<10} {name:<26} {steps:5d} {args.batch_size / per_step:9.0f} {per_step / ours:8.2f}x "
                  f"{1e3 * wait:8.1f} {1e3 * per_step:8.1f} {100 * share:9.1f}%")


def epochs(args, images, targets, num_classes, mean, std, device) -> None:
    step = make_step(args.models[0], images.shape[1], num_classes, device, args.amp, args.channels_last)
    loader = DeviceLoader(images, targets, args.batch_size, shuffle=True, augment=True, mean=mean, std=std,
                          device=device)
    for x, y in loader:  # warm-up epoch: allocator, cuDNN autotuning
        step(x, y)
        break
    _sync(device)
    rates = []
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        start = time.perf_counter()
        for x, y in tqdm(loader, desc=f"epoch {epoch + 1}", leave=False):
            step(x, y)
        _sync(device)
        rates.append(len(images) / (time.perf_counter() - start))
    rate = statistics.median(rates)
    hours = RECIPE_EPOCHS * CIFAR10_LT_IMAGES / rate / 3600
    print(f"{args.models[0]}, {len(images)} images {tuple(images.shape[1:])}, batch {args.batch_size}, "
          f"{hardware(device)}, amp={args.amp}, channels_last={args.channels_last}")
    print(f"training images/s (median of {args.epochs} epoch(s)): {rate:,.0f}")
    print(f"projected {RECIPE_EPOCHS}-epoch CIFAR-10-LT run ({CIFAR10_LT_IMAGES:,} images/epoch, training only): "
          f"{hours * 60:.1f} min")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["small-cnn", "resnet32"],
                        help="models to time (epoch mode uses the first; default %(default)s)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=DATASETS, help="time on a real dataset's training split instead")
    source.add_argument("--fake-cifar", type=int, default=5000, metavar="N",
                        help="N random 3x32x32 images, 10 classes (default %(default)s)")
    parser.add_argument("--data-root", default=None, help="dataset folder for --dataset")
    parser.add_argument("--batch-size", type=int, default=128, help="default %(default)s")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"timed steps per repeat (default per model: {DEFAULT_STEPS})")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to compare (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=0,
                        help="epoch mode: time this many whole epochs of focal's pipeline (default: compare mode)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "repeats", "fake_cifar", "epochs"):
        if getattr(args, name) is not None and getattr(args, name) < (0 if name == "epochs" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    torch.backends.cudnn.benchmark = True

    if args.dataset:
        data = load_data(args.dataset, args.data_root)
        images, targets, num_classes, mean, std = (data.train_images, data.train_targets, data.num_classes,
                                                   data.mean, data.std)
    else:
        images, targets, num_classes = fake_images(args.fake_cifar)
        mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    start = time.perf_counter()
    (epochs if args.epochs else compare)(args, images, targets, num_classes, mean, std, device)
    print(f"\n(benchmark took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
