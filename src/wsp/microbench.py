"""The microbenchmarks behind ``wsp bench``: wsp's core and SPI engine next to
what a user would pick instead, measured in the same run.

This is the installed, dependency-free cut of the pytest-benchmark suite in
``bench/`` (see BENCHMARKS.md there for the full story).  Seven groups, each a
wsp *subject* against one *peer*:

==================  ==========================================  ==============================
group               subject                                     peer
==================  ==========================================  ==============================
handle-cycle        ``HandleTable`` create + query + close      dict + ``itertools.count``
handle-buffer64     ``create_into`` + ``close_from`` of 64      the same dict table: 64
                    handles in an ``array('Q')``                creates, then 64 closes
queue-one           ``CompletionQueue`` post + get              ``queue.SimpleQueue`` put + get
queue-batch64       ``post_many`` + ``get_many`` of 64          64 SimpleQueue puts + 64 gets
queue-buffer64      ``post_from`` + ``get_into`` of 64          64 SimpleQueue puts + 64 gets
                    packets in ``array('Q')`` buffers
thread-ids          ``ThreadRegistry`` open + close             dict of ``threading.get_ident()``
engine-complete     ``WPUCompleteOverlappedRequest`` + GQCS     SimpleQueue put + get
==================  ==========================================  ==============================

The core is the one the package selected (``wsp.core_impl``), so with
``WSP_NO_EXTENSIONS=1`` this measures the pure-Python twin and says so.

How (the same method as ``bench/``, cut down):

* **Same loop shape.**  Each side is a Python function looping over ``N``
  operations with pre-bound methods, so the loop overhead is the same on
  both sides.  Where the peer needs different user code (SimpleQueue takes
  one object, so the tuple is built at the call; it has no batch calls) the
  loop is what that user would write.
* **Paired rounds.**  The project's machine (2 shared vCPUs) has phases of a
  second or more in which everything runs 1.4-2x slower.  Timing all of the
  subject and then all of the peer lets such a phase land on one side only;
  alternating one round of each (ABAB...) spreads it over both, so their
  ratio survives it.
* **Median.**  A round hit by a slow phase, a GC pass or another process is
  an outlier in one direction only; the median of the rounds ignores it where
  a mean would not.  Reported numbers are the median round / operations per
  round, in ns.
* **Checked.**  Each loop returns what its last iteration produced; after
  every round (untimed) that is checked -- the packet that came out is the
  one that went in, the table is empty again -- and a wrong result raises
  AssertionError (raised explicitly, so that ``python -O`` keeps the checks).
"""
from __future__ import annotations

import contextlib
import itertools
import math
import platform
import queue
import statistics
import threading
import time
from array import array
from typing import Any, Callable, Iterator, NamedTuple

import wsp
from wsp.errors import WSAEINVAL, WSAENOTSOCK, WinsockError

__all__ = ["DictHandleTable", "GROUPS", "run", "format_table"]

DEFAULT_SECONDS = 1.5    # time budget per group of a full run (7 groups: ~11 s)
QUICK_SECONDS = 0.1      # ... of a quick run
WARMUP_ROUNDS = 3        # untimed rounds of each side first (caches, table growth)
MIN_ROUNDS = 5           # timed rounds of each side, even past the budget
MAX_ROUNDS = 20000

N = 1000                 # operations per round in the one-at-a-time groups
STATUS, NBYTES, KEY, OV = 0, 512, 7, 123456   # 512 and 123456: not cached small ints
PACKET = (STATUS, NBYTES, KEY, OV)
PACKETS = [(STATUS, NBYTES, KEY, OV + i) for i in range(64)]
PACKET_ITEMS = [v for p in PACKETS for v in p]   # the same 64 packets, 4 items each
HANDLE_BATCH = 64        # handles per create_into / close_from call
REPS = range(16)         # 16 batches of 64 = 1024 packets per round
CONTEXT = object()       # the context stored under every handle


# ------------------------------------------------------------------ the peers
class DictHandleTable:
    """The handle table a user would write: a dict of contexts keyed by
    handles from ``itertools.count`` (one C call, atomic under the GIL, so
    two threads never get the same handle; values are never reused).
    ``KeyError`` becomes ``WinsockError`` only on the error path.  Also the
    peer of bench/ (bench/peers.py)."""

    __slots__ = ("_contexts", "_next")

    def __init__(self) -> None:
        self._contexts: dict[int, Any] = {}
        self._next = itertools.count(4, 4).__next__

    def create(self, context: Any = None) -> int:
        """A new handle for `context`: the next multiple of 4, never reused."""
        handle = self._next()
        self._contexts[handle] = context
        return handle

    def query(self, handle: int) -> Any:
        """The context stored for `handle`; WinsockError WSAENOTSOCK if it is not open."""
        try:
            return self._contexts[handle]
        except KeyError:
            raise WinsockError(WSAENOTSOCK) from None

    def close(self, handle: int) -> Any:
        """Close `handle` and return its context; WinsockError WSAENOTSOCK if it is not open."""
        try:
            return self._contexts.pop(handle)
        except KeyError:
            raise WinsockError(WSAENOTSOCK) from None

    def __len__(self) -> int:
        return len(self._contexts)


class _DictThreadTable:
    """Thread handles as a user would keep them: a dict from a counter to the
    ``threading.get_ident()`` of the thread that opened the handle."""

    __slots__ = ("_idents", "_next")

    def __init__(self) -> None:
        self._idents: dict[int, int] = {}
        self._next = itertools.count(4, 4).__next__

    def open(self) -> int:
        handle = self._next()
        self._idents[handle] = threading.get_ident()
        return handle

    def close(self, handle: int) -> None:
        try:
            del self._idents[handle]
        except KeyError:
            raise WinsockError(WSAEINVAL) from None

    def ident_of(self, handle: int) -> int:
        try:
            return self._idents[handle]
        except KeyError:
            raise WinsockError(WSAEINVAL) from None

    def __contains__(self, handle: object) -> bool:
        return handle in self._idents

    def __len__(self) -> int:
        return len(self._idents)


# ------------------------------------------------------------- timed loops
# Each returns what its last iteration produced, for the check after the round.

def _cycle_each(create, query, close, contexts):
    for c in contexts:
        h = create(c)
        got = query(h)
        closed = close(h)
    return got, closed


def _post_get_each(post, get, rng):
    for _ in rng:
        post(STATUS, NBYTES, KEY, OV)
        p = get()
    return p


def _put_get_each(put, get, rng):
    """SimpleQueue: the tuple is built at the call, as user code does."""
    for _ in rng:
        put((STATUS, NBYTES, KEY, OV))
        p = get()
    return p


def post_many_get_many(post_many, get_many, packets, reps):
    """The core's batch calls: all packets in, all out (bench/ times this too)."""
    n = len(packets)
    for _ in reps:
        post_many(packets)
        got = get_many(n)
    return got


def put_each_get_each(put, get, packets, reps):
    """SimpleQueue has no batch calls: a loop of puts, a list of gets."""
    r = range(len(packets))
    for _ in reps:
        for p in packets:
            put(p)
        got = [get() for _ in r]
    return got


def create_into_close_from(create_into, close_from, buf, context, reps):
    """The table's buffer forms: fill an ``array('Q')`` with new handles,
    close them from it (bench/ times this too)."""
    for _ in reps:
        create_into(buf, context)
        closed = close_from(buf)
    return closed


def create_each_close_each(create, close, n, context, reps):
    """A table without batch calls: a list of `n` creates, then a loop of
    closes (bench/ times this too)."""
    r = range(n)
    for _ in reps:
        handles = [create(context) for _ in r]
        for h in handles:
            close(h)
    return len(handles)


def post_from_get_into(post_from, get_into, packets, out, reps):
    """The queue's buffer forms: post the packets of one ``array('Q')``, get
    them back into another (bench/ times this too)."""
    for _ in reps:
        post_from(packets)
        got = get_into(out)
    return got


def _open_close_each(open_, close, rng):
    for _ in rng:
        h = open_()
        close(h)
    return h


def _complete_get_each(complete, get, s, ov, port, rng):
    for _ in rng:
        complete(s, ov, STATUS, NBYTES)
        p = get(port, 0)
    return p


# ------------------------------------------------------------------ groups
def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(f"microbench: {what}")


class _Side(NamedTuple):
    """One side of a group: ``loop(*args)`` is one timed round; ``check``
    gets its result and raises AssertionError if it is wrong."""
    name: str
    loop: Callable[..., Any]
    args: tuple
    check: Callable[[Any], None]


class _Group(NamedTuple):
    name: str
    what: str                       # one operation, in words
    ops: int                        # operations per round
    sides: Callable[[], Any]        # context manager yielding (subject, peer)


@contextlib.contextmanager
def _handle_cycle() -> Iterator[tuple[_Side, _Side]]:
    contexts = [CONTEXT] * N

    def side(name, t):
        def check(result):
            _expect(result[0] is CONTEXT and result[1] is CONTEXT,
                    f"{name}: query/close returned the wrong context")
            _expect(len(t) == 0, f"{name}: handles left open after a round")
        return _Side(name, _cycle_each, (t.create, t.query, t.close, contexts), check)

    yield (side("wsp.HandleTable", wsp.HandleTable()),
           side("dict + itertools.count", DictHandleTable()))


@contextlib.contextmanager
def _handle_buffer64() -> Iterator[tuple[_Side, _Side]]:
    def check_for(name, t):
        def check(result):
            _expect(result == HANDLE_BATCH, f"{name}: closed {result!r} handles, "
                                            f"expected {HANDLE_BATCH}")
            _expect(len(t) == 0, f"{name}: handles left open after a round")
        return check

    t, peer = wsp.HandleTable(), DictHandleTable()
    buf = array("Q", bytes(8 * HANDLE_BATCH))
    yield (_Side("wsp.HandleTable", create_into_close_from,
                 (t.create_into, t.close_from, buf, CONTEXT, REPS),
                 check_for("wsp.HandleTable", t)),
           _Side("dict + itertools.count", create_each_close_each,
                 (peer.create, peer.close, HANDLE_BATCH, CONTEXT, REPS),
                 check_for("dict + itertools.count", peer)))


def _queue_check(name: str, expected: Any, is_empty: Callable[[], bool]):
    def check(result):
        _expect(result == expected, f"{name}: got {result!r}, expected {expected!r}")
        _expect(is_empty(), f"{name}: packets left in the queue after a round")
    return check


@contextlib.contextmanager
def _queue_one() -> Iterator[tuple[_Side, _Side]]:
    q, sq = wsp.CompletionQueue(), queue.SimpleQueue()
    rng = range(N)
    yield (_Side("wsp.CompletionQueue", _post_get_each, (q.post, q.get, rng),
                 _queue_check("wsp.CompletionQueue", PACKET, lambda: len(q) == 0)),
           _Side("queue.SimpleQueue", _put_get_each, (sq.put, sq.get, rng),
                 _queue_check("queue.SimpleQueue", PACKET, sq.empty)))


@contextlib.contextmanager
def _queue_batch64() -> Iterator[tuple[_Side, _Side]]:
    q, sq = wsp.CompletionQueue(), queue.SimpleQueue()
    yield (_Side("wsp.CompletionQueue", post_many_get_many,
                 (q.post_many, q.get_many, PACKETS, REPS),
                 _queue_check("wsp.CompletionQueue", PACKETS, lambda: len(q) == 0)),
           _Side("queue.SimpleQueue", put_each_get_each, (sq.put, sq.get, PACKETS, REPS),
                 _queue_check("queue.SimpleQueue", PACKETS, sq.empty)))


@contextlib.contextmanager
def _queue_buffer64() -> Iterator[tuple[_Side, _Side]]:
    q, sq = wsp.CompletionQueue(), queue.SimpleQueue()
    packets = array("Q", PACKET_ITEMS)
    out = array("Q", bytes(8 * len(PACKET_ITEMS)))
    in_queue = _queue_check("wsp.CompletionQueue", len(PACKETS), lambda: len(q) == 0)

    def check(result):
        in_queue(result)
        _expect(out.tolist() == PACKET_ITEMS, "wsp.CompletionQueue: get_into wrote "
                                              "other packets than were posted")
    yield (_Side("wsp.CompletionQueue", post_from_get_into,
                 (q.post_from, q.get_into, packets, out, REPS), check),
           _Side("queue.SimpleQueue", put_each_get_each, (sq.put, sq.get, PACKETS, REPS),
                 _queue_check("queue.SimpleQueue", PACKETS, sq.empty)))


@contextlib.contextmanager
def _thread_ids() -> Iterator[tuple[_Side, _Side]]:
    rng = range(N)

    def side(name, reg):
        h = reg.open()       # once, untimed: a handle names the calling thread
        _expect(reg.ident_of(h) == threading.get_ident(), f"{name}: wrong thread ident")
        reg.close(h)

        def check(result):
            _expect(isinstance(result, int) and result not in reg and len(reg) == 0,
                    f"{name}: handle {result!r} still open after a round")
        return _Side(name, _open_close_each, (reg.open, reg.close, rng), check)

    yield (side("wsp.ThreadRegistry", wsp.ThreadRegistry()),
           side("dict of get_ident()", _DictThreadTable()))


@contextlib.contextmanager
def _engine_complete() -> Iterator[tuple[_Side, _Side]]:
    # The set-up of bench/test_bench_engine.py: a started provider, a socket
    # handle from WPUCreateSocketHandle and a completion port associated with it.
    proc, prov = wsp.Process(), wsp.ServiceProvider()
    ov = wsp.Overlapped()
    sq = queue.SimpleQueue()
    rng = range(N)
    with contextlib.ExitStack() as teardown:
        prov.WSPStartup(0x0202, None, proc.upcalls)
        teardown.callback(prov.WSPCleanup)
        s = proc.upcalls.WPUCreateSocketHandle(1, None)
        teardown.callback(proc.upcalls.WPUCloseSocketHandle, s)
        port = proc.CreateIoCompletionPort(s, None, KEY)
        teardown.callback(proc.CloseHandle, port)

        def check(result):
            rc, nbytes, key, got = result
            _expect((rc, nbytes, key) == (STATUS, NBYTES, KEY) and got is ov,
                    f"wsp engine: dequeued {result!r}")
            _expect(proc.resources()["overlapped_undelivered"] == 0,
                    "wsp engine: completions left undelivered after a round")

        yield (_Side("wsp engine", _complete_get_each,
                     (proc.upcalls.WPUCompleteOverlappedRequest,
                      proc.GetQueuedCompletionStatus, s, ov, port, rng), check),
               _Side("queue.SimpleQueue", _put_get_each, (sq.put, sq.get, rng),
                     _queue_check("queue.SimpleQueue", PACKET, sq.empty)))
    # Reached only when the run went well; teardown must leave nothing behind.
    leaked = {k: v for k, v in proc.resources().items() if v}
    _expect(not leaked, f"wsp engine: resources left after teardown: {leaked}")


GROUPS: tuple[_Group, ...] = (
    _Group("handle-cycle", "create a handle, query it, close it (one cycle)",
           N, _handle_cycle),
    _Group("handle-buffer64", "create 64 handles into an array('Q'), close them from it "
           "(per handle)", HANDLE_BATCH * len(REPS), _handle_buffer64),
    _Group("queue-one", "post one completion packet, get it back", N, _queue_one),
    _Group("queue-batch64", "post 64 packets at once, get 64 at once (per packet)",
           len(PACKETS) * len(REPS), _queue_batch64),
    _Group("queue-buffer64", "post 64 packets from an array('Q'), get 64 into one "
           "(per packet)", len(PACKETS) * len(REPS), _queue_buffer64),
    _Group("thread-ids", "open a handle to the calling thread, close it", N, _thread_ids),
    _Group("engine-complete",
           "complete an overlapped request, dequeue its packet from the port",
           N, _engine_complete),
)


# --------------------------------------------------------------- measuring
def _measure(subject: _Side, peer: _Side, ops: int, seconds: float):
    """Median ns per operation of each side, and the number of timed rounds
    of each.  Rounds alternate subject, peer, subject, peer... until
    `seconds` (warm-up included) are spent, with at least MIN_ROUNDS each."""
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    sides = (subject, peer)
    for _ in range(WARMUP_ROUNDS):
        for side in sides:
            side.check(side.loop(*side.args))
    times: tuple[list[int], list[int]] = ([], [])
    while True:
        for side, round_times in zip(sides, times):
            loop, args = side.loop, side.args
            t0 = clock()
            result = loop(*args)
            t1 = clock()
            side.check(result)
            round_times.append(t1 - t0)
        rounds = len(times[0])
        if rounds >= MAX_ROUNDS or (rounds >= MIN_ROUNDS and clock() >= deadline):
            break
    subject_ns, peer_ns = (statistics.median(t) / ops for t in times)
    return subject_ns, peer_ns, rounds


def run(quick: bool = False, seconds: float | None = None,
        progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Measure every group and return the report (a JSON-serialisable dict).

    `quick`: about 0.1 s per group instead of 1.5 s.  `seconds`: the time
    budget per group, overriding both.  `progress(group, index, total)` is
    called before each group; `index` counts from 0 (groups finished so far).
    Raises AssertionError if any side produces a wrong result.
    """
    if seconds is None:
        seconds = QUICK_SECONDS if quick else DEFAULT_SECONDS
    elif not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be a positive number, not {seconds!r}")
    # wsp always runs with a second thread alive, and some costs (glibc's
    # single-thread fast paths) change for good once a process has started
    # one: start one first, so that every side is measured in that state.
    warm = threading.Thread(target=lambda: None, name="wsp-microbench-warm")
    warm.start()
    warm.join()

    results = []
    for index, group in enumerate(GROUPS):
        if progress is not None:
            progress(group.name, index, len(GROUPS))
        with group.sides() as (subject, peer):
            subject_ns, peer_ns, rounds = _measure(subject, peer, group.ops, seconds)
        results.append({
            "group": group.name, "what": group.what,
            "subject": subject.name, "peer": peer.name,
            "subject_ns": float(subject_ns), "peer_ns": float(peer_ns),
            "ratio": float(peer_ns / subject_ns), "rounds": rounds,
        })
    return {
        "version": wsp.__version__,
        "core": wsp.core_impl,
        "python": platform.python_version(),
        "quick": bool(quick),
        "results": results,
    }


# ---------------------------------------------------------------- printing
def _verdict(ratio: float) -> str:
    if ratio >= 1:
        return f"wsp is {ratio:.2f}x faster"
    return f"wsp is {1 / ratio:.2f}x slower"


def format_table(report: dict) -> str:
    """The report as aligned plain text: a header line, one row per group
    (medians in ns per operation), then what each group times."""
    results = report["results"]
    header = (f"wsp {report['version']}, {report['core']} core, Python {report['python']}"
              f"{', quick run' if report.get('quick') else ''}")
    about = ("median ns per operation; wsp and its peer timed in alternating rounds; "
             "ratio = peer / wsp")
    rows = [("group", "wsp ns/op", "peer", "peer ns/op", "")]
    rows += [(r["group"], f"{r['subject_ns']:.1f}", r["peer"], f"{r['peer_ns']:.1f}",
              _verdict(r["ratio"])) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    right = (False, True, False, True)      # numbers right-aligned

    def line(cells):
        out = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return "  ".join(out + [cells[4]]).rstrip()

    lines = [header, about, "", line(rows[0]), line(tuple("-" * w for w in widths) + ("",))]
    lines += [line(row) for row in rows[1:]]
    gw = widths[0]
    lines.append("")
    lines += [f"{r['group']:<{gw}}  {r['subject']}: {r['what']} [{r['rounds']} rounds]"
              for r in results]
    return "\n".join(lines)
