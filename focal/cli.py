"""Command line: ``python -m focal train …`` runs one config, ``python -m focal grid …`` a grid of them.

Every flag fills a field of :class:`focal.train.Config` (defaults: the LDAM-DRW CIFAR recipe). Runs land in
``--out`` (default ``<data root>/runs``) under :func:`focal.train.run_name`; finished runs are loaded, not retrained,
and killed runs resume. Under ``torchrun --nproc_per_node=N -m focal train …`` the run uses DDP.

Example:
    >>> build_parser().parse_args(["train", "--loss", "focal", "--gamma", "2"]).gamma
    2.0
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Sequence

from focal.data import DATASETS
from focal.models import MODELS
from focal.train import LOSSES, PROFILES, Config, grid, train

_DEFAULT = Config()


def _add_shared(parser: argparse.ArgumentParser) -> None:
    """Flags of both subcommands: data, model, optimisation recipe and where results go."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default=_DEFAULT.dataset, help="dataset (default %(default)s)")
    data.add_argument("--data-root", default=None, metavar="DIR",
                      help="dataset folder (default $FOCAL_DATA, else <repo>/data)")
    data.add_argument("--profile", choices=PROFILES, default=_DEFAULT.profile,
                      help="long-tail profile of -lt datasets (default %(default)s)")
    data.add_argument("--n-max", type=int, default=None, metavar="N",
                      help="head-class images of an -lt subset (with --imbalance 1: a balanced subset of N per "
                           "class); default: the balanced set's per-class count")
    data.add_argument("--subset-seed", type=int, default=_DEFAULT.subset_seed,
                      help="seed of the long-tailed subset, fixed across training seeds as in LDAM-DRW "
                           "(default %(default)s)")
    data.add_argument("--no-verify", dest="verify", action="store_false", help="skip dataset checksum checks")
    data.add_argument("--download", action="store_true", help="download a missing dataset")
    data.add_argument("--no-augment", dest="augment", action="store_false",
                      help="no random crop / horizontal flip")

    recipe = parser.add_argument_group("model and recipe")
    recipe.add_argument("--model", choices=MODELS, default=_DEFAULT.model, help="network (default %(default)s)")
    recipe.add_argument("--beta", type=float, default=_DEFAULT.beta,
                        help="class-balanced beta of cb-focal (default %(default)s)")
    recipe.add_argument("--epochs", type=int, default=_DEFAULT.epochs, help="epochs (default %(default)s)")
    recipe.add_argument("--batch-size", type=int, default=_DEFAULT.batch_size,
                        help="global batch size, split across DDP ranks (default %(default)s)")
    recipe.add_argument("--lr", type=float, default=_DEFAULT.lr, help="peak learning rate (default %(default)s)")
    recipe.add_argument("--momentum", type=float, default=_DEFAULT.momentum, help="SGD momentum (default %(default)s)")
    recipe.add_argument("--weight-decay", type=float, default=_DEFAULT.weight_decay,
                        help="weight decay (default %(default)s)")
    recipe.add_argument("--warmup-epochs", type=int, default=_DEFAULT.warmup_epochs,
                        help="linear warm-up epochs of a 200-epoch run, scaled by epochs/200 (default %(default)s)")
    recipe.add_argument("--lr-milestones", type=int, nargs="*", default=list(_DEFAULT.lr_milestones), metavar="E",
                        help="epochs of a 200-epoch run where lr *= --lr-decay, scaled by epochs/200 "
                             "(default %(default)s)")
    recipe.add_argument("--lr-decay", type=float, default=_DEFAULT.lr_decay,
                        help="lr factor at each milestone (default %(default)s)")
    recipe.add_argument("--eval-every", type=int, default=_DEFAULT.eval_every,
                        help="test-set evaluation every k epochs, and after the last (default %(default)s)")

    hw = parser.add_argument_group("hardware and output")
    hw.add_argument("--device", default=_DEFAULT.device, help="auto, cpu, cuda or cuda:N (default %(default)s)")
    hw.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast on CUDA")
    hw.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                    help="keep the contiguous (NCHW) memory format instead of channels_last")
    hw.add_argument("--out", default=None, metavar="DIR", help="folder of run directories (default <data root>/runs)")
    hw.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``focal`` argument parser with its ``train`` and ``grid`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m focal", description="Train image classifiers with focal-loss variants on long-tailed data.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,grid}")

    one = commands.add_parser("train", help="train one run (resumes a killed run, loads a finished one)",
                              description="Train one config; prints where its results are.")
    one.add_argument("--loss", choices=LOSSES, default=_DEFAULT.loss, help="training loss (default %(default)s)")
    one.add_argument("--gamma", type=float, default=_DEFAULT.gamma,
                     help="focal gamma of focal, sigmoid-focal and cb-focal (default %(default)s)")
    one.add_argument("--imbalance", type=float, default=_DEFAULT.imbalance,
                     help="imbalance ratio n_max/n_min of -lt datasets (default %(default)s)")
    one.add_argument("--seed", type=int, default=_DEFAULT.seed, help="random seed (default %(default)s)")
    _add_shared(one)

    many = commands.add_parser("grid", help="train losses x gammas x seeds x imbalances, skipping finished runs",
                               description="Train a grid of configs; gamma varies only for the losses that use it.")
    many.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES), metavar="LOSS",
                      help=f"training losses, from {{{','.join(LOSSES)}}} (default: all)")
    many.add_argument("--gammas", nargs="+", type=float, default=[_DEFAULT.gamma], metavar="G",
                      help="focal gammas (default %(default)s)")
    many.add_argument("--imbalances", nargs="+", type=float, default=[_DEFAULT.imbalance], metavar="RHO",
                      help="imbalance ratios of -lt datasets (default %(default)s)")
    many.add_argument("--seeds", nargs="+", type=int, default=[_DEFAULT.seed], metavar="S",
                      help="random seeds (default %(default)s)")
    _add_shared(many)
    return parser


def _config(args: argparse.Namespace, **fixed: Any) -> Config:
    fields = {name: getattr(args, name) for name in Config.__dataclass_fields__ if hasattr(args, name)}
    fields["lr_milestones"] = tuple(args.lr_milestones)
    return Config(**{**fields, **fixed})


def _pct(value: Any) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.2f}"


def _summary(result: dict[str, Any]) -> str:
    final = result["final"]
    return (f"{result['name']}: top-1 error {_pct(final['top1_error'])}% (best {_pct(result['best_top1_error'])}% "
            f"at epoch {result['best_epoch']}), ECE {_pct(100 * final['ece'])}%  [{result['run_dir']}]")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m focal`` and the ``focal`` script; returns the exit status.

    Invalid flags or values exit with status 2 and a message that lists the valid choices.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            base = _config(args)
        else:
            base = _config(args, loss=args.losses[0], gamma=args.gammas[0], imbalance=args.imbalances[0],
                           seed=args.seeds[0])
            for name, values in (("imbalance", args.imbalances), ("gamma", args.gammas), ("seed", args.seeds)):
                for value in values:  # validate every grid value before the first run starts
                    base.replace(**{name: value})
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    try:
        if args.command == "train":
            results = [train(base, args.out, progress=args.progress)]
        else:
            results = [metrics for _, metrics in grid(base, args.losses, args.gammas, args.seeds, args.imbalances,
                                                      args.out, progress=args.progress)]
    except (FileNotFoundError, FileExistsError) as err:  # missing data, or a run folder holding another config
        print(f"python -m focal {args.command}: error: {err}", file=sys.stderr)
        return 1
    for result in results:
        if result:  # DDP ranks other than 0 get {}
            print(_summary(result), file=sys.stdout)
    return 0
