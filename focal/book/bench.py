"""Reading the loss benchmark (``benchmarks/loss.py``) for the book: each case's time against a goal
(:func:`benchmark_claims`), the sizes a case name encodes (:func:`case_elements`), and how busy the machine is
before a benchmark runs (:func:`busy_cpus`). The benchmark's figures are in :mod:`focal.book.plots.bench`.

It imports no plotting library, so the benchmark scripts can use :func:`busy_cpus` without matplotlib.
"""
from __future__ import annotations

import math
import time

import pandas as pd

from focal.losses.kernels import FUSED_MIN_NUMEL

__all__ = ["benchmark_claims", "case_elements", "busy_cpus"]


def case_elements(case: str) -> tuple[int, int]:
    """Sizes of a ``benchmarks/loss.py`` case, from its name: the logits' elements and the focal term's.

    .. math:: n_\\text{input} = \\prod_k d_k, \\qquad
              n_\\text{focal} = n_\\text{input} / C \\text{ (softmax: one } p_t \\text{ per target)}, \\quad
              n_\\text{focal} = n_\\text{input} \\text{ (sigmoid)}

    Args:
        case: a name ending in the input's shape, ``"softmax 65536x1000"`` or ``"segmentation 8x19x256x256"``
            (classes at dim 1) or ``"sigmoid 4096x80"``; or ``"linear 8192x256x32768"`` (a classifier head: batch
            N, hidden size H, classes C), whose input elements are the N × C logits the baseline materialises.

    Example:
        >>> case_elements("segmentation 8x19x256x256"), case_elements("sigmoid 4096x80")
        ((9961472, 524288), (327680, 327680))
        >>> case_elements("linear 8192x256x32768")
        (268435456, 8192)
    """
    try:
        dims = [int(d) for d in case.split()[-1].split("x")]
    except ValueError:
        raise ValueError(f"benchmark case names must end in a shape like 8x19x256x256, got {case!r}") from None
    if case.startswith("linear"):
        if len(dims) != 3:
            raise ValueError(f"linear cases end in NxHxC (batch, hidden size, classes), got {case!r}")
        return dims[0] * dims[2], dims[0]
    n = math.prod(dims)
    softmax = not case.startswith("sigmoid")
    return n, n // (dims[1] if softmax and len(dims) > 1 else 1)


def benchmark_claims(rows, goals=None):
    """One row per benchmark case: the package's time relative to the case's baseline, against a goal.

    .. math:: \\text{within} = \\frac{t_\\text{focal}}{t_\\text{baseline}} \\le \\text{goal}

    The case names of ``benchmarks/loss.py`` end in the input's shape (``"softmax 65536x1000"``,
    ``"sigmoid 4096x80"``), from which ``input_elements`` (the logits') and ``focal_elements`` are computed: the
    number of elements the package's focal term works on (the target's for softmax and segmentation cases, every
    logit for sigmoid ones), and ``fused``: whether that reaches the size from which the package runs its fused
    kernel (:data:`focal.losses.kernels.FUSED_MIN_NUMEL`).

    Args:
        rows: dicts with keys ``case``, ``impl`` and ``time_ratio``, as ``benchmarks/loss.py --json`` writes them;
            the package's implementation is the one whose ``impl`` starts with ``"focal"``, the baseline the one
            containing ``"(baseline)"``.
        goals: ``{case: largest acceptable time ratio}``; cases without a goal get NaN and ``within`` None.

    Returns:
        a DataFrame indexed by case with columns ``baseline``, ``impl``, ``time_ratio``, ``ratio_ci_low`` and
        ``ratio_ci_high`` (the 95 % interval of the median ratio), ``ratio_q1`` and ``ratio_q3`` (the quartiles of
        the per-round ratios; each NaN when the rows lack it), ``goal``, ``within`` (the median at or under the
        goal), ``verdict`` (:func:`goal_verdict` of the interval), ``input_elements``, ``focal_elements`` and
        ``fused``.

    Example:
        >>> rows = [dict(case="softmax 64x10", impl="cross_entropy (baseline)", time_ratio=1.0),
        ...         dict(case="softmax 64x10", impl="focal.focal_loss", time_ratio=1.2)]
        >>> claims = benchmark_claims(rows, {"softmax 64x10": 1.05})
        >>> claims.loc["softmax 64x10", ["baseline", "time_ratio", "goal", "within", "focal_elements"]].to_dict()
        {'baseline': 'cross_entropy', 'time_ratio': 1.2, 'goal': 1.05, 'within': False, 'focal_elements': 64}
    """
    df = pd.DataFrame(list(rows))
    missing = [c for c in ("case", "impl", "time_ratio") if c not in df.columns]
    if missing:
        raise ValueError(f"benchmark_claims needs columns ['case', 'impl', 'time_ratio']; missing {missing} "
                         f"(got {list(df.columns)})")
    goals = dict(goals or {})
    out = []
    for case, group in df.groupby("case", sort=False):
        base = group[group["impl"].str.contains("(baseline)", regex=False)]
        focal = group[group["impl"].str.startswith("focal") & ~group.index.isin(base.index)]
        if len(focal) != 1 or len(base) != 1:
            raise ValueError(f"case {case!r} needs exactly one 'focal...' and one '... (baseline)' row, got "
                             f"{group['impl'].tolist()}")
        ratio = float(focal["time_ratio"].iloc[0])
        goal = float(goals[case]) if case in goals else float("nan")
        size, n = case_elements(case)
        spread = {k: float(focal[k].iloc[0]) if k in focal else float("nan")
                  for k in ("ratio_ci_low", "ratio_ci_high", "ratio_q1", "ratio_q3")}
        out.append(dict(case=case, baseline=base["impl"].iloc[0].replace(" (baseline)", ""),
                        impl=focal["impl"].iloc[0], time_ratio=ratio, **spread, goal=goal,
                        within=None if math.isnan(goal) else bool(ratio <= goal),
                        verdict=goal_verdict(spread["ratio_ci_low"], spread["ratio_ci_high"], goal),
                        input_elements=size, focal_elements=n, fused=bool(n >= FUSED_MIN_NUMEL)))
    return pd.DataFrame(out).set_index("case")


def goal_verdict(low: float, high: float, goal: float):
    """Whether a time ratio meets a goal "at most ``goal``× the baseline", judged by the 95 % interval of its median.

    ``"met"`` when the whole interval lies at or under the goal, ``"missed"`` when it lies wholly above it,
    ``"unsettled"`` when it straddles the goal or is unknown (too few rounds for a 95 % interval), and None when
    there is no goal. A median under the goal with an interval that reaches above it is unsettled, not met.

    Example:
        >>> goal_verdict(0.97, 1.03, 1.05), goal_verdict(1.02, 1.08, 1.05), goal_verdict(1.06, 1.1, 1.05)
        ('met', 'unsettled', 'missed')
    """
    if math.isnan(goal):
        return None
    if math.isnan(low) or math.isnan(high):
        return "unsettled"
    return "met" if high <= goal else ("missed" if low > goal else "unsettled")


def busy_cpus(interval: float = 1.0):
    """How many CPUs other work keeps busy: the average number of non-idle CPUs over ``interval`` seconds.

    .. math:: n_\\text{busy} = n_\\text{CPU} \\cdot \\frac{\\Delta t_\\text{total} - \\Delta t_\\text{idle}}
              {\\Delta t_\\text{total}}

    from the first line of ``/proc/stat`` (Linux; idle includes iowait). Call it while the caller itself is idle
    (it sleeps), e.g. just before a benchmark, to tell whether the benchmark will share the machine.

    Args:
        interval: seconds to sample, > 0.

    Returns:
        a float in [0, number of CPUs], or None where ``/proc/stat`` is unavailable.

    Example:
        >>> n = busy_cpus(0.05)
        >>> n is None or 0.0 <= n <= len([l for l in open("/proc/stat") if l[:3] == "cpu" and l[3].isdigit()])
        True
    """
    if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")

    def sample():
        with open("/proc/stat") as fh:
            lines = fh.read().splitlines()
        fields = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
        return sum(fields), fields[3] + fields[4], sum(1 for ln in lines if ln[:3] == "cpu" and ln[3:4].isdigit())

    try:
        total0, idle0, ncpu = sample()
        time.sleep(interval)
        total1, idle1, _ = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return 0.0
    return ncpu * (1.0 - (idle1 - idle0) / (total1 - total0))
