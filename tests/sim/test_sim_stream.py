"""wsp.sim.Provider, stream sockets (SPEC §6.2, §6.3, §7): creation, bind,
listen/connect/accept (with condition functions), ordered bytes,
scatter/gather, MSG_PEEK, FIONREAD, shutdown, blocking and non-blocking
calls, and overlapped I/O through events, completion routines and completion
ports."""
from __future__ import annotations

import threading

import pytest

import wsp
import wsp.sim
from simkit import LOCAL, Sim, recv_all, sim_socket, wait_blocked
from helpers import (Worker, assert_winsock, parked, spin_python_for, wait_condition_waiters,
                     wait_parked, wait_until)
from wsp import (AF_INET, AF_INET6, CF_ACCEPT, CF_DEFER, CF_REJECT, FIONBIO, FIONREAD,
                 IPPROTO_TCP, IPPROTO_UDP, MSG_PEEK, SD_BOTH, SD_RECEIVE, SD_SEND, SO_REUSEADDR,
                 SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, Overlapped)


# --------------------------------------------------------------- creation
def test_socket_stream_and_datagram_with_default_and_native_protocols(sim):
    p = sim.prov
    handles = [p.WSPSocket(AF_INET, SOCK_STREAM, 0), p.WSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP),
               p.WSPSocket(AF_INET, SOCK_DGRAM, 0), p.WSPSocket(AF_INET, SOCK_DGRAM, IPPROTO_UDP)]
    assert len(set(handles)) == 4
    for h in handles:
        assert h % 4 == 0 and 0 < h < 2**63
    assert [p.WSPGetSockOpt(h, SOL_SOCKET, wsp.SO_TYPE) for h in handles] == [
        SOCK_STREAM, SOCK_STREAM, SOCK_DGRAM, SOCK_DGRAM]
    assert sorted(p.sockets()) == sorted(handles)
    assert sim.proc.resources()["sockets"] == sim.entries(4)


@pytest.mark.parametrize("af, type_, protocol, code", [
    (AF_INET6, SOCK_STREAM, 0, wsp.WSAEAFNOSUPPORT),
    (wsp.AF_UNSPEC, SOCK_STREAM, 0, wsp.WSAEAFNOSUPPORT),
    (AF_INET, 3, 0, wsp.WSAESOCKTNOSUPPORT),
    (AF_INET, 5, 0, wsp.WSAESOCKTNOSUPPORT),
    (AF_INET, SOCK_STREAM, IPPROTO_UDP, wsp.WSAEPROTOTYPE),
    (AF_INET, SOCK_DGRAM, IPPROTO_TCP, wsp.WSAEPROTOTYPE),
    (AF_INET, SOCK_STREAM, 99, wsp.WSAEPROTONOSUPPORT),
    (AF_INET, SOCK_DGRAM, 255, wsp.WSAEPROTONOSUPPORT),
])
def test_socket_creation_errors(sim, af, type_, protocol, code):
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSocket(af, type_, protocol)
    assert_winsock(e, code)
    assert e.value.funcname == "WSPSocket"
    assert sim.proc.resources()["sockets"] == 0


@pytest.mark.parametrize("args", [("2", SOCK_STREAM, 0), (AF_INET, 1.0, 0),
                                  (AF_INET, SOCK_STREAM, None), (None, SOCK_STREAM, 0)])
def test_socket_non_int_arguments_are_type_errors(sim, args):
    with pytest.raises(TypeError):
        sim.prov.WSPSocket(*args)
    assert sim.proc.resources()["sockets"] == 0


# ------------------------------------------------------------------- bind
def test_bind_port_zero_picks_distinct_free_ephemeral_ports(sim):
    socks = [sim.socket() for _ in range(5)]
    for s in socks:
        sim.prov.WSPBind(s, (LOCAL, 0))
    names = [sim.prov.WSPGetSockName(s) for s in socks]
    assert all(host == LOCAL for host, _ in names)
    ports = [port for _, port in names]
    assert all(49152 <= port <= 65535 for port in ports)
    assert len(set(ports)) == 5


def test_bind_port_zero_is_deterministic_across_networks(layers):
    runs = []
    for _ in range(2):
        s = Sim(seed=3, layers=layers)
        try:
            ports = []
            for _ in range(3):
                h = s.socket()
                s.prov.WSPBind(h, (LOCAL, 0))
                ports.append(s.prov.WSPGetSockName(h)[1])
            runs.append(ports)
        finally:
            s.close()
    assert runs[0] == runs[1]


def test_bind_explicit_port_and_getsockname(sim):
    s = sim.socket()
    sim.prov.WSPBind(s, ("127.0.0.1", 5555))
    assert sim.prov.WSPGetSockName(s) == ("127.0.0.1", 5555)


def test_getsockname_before_bind_is_einval(sim):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetSockName(s)
    assert_winsock(e, wsp.WSAEINVAL)


@pytest.mark.parametrize("first, second", [
    ((LOCAL, 6000), (LOCAL, 6000)),
    (("0.0.0.0", 6000), (LOCAL, 6000)),
    ((LOCAL, 6000), ("0.0.0.0", 6000)),
    (("0.0.0.0", 6000), ("0.0.0.0", 6000)),
])
def test_bind_taken_address_is_eaddrinuse(sim, first, second):
    a, b = sim.socket(), sim.socket()
    sim.prov.WSPBind(a, first)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPBind(b, second)
    assert_winsock(e, wsp.WSAEADDRINUSE)
    # b is still unbound and can bind elsewhere
    sim.prov.WSPBind(b, (LOCAL, 6001))
    assert sim.prov.WSPGetSockName(b) == (LOCAL, 6001)


def test_bind_same_port_on_different_hosts_is_allowed(sim):
    a, b = sim.socket(), sim.socket()
    sim.prov.WSPBind(a, ("127.0.0.1", 6100))
    sim.prov.WSPBind(b, ("127.0.0.2", 6100))
    assert sim.prov.WSPGetSockName(b) == ("127.0.0.2", 6100)


def test_bind_reuseaddr_on_both_allows_the_same_address(sim):
    a, b, c = sim.socket(), sim.socket(), sim.socket()
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_REUSEADDR, True)
    sim.prov.WSPSetSockOpt(b, SOL_SOCKET, SO_REUSEADDR, 1)
    sim.prov.WSPBind(a, (LOCAL, 6200))
    sim.prov.WSPBind(b, (LOCAL, 6200))
    assert sim.prov.WSPGetSockName(b) == (LOCAL, 6200)
    with pytest.raises(wsp.WinsockError) as e:       # c did not ask for reuse
        sim.prov.WSPBind(c, (LOCAL, 6200))
    assert_winsock(e, wsp.WSAEADDRINUSE)


def test_bind_reuseaddr_on_one_side_only_is_eaddrinuse(sim):
    a, b = sim.socket(), sim.socket()
    sim.prov.WSPBind(a, (LOCAL, 6300))
    sim.prov.WSPSetSockOpt(b, SOL_SOCKET, SO_REUSEADDR, True)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPBind(b, (LOCAL, 6300))
    assert_winsock(e, wsp.WSAEADDRINUSE)


def test_stream_and_datagram_ports_are_separate(sim):
    t, u = sim.socket(SOCK_STREAM), sim.socket(SOCK_DGRAM)
    sim.prov.WSPBind(t, (LOCAL, 6400))
    sim.prov.WSPBind(u, (LOCAL, 6400))
    assert sim.prov.WSPGetSockName(u) == (LOCAL, 6400)


def test_second_bind_is_einval(sim):
    s = sim.socket()
    sim.prov.WSPBind(s, (LOCAL, 0))
    name = sim.prov.WSPGetSockName(s)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPBind(s, (LOCAL, 0))
    assert_winsock(e, wsp.WSAEINVAL)
    assert sim.prov.WSPGetSockName(s) == name


def test_bind_after_connect_is_einval(sim):
    c, _, _ = sim.pair()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPBind(c, (LOCAL, 0))
    assert_winsock(e, wsp.WSAEINVAL)


@pytest.mark.parametrize("addr", ["127.0.0.1:80", ("127.0.0.1",), ("127.0.0.1", 1, 2),
                                  (0x7F000001, 80), ("127.0.0.1", "80"), ("127.0.0.1", 1.5),
                                  ["127.0.0.1", 80], None, ("127.0.0.1", True)])
def test_bind_badly_shaped_address_is_type_error(sim, addr):
    s = sim.socket()
    with pytest.raises(TypeError):
        sim.prov.WSPBind(s, addr)


@pytest.mark.parametrize("addr", [("256.0.0.1", 80), ("localhost", 80), ("1.2.3", 80), ("", 80),
                                  ("::1", 80), ("127.0.0.1", -1), ("127.0.0.1", 65536)])
def test_bind_bad_address_value_is_efault(sim, addr):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPBind(s, addr)
    assert_winsock(e, wsp.WSAEFAULT)
    sim.prov.WSPBind(s, (LOCAL, 0))                  # nothing was bound


# ------------------------------------------------- listen, connect, accept
def test_connect_completes_before_accept(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    assert sim.prov.WSPConnect(c, addr) is None
    # connected before anybody accepts: names, and data can already flow
    assert sim.prov.WSPGetPeerName(c) == addr
    cname = sim.prov.WSPGetSockName(c)
    assert cname[0] == LOCAL and 49152 <= cname[1] <= 65535
    assert sim.prov.WSPSend(c, [b"early"]) == (0, 5)
    a, peer = sim.prov.WSPAccept(lst)
    assert peer == cname
    assert sim.prov.WSPGetPeerName(a) == cname
    assert sim.prov.WSPGetSockName(a) == addr
    assert sim.prov.WSPIoctl(a, FIONREAD) == 5
    buf = bytearray(16)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 5, 0)
    assert bytes(buf[:5]) == b"early"


def test_accept_through_a_wildcard_listener(sim):
    lst, addr = sim.listener(("0.0.0.0", 0))
    assert addr[0] == "0.0.0.0"
    c = sim.socket()
    sim.prov.WSPConnect(c, ("127.0.0.1", addr[1]))
    a, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c)
    assert sim.prov.WSPGetSockName(a) == ("127.0.0.1", addr[1])
    assert sim.prov.WSPGetPeerName(c) == ("127.0.0.1", addr[1])


def test_client_bound_to_the_wildcard_gets_a_concrete_address_on_connect(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPBind(c, ("0.0.0.0", 0))
    port = sim.prov.WSPGetSockName(c)[1]
    sim.prov.WSPConnect(c, addr)
    assert sim.prov.WSPGetSockName(c) == (LOCAL, port)
    _, peer = sim.prov.WSPAccept(lst)
    assert peer == (LOCAL, port)


def test_connect_prefers_the_listener_bound_to_the_exact_host(sim):
    wild, exact = sim.socket(), sim.socket()
    for s_ in (wild, exact):
        sim.prov.WSPSetSockOpt(s_, SOL_SOCKET, SO_REUSEADDR, True)
    sim.prov.WSPBind(wild, ("0.0.0.0", 9000))
    sim.prov.WSPBind(exact, ("127.0.0.1", 9000))
    sim.prov.WSPListen(wild, 5)
    sim.prov.WSPListen(exact, 5)
    c1, c2 = sim.socket(), sim.socket()
    sim.prov.WSPConnect(c1, ("127.0.0.1", 9000))
    assert sim.prov.WSPSelect([wild, exact], [], [], 0) == ([exact], [], [])
    sim.prov.WSPConnect(c2, ("127.0.0.5", 9000))
    assert sim.prov.WSPAccept(wild)[1] == sim.prov.WSPGetSockName(c2)
    assert sim.prov.WSPAccept(exact)[1] == sim.prov.WSPGetSockName(c1)


def test_connect_with_no_listener_is_refused(sim):
    c = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPConnect(c, (LOCAL, 7000))
    assert_winsock(e, wsp.WSAECONNREFUSED)
    assert isinstance(e.value, ConnectionRefusedError)
    # a bound but not listening socket refuses as well
    b = sim.socket()
    sim.prov.WSPBind(b, (LOCAL, 7000))
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPConnect(c, (LOCAL, 7000))
    assert_winsock(e, wsp.WSAECONNREFUSED)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetPeerName(c)
    assert_winsock(e, wsp.WSAENOTCONN)


def test_connect_to_a_listener_on_another_host_is_refused(sim):
    _, addr = sim.listener(("127.0.0.1", 7100))
    c = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPConnect(c, ("127.0.0.2", 7100))
    assert_winsock(e, wsp.WSAECONNREFUSED)


def test_connect_to_wildcard_or_port_zero_is_eaddrnotavail(sim):
    c = sim.socket()
    for addr in (("0.0.0.0", 80), (LOCAL, 0)):
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPConnect(c, addr)
        assert_winsock(e, wsp.WSAEADDRNOTAVAIL)


def test_full_backlog_refuses_until_accept(sim):
    lst, addr = sim.listener(backlog=1)
    c1, c2, c3 = sim.socket(), sim.socket(), sim.socket()
    sim.prov.WSPConnect(c1, addr)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPConnect(c2, addr)
    assert_winsock(e, wsp.WSAECONNREFUSED)
    _, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c1)
    sim.prov.WSPConnect(c3, addr)
    _, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c3)


def test_backlog_of_two_queues_two(sim):
    lst, addr = sim.listener(backlog=2)
    cs = [sim.socket() for _ in range(3)]
    sim.prov.WSPConnect(cs[0], addr)
    sim.prov.WSPConnect(cs[1], addr)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPConnect(cs[2], addr)
    assert_winsock(e, wsp.WSAECONNREFUSED)
    # accepted in arrival order
    assert sim.prov.WSPAccept(lst)[1] == sim.prov.WSPGetSockName(cs[0])
    assert sim.prov.WSPAccept(lst)[1] == sim.prov.WSPGetSockName(cs[1])


def test_connect_on_a_connected_socket_is_eisconn(sim):
    c, a, lst = sim.pair()
    addr = sim.prov.WSPGetSockName(lst)
    for s in (c, a):
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPConnect(s, addr)
        assert_winsock(e, wsp.WSAEISCONN)


def test_listen_errors(sim):
    s = sim.socket()
    with pytest.raises(wsp.WinsockError) as e:          # not bound
        sim.prov.WSPListen(s, 5)
    assert_winsock(e, wsp.WSAEINVAL)
    u = sim.socket(SOCK_DGRAM)
    sim.prov.WSPBind(u, (LOCAL, 0))
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPListen(u, 5)
    assert_winsock(e, wsp.WSAEOPNOTSUPP)
    c, _, _ = sim.pair()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPListen(c, 5)
    assert_winsock(e, wsp.WSAEISCONN)


def test_listen_twice_is_allowed_and_connect_from_listener_is_einval(sim):
    lst, addr = sim.listener()
    sim.prov.WSPListen(lst, 3)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPConnect(lst, addr)
    assert_winsock(e, wsp.WSAEINVAL)


def test_send_recv_before_connect_is_enotconn(sim):
    s = sim.socket()
    for call in (lambda: sim.prov.WSPSend(s, [b"x"]),
                 lambda: sim.prov.WSPRecv(s, [bytearray(4)]),
                 lambda: sim.prov.WSPGetPeerName(s),
                 lambda: sim.prov.WSPShutdown(s, SD_SEND),
                 lambda: sim.prov.WSPSend(s, [b"x"], 0, Overlapped()),
                 lambda: sim.prov.WSPRecv(s, [bytearray(4)], 0, Overlapped())):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSAENOTCONN)
    assert sim.proc.resources()["overlapped_pending"] == 0


def test_send_recv_on_listener_is_enotconn(sim):
    lst, _ = sim.listener()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(lst, [b"x"])
    assert_winsock(e, wsp.WSAENOTCONN)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(lst, [bytearray(1)])
    assert_winsock(e, wsp.WSAENOTCONN)


def test_accept_on_a_non_listening_socket_is_einval(sim):
    s = sim.socket()
    sim.prov.WSPBind(s, (LOCAL, 0))
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPAccept(s)
    assert_winsock(e, wsp.WSAEINVAL)


def test_non_blocking_accept_would_block(sim):
    lst, addr = sim.listener()
    assert sim.prov.WSPIoctl(lst, FIONBIO, 1) is None
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPAccept(lst)
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    assert isinstance(e.value, BlockingIOError)
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    a, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c)
    # the accepted socket inherits non-blocking mode
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)


def test_blocking_accept_is_woken_by_a_connect_from_another_thread(sim):
    lst, addr = sim.listener()
    w = Worker(sim.prov.WSPAccept, lst)
    w.start()
    wait_blocked(sim_socket(sim.proc, lst))       # the accept waits
    assert w.is_alive()
    c = sim.socket()
    connector = Worker(sim.prov.WSPConnect, c, addr)
    connector.start()
    assert connector.finish(5) is None
    a, peer = w.finish(5)
    assert peer == sim.prov.WSPGetSockName(c)
    assert sim.prov.WSPSend(c, [b"hi"]) == (0, 2)
    assert recv_all(sim.prov, a, 2) == b"hi"


# ------------------------------------------------- accept condition function
def test_condition_accept_receives_caller_callee_and_callback_data(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    calls = []

    def condition(caller, callee, data):
        calls.append((caller, callee, data))
        return CF_ACCEPT

    marker = object()
    a, peer = sim.prov.WSPAccept(lst, condition, marker)
    cname = sim.prov.WSPGetSockName(c)
    assert calls == [(cname, addr, marker)]
    assert peer == cname
    assert sim.prov.WSPSend(a, [b"ok"]) == (0, 2)
    assert recv_all(sim.prov, c, 2) == b"ok"


def test_condition_reject_refuses_and_resets_the_client(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPAccept(lst, lambda caller, callee, data: CF_REJECT, 0)
    assert_winsock(e, wsp.WSAECONNREFUSED)
    assert sorted(sim.prov.sockets()) == sorted([lst, c])     # nothing was accepted
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(c, [bytearray(4)])
    assert_winsock(e, wsp.WSAECONNRESET)
    assert isinstance(e.value, ConnectionResetError)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [b"x"])
    assert_winsock(e, wsp.WSAECONNRESET)
    # the connection is gone from the queue
    sim.prov.WSPIoctl(lst, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPAccept(lst)
    assert_winsock(e, wsp.WSAEWOULDBLOCK)


def test_condition_defer_keeps_the_connection_queued(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    sim.prov.WSPSend(c, [b"deferred"])
    seen = []

    def defer(caller, callee, data):
        seen.append(data)
        return CF_DEFER

    for i in range(2):
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPAccept(lst, defer, i)
        assert_winsock(e, wsp.WSATRY_AGAIN)
    assert seen == [0, 1]
    a, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c)
    assert recv_all(sim.prov, a, 8) == b"deferred"


def test_condition_returning_an_invalid_value_is_einval(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPAccept(lst, lambda *args: 7, 0)
    assert_winsock(e, wsp.WSAEINVAL)


def test_condition_must_be_callable(sim):
    lst, _ = sim.listener()
    with pytest.raises(TypeError):
        sim.prov.WSPAccept(lst, 42, 0)


# ----------------------------------------------------------------- data
def test_bytes_arrive_in_order_both_ways(sim):
    c, a, _ = sim.pair()
    sent = b""
    for i in range(50):
        chunk = bytes([i]) * (i + 1)
        assert sim.prov.WSPSend(c, [chunk]) == (0, len(chunk))
        sent += chunk
    assert sim.prov.WSPIoctl(a, FIONREAD) == len(sent)
    assert recv_all(sim.prov, a, len(sent), chunk=37) == sent
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0
    assert sim.prov.WSPSend(a, [b"reply"]) == (0, 5)
    assert recv_all(sim.prov, c, 5) == b"reply"


def test_gather_on_send_and_scatter_on_recv(sim):
    c, a, _ = sim.pair()
    assert sim.prov.WSPSend(c, [b"abc", bytearray(b"defg"), memoryview(b"hi"), b""]) == (0, 9)
    b1, b2, b3 = bytearray(2), bytearray(3), bytearray(10)
    assert sim.prov.WSPRecv(a, [b1, b2, b3]) == (0, 9, 0)
    assert (bytes(b1), bytes(b2), bytes(b3[:4])) == (b"ab", b"cde", b"fghi")
    assert bytes(b3[4:]) == bytes(6)


def test_recv_takes_what_is_there_and_leaves_the_rest(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"0123456789"])
    b1, b2 = bytearray(3), bytearray(4)
    assert sim.prov.WSPRecv(a, [b1]) == (0, 3, 0)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 7
    assert sim.prov.WSPRecv(a, [b2]) == (0, 4, 0)
    assert (bytes(b1), bytes(b2)) == (b"012", b"3456")
    assert sim.prov.WSPIoctl(a, FIONREAD) == 3


def test_recv_into_a_zero_length_buffer(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"xyz"])
    assert sim.prov.WSPRecv(a, [bytearray(0)]) == (0, 0, 0)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 3


def test_msg_peek_leaves_the_data(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"peekaboo"])
    buf = bytearray(4)
    assert sim.prov.WSPRecv(a, [buf], MSG_PEEK) == (0, 4, 0)
    assert bytes(buf) == b"peek"
    assert sim.prov.WSPIoctl(a, FIONREAD) == 8
    buf2 = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf2], MSG_PEEK) == (0, 8, 0)
    assert bytes(buf2) == b"peekaboo"
    full = bytearray(8)
    assert sim.prov.WSPRecv(a, [full]) == (0, 8, 0)
    assert bytes(full) == b"peekaboo"
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0


def test_unsupported_recv_flags_are_eopnotsupp(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"x"])
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)], wsp.MSG_OOB)
    assert_winsock(e, wsp.WSAEOPNOTSUPP)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 1


def test_fionread_counts_buffered_bytes(sim):
    c, a, _ = sim.pair()
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0
    sim.prov.WSPSend(c, [b"a" * 100])
    sim.prov.WSPSend(c, [b"b" * 23])
    assert sim.prov.WSPIoctl(a, FIONREAD) == 123
    assert sim.prov.WSPIoctl(c, FIONREAD) == 0


def test_shutdown_send_peer_reads_the_data_then_zero(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"last words"])
    assert sim.prov.WSPShutdown(c, SD_SEND) is None
    assert recv_all(sim.prov, a, 10) == b"last words"
    buf = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 0, 0)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 0, 0)      # EOF stays
    # the half-closed peer can still send back
    assert sim.prov.WSPSend(a, [b"bye"]) == (0, 3)
    assert recv_all(sim.prov, c, 3) == b"bye"


def test_send_after_shutdown_send_is_eshutdown(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(c, SD_SEND)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [b"x"])
    assert_winsock(e, wsp.WSAESHUTDOWN)
    assert isinstance(e.value, BrokenPipeError)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [b"x"], 0, Overlapped())
    assert_winsock(e, wsp.WSAESHUTDOWN)
    assert sim.proc.resources()["overlapped_pending"] == 0


def test_recv_after_shutdown_receive_is_eshutdown(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(a, SD_RECEIVE)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)])
    assert_winsock(e, wsp.WSAESHUTDOWN)
    # the other direction still works
    assert sim.prov.WSPSend(a, [b"out"]) == (0, 3)
    assert recv_all(sim.prov, c, 3) == b"out"


def test_shutdown_receive_with_unread_data_resets_the_connection(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"unread"])
    sim.prov.WSPShutdown(a, SD_RECEIVE)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    for call in (lambda: sim.prov.WSPSend(c, [b"x"]), lambda: sim.prov.WSPRecv(c, [bytearray(1)]),
                 lambda: sim.prov.WSPSend(a, [b"x"])):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSAECONNRESET)


def test_data_arriving_after_shutdown_receive_resets_the_connection(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(a, SD_RECEIVE)
    sim.prov.WSPSend(c, [b"late"])
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(c, [bytearray(1)])
    assert_winsock(e, wsp.WSAECONNRESET)


def test_shutdown_both(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(c, SD_BOTH)
    for call in (lambda: sim.prov.WSPSend(c, [b"x"]), lambda: sim.prov.WSPRecv(c, [bytearray(1)])):
        with pytest.raises(wsp.WinsockError) as e:
            call()
        assert_winsock(e, wsp.WSAESHUTDOWN)
    assert sim.prov.WSPRecv(a, [bytearray(1)]) == (0, 0, 0)


# ----------------------------------------------------- blocking / non-blocking
def test_blocking_recv_is_woken_by_data_from_another_thread_and_releases_the_gil(sim):
    c, a, _ = sim.pair()
    buf = bytearray(16)
    w = Worker(sim.prov.WSPRecv, a, [buf])
    w.start()
    wait_blocked(sim_socket(sim.proc, a))         # the receive waits
    n, _ = spin_python_for(0.2)
    assert w.is_alive()
    assert n > 10000                    # this thread ran Python all along
    sender = Worker(sim.prov.WSPSend, c, [b"wake up"])
    sender.start()
    assert sender.finish(5) == (0, 7)
    assert w.finish(5) == (0, 7, 0)
    assert bytes(buf[:7]) == b"wake up"


def test_blocking_recv_is_woken_by_graceful_close(sim):
    c, a, _ = sim.pair()
    w = Worker(sim.prov.WSPRecv, a, [bytearray(4)])
    w.start()
    wait_blocked(sim_socket(sim.proc, a))         # the receive waits
    sim.prov.WSPShutdown(c, SD_SEND)
    assert w.finish(5) == (0, 0, 0)


def test_blocking_recv_is_alertable(sim):
    """A completion routine queued to a thread blocked in WSPRecv runs there."""
    c1, a1, _ = sim.pair()
    c2, a2, _ = sim.pair()
    ran = []

    def body():
        ov = Overlapped()
        rc = sim.prov.WSPRecv(a1, [bytearray(8)], 0, ov,
                              lambda err, n, o, fl: ran.append((err, n, threading.get_ident())))
        assert rc == (wsp.WSA_IO_PENDING, 0, 0)
        result = sim.prov.WSPRecv(a2, [bytearray(8)])           # blocks, alertable
        return result, threading.get_ident()

    w = Worker(body)
    sock2 = sim_socket(sim.proc, a2)
    w.start()
    wait_blocked(sock2)                       # the blocking receive waits
    sim.prov.WSPSend(c1, [b"apc"])
    wait_until(lambda: ran, what="the completion routine")
    wait_blocked(sock2)                       # the routine ran, the recv still waits
    assert w.is_alive()
    sim.prov.WSPSend(c2, [b"done"])
    result, ident = w.finish(5)
    assert result == (0, 4, 0)
    assert ran == [(0, 3, ident)]


def test_non_blocking_recv_and_send_would_block(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPIoctl(a, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, wsp.SO_RCVBUF, 4)
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, wsp.SO_SNDBUF, 4)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    assert sim.prov.WSPSend(c, [b"0123456789"]) == (0, 8)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [b"x"])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    buf = bytearray(16)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 4, 0)
    assert bytes(buf[:4]) == b"0123"


def test_fionbio_switches_between_blocking_and_non_blocking(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPIoctl(a, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    sim.prov.WSPIoctl(a, FIONBIO, 0)
    w = Worker(sim.prov.WSPRecv, a, [bytearray(4)])
    w.start()
    wait_blocked(sim_socket(sim.proc, a))   # blocking again
    assert w.is_alive()
    sim.prov.WSPSend(c, [b"blk"])
    assert w.finish(5) == (0, 3, 0)
    sim.prov.WSPIoctl(a, FIONBIO, True)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)


# --------------------------------------------------------------- overlapped
def test_overlapped_recv_with_an_event(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.proc.WSASetEvent(ev)
    ov = Overlapped(ev)
    buf = bytearray(10)
    assert sim.prov.WSPRecv(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    assert ov.pending and ov.Internal == wsp.WSA_IO_PENDING
    assert not sim.signalled(ev)                     # reset when it started
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetOverlappedResult(a, ov, False)
    assert_winsock(e, wsp.WSA_IO_INCOMPLETE)
    assert sim.proc.resources()["overlapped_pending"] == sim.entries(1)
    sim.prov.WSPSend(c, [b"hello"])
    assert sim.signalled(ev)
    assert not ov.pending and ov.Internal == 0 and ov.InternalHigh == 5
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (5, 0)
    assert bytes(buf[:5]) == b"hello"
    assert sim.proc.resources()["overlapped_pending"] == 0


def test_overlapped_recv_completes_at_once_when_data_is_there(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"ready"])
    ev = sim.event()
    ov = Overlapped(ev)
    buf = bytearray(10)
    assert sim.prov.WSPRecv(a, [buf], 0, ov) == (0, 5, 0)
    assert sim.signalled(ev)                         # still delivered
    assert ov.Internal == 0 and ov.InternalHigh == 5
    assert sim.prov.WSPGetOverlappedResult(a, ov, True) == (5, 0)
    assert bytes(buf[:5]) == b"ready"


def test_overlapped_send_completes_at_once_with_rc_zero(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    ov = Overlapped(ev)
    assert sim.prov.WSPSend(c, [b"ab", b"cd"], 0, ov) == (0, 4)
    assert sim.signalled(ev)
    assert sim.prov.WSPGetOverlappedResult(c, ov, False) == (4, 0)
    assert recv_all(sim.prov, a, 4) == b"abcd"


def test_get_overlapped_result_waits_for_completion(sim):
    c, a, _ = sim.pair()
    ov = Overlapped()
    buf = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf], 0, ov)[0] == wsp.WSA_IO_PENDING
    w = Worker(sim.prov.WSPGetOverlappedResult, a, ov, True)
    op = ov.operation
    w.start()
    # the wait parks on the operation's threading.Event
    wait_until(lambda: op.event is not None, what="the wait's event")
    wait_condition_waiters(op.event._cond, what="the operation's event")
    assert w.is_alive()
    sim.prov.WSPSend(c, [b"waited"])
    assert w.finish(5) == (6, 0)
    assert bytes(buf[:6]) == b"waited"


def test_overlapped_recv_sees_end_of_stream(sim):
    c, a, _ = sim.pair()
    ov = Overlapped()
    assert sim.prov.WSPRecv(a, [bytearray(8)], 0, ov)[0] == wsp.WSA_IO_PENDING
    sim.prov.WSPShutdown(c, SD_SEND)
    assert not ov.pending
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (0, 0)


def test_pending_overlapped_receives_complete_in_the_order_issued(sim):
    c, a, _ = sim.pair()
    port = sim.port()
    assert sim.proc.CreateIoCompletionPort(a, port, 5) == port
    ovs = [Overlapped() for _ in range(4)]
    bufs = [bytearray(4) for _ in range(4)]
    for ov, buf in zip(ovs, bufs):
        assert sim.prov.WSPRecv(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    sim.prov.WSPSend(c, [b"abcdefghij"])
    assert [bytes(b) for b in bufs[:3]] == [b"abcd", b"efgh", b"ij\0\0"]
    assert [ov.InternalHigh for ov in ovs[:3]] == [4, 4, 2]
    assert ovs[3].pending
    packets = [sim.proc.GetQueuedCompletionStatus(port, 1000) for _ in range(3)]
    assert [(rc, n, key) for rc, n, key, _ in packets] == [(0, 4, 5), (0, 4, 5), (0, 2, 5)]
    assert [p[3] for p in packets] == ovs[:3]
    assert all(p[3] is ov for p, ov in zip(packets, ovs))
    sim.prov.WSPSend(c, [b"Z"])
    assert sim.proc.GetQueuedCompletionStatus(port, 1000)[:3] == (0, 1, 5)
    assert bytes(bufs[3]) == b"Z\0\0\0"


def test_overlapped_recv_on_a_non_blocking_socket_goes_pending(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPIoctl(a, FIONBIO, 1)
    ov = Overlapped()
    buf = bytearray(4)
    assert sim.prov.WSPRecv(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    sim.prov.WSPSend(c, [b"nb"])
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (2, 0)


def test_pending_peek_receive_leaves_the_data(sim):
    c, a, _ = sim.pair()
    ov = Overlapped()
    buf = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf], MSG_PEEK, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    sim.prov.WSPSend(c, [b"abc"])
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (3, 0)
    assert bytes(buf[:3]) == b"abc"
    assert sim.prov.WSPIoctl(a, FIONREAD) == 3


def test_pending_receives_are_served_before_the_buffer_and_later_recv_waits_its_turn(sim):
    c, a, _ = sim.pair()
    ov = Overlapped()
    first = bytearray(3)
    assert sim.prov.WSPRecv(a, [first], 0, ov)[0] == wsp.WSA_IO_PENDING
    sim.prov.WSPSend(c, [b"123456"])
    assert bytes(first) == b"123" and ov.InternalHigh == 3
    buf = bytearray(10)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 3, 0)
    assert bytes(buf[:3]) == b"456"


def test_completion_routine_runs_only_in_the_issuing_threads_alertable_wait(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    calls = []

    def routine(error, nbytes, overlapped, flags):
        calls.append((error, nbytes, overlapped, flags, threading.get_ident()))

    ov = Overlapped(ev)
    buf = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf], 0, ov, routine) == (wsp.WSA_IO_PENDING, 0, 0)
    sender = Worker(sim.prov.WSPSend, c, [b"apc!"])
    sender.start()
    assert sender.finish(5) == (0, 4)
    assert not ov.pending and ov.InternalHigh == 4
    assert calls == []                                   # not on the sender's thread
    assert sim.proc.SleepEx(0, False) == 0
    assert sim.proc.WSAWaitForMultipleEvents([ev], False, 0, False) == wsp.WSA_WAIT_TIMEOUT
    assert calls == []                                   # non-alertable waits run nothing
    assert sim.proc.resources()["overlapped_undelivered"] == sim.entries(1)  # one per layer
    assert sim.proc.SleepEx(1000, True) == wsp.WAIT_IO_COMPLETION
    assert calls == [(0, 4, ov, 0, threading.get_ident())]
    assert not sim.signalled(ev)                         # a routine: no event
    assert bytes(buf[:4]) == b"apc!"
    assert sim.proc.SleepEx(0, True) == 0                # exactly once


def test_completion_routine_of_a_send_that_completes_at_once_is_still_queued(sim):
    c, a, _ = sim.pair()
    calls = []
    ov = Overlapped()
    assert sim.prov.WSPSend(c, [b"now"], 0, ov, lambda *args: calls.append(args)) == (0, 3)
    assert calls == []
    assert sim.proc.SleepEx(0, True) == wsp.WAIT_IO_COMPLETION
    assert calls == [(0, 3, ov, 0)]


def test_completion_routine_runs_on_the_worker_that_issued_it(sim):
    c, a, _ = sim.pair()
    calls = []

    def body():
        ov = Overlapped()
        rc = sim.prov.WSPRecv(a, [bytearray(8)], 0, ov,
                              lambda err, n, o, fl: calls.append((err, n, threading.get_ident())))
        assert rc[0] == wsp.WSA_IO_PENDING
        return sim.proc.SleepEx(5000, True), threading.get_ident()

    w = Worker(body)
    base = parked()
    w.start()
    wait_parked(base + 1)                     # its alertable SleepEx waits in the core
    sim.prov.WSPSend(c, [b"to-worker"])
    status, ident = w.finish(5)
    assert status == wsp.WAIT_IO_COMPLETION
    assert calls == [(0, 8, ident)]
    assert sim.proc.SleepEx(0, True) == 0                 # nothing for this thread


def test_completion_routine_with_a_thread_id_targets_that_thread(sim):
    c, a, _ = sim.pair()
    tid = sim.proc.upcalls.WPUOpenCurrentThread()
    calls = []
    try:
        def issue():
            return sim.prov.WSPRecv(a, [bytearray(4)], 0, Overlapped(),
                                    lambda err, n, o, fl: calls.append((n, threading.get_ident())),
                                    tid)
        w = Worker(issue)
        w.start()
        assert w.finish(5) == (wsp.WSA_IO_PENDING, 0, 0)
        sim.prov.WSPSend(c, [b"mine"])
        assert sim.proc.SleepEx(1000, True) == wsp.WAIT_IO_COMPLETION
        assert calls == [(4, threading.get_ident())]
    finally:
        sim.proc.upcalls.WPUCloseThread(tid)


def test_completion_port_packets_carry_the_key_and_the_same_overlapped(sim):
    c, a, _ = sim.pair()
    port = sim.port()
    assert sim.proc.CreateIoCompletionPort(a, port, 0xABC) == port
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.WAIT_TIMEOUT, 0, 0, None)
    ov = Overlapped()
    ov.object = "recv"
    buf = bytearray(16)
    assert sim.prov.WSPRecv(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.WAIT_TIMEOUT, 0, 0, None)
    sim.prov.WSPSend(c, [b"packet"])
    rc, n, key, got = sim.proc.GetQueuedCompletionStatus(port, 1000)
    assert (rc, n, key) == (0, 6, 0xABC)
    assert got is ov and got.object == "recv"
    assert bytes(buf[:6]) == b"packet"
    ov2 = Overlapped()
    assert sim.prov.WSPSend(a, [b"back"], 0, ov2) == (0, 4)      # completed at once ...
    rc, n, key, got = sim.proc.GetQueuedCompletionStatus(port, 1000)
    assert (rc, n, key) == (0, 4, 0xABC) and got is ov2           # ... and still posted
    assert recv_all(sim.prov, c, 4) == b"back"
    assert sim.proc.resources()["overlapped_undelivered"] == 0


def test_completion_routine_on_a_port_associated_socket_is_einval(sim):
    c, a, _ = sim.pair()
    port = sim.port()
    sim.proc.CreateIoCompletionPort(a, port, 1)
    calls = []
    ov = Overlapped()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)], 0, ov, lambda *args: calls.append(args))
    assert_winsock(e, wsp.WSAEINVAL)
    assert not ov.pending
    sim.prov.WSPSend(c, [b"x"])
    assert sim.proc.SleepEx(0, True) == 0
    assert calls == []
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.WAIT_TIMEOUT, 0, 0, None)
    assert sim.proc.resources()["overlapped_pending"] == 0


def test_overlapped_already_pending_cannot_be_reused(sim):
    c, a, _ = sim.pair()
    ov = Overlapped()
    assert sim.prov.WSPRecv(a, [bytearray(4)], 0, ov)[0] == wsp.WSA_IO_PENDING
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecv(a, [bytearray(4)], 0, ov)
    assert_winsock(e, wsp.WSAEINVAL)
    sim.prov.WSPSend(c, [b"12345"])
    assert ov.InternalHigh == 4
    assert sim.prov.WSPIoctl(a, FIONREAD) == 1


# ---------------------------------------------------------- two processes
def test_two_processes_on_one_network_talk_to_each_other(layers):
    net = wsp.sim.Network(seed=0)
    server, client = Sim(net, layers=layers), Sim(net, layers=layers)
    try:
        lst, addr = server.listener()
        c = client.socket()
        client.prov.WSPConnect(c, addr)
        a, peer = server.prov.WSPAccept(lst)
        assert peer == client.prov.WSPGetSockName(c)
        assert client.prov.WSPGetPeerName(c) == addr
        assert client.prov.WSPSend(c, [b"from B"]) == (0, 6)
        assert recv_all(server.prov, a, 6) == b"from B"
        ov = Overlapped()
        buf = bytearray(6)
        assert client.prov.WSPRecv(c, [buf], 0, ov)[0] == wsp.WSA_IO_PENDING
        assert server.prov.WSPSend(a, [b"from A"]) == (0, 6)
        assert client.prov.WSPGetOverlappedResult(c, ov, False) == (6, 0)
        assert bytes(buf) == b"from A"
        assert client.proc.resources()["sockets"] == client.entries(1)
        assert server.proc.resources()["sockets"] == server.entries(2)
        client.prov.WSPShutdown(c, SD_SEND)
        assert server.prov.WSPRecv(a, [bytearray(1)]) == (0, 0, 0)
    finally:
        client.close()
        server.close()
