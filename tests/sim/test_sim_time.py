"""Simulated time and link conditions (SPEC §7.1), driven by hand: every
test here moves the virtual clock with ``net.advance`` / ``net.next_due``
and polls non-blocking sockets, so the times it asserts are the network
model's, not those of any wait."""
from __future__ import annotations

import pytest

import wsp
import wsp.sim
from wsp import (AF_INET, FIONBIO, SD_SEND, SO_LINGER, SO_RCVBUF, SO_SNDBUF, SOCK_DGRAM,
                 SOCK_STREAM, SOL_SOCKET, Linger, Overlapped)
from wsp.errors import (WSA_IO_PENDING, WSAECONNREFUSED, WSAECONNRESET, WSAENOTCONN,
                        WSAEWOULDBLOCK, WinsockError)
from wsp.sim.timed import MSS

A, B = "10.0.0.1", "10.0.0.2"


class Host:
    """One process standing for machine `host` on `net`."""

    def __init__(self, net, host):
        self.net = net
        self.proc = wsp.Process()
        self.prov = wsp.sim.Provider(net, host=host)
        self.proc.catalog.install(self.prov)
        self.proc.WSAStartup(0x0202)
        self.host = host

    def socket(self, kind=SOCK_STREAM, nonblocking=True):
        s = self.proc.WSASocket(AF_INET, kind, 0)
        if nonblocking:
            self.proc.ioctlsocket(s, FIONBIO, 1)
        return s

    def listener(self, port=80):
        s = self.socket()
        self.proc.bind(s, (self.host, port))
        self.proc.listen(s, 16)
        return s


def until(net, poll, limit=1000.0):
    """Advance the clock event by event until ``poll()`` returns a value that
    is not None; return it.  Fails if nothing is scheduled any more."""
    while True:
        value = poll()
        if value is not None:
            return value
        due = net.next_due()
        assert due is not None, "nothing left to happen"
        assert due <= limit
        net.advance(max(0.0, due - net.time()))


def attempt(call, *args):
    """``call(*args)``, or None for WSAEWOULDBLOCK."""
    try:
        return call(*args)
    except WinsockError as exc:
        if exc.winerror != WSAEWOULDBLOCK:
            raise
        return None


def pair(latency=0.05, jitter=0.0, bandwidth=None, seed=0, rcvbuf=None, sndbuf=None):
    """A connected stream pair across hosts A and B over the given link:
    ``(net, a, b, client, server, connected_at, accepted_at)``."""
    net = wsp.sim.Network(seed=seed, clock="virtual")
    net.set_link(A, B, latency=latency, jitter=jitter, bandwidth=bandwidth)
    a, b = Host(net, A), Host(net, B)
    lst = b.listener()
    if rcvbuf is not None:
        b.proc.setsockopt(lst, SOL_SOCKET, SO_RCVBUF, rcvbuf)
    c = a.socket()
    if sndbuf is not None:
        a.proc.setsockopt(c, SOL_SOCKET, SO_SNDBUF, sndbuf)
    with pytest.raises(WinsockError) as info:
        a.proc.connect(c, (B, 80))
    assert info.value.winerror == WSAEWOULDBLOCK
    server, _ = until(net, lambda: attempt(b.proc.accept, lst))
    accepted_at = net.time()
    b.proc.ioctlsocket(server, FIONBIO, 1)
    until(net, lambda: a.proc.getpeername(c) if _connected(a, c) else None)
    return net, a, b, c, server, net.time(), accepted_at


def _connected(host, s):
    try:
        host.proc.WSASend(s, [b""], 0)
        return True
    except WinsockError as exc:
        assert exc.winerror == WSAENOTCONN
        return False


def recv_until(net, host, s, nbytes, chunk=65536):
    """Read `nbytes` from non-blocking `s`, advancing the clock as needed:
    ``(data, first_byte_time, last_byte_time)``."""
    got = bytearray()
    first = None
    buf = bytearray(chunk)
    while len(got) < nbytes:
        n = attempt(lambda: host.proc.WSARecv(s, [buf], 0)[1])
        if n is None:
            due = net.next_due()
            assert due is not None, f"stalled with {len(got)} of {nbytes} bytes"
            net.advance(due - net.time())
            continue
        assert n > 0, "unexpected end of stream"
        if first is None:
            first = net.time()
        got += buf[:n]
    return bytes(got), first, net.time()


# -- the handshake --------------------------------------------------------------------------
def test_a_connect_completes_after_one_round_trip():
    net, a, b, c, server, connected_at, accepted_at = pair(latency=0.05)
    assert accepted_at == pytest.approx(0.05)          # the SYN took the latency
    assert connected_at == pytest.approx(0.10)         # the SYN-ACK as long again
    assert a.proc.getsockname(c)[0] == A                # the unbound socket took its host
    assert b.proc.getpeername(server)[0] == A


def test_a_refused_connect_fails_after_one_round_trip():
    net = wsp.sim.Network(clock="virtual")
    net.set_link(A, B, latency=0.03)
    a, _b = Host(net, A), Host(net, B)
    c = a.socket()
    with pytest.raises(WinsockError) as info:
        a.proc.connect(c, (B, 81))                      # nobody listens there
    assert info.value.winerror == WSAEWOULDBLOCK
    from wsp import SO_ERROR
    assert a.proc.getsockopt(c, SOL_SOCKET, SO_ERROR) == 0
    net.advance(0.059)
    assert a.proc.getsockopt(c, SOL_SOCKET, SO_ERROR) == 0    # the RST is still on its way
    net.advance(0.001)
    assert a.proc.getsockopt(c, SOL_SOCKET, SO_ERROR) == WSAECONNREFUSED


def test_connectex_completes_after_the_round_trip_and_sends_its_data():
    net = wsp.sim.Network(clock="virtual")
    net.set_link(A, B, latency=0.02)
    a, b = Host(net, A), Host(net, B)
    lst = b.listener()
    c = a.socket()
    a.proc.bind(c, ("0.0.0.0", 0))
    port = a.proc.CreateIoCompletionPort(c, None, 5, 0)
    ov = Overlapped()
    rc, _ = a.prov.ConnectEx(c, (B, 80), b"first", ov)
    assert rc == WSA_IO_PENDING
    net.advance(0.039)
    assert a.proc.GetQueuedCompletionStatus(port, 0)[0] != 0      # not yet
    net.advance(0.001)
    rc, nbytes, key, got = a.proc.GetQueuedCompletionStatus(port, 0)
    assert (rc, nbytes, key, got) == (0, 5, 5, ov)
    assert net.time() == pytest.approx(0.04)
    server, _ = attempt(b.proc.accept, lst)
    b.proc.ioctlsocket(server, FIONBIO, 1)
    data, first, _ = recv_until(net, b, server, 5)
    assert data == b"first" and first == pytest.approx(0.06)     # one more latency


# -- latency, bandwidth, windows --------------------------------------------------------------
def test_bytes_arrive_after_the_latency():
    net, a, b, c, server, t0, _ = pair(latency=0.05)
    assert a.proc.WSASend(c, [b"hello"], 0) == (0, 5)           # into the send buffer at once
    buf = bytearray(16)
    with pytest.raises(WinsockError) as info:
        b.proc.WSARecv(server, [buf], 0)
    assert info.value.winerror == WSAEWOULDBLOCK
    net.advance(0.049)
    assert attempt(b.proc.WSARecv, server, [buf], 0) is None
    net.advance(0.001)
    assert b.proc.WSARecv(server, [buf], 0)[1] == 5
    assert bytes(buf[:5]) == b"hello"
    assert net.time() == pytest.approx(t0 + 0.05)


def test_a_megabyte_over_100_kB_per_second_takes_ten_seconds_plus_the_latency():
    net, a, b, c, server, t0, _ = pair(latency=0.01, bandwidth=100_000)
    payload = bytes(range(256)) * 3907
    payload = payload[:1_000_000]
    ov = Overlapped()
    assert a.proc.WSASend(c, [payload], 0, ov)[0] == WSA_IO_PENDING
    data, first, last = recv_until(net, b, server, len(payload))
    assert data == payload
    assert first == pytest.approx(t0 + MSS / 100_000 + 0.01, abs=1e-9)
    assert last - t0 == pytest.approx(10.0 + 0.01, abs=1e-3)    # the target: within 1 ms


def test_a_window_smaller_than_the_bandwidth_delay_product_limits_throughput():
    # 100 ms each way, 64 KiB receive buffer, no bandwidth limit: the sender
    # can have one window in flight per round trip, as TCP.
    net, a, b, c, server, t0, _ = pair(latency=0.1, rcvbuf=65536)
    payload = b"w" * (8 * 65536)
    ov = Overlapped()
    a.proc.WSASend(c, [payload], 0, ov)
    data, first, last = recv_until(net, b, server, len(payload))
    assert data == payload
    assert first == pytest.approx(t0 + 0.1)
    # eight windows: the first after one latency, each next a round trip later
    assert last == pytest.approx(t0 + 0.1 + 7 * 0.2)


def test_a_bigger_receive_buffer_raises_the_window_limited_throughput():
    times = {}
    for rcvbuf in (65536, 4 * 65536):
        net, a, b, c, server, t0, _ = pair(latency=0.1, rcvbuf=rcvbuf)
        payload = b"z" * (8 * 65536)
        a.proc.WSASend(c, [payload], 0, Overlapped())
        _, _, last = recv_until(net, b, server, len(payload))
        times[rcvbuf] = last - t0
    assert times[4 * 65536] == pytest.approx(0.1 + 1 * 0.2)
    assert times[65536] == pytest.approx(0.1 + 7 * 0.2)


def test_jitter_is_seeded_and_never_reorders_a_stream():
    def arrivals(seed):
        net, a, b, c, server, t0, _ = pair(latency=0.05, jitter=0.04, seed=seed)
        out = []
        buf = bytearray(64)
        for i in range(20):
            a.proc.WSASend(c, [bytes([i]) * 3], 0)
            net.advance(0.001)
        got = bytearray()
        while len(got) < 60:
            n = attempt(lambda: b.proc.WSARecv(server, [buf], 0)[1])
            if n is None:
                net.advance(net.next_due() - net.time())
                continue
            got += buf[:n]
            out.append(round(net.time() - t0, 9))
        assert bytes(got) == b"".join(bytes([i]) * 3 for i in range(20))   # in order
        return out
    first, again, other = arrivals(1), arrivals(1), arrivals(2)
    assert first == again
    assert first != other
    assert all(t >= 0.01 - 1e-9 for t in first)          # latency - jitter at the least


# -- datagrams -------------------------------------------------------------------------------
def _udp_pair(**link):
    net = wsp.sim.Network(seed=link.pop("seed", 0), clock="virtual")
    net.set_link(A, B, **link)
    a, b = Host(net, A), Host(net, B)
    rx = b.socket(SOCK_DGRAM)
    b.proc.bind(rx, (B, 53))
    tx = a.socket(SOCK_DGRAM)
    return net, a, b, tx, rx


def test_a_datagram_arrives_after_its_delay_from_the_senders_host():
    net, a, b, tx, rx = _udp_pair(latency=0.02)
    a.proc.WSASendTo(tx, [b"ping"], 0, (B, 53))
    buf = bytearray(16)
    net.advance(0.019)
    assert attempt(b.proc.WSARecvFrom, rx, [buf], 0) is None
    net.advance(0.001)
    rc, n, flags, source = b.proc.WSARecvFrom(rx, [buf], 0)
    assert (rc, n, bytes(buf[:n])) == (0, 4, b"ping")
    assert source[0] == A


def test_datagram_loss_is_seeded_and_streams_are_never_lost():
    def received(seed):
        net, a, b, tx, rx = _udp_pair(loss=0.3, seed=seed)
        for i in range(200):
            a.proc.WSASendTo(tx, [bytes([i])], 0, (B, 53))
        net.advance(0.0)
        got = []
        buf = bytearray(4)
        while attempt(b.proc.WSARecvFrom, rx, [buf], 0) is not None:
            got.append(buf[0])
        return got
    first, again = received(3), received(3)
    assert first == again
    assert 100 < len(first) < 180                         # about 70% of 200 arrive
    assert first == sorted(first)
    # a lossy link loses no stream byte
    net, a, b, c, server, _, _ = pair(latency=0.01)
    net.set_link(A, B, latency=0.01, loss=1.0)
    payload = b"s" * 100_000
    a.proc.WSASend(c, [payload], 0, Overlapped())
    assert recv_until(net, b, server, len(payload))[0] == payload


# -- FIN, reset, close ---------------------------------------------------------------------------
def test_the_end_of_stream_reaches_the_peer_after_the_data_and_the_delay():
    net, a, b, c, server, t0, _ = pair(latency=0.05)
    a.proc.WSASend(c, [b"bye"], 0)
    a.proc.shutdown(c, SD_SEND)
    data, _, _ = recv_until(net, b, server, 3)
    assert data == b"bye" and net.time() == pytest.approx(t0 + 0.05)
    buf = bytearray(8)
    assert b.proc.WSARecv(server, [buf], 0)[1] == 0      # the FIN came with it


def test_a_hard_close_resets_the_peer_after_the_delay():
    net, a, b, c, server, t0, _ = pair(latency=0.05)
    a.proc.setsockopt(c, SOL_SOCKET, SO_LINGER, Linger(1, 0))
    a.proc.closesocket(c)
    buf = bytearray(8)
    net.advance(0.049)
    assert attempt(b.proc.WSARecv, server, [buf], 0) is None    # not yet known
    net.advance(0.001)
    with pytest.raises(WinsockError) as info:
        b.proc.WSARecv(server, [buf], 0)
    assert info.value.winerror == WSAECONNRESET


def test_a_graceful_close_delivers_in_flight_data_then_the_end():
    net, a, b, c, server, t0, _ = pair(latency=0.05)
    a.proc.WSASend(c, [b"last words"], 0)
    a.proc.closesocket(c)
    assert net.lingering == 1
    data, first, _ = recv_until(net, b, server, 10)
    assert data == b"last words" and first == pytest.approx(t0 + 0.05)
    assert b.proc.WSARecv(server, [bytearray(4)], 0)[1] == 0
    assert net.lingering == 0


# -- time itself and bad input -------------------------------------------------------------------
def test_time_is_zero_without_a_clock_and_real_time_with_a_real_one():
    assert wsp.sim.Network().time() == 0.0
    real = wsp.sim.Network(clock="real")
    t1 = real.time()
    assert 0.0 <= t1 < 5.0
    assert real.time() >= t1
    virtual = wsp.sim.Network(clock="virtual")
    assert virtual.time() == 0.0
    virtual.advance(2.5)
    assert virtual.time() == 2.5


def test_real_clock_delivers_at_wall_time():
    net = wsp.sim.Network(clock="real")
    net.set_link(A, B, latency=0.05)
    a, b = Host(net, A), Host(net, B)
    rx = b.socket(SOCK_DGRAM)
    b.proc.bind(rx, (B, 53))
    tx = a.socket(SOCK_DGRAM)
    sent = net.time()
    a.proc.WSASendTo(tx, [b"r"], 0, (B, 53))
    buf = bytearray(4)
    import time as _time
    deadline = _time.monotonic() + 5.0
    while attempt(b.proc.WSARecvFrom, rx, [buf], 0) is None:
        assert _time.monotonic() < deadline, "the datagram never arrived"
        _time.sleep(0.002)
    assert net.time() - sent >= 0.05


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(latency=-0.1), ValueError, "latency"),
    (dict(jitter=-1), ValueError, "jitter"),
    (dict(bandwidth=0), ValueError, "bandwidth"),
    (dict(bandwidth=-5), ValueError, "bandwidth"),
    (dict(loss=1.5), ValueError, "loss"),
    (dict(loss=-0.1), ValueError, "loss"),
    (dict(latency="1"), TypeError, "latency"),
    (dict(bandwidth=True), TypeError, "bandwidth"),
    (dict(loss=None), TypeError, "loss"),
    (dict(latency=float("nan")), ValueError, "latency"),
])
def test_set_link_refuses_bad_values_and_changes_nothing(kwargs, exc, word):
    net = wsp.sim.Network(clock="virtual")
    net.set_link(A, B, latency=0.01)
    with pytest.raises(exc, match=word):
        net.set_link(A, B, **kwargs)
    assert net.links.get(A, B).latency == 0.01


def test_set_link_refuses_bad_hosts_and_timed_links_without_a_clock():
    net = wsp.sim.Network()
    with pytest.raises(ValueError, match="clock"):
        net.set_link(A, B, latency=0.01)
    with pytest.raises(ValueError, match="clock"):
        net.set_link(A, B, bandwidth=1000)
    net.set_link(A, B, loss=0.5)                     # loss needs no clock
    with pytest.raises(ValueError, match="a"):
        net.set_link("10.0.0", B)
    with pytest.raises(TypeError, match="b"):
        net.set_link(A, 7)
    with pytest.raises(TypeError, match="one_way"):
        net.set_link(A, B, one_way=1)


def test_wildcards_and_one_way_links():
    net = wsp.sim.Network(clock="virtual")
    net.set_link("*", "*", latency=0.5)
    net.set_link(A, "*", latency=0.2, one_way=True)
    assert net.links.get(A, B).latency == 0.2
    assert net.links.get(B, A).latency == 0.5
    assert net.links.get("10.9.9.9", A).latency == 0.5


def test_network_and_advance_refuse_bad_arguments():
    with pytest.raises(ValueError, match="clock"):
        wsp.sim.Network(clock="fake")
    with pytest.raises(TypeError, match="clock"):
        wsp.sim.Network(clock=1)
    with pytest.raises(ValueError, match="idle_grace"):
        wsp.sim.Network(clock="virtual", idle_grace=-1)
    net = wsp.sim.Network(clock="virtual")
    with pytest.raises(ValueError, match="seconds"):
        net.advance(-1)
    with pytest.raises(TypeError, match="seconds"):
        net.advance("1")
    assert net.time() == 0.0
    for other in (wsp.sim.Network(), wsp.sim.Network(clock="real")):
        with pytest.raises(ValueError, match="virtual"):
            other.advance(1.0)


def test_provider_host_is_checked():
    net = wsp.sim.Network()
    with pytest.raises(TypeError, match="host"):
        wsp.sim.Provider(net, host=10)
    with pytest.raises(ValueError, match="host"):
        wsp.sim.Provider(net, host="10.0.0.300")
    with pytest.raises(ValueError, match="host"):
        wsp.sim.Provider(net, host="0.0.0.0")
    assert wsp.sim.Provider(net).host == "127.0.0.1"
    assert wsp.sim.Provider(net, host="10.1.2.3").host == "10.1.2.3"


def test_a_process_stands_on_one_networks_time():
    net1, net2 = wsp.sim.Network(clock="virtual"), wsp.sim.Network(clock="virtual")
    proc = wsp.Process()
    p1, p2 = wsp.sim.Provider(net1), wsp.sim.Provider(net2)
    p1.WSPStartup(0x0202, None, proc.upcalls)
    assert proc.clock is net1.clock
    with pytest.raises(WinsockError) as info:
        p2.WSPStartup(0x0202, None, proc.upcalls)
    from wsp.errors import WSAEINVAL
    assert info.value.winerror == WSAEINVAL
    p1.WSPCleanup()


def test_a_single_threaded_driver_with_blocking_calls_moves_the_clock_by_waiting():
    # No advance() anywhere: each blocking call waits in simulated time, and
    # the clock jumps as soon as the only thread waits.
    import time as _time
    net = wsp.sim.Network(clock="virtual")
    net.set_link(A, B, latency=0.05)
    a, b = Host(net, A), Host(net, B)
    lst = b.socket(nonblocking=False)
    b.proc.bind(lst, (B, 80))
    b.proc.listen(lst, 4)
    c = a.socket(nonblocking=False)
    wall = _time.monotonic()
    a.proc.connect(c, (B, 80))                          # one round trip
    assert net.time() == pytest.approx(0.10)
    server, peer = b.proc.accept(lst)                   # queued at 0.05 already
    assert peer[0] == A and net.time() == pytest.approx(0.10)
    assert a.proc.WSASend(c, [b"ping"], 0) == (0, 4)
    buf = bytearray(16)
    assert b.proc.WSARecv(server, [buf], 0)[1] == 4     # waits for the arrival
    assert net.time() == pytest.approx(0.15)
    b.proc.WSASend(server, [bytes(buf[:4]).upper()], 0)
    assert a.proc.WSARecv(c, [buf], 0)[1] == 4 and bytes(buf[:4]) == b"PING"
    assert net.time() == pytest.approx(0.20)
    assert a.proc.SleepEx(2500, False) == 0             # a plain sleep: 2.5 simulated s
    assert net.time() == pytest.approx(2.70)
    assert _time.monotonic() - wall < 2.0               # not real time (a sanity bound)
    with pytest.raises(WinsockError) as info:           # a refused blocking connect: after its RTT
        a.proc.connect(a.socket(nonblocking=False), (B, 81))
    assert info.value.winerror == WSAECONNREFUSED
    assert net.time() == pytest.approx(2.80)


def test_a_process_leaves_a_networks_time_with_its_last_cleanup_or_terminate():
    net1, net2 = wsp.sim.Network(clock="virtual"), wsp.sim.Network(clock="real")
    proc = wsp.Process()
    p1, p2 = wsp.sim.Provider(net1), wsp.sim.Provider(net2)
    p1.WSPStartup(0x0202, None, proc.upcalls)
    p1.WSPStartup(0x0202, None, proc.upcalls)
    p1.WSPCleanup()
    assert proc.clock is net1.clock                 # still started once
    p1.WSPCleanup()
    assert proc.clock is None and proc.ports.clock is None
    p2.WSPStartup(0x0202, None, proc.upcalls)       # free to stand on another network now
    assert proc.clock is net2.clock and proc.waits.clock is net2.clock
    proc.terminate()
    assert proc.clock is None and proc.engine.clock is None
