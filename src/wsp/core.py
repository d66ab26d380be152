"""Which core wsp uses: the compiled ``wsp._core`` or its pure twin ``wsp._core_py``.

The compiled core is used when it can be imported and ``WSP_NO_EXTENSIONS``
is unset or empty; any non-empty value forces the pure-Python twin, and so
does an interpreter other than CPython (the extension is CPython-only; the
rule is :data:`wsp._selection.NO_EXTENSIONS`, shared with the data plane).
``core_impl`` here says which core was picked: ``"cython"`` or ``"python"``.
The package's ``wsp.core_impl`` says more: ``"cython"`` only when this core
*and* every compiled data-plane module are the compiled ones in use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._selection import NO_EXTENSIONS

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
