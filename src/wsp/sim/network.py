"""The simulated network: an in-memory fabric of stream (TCP-like) and
datagram (UDP-like) endpoints that any number of processes share (``docs/guide/network.rst``).

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
from typing import Any, Iterable

from ..constants import (FD_ACCEPT, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE, MSG_PARTIAL,
                         SOCK_DGRAM, SOCK_STREAM)
from ..errors import (WSAEADDRINUSE, WSAEADDRNOTAVAIL, WSAECONNABORTED, WSAECONNREFUSED,
                      WSAEMSGSIZE, WSAENETDOWN, WinsockError)

from ..spi import senders
from ..spi.clock import DEFAULT_GRACE, RealClock, SimClock, VirtualClock
from .capture import Capture, start as start_capture
from .links import Link, LinkTable, host_arg
from .socket import (ANY_HOST, DEFAULT_HOST, MAX_DATAGRAM, Connection,
                     SimSocket, check_address)
from .timed import TimedPath

__all__ = ["Network", "Connection", "SimSocket", "check_address"]

EPHEMERAL_FIRST, EPHEMERAL_LAST = 49152, 65535   # the IANA dynamic ports, as Windows uses


def host_of(sock: SimSocket) -> str:
    """The machine `sock` belongs to: its provider's host (``docs/guide/time-and-links.rst``), the
    loopback host for a socket no provider owns yet."""
    owner = sock.owner
    return DEFAULT_HOST if owner is None else owner.host


class Network:
    """The in-memory fabric shared by any number of processes and providers.

    ``Network(seed=0)``.  Fault switches: :meth:`set_down` (every call fails
    with WSAENETDOWN), :meth:`set_datagram_loss` (each datagram is lost
    with a probability drawn from the seeded generator), and per connection
    (:meth:`connections`) ``reset()``, ``hold()``/``release()`` (delay) and
    ``drop(nbytes)``.

    ``clock``: None (no time: synchronous delivery), ``"virtual"`` (simulated
    time that passes when the simulation is idle; see wsp.spi.clock for the
    rule) or ``"real"`` (wall-clock time since the network was made).  With
    a clock, :meth:`set_link` gives traffic between hosts latency, jitter,
    bandwidth and loss.  `idle_grace`: real seconds a thread holds a virtual
    clock after its last call or wait on the network (the idle rule).
    """

    def __init__(self, seed: int = 0, clock: str | None = None, *,
                 idle_grace: float = DEFAULT_GRACE) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            # random.Random would take any hashable (None: an OS-random seed),
            # and a run would no longer be reproducible from its seed.
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if clock is not None and not isinstance(clock, str):
            raise TypeError(f"clock must be None, 'virtual' or 'real', not {type(clock).__name__}")
        if clock not in (None, "virtual", "real"):
            raise ValueError(f"clock must be None, 'virtual' or 'real', not {clock!r}")
        if isinstance(idle_grace, bool) or not isinstance(idle_grace, (int, float)):
            raise TypeError(f"idle_grace must be a number of seconds, not "
                            f"{type(idle_grace).__name__}")
        if not 0.0 <= idle_grace < float("inf"):
            raise ValueError(f"idle_grace must be a finite number of seconds >= 0, "
                             f"not {idle_grace!r}")
        self.seed = seed
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.clock: SimClock | None = None
        if clock == "virtual":
            self.clock = VirtualClock(self.lock, idle_grace)
        elif clock == "real":
            self.clock = RealClock(self.lock)
        # Link draws (jitter, loss) come from their own generator, so that
        # setting a link does not shift the fault switches' draws.
        self.links = LinkTable(random.Random(f"links:{seed}"))
        #: the clocked data path (None without a clock: synchronous delivery)
        self.timed: TimedPath | None = None
        if self.clock is not None:
            self.timed = TimedPath(self, self.clock, self.links)
        self.down = False
        self.datagram_loss = 0.0
        self._bindings: dict[tuple[int, int], list[SimSocket]] = {}   # (kind, port) -> sockets
        self._next_port = EPHEMERAL_FIRST
        # Alive stream connections, oldest first (a dict: ending one is O(1)).
        self._connections: dict[Connection, None] = {}
        self._lingering: set[SimSocket] = set()   # closed, still delivering
        self._names: dict[str, str] = {}          # add_host: name -> IPv4 address
        #: the running capture (:meth:`capture`), None when none runs: the
        #: data path's one test for it
        self.tap: Capture | None = None

    # -- capture -------------------------------------------------------------------
    def capture(self, path: Any, hosts: Iterable[str] | str | None = None) -> Capture:
        """Write every packet that crosses the network from now on -- or only
        those to or from `hosts` (one IPv4 string or an iterable of them) --
        to the pcap file `path`, as it goes (``docs/guide/capture.rst``; wsp.sim.capture
        says what the packets look like).  Returns the running
        :class:`~wsp.sim.capture.Capture`; its ``close()`` (or a ``with``
        block) stops it and flushes the file.

        One capture at a time: ValueError while another runs on this
        network.  The OSError of ``open()`` when `path` cannot be written;
        TypeError for a `path` that is not a str or os.PathLike or `hosts`
        of the wrong types, ValueError for a host that is not dotted IPv4."""
        with self.lock:
            return start_capture(self, path, hosts)

    # -- time and links ------------------------------------------------------------
    def time(self) -> float:
        """Simulated seconds: 0.0 with no clock; a virtual clock's time; the
        seconds since the network was made with a real clock."""
        clock = self.clock
        return 0.0 if clock is None else clock.now()

    def advance(self, seconds: float) -> None:
        """Move a virtual clock `seconds` forward by hand, delivering what
        falls due on the way, in order.  TypeError for a non-number,
        ValueError for a negative or non-finite one or a network whose clock
        is not virtual."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
        if not 0.0 <= seconds < float("inf"):
            raise ValueError(f"seconds must be a finite number >= 0, not {seconds!r}")
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise ValueError("advance() needs a network made with clock='virtual'")
        clock.advance(float(seconds))

    def next_due(self) -> float | None:
        """The simulated time of the next scheduled delivery (None: nothing is
        scheduled, or no clock) -- what a driver that only polls advances to."""
        clock = self.clock
        if clock is None:
            return None
        with self.lock:
            if self.timed is not None and clock.virtual:
                self.timed.transmit_all()       # what was sent now is scheduled now
            return clock.next_due()

    def step_aside(self) -> None:
        """The calling thread is about to block outside wsp (joining worker
        threads, say): it stops holding a virtual clock now rather than after
        the idle grace.  A no-op without a virtual clock."""
        clock = self.clock
        if clock is not None:
            clock.step_aside()

    def set_link(self, a: str, b: str, *, latency: float = 0.0, jitter: float = 0.0,
                 bandwidth: float | None = None, loss: float = 0.0,
                 one_way: bool = False) -> None:
        """Conditions for traffic from host `a` to host `b` (IPv4 strings;
        ``"*"`` matches any host) and from `b` to `a` unless `one_way`.
        `latency`, `jitter`: seconds (each packet's delay is the latency plus
        a seeded draw in [-jitter, +jitter], never below 0); `bandwidth`:
        bytes per second (None: unlimited); `loss`: the probability that a
        datagram is lost (stream bytes are never lost).  ValueError for a
        negative latency or jitter, a bandwidth <= 0, a loss outside [0, 1],
        or latency, jitter or bandwidth without a clock; TypeError for the
        wrong types.  A call that fails changes nothing."""
        src, dst = host_arg(a, "a"), host_arg(b, "b")
        if not isinstance(one_way, bool):
            raise TypeError(f"one_way must be a bool, not {type(one_way).__name__}")
        link = Link(latency, jitter, bandwidth, loss)
        if link.timed and self.clock is None:
            raise ValueError("latency, jitter and bandwidth need a network made with a clock "
                             "(Network(clock='virtual') or clock='real')")
        with self.lock:
            self.links.set(src, dst, link, one_way)
            for conn in self._connections:        # each looks at its link again
                conn.client.direct = conn.server.direct = False

    # -- names -------------------------------------------------------------------
    def add_host(self, name: str, address: str) -> None:
        """Make `name` stand for the IPv4 `address` on this network (what a
        hosts file or DNS would say; wsp.aio's ``getaddrinfo`` asks here).
        Adding a name again replaces its address.  Names match without regard
        to case, as DNS names do.  TypeError unless both are str; ValueError
        for an empty name or an address that is not dotted IPv4."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if not isinstance(address, str):
            raise TypeError(f"address must be an IPv4 address str, not {type(address).__name__}")
        if not name:
            raise ValueError("name must not be empty")
        try:
            normal = str(ipaddress.IPv4Address(address))
        except ValueError:
            raise ValueError(f"address must be a dotted IPv4 address, not {address!r}") from None
        with self.lock:
            self._names[name.lower()] = normal

    def host_address(self, name: str) -> str | None:
        """The IPv4 address `name` was given with :meth:`add_host`, None
        for a name not added."""
        with self.lock:
            return self._names.get(name.lower())

    def datagram_source(self, overlapped: object) -> tuple[str, int] | None:
        """The sender of the datagram that completed the overlapped
        ``WSPRecvFrom`` of `overlapped` after it had waited (what WSARecvFrom's
        lpFrom holds at its completion; a receive that completed at once
        returns its sender from the call).  Taken once: None afterwards, and
        for an overlapped no datagram completed.  Layered providers carry the
        record up to the application's overlapped (:mod:`wsp.spi.senders`,
        where it is kept)."""
        return senders.take(overlapped)

    # -- switches ----------------------------------------------------------------
    def set_down(self, down: bool = True) -> None:
        """Take the whole network down (every SPI call: WSAENETDOWN) or up."""
        with self.lock:
            self.down = bool(down)

    def set_datagram_loss(self, probability: float) -> None:
        """Lose each datagram with `probability` (deterministic under the
        seed).  TypeError unless a number; ValueError outside [0, 1]."""
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise TypeError(f"probability must be a number, not {type(probability).__name__}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        with self.lock:
            self.datagram_loss = float(probability)

    def connections(self) -> list[Connection]:
        """The stream connections alive now, oldest first."""
        with self.lock:
            return list(self._connections)

    def check_up(self, funcname: str | None) -> None:
        """Raise WSAENETDOWN (naming `funcname`) while the network is down; else do nothing."""
        if self.down:
            raise WinsockError(WSAENETDOWN, funcname)

    # -- addresses -------------------------------------------------------------------
    def bind(self, sock: SimSocket, addr: tuple[str, int], funcname: str | None) -> None:
        """Give `sock` the local address `addr`; port 0 picks a free ephemeral port.

        WSAEADDRINUSE (naming `funcname`) when another socket of the same kind has the port on
        that host or on the wildcard host, unless both set SO_REUSEADDR.
        """
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
        """Release the address `sock` is bound to (nothing if it is not bound)."""
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
        """The socket of type `kind` bound to `addr`, or None.

        An exact host match wins over a wildcard binding; `listening` keeps only listening
        sockets.
        """
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
        """The handshake.  Without a clock it happens now: the listener at
        `addr` queues a new server-side socket and the connection is
        established (before accept, as TCP).  With a clock the client is left
        "connecting" and the SYN goes on its way (wsp.sim.timed): the
        outcome comes back after a round trip."""
        if addr[0] == ANY_HOST or addr[1] == 0:
            raise WinsockError(WSAEADDRNOTAVAIL, funcname)
        timed = self.timed
        if timed is not None and not timed.perfect(host_of(client) if not client.bound or
                                                   client.local[0] == ANY_HOST
                                                   else client.local[0], addr[0]):
            self._bind_for_connect(client, funcname)
            client.state = "connecting"
            client.remote = addr
            timed.connect(client, addr)
            return
        listener = self.lookup(SOCK_STREAM, addr, listening=True)
        if listener is None or len(listener.accept_queue) >= max(listener.backlog, 1):
            raise WinsockError(WSAECONNREFUSED, funcname)
        self._bind_for_connect(client, funcname)
        client.state = "connected"
        self.establish(client, listener, addr)
        if self.tap is not None:
            self.tap.handshake(client.connection)   # the whole handshake took no time
        client.connect_error = 0
        client.post(FD_CONNECT, 0)
        client.post(FD_WRITE)

    def _bind_for_connect(self, client: SimSocket, funcname: str | None) -> None:
        if not client.bound:
            self.bind(client, (host_of(client), 0), funcname)
        elif client.local[0] == ANY_HOST:
            # Connected through the wildcard: the connection's own address
            # is the concrete one, the machine's (its provider's host).
            client.local = (host_of(client), client.local[1])

    def establish(self, client: SimSocket, listener: SimSocket,
                  addr: tuple[str, int]) -> SimSocket:
        """The listener at `addr` takes `client`'s connection: a new
        server-side socket, connected, queued for accept (or handed to a
        waiting AcceptEx).  Returns it."""
        server = SimSocket(self, SOCK_STREAM, None)
        server.local = (addr[0], addr[1])
        server.remote = client.local
        server.listener = listener
        server.sndbuf, server.rcvbuf = listener.sndbuf, listener.rcvbuf
        server.linger_onoff, server.linger_seconds = listener.linger_onoff, listener.linger_seconds
        server.state = "connected"
        client.remote = addr
        client.peer, server.peer = server, client
        conn = Connection(self, client, server)
        client.connection = server.connection = conn
        self._connections[conn] = None
        listener.accept_queue.append(server)
        if listener.accept_requests:         # an AcceptEx is waiting: it takes the connection
            listener.owner.serve_accept_requests(listener)
        if listener.accept_queue:
            listener.armed |= FD_ACCEPT      # a new arrival records FD_ACCEPT again (Windows)
            listener.post(FD_ACCEPT)
        listener.wake()
        return server

    def reset(self, conn: Connection | None, error: int, notify: bool = True,
              close_error: int = WSAECONNABORTED, origin: SimSocket | None = None) -> None:
        """Tear a connection down abortively: both ends' pending operations
        fail with `error`, their unread data is gone, and each end that
        still has a handle gets FD_CLOSE with `close_error` -- by default
        WSAECONNABORTED, what the peer of a hard close is told.  `origin`:
        the end that sends the reset; with a clock the other end learns of
        it after the link's delay (None: the network resets both at once)."""
        if conn is None or conn.closed:
            return
        conn.closed = True
        self._connections.pop(conn, None)
        timed = self.timed
        later = False
        for side in (conn.client, conn.server):
            if (timed is not None and origin is not None and side is not origin
                    and not timed.perfect(origin.local[0], side.local[0])):
                later = True
                timed.reset_later(origin, side, lambda side=side: self._reset_arrives(
                    conn, origin, side, error, close_error))
            else:
                self._reset_side(side, error, notify, close_error)
        if not later and self.tap is not None:
            self.tap.reset(conn, origin)

    def _reset_arrives(self, conn: Connection, origin: SimSocket, side: SimSocket, error: int,
                       close_error: int) -> None:
        """The RST of `origin` reaches `side` (with a clock, after the link's delay)."""
        if self.tap is not None:
            self.tap.reset(conn, origin)
        self._reset_side(side, error, True, close_error)

    def _reset_side(self, side: SimSocket, error: int, notify: bool, close_error: int) -> None:
        if side.reset_error:
            return
        side.reset_error = error
        side.recv_buf.clear()
        side.send_buf.clear()
        side.fail_pending(error, notify)
        if side.disconnect_op is not None and side.owner is not None:
            side.owner.finish_disconnect(side)   # its DisconnectEx fails with the reset
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
                self._connections.pop(conn, None)

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
        """Send one datagram from `sender` to `to`: delivered now (no clock)
        or after the link's delay (wsp.sim.timed), or lost."""
        if len(data) > MAX_DATAGRAM:
            raise WinsockError(WSAEMSGSIZE, funcname)
        if not sender.bound:
            self.bind(sender, (host_of(sender), 0), funcname)
        if self.datagram_loss and self.random.random() < self.datagram_loss:
            return
        source = sender.local
        if source[0] == ANY_HOST:
            source = (host_of(sender), source[1])
        if self.timed is not None:
            self.timed.send_datagram(sender, bytes(data), source, to)
            return
        links = self.links
        if not links.empty and links.lost(links.get(source[0], to[0])):
            return                                  # the link's loss (no clock needed)
        self.deliver_datagram(data, source, to)

    def deliver_datagram(self, data: bytes, source: tuple[str, int], to: tuple[str, int]) -> None:
        """A datagram from `source` reaches address `to` (lock held)."""
        if self.tap is not None:
            self.tap.datagram(data, source, to)   # it reached the host, taken or not
        target = self.lookup(SOCK_DGRAM, to, listening=False)
        if target is None or target.shut_recv or target.handle_closed:
            return                                  # nobody listening: lost, as UDP
        if target.remote is not None and target.remote != source:
            return                                  # a connected UDP socket filters
        while target.pending_recvs:                  # a posted receive takes it directly
            entry = target.pending_recvs.popleft()
            n = entry.fill(data)
            entry.source = source
            op = entry.op
            if op is not None:
                # WSARecvFrom's lpFrom is filled when the operation completes:
                # the overlapped is what the caller has of it then.
                senders.record(op.overlapped, source)
            truncated = n < len(data)
            entry.flags = MSG_PARTIAL if truncated else 0
            target.finish_recv(entry, n, WSAEMSGSIZE if truncated else 0)
            if not entry.peek:
                return
            # a peek leaves the datagram for the next receive (or the queue)
        if target.dgram_bytes + len(data) > target.rcvbuf:
            return                                  # receive buffer full: dropped
        target.dgrams.append((bytes(data), source))
        target.dgram_bytes += len(data)
        target.armed |= FD_READ              # a new datagram records FD_READ again (Windows)
        target.post(FD_READ)
        target.wake()
