"""Packet capture of the simulated network (``docs/guide/capture.rst``): what crosses the
network, written as it goes to a classic pcap file that Wireshark and
tshark read.

This is the only place that knows the wire formats (pcap, IPv4, TCP, UDP)
and the only place that invents TCP's sequence and acknowledgement numbers
-- the simulated network itself moves bytes, not segments.  The network
calls in here only while a capture runs (``Network.tap`` is not None): the
compiled data path pays one attribute test for it and nothing else.

The TCP the file shows (a model, not an implementation):

* the handshake -- SYN (MSS 1460, window scale), SYN-ACK, ACK -- where the
  network establishes a connection;
* data in segments of at most :data:`MSS` bytes, written the moment the
  bytes cross into the peer (its posted receives or its receive buffer),
  not when the application sends: bytes that flow control holds in the
  sender's send buffer are not on the wire yet;
* after each delivery one pure ACK from the receiver for everything so far,
  advertising the room its receive buffer has left (a receiver that does
  not read advertises a zero window); a read that opens the window by at
  least one MSS (or half the buffer), or lets waiting bytes go, sends a
  window update first;
* FIN after the data, and its ACK; RST for a reset (from the end that
  resets; a reset by the network, ``Connection.reset`` or the fault
  layer's, shows an RST towards each end);
* datagrams as UDP.

Every packet is written when it arrives at its destination, with the
network's time: simulated seconds with a clock, wall time without.  An ACK
therefore appears one link latency after the data it acknowledges (the
link's latency back, as the clocked path opens the sender's window); ACKs
that are due later than now wait in a small heap (headers only, never
payload) and are written in time order, so the file stays sorted.
"""
from __future__ import annotations

import heapq
import ipaddress
import os
import random
import struct
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable

if TYPE_CHECKING:             # only for annotations: network.py sits above this module
    from .network import Network
    from .socket import Connection, SimSocket

__all__ = ["Capture", "MSS", "LINKTYPE_RAW"]

MSS = 1460                    # the largest TCP payload of a segment (TCP over Ethernet)
LINKTYPE_RAW = 101            # pcap link type: raw IPv4/IPv6 packets, no link-layer header
_SNAPLEN = 65535              # an IPv4 packet is never longer
_BUFFERING = 1 << 16          # bytes the file buffers between writes to the OS

# TCP flags
_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_HANDSHAKE_ACK = 0x100           # an owed ACK that only the handshake's own can be
_TCP, _UDP = 6, 17

_PCAP_HEADER = struct.Struct("<IHHiIII")     # nanosecond-resolution classic pcap
_RECORD = struct.Struct("<IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_TCP_HEADER = struct.Struct("!HHIIBBHHH")
_UDP_HEADER = struct.Struct("!HHHH")
_SYN_OPTIONS = struct.Struct("!BBHBBBB")     # MSS (kind 2), NOP, window scale (kind 3)


def _ones_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit ones' complement sum of `data` (RFC 1071), reduced modulo
    0xFFFF: 2**16 is 1 modulo 0xFFFF, so the sum of the big-endian words is
    the whole buffer read as one big-endian number, modulo 0xFFFF -- one C
    call instead of a Python loop over the words."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8                           # an odd last byte is the high half of a word
    return value % 0xFFFF


def _checksum(total: int) -> int:
    """The checksum field for data whose ones' sum is `total`: the complement,
    never 0 (0xFFFF and 0 are the same in ones' complement, and 0 means "no
    checksum" to UDP)."""
    return 0xFFFF - total % 0xFFFF


def _hosts_arg(hosts: object) -> frozenset[bytes] | None:
    """`hosts` (None, one IPv4 string, or an iterable of them) as packed
    addresses; TypeError or ValueError naming the argument."""
    if hosts is None:
        return None
    if isinstance(hosts, str):
        hosts = (hosts,)
    try:
        items = list(hosts)                    # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"hosts must be None, an IPv4 address str or an iterable of them, "
                        f"not {type(hosts).__name__}") from None
    packed = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"hosts must hold IPv4 address strs, not {type(item).__name__}")
        try:
            packed.add(ipaddress.IPv4Address(item).packed)
        except ValueError:
            raise ValueError(f"hosts: {item!r} is not a dotted IPv4 address") from None
    if not packed:
        raise ValueError("hosts must name at least one address (None: every host)")
    return frozenset(packed)


class _End:
    """One end of a captured TCP connection: what it has put on the wire."""

    __slots__ = ("addr", "port", "isn", "sent", "shift", "window", "fin", "acked", "wrote",
                 "to_addr", "to_port", "tcp_sum", "ip_sum")

    def __init__(self, address: tuple[str, int], packed: bytes, isn: int, rcvbuf: int) -> None:
        self.addr = packed
        self.port = address[1]
        self.isn = isn
        self.sent = 0                # sequence space used: SYN, data bytes, FIN
        # The window scale it announces: the least shift that lets its
        # buffer's size fit the 16-bit field (RFC 7323 allows up to 14).
        shift = 0
        while shift < 14 and (max(rcvbuf, 0) >> shift) > 0xFFFF:
            shift += 1
        self.shift = shift
        self.window = -1             # the (scaled) window it advertised last
        self.fin = False
        self.acked = -1              # the acknowledgement number of its last packet written
        self.wrote = -1              # and that packet's window
        self.to_addr, self.to_port = b"", 0
        self.tcp_sum = self.ip_sum = 0

    def towards(self, other: _End) -> None:
        """Its packets go to `other`: precompute the checksum words they all
        share (addresses, ports, the protocol; IPv4's fixed fields)."""
        self.to_addr, self.to_port = other.addr, other.port
        self.tcp_sum = _ones_sum(self.addr + other.addr) + _TCP + self.port + other.port
        self.ip_sum = _ones_sum(self.addr + other.addr) + 0x4500 + 0x4000 + (64 << 8 | _TCP)

    def seq(self) -> int:
        """Its next sequence number."""
        return (self.isn + self.sent) & 0xFFFFFFFF


class _Flow:
    """The TCP state the capture keeps for one stream connection (on the
    Connection itself, so it lives exactly as long)."""

    __slots__ = ("capture", "client", "server", "wanted", "closed", "handshake_ack")

    def __init__(self, capture: Capture, conn: Connection, rng: random.Random,
                 packed: Any) -> None:
        self.capture = capture
        client, server = conn.client, conn.server
        self.client = _End(client.local, packed(client.local[0]), rng.getrandbits(32),
                           client.rcvbuf)
        self.server = _End(server.local, packed(server.local[0]), rng.getrandbits(32),
                           server.rcvbuf)
        self.client.towards(self.server)
        self.server.towards(self.client)
        self.wanted = capture.wants(self.client.addr, self.server.addr)
        self.closed = False          # an RST went: nothing more is written for it
        self.handshake_ack = False   # the handshake's last ACK is still owed

    def ends(self, sender: SimSocket) -> tuple[_End, _End]:
        """(the end `sender` is, the other end)."""
        if sender is sender.connection.client:
            return self.client, self.server
        return self.server, self.client


def _room(sock: SimSocket) -> int:
    """The bytes `sock` can take now: its receive buffer's free room (with
    SO_RCVBUF 0, what its first posted receive holds)."""
    room = sock.rcvbuf - len(sock.recv_buf)
    if room <= 0:
        room = 0
        if sock.pending_recvs:
            room = sock.pending_recvs[0].capacity
    return room


class Capture:
    """A running capture of a network's packets to a pcap file (``docs/guide/capture.rst``);
    made by :meth:`wsp.sim.Network.capture`.

    ``close()`` (or leaving a ``with`` block) stops it and flushes the
    file.  ``packets``: how many packets were written so far.  A write that
    fails (a full disk) stops the capture instead of failing the network's
    call that was under way; ``error`` then holds the OSError.  Everything
    it does runs under the network's lock."""

    def __init__(self, network: Network, path: str | os.PathLike[str],
                 hosts: object = None) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        self._hosts = _hosts_arg(hosts)
        self.network = network
        self.path = os.fspath(path)
        # open() raises the OSError that names the path and the reason
        self._file: BinaryIO | None = open(path, "wb", buffering=_BUFFERING)  # noqa: SIM115 -- closed by close()
        self._file.write(_PCAP_HEADER.pack(0xA1B23C4D, 2, 4, 0, 0, _SNAPLEN, LINKTYPE_RAW))
        self.packets = 0
        #: the OSError that stopped the capture early (a full disk), None if none did
        self.error: OSError | None = None
        self._clock = network.clock
        self._last = 0                    # ns of the last packet: the file stays sorted
        self._later: list[tuple[int, int, Any]] = []   # (ns, order, ACK owed) heap
        self._order = 0
        self._ident = 0                   # IPv4 identification, per packet
        self._rng = random.Random(f"capture:{network.seed}")   # initial sequence numbers
        self._packed: dict[str, bytes] = {}

    # -- the public side ------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether the capture has stopped."""
        return self._file is None

    def close(self) -> None:
        """Stop capturing: write the ACKs still owed, flush and close the
        file.  Closing again does nothing."""
        with self.network.lock:
            if self._file is None:
                return
            try:
                self._due(None)
            finally:
                file, self._file = self._file, None
                if self.network.tap is self:
                    self.network.tap = None
                if file is not None:          # (None: a failed write closed it already)
                    file.close()

    def __enter__(self) -> Capture:
        """The capture itself (it is running already)."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop capturing (:meth:`close`), whatever ended the block."""
        self.close()

    def __repr__(self) -> str:
        """The file, whether it still runs, and how many packets it wrote."""
        state = "closed" if self._file is None else "running"
        return f"<Capture {self.path!r} {state}, {self.packets} packets>"

    def wants(self, a: bytes, b: bytes) -> bool:
        """Whether packets between packed IPv4 addresses `a` and `b` are captured."""
        hosts = self._hosts
        return hosts is None or a in hosts or b in hosts

    # -- time and the file ------------------------------------------------------------
    def _now(self) -> int:
        """The network's time in ns: its clock's, or the wall clock's without one."""
        clock = self._clock
        if clock is None:
            return time.time_ns()             # wall time, without a float's rounding
        return int(round(clock.now() * 1e9))

    def _delay(self, src: str, dst: str) -> int:
        """ns a control packet from host `src` takes to host `dst`: the link's
        latency (no jitter, as the clocked path's window updates), 0 without
        a clock."""
        if self._clock is None:
            return 0
        return int(round(self.network.links.get(src, dst).latency * 1e9))

    def _packed_host(self, host: str) -> bytes:
        """The 4 bytes of IPv4 `host` (remembered: a network has few hosts)."""
        packed = self._packed.get(host)
        if packed is None:
            packed = self._packed[host] = ipaddress.IPv4Address(host).packed
        return packed

    def _due(self, now: int | None) -> None:
        """Write the packets owed by `now` (None: all of them), in time order."""
        later = self._later
        while later and (now is None or later[0][0] <= now):
            at, _, (flow, sender, window, flags) = heapq.heappop(later)
            if flow.closed:
                continue                      # an RST went first: it never arrives
            if flags == _HANDSHAKE_ACK:
                if not flow.handshake_ack:
                    continue                  # it went with the client's first data
                flow.handshake_ack = False
                flags = _ACK
            elif flags == _ACK:
                self._pure_ack(at, flow, sender, window)
                continue
            self._write_tcp(at, flow, sender, flags, b"", window)

    def _pure_ack(self, at: int, flow: _Flow, sender: _End, window: int) -> None:
        """A pure ACK from `sender`, unless its last packet already said the
        same (a segment it sent meanwhile carried this acknowledgement: a
        second one would be a duplicate ACK, which means loss to TCP)."""
        other = flow.server if sender is flow.client else flow.client
        if other.seq() == sender.acked and window == sender.wrote:
            return
        self._write_tcp(at, flow, sender, _ACK, b"", window)

    def _owe(self, at: int, flow: _Flow, sender: _End, window: int, flags: int) -> None:
        """A packet that arrives at `at` ns, later than now: written in turn."""
        self._order += 1
        heapq.heappush(self._later, (at, self._order, (flow, sender, window, flags)))

    def _record(self, at: int, packet: bytes) -> None:
        """Append one packet to the file, at `at` ns (never before the last)."""
        file = self._file
        if file is None:
            return                            # stopped by a failed write, below
        if at < self._last:
            at = self._last
        self._last = at
        try:
            file.write(_RECORD.pack(at // 1_000_000_000, at % 1_000_000_000,
                                    len(packet), len(packet)) + packet)
        except OSError as exc:
            # A full disk must not break the network the capture watches (this
            # runs inside its sends and receives): the capture stops, and says why.
            self.error = exc
            self._file = None
            if self.network.tap is self:
                self.network.tap = None
            try:
                file.close()
            except OSError:
                pass
            return
        self.packets += 1

    def _ip(self, proto: int, src: bytes, dst: bytes, payload_len: int) -> bytes:
        """An IPv4 header (Don't Fragment, TTL 64) with its checksum."""
        self._ident = (self._ident + 1) & 0xFFFF
        header = _IPV4.pack(0x45, 0, 20 + payload_len, self._ident, 0x4000, 64, proto, 0,
                            src, dst)
        return header[:10] + _checksum(_ones_sum(header)).to_bytes(2, "big") + header[12:]

    # -- TCP -------------------------------------------------------------------------
    def _write_tcp(self, at: int, flow: _Flow, sender: _End, flags: int, payload: Any,
                   window: int | None = None) -> None:
        """One segment from `sender` with its current sequence number; the
        acknowledgement is everything the other end has put on the wire.
        (The caller has written what was owed before `at`.)"""
        other = flow.server if sender is flow.client else flow.client
        if window is None:
            window = sender.window
        seq = (sender.isn + sender.sent) & 0xFFFFFFFF
        ack = (other.isn + other.sent) & 0xFFFFFFFF if flags & _ACK else 0
        if flags & _SYN:
            options = _SYN_OPTIONS.pack(2, 4, MSS, 1, 3, 3, sender.shift)
            window = min(window << sender.shift, 0xFFFF)   # a SYN's window is never scaled
            options_sum = _ones_sum(options)
        else:
            options, options_sum = b"", 0
        header_len = 20 + len(options)
        length = header_len + len(payload)
        # The checksum over the pseudo-header, the header and the payload,
        # word by word: the shared words were summed once (_End.towards).
        offset_flags = (header_len // 4) << 12 | flags
        total = (sender.tcp_sum + length + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16)
                 + (ack & 0xFFFF) + offset_flags + window + options_sum)
        if payload:
            total += _ones_sum(payload)
        tcp = _TCP_HEADER.pack(sender.port, sender.to_port, seq, ack, offset_flags >> 8,
                               flags, window, _checksum(total), 0)
        self._ident = ident = (self._ident + 1) & 0xFFFF
        ip = _IPV4.pack(0x45, 0, 20 + length, ident, 0x4000, 64, _TCP,
                        _checksum(sender.ip_sum + 20 + length + ident), sender.addr,
                        sender.to_addr)
        self._record(at, ip + tcp + options + bytes(payload) if payload else ip + tcp + options)
        sender.sent += len(payload) + (1 if flags & (_SYN | _FIN) else 0)
        sender.acked, sender.wrote = ack, window

    def _advertise(self, end: _End, sock: SimSocket) -> int:
        """The scaled window `end` (socket `sock`) advertises now; remembered."""
        room = _room(sock)
        window = min((room + (1 << end.shift) - 1) >> end.shift, 0xFFFF)   # rounded up
        end.window = window
        return window

    def _ack(self, flow: _Flow, sender: _End, sock: SimSocket, to: SimSocket,
             flags: int = _ACK) -> None:
        """A pure ACK from `sock` (end `sender`) to `to`, arriving one latency later."""
        window = self._advertise(sender, sock)
        now = self._now()
        self._due(now)
        delay = self._delay(sock.local[0], to.local[0])
        if delay <= 0:
            if flags == _HANDSHAKE_ACK:
                flow.handshake_ack = False
                self._write_tcp(now, flow, sender, _ACK, b"", window)
            else:
                self._pure_ack(now, flow, sender, window)
        else:
            self._owe(now + delay, flow, sender, window, flags)

    def _segment(self, flow: _Flow, sender: _End, flags: int, window: int) -> None:
        """A segment without payload from `sender`, now."""
        now = self._now()
        self._due(now)
        self._write_tcp(now, flow, sender, flags, b"", window)

    def flow(self, conn: Connection) -> _Flow:
        """The capture's TCP state of `conn` (made on first sight: a
        connection that began before the capture shows no handshake)."""
        flow = conn.tap
        if flow is None or flow.capture is not self:
            flow = conn.tap = _Flow(self, conn, self._rng, self._packed_host)
        return flow

    def handshake(self, conn: Connection) -> None:
        """The network established `conn` at once: SYN, SYN-ACK and ACK now."""
        self.syn(conn)
        self.syn_ack(conn)

    def syn(self, conn: Connection) -> None:
        """The client's SYN reaches the server of the new connection `conn`."""
        flow = self.flow(conn)
        if flow.wanted:
            self._segment(flow, flow.client, _SYN, self._advertise(flow.client, conn.client))

    def syn_ack(self, conn: Connection) -> None:
        """The server's SYN-ACK reaches the client; the client's ACK follows
        one latency later (or with its first data, if that comes sooner)."""
        flow = self.flow(conn)
        if not flow.wanted:
            return
        self._segment(flow, flow.server, _SYN | _ACK, self._advertise(flow.server, conn.server))
        flow.handshake_ack = True
        self._ack(flow, flow.client, conn.client, conn.server, _HANDSHAKE_ACK)

    def refused(self, client: SimSocket, addr: tuple[str, int]) -> None:
        """A SYN from `client` reaches `addr`, where nobody listens: the SYN
        now, the RST back one latency later."""
        src, dst = self._packed_host(client.local[0]), self._packed_host(addr[0])
        if not self.wants(src, dst):
            return
        flow = _Flow.__new__(_Flow)           # a flow of two packets, kept by nobody
        flow.capture, flow.wanted, flow.closed, flow.handshake_ack = self, True, False, False
        flow.client = _End(client.local, src, self._rng.getrandbits(32), client.rcvbuf)
        flow.server = _End(addr, dst, 0, 0)
        flow.client.towards(flow.server)
        flow.server.towards(flow.client)
        self._segment(flow, flow.client, _SYN, self._advertise(flow.client, client))
        at = self._now() + self._delay(addr[0], client.local[0])
        self._owe(at, flow, flow.server, 0, _RST | _ACK)

    def stream(self, receiver: SimSocket, conn: Connection, data: Any, nbytes: int) -> None:
        """The first `nbytes` of `data` crossed into `receiver`: the sender's
        segments, then the receiver's ACK with the room it has left."""
        flow = self.flow(conn)
        if not flow.wanted or flow.closed:
            return
        sender_sock = receiver.peer
        sender, _ = flow.ends(sender_sock)
        now = self._now()
        self._due(now)
        if flow.handshake_ack and sender is flow.client:
            flow.handshake_ack = False        # the handshake's ACK goes with the first data
            self._write_tcp(now, flow, sender, _ACK, b"", sender.window)
        window = self._advertise(sender, sender_sock)
        if nbytes <= MSS and nbytes == len(data):    # the common case: one segment, no slice
            self._write_tcp(now, flow, sender, _ACK | _PSH, data, window)
        else:
            view = memoryview(data)
            for start in range(0, nbytes, MSS):
                end = min(start + MSS, nbytes)
                self._write_tcp(now, flow, sender, _ACK | (_PSH if end == nbytes else 0),
                                view[start:end], window)
        receiving, _ = flow.ends(receiver)
        self._ack(flow, receiving, receiver, sender_sock)

    def read(self, reader: SimSocket) -> None:
        """The application read from `reader`'s receive buffer: a window
        update when the window opened by at least an MSS (or half the
        buffer), or when the peer has bytes waiting for the room."""
        conn = reader.connection
        peer = reader.peer
        if conn is None or peer is None:
            return
        flow = self.flow(conn)
        if not flow.wanted or flow.closed:
            return
        end, _ = flow.ends(reader)
        window = min((_room(reader) + (1 << end.shift) - 1) >> end.shift, 0xFFFF)
        if window <= end.window:
            return
        step = max(1, min(MSS, reader.rcvbuf // 2) >> end.shift)
        if window - max(end.window, 0) >= step or peer.send_buf or peer.pending_sends:
            self._ack(flow, end, reader, peer)

    def fin(self, receiver: SimSocket) -> None:
        """The peer's FIN reaches `receiver` (after all its data); its ACK follows."""
        conn = receiver.connection
        sender_sock = receiver.peer
        if conn is None or sender_sock is None:
            return
        flow = self.flow(conn)
        if not flow.wanted or flow.closed:
            return
        sender, receiving = flow.ends(sender_sock)
        if sender.fin:
            return
        sender.fin = True
        self._segment(flow, sender, _FIN | _ACK, self._advertise(sender, sender_sock))
        self._ack(flow, receiving, receiver, sender_sock)

    def reset(self, conn: Connection, origin: SimSocket | None) -> None:
        """An RST of `conn` from `origin` reaches the other end now; with no
        origin (a reset by the network), one towards each end."""
        flow = self.flow(conn)
        if not flow.wanted or flow.closed:
            return
        now = self._now()
        self._due(now)
        senders = (origin,) if origin is not None else (conn.server, conn.client)
        for sock in senders:
            end, _ = flow.ends(sock)
            self._write_tcp(now, flow, end, _RST | _ACK, b"", 0)
        flow.closed = True

    # -- UDP -------------------------------------------------------------------------
    def datagram(self, data: Any, source: tuple[str, int], to: tuple[str, int]) -> None:
        """A datagram from `source` reaches the host of `to`."""
        src, dst = self._packed_host(source[0]), self._packed_host(to[0])
        if not self.wants(src, dst):
            return
        length = 8 + len(data)
        udp = _UDP_HEADER.pack(source[1], to[1], length, 0)
        pseudo = src + dst + bytes((0, _UDP)) + length.to_bytes(2, "big")
        total = _ones_sum(pseudo) + _ones_sum(udp) + (_ones_sum(data) if len(data) else 0)
        udp = udp[:6] + _checksum(total).to_bytes(2, "big")
        now = self._now()
        self._due(now)
        self._record(now, self._ip(_UDP, src, dst, length) + udp + bytes(data))


def start(network: Network, path: Any, hosts: Iterable[str] | str | None) -> Capture:
    """Start a capture on `network` (lock held by the caller): ValueError
    while another one runs there."""
    if network.tap is not None:
        raise ValueError(f"a capture is already running on this network ({network.tap.path!r}); "
                         "close it first")
    network.tap = capture = Capture(network, path, hosts)
    return capture
