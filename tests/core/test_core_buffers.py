"""The buffer forms of the core's batch calls (SPEC §5), on both cores:
``HandleTable.create_into`` / ``close_from`` and ``CompletionQueue.post_from``
/ ``get_into`` over buffers of unsigned 64-bit items.

Accepted: one-dimensional, C-contiguous buffers whose items are native
unsigned 64-bit integers -- struct format ``'Q'``, or ``'L'`` where that is 8
bytes, optionally after ``'@'``, ``'='`` or this host's byte-order prefix (as
ctypes writes it).  Writable for ``create_into`` / ``get_into``.  Everything
else is a TypeError that names the argument.
"""
from __future__ import annotations

import ctypes
import gc
import sys
import threading
import time
import weakref
from array import array

import pytest

from helpers import Worker, assert_winsock, spin_python_for, wait_parked
from wsp.errors import WSA_INVALID_HANDLE, WSAEINVAL, WSAENOBUFS, WinsockError

U64_MAX = 2 ** 64 - 1
NOGIL_BATCH = 256          # the compiled core's threshold for running a batch without the GIL
BIG = 10_000


class Ctx:
    """A context that can be weakly referenced (to prove release)."""


def zeros(n):
    return array("Q", bytes(8 * n))


def flat(packets):
    return array("Q", [v for p in packets for v in p])


def misaligned(n):
    """A writable 'Q' view of `n` items that starts 1 byte into a bytearray
    (memoryview.cast does not check alignment)."""
    return memoryview(bytearray(8 * n + 1))[1:].cast("Q")


def packets_of(n, start=0):
    return [(i % 7, 512 + i, 7, 123456 + i) for i in range(start, start + n)]


# Buffers that must be accepted, as (id, factory(values) -> buffer).
def _ctypes_u64(values):
    return (ctypes.c_uint64 * len(values))(*values)          # format '<Q' (on little-endian)


def _ctypes_ulong(values):
    return (ctypes.c_ulong * len(values))(*values)           # '<L' of 8 bytes on LP64


ACCEPTED = [
    ("array-Q", lambda v: array("Q", v)),
    ("memoryview-Q", lambda v: memoryview(bytearray(array("Q", v).tobytes())).cast("Q")),
    ("ctypes-uint64", _ctypes_u64),
    ("misaligned", lambda v: _filled(misaligned(len(v)), v)),
]
if array("L").itemsize == 8:
    ACCEPTED.append(("array-L", lambda v: array("L", v)))
    ACCEPTED.append(("memoryview-L", lambda v: memoryview(bytearray(array("Q", v).tobytes()))
                     .cast("L")))
if ctypes.sizeof(ctypes.c_ulong) == 8:
    ACCEPTED.append(("ctypes-ulong", _ctypes_ulong))


def _filled(view, values):
    view[:] = array("Q", values)
    return view


def _foreign_order_u64(n):
    """A buffer of unsigned 64-bit items in the other byte order."""
    other = ctypes.c_uint64.__ctype_be__ if sys.byteorder == "little" \
        else ctypes.c_uint64.__ctype_le__
    return (other * n)()


# Buffers of the wrong item type or shape (each holds 8 items' worth of
# memory, so a length check could not be what refuses them).
WRONG_BUFFERS = [
    ("array-i", lambda: array("i", [0] * 16)),
    ("array-q", lambda: array("q", [0] * 8)),
    ("array-d", lambda: array("d", [0.0] * 8)),
    ("array-B", lambda: array("B", bytes(64))),
    ("bytearray", lambda: bytearray(64)),
    ("memoryview-B", lambda: memoryview(bytearray(64))),
    ("ctypes-int64", lambda: (ctypes.c_int64 * 8)()),
    ("foreign-order", lambda: _foreign_order_u64(8)),
    ("2-D", lambda: memoryview(bytearray(64)).cast("Q", shape=[2, 4])),
    ("0-D", lambda: memoryview(bytearray(8)).cast("Q", shape=[])),
    ("strided", lambda: memoryview(array("Q", [0] * 16))[::2]),
    ("reversed", lambda: memoryview(array("Q", [0] * 8))[::-1]),
]
NOT_BUFFERS = [None, 5, 4.0, "abcdefgh" * 8, [0] * 8, (0,) * 8, object()]

METHODS = ["create_into", "close_from", "post_from", "get_into"]
WRITES = {"create_into", "get_into"}


def bound(core, name):
    """`name` bound to a fresh table or queue of `core`."""
    obj = core.HandleTable() if name in ("create_into", "close_from") else core.CompletionQueue()
    return getattr(obj, name)


# ------------------------------------------------------------ HandleTable
def test_create_into_gives_the_handles_create_many_gives(core):
    mine, twin = core.HandleTable(), core.HandleTable()
    ctx = Ctx()
    for n, close_every in ((5, 2), (1, 1), (17, 3), (64, 5), (300, 7), (3, 1)):
        buf = zeros(n)
        assert mine.create_into(buf, ctx) == n
        expected = twin.create_many(n, ctx)
        assert buf.tolist() == expected
        assert mine.handles() == twin.handles()
        # Free some slots, so later batches reuse them (free stack, new generations).
        assert mine.close_from(buf[::close_every]) == twin.close_many(expected[::close_every])
    assert all(mine.query(h) is ctx for h in mine.handles())


def test_create_into_values_are_valid_handles_and_default_context_is_none(core):
    table = core.HandleTable()
    buf = zeros(200)
    assert table.create_into(buf) == 200
    handles = buf.tolist()
    assert len(set(handles)) == 200 and len(table) == 200
    for h in handles:
        assert h != 0 and h % 4 == 0 and h < 2 ** 63
        assert table.query(h) is None


@pytest.mark.parametrize("kind, make", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_every_accepted_kind_round_trips(core, kind, make):
    table, twin = core.HandleTable(), core.HandleTable()
    buf = make([0] * 6)
    assert table.create_into(buf, "c") == 6
    got = list(memoryview(buf).cast("B").cast("Q"))
    assert got == twin.create_many(6, "c")
    assert table.close_from(make(got)) == 6 and len(table) == 0

    q = core.CompletionQueue()
    q.post_from(make([1, 2, 3, 4, U64_MAX, 0, 2 ** 63, 9]))
    assert q.get(0) == (1, 2, 3, 4) and q.get(0) == (U64_MAX, 0, 2 ** 63, 9)
    q.post_many([(5, 6, 7, 8), (9, 10, 11, 12)])
    out = make([99] * 12)
    assert q.get_into(out, 0) == 2
    assert list(memoryview(out).cast("B").cast("Q")) == [5, 6, 7, 8, 9, 10, 11, 12, 99, 99, 99, 99]


def test_numpy_uint64_arrays(core):
    np = pytest.importorskip("numpy")
    table = core.HandleTable()
    buf = np.zeros(10, dtype=np.uint64)
    assert table.create_into(buf, "n") == 10
    assert buf.tolist() == table.handles()
    assert table.close_from(buf[:4]) == 4                   # a contiguous slice is fine
    ro = buf[4:].copy()
    ro.flags.writeable = False
    assert table.close_from(ro) == 6 and len(table) == 0
    for bad in (np.zeros(10, dtype=np.uint32), np.zeros(10, dtype=np.int64),
                np.zeros(10, dtype=">u8" if sys.byteorder == "little" else "<u8"),
                np.zeros(20, dtype=np.uint64)[::2], np.zeros((2, 4), dtype=np.uint64)):
        with pytest.raises(TypeError, match="argument 'buf'"):
            table.create_into(bad)
    with pytest.raises(TypeError, match="writable"):
        table.create_into(ro)
    q = core.CompletionQueue()
    q.post_from(np.arange(8, dtype=np.uint64))
    out = np.full(8, 7, dtype=np.uint64)
    assert q.get_into(out, 0) == 2 and out.tolist() == list(range(8))


def test_create_into_beyond_the_room_is_enobufs_and_creates_nothing(core):
    table = core.HandleTable(max_handles=10)
    first = table.create_many(7, "old")
    buf = array("Q", [42] * 4)
    with pytest.raises(WinsockError) as e:
        table.create_into(buf, "new")
    assert_winsock(e, WSAENOBUFS)
    assert buf.tolist() == [42] * 4 and len(table) == 7 and table.handles() == first
    assert table.create_into(buf[:3], "new") == 3 and len(table) == 10
    with pytest.raises(WinsockError) as e:
        table.create_into(zeros(1))
    assert_winsock(e, WSAENOBUFS)
    assert table.create_into(zeros(0)) == 0                  # empty: nothing to fit


def test_failed_create_into_does_not_leak_the_context(core):
    table = core.HandleTable(max_handles=2)
    ctx = Ctx()
    before = sys.getrefcount(ctx)
    for _ in range(50):
        with pytest.raises(WinsockError):
            table.create_into(zeros(3), ctx)
    assert sys.getrefcount(ctx) == before and len(table) == 0


def test_close_from_skips_unknown_stale_and_duplicate_handles(core):
    table = core.HandleTable()
    live = table.create_many(4, "x")
    stale = table.create_many(2, "y")
    assert table.close_many(stale) == 2
    buf = array("Q", [live[0], 0, 1, stale[0], live[1], live[1], U64_MAX, 2 ** 63, live[3],
                      live[0] + 1])
    assert table.close_from(buf) == 3
    assert table.handles() == [live[2]]
    assert table.close_from(buf) == 0
    assert table.close_from(zeros(0)) == 0
    assert table.close_from(misaligned(0)) == 0
    assert buf.tolist()[0] == live[0]                        # read, never written


def test_close_from_reads_read_only_buffers(core):
    table = core.HandleTable()
    handles = table.create_many(6)
    raw = array("Q", handles).tobytes()
    assert table.close_from(memoryview(raw).cast("Q")) == 6          # bytes: read-only
    handles = table.create_many(3)
    assert table.close_from(memoryview(array("Q", handles)).toreadonly()) == 3
    assert len(table) == 0


def test_contexts_are_released_by_close_from(core):
    table = core.HandleTable()
    ctx = Ctx()
    ref = weakref.ref(ctx)
    buf = zeros(300)
    table.create_into(buf, ctx)
    del ctx
    gc.collect()
    assert ref() is not None
    assert table.close_from(buf) == 300
    gc.collect()
    assert ref() is None


def test_a_context_dying_in_close_from_may_use_the_table_and_the_buffer(core):
    # The contexts die after the table's lock and the buffer's export are
    # given back: a __del__ can create handles and even grow the array.
    table = core.HandleTable()
    buf = zeros(3)
    seen = []

    class Reentrant:
        def __del__(self):
            buf.append(table.create("from __del__"))
            seen.append(len(table))

    table.create_into(buf, Reentrant())
    assert table.close_from(buf) == 3
    gc.collect()
    assert seen == [1] and len(buf) == 4 and table.query(buf[3]) == "from __del__"


# ------------------------------------------------------- CompletionQueue
def test_post_from_then_get_and_post_many_then_get_into(core):
    q = core.CompletionQueue()
    packets = packets_of(10)
    assert q.post_from(flat(packets)) is None
    assert len(q) == 10
    assert [q.get(0) for _ in range(10)] == packets
    q.post_many(packets)
    out = zeros(40)
    assert q.get_into(out, 0) == 10 and out.tolist() == flat(packets).tolist()
    assert len(q) == 0


def test_post_from_interleaves_with_post_in_fifo_order(core):
    q = core.CompletionQueue()
    q.post(1, 1, 1, 1)
    q.post_from(flat([(2, 2, 2, 2), (3, 3, 3, 3)]))
    q.post(4, 4, 4, 4)
    assert q.get_many(10, 0) == [(i, i, i, i) for i in range(1, 5)]


def test_get_into_takes_up_to_len_over_4_and_leaves_the_rest_untouched(core):
    q = core.CompletionQueue()
    q.post_many(packets_of(5))
    out = array("Q", [99] * 12)
    assert q.get_into(out, 0) == 3
    assert out.tolist() == flat(packets_of(3)).tolist()
    out = array("Q", [99] * 16)
    assert q.get_into(out) == 2                                # packets there: no wait
    assert out.tolist() == flat(packets_of(2, 3)).tolist() + [99] * 8
    assert q.get_into(out, 0) == 0 and out[0] == packets_of(1, 3)[0][0]


def test_get_into_times_out_with_0(core):
    q = core.CompletionQueue()
    out = array("Q", [5] * 8)
    assert q.get_into(out, 0) == 0
    start = time.monotonic()
    assert q.get_into(out, 0.05) == 0
    assert time.monotonic() - start >= 0.04
    assert out.tolist() == [5] * 8


@pytest.mark.parametrize("items", [0, 1, 2, 3, 5, 6, 7, 9])
def test_lengths_that_are_not_whole_packets_are_einval(core, items):
    q = core.CompletionQueue()
    q.post(1, 2, 3, 4)
    out = array("Q", [8] * items)
    with pytest.raises(WinsockError) as e:
        q.get_into(out, 0)
    assert_winsock(e, WSAEINVAL)
    assert len(q) == 1 and out.tolist() == [8] * items         # nothing taken
    if items:
        with pytest.raises(WinsockError) as e:
            q.post_from(out)
        assert_winsock(e, WSAEINVAL)
        assert len(q) == 1                                    # nothing posted
    else:
        assert q.post_from(out) is None and len(q) == 1       # empty: posts nothing


@pytest.mark.parametrize("timeout, exc", [(-1, WinsockError), (float("nan"), WinsockError),
                                          (float("inf"), WinsockError), ("1", TypeError),
                                          (b"1", TypeError), ([], TypeError)])
def test_get_into_checks_the_timeout_before_any_work(core, timeout, exc):
    q = core.CompletionQueue()
    q.post(1, 2, 3, 4)
    out = zeros(4)
    with pytest.raises(exc) as e:
        q.get_into(out, timeout)
    if exc is WinsockError:
        assert_winsock(e, WSAEINVAL)
    assert len(q) == 1 and out.tolist() == [0] * 4


def test_buffer_errors_come_before_size_and_timeout_errors(core):
    q = core.CompletionQueue()
    with pytest.raises(TypeError, match="argument 'buf'"):
        q.get_into(array("i", [0] * 3), -1)
    with pytest.raises(TypeError, match="writable"):
        q.get_into(memoryview(zeros(3)).toreadonly(), "x")
    with pytest.raises(WinsockError) as e:
        q.get_into(zeros(3), "x")                             # size before timeout
    assert_winsock(e, WSAEINVAL)


def test_closed_queue_refuses_post_from_and_get_into_returns_0(core):
    q = core.CompletionQueue()
    q.post_from(flat(packets_of(2)))
    assert q.close() == packets_of(2)
    for buf in (flat(packets_of(1)), zeros(0)):                # as post_many([]) does
        with pytest.raises(WinsockError) as e:
            q.post_from(buf)
        assert_winsock(e, WSA_INVALID_HANDLE)
    out = array("Q", [3] * 8)
    assert q.get_into(out) == 0 and q.get_into(out, 0) == 0     # never blocks once closed
    assert out.tolist() == [3] * 8
    with pytest.raises(TypeError):                             # the buffer is checked first
        q.post_from(array("d", [0.0] * 4))


def test_blocked_get_into_is_woken_by_a_post_and_releases_the_gil(core):
    q = core.CompletionQueue()
    out = array("Q", [0] * 16)
    worker = Worker(q.get_into, out, 8)
    worker.start()
    wait_parked(1, core)
    n, elapsed = spin_python_for(0.1)
    assert n > 1000 and elapsed < 4
    q.post_from(flat(packets_of(1)))
    assert worker.finish() == 1
    assert out.tolist()[:4] == list(packets_of(1)[0]) and out.tolist()[4:] == [0] * 12
    out.append(1)                                              # the export was given back


def test_blocked_get_into_returns_0_on_close_and_on_wake_waiters(core):
    q = core.CompletionQueue()
    worker = Worker(q.get_into, zeros(4), 8)
    worker.start()
    wait_parked(1, core)
    assert q.wake_waiters() == 1
    assert worker.finish() == 0
    worker = Worker(q.get_into, zeros(8), 8)
    worker.start()
    wait_parked(1, core)
    q.close()
    assert worker.finish() == 0


@pytest.mark.parametrize("make", [zeros, misaligned], ids=["aligned", "misaligned"])
def test_blocked_get_into_gets_the_handed_packet_and_what_follows(core, make):
    q = core.CompletionQueue()
    out = make(4 * 8)
    worker = Worker(q.get_into, out, 8)
    worker.start()
    wait_parked(1, core)
    q.post_from(flat(packets_of(5)))
    n = worker.finish()
    assert 1 <= n <= 5
    assert out.tolist()[:4 * n] == flat(packets_of(n)).tolist()
    assert q.get_many(10, 0) == packets_of(5)[n:]


# ---------------------------------------------------------- bad buffers
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind, make", WRONG_BUFFERS, ids=[w[0] for w in WRONG_BUFFERS])
def test_wrong_item_type_or_shape_is_a_type_error_naming_the_argument(core, method, kind, make):
    call = bound(core, method)
    buf = make()
    with pytest.raises(TypeError, match=rf"^{method}\(\) argument 'buf' must "):
        call(buf)
    assert len(call.__self__) == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", NOT_BUFFERS, ids=repr)
def test_non_buffers_are_a_type_error_naming_the_type(core, method, bad):
    with pytest.raises(TypeError, match=rf"argument 'buf' must be a buffer of unsigned "
                                        rf"64-bit integers, not {type(bad).__name__}$"):
        bound(core, method)(bad)


@pytest.mark.parametrize("method", sorted(WRITES))
def test_read_only_buffers_are_refused_where_the_call_writes(core, method):
    call = bound(core, method)
    if method == "get_into":
        call.__self__.post(1, 2, 3, 4)
    for ro in (memoryview(zeros(4)).toreadonly(), memoryview(bytes(32)).cast("Q")):
        with pytest.raises(TypeError, match=rf"^{method}\(\) argument 'buf' must be a "
                                            r"writable buffer$"):
            call(ro)
    assert len(call.__self__) == (1 if method == "get_into" else 0)


def test_both_cores_give_the_same_errors(both_cores):
    cases = [b for _, b in WRONG_BUFFERS] + [lambda b=b: b for b in NOT_BUFFERS] + [
        lambda: memoryview(zeros(4)).toreadonly(), lambda: zeros(3), lambda: zeros(0)]
    for make in cases:
        for method in METHODS:
            answers = []
            for core in both_cores:
                try:
                    answers.append(("ok", bound(core, method)(make())))
                except Exception as exc:  # noqa: BLE001 -- compared, not swallowed
                    answers.append((type(exc).__name__, str(exc)))
            assert answers[0] == answers[1], (method, answers)


# ------------------------------------------------------ buffer lifetime
def test_the_buffer_is_given_back_after_every_outcome(core):
    table, q = core.HandleTable(max_handles=4), core.CompletionQueue()
    buf = zeros(4)

    def grows():
        buf.append(0)
        buf.pop()

    table.create_into(buf)
    grows()
    table.close_from(buf)
    grows()
    with pytest.raises(WinsockError):
        table.create_into(zeros(5))                           # WSAENOBUFS
    table.create_many(4)
    with pytest.raises(WinsockError):
        table.create_into(buf)
    grows()
    q.post_from(buf)
    grows()
    assert q.get_into(buf, 0) == 1
    grows()
    assert q.get_into(buf, 0) == 0                             # timeout
    grows()
    with pytest.raises(WinsockError):
        q.get_into(buf, -1)
    grows()
    odd = zeros(3)
    with pytest.raises(WinsockError):
        q.post_from(odd)
    odd.append(0)
    q.close()
    with pytest.raises(WinsockError):
        q.post_from(buf)
    grows()


def test_the_buffer_cannot_be_resized_during_a_blocked_get_into(core):
    q = core.CompletionQueue()
    out = zeros(8)
    worker = Worker(q.get_into, out, 8)
    worker.start()
    wait_parked(1, core)
    with pytest.raises(BufferError):
        out.append(0)                                          # still exported by the call
    q.post(1, 2, 3, 4)
    assert worker.finish() == 1
    out.append(0)
    assert out.tolist() == [1, 2, 3, 4, 0, 0, 0, 0, 0]


# ------------------------------------------------------------ big buffers
def test_big_buffers_round_trip(core):
    table, twin = core.HandleTable(), core.HandleTable()
    buf = zeros(BIG)
    assert table.create_into(buf, "big") == BIG
    assert buf.tolist() == twin.create_many(BIG, "big")
    assert len(set(buf)) == BIG
    assert table.close_from(buf) == BIG and len(table) == 0
    assert table.create_into(misaligned(BIG), "big") == BIG   # through the aligned copy
    assert table.close_from(memoryview(array("Q", table.handles())).toreadonly()) == BIG

    q = core.CompletionQueue()
    packets = packets_of(BIG)
    q.post_from(flat(packets))
    assert len(q) == BIG
    out = zeros(4 * BIG + 4)
    assert q.get_into(out, 0) == BIG
    assert out.tolist()[:4 * BIG] == flat(packets).tolist()
    q.post_from(flat(packets))
    assert q.get_many(BIG, 0) == packets
    q.post_many(packets)
    odd = misaligned(4 * BIG)
    assert q.get_into(odd, 0) == BIG and odd.tolist() == flat(packets).tolist()
    q.post_from(odd)
    assert q.get_into(zeros(4 * NOGIL_BATCH), 0) == NOGIL_BATCH
    assert len(q) == BIG - NOGIL_BATCH


# ----------------------------------------------------------------- threads
def test_threads_sharing_one_table(core):
    table = core.HandleTable()
    errors = []

    def work(seed):
        ctx = Ctx()
        rounds = 0
        for i in range(60):
            n = (7, 64, NOGIL_BATCH, 1000)[(seed + i) % 4]
            buf = zeros(n)
            if table.create_into(buf, ctx) != n:
                errors.append("short create")
            handles = buf.tolist()
            if len(set(handles)) != n or any(table.query(h) is not ctx for h in handles):
                errors.append("a handle of this batch names another thread's context")
            if table.close_from(buf) != n or table.close_from(buf) != 0:
                errors.append("closed the wrong number")
            rounds += 1
        return rounds

    workers = [Worker(work, s) for s in range(4)]
    for w in workers:
        w.start()
    assert [w.finish(60) for w in workers] == [60] * 4
    assert errors == [] and len(table) == 0


def test_threads_sharing_one_queue_lose_and_duplicate_nothing(core):
    q = core.CompletionQueue()
    producers, per_producer, batch = 3, 3000, 50           # 150 packets a post_from
    total = producers * per_producer
    got = []
    got_lock = threading.Lock()
    done = threading.Event()

    def produce(p):
        for start in range(0, per_producer, batch):
            q.post_from(flat([(p, 0, start + i, 7) for i in range(batch)]))
            if start % (10 * batch) == 0:
                time.sleep(0)

    def consume(size):
        out = zeros(4 * size)
        mine = []
        while not done.is_set():
            n = q.get_into(out, 0.01)
            values = out.tolist()
            taken = [tuple(values[4 * i:4 * i + 4]) for i in range(n)]
            mine.extend(taken)
            with got_lock:
                got.extend(taken)
                if len(got) >= total:
                    done.set()
        return mine

    consumers = [Worker(consume, size) for size in (1, 16, 64, NOGIL_BATCH + 44)]
    for w in consumers:
        w.start()
    makers = [Worker(produce, p) for p in range(producers)]
    for w in makers:
        w.start()
    for w in makers:
        w.finish(60)
    assert done.wait(60), f"only {len(got)} of {total} packets came out"
    seen = [w.finish(60) for w in consumers]
    assert sorted(got) == sorted((p, 0, k, 7) for p in range(producers)
                                 for k in range(per_producer))
    for mine in seen:                       # each consumer saw each producer in order
        for p in range(producers):
            keys = [k for (pp, _, k, _) in mine if pp == p]
            assert keys == sorted(keys)
    assert len(q) == 0
