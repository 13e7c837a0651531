"""What the built site says about itself: the footer every page carries (package version, git commit, profile),
the repository and Binder buttons, and the box each chapter opens with (how to rerun it, and what it took here).

The committed ``_config.yml`` names no repository: :func:`site_config` adds the repository and launch buttons to the
*staged* copy only when the build is given a ``repository_url`` (``make book REPOSITORY_URL=...``; the Pages
workflow passes its own repository), so no placeholder URL lives in the repository.

Example:
    >>> cfg = site_config({"title": "t"}, profile="cpu", version="0.1.0", commit="abc1234")
    >>> "abc1234" in cfg["html"]["extra_footer"], "repository" in cfg
    (True, False)
    >>> cfg = site_config({}, profile="cpu", version="0.1.0", commit="abc1234",
    ...                   repository_url="https://github.com/someone/focal")
    >>> cfg["launch_buttons"]["binderhub_url"], cfg["html"]["use_repository_button"]
    ('https://mybinder.org', True)
"""
from __future__ import annotations

import copy
import html
import importlib.metadata
import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import yaml

import focal
from focal.book.profiles import PROFILES, all_configs
from focal.engine.config import run_name
from focal.engine.files import atomic_write
from focal.engine.runs import load_run, runs_root

__all__ = ["BINDERHUB_URL", "RERUN_TAG", "package_version", "git_commit", "check_repository_url", "site_config",
           "staged_profiles", "write_site_config", "profile_training", "rerun_box", "add_rerun_box", "reads_runs",
           "chapter_box"]

#: The public BinderHub the launch buttons open (it builds GitHub repositories from their ``binder/`` folder).
BINDERHUB_URL = "https://mybinder.org"
#: Tag of the markdown cell :func:`add_rerun_box` puts under a chapter's title.
RERUN_TAG = "focal-rerun"
_GITHUB_REPO = re.compile(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def package_version() -> str:
    """The installed ``focal`` distribution's version (the package's own ``__version__`` when not installed)."""
    try:
        return importlib.metadata.version("focal")
    except importlib.metadata.PackageNotFoundError:
        return focal.__version__


def git_commit(root: str | os.PathLike) -> str:
    """The commit a checkout is at: 12 hex digits, ``+changes`` when tracked files differ from it.

    Outside a git checkout (or without git) ``$GITHUB_SHA`` is used when set, else ``"unknown"``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     git_commit(tmp) == os.environ.get("GITHUB_SHA", "unknown")[:12]
        True
    """
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    inside = git("rev-parse", "--show-toplevel")
    sha = git("rev-parse", "--short=12", "HEAD") if inside and Path(inside).resolve() == Path(root).resolve() else None
    if not sha:
        return os.environ.get("GITHUB_SHA", "unknown")[:12]
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}+changes" if changed else sha


def check_repository_url(url: str) -> str:
    """``url`` without a trailing slash or ``.git``, if it is a GitHub repository's web address.

    Raises:
        ValueError: anything but ``https://github.com/OWNER/REPO`` (Binder's launch buttons build GitHub
            repositories).

    Example:
        >>> check_repository_url("https://github.com/someone/focal/")
        'https://github.com/someone/focal'
    """
    clean = str(url).strip().removesuffix("/").removesuffix(".git")
    if not _GITHUB_REPO.fullmatch(clean):
        raise ValueError(f"repository_url must be https://github.com/OWNER/REPO (REPOSITORY_URL=...), got {url!r}")
    return clean


def _profiles_html(profile: str | dict[str, list[str]]) -> str:
    """``profile <code>cpu</code>``, or, for chapters run at different profiles, which chapters ran at which."""
    if isinstance(profile, str) or len(profile) == 1:
        name = profile if isinstance(profile, str) else next(iter(profile))
        return f"profile <code>{html.escape(name)}</code>"
    parts = [f"<code>{html.escape(name)}</code> (chapter{'s' * (len(ch) > 1)} {', '.join(ch)})"
             for name, ch in sorted(profile.items())]
    return "profiles " + ", ".join(parts[:-1]) + " and " + parts[-1]


def site_config(config: dict, *, profile: str | dict[str, list[str]], version: str, commit: str,
                repository_url: str | None = None, built: str | None = None) -> dict:
    """A copy of a Jupyter Book ``_config.yml`` mapping with the footer and, given ``repository_url``, the buttons.

    Args:
        config: the committed configuration (not modified).
        profile: the profile the chapters ran at, or ``{profile: [chapter numbers]}`` when they ran at several.
        version, commit: what :func:`package_version` and :func:`git_commit` return. built: the build date
            (default: today, UTC).
        repository_url: ``https://github.com/OWNER/REPO`` adds a repository button and Binder launch buttons
            (JupyterLab) that open the repository at ``commit`` (at ``main`` when the commit is unknown); None adds
            neither.
    """
    cfg = copy.deepcopy(config)
    built = built or datetime.now(timezone.utc).strftime("%Y-%m-%d")
    sha = commit.split("+")[0]
    known = re.fullmatch(r"[0-9a-f]{7,40}", sha) is not None
    code = f"<code>{html.escape(commit)}</code>"
    if repository_url is not None:
        repository_url = check_repository_url(repository_url)
        if known:
            code = f'<a href="{repository_url}/commit/{sha}">{code}</a>'
    footer = (f'<p class="focal-build">Built from focal {html.escape(version)}, commit {code}, at '
              f"{_profiles_html(profile)}, on {built}.</p>")
    page = cfg.setdefault("html", {})
    page["extra_footer"] = footer
    if repository_url is not None:
        cfg["repository"] = {"url": repository_url, "branch": sha if known else "main", "path_to_book": ""}
        page["use_repository_button"] = True
        cfg["launch_buttons"] = {**cfg.get("launch_buttons", {}), "binderhub_url": BINDERHUB_URL,
                                 "notebook_interface": "jupyterlab"}
    return cfg


def staged_profiles(staging: str | os.PathLike) -> dict[str, list[str]]:
    """``{profile: [chapter numbers]}`` of the executed chapters under ``staging/notebooks`` (what the build's
    papermill injected, recorded in each notebook's metadata).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     staged_profiles(tmp)
        {}
    """
    found: dict[str, list[str]] = {}
    for path in sorted((Path(staging) / "notebooks").glob("[0-9]*.ipynb")):
        if "." in path.stem:  # <name>.failed.ipynb: a chapter that did not finish
            continue
        try:
            meta = json.loads(path.read_text())["metadata"].get("focal_book", {})
        except (OSError, ValueError, KeyError):
            continue
        if profile := meta.get("parameters", {}).get("PROFILE"):
            found.setdefault(str(profile), []).append(path.stem.split("_")[0].lstrip("0") or "0")
    return found


def write_site_config(staging: str | os.PathLike, *, profile: str, root: str | os.PathLike,
                      repository_url: str | None = None) -> Path:
    """Rewrite the staged ``staging/_config.yml`` through :func:`site_config`: version and commit of ``root``, and
    the profiles the staged chapters ran at (:func:`staged_profiles`; ``profile`` when none has run yet)."""
    path = Path(staging) / "_config.yml"
    config = yaml.safe_load(path.read_text()) or {}
    cfg = site_config(config, profile=staged_profiles(staging) or profile, version=package_version(),
                      commit=git_commit(root), repository_url=repository_url)
    atomic_write(path, lambda out: out.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)))
    return path


def profile_training(profile: str) -> tuple[int, int, float]:
    """``(runs found, runs of the profile, training seconds summed over the runs found)`` in the default runs folder.

    The seconds are each run's own ``train_time_s``: the compute it took when it was trained, not the wall time of
    a build that ran several at once.
    """
    found, seconds, configs = 0, 0.0, all_configs(profile)
    root = runs_root()
    for config in configs:
        try:
            run = load_run(root / run_name(config))
        except (OSError, ValueError):
            continue
        found += 1
        seconds += float(run.get("train_time_s") or 0.0)
    return found, len(configs), seconds


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def rerun_box(chapter: str, *, profile: str, seconds: float, hardware: str, date: str,
              training: tuple[int, int, float] | None = None) -> str:
    """The markdown box under a chapter's title: how to rerun just this chapter, at which profiles, what it took.

    Args:
        chapter: the notebook's stem, e.g. ``"04_ce_vs_focal"``. profile: the profile it ran at.
        seconds: how long executing it took. hardware: the machine (:func:`focal.engine.system.hardware`).
        date: when it was executed. training: :func:`profile_training` for chapters that read training runs.

    Example:
        >>> print(rerun_box("01_intro", profile="smoke", seconds=3.2, hardware="CPU", date="2026-11-30"))
        ... # doctest: +ELLIPSIS
        :::{admonition} Rerun this chapter
        :class: tip focal-rerun
        ...`make chapter CHAPTER=01 PROFILE=smoke`...executed in 3 s on CPU, 2026-11-30...
    """
    number = chapter.split("_")[0]
    profiles = ", ".join(f"`{name}` ({' and '.join(p.datasets)}, {p.base.model})" for name, p in PROFILES.items())
    text = (f"`make chapter CHAPTER={number} PROFILE={profile}` reruns just this chapter and re-renders the book. "
            f"`make lab` opens it in JupyterLab with the `focal` kernel: set `PROFILE = \"{profile}\"` in the "
            f"parameters cell and run every cell"
            + (" (on the machine that built this page, it reads the same finished runs and gives the same numbers)"
               if training is not None else "")
            + f". Profiles: {profiles}. **Here:** profile `{profile}`, executed in {_duration(seconds)} on "
            f"{hardware}, {date}")
    if training is not None:
        found, total, train_s = training
        text += (f"; it reads finished runs of the profile's grid, whose {total} runs ({found} of {total} on disk) "
                 f"took {_duration(train_s)} of compute to train (summed over runs) before the chapters ran")
    return f":::{{admonition}} Rerun this chapter\n:class: tip {RERUN_TAG}\n{text}.\n:::\n"


def add_rerun_box(nb: dict, box: str) -> dict:
    """Put ``box`` in a markdown cell (tagged :data:`RERUN_TAG`) right under the chapter's title, replacing an
    earlier box; a first markdown cell holding more than the ``# title`` line is split after it. Returns ``nb``,
    changed in place."""
    cells = [c for c in nb["cells"] if RERUN_TAG not in c.get("metadata", {}).get("tags", [])]
    first = cells[0] if cells else None
    if first is not None and first["cell_type"] == "markdown":
        title, _, rest = "".join(first["source"]).partition("\n")
        if title.startswith("# ") and rest.strip():
            body = {**first, "source": rest.lstrip("\n"), "metadata": dict(first.get("metadata", {}))}
            if "id" in first:
                body["id"] = f"{first['id']}-body"
            cells[:1] = [{**first, "source": title}, body]
    cell = {"cell_type": "markdown", "metadata": {"tags": [RERUN_TAG]}, "source": box}
    if first is not None and "id" in first:
        cell["id"] = RERUN_TAG
    nb["cells"] = cells[:1] + [cell] + cells[1:]
    return nb


def reads_runs(source: str | os.PathLike) -> bool:
    """Whether a chapter trains or loads runs (it calls ``train_many``)."""
    return "train_many(" in Path(source).read_text()


def chapter_box(source: str | os.PathLike, *, profile: str, seconds: float, hardware: str) -> str:
    """:func:`rerun_box` for a chapter notebook just executed at ``profile`` (training summed when it reads runs)."""
    source = Path(source)
    training = profile_training(profile) if reads_runs(source) else None
    return rerun_box(source.stem, profile=profile, seconds=seconds, hardware=hardware,
                     date=datetime.now(timezone.utc).strftime("%Y-%m-%d"), training=training)
