"""focal.book.site: the footer (version, commit, profile), the repository and Binder buttons only with a
repository URL, and the box each chapter opens with."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from focal.book import build as book
from focal.book import check, site
from focal.engine.config import run_name
from focal.engine.files import write_json

ROOT = book.repo_root()
URL = "https://github.com/someone/focal"


def test_site_config_without_repository_has_a_footer_and_no_buttons():
    config = {"title": "t", "html": {"use_repository_button": False}, "launch_buttons": {"thebe": False}}
    cfg = site.site_config(config, profile="cpu", version="1.2.3", commit="0123456789ab", built="2026-11-30")
    footer = cfg["html"]["extra_footer"]
    assert "focal 1.2.3" in footer and "<code>0123456789ab</code>" in footer and "<code>cpu</code>" in footer
    assert "2026-11-30" in footer and "href" not in footer
    assert "repository" not in cfg and cfg["launch_buttons"] == {"thebe": False}
    assert cfg["html"]["use_repository_button"] is False
    assert "extra_footer" not in config["html"], "the committed config is not modified"


def test_site_config_with_repository_adds_buttons_and_links_the_commit():
    cfg = site.site_config({}, profile="gpu", version="1", commit="0123456789ab+changes", repository_url=URL + "/")
    assert cfg["repository"] == {"url": URL, "branch": "0123456789ab", "path_to_book": ""}, "Binder opens the commit"
    assert cfg["html"]["use_repository_button"] is True
    assert cfg["launch_buttons"]["binderhub_url"] == site.BINDERHUB_URL
    assert cfg["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert f'href="{URL}/commit/0123456789ab"' in cfg["html"]["extra_footer"]
    assert "0123456789ab+changes" in cfg["html"]["extra_footer"], "a build of changed files says so"
    unknown = site.site_config({}, profile="gpu", version="1", commit="unknown", repository_url=URL)
    assert unknown["repository"]["branch"] == "main" and "href" not in unknown["html"]["extra_footer"]


def test_footer_says_which_chapters_ran_at_which_profile(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for stem, profile in (("01_a", "smoke"), ("02_b", "cpu"), ("03_c", "smoke"), ("03_c.failed", "gpu")):
        nb = nbformat.v4.new_notebook(metadata={"focal_book": {"parameters": {"PROFILE": profile}}})
        nbformat.write(nb, tmp_path / "notebooks" / f"{stem}.ipynb")
    assert site.staged_profiles(tmp_path) == {"smoke": ["1", "3"], "cpu": ["2"]}
    footer = site.site_config({}, profile=site.staged_profiles(tmp_path), version="1", commit="c")["html"]
    assert "profiles <code>cpu</code> (chapter 2) and <code>smoke</code> (chapters 1, 3)" in footer["extra_footer"]


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b", "github.com/a/b", "https://github.com/OWNER",
                                 "https://github.com/a/b/tree/main", ""])
def test_check_repository_url_names_the_variable(url):
    with pytest.raises(ValueError, match=r"repository_url must be https://github.com/OWNER/REPO \(REPOSITORY_URL"):
        site.check_repository_url(url)


def _git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_git_commit_names_the_checkout_and_its_changes(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert site.git_commit(tmp_path) == "unknown"
    monkeypatch.setenv("GITHUB_SHA", "feedbeef" * 5)
    assert site.git_commit(tmp_path) == "feedbeeffeed", "outside a checkout the CI's commit is used"
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    sha = _git(tmp_path, "rev-parse", "--short=12", "HEAD")
    assert site.git_commit(tmp_path) == sha
    (tmp_path / "untracked.txt").write_text("x\n")
    assert site.git_commit(tmp_path) == sha, "untracked files (data, builds) do not count"
    (tmp_path / "a.txt").write_text("2\n")
    assert site.git_commit(tmp_path) == f"{sha}+changes"
    assert site.git_commit(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else tmp_path) == "feedbeeffeed"


def test_rerun_box_says_how_to_rerun_where_and_how_long():
    box = site.rerun_box("04_ce_vs_focal", profile="cpu", seconds=75, hardware="CPU: X (2 threads)",
                         date="2026-11-30", training=(36, 36, 1860))
    assert box.startswith(":::{admonition} Rerun this chapter\n:class: tip focal-rerun\n") and box.endswith(":::\n")
    assert "`make chapter CHAPTER=04 PROFILE=cpu`" in box and "`make lab`" in box
    for name in ("smoke", "cpu", "gpu"):
        assert f"`{name}` (" in box
    assert "executed in 75 s on CPU: X (2 threads), 2026-11-30" in box
    assert "whose 36 runs (36 of 36 on disk) took 31.0 min of compute" in box and "reads the same finished runs" in box
    assert " runs" not in site.rerun_box("01_a", profile="smoke", seconds=200, hardware="h", date="d"), \
        "a chapter that reads no runs says nothing about them"


def test_add_rerun_box_goes_under_the_title_and_replaces_an_old_one():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("1")])
    nb = json.loads(nbformat.writes(nb))
    site.add_rerun_box(nb, "first")
    site.add_rerun_box(nb, "second")
    assert ["".join(c["source"]) for c in nb["cells"]] == ["# Title", "second", "1"]
    assert nb["cells"][1]["metadata"]["tags"] == [site.RERUN_TAG]
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


def test_add_rerun_box_splits_a_title_cell_that_holds_the_introduction():
    cells = [nbformat.v4.new_markdown_cell("# Title\n\nIntro.\n\n:::{note}\nbox\n:::"), nbformat.v4.new_code_cell("1")]
    nb = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))
    site.add_rerun_box(nb, "rerun")
    assert ["".join(c["source"]) for c in nb["cells"]] == ["# Title", "rerun", "Intro.\n\n:::{note}\nbox\n:::", "1"]
    assert len({c["id"] for c in nb["cells"]}) == 4
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


def test_profile_training_sums_the_runs_found(tmp_path, monkeypatch):
    monkeypatch.setenv("FOCAL_DATA", str(tmp_path))
    configs = site.all_configs("smoke")
    for config, seconds in zip(configs[:2], (10.0, 20.5)):
        (tmp_path / "runs" / run_name(config)).mkdir(parents=True)
        write_json(tmp_path / "runs" / run_name(config) / "metrics.json", {"train_time_s": seconds})
    assert site.profile_training("smoke") == (2, len(configs), 30.5)


def _tiny_book(root: Path) -> Path:
    """A book root with one executed chapter (the bundled MathJax copied in)."""
    (root / "book" / "_extra" / "mathjax").mkdir(parents=True)
    shutil.copy(ROOT / book.MATHJAX, root / book.MATHJAX)
    (root / "book" / "intro.md").write_text("# Intro\n")
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    shutil.copytree(ROOT / "book" / "_static", root / "book" / "_static")
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: notebooks/01_a\n")
    cells = [nbformat.v4.new_markdown_cell("# Chapter A"),
             nbformat.v4.new_code_cell("PROFILE = None", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("print(PROFILE)")]
    (root / "notebooks").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), root / "notebooks" / "01_a.ipynb")
    return root


@pytest.mark.slow
def test_built_pages_carry_the_footer_and_buttons_only_with_a_repository(tmp_path):
    if not (ROOT / book.MATHJAX).is_file():
        pytest.skip("MathJax not bundled yet (make setup)")
    root = _tiny_book(tmp_path / "root")
    staging = book.stage_book(tmp_path / "src", root)
    (executed,) = book.execute_book("smoke", staging, root=root, progress=False)
    cells = nbformat.read(executed, as_version=4).cells
    assert site.RERUN_TAG in cells[1].metadata.tags and "executed in" in cells[1].source
    pages, html = {}, {}
    for name, url in (("plain", None), ("repo", URL)):
        site.write_site_config(staging, profile="smoke", root=ROOT, repository_url=url)
        html[name] = book.build_html(staging, tmp_path / name).parent
        pages[name] = re.sub(r"<(?!a )[^>]+>", "", (html[name] / "notebooks" / "01_a.html").read_text())
    commit = site.git_commit(ROOT)
    for text in pages.values():
        assert f"Built from focal {site.package_version()}, commit" in text and commit in text
        assert "Rerun this chapter" in text and "make chapter CHAPTER=01 PROFILE=smoke" in text
    assert "mybinder" not in pages["plain"] and "github.com" not in pages["plain"]
    ref = commit.split("+")[0] if commit != "unknown" else "main"
    assert f"{site.BINDERHUB_URL}/v2/gh/someone/focal/{ref}?urlpath=lab/tree/notebooks/01_a.ipynb" in pages["repo"]
    assert f'href="{URL}"' in pages["repo"], "the repository button"
    if check.find_chromium() is not None:  # the deployed variant reads from a sub-path and offline too
        check.check_book(html["repo"])


def test_committed_config_names_no_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "repository" not in config and not config.get("launch_buttons", {}).get("binderhub_url")
    assert not config["html"].get("use_repository_button")
