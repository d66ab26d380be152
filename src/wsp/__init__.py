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

# A literal list, not a concatenation: type checkers read only a literal
# __all__ as the package's explicit exports (mypy --strict rejects
# `from wsp import Process` otherwise).  Its constants and error names are
# constants.__all__ and errors.__all__ in order; tests/test_types.py checks
# that this list still equals them, so it cannot drift.  (Ruff cannot see
# through the star imports to those names, hence its F405 off in this file.)
# ruff: noqa: F405
__all__ = [
    "CompletionQueue", "HandleTable", "ThreadRegistry", "compiled_modules", "core_impl",
    "debug_counters", "constants", "errors", "__version__",
    "Linger", "Operation", "Overlapped", "Process", "ServiceProvider", "ThreadId",
    "UpcallTable", "WSPData",
    # constants.__all__
    "AF_INET", "AF_INET6", "AF_UNSPEC", "BASE_PROTOCOL", "CF_ACCEPT", "CF_DEFER", "CF_REJECT",
    "FD_ACCEPT", "FD_ACCEPT_BIT", "FD_ADDRESS_LIST_CHANGE", "FD_ADDRESS_LIST_CHANGE_BIT",
    "FD_ALL_EVENTS", "FD_CLOSE", "FD_CLOSE_BIT", "FD_CONNECT", "FD_CONNECT_BIT", "FD_GROUP_QOS",
    "FD_GROUP_QOS_BIT", "FD_MAX_EVENTS", "FD_OOB", "FD_OOB_BIT", "FD_QOS", "FD_QOS_BIT",
    "FD_READ", "FD_READ_BIT", "FD_ROUTING_INTERFACE_CHANGE", "FD_ROUTING_INTERFACE_CHANGE_BIT",
    "FD_WRITE", "FD_WRITE_BIT", "FIONBIO", "FIONREAD", "INVALID_SOCKET", "IPPROTO_IP",
    "IPPROTO_TCP", "IPPROTO_UDP", "LAYERED_PROTOCOL", "MAX_PROTOCOL_CHAIN", "MSG_DONTROUTE",
    "MSG_OOB", "MSG_PARTIAL", "MSG_PEEK", "MSG_WAITALL", "SD_BOTH", "SD_RECEIVE", "SD_SEND",
    "SIOCATMARK", "SIO_GET_EXTENSION_FUNCTION_POINTER", "SO_UPDATE_ACCEPT_CONTEXT",
    "SO_UPDATE_CONNECT_CONTEXT", "TF_REUSE_SOCKET", "WSAID_ACCEPTEX", "WSAID_CONNECTEX",
    "WSAID_DISCONNECTEX", "WSAID_GETACCEPTEXSOCKADDRS", "SOCK_DGRAM", "SOCK_RAW", "SOCK_STREAM",
    "SOL_SOCKET", "SOMAXCONN", "SO_ACCEPTCONN", "SO_BROADCAST", "SO_CONDITIONAL_ACCEPT",
    "SO_DEBUG", "SO_DONTLINGER", "SO_DONTROUTE", "SO_ERROR", "SO_EXCLUSIVEADDRUSE",
    "SO_KEEPALIVE", "SO_LINGER", "SO_OOBINLINE", "SO_RCVBUF", "SO_RCVLOWAT", "SO_RCVTIMEO",
    "SO_REUSEADDR", "SO_SNDBUF", "SO_SNDLOWAT", "SO_SNDTIMEO", "SO_TYPE", "TCP_NODELAY",
    "WINSOCK_VERSION", "WSADESCRIPTION_LEN", "WSAPROTOCOL_LEN", "WSASYS_STATUS_LEN",
    "WSA_FLAG_OVERLAPPED", "WSA_MAXIMUM_WAIT_EVENTS",
    # errors.__all__
    "ERROR_ABANDONED_WAIT_0", "ERROR_CONNECTION_ABORTED", "ERROR_CONNECTION_REFUSED",
    "ERROR_HOST_UNREACHABLE", "ERROR_MORE_DATA", "ERROR_NETNAME_DELETED",
    "ERROR_NETWORK_UNREACHABLE", "ERROR_OPERATION_ABORTED", "ERROR_SEM_TIMEOUT",
    "WIN32_ERROR_OF_WSA", "win32_error", "ERROR_MESSAGES", "ERROR_NAMES", "ERROR_NOT_FOUND",
    "ERROR_POSIX_NAMES", "INFINITE", "NO_ERROR", "SOCKET_ERROR", "WAIT_IO_COMPLETION",
    "WAIT_TIMEOUT", "WSAEACCES", "WSAEADDRINUSE", "WSAEADDRNOTAVAIL", "WSAEAFNOSUPPORT",
    "WSAEALREADY", "WSAEBADF", "WSAECANCELLED", "WSAECONNABORTED", "WSAECONNREFUSED",
    "WSAECONNRESET", "WSAEDESTADDRREQ", "WSAEDISCON", "WSAEDQUOT", "WSAEFAULT", "WSAEHOSTDOWN",
    "WSAEHOSTUNREACH", "WSAEINPROGRESS", "WSAEINTR", "WSAEINVAL", "WSAEINVALIDPROCTABLE",
    "WSAEINVALIDPROVIDER", "WSAEISCONN", "WSAELOOP", "WSAEMFILE", "WSAEMSGSIZE",
    "WSAENAMETOOLONG", "WSAENETDOWN", "WSAENETRESET", "WSAENETUNREACH", "WSAENOBUFS",
    "WSAENOMORE", "WSAENOPROTOOPT", "WSAENOTCONN", "WSAENOTEMPTY", "WSAENOTSOCK",
    "WSAEOPNOTSUPP", "WSAEPFNOSUPPORT", "WSAEPROCLIM", "WSAEPROTONOSUPPORT", "WSAEPROTOTYPE",
    "WSAEPROVIDERFAILEDINIT", "WSAEREFUSED", "WSAEREMOTE", "WSAESHUTDOWN", "WSAESOCKTNOSUPPORT",
    "WSAESTALE", "WSAETIMEDOUT", "WSAETOOMANYREFS", "WSAEUSERS", "WSAEWOULDBLOCK",
    "WSAHOST_NOT_FOUND", "WSANOTINITIALISED", "WSANO_DATA", "WSANO_RECOVERY",
    "WSASERVICE_NOT_FOUND", "WSASYSCALLFAILURE", "WSASYSNOTREADY", "WSATRY_AGAIN",
    "WSATYPE_NOT_FOUND", "WSAVERNOTSUPPORTED", "WSA_E_CANCELLED", "WSA_E_NO_MORE",
    "WSA_INFINITE", "WSA_INVALID_HANDLE", "WSA_INVALID_PARAMETER", "WSA_IO_INCOMPLETE",
    "WSA_IO_PENDING", "WSA_IPSEC_NAME_POLICY_ERROR", "WSA_NOT_ENOUGH_MEMORY",
    "WSA_OPERATION_ABORTED", "WSA_QOS_ADMISSION_FAILURE", "WSA_QOS_BAD_OBJECT",
    "WSA_QOS_BAD_STYLE", "WSA_QOS_EFILTERCOUNT", "WSA_QOS_EFILTERSTYLE", "WSA_QOS_EFILTERTYPE",
    "WSA_QOS_EFLOWCOUNT", "WSA_QOS_EFLOWDESC", "WSA_QOS_EFLOWSPEC", "WSA_QOS_EOBJLENGTH",
    "WSA_QOS_EPOLICYOBJ", "WSA_QOS_EPROVSPECBUF", "WSA_QOS_EPSFILTERSPEC",
    "WSA_QOS_EPSFLOWSPEC", "WSA_QOS_ESDMODEOBJ", "WSA_QOS_ESERVICETYPE",
    "WSA_QOS_ESHAPERATEOBJ", "WSA_QOS_EUNKOWNPSOBJ", "WSA_QOS_GENERIC_ERROR",
    "WSA_QOS_NO_RECEIVERS", "WSA_QOS_NO_SENDERS", "WSA_QOS_POLICY_FAILURE", "WSA_QOS_RECEIVERS",
    "WSA_QOS_REQUEST_CONFIRMED", "WSA_QOS_RESERVED_PETYPE", "WSA_QOS_SENDERS",
    "WSA_QOS_TRAFFIC_CTRL_ERROR", "WSA_SECURE_HOST_NOT_FOUND", "WSA_WAIT_EVENT_0",
    "WSA_WAIT_IO_COMPLETION", "WSA_WAIT_TIMEOUT", "WinsockBlockingIOError",
    "WinsockBrokenPipeError", "WinsockConnectionAbortedError", "WinsockConnectionRefusedError",
    "WinsockConnectionResetError", "WinsockError", "WinsockInterruptedError",
    "WinsockPermissionError", "WinsockTimeoutError", "error_name",
]


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
