"""wsp.sim.Provider, datagram sockets (SPEC §6.3, §7): UDP-like sendto and
recvfrom, automatic binding, truncation, size limits, loss (nobody bound, full
receive buffer, the seeded loss switch), connected datagram sockets and
overlapped receives."""
from __future__ import annotations

import pytest

import wsp
import wsp.sim
from simkit import LOCAL, Sim, sim_socket, wait_blocked
from helpers import Worker, assert_winsock
from wsp import (FIONBIO, FIONREAD, MSG_PARTIAL, MSG_PEEK, SD_RECEIVE, SD_SEND,
                 SO_DONTLINGER, SO_LINGER, SO_RCVBUF, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, Linger,
                 Overlapped)


def udp(sim, addr=(LOCAL, 0)):
    """A datagram socket, bound to `addr` unless it is None."""
    s = sim.socket(SOCK_DGRAM)
    if addr is not None:
        sim.prov.WSPBind(s, addr)
    return s


def name(sim, s):
    return sim.prov.WSPGetSockName(s)


def recvfrom(sim, s, size=2048):
    buf = bytearray(size)
    rc, n, flags, addr = sim.prov.WSPRecvFrom(s, [buf])
    assert rc == 0
    return bytes(buf[:n]), flags, addr


def nothing_waiting(sim, s):
    """True if a non-blocking receive on `s` would block."""
    sim.prov.WSPIoctl(s, FIONBIO, 1)
    try:
        sim.prov.WSPRecvFrom(s, [bytearray(65536)], MSG_PEEK)
    except wsp.WinsockError as exc:
        assert exc.winerror == wsp.WSAEWOULDBLOCK
        return True
    finally:
        sim.prov.WSPIoctl(s, FIONBIO, 0)
    return False


# ------------------------------------------------------------ the basics
def test_sendto_recvfrom_with_addresses_keep_datagram_boundaries(sim):
    a, b = udp(sim), udp(sim)
    for payload in (b"one", b"two!", b"three"):
        assert sim.prov.WSPSendTo(b, [payload], 0, name(sim, a)) == (0, len(payload))
    assert sim.prov.WSPIoctl(a, FIONREAD) == 3          # the first datagram's size
    assert recvfrom(sim, a) == (b"one", 0, name(sim, b))
    assert recvfrom(sim, a) == (b"two!", 0, name(sim, b))
    assert recvfrom(sim, a) == (b"three", 0, name(sim, b))
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0
    assert sim.prov.WSPSendTo(a, [b"re", b"ply"], 0, name(sim, b)) == (0, 5)  # gathered
    assert recvfrom(sim, b) == (b"reply", 0, name(sim, a))


def test_recvfrom_scatters_one_datagram_over_several_buffers(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSendTo(b, [b"abcdefg"], 0, name(sim, a))
    b1, b2 = bytearray(3), bytearray(10)
    assert sim.prov.WSPRecvFrom(a, [b1, b2]) == (0, 7, 0, name(sim, b))
    assert (bytes(b1), bytes(b2[:4])) == (b"abc", b"defg")


def test_zero_length_datagram(sim):
    a, b = udp(sim), udp(sim)
    assert sim.prov.WSPSendTo(b, [], 0, name(sim, a)) == (0, 0)
    assert sim.prov.WSPRecvFrom(a, [bytearray(4)]) == (0, 0, 0, name(sim, b))


def test_wildcard_bound_receiver_gets_datagrams_sent_to_loopback(sim):
    a = udp(sim, ("0.0.0.0", 0))
    port = name(sim, a)[1]
    b = udp(sim)
    sim.prov.WSPSendTo(b, [b"any"], 0, (LOCAL, port))
    assert recvfrom(sim, a) == (b"any", 0, name(sim, b))


def test_sendto_on_an_unbound_socket_binds_it_to_an_ephemeral_port(sim):
    a = udp(sim)
    b = udp(sim, None)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetSockName(b)
    assert_winsock(e, wsp.WSAEINVAL)
    assert sim.prov.WSPSendTo(b, [b"hi"], 0, name(sim, a)) == (0, 2)
    host, port = name(sim, b)
    assert host == LOCAL and 49152 <= port <= 65535
    assert recvfrom(sim, a) == (b"hi", 0, (host, port))
    sim.prov.WSPSendTo(b, [b"again"], 0, name(sim, a))
    assert name(sim, b) == (host, port)                 # bound once
    assert recvfrom(sim, a)[2] == (host, port)


def test_recvfrom_on_an_unbound_socket_is_einval(sim):
    s = udp(sim, None)
    for call in (lambda: sim.prov.WSPRecvFrom(s, [bytearray(4)]),
                 lambda: sim.prov.WSPRecv(s, [bytearray(4)]),
                 lambda: sim.prov.WSPRecvFrom(s, [bytearray(4)], 0, Overlapped())):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSAEINVAL)
    assert sim.proc.resources()["overlapped_pending"] == 0


def test_sendto_wildcard_or_port_zero_is_eaddrnotavail(sim):
    s = udp(sim)
    for to in (("0.0.0.0", 5000), (LOCAL, 0)):
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPSendTo(s, [b"x"], 0, to)
        assert_winsock(e, wsp.WSAEADDRNOTAVAIL)


@pytest.mark.parametrize("to, exc", [("127.0.0.1:5", TypeError), ((LOCAL,), TypeError),
                                     ((LOCAL, "5"), TypeError), (None, TypeError),
                                     (("300.1.1.1", 5), wsp.WSAEFAULT),
                                     ((LOCAL, 70000), wsp.WSAEFAULT)])
def test_sendto_bad_destination(sim, to, exc):
    s = udp(sim)
    if exc is TypeError:
        with pytest.raises(TypeError):
            sim.prov.WSPSendTo(s, [b"x"], 0, to)
    else:
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPSendTo(s, [b"x"], 0, to)
        assert_winsock(e, exc)


def test_non_blocking_recvfrom_would_block(sim):
    s = udp(sim)
    sim.prov.WSPIoctl(s, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecvFrom(s, [bytearray(4)])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)


def test_blocking_recvfrom_is_woken_by_a_datagram_from_another_thread(sim):
    a, b = udp(sim), udp(sim)
    buf = bytearray(16)
    w = Worker(sim.prov.WSPRecvFrom, a, [buf])
    w.start()
    wait_blocked(sim_socket(sim.proc, a))         # the receive waits
    assert w.is_alive()
    sender = Worker(sim.prov.WSPSendTo, b, [b"ding"], 0, name(sim, a))
    sender.start()
    assert sender.finish(5) == (0, 4)
    assert w.finish(5) == (0, 4, 0, name(sim, b))
    assert bytes(buf[:4]) == b"ding"


def test_msg_peek_leaves_the_datagram(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSendTo(b, [b"peek"], 0, name(sim, a))
    buf = bytearray(8)
    assert sim.prov.WSPRecvFrom(a, [buf], MSG_PEEK) == (0, 4, 0, name(sim, b))
    assert sim.prov.WSPIoctl(a, FIONREAD) == 4
    assert recvfrom(sim, a) == (b"peek", 0, name(sim, b))
    assert nothing_waiting(sim, a)


def test_pending_peek_recvfrom_leaves_the_datagram(sim):
    a, b = udp(sim), udp(sim)
    ov = Overlapped()
    buf = bytearray(8)
    assert sim.prov.WSPRecvFrom(a, [buf], MSG_PEEK, ov) == (wsp.WSA_IO_PENDING, 0, 0, None)
    sim.prov.WSPSendTo(b, [b"kept"], 0, name(sim, a))
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (4, 0)
    assert bytes(buf[:4]) == b"kept"
    assert sim.prov.WSPIoctl(a, FIONREAD) == 4           # still queued
    sim.prov.WSPIoctl(a, FIONBIO, 1)
    assert recvfrom(sim, a) == (b"kept", 0, name(sim, b))


# ------------------------------------------------------------ truncation, size
def test_truncated_datagram_is_emsgsize_and_the_rest_is_lost(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSendTo(b, [b"0123456789"], 0, name(sim, a))
    sim.prov.WSPSendTo(b, [b"next"], 0, name(sim, a))
    buf = bytearray(4)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecvFrom(a, [buf])
    assert_winsock(e, wsp.WSAEMSGSIZE)
    assert bytes(buf) == b"0123"
    assert recvfrom(sim, a) == (b"next", 0, name(sim, b))   # the tail is gone
    assert nothing_waiting(sim, a)


def test_blocking_recvfrom_truncated_by_an_arriving_datagram_is_emsgsize(sim):
    a, b = udp(sim), udp(sim)
    buf = bytearray(3)
    w = Worker(sim.prov.WSPRecvFrom, a, [buf])
    w.start()
    wait_blocked(sim_socket(sim.proc, a))         # waiting before the datagram arrives
    sim.prov.WSPSendTo(b, [b"too long"], 0, name(sim, a))
    with pytest.raises(wsp.WinsockError) as e:
        w.finish(5)
    assert_winsock(e, wsp.WSAEMSGSIZE)
    assert bytes(buf) == b"too"


def test_overlapped_truncation_of_a_queued_datagram_gives_emsgsize_and_msg_partial(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSendTo(b, [b"0123456789"], 0, name(sim, a))
    calls = []
    ov = Overlapped()
    buf = bytearray(4)
    sim.prov.WSPRecvFrom(a, [buf], 0, ov, lambda *args: calls.append(args))
    assert sim.proc.SleepEx(1000, True) == wsp.WAIT_IO_COMPLETION
    assert calls == [(wsp.WSAEMSGSIZE, 4, ov, MSG_PARTIAL)]
    assert ov.Internal == wsp.WSAEMSGSIZE and ov.InternalHigh == 4
    assert bytes(buf) == b"0123"
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetOverlappedResult(a, ov, False)
    assert_winsock(e, wsp.WSAEMSGSIZE)


def test_overlapped_truncation_of_a_pending_receive_gives_emsgsize_and_msg_partial(sim):
    a, b = udp(sim), udp(sim)
    calls = []
    ov = Overlapped()
    buf = bytearray(4)
    assert sim.prov.WSPRecvFrom(a, [buf], 0, ov, lambda *args: calls.append(args)) == (
        wsp.WSA_IO_PENDING, 0, 0, None)
    sim.prov.WSPSendTo(b, [b"0123456789"], 0, name(sim, a))
    assert sim.proc.SleepEx(1000, True) == wsp.WAIT_IO_COMPLETION
    assert bytes(buf) == b"0123"
    assert calls == [(wsp.WSAEMSGSIZE, 4, ov, MSG_PARTIAL)]


def test_largest_datagram_goes_and_one_byte_more_is_emsgsize(sim):
    a, b = udp(sim), udp(sim)
    big = bytes(range(256)) * 255 + bytes(227)
    assert len(big) == 65507
    assert sim.prov.WSPSendTo(b, [big], 0, name(sim, a)) == (0, 65507)
    assert recvfrom(sim, a, 70000) == (big, 0, name(sim, b))
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSendTo(b, [big, b"x"], 0, name(sim, a))
    assert_winsock(e, wsp.WSAEMSGSIZE)
    assert nothing_waiting(sim, a)


def test_oversized_datagram_on_an_unbound_socket_does_not_bind_it(sim):
    a, b = udp(sim), udp(sim, None)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSendTo(b, [bytes(65508)], 0, name(sim, a))
    assert_winsock(e, wsp.WSAEMSGSIZE)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetSockName(b)
    assert_winsock(e, wsp.WSAEINVAL)


def test_overlapped_oversized_datagram_raises_and_delivers_nothing(sim):
    a, b = udp(sim), udp(sim)
    ev = sim.event()
    ov = Overlapped(ev)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSendTo(b, [bytes(65508)], 0, name(sim, a), ov)
    assert_winsock(e, wsp.WSAEMSGSIZE)
    assert not sim.signalled(ev)


# ------------------------------------------------------------------- loss
def test_datagram_to_an_address_nobody_is_bound_to_is_lost(sim):
    b = udp(sim)
    assert sim.prov.WSPSendTo(b, [b"void"], 0, (LOCAL, 40000)) == (0, 4)
    a = udp(sim, (LOCAL, 40000))
    assert nothing_waiting(sim, a)
    sim.prov.WSPSendTo(b, [b"now"], 0, (LOCAL, 40000))
    assert recvfrom(sim, a) == (b"now", 0, name(sim, b))


def test_datagram_to_a_stream_port_is_lost(sim):
    t = sim.socket(SOCK_STREAM)
    sim.prov.WSPBind(t, (LOCAL, 40100))
    sim.prov.WSPListen(t, 1)
    b = udp(sim)
    assert sim.prov.WSPSendTo(b, [b"wrong kind"], 0, (LOCAL, 40100)) == (0, 10)
    assert sim.prov.WSPIoctl(t, FIONREAD) == 0


def test_full_receive_buffer_drops_datagrams(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 100)
    for i in range(4):
        assert sim.prov.WSPSendTo(b, [bytes([i]) * 40], 0, name(sim, a)) == (0, 40)
    # 40 + 40 fit in 100 bytes; the third and fourth are dropped
    assert recvfrom(sim, a) == (bytes([0]) * 40, 0, name(sim, b))
    assert recvfrom(sim, a) == (bytes([1]) * 40, 0, name(sim, b))
    assert nothing_waiting(sim, a)
    sim.prov.WSPSendTo(b, [b"room again"], 0, name(sim, a))
    assert recvfrom(sim, a) == (b"room again", 0, name(sim, b))


def test_datagram_bigger_than_the_receive_buffer_is_dropped_unless_a_receive_is_posted(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 8)
    sim.prov.WSPSendTo(b, [b"nine byte"], 0, name(sim, a))
    assert nothing_waiting(sim, a)
    ov = Overlapped()
    buf = bytearray(16)
    assert sim.prov.WSPRecvFrom(a, [buf], 0, ov)[0] == wsp.WSA_IO_PENDING
    sim.prov.WSPSendTo(b, [b"nine byte"], 0, name(sim, a))
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (9, 0)
    assert bytes(buf[:9]) == b"nine byte"


def run_lossy(seed, probability, count=300, layers=0):
    """Send `count` numbered datagrams over a lossy network, through a stack
    of `layers` layers; return the numbers that arrived."""
    s = Sim(seed=seed, layers=layers)
    try:
        s.net.set_datagram_loss(probability)
        a, b = udp(s), udp(s)
        for i in range(count):
            assert s.prov.WSPSendTo(b, [i.to_bytes(2, "big")], 0, name(s, a)) == (0, 2)
        s.prov.WSPIoctl(a, FIONBIO, 1)
        got = []
        while True:
            buf = bytearray(2)
            try:
                rc, n, flags, addr = s.prov.WSPRecvFrom(a, [buf])
            except wsp.WinsockError as exc:
                assert exc.winerror == wsp.WSAEWOULDBLOCK
                break
            assert (rc, n, flags, addr) == (0, 2, 0, name(s, b))
            got.append(int.from_bytes(buf, "big"))
        return got
    finally:
        s.close()


def test_datagram_loss_is_deterministic_under_the_seed(layers):
    first = run_lossy(seed=42, probability=0.3, layers=layers)
    second = run_lossy(seed=42, probability=0.3, layers=layers)
    assert len(first) == len(second)
    assert first == second                        # the very same datagrams were lost
    assert first == sorted(first)                 # what arrives is in order
    assert 0 < len(first) < 300
    assert 150 < len(first) < 270                 # about 70 % arrive
    other = run_lossy(seed=43, probability=0.3, layers=layers)
    assert other != first


def test_datagram_loss_extremes_and_bad_probability(layers):
    assert run_lossy(seed=1, probability=0.0, count=50, layers=layers) == list(range(50))
    assert run_lossy(seed=1, probability=1.0, count=50, layers=layers) == []
    net = wsp.sim.Network(seed=0)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            net.set_datagram_loss(bad)


# ---------------------------------------------------------- connected UDP
def test_connected_datagram_socket_sends_to_and_receives_from_its_peer_only(sim):
    a, b, other = udp(sim), udp(sim), udp(sim)
    assert sim.prov.WSPConnect(a, name(sim, b)) is None
    assert sim.prov.WSPGetPeerName(a) == name(sim, b)
    assert sim.prov.WSPSend(a, [b"to peer"]) == (0, 7)
    assert recvfrom(sim, b) == (b"to peer", 0, name(sim, a))
    # a only hears from b
    sim.prov.WSPSendTo(other, [b"stranger"], 0, name(sim, a))
    sim.prov.WSPSendTo(b, [b"friend"], 0, name(sim, a))
    buf = bytearray(16)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 6, 0)
    assert bytes(buf[:6]) == b"friend"
    assert nothing_waiting(sim, a)


def test_connect_binds_an_unbound_datagram_socket(sim):
    b = udp(sim)
    a = udp(sim, None)
    sim.prov.WSPConnect(a, name(sim, b))
    host, port = name(sim, a)
    assert host == LOCAL and 49152 <= port <= 65535


def test_connected_datagram_association_can_be_dissolved(sim):
    a, b, other = udp(sim), udp(sim), udp(sim)
    sim.prov.WSPConnect(a, name(sim, b))
    sim.prov.WSPConnect(a, ("0.0.0.0", 0))
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetPeerName(a)
    assert_winsock(e, wsp.WSAENOTCONN)
    sim.prov.WSPSendTo(other, [b"hello again"], 0, name(sim, a))
    assert recvfrom(sim, a) == (b"hello again", 0, name(sim, other))


def test_send_on_an_unconnected_datagram_socket_is_enotconn(sim):
    a = udp(sim)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(a, [b"where to?"])
    assert_winsock(e, wsp.WSAENOTCONN)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetPeerName(a)
    assert_winsock(e, wsp.WSAENOTCONN)


def test_reply_to_a_sender_bound_to_the_wildcard(sim):
    a = udp(sim)
    b = udp(sim, ("0.0.0.0", 0))
    port = name(sim, b)[1]
    sim.prov.WSPSendTo(b, [b"ping"], 0, name(sim, a))
    data, flags, source = recvfrom(sim, a)
    assert source == (LOCAL, port)
    assert sim.prov.WSPSendTo(a, [b"pong"], 0, source) == (0, 4)
    assert recvfrom(sim, b) == (b"pong", 0, name(sim, a))


# ------------------------------------------------------- shutdown, options
def test_shutdown_on_datagram_sockets(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPShutdown(a, SD_RECEIVE)
    assert sim.prov.WSPSendTo(b, [b"ignored"], 0, name(sim, a)) == (0, 7)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecvFrom(a, [bytearray(8)])
    assert_winsock(e, wsp.WSAESHUTDOWN)
    sim.prov.WSPShutdown(b, SD_SEND)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSendTo(b, [b"x"], 0, name(sim, a))
    assert_winsock(e, wsp.WSAESHUTDOWN)


def test_linger_options_on_a_datagram_socket_are_enoprotoopt(sim):
    s = udp(sim)
    for call in (lambda: sim.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_LINGER, Linger(1, 5)),
                 lambda: sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER),
                 lambda: sim.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_DONTLINGER, True),
                 lambda: sim.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_DONTLINGER)):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSAENOPROTOOPT)


# ------------------------------------------------------------- overlapped
def test_overlapped_recvfrom_completes_when_a_datagram_arrives(sim):
    a, b = udp(sim), udp(sim)
    ev = sim.event()
    ov = Overlapped(ev)
    buf = bytearray(32)
    assert sim.prov.WSPRecvFrom(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0, None)
    assert ov.pending and not sim.signalled(ev)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetOverlappedResult(a, ov, False)
    assert_winsock(e, wsp.WSA_IO_INCOMPLETE)
    sim.prov.WSPSendTo(b, [b"arrived"], 0, name(sim, a))
    assert sim.signalled(ev)
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (7, 0)
    assert bytes(buf[:7]) == b"arrived"
    assert nothing_waiting(sim, a)                # the posted receive took it


def test_overlapped_recvfrom_of_a_queued_datagram_completes_at_once(sim):
    a, b = udp(sim), udp(sim)
    sim.prov.WSPSendTo(b, [b"queued"], 0, name(sim, a))
    ev = sim.event()
    ov = Overlapped(ev)
    buf = bytearray(32)
    assert sim.prov.WSPRecvFrom(a, [buf], 0, ov) == (0, 6, 0, name(sim, b))
    assert sim.signalled(ev)
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (6, 0)


def test_pending_datagram_receives_complete_in_order_through_a_port(sim):
    a, b = udp(sim), udp(sim)
    port = sim.port()
    sim.proc.CreateIoCompletionPort(a, port, 3)
    ovs = [Overlapped() for _ in range(3)]
    bufs = [bytearray(8) for _ in range(3)]
    for ov, buf in zip(ovs, bufs):
        assert sim.prov.WSPRecvFrom(a, [buf], 0, ov)[0] == wsp.WSA_IO_PENDING
    for payload in (b"first", b"second", b"third"):
        sim.prov.WSPSendTo(b, [payload], 0, name(sim, a))
    packets = [sim.proc.GetQueuedCompletionStatus(port, 1000) for _ in range(3)]
    assert [p[:3] for p in packets] == [(0, 5, 3), (0, 6, 3), (0, 5, 3)]
    assert all(p[3] is ov for p, ov in zip(packets, ovs))
    assert [bytes(b).rstrip(b"\0") for b in bufs] == [b"first", b"second", b"third"]


def test_overlapped_sendto_completes_at_once_and_is_delivered(sim):
    a, b = udp(sim), udp(sim)
    calls = []
    ov = Overlapped()
    assert sim.prov.WSPSendTo(b, [b"sent"], 0, name(sim, a), ov,
                              lambda *args: calls.append(args)) == (0, 4)
    assert sim.proc.SleepEx(1000, True) == wsp.WAIT_IO_COMPLETION
    assert calls == [(0, 4, ov, 0)]
    assert recvfrom(sim, a) == (b"sent", 0, name(sim, b))


def test_recvfrom_on_a_stream_socket_reports_the_peer(sim):
    c, s, _ = sim.pair()
    sim.prov.WSPSendTo(c, [b"stream"], 0, ("10.9.8.7", 1))   # `to` is ignored
    buf = bytearray(16)
    assert sim.prov.WSPRecvFrom(s, [buf]) == (0, 6, 0, sim.prov.WSPGetSockName(c))
    assert bytes(buf[:6]) == b"stream"
