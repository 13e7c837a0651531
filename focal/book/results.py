"""From finished training runs to the tidy tables the book's chapters 3-6 show and plot.

Chapter 4 trains (or loads) the runs of a profile with :func:`focal.engine.grid.train_many`; everything here only
reads what the runs wrote (``metrics.json`` and ``test_logits.npz``), so chapters 5 and 6 never retrain. Percentages throughout:
top-1 error, accuracies and calibration errors are in percent in every frame.

Temperature scaling (chapter 5) is fitted on held-out data, never on the numbers it is judged by: the balanced test
set is split per class into two halves (:func:`balanced_halves`); T is fitted on the first half by NLL
(:func:`focal.engine.metrics.fit_temperature`) and every calibration error, before and after, is measured on the second.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from focal.book.labels import book_order, loss_label
from focal.engine import metrics
from focal.engine.data import longtail_counts
from focal.engine.runs import code_fingerprint, load_logits

__all__ = [
    "runs_frame", "seed_summary", "history_frame", "per_class_frame", "class_thirds",
    "group_frame", "balanced_halves", "calibration_frames", "class_counts_frame", "format_mean_std", "select",
    "summary_table", "calibration_table", "load_labels", "provenance",
]


def select(results: Iterable[tuple], dataset: str, imbalance: float) -> list[tuple]:
    """The ``(config, metrics)`` pairs of one dataset and imbalance ratio.

    Example:
        >>> from types import SimpleNamespace as C
        >>> len(select([(C(dataset="a", imbalance=10.0), {}), (C(dataset="b", imbalance=10.0), {})], "a", 10))
        1
    """
    out = [(c, r) for c, r in results if c.dataset == dataset and c.imbalance == float(imbalance)]
    if not out:
        raise ValueError(f"no runs of dataset {dataset!r} at imbalance {imbalance!r}")
    return out


def provenance(results: Iterable[tuple]) -> dict[str, str]:
    """What produced a set of runs, for the page's provenance box.

    Returns:
        ``dataset`` (the description of the first run, without its subset seed, which differs between seeds),
        ``hardware`` (every distinct hardware line that trained them), ``code`` (every distinct code fingerprint
        with its torch version, and whether it is this checkout's), ``runs`` (how many were trained now, resumed,
        or reused from disk, and how many of those are stale) and ``trained`` (the dates they were trained).

    Example:
        >>> run = dict(description="X-LT, exp long tail, subset seed 1", hardware="cpu", status="reused",
        ...            code=dict(fingerprint="abc", torch="2.9"), trained_at="2026-11-30T10:00:00Z")
        >>> p = provenance([(None, run)])
        >>> p["dataset"], p["runs"], p["trained"]
        ('X-LT, exp long tail', '1 run: 1 reused from disk', '2026-11-30')
        >>> p["code"]
        'abc (torch 2.9, other code)'
    """
    results = list(results)
    if not results:
        raise ValueError("results is empty: train or load at least one run first")
    runs = [run for _, run in results]
    dataset = runs[0].get("description", "unknown dataset").rsplit(", subset seed", 1)[0]
    hardware = "; ".join(sorted({run.get("hardware", "unknown") for run in runs}))
    torch_of = {(run.get("code") or {}).get("fingerprint", "unrecorded"): (run.get("code") or {}).get("torch", "?")
                for run in runs}
    current = code_fingerprint()
    code = "; ".join(f"{c} (torch {torch_of[c]}{', this checkout' if c == current else ', other code'})"
                     for c in sorted(torch_of))
    count = {k: sum(run.get("status") == k for run in runs) for k in ("trained", "resumed", "reused", "reused-stale")}
    parts = [f"{count['trained']} trained now" if count["trained"] else "",
             f"{count['resumed']} resumed" if count["resumed"] else "",
             f"{count['reused'] + count['reused-stale']} reused from disk" if count["reused"] + count["reused-stale"]
             else "",
             f"{count['reused-stale']} of them stale, kept on request (reuse-stale)" if count["reused-stale"] else ""]
    n = len(runs)
    text = f"{n} run{'s' * (n != 1)}: " + ", ".join(p for p in parts if p)
    dates = sorted({run["trained_at"][:10] for run in runs if run.get("trained_at")})
    trained = "unrecorded" if not dates else dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    return dict(dataset=dataset, hardware=hardware, code=code, runs=text, trained=trained)


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``"mean ± std"`` with a fixed number of decimals; a missing std (one seed) prints as the mean alone.

    Example:
        >>> format_mean_std(29.637, 0.5), format_mean_std(1.0, float("nan"))
        ('29.64 ± 0.50', '1.00')
    """
    if mean is None or np.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if std is None or np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def runs_frame(results: Iterable[tuple]) -> pd.DataFrame:
    """One row per run: identity (dataset, imbalance, loss label, seed) and the final-epoch test metrics.

    Columns: ``dataset``, ``imbalance``, ``lt_profile``, ``model``, ``epochs``, ``loss`` (label, e.g.
    "focal γ=1"), ``loss_name``, ``gamma``, ``seed``, ``top1_error``, ``best_top1_error``, ``best_epoch``,
    ``ece``, ``adaptive_ece``, ``classwise_ece``, ``mce`` (percent), ``nll``, ``brier``, ``train_time_s``,
    ``hardware``, ``description``, ``run_dir``.
    """
    rows = []
    for config, run in results:
        final = run["final"]
        rows.append(dict(
            dataset=config.dataset, imbalance=config.imbalance, lt_profile=config.lt_profile, model=config.model,
            epochs=config.epochs, loss=loss_label(config.loss, config.gamma), loss_name=config.loss,
            gamma=config.gamma, seed=config.seed, top1_error=final["top1_error"],
            best_top1_error=run["best_top1_error"], best_epoch=run["best_epoch"],
            **{k: 100 * final[k] for k in ("ece", "adaptive_ece", "classwise_ece", "mce")},
            nll=final["nll"], brier=final["brier"], train_time_s=run.get("train_time_s", np.nan),
            hardware=run.get("hardware", "unknown"), description=run.get("description", config.dataset),
            run_dir=run["run_dir"]))
    if not rows:
        raise ValueError("results is empty: train or load at least one run first")
    return pd.DataFrame(rows)


def seed_summary(runs: pd.DataFrame, value: str = "top1_error",
                 by: Sequence[str] = ("dataset", "imbalance", "loss")) -> pd.DataFrame:
    """Mean ± sample std over seeds of one column, per group (default: per dataset, imbalance and loss).

    Example:
        >>> r = pd.DataFrame(dict(dataset="d", imbalance=100., loss=["CE", "CE"], seed=[0, 1], top1_error=[30., 32.]))
        >>> seed_summary(r)[["loss", "mean", "std", "seeds", "text"]].values.tolist()
        [['CE', 31.0, 1.4142135623730951, 2, '31.00 ± 1.41']]
    """
    rows = []
    for key, sub in runs.groupby(list(by), sort=False):
        mean, std = metrics.mean_std(sub[value].to_numpy(float))
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": mean, "std": std,
                     "seeds": len(sub), "text": format_mean_std(mean, std)})
    return pd.DataFrame(rows)


def summary_table(summary: pd.DataFrame, column: str = "text") -> pd.DataFrame:
    """Pivot :func:`seed_summary` output to one row per loss (book order) and one column per dataset and ρ.

    Example:
        >>> r = pd.DataFrame(dict(dataset="d", imbalance=100., loss=["focal γ=1", "CE"], seed=0, top1_error=[3., 4.]))
        >>> summary_table(seed_summary(r)).index.tolist()
        ['CE', 'focal γ=1']
    """
    table = summary.assign(setting=[f"{d} ρ={i:g}" for d, i in zip(summary["dataset"], summary["imbalance"])])
    table = table.pivot(index="loss", columns="setting", values=column)
    table = table.loc[book_order(sorted(table.index))]
    table.columns.name = None
    return table


def history_frame(results: Iterable[tuple]) -> pd.DataFrame:
    """Per-epoch history of every run (columns ``loss``, ``seed``, ``epoch``, ``lr``, ``train_loss``,
    ``train_acc`` and, where evaluated, ``top1_error`` and ``ece``, all in percent), for learning curves."""
    rows = []
    for config, run in results:
        for h in run["history"]:
            rows.append(dict(dataset=config.dataset, imbalance=config.imbalance,
                             loss=loss_label(config.loss, config.gamma), seed=config.seed, epoch=h["epoch"],
                             lr=h["lr"], train_loss=h["train_loss"], train_acc=100 * h["train_acc"],
                             top1_error=h["top1_error"], ece=None if h["ece"] is None else 100 * h["ece"]))
    return pd.DataFrame(rows)


def per_class_frame(results: Iterable[tuple], classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Test accuracy per class and run, with each class's training count and its rank (0 = most images).

    Columns: ``dataset``, ``imbalance``, ``loss``, ``seed``, ``class_index``, ``class``, ``class_rank``,
    ``train_count``, ``accuracy`` (percent).
    """
    rows = []
    for config, run in results:
        counts = np.asarray(run["train_counts"])
        rank = np.empty(len(counts), int)
        rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
        for k, acc in enumerate(run["final"]["per_class_accuracy"]):
            rows.append(dict(dataset=config.dataset, imbalance=config.imbalance,
                             loss=loss_label(config.loss, config.gamma), seed=config.seed, class_index=k,
                             **{"class": classes[k] if classes is not None else str(k)}, class_rank=int(rank[k]),
                             train_count=int(counts[k]), accuracy=100 * acc))
    return pd.DataFrame(rows)


def class_thirds(train_counts: Sequence[int]) -> dict[str, list[int]]:
    """Head / middle / tail thirds of the classes by training count (10 classes: 3/4/3 as
    :func:`focal.engine.metrics.class_groups`; otherwise ``numpy.array_split`` of the ranked classes).

    Example:
        >>> class_thirds([50, 40, 30, 20, 10])
        {'head': [0, 1], 'middle': [2, 3], 'tail': [4]}
    """
    counts = np.asarray(train_counts)
    groups = metrics.class_groups(counts)
    if "head" in groups:
        return {k: groups[k] for k in ("head", "middle", "tail")}
    ranked = np.argsort(-counts, kind="stable")
    return {name: sorted(part.tolist()) for name, part in zip(("head", "middle", "tail"), np.array_split(ranked, 3))}


def group_frame(results: Sequence[tuple]) -> tuple[pd.DataFrame, str]:
    """Mean test accuracy per class group and run, and a sentence saying which grouping was used.

    The many (> 100 training images) / medium (20-100) / few (< 20) split is used when all three groups are
    non-empty; otherwise (e.g. Fashion-MNIST-LT or CIFAR-10-LT at imbalance 100, whose smallest class has 60 or 50
    images) the head / middle / tail thirds by training count.

    Returns:
        (DataFrame with columns ``loss``, ``seed``, ``group``, ``classes``, ``accuracy`` (percent), description).
    """
    results = list(results)
    counts = np.asarray(results[0][1]["train_counts"])
    groups = metrics.class_groups(counts)
    shots = {k: groups[k] for k in ("many", "medium", "few")}
    if all(shots.values()):
        chosen, note = shots, ("many (more than 100 training images), medium (20-100) and few (fewer than 20) "
                               "shots")
    else:
        empty = [k for k, v in shots.items() if not v]
        chosen = class_thirds(counts)
        note = (f"head / middle / tail thirds by training count ({'/'.join(str(len(v)) for v in chosen.values())} "
                f"classes), because the {' and '.join(empty)}-shot group is empty here")
    rows = []
    for config, run in results:
        acc = np.asarray(run["final"]["per_class_accuracy"], float)
        for name, members in chosen.items():
            rows.append(dict(dataset=config.dataset, imbalance=config.imbalance,
                             loss=loss_label(config.loss, config.gamma), seed=config.seed, group=name,
                             classes=len(members), accuracy=100 * float(np.nanmean(acc[members]))))
    return pd.DataFrame(rows), note


def balanced_halves(labels, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split test indices into two halves with (within one) the same number of examples of every class.

    The first half fits the temperature, the second measures calibration; on a balanced test set both halves stay
    balanced.

    Example:
        >>> a, b = balanced_halves([0, 0, 1, 1, 1, 1])
        >>> sorted(a.tolist() + b.tolist()), len(a), len(b)
        ([0, 1, 2, 3, 4, 5], 3, 3)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size < 2:
        raise ValueError(f"labels must be 1-D with at least 2 entries, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    first, second = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        first.append(idx[: len(idx) // 2])
        second.append(idx[len(idx) // 2:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


_CALIBRATION = {"ECE": "ece", "AdaECE": "adaptive_ece", "classwise ECE": "classwise_ece"}


def calibration_frames(results: Iterable[tuple], *, split_seed: int = 0, n_bins: int = 15,
                       diagram_losses: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Calibration before/after temperature scaling for every run (T fitted on held-out data).

    Args:
        results: ``(config, metrics)`` pairs of finished runs (their ``test_logits.npz`` is read).
        split_seed: seed of :func:`balanced_halves`.
        n_bins: bins of the calibration errors.
        diagram_losses: loss labels whose reliability-diagram data to return, pooled over every seed (each run's
            evaluation half; "after T" divides each run's logits by its own fitted T).

    Returns:
        ``(calib, temps, diagrams)``: ``calib`` has columns ``loss``, ``seed``, ``metric`` (ECE / AdaECE /
        classwise ECE), ``stage`` ("before T" / "after T") and ``value`` (percent, on the evaluation half);
        ``temps`` has ``loss``, ``seed``, ``temperature``, ``nll_before``, ``nll_after``;
        ``diagrams`` maps ``(loss, stage)`` to :func:`focal.engine.metrics.reliability_diagram` data.
    """
    calib_rows, temp_rows, diagrams, pooled = [], [], {}, {}
    for config, run in results:
        label = loss_label(config.loss, config.gamma)
        logits, labels = load_logits(run["run_dir"])
        fit, ev = balanced_halves(labels, seed=split_seed)
        s = metrics.summarize(logits[ev], labels[ev], calib_logits=logits[fit], calib_labels=labels[fit],
                              n_bins=n_bins)
        ident = dict(dataset=config.dataset, imbalance=config.imbalance, loss=label, seed=config.seed)
        for name, key in _CALIBRATION.items():
            calib_rows.append({**ident, "metric": name, "stage": "before T", "value": 100 * s[key]})
            calib_rows.append({**ident, "metric": name, "stage": "after T", "value": 100 * s[f"ts_{key}"]})
        temp_rows.append({**ident, "temperature": s["temperature"], "nll_before": s["nll"],
                          "nll_after": s["ts_nll"]})
        if label in diagram_losses:  # pooled over seeds: each run's evaluation half, scaled by its own T
            pooled.setdefault(label, []).append((logits[ev], labels[ev], s["temperature"]))
    for label, parts in pooled.items():
        z = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        scaled = np.concatenate([p[0] / p[2] for p in parts])
        diagrams[(label, "before T")] = metrics.reliability_diagram(_softmax(z), y, n_bins)
        diagrams[(label, "after T")] = metrics.reliability_diagram(_softmax(scaled), y, n_bins)
    return pd.DataFrame(calib_rows), pd.DataFrame(temp_rows), diagrams


def calibration_table(calib: pd.DataFrame, temps: pd.DataFrame) -> pd.DataFrame:
    """One row per loss (book order): each calibration error as ``"before → after"`` temperature scaling and the
    fitted T, each ``"mean ± std"`` over seeds.

    Example:
        >>> c = pd.DataFrame(dict(loss="CE", seed=[0, 1, 0, 1], metric="ECE", value=[4.0, 6.0, 1.0, 1.0],
        ...                       stage=["before T"] * 2 + ["after T"] * 2))
        >>> t = pd.DataFrame(dict(loss="CE", seed=[0, 1], temperature=[2.0, 2.0]))
        >>> calibration_table(c, t).loc["CE"].tolist()
        ['5.00 ± 1.41 → 1.00 ± 0.00', '2.00 ± 0.00']
    """
    def text(values) -> str:
        return format_mean_std(*metrics.mean_std(values.to_numpy(float)))

    table = {}
    for metric, sub in calib.groupby("metric", sort=False):
        before, after = (sub[sub["stage"] == s].groupby("loss")["value"] for s in ("before T", "after T"))
        table[f"{metric} (%)"] = {loss: f"{text(b)} → {text(after.get_group(loss))}" for loss, b in before}
    table["fitted T"] = {loss: text(g["temperature"]) for loss, g in temps.groupby("loss")}
    out = pd.DataFrame(table)
    out = out.loc[book_order(sorted(out.index))]
    out.index.name = "loss"
    return out


def load_labels(run: dict) -> np.ndarray:
    """The test labels a finished run stored (from its ``test_logits.npz``)."""
    return load_logits(run["run_dir"])[1]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def class_counts_frame(n_max: int, num_classes: int, imbalances: Sequence[float] = (10, 50, 100, 200),
                       lt_profiles: Sequence[str] = ("exp", "step")) -> pd.DataFrame:
    """Training images per class for each long tail and imbalance ratio (tidy, for a plot or a table).

    Example:
        >>> df = class_counts_frame(5000, 10, [100], ["exp"])
        >>> df["count"].tolist()
        [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    """
    rows = []
    for prof in lt_profiles:
        for imb in imbalances:
            for k, n in enumerate(longtail_counts(n_max, num_classes, float(imb), lt_profile=prof)):
                rows.append(dict(lt_profile=prof, imbalance=float(imb), class_index=k, count=int(n)))
    return pd.DataFrame(rows)
