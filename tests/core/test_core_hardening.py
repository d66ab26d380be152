"""Hostile and absurd input to the core, on both cores (SPEC §3, §5):

* Python code that runs *during* a call (a field's ``__index__``, a packet's
  ``__iter__``) and changes the argument under the call's feet;
* counts and sizes far beyond anything that fits (no hang, no wrap-around);
* timeouts of every kind: bad ones fail the same way on both cores, huge
  finite ones wait "forever" and still wake on a post / APC / close;
* the ``parked`` debug counter;
* property-based checks that both cores answer bad input identically.

Cases that could crash the interpreter before their fix run in a child
process, so that a regression is reported as a failure instead of killing
the test run.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from helpers import Worker, assert_winsock
from wsp.errors import WSA_INVALID_HANDLE, WSAEINVAL, WSAENOBUFS, WinsockError

CHILD_TIMEOUT = 60.0


def core_name(core):
    return "cython" if core.__name__ == "wsp._core" else "python"


def run_isolated(core, body, timeout=CHILD_TIMEOUT):
    """Run `body` in a fresh interpreter with ``core`` bound to the core
    under test; fail (instead of dying) if it crashes, hangs or fails.
    Returns its stdout."""
    code = (f"from {core.__name__} import *\nimport {core.__name__} as core\n"
            "from wsp.errors import WinsockError\n")
    code += textwrap.dedent(body)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not finish in {timeout} s (a hang)")
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} (negative: killed by that signal)\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-4000:]}")
    return proc.stdout


def wait_parked(core, n, timeout=10.0):
    """Wait until at least `n` threads are parked in a wait of `core`
    (``debug_counters()["parked"] >= n``); True if that happened within
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while core.debug_counters()["parked"] < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def outcome(call, *args):
    """What a call did, comparably across cores: ("ok", result) or
    (exception class name, winerror)."""
    try:
        return ("ok", call(*args))
    except (TypeError, WinsockError) as exc:
        return (type(exc).__name__, getattr(exc, "winerror", None))


# ------------------------------------------------ arguments that change mid-call
MUTATION_PRELUDE = """
import gc
q = CompletionQueue()
lst = []

class Clears:
    def __index__(self):
        lst.clear()                      # frees the list's item storage
        gc.collect()
        junk = [bytearray(64) for _ in range(2000)]   # and reuses the memory
        return 1

class Grows:
    def __index__(self):
        lst.extend((9, 9, 9, 9) for _ in range(5000))  # reallocates the storage
        return 2

class MutatingPacket:
    def __init__(self, action):
        self.action = action
    def __iter__(self):
        self.action()
        return iter((3, 3, 3, 3))
"""


@pytest.mark.parametrize("case, expected", [
    # a field's __index__ clears the list: the snapshot taken at the call is posted
    ("lst[:] = [(Clears(), 0, 0, 0)] + [(i, 1, 1, 1) for i in range(300)]", 301),
    ("lst[:] = [(Clears(), 0, 0, 0)] + [(i, 1, 1, 1) for i in range(10)]", 11),
    # ... or extends it far enough to move its storage
    ("lst[:] = [(Grows(), 0, 0, 0)] + [(i, 1, 1, 1) for i in range(100)]", 101),
    # a non-tuple packet's __iter__ clears or extends the list
    ("lst[:] = [MutatingPacket(lst.clear)] + [(i, 1, 1, 1) for i in range(300)]", 301),
    ("lst[:] = [MutatingPacket(lambda: lst.extend([(8, 8, 8, 8)] * 5000))]"
     " + [(i, 1, 1, 1) for i in range(100)]", 101),
])
def test_post_many_survives_a_list_changed_while_converting(core, case, expected):
    out = run_isolated(core, MUTATION_PRELUDE + case + """
n = len(lst)
before = [tuple(p) if type(p) is tuple else None for p in lst]
q.post_many(lst)
got = q.get_many(10 ** 6, 0)
print(len(got))
assert all(len(p) == 4 for p in got)
""")
    assert out.split() == [str(expected)]


def test_post_many_field_raising_after_clearing_the_list_posts_nothing(core):
    out = run_isolated(core, MUTATION_PRELUDE + """
class ClearsThenFails:
    def __index__(self):
        lst.clear()
        raise OverflowError("no")
lst[:] = [(i, 1, 1, 1) for i in range(100)] + [(ClearsThenFails(), 0, 0, 0)]
try:
    q.post_many(lst)
except OverflowError:
    print("raised", len(q))
""")
    assert out.split() == ["raised", "0"]


def test_close_many_with_int_subclasses_that_mutate_the_list(core):
    # The core reads an int subclass by its digits: none of these methods
    # may run, and the list may not be read from after a change anyway.
    out = run_isolated(core, """
import gc
table = HandleTable()
handles = table.create_many(300, "ctx")
lst = []

class Sneaky(int):
    def __index__(self):
        lst.clear(); gc.collect(); return 4
    __int__ = __index__
    def __eq__(self, other):
        lst.clear(); return False
    __hash__ = int.__hash__
    def __lt__(self, other):
        lst.clear(); return False
    __gt__ = __le__ = __ge__ = __lt__

lst[:] = [Sneaky(h) for h in handles]
print(table.close_many(lst), len(table), len(lst))
""")
    assert out.split() == ["300", "0", "300"]


def test_close_many_over_a_generator_that_closes_handles_itself(core):
    table = core.HandleTable()
    handles = table.create_many(10)

    def gen():
        for h in handles:
            yield h
            if handles[-1] in table:
                table.close(handles[-1])    # closed by the iteration itself

    assert table.close_many(gen()) == 9
    assert len(table) == 0


def test_post_many_and_close_many_take_any_iterable_and_name_non_iterables(core):
    q = core.CompletionQueue()
    table = core.HandleTable()
    for bad in (5, None, 4.0, object()):
        with pytest.raises(TypeError, match="iterable"):
            q.post_many(bad)
        with pytest.raises(TypeError, match="iterable"):
            table.close_many(bad)

    def failing():
        yield (1, 1, 1, 1)
        raise TypeError("from inside the iteration")

    with pytest.raises(TypeError, match="from inside"):
        q.post_many(failing())
    assert len(q) == 0


# ----------------------------------------------------------- absurd counts
HUGE_COUNTS = [2 ** 61 + 1, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 64 + 1, 2 ** 32 + 1,
               10 ** 30]


def test_create_many_of_a_huge_count_is_enobufs_at_once(core):
    # In a child: before the fix the compiled core looped 2**61 times here.
    out = run_isolated(core, f"""
import sys, time
ctx = object()
refs = sys.getrefcount(ctx)
for max_handles in (None, 10, 2 ** 40):
    table = HandleTable(max_handles)
    table.create_many(3, ctx)
    for n in {HUGE_COUNTS!r}:
        start = time.monotonic()
        try:
            table.create_many(n, ctx)
        except WinsockError as exc:
            assert exc.winerror == {WSAENOBUFS}, exc
        else:
            raise AssertionError(n)
        assert time.monotonic() - start < 1.0, n
    assert len(table) == 3
    assert len(table.create_many(5, ctx)) == 5          # still works
    del table
assert sys.getrefcount(ctx) == refs                     # nothing leaked
print("ok")
""", timeout=30)
    assert out.split() == ["ok"]


@pytest.mark.parametrize("n, exc, code", [
    (-1, WinsockError, WSAEINVAL), (-(2 ** 64), WinsockError, WSAEINVAL),
    (-(2 ** 63), WinsockError, WSAEINVAL), (11, WinsockError, WSAENOBUFS),
    (2 ** 63, WinsockError, WSAENOBUFS), ("3", TypeError, None), (3.0, TypeError, None),
    (None, TypeError, None), (Decimal(3), TypeError, None),
])
def test_create_many_count_errors(core, n, exc, code):
    table = core.HandleTable(max_handles=10)
    with pytest.raises(exc) as e:
        table.create_many(n)
    if code is not None:
        assert_winsock(e, code)
    assert len(table) == 0


def test_create_many_accepts_integer_like_counts(core):
    class Three:
        def __index__(self):
            return 3

    class IntSub(int):
        pass

    table = core.HandleTable()
    assert len(table.create_many(Three())) == 3
    assert len(table.create_many(IntSub(2))) == 2
    assert table.create_many(False) == [] and len(table.create_many(True)) == 1


def test_huge_max_handles_is_clamped_and_beyond_2_63_is_einval(core):
    assert core.HandleTable(max_handles=2 ** 62).max_handles == 2 ** 32
    assert core.HandleTable(max_handles=2 ** 63 - 1).max_handles == 2 ** 32
    for bad in (2 ** 63, 2 ** 64, 10 ** 30):
        with pytest.raises(WinsockError) as e:
            core.HandleTable(max_handles=bad)
        assert_winsock(e, WSAEINVAL)


def test_get_many_with_a_huge_max_entries(core):
    q = core.CompletionQueue()
    for i in range(3):
        q.post(i, 0, 0, 0)
    assert q.get_many(2 ** 63 - 1, 0) == [(i, 0, 0, 0) for i in range(3)]
    q.close()
    assert q.get_many(2 ** 62) == []
    for bad in (2 ** 63, 2 ** 64, 10 ** 30):
        with pytest.raises(WinsockError) as e:
            q.get_many(bad, 0)
        assert_winsock(e, WSAEINVAL)


# ----------------------------------------------------------------- timeouts
BAD_TIMEOUTS = [
    (-1, WinsockError), (-0.001, WinsockError), (-(10 ** 400), WinsockError),
    (float("nan"), WinsockError), (float("inf"), WinsockError), (float("-inf"), WinsockError),
    (Decimal("Infinity"), WinsockError), (Decimal("NaN"), WinsockError),
    (Decimal("-1e400"), WinsockError), (Fraction(-(10 ** 400), 3), WinsockError),
    ("1", TypeError), (b"1", TypeError), (bytearray(b"1"), TypeError), (object(), TypeError),
    ([], TypeError), ((1,), TypeError),
]
HUGE_TIMEOUTS = [9.3e9, 5e11, 1e12, 1e12 + 1, 1e13, 1e300, 2 ** 64, 10 ** 400,
                 Decimal("1e400"), Fraction(10 ** 400, 3)]


def ids(values):
    return [repr(v)[:24] for v in values]


@pytest.mark.parametrize("timeout, exc", BAD_TIMEOUTS, ids=ids([t for t, _ in BAD_TIMEOUTS]))
def test_bad_timeouts_fail_before_any_work(core, timeout, exc):
    q = core.CompletionQueue()
    q.post(1, 2, 3, 4)                     # would be returned at once: checked first
    reg = core.ThreadRegistry()
    h = reg.open(31337)
    reg.queue_apc(h, lambda ctx: None)
    for call, args in ((q.get, (timeout,)), (q.get_many, (4, timeout)),
                       (reg.wait, (31337, timeout))):
        with pytest.raises(exc) as e:
            call(*args)
        if exc is WinsockError:
            assert_winsock(e, WSAEINVAL)
    assert len(q) == 1                     # nothing was taken
    q.close()
    with pytest.raises(exc):
        q.get(timeout)                     # closed: still checked
    reg.run_apcs(31337)
    reg.close(h)


@pytest.mark.parametrize("timeout", [None, 0, 0.0, -0.0, False, True, 0.01, 1e12, 2 ** 64,
                                     10 ** 400, 1e300, Decimal("1e400"), Decimal("0.5")],
                         ids=repr)
def test_good_timeouts_return_at_once_when_work_is_there(core, timeout):
    q = core.CompletionQueue()
    q.post(1, 2, 3, 4)
    q.post(5, 6, 7, 8)
    assert q.get(timeout) == (1, 2, 3, 4)
    assert q.get_many(4, timeout) == [(5, 6, 7, 8)]
    q.close()
    assert q.get(timeout) is None and q.get_many(2, timeout) == []
    reg = core.ThreadRegistry()
    h = reg.open(31337)
    reg.queue_apc(h, lambda ctx: None)
    assert reg.wait(31337, timeout) is True
    reg.run_apcs(31337)
    reg.close(h)


@pytest.mark.parametrize("timeout", [0, 0.0, False, 0.02, Fraction(1, 50), Decimal("0.02")],
                         ids=repr)
def test_small_timeouts_time_out(core, timeout):
    q = core.CompletionQueue()
    reg = core.ThreadRegistry()
    seconds = float(timeout)
    for call, args, empty in ((q.get, (timeout,), None), (q.get_many, (3, timeout), []),
                              (reg.wait, (4141, timeout), False)):
        start = time.monotonic()
        assert call(*args) == empty
        assert seconds * 0.9 <= time.monotonic() - start < seconds + 5


@pytest.mark.parametrize("timeout", HUGE_TIMEOUTS, ids=ids(HUGE_TIMEOUTS))
@pytest.mark.parametrize("how", ["post", "get_many+close", "apc", "end_thread"])
def test_huge_finite_timeouts_park_and_still_wake(core, timeout, how):
    q = core.CompletionQueue()
    reg = core.ThreadRegistry()
    ident = 5150
    base = core.debug_counters()["parked"]
    if how == "post":
        worker = Worker(q.get, timeout)
    elif how == "get_many+close":
        worker = Worker(q.get_many, 8, timeout)
    else:
        worker = Worker(reg.wait, ident, timeout)
    worker.start()
    assert wait_parked(core, base + 1), "the waiter never parked"
    time.sleep(0.01)
    assert worker.is_alive() and worker.error is None    # parked, no OverflowError
    if how == "post":
        q.post(1, 2, 3, 4)
        assert worker.finish() == (1, 2, 3, 4)
    elif how == "get_many+close":
        q.close()
        assert worker.finish() == []
    elif how == "apc":
        h = reg.open(ident)
        reg.queue_apc(h, lambda ctx: None)
        assert worker.finish() is True
        assert reg.run_apcs(ident) == 1
        reg.close(h)
    else:
        assert reg.end_thread(ident) == 0
        assert worker.finish() is False
    assert wait_parked(core, base, 0) and core.debug_counters()["parked"] == base


def test_timeouts_agree_on_both_cores(both_cores):
    values = ([t for t, _ in BAD_TIMEOUTS] + HUGE_TIMEOUTS
              + [None, 0, 0.0, True, False, 1, 0.001, Decimal("0.001"), Decimal("sNaN")])
    for timeout in values:
        answers = []
        for core in both_cores:
            q = core.CompletionQueue()
            q.post(1, 1, 1, 1)
            reg = core.ThreadRegistry()
            h = reg.open(99)
            reg.queue_apc(h, lambda ctx: None)
            answers.append((outcome(q.get, timeout), outcome(reg.wait, 99, timeout)))
        assert answers[0] == answers[1], (timeout, answers)
        assert answers[0][0][0] != "OverflowError"


# ------------------------------------------------------------ parked counter
def test_parked_counts_each_parked_wait_until_it_returns(core):
    q = core.CompletionQueue()
    reg = core.ThreadRegistry()
    base = core.debug_counters()["parked"]
    assert q.get(0) is None and reg.wait(77, 0) is False    # never parked
    assert core.debug_counters()["parked"] == base
    workers = [Worker(q.get, 30), Worker(q.get_many, 2, 30), Worker(reg.wait, 77, 30)]
    for i, w in enumerate(workers):
        w.start()
        assert wait_parked(core, base + i + 1)
    time.sleep(0.02)
    assert core.debug_counters()["parked"] == base + 3
    q.post(1, 1, 1, 1)                      # to the most recently parked getter
    assert workers[1].finish() == [(1, 1, 1, 1)]
    assert core.debug_counters()["parked"] == base + 2
    assert q.wake_waiters() == 1
    assert workers[0].finish() is None
    h = reg.open(77)
    reg.queue_apc(h, lambda ctx: None)
    for w in workers:
        w.finish()
    assert core.debug_counters()["parked"] == base
    reg.run_apcs(77)
    reg.close(h)


def test_parked_returns_to_base_after_a_timeout(core):
    base = core.debug_counters()["parked"]
    worker = Worker(core.CompletionQueue().get, 0.2)
    worker.start()
    assert wait_parked(core, base + 1)
    assert worker.finish() is None
    assert core.debug_counters()["parked"] == base


def test_wait_parked_helper_times_out(core):
    base = core.debug_counters()["parked"]
    start = time.monotonic()
    assert wait_parked(core, base + 1, timeout=0.05) is False
    assert time.monotonic() - start < 5


# ------------------------------------------- property tests: cores agree on bad input
class IntSub(int):
    pass


class Indexable:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return f"Indexable({self.value})"


class Floatable:
    def __init__(self, value):
        self.value = value

    def __float__(self):
        return self.value

    def __repr__(self):
        return f"Floatable({self.value})"


INTS = st.one_of(st.integers(-3, 70), st.integers(-(2 ** 70), 2 ** 70),
                 st.sampled_from([2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63),
                                  10 ** 400, -(10 ** 400)]))
WEIRD = st.one_of(
    INTS, st.booleans(), st.none(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3), st.binary(max_size=3), INTS.map(IntSub), INTS.map(Indexable),
    st.floats(allow_nan=True).map(Floatable), INTS.map(Decimal),
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("1e400"), Fraction(1, 3),
                     object(), [], (), (1, 2, 3, 4), {}, 4.0, 1.5]),
)
# `both_cores` only hands out the two modules: nothing to reset per example.
PROPERTY_SETTINGS = settings(max_examples=120, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.function_scoped_fixture])


def both(both_cores, make, name, *args):
    """Call `name` on a fresh object of each core; assert the same outcome."""
    answers = [outcome(getattr(make(core), name), *args) for core in both_cores]
    assert answers[0] == answers[1], (name, args, answers)
    return answers[0]


@PROPERTY_SETTINGS
@given(value=WEIRD)
def test_handle_table_entries_agree(both_cores, value):
    def table(core):
        t = core.HandleTable(max_handles=16)
        t.create_many(3, "x")
        return t

    answers = [outcome(lambda c=core: c.HandleTable(value).max_handles) for core in both_cores]
    assert answers[0] == answers[1], (value, answers)
    for name in ("create_many", "query", "close", "__contains__"):
        both(both_cores, table, name, value)
    both(both_cores, table, "close_many", value)
    both(both_cores, table, "close_many", [value, 4, value])


@PROPERTY_SETTINGS
@given(fields=st.lists(WEIRD, min_size=4, max_size=4), packets=st.lists(
    st.one_of(st.lists(WEIRD, min_size=3, max_size=5).map(tuple), WEIRD), max_size=4))
def test_completion_queue_entries_agree(both_cores, fields, packets):
    def queue(core):
        q = core.CompletionQueue()
        q.post(7, 7, 7, 7)
        return q

    def closed(core):
        q = core.CompletionQueue()
        q.close()
        return q

    both(both_cores, queue, "post", *fields)
    both(both_cores, queue, "post_many", packets)
    both(both_cores, queue, "post_many", [tuple(fields)])
    for value in fields[:2]:
        both(both_cores, queue, "get", value)
        both(both_cores, closed, "get", value)
        both(both_cores, queue, "get_many", value, 0)
        both(both_cores, queue, "get_many", 3, value)
        both(both_cores, closed, "get_many", value, value)
        both(both_cores, closed, "post", value, 0, 0, 0)


@PROPERTY_SETTINGS
@given(value=WEIRD, other=WEIRD)
def test_thread_registry_entries_agree(both_cores, value, other):
    def registry(core):
        reg = core.ThreadRegistry()
        h = reg.open(424242)
        reg.queue_apc(h, lambda ctx: None)
        return reg

    for name in ("close", "ident_of", "ended", "duplicate", "pending_of", "__contains__"):
        both(both_cores, registry, name, value)
    both(both_cores, registry, "queue_apc", value, print, other)
    both(both_cores, registry, "wait", 424242, value)          # an APC is there: no block
    both(both_cores, registry, "wait", value, 0)
    for name in ("open", "run_apcs", "pending", "end_thread"):
        both(both_cores, registry, name, value)


def test_hardening_leaves_no_thread_records_behind(core):
    gc.collect()
    base = core.debug_counters()["thread_records"]
    reg = core.ThreadRegistry()
    for ident in (1, 2, 2 ** 64 - 1):
        h = reg.open(ident)
        reg.queue_apc(h, print, None)
        assert reg.end_thread(ident) == 1
        reg.close(h)
    del reg
    gc.collect()
    assert core.debug_counters()["thread_records"] == base


def test_posting_to_a_closed_queue_checks_fields_first(core):
    q = core.CompletionQueue()
    q.close()
    with pytest.raises(TypeError):
        q.post("x", 0, 0, 0)
    with pytest.raises(WinsockError) as e:
        q.post(0, 0, 0, 0)
    assert_winsock(e, WSA_INVALID_HANDLE)


@pytest.mark.parametrize("rounds, width", [(1, 20), (6, 40)])
def test_thread_guard_from_many_short_threads_leaves_nothing(core, rounds, width):
    # Rounds of concurrent threads: idents are reused across rounds, and
    # every thread's lifetime must still end with it (each new holder of an
    # ident gets its own guard).
    gc.collect()
    base = core.debug_counters()["thread_records"]
    reg = core.ThreadRegistry()
    errors = []

    def body(out):
        try:
            h = reg.open()
            reg.queue_apc(h, print, None)   # stranded when the thread ends
            out.append(h)
            out.append(reg.open())         # a second handle, never closed
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    for _ in range(rounds):
        opened = []
        threads = [threading.Thread(target=body, args=(opened,)) for _ in range(width)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors
        assert len(opened) == 2 * width and len(reg) == 2 * width
        for t in threads:
            assert reg.pending(t.ident) == 0        # ended: not the new lifetime's
        for h in opened:
            assert reg.ended(h), "a thread's lifetime outlived it"
        assert sorted(_all_handles(reg)) == sorted(opened)
        for h in opened:
            reg.close(h)
        gc.collect()
        assert core.debug_counters()["thread_records"] == base


def _all_handles(reg):
    """The open handles of a registry, found by probing (it has no list)."""
    found = []
    for index in range(128):
        for gen in range(1, 8):
            h = ((index << 21) | gen) << 2
            if h in reg:
                found.append(h)
    return found


@pytest.mark.parametrize("bad", [-1, 0, 2 ** 64, "3", 3.0])
def test_failed_construction_leaves_the_live_counters_alone(core, bad):
    gc.collect()
    before = core.debug_counters()
    for _ in range(3):
        with pytest.raises((TypeError, WinsockError)):
            core.HandleTable(max_handles=bad)
    gc.collect()
    assert core.debug_counters() == before


# ----------------------------------------------------------- buffer forms (SPEC §5)
def _buffer_makers():
    """Makers of every kind of buffer a caller might hand to the buffer
    forms: the right one ('Q'), other item types and shapes, read-only,
    strided, misaligned, empty, lengths that are not a multiple of 4, and
    non-buffers.  (Makers, since hypothesis hashes what it samples.)"""
    from array import array
    makers = [lambda n=n: array("Q", [0] * n) for n in (0, 1, 3, 4, 8, 300)]
    makers += [
        lambda: array("q", [0] * 4), lambda: array("i", [0] * 8), lambda: array("d", [0.0] * 4),
        lambda: array("B", [0] * 32), lambda: memoryview(array("Q", [0] * 8)).toreadonly(),
        lambda: memoryview(array("Q", [0] * 8))[::2],
        lambda: memoryview(bytearray(8 * 9))[1:65].cast("Q"),
        lambda: memoryview(bytearray(64)).cast("Q", (2, 4)),
        lambda: memoryview(bytearray(64)).cast("L"),
        lambda: b"\x00" * 32, lambda: bytearray(32), lambda: "abcd", lambda: None,
        lambda: 5, lambda: [1, 2, 3, 4], lambda: object(),
    ]
    return makers


BUFFER_MAKERS = _buffer_makers()


@PROPERTY_SETTINGS
@given(which=st.integers(0, len(BUFFER_MAKERS) - 1), fill=st.lists(INTS, min_size=0, max_size=8),
       timeout=st.sampled_from([None, 0, 0.0, -1, float("nan"), "x", 1e300]))
def test_buffer_forms_agree_on_both_cores(both_cores, which, fill, timeout):
    """create_into/close_from/post_from/get_into: both cores give the same
    result or the same error for the same buffer, and never anything but
    TypeError or WinsockError."""
    def writable_copy():
        buf = BUFFER_MAKERS[which]()            # a fresh one for each core
        try:
            view = memoryview(buf)
        except TypeError:
            return buf
        if view.readonly or view.format not in ("Q", "L") or view.ndim != 1 or \
                not view.c_contiguous:
            return buf
        for i, value in enumerate(fill[:len(view)]):
            if 0 <= value < 2 ** 64:
                view[i] = value
        return buf

    def queue(core):
        q = core.CompletionQueue()
        q.post(1, 2, 3, 4)                    # get_into never blocks
        return q

    def table(core):
        t = core.HandleTable(max_handles=64)
        t.create_many(2)
        return t

    for make, name, args in ((table, "create_into", ()), (table, "close_from", ()),
                             (queue, "post_from", ()), (queue, "get_into", (timeout,))):
        answers = []
        for core in both_cores:
            target = writable_copy()
            result = outcome(getattr(make(core), name), target, *args)
            try:
                contents = bytes(memoryview(target)) if name == "get_into" else None
            except TypeError:                   # not a buffer at all
                contents = None
            answers.append((result, contents))
        assert answers[0] == answers[1], (name, which, answers)
