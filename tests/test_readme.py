"""The README's usage example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    assert "FocalLoss(gamma='flsd53'" in capsys.readouterr().out


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make book" in text and "make test" in text
