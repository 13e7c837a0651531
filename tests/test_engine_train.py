"""Tests of focal.engine.train: the criteria, and train() on a tiny fake CIFAR (resume, reload, stale and broken
runs, unusable output folders)."""

import json
import platform
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import focal.engine.train as ft
from focal.engine.config import Config, run_name
from focal.engine.data import longtail_counts
from focal.engine.runs import code_fingerprint, load_logits, load_run
from focal.engine.train import RunWarning, make_criterion
from focal.losses import class_balanced_weights

from runhelpers import EpochCounter, numbers as _numbers, tiny  # noqa: E402


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


def test_checkpoint_every_k_epochs_resumes_from_the_last_one_written(fake_root, tmp_path, monkeypatch):
    config = tiny(fake_root, epochs=5, checkpoint_every=2)
    whole = ft.train(config, tmp_path / "whole", progress=False)
    saved, save = [], ft._save_checkpoint
    monkeypatch.setattr(ft, "_save_checkpoint", lambda path, state: saved.append(state["epoch"]) or save(path, state))

    class KilledInEpoch4(EpochCounter):
        def __call__(self, *args, **kwargs):
            if self.calls == 3:
                raise KeyboardInterrupt  # dies in epoch 4: epoch 3 was trained but not checkpointed
            return super().__call__(*args, **kwargs)

    with monkeypatch.context() as patch:
        KilledInEpoch4(patch)
        with pytest.raises(KeyboardInterrupt):
            ft.train(config, tmp_path / "killed", progress=False)
    assert saved == [2]
    run_dir = tmp_path / "killed" / run_name(config)
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 2
    counter = EpochCounter(monkeypatch)
    resumed = ft.train(config, tmp_path / "killed", progress=False)
    assert counter.calls == 3 and saved == [2, 4, 5]  # epochs 3-5 again; checkpoints at 4 and at the last
    assert _numbers(resumed) == _numbers(whole)


def test_compile_with_ddp_is_refused_with_the_reason(fake_root, tmp_path):
    with pytest.raises(ValueError, match="Config.compile is not supported with DDP"):
        ft._run(tiny(fake_root, compile=True), tmp_path / "run", torch.device("cpu"), 0, 2, False)


def test_a_checkpoint_resumes_on_a_device_other_than_the_one_that_saved_it(tmp_path):
    """Checkpoints load to the CPU whatever the training device: the RNG state stays a CPU byte tensor
    (``torch.set_rng_state`` rejects one on another device, so loading with ``map_location=device`` made every run
    saved on one device and resumed with another, a GPU run included, fail to resume). Here a CPU checkpoint resumes
    for a ``meta`` device; weights, momentum and the RNG come back."""
    from focal.engine.models import build_model

    torch.manual_seed(0)
    model = build_model("small-cnn", 3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    rng = torch.get_rng_state()
    ft._save_checkpoint(tmp_path / "checkpoint.pt", {"epoch": 1, "model": model.state_dict(),
                                                   "optimizer": opt.state_dict(), "rng_cpu": rng, "rng_cuda": [],
                                                   "history": [{"epoch": 1}]})
    torch.manual_seed(1)
    fresh = build_model("small-cnn", 3, 1)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    assert ft._resume(tmp_path / "checkpoint.pt", fresh, fresh_opt, torch.device("meta")) == (1, [{"epoch": 1}])
    assert torch.equal(torch.get_rng_state(), rng)
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b) and torch.equal(opt.state[a]["momentum_buffer"], fresh_opt.state[b]["momentum_buffer"])


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
    saved = Config.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert saved.replace(data_root=None) == config.replace(data_root=None) and Path(saved.data_root) == fake_root
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2

    counter = EpochCounter(monkeypatch)
    again = ft.train(config.replace(device="cpu", verify=True), tmp_path, progress=False)  # same identity
    assert counter.calls == 0 and first["status"] == "trained" and again["status"] == "reused"
    assert {**again, "status": None} == {**first, "status": None} == {**load_run(run_dir), "status": None}


def test_a_directory_of_another_config_is_refused(fake_root, tmp_path):
    config = tiny(fake_root)
    (tmp_path / run_name(config)).mkdir()
    (tmp_path / run_name(config) / "config.json").write_text(json.dumps(config.replace(lr=0.5).to_dict()))
    with pytest.raises(FileExistsError, match="different config"):
        ft.train(config, tmp_path, progress=False)


def test_train_rejects_a_non_config():
    with pytest.raises(TypeError, match="Config"):
        ft.train({"loss": "ce"})



# ------------------------------------------------------------------------------------- results know their code


@pytest.mark.slow
def test_a_run_records_its_code_time_and_data_files(fake_root, tmp_path):
    run = ft.train(tiny(fake_root, epochs=1), tmp_path, progress=False)
    assert run["code"] == {"fingerprint": code_fingerprint(), "torch": torch.__version__,
                           "python": platform.python_version()}
    assert run["trained_at"].endswith("Z") and run["trained_at"][:2] == "20"
    assert run["data_files"] and all(Path(f).is_file() and Path(f).is_relative_to(fake_root)
                                     for f in run["data_files"])


def _finished(fake_root, out, **changes):
    config = tiny(fake_root, epochs=1, **changes)
    ft.train(config, out, progress=False)
    return config, out / run_name(config)


@pytest.mark.slow
def test_a_run_of_other_code_is_retrained_with_a_warning_naming_it(fake_root, tmp_path, monkeypatch):
    config, run_dir = _finished(fake_root, tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["code"]["fingerprint"] = "0123456789ab"
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    counter = EpochCounter(monkeypatch)
    with pytest.warns(RunWarning, match=f"run {run_name(config)} is stale.*0123456789ab.*retraining") as seen:
        again = ft.train(config, tmp_path, progress=False)
    assert counter.calls == 1 and again["status"] == "trained" and again["code"]["fingerprint"] != "0123456789ab"
    archived = list((tmp_path / ".archive").iterdir())
    assert len(archived) == 1 and str(archived[0]) in str(seen[0].message)  # the old run is kept, not deleted
    assert json.loads((archived[0] / "metrics.json").read_text())["code"]["fingerprint"] == "0123456789ab"


@pytest.mark.slow
def test_reuse_stale_keeps_a_run_of_other_code_with_a_warning(fake_root, tmp_path, monkeypatch):
    config, run_dir = _finished(fake_root, tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    del metrics["code"]  # a run from before runs recorded their code
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    counter = EpochCounter(monkeypatch)
    with pytest.warns(RunWarning, match="stale.*before fingerprints.*reuse-stale"):
        kept = ft.train(config, tmp_path, progress=False, reuse_stale=True)
    assert counter.calls == 0 and kept["status"] == "reused-stale" and "code" not in kept


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["metrics.json", "config.json", "test_logits.npz", "missing test_logits.npz",
                                    "checkpoint.pt"])
def test_a_broken_run_is_reported_with_its_path_and_retrained(fake_root, tmp_path, monkeypatch, damage):
    config, run_dir = _finished(fake_root, tmp_path, loss="ce")
    name = damage.split()[-1]
    if damage.startswith("missing"):
        (run_dir / name).unlink()
    elif name == "checkpoint.pt":  # a killed run whose checkpoint was cut short (e.g. a full disk)
        (run_dir / "metrics.json").unlink()
        (run_dir / "test_logits.npz").unlink()
        _truncate(run_dir / name)
    else:
        _truncate(run_dir / name)
    counter = EpochCounter(monkeypatch)
    with pytest.warns(RunWarning, match=f"run {run_name(config)}.*{run_dir / name}") as seen:
        again = ft.train(config, tmp_path, progress=False)
    assert counter.calls == 1 and again["status"] == "trained", seen[0].message
    assert load_logits(run_dir)[0].shape == (60, 10)


def test_an_out_that_is_a_file_is_one_clear_error(fake_root, tmp_path):
    out = tmp_path / "runs.txt"
    out.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="runs.txt.*is a file"):
        ft.train(tiny(fake_root), out, progress=False)


def test_an_out_that_cannot_be_written_is_one_clear_error(fake_root, tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", read_only)  # root may write anywhere, so simulate a read-only folder
    with pytest.raises(PermissionError, match="cannot write runs to out=.*Permission denied.*writable folder"):
        ft.train(tiny(fake_root), tmp_path / "ro", progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_error_not_a_silent_cpu_run(fake_root, tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available.*--device cpu"):
        ft.train(tiny(fake_root, device="cuda"), tmp_path, progress=False)


@pytest.mark.slow
def test_a_checkpoint_of_other_code_is_not_resumed(fake_root, tmp_path, monkeypatch):
    config = tiny(fake_root)
    save = ft._save_checkpoint

    def killed_after_epoch_1(path, state):
        save(path, {**state, "code": {"fingerprint": "feedfacecafe"}} if state["epoch"] == 1 else state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ft, "_save_checkpoint", killed_after_epoch_1)
        with pytest.raises(KeyboardInterrupt):
            ft.train(config, tmp_path, progress=False)
    counter = EpochCounter(monkeypatch)
    with pytest.warns(RunWarning, match="checkpoint of other code \\(feedfacecafe\\); training it from the start"):
        run = ft.train(config, tmp_path, progress=False)
    assert counter.calls == 3 and run["status"] == "trained"


@pytest.mark.slow
def test_a_folder_of_another_config_without_config_json_is_refused(fake_root, tmp_path):
    config, run_dir = _finished(fake_root, tmp_path)
    (run_dir / "config.json").unlink()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["config"]["lr"] = 0.5
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(FileExistsError, match="different config.*'lr': \\(0.5, 0.1\\)"):
        ft.train(config, tmp_path, progress=False)


@pytest.mark.slow
def test_config_json_records_the_files_actually_read(fake_root, tmp_path):
    config, run_dir = _finished(fake_root, tmp_path)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["data_root"] == str(fake_root) and saved["data_files"]
    assert all(Path(f).is_file() and Path(f).is_relative_to(fake_root) for f in saved["data_files"])
    assert Config.from_dict(saved).replace(data_root=None) == config.replace(data_root=None)
