"""DistributedDataParallel: ``torchrun --nproc_per_node=2`` on CPU (gloo) through the CLI.

This file is also the worker script: torchrun runs it with ``main`` arguments; each rank records the model that
``focal.engine.train`` built, so the test can check that DDP kept both ranks' weights identical.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _worker(argv: list[str]) -> None:
    import focal.engine.train as ft
    from focal.engine.cli import main

    built = []
    build = ft.build_model
    ft.build_model = lambda *args, **kwargs: built.append(build(*args, **kwargs)) or built[-1]
    main(argv)
    out = Path(argv[argv.index("--out") + 1])
    rank = int(os.environ["RANK"])
    torch.save({name: p.detach() for name, p in built[0].named_parameters()}, out / f"rank{rank}.pt")


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed next to the interpreter")
def test_two_gloo_processes_train_one_model_and_rank0_writes(tmp_path):
    from focal.engine.data import write_fake_cifar
    from focal.engine.config import Config, run_name

    root = write_fake_cifar(tmp_path / "data", n_train_per_class=24, n_test_per_class=6)
    out = tmp_path / "runs"
    out.mkdir()
    argv = ["train", "--dataset", "cifar10-lt", "--imbalance", "4", "--data-root", str(root), "--no-verify",
            "--model", "small-cnn", "--loss", "focal", "--epochs", "2", "--batch-size", "32", "--out", str(out),
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(TORCHRUN), "--standalone", "--nproc_per_node=2", __file__, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun timed out:\n{stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]

    config = Config(dataset="cifar10-lt", imbalance=4.0, model="small-cnn", loss="focal", epochs=2, batch_size=32)
    run_dir = out / run_name(config)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["hardware"].startswith("2 x CPU") and len(metrics["history"]) == 2
    assert stdout.count("top-1 error") == 1 and run_name(config) in stdout  # only rank 0 reports
    assert sorted(p.name for p in out.iterdir()) == [run_name(config), "rank0.pt", "rank1.pt"]

    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    for name, weight in rank0.items():
        torch.testing.assert_close(weight, rank1[name], rtol=0, atol=0)  # gradients were all-reduced
        torch.testing.assert_close(weight, saved[name], rtol=0, atol=0)
    torch.manual_seed(0)
    init = dict(__import__("focal.engine.models", fromlist=["x"]).small_cnn(10, 3).named_parameters())
    assert not torch.equal(init["fc.weight"], rank0["fc.weight"])  # it did train


if __name__ == "__main__":
    _worker(sys.argv[1:])
