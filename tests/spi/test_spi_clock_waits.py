"""The waits of a Process that waits by a simulated clock (Process.use_clock,
SPEC §7.1): SleepEx, WSAWaitForMultipleEvents, GetQueuedCompletionStatus(Ex)
and wait_overlapped count the clock's seconds, follow wsp.spi.clock's idle
rule under threads, and keep their answers to bad input.

The clock is driven directly (no network): events scheduled with
``clock.call_at`` / ``call_later`` post packets, set events and queue APCs.
Every wait a test makes has a finite time-out or a bounded join."""
from __future__ import annotations

import random
import threading
import time

import pytest

from helpers import Worker, assert_winsock
import wsp
from wsp import Overlapped, ServiceProvider
from wsp.errors import (ERROR_ABANDONED_WAIT_0, INFINITE, WAIT_IO_COMPLETION, WAIT_TIMEOUT,
                        WSA_INVALID_HANDLE, WSA_INVALID_PARAMETER, WSA_WAIT_EVENT_0,
                        WSA_WAIT_IO_COMPLETION, WSA_WAIT_TIMEOUT, WSAEINVAL, WinsockError)
from wsp.spi.clock import RealClock, VirtualClock

JOIN = 30.0        # real seconds any test thread may take, at most


@pytest.fixture
def clocked():
    """A Process waiting by a fresh VirtualClock: (process, clock)."""
    proc = wsp.Process()
    clock = VirtualClock(threading.RLock())
    proc.use_clock(clock)
    yield proc, clock
    proc.terminate()


@pytest.fixture
def started(clocked):
    """`clocked`, initialised (a bare provider started), so that the WPU
    upcalls -- WPUQueueApc, WPUCreateSocketHandle -- work:
    (process, clock, provider)."""
    proc, clock = clocked
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    return proc, clock, prov


# -- one thread: each wait ends at the simulated time it should -------------------------
def test_sleep_counts_simulated_seconds_not_real_ones(clocked):
    proc, clock = clocked
    real = time.monotonic()
    assert proc.SleepEx(5000, False) == 0
    assert clock.now() == 5.0
    assert time.monotonic() - real < 1.0          # a sanity bound: it did not sleep 5 s
    assert proc.SleepEx(250, True) == 0           # alertable, nothing queued
    assert clock.now() == 5.25


def test_sleep_ends_at_its_deadline_even_with_later_events_scheduled(clocked):
    proc, clock = clocked
    ran = []
    clock.call_at(3.0, ran.append, "late")
    assert proc.SleepEx(1000, False) == 0
    assert clock.now() == 1.0 and ran == []
    assert proc.SleepEx(5000, False) == 0         # the event falls due on the way
    assert clock.now() == 6.0 and ran == ["late"]


def test_gqcs_times_out_at_the_simulated_deadline(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    assert proc.GetQueuedCompletionStatus(port, 250) == (WAIT_TIMEOUT, 0, 0, None)
    assert clock.now() == 0.25


def test_gqcs_infinite_returns_the_packet_an_event_posts_at_its_time(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    ov = Overlapped()
    clock.call_at(0.1, proc.PostQueuedCompletionStatus, port, 42, 7, ov)
    rc, nbytes, key, got = proc.GetQueuedCompletionStatus(port, INFINITE)
    assert (rc, nbytes, key) == (0, 42, 7) and got is ov
    assert clock.now() == 0.1
    assert proc.resources()["overlapped_undelivered"] == 0


def test_gqcs_returns_a_queued_packet_without_moving_the_clock(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    clock.call_at(2.0, lambda: None)
    proc.PostQueuedCompletionStatus(port, 1, 1, None)
    assert proc.GetQueuedCompletionStatus(port, 1000) == (0, 1, 1, None)
    assert proc.GetQueuedCompletionStatusEx(port, 4, 0) == []     # a poll: no time passes
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert clock.now() == 0.0


def test_gqcs_sees_a_port_closed_at_its_time(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    clock.call_at(0.2, proc.CloseHandle, port)
    assert proc.GetQueuedCompletionStatus(port, 5000) == (ERROR_ABANDONED_WAIT_0, 0, 0, None)
    assert clock.now() == 0.2


def test_gqcs_ex_waits_for_the_first_packet_and_takes_what_came_with_it(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)

    def burst():
        for i in range(3):
            proc.PostQueuedCompletionStatus(port, i, 9, None)

    clock.call_at(1.5, burst)
    assert proc.GetQueuedCompletionStatusEx(port, 8, 10_000) == [(0, i, 9, None)
                                                                 for i in range(3)]
    assert clock.now() == 1.5
    assert proc.GetQueuedCompletionStatusEx(port, 8, 300) == []
    assert clock.now() == 1.8


def test_alertable_gqcs_ex_returns_empty_when_an_apc_comes_at_its_time(started):
    proc, clock, _ = started
    port = proc.CreateIoCompletionPort(None)
    tid = proc.upcalls.WPUOpenCurrentThread()
    ran = []
    clock.call_at(0.3, proc.upcalls.WPUQueueApc, tid, lambda ctx: ran.append((ctx, clock.now())),
                  "apc")
    assert proc.GetQueuedCompletionStatusEx(port, 4, 5000, True) == []
    assert clock.now() == 0.3 and ran == [("apc", 0.3)]
    clock.call_at(0.5, proc.PostQueuedCompletionStatus, port, 3, 4, None)
    assert proc.GetQueuedCompletionStatusEx(port, 4, 5000, True) == [(0, 3, 4, None)]
    assert clock.now() == 0.5
    assert proc.GetQueuedCompletionStatusEx(port, 4, 100, True) == []      # a time-out
    assert clock.now() == 0.6
    proc.upcalls.WPUCloseThread(tid)


def test_wait_for_events_returns_the_index_an_event_sets_at_its_time(clocked):
    proc, clock = clocked
    events = [proc.WSACreateEvent() for _ in range(3)]
    clock.call_at(0.75, proc.WSASetEvent, events[2])
    assert proc.WSAWaitForMultipleEvents(events, False, INFINITE, False) == WSA_WAIT_EVENT_0 + 2
    assert clock.now() == 0.75
    proc.WSAResetEvent(events[2])
    assert proc.WSAWaitForMultipleEvents(events, False, 500, False) == WSA_WAIT_TIMEOUT
    assert clock.now() == 1.25


def test_wait_for_all_events_returns_when_the_last_is_set(clocked):
    proc, clock = clocked
    a, b = proc.WSACreateEvent(), proc.WSACreateEvent()
    clock.call_at(0.1, proc.WSASetEvent, a)
    clock.call_at(0.4, proc.WSASetEvent, b)
    assert proc.WSAWaitForMultipleEvents([a, b], True, 10_000, False) == WSA_WAIT_EVENT_0
    assert clock.now() == 0.4


def test_wait_for_an_event_closed_at_its_time_fails_then(clocked):
    proc, clock = clocked
    ev = proc.WSACreateEvent()
    clock.call_at(0.2, proc.WSACloseEvent, ev)
    with pytest.raises(WinsockError) as e:
        proc.WSAWaitForMultipleEvents([ev], False, 5000, False)
    assert_winsock(e, WSA_INVALID_HANDLE)
    assert clock.now() == 0.2


def test_alertable_waits_return_io_completion_when_an_apc_is_queued_at_its_time(started):
    proc, clock, _ = started
    tid = proc.upcalls.WPUOpenCurrentThread()
    ran = []

    def queue_apc(ctx):
        proc.upcalls.WPUQueueApc(tid, lambda c: ran.append((c, clock.now())), ctx)

    clock.call_at(0.5, queue_apc, "sleep")
    assert proc.SleepEx(INFINITE, True) == WAIT_IO_COMPLETION
    assert clock.now() == 0.5 and ran == [("sleep", 0.5)]
    ev = proc.WSACreateEvent()
    clock.call_at(0.9, queue_apc, "events")
    assert proc.WSAWaitForMultipleEvents([ev], False, 2000, True) == WSA_WAIT_IO_COMPLETION
    assert clock.now() == 0.9 and ran[1:] == [("events", 0.9)]
    # Not alertable: the APC waits for a later alertable wait.
    clock.call_at(1.0, queue_apc, "later")
    assert proc.SleepEx(300, False) == 0
    assert clock.now() == 1.2 and len(ran) == 2
    assert proc.SleepEx(0, True) == WAIT_IO_COMPLETION
    assert ran[2:] == [("later", 1.2)]
    proc.upcalls.WPUCloseThread(tid)


def test_wait_overlapped_counts_simulated_seconds(started):
    proc, clock, prov = started
    s = proc.upcalls.WPUCreateSocketHandle(1, "socket")
    ov = Overlapped()
    op = proc.start_overlapped(s, ov, provider=prov)
    assert proc.wait_overlapped(ov, 0.25) is False
    assert clock.now() == 0.25 and ov.pending
    clock.call_at(0.4, proc.complete_overlapped, op, 0, 17)
    assert proc.wait_overlapped(ov, None) is True
    assert clock.now() == 0.4 and not ov.pending and ov.InternalHigh == 17
    assert proc.wait_overlapped(ov, 1.0) is True and clock.now() == 0.4   # done: no wait
    proc.upcalls.WPUCloseSocketHandle(s)


def test_wait_overlapped_with_an_event_a_wall_clock_wait_made(started):
    """An operation whose completion event a wall-clock wait created (the
    process waited by the wall clock then): a clocked wait still sees it
    complete, and so does the wall-clock kind of event."""
    proc, clock, prov = started
    s = proc.upcalls.WPUCreateSocketHandle(1, "socket")
    ov = Overlapped()
    op = proc.start_overlapped(s, ov, provider=prov)
    proc.use_clock(None)
    assert proc.wait_overlapped(ov, 0.001) is False   # the wall clock: a plain event now
    proc.use_clock(clock)
    clock.call_at(0.3, proc.complete_overlapped, op, 0, 5)
    assert proc.wait_overlapped(ov, 10.0) is True and clock.now() == 0.3
    proc.upcalls.WPUCloseSocketHandle(s)


def test_use_clock_none_gives_the_wall_clock_back(clocked):
    proc, clock = clocked
    proc.use_clock(None)
    port = proc.CreateIoCompletionPort(None)
    real = time.monotonic()
    assert proc.GetQueuedCompletionStatus(port, 30) == (WAIT_TIMEOUT, 0, 0, None)
    assert proc.SleepEx(20, False) == 0
    assert time.monotonic() - real >= 0.045
    assert clock.now() == 0.0


# -- bad input: the same answers on the clocked path ---------------------------------------
@pytest.mark.parametrize("ms", ["10", 1.5, None, True])
def test_a_time_out_that_is_not_an_int_is_a_type_error(clocked, ms):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    ev = proc.WSACreateEvent()
    for call in (lambda: proc.SleepEx(ms, False), lambda: proc.SleepEx(ms, True),
                 lambda: proc.GetQueuedCompletionStatus(port, ms),
                 lambda: proc.GetQueuedCompletionStatusEx(port, 4, ms),
                 lambda: proc.GetQueuedCompletionStatusEx(port, 4, ms, True),
                 lambda: proc.WSAWaitForMultipleEvents([ev], False, ms, False)):
        with pytest.raises(TypeError):
            call()
    assert clock.now() == 0.0


@pytest.mark.parametrize("ms", [-1, INFINITE + 1, 2 ** 64])
def test_a_time_out_beyond_a_dword_is_invalid_parameter(clocked, ms):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    ev = proc.WSACreateEvent()
    for call in (lambda: proc.SleepEx(ms, False), lambda: proc.SleepEx(ms, True),
                 lambda: proc.GetQueuedCompletionStatus(port, ms),
                 lambda: proc.GetQueuedCompletionStatusEx(port, 4, ms),
                 lambda: proc.WSAWaitForMultipleEvents([ev], False, ms, True)):
        with pytest.raises(WinsockError) as e:
            call()
        assert_winsock(e, WSA_INVALID_PARAMETER)
    assert clock.now() == 0.0


def test_bad_handles_and_counts_fail_as_on_the_wall_clock(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    with pytest.raises(WinsockError) as e:
        proc.GetQueuedCompletionStatus(port + 4000, 100)
    assert_winsock(e, WSA_INVALID_HANDLE)
    with pytest.raises(WinsockError) as e:
        proc.GetQueuedCompletionStatusEx(port, 0, 100)
    assert_winsock(e, WSA_INVALID_PARAMETER)
    with pytest.raises(WinsockError) as e:
        proc.WSAWaitForMultipleEvents([port], False, 100, False)
    assert_winsock(e, WSA_INVALID_HANDLE)
    with pytest.raises(WinsockError) as e:
        proc.WSAWaitForMultipleEvents([], False, 100, False)
    assert_winsock(e, WSA_INVALID_PARAMETER)
    with pytest.raises(WinsockError) as e:
        proc.wait_overlapped(Overlapped(), -1.0)
    assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        proc.wait_overlapped(Overlapped(), "1")
    assert clock.now() == 0.0


# -- the idle rule under threads ---------------------------------------------------------
def test_workers_see_each_packet_at_its_time_and_hold_the_clock_while_handling(clocked):
    proc, clock = clocked
    port = proc.CreateIoCompletionPort(None)
    due = [0.1 * (i + 1) for i in range(12)]
    stop_at = due[-1] + 0.5

    def post(i):
        proc.PostQueuedCompletionStatus(port, i, 1, None)
        if i + 1 < len(due):
            clock.call_at(due[i + 1], post, i + 1)     # the chain: each posts, then the next
        else:
            clock.call_at(stop_at, stop)

    def stop():
        for _ in range(2):
            proc.PostQueuedCompletionStatus(port, 0, 0, None)

    def work(ms):
        clock.touch()                     # from now on this thread counts (the idle rule)
        handled, timeouts = [], []
        while True:
            start = clock.now()
            rc, n, key, _ = proc.GetQueuedCompletionStatus(port, ms)
            if rc == WAIT_TIMEOUT:
                timeouts.append((start, clock.now()))
                continue
            assert rc == 0
            if key == 0:
                clock.step_aside()
                return handled, timeouts
            at = clock.now()
            time.sleep(0.02)              # handling takes real time: the clock must not move
            handled.append((n, at, clock.now()))

    clock.call_at(due[0], post, 0)
    workers = [Worker(work, INFINITE), Worker(work, 250)]
    for w in workers:
        w.start()
    results = [w.finish(JOIN) for w in workers]
    handled = sorted(h for r in results for h in r[0])
    assert [n for n, _, _ in handled] == list(range(len(due)))      # each packet once
    for n, at, after in handled:
        assert at == due[n], (n, at)      # seen at the time it was due
        assert after == at, (n, at, after)   # no time passed while it was handled
    for start, end in results[1][1]:
        assert end == start + 0.25        # the timed worker timed out at its deadlines
    assert results[1][1]                  # (it did: 0.25 s gaps between 0.1 s packets)
    assert clock.now() == stop_at


def test_a_thread_that_steps_aside_to_join_does_not_hold_the_clock():
    proc = wsp.Process()
    clock = VirtualClock(threading.RLock(), grace=60.0)
    proc.use_clock(clock)
    port = proc.CreateIoCompletionPort(None)
    try:
        assert proc.SleepEx(10, False) == 0     # this thread now holds the clock ...
        worker = Worker(proc.GetQueuedCompletionStatus, port, 5000)
        real = time.monotonic()
        worker.start()
        worker.started.wait(JOIN)
        clock.step_aside()                      # ... until it steps aside to join
        assert worker.finish(JOIN) == (WAIT_TIMEOUT, 0, 0, None)
        assert clock.now() == 0.01 + 5.0
        assert time.monotonic() - real < 30.0   # not the 60 s grace
    finally:
        proc.terminate()


def test_a_thread_joining_without_stepping_aside_holds_the_clock_for_the_grace_only():
    proc = wsp.Process()
    clock = VirtualClock(threading.RLock(), grace=0.05)
    proc.use_clock(clock)
    port = proc.CreateIoCompletionPort(None)
    try:
        assert proc.SleepEx(10, False) == 0     # this thread holds the clock for 0.05 s
        worker = Worker(proc.GetQueuedCompletionStatus, port, 5000)
        real = time.monotonic()
        worker.start()
        assert worker.finish(JOIN) == (WAIT_TIMEOUT, 0, 0, None)   # blocked outside wsp
        assert clock.now() == 0.01 + 5.0
        assert time.monotonic() - real < 10.0
    finally:
        proc.terminate()


def test_while_a_thread_acts_the_clock_waits_for_it():
    proc = wsp.Process()
    clock = VirtualClock(threading.RLock(), grace=60.0)
    proc.use_clock(clock)
    port = proc.CreateIoCompletionPort(None)
    try:
        assert proc.SleepEx(10, False) == 0     # acting, for up to 60 s of real time

        def wait_then_leave():
            try:
                return proc.GetQueuedCompletionStatus(port, 1000)
            finally:
                clock.step_aside()              # else its own 60 s grace would hold us

        worker = Worker(wait_then_leave)
        worker.start()
        time.sleep(0.1)
        assert worker.is_alive() and clock.now() == 0.01     # it may not move yet
        # The acting thread waits again: now the simulation is idle.
        assert proc.SleepEx(3000, False) == 0
        assert worker.finish(JOIN) == (WAIT_TIMEOUT, 0, 0, None)
        assert clock.now() == 3.01
    finally:
        proc.terminate()


def test_a_woken_thread_that_leaves_without_waiting_again_holds_the_clock_for_its_grace():
    """The clock wakes one thread and tells the other "until woken"; the
    woken one returns and ends without another wait or a step aside.  Its
    grace runs out and the other's wait still ends, at its deadline."""
    proc = wsp.Process()
    clock = VirtualClock(threading.RLock(), grace=0.1)
    proc.use_clock(clock)
    try:
        clock.touch()                       # acting: the worker's wait has to wait for us
        worker = Worker(proc.SleepEx, 100, False)
        worker.start()
        worker.started.wait(JOIN)
        time.sleep(0.02)                    # (let it begin its wait; either order works)
        real = time.monotonic()
        assert proc.SleepEx(1000, False) == 0
        assert clock.now() == 1.0
        assert time.monotonic() - real < 10.0
        assert worker.finish(JOIN) == 0
    finally:
        proc.terminate()


@pytest.mark.parametrize("kind", ["sleep", "sleep_alertable", "events", "events_alertable",
                                  "gqcs", "gqcs_ex", "gqcs_ex_alertable", "overlapped"])
def test_a_wait_with_a_deadline_always_ends(started, kind):
    proc, clock, prov = started
    port = proc.CreateIoCompletionPort(None)
    ev = proc.WSACreateEvent()
    s = proc.upcalls.WPUCreateSocketHandle(1, "socket")
    ov = Overlapped()
    op = proc.start_overlapped(s, ov, provider=prov)
    # A thread that waits for ever, with nothing scheduled, does not stop it.
    forever = Worker(proc.GetQueuedCompletionStatus, proc.CreateIoCompletionPort(None), INFINITE)
    forever.start()
    forever.started.wait(JOIN)
    waits = {
        "sleep": (lambda: proc.SleepEx(1000, False), 0),
        "sleep_alertable": (lambda: proc.SleepEx(1000, True), 0),
        "events": (lambda: proc.WSAWaitForMultipleEvents([ev], False, 1000, False),
                   WSA_WAIT_TIMEOUT),
        "events_alertable": (lambda: proc.WSAWaitForMultipleEvents([ev], True, 1000, True),
                             WSA_WAIT_TIMEOUT),
        "gqcs": (lambda: proc.GetQueuedCompletionStatus(port, 1000), (WAIT_TIMEOUT, 0, 0, None)),
        "gqcs_ex": (lambda: proc.GetQueuedCompletionStatusEx(port, 2, 1000), []),
        "gqcs_ex_alertable": (lambda: proc.GetQueuedCompletionStatusEx(port, 2, 1000, True), []),
        "overlapped": (lambda: proc.wait_overlapped(ov, 1.0), False),
    }
    call, expected = waits[kind]
    assert call() == expected
    assert clock.now() == 1.0
    proc.cancel_overlapped(op, notify=False)
    proc.upcalls.WPUCloseSocketHandle(s)
    proc.terminate()                            # closes the ports: the forever wait ends
    assert forever.finish(JOIN) == (ERROR_ABANDONED_WAIT_0, 0, 0, None)


def test_many_threads_of_timed_waits_each_end_exactly_at_their_deadlines():
    """4 threads x 60 waits of random (seeded) kinds and lengths, nothing
    scheduled.  A wait's deadline is the time it began plus its length, and
    the clock moves only to the earliest deadline of the waiting threads,
    never past one whose thread has not returned, so every wait returns at
    exactly its own deadline -- a poll (0 ms) at once -- whatever the others
    do; the threads hold the clock between their waits (a large grace), so
    the time each read before a wait is the time the wait began.  At the end
    the clock stands at the latest deadline of all."""
    proc = wsp.Process()
    clock = VirtualClock(threading.RLock(), grace=5.0)
    proc.use_clock(clock)
    rng = random.Random(20261201)
    plans = [[(rng.choice("SPXE"), rng.choice([0, 1, 7, 50, 100, 250, 999, rng.randrange(2000)]))
              for _ in range(60)] for _ in range(4)]

    gate = threading.Barrier(len(plans))

    def run(plan):
        port = proc.CreateIoCompletionPort(None)
        ev = proc.WSACreateEvent()
        clock.touch()                           # counts from now: no time passes until
        gate.wait(JOIN)                         # ... all four are in, and waiting
        done = []
        try:
            for kind, ms in plan:
                start = clock.now()
                if kind == "S":
                    rc = proc.SleepEx(ms, False)
                    ok = rc == 0
                elif kind == "P":
                    rc = proc.GetQueuedCompletionStatus(port, ms)
                    ok = rc == (WAIT_TIMEOUT, 0, 0, None)
                elif kind == "X":
                    rc = proc.GetQueuedCompletionStatusEx(port, 4, ms, True)
                    ok = rc == []
                else:
                    rc = proc.WSAWaitForMultipleEvents([ev], False, ms, False)
                    ok = rc == WSA_WAIT_TIMEOUT
                assert ok, (kind, ms, rc)
                done.append((start, ms, clock.now()))
        finally:
            clock.step_aside()                  # leaving: stop holding the clock now
        return done

    workers = [Worker(run, plan) for plan in plans]
    try:
        for w in workers:
            w.start()
        results = [w.finish(60.0) for w in workers]
    finally:
        proc.terminate()
    ends = []
    for done in results:
        assert len(done) == 60
        previous = 0.0
        for start, ms, end in done:
            deadline = start + ms / 1000.0
            assert start >= previous            # each thread's own waits, in order
            assert end >= deadline
            assert end == deadline, (start, ms, end)
            previous = end
        ends.append(previous)
    assert clock.now() == max(ends)
    # The threads' waits did run side by side in simulated time.
    spans = [(start, end, i) for i, done in enumerate(results) for start, _, end in done]
    assert any(a0 < b1 and b0 < a1 and i != j
               for a0, a1, i in spans for b0, b1, j in spans)


# -- the real clock -----------------------------------------------------------------------------
def test_real_clock_gqcs_times_out_after_real_time():
    proc = wsp.Process()
    clock = RealClock(threading.RLock())
    proc.use_clock(clock)
    port = proc.CreateIoCompletionPort(None)
    try:
        start = clock.now()
        assert proc.GetQueuedCompletionStatus(port, 50) == (WAIT_TIMEOUT, 0, 0, None)
        took = clock.now() - start
        assert 0.05 - 0.005 <= took < 2.0
        clock.call_later(0.05, proc.PostQueuedCompletionStatus, port, 8, 2, None)
        start = clock.now()
        assert proc.GetQueuedCompletionStatus(port, 5000) == (0, 8, 2, None)
        assert 0.04 <= clock.now() - start < 2.0
    finally:
        proc.terminate()


def test_real_clock_sleep_and_event_waits_take_real_time():
    proc = wsp.Process()
    clock = RealClock(threading.RLock())
    proc.use_clock(clock)
    try:
        start = clock.now()
        assert proc.SleepEx(30, False) == 0
        assert 0.025 <= clock.now() - start < 2.0
        ev = proc.WSACreateEvent()
        clock.call_later(0.03, proc.WSASetEvent, ev)
        assert proc.WSAWaitForMultipleEvents([ev], False, 5000, False) == WSA_WAIT_EVENT_0
        assert clock.now() - start < 3.0
    finally:
        proc.terminate()


def test_the_clock_itself_wakes_a_wait_whose_deadline_it_passes():
    # A wait's deadline passing is the clock's to announce: it calls the
    # wait's wake (the real-time slice of block_time is only a safety net).
    clock = VirtualClock(threading.RLock())
    woken = threading.Event()
    began = threading.Event()

    def waiter():
        clock.begin_wait(lambda: False, woken.set, 1.0)
        began.set()
        woken.wait(10)
        clock.end_wait()

    t = threading.Thread(target=waiter)
    clock.touch()                      # this thread acts: the clock holds until it advances
    t.start()
    assert began.wait(10)
    assert not woken.is_set()
    clock.advance(2.0)
    assert woken.wait(10), "the clock passed the deadline without waking the wait"
    assert clock.now() == 2.0
    t.join(10)
    assert not t.is_alive()
