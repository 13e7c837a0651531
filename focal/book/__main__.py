"""``python -m focal.book``: see :mod:`focal.book.cli`."""

from focal.book.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
