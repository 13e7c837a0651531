"""Forward+backward time and peak memory of focal losses against the plain losses they extend.

Timing is built for noisy machines (see ``timing.py``). Each round runs every implementation of a case once, in an
order shuffled from round to round, each timed step right after an untimed step of its own, and divides each time by
the baseline's time *from the same round*. A case runs at least 31 rounds and more until a minute has passed (so cheap
cases, which move most, get hundreds), with the allocator keeping freed memory (``timing.steady_allocator``;
``--system-allocator`` turns that off). A row reports the median of the per-round ratios, a distribution-free 95 %
interval for that median, their spread (the interquartile range, and the share of rounds under 1), and the median
times. A goal "at most g× the baseline" is met when the whole interval lies at or under g. Baselines:
``F.cross_entropy`` for the softmax and segmentation cases, ``F.binary_cross_entropy_with_logits`` for the sigmoid
ones, and ``focal_loss`` on materialised logits for the linear (classifier-head) cases.

Peak memory is the extra memory one forward+backward needs beyond its inputs and their gradients: on CUDA from the
caching allocator's peak, on CPU from the peak resident set (VmHWM, reset before the step) of a fresh subprocess, so
each implementation starts from the same state.

Every row names the machine (CPU model and threads, or GPU) it was measured on; ratios from different machines are
different measurements, so results are kept one file, and one README row set, per machine.

Usage::

    python benchmarks/loss.py                       # every case (about thirteen minutes on 2 CPU cores)
    python benchmarks/loss.py --only softmax segmentation sigmoid
    python benchmarks/loss.py --quick               # tiny sizes, seconds (used by the book's smoke profile)
    python benchmarks/loss.py --memory-sweep 4096 256 1024,4096,16384,32768   # linear head: memory against C
    python benchmarks/loss.py --json benchmarks/results/loss-<machine>.json --markdown
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn.functional as F
import torchvision

from focal import focal_loss, linear_focal_loss, sigmoid_focal_loss
from focal.engine.files import write_json
from focal.engine.system import hardware
from timing import RoundPlan, median_interval, ratio_summary, round_order, steady_allocator, timed_rounds  # noqa: F401

GAMMA = 2.0
IGNORE = -100


# ------------------------------------------------------------------------------------------- implementations
def naive_softmax_focal(x, t, alpha):
    """The tutorial formulation: p_t = exp(-CE), FL = α_t (1 - p_t)^γ CE."""
    ce = F.cross_entropy(x, t, reduction="none", ignore_index=IGNORE)
    kept = t != IGNORE
    a = alpha[t.masked_fill(~kept, 0)]
    loss = a * (1 - torch.exp(-ce)) ** GAMMA * ce
    return loss.sum() / kept.sum()


def one_hot_softmax_focal(x, t, alpha):
    """The one-hot formulation (kornia / MONAI style): a dense (N, C, ...) modulating factor and one-hot target."""
    kept = t != IGNORE
    safe = t.masked_fill(~kept, 0)
    one_hot = F.one_hot(safe, x.size(1)).movedim(-1, 1).to(x.dtype)
    log_p = F.log_softmax(x, dim=1)
    factor = (1 - log_p.exp()) ** GAMMA
    shape = (1, -1) + (1,) * (x.dim() - 2)
    loss = -(alpha.view(shape) * factor * log_p * one_hot).sum(1)
    return (loss * kept).sum() / kept.sum()


def softmax_impls(alpha) -> Dict[str, Callable]:
    return {
        "cross_entropy (baseline)": lambda x, t: F.cross_entropy(x, t, ignore_index=IGNORE),
        "focal.focal_loss": lambda x, t: focal_loss(x, t, gamma=GAMMA, alpha=alpha, ignore_index=IGNORE),
        "naive exp(-CE)": lambda x, t: naive_softmax_focal(x, t, alpha),
        "one-hot": lambda x, t: one_hot_softmax_focal(x, t, alpha),
    }


def sigmoid_impls() -> Dict[str, Callable]:
    return {
        "bce_with_logits (baseline)": lambda x, t: F.binary_cross_entropy_with_logits(x, t),
        "focal.sigmoid_focal_loss": lambda x, t: sigmoid_focal_loss(x, t, 0.25, GAMMA, "mean"),
        "torchvision sigmoid_focal_loss": lambda x, t: torchvision.ops.sigmoid_focal_loss(x, t, 0.25, GAMMA, "mean"),
    }


def linear_impls() -> Dict[str, Callable]:
    """A classifier head: hidden states (N, H) and a weight (C, H); the baseline materialises the (N, C) logits."""
    return {
        "focal_loss on materialised logits (baseline)": lambda x, w, t: focal_loss(F.linear(x, w), t, gamma=GAMMA,
                                                                      ignore_index=IGNORE),
        "focal.linear_focal_loss": lambda x, w, t: linear_focal_loss(x, w, t, gamma=GAMMA, ignore_index=IGNORE),
    }


CASES = {
    # name: (kind, shape); softmax shapes are (N, C, ...), sigmoid shapes the logits', linear ones (N, H, C)
    "softmax 65536x1000": ("softmax", (65536, 1000)),
    "segmentation 8x19x256x256": ("softmax", (8, 19, 256, 256)),
    "segmentation 8x19x192x192": ("softmax", (8, 19, 192, 192)),
    "sigmoid 65536x91": ("sigmoid", (65536, 91)),
    "sigmoid 4096x80": ("sigmoid", (4096, 80)),
    "linear 8192x256x32768": ("linear", (8192, 256, 32768)),
}
QUICK_CASES = {
    "softmax 4096x100": ("softmax", (4096, 100)),
    "segmentation 2x19x64x64": ("softmax", (2, 19, 64, 64)),
    "sigmoid 4096x80": ("sigmoid", (4096, 80)),
    "linear 512x64x4096": ("linear", (512, 64, 4096)),
}
CASES_CUDA = {"linear 8192x256x131072": ("linear", (8192, 256, 131072))}  # added on CUDA: C = 128k


def make_inputs(kind: str, shape, device: str):
    """The case's differentiable inputs (a tuple), its target and its implementations, from a fixed seed."""
    g = torch.Generator().manual_seed(0)
    if kind == "linear":
        n, hidden, classes = shape
        x = torch.randn(n, hidden, generator=g)
        w = torch.randn(classes, hidden, generator=g) / hidden ** 0.5
        t = torch.randint(0, classes, (n,), generator=g)
        t[torch.rand(t.shape, generator=g) < 0.1] = IGNORE
        return (x.to(device), w.to(device)), t.to(device), linear_impls()
    x = torch.randn(shape, generator=g) * 2
    if kind == "softmax":
        t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
        t[torch.rand(t.shape, generator=g) < 0.1] = IGNORE  # ignore_index in use
        alpha = torch.rand(shape[1], generator=g) + 0.5
        return (x.to(device),), t.to(device), softmax_impls(alpha.to(device))
    if kind == "sigmoid":
        t = (torch.rand(shape, generator=g) < 0.05).float()
        return (x.to(device),), t.to(device), sigmoid_impls()
    raise ValueError(f"unknown case kind {kind!r}; expected 'softmax', 'sigmoid' or 'linear'")


def step(fn, inputs, t):
    for x in inputs:
        x.grad = None
    fn(*inputs, t).backward()


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------- measurements
def time_case(kind, shape, device, plan: RoundPlan, warmup=2) -> Dict[str, dict]:
    """Per-round times of every implementation of the case, summarised by :func:`timing.ratio_summary`."""
    inputs, t, impls = make_inputs(kind, shape, device)
    for x in inputs:
        x.requires_grad_()

    def timed(fn):
        step(fn, inputs, t)  # settle: the timed step follows a step of its own, not another's
        sync(device)
        start = time.perf_counter()
        step(fn, inputs, t)
        sync(device)
        return time.perf_counter() - start

    for _ in range(warmup):
        for fn in impls.values():
            step(fn, inputs, t)
    samples = timed_rounds({name: (lambda fn=fn: timed(fn)) for name, fn in impls.items()}, plan)
    return ratio_summary(samples, next(iter(impls)))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def peak_memory_child(kind, shape, name, device) -> float:
    """Extra memory (MiB) of one forward+backward beyond the inputs; runs inside a fresh process."""
    inputs, t, impls = make_inputs(kind, shape, device)
    for x in inputs:
        x.requires_grad_()
    fn = impls[name]
    step(fn, inputs, t)  # warm-up: compiles or loads fused kernels, allocates the gradients
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(fn, inputs, t)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # Linux: writing 5 to clear_refs resets the peak resident set (VmHWM) to the current one (VmRSS)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_mb("VmRSS")
    step(fn, inputs, t)
    return _status_mb("VmHWM") - base


def peak_memory(kind, shape, name, device) -> float:
    cmd = [sys.executable, __file__, "--_memory-child", json.dumps([kind, list(shape), name, device])]
    # a fixed mmap threshold makes glibc return every large block to the OS when freed, so RSS tracks live tensors
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return float(out.strip().splitlines()[-1])


LONG_ROUNDS = 7  # rounds of the linear cases unless --rounds says otherwise (seconds each on a CPU): the
# fewest whose 95 % interval of the median, from the smallest to the largest ratio, has a safe margin (98 %)


def run(cases, device, plan: RoundPlan, memory=True, long_plan=RoundPlan.fixed(LONG_ROUNDS)) -> List[dict]:
    machine = hardware(device).rsplit(", torch", 1)[0]
    rows = []
    for case, (kind, shape) in cases.items():
        print(f"timing {case} ...", file=sys.stderr, flush=True)
        stats = time_case(kind, shape, device, long_plan if kind == "linear" else plan)
        baseline = next(iter(stats))
        mems = {name: peak_memory(kind, shape, name, device) if memory else float("nan") for name in stats}
        for name, s in stats.items():
            mem_ratio = mems[name] / mems[baseline] if memory and mems[baseline] > 0 else float("nan")
            rows.append({"case": case, "impl": name, **s, "peak_mb": mems[name], "mem_ratio": mem_ratio,
                         "machine": machine})
    return rows


def memory_sweep(n: int, hidden: int, classes: Sequence[int], device: str) -> List[dict]:
    """Peak extra memory of a classifier head's focal loss against the number of classes C, both implementations."""
    rows = []
    for c in classes:
        print(f"memory at C = {c} ...", file=sys.stderr, flush=True)
        case = f"linear {n}x{hidden}x{c}"
        mems = {name: peak_memory("linear", (n, hidden, c), name, device) for name in linear_impls()}
        baseline = next(iter(mems))
        for name, mb in mems.items():
            rows.append({"case": case, "impl": name, "classes": c, "peak_mb": mb,
                         "mem_ratio": mb / mems[baseline] if mems[baseline] > 0 else float("nan"),
                         "machine": hardware(device).rsplit(", torch", 1)[0]})
    return rows


def table(rows: List[dict], markdown: bool) -> str:
    head = ["machine", "case", "implementation", "time (ms)", "× baseline (median of rounds)",
            "95 % interval of the median", "middle half of rounds", "peak extra memory (MiB)", "× baseline"]
    body = [[r["machine"], r["case"], r["impl"], f"{r['time_ms']:.1f}", f"{r['time_ratio']:.2f}",
             f"{r['ratio_ci_low']:.2f}–{r['ratio_ci_high']:.2f}", f"{r['ratio_q1']:.2f}–{r['ratio_q3']:.2f}",
             f"{r['peak_mb']:.0f}", f"{r['mem_ratio']:.2f}"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*r) for r in body])


def machine_slug(device: str) -> str:
    """A file-name form of the machine, e.g. ``cpu-amd-epyc-2-threads``, for ``benchmarks/results/loss-<slug>.json``.

    >>> bool(re.fullmatch(r"[a-z0-9-]+", machine_slug("cpu")))
    True
    """
    name = hardware(device).rsplit(", torch", 1)[0]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def select(cases: dict, only: Sequence[str] | None) -> dict:
    """The cases whose name starts with one of ``only`` (all when None)."""
    if not only:
        return cases
    chosen = {name: case for name, case in cases.items() if name.split()[0] in only}
    if not chosen:
        kinds = sorted({name.split()[0] for name in cases})
        raise SystemExit(f"--only {' '.join(only)} matches no case; expected some of {kinds}")
    return chosen


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="+", metavar="KIND",
                        help="only the cases whose name starts with these words (softmax, segmentation, sigmoid, "
                             "linear)")
    parser.add_argument("--rounds", "--repeats", dest="rounds", type=int, default=None,
                        help=f"exactly this many timed rounds per case (default: at least {RoundPlan.min_rounds}, "
                             f"more until --seconds; quick 7; linear heads {LONG_ROUNDS})")
    parser.add_argument("--seconds", type=float, default=RoundPlan.seconds,
                        help="time budget per case for rounds beyond the minimum (default %(default)g)")
    parser.add_argument("--system-allocator", action="store_true",
                        help="time under the system's default allocator settings instead of keeping freed memory")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--memory-sweep", nargs=3, metavar=("N", "HIDDEN", "C,C,..."),
                        help="only measure the linear head's peak memory at these class counts")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        kind, shape, name, device = json.loads(args.memory_child)
        print(peak_memory_child(kind, tuple(shape), name, device))
        return []
    meta = {"device": args.device, "hardware": hardware(args.device), "torch": torch.__version__}
    if args.memory_sweep:
        try:
            n, hidden = int(args.memory_sweep[0]), int(args.memory_sweep[1])
            classes = [int(c) for c in args.memory_sweep[2].split(",")]
        except ValueError:
            parser.error(f"--memory-sweep takes N HIDDEN C,C,... as integers, got {' '.join(args.memory_sweep)}")
        rows = memory_sweep(n, hidden, classes, args.device)
        for r in rows:
            print(f"C = {r['classes']:>7}  {r['impl']:<34} {r['peak_mb']:8.0f} MiB  × {r['mem_ratio']:.3f}")
        if args.json:
            write_json(args.json, {"meta": {**meta, "sweep": [n, hidden, classes]}, "rows": rows})
        return rows
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be a positive integer, got {args.rounds}")
    if not args.seconds >= 0:
        parser.error(f"--seconds must be a number of seconds >= 0, got {args.seconds}")
    cases = dict(QUICK_CASES if args.quick else CASES)
    if args.device.startswith("cuda") and not args.quick:
        cases.update(CASES_CUDA)
    cases = select(cases, args.only)
    fixed = args.rounds or (7 if args.quick else None)
    plan = RoundPlan.fixed(fixed) if fixed else RoundPlan(seconds=args.seconds)
    long_plan = RoundPlan.fixed(args.rounds or LONG_ROUNDS)
    allocator = "the system's default" if args.system_allocator else steady_allocator()
    rows = run(cases, args.device, plan, memory=not args.no_memory, long_plan=long_plan)
    print(f"forward+backward on {hardware(args.device)}, allocator: {allocator}; {plan.describe()} per case "
          f"({long_plan.describe()} for linear heads); ratio = median over rounds of time / the baseline's time in "
          "the same round, with the 95 % interval of that median and the middle half of those ratios")
    print(table(rows, args.markdown))
    if args.json:
        counts = sorted({r["rounds"] for r in rows})
        repeats = counts[0] if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        write_json(args.json, {"meta": {**meta, "repeats": repeats, "rounds": plan.describe(), "allocator": allocator},
                               "rows": rows})
    return rows


if __name__ == "__main__":
    main()
