"""Comparisons the book's chapters 4-6 draw from finished runs: paired differences against cross-entropy, accuracy
relative to the balanced reference, and confusion matrices.

Every loss is compared with CE seed by seed (:func:`focal.book.stats.paired_difference`): runs with the same seed share the
long-tailed subset, the initial weights and the batch order, so the difference of a pair is the effect of the loss
plus training noise. The balanced reference (:func:`focal.book.profiles.reference_configs`) trains on as many images as
the long-tailed set, spread evenly over the classes; a class's accuracy in a long-tailed run minus its accuracy in
the reference is what the imbalance did to that class, with the class's own difficulty taken out.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from focal.book.labels import book_order, loss_label
from focal.book.stats import mean_interval, paired_difference
from focal.engine.runs import load_logits

__all__ = ["paired_table", "reference_relative", "confusion_matrix", "confusion_matrices", "difficulty",
           "difficulty_sentence", "temperature_trend"]


def paired_table(frame: pd.DataFrame, value: str, *, baseline: str = loss_label("ce"), by: Sequence[str] = (),
                 confidence: float = 0.95, digits: int = 2) -> pd.DataFrame:
    """Paired difference ``loss - baseline`` of one column, per loss (and per ``by`` group), over shared seeds.

    Args:
        frame: tidy rows with columns ``loss``, ``seed``, ``value`` and the ``by`` columns (e.g.
            :func:`focal.book.results.runs_frame` or :func:`focal.book.results.group_frame`).
        value: the column to compare (e.g. ``"top1_error"``).
        baseline: the loss label every other loss is compared with.
        by: extra grouping columns (e.g. ``("group",)`` for head/middle/tail).
        confidence: coverage of the t-interval.
        digits: decimals of the ``text`` column.

    Returns:
        One row per (group, loss other than the baseline), book order: ``loss``, the ``by`` columns, ``n`` (paired
        seeds), ``baseline`` and ``mean`` (means over those seeds), ``diff``, ``low``, ``high`` and ``text``
        (``"+0.42 [-0.10, +0.94]"``).

    Example:
        >>> f = pd.DataFrame(dict(loss=["CE"] * 3 + ["focal γ=1"] * 3, seed=[0, 1, 2] * 2,
        ...                       top1_error=[30.0, 31.0, 29.0, 29.0, 30.5, 28.0]))
        >>> paired_table(f, "top1_error")[["loss", "n", "diff", "text"]].round(3).values.tolist()
        [['focal γ=1', 3, -0.833, '-0.83 [-1.55, -0.12]']]
    """
    missing = [c for c in ("loss", "seed", value, *by) if c not in frame.columns]
    if missing:
        raise ValueError(f"paired_table needs columns {['loss', 'seed', value, *by]}; missing {missing}")
    if baseline not in set(frame["loss"]):
        raise ValueError(f"baseline {baseline!r} has no rows; losses present: {book_order(frame['loss'])}")
    groups = frame.groupby(list(by), sort=False) if by else [((), frame)]
    rows = []
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = sub[sub["loss"] == baseline].groupby("seed")[value].mean()
        for loss in book_order(sub["loss"]):
            if loss == baseline:
                continue
            other = sub[sub["loss"] == loss].groupby("seed")[value].mean()
            seeds = sorted(set(base.index) & set(other.index))
            if not seeds:
                raise ValueError(f"{loss!r} and {baseline!r} share no seed")
            d = paired_difference({s: base[s] for s in seeds}, {s: other[s] for s in seeds}, confidence)
            rows.append({"loss": loss, **dict(zip(by, key)), "n": d.n, "baseline": float(base[seeds].mean()),
                         "mean": float(other[seeds].mean()), "diff": d.mean, "low": d.low, "high": d.high,
                         "text": d.text(digits)})
    return pd.DataFrame(rows)


def reference_relative(per_class: pd.DataFrame, reference: pd.DataFrame, *, reference_loss: str = loss_label("ce")
                       ) -> pd.DataFrame:
    """Per-class test accuracy of every long-tailed loss minus the balanced reference's (means over seeds).

    Args:
        per_class: :func:`focal.book.results.per_class_frame` of the long-tailed runs.
        reference: the same frame of the balanced reference runs.
        reference_loss: the reference loss every long-tailed loss is held against (the book uses CE: one yardstick
            for every loss).

    Returns:
        One row per (loss, class): ``loss``, ``class_index``, ``class``, ``class_rank``, ``train_count``,
        ``accuracy`` (long-tailed mean), ``reference`` (balanced mean), ``delta`` = accuracy - reference, all in
        percent, plus ``reference_spread`` (std over the reference seeds).

    Example:
        >>> lt = pd.DataFrame(dict(loss="CE", seed=[0, 1], class_index=0, **{"class": "a"}, class_rank=0,
        ...                        train_count=10, accuracy=[80.0, 82.0]))
        >>> ref = lt.assign(accuracy=[90.0, 90.0], train_count=5)
        >>> reference_relative(lt, ref)[["loss", "class", "delta"]].values.tolist()
        [['CE', 'a', -9.0]]
    """
    if reference_loss not in set(reference["loss"]):
        raise ValueError(f"reference_loss {reference_loss!r} is not among the reference runs' losses "
                         f"{book_order(reference['loss'])}")
    ref = reference[reference["loss"] == reference_loss].groupby("class_index")["accuracy"].agg(["mean", "std"])
    keys = ["loss", "class_index", "class", "class_rank", "train_count"]
    lt = per_class.groupby(keys, sort=False)["accuracy"].mean().reset_index()
    lt["reference"] = lt["class_index"].map(ref["mean"])
    lt["reference_spread"] = lt["class_index"].map(ref["std"])
    lt["delta"] = lt["accuracy"] - lt["reference"]
    lt["loss"] = pd.Categorical(lt["loss"], book_order(lt["loss"]), ordered=True)
    return lt.sort_values(["loss", "class_rank"]).reset_index(drop=True).assign(loss=lambda d: d["loss"].astype(str))


def confusion_matrix(logits, labels, num_classes: int | None = None) -> np.ndarray:
    """Counts ``M[true, predicted]`` of top-1 predictions.

    Example:
        >>> confusion_matrix([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]], [0, 0, 1]).tolist()
        [[1, 1], [1, 0]]
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, C) and labels (N,), got {logits.shape} and {labels.shape}")
    k = logits.shape[1] if num_classes is None else num_classes
    return np.bincount(labels * k + logits.argmax(1), minlength=k * k).reshape(k, k)


def confusion_matrices(results: Iterable[tuple], losses: Sequence[str]) -> dict[str, np.ndarray]:
    """Row-normalised confusion matrices (percent of each true class), pooled over the seeds of each loss.

    Args:
        results: ``(config, metrics)`` pairs of finished runs (their ``test_logits.npz`` is read).
        losses: loss labels to return.

    Returns:
        ``{loss label: (C, C) array}``; row ``i`` is where the test images of class ``i`` went, summing to 100.
    """

    counts: dict[str, np.ndarray] = {}
    for config, run in results:
        label = loss_label(config.loss, config.gamma)
        if label in losses:
            logits, labels = load_logits(run["run_dir"])
            m = confusion_matrix(logits, labels)
            counts[label] = counts.get(label, 0) + m
    missing = [lab for lab in losses if lab not in counts]
    if missing:
        raise ValueError(f"no runs of {missing}; losses present: "
                         f"{book_order(loss_label(c.loss, c.gamma) for c, _ in results)}")
    return {lab: 100 * counts[lab] / counts[lab].sum(axis=1, keepdims=True) for lab in losses}


def difficulty(reference_per_class: pd.DataFrame, *, reference_loss: str = loss_label("ce")) -> pd.DataFrame:
    """How hard each class is when every class has the same number of training images: the balanced reference's
    mean test accuracy per class, with its rank (1 = easiest) and the class's rank by long-tailed training count.

    Args:
        reference_per_class: :func:`focal.book.results.per_class_frame` of the balanced reference runs.
        reference_loss: which reference loss to read.

    Returns:
        One row per class, easiest first: ``class_index``, ``class``, ``accuracy`` (mean over seeds, percent),
        ``std``, ``easiest_rank`` (1 = highest accuracy).

    Example:
        >>> ref = pd.DataFrame(dict(loss="CE", seed=0, class_index=[0, 1, 2], **{"class": ["a", "b", "c"]},
        ...                         accuracy=[70.0, 95.0, 85.0]))
        >>> difficulty(ref)[["class", "easiest_rank"]].values.tolist()
        [['b', 1], ['c', 2], ['a', 3]]
    """
    ref = reference_per_class[reference_per_class["loss"] == reference_loss]
    if ref.empty:
        raise ValueError(f"no reference runs of {reference_loss!r}; losses present: "
                         f"{book_order(reference_per_class['loss'])}")
    out = ref.groupby(["class_index", "class"])["accuracy"].agg(["mean", "std"]).reset_index()
    out = out.rename(columns={"mean": "accuracy"}).sort_values("accuracy", ascending=False, kind="stable")
    out["easiest_rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


def difficulty_sentence(table: pd.DataFrame, tail: Sequence[int], head: Sequence[int]) -> str:
    """One sentence, computed from :func:`difficulty`'s table, on how hard the head and tail classes are at equal size.

    Example:
        >>> t = pd.DataFrame(dict(class_index=[2, 1, 0], **{"class": ["c", "b", "a"]}, accuracy=[95.0, 90.0, 60.0],
        ...                       easiest_rank=[1, 2, 3]))
        >>> difficulty_sentence(t, tail=[2], head=[0])
        'with the same number of training images, the tail class (c) ranks 1 of 3 from the easiest (95.0 %) and the head class (a) ranks 3 (60.0 %); the hardest class is a (60.0 %), the easiest c (95.0 %)'
    """
    rows = table.set_index("class_index")

    def part(name: str, members: Sequence[int]) -> str:
        sub = rows.loc[list(members)]
        many = len(members) > 1
        ranks = ", ".join(str(int(r)) for r in sub["easiest_rank"])
        accs = ", ".join(f"{a:.1f}" for a in sub["accuracy"])
        return f"the {name} class{'es' if many else ''} ({', '.join(sub['class'])}) rank{'' if many else 's'} {ranks}", accs

    (tail_text, tail_acc), (head_text, head_acc) = part("tail", tail), part("head", head)
    hardest, easiest = table.iloc[-1], table.iloc[0]
    return (f"with the same number of training images, {tail_text} of {len(table)} from the easiest ({tail_acc} %) "
            f"and {head_text} ({head_acc} %); the hardest class is {hardest['class']} ({hardest['accuracy']:.1f} %), "
            f"the easiest {easiest['class']} ({easiest['accuracy']:.1f} %)")


def temperature_trend(temps: pd.DataFrame, losses: Sequence[str]) -> dict[str, str]:
    """What the fitted temperatures do along a sweep of losses, in words computed from the numbers.

    Args:
        temps: :func:`focal.book.results.calibration_frames` temperature rows.
        losses: the sweep, in order of increasing focusing (e.g. :data:`focal.book.plots.compare.SWEEP_LOSSES`).

    Returns:
        ``trend`` ("falls at every step", "falls overall but not at every step", or "does not fall"), ``first`` and
        ``last`` (``"label (T)"``), ``under`` (the settings whose geometric-mean T is below 1, or "none"),
        ``over`` (those above 1, or "none"), and ``sentence``: all of it in words, each clause chosen by the numbers.

    Example:
        >>> t = pd.DataFrame(dict(loss=["CE", "focal γ=1", "focal γ=3"], seed=0, temperature=[1.6, 1.1, 0.8]))
        >>> temperature_trend(t, ["CE", "focal γ=1", "focal γ=3"])["trend"]
        'falls at every step'
    """
    shown = [lab for lab in losses if lab in set(temps["loss"])]
    if len(shown) < 2:
        raise ValueError(f"need at least two of {list(losses)} in temps, got {shown}")
    t, side = {}, {}
    for lab in shown:  # geometric mean of T and its 95 % interval
        t[lab], low, high = mean_interval(temps.loc[temps["loss"] == lab, "temperature"], log=True)
        side[lab] = "over" if low > 1 else "under" if high < 1 else "near"
    values = [t[lab] for lab in shown]
    steps = np.diff(values)
    if (steps < 0).all():
        trend = "falls at every step"
    elif values[-1] < values[0]:
        trend = "falls overall but not at every step"
    else:
        trend = "does not fall"
    under = [f"{lab} ({t[lab]:.2f})" for lab in shown if side[lab] == "under"]
    over = [f"{lab} ({t[lab]:.2f})" for lab in shown if side[lab] == "over"]
    near = [f"{lab} ({t[lab]:.2f})" for lab in shown if side[lab] == "near"]
    first, last = f"{shown[0]} ({values[0]:.2f})", f"{shown[-1]} ({values[-1]:.2f})"
    if trend == "does not fall":
        meaning = "so on this schedule focal loss does not lower the model's confidence along the sweep"
    else:
        meaning = ("a falling temperature means that focal loss lowers the model's confidence, the more the larger "
                   "the focusing")
    parts = []
    if over:
        parts.append(f"significantly above 1, over-confident: {', '.join(over)}")
    if near:
        parts.append(f"not distinguishable from 1 (the interval includes 1): {', '.join(near)}")
    if under:
        parts.append(f"significantly below 1, under-confident: {', '.join(under)}")
    meaning += "; " + "; ".join(parts)
    if under and over:
        meaning += " -- focal loss overshot, past calibrated, into too little confidence"
    sentence = (f"Along the sweep the fitted temperature (geometric mean over seeds) {trend}, from {first} to {last}: "
                f"{meaning}.")
    return dict(trend=trend, first=first, last=last, under=", ".join(under) or "none",
                over=", ".join(over) or "none", near=", ".join(near) or "none", sentence=sentence)
