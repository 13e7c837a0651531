"""The training step and the evaluation pass of a run, the same on every device, compiled or not.

A step is: forward under bf16 autocast on CUDA (float32 logits either way: the classifier is a
:class:`~focal.engine.models.FloatLinear`), the loss on float32 logits, backward, one SGD update. With
``Config.compile`` the model (its forward and, through AOTAutograd, its backward) goes through :func:`torch.compile`
with static shapes; on CUDA in mode ``"reduce-overhead"``, which records the kernels of a step as CUDA graphs and
replays them. ResNet-32 at batch 128 launches hundreds of small kernels per step, so on a large GPU the launches, not
the arithmetic, bound an eager step.

What is compiled is kept per process by torch.compile, keyed by the model's code and guarded by shapes, dtypes,
devices and the train/eval flag, not by the model object: a later run with the same architecture, class count and
batch size in the same process (a grid worker's next run) reuses it without compiling again (the tests count
compilations). An epoch's last, smaller batch runs eagerly: its size differs from one training set to the next, and a
graph per size would recompile for every dataset and imbalance of a grid (and torch.compile stops compiling a
function after 8 versions).

Example:
    >>> from focal.engine.models import build_model
    >>> model = build_model("small-cnn", 10, 1)
    >>> compiled_forward(model, "cpu", compile=False) is model
    True
    >>> compile_mode("cuda"), compile_mode("cpu")
    ('reduce-overhead', 'default')
"""

from __future__ import annotations

from typing import Callable

import torch

from focal.engine import metrics

__all__ = ["compile_mode", "compiled_forward", "train_epoch", "predict", "evaluate"]


def compile_mode(device: torch.device | str) -> str:
    """The :func:`torch.compile` mode of a run on ``device``: ``"reduce-overhead"`` (CUDA graphs) on CUDA, else
    ``"default"`` (CUDA graphs exist only on CUDA)."""
    return "reduce-overhead" if torch.device(device).type == "cuda" else "default"


def compiled_forward(model: torch.nn.Module, device: torch.device | str, compile: bool) -> Callable:
    """What the training step calls for the forward pass: ``model`` itself, or with ``compile`` the model compiled
    with static shapes in :func:`compile_mode` (its parameters stay those of ``model``: the optimizer, checkpoints
    and evaluation use ``model``)."""
    if not compile:
        return model
    return torch.compile(model, mode=compile_mode(device), dynamic=False)


def train_epoch(forward: Callable, model: torch.nn.Module, loader, criterion, optimizer, autocast, memory_format,
                bar, graphs: bool = False) -> torch.Tensor:
    """One pass over ``loader``; returns [loss sum, correct, seen] (float64, on the device, not synced).

    Args:
        forward: the model or its compiled form (:func:`compiled_forward`), for full batches (``loader.batch_size``);
            ``model`` is what it wraps, and runs the epoch's last, smaller batch.
        graphs: the forward replays CUDA graphs, whose outputs the next replay overwrites: each step is then
            marked (:func:`torch.compiler.cudagraph_mark_step_begin`), and the step uses its outputs before the next.
    """
    model.train()
    totals = torch.zeros(3, dtype=torch.float64, device=next(model.parameters()).device)
    full = getattr(loader, "batch_size", None)
    for x, y in loader:
        compiled = full is None or len(x) == full
        if graphs and compiled:
            torch.compiler.cudagraph_mark_step_begin()
        with autocast:
            logits = (forward if compiled else model)(x.contiguous(memory_format=memory_format))
        loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            totals[0] += loss.detach() * len(y)
            totals[1] += (logits.argmax(1) == y).sum()
            totals[2] += len(y)
        bar.update()
    return totals


def predict(model: torch.nn.Module, loader, autocast, memory_format) -> torch.Tensor:
    """Float32 logits of every batch of ``loader`` (CPU tensor), the model in eval mode (never compiled: it runs
    every k epochs, and a second set of graphs would only cost memory)."""
    model.eval()
    outputs = []
    with torch.no_grad(), autocast:
        for x, _ in loader:
            outputs.append(model(x.contiguous(memory_format=memory_format)).float())
    return torch.cat(outputs).cpu()


def evaluate(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The per-epoch test metrics of a run's history: top-1 error (%) and 15-bin ECE."""
    probs = torch.softmax(logits, dim=1)
    return {
        "top1_error": float(metrics.top1_error(logits, labels)),
        "ece": float(metrics.expected_calibration_error(probs, labels, n_bins=15)),
    }
