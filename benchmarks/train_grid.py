"""The grid mode of benchmarks/train.py (``--grid``): how long the book's ``gpu`` profile would take here.

Everything runs through the engine's own :func:`~focal.engine.train.train` and
:func:`~focal.engine.grid.train_many`, on CIFAR-format files written for the purpose
(:func:`~focal.engine.data.write_fake_cifar`: CIFAR-10's layout, random pixels, read by torchvision's reader):

1. *one run* of the profile's recipe (ResNet-32, batch 128, the profile's autocast and memory format) for a few
   epochs: its first epoch (compilation included), its median steady epoch and one evaluation pass;
2. *W runs at once* for each W of ``--grid-workers``: ``train_many`` with W worker processes on the devices the grid
   would use (:func:`~focal.engine.system.worker_devices`), their aggregate images/s counted only while all W were in
   steady epochs (:func:`concurrent_rate`; a setting whose runs overlapped for less than half an epoch is not used
   for the projection);

each with ``Config.compile`` on and off (``--compile``). From the best of them it projects the wall time of the
profile's whole grid: every run of :func:`focal.book.profiles.all_configs` (epochs × its training-set size, from the
long-tail counts), its evaluations (the profile's ``eval_every``, CIFAR's 10,000 test images) and one compilation
per class count (workers compile at the same time; an epoch's last, smaller batch runs uncompiled). The projection assumes the measured rates hold for 200 epochs and for CIFAR-100 (same
images, a wider classifier); it is a projection until the grid has run.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

from focal.book.profiles import all_configs, get_profile
from focal.engine.config import Config
from focal.engine.data import BALANCED_SIZES, train_size, write_fake_cifar
from focal.engine.grid import duration, train_many
from focal.engine.system import hardware, worker_devices

CIFAR_TEST_IMAGES = 10_000


def grid_work(profile) -> dict:
    """What a profile's grid trains: runs, training images summed over runs and epochs, evaluation passes."""
    runs = all_configs(profile)
    images = passes = 0
    for c in runs:
        images += c.epochs * train_size(c.dataset, c.imbalance, c.lt_profile, c.n_max)
        passes += sum(1 for e in range(1, c.epochs + 1) if e % c.eval_every == 0 or e == c.epochs)
    shapes = len({BALANCED_SIZES[c.dataset.removesuffix("-lt")][1] for c in runs})
    return {"runs": len(runs), "train_images": images, "eval_passes": passes, "class_counts": shapes}


def projected_seconds(work: dict, images_per_s: float, eval_pass_s: float, compile_s: float, workers: int) -> float:
    """Wall time of ``work`` (:func:`grid_work`) at an aggregate ``images_per_s``, with ``workers`` evaluating in
    parallel (``eval_pass_s`` per pass of CIFAR's test set) and each worker compiling once per class count.

    Example:
        >>> projected_seconds({"train_images": 1000, "eval_passes": 4, "class_counts": 2}, 100.0, 2.0, 5.0, 2)
        24.0
    """
    return work["train_images"] / images_per_s + work["eval_passes"] * eval_pass_s / workers \
        + work["class_counts"] * compile_s


def _epoch_times(result: dict) -> tuple[float, float, float]:
    """(first epoch s, median steady epoch s, evaluation pass s) of a finished run's history: the first epoch holds
    the compilation, the last the evaluation, the ones between are steady."""
    times = [row["time_s"] for row in result["history"]]
    steady = statistics.median(times[1:-1])
    return times[0], steady, max(0.0, times[-1] - steady)


def concurrent_rate(results: list[dict], n_train: int) -> tuple[float, float]:
    """(aggregate images/s, overlap) of runs trained at once, counted only while every one of them was in a steady
    epoch: the window from the latest start of a second epoch to the earliest end of a next-to-last one. ``overlap``
    is that window over the median steady span (1: the runs' steady epochs coincided; 0: they never overlapped, and the
    rate is nan).

    Example:
        >>> run = lambda t0: {"history": [{"ended_at": t0 + e, "time_s": 1.0} for e in (1, 2, 3, 4)]}
        >>> concurrent_rate([run(0.0), run(0.5)], 100)  # two runs of 100 images per epoch, half an epoch apart
        (200.0, 0.75)
    """
    spans = []
    for r in results:
        ends = [row["ended_at"] for row in r["history"]]
        spans.append([(ends[i - 1], ends[i]) for i in range(1, len(ends) - 1)])  # the steady epochs
    start, end = max(s[0][0] for s in spans), min(s[-1][1] for s in spans)
    typical = statistics.median(s[-1][1] - s[0][0] for s in spans)
    if end <= start:
        return math.nan, 0.0
    images = sum(n_train * max(0.0, min(b, end) - max(a, start)) / (b - a) for s in spans for a, b in s)
    return images / (end - start), (end - start) / typical


def _measure(base: Config, out: Path, workers: int, seeds_from: int, devices) -> dict:
    """Train ``workers`` runs at once (different seeds) and read their epoch times."""
    configs = [base.replace(seed=seeds_from + k) for k in range(workers)]
    tic = time.perf_counter()
    results = [r for _, r in train_many(configs, out, progress=False, workers=workers,
                                        devices=devices[:workers] if devices else None)]
    wall = time.perf_counter() - tic
    n_train = sum(results[0]["train_counts"])
    firsts, steadies, evals = zip(*(_epoch_times(r) for r in results))
    rate, overlap = concurrent_rate(results, n_train)
    return {"workers": workers, "compile": base.compile, "images_per_s": rate, "overlap": overlap,
            "run_images_per_s": n_train / statistics.median(steadies), "first_epoch_s": statistics.median(firsts),
            "steady_epoch_s": statistics.median(steadies), "eval_pass_s": statistics.median(evals),
            "wall_s": wall, "train_images": n_train, "epochs": base.epochs, "hardware": results[0]["hardware"]}


def grid_benchmark(args, device, on_row=None) -> tuple[list[dict], dict]:
    """The rows of both measurements and the projection of the profile's grid (printed as they come; ``on_row`` is
    called with the rows so far after each, so that a benchmark cut short keeps what it measured)."""
    profile = get_profile("gpu")
    quick = args.quick
    per_class, per_class_test = (100, 20) if quick else (5000, 1000)
    epochs = args.grid_epochs
    compiles = {"on": (True,), "off": (False,), "both": (False, True)}[args.compile]
    rows = []
    with tempfile.TemporaryDirectory(prefix="focal-grid-bench-") as tmp:
        root = write_fake_cifar(Path(tmp) / "cifar", n_train_per_class=per_class, n_test_per_class=per_class_test)
        base = profile.base.replace(data_root=str(root), verify=False, epochs=epochs, eval_every=epochs,
                                    checkpoint_every=epochs, device=str(device), model=args.models[0])
        print(f"{profile.name} profile's recipe on CIFAR-format files ({per_class} training and {per_class_test} test "
              f"images per class, imbalance {profile.imbalance:g}), {base.model}, {epochs} epochs per run, "
              f"{hardware(device)}, amp={base.amp}, channels_last={base.channels_last}\n")
        header = (f"{'compile':<8} {'runs at once':>12} {'images/s':>9} {'overlap':>8} {'per run':>8} "
                  f"{'first epoch':>12} {'epoch':>8} {'eval pass':>10} {'wall':>9}")
        print(header + "\n" + "-" * len(header))
        seed = 0
        for compile in compiles:
            for workers in [1, *[w for w in args.grid_workers if w != 1]]:
                devices = worker_devices(str(device), workers)
                row = _measure(base.replace(compile=compile), Path(tmp) / f"runs-{compile}-{workers}", workers, seed,
                               devices)
                seed += workers
                rows.append(row)
                print(f"{'on' if compile else 'off':<8} {workers:12d} {row['images_per_s']:9.0f} "
                      f"{row['overlap']:8.2f} {row['run_images_per_s']:8.0f} {row['first_epoch_s']:11.2f}s {row['steady_epoch_s']:7.2f}s "
                      f"{row['eval_pass_s']:9.3f}s {duration(row['wall_s']):>9}", flush=True)
                if on_row is not None:
                    on_row(rows)
    work = grid_work(profile)
    usable = [r for r in rows if r["overlap"] >= 0.5] or rows[:1]  # runs that really trained at the same time
    best = max(usable, key=lambda r: r["images_per_s"])
    test_images = 10 * per_class_test
    eval_pass_s = best["eval_pass_s"] * CIFAR_TEST_IMAGES / test_images
    compile_s = max(0.0, best["first_epoch_s"] - best["steady_epoch_s"])
    seconds = projected_seconds(work, best["images_per_s"], eval_pass_s, compile_s, best["workers"])
    projection = {**work, "profile": profile.name, "workers": best["workers"], "compile": best["compile"],
                  "images_per_s": best["images_per_s"], "eval_pass_s": eval_pass_s, "compile_s": compile_s,
                  "projected_s": seconds, "hardware": hardware(device)}
    print(f"\nprojected wall time of the {profile.name} profile's grid ({work['runs']} runs, "
          f"{work['train_images'] / 1e6:,.1f} M training images, {work['eval_passes']:,} evaluation passes) "
          f"on {hardware(device)}: {duration(seconds)}, with {best['workers']} run{'s' * (best['workers'] > 1)} at once, "
          f"compile {'on' if best['compile'] else 'off'} (the fastest setting above)")
    return rows, projection
