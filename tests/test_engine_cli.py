"""Tests of the command line (focal.engine.cli), called in process; one subprocess check of ``python -m focal``."""

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest
import torch

from focal.engine.cli import build_parser, configs_from_args, main
from focal.engine.config import LOSSES, Config, run_name
from focal.engine.data import DATASETS


def tiny_args(root, out) -> list[str]:
    return ["--dataset", "cifar10", "--data-root", str(root), "--no-verify", "--model", "small-cnn",
            "--epochs", "1", "--batch-size", "64", "--out", str(out), "--no-progress"]


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["grid", "--help"]])
def test_help_documents_the_flags(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    text = capsys.readouterr().out
    expected = {"--help": ["train", "grid"], "train": ["--dataset", "--data-root", "--imbalance", "--loss",
                                                      "--gamma", "--epochs", "--seed", "--out", "--no-verify"],
                "grid": ["--losses", "--gammas", "--seeds", "--imbalances", "--out"]}[argv[0]]
    assert all(flag in text for flag in expected)


@pytest.mark.parametrize("flag, valid", [("--dataset", DATASETS), ("--loss", LOSSES)])
def test_unknown_names_exit_2_listing_the_valid_ones(flag, valid, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", flag, "nonsense"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "nonsense" in err and all(name in err for name in valid)


@pytest.mark.parametrize("argv, field", [(["train", "--imbalance", "0.5"], "imbalance"),
                                         (["train", "--device", "tpu"], "device"),
                                         (["grid", "--gammas", "1", "-2"], "gamma"),
                                         (["grid", "--losses", "ce", "focall"], "focall")])
def test_bad_values_exit_2_naming_them(argv, field, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and field in capsys.readouterr().err


def test_flags_fill_the_config():
    args = build_parser().parse_args(["train", "--loss", "cb-focal", "--gamma", "0.5", "--beta", "0.999",
                                      "--lr-milestones", "30", "40", "--no-amp", "--no-augment", "--seed", "3",
                                      "--lt-profile", "step"])
    [config] = configs_from_args(args)
    assert (config.loss, config.gamma, config.beta, config.lr_milestones) == ("cb-focal", 0.5, 0.999, (30, 40))
    assert (config.amp, config.augment, config.seed, config.channels_last) == (False, False, 3, True)
    assert config.lt_profile == "step" and config == Config(loss="cb-focal", gamma=0.5, beta=0.999,
                                                          lr_milestones=(30, 40), amp=False, augment=False, seed=3,
                                                          lt_profile="step")


@pytest.mark.parametrize("command", ["train", "grid"])
def test_every_config_field_is_a_flag_with_its_help(command):
    """The flags are generated from Config: each field is on the command line, with the field's own help text."""
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    actions = {a.dest: a for a in sub._actions}
    for field in dataclasses.fields(Config):
        assert field.name in actions, field.name
        assert field.metadata["help"] in actions[field.name].help
    defaults = configs_from_args(parser.parse_args([command]))
    assert defaults[0] == Config() if command == "train" else len(defaults) == len(LOSSES)
    assert "--profile" not in sub.format_help() and "--lt-profile" in sub.format_help()


def test_switches_say_which_way_they_turn():
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "--no-verify turn off: check the dataset when loading (CIFAR: MD5 checksums; Fashion-MNIST: the images per class) (on by default)" in text
    assert "--download download a missing dataset (off by default)" in text


def test_out_help_says_where_runs_go():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "$FOCAL_DATA/runs" in " ".join(text.split()) and "--data-root does not move it" in " ".join(text.split())


@pytest.mark.slow
def test_train_one_epoch_writes_config_and_metrics(fake_root, tmp_path, capsys):
    assert main(["train", *tiny_args(fake_root, tmp_path), "--loss", "focal", "--gamma", "2", "--seed", "1"]) == 0
    config = Config(dataset="cifar10", model="small-cnn", epochs=1, batch_size=64, loss="focal", gamma=2.0, seed=1)
    run_dir = tmp_path / run_name(config)
    saved = Config.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert saved == config.replace(data_root=str(fake_root), verify=False)  # the folder actually read
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["history"]) == 1 and metrics["best_epoch"] == 1
    assert 0 <= metrics["final"]["top1_error"] <= 100 and 0 <= metrics["final"]["ece"] <= 1
    assert metrics["train_counts"] == [24] * 10 and metrics["final"]["num_samples"] == 60
    assert str(run_dir) in capsys.readouterr().out


@pytest.mark.slow
def test_grid_runs_each_setting_once(fake_root, tmp_path, capsys):
    argv = ["grid", *tiny_args(fake_root, tmp_path), "--losses", "ce", "focal", "--gammas", "1", "2", "--workers", "1"]
    assert main(argv) == 0
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))  # .locks: the runs' locks
    assert len(names) == 3 and all((tmp_path / n / "metrics.json").is_file() for n in names)
    assert main(argv) == 0  # everything finished: loaded, the same three results
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(line.startswith("trained: ") for line in lines[:3])
    assert [line.replace("trained: ", "loaded: ", 1) for line in lines[:3]] == lines[3:]


@pytest.mark.slow
def test_two_grid_commands_on_one_folder_share_the_runs(fake_root, tmp_path):
    """Two `python -m focal grid` processes started together on one --out (one per GPU, say): every run is trained by
    exactly one of them, and each prints, per run, whether it trained it, loaded it, or left it to the other."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "focal", "grid", *tiny_args(fake_root, tmp_path), "--epochs", "2",
            "--losses", "ce", "focal", "--gammas", "1", "2", "--seeds", "0", "1", "--workers", "1"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    trained = [{line.split(": ")[1] for line in out.splitlines() if line.startswith("trained: ")} for out, _ in outs]
    names = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert len(names) == 6 and trained[0] | trained[1] == names, "every run trained"
    assert not trained[0] & trained[1], "no run trained twice"  # (without the locks both train nearly every run)
    for out, _ in outs:
        assert len([line for line in out.splitlines() if "top-1 error" in line]) == 6, "a result for every run"


def test_python_dash_m_focal_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "focal", "train", "--loss", "nonsense"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "sigmoid-focal" in proc.stderr


def test_missing_data_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    status = main(["train", "--dataset", "cifar10-lt", "--data-root", str(tmp_path), "--epochs", "1",
                   "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 1
    assert "CIFAR-10 not found" in err and str(tmp_path) in err and "--download" in err
    assert "Traceback" not in err


def _one_line_error(capsys, status):
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_an_out_that_is_a_file_is_one_line(fake_root, tmp_path, capsys):
    (tmp_path / "runs").write_text("")
    err = _one_line_error(capsys, main(["train", *tiny_args(fake_root, tmp_path / "runs")]))
    assert str(tmp_path / "runs") in err and "is a file" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(fake_root, tmp_path, capsys):
    err = _one_line_error(capsys, main(["train", *tiny_args(fake_root, tmp_path), "--device", "cuda"]))
    assert "CUDA is not available" in err and "--device cpu" in err


def test_a_truncated_cifar_batch_is_one_line_naming_it(fake_root, tmp_path, capsys):
    root = tmp_path / "cifar"
    shutil.copytree(fake_root, root)
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:100])
    err = _one_line_error(capsys, main(["train", *tiny_args(root, tmp_path / "runs")]))
    assert str(batch) in err


def test_a_data_root_without_fashion_mnist_is_one_line_naming_it(tmp_path, capsys):
    err = _one_line_error(capsys, main(["train", "--dataset", "fashion-mnist-lt", "--data-root", str(tmp_path),
                                        "--out", str(tmp_path / "runs"), "--no-progress"]))
    assert str(tmp_path) in err


@pytest.mark.slow
def test_a_truncated_batch_in_parallel_grid_workers_is_one_line_naming_it(fake_root, tmp_path, capsys):
    root = tmp_path / "cifar"
    shutil.copytree(fake_root, root)
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:100])
    status = main(["grid", *tiny_args(root, tmp_path / "runs"), "--losses", "ce", "focal", "--workers", "2"])
    assert str(batch) in _one_line_error(capsys, status)
