"""wsp.sim.Provider, network events (SPEC §6.3): WSPEventSelect and
WSPEnumNetworkEvents for FD_ACCEPT, FD_CONNECT, FD_READ, FD_WRITE and
FD_CLOSE, and WSPSelect readiness."""
from __future__ import annotations

import time

import pytest

import wsp
import wsp.sim
from simkit import LOCAL, blocked_on, sim_socket, wait_blocked
from helpers import Worker, assert_winsock, wait_event_waiters
from wsp import (FD_ACCEPT, FD_ALL_EVENTS, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE,
                 FIONBIO, SD_SEND, SO_RCVBUF, SO_SNDBUF, SOCK_DGRAM, SOL_SOCKET)


def would_block(call):
    with pytest.raises(wsp.WinsockError) as e:
        call()
    assert_winsock(e, wsp.WSAEWOULDBLOCK)


# ------------------------------------------------------------ event select
def test_fd_accept_is_recorded_signalled_and_rearmed_by_accept(sim):
    lst, addr = sim.listener()
    ev = sim.event()
    assert sim.prov.WSPEventSelect(lst, ev, FD_ACCEPT) is None
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {}
    assert not sim.signalled(ev)
    c1, c2 = sim.socket(), sim.socket()
    sim.prov.WSPConnect(c1, addr)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}
    assert not sim.signalled(ev)
    sim.prov.WSPConnect(c2, addr)
    # a new connection records FD_ACCEPT again before any accept (Windows: Wine's
    # test_accept_events, a line Wine marks todo_wine and Windows passes)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}
    _, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c1)
    assert sim.signalled(ev)                                  # c2 is still queued
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}
    _, peer = sim.prov.WSPAccept(lst)
    assert peer == sim.prov.WSPGetSockName(c2)
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {}
    would_block(lambda: sim.prov.WSPAccept(lst))              # EventSelect: non-blocking
    c3 = sim.socket()
    sim.prov.WSPConnect(c3, addr)
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}


def test_event_select_records_a_pending_connection_at_once(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    ev = sim.event()
    sim.prov.WSPEventSelect(lst, ev, FD_ACCEPT)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}


def test_fd_connect_and_fd_write_on_connect(sim):
    _, addr = sim.listener()
    c = sim.socket()
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_CONNECT | FD_WRITE)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {}         # not connected: not writable
    would_block(lambda: sim.prov.WSPConnect(c, addr))         # non-blocking connect
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_CONNECT: 0, FD_WRITE: 0}
    assert sim.prov.WSPGetPeerName(c) == addr
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {}


def test_fd_read_is_rearmed_by_recv(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    sim.prov.WSPSend(c, [b"a"])
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    sim.prov.WSPSend(c, [b"b"])
    # new data records FD_READ again before any recv (Windows: Wine's test_read_events,
    # a line Wine marks todo_wine and Windows passes)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    buf = bytearray(1)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 1, 0)            # data remains: recorded again
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    assert sim.prov.WSPRecv(a, [buf]) == (0, 1, 0)            # drained: nothing recorded
    assert bytes(buf) == b"b"
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    would_block(lambda: sim.prov.WSPRecv(a, [buf]))
    sim.prov.WSPSend(c, [b"c"])                               # re-armed by the recv
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}


def test_fd_read_for_data_already_there_when_selected(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"early"])
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ | FD_WRITE)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0, FD_WRITE: 0}


def test_fd_read_for_a_datagram(sim):
    a = sim.socket(SOCK_DGRAM)
    b = sim.socket(SOCK_DGRAM)
    sim.prov.WSPBind(a, (LOCAL, 0))
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    sim.prov.WSPSendTo(b, [b"d1"], 0, sim.prov.WSPGetSockName(a))
    sim.prov.WSPSendTo(b, [b"d2"], 0, sim.prov.WSPGetSockName(a))
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    buf = bytearray(4)
    assert sim.prov.WSPRecvFrom(a, [buf])[1] == 2
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}   # d2 still queued
    assert sim.prov.WSPRecvFrom(a, [buf])[1] == 2
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}


def test_fd_write_is_recorded_for_a_connected_socket(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_WRITE)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_WRITE: 0}
    assert not sim.signalled(ev)


def test_fd_close_is_zero_on_graceful_close_and_the_closer_gets_none(sim):
    c, a, _ = sim.pair()
    ev_a, ev_c = sim.event(), sim.event()
    sim.prov.WSPEventSelect(a, ev_a, FD_READ | FD_CLOSE)
    sim.prov.WSPEventSelect(c, ev_c, FD_READ | FD_CLOSE)
    sim.prov.WSPSend(c, [b"bye"])
    sim.prov.WSPCloseSocket(c)
    assert sim.signalled(ev_a)
    assert sim.prov.WSPEnumNetworkEvents(a, ev_a) == {FD_READ: 0, FD_CLOSE: 0}
    assert not sim.signalled(ev_c)
    buf = bytearray(8)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 3, 0)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 0, 0)
    assert sim.prov.WSPEnumNetworkEvents(a, ev_a) == {}       # FD_CLOSE is once
    sim.prov.WSPCloseSocket(a)
    assert not sim.signalled(ev_c)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPEnumNetworkEvents(c, ev_c)
    assert_winsock(e, wsp.WSAENOTSOCK)


def test_fd_close_after_shutdown_send(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_CLOSE)
    sim.prov.WSPShutdown(c, SD_SEND)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_CLOSE: 0}
    # selecting again records nothing again: FD_CLOSE is once (Wine's test_close_events)
    sim.prov.WSPEventSelect(a, ev, FD_CLOSE | FD_READ)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}


def test_only_selected_events_are_recorded(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_CLOSE)
    sim.prov.WSPSend(c, [b"data"])
    assert not sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    sim.prov.WSPShutdown(c, SD_SEND)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_CLOSE: 0}


def test_fd_close_after_a_reset_is_econnreset(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_CLOSE)
    sim.net.connections()[0].reset()
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_CLOSE: wsp.WSAECONNRESET}


def test_enum_without_an_event_leaves_the_event_signalled(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    sim.prov.WSPSend(c, [b"x"])
    assert sim.prov.WSPEnumNetworkEvents(a) == {FD_READ: 0}
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    assert not sim.signalled(ev)


def test_event_select_wakes_a_thread_waiting_on_the_event(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    w = Worker(sim.proc.WSAWaitForMultipleEvents, [ev], False, 5000, False)
    w.start()
    wait_event_waiters(sim.proc, ev)              # registered on the event: in the wait
    sim.prov.WSPSend(c, [b"wake"])
    assert w.finish(5) == wsp.WSA_WAIT_EVENT_0
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}


def test_event_select_makes_the_socket_non_blocking_and_fionbio_0_fails(sim):
    c, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    would_block(lambda: sim.prov.WSPRecv(a, [bytearray(4)]))
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPIoctl(a, FIONBIO, 0)
    assert_winsock(e, wsp.WSAEINVAL)
    sim.prov.WSPIoctl(a, FIONBIO, 1)                          # allowed
    # cancelling the selection leaves the socket non-blocking until FIONBIO 0
    sim.prov.WSPEventSelect(a, None, 0)
    would_block(lambda: sim.prov.WSPRecv(a, [bytearray(4)]))
    sim.prov.WSPSend(c, [b"quiet"])
    assert not sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a) == {}
    assert sim.prov.WSPIoctl(a, FIONBIO, 0) is None
    w = Worker(sim.prov.WSPRecv, a, [bytearray(8)])
    w.start()
    assert w.finish(5) == (0, 5, 0)


def test_accepted_socket_inherits_the_listeners_selection(sim):
    lst, addr = sim.listener()
    ev = sim.event()
    sim.prov.WSPEventSelect(lst, ev, FD_ACCEPT | FD_READ | FD_CLOSE)
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    sim.prov.WSPSend(c, [b"before accept"])
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}
    a, _ = sim.prov.WSPAccept(lst)
    assert sim.signalled(ev)                                  # the same event
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    assert sim.prov.WSPEnumNetworkEvents(lst) == {}
    buf = bytearray(32)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 13, 0)
    would_block(lambda: sim.prov.WSPRecv(a, [buf]))           # inherited non-blocking mode
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPIoctl(a, FIONBIO, 0)
    assert_winsock(e, wsp.WSAEINVAL)
    sim.prov.WSPShutdown(c, SD_SEND)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_CLOSE: 0}


def test_event_select_errors(sim):
    c, a, _ = sim.pair()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPEventSelect(a, None, FD_READ)
    assert_winsock(e, wsp.WSAEINVAL)
    port = sim.port()
    for bad in (port, 123456):                                # not an event
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPEventSelect(a, bad, FD_READ)
        assert_winsock(e, wsp.WSA_INVALID_HANDLE)
    with pytest.raises(TypeError):
        sim.prov.WSPEventSelect(a, sim.event(), "FD_READ")
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPEnumNetworkEvents(a, port)
    assert_winsock(e, wsp.WSA_INVALID_HANDLE)


def test_event_select_on_a_closed_event_still_records(sim):
    c, a, _ = sim.pair()
    ev = sim.proc.WSACreateEvent()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    sim.proc.WSACloseEvent(ev)
    sim.prov.WSPSend(c, [b"x"])                               # no crash, recorded
    assert sim.prov.WSPEnumNetworkEvents(a) == {FD_READ: 0}


def test_all_events_on_one_socket_in_one_enumeration(sim):
    lst, addr = sim.listener()
    c = sim.socket()
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_ALL_EVENTS)
    would_block(lambda: sim.prov.WSPConnect(c, addr))
    a, _ = sim.prov.WSPAccept(lst)
    sim.prov.WSPSend(a, [b"payload"])
    sim.prov.WSPShutdown(a, SD_SEND)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_CONNECT: 0, FD_WRITE: 0, FD_READ: 0,
                                                    FD_CLOSE: 0}


# ------------------------------------------------------------------ select
def test_select_readable_with_data(sim):
    c, a, _ = sim.pair()
    assert sim.prov.WSPSelect([a], [], [], 0) == ([], [], [])
    sim.prov.WSPSend(c, [b"r"])
    assert sim.prov.WSPSelect([a, c], [], [], 0) == ([a], [], [])
    sim.prov.WSPRecv(a, [bytearray(1)])
    assert sim.prov.WSPSelect([a], [], [], 0) == ([], [], [])


def test_select_readable_listener_with_a_pending_connection(sim):
    lst, addr = sim.listener()
    assert sim.prov.WSPSelect([lst], [], [], 0) == ([], [], [])
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    assert sim.prov.WSPSelect([lst], [], [], 0) == ([lst], [], [])
    sim.prov.WSPAccept(lst)
    assert sim.prov.WSPSelect([lst], [], [], 0) == ([], [], [])


def test_select_readable_at_end_of_stream(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(c, SD_SEND)
    assert sim.prov.WSPSelect([a], [], [], 0) == ([a], [], [])
    assert sim.prov.WSPRecv(a, [bytearray(1)]) == (0, 0, 0)
    assert sim.prov.WSPSelect([a], [], [], 0) == ([a], [], [])   # EOF stays readable


def test_select_readable_datagram_socket(sim):
    a, b = sim.socket(SOCK_DGRAM), sim.socket(SOCK_DGRAM)
    sim.prov.WSPBind(a, (LOCAL, 0))
    assert sim.prov.WSPSelect([a], [], [], 0) == ([], [], [])
    sim.prov.WSPSendTo(b, [b"dg"], 0, sim.prov.WSPGetSockName(a))
    assert sim.prov.WSPSelect([a], [b], [], 0) == ([a], [b], [])


def test_select_writable(sim):
    c, a, lst = sim.pair()
    fresh = sim.socket()
    assert sim.prov.WSPSelect([], [c, a, fresh, lst], [], 0) == ([], [c, a], [])


def test_select_not_writable_while_the_send_buffer_is_full(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 8)
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 8)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    assert sim.prov.WSPSend(c, [bytes(32)]) == (0, 16)
    assert sim.prov.WSPSelect([], [c], [], 0) == ([], [], [])
    sim.prov.WSPRecv(a, [bytearray(8)])
    assert sim.prov.WSPSelect([], [c], [], 0) == ([], [c], [])


def test_select_keeps_the_order_of_the_given_lists(sim):
    c1, a1, _ = sim.pair()
    c2, a2, _ = sim.pair()
    sim.prov.WSPSend(c1, [b"1"])
    sim.prov.WSPSend(c2, [b"2"])
    assert sim.prov.WSPSelect([a2, c1, a1], [], [], 0) == ([a2, a1], [], [])


def test_select_timeout_zero_returns_at_once_and_small_timeout_waits(sim):
    c, a, _ = sim.pair()
    assert sim.prov.WSPSelect([a], [], [], 0) == ([], [], [])
    start = time.monotonic()
    assert sim.prov.WSPSelect([a], [], [a], 0.1) == ([], [], [])
    assert time.monotonic() - start >= 0.1 - 1e-6   # not before its deadline (same clock)


def test_select_is_woken_by_data_from_another_thread(sim):
    c, a, _ = sim.pair()
    w = Worker(sim.prov.WSPSelect, [a], [], [], 5.0)
    sock = sim_socket(sim.proc, a)
    w.start()
    wait_blocked(sock)                            # the select waits on a
    assert w.is_alive()
    sim.prov.WSPSend(c, [b"wake"])
    assert w.finish(5) == ([a], [], [])           # woken with a readable, not timed out
    assert blocked_on(sock) == 0


def test_select_is_woken_by_a_connection_from_another_thread(sim):
    lst, addr = sim.listener()
    w = Worker(sim.prov.WSPSelect, [lst], [], [], None)
    w.start()
    wait_blocked(sim_socket(sim.proc, lst))       # the select waits on the listener
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    assert w.finish(5) == ([lst], [], [])


def test_select_errors(sim):
    c, a, _ = sim.pair()
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSelect([], [], [], 0)
    assert_winsock(e, wsp.WSAEINVAL)
    ev = sim.event()
    closed = sim.socket()
    sim.prov.WSPCloseSocket(closed)
    for bad in (123456, ev, closed):
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPSelect([a, bad], [], [], 0)
        assert_winsock(e, wsp.WSAENOTSOCK)
        with pytest.raises(wsp.WinsockError) as e:
            sim.prov.WSPSelect([], [], [bad], 0)
        assert_winsock(e, wsp.WSAENOTSOCK)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSelect([a], [], [], -1)
    assert_winsock(e, wsp.WSAEINVAL)
    with pytest.raises(TypeError):
        sim.prov.WSPSelect([a], [], [], "1")
    with pytest.raises(TypeError):
        sim.prov.WSPSelect(5, [], [], 0)
