"""ServiceProvider: the base class of every wsp service provider
(``docs/guide/spi-model.rst, "Service providers"``).

It carries WSPStartup (reference counted, version negotiation), the
bookkeeping half of WSPCleanup, a generic WSPGetOverlappedResult, and every
name of the WSPPROC_TABLE, so that a concrete provider only fills in
behaviour.  An entry a provider does not override raises
``WinsockError(WSAEOPNOTSUPP)``.

Subclasses hook in with:

* ``on_startup(protocol_info)`` -- the first WSPStartup with a process;
* ``on_cleanup()`` -- the final WSPCleanup, after the engine has cancelled
  this provider's pending overlapped operations silently (seed:
  LPWSPCleanup);
* ``on_terminated(process)`` -- the process died without WSPCleanup.
"""
from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import (WSA_IO_INCOMPLETE, WSAEINVAL, WSAENOTSOCK, WSAEOPNOTSUPP,
                      WSANOTINITIALISED, WSAVERNOTSUPPORTED, WinsockError)
from .handles import SocketEntry
from .structs import Overlapped, WSPData
from .upcalls import UpcallTable

if TYPE_CHECKING:                 # only for annotations: process.py sits above this module
    from .process import Process

__all__ = ["ServiceProvider", "WSPPROC_TABLE", "WINSOCK_2_2"]

WINSOCK_2_2 = 0x0202

# The 30 entries of the WSPPROC_TABLE, in the structure's order.
WSPPROC_TABLE = (
    "WSPAccept", "WSPAddressToString", "WSPAsyncSelect", "WSPBind", "WSPCancelBlockingCall",
    "WSPCleanup", "WSPCloseSocket", "WSPConnect", "WSPDuplicateSocket", "WSPEnumNetworkEvents",
    "WSPEventSelect", "WSPGetOverlappedResult", "WSPGetPeerName", "WSPGetSockName",
    "WSPGetSockOpt", "WSPGetQOSByName", "WSPIoctl", "WSPJoinLeaf", "WSPListen", "WSPRecv",
    "WSPRecvDisconnect", "WSPRecvFrom", "WSPSelect", "WSPSend", "WSPSendDisconnect",
    "WSPSendTo", "WSPSetSockOpt", "WSPShutdown", "WSPSocket", "WSPStringToAddress",
)


def _version_tuple(version: int) -> tuple[int, int]:
    """A Winsock version WORD as (major, minor): the low byte is the major."""
    return (version & 0xFF, (version >> 8) & 0xFF)


class ServiceProvider:
    """Base class of service providers; an instance serves one Process at a
    time."""

    #: WSPDATA.szDescription
    description = "wsp service provider"
    #: WSAPROTOCOL_INFO.dwCatalogEntryId of the handles it creates; the
    #: catalog sets it on install
    catalog_entry_id = 0
    #: (address family, socket type, protocol) triples a base provider serves
    protocols: tuple[tuple[int, int, int], ...] = ()

    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self._startup_count = 0
        self._process: Process | None = None
        self._upcalls: UpcallTable | None = None
        self.protocol_info: Any = None
        cls = type(self)
        #: Identifies the provider (WSAPROTOCOL_INFO.ProviderId); stable per class.
        self.provider_id = uuid.uuid5(uuid.NAMESPACE_URL, f"wsp:{cls.__module__}.{cls.__qualname__}")

    # -- state -----------------------------------------------------------------
    @property
    def process(self) -> Process:
        """The process this provider serves (WSANOTINITIALISED before WSPStartup)."""
        if self._process is None:
            raise WinsockError(WSANOTINITIALISED)
        return self._process

    @property
    def upcalls(self) -> UpcallTable:
        """The upcall table WSPStartup was given (the process's WPU* entries).

        WSANOTINITIALISED before WSPStartup.
        """
        if self._upcalls is None:
            raise WinsockError(WSANOTINITIALISED)
        return self._upcalls

    @property
    def started(self) -> bool:
        """True while this provider has an outstanding WSPStartup."""
        return self._startup_count > 0

    def _context_of(self, s: object, funcname: str) -> Any:
        """The context WPUCreateSocketHandle stored for socket handle `s`, or
        None if `s` is not a socket handle of this process (the provider
        then checks the context is one of its own: WSAENOTSOCK otherwise).
        WSANOTINITIALISED unless started."""
        process = self._process
        if self._startup_count <= 0 or process is None:
            raise WinsockError(WSANOTINITIALISED, funcname)
        # process.find_socket, inlined: every WSP entry of every provider and
        # layer starts here
        try:
            entry = process.handles.table.query(s)
        except WinsockError:
            return None
        return entry.context if type(entry) is SocketEntry else None

    def _require_started(self, funcname: str) -> Process:
        process = self._process
        if self._startup_count <= 0 or process is None:
            raise WinsockError(WSANOTINITIALISED, funcname)
        return process

    # -- WSPStartup / WSPCleanup ----------------------------------------------------
    def WSPStartup(self, version: int, protocol_info: Any, upcalls: UpcallTable) -> WSPData:
        """Start using the provider.  Version 2.2 (0x0202) or above
        negotiates 2.2; below it raises WSAVERNOTSUPPORTED.  Reference
        counted: each successful call needs one WSPCleanup.  A provider
        serves one process at a time: upcalls of another process while
        started raise WSAEINVAL."""
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError(f"version must be an int WORD, not {type(version).__name__}")
        if not isinstance(upcalls, UpcallTable):
            raise TypeError(f"upcalls must be an UpcallTable, not {type(upcalls).__name__}")
        if not 0 <= version <= 0xFFFF or _version_tuple(version) < (2, 2):
            raise WinsockError(WSAVERNOTSUPPORTED, "WSPStartup")
        with self._state_lock:
            if self._startup_count and upcalls.process is not self._process:
                raise WinsockError(WSAEINVAL, "WSPStartup")
            first = self._startup_count == 0
            if first:
                self._process = upcalls.process
                self._upcalls = upcalls
                self.protocol_info = protocol_info
            self._startup_count += 1
        upcalls.process.provider_started(self)
        if first:
            try:
                self.on_startup(protocol_info)
            except BaseException:
                with self._state_lock:
                    self._startup_count -= 1
                upcalls.process.provider_cleaned(self, final=True)
                raise
        return WSPData(WINSOCK_2_2, WINSOCK_2_2, self.description)

    def WSPCleanup(self) -> None:
        """End one WSPStartup.  Only the final call cleans up (seed:
        LPWSPCleanup): this provider's pending overlapped operations fail
        with WSA_OPERATION_ABORTED without any notification, then the
        provider's ``on_cleanup`` releases the rest.  WSANOTINITIALISED
        without a matching WSPStartup."""
        with self._state_lock:
            if self._startup_count <= 0 or self._process is None:
                raise WinsockError(WSANOTINITIALISED, "WSPCleanup")
            self._startup_count -= 1
            final = self._startup_count == 0
            process = self._process
        try:
            if final:
                for op in process.operations(provider=self):
                    process.cancel_overlapped(op, notify=False)
                process.discard_stranded_routines(provider=self)
                self.on_cleanup()
        finally:
            # Whatever the hook did, the count is down: the process must not
            # stay initialised with this provider counted (and a provider
            # that believes it is not started could never be cleaned again).
            process.provider_cleaned(self, final)

    def on_startup(self, protocol_info: Any) -> None:
        """Hook: the first WSPStartup with a process."""

    def on_cleanup(self) -> None:
        """Hook: the final WSPCleanup (after silent cancellation)."""

    def on_terminated(self, process: Process) -> None:
        """Hook: `process` ended without WSPCleanup; release everything."""
        with self._state_lock:
            self._startup_count = 0

    # -- generic entries ----------------------------------------------------------------
    def WSPGetOverlappedResult(self, s: int, overlapped: Overlapped,
                               wait: bool) -> tuple[int, int]:
        """``(nbytes, flags)`` of the operation on `overlapped`.  Pending and
        `wait` false: WSA_IO_INCOMPLETE; `wait` true: blocks (without the
        GIL) until it completes.  A failed operation raises its error;
        `s` not a socket of this process: WSAENOTSOCK."""
        funcname = "WSPGetOverlappedResult"
        process = self._require_started(funcname)
        if process.find_socket(s) is None:
            raise WinsockError(WSAENOTSOCK, funcname)
        if not isinstance(overlapped, Overlapped):
            raise TypeError(f"overlapped must be an Overlapped, not {type(overlapped).__name__}")
        if overlapped.pending:
            if not wait:
                raise WinsockError(WSA_IO_INCOMPLETE, funcname)
            process.wait_overlapped(overlapped)
        if overlapped.Internal:
            raise WinsockError(overlapped.Internal, funcname)
        return (overlapped.InternalHigh, overlapped.result_flags)

    def __repr__(self) -> str:
        state = f"started x{self._startup_count}" if self._startup_count else "not started"
        return f"<{type(self).__name__} {state}>"


def _unsupported(name: str):
    def entry(self: ServiceProvider, *args: Any, **kwargs: Any) -> Any:
        raise WinsockError(WSAEOPNOTSUPP, name)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (f"{name}: not supported by this provider (WSAEOPNOTSUPP). "
                     "Providers override it to implement it.")
    return entry


for _name in WSPPROC_TABLE:
    if not hasattr(ServiceProvider, _name):
        setattr(ServiceProvider, _name, _unsupported(_name))
del _name
