"""The Microsoft extension functions (SPEC §6.4) over stacks of 0, 1 and 2
layers: AcceptEx (with and without initial data), GetAcceptExSockaddrs,
ConnectEx (with send data; refused), DisconnectEx (with TF_REUSE_SOCKET),
SO_UPDATE_ACCEPT_CONTEXT / SO_UPDATE_CONNECT_CONTEXT, obtained through
SIO_GET_EXTENSION_FUNCTION_POINTER.  Microsoft's pages for each function are
the reference; through a layer the functions are the layer's own, taking its
handles."""
from __future__ import annotations

import uuid

import pytest

import wsp
from helpers import assert_winsock
from simkit import LOCAL
from wsp import (SIO_GET_EXTENSION_FUNCTION_POINTER, SO_UPDATE_ACCEPT_CONTEXT,
                 SO_UPDATE_CONNECT_CONTEXT, SOL_SOCKET, TF_REUSE_SOCKET, WSAID_ACCEPTEX,
                 WSAID_CONNECTEX, WSAID_DISCONNECTEX, WSAID_GETACCEPTEXSOCKADDRS, Overlapped)


def fails(code, call):
    with pytest.raises(wsp.WinsockError) as e:
        call()
    assert_winsock(e, code)


def functions(sim, s):
    get = sim.prov.WSPIoctl
    return {name: get(s, SIO_GET_EXTENSION_FUNCTION_POINTER, guid)
            for name, guid in (("accept", WSAID_ACCEPTEX), ("addrs", WSAID_GETACCEPTEXSOCKADDRS),
                               ("connect", WSAID_CONNECTEX), ("disconnect", WSAID_DISCONNECTEX))}


def bound(sim):
    s = sim.socket()
    sim.prov.WSPBind(s, (LOCAL, 0))
    return s


def test_the_functions_are_the_top_providers_own(sim):
    lst, _ = sim.listener()
    fn = functions(sim, lst)
    assert fn["accept"].__self__ is sim.prov and fn["connect"].__self__ is sim.prov
    assert fn["disconnect"].__self__ is sim.prov
    ov = Overlapped()                                  # also when asked with an overlapped
    got = sim.prov.WSPIoctl(lst, SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_CONNECTEX, ov)
    assert got.__self__ is sim.prov and got.__name__ == "ConnectEx"
    assert (ov.Internal, ov.InternalHigh) == (0, 0)
    fails(wsp.WSAEINVAL, lambda: sim.prov.WSPIoctl(lst, SIO_GET_EXTENSION_FUNCTION_POINTER,
                                                   uuid.UUID(int=1)))
    with pytest.raises(TypeError):
        sim.prov.WSPIoctl(lst, SIO_GET_EXTENSION_FUNCTION_POINTER, "not a guid")


def test_acceptex_of_a_queued_connection_completes_on_the_listeners_port(sim):
    lst, addr = sim.listener()
    port = sim.port()
    sim.proc.CreateIoCompletionPort(lst, port, 11)
    fn = functions(sim, lst)
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)                       # queued before the AcceptEx
    acc, buf, ov = sim.socket(), bytearray(64), Overlapped()
    assert fn["accept"](lst, acc, buf, 0, 32, 32, ov) == (0, 0)
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (0, 0, 11, ov)
    local, remote = fn["addrs"](buf, 0, 32, 32)
    assert local == addr and remote == sim.prov.WSPGetSockName(c)
    sim.prov.WSPSetSockOpt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, lst)
    assert sim.prov.WSPGetPeerName(acc) == remote      # the accept socket is the connection
    sim.prov.WSPSend(c, [b"ping"])
    assert sim.recv(acc) == b"ping"
    sim.prov.WSPSend(acc, [b"pong"])
    assert sim.recv(c) == b"pong"


def test_acceptex_with_initial_data_completes_when_the_data_arrives(sim):
    lst, addr = sim.listener()
    ev = sim.event()
    fn = functions(sim, lst)
    acc, buf, ov = sim.socket(), bytearray(8 + 64), Overlapped(ev)
    assert fn["accept"](lst, acc, buf, 8, 32, 32, ov) == (wsp.WSA_IO_PENDING, 0)
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)                       # accepted, but no data yet
    assert ov.pending and not sim.signalled(ev)
    sim.prov.WSPSend(c, [b"hello, world"])
    assert sim.signalled(ev) and (ov.Internal, ov.InternalHigh) == (0, 8)
    assert bytes(buf[:8]) == b"hello, w"
    assert fn["addrs"](buf, 8, 32, 32) == (addr, sim.prov.WSPGetSockName(c))
    assert sim.recv(acc) == b"orld"                    # the rest stays for the next receive


def test_acceptex_argument_errors(sim):
    lst, addr = sim.listener()
    fn = functions(sim, lst)
    acc = sim.socket()
    accept = fn["accept"]
    fails(wsp.WSAEINVAL, lambda: accept(lst, acc, bytearray(64), 0, 31, 32, Overlapped()))
    fails(wsp.WSAEINVAL, lambda: accept(lst, acc, bytearray(64), 0, 32, 16, Overlapped()))
    fails(wsp.WSAEFAULT, lambda: accept(lst, acc, bytearray(63), 0, 32, 32, Overlapped()))
    fails(wsp.WSA_INVALID_PARAMETER, lambda: accept(lst, acc, bytearray(64), 0, 32, 32, None))
    fails(wsp.WSAEINVAL, lambda: accept(bound(sim), acc, bytearray(64), 0, 32, 32,
                                        Overlapped()))          # not listening
    fails(wsp.WSAEINVAL, lambda: accept(lst, bound(sim), bytearray(64), 0, 32, 32,
                                        Overlapped()))          # accept socket bound
    fails(wsp.WSAENOTSOCK, lambda: accept(lst, 12345, bytearray(64), 0, 32, 32, Overlapped()))
    with pytest.raises(TypeError):
        accept(lst, acc, b"read-only", 0, 32, 32, Overlapped())
    fails(wsp.WSAEINVAL, lambda: fn["addrs"](bytearray(64), 0, 32, 31))
    fails(wsp.WSAEINVAL, lambda: fn["addrs"](bytearray(64), 0, 32, 32))   # no address there
    # every check came before the operation started: nothing is pending anywhere
    assert sim.proc.operations() == []


def test_closing_the_listener_aborts_a_waiting_acceptex(sim):
    lst, _ = sim.listener()
    port = sim.port()
    sim.proc.CreateIoCompletionPort(lst, port, 3)
    fn = functions(sim, lst)
    ov = Overlapped()
    assert fn["accept"](lst, sim.socket(), bytearray(64), 0, 32, 32, ov)[0] == wsp.WSA_IO_PENDING
    sim.prov.WSPCloseSocket(lst)
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.ERROR_OPERATION_ABORTED, 0, 3,
                                                           ov)
    assert ov.Internal == wsp.WSA_OPERATION_ABORTED


def test_connectex_sends_its_data_once_connected(sim):
    lst, addr = sim.listener()
    port = sim.port()
    c = bound(sim)
    sim.proc.CreateIoCompletionPort(c, port, 4)
    fn = functions(sim, c)
    ov = Overlapped()
    assert fn["connect"](c, addr, b"first words", ov) == (0, 11)
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (0, 11, 4, ov)
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, None)
    a, _ = sim.prov.WSPAccept(lst)
    assert sim.recv(a) == b"first words"
    assert sim.prov.WSPGetPeerName(c) == addr
    c2 = bound(sim)
    ov2 = Overlapped()
    assert fn["connect"](c2, addr, None, ov2) == (0, 0)            # no data: just the connect
    assert (ov2.Internal, ov2.InternalHigh) == (0, 0)


def test_a_refused_connectex_completes_with_wsaeconnrefused(sim):
    lst, addr = sim.listener()
    sim.prov.WSPCloseSocket(lst)
    c = bound(sim)
    port = sim.port()
    sim.proc.CreateIoCompletionPort(c, port, 6)
    ov = Overlapped()
    assert functions(sim, c)["connect"](c, addr, b"x", ov) == (wsp.WSA_IO_PENDING, 0)
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.ERROR_CONNECTION_REFUSED, 0, 6,
                                                           ov)
    assert ov.Internal == wsp.WSAECONNREFUSED


def test_connectex_argument_errors(sim):
    _, addr = sim.listener()
    c = sim.socket()
    connect = functions(sim, c)["connect"]
    fails(wsp.WSAEINVAL, lambda: connect(c, addr, None, Overlapped()))        # not bound
    b = bound(sim)
    fails(wsp.WSA_INVALID_PARAMETER, lambda: connect(b, addr, None, None))
    with pytest.raises(TypeError):
        connect(b, "not an address", None, Overlapped())
    assert connect(b, addr, None, Overlapped()) == (0, 0)
    fails(wsp.WSAEISCONN, lambda: connect(b, addr, None, Overlapped()))


def test_disconnectex_then_reuse_the_socket_for_acceptex(sim):
    lst, addr = sim.listener()
    fn = functions(sim, lst)
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    acc = sim.socket()
    assert fn["accept"](lst, acc, bytearray(64), 0, 32, 32, Overlapped()) == (0, 0)
    ov = Overlapped()
    assert fn["disconnect"](acc, ov, TF_REUSE_SOCKET) == (0, 0)
    assert (ov.Internal, ov.InternalHigh) == (0, 0)
    assert sim.recv(c) == b""                          # the peer sees the end of the stream
    fails(wsp.WSAENOTCONN, lambda: sim.prov.WSPGetPeerName(acc))       # unconnected again
    c2 = sim.socket()
    sim.prov.WSPConnect(c2, addr)
    buf = bytearray(64)
    assert fn["accept"](lst, acc, buf, 0, 32, 32, Overlapped()) == (0, 0)   # reused
    assert fn["addrs"](buf, 0, 32, 32)[1] == sim.prov.WSPGetSockName(c2)
    sim.prov.WSPSend(c2, [b"again"])
    assert sim.recv(acc) == b"again"


def test_disconnectex_without_reuse_and_its_errors(sim):
    c, a, _ = sim.pair()
    disconnect = functions(sim, c)["disconnect"]
    fails(wsp.WSAEINVAL, lambda: disconnect(c, Overlapped(), 0x10))
    fails(wsp.WSA_INVALID_PARAMETER, lambda: disconnect(c, None))
    ov = Overlapped()
    assert disconnect(c, ov) == (0, 0)
    assert sim.recv(a) == b""
    fails(wsp.WSAESHUTDOWN, lambda: sim.prov.WSPSend(c, [b"late"]))
    fails(wsp.WSAENOTCONN, lambda: disconnect(sim.socket(), Overlapped()))


def test_disconnectex_waits_for_the_queued_data_to_leave(sim):
    c, a, _ = sim.pair()
    sim.net.connections()[0].hold()                    # deliveries wait
    sim.prov.WSPSend(c, [b"queued"])
    ov = Overlapped()
    assert functions(sim, c)["disconnect"](c, ov) == (wsp.WSA_IO_PENDING, 0)
    assert ov.pending
    sim.net.connections()[0].release()
    assert (ov.Internal, ov.InternalHigh) == (0, 0)
    assert sim.recv(a) == b"queued" and sim.recv(a) == b""


def test_the_functions_through_the_application_api(layers):
    # WSAIoctl routes to the top of the socket's catalog stack, whose functions
    # take the application's handles
    from wsp import AF_INET, SOCK_STREAM
    from wsp.lsp import LayeredProvider
    net = wsp.sim.Network()
    proc = wsp.Process()
    top = wsp.sim.Provider(net)
    for _ in range(layers):
        top = LayeredProvider(top)
    proc.catalog.install(top)
    proc.WSAStartup(0x0202)
    try:
        lst = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
        proc.bind(lst, (LOCAL, 0))
        proc.listen(lst, 4)
        addr = proc.getsockname(lst)
        port = proc.CreateIoCompletionPort(None)
        proc.CreateIoCompletionPort(lst, port, 1)
        accept_ex = proc.WSAIoctl(lst, SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_ACCEPTEX)
        connect_ex = proc.WSAIoctl(lst, SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_CONNECTEX)
        acc, c = proc.WSASocket(AF_INET, SOCK_STREAM, 0), proc.WSASocket(AF_INET, SOCK_STREAM, 0)
        buf, aov, cov = bytearray(4 + 64), Overlapped(), Overlapped()
        assert accept_ex(lst, acc, buf, 4, 32, 32, aov) == (wsp.WSA_IO_PENDING, 0)
        proc.bind(c, (LOCAL, 0))
        assert connect_ex(c, addr, b"hi there", cov) == (0, 8)
        assert proc.GetQueuedCompletionStatus(port, 0) == (0, 4, 1, aov)
        assert bytes(buf[:4]) == b"hi t"
        assert proc.getpeername(acc) == proc.getsockname(c)
        proc.closesocket(c)
        proc.closesocket(acc)
        proc.closesocket(lst)
        proc.CloseHandle(port)
    finally:
        while proc.wsa_started:
            proc.WSACleanup()
    assert all(v == 0 for v in proc.resources().values()), proc.resources()


def test_two_waiting_acceptex_calls_take_connections_in_order(sim):
    lst, addr = sim.listener()
    fn = functions(sim, lst)
    (a1, b1, o1), (a2, b2, o2) = [(sim.socket(), bytearray(64), Overlapped()) for _ in range(2)]
    assert fn["accept"](lst, a1, b1, 0, 32, 32, o1)[0] == wsp.WSA_IO_PENDING
    assert fn["accept"](lst, a2, b2, 0, 32, 32, o2)[0] == wsp.WSA_IO_PENDING
    c1, c2 = sim.socket(), sim.socket()
    sim.prov.WSPConnect(c1, addr)
    assert not o1.pending and o2.pending
    sim.prov.WSPConnect(c2, addr)
    assert not o2.pending
    assert sim.prov.WSPGetPeerName(a1) == sim.prov.WSPGetSockName(c1)
    assert sim.prov.WSPGetPeerName(a2) == sim.prov.WSPGetSockName(c2)
    ev = sim.event()
    sim.prov.WSPEventSelect(lst, ev, wsp.FD_ACCEPT)     # AcceptEx took them: none queued
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {}


def test_closing_the_accept_socket_aborts_an_acceptex_waiting_for_data(sim):
    lst, addr = sim.listener()
    port = sim.port()
    sim.proc.CreateIoCompletionPort(lst, port, 8)
    fn = functions(sim, lst)
    acc, ov = sim.socket(), Overlapped()
    assert fn["accept"](lst, acc, bytearray(4 + 64), 4, 32, 32, ov)[0] == wsp.WSA_IO_PENDING
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)                        # accepted, waiting for the first data
    assert ov.pending
    sim.prov.WSPCloseSocket(acc)
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.ERROR_OPERATION_ABORTED, 0, 8,
                                                           ov)
    assert sim.recv(c) == b""                           # the client sees the close


def test_a_reset_fails_a_waiting_disconnectex(sim):
    c, a, _ = sim.pair()
    conn = sim.net.connections()[0]
    conn.hold()
    sim.prov.WSPSend(c, [b"stuck"])
    ov = Overlapped()
    assert functions(sim, c)["disconnect"](c, ov)[0] == wsp.WSA_IO_PENDING
    conn.reset()
    assert ov.Internal == wsp.WSAECONNRESET
