"""The data path of the simulated TCP/UDP provider: WSPSend, WSPSendTo,
WSPRecv, WSPRecvFrom and WSPGetOverlappedResult.

Sends move bytes into the peer's receive buffer (completing its pending receives, oldest first) or
leave them in the sender's send buffer until there is room (flow control, ``SimSocket.pump``);
receives take what is buffered or wait as pending receives.  Overlapped operations go through the
SPI engine (``Process.start_on`` / ``complete_overlapped``), so the delivery rules of
``docs/guide/spi-model.rst, "Overlapped operations"`` hold for every one.  This is the part a
compiled data plane replaces first.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..constants import (FD_READ, FD_WRITE, MSG_PARTIAL, MSG_PEEK, SOCK_DGRAM, SOCK_STREAM)
from ..errors import (WSA_IO_PENDING, WSAEADDRNOTAVAIL,
                      WSAEINVAL, WSAEMSGSIZE, WSAENOTCONN, WSAEOPNOTSUPP,
                      WSAESHUTDOWN, WSAEWOULDBLOCK, WinsockError)
from ..spi.checks import gather, int_arg, scatter
from ..spi.structs import Overlapped
from .socket import (ANY_HOST, MAX_DATAGRAM, PendingRecv, PendingSend, SimSocket,
                     check_address)

try:
    import cython             # compiling: Cython's own; uncompiled: Cython.Shadow
except ImportError:           # uncompiled, Cython not installed
    from .. import _cython_shim as cython

__all__ = ["DataPath"]


# -- the per-call plumbing, inlined for the hot path -----------------------------------
@cython.locals(sock=SimSocket)
def _socket_of(provider: Any, s: object, funcname: str) -> SimSocket:
    """The socket behind handle `s`, as ``provider.sim_socket(s, funcname)``
    gives it.  The common case -- an open handle of this provider, the
    network up -- is one dict lookup and one handle-table query that
    confirms the handle still names this socket's entry; anything else goes
    to ``sim_socket`` for the error it must raise."""
    sock = provider.open_sockets.get(s) if type(s) is int else None
    clock = provider.clock
    if clock is not None:
        clock.touch()                         # a call on a clocked network (the idle rule)
    if sock is not None and sock.engine is not None and not provider.network.down:
        try:
            entry = sock.engine.handles.table.query(s)
        except WinsockError:
            entry = None
        if entry is sock.entry:
            return sock
    return provider.sim_socket(s, funcname)


@cython.locals(sock=SimSocket)
def _start(provider: Any, sock: SimSocket, overlapped: Any, routine: Any, thread_id: Any,
           buffers: Any, funcname: str) -> Any:
    """Start an overlapped operation on `sock` in its process's engine, with
    the handle-table entry the socket keeps (no second lookup); the data
    path's C-level form of ``DataPath.start_op``."""
    return sock.engine.start_on(sock.entry, sock.handle, overlapped, routine, thread_id,
                                buffers, provider, funcname)


def _gathered(buffers: Any, funcname: str) -> bytes:
    """``gather(buffers, funcname)``, with its most common cases -- one
    ``bytes`` buffer in a list, which ``b"".join`` would return as it is, or
    one ``bytearray``, which it would copy -- taken without the call."""
    if type(buffers) is list and len(buffers) == 1:
        first = buffers[0]
        if type(first) is bytes:
            return first
        if type(first) is bytearray:
            return bytes(first)
    return gather(buffers, funcname)


def _scattered(buffers: Any, funcname: str) -> list[memoryview]:
    """``scatter(buffers, funcname)``, with its most common case -- one
    ``bytearray`` in a list, writable bytes already -- taken without the
    call."""
    if type(buffers) is list and len(buffers) == 1 and type(buffers[0]) is bytearray:
        return [memoryview(buffers[0])]
    return scatter(buffers, funcname)


# -- the stream and datagram paths, shared by the entries below -----------------------
@cython.locals(sock=SimSocket)
def _send_stream(provider: Any, s: int, sock: SimSocket, data: bytes, overlapped: Any,
                 routine: Any, thread_id: Any, funcname: str) -> tuple[int, int]:
    """WSPSend on a stream socket (lock held): into the peer's pending
    receives or its receive buffer, the rest into the send buffer (pump)."""
    if sock.reset_error:
        raise WinsockError(sock.reset_error, funcname)
    if sock.shut_send:
        raise WinsockError(WSAESHUTDOWN, funcname)
    if sock.state != "connected":
        raise WinsockError(WSAENOTCONN, funcname)
    if overlapped is not None:
        op = _start(provider, sock, overlapped, routine, thread_id, data, funcname)
        entry = PendingSend(memoryview(data), op)
        sock.pending_sends.append(entry)
        sock.pump()               # on an idle connection: straight into the peer
        return (0, len(data)) if entry.done and not entry.error else (WSA_IO_PENDING, 0)
    entry = PendingSend(memoryview(data), None)
    sock.pending_sends.append(entry)
    sock.pump()
    if entry.done:
        if entry.error:
            raise WinsockError(entry.error, funcname)
        return (0, len(data))
    if sock.nonblocking:
        sock.pending_sends.remove(entry)           # keep what was taken, no more
        sock.rearm(FD_WRITE)
        if entry.offset == 0:
            raise WinsockError(WSAEWOULDBLOCK, funcname)
        return (0, entry.offset)
    provider.await_entry(sock, sock.pending_sends, entry, funcname)
    return (0, len(data))


@cython.locals(sock=SimSocket)
def _send_datagram(provider: Any, s: int, sock: SimSocket, data: bytes, to: tuple[str, int],
                   overlapped: Any, routine: Any, thread_id: Any,
                   funcname: str) -> tuple[int, int]:
    """WSPSend/WSPSendTo on a datagram socket (lock held): one datagram to
    `to`, delivered or dropped by the network at once."""
    if sock.shut_send:
        raise WinsockError(WSAESHUTDOWN, funcname)
    if to[0] == ANY_HOST or to[1] == 0:
        raise WinsockError(WSAEADDRNOTAVAIL, funcname)
    if len(data) > MAX_DATAGRAM:                  # fails before it starts: nothing delivered
        raise WinsockError(WSAEMSGSIZE, funcname)
    op = None
    if overlapped is not None:
        op = _start(provider, sock, overlapped, routine, thread_id, data, funcname)
    try:
        provider.network.send_datagram(sock, data, to, funcname)
    except WinsockError as exc:
        if op is None:
            raise
        sock.engine.complete(op, exc.winerror, 0)
        return (0, 0)
    if op is not None:
        sock.engine.complete(op, 0, len(data))
    return (0, len(data))


def _recv_flags(flags: object, funcname: str) -> bool:
    """Whether a receive's `flags` ask for MSG_PEEK; WSAEOPNOTSUPP for any
    other flag."""
    if type(flags) is not int:
        int_arg(flags, "flags")
    if flags & ~MSG_PEEK:
        raise WinsockError(WSAEOPNOTSUPP, funcname)
    return bool(flags & MSG_PEEK)


@cython.locals(sock=SimSocket)
def _recv_stream(provider: Any, s: int, sock: SimSocket, views: list[memoryview], peek: bool,
                 overlapped: Any, routine: Any, thread_id: Any,
                 funcname: str) -> tuple[int, int, int]:
    """WSPRecv on a stream socket (lock held): from the receive buffer when
    it holds bytes (or the stream ended), else a pending receive."""
    if sock.reset_error:
        raise WinsockError(sock.reset_error, funcname)
    if sock.state != "connected":
        raise WinsockError(WSAENOTCONN, funcname)
    if sock.shut_recv:
        raise WinsockError(WSAESHUTDOWN, funcname)
    op = None
    if overlapped is not None:
        op = _start(provider, sock, overlapped, routine, thread_id, views, funcname)
    entry = PendingRecv(views, op, peek)
    if not sock.pending_recvs and (sock.recv_buf or sock.eof):
        n = sock.consume(entry) if sock.recv_buf else 0
        sock.rearm(FD_READ)
        if sock.recv_buf:
            sock.post(FD_READ)
        sock.finish_recv(entry, n, 0)
        return (0, n, 0)
    _queue_recv(provider, sock, entry, funcname)
    if op is not None and not (entry.done and not entry.error):
        return (WSA_IO_PENDING, 0, 0)
    return (0, entry.nbytes, 0)


@cython.locals(sock=SimSocket)
def _queue_recv(provider: Any, sock: SimSocket, entry: PendingRecv, funcname: str) -> None:
    """Nothing to receive yet (lock held).  Without an overlapped, a
    non-blocking socket fails with WSAEWOULDBLOCK; otherwise `entry` joins
    the receive queue -- bytes waiting in the peer's send buffer flow
    straight into it -- and a blocking call waits for it to finish."""
    sock.rearm(FD_READ)
    if entry.op is None and sock.nonblocking:
        raise WinsockError(WSAEWOULDBLOCK, funcname)
    sock.pending_recvs.append(entry)
    peer = sock.peer
    if peer is not None and (peer.send_buf or peer.pending_sends):
        peer.pump()
    if entry.op is None:
        provider.await_entry(sock, sock.pending_recvs, entry, funcname)


@cython.locals(sock=SimSocket)
def _recv_datagram(provider: Any, s: int, sock: SimSocket, views: list[memoryview], peek: bool,
                   overlapped: Any, routine: Any, thread_id: Any,
                   funcname: str) -> tuple[int, int, int, Any]:
    """WSPRecvFrom on a datagram socket (lock held): the oldest queued
    datagram, truncated to the buffers, else a pending receive."""
    if not sock.bound:
        raise WinsockError(WSAEINVAL, funcname)
    if sock.shut_recv:
        raise WinsockError(WSAESHUTDOWN, funcname)
    op = None
    if overlapped is not None:
        op = _start(provider, sock, overlapped, routine, thread_id, views, funcname)
    entry = PendingRecv(views, op, peek)
    if sock.dgrams:
        data, source = sock.dgrams[0]
        if not peek:
            sock.dgrams.popleft()
            sock.dgram_bytes -= len(data)
        n = entry.fill(data)
        entry.source = source
        truncated = n < len(data)
        entry.flags = MSG_PARTIAL if truncated else 0
        sock.rearm(FD_READ)
        if sock.dgrams:
            sock.post(FD_READ)
        sock.finish_recv(entry, n, WSAEMSGSIZE if truncated else 0)
        if truncated and op is None:
            raise WinsockError(WSAEMSGSIZE, funcname)
        return (0, n, entry.flags, source)
    _queue_recv(provider, sock, entry, funcname)       # blocking: WSAEMSGSIZE if truncated
    if op is not None:
        return (WSA_IO_PENDING, 0, 0, None)
    return (0, entry.nbytes, 0, entry.source)


class DataPath:
    """The provider's send and receive entries (a part of :class:`wsp.sim.Provider`)."""

    def start_op(self, sock: SimSocket, overlapped: Overlapped, routine: Any, thread_id: Any,
                 buffers: Any, funcname: str) -> Any:
        """Start an overlapped operation on `sock` through the engine, with the
        handle-table entry the socket keeps (no second lookup), for the
        provider's other entries (ioctls, the extension functions)."""
        return _start(self, sock, overlapped, routine, thread_id, buffers, funcname)

    # -- data ----------------------------------------------------------------------------
    @cython.locals(sock=SimSocket)
    def WSPSend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: Any = None) -> tuple[int, int]:
        """Send the concatenated `buffers`.  ``(0, nbytes)`` when done at once,
        ``(WSA_IO_PENDING, 0)`` for an overlapped send waiting for room.  A
        non-blocking send takes what fits (WSAEWOULDBLOCK if nothing does);
        a blocking one waits until everything is buffered."""
        funcname = "WSPSend"
        sock = _socket_of(self, s, funcname)
        data = _gathered(buffers, funcname)
        if type(flags) is not int:
            int_arg(flags, "flags")
        with self.network.lock:
            if sock.kind == SOCK_DGRAM:
                if sock.remote is None:
                    raise WinsockError(WSAENOTCONN, funcname)
                return _send_datagram(self, s, sock, data, sock.remote, overlapped,
                                      completion_routine, thread_id, funcname)
            return _send_stream(self, s, sock, data, overlapped, completion_routine, thread_id,
                                funcname)

    @cython.locals(sock=SimSocket)
    def WSPSendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None, completion_routine: Any = None,
                  thread_id: Any = None) -> tuple[int, int]:
        """Send a datagram to `to` (on a connected stream socket `to` is
        ignored and this is WSPSend)."""
        funcname = "WSPSendTo"
        sock = _socket_of(self, s, funcname)
        data = _gathered(buffers, funcname)
        if type(flags) is not int:
            int_arg(flags, "flags")
        with self.network.lock:
            if sock.kind == SOCK_STREAM:
                return _send_stream(self, s, sock, data, overlapped, completion_routine,
                                    thread_id, funcname)
            addr = check_address(to, funcname)
            return _send_datagram(self, s, sock, data, addr, overlapped, completion_routine,
                                  thread_id, funcname)

    @cython.locals(sock=SimSocket)
    def WSPRecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: Any = None) -> tuple[int, int, int]:
        """Receive into `buffers` (filled in order): ``(0, nbytes, flags)``
        when done at once (0 bytes: the peer closed gracefully),
        ``(WSA_IO_PENDING, 0, 0)`` for a pending overlapped receive."""
        funcname = "WSPRecv"
        sock = _socket_of(self, s, funcname)
        views = _scattered(buffers, funcname)
        peek = _recv_flags(flags, funcname)
        with self.network.lock:
            if sock.kind == SOCK_DGRAM:
                rc, n, out_flags, _ = _recv_datagram(self, s, sock, views, peek, overlapped,
                                                     completion_routine, thread_id, funcname)
                return (rc, n, out_flags)
            return _recv_stream(self, s, sock, views, peek, overlapped, completion_routine,
                                thread_id, funcname)

    @cython.locals(sock=SimSocket)
    def WSPRecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None, completion_routine: Any = None,
                    thread_id: Any = None) -> tuple[int, int, int, Any]:
        """Receive a datagram: ``(rc, nbytes, flags, from_addr)``.  A datagram
        larger than the buffers is truncated: WSAEMSGSIZE (overlapped: the
        completion carries WSAEMSGSIZE and MSG_PARTIAL)."""
        funcname = "WSPRecvFrom"
        sock = _socket_of(self, s, funcname)
        views = _scattered(buffers, funcname)
        peek = _recv_flags(flags, funcname)
        with self.network.lock:
            if sock.kind == SOCK_STREAM:
                rc, n, out_flags = _recv_stream(self, s, sock, views, peek, overlapped,
                                                completion_routine, thread_id, funcname)
                return (rc, n, out_flags, sock.remote)
            return _recv_datagram(self, s, sock, views, peek, overlapped, completion_routine,
                                  thread_id, funcname)

    def WSPGetOverlappedResult(self, s: int, overlapped: Overlapped,
                               wait: bool) -> tuple[int, int]:
        """As ServiceProvider's, for this provider's sockets only
        (WSAENOTSOCK otherwise)."""
        self.sim_socket(s, "WSPGetOverlappedResult", network=False)
        return super().WSPGetOverlappedResult(s, overlapped, wait)
