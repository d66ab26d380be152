"""ThreadRegistry (SPEC §5), on both cores."""
from __future__ import annotations

import gc
import threading
import time

import pytest

from helpers import Worker, assert_winsock, spin_python_for
from wsp.errors import WSAEINVAL, WinsockError

BAD_THREAD_HANDLES = [0, 1, 4, -4, 2 ** 64, 2 ** 80, None, "x", 4.0]


def test_open_returns_distinct_handles_for_the_calling_thread(core):
    reg = core.ThreadRegistry()
    a, b = reg.open(), reg.open()
    assert a != b and a % 4 == 0 and b % 4 == 0 and a > 0
    assert reg.ident_of(a) == threading.get_ident() == reg.ident_of(b)
    assert len(reg) == 2 and a in reg
    reg.close(a)
    assert a not in reg and len(reg) == 1
    assert reg.ident_of(b) == threading.get_ident()
    reg.close(b)
    assert len(reg) == 0


def test_open_for_another_ident(core):
    reg = core.ThreadRegistry()
    h = reg.open(123456)
    assert reg.ident_of(h) == 123456
    reg.close(h)


def test_closed_or_unknown_thread_handle_is_einval(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    reg.close(h)
    for bad in [h] + BAD_THREAD_HANDLES:
        for call in (reg.close, reg.ident_of):
            with pytest.raises(WinsockError) as e:
                call(bad)
            assert_winsock(e, WSAEINVAL)
        with pytest.raises(WinsockError) as e:
            reg.queue_apc(bad, print, None)
        assert_winsock(e, WSAEINVAL)


@pytest.mark.parametrize("ident, exc", [("1", TypeError), (1.0, TypeError),
                                        (-1, WinsockError), (2 ** 64, WinsockError)])
def test_bad_idents(core, ident, exc):
    reg = core.ThreadRegistry()
    for call in (reg.open, reg.run_apcs, reg.pending):
        with pytest.raises(exc):
            call(ident)
    with pytest.raises(exc):
        reg.wait(ident, 0)


def test_queue_apc_requires_a_callable(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    with pytest.raises(TypeError):
        reg.queue_apc(h, "not callable", None)
    assert reg.pending() == 0
    reg.close(h)


def test_apcs_run_in_fifo_order_on_the_calling_thread(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    ran = []
    for i in range(5):
        reg.queue_apc(h, lambda ctx: ran.append((ctx, threading.get_ident())), i)
    assert reg.pending() == 5
    assert ran == []                       # nothing runs until run_apcs
    assert reg.run_apcs() == 5
    assert ran == [(i, threading.get_ident()) for i in range(5)]
    assert reg.pending() == 0 and reg.run_apcs() == 0
    reg.close(h)


def test_apcs_of_another_thread_are_not_run_by_this_one(core):
    reg = core.ThreadRegistry()
    other = reg.open(987654321)
    ran = []
    reg.queue_apc(other, ran.append, "x")
    assert reg.run_apcs() == 0 and ran == []
    assert reg.pending(987654321) == 1
    assert reg.run_apcs(987654321) == 1 and ran == ["x"]
    reg.close(other)


def test_apc_queued_by_an_apc_also_runs(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    ran = []

    def first(ctx):
        ran.append(ctx)
        reg.queue_apc(h, ran.append, "second")

    reg.queue_apc(h, first, "first")
    assert reg.run_apcs() == 2
    assert ran == ["first", "second"]
    reg.close(h)


def test_raising_apc_propagates_and_keeps_the_rest_queued(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    ran = []

    def boom(ctx):
        raise ValueError(ctx)

    reg.queue_apc(h, ran.append, 1)
    reg.queue_apc(h, boom, "bad")
    reg.queue_apc(h, ran.append, 3)
    with pytest.raises(ValueError, match="bad"):
        reg.run_apcs()
    assert ran == [1] and reg.pending() == 1
    assert reg.run_apcs() == 1 and ran == [1, 3]
    reg.close(h)


def test_closing_the_thread_handle_keeps_queued_apcs(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    ran = []
    reg.queue_apc(h, ran.append, "kept")
    reg.close(h)
    with pytest.raises(WinsockError) as e:
        reg.queue_apc(h, ran.append, "refused")
    assert_winsock(e, WSAEINVAL)
    assert reg.run_apcs() == 1 and ran == ["kept"]


def test_wait_returns_at_once_when_an_apc_is_pending(core):
    reg = core.ThreadRegistry()
    h = reg.open()
    reg.queue_apc(h, lambda ctx: None)
    assert reg.wait(None, 5) is True
    assert reg.wait(threading.get_ident(), None) is True    # never blocks here
    assert reg.pending() == 1                   # wait does not run APCs
    reg.run_apcs()
    reg.close(h)


@pytest.mark.parametrize("timeout", [0, 0.0, 0.05])
def test_wait_times_out(core, timeout):
    reg = core.ThreadRegistry()
    start = time.monotonic()
    assert reg.wait(None, timeout) is False
    assert time.monotonic() - start >= timeout * 0.9


@pytest.mark.parametrize("timeout, exc", [(-1, WinsockError), (float("nan"), WinsockError),
                                          ("1", TypeError), ([], TypeError)])
def test_wait_rejects_bad_timeouts(core, timeout, exc):
    reg = core.ThreadRegistry()
    with pytest.raises(exc):
        reg.wait(None, timeout)


def test_wait_is_woken_by_an_apc_from_another_thread_and_releases_the_gil(core):
    reg = core.ThreadRegistry()
    waiter_ident = []

    def blocked():
        waiter_ident.append(threading.get_ident())
        start = time.monotonic()
        woke = reg.wait(None, 8)
        return woke, time.monotonic() - start, reg.run_apcs()

    worker = Worker(blocked)
    worker.start()
    assert worker.started.wait(5)
    time.sleep(0.05)                            # let it park
    # The waiter holds no GIL: this thread keeps running Python meanwhile.
    n, elapsed = spin_python_for(0.2)
    assert n > 1000 and elapsed < 4
    assert worker.is_alive()                    # still parked
    h = reg.open(waiter_ident[0])
    ran = []
    reg.queue_apc(h, ran.append, "hello")
    woke, waited, count = worker.finish()
    assert woke is True and waited < 6
    assert count == 1 and ran == ["hello"]
    reg.close(h)


def test_several_waiters_on_one_thread_ident_all_wake(core):
    reg = core.ThreadRegistry()
    ident = 4242
    workers = [Worker(reg.wait, ident, 8) for _ in range(3)]
    for w in workers:
        w.start()
    time.sleep(0.05)
    h = reg.open(ident)
    reg.queue_apc(h, lambda ctx: None)
    assert [w.finish() for w in workers] == [True, True, True]
    assert reg.run_apcs(ident) == 1
    reg.close(h)


def test_records_are_freed_when_idle(core):
    gc.collect()
    base = core.debug_counters()["thread_records"]
    reg = core.ThreadRegistry()
    handles = [reg.open(i) for i in range(1, 50)]
    for h in handles:
        reg.queue_apc(h, lambda ctx: None)
    reg.wait(7777, 0.001)
    for h in handles:
        reg.close(h)
    for i in range(1, 50):
        assert reg.run_apcs(i) == 1
    assert core.debug_counters()["thread_records"] == base
    assert len(reg) == 0


def test_teardown_releases_unrun_apcs(core):
    import weakref

    class Payload:
        pass

    payload = Payload()
    ref = weakref.ref(payload)
    reg = core.ThreadRegistry()
    h = reg.open()
    reg.queue_apc(h, lambda ctx: None, payload)
    del payload, reg
    gc.collect()
    assert ref() is None
