"""Chapter 6: the published claims, our evidence for each, and a verdict computed from the numbers.

Each claim is tested on paired differences over seeds against cross-entropy (or, for claim 2b, against focal loss),
with a 95 % t-interval (:mod:`focal.book.stats`). Verdicts are *reproduced*, *contradicted* or *inconclusive*.

* **1. Focal ≈ CE in top-1 error** -- an equivalence claim: reproduced only if the whole interval of
  (focal γ=1 − CE) top-1 error lies inside ±:data:`TOP1_MARGIN` points, contradicted if it lies wholly outside.
* **2a. Focal alone does little for the tail** -- equivalence: the interval of (focal γ=1 − CE) tail-group accuracy
  inside ±:data:`TAIL_MARGIN` points.
* **2b. Class-balanced re-weighting lifts the tail more than focal alone** -- directional: (CB focal γ=1 − focal
  γ=1) tail-group accuracy > 0.
* **3a, 3b. Focal lowers the ECE before temperature scaling** -- directional, judged for Mukhoti et al.'s own
  settings (3a: FLSD-53; 3b: focal γ=3, when trained): (focal − CE) ECE < 0.
* **3c. FLSD-53 needs a temperature closer to 1** -- directional: the distance of log T from 0 is smaller for
  FLSD-53 than for CE.

The margins are declared here, before any run is looked at, and printed on the page; they are not tuned to the
results. At the ``smoke`` profile (one epoch on synthetic data) every verdict is "inconclusive", whatever the numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from focal.book import published
from focal.book import results as R
from focal.book.labels import loss_label
from focal.book.stats import (
    PairedDifference, directional_verdict, equivalence_verdict, mean_interval, paired_difference,
)

__all__ = ["TOP1_MARGIN", "TAIL_MARGIN", "Evidence", "headline_table", "claim_accuracy", "claim_tail_focal", "claim_tail_cb",
           "claim_calibration", "claim_temperature", "evaluate_claims", "verdict_table", "scope", "published_gaps"]

#: Equivalence margin of claim 1, in points of top-1 error: a gap smaller than one point is "about as accurate".
#: It lies well above the published gaps at imbalance 100 (0.02 and 0.09 points) and at about half the largest
#: independent published gap (1.90 points, :func:`published_gaps`).
TOP1_MARGIN = 1.0
#: Equivalence margin of claim 2a, in points of tail-group accuracy: "does little" means less than 3 points, small
#: against what class-balanced re-weighting buys on CIFAR-10-LT ρ=100 (4.19 points of *overall* error, Cui et al.'s
#: best class-balanced setting against their focal loss).
TAIL_MARGIN = 3.0

CE, FOCAL, CB, FLSD, FOCAL3 = (loss_label("ce"), loss_label("focal", 1), loss_label("cb-focal", 1),
                               loss_label("focal-flsd53"), loss_label("focal", 3))
_SMOKE = "smoke profile: one epoch on synthetic data only shows that the pipeline runs"


class Evidence(dict):
    """A claim's outcome: ``claim``, ``published``, ``evidence`` (our numbers with their interval), ``rule``,
    ``verdict`` (one of :data:`focal.book.stats.VERDICTS`), ``reason``, ``numbers`` (for ``myst_nb.glue``) and, where the
    evidence lists more than the judged comparison, ``summary`` (the judged comparison alone)."""


def _by_seed(df: pd.DataFrame, loss: str, column: str, **where) -> dict:
    mask = df["loss"] == loss
    for key, value in where.items():
        mask &= df[key] == value
    rows = df.loc[mask]
    if rows.empty:
        raise ValueError(f"no rows for loss {loss!r} {where} in column {column!r}; losses present: "
                         f"{sorted(set(df['loss']))}")
    return rows.groupby("seed")[column].mean().to_dict()


def _paired(baseline: dict, other: dict) -> PairedDifference:
    seeds = sorted(set(baseline) & set(other))
    if not seeds:
        raise ValueError("the two losses share no seed, so they cannot be paired")
    return paired_difference({s: baseline[s] for s in seeds}, {s: other[s] for s in seeds})


def _verdict(profile: str, verdict: str, diff: PairedDifference, reason: str) -> tuple[str, str]:
    if profile == "smoke":
        return "inconclusive", _SMOKE
    if diff.n < 2:
        return "inconclusive", "one seed gives no interval"
    return verdict, reason


def _n(diff: PairedDifference) -> str:
    return f"{diff.n} paired seeds"


def claim_accuracy(runs: pd.DataFrame, profile: str, margin: float = TOP1_MARGIN) -> Evidence:
    """Claim 1: focal (γ=1) ≈ CE in top-1 error, as an equivalence test with ``margin`` points.

    Args:
        runs: :func:`focal.book.results.runs_frame` rows of one dataset and imbalance.
        profile: the profile name (``"smoke"`` makes the verdict inconclusive).
        margin: the equivalence margin in points of top-1 error.
    """
    ce = _by_seed(runs, CE, "top1_error")
    d = _paired(ce, _by_seed(runs, FOCAL, "top1_error"))
    verdict = equivalence_verdict(d, margin)
    reason = {"reproduced": f"the whole interval lies inside ±{margin:g}",
              "contradicted": f"the whole interval lies outside ±{margin:g}",
              "inconclusive": f"the interval is not inside ±{margin:g}, nor wholly outside it"}[verdict]
    verdict, reason = _verdict(profile, verdict, d, reason)
    others = {lab: _paired(ce, _by_seed(runs, lab, "top1_error"))
              for lab in (loss_label("focal", 0.5), loss_label("focal", 2), FOCAL3, FLSD) if lab in set(runs["loss"])}
    summary = f"{FOCAL} − {CE} top-1 error: {d.text()} points ({_n(d)}; CE {np.mean(list(ce.values())):.2f}%)"
    evidence = summary + ("; other settings − CE: " + ", ".join(f"{k} {v.text()}" for k, v in others.items())
                          if others else "")
    return Evidence(claim="1. Focal ≈ CE in top-1 error", published=_published_top1(),
                    evidence=evidence, summary=summary, rule=f"equivalence: 95 % CI inside ±{margin:g} points",
                    verdict=verdict, reason=reason, numbers=dict(diff=d, margin=margin, others=others))


def _tail_name(groups: pd.DataFrame) -> str:
    return "few" if "few" in set(groups["group"]) else "tail"


def claim_tail_focal(groups: pd.DataFrame, profile: str, margin: float = TAIL_MARGIN) -> Evidence:
    """Claim 2a: focal (γ=1) alone changes tail-group accuracy by less than ``margin`` points (equivalence).

    Args:
        groups: :func:`focal.book.results.group_frame` rows of one dataset and imbalance; the tail group is ``few`` when
            present, else ``tail``.
        profile: the profile name.
        margin: the equivalence margin in points of tail-group accuracy.
    """
    tail = _tail_name(groups)
    d = _paired(_by_seed(groups, CE, "accuracy", group=tail), _by_seed(groups, FOCAL, "accuracy", group=tail))
    verdict = equivalence_verdict(d, margin)
    reason = {"reproduced": f"the whole interval lies inside ±{margin:g}",
              "contradicted": f"focal alone moved the {tail} by more than {margin:g} points",
              "inconclusive": f"the interval is not inside ±{margin:g}, nor wholly outside it"}[verdict]
    verdict, reason = _verdict(profile, verdict, d, reason)
    return Evidence(claim="2a. Focal alone does little for the tail",
                    published="the book's reading of Cao et al. 2019 and Cui et al. 2019, who report overall error "
                              "only (no per-group numbers)",
                    evidence=f"{FOCAL} − {CE} {tail}-group accuracy: {d.text()} points ({_n(d)})",
                    rule=f"equivalence: 95 % CI inside ±{margin:g} points", verdict=verdict, reason=reason,
                    numbers=dict(diff=d, margin=margin, tail_group=tail))


def claim_tail_cb(groups: pd.DataFrame, profile: str) -> Evidence:
    """Claim 2b: class-balanced focal raises tail-group accuracy above focal alone (directional), with what it
    costs the head reported next to it.

    Args:
        groups: :func:`focal.book.results.group_frame` rows of one dataset and imbalance.
        profile: the profile name.
    """
    tail, head = _tail_name(groups), ("many" if "many" in set(groups["group"]) else "head")
    d = _paired(_by_seed(groups, FOCAL, "accuracy", group=tail), _by_seed(groups, CB, "accuracy", group=tail))
    head_cost = _paired(_by_seed(groups, CE, "accuracy", group=head), _by_seed(groups, CB, "accuracy", group=head))
    verdict = directional_verdict(d, "positive")
    reason = {"reproduced": "the interval excludes zero on the claimed (positive) side",
              "contradicted": "the interval excludes zero on the negative side: re-weighting lowered the tail",
              "inconclusive": "the interval includes zero"}[verdict]
    verdict, reason = _verdict(profile, verdict, d, reason)
    return Evidence(claim="2b. Class-balanced re-weighting lifts the tail more than focal alone",
                    published=_published_cb(),
                    evidence=(f"{CB} − {FOCAL} {tail}-group accuracy: {d.text()} points ({_n(d)}); its cost: "
                              f"{CB} − {CE} {head}-group accuracy {head_cost.text()}"),
                    rule="directional: 95 % CI above 0", verdict=verdict, reason=reason,
                    numbers=dict(diff=d, head_cost=head_cost, tail_group=tail, head_group=head))


def claim_calibration(calib: pd.DataFrame, profile: str, focal: str = FLSD, number: str = "3a") -> Evidence:
    """Claim 3a/3b: ``focal`` has a lower ECE than CE before temperature scaling (directional).

    Args:
        calib: :func:`focal.book.results.calibration_frames` calibration rows of one dataset and imbalance.
        profile: the profile name.
        focal: the focal setting held against CE (Mukhoti et al.'s: ``"FLSD-53"`` or ``"focal γ=3"``).
        number: the claim's number on the page (3a for FLSD-53, 3b for focal γ=3).
    """
    before = dict(metric="ECE", stage="before T")
    d = _paired(_by_seed(calib, CE, "value", **before), _by_seed(calib, focal, "value", **before))
    verdict = directional_verdict(d, "negative")
    reason = {"reproduced": "the interval lies below zero",
              "contradicted": f"the interval lies above zero: {focal} is significantly worse calibrated than CE",
              "inconclusive": "the interval includes zero"}[verdict]
    verdict, reason = _verdict(profile, verdict, d, reason)
    pub = published.MUKHOTI2020_CIFAR10
    pub_text = (f"Mukhoti et al. 2020, ResNet-50, balanced CIFAR-10: ECE {pub[focal]['ece_before']:g} % ({focal}) vs "
                f"{pub[CE]['ece_before']:g} % (CE)" if focal in pub else "Mukhoti et al. 2020 (no row for this setting)")
    return Evidence(claim=f"{number}. {focal} lowers the ECE before temperature scaling", published=pub_text,
                    evidence=f"{focal} − CE ECE before scaling: {d.text()} points ({_n(d)})",
                    rule="directional: 95 % CI below 0", verdict=verdict, reason=reason,
                    numbers=dict(diff=d, focal=focal))


def claim_temperature(temps: pd.DataFrame, profile: str, focal: str = FLSD) -> Evidence:
    """Claim 3c: ``focal`` needs a temperature closer to 1 than CE's (directional): the paired difference of
    ``abs(log T)``, focal minus CE, is below 0.

    Args:
        temps: :func:`focal.book.results.calibration_frames` temperature rows of one dataset and imbalance.
        profile: the profile name.
        focal: the focal setting held against CE.
    """
    dist = temps.assign(log_distance=np.abs(np.log(temps["temperature"].to_numpy(float))))
    d = _paired(_by_seed(dist, CE, "log_distance"), _by_seed(dist, focal, "log_distance"))
    t_ce, t_f = (mean_interval(list(_by_seed(temps, lab, "temperature").values()), log=True)[0]
                 for lab in (CE, focal))
    verdict = directional_verdict(d, "negative")
    reason = {"reproduced": f"{focal}'s temperature is significantly closer to 1",
              "contradicted": f"{focal}'s temperature is significantly further from 1 than CE's",
              "inconclusive": "the interval includes zero"}[verdict]
    verdict, reason = _verdict(profile, verdict, d, reason)
    pub = published.MUKHOTI2020_CIFAR10
    return Evidence(claim=f"3c. {focal} needs a temperature closer to 1 than CE",
                    published=(f"Mukhoti et al. 2020: T = {pub[focal]['temperature']:g} ({focal}) vs "
                               f"{pub[CE]['temperature']:g} (CE)" if focal in pub else "Mukhoti et al. 2020"),
                    evidence=(f"fitted T (geometric mean): CE {t_ce:.2f}, {focal} {t_f:.2f}; "
                              f"|log T| difference {d.text(3)} ({_n(d)})"),
                    rule="directional: 95 % CI of |log T_focal| − |log T_CE| below 0", verdict=verdict,
                    reason=reason, numbers=dict(diff=d, t_ce=t_ce, t_focal=t_f))


def evaluate_claims(results, dataset: str, imbalance: float, profile: str, *, split_seed: int = 0,
                    top1_margin: float = TOP1_MARGIN, tail_margin: float = TAIL_MARGIN) -> list[Evidence]:
    """Every claim for one dataset and imbalance ratio of a profile's finished runs.

    Args:
        results: ``(config, metrics)`` pairs, e.g. from :func:`focal.book.results.train_runs`.
        dataset: which dataset's runs to judge.
        imbalance: which imbalance ratio's runs to judge.
        profile: the profile name (``"smoke"`` makes every verdict inconclusive).
        split_seed: seed of the fitting/evaluation split of the test set (chapter 5).
        top1_margin: equivalence margin of claim 1 (points of top-1 error).
        tail_margin: equivalence margin of claim 2a (points of tail-group accuracy).

    Returns:
        Claims 1, 2a, 2b, 3a (FLSD-53's ECE), 3b (focal γ=3's ECE, when trained) and 3c (FLSD-53's temperature).
    """
    runs = R.select(results, dataset, imbalance)
    calib, temps, _ = R.calibration_frames(runs, split_seed=split_seed)
    groups = R.group_frame(runs)[0]
    frame = R.runs_frame(runs)
    cb = claim_tail_cb(groups, profile)
    overall = _paired(_by_seed(frame, CE, "top1_error"), _by_seed(frame, CB, "top1_error"))
    cb["evidence"] += f"; overall top-1 error, CB focal − CE: {overall.text()} (the published metric)"
    cb["numbers"]["overall"] = overall
    found = [claim_accuracy(frame, profile, top1_margin), claim_tail_focal(groups, profile, tail_margin), cb,
             claim_calibration(calib, profile, FLSD)]
    if FOCAL3 in set(calib["loss"]):
        found.append(claim_calibration(calib, profile, FOCAL3, number="3b"))
    found.append(claim_temperature(temps, profile, FLSD))
    return found


def headline_table(evidence: list[Evidence]) -> pd.DataFrame:
    """The book's headline (the intro page): claim, the judged comparison with its interval, verdict.

    Example:
        >>> e = Evidence(claim="c", published="p", evidence="e; more", summary="e", rule="r", verdict="reproduced",
        ...              reason="x", numbers={})
        >>> headline_table([e]).loc["c"].tolist()
        ['e', 'reproduced (x)']
    """
    return pd.DataFrame([{"claim": e["claim"], "our evidence (mean difference [95 % CI])": e.get("summary",
                          e["evidence"]), "verdict": f"{e['verdict']} ({e['reason']})"} for e in evidence]
                        ).set_index("claim")


def verdict_table(evidence: list[Evidence]) -> pd.DataFrame:
    """The claims as a table: claim, published, our evidence (95 % CI), rule, verdict.

    Example:
        >>> e = Evidence(claim="c", published="p", evidence="e", rule="r", verdict="inconclusive", reason="x",
        ...              numbers={})
        >>> verdict_table([e]).columns.tolist()
        ['claim', 'published', 'our evidence (mean difference [95 % CI])', 'rule', 'verdict']
    """
    return pd.DataFrame([{"claim": e["claim"], "published": e["published"],
                          "our evidence (mean difference [95 % CI])": e["evidence"], "rule": e["rule"],
                          "verdict": f"{e['verdict']}: {e['reason']}"} for e in evidence])


def published_gaps() -> dict[str, str]:
    """What the papers' tables say about focal − CE, for chapter 6's prose (computed, never typed).

    Returns:
        ``at_100`` (the independent gaps at imbalance 100 on the exponential long tail), ``low``/``high`` (the range
        over every independent column) and ``n`` (how many columns).

    Example:
        >>> g = published_gaps()
        >>> g["low"], g["high"], g["n"]
        ('-1.90', '+1.17', '16')
    """
    rows = published.focal_minus_ce()
    gaps = [r["gap"] for r in rows]
    at_100 = [r for r in rows if r["imbalance"] == 100 and r["lt_profile"] == "exp"]
    names = {"cifar10-lt": "CIFAR-10-LT", "cifar100-lt": "CIFAR-100-LT"}
    return dict(at_100=", ".join(f"{r['gap']:+.2f} ({names[r['dataset']]})" for r in at_100),
                low=f"{min(gaps):+.2f}", high=f"{max(gaps):+.2f}", n=str(len(rows)))


def _published_cb() -> str:
    cui = published.CUI2019_TOP1_ERROR["cifar10-lt"]
    return (f"Cui et al. 2019, CIFAR-10-LT ρ=100: best class-balanced {cui['Class-balanced (best)'][100]:.2f} % vs "
            f"focal {cui['Focal (γ=1)'][100]:.2f} % top-1 error (overall error, sigmoid form; Cao et al. 2019 repeat "
            "both numbers)")


def _published_top1() -> str:
    rows = {(r["dataset"], r["imbalance"]): r for r in published.focal_minus_ce() if r["lt_profile"] == "exp"}
    c10 = rows[("cifar10-lt", 100.0)]
    g = published_gaps()
    return (f"CIFAR-10-LT ρ=100: focal {c10['focal']:.2f} % vs CE {c10['ce']:.2f} % (Cui et al. 2019, sigmoid "
            f"focal; reprinted by Cao et al. 2019); over {g['n']} independent columns focal − CE ranges "
            f"{g['low']} … {g['high']} points")


def scope(profile) -> str:
    """One sentence on what the verdicts of a profile are about (the gpu profile tests the published setting).

    Example:
        >>> from focal.book.profiles import get_profile
        >>> scope(get_profile("gpu")).startswith("This page was built with the gpu profile")
        True
    """
    if profile.name == "gpu":
        return ("This page was built with the gpu profile, so the comparison runs on the published datasets and "
                "recipe: CIFAR-10-LT and CIFAR-100-LT, ResNet-32, 200 epochs.")
    return (f"This page was built with the {profile.name} profile ({profile.description}); its verdicts are about "
            "that setting, not about CIFAR.")

