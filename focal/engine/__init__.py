"""The experiment engine: long-tailed data, models, metrics and a trainer whose results know their code.

- :mod:`focal.engine.config` — :class:`~focal.engine.config.Config`, the single source of run settings; run names
- :mod:`focal.engine.data` — datasets' files, long-tailed subsets, on-device batching
- :mod:`focal.engine.models` — CIFAR ResNet-20/32 and the small CNN
- :mod:`focal.engine.metrics` — accuracy by class and group, proper scores, the ECE family, temperature scaling
- :mod:`focal.engine.train` — one run: resumable, reused only when this code produced it
- :mod:`focal.engine.step` — the training step and evaluation pass, compiled with CUDA graphs on request
- :mod:`focal.engine.grid` — many runs in parallel workers, with progress
- :mod:`focal.engine.runs` — a run's folder: code fingerprint, finished/stale/broken, reading results back
- :mod:`focal.engine.files`, :mod:`focal.engine.system`, :mod:`focal.engine.checks` — atomic files, the machine,
  argument checks
- :mod:`focal.engine.cli` — ``python -m focal train|grid``, flags generated from ``Config``

The engine imports the losses (:mod:`focal.losses`) and never the book. Its third-party modules come with the
``engine`` extra (``pip install 'focal[engine]'``); without them, importing the engine raises
:class:`focal.MissingExtra` with one line that says so, before any of its modules fails on its own import.
"""
from focal import require_extra

#: The modules the ``engine`` extra installs (pyproject.toml's ``[engine]``).
ENGINE_MODULES = ("torchvision", "tqdm")

require_extra("focal.engine", "engine", ENGINE_MODULES)
