"""LPWSPCleanup: one test per statement of the seed's remarks (and its
error table), named after the statement, over wsp.sim.Provider; plus
Process.terminate(), the process that dies without cleanup."""
from __future__ import annotations

import pytest

from helpers import Worker, assert_winsock
from simkit import Sim, blocked_on, connect, recv_all, sim_socket, stack, wait_blocked
from wsp import (AF_INET, FD_CLOSE, FD_READ, SO_SNDBUF, SOCK_STREAM, SOL_SOCKET,
                 Overlapped)
from wsp.errors import (WAIT_TIMEOUT, WSA_OPERATION_ABORTED, WSAECONNRESET, WSAEINTR,
                        WSAENETDOWN, WSANOTINITIALISED, WinsockError)
from wsp.sim import Provider


# -- "The Windows Sockets 2 SPI client is required to perform a successful
#     WSPStartup call before it can use Winsock service providers."
def test_startup_is_required_before_using_the_provider(net, layers):
    proc, prov = Sim(net).proc, stack(Provider(net), layers)
    for call, args in ((prov.WSPSocket, (AF_INET, SOCK_STREAM, 0)), (prov.WSPCleanup, ()),
                       (prov.WSPCloseSocket, (4,))):
        with pytest.raises(WinsockError) as e:
            call(*args)
        assert_winsock(e, WSANOTINITIALISED)
    proc.terminate()


# -- "... the SPI client will call LPWSPCleanup to deregister itself from a
#     Winsock service provider and allow the service provider to free any
#     resources allocated on behalf of the Windows Sockets 2 client."
def test_cleanup_deregisters_and_frees_the_resources(host, peer):
    c, a, listener = connect(host)
    host.proc.CreateIoCompletionPort(a, None, 1)
    host.prov.WSPCleanup()
    res = host.proc.resources()
    assert res["sockets"] == 0 and res["providers"] == 0 and not host.proc.initialised
    assert host.prov.sockets() == []


# -- "It is permissible for SPI clients to make more than one WSPStartup
#     call. For each WSPStartup call, a corresponding LPWSPCleanup call will
#     also be issued. Only the final LPWSPCleanup for the service provider
#     does the actual cleanup; the preceding calls simply decrement an
#     internal reference count in the Winsock service provider."
def test_only_the_final_cleanup_cleans_up_the_others_decrement_a_count(host):
    host.prov.WSPStartup(0x0202, None, host.proc.upcalls)
    host.prov.WSPStartup(0x0202, None, host.proc.upcalls)
    c, a, listener = connect(host)
    ov = Overlapped()
    host.prov.WSPRecv(a, [bytearray(4)], 0, ov)
    host.prov.WSPCleanup()
    host.prov.WSPCleanup()
    assert ov.pending and sorted(host.prov.sockets()) == sorted([c, a, listener])
    host.prov.WSPSend(c, [b"ok"])                  # still fully working
    assert ov.Internal == 0 and ov.InternalHigh == 2
    host.prov.WSPCleanup()                         # the third: the real one
    assert host.prov.sockets() == [] and not host.prov.started


# -- "When the internal reference count reaches zero and actual cleanup
#     operations commence, any pending blocking or asynchronous calls issued
#     by any thread in this process are canceled without posting any
#     notification messages or signaling any event objects."
def test_pending_blocking_calls_are_canceled(host):
    c, a, listener = connect(host)
    blocked = [Worker(host.prov.WSPRecv, a, [bytearray(4)]),
               Worker(host.prov.WSPAccept, listener)]
    socks = [sim_socket(host.proc, a), sim_socket(host.proc, listener)]
    for w in blocked:
        w.start()
    for sock in socks:
        wait_blocked(sock)                        # each worker waits inside its call
    assert all(w.is_alive() for w in blocked)
    host.prov.WSPCleanup()
    for w in blocked:
        with pytest.raises(WinsockError) as e:
            w.finish()
        assert_winsock(e, WSAEINTR)
    assert [blocked_on(sock) for sock in socks] == [0, 0]


def test_cancellation_posts_no_notification_and_signals_no_event(host, peer):
    c, a, _ = connect(peer, host)
    ev = host.proc.WSACreateEvent()
    host.prov.WSPEventSelect(a, ev, FD_READ | FD_CLOSE)
    host.prov.WSPEnumNetworkEvents(a, ev)
    blocked_ov = Overlapped(ev)
    host.prov.WSPRecv(a, [bytearray(4)], 0, blocked_ov)
    host.prov.WSPCleanup()
    assert not host.signalled(ev)                 # neither the socket's nor the operation's
    assert blocked_ov.Internal == WSA_OPERATION_ABORTED


# -- "Any pending overlapped send and receive operations ... issued by any
#     thread in this process are also canceled without setting the event
#     object or invoking the completion routine, if specified. In this case,
#     the pending overlapped operations fail with the error status
#     WSA_OPERATION_ABORTED."
def test_pending_overlapped_fail_with_operation_aborted_without_event_routine_or_packet(host):
    # a send that must wait: the peer's 8-byte buffer is full, SO_SNDBUF is 0
    c, a, _ = connect(host, rcvbuf=8)
    host.prov.WSPSend(c, [b"x" * 100])
    host.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 0)
    port = host.proc.CreateIoCompletionPort(c, None, 3)
    ov_send = Overlapped()
    assert host.prov.WSPSend(c, [b"waits"], 0, ov_send)[0] == 997
    # receives with an event and with a routine, issued by another thread
    d, b, _ = connect(host)
    ev = host.proc.WSACreateEvent()
    calls = []
    ov_event, ov_routine = Overlapped(ev), Overlapped()

    def issue():
        assert host.prov.WSPRecv(b, [bytearray(4)], 0, ov_event)[0] == 997
        assert host.prov.WSPRecv(d, [bytearray(4)], 0, ov_routine,
                                 lambda *args: calls.append(args))[0] == 997

    worker = Worker(issue)
    worker.start()
    worker.finish()
    host.prov.WSPCleanup()
    for ov in (ov_event, ov_routine, ov_send):
        assert ov.Internal == WSA_OPERATION_ABORTED
    assert not host.signalled(ev)
    assert host.proc.SleepEx(0, True) == 0 and calls == []
    assert host.proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert host.proc.resources()["overlapped_pending"] == 0
    assert host.proc.resources()["overlapped_undelivered"] == 0


# -- "Any sockets open when LPWSPCleanup is called are reset and automatically
#     deallocated as if LPWSPCloseSocket was called"
def test_open_sockets_are_reset_and_deallocated(host, peer):
    c, a, _ = connect(peer, host)
    peer.prov.WSPSend(c, [b"unread"])
    host.prov.WSPCleanup()
    with pytest.raises(WinsockError) as e:
        peer.prov.WSPRecv(c, [bytearray(8)])
    assert_winsock(e, WSAECONNRESET)
    assert host.proc.resources()["sockets"] == 0


# -- "sockets that have been closed with LPWSPCloseSocket but still have
#     pending data to be sent are not affected, but the pending data is
#     still sent."
# -- "This function should not return until ... any data remaining to be
#     transmitted [has] either already been sent or [is] queued for
#     transmission by portions of the transport stack that will not be
#     unloaded"
def test_closed_sockets_still_sending_are_not_affected_and_their_data_is_still_sent(host, peer):
    c, a, _ = connect(host, peer, rcvbuf=8)
    payload = bytes(range(200))
    host.prov.WSPSend(c, [payload])
    host.prov.WSPCloseSocket(c)                    # graceful, 192 bytes still queued
    host.prov.WSPCleanup()
    assert host.net.lingering == 1                 # held by the network, not the provider
    got = b""
    while True:
        chunk = peer.recv(a)
        if not chunk:
            break
        got += chunk
    assert got == payload and host.net.lingering == 0


# -- "A Winsock service provider must be prepared to deal with a process that
#     terminates without invoking LPWSPCleanup"
def test_a_process_that_terminates_without_cleanup(host, peer):
    c, a, _ = connect(peer, host)
    listener, addr = host.listener()
    ov = Overlapped()
    host.prov.WSPRecv(a, [bytearray(4)], 0, ov)
    blocked = Worker(host.prov.WSPAccept, listener)
    listening = sim_socket(host.proc, listener)
    blocked.start()
    wait_blocked(listening)                        # the accept waits inside its call
    host.proc.terminate()
    with pytest.raises(WinsockError) as e:         # its peers see a reset
        peer.prov.WSPRecv(c, [bytearray(4)])
    assert_winsock(e, WSAECONNRESET)
    with pytest.raises(WinsockError) as e:         # its blocked threads are released
        blocked.finish()
    assert_winsock(e, WSAEINTR)
    assert blocked_on(listening) == 0
    assert ov.Internal == WSA_OPERATION_ABORTED
    assert host.clean() and not host.prov.started
    again, addr2 = peer.listener(addr)             # its addresses are free again
    assert addr2 == addr


# -- "A Winsock service provider must ensure that LPWSPCleanup leaves things in
#     a state in which the Ws2_32.dll can immediately invoke WSPStartup to
#     reestablish Winsock usage."
def test_startup_works_again_immediately_with_a_clean_table(host):
    listener, addr = host.listener()
    c, a, _ = connect(host)
    host.prov.WSPCleanup()
    assert host.clean()
    host.prov.WSPStartup(0x0202, None, host.proc.upcalls)
    again, addr2 = host.listener(addr)
    assert addr2 == addr
    c, a, _ = connect(host)
    host.prov.WSPSend(c, [b"fresh"])
    assert host.recv(a) == b"fresh"
    assert len(host.prov.sockets()) == 4


# -- error table: WSANOTINITIALISED, WSAENETDOWN
def test_cleanup_errors(host):
    host.net.set_down(True)
    with pytest.raises(WinsockError) as e:
        host.prov.WSPCleanup()
    assert_winsock(e, WSAENETDOWN)
    assert host.prov.started                       # nothing changed
    host.net.set_down(False)
    host.prov.WSPCleanup()
    with pytest.raises(WinsockError) as e:
        host.prov.WSPCleanup()
    assert_winsock(e, WSANOTINITIALISED)


def test_nothing_leaks_after_a_busy_session_and_cleanup(net, layers):
    one, two = Sim(net, layers=layers), Sim(net, layers=layers)
    try:
        for _ in range(20):
            c, a, listener = connect(one, two)
            port = one.proc.CreateIoCompletionPort(c, None, 1)
            ov = Overlapped()
            assert one.prov.WSPSend(c, [b"x" * 1000], 0, ov) == (0, 1000)
            assert recv_all(two.prov, a, 1000) == b"x" * 1000
            assert one.proc.GetQueuedCompletionStatus(port, 0) == (0, 1000, 1, ov)
            one.proc.CloseHandle(port)
            two.prov.WSPCloseSocket(listener)
        one.prov.WSPCleanup()
        two.prov.WSPCleanup()
        assert one.clean() and two.clean()
        assert net.connections() == [] and net.lingering == 0
    finally:
        one.proc.terminate()
        two.proc.terminate()
