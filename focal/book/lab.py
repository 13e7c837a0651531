"""The project's environment as a named Jupyter kernel, for ``make lab`` (and Binder's ``postBuild``).

The chapters name the kernel :data:`KERNEL_NAME` in their metadata, so JupyterLab opens them with this environment's
Python -- the one ``make book`` executes them with -- rather than whatever ``python3`` a Jupyter installation finds
first. The build itself passes its kernel explicitly (:func:`focal.book.build.execute_notebook`).

Example:
    >>> import json, tempfile
    >>> with tempfile.TemporaryDirectory() as prefix:
    ...     spec = register_kernel(prefix)
    ...     json.loads((spec / "kernel.json").read_text())["display_name"]
    'Python (focal)'
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ipykernel.kernelspec import install

__all__ = ["KERNEL_NAME", "DISPLAY_NAME", "register_kernel"]

#: The kernel name the chapters' metadata carries.
KERNEL_NAME = "focal"
DISPLAY_NAME = "Python (focal)"


def register_kernel(prefix: str | os.PathLike | None = None) -> Path:
    """Install the kernel spec :data:`KERNEL_NAME` running this interpreter under ``prefix``/share/jupyter/kernels.

    Args:
        prefix: an environment prefix; None: this interpreter's (``sys.prefix``), where the Jupyter of the same
            environment looks first.

    Returns:
        The kernel spec folder.
    """
    prefix = Path(prefix) if prefix is not None else Path(sys.prefix)
    return Path(install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=str(prefix)))
