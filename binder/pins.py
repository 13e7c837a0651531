"""Print the pins of a constraints file whose distributions are not installed yet (binder/postBuild uses it).

Binder's conda environment already holds conda-forge's CPU builds of torch and torchvision, numpy and the Jupyter
server's packages. Given only the remaining pins, pip installs what is missing at constraints.txt's versions and
leaves conda's packages alone: a torch pin that differs from conda's build would otherwise make pip replace it with
PyPI's CUDA build.

Usage: python binder/pins.py constraints.txt > pins.txt
"""
import re
import sys
from importlib.metadata import distributions


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_pins(lines, installed: set[str]) -> list[str]:
    """The requirement lines (comments stripped) naming a distribution not in ``installed``."""
    pins = []
    for line in lines:
        requirement = line.split("#", 1)[0].strip()
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if name and canonical(name.group()) not in installed:
            pins.append(requirement)
    return pins


if __name__ == "__main__":
    installed = {canonical(d.metadata["Name"]) for d in distributions() if d.metadata["Name"]}
    with open(sys.argv[1]) as constraints:
        print("\n".join(missing_pins(constraints, installed)))
