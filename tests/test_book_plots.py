"""focal.book.plots, the package: every figure function is reachable as ``plots.<name>``, returns a Figure that
pyplot does not hold, with labelled axes, and the modules depend on the style module only (Agg backend)."""
import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from focal.book import plots  # noqa: E402
from focal.book.plots import compare, loss, style, training  # noqa: E402

LOSSES = ["CE", "focal γ=1", "FLSD-53"]


def _runs():
    rng = np.random.default_rng(0)
    return pd.DataFrame([dict(loss=loss, seed=s, top1_error=30 + rng.normal()) for loss in LOSSES for s in (0, 1)])


def _history():
    return pd.DataFrame([dict(loss=loss, seed=s, epoch=e, top1_error=50 - e, ece=10 / e)
                         for loss in LOSSES for s in (0, 1) for e in (1, 2, 3)])


def _per_class():
    counts = [100, 30, 10]
    return pd.DataFrame([{"loss": loss, "seed": s, "class_rank": k, "class": f"c{k}", "train_count": counts[k],
                          "accuracy": 90 - 30 * k} for loss in LOSSES for s in (0, 1) for k in range(3)])


def _groups():
    return pd.DataFrame([dict(loss=loss, seed=s, group=g, accuracy=a) for loss in LOSSES for s in (0, 1)
                         for g, a in (("head", 90), ("middle", 60), ("tail", 20))])


def _diagram():
    return dict(lower=np.array([0, 0.25, 0.5, 0.75]), upper=np.array([0.25, 0.5, 0.75, 1.0]),
                confidence=np.array([np.nan, 0.4, 0.6, 0.9]), accuracy=np.array([np.nan, 0.3, 0.5, 0.95]),
                count=np.array([0, 3, 5, 12]))


def _calib():
    return pd.DataFrame([dict(loss=loss, seed=s, metric=m, stage=st, value=v) for loss in LOSSES for s in (0, 1)
                         for m in ("ECE", "AdaECE") for st, v in (("before T", 5.0), ("after T", 1.0))])


def _temps():
    return pd.DataFrame([dict(loss=loss, seed=s, temperature=1.0 + s) for loss in LOSSES for s in (0, 1)])


def _counts():
    return pd.DataFrame([dict(lt_profile=p, imbalance=r, class_index=k, count=int(100 * r ** (-k / 2)))
                         for p in ("exp", "step") for r in (10.0, 100.0) for k in range(3)])


FIGURES = {
    "focal_curves": lambda: plots.plot_focal_curves((0, 2)),
    "modulating_factor": lambda: plots.plot_modulating_factor((1, 2)),
    "logit_gradient": lambda: plots.plot_logit_gradient((0, 2)),
    "gradient_check": lambda: plots.plot_gradient_check(np.arange(4.0), np.arange(4.0) + 1e-9),
    "benchmark": lambda: plots.plot_benchmark([dict(case="a", impl="focal", time_ratio=1.1, mem_ratio=1.0),
                                               dict(case="b", impl="focal", time_ratio=0.9, mem_ratio=1.2)]),
    "memory_curve": lambda: plots.plot_memory_curve([dict(impl=i, classes=c, peak_mb=m) for i, c, m in [
        ("logits (baseline)", 10, 40.0), ("logits (baseline)", 100, 400.0), ("focal", 10, 4.0), ("focal", 100, 5.0)]]),
    "class_counts": lambda: plots.plot_class_counts(_counts()),
    "sample_grid": lambda: plots.plot_sample_grid(np.zeros((6, 3, 8, 8), np.uint8), np.array([0, 0, 1, 1, 2, 2]),
                                                  ["a", "b", "c"], per_class=2, counts=[2, 2, 2]),
    "learning_curves": lambda: plots.plot_learning_curves(_history()),
    "top1_error": lambda: plots.plot_top1_error(_runs()),
    "per_class_accuracy": lambda: plots.plot_per_class_accuracy(_per_class()),
    "group_accuracy": lambda: plots.plot_group_accuracy(_groups()),
    "reliability_diagrams": lambda: plots.plot_reliability_diagrams({"CE": _diagram(), "FLSD-53": _diagram()},
                                                                    ece={"CE": 3.0}),
    "calibration": lambda: plots.plot_calibration(_calib()),
    "temperatures": lambda: plots.plot_temperatures(_temps()),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_has_labelled_axes(name):
    before = plt.get_fignums()
    fig = FIGURES[name]()
    assert plt.get_fignums() == before, "figures must not be registered with pyplot (no double display)"
    axes = [a for a in fig.axes if a.get_visible()]
    assert axes
    if name == "sample_grid":  # image rows are labelled with the class names (+ counts)
        assert [a.get_ylabel() for a in axes[::2]] == ["a (2)", "b (2)", "c (2)"]
        assert fig.get_supxlabel() if hasattr(fig, "get_supxlabel") else fig._supxlabel.get_text()
        return
    for a in axes:
        if a.get_ylabel() == "" and any(b.get_ylabel() for b in a.get_shared_y_axes().get_siblings(a)):
            continue  # a panel in a row that shares its y axis with a labelled one (reliability diagrams)
        assert a.get_ylabel(), f"{name}: an axes has no y label"
        if a.get_xlabel() == "" and a.get_ylabel().startswith("training images"):
            continue  # the twin axis of the per-class plot shares the x axis
        if a.get_xlabel() == "" and any(b.get_xlabel() for b in a.get_shared_x_axes().get_siblings(a)):
            continue  # a panel stacked on another that labels the shared x axis (reliability + histogram)
        assert a.get_xlabel(), f"{name}: an axes has no x label"


def test_figures_draw_into_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    for draw in (plots.plot_focal_curves, plots.plot_modulating_factor, plots.plot_logit_gradient):
        assert draw((0, 1), ax=ax) is fig
    assert plots.plot_top1_error(_runs(), ax=ax) is fig
    assert plots.plot_learning_curves(_history(), ax=ax) is fig


@pytest.mark.parametrize("call, match", [
    (lambda: plots.plot_top1_error(pd.DataFrame(dict(loss=["CE"], seed=[0]))), "top1_error"),
    (lambda: plots.plot_learning_curves(_history(), metrics=("nope",)), "nope"),
    (lambda: plots.plot_gradient_check([1.0, 2.0], [1.0]), "same number"),
    (lambda: plots.plot_sample_grid(np.zeros((2, 8, 8), np.uint8), [0, 1], ["a", "b"]), "images must be"),
    (lambda: plots.plot_sample_grid(np.zeros((2, 1, 8, 8), np.uint8), [0], ["a", "b"]), "one label per image"),
    (lambda: plots.plot_reliability_diagrams({}), "at least one"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_package_reexports_every_figure_of_its_modules():
    for module in (training, loss, compare):
        for name in module.__all__:
            assert getattr(plots, name) is getattr(module, name), f"plots.{name}"
            assert name in plots.__all__, name
    assert plots.set_style is style.set_style and plots.loss_palette is style.loss_palette
    assert all(hasattr(plots, name) for name in plots.__all__)


@pytest.mark.parametrize("module", [style, training, loss, compare])
def test_modules_import_style_and_public_names_only(module):
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            focal = [a.name for a in node.names if a.name.split(".")[0] == "focal"]
            assert not focal or node in tree.body, f"{module.__name__} imports {focal} inside a function"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "focal":
            assert node.module != "focal.book.plots", f"{module.__name__} imports the package"
            assert node in tree.body, f"{module.__name__} imports {node.module} inside a function"
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{module.__name__} imports private {private} from {node.module}"
            if node.module.startswith("focal.book.plots."):
                assert node.module == "focal.book.plots.style" and module is not style, node.module
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
