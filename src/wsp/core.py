"""Which core wsp uses: the compiled ``wsp._core`` or its pure twin ``wsp._core_py``.

The compiled core is used when it can be imported and ``WSP_NO_EXTENSIONS``
is unset or empty; any non-empty value forces the pure-Python twin, and so
does an interpreter other than CPython (the extension is CPython-only).
``core_impl`` says which one was picked: ``"cython"`` or ``"python"``.
"""
from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

NO_EXTENSIONS = bool(os.environ.get("WSP_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)

if TYPE_CHECKING:
    # Type checkers see the pure twin: same names, same signatures.
    from ._core_py import (CompletionQueue, HandleTable, ThreadRegistry, build_info,
                           debug_counters)

    core_impl: str
else:
    core_impl = "python"
    if not NO_EXTENSIONS:
        try:
            from ._core import (CompletionQueue, HandleTable, ThreadRegistry, build_info,
                                debug_counters)
        except ImportError:  # no compiler on this platform: the twin takes over
            pass
        else:
            core_impl = "cython"
    if core_impl == "python":
        from ._core_py import (CompletionQueue, HandleTable, ThreadRegistry, build_info,
                               debug_counters)

__all__ = ["CompletionQueue", "HandleTable", "ThreadRegistry", "build_info", "core_impl",
           "debug_counters"]
