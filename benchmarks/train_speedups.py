"""The speed-ups mode of benchmarks/train.py (``--speedups``): what each candidate speed-up of the book's ``cpu``
profile buys on the machine at hand, each against a baseline timed in the same run (see benchmarks/train.py)."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from tqdm import tqdm

from focal.engine.data import DeviceLoader, load_data
from focal.engine.models import build_model
from focal.book.profiles import get_profile
from focal.engine.system import hardware

from pipeline import build_step, endless, fake_images, sync


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
    sync(device)
    out = []
    for _ in range(steps):
        tic = time.perf_counter()
        step(*next(batches))
        sync(device)
        out.append(time.perf_counter() - tic)
    return out


def _timed_call(fn, device: torch.device) -> float:
    sync(device)
    tic = time.perf_counter()
    fn()
    sync(device)
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
        batches = endless(loader, device)
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
        sync(device)
        tic = time.perf_counter()
        with GRAD_MODES[grad](), autocast:
            for i, (x, _) in enumerate(loader):
                if only is None or i in only:
                    outputs.append(model(x.contiguous(memory_format=fmt)).float())
                sync(device)
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
    times = step_times(endless(loader, torch.device("cpu")), step, torch.device("cpu"), steps, warmup=3)
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
