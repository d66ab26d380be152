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

from ..errors import WSAECONNRESET, WSAENOTCONN, WinsockError

__all__ = ["WspSocket"]


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
        #: the proactor's record of what cancelled reads left (wsp.aio.proactor.Inbox)
        self.inbox: Any = None
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
        return self.handle

    @property
    def closed(self) -> bool:
        return self.handle == -1

    def setblocking(self, flag: bool) -> None:
        # The loop only issues overlapped calls, which never block: the mode
        # is kept for gettimeout() and nothing else.
        self.blocking = bool(flag)

    def gettimeout(self) -> float | None:
        return None if self.blocking else 0.0

    def getsockname(self) -> tuple[str, int]:
        return self.process.getsockname(self._live("getsockname"))

    def getpeername(self) -> tuple[str, int]:
        return self.process.getpeername(self._live("getpeername"))

    def bind(self, addr: tuple[str, int]) -> None:
        self.process.bind(self._live("bind"), (addr[0], addr[1]))

    def connect(self, addr: tuple[str, int]) -> None:
        """``connect`` of the handle: for a datagram socket, its one peer
        (a stream socket connects through the loop's ``sock_connect``)."""
        self.process.connect(self._live("connect"), (addr[0], addr[1]))

    def listen(self, backlog: int = 128) -> None:
        self.process.listen(self._live("listen"), backlog)

    def setsockopt(self, level: int, optname: int, value: Any) -> None:
        self.process.setsockopt(self._live("setsockopt"), level, optname, value)

    def getsockopt(self, level: int, optname: int) -> Any:
        return self.process.getsockopt(self._live("getsockopt"), level, optname)

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
        WSA_OPERATION_ABORTED.  A second close does nothing."""
        handle, self.handle = self.handle, -1
        if handle != -1 and self.process.wsa_started:
            self.process.closesocket(handle)

    def detach(self) -> int:
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
