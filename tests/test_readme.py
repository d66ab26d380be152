"""The README's Python examples run as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README.md example {index + 1}", "exec"), {"__name__": "readme"})


def test_readme_gives_the_two_commands():
    """A newcomer's two commands: install + the main job, install + the tests
    (.ci/run runs both the same way)."""
    text = README.read_text(encoding="utf-8")
    shell = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert shell[0].strip() == "pip install . && wsp sim"
    assert shell[1].strip() == 'pip install ".[test]" && python -m pytest'
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install ".[test]"' in ci and "\nwsp sim\n" in ci and "\npython -m pytest\n" in ci
