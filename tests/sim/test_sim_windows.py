"""Where wsp follows what Windows is observed to do over Microsoft's pages
(SPEC §6.3), each test citing its evidence: Wine's ws2_32 conformance tests
(dlls/ws2_32/tests/sock.c), whose assertions run against real Windows.
Run over stacks of 0, 1 and 2 layers (tests/sim)."""
from __future__ import annotations

import pytest

import wsp
from helpers import assert_winsock
from wsp import (FD_ACCEPT, FD_CONNECT, FD_READ, FD_WRITE, SD_RECEIVE, SD_SEND,
                 SO_ERROR, SOL_SOCKET, Overlapped)


def fails(code, call):
    with pytest.raises(wsp.WinsockError) as e:
        call()
    assert_winsock(e, code)


# ------------------------------------------------- 1. selecting again records nothing again
def test_selecting_again_does_not_record_fd_read_again(sim):
    # test_read_events: after the first FD_READ, WSAEventSelect again records nothing
    c, a, _ = sim.pair()
    sim.prov.WSPSend(c, [b"x"])
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    sim.prov.WSPEventSelect(a, ev, 0)                  # also after selecting nothing
    sim.prov.WSPEventSelect(a, ev, FD_READ)
    assert not sim.signalled(ev) and sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    buf = bytearray(4)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 1, 0)     # the re-enabling call
    sim.prov.WSPSend(c, [b"y"])
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}


def test_selecting_again_does_not_record_fd_write_or_fd_accept_again(sim):
    # test_write_events and test_accept_events
    c, a, lst = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_WRITE)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_WRITE: 0}
    sim.prov.WSPEventSelect(a, ev, FD_WRITE)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}
    c2 = sim.socket()
    sim.prov.WSPConnect(c2, sim.prov.WSPGetSockName(lst))
    lev = sim.event()
    sim.prov.WSPEventSelect(lst, lev, FD_ACCEPT)
    assert sim.prov.WSPEnumNetworkEvents(lst, lev) == {FD_ACCEPT: 0}
    sim.prov.WSPEventSelect(lst, lev, FD_ACCEPT)
    assert sim.prov.WSPEnumNetworkEvents(lst, lev) == {}


# ------------------------------------------------- 2. FD_CONNECT to a select after the connect
@pytest.mark.parametrize("mask,expected", [
    (FD_CONNECT | FD_WRITE, {FD_CONNECT: 0, FD_WRITE: 0}),
    (FD_CONNECT, {FD_CONNECT: 0}),                     # a subset that leaves FD_WRITE out
])
def test_fd_connect_is_recorded_to_a_select_made_after_the_connect(sim, mask, expected):
    # test_connect_events, "connect and then select"; test_write_events
    _, addr = sim.listener()
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)                       # blocking: connected before the select
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, mask)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == expected
    sim.prov.WSPEventSelect(c, ev, mask)               # once
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {}


def test_an_accepted_socket_records_no_fd_connect(sim):
    _, a, _ = sim.pair()
    ev = sim.event()
    sim.prov.WSPEventSelect(a, ev, FD_CONNECT)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}


# ------------------------------------------------- 4. non-blocking connect
def test_a_refused_non_blocking_connect_would_block_then_reports_the_refusal(sim):
    # test_select and the WSAEventSelect page: WSAEWOULDBLOCK, then except set,
    # FD_CONNECT with WSAECONNREFUSED, and SO_ERROR, which keeps reading it
    lst, addr = sim.listener()
    sim.prov.WSPCloseSocket(lst)                       # nobody listens there now
    c = sim.socket()
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_CONNECT | FD_WRITE | FD_READ)   # non-blocking
    fails(wsp.WSAEWOULDBLOCK, lambda: sim.prov.WSPConnect(c, addr))
    assert sim.prov.WSPSelect([c], [c], [c], 0) == ([], [], [c])
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_CONNECT: wsp.WSAECONNREFUSED}
    assert sim.prov.WSPGetSockOpt(c, SOL_SOCKET, SO_ERROR) == wsp.WSAECONNREFUSED
    assert sim.prov.WSPGetSockOpt(c, SOL_SOCKET, SO_ERROR) == wsp.WSAECONNREFUSED
    fails(wsp.WSAENOTCONN, lambda: sim.prov.WSPGetPeerName(c))


def test_a_successful_non_blocking_connect_would_block_then_is_writable(sim):
    _, addr = sim.listener()
    c = sim.socket()
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_CONNECT | FD_WRITE)
    fails(wsp.WSAEWOULDBLOCK, lambda: sim.prov.WSPConnect(c, addr))
    assert sim.prov.WSPSelect([], [c], [c], 0) == ([], [c], [])
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_CONNECT: 0, FD_WRITE: 0}
    assert sim.prov.WSPGetSockOpt(c, SOL_SOCKET, SO_ERROR) == 0
    assert sim.prov.WSPGetPeerName(c) == addr


def test_a_blocking_refused_connect_still_fails_at_once(sim):
    lst, addr = sim.listener()
    sim.prov.WSPCloseSocket(lst)
    c = sim.socket()
    fails(wsp.WSAECONNREFUSED, lambda: sim.prov.WSPConnect(c, addr))


# ------------------------------------------------- 5. shutdown
def test_a_receive_pending_at_sd_receive_still_completes_with_later_data(sim):
    # test_shutdown: only new receives fail with WSAESHUTDOWN
    c, a, _ = sim.pair()
    buf = bytearray(8)
    ov = Overlapped()
    assert sim.prov.WSPRecv(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    sim.prov.WSPShutdown(a, SD_RECEIVE)
    fails(wsp.WSAESHUTDOWN, lambda: sim.prov.WSPRecv(a, [bytearray(8)]))
    assert sim.prov.WSPSend(c, [b"late"]) == (0, 4)
    assert (ov.Internal, ov.InternalHigh) == (0, 4) and bytes(buf[:4]) == b"late"


def test_data_arriving_after_sd_receive_with_no_receive_pending_resets(sim):
    # the shutdown page: data that arrives after SD_RECEIVE resets the connection
    # (only a receive already pending takes it, as above)
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(a, SD_RECEIVE)
    assert sim.prov.WSPSend(c, [b"unwanted"]) == (0, 8)    # it left the sender
    fails(wsp.WSAECONNRESET, lambda: sim.prov.WSPRecv(c, [bytearray(8)]))
    fails(wsp.WSAECONNRESET, lambda: sim.prov.WSPSend(a, [b"x"]))


def test_sending_to_a_peer_that_shut_down_sending_and_closed_aborts(sim):
    # test_shutdown: the send succeeds, the next receive fails with WSAECONNABORTED
    c, a, _ = sim.pair()
    sim.prov.WSPShutdown(a, SD_SEND)
    assert sim.recv(c) == b""                           # its end of stream
    sim.prov.WSPCloseSocket(a)
    assert sim.prov.WSPSend(c, [b"to nobody"]) == (0, 9)
    fails(wsp.WSAECONNABORTED, lambda: sim.prov.WSPRecv(c, [bytearray(8)]))


def test_sending_to_a_peer_that_only_closed_still_resets(sim):
    c, a, _ = sim.pair()
    sim.prov.WSPCloseSocket(a)
    assert sim.recv(c) == b""
    assert sim.prov.WSPSend(c, [b"to nobody"]) == (0, 9)
    fails(wsp.WSAECONNRESET, lambda: sim.prov.WSPRecv(c, [bytearray(8)]))


# ------------------------------------------------- 6. completion-port codes
def test_gqcs_reports_a_reset_receive_as_error_netname_deleted(sim):
    # test_completion_port: GetLastError() is ERROR_NETNAME_DELETED after the dequeue;
    # the overlapped and WSPGetOverlappedResult keep WSAECONNRESET
    c, a, _ = sim.pair()
    port = sim.port()
    sim.proc.CreateIoCompletionPort(a, port, 7)
    ov = Overlapped()
    assert sim.prov.WSPRecv(a, [bytearray(8)], 0, ov)[0] == wsp.WSA_IO_PENDING
    sim.linger(c, 1, 0)
    sim.prov.WSPCloseSocket(c)                          # a hard close: a reset
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.ERROR_NETNAME_DELETED, 0, 7, ov)
    assert ov.Internal == wsp.WSAECONNRESET
    fails(wsp.WSAECONNRESET, lambda: sim.prov.WSPGetOverlappedResult(a, ov, False))


def test_gqcs_codes_for_an_aborted_receive_and_gqcsex_keeps_the_wsa_code(sim):
    c, a, _ = sim.pair()
    port = sim.port()
    sim.proc.CreateIoCompletionPort(a, port, 1)
    sim.proc.CreateIoCompletionPort(c, port, 2)
    ov_a, ov_c = Overlapped(), Overlapped()
    sim.prov.WSPRecv(a, [bytearray(8)], 0, ov_a)
    sim.prov.WSPRecv(c, [bytearray(8)], 0, ov_c)
    sim.prov.WSPCloseSocket(a)                          # aborts a's receive; c sees the end
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.ERROR_OPERATION_ABORTED, 0, 1,
                                                           ov_a)
    assert wsp.ERROR_OPERATION_ABORTED == wsp.WSA_OPERATION_ABORTED == 995
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (0, 0, 2, ov_c)   # end of stream
    # GQCSEx has no per-entry GetLastError: its entries carry the WSA code
    ov = Overlapped()
    c2, a2, _ = sim.pair()
    sim.proc.CreateIoCompletionPort(a2, port, 3)
    sim.prov.WSPRecv(a2, [bytearray(8)], 0, ov)
    sim.linger(c2, 1, 0)
    sim.prov.WSPCloseSocket(c2)
    assert sim.proc.GetQueuedCompletionStatusEx(port, 4, 0) == [(wsp.WSAECONNRESET, 0, 3, ov)]


def test_the_win32_table_of_spec_6_1():
    assert wsp.win32_error(wsp.WSAECONNRESET) == wsp.ERROR_NETNAME_DELETED == 64
    assert wsp.win32_error(wsp.WSAECONNABORTED) == wsp.ERROR_CONNECTION_ABORTED == 1236
    assert wsp.win32_error(wsp.WSAECONNREFUSED) == wsp.ERROR_CONNECTION_REFUSED == 1225
    assert wsp.win32_error(wsp.WSAENETUNREACH) == wsp.ERROR_NETWORK_UNREACHABLE == 1231
    assert wsp.win32_error(wsp.WSAEHOSTUNREACH) == wsp.ERROR_HOST_UNREACHABLE == 1232
    assert wsp.win32_error(wsp.WSAETIMEDOUT) == wsp.ERROR_SEM_TIMEOUT == 121
    assert wsp.win32_error(wsp.WSAEMSGSIZE) == wsp.ERROR_MORE_DATA == 234
    assert wsp.win32_error(wsp.WSAENETDOWN) == wsp.WSAENETDOWN        # others as they are
    assert wsp.win32_error(0) == 0
