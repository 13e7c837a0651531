"""focal.results (tables from runs) and focal.claims (verdicts), on hand-made runs; one slow real run."""
import io

import numpy as np
import pandas as pd
import pytest

from focal import claims, metrics
from focal import results as R
from focal.profiles import LOSS_SETTINGS, configs, get_profile
from focal.train import Config

COUNTS = [500, 300, 150, 90, 50, 30, 18, 10, 6, 5]  # many / medium / few all non-empty


def fake_run(tmp_path, loss, gamma, seed, *, per_class=None, counts=COUNTS, scale=1.0, epochs=2):
    """A finished-run stand-in: config + metrics dict + test_logits.npz, no training."""
    config = Config(dataset="synthetic-lt", model="small-cnn", loss=loss, gamma=gamma, epochs=epochs, seed=seed)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), 20)
    logits = rng.normal(size=(len(labels), len(counts)))
    logits[np.arange(len(labels)), labels] += 2.0
    logits *= scale
    run_dir = tmp_path / f"{loss}_{gamma}_{seed}_{scale}"
    run_dir.mkdir()
    np.savez(run_dir / "test_logits.npz", logits=logits.astype(np.float32), labels=labels)
    summary = metrics.summarize(logits, labels, counts)
    if per_class is not None:
        summary["per_class_accuracy"] = list(per_class)
    history = [dict(epoch=e, lr=0.1, train_loss=1.0 / e, train_acc=0.5, top1_error=40.0 - e, ece=0.1)
               for e in range(1, epochs + 1)]
    return config, dict(final=summary, best_top1_error=summary["top1_error"], best_epoch=epochs, history=history,
                        train_counts=list(counts), hardware="test CPU", description="Synthetic-LT, test",
                        train_time_s=3.0, run_dir=str(run_dir))


def test_runs_and_summary_frames(tmp_path):
    results = [fake_run(tmp_path, loss, g, s) for loss, g in (("ce", 1.0), ("focal", 2.0)) for s in (0, 1)]
    runs = R.runs_frame(results)
    assert runs["loss"].tolist() == ["CE", "CE", "focal γ=2", "focal γ=2"]
    assert runs["ece"].iloc[0] == pytest.approx(100 * results[0][1]["final"]["ece"])  # percent
    summary = R.seed_summary(runs).set_index("loss")
    mean, std = metrics.mean_std(runs.loc[runs["loss"] == "CE", "top1_error"])
    assert summary.loc["CE", "mean"] == pytest.approx(mean) and summary.loc["CE", "std"] == pytest.approx(std)
    assert summary.loc["CE", "text"] == R.format_mean_std(mean, std)
    table = R.summary_table(R.seed_summary(runs.iloc[::-1]))
    assert table.index.tolist() == ["CE", "focal γ=2"] and table.columns.tolist() == ["synthetic-lt ρ=100"]
    with pytest.raises(ValueError, match="empty"):
        R.runs_frame([])


def test_history_and_per_class_frames(tmp_path):
    counts = [5, 50, 20]  # class 1 has the most images: rank 0
    results = [fake_run(tmp_path, "ce", 1.0, 0, counts=counts, per_class=[0.1, 0.9, 0.5])]
    history = R.history_frame(results)
    assert history["epoch"].tolist() == [1, 2] and history["ece"].tolist() == [10.0, 10.0]
    per_class = R.per_class_frame(results, ["a", "b", "c"])
    assert per_class["class_rank"].tolist() == [2, 0, 1]
    assert per_class["accuracy"].tolist() == pytest.approx([10, 90, 50])
    assert per_class["class"].tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("counts, groups", [
    (COUNTS, ["many", "medium", "few"]),
    ([6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60], ["head", "middle", "tail"]),  # Fashion-MNIST-LT: no few
])
def test_group_frame_picks_non_empty_groups(tmp_path, counts, groups):
    acc = np.linspace(0.9, 0.0, 10)
    frame, note = R.group_frame([fake_run(tmp_path, "ce", 1.0, 0, counts=counts, per_class=acc)])
    assert frame["group"].tolist() == groups
    if groups[0] == "head":
        assert "few-shot group is empty" in note
        assert frame["accuracy"].tolist() == pytest.approx([100 * acc[:3].mean(), 100 * acc[3:7].mean(),
                                                            100 * acc[7:].mean()])
    else:
        assert frame["classes"].tolist() == [3, 3, 4]


def test_class_thirds_for_many_classes():
    thirds = R.class_thirds(list(range(100, 0, -1)))
    assert [len(v) for v in thirds.values()] == [34, 33, 33] and thirds["head"][0] == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_balanced_halves(seed):
    labels = np.repeat(np.arange(5), 11)
    a, b = R.balanced_halves(labels, seed)
    assert not set(a) & set(b) and len(a) + len(b) == len(labels)
    assert np.bincount(labels[a]).tolist() == [5] * 5 and np.bincount(labels[b]).tolist() == [6] * 5
    with pytest.raises(ValueError, match="labels"):
        R.balanced_halves([1])


def test_calibration_fits_temperature_on_held_out_half(tmp_path):
    # logits scaled by 4 are over-confident: the fitted T must undo most of it and lower the ECE
    results = [fake_run(tmp_path, "ce", 1.0, s, scale=4.0) for s in (0, 1)]
    calib, temps, diagrams = R.calibration_frames(results, diagram_losses=["CE"])
    assert (temps["temperature"] > 1.5).all()
    ece = calib[calib["metric"] == "ECE"].pivot_table(index="seed", columns="stage", values="value")
    assert (ece["after T"] < ece["before T"]).all()
    assert set(calib["metric"]) == {"ECE", "AdaECE", "classwise ECE"}
    assert set(diagrams) == {("CE", "before T"), ("CE", "after T")}
    n_eval = len(R.balanced_halves(np.repeat(np.arange(len(COUNTS)), 20), 0)[1])
    assert diagrams[("CE", "before T")]["count"].sum() == 2 * n_eval  # both seeds pooled
    # T comes from the fitting half only: refitting there reproduces it
    logits, labels = np.load(results[0][1]["run_dir"] + "/test_logits.npz").values()
    fit, _ = R.balanced_halves(labels, 0)
    assert temps["temperature"].iloc[0] == pytest.approx(metrics.fit_temperature(logits[fit], labels[fit]))
    table = R.calibration_table(calib, temps)
    assert table.columns[-1] == "fitted T" and table.index.tolist() == ["CE"]


def test_class_counts_frame():
    df = R.class_counts_frame(5000, 10, [10, 100], ["exp", "step"])
    assert len(df) == 40
    step = df[(df["lt_profile"] == "step") & (df["imbalance"] == 10)]["count"].tolist()
    assert step == [5000] * 5 + [500] * 5


def test_train_runs_says_which_run_of_how_many_and_the_time_left(monkeypatch, tmp_path):
    import focal.train

    seen = []
    monkeypatch.setattr(focal.train, "train",
                        lambda config, out, progress: seen.append(progress) or {"train_time_s": 1.0})
    cs = configs("smoke")[:3]
    finished = tmp_path / focal.train.run_name(cs[0])
    finished.mkdir()
    (finished / "metrics.json").write_text("{}")  # the first run is finished: loaded, not announced
    out = io.StringIO()
    results = R.train_runs(cs, tmp_path, file=out)
    assert [c for c, _ in results] == cs and seen == [False] * 3
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert lines[0] == "3 runs: 1 finished earlier (loaded from disk), 2 to train"
    assert lines[1] == f"run 1/2 training {focal.train.run_name(cs[1])}"
    assert lines[-1].startswith(f"run 2/2 done: {focal.train.run_name(cs[2])} in 1 s; elapsed")
    assert lines[-1].endswith("0 s left")
    assert not any("loaded" in line for line in lines[1:])  # no wall of "loaded" lines
    with pytest.raises(ValueError, match="workers"):
        R.train_runs(cs, tmp_path, workers=0)


@pytest.mark.slow
def test_train_runs_in_parallel_workers_equals_one_process(tmp_path):
    cs = [c.replace(seed=s) for c in configs(get_profile("smoke", seeds=1))[:1] for s in (0, 1)]
    parallel = R.train_runs(cs, tmp_path / "par", file=io.StringIO(), workers=2)
    serial = R.train_runs(cs, tmp_path / "ser", file=io.StringIO())
    for (_, p), (_, s) in zip(parallel, serial):
        assert p["final"]["top1_error"] == s["final"]["top1_error"]


def test_default_workers():
    assert R.default_workers(1) == 1 and R.default_workers(2) == 2 and R.default_workers(8, "cuda") == 1
    with pytest.raises(ValueError, match="device"):
        R.default_workers(2, "tpu")


def test_select():
    cs = configs("gpu")
    pairs = [(c, {}) for c in cs]
    assert len(R.select(pairs, "cifar10-lt", 50)) == len(LOSS_SETTINGS) * 3
    with pytest.raises(ValueError, match="no runs"):
        R.select(pairs, "cifar10-lt", 7)


@pytest.mark.slow
def test_smoke_runs_end_to_end(tmp_path):
    """Real training (1 epoch on synthetic data), every frame, and all three claims."""
    profile = get_profile("smoke", seeds=1)
    results = R.train_runs(configs(profile), tmp_path, file=io.StringIO())
    assert len(results) == 7
    again = R.train_runs(configs(profile), tmp_path, file=io.StringIO())  # loaded, not retrained
    assert [r["run_dir"] for _, r in again] == [r["run_dir"] for _, r in results]
    found = claims.evaluate_claims(results, "synthetic-lt", 100, profile.name)
    assert [e["verdict"] for e in found] == ["inconclusive"] * 6
    assert len(R.per_class_frame(results)) == 70 and not R.history_frame(results).empty
