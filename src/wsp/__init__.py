"""wsp: the Windows Sockets 2 Service Provider Interface, in-process, on any OS.

The package re-exports the WSA error codes and ``WinsockError`` (``wsp.errors``),
the Windows socket constants (``wsp.constants``), the core structures
(``HandleTable``, ``ThreadRegistry``, ``CompletionQueue``) and the SPI layer
(``Process``, ``UpcallTable``, ``ServiceProvider``, ``Overlapped``,
``ThreadId``, ``Linger``).  ``core_impl`` says
whether the compiled core (``"cython"``) or its pure-Python twin
(``"python"``) is in use; set ``WSP_NO_EXTENSIONS=1`` to force the twin.
"""
from . import constants, errors
from .constants import *  # noqa: F401,F403 -- SPEC §4: constants live on wsp too
from .core import CompletionQueue, HandleTable, ThreadRegistry, core_impl, debug_counters
from .errors import *  # noqa: F401,F403 -- SPEC §3: error codes live on wsp too
from .spi import (Linger, Operation, Overlapped, Process, ServiceProvider, ThreadId,
                  UpcallTable, WSPData)

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0"

__all__ = (
    ["CompletionQueue", "HandleTable", "ThreadRegistry", "core_impl", "debug_counters",
     "constants", "errors", "__version__",
     "Linger", "Operation", "Overlapped", "Process", "ServiceProvider", "ThreadId",
     "UpcallTable", "WSPData"]
    + list(constants.__all__)
    + list(errors.__all__)
)
