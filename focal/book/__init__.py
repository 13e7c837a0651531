"""Everything only the book needs: its profiles, tables, statistics, claims, published numbers, plots and build.

- :mod:`focal.book.profiles` — smoke/cpu/gpu: a base :class:`~focal.engine.config.Config` and the fields each varies
- :mod:`focal.book.labels` — the one name and order of every loss setting
- :mod:`focal.book.results` — runs on disk to tidy tables (per class, groups, calibration, provenance)
- :mod:`focal.book.stats` — paired t-intervals, equivalence and directional verdicts
- :mod:`focal.book.comparisons` — paired tables, the balanced reference, confusion matrices, difficulty
- :mod:`focal.book.claims` — the published claims judged by intervals
- :mod:`focal.book.published` — numbers from the papers, with their sources
- :mod:`focal.book.plots` — every figure; :mod:`focal.book.bench` — the loss benchmark's results
- :mod:`focal.book.build`, :mod:`focal.book.check`, :mod:`focal.book.cli` — ``python -m focal.book build|execute|check|lab``
- :mod:`focal.book.site` — the footer, repository and Binder buttons, each chapter's rerun box;
  :mod:`focal.book.lab` — the Jupyter kernel ``focal``

The book imports the engine (:mod:`focal.engine`) and the losses; neither imports the book. Its modules need the
``notebooks`` extra (what a Jupyter kernel running the chapters needs), and executing the chapters and building the
book need the ``book`` extra (papermill, Jupyter Book): without them, :class:`focal.MissingExtra` says so in one line.
"""
from focal import require_extra

__all__ = ["NOTEBOOKS_MODULES", "BOOK_TOOLS", "require_book_tools"]

#: The modules the ``notebooks`` extra installs (pyproject.toml's ``[notebooks]``, which includes ``[engine]``).
NOTEBOOKS_MODULES = ("torchvision", "tqdm", "matplotlib", "seaborn", "pandas", "scipy", "IPython", "ipykernel",
                     "ipywidgets", "matplotlib_inline", "myst_nb", "yaml")
#: What the ``book`` extra adds: executing the chapters (papermill) and building the HTML book (Jupyter Book).
BOOK_TOOLS = ("papermill", "jupyter_book")

require_extra("focal.book", "notebooks", NOTEBOOKS_MODULES)


def require_book_tools() -> None:
    """Raise :class:`focal.MissingExtra` naming the ``book`` extra unless papermill and Jupyter Book are installed.

    Called before the book's chapters are executed or the HTML built, so that a kernel-only (``notebooks``)
    install gets one line rather than an ImportError deep inside the build.
    """
    require_extra("executing and building the book", "book", BOOK_TOOLS)
