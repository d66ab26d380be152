"""Every ``.. code-block:: python`` of the user guide (docs/guide/*.rst) runs
and its assertions hold, so the pages cannot drift from the code.  Each
block runs alone, in a fresh namespace, as a reader would paste it."""
from __future__ import annotations

import pathlib
import re
import sys
import textwrap

import pytest

GUIDE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guide"
BLOCK = re.compile(r"^\.\. code-block:: python\n((?:\n|   .*\n)+)", re.MULTILINE)


def _blocks() -> list:
    found = []
    for page in sorted(GUIDE.glob("*.rst")):
        text = page.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append(pytest.param(page, line, textwrap.dedent(m.group(1)),
                                      id=f"{page.stem}:{line}"))
    return found


@pytest.mark.parametrize(("page", "line", "code"), _blocks())
def test_guide_example(page: pathlib.Path, line: int, code: str) -> None:
    if page.stem == "asyncio" and sys.version_info < (3, 11):
        pytest.skip("wsp.aio needs Python 3.11")
    exec(compile(code, f"{page}:{line}", "exec"), {"__name__": "__docs__"})
