"""wsp: the Windows Sockets 2 Service Provider Interface, in-process, on any OS.

The package re-exports the WSA error codes and ``WinsockError`` (``wsp.errors``),
the Windows socket constants (``wsp.constants``), the core structures
(``HandleTable``, ``ThreadRegistry``, ``CompletionQueue``) and the SPI layer
(``Process``, ``UpcallTable``, ``ServiceProvider``, ``Overlapped``,
``ThreadId``, ``Linger``).  ``core_impl`` is ``"cython"`` when the
compiled core and every compiled data-plane module are the ones in use, else
``"python"``; ``compiled_modules()`` says which are, one by one.  Set
``WSP_NO_EXTENSIONS=1`` before importing wsp to force every pure-Python twin.
"""
# First of all, before any module it governs can be imported: which twin of
# each pure-Python-mode module loads, compiled or source (wsp._selection).
from . import _selection

_selection.install()

from typing import TYPE_CHECKING

from . import constants, core, errors
# Constants and error codes live on wsp too (``docs/guide/spi-model.rst, "Constants"`` and
# ``docs/guide/spi-model.rst, "Errors"``).
from .constants import *  # noqa: F401,F403
from .core import CompletionQueue, HandleTable, ThreadRegistry, debug_counters
from .errors import *  # noqa: F401,F403
from .spi import (Linger, Operation, Overlapped, Process, ServiceProvider, ThreadId,
                  UpcallTable, WSPData)

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0"

__all__ = (
    ["CompletionQueue", "HandleTable", "ThreadRegistry", "compiled_modules", "core_impl",
     "debug_counters",
     "constants", "errors", "__version__",
     "Linger", "Operation", "Overlapped", "Process", "ServiceProvider", "ThreadId",
     "UpcallTable", "WSPData"]
    + list(constants.__all__)
    + list(errors.__all__)
)


def compiled_modules() -> dict[str, bool]:
    """Whether each compiled module is the one in use, by module name:
    ``"wsp._core"`` (the compiled core rather than its twin ``wsp._core_py``),
    then every pure-Python-mode module of the data plane
    (``wsp._compiled.COMPILED_MODULES``: compiled extension rather than its
    ``.py`` source).  Imports those modules (``wsp.sim`` with them) if they
    are not imported yet."""
    report = {"wsp._core": core.core_impl == "cython"}
    report.update(_selection.data_plane_modules())
    return report


if TYPE_CHECKING:
    core_impl: str
else:
    def __getattr__(name: str):
        """``core_impl``, computed once (PEP 562); AttributeError for the rest."""
        # core_impl is worked out on first use, not at import: it looks at the
        # modules actually loaded, and the simulated network's (wsp.sim) are
        # not imported by `import wsp`.  Once known it is a plain attribute.
        if name == "core_impl":
            impl = "cython" if all(compiled_modules().values()) else "python"
            globals()["core_impl"] = impl
            return impl
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
