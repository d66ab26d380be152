"""The README's Python examples run as written."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


class _ExpectTheError(ast.NodeTransformer):
    """An example's ``try: <call> except <Error>: <check>`` shows that the
    call fails; run as written, a call that wrongly succeeded would skip the
    check and pass.  Give every such try without an ``else:`` one that fails."""

    def visit_Try(self, node):
        self.generic_visit(node)
        if node.handlers and not node.orelse:
            fail = ast.parse(
                f"raise AssertionError('example line {node.lineno}: the try block "
                "raised nothing')").body
            node.orelse = [ast.copy_location(stmt, node) for stmt in fail]
            ast.fix_missing_locations(node)
        return node


def _compiled(source, name):
    tree = _ExpectTheError().visit(ast.parse(source, name))
    return compile(tree, name, "exec")


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    exec(_compiled(BLOCKS[index], f"README.md example {index + 1}"), {"__name__": "readme"})


def test_an_example_whose_expected_error_does_not_happen_fails():
    source = "try:\n    int('7')\nexcept ValueError as e:\n    assert 'invalid' in str(e)\n"
    with pytest.raises(AssertionError, match="^example line 1: the try block raised nothing$"):
        exec(_compiled(source, "sample"), {})
    raising = source.replace("'7'", "'seven'")
    exec(_compiled(raising, "sample"), {})                  # raises and is caught: fine
    with_else = source + "else:\n    done = True\n"
    namespace = {}
    exec(_compiled(with_else, "sample"), namespace)         # an else of its own is kept
    assert namespace["done"] is True


def test_readme_gives_the_two_commands():
    """A newcomer's two commands: install + the main job, install + the tests
    (.ci/run runs both the same way)."""
    text = README.read_text(encoding="utf-8")
    shell = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert shell[0].strip() == "pip install . && wsp sim"
    assert shell[1].strip() == 'pip install ".[test]" && python -m pytest'
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install ".[test]"' in ci and "\nwsp sim\n" in ci and "\npython -m pytest\n" in ci


# ---------------------------------------- the sample output of `wsp sim`
SAMPLES = [block for block in re.findall(r"```text\n(.*?)```", README.read_text(encoding="utf-8"),
                                         re.S) if block.startswith("$ wsp sim")]
#: Rows whose values are the machine's (times, rates) or the build's.
_MACHINE = {"wall time", "core"}


def _rows(text):
    """A summary's rows, in order: (label, value without its rates)."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^(\S.*?|  \S.*?)(?:\s{2,}(.*))?$", line)
        if not m or line == "...":
            continue
        label, value = m[1], m[2] or ""
        if label in ("messages", "operations"):         # "12,400  (6,776/s)": wall rates
            value = re.sub(r"\s*\([^()]*/s\)", "", value)
        rows.append((label, "" if label in _MACHINE else value))
    return rows


def test_readme_has_the_sim_samples():
    assert len(SAMPLES) == 2


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_readme_sim_sample_is_what_the_command_prints(index, capsys):
    """Each ``$ wsp sim ...`` sample: the command as written (its trailing
    comment aside) prints these rows, in this order, with these values
    (times, rates and the build aside); a sample cut with ``...`` shows a
    part of the rows, still in order."""
    from wsp.cli import main
    command, _, sample = SAMPLES[index].partition("\n")
    argv = command.split("#")[0].split()[2:]
    assert main(argv) == 0
    real = _rows(capsys.readouterr().out)
    shown = _rows(sample)
    if "\n...\n" in "\n" + sample:
        it = iter(real)
        assert all(row in it for row in shown), (shown, real)    # a subsequence
    else:
        assert shown == real
