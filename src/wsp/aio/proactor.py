"""WspProactor: the proactor of a wsp event loop, over one completion port.

It offers what asyncio's ``BaseProactorEventLoop`` and its transports ask of
a proactor (the interface of ``asyncio.windows_events.IocpProactor``):
``recv``, ``recv_into``, ``send``, ``sendto``, ``recvfrom``, ``accept``,
``connect``, ``select(timeout)`` and ``close``.  Each I/O call starts one
overlapped wsp operation (``WSARecv``, ``WSASend``, AcceptEx, ConnectEx, ...)
on a :class:`~wsp.aio.socket.WspSocket` and returns a future that the
operation's completion packet resolves: ``select`` waits for packets with
``GetQueuedCompletionStatusEx`` and finishes the future of each.

A completion packet comes for every started operation, also one that completed at once
(``docs/guide/spi-model.rst, "Overlapped operations"``), so a future is only ever finished from a
packet; an operation that fails before it starts raises and its future fails at once.  Cancelling a
future cancels its operation (``Process.cancel_overlapped``, which still posts the aborted packet)
-- except a stream read's: the providers have no CancelIoEx, and a receive cancelled only in the
engine would stay posted in the provider and swallow the next bytes.  So a cancelled read leaves
its receive posted, parked in the socket's :class:`Inbox`, and the next read on the socket takes it
over (or what it brought in meanwhile): no byte is lost.  Reads therefore receive into buffers of
the proactor's own, copied out when they complete.

Errors follow asyncio on Windows: a receive or send that fails with a reset
or is aborted under it raises ``ConnectionResetError``, a refused connect
``ConnectionRefusedError`` (the WinsockError of the code otherwise, which is
the matching built-in where there is one).
"""
from __future__ import annotations

import asyncio
import math
import socket as _host_socket
import weakref
from typing import Any, Callable

from ..constants import (AF_INET, SIO_GET_EXTENSION_FUNCTION_POINTER, SOCK_STREAM, SOL_SOCKET,
                         SO_UPDATE_ACCEPT_CONTEXT, SO_UPDATE_CONNECT_CONTEXT, TF_REUSE_SOCKET,
                         WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX)
from ..errors import INFINITE, WSA_OPERATION_ABORTED, WSAECONNRESET, WSAEINVAL, WinsockError
from ..spi import senders
from ..spi.structs import Overlapped
from .socket import WspSocket

__all__ = ["WspProactor", "WAKE_KEY"]

#: The completion key of the packets that only wake the loop (call_soon_threadsafe).
#: Socket keys are their handles, which are never 0.
WAKE_KEY = 0

#: Packets taken per wait.
_BATCH = 64

#: What the address areas of AcceptEx need (sizeof(sockaddr_in) + 16).
_ADDRESS_AREA = 32

#: The stream receive and send failures asyncio on Windows turns into
#: ConnectionResetError (ERROR_NETNAME_DELETED, ERROR_OPERATION_ABORTED).
_RESET_CODES = (WSAECONNRESET, WSA_OPERATION_ABORTED)

Finish = Callable[[int, int, Overlapped], Any]


class OperationFuture(asyncio.Future):
    """The future of one overlapped operation: cancelling it runs
    `on_cancel` first (which cancels or parks the operation)."""

    def __init__(self, on_cancel: Callable[[], None] | None, *,
                 loop: asyncio.AbstractEventLoop | None) -> None:
        super().__init__(loop=loop)
        self.on_cancel = on_cancel

    def cancel(self, msg: Any = None) -> bool:
        if not self.done() and self.on_cancel is not None:
            on_cancel, self.on_cancel = self.on_cancel, None
            on_cancel()
        return super().cancel(msg)


class Inbox:
    """What a socket's cancelled receives brought in and nobody has read
    yet, and the receive still posted for them (see WspProactor.recv)."""

    __slots__ = ("data", "eof", "error", "parked")

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.error: OSError | None = None
        self.parked: Receive | None = None

    def take(self, size: int) -> bytes | None:
        """Up to `size` bytes already here, b"" at the end of the stream;
        None when nothing is (and the next read must wait)."""
        if self.data:
            chunk = bytes(self.data[:size])
            del self.data[:size]
            return chunk
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.eof:
            return b""
        return None


class Receive:
    """One posted WSARecv into a buffer of the proactor's own, and the
    read waiting for it: `waiter` (a future), `size` (the most it takes)
    and `deliver` (the waiter's result from the bytes).  A read that is
    cancelled leaves the receive posted (it parks in the socket's inbox) and
    what it brings in goes to the inbox, for the next read."""

    __slots__ = ("inbox", "buffer", "waiter", "size", "deliver")

    def __init__(self, inbox: Inbox, buffer: bytearray) -> None:
        self.inbox = inbox
        self.buffer = buffer
        self.waiter: asyncio.Future | None = None
        self.size = 0
        self.deliver: Callable[[bytes], Any] = bytes

    def wait(self, waiter: OperationFuture, size: int, deliver: Callable[[bytes], Any]) -> None:
        self.waiter, self.size, self.deliver = waiter, size, deliver
        waiter.on_cancel = self.park

    def park(self) -> None:
        self.waiter = None
        self.inbox.parked = self

    def complete(self, rc: int, nbytes: int) -> asyncio.Future | None:
        inbox = self.inbox
        if inbox.parked is self:
            inbox.parked = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and waiter.done():
            waiter = None
        if rc:
            try:
                _check_stream(rc)
            except OSError as exc:
                if waiter is None:
                    inbox.error = exc
                    return None
                waiter.set_exception(exc)
                return waiter
        data = bytes(self.buffer[:nbytes])
        if waiter is None:
            inbox.data += data
            inbox.eof = inbox.eof or nbytes == 0
            return None
        if nbytes == 0:
            inbox.eof = True
        elif nbytes > self.size:                 # a smaller read took over a parked receive
            inbox.data += data[self.size:]
            data = data[:self.size]
        waiter.set_result(self.deliver(data))
        return waiter


class WspProactor:
    """Overlapped I/O of `process` on one completion port of its own."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.port: int | None = process.CreateIoCompletionPort(None)
        self.loop: asyncio.AbstractEventLoop | None = None
        #: host socket.socket objects handed to the loop -> the WspSocket
        #: that stands in for each (``docs/guide/asyncio.rst``); weak, so the entry goes with
        #: the host socket
        self.adopted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        #: the longest single wait in select(), in seconds (None: as asked).
        #: A loop on the wall clock sets one so that the main thread gets back
        #: to Python now and then, where a Ctrl-C's handler can run.
        self.wait_cap: float | None = None
        # id(overlapped) -> (overlapped, complete(rc, nbytes) -> finished future or None)
        self.cache: dict[int, tuple[Overlapped, Callable[[int, int], Any]]] = {}
        # the same operations with their sockets and what gives the future
        # waiting for them (for cancelling and closing)
        self.inflight: dict[int, tuple[Overlapped, tuple[int, ...],
                                       Callable[[], asyncio.Future | None]]] = {}
        # The loop's stream transports (wsp.aio.transport) take their packets without a future:
        # each keeps one Overlapped per direction whose ``object`` (free for the caller,
        # ``docs/guide/spi-model.rst, "Overlapped operations"``) is its callback
        # ``callback(rc, nbytes)``; select() queues ``(callback, rc, nbytes)`` in :attr:`completed`
        # for such a packet.  (The proactor's own overlapped objects leave ``object`` None.)
        #: the transports' completions select() took, for the loop to run
        #: right after the wait (its _process_events): not inside select,
        #: so a protocol callback never runs in the middle of a batch
        self.completed: list[tuple[Callable[[int, int], None], int, int]] = []

    def set_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember `loop`, the event loop whose futures the proactor makes."""
        self.loop = loop

    def __repr__(self) -> str:
        return f"<WspProactor port={self.port} pending={len(self.cache)}>"

    # -- sockets ---------------------------------------------------------------------
    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM,  # noqa: A002 -- socket's name
               proto: int = 0) -> WspSocket:
        """A new WspSocket on the process, associated with the port."""
        if self.port is None:
            raise RuntimeError("the proactor is closed")
        return WspSocket.create(self.process, self.port, family, type, proto)

    def adopt(self, sock: Any) -> WspSocket:
        """The WspSocket for `sock`: `sock` itself if it is one; for a host
        ``socket.socket`` (which some libraries make themselves before
        handing it to the loop), the wsp socket of the same family and type
        that stands in for it, made the first time it is handed over.  The
        host socket itself is never used: it connects nowhere and sends
        nothing.  TypeError for anything else; OSError(EBADF) for a host
        socket that is already closed, and for a family other than AF_INET
        (the simulated network's only one) the WinsockError WSASocket gives."""
        if isinstance(sock, WspSocket):
            return sock
        if not isinstance(sock, _host_socket.socket):
            raise TypeError(f"a wsp.aio loop works on WspSockets (loop.wsp_socket()) or "
                            f"socket.socket objects it adopts, not {type(sock).__name__}")
        stand_in = self.adopted.get(sock)
        if stand_in is None:
            if sock.fileno() == -1:
                raise OSError(9, "a closed socket.socket cannot be adopted")   # EBADF
            self._close_abandoned()
            stand_in = self.socket(sock.family, sock.type, 0)
            stand_in.setblocking(sock.getblocking())
            # The stand-in keeps its host socket while it is open and closes
            # it with itself: a library may drop the host socket once a
            # transport has it (aiohappyeyeballs' does), and the transport
            # owns the socket then, as asyncio's do.
            stand_in.host = sock
            self.adopted[sock] = stand_in
        return stand_in

    def _close_abandoned(self) -> None:
        """Close the stand-ins whose host sockets were closed by their
        owners (closing a host socket cannot be seen when it happens): a
        library that closes its host socket after a failed sock_connect, as
        aiohappyeyeballs does, would otherwise leave a wsp socket open for
        every attempt until the loop closes."""
        for host, stand_in in list(self.adopted.items()):
            if host.fileno() == -1 and not stand_in.closed:
                stand_in.close()

    def _extension(self, sock: WspSocket, guid: Any) -> Callable[..., Any]:
        # Per provider in principle; per socket handle here, which is always right.
        return self.process.WSAIoctl(sock.fileno(), SIO_GET_EXTENSION_FUNCTION_POINTER, guid)

    # -- starting operations -----------------------------------------------------------
    def _require_open(self) -> None:
        if self.port is None:
            raise RuntimeError("the proactor is closed")

    def _start(self, sockets: tuple[int, ...], start: Callable[[Overlapped], Any],
               finish: Finish) -> asyncio.Future:
        """Start one operation whose future `finish(rc, nbytes, overlapped)`
        resolves; cancelling the future cancels the operation."""
        self._require_open()
        overlapped = Overlapped()
        fut = OperationFuture(lambda: self.cancel_operation(overlapped, sockets), loop=self.loop)
        try:
            start(overlapped)
        except WinsockError as exc:
            fut.set_exception(exc)
            return fut

        def complete(rc: int, nbytes: int) -> asyncio.Future | None:
            if fut.done():
                return None                  # cancelled: its aborted packet
            try:
                value = finish(rc, nbytes, overlapped)
            except OSError as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(value)
            return fut

        self.cache[id(overlapped)] = (overlapped, complete)
        self.inflight[id(overlapped)] = (overlapped, sockets, lambda: fut)
        return fut

    def _receive(self, conn: WspSocket, size: int, flags: int,
                 deliver: Callable[[bytes], Any]) -> asyncio.Future:
        """A read of up to `size` bytes on a stream socket: from its inbox
        when a cancelled receive left bytes there, else from the receive
        still posted for a cancelled read, else from a new WSARecv."""
        self._require_open()
        conn = self.adopt(conn)
        s = conn.fileno()
        fut = OperationFuture(None, loop=self.loop)
        inbox = conn.inbox
        if inbox is None:
            inbox = conn.inbox = Inbox()
        try:
            ready = inbox.take(size)
        except OSError as exc:
            fut.set_exception(exc)
            return fut
        if ready is not None:
            fut.set_result(deliver(ready))
            return fut
        if inbox.parked is not None:
            receive = inbox.parked
            inbox.parked = None
            receive.wait(fut, size, deliver)
            return fut
        receive = Receive(inbox, bytearray(size))
        overlapped = Overlapped()
        try:
            self.process.WSARecv(s, [receive.buffer], flags, overlapped)
        except WinsockError as exc:
            if exc.winerror in _RESET_CODES:
                exc = ConnectionResetError(exc.winerror, exc.strerror)
            fut.set_exception(exc)
            return fut
        receive.wait(fut, size, deliver)
        self.cache[id(overlapped)] = (overlapped, receive.complete)
        self.inflight[id(overlapped)] = (overlapped, (s,), lambda: receive.waiter)
        return fut

    def recv(self, conn: WspSocket, nbytes: int, flags: int = 0) -> asyncio.Future:
        """Up to `nbytes` bytes (b"" at the end of the stream).  Cancelling
        the read leaves its receive posted: the bytes it brings in are the
        next read's, so no byte is lost to a cancelled read."""
        return self._receive(conn, nbytes, flags, bytes)

    def recv_into(self, conn: WspSocket, buf: Any, flags: int = 0) -> asyncio.Future:
        """As :meth:`recv`, into `buf`; the number of bytes.  The receive
        fills a buffer of the proactor's, copied into `buf` when it
        completes, so a cancelled read never writes into `buf` later."""
        view = memoryview(buf).cast("B")

        def deliver(data: bytes) -> int:
            view[:len(data)] = data
            return len(data)

        return self._receive(conn, len(view), flags, deliver)

    def send(self, conn: WspSocket, buf: Any, flags: int = 0) -> asyncio.Future:
        """Send `buf` on stream socket `conn`: a future of the bytes sent.

        An overlapped WSASend.

        `buf` is copied first, so the caller may reuse it at once. The future fails with
        ConnectionResetError for a reset or aborted connection and with the WinsockError of any
        other failing status; a failing WSASend call raises its WinsockError at once.
        """
        conn = self.adopt(conn)
        s = conn.fileno()
        data = bytes(buf)           # the caller may reuse its buffer before the completion

        def finish(rc: int, n: int, ov: Overlapped) -> int:
            _check_stream(rc)
            return n

        return self._start((s,), lambda ov: self.process.WSASend(s, [data], flags, ov), finish)

    def recvfrom(self, conn: WspSocket, nbytes: int, flags: int = 0) -> asyncio.Future:
        """``(data, sender)`` of one datagram.  A WSARecvFrom that completes
        at once returns the sender; one that waits has it recorded for its
        overlapped when a datagram completes it (:mod:`wsp.spi.senders`,
        what lpFrom holds then), through any stack of layers.  None when
        the provider records none."""
        buf = bytearray(nbytes)
        conn = self.adopt(conn)
        s = conn.fileno()
        source: list[Any] = [None]

        def start(ov: Overlapped) -> None:
            source[0] = self.process.WSARecvFrom(s, [buf], flags, ov)[3]

        def finish(rc: int, n: int, ov: Overlapped) -> tuple[bytes, Any]:
            if rc:
                raise _error(rc)
            sender = source[0]
            if sender is None:
                sender = senders.take(ov)
            return bytes(buf[:n]), sender

        return self._start((s,), start, finish)

    def sendto(self, conn: WspSocket, buf: Any, flags: int = 0,
               addr: Any = None) -> asyncio.Future:
        """Send `buf` as one datagram: a future of the bytes sent.

        To `addr` with WSASendTo, or to the connected peer with WSASend when `addr` is None.

        The future fails with the WinsockError of a failing status; a failing call raises its
        WinsockError at once.
        """
        conn = self.adopt(conn)
        s = conn.fileno()
        data = bytes(buf)

        def finish(rc: int, n: int, ov: Overlapped) -> int:
            if rc:
                raise _error(rc)
            return n

        if addr is None:
            # A connected datagram socket's peer (WSASendTo with no lpTo).
            return self._start((s,), lambda ov: self.process.WSASend(s, [data], flags, ov),
                               finish)
        return self._start((s,), lambda ov: self.process.WSASendTo(s, [data], flags, addr, ov),
                           finish)

    def accept(self, listener: WspSocket) -> asyncio.Future:
        """``(WspSocket, peer address)`` of the next connection (AcceptEx
        into a fresh socket, associated with the port)."""
        listener = self.adopt(listener)
        ls = listener.fileno()
        conn = self.socket(listener.family, listener.type, listener.proto)
        s = conn.fileno()
        buf = bytearray(2 * _ADDRESS_AREA)
        try:
            accept_ex = self._extension(listener, WSAID_ACCEPTEX)
        except BaseException:
            conn.close()
            raise

        def finish(rc: int, n: int, ov: Overlapped) -> tuple[WspSocket, Any]:
            if rc:
                raise _error(rc)
            self.process.setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, ls)
            conn.bound = True
            return conn, conn.getpeername()

        fut = self._start((ls, s), lambda ov: accept_ex(ls, s, buf, 0, _ADDRESS_AREA,
                                                        _ADDRESS_AREA, ov), finish)
        # The accept socket is the operation's only while it is pending: a
        # failed or cancelled accept closes it.
        fut.add_done_callback(lambda f: conn.close() if f.cancelled() or f.exception() else None)
        return fut

    def connect(self, conn: WspSocket, address: tuple[str, int]) -> asyncio.Future:
        """ConnectEx (binding `conn` to any address first when it is not bound)."""
        conn = self.adopt(conn)
        s = conn.fileno()
        if not conn.bound:
            try:
                conn.bind(("0.0.0.0", 0))
            except WinsockError as exc:
                if exc.winerror != WSAEINVAL:
                    raise
                conn.bound = True      # bound already, by a call that went around it
        connect_ex = self._extension(conn, WSAID_CONNECTEX)
        address = (address[0], address[1])

        def finish(rc: int, n: int, ov: Overlapped) -> None:
            if rc:
                raise _error(rc)
            self.process.setsockopt(s, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, None)
            return None

        return self._start((s,), lambda ov: connect_ex(s, address, None, ov), finish)

    def disconnect(self, conn: WspSocket, reuse: bool = False) -> asyncio.Future:
        """DisconnectEx: the graceful end of `conn`'s connection, done when
        its FIN has left after the data still queued; with `reuse`
        (TF_REUSE_SOCKET) the socket is then unbound and unconnected again,
        ready for another connect, as IOCP programs recycle sockets."""
        conn = self.adopt(conn)
        s = conn.fileno()
        disconnect_ex = self._extension(conn, WSAID_DISCONNECTEX)
        flags = TF_REUSE_SOCKET if reuse else 0

        def finish(rc: int, n: int, ov: Overlapped) -> None:
            if rc:
                raise _error(rc)
            if reuse:
                conn.bound = False             # unbound and unconnected again
            return None

        return self._start((s,), lambda ov: disconnect_ex(s, ov, flags), finish)

    # -- cancelling ----------------------------------------------------------------------
    def cancel_operation(self, overlapped: Overlapped, sockets: tuple[int, ...]) -> None:
        """Cancel the pending operation of `overlapped` (issued on one of
        `sockets`); its aborted packet is still delivered and ignored."""
        if not overlapped.pending:
            return
        for s in sockets:
            for op in self.process.operations(socket=s):
                if op.overlapped is overlapped:
                    self.process.cancel_overlapped(op)
                    return

    def _stop_serving(self, sock: WspSocket) -> None:
        # Called by BaseProactorEventLoop._stop_serving (the name is the
        # loop's, from IocpProactor).  The loop has cancelled the listener's
        # accept future and closes the listener next, which aborts whatever
        # else is pending on it: nothing is left to do here.
        return None

    # -- waiting ---------------------------------------------------------------------
    def post_wake(self) -> None:
        """Wake a wait in :meth:`select` (from any thread)."""
        port = self.port
        if port is None:
            return
        try:
            self.process.PostQueuedCompletionStatus(port, 0, WAKE_KEY, None)
        except WinsockError:
            pass                  # closed meanwhile by the loop's thread: nothing to wake

    def select(self, timeout: float | None = None) -> list[asyncio.Future]:
        """Wait up to `timeout` seconds (None: no limit; counted by the
        process's clock, so a virtual clock jumps) for completion packets and
        finish their futures; the futures finished."""
        port = self.port
        if port is None:
            return []
        if timeout == 0:
            ms = 0                  # the loop has callbacks ready: a poll (the common case)
        else:
            cap = self.wait_cap
            if cap is not None and (timeout is None or timeout > cap):
                timeout = cap
            if timeout is None:
                ms = INFINITE
            else:
                ms = min(max(0, math.ceil(timeout * 1000)), INFINITE - 1)
        finished: list[asyncio.Future] = []
        packets = self.process.GetQueuedCompletionStatusEx(port, _BATCH, ms)
        completed = self.completed.append
        while packets:
            for rc, nbytes, _key, overlapped in packets:
                if overlapped is None:
                    continue                  # a wake-up
                # The transports' packets first: they are most of the traffic.
                callback = overlapped.object
                if callback is not None:
                    completed((callback, rc, nbytes))
                    continue
                item = self.cache.pop(id(overlapped), None)
                if item is None:
                    continue
                self.inflight.pop(id(overlapped), None)
                fut = item[1](rc, nbytes)
                if fut is not None:
                    finished.append(fut)
            # Take what else is queued without waiting, up to one more batch.
            packets = (self.process.GetQueuedCompletionStatusEx(self.port, _BATCH, 0)
                       if len(packets) == _BATCH else [])
        return finished

    def close(self) -> None:
        """Cancel what is still in flight and close the port."""
        if self.port is None:
            return
        # Pending operations are cancelled without waiting for their packets
        # (the port goes, and the loop's WSACleanup follows).
        # Their futures are cancelled, as IocpProactor.close does.
        for overlapped, sockets, waiter in list(self.inflight.values()):
            self.cancel_operation(overlapped, sockets)
            fut = waiter()
            if fut is not None and not fut.done():
                fut.cancel()
        self.inflight.clear()
        self.cache.clear()
        # The transports' operations go with their sockets (the loop's
        # WSACleanup resets what is left); their packets will not come.
        self.completed.clear()
        port, self.port = self.port, None
        self.process.CloseHandle(port)

def _error(code: int) -> OSError:
    return WinsockError(code)


def _check_stream(rc: int) -> None:
    """A stream receive's or send's failure as asyncio on Windows reports it."""
    if not rc:
        return
    if rc in _RESET_CODES:
        raise ConnectionResetError(rc, WinsockError(rc).strerror)
    raise _error(rc)
