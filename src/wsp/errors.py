"""Windows Sockets error codes and the exception that carries them.

Every WSA error code from the reference table is a module-level ``int`` with
its Windows value, so provider code can be written the way the C headers read
(``raise WinsockError(WSAENOTSOCK, "WSPCloseSocket")``).

:class:`WinsockError` is the exception every SPI call raises in place of the C
convention of returning ``SOCKET_ERROR`` and storing a code in ``*lpErrno``.
It is an :class:`OSError` whose ``winerror`` is the WSA code and whose
``errno`` is the host's number for the matching POSIX error, and the base
class picks a subclass that also derives from the matching built-in
exception (``ConnectionResetError``, ``BlockingIOError``, ...), so ordinary
``except`` clauses written for the :mod:`socket` module keep working.
"""

from __future__ import annotations

import errno as _errno
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    # Only for annotations (postponed by the __future__ import), so there is
    # no runtime dependency on typing_extensions.
    if sys.version_info >= (3, 11):
        from typing import Self
    else:
        from typing_extensions import Self

# The table below is generated from shared/reference/wsa-errors.tsv and kept as
# literal source on purpose: the installed package must not read files that
# live outside it.  tests/test_errors.py checks it against the table.

# fmt: off
WSA_INVALID_HANDLE          = 6
WSA_NOT_ENOUGH_MEMORY       = 8
WSA_INVALID_PARAMETER       = 87
WSA_OPERATION_ABORTED       = 995
WSA_IO_INCOMPLETE           = 996
WSA_IO_PENDING              = 997
WSAEINTR                    = 10004
WSAEBADF                    = 10009
WSAEACCES                   = 10013
WSAEFAULT                   = 10014
WSAEINVAL                   = 10022
WSAEMFILE                   = 10024
WSAEWOULDBLOCK              = 10035
WSAEINPROGRESS              = 10036
WSAEALREADY                 = 10037
WSAENOTSOCK                 = 10038
WSAEDESTADDRREQ             = 10039
WSAEMSGSIZE                 = 10040
WSAEPROTOTYPE               = 10041
WSAENOPROTOOPT              = 10042
WSAEPROTONOSUPPORT          = 10043
WSAESOCKTNOSUPPORT          = 10044
WSAEOPNOTSUPP               = 10045
WSAEPFNOSUPPORT             = 10046
WSAEAFNOSUPPORT             = 10047
WSAEADDRINUSE               = 10048
WSAEADDRNOTAVAIL            = 10049
WSAENETDOWN                 = 10050
WSAENETUNREACH              = 10051
WSAENETRESET                = 10052
WSAECONNABORTED             = 10053
WSAECONNRESET               = 10054
WSAENOBUFS                  = 10055
WSAEISCONN                  = 10056
WSAENOTCONN                 = 10057
WSAESHUTDOWN                = 10058
WSAETOOMANYREFS             = 10059
WSAETIMEDOUT                = 10060
WSAECONNREFUSED             = 10061
WSAELOOP                    = 10062
WSAENAMETOOLONG             = 10063
WSAEHOSTDOWN                = 10064
WSAEHOSTUNREACH             = 10065
WSAENOTEMPTY                = 10066
WSAEPROCLIM                 = 10067
WSAEUSERS                   = 10068
WSAEDQUOT                   = 10069
WSAESTALE                   = 10070
WSAEREMOTE                  = 10071
WSASYSNOTREADY              = 10091
WSAVERNOTSUPPORTED          = 10092
WSANOTINITIALISED           = 10093
WSAEDISCON                  = 10101
WSAENOMORE                  = 10102
WSAECANCELLED               = 10103
WSAEINVALIDPROCTABLE        = 10104
WSAEINVALIDPROVIDER         = 10105
WSAEPROVIDERFAILEDINIT      = 10106
WSASYSCALLFAILURE           = 10107
WSASERVICE_NOT_FOUND        = 10108
WSATYPE_NOT_FOUND           = 10109
WSA_E_NO_MORE               = 10110
WSA_E_CANCELLED             = 10111
WSAEREFUSED                 = 10112
WSAHOST_NOT_FOUND           = 11001
WSATRY_AGAIN                = 11002
WSANO_RECOVERY              = 11003
WSANO_DATA                  = 11004
WSA_QOS_RECEIVERS           = 11005
WSA_QOS_SENDERS             = 11006
WSA_QOS_NO_SENDERS          = 11007
WSA_QOS_NO_RECEIVERS        = 11008
WSA_QOS_REQUEST_CONFIRMED   = 11009
WSA_QOS_ADMISSION_FAILURE   = 11010
WSA_QOS_POLICY_FAILURE      = 11011
WSA_QOS_BAD_STYLE           = 11012
WSA_QOS_BAD_OBJECT          = 11013
WSA_QOS_TRAFFIC_CTRL_ERROR  = 11014
WSA_QOS_GENERIC_ERROR       = 11015
WSA_QOS_ESERVICETYPE        = 11016
WSA_QOS_EFLOWSPEC           = 11017
WSA_QOS_EPROVSPECBUF        = 11018
WSA_QOS_EFILTERSTYLE        = 11019
WSA_QOS_EFILTERTYPE         = 11020
WSA_QOS_EFILTERCOUNT        = 11021
WSA_QOS_EOBJLENGTH          = 11022
WSA_QOS_EFLOWCOUNT          = 11023
WSA_QOS_EUNKOWNPSOBJ        = 11024
WSA_QOS_EPOLICYOBJ          = 11025
WSA_QOS_EFLOWDESC           = 11026
WSA_QOS_EPSFLOWSPEC         = 11027
WSA_QOS_EPSFILTERSPEC       = 11028
WSA_QOS_ESDMODEOBJ          = 11029
WSA_QOS_ESHAPERATEOBJ       = 11030
WSA_QOS_RESERVED_PETYPE     = 11031
WSA_SECURE_HOST_NOT_FOUND   = 11032
WSA_IPSEC_NAME_POLICY_ERROR = 11033
# fmt: on

# Status values that share the error namespace in SPI calls but are not
# WSA error codes (no message or exception class of their own).
NO_ERROR = 0
SOCKET_ERROR = -1
# WSAWaitForMultipleEvents and WaitForSingleObjectEx reuse the Win32 wait
# status values, so both spellings are provided.
WSA_WAIT_EVENT_0 = 0
WAIT_IO_COMPLETION = 192
WSA_WAIT_IO_COMPLETION = 192
WAIT_TIMEOUT = 258
WSA_WAIT_TIMEOUT = 258
INFINITE = 0xFFFFFFFF
WSA_INFINITE = INFINITE
# Win32 ERROR_NOT_FOUND; used for "no such pending request" results.
ERROR_NOT_FOUND = 1168
# Win32 ERROR_ABANDONED_WAIT_0: a completion-port wait whose port was closed
# while the thread waited on it.
ERROR_ABANDONED_WAIT_0 = 735

# The Win32 errors GetQueuedCompletionStatus reports (GetLastError() after a
# failed dequeue) for a completed operation that failed: Windows translates
# the operation's NTSTATUS to a Win32 code, which for several socket errors is
# not the WSA code (Wine's ws2_32 test_completion_port, run against Windows:
# a receive reset by the peer dequeues with ERROR_NETNAME_DELETED; asyncio's
# proactor turns that code into ConnectionResetError).
ERROR_NETNAME_DELETED = 64
ERROR_SEM_TIMEOUT = 121
ERROR_MORE_DATA = 234
ERROR_OPERATION_ABORTED = 995
ERROR_CONNECTION_REFUSED = 1225
ERROR_NETWORK_UNREACHABLE = 1231
ERROR_HOST_UNREACHABLE = 1232
ERROR_CONNECTION_ABORTED = 1236

# Code -> name.  The table has no repeated values today; if one ever appears,
# the generator keeps the first name in table order.
ERROR_NAMES: dict[int, str] = {
    WSA_INVALID_HANDLE: "WSA_INVALID_HANDLE",
    WSA_NOT_ENOUGH_MEMORY: "WSA_NOT_ENOUGH_MEMORY",
    WSA_INVALID_PARAMETER: "WSA_INVALID_PARAMETER",
    WSA_OPERATION_ABORTED: "WSA_OPERATION_ABORTED",
    WSA_IO_INCOMPLETE: "WSA_IO_INCOMPLETE",
    WSA_IO_PENDING: "WSA_IO_PENDING",
    WSAEINTR: "WSAEINTR",
    WSAEBADF: "WSAEBADF",
    WSAEACCES: "WSAEACCES",
    WSAEFAULT: "WSAEFAULT",
    WSAEINVAL: "WSAEINVAL",
    WSAEMFILE: "WSAEMFILE",
    WSAEWOULDBLOCK: "WSAEWOULDBLOCK",
    WSAEINPROGRESS: "WSAEINPROGRESS",
    WSAEALREADY: "WSAEALREADY",
    WSAENOTSOCK: "WSAENOTSOCK",
    WSAEDESTADDRREQ: "WSAEDESTADDRREQ",
    WSAEMSGSIZE: "WSAEMSGSIZE",
    WSAEPROTOTYPE: "WSAEPROTOTYPE",
    WSAENOPROTOOPT: "WSAENOPROTOOPT",
    WSAEPROTONOSUPPORT: "WSAEPROTONOSUPPORT",
    WSAESOCKTNOSUPPORT: "WSAESOCKTNOSUPPORT",
    WSAEOPNOTSUPP: "WSAEOPNOTSUPP",
    WSAEPFNOSUPPORT: "WSAEPFNOSUPPORT",
    WSAEAFNOSUPPORT: "WSAEAFNOSUPPORT",
    WSAEADDRINUSE: "WSAEADDRINUSE",
    WSAEADDRNOTAVAIL: "WSAEADDRNOTAVAIL",
    WSAENETDOWN: "WSAENETDOWN",
    WSAENETUNREACH: "WSAENETUNREACH",
    WSAENETRESET: "WSAENETRESET",
    WSAECONNABORTED: "WSAECONNABORTED",
    WSAECONNRESET: "WSAECONNRESET",
    WSAENOBUFS: "WSAENOBUFS",
    WSAEISCONN: "WSAEISCONN",
    WSAENOTCONN: "WSAENOTCONN",
    WSAESHUTDOWN: "WSAESHUTDOWN",
    WSAETOOMANYREFS: "WSAETOOMANYREFS",
    WSAETIMEDOUT: "WSAETIMEDOUT",
    WSAECONNREFUSED: "WSAECONNREFUSED",
    WSAELOOP: "WSAELOOP",
    WSAENAMETOOLONG: "WSAENAMETOOLONG",
    WSAEHOSTDOWN: "WSAEHOSTDOWN",
    WSAEHOSTUNREACH: "WSAEHOSTUNREACH",
    WSAENOTEMPTY: "WSAENOTEMPTY",
    WSAEPROCLIM: "WSAEPROCLIM",
    WSAEUSERS: "WSAEUSERS",
    WSAEDQUOT: "WSAEDQUOT",
    WSAESTALE: "WSAESTALE",
    WSAEREMOTE: "WSAEREMOTE",
    WSASYSNOTREADY: "WSASYSNOTREADY",
    WSAVERNOTSUPPORTED: "WSAVERNOTSUPPORTED",
    WSANOTINITIALISED: "WSANOTINITIALISED",
    WSAEDISCON: "WSAEDISCON",
    WSAENOMORE: "WSAENOMORE",
    WSAECANCELLED: "WSAECANCELLED",
    WSAEINVALIDPROCTABLE: "WSAEINVALIDPROCTABLE",
    WSAEINVALIDPROVIDER: "WSAEINVALIDPROVIDER",
    WSAEPROVIDERFAILEDINIT: "WSAEPROVIDERFAILEDINIT",
    WSASYSCALLFAILURE: "WSASYSCALLFAILURE",
    WSASERVICE_NOT_FOUND: "WSASERVICE_NOT_FOUND",
    WSATYPE_NOT_FOUND: "WSATYPE_NOT_FOUND",
    WSA_E_NO_MORE: "WSA_E_NO_MORE",
    WSA_E_CANCELLED: "WSA_E_CANCELLED",
    WSAEREFUSED: "WSAEREFUSED",
    WSAHOST_NOT_FOUND: "WSAHOST_NOT_FOUND",
    WSATRY_AGAIN: "WSATRY_AGAIN",
    WSANO_RECOVERY: "WSANO_RECOVERY",
    WSANO_DATA: "WSANO_DATA",
    WSA_QOS_RECEIVERS: "WSA_QOS_RECEIVERS",
    WSA_QOS_SENDERS: "WSA_QOS_SENDERS",
    WSA_QOS_NO_SENDERS: "WSA_QOS_NO_SENDERS",
    WSA_QOS_NO_RECEIVERS: "WSA_QOS_NO_RECEIVERS",
    WSA_QOS_REQUEST_CONFIRMED: "WSA_QOS_REQUEST_CONFIRMED",
    WSA_QOS_ADMISSION_FAILURE: "WSA_QOS_ADMISSION_FAILURE",
    WSA_QOS_POLICY_FAILURE: "WSA_QOS_POLICY_FAILURE",
    WSA_QOS_BAD_STYLE: "WSA_QOS_BAD_STYLE",
    WSA_QOS_BAD_OBJECT: "WSA_QOS_BAD_OBJECT",
    WSA_QOS_TRAFFIC_CTRL_ERROR: "WSA_QOS_TRAFFIC_CTRL_ERROR",
    WSA_QOS_GENERIC_ERROR: "WSA_QOS_GENERIC_ERROR",
    WSA_QOS_ESERVICETYPE: "WSA_QOS_ESERVICETYPE",
    WSA_QOS_EFLOWSPEC: "WSA_QOS_EFLOWSPEC",
    WSA_QOS_EPROVSPECBUF: "WSA_QOS_EPROVSPECBUF",
    WSA_QOS_EFILTERSTYLE: "WSA_QOS_EFILTERSTYLE",
    WSA_QOS_EFILTERTYPE: "WSA_QOS_EFILTERTYPE",
    WSA_QOS_EFILTERCOUNT: "WSA_QOS_EFILTERCOUNT",
    WSA_QOS_EOBJLENGTH: "WSA_QOS_EOBJLENGTH",
    WSA_QOS_EFLOWCOUNT: "WSA_QOS_EFLOWCOUNT",
    WSA_QOS_EUNKOWNPSOBJ: "WSA_QOS_EUNKOWNPSOBJ",
    WSA_QOS_EPOLICYOBJ: "WSA_QOS_EPOLICYOBJ",
    WSA_QOS_EFLOWDESC: "WSA_QOS_EFLOWDESC",
    WSA_QOS_EPSFLOWSPEC: "WSA_QOS_EPSFLOWSPEC",
    WSA_QOS_EPSFILTERSPEC: "WSA_QOS_EPSFILTERSPEC",
    WSA_QOS_ESDMODEOBJ: "WSA_QOS_ESDMODEOBJ",
    WSA_QOS_ESHAPERATEOBJ: "WSA_QOS_ESHAPERATEOBJ",
    WSA_QOS_RESERVED_PETYPE: "WSA_QOS_RESERVED_PETYPE",
    WSA_SECURE_HOST_NOT_FOUND: "WSA_SECURE_HOST_NOT_FOUND",
    WSA_IPSEC_NAME_POLICY_ERROR: "WSA_IPSEC_NAME_POLICY_ERROR",
}

# Code -> name of the POSIX errno that means the same thing, or None when
# POSIX has no counterpart (overlapped I/O statuses, name service, QoS).
ERROR_POSIX_NAMES: dict[int, str | None] = {
    WSA_INVALID_HANDLE: "EBADF",
    WSA_NOT_ENOUGH_MEMORY: "ENOMEM",
    WSA_INVALID_PARAMETER: "EINVAL",
    WSA_OPERATION_ABORTED: None,
    WSA_IO_INCOMPLETE: None,
    WSA_IO_PENDING: None,
    WSAEINTR: "EINTR",
    WSAEBADF: "EBADF",
    WSAEACCES: "EACCES",
    WSAEFAULT: "EFAULT",
    WSAEINVAL: "EINVAL",
    WSAEMFILE: "EMFILE",
    WSAEWOULDBLOCK: "EWOULDBLOCK",
    WSAEINPROGRESS: "EINPROGRESS",
    WSAEALREADY: "EALREADY",
    WSAENOTSOCK: "ENOTSOCK",
    WSAEDESTADDRREQ: "EDESTADDRREQ",
    WSAEMSGSIZE: "EMSGSIZE",
    WSAEPROTOTYPE: "EPROTOTYPE",
    WSAENOPROTOOPT: "ENOPROTOOPT",
    WSAEPROTONOSUPPORT: "EPROTONOSUPPORT",
    WSAESOCKTNOSUPPORT: "ESOCKTNOSUPPORT",
    WSAEOPNOTSUPP: "EOPNOTSUPP",
    WSAEPFNOSUPPORT: "EPFNOSUPPORT",
    WSAEAFNOSUPPORT: "EAFNOSUPPORT",
    WSAEADDRINUSE: "EADDRINUSE",
    WSAEADDRNOTAVAIL: "EADDRNOTAVAIL",
    WSAENETDOWN: "ENETDOWN",
    WSAENETUNREACH: "ENETUNREACH",
    WSAENETRESET: "ENETRESET",
    WSAECONNABORTED: "ECONNABORTED",
    WSAECONNRESET: "ECONNRESET",
    WSAENOBUFS: "ENOBUFS",
    WSAEISCONN: "EISCONN",
    WSAENOTCONN: "ENOTCONN",
    WSAESHUTDOWN: "ESHUTDOWN",
    WSAETOOMANYREFS: "ETOOMANYREFS",
    WSAETIMEDOUT: "ETIMEDOUT",
    WSAECONNREFUSED: "ECONNREFUSED",
    WSAELOOP: "ELOOP",
    WSAENAMETOOLONG: "ENAMETOOLONG",
    WSAEHOSTDOWN: "EHOSTDOWN",
    WSAEHOSTUNREACH: "EHOSTUNREACH",
    WSAENOTEMPTY: "ENOTEMPTY",
    WSAEPROCLIM: "EPROCLIM",
    WSAEUSERS: "EUSERS",
    WSAEDQUOT: "EDQUOT",
    WSAESTALE: "ESTALE",
    WSAEREMOTE: "EREMOTE",
    WSASYSNOTREADY: None,
    WSAVERNOTSUPPORTED: None,
    WSANOTINITIALISED: None,
    WSAEDISCON: None,
    WSAENOMORE: None,
    WSAECANCELLED: None,
    WSAEINVALIDPROCTABLE: None,
    WSAEINVALIDPROVIDER: None,
    WSAEPROVIDERFAILEDINIT: None,
    WSASYSCALLFAILURE: None,
    WSASERVICE_NOT_FOUND: None,
    WSATYPE_NOT_FOUND: None,
    WSA_E_NO_MORE: None,
    WSA_E_CANCELLED: None,
    WSAEREFUSED: None,
    WSAHOST_NOT_FOUND: None,
    WSATRY_AGAIN: None,
    WSANO_RECOVERY: None,
    WSANO_DATA: None,
    WSA_QOS_RECEIVERS: None,
    WSA_QOS_SENDERS: None,
    WSA_QOS_NO_SENDERS: None,
    WSA_QOS_NO_RECEIVERS: None,
    WSA_QOS_REQUEST_CONFIRMED: None,
    WSA_QOS_ADMISSION_FAILURE: None,
    WSA_QOS_POLICY_FAILURE: None,
    WSA_QOS_BAD_STYLE: None,
    WSA_QOS_BAD_OBJECT: None,
    WSA_QOS_TRAFFIC_CTRL_ERROR: None,
    WSA_QOS_GENERIC_ERROR: None,
    WSA_QOS_ESERVICETYPE: None,
    WSA_QOS_EFLOWSPEC: None,
    WSA_QOS_EPROVSPECBUF: None,
    WSA_QOS_EFILTERSTYLE: None,
    WSA_QOS_EFILTERTYPE: None,
    WSA_QOS_EFILTERCOUNT: None,
    WSA_QOS_EOBJLENGTH: None,
    WSA_QOS_EFLOWCOUNT: None,
    WSA_QOS_EUNKOWNPSOBJ: None,
    WSA_QOS_EPOLICYOBJ: None,
    WSA_QOS_EFLOWDESC: None,
    WSA_QOS_EPSFLOWSPEC: None,
    WSA_QOS_EPSFILTERSPEC: None,
    WSA_QOS_ESDMODEOBJ: None,
    WSA_QOS_ESHAPERATEOBJ: None,
    WSA_QOS_RESERVED_PETYPE: None,
    WSA_SECURE_HOST_NOT_FOUND: None,
    WSA_IPSEC_NAME_POLICY_ERROR: None,
}

# Code -> short description, worded for this package.
ERROR_MESSAGES: dict[int, str] = {
    WSA_INVALID_HANDLE: "the handle (for example an event object) is not valid",
    WSA_NOT_ENOUGH_MEMORY: "there is not enough memory to complete the call",
    WSA_INVALID_PARAMETER: "one or more arguments are not valid",
    WSA_OPERATION_ABORTED: (
        "the overlapped operation was cancelled, e.g. by closing the socket"
    ),
    WSA_IO_INCOMPLETE: "the overlapped operation has not finished yet",
    WSA_IO_PENDING: "the overlapped operation was started and will complete later",
    WSAEINTR: "a blocking call was interrupted before it finished",
    WSAEBADF: "the file handle is not valid",
    WSAEACCES: "access to the socket or address was denied",
    WSAEFAULT: "a pointer or a buffer length argument is bad",
    WSAEINVAL: (
        "an argument is not valid or the socket is in the wrong state for the call"
    ),
    WSAEMFILE: "too many sockets are open",
    WSAEWOULDBLOCK: "the call cannot finish now without blocking a non-blocking socket",
    WSAEINPROGRESS: "a blocking operation is already running",
    WSAEALREADY: "an operation is already under way on this non-blocking socket",
    WSAENOTSOCK: "the descriptor is not a socket",
    WSAEDESTADDRREQ: "a destination address is required",
    WSAEMSGSIZE: "the message is larger than the buffer or the protocol allows",
    WSAEPROTOTYPE: "the protocol does not fit the socket type",
    WSAENOPROTOOPT: "the option or level is unknown or not supported",
    WSAEPROTONOSUPPORT: "the protocol is not supported",
    WSAESOCKTNOSUPPORT: "the socket type is not supported in this address family",
    WSAEOPNOTSUPP: "the operation is not supported on this kind of socket",
    WSAEPFNOSUPPORT: "the protocol family is not supported",
    WSAEAFNOSUPPORT: "the address family cannot be used with this protocol",
    WSAEADDRINUSE: "the address is already in use",
    WSAEADDRNOTAVAIL: "the address is not valid in this context",
    WSAENETDOWN: "the network subsystem is down",
    WSAENETUNREACH: "the destination network cannot be reached",
    WSAENETRESET: "the connection broke because of a network reset",
    WSAECONNABORTED: "the connection was aborted on this host",
    WSAECONNRESET: "the connection was reset by the peer",
    WSAENOBUFS: "no buffer space is available",
    WSAEISCONN: "the socket is already connected",
    WSAENOTCONN: "the socket is not connected",
    WSAESHUTDOWN: "the socket has been shut down in that direction",
    WSAETOOMANYREFS: "there are too many references to a kernel object",
    WSAETIMEDOUT: "the operation or connection attempt timed out",
    WSAECONNREFUSED: "the peer refused the connection",
    WSAELOOP: "a name could not be resolved because of too many levels of translation",
    WSAENAMETOOLONG: "the name is too long",
    WSAEHOSTDOWN: "the remote host is down",
    WSAEHOSTUNREACH: "the remote host cannot be reached",
    WSAENOTEMPTY: "the directory is not empty",
    WSAEPROCLIM: "too many processes are using Windows Sockets",
    WSAEUSERS: "the user quota has run out",
    WSAEDQUOT: "the disk quota has run out",
    WSAESTALE: "the file handle is stale",
    WSAEREMOTE: "the item is remote and not available here",
    WSASYSNOTREADY: "the network subsystem is not ready",
    WSAVERNOTSUPPORTED: "the requested Windows Sockets version is not supported",
    WSANOTINITIALISED: "Windows Sockets has not been started in this process",
    WSAEDISCON: "the peer is closing the connection gracefully",
    WSAENOMORE: "there are no more results",
    WSAECANCELLED: "the call was cancelled",
    WSAEINVALIDPROCTABLE: "the service provider returned a bad procedure table",
    WSAEINVALIDPROVIDER: "the service provider is not valid",
    WSAEPROVIDERFAILEDINIT: "the service provider failed to initialise",
    WSASYSCALLFAILURE: "a system call that should never fail has failed",
    WSASERVICE_NOT_FOUND: "the service was not found",
    WSATYPE_NOT_FOUND: "the class type was not found",
    WSA_E_NO_MORE: "there are no more results",
    WSA_E_CANCELLED: "the lookup was cancelled",
    WSAEREFUSED: "the database query was refused",
    WSAHOST_NOT_FOUND: "the host is not known",
    WSATRY_AGAIN: "the name server did not answer; try again later",
    WSANO_RECOVERY: "the name lookup failed with an error that retrying will not fix",
    WSANO_DATA: "the name is valid but has no record of the requested type",
    WSA_QOS_RECEIVERS: "QoS: at least one reservation message has arrived",
    WSA_QOS_SENDERS: "QoS: at least one path message has arrived",
    WSA_QOS_NO_SENDERS: "QoS: there are no senders",
    WSA_QOS_NO_RECEIVERS: "QoS: there are no receivers",
    WSA_QOS_REQUEST_CONFIRMED: "QoS: the reservation was confirmed",
    WSA_QOS_ADMISSION_FAILURE: "QoS: the request failed for lack of resources",
    WSA_QOS_POLICY_FAILURE: "QoS: the request was refused by policy",
    WSA_QOS_BAD_STYLE: "QoS: the filter style is unknown or conflicting",
    WSA_QOS_BAD_OBJECT: "QoS: a filter spec or provider-specific object is malformed",
    WSA_QOS_TRAFFIC_CTRL_ERROR: "QoS: traffic control rejected the flow spec",
    WSA_QOS_GENERIC_ERROR: "QoS: a general QoS failure",
    WSA_QOS_ESERVICETYPE: "QoS: the service type in the flow spec is not valid",
    WSA_QOS_EFLOWSPEC: "QoS: the flow spec is not valid",
    WSA_QOS_EPROVSPECBUF: "QoS: the provider-specific buffer is not valid",
    WSA_QOS_EFILTERSTYLE: "QoS: the filter style is not valid",
    WSA_QOS_EFILTERTYPE: "QoS: the filter type is not valid",
    WSA_QOS_EFILTERCOUNT: "QoS: the number of filter specs is wrong",
    WSA_QOS_EOBJLENGTH: "QoS: an object has a bad length",
    WSA_QOS_EFLOWCOUNT: "QoS: the number of flow descriptors is wrong",
    WSA_QOS_EUNKOWNPSOBJ: "QoS: the provider-specific buffer holds an unknown object",
    WSA_QOS_EPOLICYOBJ: "QoS: the provider-specific buffer holds a bad policy object",
    WSA_QOS_EFLOWDESC: "QoS: the flow descriptor list is not valid",
    WSA_QOS_EPSFLOWSPEC: "QoS: the provider-specific buffer holds a bad flow spec",
    WSA_QOS_EPSFILTERSPEC: "QoS: the provider-specific buffer holds a bad filter spec",
    WSA_QOS_ESDMODEOBJ: "QoS: the shape-discard mode object is not valid",
    WSA_QOS_ESHAPERATEOBJ: "QoS: the shaping rate object is not valid",
    WSA_QOS_RESERVED_PETYPE: "QoS: a reserved policy element type was used",
    WSA_SECURE_HOST_NOT_FOUND: "no secure host record was found for the name",
    WSA_IPSEC_NAME_POLICY_ERROR: "the name-based IPsec policy could not be added",
}

# The host's errno for each code, looked up once.  Hosts differ: Linux has
# no EPROCLIM, so WSAEPROCLIM maps to None there but to a number on macOS.
_HOST_ERRNO: dict[int, int | None] = {
    code: None if posix is None else getattr(_errno, posix, None)
    for code, posix in ERROR_POSIX_NAMES.items()
}

_UNKNOWN_MESSAGE = "unknown Winsock error"


def _check_code(code: object) -> int:
    # bool is an int subclass, but True/False as an error code is always a
    # bug in the caller, so it is refused like any other non-integer.
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"Winsock error code must be an int, not {type(code).__name__}")
    # Normalise int subclasses (IntEnum members, ...) to a plain int.
    return int(code)


def error_name(code: int) -> str:
    """Return the symbolic name of a WSA error code.

    Unknown codes give ``"error N"``.  Raises ``TypeError`` if *code* is not
    an ``int``.
    """
    code = _check_code(code)
    name = ERROR_NAMES.get(code)
    return name if name is not None else f"error {code}"


def _strerror(code: int) -> str:
    return f"{error_name(code)}: {ERROR_MESSAGES.get(code, _UNKNOWN_MESSAGE)}"


class WinsockError(OSError):
    """An SPI call failed with a Windows Sockets error code.

    ``WinsockError(code, funcname=None)``: *code* is the WSA error code (an
    ``int``; codes missing from the table are accepted) and *funcname* the
    name of the SPI function that failed.  Raises ``TypeError`` if *code* is
    not an ``int`` or *funcname* is neither a ``str`` nor ``None``.

    Calling the base class returns the subclass that matches *code*, for
    example ``WinsockError(WSAECONNRESET)`` is a
    :class:`WinsockConnectionResetError` and hence a ``ConnectionResetError``.

    Attributes: ``winerror`` (the WSA code), ``funcname``, ``strerror``
    (``"WSAENOTSOCK: the descriptor is not a socket"``), ``errno`` (the host's
    number for the POSIX twin, or ``None``) and ``args`` (``(winerror,
    strerror)``).
    """

    # Declared for readers and type checkers; assigned in __new__.
    winerror: int
    funcname: str | None

    def __new__(cls, code: int, funcname: str | None = None) -> Self:
        code = _check_code(code)
        if funcname is not None and not isinstance(funcname, str):
            raise TypeError(
                f"funcname must be a str or None, not {type(funcname).__name__}"
            )
        # Only the base class dispatches on the code; a subclass called
        # directly (or a user's own subclass) is built as asked.
        target = _SUBCLASS_FOR_CODE.get(code, cls) if cls is WinsockError else cls
        strerror = _strerror(code)
        # OSError.__new__ would turn OSError(errno, ...) into a subclass chosen
        # by errno, but only when called for OSError itself, never for a
        # subclass like this one; with two arguments it just fills in
        # errno/strerror, which are overwritten below anyway.
        self = cast("Self", super().__new__(target, code, strerror))
        # Assign everything explicitly after construction: on Windows OSError
        # has a native winerror slot and would derive errno from it, and on
        # every host it would store the WSA code as errno.
        self.args = (code, strerror)
        self.errno = _HOST_ERRNO.get(code)
        self.strerror = strerror
        self.winerror = code
        self.funcname = funcname
        return self

    def __init__(self, code: int, funcname: str | None = None) -> None:
        # Everything was set in __new__.  OSError.__init__ is not called: it
        # would only see the same arguments again.
        pass

    def __str__(self) -> str:
        text = f"[WinError {self.winerror}] {self.strerror}"
        if self.funcname:
            text = f"{self.funcname}: {text}"
        return text

    def __repr__(self) -> str:
        # Shaped like the call that builds the error, with the code by name
        # when it has one: WinsockError(WSAENOTSOCK, 'WSPCloseSocket').
        code = self.winerror
        shown = ERROR_NAMES.get(code, str(code))
        if self.funcname is None:
            return f"{type(self).__name__}({shown})"
        return f"{type(self).__name__}({shown}, {self.funcname!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError's own reduce would rebuild from args (winerror, strerror)
        # and lose funcname; rebuild through our constructor instead.  Extra
        # instance attributes (e.g. __notes__) travel as state.
        state = {
            k: v for k, v in self.__dict__.items() if k not in ("winerror", "funcname")
        }
        if state:
            return (type(self), (self.winerror, self.funcname), state)
        return (type(self), (self.winerror, self.funcname))


# One subclass per built-in OSError subclass that the socket module would
# raise for the same condition, so `except ConnectionResetError` catches a
# reset whether it came from a real socket or from a provider.


class WinsockConnectionResetError(WinsockError, ConnectionResetError):
    """WinsockError that is also a ``ConnectionResetError`` (WSAECONNRESET)."""


class WinsockConnectionAbortedError(WinsockError, ConnectionAbortedError):
    """WinsockError that is also a ``ConnectionAbortedError`` (WSAECONNABORTED)."""


class WinsockConnectionRefusedError(WinsockError, ConnectionRefusedError):
    """WinsockError that is also a ``ConnectionRefusedError`` (WSAECONNREFUSED)."""


class WinsockBlockingIOError(WinsockError, BlockingIOError):
    """WinsockError that is also a ``BlockingIOError``.

    Used for WSAEWOULDBLOCK, WSAEINPROGRESS and WSAEALREADY.
    ``characters_written`` is left unset, as for a plain ``BlockingIOError``.
    """


class WinsockTimeoutError(WinsockError, TimeoutError):
    """WinsockError that is also a ``TimeoutError`` (WSAETIMEDOUT)."""


class WinsockBrokenPipeError(WinsockError, BrokenPipeError):
    """WinsockError that is also a ``BrokenPipeError`` (WSAESHUTDOWN)."""


class WinsockInterruptedError(WinsockError, InterruptedError):
    """WinsockError that is also an ``InterruptedError`` (WSAEINTR)."""


class WinsockPermissionError(WinsockError, PermissionError):
    """WinsockError that is also a ``PermissionError`` (WSAEACCES)."""


_SUBCLASS_FOR_CODE: dict[int, type[WinsockError]] = {
    WSAECONNRESET: WinsockConnectionResetError,
    WSAECONNABORTED: WinsockConnectionAbortedError,
    WSAECONNREFUSED: WinsockConnectionRefusedError,
    WSAEWOULDBLOCK: WinsockBlockingIOError,
    WSAEINPROGRESS: WinsockBlockingIOError,
    WSAEALREADY: WinsockBlockingIOError,
    WSAETIMEDOUT: WinsockTimeoutError,
    WSAESHUTDOWN: WinsockBrokenPipeError,
    WSAEINTR: WinsockInterruptedError,
    WSAEACCES: WinsockPermissionError,
}

#: WSA code of a failed operation -> the Win32 code GetQueuedCompletionStatus gives for it
#: (``docs/guide/spi-model.rst, "Process and upcalls"``); codes not listed are reported as
#: they are.
WIN32_ERROR_OF_WSA: dict[int, int] = {
    WSA_OPERATION_ABORTED: ERROR_OPERATION_ABORTED,
    WSAECONNRESET: ERROR_NETNAME_DELETED,
    WSAECONNABORTED: ERROR_CONNECTION_ABORTED,
    WSAECONNREFUSED: ERROR_CONNECTION_REFUSED,
    WSAENETUNREACH: ERROR_NETWORK_UNREACHABLE,
    WSAEHOSTUNREACH: ERROR_HOST_UNREACHABLE,
    WSAETIMEDOUT: ERROR_SEM_TIMEOUT,
    WSAEMSGSIZE: ERROR_MORE_DATA,
}


def win32_error(code: int) -> int:
    """The Win32 error GetQueuedCompletionStatus reports for an operation
    that failed with WSA error `code` (see :data:`WIN32_ERROR_OF_WSA`)."""
    return WIN32_ERROR_OF_WSA.get(code, code)


__all__ = [
    "ERROR_ABANDONED_WAIT_0",
    "ERROR_CONNECTION_ABORTED",
    "ERROR_CONNECTION_REFUSED",
    "ERROR_HOST_UNREACHABLE",
    "ERROR_MORE_DATA",
    "ERROR_NETNAME_DELETED",
    "ERROR_NETWORK_UNREACHABLE",
    "ERROR_OPERATION_ABORTED",
    "ERROR_SEM_TIMEOUT",
    "WIN32_ERROR_OF_WSA",
    "win32_error",
    "ERROR_MESSAGES",
    "ERROR_NAMES",
    "ERROR_NOT_FOUND",
    "ERROR_POSIX_NAMES",
    "INFINITE",
    "NO_ERROR",
    "SOCKET_ERROR",
    "WAIT_IO_COMPLETION",
    "WAIT_TIMEOUT",
    "WSAEACCES",
    "WSAEADDRINUSE",
    "WSAEADDRNOTAVAIL",
    "WSAEAFNOSUPPORT",
    "WSAEALREADY",
    "WSAEBADF",
    "WSAECANCELLED",
    "WSAECONNABORTED",
    "WSAECONNREFUSED",
    "WSAECONNRESET",
    "WSAEDESTADDRREQ",
    "WSAEDISCON",
    "WSAEDQUOT",
    "WSAEFAULT",
    "WSAEHOSTDOWN",
    "WSAEHOSTUNREACH",
    "WSAEINPROGRESS",
    "WSAEINTR",
    "WSAEINVAL",
    "WSAEINVALIDPROCTABLE",
    "WSAEINVALIDPROVIDER",
    "WSAEISCONN",
    "WSAELOOP",
    "WSAEMFILE",
    "WSAEMSGSIZE",
    "WSAENAMETOOLONG",
    "WSAENETDOWN",
    "WSAENETRESET",
    "WSAENETUNREACH",
    "WSAENOBUFS",
    "WSAENOMORE",
    "WSAENOPROTOOPT",
    "WSAENOTCONN",
    "WSAENOTEMPTY",
    "WSAENOTSOCK",
    "WSAEOPNOTSUPP",
    "WSAEPFNOSUPPORT",
    "WSAEPROCLIM",
    "WSAEPROTONOSUPPORT",
    "WSAEPROTOTYPE",
    "WSAEPROVIDERFAILEDINIT",
    "WSAEREFUSED",
    "WSAEREMOTE",
    "WSAESHUTDOWN",
    "WSAESOCKTNOSUPPORT",
    "WSAESTALE",
    "WSAETIMEDOUT",
    "WSAETOOMANYREFS",
    "WSAEUSERS",
    "WSAEWOULDBLOCK",
    "WSAHOST_NOT_FOUND",
    "WSANOTINITIALISED",
    "WSANO_DATA",
    "WSANO_RECOVERY",
    "WSASERVICE_NOT_FOUND",
    "WSASYSCALLFAILURE",
    "WSASYSNOTREADY",
    "WSATRY_AGAIN",
    "WSATYPE_NOT_FOUND",
    "WSAVERNOTSUPPORTED",
    "WSA_E_CANCELLED",
    "WSA_E_NO_MORE",
    "WSA_INFINITE",
    "WSA_INVALID_HANDLE",
    "WSA_INVALID_PARAMETER",
    "WSA_IO_INCOMPLETE",
    "WSA_IO_PENDING",
    "WSA_IPSEC_NAME_POLICY_ERROR",
    "WSA_NOT_ENOUGH_MEMORY",
    "WSA_OPERATION_ABORTED",
    "WSA_QOS_ADMISSION_FAILURE",
    "WSA_QOS_BAD_OBJECT",
    "WSA_QOS_BAD_STYLE",
    "WSA_QOS_EFILTERCOUNT",
    "WSA_QOS_EFILTERSTYLE",
    "WSA_QOS_EFILTERTYPE",
    "WSA_QOS_EFLOWCOUNT",
    "WSA_QOS_EFLOWDESC",
    "WSA_QOS_EFLOWSPEC",
    "WSA_QOS_EOBJLENGTH",
    "WSA_QOS_EPOLICYOBJ",
    "WSA_QOS_EPROVSPECBUF",
    "WSA_QOS_EPSFILTERSPEC",
    "WSA_QOS_EPSFLOWSPEC",
    "WSA_QOS_ESDMODEOBJ",
    "WSA_QOS_ESERVICETYPE",
    "WSA_QOS_ESHAPERATEOBJ",
    "WSA_QOS_EUNKOWNPSOBJ",
    "WSA_QOS_GENERIC_ERROR",
    "WSA_QOS_NO_RECEIVERS",
    "WSA_QOS_NO_SENDERS",
    "WSA_QOS_POLICY_FAILURE",
    "WSA_QOS_RECEIVERS",
    "WSA_QOS_REQUEST_CONFIRMED",
    "WSA_QOS_RESERVED_PETYPE",
    "WSA_QOS_SENDERS",
    "WSA_QOS_TRAFFIC_CTRL_ERROR",
    "WSA_SECURE_HOST_NOT_FOUND",
    "WSA_WAIT_EVENT_0",
    "WSA_WAIT_IO_COMPLETION",
    "WSA_WAIT_TIMEOUT",
    "WinsockBlockingIOError",
    "WinsockBrokenPipeError",
    "WinsockConnectionAbortedError",
    "WinsockConnectionRefusedError",
    "WinsockConnectionResetError",
    "WinsockError",
    "WinsockInterruptedError",
    "WinsockPermissionError",
    "WinsockTimeoutError",
    "error_name",
]
