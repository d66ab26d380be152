"""Benchmarks of wsp's core, each group putting the compiled core next to the
structures a user would pick instead, measured in the same run.

Run (see BENCHMARKS.md)::

    python -m pytest bench -q --benchmark-only --benchmark-json=bench-results.json
    python bench/report.py bench-results.json

With ``--benchmark-disable`` every test runs its timed function once and
checks the result, which keeps the benchmark code working in CI.

Per-operation numbers: every timed function does many operations per call
(a loop of ``N`` calls, or whole batches) so that the timer's resolution and
the cost of calling the timed function vanish; ``extra_info["ops"]`` records
how many and ``report.py`` divides by it.  Entries that are compared with
each other run *the same function object* (same bytecode, same loop) with
different callables plugged in, so the loop overhead is identical on both
sides.  Where a peer needs different user code -- SimpleQueue and deque take
one object, so the 4-tuple is built at the call; a table without batch calls
needs a loop -- the timed function is what that user would write, no more.

Paired reference rounds: this machine (2 shared vCPUs) has phases of a
second or more in which *everything* runs 1.4-2x slower.  pytest-benchmark
measures one entry after the other, so a phase can cover one entry and not
the next and skew their ratio.  So before every round of every entry, the
group's reference workload runs one round too (in the untimed setup, timed
by ``measure`` itself); its statistics are stored in ``extra_info`` and
``report.py`` shows the *paired ratio* -- entry median / median of the
reference rounds interleaved with it -- next to the plain ratio between
entries.  Both sides of a paired ratio ran in the same phases.

``extra_info["role"]``: ``reference`` (what the group's ratios are relative
to), ``subject`` (wsp's compiled core), ``peer`` (what a user would use
instead, or wsp's pure twin) or ``diagnostic`` (decomposes a cost; no target
depends on it).  Each entry runs about ``WSP_BENCH_SECONDS`` (default 0.5)
seconds of timed rounds.
"""
from __future__ import annotations

import collections
import operator
import queue
from array import array

import pytest
from peers import DictHandleTable, GenSlotTable  # bench/peers.py

from harness import REFERENCES, Reference, measure, tag  # bench/harness.py
from wsp import _core, _core_py
from wsp.microbench import (create_each_close_each, create_into_close_from,  # shared with
                            post_from_get_into, post_many_get_many,  # wsp bench
                            put_each_get_each)

N = 1000                 # calls per timed call in the per-call and cycle groups
BATCH = 1024             # handles per create_many / close_many
BIG = 1 << 34            # a value in the range of real handles (a 2-digit int)

# The four packet values used on every side of the queue groups.  512 and
# 123456 are outside CPython's small-int cache, as real byte counts and
# OVERLAPPED ids are; the diagnostic entries use cached values instead.
STATUS, NBYTES, KEY, OV = 0, 512, 7, 123456
SMALL_NBYTES, SMALL_OV = 100, 200
PACKETS = [(STATUS, NBYTES, KEY, OV + i) for i in range(64)]
SMALL_PACKETS = [(STATUS, SMALL_NBYTES, KEY, i) for i in range(64)]
REPS = range(16)         # 16 batches of 64 = 1024 packets per timed call
PACKET_ITEMS = [v for p in PACKETS for v in p]      # PACKETS as the items of a buffer
BUFFER_SIZES = {"64": (64, REPS), "1024": (1024, range(1))}   # handles per call, calls

CONTEXT = object()       # the context stored under every handle

TABLES = {
    "wsp._core": _core.HandleTable,
    "wsp._core_py": _core_py.HandleTable,
    "DictHandleTable": DictHandleTable,
    "GenSlotTable": GenSlotTable,
}
ROLE = {"wsp._core": "subject", "wsp._core_py": "peer",
        "DictHandleTable": "peer", "GenSlotTable": "peer"}


# ------------------------------------------------------------ timed functions
# Shared by every entry of a group, so that only the callables differ.

def call_each(f, items):
    """The per-call loop: one call of `f` per item, result dropped."""
    for x in items:
        f(x)


def cycle_each(create, query, close, contexts):
    """create + query + close of one handle at a time."""
    for c in contexts:
        h = create(c)
        query(h)
        close(h)


def batch_core(create_many, close_many, n, context):
    return close_many(create_many(n, context))


def batch_by_hand(create, close, n, context):
    """What a user of a table without batch calls writes instead."""
    hs = [create(context) for _ in range(n)]
    for h in hs:
        close(h)
    return len(hs)


def post_get_each(post, get, nbytes, ov, rng):
    for _ in rng:
        post(STATUS, nbytes, KEY, ov)
        p = get()
    return p


def put_get_each(put, get, nbytes, ov, rng):
    """SimpleQueue / deque: the tuple is built at the call, as user code does."""
    for _ in rng:
        put((STATUS, nbytes, KEY, ov))
        p = get()
    return p


def extend_popleft(extend, popleft, packets, reps):
    """deque's idiomatic batch: extend in, a list of poplefts out."""
    r = range(len(packets))
    for _ in reps:
        extend(packets)
        got = [popleft() for _ in r]
    return got


def many_each_batch(create_many, close_many, n, context, reps):
    """The list forms, batch for batch like create_into_close_from."""
    for _ in reps:
        closed = close_many(create_many(n, context))
    return closed


def build_tuples(cols, reps):
    for _ in reps:
        got = list(zip(*cols))
    return got


# ------------------------------------------------------------------- helpers
def fresh_ints(n=N):
    """`n` new int objects in the range of real handles."""
    return list(range(BIG, BIG + 4 * n, 4))


def new_table(name):
    t = TABLES[name]()
    # Grow the table once so that no round pays for first-time allocation:
    # every round then starts from N free slots and no live handle.
    reset(t, [t.create(CONTEXT) for _ in range(N)])
    assert len(t) == 0
    return t


def reset(t, handles=None):
    """Close `handles` (default: every live handle) without timing it."""
    if handles is None:
        handles = t.handles()
    close_many = getattr(t, "close_many", None)
    if close_many is not None:
        close_many(handles)
    else:
        for h in handles:
            t.close(h)


def _floor_ref(make_items):
    f = _core._CallFloor().call
    return Reference("call floor", N, call_each, lambda: (f, make_items()))


def _cycle_ref():
    t = new_table("wsp._core")
    contexts = [CONTEXT] * N
    return Reference("wsp._core", N, cycle_each,
                     lambda: (t.create, t.query, t.close, contexts))


def _batch_ref():
    t = new_table("wsp._core")
    return Reference("wsp._core", BATCH, batch_core,
                     lambda: (t.create_many, t.close_many, BATCH, CONTEXT))


def _queue_one_ref():
    q = queue.SimpleQueue()
    return Reference("SimpleQueue", N, put_get_each,
                     lambda: (q.put, q.get, NBYTES, OV, range(N)))


def _queue_batch_ref():
    q = queue.SimpleQueue()
    return Reference("SimpleQueue", len(PACKETS) * len(REPS), put_each_get_each,
                     lambda: (q.put, q.get, PACKETS, REPS))


def _buffer_handles_ref(size):
    n, reps = BUFFER_SIZES[size]
    t = new_table("DictHandleTable")
    return Reference("DictHandleTable", n * len(reps), create_each_close_each,
                     lambda: (t.create, t.close, n, CONTEXT, reps))


REFERENCES.update({
    "buffer-handles64": lambda: _buffer_handles_ref("64"),
    "buffer-handles1024": lambda: _buffer_handles_ref("1024"),
    "buffer-queue64": _queue_batch_ref,
    "call-floor+create": lambda: _floor_ref(lambda: [CONTEXT] * N),
    "call-floor+query": lambda: _floor_ref(fresh_ints),
    "call-floor+close": lambda: _floor_ref(fresh_ints),
    "diag-int-alloc": lambda: _floor_ref(fresh_ints),
    "cycle": _cycle_ref,
    "batch-handles": _batch_ref,
    "queue-one": _queue_one_ref,
    "queue-batch64": _queue_batch_ref,
})


# ------------------------------------------------- per call: create/query/close
# Reference: the no-op Cython method wsp._core._CallFloor().call, driven by
# the same call_each loop over the same kind of argument.

def floor_entry(benchmark, group, make_items):
    f = _core._CallFloor().call
    tag(benchmark, "call floor", "reference", N, "call",
        "_CallFloor().call(x): a no-op Cython method")
    measure(benchmark, group, call_each, setup=lambda: ((f, make_items()), {}))


@pytest.mark.benchmark(group="call-floor+create")
def test_create_floor(benchmark):
    floor_entry(benchmark, "call-floor+create", lambda: [CONTEXT] * N)


@pytest.mark.benchmark(group="call-floor+create")
@pytest.mark.parametrize("impl", list(TABLES))
def test_create(benchmark, impl):
    t = new_table(impl)
    contexts = [CONTEXT] * N
    tag(benchmark, impl, ROLE[impl], N, "call", "create(context)")

    def setup():
        reset(t)                  # close what the previous round created
        return (t.create, contexts), {}

    measure(benchmark, "call-floor+create", call_each, setup=setup)
    assert len(t) == N            # the last round's handles are still live
    assert all(t.query(h) is CONTEXT for h in t.handles())


@pytest.mark.benchmark(group="call-floor+query")
def test_query_floor(benchmark):
    floor_entry(benchmark, "call-floor+query", fresh_ints)


@pytest.mark.benchmark(group="call-floor+query")
@pytest.mark.parametrize("impl", list(TABLES))
def test_query(benchmark, impl):
    t = new_table(impl)
    hs = [t.create(CONTEXT) for _ in range(N)]
    tag(benchmark, impl, ROLE[impl], N, "call", "query(handle)")
    measure(benchmark, "call-floor+query", call_each, args=(t.query, hs))
    assert len(t) == N and t.query(hs[-1]) is CONTEXT


@pytest.mark.benchmark(group="call-floor+close")
def test_close_floor(benchmark):
    floor_entry(benchmark, "call-floor+close", fresh_ints)


@pytest.mark.benchmark(group="call-floor+close")
@pytest.mark.parametrize("impl", list(TABLES))
def test_close(benchmark, impl):
    t = new_table(impl)

    def setup():
        assert len(t) == 0        # the previous round closed everything
        return (t.close, [t.create(CONTEXT) for _ in range(N)]), {}

    tag(benchmark, impl, ROLE[impl], N, "call", "close(handle)")
    measure(benchmark, "call-floor+close", call_each, setup=setup)
    assert len(t) == 0


# Diagnostic: what allocating the returned int costs, with a builtin call of
# the same shape.  operator.pos(h) returns h itself; operator.neg(h) returns
# a new 2-digit int, as create() must.  neg - pos = one int alloc + free.
@pytest.mark.benchmark(group="diag-int-alloc")
@pytest.mark.parametrize("impl, func", [("call floor", None),
                                        ("operator.pos(h)", operator.pos),
                                        ("operator.neg(h)", operator.neg)],
                         ids=["floor", "pos", "neg"])
def test_int_alloc(benchmark, impl, func):
    f = _core._CallFloor().call if func is None else func
    notes = {"call floor": "_CallFloor().call(h): returns h",
             "operator.pos(h)": "builtin, returns h itself",
             "operator.neg(h)": "builtin, allocates a new 2-digit int"}
    tag(benchmark, impl, "reference" if func is None else "diagnostic", N, "call",
        notes[impl])
    hs = fresh_ints()
    measure(benchmark, "diag-int-alloc", call_each, args=(f, hs))


# ------------------------------------------------------------------- cycle
@pytest.mark.benchmark(group="cycle")
@pytest.mark.parametrize("impl", list(TABLES))
def test_cycle(benchmark, impl):
    t = new_table(impl)
    contexts = [CONTEXT] * N
    tag(benchmark, impl, "reference" if impl == "wsp._core" else "peer", N, "cycle",
        "h = create(c); query(h); close(h)")
    measure(benchmark, "cycle", cycle_each, args=(t.create, t.query, t.close, contexts))
    assert len(t) == 0


# ------------------------------------------------------------- batch-handles
@pytest.mark.benchmark(group="batch-handles")
@pytest.mark.parametrize("impl", ["wsp._core", "wsp._core_py"])
def test_batch_handles(benchmark, impl):
    t = new_table(impl)
    tag(benchmark, impl, "reference" if impl == "wsp._core" else "peer", BATCH,
        "handle", f"close_many(create_many({BATCH}, c))")
    closed = measure(benchmark, "batch-handles", batch_core,
                     args=(t.create_many, t.close_many, BATCH, CONTEXT))
    assert closed == BATCH and len(t) == 0


@pytest.mark.benchmark(group="batch-handles")
def test_batch_handles_dict(benchmark):
    t = new_table("DictHandleTable")
    tag(benchmark, "DictHandleTable", "peer", BATCH, "handle",
        f"[create(c) for _ in range({BATCH})], then close() each")
    closed = measure(benchmark, "batch-handles", batch_by_hand,
                     args=(t.create, t.close, BATCH, CONTEXT))
    assert closed == BATCH and len(t) == 0


@pytest.mark.benchmark(group="batch-handles")
def test_batch_create_part(benchmark):
    # Diagnostic: create_many alone (the handles are closed, untimed, before
    # the next round).
    t = new_table("wsp._core")
    tag(benchmark, "wsp._core create_many only", "diagnostic", BATCH, "handle",
        f"create_many({BATCH}, c); closed untimed")

    def setup():
        reset(t)
        return (BATCH, CONTEXT), {}

    hs = measure(benchmark, "batch-handles", t.create_many, setup=setup)
    assert len(hs) == BATCH == len(t)
    reset(t)


@pytest.mark.benchmark(group="batch-handles")
def test_batch_close_part(benchmark):
    # Diagnostic: close_many alone (the handles are created untimed).
    t = new_table("wsp._core")
    tag(benchmark, "wsp._core close_many only", "diagnostic", BATCH, "handle",
        f"close_many(list of {BATCH}); created untimed")
    closed = measure(benchmark, "batch-handles", t.close_many,
                     setup=lambda: ((t.create_many(BATCH, CONTEXT),), {}))
    assert closed == BATCH and len(t) == 0


@pytest.mark.benchmark(group="batch-handles")
def test_batch_int_list_floor(benchmark):
    # Diagnostic: the least any create_many returning a list of fresh ints
    # can cost -- build a list of BATCH new 2-digit ints in C, then free it.
    tag(benchmark, "floor: list of fresh ints", "diagnostic", BATCH, "handle",
        f"list(range(2**34, ...)) of {BATCH} ints, then freed")
    n = measure(benchmark, "batch-handles", lambda: len(fresh_ints(BATCH)))
    assert n == BATCH


# ----------------------------------------------------------------- queue-one
def _queue_one(benchmark, impl, role, timed, put, get, nbytes, ov, note):
    tag(benchmark, impl, role, N, "packet", note)
    p = measure(benchmark, "queue-one", timed, args=(put, get, nbytes, ov, range(N)))
    assert p == (STATUS, nbytes, KEY, ov)


@pytest.mark.benchmark(group="queue-one")
@pytest.mark.parametrize("impl", ["wsp._core", "wsp._core_py"])
def test_queue_one(benchmark, impl):
    mod = _core if impl == "wsp._core" else _core_py
    q = mod.CompletionQueue()
    _queue_one(benchmark, impl, ROLE[impl], post_get_each, q.post, q.get, NBYTES, OV,
               f"post({STATUS}, {NBYTES}, {KEY}, {OV}); get()")
    assert len(q) == 0


@pytest.mark.benchmark(group="queue-one")
def test_queue_one_small_ints(benchmark):
    # Diagnostic: the same with values in CPython's small-int cache, so get()
    # builds its tuple without allocating any int.
    q = _core.CompletionQueue()
    _queue_one(benchmark, "wsp._core, cached ints", "diagnostic", post_get_each,
               q.post, q.get, SMALL_NBYTES, SMALL_OV,
               f"post({STATUS}, {SMALL_NBYTES}, {KEY}, {SMALL_OV}); get()")
    assert len(q) == 0


@pytest.mark.benchmark(group="queue-one")
def test_queue_one_simplequeue(benchmark):
    q = queue.SimpleQueue()
    _queue_one(benchmark, "SimpleQueue", "reference", put_get_each, q.put, q.get,
               NBYTES, OV, f"put(({STATUS}, {NBYTES}, {KEY}, {OV})); get()")
    assert q.empty()


@pytest.mark.benchmark(group="queue-one")
def test_queue_one_deque(benchmark):
    q = collections.deque()
    _queue_one(benchmark, "deque", "peer", put_get_each, q.append, q.popleft,
               NBYTES, OV, f"append(({STATUS}, {NBYTES}, {KEY}, {OV})); popleft()")
    assert not q


# ------------------------------------------------------------- queue-batch64
def _queue_batch(benchmark, impl, role, timed, put, get, packets, note):
    tag(benchmark, impl, role, len(packets) * len(REPS), "packet", note)
    got = measure(benchmark, "queue-batch64", timed, args=(put, get, packets, REPS))
    assert got == packets


@pytest.mark.benchmark(group="queue-batch64")
@pytest.mark.parametrize("impl", ["wsp._core", "wsp._core_py"])
def test_queue_batch(benchmark, impl):
    mod = _core if impl == "wsp._core" else _core_py
    q = mod.CompletionQueue()
    _queue_batch(benchmark, impl, ROLE[impl], post_many_get_many, q.post_many, q.get_many,
                 PACKETS, "post_many(64 packets); get_many(64)")
    assert len(q) == 0


@pytest.mark.benchmark(group="queue-batch64")
def test_queue_batch_small_ints(benchmark):
    # Diagnostic: packets whose values are all cached small ints.
    q = _core.CompletionQueue()
    _queue_batch(benchmark, "wsp._core, cached ints", "diagnostic", post_many_get_many,
                 q.post_many, q.get_many, SMALL_PACKETS,
                 "post_many(64 packets); get_many(64), all values < 257")
    assert len(q) == 0


@pytest.mark.benchmark(group="queue-batch64")
def test_queue_batch_simplequeue(benchmark):
    q = queue.SimpleQueue()
    _queue_batch(benchmark, "SimpleQueue", "reference", put_each_get_each, q.put, q.get,
                 PACKETS, "64 x put(p); [get() for 64]")
    assert q.empty()


@pytest.mark.benchmark(group="queue-batch64")
def test_queue_batch_deque(benchmark):
    q = collections.deque()
    _queue_batch(benchmark, "deque", "peer", extend_popleft, q.extend, q.popleft,
                 PACKETS, "extend(64 packets); [popleft() for 64]")
    assert not q


@pytest.mark.benchmark(group="queue-batch64")
def test_queue_batch_tuple_floor(benchmark):
    # Diagnostic: the least any get_many returning fresh tuples can cost --
    # build a list of 64 new 4-tuples in C (zip) from existing int objects
    # (no int is allocated), then free it; 16 times, like the entries above.
    cols = [list(col) for col in zip(*PACKETS)]
    tag(benchmark, "floor: 64 fresh 4-tuples", "diagnostic", len(PACKETS) * len(REPS),
        "packet", "list(zip(4 columns)) of 64 tuples, ints shared, then freed")
    got = measure(benchmark, "queue-batch64", build_tuples, args=(cols, REPS))
    assert got == PACKETS


# ------------------------------------------ buffer forms: no object per item
# create_into + close_from of 64 (and 1024) handles per call with one
# array('Q'), per handle, next to the list forms doing the same batches and
# the dict table a user would write; post_from + get_into of 64 packets per
# call, per packet, next to SimpleQueue putting and getting the same 64
# prebuilt tuples.  The reference is the peer each target is measured
# against (SPEC §5 buffer forms).

# One group per batch size: the parameter carries its group.
SIZE_PARAMS = [pytest.param(size, id=size,
                            marks=pytest.mark.benchmark(group=f"buffer-handles{size}"))
               for size in BUFFER_SIZES]


def _buffer_handles(benchmark, size, impl, role, timed, args, note):
    n, reps = BUFFER_SIZES[size]
    tag(benchmark, impl, role, n * len(reps), "handle", note)
    closed = measure(benchmark, f"buffer-handles{size}", timed, args=args)
    assert closed == n


@pytest.mark.parametrize("size", SIZE_PARAMS)
@pytest.mark.parametrize("impl", ["wsp._core", "wsp._core_py"])
def test_buffer_handles(benchmark, size, impl):
    n, reps = BUFFER_SIZES[size]
    t = new_table(impl)
    buf = array("Q", bytes(8 * n))
    _buffer_handles(benchmark, size, impl, ROLE[impl], create_into_close_from,
                    (t.create_into, t.close_from, buf, CONTEXT, reps),
                    f"{len(reps)} x create_into(array('Q') of {n}, c); close_from(it)")
    assert len(t) == 0 and len(set(buf)) == n


@pytest.mark.parametrize("size", SIZE_PARAMS)
def test_buffer_handles_list_forms(benchmark, size):
    n, reps = BUFFER_SIZES[size]
    t = new_table("wsp._core")
    _buffer_handles(benchmark, size, "wsp._core list forms", "peer", many_each_batch,
                    (t.create_many, t.close_many, n, CONTEXT, reps),
                    f"{len(reps)} x close_many(create_many({n}, c))")
    assert len(t) == 0


@pytest.mark.parametrize("size", SIZE_PARAMS)
def test_buffer_handles_dict(benchmark, size):
    n, reps = BUFFER_SIZES[size]
    t = new_table("DictHandleTable")
    _buffer_handles(benchmark, size, "DictHandleTable", "reference", create_each_close_each,
                    (t.create, t.close, n, CONTEXT, reps),
                    f"{len(reps)} x [create(c) for _ in range({n})], then close() each")
    assert len(t) == 0


def _buffer_queue(benchmark, impl, role, timed, args, note, check):
    tag(benchmark, impl, role, len(PACKETS) * len(REPS), "packet", note)
    check(measure(benchmark, "buffer-queue64", timed, args=args))


@pytest.mark.benchmark(group="buffer-queue64")
@pytest.mark.parametrize("impl", ["wsp._core", "wsp._core_py"])
def test_buffer_queue(benchmark, impl):
    q = (_core if impl == "wsp._core" else _core_py).CompletionQueue()
    packets = array("Q", PACKET_ITEMS)
    out = array("Q", bytes(8 * len(PACKET_ITEMS)))

    def check(got):
        assert got == len(PACKETS) and out.tolist() == PACKET_ITEMS

    _buffer_queue(benchmark, impl, ROLE[impl], post_from_get_into,
                  (q.post_from, q.get_into, packets, out, REPS),
                  "post_from(array('Q') of 64 packets); get_into(array('Q') of 64 packets)",
                  check)
    assert len(q) == 0


@pytest.mark.benchmark(group="buffer-queue64")
def test_buffer_queue_list_forms(benchmark):
    q = _core.CompletionQueue()

    def check(got):
        assert got == PACKETS

    _buffer_queue(benchmark, "wsp._core list forms", "peer", post_many_get_many,
                  (q.post_many, q.get_many, PACKETS, REPS),
                  "post_many(64 packets); get_many(64)", check)
    assert len(q) == 0


@pytest.mark.benchmark(group="buffer-queue64")
def test_buffer_queue_simplequeue(benchmark):
    q = queue.SimpleQueue()

    def check(got):
        assert got == PACKETS

    _buffer_queue(benchmark, "SimpleQueue", "reference", put_each_get_each,
                  (q.put, q.get, PACKETS, REPS), "64 x put(p); [get() for 64]", check)
    assert q.empty()
