"""focal.book.lab: the environment registered as the Jupyter kernel the chapters name; a chapter run with that
kernel, as in JupyterLab, gives what the build gives."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import papermill
import pytest

from focal.book import build as book
from focal.book import lab
from focal.book.cli import main
from focal.book.profiles import all_configs
from focal.engine.grid import train_many

ROOT = book.repo_root()


def test_register_kernel_runs_this_interpreter(tmp_path):
    spec = lab.register_kernel(tmp_path)
    assert spec == tmp_path / "share" / "jupyter" / "kernels" / lab.KERNEL_NAME
    kernel = json.loads((spec / "kernel.json").read_text())
    assert kernel["argv"][0] == sys.executable and "ipykernel_launcher" in kernel["argv"]
    assert kernel["display_name"] == lab.DISPLAY_NAME


def test_cli_lab_registers_without_starting_jupyterlab(tmp_path, capsys):
    assert main(["lab", "--register-only", "--prefix", str(tmp_path)]) == 0
    assert f"registered the Jupyter kernel 'focal'" in capsys.readouterr().out
    assert (tmp_path / "share" / "jupyter" / "kernels" / "focal" / "kernel.json").is_file()


def test_the_jupyterlab_that_make_lab_starts_is_installed():
    """``make lab`` runs ``python -m focal.book lab``, which starts ``python -m jupyterlab`` (the ``lab`` extra)."""
    makefile = (ROOT / "Makefile").read_text()
    assert "\nlab: setup\n\t$(BIN)/python -m focal.book lab\n" in makefile
    out = subprocess.run([sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip()[:1].isdigit(), out.stderr


@pytest.mark.parametrize("chapter", book.toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_chapters_name_the_project_kernel(chapter):
    spec = nbformat.read(ROOT / chapter, as_version=4).metadata.kernelspec
    assert spec.name == lab.KERNEL_NAME and spec.display_name == lab.DISPLAY_NAME


def _texts(path) -> list[str]:
    """Every text an executed notebook shows (streams and text/plain results), cell by cell; glued values too."""
    found = []
    for cell in nbformat.read(path, as_version=4).cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                found.append(out["text"])
            for key, value in out.get("data", {}).items():
                if key.endswith("text/plain"):
                    found.append(value if isinstance(value, str) else json.dumps(value))
    return found


@pytest.mark.slow
def test_a_chapter_run_with_the_focal_kernel_matches_the_build(tmp_path, monkeypatch):
    """What ``make lab`` gives a reader who sets PROFILE and runs every cell: the build's numbers (chapter 4, which
    reads the profile's training runs)."""
    lab.register_kernel(tmp_path / "prefix")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "prefix" / "share" / "jupyter"))
    train_many(all_configs("smoke"), progress=False)  # as `make book` does first: both runs below read these
    chapter = next(c for c in book.toc_notebooks(ROOT) if c.stem.startswith("04_"))
    (built,) = book.execute_book("smoke", tmp_path / "build", root=ROOT, only=chapter.stem, progress=False)
    in_lab = tmp_path / "lab.ipynb"
    papermill.execute_notebook(str(ROOT / chapter), str(in_lab), parameters={"PROFILE": "smoke"},
                               cwd=str((ROOT / chapter).parent), progress_bar=False)  # the notebook's own kernel
    assert nbformat.read(in_lab, as_version=4).metadata.kernelspec.name == "focal"
    lab_texts, build_texts = _texts(in_lab), _texts(built)
    assert lab_texts and lab_texts == build_texts
