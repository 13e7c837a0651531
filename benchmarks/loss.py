"""Forward+backward time and peak memory of focal losses against the plain losses they extend.

Each case is timed interleaved (every implementation once per round, rounds repeated) and reported as the median,
with ratios to the case's baseline measured in the same run: ``F.cross_entropy`` for the softmax cases and
``F.binary_cross_entropy_with_logits`` for the sigmoid ones. Peak memory is the extra memory one forward+backward
needs beyond its inputs and their gradient: on CUDA from the caching allocator's peak, on CPU from the peak resident
set (VmHWM, reset before the step) of a fresh subprocess, so each implementation starts from the same state.

Usage::

    python benchmarks/loss.py                 # the full table (a few minutes on 2 CPU cores)
    python benchmarks/loss.py --quick         # tiny sizes, seconds (used by the book's smoke profile)
    python benchmarks/loss.py --json out.json --markdown
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
import torchvision

from focal import focal_loss, sigmoid_focal_loss
from focal.engine.files import write_json
from focal.engine.system import hardware

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


CASES = {
    # name: (kind, shape); softmax shapes are (N, C, ...), sigmoid shapes the logits'
    "softmax 65536x1000": ("softmax", (65536, 1000)),
    "segmentation 8x19x256x256": ("softmax", (8, 19, 256, 256)),
    "sigmoid 65536x91": ("sigmoid", (65536, 91)),
    "sigmoid 4096x80": ("sigmoid", (4096, 80)),
}
QUICK_CASES = {
    "softmax 4096x100": ("softmax", (4096, 100)),
    "segmentation 2x19x64x64": ("softmax", (2, 19, 64, 64)),
    "sigmoid 4096x80": ("sigmoid", (4096, 80)),
}


def make_inputs(kind: str, shape, device: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * 2
    if kind == "softmax":
        t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
        t[torch.rand(t.shape, generator=g) < 0.1] = IGNORE  # ignore_index in use
        alpha = torch.rand(shape[1], generator=g) + 0.5
        return x.to(device), t.to(device), softmax_impls(alpha.to(device))
    t = (torch.rand(shape, generator=g) < 0.05).float()
    return x.to(device), t.to(device), sigmoid_impls()


def step(fn, x, t):
    x.grad = None
    fn(x, t).backward()


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------- measurements
def time_case(kind, shape, device, repeats, warmup=2) -> Dict[str, float]:
    x, t, impls = make_inputs(kind, shape, device)
    x.requires_grad_()
    samples = {name: [] for name in impls}
    for _ in range(warmup):
        for fn in impls.values():
            step(fn, x, t)
    for _ in range(repeats):
        for name, fn in impls.items():  # interleaved: drift and noise hit every implementation alike
            sync(device)
            start = time.perf_counter()
            step(fn, x, t)
            sync(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) * 1e3 for name, v in samples.items()}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def peak_memory_child(kind, shape, name, device) -> float:
    """Extra memory (MiB) of one forward+backward beyond the inputs; runs inside a fresh process."""
    x, t, impls = make_inputs(kind, shape, device)
    x.requires_grad_()
    fn = impls[name]
    step(fn, x, t)  # warm-up: compiles or loads fused kernels, allocates x.grad
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(fn, x, t)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # Linux: writing 5 to clear_refs resets the peak resident set (VmHWM) to the current one (VmRSS)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_mb("VmRSS")
    step(fn, x, t)
    return _status_mb("VmHWM") - base


def peak_memory(kind, shape, name, device) -> float:
    cmd = [sys.executable, __file__, "--_memory-child", json.dumps([kind, list(shape), name, device])]
    # a fixed mmap threshold makes glibc return every large block to the OS when freed, so RSS tracks live tensors
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return float(out.strip().splitlines()[-1])


def run(cases, device, repeats, memory=True) -> List[dict]:
    rows = []
    for case, (kind, shape) in cases.items():
        print(f"timing {case} ...", file=sys.stderr, flush=True)
        times = time_case(kind, shape, device, repeats)
        baseline = next(iter(times))
        mems = {name: peak_memory(kind, shape, name, device) if memory else float("nan") for name in times}
        for name, ms in times.items():
            rows.append({
                "case": case, "impl": name, "time_ms": ms, "peak_mb": mems[name],
                "time_ratio": ms / times[baseline], "mem_ratio": mems[name] / mems[baseline] if memory and mems[baseline] > 0 else float("nan"),
            })
    return rows


def table(rows: List[dict], markdown: bool) -> str:
    head = ["case", "implementation", "time (ms)", "× baseline", "peak extra memory (MiB)", "× baseline"]
    body = [[r["case"], r["impl"], f"{r['time_ms']:.1f}", f"{r['time_ratio']:.2f}", f"{r['peak_mb']:.0f}",
             f"{r['mem_ratio']:.2f}"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*r) for r in body])


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 9, quick 5)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        kind, shape, name, device = json.loads(args.memory_child)
        print(peak_memory_child(kind, tuple(shape), name, device))
        return []
    cases = QUICK_CASES if args.quick else CASES
    repeats = args.repeats or (5 if args.quick else 9)
    rows = run(cases, args.device, repeats, memory=not args.no_memory)
    print(f"forward+backward, median of {repeats} interleaved rounds, {hardware(args.device)}")
    print(table(rows, args.markdown))
    if args.json:
        meta = {"device": args.device, "hardware": hardware(args.device), "torch": torch.__version__, "repeats": repeats}
        write_json(args.json, {"meta": meta, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
