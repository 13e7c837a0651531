"""focal.book.cli: python -m focal.book build|execute|check."""
import pytest

from focal.book.cli import main as book_main


def test_cli_rejects_unknown_profile(capsys):
    with pytest.raises(SystemExit) as exc:
        book_main(["execute", "--profile", "huge", "--out", "unused"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--profile" in err and "'huge'" in err and "smoke" in err
