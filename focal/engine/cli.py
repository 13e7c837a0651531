"""Command line: ``python -m focal train …`` runs one config, ``python -m focal grid …`` a grid of them.

The flags are generated from the fields of :class:`focal.engine.config.Config` — name, type, default, choices and
help text all come from the field — so a setting added to ``Config`` is on the command line without another edit.
``grid`` takes several values for the fields that declare a plural flag (``--losses``, ``--gammas``, ``--seeds``,
``--imbalances``). Runs land in ``--out`` under :func:`focal.engine.config.run_name`; finished runs of this code are
loaded, killed runs resume, stale and broken runs are named and retrained. Under ``torchrun --nproc_per_node=N -m
focal train …`` the run uses DDP. Errors in the arguments or the environment end in one line naming the argument or
path and what to do (exit status 2 for arguments, 1 for the environment).

Example:
    >>> build_parser().parse_args(["train", "--loss", "focal", "--gamma", "2", "--lt-profile", "step"]).lt_profile
    'step'
    >>> build_parser().parse_args(["grid", "--seeds", "0", "1"]).seed
    [0, 1]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from concurrent.futures import BrokenExecutor
from typing import Any, Sequence


from focal.engine.config import Config
from focal.engine.data import fetch_cifar
from focal.engine.grid import grid_configs, train_many
from focal.engine.system import RUNS_PER_GPU, default_workers, worker_devices
from focal.engine.train import RunWarning, train

__all__ = ["build_parser", "configs_from_args", "main"]

_GROUPS = ("data", "model and recipe", "hardware")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field(group: argparse._ArgumentGroup, field: dataclasses.Field, *, plural: bool) -> None:
    """One flag for one :class:`Config` field, everything taken from the field and its metadata."""
    meta, default = field.metadata, field.default
    if default is dataclasses.MISSING:
        default = field.default_factory()
    kind = meta["type"] or type(default)
    common = dict(dest=field.name, help=meta["help"])
    if kind is bool:  # a switch: the flag turns the default around, and its help says so
        if default:
            common["help"] = f"turn off: {meta['help']} (on by default)"
            group.add_argument(_flag("no_" + field.name), action="store_false", default=True, **common)
        else:
            common["help"] = f"{meta['help']} (off by default)"
            group.add_argument(_flag(field.name), action="store_true", default=False, **common)
        return
    if isinstance(default, tuple):  # a sequence field, e.g. lr_milestones
        group.add_argument(_flag(field.name), type=kind, nargs="*", default=list(default), metavar=meta["metavar"],
                           **common)
        return
    extra = dict(choices=meta["choices"]) if meta["choices"] else {}
    if plural:  # grid: several values of this field
        group.add_argument(_flag(meta["grid"]), type=kind, nargs="+",
                           default=list(meta["choices"]) if field.name == "loss" else [default],
                           metavar=meta["metavar"] or field.name.upper(), **common, **extra)
        return
    group.add_argument(_flag(field.name), type=kind, default=default, metavar=meta["metavar"], **common, **extra)


def _add_config_flags(parser: argparse.ArgumentParser, *, grid: bool) -> None:
    groups = {name: parser.add_argument_group(name) for name in _GROUPS}
    for field in dataclasses.fields(Config):
        _add_field(groups[field.metadata["group"]], field, plural=grid and field.metadata["grid"] is not None)
    out = parser.add_argument_group("output")
    out.add_argument("--out", default=None, metavar="DIR",
                     help="folder of the run directories; default: $FOCAL_DATA/runs, else <repo>/data/runs in a "
                          "checkout, else ./data/runs (--data-root does not move it)")
    out.add_argument("--reuse-stale", action="store_true",
                     help="keep finished runs trained by other code (a different code fingerprint) instead of "
                          "retraining them; each is named with a warning (a checkpoint of other code is never "
                          "resumed: a run is trained by one code)")
    out.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars or lines")


def build_parser() -> argparse.ArgumentParser:
    """The ``focal`` argument parser with its ``train``, ``grid`` and ``data`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m focal", description="Train image classifiers with focal-loss variants on long-tailed data.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,grid,data}")
    one = commands.add_parser("train", help="train one run (resumes a killed run, loads a finished one)",
                              description="Train one config; prints where its results are.")
    _add_config_flags(one, grid=False)
    many = commands.add_parser(
        "grid", help="train losses x gammas x seeds x imbalances, skipping finished runs",
        description="Train a grid of configs; gamma varies only for the losses that use it.")
    _add_config_flags(many, grid=True)
    many.add_argument("--workers", type=int, default=None, metavar="N",
                      help="runs trained at once in separate processes; default: one per usable core on the CPU, "
                           f"{RUNS_PER_GPU} per GPU on CUDA (spread over every visible GPU for --device cuda)")
    data = commands.add_parser(
        "data", help="download (or unpack copied archives of) CIFAR-10 and CIFAR-100, checking their MD5 sums",
        description="Make CIFAR-10 and CIFAR-100 ready under the data root (what `make data` runs).")
    data.add_argument("--data-root", default=None, metavar="DIR",
                      help="folder for the datasets (default: $FOCAL_DATA, else <repo>/data in a checkout, else ./data)")
    return parser


def configs_from_args(args: argparse.Namespace) -> list[Config]:
    """The run(s) the arguments ask for; every value is validated before the first run starts."""
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)}
    fields["lr_milestones"] = tuple(fields["lr_milestones"])
    if args.command == "train":
        return [Config(**fields)]
    plural = {f.name: fields[f.name] for f in dataclasses.fields(Config) if f.metadata["grid"]}
    base = Config(**{**fields, **{name: values[0] for name, values in plural.items()}})
    for name, values in plural.items():
        for value in values:
            base.replace(**{name: value})
    return grid_configs(base, plural["loss"], plural["gamma"], plural["seed"], plural["imbalance"])


def _pct(value: Any) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.2f}"


#: What a command did with each run, as its summary line says it.
DID = {"trained": "trained", "resumed": "resumed and trained", "reused": "loaded", "reused-stale": "loaded (stale)"}


def _summary(result: dict[str, Any]) -> str:
    final = result["final"]
    did = DID.get(result.get("status"), result.get("status", "?"))
    if result.get("trained_by"):
        did = f"left to {result['trained_by']}, then loaded"
    return (f"{did}: {result['name']}: top-1 error {_pct(final['top1_error'])}% (best {_pct(result['best_top1_error'])}% "
            f"at epoch {result['best_epoch']}), ECE {_pct(100 * final['ece'])}%  [{result['run_dir']}]")


def _one_line_warnings(prog: str):
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m focal`` and the ``focal`` script; returns the exit status.

    Invalid flags or values exit with status 2 and a message that lists the valid choices; a missing dataset, an
    unusable ``--out``, a device that is not there or an unreadable file exit with status 1 and one line.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"python -m focal {args.command}"
    if args.command == "data":
        try:
            for folder in fetch_cifar(args.data_root):
                print(f"ready: {folder}")
        except OSError as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 1
        return 0
    try:
        configs = configs_from_args(args)
        if args.command == "grid" and args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    with warnings.catch_warnings():
        warnings.simplefilter("always", RunWarning)
        warnings.showwarning = _one_line_warnings(prog)
        try:
            if args.command == "train":
                results = [train(configs[0], args.out, progress=args.progress, reuse_stale=args.reuse_stale)]
            else:
                workers = args.workers or default_workers(device=configs[0].device)
                results = [metrics for _, metrics in train_many(
                    configs, args.out, progress=args.progress, workers=workers, reuse_stale=args.reuse_stale,
                    bars=args.progress and workers == 1, devices=worker_devices(configs[0].device, workers))]
        except (OSError, ValueError, BrokenExecutor) as err:  # data, --out, device, unreadable files: one line
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 1
    for result in results:
        if result:  # DDP ranks other than 0 get {}
            print(_summary(result), file=sys.stdout)
    return 0

