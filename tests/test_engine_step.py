"""Tests of focal.engine.step: the compiled training step trains like the eager one, compiles once per process and
shape, and marks every step when it replays CUDA graphs."""

import contextlib

import numpy as np
import pytest
import torch

import focal.engine.step as fs
import focal.engine.train as ft
from focal.engine.models import build_model

from runhelpers import tiny


@pytest.fixture
def compiles():
    """The number of graphs torch.compile has compiled since the test began, from an empty compile cache."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    yield lambda: counters["stats"]["unique_graphs"]
    torch._dynamo.reset()


@pytest.mark.slow
def test_a_compiled_run_trains_like_the_eager_one(fake_root, tmp_path, compiles):
    eager = ft.train(tiny(fake_root, compile=False), tmp_path / "eager", progress=False)
    compiled = ft.train(tiny(fake_root, compile=True), tmp_path / "compiled", progress=False)
    assert compiles() >= 1, "compile=True did not compile anything"
    assert compiled["config"]["compile"] is True and eager["config"]["compile"] is False
    for a, b in zip(eager["history"], compiled["history"]):  # the same run; only the order of float sums differs
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=0.05)
    np.testing.assert_allclose(eager["final"]["nll"], compiled["final"]["nll"], rtol=1e-3)


@pytest.mark.slow
def test_the_step_compiles_once_per_process_and_later_runs_reuse_it(fake_root, tmp_path, compiles):
    # 128 training images in batches of 48: two full batches and a last one of 32, which runs eagerly
    ft.train(tiny(fake_root, compile=True, seed=0, batch_size=48), tmp_path, progress=False)
    assert compiles() == 1  # the full batch's graph (forward and backward): no graph for the partial batch
    ft.train(tiny(fake_root, compile=True, seed=1, loss="ce", batch_size=48), tmp_path, progress=False)
    ft.train(tiny(fake_root, compile=True, seed=2, imbalance=2.0, batch_size=48), tmp_path, progress=False)
    assert compiles() == 1, "a later run of the same model and batch size compiled again"


def test_compile_false_compiles_nothing(fake_root, tmp_path, compiles):
    ft.train(tiny(fake_root, compile=False), tmp_path, progress=False)
    assert compiles() == 0


def test_compile_mode_uses_cuda_graphs_only_on_cuda(monkeypatch):
    seen = {}
    monkeypatch.setattr(torch, "compile", lambda model, **kw: seen.update(kw) or model)
    model = build_model("small-cnn", 3, 1)
    fs.compiled_forward(model, torch.device("cuda"), compile=True)
    assert seen == {"mode": "reduce-overhead", "dynamic": False}
    fs.compiled_forward(model, "cpu", compile=True)
    assert seen == {"mode": "default", "dynamic": False}


class _Bar:
    def update(self):
        pass


class _Batches(list):
    batch_size = 4


@pytest.mark.parametrize("graphs", [False, True])
def test_full_batches_replay_the_compiled_forward_and_the_last_smaller_one_runs_eagerly(monkeypatch, graphs):
    marks, compiled_calls = [], []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    model = build_model("small-cnn", 3, 1)

    def forward(x):
        compiled_calls.append(len(x))
        return model(x)

    batches = _Batches([(torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 0])) for _ in range(3)])
    batches.append((torch.randn(2, 1, 28, 28), torch.tensor([1, 2])))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    totals = fs.train_epoch(forward, model, batches, torch.nn.functional.cross_entropy, optimizer,
                            contextlib.nullcontext(), torch.contiguous_format, _Bar(), graphs)
    assert compiled_calls == [4, 4, 4] and len(marks) == (3 if graphs else 0)
    assert totals[2].item() == 14


def test_evaluate_reports_top1_error_and_ece():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    out = fs.evaluate(logits, torch.tensor([0, 1, 1]))
    assert out["top1_error"] == pytest.approx(100 / 3)
    assert 0 < out["ece"] < 1
