"""A run's folder on disk: which code produced it, whether it is finished and readable, and reading it back.

A run directory (named by :func:`focal.engine.config.run_name`) holds::

    config.json       the resolved config
    checkpoint.pt     model, optimizer, RNG state and history; rewritten atomically after every epoch
    test_logits.npz   final-epoch test logits (float32) and labels
    metrics.json      per-epoch history, final summary, best epoch, code fingerprint, training time; written last,
                      so it marks a finished run

Results know their code: ``metrics.json`` records :func:`code_fingerprint` — a hash of the sources that affect
training (:data:`TRAINING_SOURCES`, with docstrings and comments stripped) and the torch version — and when the run
was trained. :func:`inspect_run` reads a folder and says what it holds: nothing, a run to resume, a finished run of
this code, a *stale* run of other code, or a *broken* one (a file truncated or unreadable, named in ``reason``).
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import os
import platform
import shutil
import time
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from focal.engine.config import Config
from focal.engine.data import default_data_root
from focal.engine.files import UnreadableFile, read_json

__all__ = [
    "TRAINING_SOURCES", "RunState", "code_fingerprint", "code_record", "inspect_run", "archive_run", "load_run",
    "load_logits", "find_runs", "runs_root",
]

_PACKAGE = Path(__file__).resolve().parents[1]
#: The sources whose code decides a run's numbers, relative to the ``focal`` package: the losses, the data, the
#: models, the metrics a run stores and the training loop with its config. Plots, the book and the CLI are not here.
TRAINING_SOURCES = ("losses", "engine/data", "engine/metrics", "engine/config.py", "engine/models.py",
                    "engine/train.py", "engine/step.py")


class _Prose(ast.NodeTransformer):
    """Blanks what is prose, not computation: docstrings and other string statements, the messages of raised
    errors and warnings, and the help texts of :func:`focal.engine.config.setting`."""

    def generic_visit(self, node):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                 and isinstance(s.value.value, str))] or [ast.Pass()]
        return super().generic_visit(node)

    def visit_Raise(self, node):
        return _blank_strings(node)

    def visit_Call(self, node):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "warn":
            return _blank_strings(node)
        if name == "setting" and len(node.args) > 1:  # setting(default, help, group, ...)
            node.args[1] = ast.Constant("")
        return self.generic_visit(node)


def _blank_strings(node: ast.AST) -> ast.AST:
    for sub in ast.walk(node):
        for field, value in ast.iter_fields(sub):
            if isinstance(value, ast.JoinedStr) or (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                setattr(sub, field, ast.Constant(""))
            elif isinstance(value, list):
                setattr(sub, field, [ast.Constant("") if isinstance(v, ast.JoinedStr) or (
                    isinstance(v, ast.Constant) and isinstance(v.value, str)) else v for v in value])
    return node


def _normalized_source(path: Path) -> str:
    """The code of ``path`` without its prose (see :class:`_Prose`), comments or layout, so that editing a docstring,
    an error message or a help text does not make every run stale. ``ast.unparse`` keeps it the same across Python
    versions."""
    tree = _Prose().visit(ast.parse(path.read_text(), filename=str(path)))
    return ast.unparse(ast.fix_missing_locations(tree))


def code_fingerprint(package: str | os.PathLike | None = None) -> str:
    """12 hex digits identifying the training code and the torch version of this process.

    Two checkouts whose :data:`TRAINING_SOURCES` differ only in prose (docstrings, comments, error messages,
    help texts) or formatting share a fingerprint; any change to the code that trains, or another torch version,
    gives a new one.

    Args:
        package: the ``focal`` package folder to fingerprint; None: this installed package (computed once).

    Example:
        >>> len(code_fingerprint()), code_fingerprint() == code_fingerprint()
        (12, True)
    """
    if package is None:
        return _installed_fingerprint()
    return _fingerprint(Path(package).resolve(), torch.__version__)


@cache
def _installed_fingerprint() -> str:
    return _fingerprint(_PACKAGE, torch.__version__)


def _fingerprint(package: Path, torch_version: str) -> str:
    digest = hashlib.sha256(f"torch {torch_version}\n".encode())
    for entry in TRAINING_SOURCES:
        target = package / entry
        for path in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            digest.update(f"{path.relative_to(package).as_posix()}\n".encode())
            digest.update(_normalized_source(path).encode())
    return digest.hexdigest()[:12]


def code_record() -> dict[str, str]:
    """What ``metrics.json`` stores about the code that trained a run: ``fingerprint``, ``torch`` and ``python``."""
    return {"fingerprint": code_fingerprint(), "torch": str(torch.__version__), "python": platform.python_version()}


def runs_root(out: str | os.PathLike | None = None) -> Path:
    """The parent folder of run directories: ``out``, or ``default_data_root() / "runs"``."""
    return Path(out) if out is not None else default_data_root() / "runs"


@dataclasses.dataclass
class RunState:
    """What a run folder holds, from :func:`inspect_run`.

    ``kind`` is one of ``"empty"`` (nothing to reuse), ``"partial"`` (a checkpoint to resume), ``"finished"``
    (finished by this code), ``"stale"`` (finished by other code, or before runs recorded their code) or ``"broken"``
    (a file is truncated or unreadable). ``reason`` says why for stale and broken runs, naming the file;
    ``metrics`` is the parsed ``metrics.json`` of finished and stale runs; ``config`` the config the folder holds,
    when it could be read.
    """

    kind: str
    reason: str = ""
    metrics: dict[str, Any] | None = None
    config: Config | None = None


def _read_logits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, labels)`` of a ``test_logits.npz``; anything missing, truncated or malformed is UnreadableFile."""
    try:
        with np.load(path) as data:
            logits, labels = data["logits"], data["labels"]
    except FileNotFoundError:
        raise UnreadableFile(path, "missing") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise UnreadableFile(path, f"cannot be read ({err.__class__.__name__}: {err}), probably truncated") from err
    if logits.ndim != 2 or labels.shape != (len(logits),):
        raise UnreadableFile(path, f"holds logits {logits.shape} and labels {labels.shape}, expected (N, C) and (N,)")
    return logits, labels


def _read_config(path: Path, data: Any) -> Config:
    try:
        return Config.from_dict(data)
    except (ValueError, TypeError) as err:
        raise UnreadableFile(path, f"not a config of this version ({err})") from err


def inspect_run(run_dir: str | os.PathLike) -> RunState:
    """Read the run folder ``run_dir`` and say what it holds (see :class:`RunState`); never raises for bad files.

    ``RunState.config`` is the config the folder was written for (from ``config.json``, else ``metrics.json``), so
    that a caller can refuse a folder of another config.

    Example:
        >>> import tempfile
        >>> inspect_run(tempfile.mkdtemp()).kind
        'empty'
    """
    run_dir = Path(run_dir)
    config = None
    try:
        if (run_dir / "config.json").exists():
            config = _read_config(run_dir / "config.json", read_json(run_dir / "config.json"))
        if not (run_dir / "metrics.json").exists():
            return RunState("partial" if (run_dir / "checkpoint.pt").exists() else "empty", config=config)
        metrics = read_json(run_dir / "metrics.json")
        if not isinstance(metrics, dict) or not {"config", "final", "history"} <= set(metrics):
            raise UnreadableFile(run_dir / "metrics.json", "lacks the config, final and history of a finished run")
        config = config or _read_config(run_dir / "metrics.json", metrics["config"])
        _read_logits(run_dir / "test_logits.npz")
    except UnreadableFile as err:
        return RunState("broken", str(err), config=config)
    code = metrics.get("code")
    if not isinstance(code, dict):
        code = {}
    if code.get("fingerprint") != code_fingerprint():
        was = f"code {code['fingerprint']} (torch {code.get('torch', '?')})" if code.get("fingerprint") \
            else "code before fingerprints"
        return RunState("stale", f"trained by {was}; this is code {code_fingerprint()} (torch {torch.__version__})",
                        metrics, config)
    return RunState("finished", metrics=metrics, config=config)


def archive_run(run_dir: str | os.PathLike, why: str) -> Path:
    """Move ``run_dir`` aside to ``<parent>/.archive/<name>.<why>.<time>`` (kept, never deleted); returns the new path.

    The archive is outside the ``*/metrics.json`` pattern that :func:`find_runs` reads.
    """
    run_dir = Path(run_dir)
    target = run_dir.parent / ".archive" / f"{run_dir.name}.{why}.{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while target.exists():
        target, n = target.with_name(f"{target.name}-{n}"), n + 1
    shutil.move(os.fspath(run_dir), os.fspath(target))
    return target


def load_run(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` of a finished run directory, plus ``run_dir`` (str).

    Raises:
        FileNotFoundError: if ``path`` holds no finished run.
        UnreadableFile: if its ``metrics.json`` is truncated or corrupt (the error names it).
    """
    path = Path(path)
    if not (path / "metrics.json").is_file():
        raise FileNotFoundError(f"no finished run in {path} (metrics.json missing)")
    return {**read_json(path / "metrics.json"), "run_dir": str(path)}


def load_logits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Final-epoch test ``(logits float32 (N, C), labels int64 (N,))`` of the run in ``path``.

    Raises:
        UnreadableFile: if ``test_logits.npz`` is missing, truncated or malformed (the error names it).
    """
    return _read_logits(Path(path) / "test_logits.npz")


def find_runs(out: str | os.PathLike | None = None, **filters: Any) -> list[tuple[Config, dict[str, Any]]]:
    """Finished runs under ``out`` whose config matches every filter, sorted by run name.

    A filter value is either one value or a list/tuple/set of accepted values, e.g.
    ``find_runs(loss=["ce", "focal"], imbalance=100)``. Broken run folders are skipped; stale runs (of other code)
    are listed like the others, each with its ``code`` record: :func:`inspect_run` tells them apart.
    """
    valid = {f.name for f in dataclasses.fields(Config)}
    if set(filters) - valid:
        raise ValueError(f"unknown filter(s) {sorted(set(filters) - valid)}; valid: {sorted(valid)}")
    root, found = runs_root(out), []
    for metrics_file in sorted(root.glob("*/metrics.json")) if root.is_dir() else []:
        try:
            run = load_run(metrics_file.parent)
            config = Config.from_dict(run["config"])
        except (UnreadableFile, ValueError, TypeError, KeyError):
            continue
        if all(getattr(config, k) in (v if isinstance(v, (list, tuple, set)) else (v,)) for k, v in filters.items()):
            found.append((config, run))
    return found
