"""``python -m focal`` (and ``torchrun … -m focal``): see :mod:`focal.cli`."""

from focal.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
