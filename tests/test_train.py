"""Tests of focal.train: Config, run names, schedule, criteria, and train() on a tiny fake CIFAR (resume, reload)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import focal.train as ft
from focal.data import DATASETS, longtail_counts, write_fake_cifar
from focal.losses import class_balanced_weights
from focal.train import LOSSES, Config, find_runs, grid, load_logits, load_run, lr_schedule, make_criterion, run_name


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    return write_fake_cifar(tmp_path_factory.mktemp("cifar"), n_train_per_class=24, n_test_per_class=6)


def tiny(root, **changes) -> Config:
    """A run of a few seconds: 10-class fake CIFAR-LT (24 -> 6 images per class), small CNN, batch 32."""
    base = dict(dataset="cifar10-lt", imbalance=4.0, data_root=str(root), verify=False, model="small-cnn",
                loss="focal", epochs=3, batch_size=32, warmup_epochs=100)  # warm-up scales to 2 of 3 epochs
    return Config(**{**base, **changes})


class EpochCounter:
    """Wraps focal.train._train_epoch to count the epochs actually trained."""

    def __init__(self, monkeypatch):
        self.calls, self._orig = 0, ft._train_epoch
        monkeypatch.setattr(ft, "_train_epoch", self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._orig(*args, **kwargs)


def _numbers(run: dict) -> dict:
    """Everything in metrics.json that must not depend on interruptions (no timings or paths)."""
    history = [{k: v for k, v in row.items() if k != "time_s"} for row in run["history"]]
    return {"history": history, "final": run["final"], "best": (run["best_epoch"], run["best_top1_error"])}


# ------------------------------------------------------------------------------------------------------ Config


@pytest.mark.parametrize("field, value, error", [
    ("dataset", "cifar11", ValueError), ("loss", "focall", ValueError), ("model", "resnet18", ValueError),
    ("profile", "linear", ValueError), ("imbalance", 0.5, ValueError), ("gamma", -1.0, ValueError),
    ("beta", 1.0, ValueError), ("epochs", 0, ValueError), ("epochs", 2.5, TypeError), ("lr", 0.0, ValueError),
    ("batch_size", True, TypeError), ("lr_milestones", (1.5,), TypeError), ("device", "tpu", ValueError),
    ("amp", "yes", TypeError), ("gamma", "2", TypeError), ("eval_every", 0, ValueError),
    ("lr", float("inf"), ValueError), ("gamma", float("nan"), ValueError), ("device", 0, TypeError),
    ("subset_seed", -1, ValueError),
])
def test_config_rejects_bad_values_naming_the_field(field, value, error):
    with pytest.raises(error, match=field):
        Config(**{field: value})


@pytest.mark.parametrize("field, valid", [("dataset", DATASETS), ("loss", LOSSES)])
def test_unknown_names_list_the_valid_ones(field, valid):
    with pytest.raises(ValueError) as info:
        Config(**{field: "nonsense"})
    assert all(name in str(info.value) for name in valid)


@pytest.mark.parametrize("config", [Config(), Config(loss="cb-focal", gamma=0.5, lr_milestones=[3, 1], seed=7),
                                    Config(dataset="synthetic", data_root="/x", amp=False, imbalance=10)])
def test_config_json_round_trip(config):
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and isinstance(again.lr_milestones, tuple)
    assert config.lr_milestones == tuple(sorted(config.lr_milestones))


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    config = Config(seed=np.int64(2), gamma=np.float32(0.5), lr_milestones=[np.int64(3)])
    assert type(config.seed) is int and type(config.gamma) is float and type(config.lr_milestones[0]) is int
    json.dumps(config.to_dict())


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="gama"):
        Config.from_dict({"gama": 2.0})


# ----------------------------------------------------------------------------------------------------- names


def test_run_name_matches_the_documented_pattern():
    assert run_name(Config(loss="focal", gamma=1)) == "cifar10-lt_if100_resnet32_focal_g1_e200_s0"
    assert run_name(Config(dataset="fashion-mnist-lt", model="small-cnn", epochs=12, profile="step")) == \
        "fashion-mnist-lt_if100_step_small-cnn_ce_e12_s0"


VARIANTS = [dict(), dict(loss="focal"), dict(loss="focal", gamma=2), dict(loss="cb-focal"),
            dict(loss="cb-focal", beta=0.999), dict(imbalance=50), dict(profile="step"), dict(model="resnet20"),
            dict(epochs=12), dict(seed=1), dict(lr=0.05), dict(batch_size=64), dict(augment=False),
            dict(amp=False), dict(lr_milestones=(100,)), dict(weight_decay=5e-4), dict(dataset="cifar100-lt"),
            dict(loss="focal", gamma=0.5), dict(loss="focal-flsd53"), dict(loss="sigmoid-focal"),
            dict(warmup_epochs=0), dict(lr_decay=0.1), dict(eval_every=5), dict(momentum=0.0), dict(subset_seed=1)]


def test_different_results_never_share_a_name():
    names = [run_name(Config(**v)) for v in VARIANTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("same", [dict(device="cpu"), dict(data_root="/elsewhere"), dict(verify=False),
                                  dict(download=True), dict(gamma=3.0)])
def test_settings_that_do_not_change_the_result_keep_the_name(same):
    assert run_name(Config(**same)) == run_name(Config())  # gamma is unused by the default loss (ce)


def test_balanced_datasets_ignore_imbalance_in_the_name():
    assert run_name(Config(dataset="cifar10", imbalance=10, subset_seed=3)) == run_name(Config(dataset="cifar10"))
    assert "if" not in run_name(Config(dataset="cifar10")).split("_")[1]


# ---------------------------------------------------------------------------------------------------- schedule


def test_lr_schedule_is_the_ldam_recipe_at_200_epochs():
    lrs = lr_schedule(Config())
    assert len(lrs) == 200
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5:160] == pytest.approx([0.1] * 155)
    assert lrs[160:180] == pytest.approx([1e-3] * 20) and lrs[180:] == pytest.approx([1e-5] * 20)


@pytest.mark.parametrize("epochs", [1, 2, 10, 12, 50, 400])
def test_lr_schedule_scales_milestones_with_epochs(epochs):
    lrs = lr_schedule(Config(epochs=epochs))
    assert len(lrs) == epochs and max(lrs) <= 0.1 + 1e-12 and all(x > 0 for x in lrs)
    scale = epochs / 200
    for e, lr in enumerate(lrs):
        decays = sum(round(m * scale) <= e for m in (160, 180))
        assert lr == pytest.approx(0.1 * min(1, (e + 1) / max(round(5 * scale), 1)) * 0.01 ** decays)


# ---------------------------------------------------------------------------------------------------- criteria


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(16, 5, generator=gen, dtype=torch.float64) * 3, torch.randint(0, 5, (16,), generator=gen)


def test_ce_and_gamma_zero_focal_are_cross_entropy(batch):
    logits, y = batch
    expected = F.cross_entropy(logits, y)
    assert torch.allclose(make_criterion(Config(loss="ce"), [1] * 5)(logits, y), expected)
    assert torch.allclose(make_criterion(Config(loss="focal", gamma=0), [1] * 5)(logits, y), expected)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_criterion_is_the_mean_modulated_ce(batch, gamma):
    logits, y = batch
    logp = F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    expected = (-(1 - logp.exp()) ** gamma * logp).mean()
    assert torch.allclose(make_criterion(Config(loss="focal", gamma=gamma), [1] * 5)(logits, y), expected)


def test_flsd53_uses_gamma_5_below_pt_0_2_else_3(batch):
    logits, y = batch
    logp = F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    gamma = torch.where(logp.exp() < 0.2, 5.0, 3.0).to(logits.dtype)
    expected = (-(1 - logp.exp()) ** gamma * logp).mean()
    assert torch.allclose(make_criterion(Config(loss="focal-flsd53"), [1] * 5)(logits, y), expected)


def test_cb_focal_weights_each_example_by_its_class_and_averages_over_the_batch(batch):
    logits, y = batch
    counts = [500, 200, 50, 10, 3]
    alpha = class_balanced_weights(counts, 0.999).double()
    logp = F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    expected = (alpha[y] * -(1 - logp.exp()) * logp).mean()
    got = make_criterion(Config(loss="cb-focal", gamma=1, beta=0.999), counts)(logits, y)
    assert torch.allclose(got, expected)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_sigmoid_focal_sums_classes_and_averages_over_the_batch_without_alpha(batch, gamma):
    logits, y = batch
    onehot = F.one_hot(y, 5).to(logits.dtype)
    p_t = torch.where(onehot.bool(), torch.sigmoid(logits), 1 - torch.sigmoid(logits))
    bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    expected = ((1 - p_t) ** gamma * bce).sum() / len(y)
    got = make_criterion(Config(loss="sigmoid-focal", gamma=gamma), [1] * 5)(logits, y)
    assert torch.allclose(got, expected)
    assert ft.model_prior(Config(loss="sigmoid-focal"), 10) == pytest.approx(0.1)
    assert ft.model_prior(Config(loss="focal"), 10) is None


# ------------------------------------------------------------------------------------------------------ train


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(fake_root, tmp_path, monkeypatch):
    config = tiny(fake_root)
    whole = ft.train(config, tmp_path / "whole", progress=False)

    save = ft._save_checkpoint

    def killed_after_epoch_1(path, state):
        save(path, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # the process dies right after the first checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(ft, "_save_checkpoint", killed_after_epoch_1)
        with pytest.raises(KeyboardInterrupt):
            ft.train(config, tmp_path / "killed", progress=False)
    run_dir = tmp_path / "killed" / run_name(config)
    assert not (run_dir / "metrics.json").exists()
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1

    counter = EpochCounter(monkeypatch)
    resumed = ft.train(config, tmp_path / "killed", progress=False)
    assert counter.calls == 2  # epochs 2 and 3 only
    assert _numbers(resumed) == _numbers(whole)
    for a, b in zip(load_logits(whole["run_dir"]), load_logits(resumed["run_dir"])):
        np.testing.assert_array_equal(a, b)
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*"))


@pytest.mark.slow
def test_finished_run_is_loaded_not_retrained(fake_root, tmp_path, monkeypatch):
    config = tiny(fake_root, epochs=2, loss="cb-focal", eval_every=2)
    first = ft.train(config, tmp_path, progress=False)
    run_dir = tmp_path / run_name(config)
    assert {p.name for p in run_dir.iterdir()} == {"config.json", "metrics.json", "test_logits.npz",
                                                  "checkpoint.pt"}
    assert [row["epoch"] for row in first["history"]] == [1, 2]
    assert first["history"][0]["top1_error"] is None and first["best_epoch"] == 2  # evaluated every 2nd epoch
    assert first["final_top1_error"] == first["final"]["top1_error"] == first["best_top1_error"]
    assert first["train_counts"] == longtail_counts(24, 10, 4.0) and first["final"]["num_samples"] == 60
    logits, labels = load_logits(run_dir)
    assert logits.dtype == np.float32 and logits.shape == (60, 10) and np.bincount(labels).tolist() == [6] * 10
    assert Config.from_dict(json.loads((run_dir / "config.json").read_text())) == config
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2

    counter = EpochCounter(monkeypatch)
    again = ft.train(config.replace(device="cpu", verify=True), tmp_path, progress=False)  # same identity
    assert counter.calls == 0 and again == first == load_run(run_dir)


def test_a_directory_of_another_config_is_refused(fake_root, tmp_path):
    config = tiny(fake_root)
    (tmp_path / run_name(config)).mkdir()
    (tmp_path / run_name(config) / "config.json").write_text(json.dumps(config.replace(lr=0.5).to_dict()))
    with pytest.raises(FileExistsError, match="different config"):
        ft.train(config, tmp_path, progress=False)


@pytest.mark.slow
def test_grid_trains_each_distinct_run_once_and_skips_finished_ones(fake_root, tmp_path, monkeypatch):
    base = tiny(fake_root, epochs=1)
    counter = EpochCounter(monkeypatch)
    results = grid(base, ["ce", "focal-flsd53", "focal"], gammas=[1.0, 2.0], seeds=[0], imbalances=[4.0],
                   out=tmp_path, progress=False)
    assert [(c.loss, c.gamma) for c, _ in results] == [("ce", 1.0), ("focal-flsd53", 1.0), ("focal", 1.0),
                                                      ("focal", 2.0)]
    assert counter.calls == 4 and all(m["name"] == run_name(c) for c, m in results)
    again = grid(base, ["ce", "focal"], gammas=[2.0, 1.0], seeds=[0], out=tmp_path, progress=False)
    assert counter.calls == 4 and len(again) == 3
    assert [c.loss for c, _ in find_runs(tmp_path, loss=["focal", "ce"])] == ["ce", "focal", "focal"]
    assert [c.gamma for c, _ in find_runs(tmp_path, loss="focal", gamma=2.0)] == [2.0]
    assert find_runs(tmp_path / "nothing") == []
    with pytest.raises(ValueError, match="gama"):
        find_runs(tmp_path, gama=1)


def test_load_run_without_metrics_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        load_run(tmp_path)


def test_train_rejects_a_non_config():
    with pytest.raises(TypeError, match="Config"):
        ft.train({"loss": "ce"})


# ------------------------------------------------------------------------------------------------- benchmark

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "train.py"


@pytest.mark.slow
@pytest.mark.parametrize("argv, expected", [
    (["--models", "small-cnn", "--fake-cifar", "200", "--steps", "1", "--repeats", "1", "--workers", "0"],
     ["focal DeviceLoader", "DataLoader+PIL, 0 workers", "1.00x"]),
    (["--models", "small-cnn", "--fake-cifar", "200", "--epochs", "1", "--amp", "--channels-last"],
     ["training images/s", "projected 200-epoch CIFAR-10-LT run"]),
])
def test_benchmark_script_runs_both_modes(argv, expected):
    proc = subprocess.run([sys.executable, str(BENCHMARK), *argv], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(text in proc.stdout for text in expected)


@pytest.mark.slow
def test_benchmark_speedups_mode_reports_every_row_with_positive_numbers(tmp_path):
    out = tmp_path / "speedups.json"
    argv = ["--speedups", "--quick", "--models", "small-cnn", "resnet32", "--batch-size", "32", "--json", str(out)]
    proc = subprocess.run([sys.executable, str(BENCHMARK), *argv], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["meta"]["hardware"] in proc.stdout and "torch" in result["meta"]["hardware"]
    rows = result["rows"]
    sections = {s: [r for r in rows if r["section"] == s] for s in ("train", "eval", "eval-share", "workers")}
    # (a) both memory formats for both models, (c) torch.compile for the first model only
    assert [(r["model"], r["variant"]) for r in sections["train"]] == [
        ("small-cnn", "contiguous (baseline)"), ("small-cnn", "channels_last"),
        ("small-cnn", "torch.compile, contiguous"), ("resnet32", "contiguous (baseline)"),
        ("resnet32", "channels_last")]
    # (b) every memory format x batch x grad mode, and the eval share at every 1, 2, 5 epochs (+ the profile's)
    assert {(r["memory_format"], r["batch"], r["grad_mode"]) for r in sections["eval"]} == {
        (f, b, g) for f in ("contiguous", "channels_last") for b in (512, 1024, 2048)
        for g in ("no_grad", "inference_mode")}
    assert {1, 2, 5} <= {r["eval_every"] for r in sections["eval-share"]}
    assert {r["setup"] for r in sections["eval-share"]} == {"baseline", "fastest"}
    assert sum(r["baseline"] for r in sections["eval-share"]) == 1
    # (d) parallel single-threaded runs against one run with every thread (two-core machines and up)
    cores = os.cpu_count() or 1
    assert [(r["processes"], r["threads"]) for r in sections["workers"]] == ([(1, cores), (cores, 1)]
                                                                              if cores >= 2 else [])
    numbers = {"workers": ["images_per_s", "speedup"], "train": ["images_per_s", "ms_per_step", "speedup", "epoch_s"],
               "eval": ["images_per_s", "ms_per_step", "speedup", "pass_s"],
               "eval-share": ["images_per_s", "speedup", "run_s", "eval_share", "epoch_s", "pass_s"]}
    for section, keys in numbers.items():
        for row in sections[section]:
            for key in keys:
                assert 0 < row[key] < float("inf"), (section, row["variant"], key, row[key])  # NaN fails too
            assert row["variant"] in proc.stdout or section == "eval-share"
    compiled = sections["train"][2]
    assert all(compiled[k] > 0 for k in ("compile_s", "compile_warm_cache_s", "same_process_first_step_s"))
    assert "compile s" in proc.stdout and "load average" in proc.stdout
    for section in ("train", "eval"):  # the baseline row is the baseline of its own speed-ups
        assert all(r["speedup"] == 1.0 for r in sections[section] if "(baseline)" in r["variant"])
    shares = {(r["setup"], r["eval_every"]): r for r in sections["eval-share"]}
    assert shares[("baseline", 1)]["eval_share"] > shares[("baseline", 5)]["eval_share"]  # fewer evaluations
    assert shares[("baseline", 1)]["evaluations"] == shares[("baseline", 1)]["epochs"]


def test_benchmark_speedups_only_options_need_speedups():
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--quick needs --speedups" in proc.stderr
