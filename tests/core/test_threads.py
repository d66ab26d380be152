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


# ------------------------------------------------ thread lifetimes (ident reuse)
def wait_parked(core, n, timeout=10.0):
    """Wait until `core` has at least `n` threads parked in a wait."""
    deadline = time.monotonic() + timeout
    while core.debug_counters()["parked"] < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def records(core):
    gc.collect()
    return core.debug_counters()["thread_records"]


class Payload:
    """An APC context that can be weakly referenced (to prove release)."""


def run_in_thread(fn):
    result = {}

    def body():
        result["value"] = fn()
        result["ident"] = threading.get_ident()

    t = threading.Thread(target=body)
    t.start()
    t.join(10)
    assert not t.is_alive()
    return result["value"], result["ident"]


def test_apc_to_an_ended_thread_never_runs_on_a_later_thread_with_its_ident(core):
    import weakref

    base = records(core)
    reg = core.ThreadRegistry()
    ran = []
    box = [Payload()]
    stale_ref = weakref.ref(box[0])

    def first():
        h = reg.open()                           # for itself: the registry guards it
        reg.queue_apc(h, ran.append, box.pop())  # ... and it never runs its APCs
        return h

    h, old_ident = run_in_thread(first)
    assert reg.ended(h) is True
    assert reg.ident_of(h) == old_ident          # still the old ident
    reg.queue_apc(h, ran.append, "late")         # accepted, never runs
    assert reg.pending_of(h) == 2
    assert reg.pending(old_ident) == 0           # not the ident's current lifetime
    seen = {}

    def later():
        if threading.get_ident() != old_ident:
            return
        seen["inherited"] = reg.run_apcs()
        mine = reg.open()
        seen["ended"] = reg.ended(mine)
        reg.queue_apc(mine, ran.append, "mine")
        seen["ran"] = reg.run_apcs()
        reg.close(mine)

    for _ in range(200):                         # Linux hands idents out again quickly
        run_in_thread(later)
        if seen:
            break
    else:
        pytest.skip("the OS did not reuse the thread ident within 200 threads")
    assert seen == {"inherited": 0, "ended": False, "ran": 1}
    assert ran == ["mine"]
    assert reg.ended(h) and reg.pending_of(h) == 2
    assert stale_ref() is not None               # stranded, still held
    assert records(core) == base + 1             # the ended lifetime, kept by `h`
    reg.close(h)                                 # its last handle: freed with its APCs
    assert records(core) == base
    assert stale_ref() is None
    assert ran == ["mine"]


def test_a_thread_that_closed_its_handles_leaves_nothing_when_it_ends(core):
    base = records(core)
    reg = core.ThreadRegistry()

    def body():
        h = reg.open()
        reg.close(h)
        h = reg.open(threading.get_ident())      # its own ident, given explicitly
        reg.close(h)

    run_in_thread(body)
    assert records(core) == base and len(reg) == 0


def test_opening_for_another_threads_ident_sets_no_guard(core):
    reg = core.ThreadRegistry()
    h, _ = run_in_thread(lambda: reg.open(987654))
    assert reg.ended(h) is False                 # the opener ended, not thread 987654
    reg.queue_apc(h, lambda ctx: None)
    assert reg.run_apcs(987654) == 1
    reg.close(h)


def test_own_handle_explicit_ident_is_guarded_too(core):
    reg = core.ThreadRegistry()
    h, ident = run_in_thread(lambda: reg.open(threading.get_ident()))
    assert reg.ended(h) is True and reg.ident_of(h) == ident
    reg.close(h)


def test_end_thread_detaches_the_record_and_strands_its_apcs(core):
    import weakref

    base = records(core)
    reg = core.ThreadRegistry()
    ran = []
    ctx = Payload()
    ref = weakref.ref(ctx)
    h = reg.open(555)
    reg.queue_apc(h, ran.append, ctx)
    reg.queue_apc(h, ran.append, "two")
    del ctx
    assert reg.ended(h) is False
    assert reg.end_thread(555) == 2
    assert reg.ended(h) is True and reg.ident_of(h) == 555
    assert reg.pending(555) == 0 and reg.run_apcs(555) == 0
    assert reg.pending_of(h) == 2
    reg.queue_apc(h, ran.append, "after")        # accepted on the ended lifetime
    assert reg.pending_of(h) == 3 and reg.pending(555) == 0
    h2 = reg.open(555)                           # a fresh lifetime for the ident
    assert reg.ended(h2) is False and reg.pending_of(h2) == 0
    reg.queue_apc(h2, ran.append, "new")
    assert reg.run_apcs(555) == 1 and ran == ["new"]
    assert reg.end_thread(555) == 0              # ends h2's lifetime (nothing queued)
    assert reg.end_thread(555) == 0              # no record any more: a no-op
    assert records(core) == base + 2
    assert ref() is not None
    reg.close(h)
    assert ref() is None and records(core) == base + 1
    reg.close(h2)
    assert records(core) == base and len(reg) == 0
    assert ran == ["new"]


def test_end_thread_without_handles_discards_at_once(core):
    import weakref

    base = records(core)
    reg = core.ThreadRegistry()
    ctx = Payload()
    ref = weakref.ref(ctx)
    h = reg.open(556)
    reg.queue_apc(h, print, ctx)
    reg.close(h)                                 # the APC stays queued to the ident
    del ctx
    assert reg.pending(556) == 1 and ref() is not None
    assert reg.end_thread(556) == 1
    assert ref() is None and reg.pending(556) == 0
    assert records(core) == base
    assert reg.end_thread(123) == 0              # never known


def test_end_thread_drops_apcs_outside_the_lock(core):
    # A context whose __del__ calls back into the registry: dropping it under
    # the registry's spinlock would deadlock this worker.
    reg = core.ThreadRegistry()
    called = []

    class CallsBack:
        def __del__(self):
            h = reg.open(9)
            called.append(reg.ended(h))
            reg.close(h)

    def scenario():
        h = reg.open(8)
        reg.queue_apc(h, print, CallsBack())
        assert reg.end_thread(8) == 1
        reg.close(h)                             # frees the ended record: __del__ runs
        h = reg.open(8)
        reg.queue_apc(h, print, CallsBack())
        reg.close(h)
        assert reg.end_thread(8) == 1            # no handle: discarded at once
        return called

    worker = Worker(scenario)
    worker.start()
    assert worker.finish() == [False, False]


def test_duplicate_names_the_same_lifetime(core):
    base = records(core)
    reg = core.ThreadRegistry()
    h = reg.open(777)
    d = reg.duplicate(h)
    assert d != h and d in reg and len(reg) == 2
    assert reg.ident_of(d) == 777
    reg.queue_apc(d, lambda ctx: None)
    assert reg.pending_of(h) == 1 and reg.pending(777) == 1
    reg.close(h)                                 # the duplicate keeps the lifetime
    assert reg.pending_of(d) == 1 and reg.ended(d) is False
    assert reg.end_thread(777) == 1
    d2 = reg.duplicate(d)                        # a duplicate of an ended lifetime
    assert reg.ended(d2) and reg.pending_of(d2) == 1 and reg.ident_of(d2) == 777
    reg.close(d)
    assert records(core) == base + 1
    reg.close(d2)
    assert records(core) == base and len(reg) == 0


@pytest.mark.parametrize("method", ["duplicate", "ended", "pending_of"])
def test_new_handle_queries_reject_unknown_handles(core, method):
    reg = core.ThreadRegistry()
    h = reg.open()
    reg.close(h)
    for bad in [h] + BAD_THREAD_HANDLES:
        with pytest.raises(WinsockError) as e:
            getattr(reg, method)(bad)
        assert_winsock(e, WSAEINVAL)


@pytest.mark.parametrize("ident, exc", [("1", TypeError), (1.0, TypeError),
                                        (-1, WinsockError), (2 ** 64, WinsockError)])
def test_end_thread_rejects_bad_idents(core, ident, exc):
    with pytest.raises(exc):
        core.ThreadRegistry().end_thread(ident)


def test_end_thread_wakes_its_waiters_with_false(core):
    base_records = records(core)
    reg = core.ThreadRegistry()
    base = core.debug_counters()["parked"]
    h = reg.open(4343)
    workers = [Worker(reg.wait, 4343, 30), Worker(reg.wait, 4343, None)]
    for w in workers:
        w.start()
    assert wait_parked(core, base + 2)
    other = Worker(reg.wait, 4344, 30)           # another ident: not woken
    other.start()
    assert wait_parked(core, base + 3)
    start = time.monotonic()
    assert reg.end_thread(4343) == 0
    assert [w.finish() for w in workers] == [False, False]
    assert time.monotonic() - start < 5
    assert other.is_alive()
    assert reg.ended(h)
    h2 = reg.open(4344)
    reg.queue_apc(h2, lambda ctx: None)
    assert other.finish() is True
    assert reg.run_apcs(4344) == 1
    reg.close(h)
    reg.close(h2)
    assert records(core) == base_records


def test_a_wait_after_end_thread_parks_on_the_new_lifetime(core):
    reg = core.ThreadRegistry()
    reg.end_thread(4545)
    base = core.debug_counters()["parked"]
    worker = Worker(reg.wait, 4545, 30)
    worker.start()
    assert wait_parked(core, base + 1)
    h = reg.open(4545)
    reg.queue_apc(h, lambda ctx: None)
    assert worker.finish() is True
    reg.run_apcs(4545)
    reg.close(h)


def test_registry_teardown_frees_ended_lifetimes(core):
    import weakref

    base = records(core)
    ctx = Payload()
    ref = weakref.ref(ctx)
    reg = core.ThreadRegistry()
    h = reg.open(31)
    reg.duplicate(h)
    reg.queue_apc(h, print, ctx)
    reg.end_thread(31)
    reg.open(31)
    del ctx, reg
    gc.collect()
    assert ref() is None and records(core) == base


def test_registry_dies_before_a_guarded_thread_ends(core):
    base = records(core)
    reg = core.ThreadRegistry()
    go = threading.Event()
    opened = threading.Event()

    holder = [reg]

    def body():
        reg_ = holder.pop()
        reg_.open()
        opened.set()
        go.wait(10)
        # returning drops the last reference: the registry dies in this
        # thread, before the thread's guard is torn down

    t = threading.Thread(target=body)
    t.start()
    assert opened.wait(10)
    del reg                                      # only the thread's frame holds it now
    go.set()
    t.join(10)
    assert not t.is_alive()
    gc.collect()
    assert records(core) == base
