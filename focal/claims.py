"""Chapter 6: the published claims, our evidence for each, and a verdict computed from the numbers.

The claims (``REFERENCES.md``, "Claims worth testing"):

1. Focal loss is about as accurate as cross-entropy on long-tailed data (published gap at most 0.3 points).
2. Focal loss alone does little for the tail classes; class-balanced re-weighting does more.
3. Focal loss lowers the ECE before temperature scaling; its fitted temperature is close to 1 where CE's is > 2.

A difference counts as real only when it is larger than the seed spread: the larger of the two sample standard
deviations over seeds. With one seed there is no spread and the verdict is "inconclusive"; at the ``smoke`` profile
(one epoch on synthetic data) every verdict is "inconclusive: smoke profile", whatever the numbers say.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from focal import metrics

__all__ = ["Evidence", "compare", "claim_accuracy", "claim_tail", "claim_calibration", "evaluate_claims",
           "verdict_table", "scope"]

CE, FOCAL, CB, FLSD = "CE", "focal γ=1", "CB focal γ=1", "FLSD-53"


class Evidence(dict):
    """A claim's outcome: ``claim``, ``evidence`` (one sentence with our numbers), ``verdict`` and ``numbers``
    (a dict of the values behind it, for ``myst_nb.glue``)."""


def compare(a, b) -> dict:
    """Difference of means ``mean(b) - mean(a)`` and the seed spread ``max(std(a), std(b))``.

    Example:
        >>> d = compare([30.0, 32.0], [30.5, 31.5])
        >>> d["delta"], round(d["spread"], 3), d["within"]
        (0.0, 1.414, True)
    """
    ma, sa = metrics.mean_std(np.asarray(a, float))
    mb, sb = metrics.mean_std(np.asarray(b, float))
    spread = max(sa, sb) if not (math.isnan(sa) or math.isnan(sb)) else math.nan
    delta = mb - ma
    return dict(mean_a=ma, std_a=sa, mean_b=mb, std_b=sb, delta=delta, spread=spread,
                within=bool(abs(delta) <= spread) if not math.isnan(spread) else None)


def _values(df: pd.DataFrame, loss: str, column: str, **where) -> np.ndarray:
    mask = df["loss"] == loss
    for key, value in where.items():
        mask &= df[key] == value
    values = df.loc[mask, column].to_numpy(float)
    if values.size == 0:
        raise ValueError(f"no rows for loss {loss!r} {where} in column {column!r}; losses present: "
                         f"{sorted(set(df['loss']))}")
    return values


def _inconclusive(profile: str, *comparisons: dict) -> str | None:
    if profile == "smoke":
        return "inconclusive: smoke profile (one epoch on synthetic data shows only that the pipeline runs)"
    if any(c["within"] is None for c in comparisons):
        return "inconclusive: one seed gives no spread to compare against"
    return None


def claim_accuracy(runs: pd.DataFrame, profile: str) -> Evidence:
    """Claim 1: focal (γ=1) ≈ CE in top-1 error, judged against the seed spread.

    Args:
        runs: :func:`focal.results.runs_frame` rows of one dataset and imbalance.
        profile: the profile name (``"smoke"`` makes the verdict inconclusive).
    """
    c = compare(_values(runs, CE, "top1_error"), _values(runs, FOCAL, "top1_error"))
    others = {lab: compare(_values(runs, CE, "top1_error"), _values(runs, lab, "top1_error"))["delta"]
              for lab in ("focal γ=0.5", "focal γ=2", FLSD) if lab in set(runs["loss"])}
    verdict = _inconclusive(profile, c)
    if verdict is None:
        if c["within"]:
            verdict = "reproduced: the gap is inside the seed spread"
        else:
            verdict = (f"not reproduced: focal γ=1 is {abs(c['delta']):.2f} points "
                       f"{'worse' if c['delta'] > 0 else 'better'} than CE, more than the seed spread")
    others_text = ", ".join(f"{k} {v:+.2f}" for k, v in others.items())
    evidence = (f"top-1 error CE {c['mean_a']:.2f}%, focal γ=1 {c['mean_b']:.2f}% (Δ {c['delta']:+.2f} points, "
                f"seed spread {c['spread']:.2f}); other settings vs CE: {others_text or 'none'}")
    return Evidence(claim="Focal ≈ CE in top-1 on long-tailed data", published="gap ≤ 0.3 points "
                    "(Cui et al. 2019; Cao et al. 2019, CIFAR-LT)", evidence=evidence, verdict=verdict,
                    numbers=dict(c, **{f"delta_{k}": v for k, v in others.items()}))


def claim_tail(groups: pd.DataFrame, profile: str) -> Evidence:
    """Claim 2: focal alone does little for the tail group; class-balanced focal does more.

    Args:
        groups: :func:`focal.results.group_frame` rows of one dataset and imbalance; the tail group is ``few``
            when present, else ``tail``.
        profile: the profile name.
    """
    tail = "few" if "few" in set(groups["group"]) else "tail"
    ce = _values(groups, CE, "accuracy", group=tail)
    f = compare(ce, _values(groups, FOCAL, "accuracy", group=tail))
    cb = compare(ce, _values(groups, CB, "accuracy", group=tail))
    verdict = _inconclusive(profile, f, cb)
    if verdict is None:
        spread = max(f["spread"], cb["spread"])
        focal_little = f["delta"] <= spread
        cb_more = cb["delta"] - f["delta"] > spread
        if focal_little and cb_more:
            verdict = "reproduced: focal alone moves the tail within the spread; class-balanced weighting lifts it"
        elif focal_little:
            verdict = "partly: focal alone does little for the tail, but class-balanced weighting did not do more"
        else:
            verdict = f"not reproduced: focal alone raised {tail} accuracy by {f['delta']:.2f} points"
    evidence = (f"{tail}-group accuracy CE {f['mean_a']:.2f}%, focal γ=1 {f['mean_b']:.2f}% "
                f"(Δ {f['delta']:+.2f}), CB focal γ=1 {cb['mean_b']:.2f}% (Δ {cb['delta']:+.2f}); "
                f"seed spread {max(f['spread'], cb['spread']):.2f}")
    return Evidence(claim="Focal alone does little for the tail; re-weighting does more",
                    published="Cao et al. 2019, Cui et al. 2019 (CB focal beats focal on CIFAR-10-LT)",
                    evidence=evidence, verdict=verdict,
                    numbers=dict(tail_group=tail, ce=f["mean_a"], focal=f["mean_b"], cb=cb["mean_b"],
                                 delta_focal=f["delta"], delta_cb=cb["delta"],
                                 spread=max(f["spread"], cb["spread"])))


def claim_calibration(calib: pd.DataFrame, temps: pd.DataFrame, profile: str, focal: str = FLSD) -> Evidence:
    """Claim 3: focal (FLSD-53 by default) has lower ECE than CE before temperature scaling, and a fitted T
    closer to 1.

    Args:
        calib: :func:`focal.results.calibration_frames` calibration rows of one dataset and imbalance.
        temps: its temperature rows.
        profile: the profile name.
        focal: which focal setting to hold against CE.
    """
    before = dict(metric="ECE", stage="before T")
    c = compare(_values(calib, CE, "value", **before), _values(calib, focal, "value", **before))
    t_ce, t_f = (float(np.mean(_values(temps, lab, "temperature"))) for lab in (CE, focal))
    closer = abs(math.log(t_f)) < abs(math.log(t_ce))
    verdict = _inconclusive(profile, c)
    if verdict is None:
        lower = c["delta"] < -c["spread"]
        if lower and closer:
            verdict = f"reproduced: {focal} has lower ECE before scaling and needs a temperature closer to 1"
        elif lower:
            verdict = f"partly: {focal} has lower ECE before scaling, but its temperature is not closer to 1"
        else:
            verdict = f"not reproduced: {focal} does not lower ECE beyond the seed spread here"
    evidence = (f"ECE before scaling CE {c['mean_a']:.2f}%, {focal} {c['mean_b']:.2f}% (Δ {c['delta']:+.2f}, "
                f"seed spread {c['spread']:.2f}); fitted T: CE {t_ce:.2f}, {focal} {t_f:.2f}")
    return Evidence(claim="Focal lowers ECE before temperature scaling (T ≈ 1 where CE's is > 2)",
                    published="Mukhoti et al. 2020, ResNet-50 on balanced CIFAR-10: ECE 4.35% (CE, T=2.5) vs "
                              "1.55% (FLSD-53, T=1.1)",
                    evidence=evidence, verdict=verdict,
                    numbers=dict(c, t_ce=t_ce, t_focal=t_f, closer_to_one=closer))


def evaluate_claims(results, dataset: str, imbalance: float, profile: str, *, split_seed: int = 0,
                    calibration_focal: str = FLSD) -> list[Evidence]:
    """All three claims for one dataset and imbalance ratio of a profile's finished runs.

    Args:
        results: ``(config, metrics)`` pairs, e.g. from :func:`focal.results.train_runs`.
        dataset: which dataset's runs to judge.
        imbalance: which imbalance ratio's runs to judge.
        profile: the profile name (``"smoke"`` makes every verdict inconclusive).
        split_seed: seed of the fitting/evaluation split of the test set (chapter 5).
        calibration_focal: the focal setting held against CE in claim 3.
    """
    from focal import results as R

    runs = R.select(results, dataset, imbalance)
    calib, temps, _ = R.calibration_frames(runs, split_seed=split_seed)
    return [claim_accuracy(R.runs_frame(runs), profile), claim_tail(R.group_frame(runs)[0], profile),
            claim_calibration(calib, temps, profile, focal=calibration_focal)]


def verdict_table(evidence: list[Evidence]) -> pd.DataFrame:
    """The claims as a table: claim, published, ours, verdict.

    Example:
        >>> e = Evidence(claim="c", published="p", evidence="e", verdict="v", numbers={})
        >>> verdict_table([e]).columns.tolist()
        ['claim', 'published', 'our evidence', 'verdict']
    """
    return pd.DataFrame([dict(claim=e["claim"], published=e["published"], **{"our evidence": e["evidence"]},
                              verdict=e["verdict"]) for e in evidence])


def scope(profile) -> str:
    """One sentence on what the verdicts of a profile are about (the gpu profile tests the published setting).

    Example:
        >>> from focal.profiles import get_profile
        >>> scope(get_profile("gpu")).startswith("This page was built with the gpu profile")
        True
    """
    if profile.name == "gpu":
        return ("This page was built with the gpu profile, so the comparison runs on the published datasets and "
                "recipe: CIFAR-10-LT and CIFAR-100-LT, ResNet-32, 200 epochs.")
    return (f"This page was built with the {profile.name} profile ({profile.description}); its verdicts are about "
            "that setting, not about CIFAR.")
