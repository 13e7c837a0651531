"""``python -m focal.book build|execute|check``: run the chapters and build the book, or check the built pages.

Commands::

    python -m focal.book build [--profile P] [--only NAME] [--force] [--reuse-stale] [--repository-url URL]
    python -m focal.book lab [--register-only] [--prefix DIR]  # the `focal` kernel, then JupyterLab on notebooks/
    python -m focal.book execute --profile smoke --out DIR [--only NAME] [--force]
    python -m focal.book check [--html _build/html]           # headless Chromium: math and figures

Errors end in one line naming what failed (a chapter and its cell, a missing file, an unknown profile).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from focal import require_extra
from focal.book.build import NotebookError, build, execute_book, repo_root, stage_book
from focal.book.check import check_book
from focal.book.lab import DISPLAY_NAME, KERNEL_NAME, register_kernel
from focal.book.profiles import PROFILES

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m focal.book`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m focal.book",
                                     description="Execute the book's chapters and build the Jupyter Book.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "execute"):
        cmd = sub.add_parser(name, help=f"{name} the book's chapters")
        cmd.add_argument("--profile", default=None, choices=sorted(PROFILES),
                         help="smoke, cpu or gpu (default: gpu with CUDA and CIFAR present, else cpu)")
        cmd.add_argument("--only", default=None, help="execute only this chapter (file stem or its prefix)")
        cmd.add_argument("--force", action="store_true", help="re-execute even if the executed notebook is current")
        cmd.add_argument("--reuse-stale", action="store_true",
                         help="keep finished runs trained by other code instead of retraining them (each is named)")
    sub.choices["execute"].add_argument("--out", required=True, help="staging folder for the executed notebooks")
    sub.choices["build"].add_argument("--repository-url", default=None, metavar="URL",
                                      help="https://github.com/OWNER/REPO: add a repository button and Binder "
                                           "launch buttons to every chapter (default: none)")
    lab = sub.add_parser("lab", help=f"register this environment as the Jupyter kernel {KERNEL_NAME!r}, "
                                     "then open the notebooks in JupyterLab")
    lab.add_argument("--register-only", action="store_true", help="register the kernel, do not start JupyterLab")
    lab.add_argument("--prefix", default=sys.prefix, help="where the kernel spec goes (default: this environment)")
    check = sub.add_parser("check", help="open the built pages in headless Chromium: math typeset, figures present")
    check.add_argument("--html", default=None, help="built HTML folder (default: <repo>/_build/html)")
    check.add_argument("--screenshot", default=None, help="PNG of chapter 4 (default: <repo>/_build/chapter4.png)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m focal.book``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build":
            build(args.profile, only=args.only, force=args.force, reuse_stale=args.reuse_stale,
                  repository_url=args.repository_url)
        elif args.command == "lab":
            spec = register_kernel(args.prefix)
            print(f"registered the Jupyter kernel {KERNEL_NAME!r} ({DISPLAY_NAME}) at {spec}", flush=True)
            if not args.register_only:
                require_extra("make lab", "lab", ("jupyterlab",))
                return subprocess.call([sys.executable, "-m", "jupyterlab", str(repo_root() / "notebooks")])
        elif args.command == "execute":
            out = stage_book(args.out)
            execute_book(args.profile, out, only=args.only, force=args.force, reuse_stale=args.reuse_stale)
        else:
            html = Path(args.html) if args.html else repo_root() / "_build" / "html"
            shot = Path(args.screenshot) if args.screenshot else repo_root() / "_build" / "chapter4.png"
            print(json.dumps(check_book(html, screenshot=shot), indent=1))
    except (NotebookError, RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as err:
        print(f"python -m focal.book {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
