"""The simulated network: an in-memory fabric of stream (TCP-like) and
datagram (UDP-like) endpoints that any number of processes share (SPEC §7).

Everything that moves data happens under one lock, synchronously: when a
send returns, its bytes are in the peer's posted receives or receive buffer,
or waiting in the sender's send buffer for room.  So the same calls in the
same order give the same results, run after run; the only randomness (fault
injection) comes from ``random.Random(seed)``.

Data path of a stream connection, sender -> receiver::

    pending sends --> send buffer (SO_SNDBUF) --> receiver's pending receives
                                              \\-> receiver's receive buffer (SO_RCVBUF)

A send is complete once all its bytes have left the pending-send queue; a
receive completes with whatever is available when it reaches the head of
its queue (as TCP's recv does), or with 0 bytes at the end of the stream.
"""
from __future__ import annotations

import ipaddress
import random
import threading
from collections import deque
from typing import Any, Callable

from ..constants import (FD_ACCEPT, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE, MSG_PARTIAL,
                         SOCK_DGRAM, SOCK_STREAM)
from ..errors import (WSAEADDRINUSE, WSAEADDRNOTAVAIL, WSAECONNABORTED, WSAECONNREFUSED,
                      WSAECONNRESET, WSAEFAULT, WSAEMSGSIZE, WSAENETDOWN, WinsockError)

__all__ = ["Network", "Connection", "SimSocket", "check_address"]

DEFAULT_BUFFER = 65536            # SO_SNDBUF / SO_RCVBUF default, as on Windows
MAX_DATAGRAM = 65507              # the largest UDP payload over IPv4
EPHEMERAL_FIRST, EPHEMERAL_LAST = 49152, 65535
ANY_HOST = "0.0.0.0"
DEFAULT_HOST = "127.0.0.1"        # the local address of a socket bound to nothing


def check_address(addr: object, funcname: str | None = None) -> tuple[str, int]:
    """Validate an AF_INET ``(host, port)`` address: TypeError for the wrong
    shape or types, WSAEFAULT for a host that is not dotted IPv4 or a port
    outside 0..65535."""
    if not isinstance(addr, tuple) or len(addr) != 2:
        raise TypeError(f"an AF_INET address is a (host, port) tuple, not {addr!r}")
    host, port = addr
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"an AF_INET address is a (str, int) tuple, not {addr!r}")
    try:
        host = str(ipaddress.IPv4Address(host))
    except ValueError:
        raise WinsockError(WSAEFAULT, funcname) from None
    if not 0 <= port <= 0xFFFF:
        raise WinsockError(WSAEFAULT, funcname)
    return (host, port)


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

    def fill(self, data: bytes | bytearray | memoryview) -> int:
        """Scatter `data` over the buffers; return how many bytes fit."""
        view = memoryview(data)
        offset = 0
        for buf in self.buffers:
            if offset >= len(view):
                break
            n = min(len(buf), len(view) - offset)
            buf[:n] = view[offset:offset + n]
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
        self.local: tuple[str, int] | None = None
        self.remote: tuple[str, int] | None = None
        self.bound = False                    # holds its local address in the bindings
        self.state = "new"                    # new, listening, connected, closed
        self.peer: SimSocket | None = None
        self.connection: Connection | None = None
        self.listener: SimSocket | None = None    # for a queued connection: who queued it
        self.backlog = 0
        self.accept_queue: deque[SimSocket] = deque()
        # options
        self.nonblocking = False
        self.linger_onoff = 0
        self.linger_seconds = 0
        self.reuseaddr = False
        self.sndbuf = DEFAULT_BUFFER
        self.rcvbuf = DEFAULT_BUFFER
        self.so_error = 0
        # stream data
        self.recv_buf = bytearray()
        self.send_buf = bytearray()
        self.pending_recvs: deque[PendingRecv] = deque()
        self.pending_sends: deque[PendingSend] = deque()
        self.shut_send = False                # no more sends (shutdown SD_SEND or closing)
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
        self.armed = 0                        # FD_* bits that may be recorded again
        self.net_events: dict[int, int] = {}  # FD_* -> error, since the last enumeration
        self.on_event: Callable[[SimSocket, int, int], None] | None = None

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
        self.armed |= fd

    # -- readiness ------------------------------------------------------------
    def readable(self) -> bool:
        if self.state == "listening":
            return bool(self.accept_queue)
        if self.kind == SOCK_DGRAM:
            return bool(self.dgrams)
        return bool(self.recv_buf) or self.eof or bool(self.reset_error)

    def writable(self) -> bool:
        if self.kind == SOCK_DGRAM:
            return True
        return (self.state == "connected" and not self.reset_error and not self.shut_send
                and len(self.send_buf) < max(self.sndbuf, 1) and not self.pending_sends)

    def wake(self) -> None:
        # Condition.notify_all is Python code (~0.5 us); data paths call
        # wake() several times per send, and usually nobody is waiting.
        if self.watchers:
            self.cond.notify_all()

    # -- stream: moving data ------------------------------------------------------
    def pump(self) -> None:
        """Move this sender's bytes towards its peer as far as room allows;
        complete the sends that have fully left; send FIN when drained."""
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
                left = entry.data[entry.offset:]
                if not self.send_buf:
                    n = peer.accept_bytes(left, conn)     # straight to the peer when it can
                    if self.reset_error:
                        return
                    if n:
                        entry.offset += n
                        moved = True
                        left = entry.data[entry.offset:]
                room = self.sndbuf - len(self.send_buf)
                if left and room > 0:
                    n = min(room, len(left))
                    self.send_buf += left[:n]
                    entry.offset += n
                    moved = True
                if entry.offset < len(entry.data):
                    break
                self.pending_sends.popleft()
                self.network.finish_send(self, entry, 0)
            if self.reset_error or not moved:
                break
        if peer.rst_owed:
            self.network.reset(conn, WSAECONNRESET)
            return
        if self.fin_queued and not self.fin_sent and not self.send_buf and not self.pending_sends:
            self.fin_sent = True
            peer.receive_fin()
            self.network.forget_if_done(self)
        if (self.event_mask or self.watchers) and not self.pending_sends and self.writable():
            self.post(FD_WRITE)
            self.wake()

    def accept_bytes(self, data: Any, conn: Connection | None) -> int:
        """Take what fits of `data` (posted receives first, then the receive
        buffer); return how many bytes were taken."""
        if self.reset_error:
            return 0
        if conn is not None and conn.held:
            return 0
        if (self.handle_closed and self.owner is not None) or self.shut_recv:
            # Data for a socket whose handle is gone, or that was shut down
            # for receiving: TCP (and Windows) answers with a reset.  The
            # send itself succeeded -- the bytes left the sender -- so the
            # sender's pump performs the reset once that send has completed.
            self.rst_owed = True
            return len(data)
        view = memoryview(data)
        taken = 0
        if conn is not None and conn.drop_next:
            n = min(conn.drop_next, len(view))
            conn.drop_next -= n
            taken = n                                  # swallowed by the fault
            view = view[n:]
        while view and not self.recv_buf and self.pending_recvs:
            entry = self.pending_recvs.popleft()
            n = entry.fill(view)
            if not entry.peek:                      # a peek leaves the bytes for the next reader
                view = view[n:]
                taken += n
            self.network.finish_recv(self, entry, n, 0)
        room = self.rcvbuf - len(self.recv_buf)
        if view and room > 0:
            n = min(room, len(view))
            self.recv_buf += view[:n]
            taken += n
        if self.recv_buf and (self.event_mask or self.watchers):
            self.post(FD_READ)
            self.wake()
        return taken

    def receive_fin(self) -> None:
        """The peer's FIN: the end of the stream, after all its data."""
        self.eof = True
        while not self.recv_buf and self.pending_recvs:
            self.network.finish_recv(self, self.pending_recvs.popleft(), 0, 0)
        self.post(FD_CLOSE, 0)
        self.wake()

    def consume(self, entry: PendingRecv) -> int:
        """Serve a receive from the receive buffer; then let the peer send
        more into the room it frees."""
        n = entry.fill(self.recv_buf)
        if not entry.peek:
            del self.recv_buf[:n]
            if self.peer is not None:
                self.peer.pump()
        if self.recv_buf:
            self.post(FD_READ)
        return n

    def fail_pending(self, error: int, notify: bool = True) -> None:
        """Fail every pending send and receive with `error` (overlapped ones
        through the engine, blocked threads through their entry)."""
        recvs, sends = list(self.pending_recvs), list(self.pending_sends)
        self.pending_recvs.clear()
        self.pending_sends.clear()
        for entry in recvs:
            self.network.finish_recv(self, entry, 0, error, notify)
        for entry in sends:
            self.network.finish_send(self, entry, error, notify)
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

    @property
    def addresses(self) -> tuple[Any, Any]:
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
class Network:
    """The in-memory fabric shared by any number of processes and providers.

    ``Network(seed=0)``.  Fault switches: :meth:`set_down` (every call fails
    with WSAENETDOWN), :meth:`set_datagram_loss` (each datagram is lost
    with a probability drawn from the seeded generator), and per connection
    (:meth:`connections`) ``reset()``, ``hold()``/``release()`` (delay) and
    ``drop(nbytes)``.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.down = False
        self.datagram_loss = 0.0
        self._bindings: dict[tuple[int, int], list[SimSocket]] = {}   # (kind, port) -> sockets
        self._next_port = EPHEMERAL_FIRST
        self._connections: list[Connection] = []
        self._lingering: set[SimSocket] = set()   # closed, still delivering

    # -- switches ----------------------------------------------------------------
    def set_down(self, down: bool = True) -> None:
        """Take the whole network down (every SPI call: WSAENETDOWN) or up."""
        with self.lock:
            self.down = bool(down)

    def set_datagram_loss(self, probability: float) -> None:
        """Lose each datagram with `probability` (deterministic under the seed)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        with self.lock:
            self.datagram_loss = float(probability)

    def connections(self) -> list[Connection]:
        """The stream connections alive now, oldest first."""
        with self.lock:
            return list(self._connections)

    def check_up(self, funcname: str | None) -> None:
        if self.down:
            raise WinsockError(WSAENETDOWN, funcname)

    # -- addresses -------------------------------------------------------------------
    def bind(self, sock: SimSocket, addr: tuple[str, int], funcname: str | None) -> None:
        host, port = addr
        if port == 0:
            port = self._ephemeral(sock.kind, host)
        users = self._bindings.get((sock.kind, port), [])
        for other in users:
            clash = other.local[0] == host or ANY_HOST in (other.local[0], host)
            if clash and not (sock.reuseaddr and other.reuseaddr):
                raise WinsockError(WSAEADDRINUSE, funcname)
        self._bindings.setdefault((sock.kind, port), []).append(sock)
        sock.local = (host, port)
        sock.bound = True

    def _ephemeral(self, kind: int, host: str) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        for _ in range(span):
            port = self._next_port
            self._next_port = EPHEMERAL_FIRST + (port + 1 - EPHEMERAL_FIRST) % span
            if (kind, port) not in self._bindings:
                return port
        raise WinsockError(WSAEADDRINUSE)   # pragma: no cover -- 16k bound sockets

    def unbind(self, sock: SimSocket) -> None:
        if not sock.bound or sock.local is None:
            return
        key = (sock.kind, sock.local[1])
        users = self._bindings.get(key, [])
        if sock in users:
            users.remove(sock)
        if not users:
            self._bindings.pop(key, None)
        sock.bound = False

    def lookup(self, kind: int, addr: tuple[str, int], listening: bool) -> SimSocket | None:
        host, port = addr
        best = None
        for sock in self._bindings.get((kind, port), ()):
            if listening and sock.state != "listening":
                continue
            if sock.local[0] == host:
                return sock
            if sock.local[0] == ANY_HOST and best is None:
                best = sock
        return best

    # -- streams ----------------------------------------------------------------------
    def connect(self, client: SimSocket, addr: tuple[str, int], funcname: str | None) -> None:
        """The handshake: the listener at `addr` queues a new server-side
        socket, and the connection is established (before accept, as TCP)."""
        if addr[0] == ANY_HOST or addr[1] == 0:
            raise WinsockError(WSAEADDRNOTAVAIL, funcname)
        listener = self.lookup(SOCK_STREAM, addr, listening=True)
        if listener is None or len(listener.accept_queue) >= max(listener.backlog, 1):
            raise WinsockError(WSAECONNREFUSED, funcname)
        if not client.bound:
            self.bind(client, (DEFAULT_HOST, 0), funcname)
        elif client.local[0] == ANY_HOST:
            # Connected through the wildcard: the connection's own address
            # is the concrete one (one flat network, so the loopback host).
            client.local = (DEFAULT_HOST, client.local[1])
        server = SimSocket(self, SOCK_STREAM, None)
        server.local = (addr[0], addr[1])
        server.remote = client.local
        server.listener = listener
        server.sndbuf, server.rcvbuf = listener.sndbuf, listener.rcvbuf
        server.linger_onoff, server.linger_seconds = listener.linger_onoff, listener.linger_seconds
        server.state = "connected"
        client.state = "connected"
        client.remote = addr
        client.peer, server.peer = server, client
        conn = Connection(self, client, server)
        client.connection = server.connection = conn
        self._connections.append(conn)
        listener.accept_queue.append(server)
        listener.post(FD_ACCEPT)
        listener.wake()
        client.post(FD_CONNECT, 0)
        client.post(FD_WRITE)

    def reset(self, conn: Connection | None, error: int, notify: bool = True,
              close_error: int = WSAECONNABORTED) -> None:
        """Tear a connection down abortively: both ends' pending operations
        fail with `error`, their unread data is gone, and each end that
        still has a handle gets FD_CLOSE with `close_error` -- by default
        WSAECONNABORTED, what the peer of a hard close is told."""
        if conn is None or conn.closed:
            return
        conn.closed = True
        if conn in self._connections:
            self._connections.remove(conn)
        for side in (conn.client, conn.server):
            if side.reset_error:
                continue
            side.reset_error = error
            side.recv_buf.clear()
            side.send_buf.clear()
            side.fail_pending(error, notify)
            side.post(FD_CLOSE, close_error)
            self._lingering.discard(side)
            if side.listener is not None and side in side.listener.accept_queue:
                side.listener.accept_queue.remove(side)
            side.wake()

    def forget_if_done(self, sock: SimSocket) -> None:
        """A closed socket that has delivered everything leaves the network."""
        if sock.handle_closed and sock.fin_sent:
            self._lingering.discard(sock)
            conn = sock.connection
            if conn is not None and sock.peer is not None and (sock.peer.fin_sent or
                                                               sock.peer.handle_closed):
                conn.closed = True
                if conn in self._connections:
                    self._connections.remove(conn)

    def linger(self, sock: SimSocket) -> None:
        """Keep a gracefully closing socket alive until it has delivered."""
        self._lingering.add(sock)

    @property
    def lingering(self) -> int:
        """How many closed sockets are still delivering their data."""
        with self.lock:
            return len(self._lingering)

    # -- datagrams --------------------------------------------------------------------
    def send_datagram(self, sender: SimSocket, data: bytes, to: tuple[str, int],
                      funcname: str | None) -> None:
        if len(data) > MAX_DATAGRAM:
            raise WinsockError(WSAEMSGSIZE, funcname)
        if not sender.bound:
            self.bind(sender, (DEFAULT_HOST, 0), funcname)
        if self.datagram_loss and self.random.random() < self.datagram_loss:
            return
        target = self.lookup(SOCK_DGRAM, to, listening=False)
        if target is None or target.shut_recv or target.handle_closed:
            return                                  # nobody listening: lost, as UDP
        if target.remote is not None and target.remote != sender.local:
            return                                  # a connected UDP socket filters
        source = sender.local
        if source[0] == ANY_HOST:
            source = (DEFAULT_HOST, source[1])
        while target.pending_recvs:                  # a posted receive takes it directly
            entry = target.pending_recvs.popleft()
            n = entry.fill(data)
            entry.source = source
            truncated = n < len(data)
            entry.flags = MSG_PARTIAL if truncated else 0
            self.finish_recv(target, entry, n, WSAEMSGSIZE if truncated else 0)
            if not entry.peek:
                return
            # a peek leaves the datagram for the next receive (or the queue)
        if target.dgram_bytes + len(data) > target.rcvbuf:
            return                                  # receive buffer full: dropped
        target.dgrams.append((bytes(data), source))
        target.dgram_bytes += len(data)
        target.post(FD_READ)
        target.wake()

    # -- finishing entries ------------------------------------------------------------
    def finish_recv(self, sock: SimSocket, entry: PendingRecv, nbytes: int, error: int,
                    notify: bool = True) -> None:
        entry.done = True
        entry.nbytes = nbytes
        entry.error = error
        if entry.op is not None:
            sock.owner.complete_recv(sock, entry, notify)
        sock.wake()

    def finish_send(self, sock: SimSocket, entry: PendingSend, error: int,
                    notify: bool = True) -> None:
        entry.done = True
        entry.error = error
        if entry.op is not None:
            sock.owner.complete_send(sock, entry, notify)
        sock.wake()
