"""CompletionQueue (SPEC §5), on both cores."""
from __future__ import annotations

import threading
import time

import pytest

from helpers import Worker, assert_winsock, spin_python_for
from wsp.errors import WSA_INVALID_HANDLE, WSAEINVAL, WinsockError

U64_MAX = 2 ** 64 - 1


def test_post_get_fifo(core):
    q = core.CompletionQueue()
    for i in range(100):
        q.post(i, i * 2, 7, 1000 + i)
    assert len(q) == 100
    got = [q.get() for _ in range(100)]
    assert got == [(i, i * 2, 7, 1000 + i) for i in range(100)]
    assert len(q) == 0
    assert q.get(0) is None


def test_packet_fields_cover_the_unsigned_64_bit_range(core):
    q = core.CompletionQueue()
    q.post(U64_MAX, 0, U64_MAX, 2 ** 63)
    assert q.get(0) == (U64_MAX, 0, U64_MAX, 2 ** 63)


class Index:
    def __index__(self):
        return 9


@pytest.mark.parametrize("field", range(4))
@pytest.mark.parametrize("bad, exc, code", [
    (-1, WinsockError, WSAEINVAL),
    (2 ** 64, WinsockError, WSAEINVAL),
    (1.5, TypeError, None),
    (1.0, TypeError, None),
    ("1", TypeError, None),
    (None, TypeError, None),
])
def test_post_rejects_bad_fields(core, field, bad, exc, code):
    q = core.CompletionQueue()
    args = [0, 0, 0, 0]
    args[field] = bad
    with pytest.raises(exc) as e:
        q.post(*args)
    if code is not None:
        assert_winsock(e, code)
    assert len(q) == 0


def test_integer_like_fields_are_accepted(core):
    q = core.CompletionQueue()
    q.post(Index(), True, 0, Index())
    assert q.get(0) == (9, 1, 0, 9)


def test_get_times_out(core):
    q = core.CompletionQueue()
    start = time.monotonic()
    assert q.get(0.05) is None
    assert time.monotonic() - start >= 0.045
    assert q.get_many(4, 0.01) == []
    assert q.get(0) is None


@pytest.mark.parametrize("timeout, exc", [(-0.5, WinsockError), (float("nan"), WinsockError),
                                          ("0", TypeError), (object(), TypeError)])
def test_get_rejects_bad_timeouts(core, timeout, exc):
    q = core.CompletionQueue()
    with pytest.raises(exc):
        q.get(timeout)
    with pytest.raises(exc):
        q.get_many(1, timeout)


def test_get_many_takes_up_to_max_in_order(core):
    q = core.CompletionQueue()
    for i in range(10):
        q.post(0, i, 0, i)
    assert q.get_many(3) == [(0, i, 0, i) for i in range(3)]
    assert q.get_many(100) == [(0, i, 0, i) for i in range(3, 10)]
    assert len(q) == 0
    for i in range(200):                 # beyond the 64-entry stack buffer
        q.post(0, i, 0, i)
    assert q.get_many(150) == [(0, i, 0, i) for i in range(150)]
    assert q.get_many(10 ** 9) == [(0, i, 0, i) for i in range(150, 200)]


@pytest.mark.parametrize("bad, exc", [(0, WinsockError), (-1, WinsockError),
                                      ("3", TypeError), (2.0, TypeError)])
def test_get_many_rejects_bad_max(core, bad, exc):
    q = core.CompletionQueue()
    q.post(1, 1, 1, 1)
    with pytest.raises(exc):
        q.get_many(bad, 0)
    assert len(q) == 1


def test_post_many(core):
    q = core.CompletionQueue()
    q.post_many([(i, 1, 2, 3) for i in range(300)])     # >= 256: posted without the GIL
    q.post_many(iter([[5, 5, 5, 5], range(4)]))          # any 4-sequences, any iterable
    q.post_many([])
    assert len(q) == 302
    got = q.get_many(400)
    assert got[:300] == [(i, 1, 2, 3) for i in range(300)]
    assert got[300:] == [(5, 5, 5, 5), (0, 1, 2, 3)]


@pytest.mark.parametrize("bad_item, exc", [((1, 2, 3), TypeError), ((1, 2, 3, 4, 5), TypeError),
                                           (5, TypeError), ((1, 2, 3, -1), WinsockError),
                                           ((1, 2, 3, "4"), TypeError)])
def test_post_many_is_all_or_nothing(core, bad_item, exc):
    q = core.CompletionQueue()
    with pytest.raises(exc):
        q.post_many([(0, 0, 0, 0), bad_item, (1, 1, 1, 1)])
    assert len(q) == 0


def test_post_many_rejects_non_iterables(core):
    q = core.CompletionQueue()
    with pytest.raises(TypeError):
        q.post_many(7)


def test_blocked_get_is_woken_by_a_post_and_releases_the_gil(core):
    q = core.CompletionQueue()
    worker = Worker(q.get, 8)
    worker.start()
    assert worker.started.wait(5)
    time.sleep(0.05)
    n, elapsed = spin_python_for(0.2)
    assert n > 1000 and elapsed < 4
    assert worker.is_alive()
    q.post(1, 2, 3, 4)
    assert worker.finish() == (1, 2, 3, 4)
    assert len(q) == 0


def test_blocked_get_many_returns_the_handed_packet_and_what_follows(core):
    q = core.CompletionQueue()
    worker = Worker(q.get_many, 10, 8)
    worker.start()
    time.sleep(0.05)
    q.post(1, 1, 1, 1)
    got = worker.finish()
    assert got[0] == (1, 1, 1, 1) and len(got) >= 1


def test_blocked_get_is_woken_by_close(core):
    q = core.CompletionQueue()
    workers = [Worker(q.get, 8), Worker(q.get_many, 5, 8)]
    for w in workers:
        w.start()
    time.sleep(0.05)
    start = time.monotonic()
    assert q.close() == []
    assert workers[0].finish() is None
    assert workers[1].finish() == []
    assert time.monotonic() - start < 5


def test_close_discards_and_returns_queued_packets_then_refuses_posts(core):
    q = core.CompletionQueue()
    q.post(1, 2, 3, 4)
    q.post(5, 6, 7, 8)
    assert not q.closed
    assert q.close() == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert q.closed and len(q) == 0
    for call, args in ((q.post, (0, 0, 0, 0)), (q.post_many, ([(0, 0, 0, 0)],)),
                       (q.post_many, ([],))):
        with pytest.raises(WinsockError) as e:
            call(*args)
        assert_winsock(e, WSA_INVALID_HANDLE)
    assert q.get() is None                  # never blocks once closed
    assert q.get_many(3) == []
    assert q.close() == []                  # closing again is harmless


def test_each_parked_getter_receives_exactly_one_packet(core):
    q = core.CompletionQueue()
    workers = [Worker(q.get, 8) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(0.1)
    q.post_many([(0, 0, 0, i) for i in range(4)])
    results = sorted(w.finish() for w in workers)
    assert results == [(0, 0, 0, i) for i in range(4)]
    assert len(q) == 0


def test_getters_see_packets_in_post_order(core):
    q = core.CompletionQueue()
    results = []
    lock = threading.Lock()

    def drain():
        while True:
            p = q.get(5)
            if p is None or p[3] == U64_MAX:
                return
            with lock:
                results.append(p[3])

    worker = Worker(drain)
    worker.start()
    for i in range(2000):
        q.post(0, 0, 0, i)
    q.post(0, 0, 0, U64_MAX)
    worker.finish()
    assert results == list(range(2000))


def test_debug_counter_counts_queues(core):
    import gc
    gc.collect()
    before = core.debug_counters()["queues"]
    qs = [core.CompletionQueue() for _ in range(2)]
    assert core.debug_counters()["queues"] == before + 2
    del qs
    gc.collect()
    assert core.debug_counters()["queues"] == before


def test_repr(core):
    q = core.CompletionQueue()
    q.post(0, 0, 0, 0)
    assert "queued=1" in repr(q) and "open" in repr(q)
    q.close()
    assert "closed" in repr(q)


def test_wake_waiters_returns_parked_getters_as_on_timeout(core):
    q = core.CompletionQueue()
    assert q.wake_waiters() == 0
    workers = [Worker(q.get, 8), Worker(q.get_many, 3, 8)]
    for w in workers:
        w.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert q.wake_waiters() == 2
    assert workers[0].finish() is None
    assert workers[1].finish() == []
    assert time.monotonic() - start < 5
    q.post(1, 1, 1, 1)                       # the queue is unaffected
    assert q.get(0) == (1, 1, 1, 1) and not q.closed


def test_a_wake_before_the_getter_parks_is_kept_by_since(core):
    # wakes counts wake_waiters() calls; a get handed the count it read
    # earlier returns at once if a wake came since -- the wake a getter on
    # its way to park would otherwise miss (a simulated clock relies on it).
    q = core.CompletionQueue()
    since = q.wakes
    assert q.wake_waiters() == 0             # nobody parked: nobody woken...
    assert q.wakes == since + 1
    start = time.monotonic()
    assert q.get(5, since) is None           # ...but this get does not wait
    assert q.get_many(4, 5, since) == []
    assert time.monotonic() - start < 2.5
    # an unchanged count waits as usual: for a packet, or the timeout
    now = q.wakes
    assert q.get(0.05, now) is None
    q.post(7, 0, 0, 0)
    assert q.get(5, since) == (7, 0, 0, 0)   # a packet waiting wins over the check
    w = Worker(q.get_many, 2, 8, now)
    w.start()
    time.sleep(0.05)
    q.post(8, 0, 0, 0)
    assert w.finish() == [(8, 0, 0, 0)]


@pytest.mark.parametrize("bad", [-1, 1.0, "0", True])
def test_since_must_be_a_wake_count(core, bad):
    q = core.CompletionQueue()
    with pytest.raises(TypeError, match="since"):
        q.get(0, bad)
    with pytest.raises(TypeError, match="since"):
        q.get_many(1, 0, bad)


def test_posted_counts_every_packet_ever_posted(core):
    q = core.CompletionQueue()
    assert q.posted == 0
    q.post(1, 0, 0, 0)
    q.post_many([(2, 0, 0, 0), (3, 0, 0, 0)])
    assert q.posted == 3
    assert q.get_many(8, 0) == [(1, 0, 0, 0), (2, 0, 0, 0), (3, 0, 0, 0)]
    assert q.posted == 3                     # taking does not count down
    w = Worker(q.get, 8)                     # a packet handed to a parked getter counts too
    w.start()
    time.sleep(0.05)
    q.post(4, 0, 0, 0)
    assert w.finish() == (4, 0, 0, 0)
    assert q.posted == 4 and len(q) == 0
