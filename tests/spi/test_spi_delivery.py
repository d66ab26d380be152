"""Overlapped completion delivery (SPEC §6.2) through Process.start_overlapped /
complete_overlapped and WPUCompleteOverlappedRequest."""
from __future__ import annotations

import gc
import threading
import weakref

import pytest

from helpers import (Worker, assert_winsock, parked, wait_condition_waiters, wait_parked,
                     wait_until)
from wsp import Overlapped, ServiceProvider
from wsp.errors import (ERROR_ABANDONED_WAIT_0, WAIT_IO_COMPLETION, WAIT_TIMEOUT,
                        WSA_IO_INCOMPLETE, WSA_IO_PENDING, WSA_OPERATION_ABORTED,
                        WSA_WAIT_EVENT_0, WSAECONNRESET, WSAEINVAL, WSAENOTSOCK, WinsockError)


def signalled(proc, ev):
    return proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_EVENT_0


def test_event_completion_signals_the_event(proc, provider, sock):
    ev = proc.WSACreateEvent()
    proc.WSASetEvent(ev)
    ov = Overlapped(ev)
    op = proc.start_overlapped(sock, ov, provider=provider)
    assert ov.pending and ov.Internal == WSA_IO_PENDING
    assert not signalled(proc, ev)              # reset when the operation starts
    assert proc.resources()["overlapped_pending"] == 1
    assert proc.complete_overlapped(op, 0, 42) is True
    assert not ov.pending and ov.Internal == 0 and ov.InternalHigh == 42
    assert signalled(proc, ev)
    assert proc.resources()["overlapped_pending"] == 0


def test_routine_runs_as_apc_on_the_calling_thread_and_event_is_not_signalled(proc, provider, sock):
    ev = proc.WSACreateEvent()
    ov = Overlapped(ev)
    calls = []

    def routine(error, nbytes, overlapped, flags):
        calls.append((error, nbytes, overlapped, flags, threading.get_ident()))

    op = proc.start_overlapped(sock, ov, routine=routine, provider=provider)
    # completed from another thread: the routine still runs on this one
    completer = Worker(proc.complete_overlapped, op, WSAECONNRESET, 3, 0)
    completer.start()
    assert completer.finish() is True
    assert calls == []                                # not before an alertable wait here
    assert proc.SleepEx(5000, True) == WAIT_IO_COMPLETION
    assert calls == [(WSAECONNRESET, 3, ov, 0, threading.get_ident())]
    assert not signalled(proc, ev)
    assert ov.Internal == WSAECONNRESET
    assert proc.resources()["threads"] == 0          # the engine's thread handle is closed
    assert proc.resources()["overlapped_undelivered"] == 0


def test_routine_with_an_app_thread_id_issued_from_a_worker_runs_on_the_app_thread(proc, provider, sock):
    """WPUOpenCurrentThread's purpose: a layered provider issues the operation
    from its own thread with the application's ThreadId."""
    app_tid = proc.upcalls.WPUOpenCurrentThread()
    ran_on = []

    def routine(error, nbytes, overlapped, flags):
        ran_on.append(threading.get_ident())

    def lsp_worker():
        op = proc.start_overlapped(sock, Overlapped(), routine=routine, thread_id=app_tid)
        proc.complete_overlapped(op, 0, 1)
        return proc.SleepEx(0, True)             # the worker's own alertable wait runs nothing

    worker = Worker(lsp_worker)
    worker.start()
    assert worker.finish() == 0
    proc.upcalls.WPUCloseThread(app_tid)         # may be closed before delivery
    assert ran_on == []
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert ran_on == [threading.get_ident()]


def test_port_completion_posts_a_packet_and_signals_the_event(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 11)
    ev = proc.WSACreateEvent()
    ov = Overlapped(ev)
    op = proc.start_overlapped(sock, ov)
    proc.complete_overlapped(op, 0, 9)
    assert signalled(proc, ev)
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 9, 11, ov)


def test_operation_that_completes_at_once_is_still_delivered(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 1)
    ov = Overlapped()
    proc.complete_overlapped(proc.start_overlapped(sock, ov), 0, 4)
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 4, 1, ov)


def test_routine_on_a_port_associated_socket_is_einval_and_records_nothing(proc, provider, sock):
    proc.CreateIoCompletionPort(sock, None, 1)
    ov = Overlapped()
    with pytest.raises(WinsockError) as e:
        proc.start_overlapped(sock, ov, routine=lambda *a: None)
    assert_winsock(e, WSAEINVAL)
    assert not ov.pending
    assert proc.resources()["overlapped_pending"] == 0 and proc.resources()["threads"] == 0


def test_start_errors_record_nothing(proc, provider, sock):
    ov = Overlapped()
    tid = proc.upcalls.WPUOpenCurrentThread()
    proc.upcalls.WPUCloseThread(tid)
    with pytest.raises(WinsockError) as e:
        proc.start_overlapped(sock, ov, routine=lambda *a: None, thread_id=tid)
    assert_winsock(e, WSAEINVAL)
    with pytest.raises(WinsockError) as e:
        proc.start_overlapped(999996, ov)
    assert_winsock(e, WSAENOTSOCK)
    with pytest.raises(TypeError):
        proc.start_overlapped(sock, "not an overlapped")
    with pytest.raises(TypeError):
        proc.start_overlapped(sock, ov, routine="not callable")
    with pytest.raises(TypeError):
        proc.start_overlapped(sock, ov, routine=print, thread_id=4)
    op = proc.start_overlapped(sock, ov)
    with pytest.raises(WinsockError) as e:                   # one operation per overlapped
        proc.start_overlapped(sock, ov, routine=print)
    assert_winsock(e, WSAEINVAL)
    assert proc.resources()["threads"] == 0 and proc.resources()["overlapped_pending"] == 1
    proc.complete_overlapped(op, 0, 0)


def test_each_operation_completes_exactly_once(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 1)
    ov = Overlapped()
    op = proc.start_overlapped(sock, ov)
    assert proc.complete_overlapped(op, 0, 1) is True
    assert proc.complete_overlapped(op, 0, 2) is False
    assert proc.cancel_overlapped(op) is False
    assert ov.InternalHigh == 1
    assert proc.GetQueuedCompletionStatus(port, 0) == (0, 1, 1, ov)
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)  # nothing more


@pytest.mark.stress
def test_racing_completers_deliver_exactly_once(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 1)
    ops = [proc.start_overlapped(sock, Overlapped()) for _ in range(2000)]
    barrier = threading.Barrier(4, timeout=10)

    def complete_all(error):
        barrier.wait()
        return sum(proc.complete_overlapped(op, error, 0) if error == 0
                   else proc.cancel_overlapped(op) for op in ops)

    workers = [Worker(complete_all, 0), Worker(complete_all, 0),
               Worker(complete_all, WSA_OPERATION_ABORTED), Worker(complete_all, 0)]
    for w in workers:
        w.start()
    assert sum(w.finish(30) for w in workers) == 2000
    packets = proc.GetQueuedCompletionStatusEx(port, 5000, 0)
    assert len(packets) == 2000
    assert {id(p[3]) for p in packets} == {id(op.overlapped) for op in ops}   # each once
    assert all(p[:3] == (p[3].Internal, 0, 1) for p in packets)
    assert {p[0] for p in packets} <= {0, WSA_OPERATION_ABORTED}


class Buffer(bytearray):
    """A bytearray that can be weakly referenced."""


def test_overlapped_and_buffers_stay_referenced_until_delivery(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 1)
    ov, buf = Overlapped(), Buffer(16)
    refs = weakref.ref(ov), weakref.ref(buf)
    op = proc.start_overlapped(sock, ov, buffers=[buf])
    del ov, buf
    gc.collect()
    assert all(r() is not None for r in refs)
    proc.complete_overlapped(op, 0, 16)
    del op
    gc.collect()
    assert all(r() is not None for r in refs)   # in the port until dequeued
    got = proc.GetQueuedCompletionStatus(port, 0)[3]
    assert got is refs[0]()
    del got
    gc.collect()
    assert all(r() is None for r in refs)


def test_routine_keeps_the_overlapped_until_it_runs(proc, provider, sock):
    ov = Overlapped()
    ref = weakref.ref(ov)
    seen = []
    op = proc.start_overlapped(sock, ov, routine=lambda e, n, o, f: seen.append(o is ref()))
    proc.complete_overlapped(op, 0, 0)
    del ov, op
    gc.collect()
    assert ref() is not None and proc.resources()["overlapped_undelivered"] == 1
    assert proc.SleepEx(0, True) == WAIT_IO_COMPLETION and seen == [True]
    gc.collect()
    assert ref() is None


# -- WPUCompleteOverlappedRequest --------------------------------------------------------
def test_complete_overlapped_request_applies_the_same_rules(proc, provider, sock):
    ev = proc.WSACreateEvent()
    ov = Overlapped(ev)
    proc.upcalls.WPUCompleteOverlappedRequest(sock, ov, WSAECONNRESET, 0)
    assert ov.Internal == WSAECONNRESET and signalled(proc, ev)
    ov2 = Overlapped()
    calls = []
    op = proc.start_overlapped(sock, ov2, routine=lambda *a: calls.append(a))
    proc.upcalls.WPUCompleteOverlappedRequest(sock, ov2, 0, 7)
    proc.SleepEx(0, True)
    assert calls == [(0, 7, ov2, 0)] and op.overlapped is ov2


def test_complete_overlapped_request_errors(proc, provider, sock):
    up = proc.upcalls
    other = up.WPUCreateSocketHandle(1, None)
    event = up.WPUCreateEvent()
    for bad in (event, 999996, 0, "s"):
        with pytest.raises(WinsockError) as e:
            up.WPUCompleteOverlappedRequest(bad, Overlapped(), 0, 0)
        assert_winsock(e, WSAEINVAL)
    ov = Overlapped()
    op = proc.start_overlapped(sock, ov)
    with pytest.raises(WinsockError) as e:            # pending on another socket
        up.WPUCompleteOverlappedRequest(other, ov, 0, 0)
    assert_winsock(e, WSAEINVAL)
    for bad_error in (-1, 2 ** 32):
        with pytest.raises(WinsockError) as e:
            up.WPUCompleteOverlappedRequest(sock, ov, bad_error, 0)
        assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        up.WPUCompleteOverlappedRequest(sock, ov, 0, 1.5)
    with pytest.raises(TypeError):
        up.WPUCompleteOverlappedRequest(sock, None, 0, 0)
    assert ov.pending
    proc.complete_overlapped(op, 0, 0)


# -- WSPGetOverlappedResult --------------------------------------------------------------
def test_get_overlapped_result(proc, provider, sock):
    ov = Overlapped()
    op = proc.start_overlapped(sock, ov)
    with pytest.raises(WinsockError) as e:
        provider.WSPGetOverlappedResult(sock, ov, False)
    assert_winsock(e, WSA_IO_INCOMPLETE)
    worker = Worker(provider.WSPGetOverlappedResult, sock, ov, True)
    worker.start()
    # waiting for the completion: parked on the operation's threading.Event
    wait_until(lambda: op.event is not None, what="the wait's event")
    wait_condition_waiters(op.event._cond, what="the operation's event")
    assert worker.is_alive()
    proc.complete_overlapped(op, 0, 33, 0x8000)
    assert worker.finish() == (33, 0x8000)
    assert provider.WSPGetOverlappedResult(sock, ov, False) == (33, 0x8000)
    failed = Overlapped()
    proc.cancel_overlapped(proc.start_overlapped(sock, failed))
    with pytest.raises(WinsockError) as e:
        provider.WSPGetOverlappedResult(sock, failed, True)
    assert_winsock(e, WSA_OPERATION_ABORTED)
    with pytest.raises(WinsockError) as e:
        provider.WSPGetOverlappedResult(999996, ov, False)
    assert_winsock(e, WSAENOTSOCK)


# -- final WSPCleanup: silent cancellation ---------------------------------------------------
def test_final_cleanup_cancels_this_providers_operations_silently(proc):
    prov, other = ServiceProvider(), ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    prov.WSPStartup(0x0202, None, proc.upcalls)
    other.WSPStartup(0x0202, None, proc.upcalls)
    s = proc.upcalls.WPUCreateSocketHandle(1, None)
    t = proc.upcalls.WPUCreateSocketHandle(2, None)
    port = proc.CreateIoCompletionPort(s, None, 1)
    ev = proc.WSACreateEvent()
    ran = []
    ov_event, ov_port, ov_routine = Overlapped(ev), Overlapped(), Overlapped()
    proc.start_overlapped(s, ov_event, provider=prov)
    proc.start_overlapped(s, ov_port, provider=prov)
    proc.start_overlapped(t, ov_routine, routine=lambda *a: ran.append(a), provider=prov)
    others = proc.start_overlapped(t, Overlapped(), provider=other)
    prov.WSPCleanup()                                  # not the final one: nothing happens
    assert ov_event.pending and ov_port.pending and ov_routine.pending
    prov.WSPCleanup()
    for ov in (ov_event, ov_port, ov_routine):
        assert ov.Internal == WSA_OPERATION_ABORTED
    assert not signalled(proc, ev)
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert proc.SleepEx(0, True) == 0 and ran == []
    assert others.overlapped.pending                  # another provider's operation
    assert proc.resources()["overlapped_pending"] == 1 and proc.resources()["threads"] == 0
    proc.complete_overlapped(others, 0, 0)
    other.WSPCleanup()


# -- accounting and teardown ------------------------------------------------------------------
def test_everything_returns_to_zero_after_an_orderly_teardown(proc):
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    up = proc.upcalls
    socks = [up.WPUCreateSocketHandle(1, i) for i in range(10)]
    port = proc.CreateIoCompletionPort(None)
    for s in socks[:5]:
        proc.CreateIoCompletionPort(s, port, s)
    tids = [up.WPUOpenCurrentThread() for _ in range(3)]
    events = [up.WPUCreateEvent() for _ in range(3)]
    for s in socks[:5]:
        proc.complete_overlapped(proc.start_overlapped(s, Overlapped()), 0, 1)
    for s in socks[5:]:
        proc.complete_overlapped(proc.start_overlapped(s, Overlapped(), routine=lambda *a: None), 0, 1)
    busy = proc.resources()
    assert busy["sockets"] == 10 and busy["ports"] == 1 and busy["events"] == 3
    assert busy["overlapped_undelivered"] == 10 and busy["threads"] == 3 + 5
    packets = proc.GetQueuedCompletionStatusEx(port, 10, 0)
    assert [p[:3] for p in packets] == [(0, 1, s) for s in socks[:5]]
    assert [(type(p[3]), p[3].Internal, p[3].InternalHigh) for p in packets] == [
        (Overlapped, 0, 1)] * 5
    assert proc.SleepEx(0, True) == WAIT_IO_COMPLETION
    for s in socks:
        up.WPUCloseSocketHandle(s)
    for tid in tids:
        up.WPUCloseThread(tid)
    for ev in events:
        up.WPUCloseEvent(ev)
    proc.CloseHandle(port)
    prov.WSPCleanup()
    assert all(v == 0 for v in proc.resources().values()), proc.resources()


def test_terminate_releases_everything_at_once(proc, provider, sock):
    port = proc.CreateIoCompletionPort(sock, None, 1)
    proc.PostQueuedCompletionStatus(port, 1, 1, Overlapped())
    tid = proc.upcalls.WPUOpenCurrentThread()
    proc.upcalls.WPUQueueApc(tid, print, "never runs")
    other = proc.upcalls.WPUCreateSocketHandle(1, None)
    pending = Overlapped()
    proc.start_overlapped(other, pending, routine=print)
    proc.WSACreateEvent()
    waiter = Worker(proc.GetQueuedCompletionStatus, proc.CreateIoCompletionPort(None), 8000)
    base = parked()
    waiter.start()
    wait_parked(base + 1)                                 # in the core's wait
    proc.terminate()
    assert waiter.finish() == (ERROR_ABANDONED_WAIT_0, 0, 0, None)
    assert all(v == 0 for v in proc.resources().values()), proc.resources()
    assert not proc.initialised and not provider.started
    assert proc.SleepEx(0, True) == 0                     # the queued APC was dropped
    provider.WSPStartup(0x0202, None, proc.upcalls)       # usable again, clean
    assert proc.initialised
