"""The endpoints of the simulated network: ``SimSocket`` (the transport
state of one socket: addresses, buffers, pending sends and receives,
options, network events), ``Connection`` (a stream connection's two ends)
and the pending-operation records, with the stream data path that moves
bytes between two ends (``SimSocket.pump``: sender -> send buffer ->
receiver's pending receives or receive buffer).

Every method is called with the network lock held (see wsp.sim.network).

Compiled by Cython in pure-Python mode (src/wsp/_compiled.py): the pending
records are extension types with C fields (declared under ``if
cython.compiled:``, so the pure twin keeps its ``__slots__`` classes) and the
byte-moving loops have C-integer locals; uncompiled, every ``cython.*`` name
is a no-op (wsp._cython_shim when Cython is not installed).
"""
from __future__ import annotations

import ipaddress
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from ..constants import (FD_ALL_EVENTS, FD_CLOSE, FD_READ, FD_WRITE, SOCK_DGRAM)
from ..errors import (WSAECONNABORTED, WSAECONNRESET, WSAEFAULT, WinsockError)

if TYPE_CHECKING:            # type checkers read the shim's typed no-op decorators
    from .. import _cython_shim as cython
else:
    try:
        import cython         # compiling: Cython's own; uncompiled: Cython.Shadow
    except ImportError:       # uncompiled, Cython not installed
        from .. import _cython_shim as cython

if TYPE_CHECKING:             # only for annotations: network.py sits above this module
    from .network import Network

__all__ = ["SimSocket", "Connection", "PendingRecv", "PendingSend", "check_address", "copy_bytes",
           "DEFAULT_BUFFER", "MAX_DATAGRAM", "ANY_HOST", "DEFAULT_HOST"]


DEFAULT_BUFFER = 65536            # SO_SNDBUF / SO_RCVBUF default, as on Windows
MAX_DATAGRAM = 65507              # the largest UDP payload over IPv4
ANY_HOST = "0.0.0.0"
DEFAULT_HOST = "127.0.0.1"        # the local address of a socket bound to nothing


# Hosts already validated, as written -> normalised: ipaddress takes ~2 us a
# parse, and a datagram program names the same few hosts in every send.
_HOSTS: dict[str, str] = {}
_HOSTS_KEPT = 4096


def check_address(addr: object, funcname: str | None = None) -> tuple[str, int]:
    """Validate an AF_INET ``(host, port)`` address: TypeError for the wrong
    shape or types, WSAEFAULT for a host that is not dotted IPv4 or a port
    outside 0..65535."""
    if not isinstance(addr, tuple) or len(addr) != 2:
        raise TypeError(f"an AF_INET address is a (host, port) tuple, not {addr!r}")
    host, port = addr
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"an AF_INET address is a (str, int) tuple, not {addr!r}")
    normal = _HOSTS.get(host)
    if normal is None:
        try:
            normal = str(ipaddress.IPv4Address(host))
        except ValueError:
            raise WinsockError(WSAEFAULT, funcname) from None
        if len(_HOSTS) < _HOSTS_KEPT:
            _HOSTS[host] = normal
    host = normal
    if not 0 <= port <= 0xFFFF:
        raise WinsockError(WSAEFAULT, funcname)
    return (host, port)


def _flat(obj: object) -> bool:
    """Whether `obj` is a bytes-like object of the kinds that always export a
    simple (one-dimensional, contiguous) buffer."""
    kind = type(obj)
    if kind is bytes or kind is bytearray:
        return True
    return kind is memoryview and obj.c_contiguous and obj.itemsize == 1


@cython.locals(src_buf=cython.p_char, dst_buf=cython.p_char, src_start=cython.Py_ssize_t,
               dst_start=cython.Py_ssize_t, n=cython.Py_ssize_t)
def copy_bytes(dst: memoryview, dst_start: int, src: Any, src_start: int, n: int) -> None:
    """Copy ``src[src_start:src_start + n]`` to ``dst[dst_start:dst_start + n]``
    (both bytes-like; the caller has checked the ranges).  Compiled, a
    contiguous source and destination are copied with memcpy, without the
    two slice objects Python's form makes; anything else (a strided view)
    takes Python's form, which is the whole of the pure twin."""
    if n <= 0:
        return
    if cython.compiled and _flat(dst) and _flat(src):
        # bytes, bytearray and C-contiguous memoryviews export a simple
        # buffer without failing: copy in C (the C names come from the
        # cimports in socket.pxd, which only the compiled twin sees)
        src_view = cython.declare(Py_buffer)  # noqa: F821 -- cimported by socket.pxd
        dst_view = cython.declare(Py_buffer)  # noqa: F821 -- cimported by socket.pxd
        PyObject_GetBuffer(src, cython.address(src_view), PyBUF_SIMPLE)  # noqa: F821 -- cimported by socket.pxd
        try:
            PyObject_GetBuffer(dst, cython.address(dst_view), PyBUF_WRITABLE)  # noqa: F821 -- cimported by socket.pxd
            try:
                if src_start + n <= src_view.len and dst_start + n <= dst_view.len:
                    src_buf = cython.cast(cython.p_char, src_view.buf)
                    dst_buf = cython.cast(cython.p_char, dst_view.buf)
                    memmove(dst_buf + dst_start, src_buf + src_start, n)  # noqa: F821 -- cimported by socket.pxd
                    return
            finally:
                PyBuffer_Release(cython.address(dst_view))  # noqa: F821 -- cimported by socket.pxd
        finally:
            PyBuffer_Release(cython.address(src_view))  # noqa: F821 -- cimported by socket.pxd
    dst[dst_start:dst_start + n] = memoryview(src)[src_start:src_start + n]


# ----------------------------------------------------------- pending entries
class PendingRecv:
    """A receive waiting for data: overlapped (``op`` set) or a blocked
    thread (``op`` None; the thread reads ``result``/``error``)."""

    __slots__ = ("buffers", "capacity", "op", "peek", "done", "nbytes", "error", "source",
                 "flags")

    def __init__(self, buffers: list[memoryview], op: Any, peek: bool = False) -> None:
        self.buffers = buffers
        self.capacity = len(buffers[0]) if len(buffers) == 1 else sum(len(b) for b in buffers)
        self.op = op
        self.peek = peek
        self.done = False
        self.nbytes = 0
        self.error = 0
        self.source: tuple[str, int] | None = None
        self.flags = 0

    @cython.locals(offset=cython.Py_ssize_t, n=cython.Py_ssize_t, size=cython.Py_ssize_t,
                   buffers=list)
    def fill(self, data: bytes | bytearray | memoryview, start: int = 0) -> int:
        """Scatter the bytes of `data` from offset `start` over the buffers;
        return how many fit."""
        size = len(data) - start
        if size <= 0:
            return 0
        buffers = self.buffers
        if len(buffers) == 1:                 # the common case: one WSABUF
            n = min(len(buffers[0]), size)
            copy_bytes(buffers[0], 0, data, start, n)
            return n
        offset = 0
        for buf in buffers:
            if offset >= size:
                break
            n = min(len(buf), size - offset)
            copy_bytes(buf, 0, data, start + offset, n)
            offset += n
        return offset


class PendingSend:
    """A send waiting for buffer room: overlapped or a blocked thread."""

    __slots__ = ("data", "offset", "op", "done", "error")

    def __init__(self, data: memoryview, op: Any) -> None:
        self.data = data
        self.offset = 0
        self.op = op
        self.done = False
        self.error = 0


# -------------------------------------------------------------- the sockets
class SimSocket:
    """The transport state of one socket.  Every method is called with the
    network lock held; the provider turns outcomes into SPI results."""

    def __init__(self, network: Network, kind: int, owner: Any) -> None:
        self.network = network
        self.kind = kind                      # SOCK_STREAM or SOCK_DGRAM
        self.owner = owner                    # the provider (None for a queued, unaccepted one)
        self.handle = 0                       # the process's socket handle, once it has one
        self.cond = threading.Condition(network.lock)
        self.watchers = 0                     # threads waiting on cond (blocked calls, select)
        self.entry: Any = None                # the process's handle-table entry, once it has one
        self.engine: Any = None               # the process's overlapped engine, likewise
        self.local: tuple[str, int] | None = None
        self.remote: tuple[str, int] | None = None
        self.bound = False                    # holds its local address in the bindings
        self.state = "new"                    # new, listening, connected, closed
        self.peer: SimSocket | None = None
        self.connection: Connection | None = None
        self.listener: SimSocket | None = None    # for a queued connection: who queued it
        self.backlog = 0
        self.accept_queue: deque[SimSocket] = deque()
        self.accept_requests: deque[Any] = deque()   # AcceptEx calls waiting (sim.extensions)
        self.disconnect_op: Any = None        # (operation, reuse) of a DisconnectEx in progress
        # options
        self.nonblocking = False
        self.linger_onoff = 0
        self.linger_seconds = 0
        self.reuseaddr = False
        self.sndbuf = DEFAULT_BUFFER
        self.rcvbuf = DEFAULT_BUFFER
        self.so_error = 0
        self.connect_error: int | None = None   # its connect's outcome (0 or the error), once known
        # stream data
        self.recv_buf = bytearray()
        self.send_buf = bytearray()
        self.pending_recvs: deque[PendingRecv] = deque()
        self.pending_sends: deque[PendingSend] = deque()
        self.shut_send = False                # no more sends (shutdown SD_SEND or closing)
        self.shutdown_send = False            # the application itself shut sending down
        self.shut_recv = False
        self.fin_queued = False               # send FIN once the send side drains
        self.fin_sent = False
        self.eof = False                      # the peer's FIN arrived after all its data
        self.reset_error = 0                  # the connection was reset: WSAECONNRESET
        self.rst_owed = False                 # data arrived it must refuse: reset after the send
        self.handle_closed = False            # WSPCloseSocket released the handle
        self.interrupted = False              # blocked calls must fail (closed / cleaned up)
        # datagram data
        self.dgrams: deque[tuple[bytes, tuple[str, int]]] = deque()
        self.dgram_bytes = 0
        # WSPEventSelect
        self.event: int | None = None
        self.event_mask = 0
        self.armed = FD_ALL_EVENTS            # FD_* bits that may be recorded (again)
        self.net_events: dict[int, int] = {}  # FD_* -> error, since the last enumeration
        self.on_event: Callable[[SimSocket, int, int], None] | None = None
        # With a clock: its clocked state (wsp.sim.timed.Timing); None: synchronous delivery
        timed = network.timed
        self.timing: Any = None if timed is None else timed.timing()
        # With a clock: its bytes go at once (the link takes no time and
        # nothing is in flight), decided by wsp.sim.timed and cleared by any
        # change of links -- so the common case runs no Python code under
        # the lock (where a GIL switch would stall every other caller).
        self.direct = False

    # -- network events ---------------------------------------------------
    def post(self, fd: int, error: int = 0) -> None:
        """Record network event `fd` for WSPEventSelect (if selected and
        armed) and tell the provider.  READ/WRITE/ACCEPT are re-armed by the
        calls that consume them; CONNECT and CLOSE are once."""
        if self.handle_closed or not (self.event_mask & fd) or not (self.armed & fd):
            return
        self.armed &= ~fd
        self.net_events[fd] = error
        if self.on_event is not None:
            self.on_event(self, fd, error)

    def rearm(self, fd: int) -> None:
        """Allow `fd` to be recorded again (the call that consumed it ran)."""
        self.armed |= fd

    # -- readiness ------------------------------------------------------------
    def readable(self) -> bool:
        """True when a receive (or accept) would not block."""
        if self.state == "listening":
            return bool(self.accept_queue)
        if self.kind == SOCK_DGRAM:
            return bool(self.dgrams)
        return bool(self.recv_buf) or self.eof or bool(self.reset_error)

    def writable(self) -> bool:
        """True when a send would not block."""
        if self.kind == SOCK_DGRAM:
            return True
        return (self.state == "connected" and not self.reset_error and not self.shut_send
                and len(self.send_buf) < max(self.sndbuf, 1) and not self.pending_sends)

    def wake(self) -> None:
        """Wake the threads blocked on this socket, if any."""
        # Condition.notify_all is Python code (~0.5 us); data paths call
        # wake() several times per send, and usually nobody is waiting.
        if self.watchers:
            self.cond.notify_all()

    # -- stream: moving data ------------------------------------------------------
    def pump(self) -> None:
        """Move this sender's bytes towards its peer as far as room allows;
        complete the sends that have fully left; send FIN when drained.
        With a clock the links decide (wsp.sim.timed: at once over a perfect
        link, through the link's delays otherwise)."""
        if self.timing is not None and not self.direct:
            self.timing.pump(self)
            return
        self.pump_now()

    @cython.locals(moved=cython.bint, n=cython.Py_ssize_t, room=cython.Py_ssize_t,
                   size=cython.Py_ssize_t, entry=PendingSend)
    def pump_now(self) -> None:
        """:meth:`pump` with synchronous delivery: what fits goes straight
        into the peer's receives or receive buffer."""
        peer = self.peer
        if peer is None or self.reset_error:
            return
        conn = self.connection
        while True:
            moved = False
            if self.send_buf:
                n = peer.accept_bytes(self.send_buf, conn)
                if self.reset_error:                      # delivering reset the connection
                    return
                if n:
                    del self.send_buf[:n]
                    moved = True
            while self.pending_sends:
                entry = self.pending_sends[0]
                size = len(entry.data)
                if not self.send_buf:
                    # straight to the peer when it can take it (a fresh send
                    # goes as it is: no slice)
                    left = entry.data if entry.offset == 0 else entry.data[entry.offset:]
                    n = peer.accept_bytes(left, conn)
                    if self.reset_error:
                        return
                    if n:
                        entry.offset += n
                        moved = True
                if entry.offset < size:
                    room = self.sndbuf - len(self.send_buf)
                    if room > 0:
                        n = min(room, size - entry.offset)
                        self.send_buf += entry.data[entry.offset:entry.offset + n]
                        entry.offset += n
                        moved = True
                if entry.offset < size:
                    break
                self.pending_sends.popleft()
                self.finish_send(entry, 0)
            if self.reset_error or not moved:
                break
        if peer.rst_owed:
            # A peer that shut its sending down and then closed its handle
            # aborts the connection: the sender's next receive fails with
            # WSAECONNABORTED, not WSAECONNRESET (Wine's test_shutdown, a
            # line Windows passes).
            self.network.reset(conn, WSAECONNABORTED
                               if peer.shutdown_send and peer.handle_closed else WSAECONNRESET,
                               origin=peer)   # the RST is the peer's (a capture shows it so)
            return
        if self.fin_queued and not self.fin_sent and not self.send_buf and not self.pending_sends:
            self.fin_sent = True
            peer.receive_fin()
            if self.disconnect_op is not None:        # a DisconnectEx waited for this FIN
                self.owner.finish_disconnect(self)
            self.network.forget_if_done(self)
        if (self.event_mask or self.watchers) and not self.pending_sends and self.writable():
            self.post(FD_WRITE)
            self.wake()

    @cython.locals(taken=cython.Py_ssize_t, n=cython.Py_ssize_t, room=cython.Py_ssize_t,
                   size=cython.Py_ssize_t, start=cython.Py_ssize_t, dropped=cython.Py_ssize_t,
                   entry=PendingRecv)
    def accept_bytes(self, data: Any, conn: Connection | None) -> int:
        """Take what fits of `data` (posted receives first, then the receive
        buffer); return how many bytes were taken."""
        if self.reset_error:
            return 0
        if conn is not None and conn.held:
            return 0
        if self.handle_closed and self.owner is not None:
            # Data for a socket whose handle is gone: TCP (and Windows)
            # answers with a reset.  The send itself succeeded -- the bytes
            # left the sender -- so the sender's pump performs the reset once
            # that send has completed.  (A socket shut down for receiving
            # refuses data the same way, below, after its pending receives.)
            self.rst_owed = True
            if self.network.tap is not None:         # the bytes crossed; the RST follows
                self.network.tap.stream(self, conn, data, len(data))
            return len(data)
        size = len(data)
        start = 0                                      # data[start:] is still to place
        taken = 0
        if conn is not None and conn.drop_next:
            dropped = min(conn.drop_next, size)        # drop_next: any Python int
            conn.drop_next -= dropped
            taken = dropped                            # swallowed by the fault
            start = dropped
        while start < size and not self.recv_buf and self.pending_recvs:
            entry = self.pending_recvs.popleft()
            n = entry.fill(data, start)
            if not entry.peek:                      # a peek leaves the bytes for the next reader
                start += n
                taken += n
            self.finish_recv(entry, n, 0)
        if start < size and self.shut_recv:
            # Shut down for receiving: the receives that were already pending
            # took what they could (Windows completes them; Wine's
            # test_shutdown), the rest is refused with a reset as above.
            self.rst_owed = True
            if self.network.tap is not None:
                self.network.tap.stream(self, conn, data, size)
            return size
        room = self.rcvbuf - len(self.recv_buf)
        if start < size and room > 0:
            n = min(room, size - start)
            self.recv_buf += data[start:start + n]
            taken += n
            # New data is a new condition: FD_READ is recorded again even if
            # no receive came since the last one (observed Windows; Wine's
            # test_read_events marks the line todo_wine, Windows passes it).
            self.armed |= FD_READ
        if self.recv_buf and (self.event_mask or self.watchers):
            self.post(FD_READ)
            self.wake()
        if taken and self.network.tap is not None:
            # A capture runs (wsp.sim.capture): these bytes crossed now.
            # The one test a delivery pays for capture when none runs.
            self.network.tap.stream(self, conn, data, taken)
        return taken

    def receive_fin(self) -> None:
        """The peer's FIN: the end of the stream, after all its data."""
        if self.network.tap is not None:
            self.network.tap.fin(self)
        self.eof = True
        while not self.recv_buf and self.pending_recvs:
            self.finish_recv(self.pending_recvs.popleft(), 0, 0)
        self.post(FD_CLOSE, 0)
        self.wake()

    @cython.locals(entry=PendingRecv, n=cython.Py_ssize_t)
    def consume(self, entry: PendingRecv) -> int:
        """Serve a receive from the receive buffer; then let the peer send
        more into the room it frees."""
        n = entry.fill(self.recv_buf)
        if not entry.peek:
            del self.recv_buf[:n]
            if self.network.tap is not None:        # a capture: maybe a window update
                self.network.tap.read(self)
            peer = self.peer
            if peer is not None:
                if peer.timing is not None and not peer.direct:
                    self.timing.consumed(self, n)     # the room reaches the sender later
                else:
                    peer.pump()
        if self.recv_buf:
            self.post(FD_READ)
        return n

    # -- finishing pending entries ------------------------------------------------
    def finish_recv(self, entry: PendingRecv, nbytes: int, error: int,
                    notify: bool = True) -> None:
        """`entry` is done: an overlapped one completes through the engine
        (cancelled silently without `notify`: the final cleanup), a blocked
        thread wakes and reads it."""
        entry.done = True
        entry.nbytes = nbytes
        entry.error = error
        op = entry.op
        if op is not None:
            if notify:
                self.engine.complete(op, error, nbytes, entry.flags)
            else:
                self.engine.cancel(op, error, False)
        self.wake()

    def finish_send(self, entry: PendingSend, error: int, notify: bool = True) -> None:
        """`entry` is done (every byte left, or it failed with `error`); as
        :meth:`finish_recv`."""
        entry.done = True
        entry.error = error
        op = entry.op
        if op is not None:
            nbytes = len(entry.data) if not error else 0
            if notify:
                self.engine.complete(op, error, nbytes)
            else:
                self.engine.cancel(op, error, False)
        self.wake()

    def fail_pending(self, error: int, notify: bool = True) -> None:
        """Fail every pending send and receive with `error` (overlapped ones
        through the engine, blocked threads through their entry)."""
        recvs, sends = list(self.pending_recvs), list(self.pending_sends)
        self.pending_recvs.clear()
        self.pending_sends.clear()
        for entry in recvs:
            self.finish_recv(entry, 0, error, notify)
        for entry in sends:
            self.finish_send(entry, error, notify)
        self.wake()


class Connection:
    """A stream connection between two SimSockets, with its fault switches."""

    def __init__(self, network: Network, client: SimSocket, server: SimSocket) -> None:
        self.network = network
        self.client = client
        self.server = server
        self.held = False            # delay: deliveries wait until released
        self.drop_next = 0           # bytes the next deliveries lose
        self.closed = False
        self.tap: Any = None         # a capture's TCP state of it (wsp.sim.capture)

    @property
    def addresses(self) -> tuple[Any, Any]:
        """``(client local address, server local address)``."""
        return (self.client.local, self.server.local)

    def reset(self) -> None:
        """Reset the connection now (as a RST from the network would): both
        ends' calls fail with WSAECONNRESET, FD_CLOSE carries WSAECONNRESET."""
        with self.network.lock:
            self.network.reset(self, WSAECONNRESET, close_error=WSAECONNRESET)

    def hold(self) -> None:
        """Delay: from now on bytes stay in the senders' buffers."""
        with self.network.lock:
            self.held = True

    def release(self) -> None:
        """End a hold: deliver what waited, in order."""
        with self.network.lock:
            self.held = False
            for side in (self.client, self.server):
                side.pump()

    def drop(self, nbytes: int) -> None:
        """Lose the next `nbytes` bytes delivered in either direction."""
        with self.network.lock:
            self.drop_next += int(nbytes)

    def __repr__(self) -> str:
        return f"<Connection {self.client.local} <-> {self.server.local}>"


# -------------------------------------------------------------- the network