"""``python -m focal`` (and ``torchrun … -m focal``): see :mod:`focal.engine.cli`."""

from focal.engine.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
