"""The book: the runner (toc, fingerprints, staging, papermill), every chapter at the smoke profile, the ``-W``
build from those outputs, and the built pages in headless Chromium (math typeset, figures present, no CDN)."""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

from focal.book import build as book
from focal.book import check, site

ROOT = book.repo_root()
CHAPTERS = book.toc_notebooks(ROOT)
SMOKE_LIMIT_S = 120  # the budget per chapter at the smoke profile on two cores
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def _write_nb(path: Path, *sources: str, parameters: str = "PROFILE = None") -> Path:
    """A tiny notebook: a `parameters` cell, then one code cell per source."""
    cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(src) for src in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def _fake_book(root: Path, chapters: dict[str, tuple[str, ...]]) -> Path:
    """A minimal book root: _config.yml, book/intro.md, a _toc.yml listing `chapters` (+ one missing entry)."""
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("title: t\n")
    listed = [f"      - file: notebooks/{name}" for name in chapters] + ["      - file: notebooks/99_not_written"]
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    chapters:\n"
                                   + "\n".join(listed) + "\n")
    for name, sources in chapters.items():
        _write_nb(root / "notebooks" / f"{name}.ipynb", *sources)
    return root


def _has_image(output) -> bool:
    """True for a displayed or glued (``application/papermill.record/image/png``) PNG/SVG output."""
    return any(k.endswith(("image/png", "image/svg+xml")) for k in output.get("data", {}))


def _plain(output) -> str:
    data = output.get("data", {})
    return "".join(v for k, v in data.items() if k.endswith("text/plain") and isinstance(v, str))


# ---------------------------------------------------------------------------------------------- the runner, fast
def test_toc_entries_follow_reading_order(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/intro\nparts:\n"
                   "  - caption: A\n    chapters:\n      - file: notebooks/b.ipynb\n"
                   "        sections:\n          - file: notebooks/b1\n      - file: book/page.md\n"
                   "  - caption: B\n    chapters:\n      - file: notebooks/a\n")
    assert book.toc_entries(toc) == ["book/intro", "notebooks/b", "notebooks/b1", "book/page", "notebooks/a"]


@pytest.mark.parametrize("text", ["- file: a\n", "format: jb-book\nparts: []\n",
                                  "root: x\nparts:\n  - just-a-string\n"])
def test_toc_entries_reject_malformed_toc(tmp_path, text):
    (tmp_path / "_toc.yml").write_text(text)
    with pytest.raises(ValueError, match="toc"):
        book.toc_entries(tmp_path / "_toc.yml")


def test_repository_toc_lists_the_six_chapters_and_reference_pages():
    entries = book.toc_entries(ROOT / "_toc.yml")
    chapters = [e for e in entries if e.startswith("notebooks/")]
    assert [c.split("/")[1][:3] for c in chapters] == ["01_", "02_", "03_", "04_", "05_", "06_"]
    assert entries[0] == "book/intro" and entries[-3:] == ["book/reproduce", "book/api", "book/bibliography"]
    for page in ("book/intro", "book/reproduce", "book/api", "book/bibliography"):
        assert (ROOT / f"{page}.md").is_file(), page


def test_toc_notebooks_skip_entries_without_a_notebook(tmp_path):
    root = _fake_book(tmp_path, {"01_a": (), "02_b": ()})
    assert [p.as_posix() for p in book.toc_notebooks(root)] == ["notebooks/01_a.ipynb", "notebooks/02_b.ipynb"]


def test_fingerprint_tracks_notebook_parameters_and_code(tmp_path):
    root = _fake_book(tmp_path, {"01_a": ("x = 1",)})
    (root / "focal").mkdir()
    (root / "focal" / "m.py").write_text("A = 1\n")
    nb = Path("notebooks/01_a.ipynb")
    base = book.fingerprint(nb, {"PROFILE": "smoke"}, root)
    assert book.fingerprint(nb, {"PROFILE": "smoke"}, root) == base
    assert book.fingerprint(nb, {"PROFILE": "cpu"}, root) != base
    (root / "focal" / "m.py").write_text("A = 2\n")
    changed_code = book.fingerprint(nb, {"PROFILE": "smoke"}, root)
    assert changed_code != base
    _write_nb(root / nb, "x = 2")
    assert book.fingerprint(nb, {"PROFILE": "smoke"}, root) != changed_code


def test_stage_book_copies_sources_and_drops_stale_pages(tmp_path):
    root = _fake_book(tmp_path / "root", {"01_a": ()})
    staging = tmp_path / "staging"
    (staging / "book").mkdir(parents=True)
    (staging / "book" / "stale.md").write_text("old\n")
    (staging / "notebooks").mkdir()
    (staging / "notebooks" / "kept.ipynb").write_text("{}")
    book.stage_book(staging, root)
    assert (staging / "_toc.yml").read_text() == (root / "_toc.yml").read_text()
    assert (staging / "book" / "intro.md").is_file() and not (staging / "book" / "stale.md").exists()
    assert (staging / "notebooks" / "kept.ipynb").is_file()  # executed notebooks survive re-staging
    (root / "_config.yml").unlink()
    with pytest.raises(FileNotFoundError, match="_config.yml"):
        book.stage_book(staging, root)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_committed_chapter_is_clean_with_one_parameters_cell(chapter):
    nb = nbformat.read(ROOT / chapter, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", "exactly one code cell tagged `parameters`"
    assert "PROFILE = None" in tagged[0].source
    assert nb.cells.index(tagged[0]) <= 3, "the parameters cell belongs near the top"


def test_build_html_requires_bundled_mathjax(tmp_path):
    with pytest.raises(FileNotFoundError, match="make setup"):
        book.build_html(tmp_path, tmp_path)


# ------------------------------------------------------------------------------------ papermill on tiny notebooks
def test_execute_book_injects_profile_uses_venv_kernel_and_reuses_current_outputs(tmp_path, capsys):
    root = _fake_book(tmp_path / "root", {"01_a": ("import sys\nprint(PROFILE, sys.executable)",)})
    out = tmp_path / "out"
    (executed,) = book.execute_book("smoke", out, root=root)
    text = "".join(o.get("text", "") for c in nbformat.read(executed, 4).cells for o in c.get("outputs", []))
    assert text.split() == ["smoke", sys.executable], "papermill's kernel must run this interpreter (the venv's)"
    stamp = executed.stat().st_mtime_ns
    capsys.readouterr()
    book.execute_book("smoke", out, root=root)
    assert executed.stat().st_mtime_ns == stamp and "reused" in capsys.readouterr().out
    with pytest.raises(ValueError, match="only must name a chapter"):
        book.execute_book("smoke", out, root=root, only="42_nope")


def test_build_of_one_chapter_renders_only_once_every_chapter_was_executed(tmp_path, capsys):
    root = _fake_book(tmp_path / "root", {"01_a": ("x = 1",), "02_b": ("y = 2",)})
    assert book.build("smoke", root=root, only="02") is None
    out = capsys.readouterr().out
    assert "not rendering: 01_a not executed yet (`make book`" in out
    assert (root / "_build" / "src" / "notebooks" / "02_b.ipynb").is_file()
    assert not (root / "_build" / "html").exists()
    with pytest.raises(ValueError, match="repository_url must be"):
        book.build("smoke", root=root, only="02", repository_url="https://example.org/x")


def test_execute_notebook_names_the_failing_notebook(tmp_path):
    src = _write_nb(tmp_path / "broken.ipynb", "raise ValueError('boom')")
    dst = tmp_path / "out" / "broken.ipynb"
    with pytest.raises(book.NotebookError, match=r"broken\.ipynb.*ValueError: boom"):
        book.execute_notebook(src, dst, parameters={"PROFILE": "smoke"})
    assert not dst.exists() and (tmp_path / "out" / "broken.failed.ipynb").is_file()


# ----------------------------------------------------------------------------- every chapter, then the book
@pytest.fixture(scope="session")
def staging(tmp_path_factory):
    """A staged book source tree that the smoke-executed chapters are written into."""
    return book.stage_book(tmp_path_factory.mktemp("book") / "src", ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_at_smoke_profile(staging, chapter):
    start = time.perf_counter()
    (executed,) = book.execute_book("smoke", staging, root=ROOT, only=chapter.stem, progress=False)
    elapsed = time.perf_counter() - start
    nb = nbformat.read(executed, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'PROFILE = "smoke"' in injected[0].source
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    unrendered = [o for o in outputs if _plain(o).startswith("<Figure size") and not _has_image(o)]
    assert not unrendered, "figures stored as text only: put `%matplotlib inline` in the notebook's setup cell"
    assert elapsed <= SMOKE_LIMIT_S, f"{chapter.stem} took {elapsed:.0f} s at smoke (budget {SMOKE_LIMIT_S} s)"


@pytest.fixture(scope="session")
def built_html(staging, tmp_path_factory):
    """The book built with -W from the smoke outputs (chapters already executed above are reused)."""
    book.execute_book("smoke", staging, root=ROOT, progress=False)
    site.write_site_config(staging, profile="smoke", root=ROOT)  # as `make book` without REPOSITORY_URL
    return book.build_html(staging, tmp_path_factory.mktemp("html")).parent


@pytest.mark.slow
def test_book_builds_with_warnings_as_errors(built_html):
    for chapter in CHAPTERS:
        assert (built_html / chapter.with_suffix(".html")).is_file(), chapter
    for page in ("book/intro", "book/reproduce", "book/api", "book/bibliography"):
        assert (built_html / f"{page}.html").is_file(), page
    assert (built_html / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000, "MathJax must ship with the book"
    chapter1 = (built_html / CHAPTERS[0].with_suffix(".html")).read_text()
    assert 'src="../_static/../mathjax/tex-svg.js' in chapter1, "pages load the bundled MathJax"
    cdn = [p.name for p in built_html.rglob("*.html") if check.CDN_MATHJAX.search(p.read_text())]
    assert not cdn, f"pages load MathJax from a CDN: {cdn}"
    api = (built_html / "book" / "api.html").read_text()
    assert 'id="focal.losses.softmax.focal_loss"' in api, "the API page documents focal_loss from its docstring"
    bib = (built_html / "book" / "bibliography.html").read_text()
    for author in ("Lin", "Cui", "Cao", "Mukhoti", "He", "Xiao", "Krizhevsky"):
        assert author in bib


@pytest.mark.slow
def test_every_page_names_version_commit_and_profile_and_every_chapter_how_to_rerun_it(built_html):
    footer = f"Built from focal {site.package_version()}, commit <code>{site.git_commit(ROOT)}</code>, at profile"
    pages = [p for p in built_html.rglob("*.html") if not p.relative_to(built_html).parts[0].startswith("_")]
    assert len(pages) >= 10
    for page in pages:
        text = page.read_text()
        if 'http-equiv="Refresh"' in text:
            continue  # index.html only redirects to the first page
        assert footer in text and "<code>smoke</code>" in text, f"{page.name} lacks the build footer"
        assert "mybinder" not in text, f"{page.name} has launch buttons although no REPOSITORY_URL was given"
    for chapter in CHAPTERS:
        text = re.sub(r"<[^>]+>", "", (built_html / chapter.with_suffix(".html")).read_text())
        number = chapter.stem.split("_")[0]
        assert "Rerun this chapter" in text and f"make chapter CHAPTER={number} PROFILE=smoke" in text, chapter
        assert re.search(r"executed in \d+ s on .+, \d{4}-\d\d-\d\d", text), chapter


@pytest.mark.slow
def test_built_book_reads_offline_in_chromium(built_html, staging):
    if check.find_chromium() is None:
        if IN_CI:
            pytest.fail("chromium is required in CI (Debian: apt-get install chromium)")
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    shot = ROOT / "_build" / "chapter4.png"
    report = check.check_book(built_html, screenshot=shot)  # raises on untypeset math, missing images, CDN
    pages = {r["page"]: r for r in report["pages"]}
    first = pages["01_deriving_focal_loss.html"]
    assert first["typeset"] >= 10 and first["typeset"] >= first["math"] and len(first["images"]) >= 3
    for chapter in CHAPTERS:  # a chapter that made figures shows them on its page
        nb = nbformat.read(staging / chapter, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        figures = [o for o in outputs if _has_image(o)]
        if figures:
            assert pages[f"{chapter.stem}.html"]["images"], f"{chapter.stem} made figures but its page shows none"
    if any(c.stem.startswith("04_") for c in CHAPTERS):
        assert report["screenshot"] and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
