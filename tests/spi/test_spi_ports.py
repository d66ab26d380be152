"""Completion ports on the Process: create, associate, post, get, close."""
from __future__ import annotations

import time
import weakref

import pytest

from helpers import Worker, assert_winsock, parked, spin_python_for, wait_parked
from wsp import Overlapped
from wsp.errors import (ERROR_ABANDONED_WAIT_0, INFINITE, WAIT_TIMEOUT, WSA_INVALID_HANDLE,
                        WSA_INVALID_PARAMETER, WinsockError)


def test_create_post_get_with_the_same_overlapped_object(proc):
    port = proc.CreateIoCompletionPort(None)
    ov = Overlapped()
    proc.PostQueuedCompletionStatus(port, 100, 7, ov)
    proc.PostQueuedCompletionStatus(port, 5, 8, None)
    rc, nbytes, key, got = proc.GetQueuedCompletionStatus(port, 1000)
    assert (rc, nbytes, key) == (0, 100, 7) and got is ov
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 5, 8, None)
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert proc.resources()["overlapped_undelivered"] == 0
    proc.CloseHandle(port)
    assert proc.resources()["ports"] == 0


def test_posted_overlapped_stays_referenced_until_dequeued(proc):
    port = proc.CreateIoCompletionPort(None)
    ov = Overlapped()
    ov.object = "payload"
    ref = weakref.ref(ov)
    proc.PostQueuedCompletionStatus(port, 1, 1, ov)
    del ov
    assert ref() is not None
    assert proc.resources()["overlapped_undelivered"] == 1
    got = proc.GetQueuedCompletionStatus(port, 0)[3]
    assert got.object == "payload"


def test_get_ex_batches(proc):
    port = proc.CreateIoCompletionPort(None)
    ovs = [Overlapped() for _ in range(5)]
    for i, ov in enumerate(ovs):
        proc.PostQueuedCompletionStatus(port, i, 0, ov)
    batch = proc.GetQueuedCompletionStatusEx(port, 3, 0)
    assert [(rc, n) for rc, n, _, _ in batch] == [(0, 0), (0, 1), (0, 2)]
    assert [entry[3] for entry in batch] == ovs[:3]
    getter = Worker(proc.GetQueuedCompletionStatusEx, port, 10, INFINITE)   # bounded here
    getter.start()
    assert getter.finish() == [(0, 3, 0, ovs[3]), (0, 4, 0, ovs[4])]
    assert proc.GetQueuedCompletionStatusEx(port, 10, 10) == []
    with pytest.raises(WinsockError) as e:
        proc.GetQueuedCompletionStatusEx(port, 0, 0)
    assert_winsock(e, WSA_INVALID_PARAMETER)


def test_associating_a_socket(proc, provider, sock):
    port = proc.CreateIoCompletionPort(None)
    assert proc.CreateIoCompletionPort(sock, port, 99) == port
    ov = Overlapped()
    proc.upcalls.WPUCompleteOverlappedRequest(sock, ov, 0, 12)
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 12, 99, ov)
    # one association per socket handle
    with pytest.raises(WinsockError) as e:
        proc.CreateIoCompletionPort(sock, port, 1)
    assert_winsock(e, WSA_INVALID_PARAMETER)
    assert proc.resources()["ports"] == 1


def test_associating_creates_a_port_when_none_is_given(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 5)
    ov = Overlapped()
    proc.upcalls.WPUCompleteOverlappedRequest(sock, ov, 0, 1)
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 1, 5, ov)


def test_port_argument_errors(proc, provider, sock):
    port = proc.CreateIoCompletionPort(None)
    event = proc.WSACreateEvent()
    with pytest.raises(WinsockError) as e:
        proc.CreateIoCompletionPort(None, port)
    assert_winsock(e, WSA_INVALID_PARAMETER)
    for bad_handle in (event, port, 123456, 0):
        with pytest.raises(WinsockError) as e:
            proc.CreateIoCompletionPort(bad_handle, port)
        assert_winsock(e, WSA_INVALID_HANDLE)
    with pytest.raises(WinsockError) as e:
        proc.CreateIoCompletionPort(sock, event)
    assert_winsock(e, WSA_INVALID_HANDLE)
    with pytest.raises(TypeError):
        proc.CreateIoCompletionPort(None, None, "key")
    for call, args in ((proc.GetQueuedCompletionStatus, (event, 0)),
                       (proc.GetQueuedCompletionStatusEx, (sock, 1, 0)),
                       (proc.PostQueuedCompletionStatus, (123456, 0, 0, None)),
                       (proc.CloseHandle, (sock,)), (proc.CloseHandle, (777777,))):
        with pytest.raises(WinsockError) as e:
            call(*args)
        assert_winsock(e, WSA_INVALID_HANDLE)
    with pytest.raises(TypeError):
        proc.PostQueuedCompletionStatus(port, 0, 0, "not an overlapped")
    with pytest.raises(TypeError):
        proc.GetQueuedCompletionStatus(port, None)


def test_blocked_get_is_woken_by_a_post_and_does_not_hold_the_gil(proc):
    port = proc.CreateIoCompletionPort(None)
    worker = Worker(proc.GetQueuedCompletionStatus, port, 8000)
    base = parked()
    worker.start()
    wait_parked(base + 1)                        # the get waits inside the core
    n, _ = spin_python_for(0.2)
    assert n > 1000 and worker.is_alive()
    ov = Overlapped()
    proc.PostQueuedCompletionStatus(port, 3, 4, ov)
    assert worker.finish() == (0, 3, 4, ov)


def _port_with_keyed_sockets(proc):
    """A port with two sockets associated under keys 1 and 7, each of which
    has had a completion dequeued already: a get that returns without a
    packet has non-zero keys it could wrongly report."""
    port = proc.CreateIoCompletionPort(None)
    socks = [proc.upcalls.WPUCreateSocketHandle(1, {"n": i}) for i in range(2)]
    for s, key in zip(socks, (1, 7)):
        assert proc.CreateIoCompletionPort(s, port, key) == port
        ov = Overlapped()
        proc.upcalls.WPUCompleteOverlappedRequest(s, ov, 0, 9)
        assert proc.GetQueuedCompletionStatus(port, 0) == (0, 9, key, ov)
    return port


def test_a_timed_out_get_returns_exactly_wait_timeout_0_0_none(proc, provider):
    port = _port_with_keyed_sockets(proc)
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    start = time.monotonic()
    assert proc.GetQueuedCompletionStatus(port, 30) == (WAIT_TIMEOUT, 0, 0, None)
    assert time.monotonic() - start >= 0.03       # only once the 30 ms had passed
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert proc.resources()["overlapped_undelivered"] == 0


def test_a_timed_out_get_ex_returns_an_empty_list(proc, provider):
    port = _port_with_keyed_sockets(proc)
    assert proc.GetQueuedCompletionStatusEx(port, 4, 0) == []
    for alertable in (False, True):
        start = time.monotonic()
        assert proc.GetQueuedCompletionStatusEx(port, 4, 30, alertable) == []
        assert time.monotonic() - start >= 0.03
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)


def test_a_get_abandoned_by_close_returns_exactly_abandoned_0_0_none(proc, provider):
    for ms in (INFINITE, 8000):
        port = _port_with_keyed_sockets(proc)
        waiters = [Worker(proc.GetQueuedCompletionStatus, port, ms),
                   Worker(proc.GetQueuedCompletionStatusEx, port, 4, ms)]
        base = parked()
        for w in waiters:
            w.start()
        wait_parked(base + 2)
        proc.CloseHandle(port)
        assert waiters[0].finish() == (ERROR_ABANDONED_WAIT_0, 0, 0, None)
        assert waiters[1].finish() == []
        with pytest.raises(WinsockError) as e:    # and the handle is gone
            proc.GetQueuedCompletionStatus(port, 0)
        assert_winsock(e, WSA_INVALID_HANDLE)


def test_closing_a_port_abandons_its_waiters_and_drops_its_packets(proc):
    port = proc.CreateIoCompletionPort(None)
    waiters = [Worker(proc.GetQueuedCompletionStatus, port, 8000),
               Worker(proc.GetQueuedCompletionStatusEx, port, 4, 8000)]
    base = parked()
    for w in waiters:
        w.start()
    wait_parked(base + 2)                        # both wait inside the core
    proc.CloseHandle(port)
    assert waiters[0].finish() == (ERROR_ABANDONED_WAIT_0, 0, 0, None)
    assert waiters[1].finish() == []
    port = proc.CreateIoCompletionPort(None)
    ov = Overlapped()
    ref = weakref.ref(ov)
    proc.PostQueuedCompletionStatus(port, 1, 1, ov)
    del ov
    proc.CloseHandle(port)
    assert ref() is None                         # the dropped packet let go of it
    res = proc.resources()
    assert res["ports"] == 0 and res["overlapped_undelivered"] == 0


def test_completion_to_a_closed_port_is_lost_not_raised(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 1)
    proc.CloseHandle(port)
    ov = Overlapped()
    proc.upcalls.WPUCompleteOverlappedRequest(sock, ov, 0, 5)
    assert ov.Internal == 0 and ov.InternalHigh == 5
    assert proc.resources()["overlapped_undelivered"] == 0


def test_several_threads_draining_one_port_get_each_packet_once(proc):
    port = proc.CreateIoCompletionPort(None)
    total = 3000
    ovs = [Overlapped() for _ in range(total)]
    for i, ov in enumerate(ovs):
        ov.object = i

    def drain():
        got = []
        while True:
            rc, n, key, ov = proc.GetQueuedCompletionStatus(port, 2000)
            if rc == WAIT_TIMEOUT or key == 1:
                return got
            got.append(ov.object)

    workers = [Worker(drain) for _ in range(4)]
    for w in workers:
        w.start()
    for ov in ovs:
        proc.PostQueuedCompletionStatus(port, 0, 0, ov)
    for _ in workers:
        proc.PostQueuedCompletionStatus(port, 0, 1, None)     # one stop packet each
    results = [w.finish(30) for w in workers]
    assert sorted(i for got in results for i in got) == list(range(total))
    assert proc.resources()["overlapped_undelivered"] == 0
