"""The house rules of the package, checked on its source: three layers, one-way imports, small public modules."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

from focal.book import BOOK_TOOLS, NOTEBOOKS_MODULES
from focal.engine import ENGINE_MODULES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "focal"
SOURCES = sorted(PACKAGE.rglob("*.py"))
LAYER_ORDER = {"losses": 0, "engine": 1, "book": 2}
# Entry points import their CLI inside main(), so that a missing extra ends in one line rather than a traceback.
LAZY_ENTRY_POINTS = {"focal.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SOURCES}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER_ORDER.get(parts[1]) if len(parts) > 1 else None


def focal_imports(path: Path, *, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` of every import of a focal module in ``path``."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "focal":
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "focal"]
    return found


def imported_module(module: str, name: str) -> str:
    """``from focal.book import results`` imports the module focal.book.results."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


@pytest.mark.parametrize("path", SOURCES + sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "tests").glob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_are_public_top_level_and_one_way(path):
    me = module_name(path)
    top = focal_imports(path, top_level_only=True)
    every = focal_imports(path, top_level_only=False)
    if me not in LAZY_ENTRY_POINTS:
        assert len(every) == len(top), f"{me} imports focal modules inside a function: {[i for i in every if i not in top]}"
    for module, names, line in every:
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{me}:{line} imports private names {private} from {module}"
        for target in [imported_module(module, n) for n in names] or [module]:
            mine, theirs = layer(me), layer(target)
            if mine is not None and theirs is not None:
                assert theirs <= mine, f"{me}:{line} imports {target}: the layers run book -> engine -> losses"


def test_no_import_cycles():
    graph = {me: {imported_module(m, n) for m, names, _ in focal_imports(p, top_level_only=True)
                  for n in (names or [""]) if (imported_module(m, n) if names else m) in MODULES}
             for me, p in MODULES.items()}
    graph = {k: {v for v in vs if v != k and not k.startswith(v + ".")} for k, vs in graph.items()}  # not parents
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(stack + [node, nxt])}"
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_import_focal_loads_only_torch_and_the_losses():
    code = ("import sys, torch; before = set(sys.modules); import focal; "
            "print(sorted({m.split('.')[0] for m in set(sys.modules) - before})); "
            "print(sorted(m for m in sys.modules if m.startswith('focal')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    third_party = set(eval(out[0])) - set(sys.stdlib_module_names) - {"focal", "torch"}
    assert not third_party, f"import focal loads {third_party} beyond what import torch loads"
    assert all(m == "focal" or m.startswith("focal.losses") for m in eval(out[1])), out[1]


def test_the_first_maps_name_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):].split("\n## ", 1)[0]
    init_doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    for module, path in MODULES.items():
        if module == "focal":
            continue
        shown = f"{path.parent.name}/" if path.name == "__init__.py" else path.name
        assert shown in layout, f"README's layout section does not name {shown} ({module})"
        named = module.removesuffix(".__main__")
        assert named in init_doc, f"focal/__init__.py's docstring does not name {module}"


def test_no_pointer_to_files_the_repository_lacks():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    tracked = [f for f in tracked if f != "tests/test_layout.py"]  # this test names the file it looks for
    texts = [f for f in tracked if f.endswith((".py", ".md", ".ipynb", ".yml", ".toml", ".cfg")) or f == "Makefile"]
    hits = [f for f in texts if (ROOT / f).is_file() and "REFERENCES.md" in (ROOT / f).read_text()]
    assert not hits, f"these cite REFERENCES.md, which is not in the repository: {hits}"


def test_error_messages_name_makefile_targets_that_exist():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    texts = [p.read_text() for p in SOURCES] + [(ROOT / f).read_text() for f in ("README.md", "data/README.md")]
    texts += [p.read_text() for p in sorted((ROOT / "book").glob("*.md"))]
    named = {t for text in texts for t in re.findall(r"`make ([a-z][\w-]*)", text)}
    named |= {t for p in SOURCES for t in re.findall(r"run `?make ([a-z][\w-]*)", p.read_text())}
    assert named and named <= targets, f"named but not in the Makefile: {named - targets}"


def _third_party_imports(paths, *, top_level_only: bool = False) -> set[str]:
    found = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in tree.body if top_level_only else ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found |= {n.split(".")[0] for n in names}
    local = {p.stem for folder in ("tests", "benchmarks") for p in (ROOT / folder).glob("*.py")}  # test helpers, scripts
    return found - set(sys.stdlib_module_names) - {"focal"} - local


def _requirements(project: dict, extra: str | None) -> set[str]:
    """Distribution names a ``pip install focal[extra]`` brings in by declaration (extras followed)."""
    reqs = list(project["dependencies"]) + (list(project["optional-dependencies"][extra]) if extra else [])
    names = set()
    for req in reqs:
        if req.startswith("focal["):
            for sub in req[len("focal["):-1].split(","):
                names |= _requirements(project, sub.strip())
        else:
            names.add(re.split(r"[<>=\[; ]", req)[0].lower().replace("-", "_"))
    return names


MODULE_TO_DISTRIBUTION = {"yaml": "pyyaml", "IPython": "ipython", "PIL": "pillow", "myst_nb": "myst-nb",
                          "matplotlib_inline": "matplotlib-inline", "jupyter_book": "jupyter-book"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _distribution(module: str) -> str:
    return MODULE_TO_DISTRIBUTION.get(module, module).lower().replace("-", "_")


@pytest.mark.parametrize("extra, paths", [
    (None, [p for p in SOURCES if layer(module_name(p)) in (None, LAYER_ORDER["losses"])]),
    ("engine", [p for p in SOURCES if layer(module_name(p)) == LAYER_ORDER["engine"]]),
    ("book", [p for p in SOURCES if layer(module_name(p)) == LAYER_ORDER["book"]]),
    ("notebooks", [p for p in SOURCES if layer(module_name(p)) == LAYER_ORDER["book"]]),
    ("test", sorted((ROOT / "tests").glob("*.py"))),
], ids=["losses-and-top", "engine", "book", "book-on-binder", "tests"])
def test_every_import_is_a_declared_dependency(extra, paths):
    """Each layer imports only what its install brings: the losses (and ``focal`` itself) what ``pip install focal``
    does, the engine ``[engine]``, the book ``[book]``; the tests what ``[test]`` does. At module level the book
    needs only ``[notebooks]`` (what Binder installs): the build tools are imported inside the functions using them."""
    names = _requirements(PROJECT, extra)
    imported = _third_party_imports(paths, top_level_only=extra == "notebooks")
    missing = {m for m in imported if _distribution(m) not in names}
    where = f"[{extra}]" if extra else "dependencies"
    assert not missing, f"imported but not brought by pyproject.toml's {where}: {sorted(missing)}"


def test_no_exact_pins_and_torch_has_a_lower_bound():
    """pyproject.toml gives ranges (the exact versions are constraints.txt's); torch's lower bound is tested."""
    every = list(PROJECT["dependencies"]) + [r for reqs in PROJECT["optional-dependencies"].values() for r in reqs]
    pinned = [r for r in every if re.search(r"===?", r.split(";")[0])]
    assert not pinned, f"exact pins belong in constraints.txt, not pyproject.toml: {pinned}"
    assert sorted(re.split(r"[<>=\[; ]", r)[0] for r in PROJECT["dependencies"]) == ["numpy", "torch"]
    assert any(re.fullmatch(r"torch>=[\d.]+", r) for r in PROJECT["dependencies"]), PROJECT["dependencies"]


def test_extra_checks_name_what_each_extra_installs():
    """focal.engine and focal.book check for exactly the modules their extras install (one line if one is missing)."""
    from_extra = {e: _requirements(PROJECT, e) for e in (None, "engine", "notebooks", "book")}
    assert {_distribution(m) for m in ENGINE_MODULES} == from_extra["engine"] - from_extra[None]
    assert {_distribution(m) for m in NOTEBOOKS_MODULES} == from_extra["notebooks"] - from_extra[None]
    assert {_distribution(m) for m in BOOK_TOOLS} == from_extra["book"] - from_extra["notebooks"]


CROSS_CUTTING = {"test_layout.py", "test_readme.py", "test_benchmark_scripts.py", "test_benchmark_loss.py", "test_packaging.py",
                 "test_workflows.py"}


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("test_*.py")), ids=lambda p: p.name)
def test_test_files_follow_modules(path):
    """tests/test_<layer>_<module>.py tests focal/<layer>/<module>.py (a suffix may name a part of it)."""
    if path.name in CROSS_CUTTING:
        return
    stem = path.stem.removeprefix("test_")
    modules = {m.removeprefix("focal.").replace(".", "_") for m in MODULES if m != "focal"}
    assert any(stem == m or stem.startswith(m + "_") for m in modules), f"{path.name} names no module of focal"
