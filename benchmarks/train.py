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

Grid mode (``--grid``, train_grid.py): the ``gpu`` profile's recipe through the engine's own ``train`` and
``train_many`` on CIFAR-format files: one run, then several at once (``--grid-workers``), with ``Config.compile`` on
and off; aggregate images/s and the projected wall time of the profile's whole grid.

The table gives images/s, ms per step (per batch for evaluation) and the speed-up (baseline time / this time,
same run). A training step's time is the median over every timed step of every repeat, an evaluation pass the sum
over its batches of each batch's median over the repeats, so that a short burst of load from another process on a
shared machine moves the numbers less than it would move a mean. ``--json PATH`` writes the rows; ``--quick`` runs
everything at toy sizes (the test suite uses it).

    python benchmarks/train.py                                   # CPU comparison, small CNN and ResNet-32
    python benchmarks/train.py --models resnet32 --device cuda --amp --channels-last
    python benchmarks/train.py --fake-cifar 50000 --device cuda --amp --channels-last --epochs 1
    python benchmarks/train.py --speedups --json benchmarks/results/train-cpu-2core.json   # ~3 min on 2 cores
    python benchmarks/train.py --grid --device cuda --grid-workers 2 4 8 --json benchmarks/results/grid-h200.json
    python benchmarks/train.py --grid --quick --models small-cnn --grid-workers 2        # a CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from tqdm import tqdm

from focal.engine.data import DATASETS, DeviceLoader, load_data
from focal.engine.models import MODELS
from focal.engine.config import RECIPE_EPOCHS
from focal.engine.system import default_workers, hardware

from pipeline import CIFAR10_LT_IMAGES, DEFAULT_STEPS, PILImages, endless, fake_images, make_step, sync, time_steps
from train_grid import grid_benchmark
from train_speedups import SPEEDUP_STEPS, speedups


def pipelines(images, targets, mean, std, args, device):
    """name -> endless batch iterator, for focal's loader and each DataLoader worker count."""
    size = images.shape[-1]
    out = {"focal DeviceLoader": endless(DeviceLoader(images, targets, args.batch_size, shuffle=True, augment=True,
                                                       mean=mean, std=std, device=device), device)}
    tf = transforms.Compose([transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(mean, std)])
    for workers in args.workers:
        loader = DataLoader(PILImages(images, targets, tf), args.batch_size, shuffle=True, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        out[f"DataLoader+PIL, {workers} workers"] = endless(loader, device)
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
    sync(device)
    rates = []
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        start = time.perf_counter()
        for x, y in tqdm(loader, desc=f"epoch {epoch + 1}", leave=False):
            step(x, y)
        sync(device)
        rates.append(len(images) / (time.perf_counter() - start))
    rate = statistics.median(rates)
    hours = RECIPE_EPOCHS * CIFAR10_LT_IMAGES / rate / 3600
    print(f"{args.models[0]}, {len(images)} images {tuple(images.shape[1:])}, batch {args.batch_size}, "
          f"{hardware(device)}, amp={args.amp}, channels_last={args.channels_last}")
    print(f"training images/s (median of {args.epochs} epoch(s)): {rate:,.0f}")
    print(f"projected {RECIPE_EPOCHS}-epoch CIFAR-10-LT run ({CIFAR10_LT_IMAGES:,} images/epoch, training only): "
          f"{hours * 60:.1f} min")


def _write_json(path: Path, result: dict, quiet: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)
    if not quiet:
        print(f"wrote {len(result['rows'])} rows to {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None,
                        help="models to time (epoch and grid modes use the first; speed-ups mode evaluates and "
                             "compiles the first; default: small-cnn resnet32, grid mode resnet32)")
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
    mode.add_argument("--grid", action="store_true",
                      help="grid mode: the gpu profile's recipe, one run and several at once (train_many), compile "
                           "on and off, and the projected wall time of the profile's whole grid (train_grid.py)")
    mode.add_argument("--speedups", action="store_true",
                      help="speed-ups mode: memory format, evaluation settings and torch.compile, each against "
                           "its baseline measured in the same run, interleaved, medians")
    parser.add_argument("--eval-repeats", type=int, default=None,
                        help="speed-ups mode: interleaved repeats of the evaluation passes (default 3)")
    parser.add_argument("--no-compile", action="store_true", help="speed-ups mode: leave out torch.compile")
    parser.add_argument("--grid-workers", type=int, nargs="+", default=None, metavar="W",
                        help="grid mode: runs trained at once, besides one (default: the grid's default workers for "
                             "--device)")
    parser.add_argument("--grid-epochs", type=int, default=4, metavar="E",
                        help="grid mode: epochs per run, >= 3: a first (compiling), steady ones and an evaluated "
                             "last one (default %(default)s)")
    parser.add_argument("--compile", choices=("on", "off", "both"), default="both",
                        help="grid mode: Config.compile of the runs (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="speed-ups mode: random images, 1 step, 1 repeat; grid mode: 100 training images per "
                             "class (smoke tests, seconds plus the compile)")
    parser.add_argument("--json", metavar="PATH", help="speed-ups and grid modes: also write the rows to PATH as JSON")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default %(default)s)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    args = parser.parse_args(argv)
    args.models = args.models or (["resnet32"] if args.grid else ["small-cnn", "resnet32"])
    for name in ("batch_size", "steps", "repeats", "eval_repeats", "fake_cifar", "epochs"):
        if getattr(args, name) is not None and getattr(args, name) < (0 if name == "epochs" else 1):
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.speedups:
        for name in ("no_compile", "eval_repeats") + (() if args.grid else ("quick", "json")):
            if getattr(args, name) not in (None, False):
                needs = "--speedups or --grid" if name in ("quick", "json") else "--speedups"
                parser.error(f"--{name.replace('_', '-')} needs {needs}")
    elif args.channels_last:
        parser.error("--channels-last has no effect with --speedups: both memory formats are timed")
    if args.grid and (args.amp or args.channels_last):
        parser.error("--amp and --channels-last have no effect with --grid: its runs use the gpu profile's settings")
    if args.grid_epochs < 3:
        parser.error(f"--grid-epochs must be >= 3 (a first, a steady and an evaluated epoch), got {args.grid_epochs}")
    if args.grid_workers is not None and min(args.grid_workers) < 1:
        parser.error(f"--grid-workers must be >= 1, got {args.grid_workers}")
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

    if args.grid:
        if args.grid_workers is None:
            args.grid_workers = [default_workers(device=str(device))]
        start = time.perf_counter()
        meta = {"mode": "grid", "device": str(device), "hardware": hardware(device), "torch": torch.__version__,
                "cpu_count": os.cpu_count(), "quick": args.quick, "grid_epochs": args.grid_epochs,
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "argv": list(argv) if argv is not None else sys.argv[1:]}
        partial = (lambda rows: _write_json(Path(args.json), {"meta": meta, "rows": rows, "projection": None},
                                            quiet=True)) if args.json else None
        rows, projection = grid_benchmark(args, device, on_row=partial)
        print(f"\n(benchmark took {time.perf_counter() - start:.0f} s)")
        if args.json:
            _write_json(Path(args.json), {"meta": meta, "rows": rows, "projection": projection})
        return
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
            _write_json(Path(args.json), {"meta": meta, "rows": rows})
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
