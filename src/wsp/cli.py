"""The ``wsp`` command line (also ``python -m wsp``).

Today it has ``wsp info``; ``wsp sim`` and ``wsp bench`` arrive with the
simulated network and the CLI issue.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import sysconfig

import wsp


def _info() -> dict[str, object]:
    try:
        import Cython
        cython_version = Cython.__version__
    except ImportError:         # not needed at run time; only the build uses it
        cython_version = None
    gil_disabled = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    return {
        "version": wsp.__version__,
        "core": wsp.core_impl,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "free_threaded": gil_disabled,
        "cython": cython_version,
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wsp",
        description="The Windows Sockets 2 SPI, in-process, on any OS.",
        epilog="example: wsp info --json",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser("info", help="version, core in use, interpreter")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    facts = _info()
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        width = max(len(k) for k in facts)
        for key, value in facts.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
