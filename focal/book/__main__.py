"""``python -m focal.book``: see :mod:`focal.book.cli`.

Without the ``notebooks`` extra, importing :mod:`focal.book` already ends the command with one line (see
:func:`focal.require_extra`); without the ``book`` extra, executing or building the book does, here.
"""
import sys
from typing import Optional, Sequence

from focal import MissingExtra
from focal.book import cli


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run :func:`focal.book.cli.main`; exit status 1 and one line on stderr when an extra it needs is missing."""
    try:
        return cli.main(argv)
    except MissingExtra as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
