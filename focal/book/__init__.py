"""Everything only the book needs: its profiles, tables, statistics, claims, published numbers, plots and build.

- :mod:`focal.book.profiles` — smoke/cpu/gpu: a base :class:`~focal.engine.config.Config` and the fields each varies
- :mod:`focal.book.labels` — the one name and order of every loss setting
- :mod:`focal.book.results` — runs on disk to tidy tables (per class, groups, calibration, provenance)
- :mod:`focal.book.stats` — paired t-intervals, equivalence and directional verdicts
- :mod:`focal.book.comparisons` — paired tables, the balanced reference, confusion matrices, difficulty
- :mod:`focal.book.claims` — the published claims judged by intervals
- :mod:`focal.book.published` — numbers from the papers, with their sources
- :mod:`focal.book.plots` — every figure; :mod:`focal.book.bench` — the loss benchmark's results
- :mod:`focal.book.build`, :mod:`focal.book.check`, :mod:`focal.book.cli` — ``python -m focal.book build|execute|check``

The book imports the engine (:mod:`focal.engine`) and the losses; neither imports the book.
"""
