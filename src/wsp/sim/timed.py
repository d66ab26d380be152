"""The simulated network's data path when it has a clock (``docs/guide/time-and-links.rst``): what
a send, a connect, a close or a datagram becomes once bytes take time to
cross a link.

This is the only place that turns link conditions into delivery times.
Without a clock the network delivers synchronously (``SimSocket.pump``);
with one, each stream socket has a :class:`Timing` and the network a
:class:`TimedPath`, and::

    pending sends --> send buffer --(window, wire, delay)--> in flight --> peer's receives
                                                                        \\-> receive buffer
    peer consumes n bytes --(delay back)--> the sender's window opens by n

* A send completes when its bytes are in the send buffer (as without a
  clock); the buffer drains onto the link as the *window* allows -- the
  receive-buffer room the peer last advertised -- so what is in flight and
  unread never exceeds the peer's SO_RCVBUF, and a bandwidth-delay product
  larger than the buffers limits throughput to window / round trip, as TCP's
  window does.
* Bytes of one direction of a link leave one after another at its bandwidth
  (in segments of at most :data:`MSS` bytes, so the window reopens as they
  arrive); each segment then takes the latency plus a seeded jitter draw,
  but never arrives before the segment sent ahead of it on its connection:
  jitter never reorders a stream.  Stream bytes are never lost.
* A connect completes after one round trip (SYN there, SYN-ACK or RST
  back); FIN and reset reach the peer after the link's delay, behind the
  data sent before them.  A datagram arrives after its delay, or is lost.

Determinism: with a virtual clock, what threads send at one simulated
moment is not put on the links when they call, but when the simulation is
next idle (``VirtualClock.on_idle``), sorted by the sender's address and
its own sequence -- so the jitter and loss draws and the order of bytes on a
shared link do not depend on which thread called first.  With a real clock
everything goes at once.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from ..constants import FD_CONNECT, FD_WRITE, SOCK_STREAM
from ..errors import WSAECONNABORTED, WSAECONNREFUSED, WSAECONNRESET
from ..spi.clock import SimClock
from .links import LinkTable
from .socket import SimSocket

if TYPE_CHECKING:             # only for annotations: network.py sits above this module
    from .network import Network

__all__ = ["MSS", "Timing", "TimedPath"]

#: the largest segment a bandwidth-limited link carries (TCP over Ethernet)
MSS = 1460


class Timing:
    """The clocked state of one socket."""

    __slots__ = ("path", "window", "in_flight", "last_arrival", "parked", "fin_parked",
                 "connect_op", "seq", "timed", "epoch", "credits", "wake_at")

    def __init__(self, path: TimedPath) -> None:
        self.path = path
        self.timed = False            # its bytes cross a link with delays (else: synchronously)
        self.epoch = 0                # which run of timed sending the window updates belong to
        self.window = 0               # bytes it may still put in flight (the peer's advertised room)
        # Window updates on their way back: (due, nbytes), oldest first.  They
        # are cashed when the sender next looks; only a sender the window
        # holds back gets an event (wake_at) for the first of them.
        self.credits: deque[tuple[float, int]] = deque()
        self.wake_at: float | None = None
        self.in_flight = 0            # bytes sent that have not arrived
        self.last_arrival = 0.0       # when its latest segment arrives: the next is not earlier
        self.parked = bytearray()     # arrived at the peer, not taken (a held connection)
        self.fin_parked = False       # its FIN arrived behind parked bytes
        self.connect_op: Any = None   # (operation, data) of a ConnectEx waiting for the handshake
        self.seq = 0                  # its sends at idle moments, for a thread-independent order

    # -- called by SimSocket (lock held) ----------------------------------------------
    def pump(self, sock: SimSocket) -> None:
        """``SimSocket.pump`` with a clock: deliver bytes parked at the peer,
        move pending sends into the send buffer (completing those wholly in),
        and have what can go transmitted."""
        peer = sock.peer
        if peer is None or sock.reset_error:
            return
        if not self.choose(sock, peer):
            sock.direct = True                        # until the links change
            sock.pump_now()                           # a perfect link: at once, as without a clock
            return
        if self.parked and not (sock.connection is not None and sock.connection.held):
            self.path.unpark(sock, peer)
        fill(sock)
        if sock.send_buf or sock.pending_sends:
            if self.may_send(sock):
                self.path.mark(sock)
        elif sock.fin_queued and not sock.fin_sent:
            self.path.mark(sock)
        if (sock.event_mask or sock.watchers) and not sock.pending_sends and sock.writable():
            sock.post(FD_WRITE)
            sock.wake()

    def choose(self, sock: SimSocket, peer: SimSocket) -> bool:
        """Whether `sock`'s bytes go through the link's delays now.  A link
        that takes no time either way delivers at once, as a network without
        a clock does -- but only once nothing is in flight, so a stream never
        overtakes itself when link conditions change.  Entering timed sending
        starts a new window: the room the peer's buffer has now."""
        if self.timed:
            if (self.in_flight or self.parked or self.fin_parked
                    or not self.path.links.perfect(sock.local[0], peer.local[0])):
                return True
            self.timed = False
            return False
        if self.path.links.perfect(sock.local[0], peer.local[0]):
            return False
        self.timed = True
        self.epoch += 1
        self.window = max(0, peer.rcvbuf - len(peer.recv_buf))
        self.credits.clear()                          # updates for the window it replaces
        self.wake_at = None
        self.last_arrival = max(self.last_arrival, self.path.clock.now())
        return True

    def may_send(self, sock: SimSocket) -> bool:
        """Whether the window lets `sock` put bytes on the link now (after
        cashing the window updates that have arrived); if not, an event wakes
        it when the next update arrives."""
        credits = self.credits
        if credits:
            now = self.path.clock.now()
            while credits and credits[0][0] <= now:
                self.window += credits.popleft()[1]
        if self.window > 0:
            return True
        if credits and (self.wake_at is None or self.wake_at > credits[0][0]):
            self.wake_at = credits[0][0]
            self.path.clock.call_at(self.wake_at, self.path.window_opens, sock, self.epoch)
        return False

    def consumed(self, sock: SimSocket, nbytes: int) -> None:
        """The application read `nbytes` from `sock`'s receive buffer: the room
        reaches the peer's window after the delay back (or the peer sends more
        at once, over a perfect link)."""
        peer = sock.peer
        if peer is None or nbytes <= 0:
            return
        timing = peer.timing
        if timing is not None and timing.timed:
            self.path.open_window_later(sock, peer, nbytes)
        else:
            peer.pump()


def fill(sock: SimSocket) -> None:
    """Move pending sends into the send buffer as far as SO_SNDBUF allows;
    complete the sends that are wholly in (lock held)."""
    while sock.pending_sends:
        entry = sock.pending_sends[0]
        size = len(entry.data)
        room = sock.sndbuf - len(sock.send_buf)
        if room > 0 and entry.offset < size:
            n = min(room, size - entry.offset)
            sock.send_buf += entry.data[entry.offset:entry.offset + n]
            entry.offset += n
        if entry.offset < size:
            return
        sock.pending_sends.popleft()
        sock.finish_send(entry, 0)


class TimedPath:
    """The clocked data path of one network (every method: lock held)."""

    def __init__(self, network: Network, clock: SimClock, links: LinkTable) -> None:
        self.network = network
        self.clock = clock
        self.links = links
        self.virtual = clock.virtual
        self._outbox: dict[SimSocket, None] = {}     # stream sockets with something to send
        self._batch: list[tuple[Any, Callable[..., None], tuple]] = []   # SYNs and datagrams
        if self.virtual:
            clock.on_idle = self.transmit_all

    def timing(self) -> Timing:
        """A new socket's clocked state."""
        return Timing(self)

    # -- when things go -------------------------------------------------------------------
    def mark(self, sock: SimSocket) -> None:
        """`sock` has bytes (or a FIN) to put on the link: now with a real
        clock, at the next idle moment with a virtual one."""
        if self.virtual:
            self._outbox[sock] = None
        else:
            self.transmit(sock)

    def _later(self, sock: SimSocket, func: Callable[..., None], *args: Any) -> None:
        """Run ``func(*args)`` -- a send with draws -- now (real clock) or at
        the next idle moment, in the order of (sender's address, its sequence)."""
        if not self.virtual:
            func(*args)
            return
        timing = sock.timing
        timing.seq += 1
        self._batch.append(((sock.local, timing.seq), func, args))

    def transmit_all(self) -> bool:
        """The virtual clock's idle hook: send what was sent at this moment,
        in an order that does not depend on thread timing.  True if anything
        was waiting."""
        if not self._outbox and not self._batch:
            return False
        while self._batch or self._outbox:
            batch, self._batch = self._batch, []
            batch.sort(key=lambda item: item[0])
            for _key, func, args in batch:
                func(*args)
            outbox, self._outbox = self._outbox, {}
            for sock in sorted(outbox, key=_stream_key):
                self.transmit(sock)
        return True

    def _delay(self, src: str, dst: str) -> float:
        """The delay of a control packet (no payload) from host `src` to `dst`."""
        return self.links.delay(self.links.get(src, dst))

    # -- streams ----------------------------------------------------------------------------
    def transmit(self, sock: SimSocket) -> None:
        """Put what `sock` may send on the link: its send buffer, then its
        pending sends straight from the application's buffers, up to the
        window; then its FIN once everything has gone."""
        peer = sock.peer
        if peer is None or sock.reset_error:
            return
        timing = sock.timing
        links, clock = self.links, self.clock
        src, dst = sock.local[0], peer.local[0]
        link = links.get(src, dst)
        now = clock.now()
        while timing.may_send(sock):
            fill(sock)
            if sock.send_buf:
                n = min(len(sock.send_buf), timing.window)
                if link.bandwidth is not None and n > MSS:
                    n = MSS
                data = bytes(sock.send_buf[:n])
                del sock.send_buf[:n]
            elif sock.pending_sends:                 # SO_SNDBUF 0: from the application's buffer
                entry = sock.pending_sends[0]
                n = min(len(entry.data) - entry.offset, timing.window)
                if link.bandwidth is not None and n > MSS:
                    n = MSS
                data = bytes(entry.data[entry.offset:entry.offset + n])
                entry.offset += n
                if entry.offset >= len(entry.data):
                    sock.pending_sends.popleft()
                    sock.finish_send(entry, 0)
            else:
                break
            timing.window -= n
            timing.in_flight += n
            due = max(links.wire(src, dst, link, n, now) + links.delay(link), timing.last_arrival)
            timing.last_arrival = due
            clock.call_at(due, self.arrive, sock, peer, data)
        fill(sock)
        if sock.fin_queued and not sock.fin_sent and not sock.send_buf and not sock.pending_sends:
            sock.fin_sent = True
            due = max(now + links.delay(link), timing.last_arrival)
            timing.last_arrival = due
            clock.call_at(due, self.arrive_fin, sock, peer)
            if sock.disconnect_op is not None:        # a DisconnectEx waited for this FIN
                sock.owner.finish_disconnect(sock)
        if (sock.event_mask or sock.watchers) and not sock.pending_sends and sock.writable():
            sock.post(FD_WRITE)
            sock.wake()

    def arrive(self, sock: SimSocket, peer: SimSocket, data: bytes) -> None:
        """A segment of `sock`'s reaches `peer`."""
        timing = sock.timing
        timing.in_flight -= len(data)
        if timing.in_flight == 0:
            sock.wake()                               # a linger may wait for this
        conn = sock.connection
        if peer.reset_error or conn is None or peer.connection is not conn:
            return                                    # the connection is gone: lost
        if timing.parked or conn.held:
            timing.parked += data                     # behind what waits already
            return
        self.deliver(sock, peer, data)

    def deliver(self, sock: SimSocket, peer: SimSocket, data: Any) -> int:
        """Hand `data` to `peer` (receives first, then its buffer); the part
        the application took at once opens the window again.  How many
        bytes it took."""
        before = len(peer.recv_buf)
        taken = peer.accept_bytes(data, sock.connection)
        if peer.rst_owed:
            # It refuses data (its handle is closed, or it shut receiving
            # down): its reset goes back to the sender (Wine's test_shutdown:
            # WSAECONNABORTED after the peer shut sending down and closed).
            self.network.reset(sock.connection, WSAECONNABORTED
                               if peer.shutdown_send and peer.handle_closed else WSAECONNRESET,
                               origin=peer)
            return taken
        if taken < len(data):
            sock.timing.parked += data[taken:]
        read_at_once = taken - (len(peer.recv_buf) - before)
        if read_at_once > 0 and sock.timing.timed:
            self.open_window_later(peer, sock, read_at_once)
        return taken

    def unpark(self, sock: SimSocket, peer: SimSocket) -> None:
        """Deliver the bytes of `sock` parked at `peer` (a hold ended)."""
        timing = sock.timing
        data, timing.parked = bytes(timing.parked), bytearray()
        self.deliver(sock, peer, data)
        if timing.fin_parked and not timing.parked:
            timing.fin_parked = False
            self.arrive_fin(sock, peer)

    def arrive_fin(self, sock: SimSocket, peer: SimSocket) -> None:
        """`sock`'s FIN reaches `peer`: the end of its stream."""
        conn = sock.connection
        if peer.reset_error or conn is None or peer.connection is not conn:
            return
        if sock.timing.parked:
            sock.timing.fin_parked = True
            return
        peer.receive_fin()
        self.network.forget_if_done(sock)

    def open_window_later(self, reader: SimSocket, sender: SimSocket, nbytes: int) -> None:
        """`reader` took `nbytes`: `sender`'s window opens by that much after
        the latency back (the acknowledgement carries no jitter: it is
        never drawn, so its time does not depend on when it was decided)."""
        link = self.links.get(reader.local[0], sender.local[0])
        timing = sender.timing
        due = self.clock.now() + link.latency
        if timing.credits and timing.credits[-1][0] > due:
            due = timing.credits[-1][0]                # keep them in order (a link changed)
        timing.credits.append((due, nbytes))
        if (timing.wake_at is None and timing.window <= 0
                and (sender.send_buf or sender.pending_sends)):
            timing.wake_at = due                      # it waits for this update
            self.clock.call_at(due, self.window_opens, sender, timing.epoch)

    def window_opens(self, sender: SimSocket, epoch: int) -> None:
        """A window update reaches `sender`, which the window held back."""
        timing = sender.timing
        if epoch != timing.epoch:
            return                                    # for a window that has been replaced
        timing.wake_at = None
        if not sender.reset_error and (sender.send_buf or sender.pending_sends):
            self.mark(sender)

    def reset_later(self, origin: SimSocket, side: SimSocket, apply: Callable[[], None]) -> None:
        """A reset from `origin` reaches `side` after the delay, behind the
        data `origin` sent before it: then ``apply()``."""
        timing = origin.timing
        due = self.clock.now() + self._delay(origin.local[0], side.local[0])
        if timing is not None:
            due = max(due, timing.last_arrival)
            timing.last_arrival = due
        self.clock.call_at(due, apply)

    # -- the handshake ---------------------------------------------------------------------
    def connect(self, client: SimSocket, addr: tuple[str, int]) -> None:
        """Send `client`'s SYN to `addr` (the client is bound and "connecting")."""
        self._later(client, self._send_syn, client, addr)

    def _send_syn(self, client: SimSocket, addr: tuple[str, int]) -> None:
        due = self.clock.now() + self._delay(client.local[0], addr[0])
        self.clock.call_at(due, self._syn_arrives, client, addr)

    def perfect(self, a: str, b: str) -> bool:
        """Whether hosts `a` and `b` reach each other at once (see LinkTable.perfect)."""
        return self.links.perfect(a, b)

    def _syn_arrives(self, client: SimSocket, addr: tuple[str, int]) -> None:
        if client.state != "connecting" or client.handle_closed or client.remote != addr:
            return                                    # it gave up meanwhile
        network = self.network
        listener = network.lookup(SOCK_STREAM, addr, listening=True)
        back = self._delay(addr[0], client.local[0])
        if listener is None or len(listener.accept_queue) >= max(listener.backlog, 1):
            if network.tap is not None:
                network.tap.refused(client, addr)
            self.clock.call_at(self.clock.now() + back, self._refused, client, addr)
            return
        server = network.establish(client, listener, addr)
        if network.tap is not None:
            network.tap.syn(client.connection)
        server.timing.window = client.rcvbuf
        client.timing.window = server.rcvbuf
        due = self.clock.now() + back
        server.timing.last_arrival = due              # its data follows the SYN-ACK
        self.clock.call_at(due, self._syn_ack_arrives, client, server)

    def _syn_ack_arrives(self, client: SimSocket, server: SimSocket) -> None:
        if client.state != "connecting" or client.peer is not server:
            return
        if self.network.tap is not None:
            self.network.tap.syn_ack(client.connection)
        client.state = "connected"
        client.connect_error = 0
        client.post(FD_CONNECT, 0)
        client.post(FD_WRITE)
        client.wake()
        if client.owner is not None:
            client.owner.finish_connect(client)
        client.pump()                                 # a ConnectEx's data, queued meanwhile

    def _refused(self, client: SimSocket, addr: tuple[str, int]) -> None:
        if client.state != "connecting" or client.remote != addr:
            return
        client.state = "new"
        client.remote = None
        client.connect_error = client.so_error = WSAECONNREFUSED
        client.armed |= FD_CONNECT
        client.post(FD_CONNECT, WSAECONNREFUSED)
        client.wake()
        if client.owner is not None:
            client.owner.finish_connect(client)

    # -- datagrams ---------------------------------------------------------------------------
    def send_datagram(self, sender: SimSocket, data: bytes, source: tuple[str, int],
                      to: tuple[str, int]) -> None:
        """Send a datagram: lost (a seeded draw) or delivered after its delay
        (over a link that takes no time: now, unless lost)."""
        if not self.links.get(source[0], to[0]).timed:
            if not self.links.lost(self.links.get(source[0], to[0])):
                self.network.deliver_datagram(data, source, to)
            return
        self._later(sender, self._send_datagram, data, source, to)

    def _send_datagram(self, data: bytes, source: tuple[str, int], to: tuple[str, int]) -> None:
        links = self.links
        link = links.get(source[0], to[0])
        if links.lost(link):
            return
        now = self.clock.now()
        due = links.wire(source[0], to[0], link, len(data), now) + links.delay(link)
        self.clock.call_at(due, self.network.deliver_datagram, data, source, to)


def _stream_key(sock: SimSocket) -> tuple:
    """The thread-independent order of stream senders: their connection's addresses."""
    return (sock.local, sock.remote)
