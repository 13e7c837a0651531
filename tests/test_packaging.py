"""What ``pip install focal`` gets: a wheel of the package and its license, which runs the README's loss example
with torch and numpy alone; the engine and the book without their extras end in one line naming the extra; the
version pins live in constraints.txt and constraints-oldest.txt, not in pyproject.toml."""
from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

import focal.book.__main__
from focal import MissingExtra
from focal.book import require_book_tools

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENGINE_LINE = "focal.engine needs the 'engine' extra (missing: {}): pip install 'focal[engine]'"
NOTEBOOKS_LINE = "focal.book needs the 'notebooks' extra (missing: {}): pip install 'focal[notebooks]'"
ABSENT = ("torchvision", "matplotlib", "pandas")


def run_python(code: str, *, python: str = sys.executable, hide: tuple[str, ...] = (), cwd: Path | None = None):
    """Run ``code`` in a fresh interpreter where the modules ``hide`` cannot be imported (``sys.modules[m] = None``)."""
    prelude = f"import sys\nfor _m in {hide!r}:\n    sys.modules[_m] = None\n"
    return subprocess.run([python, "-c", prelude + code], capture_output=True, text=True, timeout=300, cwd=cwd)


def hidden_python_path(tmp_path: Path, hide: tuple[str, ...]) -> dict:
    """An environment whose interpreters cannot import ``hide`` (a sitecustomize on PYTHONPATH), for ``-m`` runs."""
    (tmp_path / "sitecustomize.py").write_text(f"import sys\nfor _m in {hide!r}:\n    sys.modules[_m] = None\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


# ------------------------------------------------------------------------------------- one line per missing extra
def test_engine_without_its_extra_raises_one_line_naming_it():
    code = ("try:\n    import focal.engine\nexcept ModuleNotFoundError as e:\n"
            "    print(type(e).__name__, e.name)\n    print(e)\n")
    out = run_python(code, hide=("torchvision",))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["MissingExtra torchvision", ENGINE_LINE.format("torchvision")]


def test_book_without_its_extra_raises_one_line_naming_it():
    code = "try:\n    import focal.book.plots\nexcept ModuleNotFoundError as e:\n    print(e.name)\n    print(e)\n"
    out = run_python(code, hide=("matplotlib", "pandas"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["matplotlib", NOTEBOOKS_LINE.format("matplotlib, pandas")]


def test_book_tools_check_names_the_book_extra():
    out = run_python("from focal.book import require_book_tools\nrequire_book_tools()", hide=("papermill",))
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == ("focal.MissingExtra: executing and building the book needs the 'book' "
                                           "extra (missing: papermill): pip install 'focal[book]'")
    require_book_tools()  # here they are installed


@pytest.mark.parametrize("command, hide, line", [
    (["-m", "focal", "train"], ("torchvision",), ENGINE_LINE.format("torchvision")),
    (["-m", "focal.book", "build"], ("matplotlib",), NOTEBOOKS_LINE.format("matplotlib")),
    (["-m", "focal.book", "check"], ("torchvision", "tqdm"), NOTEBOOKS_LINE.format("torchvision, tqdm")),
    (["-m", "focal.book", "build", "--profile", "smoke"], ("papermill",),
     "executing and building the book needs the 'book' extra (missing: papermill): pip install 'focal[book]'"),
], ids=["focal", "focal.book", "focal.book-engine", "focal.book-build"])
def test_commands_without_their_extra_print_one_line_and_exit_1(tmp_path, command, hide, line):
    out = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=hidden_python_path(tmp_path, hide))
    assert (out.returncode, out.stderr, out.stdout) == (1, line + "\n", "")


def test_focal_script_entry_prints_one_line_without_the_engine():
    code = "from focal.__main__ import main\nraise SystemExit(main(['train']))"
    out = run_python(code, hide=("torchvision",))
    assert (out.returncode, out.stderr) == (1, ENGINE_LINE.format("torchvision") + "\n")
    assert PROJECT["scripts"]["focal"] == "focal.__main__:main"


def test_book_command_turns_a_missing_book_extra_into_one_line(monkeypatch, capsys):
    def build_without_papermill(argv):
        raise MissingExtra("executing and building the book needs the 'book' extra", name="papermill")

    monkeypatch.setattr(focal.book.__main__.cli, "main", build_without_papermill)
    assert focal.book.__main__.main(["build"]) == 1
    assert capsys.readouterr().err == "executing and building the book needs the 'book' extra\n"


def test_losses_work_without_any_extra():
    code = ("import torch, focal\nx = torch.randn(4, 3, requires_grad=True)\n"
            "focal.focal_loss(x, torch.tensor([0, 1, 2, 0]), gamma=2.0).backward()\n"
            "focal.sigmoid_focal_loss(x, torch.ones(4, 3), reduction='sum').backward()\nprint(x.grad.shape)")
    out = run_python(code, hide=ABSENT + ("tqdm", "seaborn", "scipy", "yaml", "IPython"))
    assert (out.returncode, out.stdout.strip()) == (0, "torch.Size([4, 3])"), out.stderr


# --------------------------------------------------------------------------------------------------- the pins
def _lower_bound(name: str) -> str:
    reqs = [r for r in PROJECT["dependencies"] + sum(PROJECT["optional-dependencies"].values(), [])
            if re.split(r"[<>=\[; ]", r)[0] == name]
    bounds = {m for r in reqs for m in re.findall(r">=\s*([\w.]+)", r)}
    assert len(bounds) == 1, f"pyproject.toml must give {name} one lower bound (>=), got {reqs}"
    return bounds.pop()


def _pins(path: Path) -> dict[str, str]:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    bad = [ln for ln in lines if not re.fullmatch(r"[A-Za-z0-9][\w.-]*==[\w.+!]+", ln)]
    assert not bad, f"{path.name} must hold exact pins name==version, one a line; got {bad}"
    return {ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1] for ln in lines}


def test_constraints_pin_every_declared_distribution():
    pins = _pins(ROOT / "constraints.txt")
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert "focal" not in pins
    declared = {re.split(r"[<>=\[; ]", r)[0].lower().replace("_", "-")
                for r in PROJECT["dependencies"] + sum(PROJECT["optional-dependencies"].values(), [])} - {"focal"}
    declared -= {"tomli"}  # Python 3.10 only; the pins are the Python 3.11 environment's
    assert declared <= set(pins), f"constraints.txt does not pin {sorted(declared - set(pins))}"


def test_oldest_constraints_are_the_lower_bounds():
    pins, newest = _pins(ROOT / "constraints-oldest.txt"), _pins(ROOT / "constraints.txt")
    assert set(pins) == {"torch", "torchvision", "numpy", "tqdm", "pytest", "hypothesis"}
    for tool in ("pytest", "hypothesis"):  # the test tools themselves as in the main environment
        assert pins.pop(tool) == newest[tool], f"constraints-oldest.txt must pin {tool} as constraints.txt does"
    for name, version in pins.items():
        bound = _lower_bound(name)
        assert version == bound or version.startswith(bound + "."), \
            f"constraints-oldest.txt pins {name}=={version}, but pyproject.toml's lower bound is {name}>={bound}"


def test_make_and_conda_install_with_the_constraints():
    makefile, conda = (ROOT / "Makefile").read_text(), (ROOT / "environment.yml").read_text()
    stamp = makefile[makefile.index("$(STAMP):"):].split("\n\n", 1)[0]
    assert "constraints.txt" in stamp.splitlines()[0] and "-c constraints.txt -e '.[dev]'" in stamp
    assert re.search(r"^\s*- -c constraints\.txt$", conda, re.M) and re.search(r"^\s*- -e \.\[dev\]$", conda, re.M)
    oldest = makefile[makefile.index("$(OLDEST_STAMP):"):].split("\n\n", 1)[0]
    assert "-r constraints-oldest.txt" in oldest and "--no-deps -e ." in oldest


# ---------------------------------------------------------------------------------------------------- the wheel
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the repository's files (so no build/ is left in the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (tmp / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp / "src" / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(tmp / "dist"), str(tmp / "src")], check=True, timeout=300,
                   capture_output=True)
    (built,) = (tmp / "dist").glob("focal-*.whl")
    return built


@pytest.mark.slow
def test_wheel_holds_the_package_and_its_license_only(wheel):
    members = zipfile.ZipFile(wheel).namelist()
    dist_info = f"focal-{focal.__version__}.dist-info/"
    package = {m for m in members if m.startswith("focal/")}
    assert set(members) - package <= {dist_info + n for n in ("METADATA", "WHEEL", "RECORD", "entry_points.txt",
                                                                "top_level.txt", "licenses/LICENSE")}
    assert dist_info + "licenses/LICENSE" in members
    assert all(m.endswith(".py") for m in package), sorted(m for m in package if not m.endswith(".py"))
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "focal").rglob("*.py")}
    assert package == sources, f"not in the wheel: {sorted(sources - package)}"
    metadata = zipfile.ZipFile(wheel).read(dist_info + "METADATA").decode()
    core = [ln for ln in metadata.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert sorted(core) == ["Requires-Dist: numpy>=1.24", f"Requires-Dist: torch>={_lower_bound('torch')}"]
    assert "License-Expression: MIT" in metadata


def _top_level_entries(name: str, extras: frozenset = frozenset(), seen: set | None = None) -> set[Path]:
    """The site-packages entries of distribution ``name`` and of everything it requires, recursively."""
    seen = set() if seen is None else seen
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:  # a requirement for another platform
        return set()
    key = (dist.metadata["Name"].lower(), extras)
    if key in seen:
        return set()
    seen.add(key)
    entries = {dist.locate_file(Path(f).parts[0]) for f in dist.files or ()
               if not Path(f).parts[0].startswith("..") and Path(f).parts[0] != "__pycache__"}
    for req in dist.requires or ():
        wanted = re.search(r"""extra\s*==\s*["']([\w.-]+)["']""", req)
        if wanted and wanted.group(1) not in extras:
            continue
        dep, dep_extras = re.match(r"\s*([\w.-]+)\s*(?:\[([^\]]*)\])?", req).groups()
        entries |= _top_level_entries(dep, frozenset(e.strip() for e in (dep_extras or "").split(",")), seen)
    return entries


@pytest.fixture(scope="module")
def bare_python(wheel, tmp_path_factory) -> str:
    """A fresh venv seeing only torch, numpy and torch's own requirements, with the wheel installed without deps."""
    tmp = tmp_path_factory.mktemp("bare")
    visible = tmp / "visible"
    visible.mkdir()
    for entry in _top_level_entries("torch") | _top_level_entries("numpy"):
        if entry.exists() and not (visible / entry.name).exists():
            (visible / entry.name).symlink_to(entry)
    venv.create(tmp / "venv", with_pip=False)
    python = str(tmp / "venv" / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "torch-and-numpy.pth").write_text(f"{visible}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300, capture_output=True)
    return python


@pytest.mark.slow
def test_bare_install_runs_the_readme_loss_example(bare_python, tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme[readme.index("\n## The loss\n"):], re.S).group(1)
    absent = run_python(f"import importlib.util, focal\nprint(focal.__file__)\n"
                        f"print([m for m in {ABSENT!r} if importlib.util.find_spec(m)])", python=bare_python,
                        cwd=tmp_path)
    assert absent.returncode == 0, absent.stderr
    where, found = absent.stdout.splitlines()
    assert found == "[]", f"the bare environment can import {found}"
    assert Path(where).is_relative_to(Path(bare_python).parents[1]), f"focal imported from {where}, not the wheel"
    (tmp_path / "example.py").write_text(example)
    out = subprocess.run([bare_python, "example.py"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "FocalLoss(gamma='flsd53'" in out.stdout


@pytest.mark.slow
def test_bare_install_names_the_missing_extras(bare_python, tmp_path):
    out = run_python("import focal.engine", python=bare_python, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == "focal.MissingExtra: " + ENGINE_LINE.format("torchvision, tqdm")
    script = Path(bare_python).parent / "focal"
    out = subprocess.run([str(script), "train"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert (out.returncode, out.stderr) == (1, ENGINE_LINE.format("torchvision, tqdm") + "\n")
