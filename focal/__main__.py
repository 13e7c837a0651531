"""``python -m focal`` (and ``torchrun … -m focal``) and the ``focal`` script: see :mod:`focal.engine.cli`.

The CLI is imported inside :func:`main`, not at the top, so that without the ``engine`` extra the ``focal`` script
(which imports this module before calling :func:`main`) prints one line naming the extra instead of a traceback.
"""
import sys
from typing import Optional, Sequence

from focal import MissingExtra


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run :func:`focal.engine.cli.main`; exit status 1 and one line on stderr when the engine's extra is missing."""
    try:
        from focal.engine.cli import main as cli_main  # here, not at the top: see the module's docstring
    except MissingExtra as error:
        print(error, file=sys.stderr)
        return 1
    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
