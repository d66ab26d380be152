"""LPWSPCloseSocket: one test per statement of the seed's remarks (and its
error table), named after the statement, over wsp.sim.Provider."""
from __future__ import annotations

import threading
import time

import pytest

from helpers import Worker, assert_winsock, wait_until
from simkit import Sim, blocked_on, connect, sim_socket, wait_blocked
from wsp import (FD_CLOSE, FD_READ, FIONBIO, SO_DONTLINGER, SO_LINGER, SOL_SOCKET, SD_SEND,
                 Linger, Overlapped)
from wsp.errors import (WAIT_IO_COMPLETION, WAIT_TIMEOUT, WSA_OPERATION_ABORTED,
                        WSAECONNABORTED, WSAECONNRESET, WSAEINPROGRESS, WSAEINTR, WSAENETDOWN,
                        WSAENOTSOCK, WSAEWOULDBLOCK, WinsockError)

STUCK = b"x" * 100        # more than the 8-byte receive buffer below: 92 bytes stay queued


def stuck_pair(host):
    """A connection whose client has undelivered data: the server's receive
    buffer holds 8 bytes and nobody reads."""
    c, a, listener = connect(host, rcvbuf=8)
    assert host.prov.WSPSend(c, [STUCK]) == (0, 100)
    return c, a, listener


def read_all(host, s, limit=10_000):
    """Read until the end of the stream (or an error)."""
    data = b""
    while len(data) < limit:
        chunk = host.recv(s)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("no end of stream")


# -- "it releases the socket descriptor s, so further references to s should
#     fail with the error WSAENOTSOCK"
def test_releases_the_descriptor_so_further_references_fail_with_enotsock(host):
    c, a, listener = connect(host)
    host.prov.WSPCloseSocket(c)
    calls = [(host.prov.WSPSend, (c, [b"x"])), (host.prov.WSPRecv, (c, [bytearray(4)])),
             (host.prov.WSPGetSockName, (c,)), (host.prov.WSPCloseSocket, (c,)),
             (host.prov.WSPShutdown, (c, SD_SEND))]
    for call, args in calls:
        with pytest.raises(WinsockError) as e:
            call(*args)
        assert_winsock(e, WSAENOTSOCK)
    with pytest.raises(WinsockError) as e:
        host.proc.upcalls.WPUQuerySocketHandleContext(c)     # gone from the process table
    assert_winsock(e, WSAENOTSOCK)


# -- "the associated naming information and queued data are discarded"
def test_naming_information_is_discarded_so_the_address_is_free_again(host):
    listener, addr = host.listener()
    host.prov.WSPCloseSocket(listener)
    again, addr2 = host.listener(addr)
    assert addr2 == addr


def test_queued_received_data_is_discarded_and_the_peer_is_reset(host):
    c, a, _ = connect(host)
    host.prov.WSPSend(c, [b"never read"])
    host.prov.WSPCloseSocket(a)                  # closes with unread data: TCP resets
    with pytest.raises(WinsockError) as e:
        host.prov.WSPRecv(c, [bytearray(8)])
    assert_winsock(e, WSAECONNRESET)


# -- "Any blocking or asynchronous calls pending on the socket (issued by any
#     thread in this process) are canceled without posting any notification
#     messages."
@pytest.mark.parametrize("call", ["recv", "accept", "send"])
def test_blocking_calls_pending_on_the_socket_are_canceled(host, call):
    c, a, listener = connect(host, rcvbuf=8)
    if call == "recv":
        target, worker = a, Worker(host.prov.WSPRecv, a, [bytearray(16)])
    elif call == "accept":
        target, worker = listener, Worker(host.prov.WSPAccept, listener)
    else:
        host.prov.WSPSend(c, [STUCK])                 # fill both buffers: the next send blocks
        host.prov.WSPSetSockOpt(c, SOL_SOCKET, 0x1001, 0)   # SO_SNDBUF 0: nothing more fits
        target, worker = c, Worker(host.prov.WSPSend, c, [b"blocked"])
    sock = sim_socket(host.proc, target)
    worker.start()
    wait_blocked(sock)                                # the worker waits inside its call
    assert worker.is_alive()
    host.prov.WSPCloseSocket(target)
    with pytest.raises(WinsockError) as e:
        worker.finish()
    assert_winsock(e, WSAEINTR)


def test_canceled_calls_post_no_notification(host):
    c, a, _ = connect(host)
    ev = host.proc.WSACreateEvent()
    host.prov.WSPEventSelect(a, ev, FD_READ | FD_CLOSE)
    host.prov.WSPEnumNetworkEvents(a, ev)
    overlapped = Overlapped()
    host.prov.WSPRecv(a, [bytearray(4)], 0, overlapped)
    host.prov.WSPCloseSocket(a)
    assert not host.signalled(ev)              # the socket's event: nothing posted


# -- "Any pending overlapped operations issued by any thread in this process
#     are also canceled. Whatever completion action was specified ... is
#     performed (for example, event, completion routine, or completion port).
#     In this case, the pending overlapped operations fail with the error
#     status WSA_OPERATION_ABORTED."
def test_pending_overlapped_fail_with_operation_aborted_and_the_event_is_signalled(host):
    c, a, _ = connect(host)
    ev = host.proc.WSACreateEvent()
    ov = Overlapped(ev)
    assert host.prov.WSPRecv(a, [bytearray(4)], 0, ov)[0] == 997
    host.prov.WSPCloseSocket(a)
    assert ov.Internal == WSA_OPERATION_ABORTED and host.signalled(ev)


def test_pending_overlapped_fail_with_operation_aborted_and_the_routine_runs(host):
    c, a, _ = connect(host)
    calls = []
    ov = Overlapped()
    host.prov.WSPRecv(a, [bytearray(4)], 0, ov, lambda *args: calls.append(args))
    host.prov.WSPCloseSocket(a)
    assert calls == []                               # an APC: runs in the alertable wait
    assert host.proc.SleepEx(0, True) == WAIT_IO_COMPLETION
    assert calls == [(WSA_OPERATION_ABORTED, 0, ov, 0)]


def test_pending_overlapped_fail_with_operation_aborted_and_the_port_gets_a_packet(host):
    c, a, _ = connect(host)
    port = host.proc.CreateIoCompletionPort(a, None, 5)
    ovs = [Overlapped() for _ in range(3)]
    for ov in ovs:
        host.prov.WSPRecv(a, [bytearray(4)], 0, ov)
    host.prov.WSPCloseSocket(a)
    packets = host.proc.GetQueuedCompletionStatusEx(port, 10, 0)
    assert [(rc, n, key) for rc, n, key, _ in packets] == [(WSA_OPERATION_ABORTED, 0, 5)] * 3
    assert [p[3] for p in packets] == ovs
    host.proc.CloseHandle(port)


def test_pending_overlapped_issued_by_another_thread_are_canceled_too(host):
    c, a, _ = connect(host, rcvbuf=8)
    host.prov.WSPSend(c, [STUCK])
    ev = host.proc.WSACreateEvent()
    ov_recv, ov_send = Overlapped(ev), Overlapped()

    def issue():
        assert host.prov.WSPRecv(c, [bytearray(4)], 0, ov_recv)[0] == 997
        host.prov.WSPSetSockOpt(c, SOL_SOCKET, 0x1001, 0)      # SO_SNDBUF 0
        assert host.prov.WSPSend(c, [b"more"], 0, ov_send)[0] == 997

    worker = Worker(issue)
    worker.start()
    worker.finish()
    host.prov.WSPCloseSocket(c)
    assert ov_recv.Internal == WSA_OPERATION_ABORTED and host.signalled(ev)
    assert ov_send.Internal == WSA_OPERATION_ABORTED


# -- "FD_CLOSE will not be posted after LPWSPCloseSocket is called."
@pytest.mark.parametrize("peer_close", ["graceful", "hard"])
def test_fd_close_is_not_posted_to_the_closer_but_the_peer_gets_it(host, peer_close):
    """The closer selected FD_CLOSE, and after its close the peer closes too,
    which is what gives a socket FD_CLOSE (its FIN or its reset reaches the
    closer's end): the closer's event stays unsignalled and nothing is
    recorded for it, while the peer got FD_CLOSE for the closer's close."""
    c, a, _ = connect(host)
    ev_c, ev_a = host.proc.WSACreateEvent(), host.proc.WSACreateEvent()
    host.prov.WSPEventSelect(c, ev_c, FD_CLOSE)
    host.prov.WSPEventSelect(a, ev_a, FD_CLOSE)
    closer = sim_socket(host.proc, c)             # the closer's end, kept past its handle
    host.prov.WSPCloseSocket(c)
    assert host.signalled(ev_a)
    assert host.prov.WSPEnumNetworkEvents(a, ev_a) == {FD_CLOSE: 0}     # graceful: 0
    if peer_close == "hard":
        host.linger(a, 1, 0)
    host.prov.WSPCloseSocket(a)
    # the peer's close did reach the closer's end: a FIN or a reset ...
    if peer_close == "graceful":
        assert (closer.eof, closer.reset_error) == (True, 0)
    else:
        assert closer.reset_error == WSAECONNRESET
    # ... and the closer was told nothing: not through its event, not on record
    assert not host.signalled(ev_c)
    with host.net.lock:
        assert closer.net_events == {}
    host.proc.WSACloseEvent(ev_c)
    host.proc.WSACloseEvent(ev_a)


def test_peer_gets_fd_close_with_connaborted_on_a_hard_close(host):
    c, a, _ = connect(host)
    ev = host.proc.WSACreateEvent()
    host.prov.WSPEventSelect(a, ev, FD_CLOSE)
    host.linger(c, 1, 0)
    host.prov.WSPCloseSocket(c)
    assert host.prov.WSPEnumNetworkEvents(a, ev) == {FD_CLOSE: WSAECONNABORTED}


# -- "If SO_DONTLINGER is enabled (the default setting), LPWSPCloseSocket
#     returns immediately and connection is gracefully closed in the background."
def test_dontlinger_is_the_default_setting(host):
    s = host.socket()
    assert host.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_DONTLINGER) is True
    assert host.prov.WSPGetSockOpt(s, SOL_SOCKET, SO_LINGER) == Linger(0, 0)


def test_dontlinger_returns_immediately_and_closes_gracefully_in_the_background(host):
    c, a, _ = stuck_pair(host)
    closer = Worker(host.prov.WSPCloseSocket, c)
    closer.start()
    assert closer.finish() is None                 # returned though nobody reads ...
    assert host.net.lingering == 1                 # ... with the 92 bytes still undelivered
    assert read_all(host, a) == STUCK              # every byte, then the end of stream
    assert host.net.lingering == 0


# -- "If SO_LINGER is enabled with a zero time-out, LPWSPCloseSocket returns
#     immediately and the connection is reset/terminated." ... "any unsent
#     data is lost. Any LPWSPRecv call on the remote side of the circuit will
#     fail with WSAECONNRESET."
def test_linger_zero_returns_immediately_resets_and_unsent_data_is_lost(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 0)
    closer = Worker(host.prov.WSPCloseSocket, c)
    closer.start()
    assert closer.finish() is None                 # returned though nobody read the data
    assert host.net.lingering == 0                 # and nothing is kept to deliver it
    with pytest.raises(WinsockError) as e:
        host.prov.WSPRecv(a, [bytearray(200)])
    assert_winsock(e, WSAECONNRESET)               # not even the 8 buffered bytes
    assert host.net.lingering == 0


# -- "If SO_LINGER is set with a nonzero time-out interval on a blocking
#     socket, the LPWSPCloseSocket call blocks on a blocking socket until the
#     remaining data has been sent or until the time-out expires."
def test_linger_nonzero_on_a_blocking_socket_blocks_until_the_data_is_sent(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 5)
    sock = sim_socket(host.proc, c)
    closer = Worker(host.prov.WSPCloseSocket, c)
    closer.start()
    wait_blocked(sock)                             # the close waits: nobody has read yet
    assert closer.is_alive()
    assert host.recv(a, 8) == STUCK[:8]            # reading frees room, the rest moves on
    assert read_all(host, a) == STUCK[8:]          # delivered, then a graceful end
    assert closer.finish() is None
    assert blocked_on(sock) == 0
    assert host.net.lingering == 0                 # the close itself waited for delivery


# -- "If the time-out expires before all data has been sent, the service
#     provider should terminate the connection before LPWSPCloseSocket returns."
def test_linger_timeout_expiring_terminates_the_connection_before_returning(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 1)

    def timed_close():
        start = time.monotonic()
        host.prov.WSPCloseSocket(c)
        return time.monotonic() - start

    closer = Worker(timed_close)
    closer.start()
    # not before the 1 s time-out (the provider's deadline is taken after
    # `start`, on the same clock; the margin is for float rounding only)
    assert closer.finish() >= 1.0 - 1e-6
    assert host.net.lingering == 0
    with pytest.raises(WinsockError) as e:         # already terminated when close returned
        host.prov.WSPRecv(a, [bytearray(200)])
    assert_winsock(e, WSAECONNRESET)


# -- "If SO_LINGER is enabled with a nonzero time-out with a nonblocking
#     socket, LPWSPCloseSocket returns immediately, thus indicating failure."
#    "the call ... will fail with an error of WSAEWOULDBLOCK if the close
#     operation cannot be completed immediately. If LPWSPCloseSocket fails
#     with WSAEWOULDBLOCK, the socket handle is still valid and a disconnect
#     is not initiated."
def test_linger_nonzero_nonblocking_fails_with_wouldblock_handle_valid_no_disconnect(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 10)
    host.prov.WSPIoctl(c, FIONBIO, 1)
    name = host.prov.WSPGetSockName(c)
    with pytest.raises(WinsockError) as e:
        host.prov.WSPCloseSocket(c)
    assert_winsock(e, WSAEWOULDBLOCK)
    assert host.prov.WSPGetSockName(c) == name     # the handle is still valid
    host.prov.WSPSend(a, [b"still open"])          # and the connection is too
    assert host.recv(c) == b"still open"
    got = b""
    while len(got) < len(STUCK):
        got += host.recv(a, 8)
    assert got == STUCK
    host.prov.WSPIoctl(a, FIONBIO, 1)
    with pytest.raises(WinsockError) as e:          # and no FIN after it
        host.prov.WSPRecv(a, [bytearray(200)])
    assert_winsock(e, WSAEWOULDBLOCK)


def test_nonblocking_linger_close_can_succeed_when_nothing_is_left_to_send(host):
    c, a, _ = connect(host)
    host.linger(c, 1, 10)
    host.prov.WSPIoctl(c, FIONBIO, 1)
    host.prov.WSPCloseSocket(c)                    # can complete immediately
    assert host.recv(a) == b""


# -- "LPWSPCloseSocket can continue to fail unless the Winsock SPI client
#     does one of the following: [enables SO_DONTLINGER], enables SO_LINGER
#     with a zero time-out, calls LPWSPShutdown to initiate closure."
def _wouldblock_twice(host, c):
    for _ in range(2):
        with pytest.raises(WinsockError) as e:
            host.prov.WSPCloseSocket(c)
        assert_winsock(e, WSAEWOULDBLOCK)


def test_close_keeps_failing_until_dontlinger_is_enabled(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 10)
    host.prov.WSPIoctl(c, FIONBIO, 1)
    _wouldblock_twice(host, c)
    host.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_DONTLINGER, True)
    host.prov.WSPCloseSocket(c)
    assert read_all(host, a) == STUCK              # graceful


def test_close_keeps_failing_until_linger_zero_is_set(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 10)
    host.prov.WSPIoctl(c, FIONBIO, 1)
    _wouldblock_twice(host, c)
    host.linger(c, 1, 0)
    host.prov.WSPCloseSocket(c)
    with pytest.raises(WinsockError) as e:         # hard
        host.prov.WSPRecv(a, [bytearray(200)])
    assert_winsock(e, WSAECONNRESET)


def test_close_keeps_failing_until_shutdown_initiates_closure(host):
    c, a, _ = stuck_pair(host)
    host.linger(c, 1, 10)
    host.prov.WSPIoctl(c, FIONBIO, 1)
    _wouldblock_twice(host, c)
    host.prov.WSPShutdown(c, SD_SEND)
    host.prov.WSPCloseSocket(c)
    assert read_all(host, a) == STUCK              # graceful, in the background


# -- "If SO_DONTLINGER is set on a stream socket ..., the LPWSPCloseSocket call
#     will return immediately and does not get WSAEWOULDBLOCK, whether the
#     socket is blocking or nonblocking. However, any data queued for
#     transmission will be sent if possible before the underlying socket is
#     closed."
@pytest.mark.parametrize("nonblocking", [0, 1])
def test_dontlinger_never_gets_wouldblock_and_queued_data_is_still_sent(host, nonblocking):
    c, a, _ = stuck_pair(host)
    host.prov.WSPIoctl(c, FIONBIO, nonblocking)
    host.prov.WSPCloseSocket(c)
    assert read_all(host, a) == STUCK


# -- "the Winsock provider is allowed to retain any resources associated with
#     the socket until such time as the graceful disconnect has completed"
def test_provider_keeps_a_gracefully_closing_connection_until_its_data_is_delivered(host):
    c, a, _ = stuck_pair(host)
    host.prov.WSPCloseSocket(c)
    assert host.net.lingering == 1                 # handle gone, connection kept
    assert host.proc.resources()["sockets"] == host.entries(2)   # listener, accepted socket
    got = b""
    while len(got) < 48:
        got += host.recv(a, 8)
    assert got == STUCK[:48]
    assert host.net.lingering == 1                 # 52 bytes still to deliver
    assert read_all(host, a) == STUCK[48:]
    assert host.net.lingering == 0                 # delivered: released


# -- error table: WSAEINPROGRESS -- "the service provider is still processing
#    a callback function"
def test_inprogress_from_inside_the_accept_condition_function(host):
    listener, addr = host.listener()
    c = host.socket()
    host.prov.WSPConnect(c, addr)
    seen = []

    def condition(caller, callee, data):
        for s in (listener, c):
            with pytest.raises(WinsockError) as e:
                host.prov.WSPCloseSocket(s)
            seen.append(e.value.winerror)
        return 0                                   # CF_ACCEPT

    a, _ = host.prov.WSPAccept(listener, condition, 7)
    assert seen == [WSAEINPROGRESS, WSAEINPROGRESS]
    host.prov.WSPCloseSocket(c)                    # fine again outside the callback
    assert host.prov.WSPGetSockName(listener) == addr


# -- error table: WSAENETDOWN
def test_netdown_while_the_network_is_down_and_the_handle_stays_valid(host):
    c, a, _ = connect(host)
    name = host.prov.WSPGetSockName(c)
    host.net.set_down(True)
    with pytest.raises(WinsockError) as e:
        host.prov.WSPCloseSocket(c)
    assert_winsock(e, WSAENETDOWN)
    host.net.set_down(False)
    assert host.prov.WSPGetSockName(c) == name
    host.prov.WSPCloseSocket(c)


# -- more of the same rules ----------------------------------------------------------------
def test_closing_a_listener_resets_its_queued_connections(host):
    listener, addr = host.listener()
    c = host.socket()
    host.prov.WSPConnect(c, addr)
    host.prov.WSPCloseSocket(listener)
    with pytest.raises(WinsockError) as e:
        host.prov.WSPRecv(c, [bytearray(4)])
    assert_winsock(e, WSAECONNRESET)


def test_close_in_one_process_is_seen_by_the_peer_in_another(net, layers):
    one, two = Sim(net, layers=layers), Sim(net, layers=layers)
    try:
        c, a, _ = connect(one, two)
        one.prov.WSPSend(c, [b"bye"])
        one.prov.WSPCloseSocket(c)
        assert two.recv(a) == b"bye" and two.recv(a) == b""
        one.prov.WSPCleanup()
        two.prov.WSPCloseSocket(a)
        two.prov.WSPCleanup()
        assert one.clean() and two.clean() and net.lingering == 0
    finally:
        one.proc.terminate()
        two.proc.terminate()


@pytest.mark.stress
def test_thousands_of_pending_receives_complete_exactly_once_while_the_socket_closes(host):
    """2000 overlapped 1-byte receives, four threads draining the port, a
    sender feeding bytes while another thread closes the socket: every
    receive is delivered exactly once, with data or WSA_OPERATION_ABORTED."""
    c, a, _ = connect(host)
    port = host.proc.CreateIoCompletionPort(a, None, 1)
    total = 2000
    ovs = []
    for i in range(total):
        ov = Overlapped()
        ov.object = i
        ovs.append(ov)
        assert host.prov.WSPRecv(a, [bytearray(1)], 0, ov)[0] == 997
    results = []
    lock = threading.Lock()
    done = threading.Event()

    def drain():
        while not done.is_set():
            rc, n, key, ov = host.proc.GetQueuedCompletionStatus(port, 50)
            if rc == WAIT_TIMEOUT:
                continue
            with lock:
                results.append((ov.object, rc, n))
                if len(results) >= total:
                    done.set()

    def feed():
        for _ in range(700):
            try:
                host.prov.WSPSend(c, [b"z"])
            except WinsockError:
                return

    drainers = [Worker(drain) for _ in range(4)]
    for w in drainers:
        w.start()
    feeder = Worker(feed)
    feeder.start()
    # close while bytes flow: once the first receive has been delivered
    wait_until(lambda: results, what="a first receive delivered")
    host.prov.WSPCloseSocket(a)
    feeder.finish(30)
    assert done.wait(30), f"{len(results)} of {total} delivered"
    for w in drainers:
        w.finish(30)
    assert sorted(i for i, _, _ in results) == list(range(total))    # each exactly once
    delivered = [r for r in results if r[1] == 0]
    aborted = [r for r in results if r[1] == WSA_OPERATION_ABORTED]
    assert len(delivered) + len(aborted) == total
    assert 1 <= len(delivered) <= 700               # the first one came before the close
    assert all(n == 1 for _, _, n in delivered) and all(n == 0 for _, _, n in aborted)
    # receives complete in the order issued: the ones with data come first
    assert sorted(i for i, _, _ in delivered) == list(range(len(delivered)))
    assert host.proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    host.proc.CloseHandle(port)
    assert host.proc.resources()["overlapped_pending"] == 0
    assert host.proc.resources()["overlapped_undelivered"] == 0
