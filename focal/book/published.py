"""Published numbers the book compares against, in one place, each with its source.

Every value here was read in the papers' own text or the authors' code/README. The book cites the papers through
its bibliography (``book/references.bib``), and every published number it prints (chapters 4-6) carries its paper
and table. Nothing in this module is one of *our* results: the book labels these
tables "published" and prints them beside, never inside, our own numbers.

Sources (keys of ``book/references.bib``):

* ``cui2019classbalanced`` -- Cui et al., *Class-Balanced Loss Based on Effective Number of Samples*, CVPR 2019, Table 2:
  top-1 error (%) of ResNet-32 on long-tailed CIFAR (exponential long tail), balanced test set.
* ``cao2019ldam`` -- Cao et al., *Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss*,
  NeurIPS 2019, Table 2: same setting, exponential and step long tails, imbalance 100 and 10. Its CE ("ERM") and focal
  rows at the exponential long tail are Cui et al.'s numbers reprinted (equal to 0.01 points), so they are one source,
  not two confirmations (:data:`REPRINTED`); so are its CB focal cells that equal Cui et al.'s best class-balanced
  number (CIFAR-10-LT ρ=100: 25.43, CIFAR-100-LT ρ=10: 42.01). Its step-long-tail rows are its own.

* ``mukhoti2020calibrating`` -- Mukhoti et al., *Calibrating Deep Neural Networks using Focal Loss*, NeurIPS 2020, the
  authors' README: ResNet-50 on *balanced* CIFAR-10, error and ECE before/after temperature scaling.
* ``cao2019ldam``, the authors' code (``imbalance_cifar.py``): the CIFAR-10-LT class counts.

Forms of the loss: Cui et al.'s focal and class-balanced focal rows use the **sigmoid** form (one binary focal term
per class); Cao et al.'s focal rows use the softmax form with γ = 1, as this book does.
"""
from __future__ import annotations

import pandas as pd

from focal.book.labels import loss_label

__all__ = [
    "CUI2019_TOP1_ERROR",
    "CAO2019_TOP1_ERROR",
    "MUKHOTI2020_CIFAR10",
    "CIFAR10_LT_COUNTS",
    "CIFAR_LT_TOTALS",
    "REPRINTED",
    "is_reprint",
    "published_top1_rows",
    "focal_minus_ce",
    "published_calibration_rows",
    "MATCHING_ROWS",
    "comparison_table",
]

#: Cui et al. 2019, Table 2. ``{dataset: {loss label: {imbalance: top-1 error %}}}``.
#: "Focal (γ=1)" is one of three focal rows in the paper (it also has γ=0.5 and γ=2);
#: "Class-balanced (best)" is the best class-balanced setting per column, not one fixed loss.
CUI2019_TOP1_ERROR: dict[str, dict[str, dict[float, float]]] = {
    "cifar10-lt": {
        "Softmax CE": dict(zip((200, 100, 50, 20, 10, 1), (34.32, 29.64, 25.19, 17.77, 13.61, 6.61))),
        "Sigmoid CE": dict(zip((200, 100, 50, 20, 10, 1), (34.51, 29.55, 23.84, 16.40, 12.97, 6.36))),
        "Focal (γ=1)": dict(zip((200, 100, 50, 20, 10, 1), (34.71, 29.62, 23.29, 17.24, 13.34, 6.60))),
        "Class-balanced (best)": dict(zip((200, 100, 50, 20, 10, 1), (31.11, 25.43, 20.73, 15.64, 12.51, 6.36))),
    },
    "cifar100-lt": {
        "Softmax CE": dict(zip((200, 100, 50, 20, 10, 1), (65.16, 61.68, 56.15, 48.86, 44.29, 29.07))),
        "Sigmoid CE": dict(zip((200, 100, 50, 20, 10, 1), (64.39, 61.22, 55.85, 48.57, 44.73, 28.39))),
        "Focal (γ=1)": dict(zip((200, 100, 50, 20, 10, 1), (64.38, 61.59, 55.68, 48.05, 44.22, 28.85))),
        "Class-balanced (best)": dict(zip((200, 100, 50, 20, 10, 1), (63.77, 60.40, 54.68, 47.41, 42.01, 28.39))),
    },
}

#: Cao et al. 2019, Table 2. ``{(dataset, long tail): {loss label: {imbalance: top-1 error %}}}``.
CAO2019_TOP1_ERROR: dict[tuple[str, str], dict[str, dict[float, float]]] = {
    ("cifar10-lt", "exp"): {
        "ERM (CE)": {100: 29.64, 10: 13.61},
        "Focal": {100: 29.62, 10: 13.34},
        "CB Focal": {100: 25.43, 10: 12.90},
        "LDAM-DRW": {100: 22.97, 10: 11.84},
    },
    ("cifar10-lt", "step"): {
        "ERM (CE)": {100: 36.70, 10: 17.50},
        "Focal": {100: 36.09, 10: 16.36},
        "CB Focal": {100: 39.73, 10: 16.54},
        "LDAM-DRW": {100: 23.08, 10: 12.19},
    },
    ("cifar100-lt", "exp"): {
        "ERM (CE)": {100: 61.68, 10: 44.30},
        "Focal": {100: 61.59, 10: 44.22},
        "CB Focal": {100: 63.98, 10: 42.01},
        "LDAM-DRW": {100: 57.96, 10: 41.29},
    },
    ("cifar100-lt", "step"): {
        "ERM (CE)": {100: 61.45, 10: 45.37},
        "Focal": {100: 61.43, 10: 46.54},
        "CB Focal": {100: 80.24, 10: 49.98},
        "LDAM-DRW": {100: 54.64, 10: 40.54},
    },
}

#: Mukhoti et al. 2020 (authors' README), ResNet-50 on balanced CIFAR-10: top-1 error %, ECE % before and
#: after temperature scaling, and the fitted temperature; keyed by our label of the same setting (the paper's rows
#: are "Cross-Entropy", "Focal Loss (γ=3)" and "FLSD-53").
MUKHOTI2020_CIFAR10: dict[str, dict[str, float]] = {
    loss_label("ce"): {"top1_error": 4.95, "ece_before": 4.35, "ece_after": 1.35, "temperature": 2.5},
    loss_label("focal", 3): {"top1_error": 5.25, "ece_before": 1.48, "ece_after": 1.42, "temperature": 1.1},
    loss_label("focal-flsd53"): {"top1_error": 4.98, "ece_before": 1.55, "ece_after": 0.95, "temperature": 1.1},
}

#: CIFAR-10-LT training-set class counts at imbalance 100, class 0 (head) to 9 (tail), as LDAM-DRW's
#: ``imbalance_cifar.py`` builds them.
CIFAR10_LT_COUNTS: dict[float, tuple[int, ...]] = {
    100: (5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50),
}

#: Published training-set sizes of the exponential-long-tail long-tailed CIFAR sets.
#: ``{(dataset, imbalance): number of training images}``.
CIFAR_LT_TOTALS: dict[tuple[str, float], int] = {
    ("cifar10-lt", 100): 12406,
    ("cifar10-lt", 50): 13996,
    ("cifar10-lt", 10): 20431,
    ("cifar100-lt", 100): 10847,
    ("cifar100-lt", 10): 19573,
}


#: Rows of Cao et al. 2019, Table 2 that reprint Cui et al. 2019, Table 2: ``(dataset, lt_profile, Cao's row)``.
REPRINTED: frozenset[tuple[str, str, str]] = frozenset(
    (ds, "exp", row) for ds in ("cifar10-lt", "cifar100-lt") for row in ("ERM (CE)", "Focal"))

#: Cao's rows and the row of Cui et al. each one would reprint.
_CUI_ROW = {"ERM (CE)": "Softmax CE", "Focal": "Focal (γ=1)", "CB Focal": "Class-balanced (best)"}


def is_reprint(dataset: str, lt_profile: str, cao_row: str, imbalance: float) -> bool:
    """True when a cell of Cao et al.'s Table 2 repeats Cui et al.'s number: a whole reprinted row
    (:data:`REPRINTED`), or a cell equal to Cui et al.'s matching cell to 0.01 points (the CB focal cells at
    CIFAR-10-LT ρ=100 and CIFAR-100-LT ρ=10 equal Cui's best class-balanced numbers).

    Example:
        >>> is_reprint("cifar10-lt", "exp", "CB Focal", 100), is_reprint("cifar10-lt", "exp", "CB Focal", 10)
        (True, False)
    """
    if (dataset, lt_profile, cao_row) in REPRINTED:
        return True
    if lt_profile != "exp" or cao_row not in _CUI_ROW:
        return False
    cao = CAO2019_TOP1_ERROR.get((dataset, lt_profile), {}).get(cao_row, {}).get(imbalance)
    cui = CUI2019_TOP1_ERROR.get(dataset, {}).get(_CUI_ROW[cao_row], {}).get(imbalance)
    return cao is not None and cui is not None and abs(cao - cui) < 0.015


def focal_minus_ce() -> list[dict]:
    """Every *independent* published focal − CE gap in top-1 error (points): Cui et al.'s columns and Cao et al.'s
    own (step-long-tail) columns; Cao et al.'s exponential-long-tail cells are Cui's reprinted and are left out.

    Returns:
        Rows with ``source``, ``dataset``, ``lt_profile``, ``imbalance``, ``focal``, ``ce``, ``gap`` (focal − CE)
        and ``form`` (``"sigmoid"`` for Cui et al.'s focal, ``"softmax"`` for Cao et al.'s).

    Example:
        >>> gaps = [r["gap"] for r in focal_minus_ce()]
        >>> len(gaps), round(min(gaps), 2), round(max(gaps), 2)
        (16, -1.9, 1.17)
    """
    rows = []
    for ds, table in CUI2019_TOP1_ERROR.items():
        for imb, ce in table["Softmax CE"].items():
            focal = table["Focal (γ=1)"][imb]
            rows.append(dict(source="Cui et al. 2019, Table 2", dataset=ds, lt_profile="exp", imbalance=float(imb),
                             focal=focal, ce=ce, gap=round(focal - ce, 2), form="sigmoid"))
    for (ds, lt_profile), table in CAO2019_TOP1_ERROR.items():
        if (ds, lt_profile, "Focal") in REPRINTED:
            continue
        for imb, ce in table["ERM (CE)"].items():
            focal = table["Focal"][imb]
            rows.append(dict(source="Cao et al. 2019, Table 2", dataset=ds, lt_profile=lt_profile,
                             imbalance=float(imb), focal=focal, ce=ce, gap=round(focal - ce, 2), form="softmax"))
    return rows


def published_top1_rows(dataset: str | None = None, imbalances=None) -> list[dict]:
    """Flatten the published top-1 tables into rows, one per (source, dataset, lt_profile, loss, imbalance).

    Args:
        dataset: keep only this dataset (``"cifar10-lt"`` or ``"cifar100-lt"``); None keeps both.
        imbalances: keep only these imbalance ratios; None keeps all.

    Returns:
        A list of dicts with keys ``source``, ``dataset``, ``lt_profile``, ``loss``, ``imbalance``,
        ``top1_error`` (percent).

    Example:
        >>> rows = published_top1_rows("cifar10-lt", imbalances=[100])
        >>> sorted({r["source"] for r in rows})
        ['Cao et al. 2019, Table 2', 'Cui et al. 2019, Table 2']
        >>> [r["top1_error"] for r in rows if r["loss"] == "Softmax CE"]
        [29.64]
    """
    valid = {"cifar10-lt", "cifar100-lt"}
    if dataset is not None and dataset not in valid:
        raise ValueError(f"dataset must be one of {sorted(valid)} or None, got {dataset!r}")
    keep = None if imbalances is None else {float(i) for i in imbalances}
    rows = []
    for ds, table in CUI2019_TOP1_ERROR.items():
        for loss, by_imb in table.items():
            for imb, err in by_imb.items():
                rows.append(dict(source="Cui et al. 2019, Table 2", dataset=ds, lt_profile="exp",
                                 loss=loss, imbalance=float(imb), top1_error=err))
    for (ds, lt_profile), table in CAO2019_TOP1_ERROR.items():
        for loss, by_imb in table.items():
            for imb, err in by_imb.items():
                rows.append(dict(source="Cao et al. 2019, Table 2", dataset=ds, lt_profile=lt_profile,
                                 loss=loss, imbalance=float(imb), top1_error=err))
    return [r for r in rows
            if (dataset is None or r["dataset"] == dataset) and (keep is None or r["imbalance"] in keep)]


def published_calibration_rows() -> list[dict]:
    """Mukhoti et al. 2020's balanced CIFAR-10 calibration numbers as rows (percent, and T).

    Example:
        >>> rows = published_calibration_rows()
        >>> [(r["loss"], r["ece_before"], r["temperature"]) for r in rows][0]
        ('CE', 4.35, 2.5)
    """
    return [dict(source="Mukhoti et al. 2020 (ResNet-50, balanced CIFAR-10)", loss=loss, **values)
            for loss, values in MUKHOTI2020_CIFAR10.items()]


#: Our loss labels (:func:`focal.book.labels.loss_label`) and the published row each lines up with, per source.
#: Cui et al.'s class-balanced row is their best setting per column, not exactly our CB focal γ=1.
MATCHING_ROWS: dict[str, dict[str, str]] = {
    loss_label("ce"): {"Cui et al. 2019, Table 2": "Softmax CE", "Cao et al. 2019, Table 2": "ERM (CE)"},
    loss_label("focal", 1): {"Cui et al. 2019, Table 2": "Focal (γ=1)", "Cao et al. 2019, Table 2": "Focal"},
    loss_label("cb-focal", 1): {"Cui et al. 2019, Table 2": "Class-balanced (best)",
                                "Cao et al. 2019, Table 2": "CB Focal"},
}


def comparison_table(ours: dict[str, str], dataset: str, imbalance: float, ours_label: str,
                     lt_profile: str = "exp"):
    """Our top-1 errors beside the published ones: one column for ours, one per *independent* source.

    A cell of Cao et al. that reprints Cui et al. (:data:`REPRINTED`) is shown as ``"= Cui et al."`` rather than as a
    second confirmation of the same number. When ``dataset`` is not a CIFAR-LT set (e.g. Fashion-MNIST-LT on the cpu
    profile) the published columns show CIFAR-10-LT at the same imbalance and say "not comparable" in their header.

    Args:
        ours: ``{loss label: "mean ± std" text}`` (see :func:`focal.book.results.seed_summary`).
        dataset: our dataset name, e.g. ``"cifar10-lt"``.
        imbalance: our imbalance ratio.
        ours_label: what produced our numbers, e.g. ``"Fashion-MNIST-LT ρ=100, cpu profile, AMD EPYC"``.
        lt_profile: long tail of our runs (``"exp"`` or ``"step"``).

    Returns:
        A :class:`pandas.DataFrame` indexed by loss, one column for ours and one per published source
        (``"—"`` where a source has no matching row or column).

    Example:
        >>> t = comparison_table({"CE": "29.9 ± 0.4", "CB focal γ=1": "25.0 ± 0.5"}, "cifar10-lt", 100, "ours")
        >>> t.loc["CE"].tolist(), t.loc["CB focal γ=1"].tolist()
        (['29.9 ± 0.4', '29.64', '= Cui et al.'], ['25.0 ± 0.5', '25.43', '= Cui et al.'])
    """
    published_ds = dataset if dataset in ("cifar10-lt", "cifar100-lt") else "cifar10-lt"
    caveat = "" if published_ds == dataset else "; a different dataset from ours: not comparable, for scale only"
    title = {"cifar10-lt": "CIFAR-10-LT", "cifar100-lt": "CIFAR-100-LT"}[published_ds]
    lookup = {(r["source"], r["loss"]): r["top1_error"]
              for r in published_top1_rows(published_ds, [imbalance]) if r["lt_profile"] == lt_profile}
    sources = ("Cui et al. 2019, Table 2", "Cao et al. 2019, Table 2")
    forms = {"Cui et al. 2019, Table 2": "; focal and CB rows: sigmoid form",
             "Cao et al. 2019, Table 2": "; its focal cells: softmax form" if lt_profile == "step" else
             "; cells equal to Cui et al.'s are reprints"}
    headers = [f"published: {s} ({title} {lt_profile} ρ={float(imbalance):g}, ResNet-32{forms[s]}{caveat})"
               for s in sources]
    columns = {f"ours: {ours_label}": list(ours.values())}
    for source, header in zip(sources, headers):
        cells = []
        for loss in ours:
            row = MATCHING_ROWS.get(loss, {}).get(source)
            value = lookup.get((source, row))
            if value is None:
                cells.append("—")
            elif source.startswith("Cao") and is_reprint(published_ds, lt_profile, row, float(imbalance)):
                cells.append("= Cui et al.")
            else:
                cells.append(f"{value:.2f}")
        columns[header] = cells
    return pd.DataFrame(columns, index=pd.Index(list(ours), name="loss"))
