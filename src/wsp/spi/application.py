"""The application-facing Winsock calls of a Process (``docs/guide/layers.rst``): what an
application calls, routed through the catalog to the provider at the top of
the matching chain, the way ws2_32.dll routes them.

``WSASocket`` picks a catalog entry (the one given, or the first that
matches the family, type and protocol), loads its provider on first use
(``WSPStartup`` with the entry as its protocol info) and calls its
``WSPSocket``.  Every other call finds the provider through the socket
handle's catalog entry id (set by ``WPUCreateSocketHandle``) and calls the
matching WSP entry.  The application never passes a ``ThreadId``: for an
overlapped call with a completion routine the process opens one for the
calling thread with ``WPUOpenCurrentThread`` and closes it when the
operation has completed (just before the application's routine runs; at
once if the call fails; at the last ``WSACleanup`` for requests it
cancelled), so a layer may forward it to work issued later.

Before ``WSAStartup`` (and after the last ``WSACleanup``) every call here
fails with WSANOTINITIALISED.  The last ``WSACleanup`` calls ``WSPCleanup``
on every provider loaded since the first ``WSAStartup``, top layers first.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from ..errors import (WSAEINVAL, WSAEINVALIDPROVIDER, WSAENOTSOCK, WSANOTINITIALISED,
                      WSAVERNOTSUPPORTED, WinsockError)
from .catalog import Catalog, ProtocolInfo
from .handles import HandleSpace, SocketEntry
from .structs import Overlapped, WSPData

__all__ = ["Application", "APPLICATION_CALLS"]

_WINSOCK_2_2 = 0x0202


class Application:
    """The application's side of one process: its catalog, its
    WSAStartup count, the providers it loaded and its Winsock calls.  A
    ``Process`` owns one and offers its calls as its own methods
    (``proc.WSASocket(...)``).  `upcalls` is the process's upcall table,
    `handles` its handle namespace, `registry` a callable giving its current
    core ThreadRegistry."""

    def __init__(self, upcalls: Any, handles: HandleSpace, registry: Callable[[], Any]) -> None:
        self.upcalls = upcalls
        self._handles = handles
        self._registry = registry
        #: the protocol catalog (WSCInstallProvider's database, per process)
        self.catalog = Catalog()
        self._app_lock = threading.Lock()
        self._wsa_startups = 0
        self._loaded: list[Any] = []          # providers WSPStartup'ed for the application
        self._call_threads: set[Any] = set()  # ThreadIds opened for calls still in progress

    # -- startup and cleanup -------------------------------------------------------
    def WSAStartup(self, version: int = _WINSOCK_2_2) -> WSPData:
        """Start using Winsock; reference counted.  Version 2.2 (0x0202) or
        above negotiates 2.2; below: WSAVERNOTSUPPORTED.  Providers start on
        first use (WSASocket), not here."""
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError(f"version must be an int WORD, not {type(version).__name__}")
        if not 0 <= version <= 0xFFFF or ((version & 0xFF), (version >> 8) & 0xFF) < (2, 2):
            raise WinsockError(WSAVERNOTSUPPORTED, "WSAStartup")
        with self._app_lock:
            self._wsa_startups += 1
        return WSPData(_WINSOCK_2_2, _WINSOCK_2_2, "wsp")

    def WSACleanup(self) -> None:
        """End one WSAStartup.  The last one cleans up every loaded provider
        (each WSPCleanup follows the LPWSPCleanup seed: pending operations
        cancelled silently, open sockets reset).  WSANOTINITIALISED without
        a matching WSAStartup."""
        with self._app_lock:
            if self._wsa_startups <= 0:
                raise WinsockError(WSANOTINITIALISED, "WSACleanup")
            if self._wsa_startups > 1:
                self._wsa_startups -= 1
                return
            loaded = self._loaded
        errors = []
        while loaded:
            provider = loaded[-1]                   # the last loaded first: top layers
            try:
                provider.WSPCleanup()
            except WinsockError as exc:
                errors.append(exc)
                if provider.started:
                    # WSAENETDOWN and the like: nothing changed, the provider
                    # is still loaded and Winsock stays started, so the
                    # application can retry.
                    break
                # It cleaned up and then reported a problem: it is unloaded
                # all the same, and the others must still be cleaned up.
            loaded.pop()
        if errors and loaded:
            raise errors[0]
        with self._app_lock:
            self._wsa_startups -= 1
            leftover, self._call_threads = self._call_threads, set()
        # Requests cancelled silently by the cleanup never run their routine:
        # close the ThreadIds opened for them here.
        for tid in list(leftover):
            self._close_call_thread(tid, leftover)
        if errors:
            raise errors[0]

    @property
    def wsa_started(self) -> bool:
        """True between WSAStartup and the last WSACleanup."""
        return self._wsa_startups > 0

    def _require_wsa(self, funcname: str) -> None:
        if self._wsa_startups <= 0:
            raise WinsockError(WSANOTINITIALISED, funcname)

    def _load(self, info: ProtocolInfo) -> Any:
        provider = info.provider
        with self._app_lock:
            if any(p is provider for p in self._loaded):
                return provider
        provider.WSPStartup(_WINSOCK_2_2, info, self.upcalls)
        with self._app_lock:
            self._loaded.append(provider)
        return provider

    def provider_for(self, s: object, funcname: str = "provider_for") -> Any:
        """The provider at the top of socket `s`'s chain: the one every
        call on `s` is routed to (WSANOTINITIALISED first, then
        WSAENOTSOCK).  The route is fixed for the socket's life, so a caller
        that issues many calls on one socket (wsp.aio's stream transport)
        may look it up once and call its WSP entries itself."""
        return self._provider_for(s, funcname)

    def _provider_for(self, s: object, funcname: str) -> Any:
        """The provider that serves socket `s` (WSANOTINITIALISED first,
        then WSAENOTSOCK)."""
        self._require_wsa(funcname)
        entry = self._handles.lookup(s, SocketEntry)
        provider = None if entry is None else self.catalog.route(entry.catalog_entry_id)
        if provider is None:
            raise WinsockError(WSAENOTSOCK, funcname)
        return provider

    # -- sockets ---------------------------------------------------------------------
    def WSASocket(self, af: int, type: int, protocol: int,  # noqa: A002 -- Winsock name
                  protocol_info: ProtocolInfo | None = None, g: int = 0, flags: int = 0) -> int:
        """A new socket from the first catalog entry that matches (or from
        `protocol_info`, a catalog entry).  No entry for the family, type or
        protocol: WSAEAFNOSUPPORT, WSAESOCKTNOSUPPORT, WSAEPROTONOSUPPORT."""
        self._require_wsa("WSASocket")
        for value, what in ((af, "af"), (type, "type"), (protocol, "protocol"), (g, "g"),
                            (flags, "flags")):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{what} must be an int, not {value.__class__.__name__}")
        if protocol_info is None:
            info = self.catalog.find(af, type, protocol)
        else:
            if not isinstance(protocol_info, ProtocolInfo):
                raise TypeError("protocol_info must be a ProtocolInfo from proc.catalog or None")
            info = self.catalog.get(protocol_info.dwCatalogEntryId)
            if info is None or info.layered:
                raise WinsockError(WSAEINVALIDPROVIDER, "WSASocket")
        provider = self._load(info)
        return provider.WSPSocket(af, type, protocol, info, g, flags)

    def closesocket(self, s: int) -> None:
        """closesocket: close socket `s` through its provider's WSPCloseSocket.

        Returns None. SO_LINGER decides whether queued data is still delivered; a non-blocking
        socket lingering on undelivered data raises WSAEWOULDBLOCK and stays open. After it, `s`
        is WSAENOTSOCK. Also WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not
        a socket of this process.
        """
        self._provider_for(s, "closesocket").WSPCloseSocket(s)

    def bind(self, s: int, addr: tuple[str, int]) -> None:
        """bind: give socket `s` the local address `addr`, ``(host, port)``.

        Returns None. The simulated provider raises WSAEADDRINUSE when the address is taken,
        WSAEINVAL when `s` is bound already and WSAEFAULT for a malformed address. Also
        WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not a socket of this
        process.
        """
        self._provider_for(s, "bind").WSPBind(s, addr)

    def listen(self, s: int, backlog: int) -> None:
        """listen: make bound stream socket `s` accept connections.

        Returns None. The simulated provider raises WSAEINVAL when `s` is not bound,
        WSAEOPNOTSUPP for a datagram socket and WSAEISCONN when it is connected. Also
        WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not a socket of this
        process.
        """
        self._provider_for(s, "listen").WSPListen(s, backlog)

    def connect(self, s: int, addr: tuple[str, int]) -> None:
        """connect: connect socket `s` to `addr`, ``(host, port)``.

        Returns None. A non-blocking socket raises WSAEWOULDBLOCK (the connection is under way:
        FD_CONNECT and select's writability report its end); a refused connection raises
        WSAECONNREFUSED. Also WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is
        not a socket of this process.
        """
        self._provider_for(s, "connect").WSPConnect(s, addr)

    def accept(self, s: int, condition: Callable[..., int] | None = None,
               callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        """WSAAccept: ``(new socket, peer address)``."""
        return self._provider_for(s, "accept").WSPAccept(s, condition, callback_data)

    def shutdown(self, s: int, how: int) -> None:
        """shutdown: stop sending, receiving or both on socket `s`.

        `how`: SD_SEND, SD_RECEIVE or SD_BOTH. Returns None. SD_SEND sends a FIN after the
        queued data. An unknown `how` raises WSAEINVAL. Also WSANOTINITIALISED before WSAStartup
        and WSAENOTSOCK when `s` is not a socket of this process.
        """
        self._provider_for(s, "shutdown").WSPShutdown(s, how)

    def getsockname(self, s: int) -> tuple[str, int]:
        """getsockname: the local address of socket `s` as ``(host, port)``.

        The simulated provider raises WSAEINVAL when `s` is not bound. Also WSANOTINITIALISED
        before WSAStartup and WSAENOTSOCK when `s` is not a socket of this process.
        """
        return self._provider_for(s, "getsockname").WSPGetSockName(s)

    def getpeername(self, s: int) -> tuple[str, int]:
        """getpeername: the address of the peer of socket `s` as ``(host, port)``.

        Raises WSAENOTCONN when `s` is not connected. Also WSANOTINITIALISED before WSAStartup
        and WSAENOTSOCK when `s` is not a socket of this process.
        """
        return self._provider_for(s, "getpeername").WSPGetPeerName(s)

    def setsockopt(self, s: int, level: int, optname: int, value: Any) -> None:
        """setsockopt: set option `optname` of `level` on socket `s` to `value`.

        Returns None. SO_LINGER takes a ``Linger``; flags take a bool or an int. An unknown
        option raises WSAENOPROTOOPT, an unknown level WSAEINVAL. Also WSANOTINITIALISED before
        WSAStartup and WSAENOTSOCK when `s` is not a socket of this process.
        """
        self._provider_for(s, "setsockopt").WSPSetSockOpt(s, level, optname, value)

    def getsockopt(self, s: int, level: int, optname: int) -> Any:
        """getsockopt: the value of option `optname` of `level` on socket `s`.

        The value is returned as a Python object (a ``Linger`` for SO_LINGER, an int or bool for
        the others), not through a buffer. An unknown option raises WSAENOPROTOOPT, an unknown
        level WSAEINVAL. Also WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is
        not a socket of this process.
        """
        return self._provider_for(s, "getsockopt").WSPGetSockOpt(s, level, optname)

    def ioctlsocket(self, s: int, cmd: int, arg: Any = None) -> Any:
        """ioctlsocket: run control code `cmd` on socket `s` with argument `arg`.

        Returns the provider's WSPIoctl result: for FIONREAD the number of bytes readable, for
        FIONBIO None. An unknown code raises WSAEINVAL. Also WSANOTINITIALISED before WSAStartup
        and WSAENOTSOCK when `s` is not a socket of this process.
        """
        return self._provider_for(s, "ioctlsocket").WSPIoctl(s, cmd, arg)

    def WSAIoctl(self, s: int, code: int, value: Any = None, overlapped: Overlapped | None = None,
                 completion_routine: Callable[..., Any] | None = None) -> Any:
        """WSAIoctl: run control code `code` on socket `s` with input `value`.

        Returns the provider's WSPIoctl result (the output buffer, as a Python object): for
        SIO_GET_EXTENSION_FUNCTION_POINTER with an extension's ``uuid.UUID``, the function
        (AcceptEx, ConnectEx, ...). With a `completion_routine`, the provider gets a ThreadId of
        the calling thread. An unknown code or GUID raises WSAEINVAL. Also WSANOTINITIALISED
        before WSAStartup and WSAENOTSOCK when `s` is not a socket of this process.
        """
        provider = self._provider_for(s, "WSAIoctl")
        return self._with_thread(completion_routine, lambda routine, tid: provider.WSPIoctl(
            s, code, value, overlapped, routine, tid))

    def WSAEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        """WSAEventSelect: signal `event` when an FD_* event happens on socket `s`.

        `network_events` holds the FD_* bits selected. Returns None. Makes `s` non-blocking; a
        mask of 0 cancels the selection. Also WSANOTINITIALISED before WSAStartup and
        WSAENOTSOCK when `s` is not a socket of this process.
        """
        self._provider_for(s, "WSAEventSelect").WSPEventSelect(s, event, network_events)

    def WSAEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        """WSAEnumNetworkEvents: the network events recorded on socket `s` since the last call.

        Returns ``{FD_flag: error_code}`` (the WSANETWORKEVENTS record as a dict), clears the
        record and resets `event` when it is given. Also WSANOTINITIALISED before WSAStartup and
        WSAENOTSOCK when `s` is not a socket of this process.
        """
        return self._provider_for(s, "WSAEnumNetworkEvents").WSPEnumNetworkEvents(s, event)

    def WSAGetOverlappedResult(self, s: int, overlapped: Overlapped,
                               wait: bool) -> tuple[int, int]:
        """WSAGetOverlappedResult: the result of an overlapped operation on socket `s`.

        `overlapped` is the operation's OVERLAPPED. Returns ``(nbytes, flags)``: the bytes
        transferred (lpcbTransfer) and the operation's result flags (lpdwFlags, e.g.
        MSG_PARTIAL). Still pending with `wait` false: WSA_IO_INCOMPLETE; with `wait` true the
        call blocks until the operation completes. A failed operation raises its own error
        (WSA_OPERATION_ABORTED when it was cancelled or its socket closed). Also
        WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not a socket of this
        process.
        """
        return self._provider_for(s, "WSAGetOverlappedResult").WSPGetOverlappedResult(
            s, overlapped, wait)

    def select(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
               timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """Routed to the provider of the first socket in the sets (as
        ws2_32 does); every socket must belong to it (WSAENOTSOCK)."""
        self._require_wsa("select")
        handles = [*read, *write, *except_]
        if not handles:
            raise WinsockError(WSAEINVAL, "select")
        provider = self._provider_for(handles[0], "select")
        for h in handles[1:]:
            if self._provider_for(h, "select") is not provider:
                raise WinsockError(WSAENOTSOCK, "select")
        return provider.WSPSelect(read, write, except_, timeout)

    # -- data ------------------------------------------------------------------------
    def _with_thread(self, routine: Any, call: Callable[[Any, Any], Any]) -> Any:
        """Run `call(routine, thread_id)`.  With a completion routine, the
        provider gets a ThreadId of the calling thread (WPUOpenCurrentThread)
        and the routine wrapped so that the ThreadId is closed when the
        operation has completed, just before the application's routine
        runs; if the call fails it is closed at once, and the last
        WSACleanup closes those of requests it cancelled."""
        if routine is None:
            return call(None, None)
        tid = self.upcalls.WPUOpenCurrentThread()
        pending = self._call_threads
        with self._app_lock:
            pending.add(tid)

        def completed(error: int, nbytes: int, overlapped: Overlapped, flags: int) -> None:
            self._close_call_thread(tid, pending)
            routine(error, nbytes, overlapped, flags)

        try:
            return call(completed, tid)
        except BaseException:
            self._close_call_thread(tid, pending)
            raise

    def _close_call_thread(self, tid: Any, pending: set[Any]) -> None:
        with self._app_lock:
            if tid not in pending:
                return                     # closed already (by WSACleanup, or once run)
            pending.discard(tid)
        try:
            self._registry().close(tid.ThreadHandle)
        except WinsockError:
            pass                           # gone with a terminate()'s fresh registry

    def WSASend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None,
                completion_routine: Callable[..., Any] | None = None) -> tuple[int, int]:
        """WSASend: send the bytes of `buffers` on connected socket `s`.

        `buffers` are bytes-like objects, sent in order. Returns ``(rc, nbytes)``:
        ``(0, nbytes)`` when the send finished at once, ``(WSA_IO_PENDING, 0)`` for an
        overlapped send still in progress (its result comes from WSAGetOverlappedResult, the
        overlapped's event, a completion port or `completion_routine`, called as
        ``routine(error, nbytes, overlapped, flags)``). A non-blocking send that fits nothing
        raises WSAEWOULDBLOCK; an unconnected socket WSAENOTCONN; a reset connection
        WSAECONNRESET. Also WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not
        a socket of this process.
        """
        provider = self._provider_for(s, "WSASend")
        if completion_routine is None:            # the common case: no thread to open
            return provider.WSPSend(s, buffers, flags, overlapped, None, None)
        return self._with_thread(completion_routine, lambda routine, tid: provider.WSPSend(
            s, buffers, flags, overlapped, routine, tid))

    def WSASendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None,
                  completion_routine: Callable[..., Any] | None = None) -> tuple[int, int]:
        """WSASendTo: send `buffers` as one datagram to `to`, ``(host, port)``.

        On a connected stream socket `to` is ignored. Returns ``(rc, nbytes)`` as WSASend does:
        ``(0, nbytes)`` done, or ``(WSA_IO_PENDING, 0)`` for an overlapped send in progress.
        Also WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not a socket of
        this process.
        """
        provider = self._provider_for(s, "WSASendTo")
        return self._with_thread(completion_routine, lambda routine, tid: provider.WSPSendTo(
            s, buffers, flags, to, overlapped, routine, tid))

    def WSARecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None,
                completion_routine: Callable[..., Any] | None = None) -> tuple[int, int, int]:
        """WSARecv: receive from socket `s` into `buffers`.

        `buffers` are writable buffers such as ``bytearray``, filled in order. Returns
        ``(rc, nbytes, flags)``: ``(0, nbytes, flags)`` when data was received at once
        (``nbytes`` 0: the peer closed gracefully), ``(WSA_IO_PENDING, 0, 0)`` for an overlapped
        receive still pending (see WSASend for how its result arrives). A non-blocking receive
        with nothing to read raises WSAEWOULDBLOCK; a reset connection WSAECONNRESET. Also
        WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not a socket of this
        process.
        """
        provider = self._provider_for(s, "WSARecv")
        if completion_routine is None:            # the common case: no thread to open
            return provider.WSPRecv(s, buffers, flags, overlapped, None, None)
        return self._with_thread(completion_routine, lambda routine, tid: provider.WSPRecv(
            s, buffers, flags, overlapped, routine, tid))

    def WSARecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None,
                    completion_routine: Callable[..., Any] | None = None
                    ) -> tuple[int, int, int, Any]:
        """WSARecvFrom: receive one datagram into `buffers` from socket `s`.

        Returns ``(rc, nbytes, flags, from_addr)``, ``from_addr`` the sender's ``(host, port)``;
        ``rc`` is 0 or WSA_IO_PENDING as for WSARecv. A datagram larger than the buffers is
        truncated and raises WSAEMSGSIZE (an overlapped receive completes with WSAEMSGSIZE and
        MSG_PARTIAL). Also WSANOTINITIALISED before WSAStartup and WSAENOTSOCK when `s` is not a
        socket of this process.
        """
        provider = self._provider_for(s, "WSARecvFrom")
        return self._with_thread(completion_routine, lambda routine, tid: provider.WSPRecvFrom(
            s, buffers, flags, overlapped, routine, tid))

    # -- teardown (Process.terminate) ---------------------------------------------------
    def forget(self) -> None:
        """Forget the WSAStartups and the loaded providers (the process
        terminated: no WSPCleanup is owed any more)."""
        with self._app_lock:
            self._wsa_startups = 0
            self._loaded = []



#: The calls a Process offers on behalf of its Application, by name.
APPLICATION_CALLS = (
    "WSAStartup", "WSACleanup", "WSASocket", "closesocket", "bind", "listen", "connect",
    "accept", "shutdown", "getsockname", "getpeername", "setsockopt", "getsockopt",
    "ioctlsocket", "WSAIoctl", "WSAEventSelect", "WSAEnumNetworkEvents",
    "WSAGetOverlappedResult", "select", "WSASend", "WSASendTo", "WSARecv", "WSARecvFrom",
)
