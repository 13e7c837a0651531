"""focal.book.results (tables from runs) and focal.book.claims (verdicts), on hand-made runs; one slow real run."""
import io

import numpy as np
import pytest

from focal.book import claims
from focal.engine import metrics
from focal.book import results as R
from focal.book.labels import LOSS_SETTINGS
from focal.book.profiles import configs, get_profile
from focal.engine.config import Config
from focal.engine.grid import train_many
from focal.engine.runs import code_fingerprint

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
    results = train_many(configs(profile), tmp_path, file=io.StringIO())
    assert len(results) == 7 and {r["status"] for _, r in results} == {"trained"}
    again = train_many(configs(profile), tmp_path, file=io.StringIO())  # loaded, not retrained
    assert [r["run_dir"] for _, r in again] == [r["run_dir"] for _, r in results]
    assert {r["status"] for _, r in again} == {"reused"} and R.provenance(again)["runs"] == "7 runs: 7 reused from disk"
    found = claims.evaluate_claims(results, "synthetic-lt", 100, profile.name)
    assert [e["verdict"] for e in found] == ["inconclusive"] * 6
    assert len(R.per_class_frame(results)) == 70 and not R.history_frame(results).empty


def test_provenance_names_the_code_and_counts_reused_and_stale_runs(tmp_path):
    results = [fake_run(tmp_path, "ce", 1.0, s) for s in range(4)]
    for (_, run), status, code, when in zip(results, ["trained", "reused", "reused-stale", "reused"],
                                            [code_fingerprint(), code_fingerprint(), "0123456789ab", None],
                                            ["2026-11-29T10:00:00Z", "2026-11-30T10:00:00Z", None, None]):
        run.update(status=status, **({"code": {"fingerprint": code, "torch": "2.x"}} if code else {}),
                   **({"trained_at": when} if when else {}))
    p = R.provenance(results)
    assert p["runs"] == "4 runs: 1 trained now, 3 reused from disk, 1 of them stale, kept on request (reuse-stale)"
    assert f"{code_fingerprint()} (torch 2.x, this checkout)" in p["code"]
    assert "0123456789ab (torch 2.x, other code)" in p["code"] and "unrecorded" in p["code"]
    assert p["trained"] == "2026-11-29 to 2026-11-30" and p["hardware"] == "test CPU"
    with pytest.raises(ValueError, match="empty"):
        R.provenance([])
