"""Reference material made from wsp itself, so the pages never drift from
the code: the tables of error codes and constants, and the command line's
help.

``.. wsp-error-table::`` lists every code of ``wsp.errors.ERROR_NAMES`` with
its value, POSIX twin and message; ``.. wsp-constant-table::`` lists every
name in ``wsp.constants.__all__`` with its value; ``.. wsp-cli-help:: sim``
shows the ``--help`` of ``wsp sim`` (no argument: of ``wsp``) as argparse
prints it at 79 columns.
"""
from __future__ import annotations

import uuid

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _table(headers: list[str], rows: list[list[str]], widths: list[int],
           code: tuple[bool, ...]) -> nodes.table:
    """A table; the columns whose `code` flag is set are shown as literals."""
    table = nodes.table()
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    body = nodes.tbody()
    group += head
    group += body

    def row_of(cells: list[str], literal: tuple[bool, ...]) -> nodes.row:
        row = nodes.row()
        for text, is_code in zip(cells, literal):
            para = nodes.paragraph()
            if text:
                para += nodes.literal(text, text) if is_code else nodes.Text(text)
            entry = nodes.entry()
            entry += para
            row += entry
        return row

    head += row_of(headers, (False,) * len(headers))
    for cells in rows:
        body += row_of(cells, code)
    return table


def _shown(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return f"UUID('{value}')"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0xFF:
        return f"{value} (0x{value:X})"
    return repr(value)


class ErrorTable(SphinxDirective):
    """Every WSA error code: name, value, POSIX twin, message."""

    def run(self) -> list[nodes.Node]:
        from wsp import errors

        rows = []
        for code, name in sorted(errors.ERROR_NAMES.items()):
            posix = errors.ERROR_POSIX_NAMES.get(code) or ""
            rows.append([name, str(code), posix, errors.ERROR_MESSAGES.get(code, "")])
        table = _table(["name", "value", "POSIX twin", "message"], rows, [30, 8, 16, 46],
                       (True, True, True, False))
        return [table]


class ConstantTable(SphinxDirective):
    """Every name ``wsp.constants`` exports, with its value."""

    def run(self) -> list[nodes.Node]:
        from wsp import constants

        rows = [[name, _shown(getattr(constants, name))] for name in constants.__all__]
        return [_table(["name", "value"], rows, [40, 60], (True, True))]


class CliHelp(SphinxDirective):
    """The ``--help`` text of ``wsp`` or one of its commands."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        import argparse
        import os
        from unittest import mock

        from wsp import cli

        with mock.patch.dict(os.environ, {"COLUMNS": "79"}):
            parser = cli.build_parser()
            if self.arguments:
                commands = next(a for a in parser._actions
                                if isinstance(a, argparse._SubParsersAction))
                parser = commands.choices[self.arguments[0]]
            text = parser.format_help()
        return [nodes.literal_block(text, text, language="text")]


def setup(app):
    app.add_directive("wsp-error-table", ErrorTable)
    app.add_directive("wsp-constant-table", ConstantTable)
    app.add_directive("wsp-cli-help", CliHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
