"""The upcalls: socket handles (seed: WPUCloseSocketHandle), thread ids
(seeds: WPUOpenCurrentThread, WPUCloseThread), APCs, events and the rest."""
from __future__ import annotations

import queue
import threading
import time

import pytest

from helpers import (Worker, assert_winsock, event_waiters, parked, spin_python_for,
                     wait_calling, wait_event_waiters, wait_parked)
from wsp import ThreadId
from wsp.constants import INVALID_SOCKET
from wsp.errors import (WAIT_IO_COMPLETION, WSA_INVALID_HANDLE, WSA_INVALID_PARAMETER,
                        WSA_WAIT_EVENT_0,
                        WSA_WAIT_IO_COMPLETION, WSA_WAIT_TIMEOUT, WSAEINVAL, WSAENOTSOCK,
                        WinsockError)


# -- socket handles ----------------------------------------------------------------
def test_create_query_close_socket_handle(proc, provider):
    up = proc.upcalls
    ctx = object()
    s = up.WPUCreateSocketHandle(7, ctx)
    assert s > 0 and s % 4 == 0 and s != INVALID_SOCKET
    assert up.WPUQuerySocketHandleContext(s) is ctx
    assert proc.resources()["sockets"] == 1
    assert up.WPUCloseSocketHandle(s) is None
    assert proc.resources()["sockets"] == 0


def test_close_socket_handle_leaves_the_providers_resources_alone(proc, provider):
    """Seed: the handle leaves ws2_32's table; the owning provider is
    responsible for what the context refers to."""
    resources = {"buffers": [b"queued data"]}
    s = proc.upcalls.WPUCreateSocketHandle(1, resources)
    proc.upcalls.WPUCloseSocketHandle(s)
    assert resources == {"buffers": [b"queued data"]}


def test_close_socket_handle_rejects_anything_not_from_create(proc, provider):
    up = proc.upcalls
    s = up.WPUCreateSocketHandle(1, None)
    event = up.WPUCreateEvent()
    port = proc.CreateIoCompletionPort(None)
    up.WPUCloseSocketHandle(s)
    for bad in (s, event, port, 0, 12345678, -4, INVALID_SOCKET, "4", None):
        for call in (up.WPUCloseSocketHandle, up.WPUQuerySocketHandleContext):
            with pytest.raises(WinsockError) as e:
                call(bad)
            assert_winsock(e, WSAENOTSOCK)
            assert e.value.funcname == call.__name__
    assert proc.resources()["events"] == 1 and proc.resources()["ports"] == 1


def test_catalog_entry_id_must_be_an_int(proc, provider):
    with pytest.raises(TypeError):
        proc.upcalls.WPUCreateSocketHandle("1", None)


def test_modify_ifs_handle_returns_the_handle(proc, provider):
    assert proc.upcalls.WPUModifyIFSHandle(1, 0x1A4) == 0x1A4
    for bad in (0, INVALID_SOCKET, -8):
        with pytest.raises(WinsockError) as e:
            proc.upcalls.WPUModifyIFSHandle(1, bad)
        assert_winsock(e, WSAEINVAL)


# -- thread ids -----------------------------------------------------------------------
def test_open_current_thread_gives_a_new_thread_id_each_time(proc, provider):
    up = proc.upcalls
    a, b = up.WPUOpenCurrentThread(), up.WPUOpenCurrentThread()
    assert isinstance(a, ThreadId) and a != b
    assert proc.threads.ident_of(a.ThreadHandle) == threading.get_ident()
    assert proc.resources()["threads"] == 2
    up.WPUCloseThread(a)
    up.WPUCloseThread(b)
    assert proc.resources()["threads"] == 0


def test_close_thread_twice_or_unknown_is_einval(proc, provider):
    up = proc.upcalls
    tid = up.WPUOpenCurrentThread()
    up.WPUCloseThread(tid)
    for bad in (tid, ThreadId(4), ThreadId(0), ThreadId(2 ** 70)):
        with pytest.raises(WinsockError) as e:
            up.WPUCloseThread(bad)
        assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        up.WPUCloseThread(tid.ThreadHandle)     # a bare int is not a WSATHREADID


def test_thread_id_of_another_thread(proc, provider):
    box = {}

    def open_there():
        box["tid"] = proc.upcalls.WPUOpenCurrentThread()
        box["ident"] = threading.get_ident()

    worker = Worker(open_there)
    worker.start()
    worker.finish()
    assert proc.threads.ident_of(box["tid"].ThreadHandle) == box["ident"] != threading.get_ident()
    proc.upcalls.WPUCloseThread(box["tid"])     # closable from any thread


# -- APCs -------------------------------------------------------------------------------
def test_apc_runs_only_in_an_alertable_wait(proc, provider):
    up = proc.upcalls
    tid = up.WPUOpenCurrentThread()
    ran = []
    up.WPUQueueApc(tid, ran.append, "apc")
    assert proc.SleepEx(0, False) == 0 and ran == []
    ev = proc.WSACreateEvent()
    assert proc.WSAWaitForMultipleEvents([ev], False, 20, False) == WSA_WAIT_TIMEOUT
    assert ran == []
    assert proc.GetQueuedCompletionStatusEx(proc.CreateIoCompletionPort(None), 4, 0) == []
    assert ran == []
    assert proc.SleepEx(0, True) == WAIT_IO_COMPLETION and ran == ["apc"]
    assert proc.SleepEx(0, True) == 0
    up.WPUCloseThread(tid)


def test_alertable_wait_runs_every_queued_apc_in_order(proc, provider):
    tid = proc.upcalls.WPUOpenCurrentThread()
    ran = []
    for i in range(5):
        proc.upcalls.WPUQueueApc(tid, ran.append, i)
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert ran == [0, 1, 2, 3, 4]
    proc.upcalls.WPUCloseThread(tid)


def test_apc_to_closed_thread_id_is_einval(proc, provider):
    tid = proc.upcalls.WPUOpenCurrentThread()
    proc.upcalls.WPUCloseThread(tid)
    with pytest.raises(WinsockError) as e:
        proc.upcalls.WPUQueueApc(tid, print, None)
    assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        proc.upcalls.WPUQueueApc(ThreadId(4), "not callable", None)


@pytest.mark.parametrize("wait", ["SleepEx", "events", "port"])
def test_alertable_wait_of_another_thread_wakes_at_once_and_runs_there(proc, provider, wait):
    """An APC queued from this thread to a thread parked in an alertable wait
    wakes it at once, runs on *that* thread, and the wait returns
    WAIT_IO_COMPLETION (an empty batch for the port)."""
    ready = threading.Event()
    box = {}
    ev = proc.WSACreateEvent()
    port = proc.CreateIoCompletionPort(None)

    def waiter():
        box["tid"] = proc.upcalls.WPUOpenCurrentThread()
        ready.set()
        if wait == "SleepEx":
            return proc.SleepEx(8000, True)
        if wait == "events":
            return proc.WSAWaitForMultipleEvents([ev], False, 8000, True)
        return proc.GetQueuedCompletionStatusEx(port, 4, 8000, True)

    base = parked()
    worker = Worker(waiter)
    worker.start()
    assert ready.wait(5)
    if wait == "events":
        wait_event_waiters(proc, ev)             # registered on the event: in the wait
    else:
        wait_parked(base + 1)                    # parked in the core's wait
    n, _ = spin_python_for(0.1)                  # and not holding the GIL
    assert n > 1000 and worker.is_alive()
    ran_on = []
    proc.upcalls.WPUQueueApc(box["tid"], lambda ctx: ran_on.append(threading.get_ident()), None)
    # woken by the APC, not by the 8 s time-out (that would return 0,
    # WSA_WAIT_TIMEOUT or [] without running it)
    expected = {"SleepEx": WAIT_IO_COMPLETION, "events": WSA_WAIT_IO_COMPLETION, "port": []}
    assert worker.finish() == expected[wait]
    assert ran_on == [worker.ident]
    assert event_waiters(proc, ev) == 0
    proc.upcalls.WPUCloseThread(box["tid"])


def test_non_alertable_wait_of_another_thread_does_not_run_the_apc(proc, provider):
    box = {}
    ready = threading.Event()

    def waiter():
        box["tid"] = proc.upcalls.WPUOpenCurrentThread()
        ready.set()
        first = proc.SleepEx(500, False)
        return first, proc.SleepEx(0, True)

    worker = Worker(waiter)
    worker.start()
    assert ready.wait(5)
    wait_calling(worker, "sleep")                # in the non-alertable sleep (time.sleep)
    ran = []
    proc.upcalls.WPUQueueApc(box["tid"], ran.append, "late")
    assert worker.finish() == (0, WAIT_IO_COMPLETION)
    assert ran == ["late"]
    proc.upcalls.WPUCloseThread(box["tid"])


# -- events -------------------------------------------------------------------------------
def test_event_upcalls(proc, provider):
    up = proc.upcalls
    ev = up.WPUCreateEvent()
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_TIMEOUT
    up.WPUSetEvent(ev)
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_EVENT_0
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_EVENT_0  # manual reset
    up.WPUResetEvent(ev)
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_TIMEOUT
    up.WPUCloseEvent(ev)
    for call in (up.WPUSetEvent, up.WPUResetEvent, up.WPUCloseEvent):
        with pytest.raises(WinsockError) as e:
            call(ev)
        assert_winsock(e, WSA_INVALID_HANDLE)
    s = up.WPUCreateSocketHandle(1, None)
    with pytest.raises(WinsockError) as e:
        up.WPUSetEvent(s)                       # a socket is not an event
    assert_winsock(e, WSA_INVALID_HANDLE)


def test_wait_any_returns_lowest_signalled_index_and_wait_all_needs_all(proc):
    evs = [proc.WSACreateEvent() for _ in range(4)]
    proc.WSASetEvent(evs[3])
    proc.WSASetEvent(evs[1])
    assert proc.WSAWaitForMultipleEvents(evs, False, 0, False) == 1
    assert proc.WSAWaitForMultipleEvents(evs, True, 0, False) == WSA_WAIT_TIMEOUT
    for ev in evs:
        proc.WSASetEvent(ev)
    assert proc.WSAWaitForMultipleEvents(evs, True, 0, False) == WSA_WAIT_EVENT_0


def test_wait_is_woken_by_set_event_from_another_thread(proc):
    evs = [proc.WSACreateEvent() for _ in range(2)]
    worker = Worker(proc.WSAWaitForMultipleEvents, evs, False, 8000, False)
    worker.start()
    wait_event_waiters(proc, evs[1])             # registered: in the wait
    n, _ = spin_python_for(0.1)
    assert n > 1000 and worker.is_alive()
    proc.WSASetEvent(evs[1])
    assert worker.finish() == 1


def test_wait_times_out(proc):
    ev = proc.WSACreateEvent()
    start = time.monotonic()
    assert proc.WSAWaitForMultipleEvents([ev], False, 50, True) == WSA_WAIT_TIMEOUT
    assert time.monotonic() - start >= 0.045


def test_wait_argument_errors(proc):
    ev = proc.WSACreateEvent()
    for events in ([], [ev] * 65):
        with pytest.raises(WinsockError) as e:
            proc.WSAWaitForMultipleEvents(events, False, 0, False)
        assert_winsock(e, WSA_INVALID_PARAMETER)
    with pytest.raises(WinsockError) as e:
        proc.WSAWaitForMultipleEvents([ev, 999992], False, 0, False)
    assert_winsock(e, WSA_INVALID_HANDLE)
    with pytest.raises(TypeError):
        proc.WSAWaitForMultipleEvents(ev, False, 0, False)
    with pytest.raises(TypeError):
        proc.WSAWaitForMultipleEvents([ev], False, 1.5, False)
    with pytest.raises(WinsockError) as e:      # not a DWORD of milliseconds
        proc.WSAWaitForMultipleEvents([ev], False, -1, False)
    assert_winsock(e, WSA_INVALID_PARAMETER)


def test_closing_an_event_wakes_its_waiters_with_invalid_handle(proc):
    ev = proc.WSACreateEvent()
    worker = Worker(proc.WSAWaitForMultipleEvents, [ev], False, 8000, False)
    worker.start()
    wait_event_waiters(proc, ev)                 # registered: in the wait
    proc.WSACloseEvent(ev)
    with pytest.raises(WinsockError) as e:
        worker.finish()
    assert_winsock(e, WSA_INVALID_HANDLE)


# -- the rest of the table ---------------------------------------------------------------------
def test_blocking_callback_fdisset_and_post_message(proc, provider):
    up = proc.upcalls
    assert up.WPUQueryBlockingCallback(1) == (None, 0)
    assert up.WPUFDIsSet(8, {4, 8}) is True and up.WPUFDIsSet(12, [4, 8]) is False
    with pytest.raises(TypeError):
        up.WPUFDIsSet(8, 8)
    window = queue.SimpleQueue()
    up.WPUPostMessage(window, 0x400, 8, 0x20)
    assert window.get(timeout=1) == (0x400, 8, 0x20)
    seen = []
    up.WPUPostMessage(lambda *m: seen.append(m), 1, 2, 3)
    assert seen == [(1, 2, 3)]
    with pytest.raises(WinsockError) as e:
        up.WPUPostMessage(42, 1, 2, 3)
    assert_winsock(e, WSAEINVAL)
