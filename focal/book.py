"""Execute the book's chapters with papermill and build the Jupyter Book.

The committed notebooks carry no outputs. ``python -m focal.book build`` first trains every run of the profile that
is not finished yet (:func:`train_book_runs`: one line per run, with the time left), then assembles a staging copy of
the book (``_build/src/``: ``_config.yml``, ``_toc.yml``, ``book/`` and the *executed* ``notebooks/``), executes every
chapter listed in ``_toc.yml`` in order with papermill (injecting ``PROFILE``), then renders the staging copy with
``jupyter-book build -W`` into ``_build/html/``. An executed notebook is reused while its fingerprint -- the
notebook, the injected parameters and the source of ``focal/`` and ``benchmarks/`` -- is unchanged, so a second
build with nothing changed only re-renders.

Commands::

    python -m focal.book build [--profile P] [--only NAME] [--force]   # execute + render, _build/html/index.html
    python -m focal.book execute --profile smoke --out DIR [--only NAME] [--force]
    python -m focal.book check [--html _build/html]                   # headless Chromium: math and figures

Example:
    >>> [p.name for p in toc_notebooks()][:2]
    ['01_deriving_focal_loss.ipynb', '02_building_the_module.ipynb']
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

__all__ = ["NotebookError", "repo_root", "toc_entries", "toc_notebooks", "fingerprint", "execute_notebook",
           "stage_book", "execute_book", "build_html", "train_book_runs", "build", "find_chromium", "page_report",
           "check_book", "main"]

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
    here = Path(__file__).resolve().parent.parent
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
    """A hash of what an executed notebook depends on: its source, the injected parameters, and the Python
    sources under ``root/focal`` and ``root/benchmarks``.

    Example:
        >>> nb = toc_notebooks()[0]
        >>> fingerprint(nb, {"PROFILE": "smoke"}) == fingerprint(nb, {"PROFILE": "cpu"})
        False
    """
    root = Path(root) if root is not None else repo_root()
    path = Path(notebook) if Path(notebook).is_absolute() else root / notebook
    digest = hashlib.sha256(path.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True, default=str).encode())
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
                     stamp: str | None = None, progress: bool = False, timeout: float | None = None) -> Path:
    """Execute one notebook with papermill and write it atomically to ``dst``.

    The kernel is ``kernel_name``'s spec; its ``python`` is the interpreter running this function (jupyter_client
    substitutes ``sys.executable``), i.e. the virtual environment's.

    Args:
        src: the clean notebook. dst: where the executed notebook goes (written via a temporary file).
        parameters: injected after the cell tagged ``parameters``, e.g. ``{"PROFILE": "smoke"}``.
        cwd: working directory of the kernel (default: the folder of ``src``).
        kernel_name: Jupyter kernel spec name. stamp: fingerprint stored in the notebook's metadata.
        progress: show papermill's per-cell progress bar. timeout: per-cell limit in seconds (None: none).

    Returns:
        ``dst`` as a Path.

    Raises:
        NotebookError: a cell raised; the message names the notebook and the error. The partially executed
            notebook is kept next to ``dst`` as ``<name>.failed.ipynb``.
    """
    import papermill

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"src must be an existing notebook, got {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.tmp.ipynb")  # one writer per staging tree; dot: not a page
    try:
        papermill.execute_notebook(str(src), str(tmp), parameters=parameters or {}, kernel_name=kernel_name,
                                   cwd=str(cwd or src.parent), progress_bar=progress, execution_timeout=timeout)
    except papermill.PapermillExecutionError as err:
        failed = dst.with_name(f"{dst.stem}.failed.ipynb")
        os.replace(tmp, failed)
        raise NotebookError(f"notebook {src.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                            f"(executed notebook kept at {failed})") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    nb = json.loads(tmp.read_text())
    nb["metadata"]["focal_book"] = {"fingerprint": stamp, "parameters": parameters or {}}
    for cell in nb["cells"]:  # the page states the profile in prose; keep papermill's injected cell folded away
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, dst)
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
                 timeout: float | None = None) -> list[Path]:
    """Execute the chapters of ``_toc.yml`` in order at one profile, writing them to ``out/notebooks/``.

    Args:
        profile: ``"smoke"``, ``"cpu"``, ``"gpu"``; None: :func:`focal.profiles.default_profile`.
        out: staging root; executed notebooks land in ``out/notebooks/<name>.ipynb``.
        root: book root holding ``_toc.yml`` and ``notebooks/`` (default :func:`repo_root`).
        only: execute just the chapter whose file name (with or without ``.ipynb``) or stem prefix matches.
        force: re-execute even when the executed notebook's fingerprint is current.
        progress: print one line per chapter (name, elapsed) and papermill's cell progress.
        timeout: per-cell limit in seconds.

    Returns:
        Paths of the executed notebooks, in toc order.
    """
    from focal.profiles import default_profile

    root = Path(root) if root is not None else repo_root()
    profile = profile or default_profile()
    chapters = toc_notebooks(root)
    if only is not None:
        chapters = [c for c in chapters if c.stem == only.removesuffix(".ipynb") or c.stem.startswith(only)]
        if not chapters:
            raise ValueError(f"only must name a chapter of _toc.yml, got {only!r}; "
                             f"chapters: {[c.stem for c in toc_notebooks(root)]}")
    params, done = {"PROFILE": profile}, []
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
                             progress=progress, timeout=timeout)
            say(f"{label}: done in {time.perf_counter() - start:.1f} s", flush=True)
        done.append(dst)
    return done


def build_html(staging: str | os.PathLike, output: str | os.PathLike, *, warnings_as_errors: bool = True) -> Path:
    """Render a staged book with ``jupyter-book build`` into ``output/_build/html``; return its ``index.html``.

    Raises:
        FileNotFoundError: the bundled MathJax (``book/_extra/mathjax/tex-svg.js``) is missing: run ``make mathjax``.
        RuntimeError: the build failed (with ``warnings_as_errors``, any Sphinx warning fails it).
    """
    staging, output = Path(staging), Path(output)
    if not (staging / MATHJAX).is_file():
        raise FileNotFoundError(f"{staging / MATHJAX} is missing: run `make mathjax` to bundle MathJax 3 "
                                "(npm package mathjax@3, es5/tex-svg.js) so the book typesets offline")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(staging),
           "--path-output", str(output), "--builder", "html", "--all"]
    cmd += ["-W", "--keep-going"] if warnings_as_errors else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n"
                           f"{proc.stderr[-6000:]}")
    index = output / "_build" / "html" / "index.html"
    if not index.is_file():
        raise RuntimeError(f"jupyter-book build did not write {index}:\n{proc.stdout[-3000:]}")
    return index


def train_book_runs(profile: str | None = None, *, progress: bool = True, workers: int | None = None) -> list:
    """Train every run the chapters need (:func:`focal.profiles.all_configs`) before they execute, in this process,
    so the terminal shows which run of how many is training and the time left; finished runs are loaded.

    Args:
        profile: the book profile (None: the machine's default).
        progress: print one line per run.
        workers: parallel training processes; None: :func:`focal.results.default_workers` for this machine.
    """
    import torch

    from focal import results as R
    from focal.profiles import all_configs, default_profile, get_profile

    profile = get_profile(profile or default_profile())
    if workers is None:
        cuda = profile.device == "cuda" or (profile.device == "auto" and torch.cuda.is_available())
        workers = R.default_workers(device="cuda" if cuda else "cpu")
    if progress:
        print(f"training the runs of profile {profile.name} (finished runs are loaded) ...", flush=True)
    return R.train_runs(all_configs(profile), progress=progress, workers=workers)


def build(profile: str | None = None, *, root: str | os.PathLike | None = None, only: str | None = None,
          force: bool = False, progress: bool = True) -> Path:
    """``make book``: stage the book, execute the chapters at ``profile``, render ``root/_build/html``.

    Returns:
        Path of the built ``_build/html/index.html``.
    """
    root = Path(root) if root is not None else repo_root()
    staging = stage_book(root / "_build" / "src", root)
    start, say = time.perf_counter(), print if progress else (lambda *_, **__: None)
    if only is None:  # one chapter alone trains (or loads) what it needs itself
        train_book_runs(profile, progress=progress)
    execute_book(profile, staging, root=root, only=only, force=force, progress=progress)
    say("rendering the book with jupyter-book -W (every page, so no warning hides in a cached page) ...", flush=True)
    index = build_html(staging, root)
    say(f"book built in {time.perf_counter() - start:.0f} s: open {index}", flush=True)
    return index

# --- headless Chromium: does the built book read offline? -------------------------------------------------------
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
_MATH_SOURCE = re.compile(r'class="math notranslate')
_MATH_TYPESET = re.compile(r"<mjx-container[^>]*>\s*<svg")
_MATH_ERROR = re.compile(r"data-mjx-error|<mjx-merror")
_IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")
_CDN_MATHJAX = re.compile(r"<script[^>]*src=\"(?:https?:)?//[^\"]*mathjax[^\"]*\"", re.IGNORECASE)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH (Debian: ``/usr/bin/chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def chromium(page: str | os.PathLike, *args: str, timeout: float = 180) -> str:
    """Run headless Chromium on a local page with ``args`` (e.g. ``--dump-dom``) and return its stdout.

    Raises:
        FileNotFoundError: no Chromium on PATH, or ``page`` missing. RuntimeError: Chromium failed.
    """
    exe, page = find_chromium(), Path(page).resolve()
    if exe is None:
        raise FileNotFoundError("chromium not found on PATH (Debian: apt-get install chromium)")
    if not page.is_file():
        raise FileNotFoundError(f"page must be an existing HTML file, got {page}")
    with tempfile.TemporaryDirectory(prefix="focal-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium failed on {page} (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def page_report(page: str | os.PathLike, *, budget_ms: int = 10000) -> dict:
    """Render one built page in headless Chromium and count what a reader would see.

    Returns:
        ``{"page", "math", "typeset", "math_errors", "images", "missing_images", "cdn_mathjax"}``: math elements
        in the HTML, MathJax SVG containers in the rendered DOM, TeX errors, ``<img>`` sources, sources that
        do not exist on disk, and whether the page loads MathJax from a CDN.
    """
    page = Path(page)
    raw = page.read_text(encoding="utf-8")
    dom = chromium(page, "--dump-dom", f"--virtual-time-budget={budget_ms}")
    images = [src for src in _IMG.findall(dom) if not src.startswith("data:")]
    missing = [src for src in images if "://" not in src and not (page.parent / src.split("?")[0]).is_file()]
    return {"page": page.name, "math": len(_MATH_SOURCE.findall(raw)), "typeset": len(_MATH_TYPESET.findall(dom)),
            "math_errors": len(_MATH_ERROR.findall(dom)), "images": images, "missing_images": missing,
            "cdn_mathjax": bool(_CDN_MATHJAX.search(raw))}


def check_book(html: str | os.PathLike, *, screenshot: str | os.PathLike | None = None) -> dict:
    """Check a built book offline: every page under ``book/`` and ``notebooks/`` typesets all its math (MathJax
    SVG, no TeX errors) and every ``<img>`` exists; no page at all loads MathJax from a CDN. Optionally saves a
    1280x2000 screenshot of chapter 4.

    Returns:
        ``{"pages": [page_report, ...], "screenshot": path or None}``.

    Raises:
        RuntimeError: listing every problem found.
    """
    html = Path(html)
    pages = [p for p in sorted(html.glob("*/*.html")) if not p.parent.name.startswith("_")]
    reports = [page_report(p) for p in pages]
    problems = [f"{r['page']}: {r['typeset']} of {r['math']} math elements typeset, {r['math_errors']} TeX errors"
                for r in reports if r["typeset"] < r["math"] or r["math_errors"]]
    problems += [f"{r['page']}: missing images {r['missing_images']}" for r in reports if r["missing_images"]]
    cdn = [p.relative_to(html).as_posix() for p in html.rglob("*.html") if _CDN_MATHJAX.search(p.read_text())]
    problems += [f"{name}: loads MathJax from a CDN" for name in cdn]
    if problems:
        raise RuntimeError("the built book does not read offline:\n" + "\n".join(problems))
    shot = None
    chapter4 = sorted((html / "notebooks").glob("04_*.html"))
    if screenshot is not None and chapter4:
        shot = Path(screenshot)
        shot.parent.mkdir(parents=True, exist_ok=True)
        chromium(chapter4[0], f"--screenshot={shot.resolve()}", "--window-size=1280,2000", "--hide-scrollbars",
                 "--virtual-time-budget=10000")
    return {"pages": reports, "screenshot": str(shot) if shot else None}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m focal.book {build,execute,check}`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m focal.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "execute"):
        cmd = sub.add_parser(name, help=f"{name} the book's chapters")
        cmd.add_argument("--profile", default=None, help="smoke, cpu or gpu (default: the machine's default)")
        cmd.add_argument("--only", default=None, help="execute only this chapter (file stem or its prefix)")
        cmd.add_argument("--force", action="store_true", help="re-execute even if the executed notebook is current")
    sub.choices["execute"].add_argument("--out", required=True, help="staging folder for the executed notebooks")
    check = sub.add_parser("check", help="open the built pages in headless Chromium: math typeset, figures present")
    check.add_argument("--html", default=None, help="built HTML folder (default: <repo>/_build/html)")
    check.add_argument("--screenshot", default=None, help="PNG of chapter 4 (default: <repo>/_build/chapter4.png)")
    args = parser.parse_args(argv)
    if getattr(args, "profile", None) is not None:
        from focal.profiles import PROFILES
        if args.profile not in PROFILES:
            parser.error(f"--profile must be one of {sorted(PROFILES)}, got {args.profile!r}")
    try:
        if args.command == "build":
            build(args.profile, only=args.only, force=args.force)
        elif args.command == "execute":
            out = stage_book(args.out)
            execute_book(args.profile, out, only=args.only, force=args.force)
        else:
            html = Path(args.html) if args.html else repo_root() / "_build" / "html"
            shot = Path(args.screenshot) if args.screenshot else repo_root() / "_build" / "chapter4.png"
            print(json.dumps(check_book(html, screenshot=shot), indent=1))
    except (NotebookError, RuntimeError, FileNotFoundError, ValueError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
