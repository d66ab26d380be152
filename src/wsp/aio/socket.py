"""WspSocket: a wsp socket handle dressed as a ``socket.socket``.

asyncio's proactor transports and the loop's ``sock_*`` methods handle a
socket object: they ask it for ``fileno()``, ``family``, ``type``,
``getsockname()``, ``getpeername()``, ``setblocking()``, ``shutdown()`` and
``close()``.  A WspSocket answers those for one handle of the loop's own
``wsp.Process``; the I/O itself never goes through it (the proactor issues
overlapped calls on :attr:`WspSocket.handle`).  Every WspSocket is associated
with the loop's completion port when it is made, with its handle as the key.
"""
from __future__ import annotations

import socket as _host_socket
from typing import Any

from .. import constants as _wsp
from ..errors import WSAECONNRESET, WSAEINVAL, WSAENOPROTOOPT, WSAENOTCONN, WinsockError

__all__ = ["WspSocket"]

#: The SOL_SOCKET option names that differ between the host's ``socket``
#: module and Windows (Linux numbers them its own way; on Windows and the
#: BSDs, macOS included, they are the same numbers and this maps each to
#: itself): the host's value -> Windows'.
_HOST_SOCKET_OPTIONS = {getattr(_host_socket, name): getattr(_wsp, name)
                        for name in ("SO_DEBUG", "SO_ACCEPTCONN", "SO_REUSEADDR", "SO_KEEPALIVE",
                                     "SO_DONTROUTE", "SO_BROADCAST", "SO_LINGER", "SO_OOBINLINE",
                                     "SO_SNDBUF", "SO_RCVBUF", "SO_SNDLOWAT", "SO_RCVLOWAT",
                                     "SO_SNDTIMEO", "SO_RCVTIMEO", "SO_ERROR", "SO_TYPE")
                        if hasattr(_host_socket, name)}


def _windows_option(level: Any, optname: Any) -> tuple[Any, Any]:
    """(level, optname) in Windows' numbers: the host's SOL_SOCKET and its
    option names (as a library passes them, from the ``socket`` module)
    become Windows'; any other pair is already Windows' (wsp.constants) and
    is left as it is."""
    if level == _host_socket.SOL_SOCKET and level != _wsp.SOL_SOCKET:
        return _wsp.SOL_SOCKET, _HOST_SOCKET_OPTIONS.get(optname, optname)
    return level, optname


def _tuning_only(level: Any, optname: Any) -> bool:
    """Whether an option (in Windows' numbers) only tunes a real TCP stack
    -- keep-alive probes, the TCP options such as TCP_NODELAY -- and so has
    nothing to change on the simulated network."""
    return (level == _wsp.SOL_SOCKET and optname == _wsp.SO_KEEPALIVE) or \
        level == _wsp.IPPROTO_TCP


class WspSocket:
    """One wsp socket of `process` (handle `handle`), associated with the
    completion port `port`.  Make one with :meth:`create` (or the loop's
    ``wsp_socket``); ``fileno()`` is the wsp handle, -1 once closed."""

    def __init__(self, process: Any, port: int, handle: int, family: int, type: int,  # noqa: A002
                 proto: int = 0) -> None:
        self.process = process
        self.port = port
        self.handle = handle
        self.family = _host_socket.AddressFamily(family)
        self.type = _host_socket.SocketKind(type)
        # 0, not IPPROTO_TCP: asyncio then leaves TCP_NODELAY alone, an option
        # the simulated provider has no use for.
        self.proto = proto
        self.blocking = True
        #: bound through :meth:`bind` (or accepted, or connected by the
        #: proactor, which binds first): ConnectEx needs a bound socket, and
        #: knowing it here spares a failing getsockname in every trace
        self.bound = False
        #: the proactor's record of what cancelled reads left (wsp.aio.proactor.Inbox)
        self.inbox: Any = None
        #: values of the tuning options the provider has no use for
        #: (see :meth:`setsockopt`), by (level, optname) in Windows' numbers
        self.tuning: dict[tuple[int, int], Any] = {}
        #: the host socket.socket this one stands in for (set when the loop
        #: adopts it): kept while this one is open, and closed with it
        self.host: Any = None
        process.CreateIoCompletionPort(handle, port, handle)

    @classmethod
    def create(cls, process: Any, port: int, family: int = _host_socket.AF_INET,
               type: int = _host_socket.SOCK_STREAM, proto: int = 0) -> WspSocket:  # noqa: A002
        """A new wsp socket (``WSASocket``) on `process`, associated with `port`."""
        handle = process.WSASocket(int(family), int(type), int(proto))
        try:
            return cls(process, port, handle, family, type, proto)
        except BaseException:
            process.closesocket(handle)
            raise

    # -- what asyncio asks of a socket ------------------------------------------------
    def fileno(self) -> int:
        """The wsp socket handle; -1 once closed or detached.

        asyncio keys its bookkeeping on it.
        """
        return self.handle

    @property
    def closed(self) -> bool:
        """True once the socket was closed or detached."""
        return self.handle == -1

    def setblocking(self, flag: bool) -> None:
        """Keep the blocking mode for :meth:`gettimeout`; the handle itself is not changed.

        The loop only issues overlapped calls, which never block.
        """
        # The loop only issues overlapped calls, which never block: the mode
        # is kept for gettimeout() and nothing else.
        self.blocking = bool(flag)

    def gettimeout(self) -> float | None:
        """None in blocking mode, 0.0 in non-blocking mode, as ``socket.socket`` reports."""
        return None if self.blocking else 0.0

    def getsockname(self) -> tuple[str, int]:
        """The local ``(host, port)`` (getsockname of the handle).

        OSError(EBADF) once closed; WinsockError WSAEINVAL when not bound.
        """
        return self.process.getsockname(self._live("getsockname"))

    def getpeername(self) -> tuple[str, int]:
        """The peer's ``(host, port)`` (getpeername of the handle).

        OSError(EBADF) once closed; WinsockError WSAENOTCONN when not connected.
        """
        return self.process.getpeername(self._live("getpeername"))

    def bind(self, addr: tuple[str, int]) -> None:
        """``bind`` of the handle; :attr:`bound` says it was bound here."""
        self.process.bind(self._live("bind"), (addr[0], addr[1]))
        self.bound = True

    def connect(self, addr: tuple[str, int]) -> None:
        """``connect`` of the handle: for a datagram socket, its one peer
        (a stream socket connects through the loop's ``sock_connect``)."""
        self.process.connect(self._live("connect"), (addr[0], addr[1]))

    def listen(self, backlog: int = 128) -> None:
        """``listen`` of the handle with `backlog`.

        OSError(EBADF) once closed; WinsockError WSAEINVAL when not bound.
        """
        self.process.listen(self._live("listen"), backlog)

    def setsockopt(self, level: int, optname: int, value: Any) -> None:
        """``setsockopt`` of the handle.  The level and name may be the
        host's (``socket.SOL_SOCKET``, ``socket.SO_KEEPALIVE``, as libraries
        written for ``socket.socket`` pass them) or Windows' (wsp.constants).
        An option that only tunes a real TCP stack (SO_KEEPALIVE, the
        IPPROTO_TCP options such as TCP_NODELAY), which the provider refuses
        (WSAENOPROTOOPT, WSAEINVAL), is kept here instead: it has nothing to
        change on the simulated network, and a library that sets it (aiohttp
        turns keep-alive on for every connection it serves) goes on."""
        s = self._live("setsockopt")
        level, optname = _windows_option(level, optname)
        try:
            self.process.setsockopt(s, level, optname, value)
        except WinsockError as exc:
            if exc.winerror not in (WSAENOPROTOOPT, WSAEINVAL) or not _tuning_only(level, optname):
                raise
            self.tuning[(level, optname)] = value

    def getsockopt(self, level: int, optname: int, buflen: Any = None) -> Any:
        """``getsockopt`` of the handle (host or Windows numbers, as for
        :meth:`setsockopt`); a tuning option the provider refuses answers
        what :meth:`setsockopt` kept (0 if it was never set).  `buflen` is
        accepted for ``socket.socket``'s signature and not used: the value
        is the provider's Python value."""
        s = self._live("getsockopt")
        level, optname = _windows_option(level, optname)
        try:
            return self.process.getsockopt(s, level, optname)
        except WinsockError as exc:
            if exc.winerror not in (WSAENOPROTOOPT, WSAEINVAL) or not _tuning_only(level, optname):
                raise
            return self.tuning.get((level, optname), 0)

    def shutdown(self, how: int) -> None:
        """``shutdown`` of the handle (SHUT_* and SD_* are the same numbers).
        A connection that is already gone (reset, or never connected) has
        nothing left to shut down: that is not an error here, as asyncio
        shuts a transport's socket down on its way to closing it."""
        try:
            self.process.shutdown(self._live("shutdown"), how)
        except WinsockError as exc:
            if exc.winerror not in (WSAENOTCONN, WSAECONNRESET):
                raise

    def close(self) -> None:
        """``closesocket``; pending operations complete with
        WSA_OPERATION_ABORTED.  A second close does nothing.  A stand-in
        for a host socket (the loop adopted it) closes the host socket too:
        the two are one socket, and a transport made over a host socket
        owns it and closes it, as asyncio's transports do."""
        handle, self.handle = self.handle, -1
        host, self.host = self.host, None
        try:
            if handle != -1 and self.process.wsa_started:
                self.process.closesocket(handle)
        finally:
            if host is not None:
                host.close()

    def detach(self) -> int:
        """Give up the handle without closing it: returns the handle; fileno() is -1 after."""
        handle, self.handle = self.handle, -1
        return handle

    def _live(self, funcname: str) -> int:
        if self.handle == -1:
            raise OSError(9, f"{funcname} on a closed WspSocket")     # EBADF, as socket does
        return self.handle

    def __enter__(self) -> WspSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<wsp.aio.WspSocket handle={self.handle} family={self.family.name} "
                f"type={self.type.name}>")
