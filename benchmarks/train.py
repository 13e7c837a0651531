"""Training throughput of focal's on-device pipeline against torchvision's DataLoader + PIL transforms.

Compare mode (default): on the same images and the same model, time training steps fed by
(a) ``focal.engine.data.DeviceLoader`` (uint8 images kept on the device, crop + flip on whole batches) and
(b) a torchvision ``DataLoader`` over PIL images with ``RandomCrop(size, padding=4)``, ``RandomHorizontalFlip``,
``ToTensor``, ``Normalize`` (as the LDAM-DRW code does), with 0 and 2 worker processes. Repeats are interleaved
(a, b0, b2, a, b0, b2, ...) so load changes on a shared machine hit every pipeline alike; the table shows medians:
images/s, ``speed-up`` (how many times faster focal's pipeline is than that row's), the time spent waiting for
the batch (``data ms``), the whole step (``step ms``) and their ratio (``data share``).

Epoch mode (``--epochs E``): focal's pipeline only, whole epochs over ``--fake-cifar N`` random CIFAR-shaped
images, reporting images/s and the projected training time of the 200-epoch CIFAR-10-LT recipe (12,406 images).

Speed-ups mode (``--speedups``): what each candidate speed-up of the book's ``cpu`` profile buys on the machine at
hand, every one against a baseline timed in the same run (interleaved repeats, medians). The first model (the small
CNN by default) trains on Fashion-MNIST-LT at imbalance 100 (14,886 training, 10,000 test images; random images of
those sizes when the files are missing), the others on ``--fake-cifar N`` random CIFAR-shaped images.

(a) memory format of the training step: contiguous (baseline) against channels_last, every model;
(b) evaluation of the whole test set, first model: batch 512 (baseline) / 1024 / 2048 x ``torch.no_grad``
    (baseline) / ``torch.inference_mode`` x both memory formats; then the projected share of a run of the ``cpu``
    profile (its epoch count) spent evaluating when it evaluates every 1, 2 or 5 epochs;
(c) ``torch.compile`` (default mode) of the first model's training step: compile time with a cold inductor cache,
    and the steady-state step time;
(d) on the CPU, parallel runs: one process with a thread per core (baseline) against one single-threaded process
    per core training at the same time (aggregate images/s), the way ``python -m focal.book build`` trains.

The table gives images/s, ms per step (per batch for evaluation) and the speed-up (baseline time / this time,
same run). A training step's time is the median over every timed step of every repeat, an evaluation pass the sum
over its batches of each batch's median over the repeats, so that a short burst of load from another process on a
shared machine moves the numbers less than it would move a mean. ``--json PATH`` writes the rows; ``--quick`` runs
everything at toy sizes (the test suite uses it).

    python benchmarks/train.py                                   # CPU comparison, small CNN and ResNet-32
    python benchmarks/train.py --models resnet32 --device cuda --amp --channels-last
    python benchmarks/train.py --fake-cifar 50000 --device cuda --amp --channels-last --epochs 1
    python benchmarks/train.py --speedups --json benchmarks/results/train-cpu-2core.json   # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from focal.engine.data import DATASETS, DeviceLoader, load_data
from focal.engine.models import MODELS, build_model
from focal.book.profiles import get_profile
from focal.engine.config import RECIPE_EPOCHS
from focal.engine.system import hardware

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


# ---------------------------------------------------------------------------------------------- speed-ups mode

SPEEDUP_STEPS = {"small-cnn": 20, "resnet20": 6, "resnet32": 4}  # steps per repeat: ~3 min in all on 2 idle cores
EVAL_BATCHES = (512, 1024, 2048)
EVAL_EVERY = (1, 2, 5)
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
GRAD_MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


@dataclass
class Workload:
    """What one model is timed on: training images, test images (None: no evaluation), their normalisation."""

    label: str
    train_images: torch.Tensor
    train_targets: torch.Tensor
    test_images: torch.Tensor | None
    test_targets: torch.Tensor | None
    num_classes: int
    mean: tuple
    std: tuple


def speedup_workload(model_name: str, first: bool, args) -> Workload:
    """The small CNN gets the book's ``cpu`` data (Fashion-MNIST-LT, imbalance 100: 14,886 training and 10,000 test
    images; random images of those sizes when the files are missing, or under ``--quick``); the ResNets get
    ``--fake-cifar N`` random CIFAR-shaped images. ``--dataset`` replaces both. Only the first model is evaluated."""
    if args.dataset or (model_name == "small-cnn" and not args.quick):
        name = args.dataset or "fashion-mnist-lt"
        try:
            data = load_data(name, args.data_root) if args.dataset else load_data(name, args.data_root, imbalance=100)
            label = f"{name} ({len(data.train_images):,} train, {len(data.test_images):,} test images)"
            return Workload(label, data.train_images, data.train_targets, data.test_images if first else None,
                            data.test_targets if first else None, data.num_classes, data.mean, data.std)
        except (OSError, RuntimeError, ValueError) as err:
            if args.dataset:
                raise
            print(f"(Fashion-MNIST-LT not loadable: {err}; timing random images of its sizes instead)")
    if model_name == "small-cnn":
        n_train, n_test = (256, 600) if args.quick else (14886, 10000)
        images, targets, num_classes = fake_images(n_train, channels=1, size=28)
        test, test_targets, _ = fake_images(n_test, channels=1, size=28, seed=1)
        return Workload(f"random 1x28x28 images ({n_train:,} train, {n_test:,} test)", images, targets,
                        test if first else None, test_targets if first else None, num_classes, (0.2860,), (0.3530,))
    n_train, n_test = (256, 600) if args.quick else (args.fake_cifar, 10000)
    images, targets, num_classes = fake_images(n_train)
    test, test_targets, _ = fake_images(n_test, seed=1) if first else (None, None, None)
    return Workload(f"random 3x32x32 images ({n_train:,} train)", images, targets, test, test_targets, num_classes,
                    (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))


def step_times(batches, step, device: torch.device, steps: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``steps`` training steps (fetching the batch included) after ``warmup`` untimed ones.

    Speed-ups mode takes the median over every step of every repeat: a burst of load from another process slows a
    run of consecutive steps, and the median over steps sets those aside where a mean per repeat would not."""
    for _ in range(warmup):
        step(*next(batches))
    _sync(device)
    out = []
    for _ in range(steps):
        tic = time.perf_counter()
        step(*next(batches))
        _sync(device)
        out.append(time.perf_counter() - tic)
    return out


def _timed_call(fn, device: torch.device) -> float:
    _sync(device)
    tic = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - tic


def train_rows(model_name: str, work: Workload, args, device: torch.device, compile_it: bool) -> list[dict]:
    """Training step: contiguous (baseline) vs channels_last, and torch.compile (contiguous) when asked.

    Every variant has its own model (same initial weights) and its own copy of the same batch stream; repeats
    are interleaved. The loaders drop the last incomplete batch so that every timed step has the same shape (a
    compiled model would otherwise compile again for the smaller batch)."""
    channels, batch = work.train_images.shape[1], args.batch_size
    variants = {"contiguous (baseline)": ("contiguous", False), "channels_last": ("channels_last", False)}
    if compile_it:
        variants["torch.compile, contiguous"] = ("contiguous", True)
    steps = args.steps or SPEEDUP_STEPS.get(model_name, 5)
    feeds, compile_s = {}, {}
    for name, (fmt, compiled) in variants.items():
        _, step = build_step(model_name, channels, work.num_classes, device, args.amp, fmt == "channels_last",
                             compile=compiled)
        loader = DeviceLoader(work.train_images, work.train_targets, batch, shuffle=True, augment=True,
                              drop_last=True, mean=work.mean, std=work.std, device=device)
        batches = _endless(loader, device)
        if compiled:  # the first call traces and compiles forward and backward: time it alone
            first = _timed_call(lambda: step(*next(batches)), device)  # cold: an empty inductor cache
            again = build_step(model_name, channels, work.num_classes, device, args.amp, fmt == "channels_last",
                               compile=True)[1]  # a second model in the same process (a next run)
            same_process = _timed_call(lambda: again(*next(batches)), device)
            torch._dynamo.reset()  # forget the compiled code, keep the caches on disk: as a new process would
            again = build_step(model_name, channels, work.num_classes, device, args.amp, fmt == "channels_last",
                               compile=True)[1]
            warm = _timed_call(lambda: again(*next(batches)), device)
            compile_s[name] = (first, warm, same_process)
        feeds[name] = (step, batches)
    times = {name: [] for name in variants}  # name -> one list of step times per repeat
    for _ in tqdm(range(args.repeats), desc=f"{model_name} training step", leave=False):
        for name, (step, batches) in feeds.items():
            times[name].append(step_times(batches, step, device, steps))
    medians = {name: statistics.median(t for rep in ts for t in rep) for name, ts in times.items()}
    base = medians["contiguous (baseline)"]
    steps_per_epoch = math.ceil(len(work.train_images) / batch)
    rows = []
    for name, ts in times.items():
        med = medians[name]
        row = {"section": "train", "model": model_name, "data": work.label, "variant": name, "batch": batch,
               "steps": steps, "repeats": args.repeats, "images_per_s": batch / med, "ms_per_step": 1e3 * med,
               "speedup": base / med, "epoch_s": steps_per_epoch * med,
               "repeat_median_s": [statistics.median(rep) for rep in ts],
               "repeat_mean_s": [statistics.fmean(rep) for rep in ts]}
        if name in compile_s:  # the first step's wall time less a steady step
            first, warm, same_process = compile_s[name]
            row["compile_s"] = max(first - med, 1e-6)
            row["compile_warm_cache_s"] = max(warm - med, 1e-6)
            row["same_process_first_step_s"] = same_process
        rows.append(row)
    return rows


def eval_rows(model_name: str, work: Workload, args, device: torch.device) -> list[dict]:
    """Time one evaluation of the whole test set as focal.engine.train does it (normalise on the device, forward, float32
    logits gathered on the CPU) for every memory format x batch size x grad mode; baseline: contiguous (PyTorch's
    default), batch 512 under ``torch.no_grad`` (focal.engine.train's evaluation batch and grad mode)."""
    channels, n_test = work.test_images.shape[1], len(work.test_images)
    models = {}
    for fmt_name, fmt in FORMATS.items():
        torch.manual_seed(0)
        models[fmt_name] = build_model(model_name, work.num_classes, channels).to(device=device,
                                                                                memory_format=fmt).eval()
    loaders = {b: DeviceLoader(work.test_images, work.test_targets, b, mean=work.mean, std=work.std, device=device)
               for b in EVAL_BATCHES}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp else nullcontext()

    def evaluate(fmt_name: str, batch: int, grad: str, only: tuple[int, ...] | None = None) -> list[float]:
        """Seconds of each batch (its normalisation and forward), then of gathering the logits."""
        model, fmt, loader = models[fmt_name], FORMATS[fmt_name], loaders[batch]
        outputs, times = [], []
        _sync(device)
        tic = time.perf_counter()
        with GRAD_MODES[grad](), autocast:
            for i, (x, _) in enumerate(loader):
                if only is None or i in only:
                    outputs.append(model(x.contiguous(memory_format=fmt)).float())
                _sync(device)
                now = time.perf_counter()
                times.append(now - tic)
                tic = now
        torch.cat(outputs).cpu()
        times.append(time.perf_counter() - tic)
        return times

    configs = [(f, b, g) for f in FORMATS for b in EVAL_BATCHES for g in GRAD_MODES]
    for f, b, g in configs:  # warm-up: the first and the last (smaller) batch shape of every configuration
        evaluate(f, b, g, only=(0, len(loaders[b]) - 1))
    times = {c: [] for c in configs}  # config -> one list of per-batch times per repeat
    for _ in tqdm(range(args.eval_repeats), desc=f"{model_name} evaluation", leave=False):
        for c in configs:
            times[c].append(evaluate(*c))
    # a pass = the sum over batches of each batch's median over the repeats (robust to a burst of load)
    passes = {c: sum(statistics.median(col) for col in zip(*ts)) for c, ts in times.items()}
    base = passes[("contiguous", 512, "no_grad")]
    rows = []
    for (f, b, g), ts in times.items():
        med = passes[(f, b, g)]
        baseline = " (baseline)" if (f, b, g) == ("contiguous", 512, "no_grad") else ""
        rows.append({"section": "eval", "model": model_name, "data": work.label, "variant": f"{f}, {g}{baseline}",
                     "memory_format": f, "grad_mode": g, "batch": b, "repeats": args.eval_repeats,
                     "images_per_s": n_test / med, "ms_per_step": 1e3 * med / len(loaders[b]), "pass_s": med,
                     "speedup": base / med, "repeat_pass_s": [sum(rep) for rep in ts]})
    return rows


def share_rows(model_name: str, work: Workload, train: list[dict], evals: list[dict]) -> list[dict]:
    """Projected wall time of one run of the book's ``cpu`` profile (its epochs; an evaluation every k epochs and
    after the last) from the medians above: with the baselines (contiguous training step; contiguous evaluation
    at batch 512 under no_grad) and with the fastest eager training format and evaluation setting measured here.
    The reference (speed-up 1) is the baseline setup at the profile's own evaluation interval."""
    profile = get_profile("cpu")
    epochs, n_train, n_test = profile.base.epochs, len(work.train_images), len(work.test_images)
    setups = {
        "baseline": (next(r for r in train if r["variant"] == "contiguous (baseline)"),
                     next(r for r in evals if r["variant"].endswith("(baseline)"))),
        "fastest": (min((r for r in train if "compile" not in r["variant"]), key=lambda r: r["epoch_s"]),
                    min(evals, key=lambda r: r["pass_s"])),
    }
    everies = sorted(set(EVAL_EVERY) | {profile.base.eval_every})
    n_evals = {k: sum(1 for e in range(1, epochs + 1) if e % k == 0 or e == epochs) for k in everies}
    run_s = {(s, k): epochs * tr["epoch_s"] + n_evals[k] * ev["pass_s"] for s, (tr, ev) in setups.items()
             for k in everies}
    base = run_s[("baseline", profile.base.eval_every)]
    rows = []
    for (setup, k), total in run_s.items():
        tr, ev = setups[setup]
        rows.append({"section": "eval-share", "model": model_name, "data": work.label,
                     "variant": f"{setup}: train {tr['variant'].removesuffix(' (baseline)')}, eval "
                                f"{ev['memory_format']} {ev['grad_mode']} batch {ev['batch']}",
                     "setup": setup, "epochs": epochs, "eval_every": k, "evaluations": n_evals[k],
                     "epoch_s": tr["epoch_s"], "pass_s": ev["pass_s"], "run_s": total,
                     "eval_share": n_evals[k] * ev["pass_s"] / total,
                     "images_per_s": (epochs * n_train + n_evals[k] * n_test) / total, "speedup": base / total,
                     "baseline": k == profile.base.eval_every and setup == "baseline"})
    return rows


def _worker_images_per_s(threads: int, model_name: str, images, targets, num_classes: int, mean, std,
                         batch: int, steps: int) -> float:
    """Images/s of ``steps`` channels_last training steps in this process with ``threads`` threads (a pool task)."""
    torch.set_num_threads(threads)
    _, step = build_step(model_name, images.shape[1], num_classes, torch.device("cpu"), False, True)
    loader = DeviceLoader(images, targets, batch, shuffle=True, augment=True, seed=0, mean=mean, std=std,
                          device="cpu", drop_last=True)
    times = step_times(_endless(loader, torch.device("cpu")), step, torch.device("cpu"), steps, warmup=3)
    return batch / statistics.median(times)


def worker_rows(model_name: str, work: Workload, args) -> list[dict]:
    """Parallel runs on the CPU: one process with every core's thread (baseline) against one single-threaded process
    per core, all training at once (what ``python -m focal.book build`` does), interleaved repeats, aggregate
    images/s (the sum over processes). Returns no rows on a one-core machine."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cores = os.cpu_count() or 1
    if cores < 2:
        return []
    steps = args.steps or SPEEDUP_STEPS.get(model_name, 5)
    job = (model_name, work.train_images, work.train_targets, work.num_classes, work.mean, work.std,
           args.batch_size, steps)
    ctx = multiprocessing.get_context("spawn")
    variants = {f"1 process x {cores} threads (baseline)": [], f"{cores} processes x 1 thread": []}
    with ProcessPoolExecutor(1, mp_context=ctx) as one, ProcessPoolExecutor(cores, mp_context=ctx) as many:
        for _ in range(args.repeats):
            variants[f"1 process x {cores} threads (baseline)"].append(one.submit(
                _worker_images_per_s, cores, *job).result())
            futures = [many.submit(_worker_images_per_s, 1, *job) for _ in range(cores)]
            variants[f"{cores} processes x 1 thread"].append(sum(f.result() for f in futures))
    base = statistics.median(next(iter(variants.values())))
    return [dict(section="workers", model=model_name, variant=name, batch=args.batch_size, steps=steps,
                 repeats=args.repeats, processes=1 if i == 0 else cores, threads=cores if i == 0 else 1,
                 images_per_s=statistics.median(v), speedup=statistics.median(v) / base, samples=v)
            for i, (name, v) in enumerate(variants.items())]


def _table(head: str, lines) -> None:
    """Print a table: a blank line, its header, a rule under it, then its lines."""
    print("\n" + head + "\n" + "-" * len(head))
    for line in lines:
        print(line)


def print_rows(rows: list[dict]) -> None:
    section = {name: [r for r in rows if r["section"] == name] for name in ("train", "eval", "workers")}
    if section["train"]:
        _table(f"{'model':<10} {'training step':<26} {'batch':>5} {'images/s':>9} {'ms/step':>8} {'speed-up':>9} "
               f"{'epoch s':>8} {'compile s':>9}",
               (f"{r['model']:<10} {r['variant']:<26} {r['batch']:5d} {r['images_per_s']:9.0f} "
                f"{r['ms_per_step']:8.1f} {r['speedup']:8.2f}x {r['epoch_s']:8.1f} "
                + (f"{r['compile_s']:9.1f}" if "compile_s" in r else f"{'':>9}") for r in section["train"]))
    if section["eval"]:
        _table(f"{'model':<10} {'evaluation':<38} {'batch':>5} {'images/s':>9} {'ms/batch':>8} {'speed-up':>9} "
               f"{'pass s':>8}",
               (f"{r['model']:<10} {r['variant']:<38} {r['batch']:5d} {r['images_per_s']:9.0f} "
                f"{r['ms_per_step']:8.1f} {r['speedup']:8.2f}x {r['pass_s']:8.2f}" for r in section["eval"]))
    if section["workers"]:
        _table(f"{'model':<10} {'parallel runs on the CPU':<34} {'images/s (all)':>14} {'speed-up':>9}",
               (f"{r['model']:<10} {r['variant']:<34} {r['images_per_s']:14.0f} {r['speedup']:8.2f}x"
                for r in section["workers"]))
    shares = [r for r in rows if r["section"] == "eval-share"]
    if shares:
        head = f"{'setup':<18} {'eval every':>10} {'evals':>5} {'epoch s':>8} {'pass s':>7} {'run s':>7} " \
               f"{'eval share':>10} {'speed-up':>9}"
        print(f"\nprojected {shares[0]['epochs']}-epoch run of the cpu profile ({shares[0]['model']}):")
        for setup in dict.fromkeys(r["setup"] for r in shares):
            print(f"  {setup}: " + next(r["variant"] for r in shares if r["setup"] == setup).split(": ", 1)[1])
        print(head + "\n" + "-" * len(head))
        for r in shares:
            mark = " (baseline)" if r["baseline"] else ""
            print(f"{r['setup']:<18} {r['eval_every']:10d} {r['evaluations']:5d} {r['epoch_s']:8.2f} "
                  f"{r['pass_s']:7.2f} {r['run_s']:7.1f} {100 * r['eval_share']:9.1f}% {r['speedup']:8.2f}x{mark}")


def speedups(args, device: torch.device) -> list[dict]:
    print(f"speed-ups: batch {args.batch_size}, {args.repeats} interleaved repeats "
          f"({args.eval_repeats} for evaluation), {hardware(device)}, amp={args.amp}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    compile_it = not args.no_compile
    # Time a cold compile, not one served from the compile cache of an earlier run: a fresh, temporary inductor
    # cache (torch sets TORCHINDUCTOR_CACHE_DIR to its default folder itself once it has looked it up).
    saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    cache = tempfile.mkdtemp(prefix="inductor-cold-") if compile_it else None
    if cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    rows = []
    try:
        for i, model_name in enumerate(args.models):
            work = speedup_workload(model_name, i == 0, args)
            print(f"{model_name}: {work.label}")
            train = train_rows(model_name, work, args, device, compile_it and i == 0)
            rows += train
            if i == 0:
                evals = eval_rows(model_name, work, args, device)
                rows += evals + share_rows(model_name, work, train, evals)
                if device.type == "cpu":
                    rows += worker_rows(model_name, work, args)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
            if saved is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved
    print_rows(rows)
    print("\nspeed-up = baseline time / this time, both from the same run (> 1: faster than the baseline); ms/step "
          "= median over every timed step of every repeat; pass s = sum over batches of each batch's median. "
          "epoch s = steps per epoch x ms/step (the last partial batch counted as a full one); projected runs "
          "leave out checkpoint writes.")
    for r in rows:
        if "compile_s" in r:
            print(f"compile s = wall time of the first compiled step less a steady step, with an empty compile "
                  f"cache; with the cache an earlier process left on disk: {r['compile_warm_cache_s']:.1f} s; a "
                  f"second {r['model']} in the same process reused the compiled code (first step "
                  f"{r['same_process_first_step_s']:.2f} s). A partial last batch and the evaluation forward would "
                  f"each compile again (not timed).")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["small-cnn", "resnet32"],
                        help="models to time (epoch mode uses the first; speed-ups mode evaluates and compiles "
                             "the first; default %(default)s)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", choices=DATASETS, help="time on a real dataset's training split instead")
    source.add_argument("--fake-cifar", type=int, default=5000, metavar="N",
                        help="N random 3x32x32 images, 10 classes (default %(default)s)")
    parser.add_argument("--data-root", default=None, help="dataset folder for --dataset")
    parser.add_argument("--batch-size", type=int, default=128, help="default %(default)s")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"timed steps per repeat (default per model: {DEFAULT_STEPS}; "
                             f"speed-ups mode {SPEEDUP_STEPS})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved repeats (default 3; speed-ups mode 5)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to compare (default %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--epochs", type=int, default=0,
                      help="epoch mode: time this many whole epochs of focal's pipeline (default: compare mode)")
    mode.add_argument("--speedups", action="store_true",
                      help="speed-ups mode: memory format, evaluation settings and torch.compile, each against "
                           "its baseline measured in the same run, interleaved, medians")
    parser.add_argument("--eval-repeats", type=int, default=None,
                        help="speed-ups mode: interleaved repeats of the evaluation passes (default 3)")
    parser.add_argument("--no-compile", action="store_true", help="speed-ups mode: leave out torch.compile")
    parser.add_argument("--quick", action="store_true",
                        help="speed-ups mode: random images, 1 step, 1 repeat (a smoke test, seconds plus the "
                             "compile)")
    parser.add_argument("--json", metavar="PATH", help="speed-ups mode: also write the rows to PATH as JSON")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "repeats", "eval_repeats", "fake_cifar", "epochs"):
        if getattr(args, name) is not None and getattr(args, name) < (0 if name == "epochs" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.speedups:
        for name in ("quick", "json", "no_compile", "eval_repeats"):
            if getattr(args, name) not in (None, False):
                parser.error(f"--{name.replace('_', '-')} needs --speedups")
    elif args.channels_last:
        parser.error("--channels-last has no effect with --speedups: both memory formats are timed")
    if args.repeats is None:
        args.repeats = (1 if args.quick else 5) if args.speedups else 3
    if args.eval_repeats is None:
        args.eval_repeats = 1 if args.quick else 3
    if args.speedups and args.quick and args.steps is None:
        args.steps = 1
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    torch.backends.cudnn.benchmark = True

    if args.speedups:
        start = time.perf_counter()
        rows = speedups(args, device)
        total = time.perf_counter() - start
        print(f"\n(benchmark took {total:.0f} s)")
        if args.json:
            meta = {"mode": "speedups", "device": str(device), "hardware": hardware(device),
                    "torch": torch.__version__, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                    "batch_size": args.batch_size, "repeats": args.repeats, "eval_repeats": args.eval_repeats,
                    "quick": args.quick, "amp": args.amp, "load_average_after": list(os.getloadavg()),
                    "total_s": total, "argv": list(argv) if argv is not None else sys.argv[1:]}
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
            os.replace(tmp, path)
            print(f"wrote {len(rows)} rows to {path}")
        return
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
