"""How benchmarks/loss.py times on a noisy machine: rounds of shuffled, paired steps; how many rounds; the median of
per-round ratios with a distribution-free 95 % interval; and a steady memory allocator.

Each round runs every implementation once, in an order shuffled from round to round, so each implementation's time can
be divided by the baseline's time *from the same round*: a pair measured moments apart, which drift, frequency scaling
and neighbours hit alike. A case runs at least a minimum number of rounds and then more until its time budget is
spent, so cheap cases, whose ratios move most from round to round, get the most rounds.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def steady_allocator() -> str:
    """Keep freed memory in the process: glibc neither returns it to the system (no trimming) nor serves blocks
    under 1 GiB with fresh ``mmap`` calls. Returns what was set, for the results' metadata.

    By default glibc hands blocks of tens of MiB back to the system when they are freed and maps them again, zeroed
    page by page, on the next step; whether a block is mapped anew or reused depends on a threshold that moves with
    the sizes seen so far. A loss step then pays for page faults whose number depends on what ran before it, which
    swamps a few-percent difference (on 2 cores, a run with the defaults took 109 ms for the 8×19×256×256
    cross-entropy step, the committed run with this setting 51 ms). Measured here: blocks of about 100 MiB and more
    are still faulted in afresh on each step with this setting, for every implementation alike. PyTorch's CUDA
    caching allocator keeps freed blocks too. Elsewhere than glibc this does nothing and says so.
    """
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path)
        ok = libc.mallopt(M_MMAP_THRESHOLD, 2 ** 30) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1) == 1
    except (OSError, AttributeError, TypeError):
        ok = False
    return "glibc, freed memory kept (mallopt: no trimming, no mmap under 1 GiB)" if ok else "the system's default"


@dataclass(frozen=True)
class RoundPlan:
    """How many rounds a case runs: at least ``min_rounds``, then more until ``seconds`` have passed, at most
    ``max_rounds``. ``RoundPlan.fixed(n)`` runs exactly n."""

    min_rounds: int = 31
    seconds: float = 60.0
    max_rounds: int = 401

    def __post_init__(self):
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"rounds must satisfy 1 <= min_rounds <= max_rounds, got {self.min_rounds}, "
                             f"{self.max_rounds}")
        if not self.seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {self.seconds}")

    @classmethod
    def fixed(cls, rounds: int) -> "RoundPlan":
        return cls(rounds, 0.0, rounds)

    def describe(self) -> str:
        if self.min_rounds == self.max_rounds:
            return f"{self.min_rounds} rounds"
        return f"at least {self.min_rounds} rounds, more until {self.seconds:g} s (at most {self.max_rounds})"


def timed_rounds(timers: Dict[str, Callable[[], float]], plan: RoundPlan) -> Dict[str, List[float]]:
    """Run rounds of ``timers`` (each returns one measured time) in :func:`round_order`, as ``plan`` says.

    >>> samples = timed_rounds({"a": lambda: 1.0, "b": lambda: 2.0}, RoundPlan.fixed(3))
    >>> samples
    {'a': [1.0, 1.0, 1.0], 'b': [2.0, 2.0, 2.0]}
    """
    names = list(timers)
    samples: Dict[str, List[float]] = {name: [] for name in names}
    start = time.perf_counter()
    i = 0
    while i < plan.max_rounds and (i < plan.min_rounds or time.perf_counter() - start < plan.seconds):
        for name in round_order(names, i):
            samples[name].append(timers[name]())
        i += 1
    return samples


def round_order(names: Sequence[str], round_index: int) -> List[str]:
    """The round's order: a permutation drawn from a generator seeded by the round's index, so no implementation is
    always first, last, or right after the same other one (the one before leaves caches and the allocator in a state
    that the next one pays for: with a fixed cyclic order the baseline always followed the one-hot loss).

    >>> sorted(round_order("abc", 3)) == ["a", "b", "c"] and round_order("abc", 3) == round_order("abc", 3)
    True
    """
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(round_index)).tolist()
    return [names[k] for k in perm]


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple:
    """A distribution-free interval for the median of the population the values are drawn from.

    With n independent values, the j-th smallest lies below the median with probability P(Binomial(n, ½) ≥ j), so
    the interval between the k-th smallest and the k-th largest value covers it with probability
    1 - 2·P(Binomial(n, ½) ≤ k - 1). ``k`` is the largest rank that keeps that at least ``confidence``. Fewer than 6
    values cannot reach 95 %: the interval is then (nan, nan).

    >>> median_interval(range(1, 32))   # n = 31: the 10th smallest and the 10th largest
    (10, 22)
    >>> median_interval([1.0, 2.0, 3.0])
    (nan, nan)
    """
    xs = sorted(values)
    n = len(xs)
    tail, k = 0.0, 0  # tail = P(Binomial(n, 1/2) <= k - 1)
    while k < n // 2:
        nxt = tail + math.comb(n, k) / 2 ** n
        if 1 - 2 * nxt < confidence:
            break
        tail, k = nxt, k + 1
    if k == 0:
        return float("nan"), float("nan")
    return xs[k - 1], xs[n - k]


def ratio_summary(samples: Dict[str, List[float]], baseline: str) -> Dict[str, dict]:
    """Per implementation: median time, and the median, 95 % interval and spread of its per-round ratios to the
    baseline.

    ``samples[name][i]`` is the time of round ``i``; the ratio of round ``i`` is ``samples[name][i] /
    samples[baseline][i]``. Returns ``{name: {time_ms, time_ratio, ratio_ci_low, ratio_ci_high, ratio_q1, ratio_q3,
    below_one, rounds}}``: the median ratio, the 95 % interval of that median (:func:`median_interval`), its
    quartiles (the middle half of the rounds lies between them) and the share of rounds in which the implementation
    was faster than the baseline.

    >>> s = ratio_summary({"base": [1.0, 2.0, 1.0, 2.0], "f": [1.1, 2.2, 1.0, 1.8]}, "base")
    >>> round(s["f"]["time_ratio"], 3), s["f"]["below_one"], s["base"]["time_ratio"]
    (1.0, 0.25, 1.0)
    """
    base = samples[baseline]
    out = {}
    for name, times in samples.items():
        if len(times) != len(base) or not times:
            raise ValueError(f"{name!r} has {len(times)} rounds, the baseline {len(base)}; expected equal and > 0")
        ratios = [a / b for a, b in zip(times, base)]
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
        low, high = median_interval(ratios)
        out[name] = dict(time_ms=statistics.median(times) * 1e3, time_ratio=statistics.median(ratios),
                         ratio_ci_low=low, ratio_ci_high=high, ratio_q1=q1, ratio_q3=q3,
                         below_one=sum(r < 1 for r in ratios) / len(ratios), rounds=len(ratios))
    return out
