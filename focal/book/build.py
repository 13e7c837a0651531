"""Execute the book's chapters with papermill and build the Jupyter Book.

The committed notebooks carry no outputs. ``python -m focal.book build`` first trains every run of the profile that
is not finished yet (:func:`train_book_runs`: one line per run, with the time left), then assembles a staging copy of
the book (``_build/src/``: ``_config.yml``, ``_toc.yml``, ``book/`` and the *executed* ``notebooks/``), executes every
chapter listed in ``_toc.yml`` in order with papermill (injecting ``PROFILE``), then renders the staging copy with
``jupyter-book build -W`` into ``_build/html/``. An executed notebook is reused while its fingerprint -- the
notebook, the injected parameters and the source of ``focal/`` and ``benchmarks/`` -- is unchanged, so a second
build with nothing changed only re-renders.

The command line (``python -m focal.book build|execute|check``) is :mod:`focal.book.cli`; the browser check of the
built pages is :mod:`focal.book.check`.

Example:
    >>> [p.name for p in toc_notebooks()][:2]
    ['01_deriving_focal_loss.ipynb', '02_building_the_module.ipynb']
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from focal.book import require_book_tools
from focal.book.profiles import all_configs, default_profile, get_profile
from focal.book.site import add_rerun_box, chapter_box, check_repository_url, write_site_config
from focal.engine.files import atomic_write
from focal.engine.data import fetch_cifar
from focal.engine.grid import train_many
from focal.engine.system import default_workers, hardware, resolve_device, worker_devices

__all__ = ["NotebookError", "repo_root", "toc_entries", "toc_notebooks", "fingerprint", "execute_notebook",
           "stage_book", "execute_book", "build_html", "train_book_runs", "build"]

#: Files and folders of the book root copied into the staging tree (notebooks are written there executed).
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
#: Sources whose change invalidates executed notebooks (the code the chapters call).
CODE_DIRS = ("focal", "benchmarks")
MATHJAX = Path("book/_extra/mathjax/tex-svg.js")


class NotebookError(RuntimeError):
    """A chapter failed to execute; the message names the notebook and the failing cell."""


def repo_root() -> Path:
    """The book root: the folder holding ``_toc.yml`` next to the ``focal`` package, else the current folder.

    Example:
        >>> (repo_root() / "_toc.yml").is_file()
        True
    """
    here = Path(__file__).resolve().parents[2]  # <repo>/focal/book/build.py
    return here if (here / "_toc.yml").is_file() else Path.cwd()


def toc_entries(toc: str | os.PathLike) -> list[str]:
    """Every ``file:`` of a jb-book ``_toc.yml`` (root first, then parts and chapters in reading order).

    Args:
        toc: path to ``_toc.yml``.

    Returns:
        Document names relative to the book root, without suffix, e.g. ``"notebooks/01_deriving_focal_loss"``.

    Example:
        >>> toc_entries(repo_root() / "_toc.yml")[:2]
        ['book/intro', 'notebooks/01_deriving_focal_loss']
    """
    data = yaml.safe_load(Path(toc).read_text())
    if not isinstance(data, dict) or "root" not in data:
        raise ValueError(f"toc must be a jb-book _toc.yml with a 'root' entry, got {toc}")
    found = [str(data["root"])]

    def walk(items):
        for item in items or []:
            if not isinstance(item, dict):
                raise ValueError(f"toc entries must be mappings, got {item!r} in {toc}")
            if "file" in item:
                found.append(str(item["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(item.get(key))

    walk([{"parts": data.get("parts"), "chapters": data.get("chapters"), "sections": data.get("sections")}])
    return [f.removesuffix(".ipynb").removesuffix(".md") for f in found]


def toc_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """The chapters of the book: the ``.ipynb`` entries of ``root/_toc.yml`` in order, relative to ``root``.

    Entries without an ``.ipynb`` file (markdown pages, or chapters not written yet) are left out.

    Example:
        >>> toc_notebooks()[0].as_posix()
        'notebooks/01_deriving_focal_loss.ipynb'
    """
    root = Path(root) if root is not None else repo_root()
    names = [Path(f + ".ipynb") for f in toc_entries(root / "_toc.yml")]
    return [n for n in names if (root / n).is_file()]


def fingerprint(notebook: str | os.PathLike, parameters: dict, root: str | os.PathLike | None = None) -> str:
    """A hash of what an executed notebook depends on: its source, the injected parameters, the torch and Python
    versions, and the Python sources under ``root/focal`` and ``root/benchmarks``.

    Example:
        >>> nb = toc_notebooks()[0]
        >>> fingerprint(nb, {"PROFILE": "smoke"}) == fingerprint(nb, {"PROFILE": "cpu"})
        False
    """
    root = Path(root) if root is not None else repo_root()
    path = Path(notebook) if Path(notebook).is_absolute() else root / notebook
    digest = hashlib.sha256(path.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(f"torch {torch.__version__}, python {sys.version}".encode())  # what trains and computes
    for folder in CODE_DIRS:
        for src in sorted((root / folder).rglob("*.py")):
            digest.update(src.relative_to(root).as_posix().encode() + src.read_bytes())
    return digest.hexdigest()


def _read_stamp(path: Path) -> str | None:
    try:
        return json.loads(path.read_text())["metadata"].get("focal_book", {}).get("fingerprint")
    except (OSError, ValueError, KeyError):
        return None


def execute_notebook(src: str | os.PathLike, dst: str | os.PathLike, *, parameters: dict | None = None,
                     cwd: str | os.PathLike | None = None, kernel_name: str = "python3",
                     stamp: str | None = None, progress: bool = False, timeout: float | None = None,
                     box: Callable[[float], str] | None = None) -> Path:
    """Execute one notebook with papermill and write it atomically to ``dst``.

    The kernel is ``kernel_name``'s spec; its ``python`` is the interpreter running this function (jupyter_client
    substitutes ``sys.executable``), i.e. the virtual environment's.

    Args:
        src: the clean notebook. dst: where the executed notebook goes (written via a temporary file).
        parameters: injected after the cell tagged ``parameters``, e.g. ``{"PROFILE": "smoke"}``.
        cwd: working directory of the kernel (default: the folder of ``src``).
        kernel_name: Jupyter kernel spec name. stamp: fingerprint stored in the notebook's metadata.
        progress: show papermill's per-cell progress bar. timeout: per-cell limit in seconds (None: none).
        box: given the seconds the execution took, the markdown box put under the title
            (:func:`focal.book.site.add_rerun_box`).

    Returns:
        ``dst`` as a Path.

    Raises:
        NotebookError: a cell raised; the message names the notebook and the error. The partially executed
            notebook is kept next to ``dst`` as ``<name>.failed.ipynb``.
    """
    require_book_tools()
    import papermill  # here: the book's modules load without the `book` extra, the build needs it

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"src must be an existing notebook, got {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.tmp.ipynb")  # one writer per staging tree; dot: not a page
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(src), str(tmp), parameters=parameters or {}, kernel_name=kernel_name,
                                   cwd=str(cwd or src.parent), progress_bar=progress, execution_timeout=timeout)
    except papermill.PapermillExecutionError as err:
        failed = dst.with_name(f"{dst.stem}.failed.ipynb")
        os.replace(tmp, failed)
        evalue = " ".join(str(err.evalue).split())
        raise NotebookError(f"notebook {src.name} failed in cell {err.exec_count}: {err.ename}: {evalue} "
                            f"(executed notebook kept at {failed})") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    nb = json.loads(tmp.read_text())
    if box is not None:
        add_rerun_box(nb, box(time.perf_counter() - start))
    nb["metadata"]["focal_book"] = {"fingerprint": stamp, "parameters": parameters or {}}
    for cell in nb["cells"]:  # the page states the profile in prose; keep papermill's injected cell folded away
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    try:
        atomic_write(dst, lambda out: out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n"))
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def stage_book(staging: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Copy ``_config.yml``, ``_toc.yml`` and ``book/`` from ``root`` into ``staging`` (replacing old copies).

    Executed notebooks under ``staging/notebooks`` are left in place (they are reused when still current).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sorted(p.name for p in stage_book(tmp).iterdir())
        ['_config.yml', '_toc.yml', 'book']
    """
    root = Path(root) if root is not None else repo_root()
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    for name in BOOK_SOURCES:
        src, dst = root / name, staging / name
        if not src.exists():
            raise FileNotFoundError(f"root must hold {name}, not found in {root}")
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    return staging


def execute_book(profile: str | None, out: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 only: str | None = None, force: bool = False, progress: bool = True,
                 timeout: float | None = None, reuse_stale: bool = False) -> list[Path]:
    """Execute the chapters of ``_toc.yml`` in order at one profile, writing them to ``out/notebooks/``.

    Args:
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"``; None: :func:`focal.book.profiles.default_profile`.
        out: staging root; executed notebooks land in ``out/notebooks/<name>.ipynb``.
        root: book root holding ``_toc.yml`` and ``notebooks/`` (default :func:`repo_root`).
        only: execute just the chapter whose file name (with or without ``.ipynb``) or stem prefix matches.
        force: re-execute even when the executed notebook's fingerprint is current.
        progress: print one line per chapter (name, elapsed) and papermill's cell progress.
        timeout: per-cell limit in seconds.
        reuse_stale: chapters keep finished runs of other code (injects ``REUSE_STALE = True``).

    Returns:
        Paths of the executed notebooks, in toc order.
    """
    root = Path(root) if root is not None else repo_root()
    profile = profile or default_profile()
    chapters = toc_notebooks(root)
    if only is not None:
        chapters = [c for c in chapters if c.stem == only.removesuffix(".ipynb") or c.stem.startswith(only)]
        if not chapters:
            raise ValueError(f"only must name a chapter of _toc.yml, got {only!r}; "
                             f"chapters: {[c.stem for c in toc_notebooks(root)]}")
    params, done = {"PROFILE": profile, **({"REUSE_STALE": True} if reuse_stale else {})}, []
    say = print if progress else (lambda *_, **__: None)
    for i, nb in enumerate(chapters, 1):
        dst, stamp = Path(out) / nb, fingerprint(nb, params, root)
        label = f"[{i}/{len(chapters)}] {nb.stem} (profile {profile})"
        if not force and dst.is_file() and _read_stamp(dst) == stamp:
            say(f"{label}: up to date, reused", flush=True)
        else:
            say(f"{label}: executing ...", flush=True)
            start = time.perf_counter()
            execute_notebook(root / nb, dst, parameters=params, cwd=(root / nb).parent, stamp=stamp,
                             progress=progress, timeout=timeout,
                             box=lambda seconds, src=root / nb: chapter_box(src, profile=profile, seconds=seconds,
                                                                           hardware=hardware()))
            say(f"{label}: done in {time.perf_counter() - start:.1f} s", flush=True)
        done.append(dst)
    return done


def build_html(staging: str | os.PathLike, output: str | os.PathLike, *, warnings_as_errors: bool = True) -> Path:
    """Render a staged book with ``jupyter-book build`` into ``output/_build/html``; return its ``index.html``.

    Raises:
        FileNotFoundError: the bundled MathJax (``book/_extra/mathjax/tex-svg.js``) is missing: run ``make setup``.
        RuntimeError: the build failed (with ``warnings_as_errors``, any Sphinx warning fails it).
    """
    require_book_tools()
    staging, output = Path(staging), Path(output)
    if not (staging / MATHJAX).is_file():
        raise FileNotFoundError(f"{staging / MATHJAX} is missing: run `make setup` to bundle MathJax 3 "
                                "(npm package mathjax@3, es5/tex-svg.js) so the book typesets offline")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(staging),
           "--path-output", str(output), "--builder", "html", "--all"]
    cmd += ["-W", "--keep-going"] if warnings_as_errors else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = output / "_build" / "jupyter-book.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout + "\n" + proc.stderr)
        problems = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
                    if "WARNING" in line or "ERROR" in line]
        first = problems[0] if problems else (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}, {len(problems)} warning(s) or "
                           f"error(s)); the first: {first}; the whole output is in {log}")
    index = output / "_build" / "html" / "index.html"
    if not index.is_file():
        raise RuntimeError(f"jupyter-book build did not write {index}")
    return index


def train_book_runs(profile: str | None = None, *, progress: bool = True, workers: int | None = None,
                    reuse_stale: bool = False) -> list:
    """Train every run the chapters need (:func:`focal.book.profiles.all_configs`) before they execute, so the
    terminal shows which run of how many is training and the time left; finished runs of this code are loaded.

    Args:
        profile: the book profile (None: the machine's default).
        progress: print one line per run.
        workers: parallel training processes; None: :func:`focal.engine.system.default_workers` for this machine.
        reuse_stale: keep finished runs of other code (each is named) instead of retraining them.
    """
    profile = get_profile(profile or default_profile())
    if workers is None:
        workers = default_workers(device=profile.base.device)
    if progress:
        print(f"training the runs of profile {profile.name} (finished runs of this code are loaded) ...", flush=True)
    return train_many(all_configs(profile), progress=progress, workers=workers, reuse_stale=reuse_stale,
                      devices=worker_devices(profile.base.device, workers))


def build(profile: str | None = None, *, root: str | os.PathLike | None = None, only: str | None = None,
          force: bool = False, progress: bool = True, reuse_stale: bool = False,
          repository_url: str | None = None) -> Path | None:
    """``make book``: stage the book, execute the chapters at ``profile``, render ``root/_build/html``.

    Every page's footer names the package version, the commit and the profile; ``repository_url``
    (``https://github.com/OWNER/REPO``) adds a repository button and Binder launch buttons
    (:func:`focal.book.site.site_config`).

    Returns:
        Path of the built ``_build/html/index.html``; None when ``only`` executed one chapter and others have not
        been executed yet (the book is then not rendered: run the whole build once).
    """
    require_book_tools()  # before any run trains: a missing extra is one line, not an error 30 minutes in
    root = Path(root) if root is not None else repo_root()
    profile = profile or default_profile()
    chosen = get_profile(profile)
    resolve_device(chosen.base.device)  # the gpu profile without a usable GPU stops here, saying why
    if any(name.startswith("cifar") for name in chosen.datasets):  # downloads, or says which archives to copy where
        fetch_cifar(chosen.base.data_root)
    if repository_url is not None:
        check_repository_url(repository_url)  # before anything trains
    staging = stage_book(root / "_build" / "src", root)
    start, say = time.perf_counter(), print if progress else (lambda *_, **__: None)
    if only is None:  # one chapter alone trains (or loads) what it needs itself
        train_book_runs(profile, progress=progress, reuse_stale=reuse_stale)
    done = execute_book(profile, staging, root=root, only=only, force=force, progress=progress,
                        reuse_stale=reuse_stale)
    missing = [c.stem for c in toc_notebooks(root) if not (staging / c).is_file()]
    if missing:  # `make chapter` before any `make book`: the book cannot render without its other chapters
        say(f"executed {', '.join(d.stem for d in done)} into {staging / 'notebooks'}; not rendering: "
            f"{', '.join(missing)} not executed yet (`make book` executes them and renders the book)", flush=True)
        return None
    write_site_config(staging, profile=profile, root=root, repository_url=repository_url)
    say("rendering the book with jupyter-book -W (every page, so no warning hides in a cached page) ...", flush=True)
    index = build_html(staging, root)
    say(f"book built in {time.perf_counter() - start:.0f} s: open {index}", flush=True)
    return index
