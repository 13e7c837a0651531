"""Does the built book read offline? Each page opened in headless Chromium: math typeset, figures present.

``python -m focal.book check`` runs :func:`check_book` on ``_build/html``; ``make test`` runs it on the smoke build.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "CDN_MATHJAX", "find_chromium", "chromium", "page_report", "check_book"]

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
_MATH_SOURCE = re.compile(r'class="math notranslate')
_MATH_TYPESET = re.compile(r"<mjx-container[^>]*>\s*<svg")
_MATH_ERROR = re.compile(r"data-mjx-error|<mjx-merror")
_IMG = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")
CDN_MATHJAX = re.compile(r"<script[^>]*src=\"(?:https?:)?//[^\"]*mathjax[^\"]*\"", re.IGNORECASE)


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
            "cdn_mathjax": bool(CDN_MATHJAX.search(raw))}


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
    cdn = [p.relative_to(html).as_posix() for p in html.rglob("*.html") if CDN_MATHJAX.search(p.read_text())]
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


