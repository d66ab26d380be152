"""wsp._core_py -- the pure-Python twin of the compiled core ``wsp._core``.

Same classes, same methods, same handle values, same errors: it is the
oracle the test-suite holds the Cython core to, and the core that runs where
no compiler is available (``WSP_NO_EXTENSIONS=1``).  The algorithms mirror
the C ones step by step (see ``_core.pxd`` for the handle layout) so that
the same calls give the same results, value for value.
"""
from __future__ import annotations

import math
import operator
import sys
import threading
import time
import weakref
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .errors import WSA_INVALID_HANDLE, WSAEINVAL, WSAENOBUFS, WSAENOTSOCK, WinsockError

if TYPE_CHECKING:
    from typing_extensions import Buffer   # collections.abc.Buffer from 3.12 on

__all__ = ["HandleTable", "ThreadRegistry", "CompletionQueue", "build_info", "debug_counters"]

# Handle values: ((index << SLOT_GEN_BITS) | generation) << 2 -- see _core.pxd.
SLOT_INDEX_BITS = 32
SLOT_GEN_BITS = 21
SLOT_GEN_MAX = (1 << SLOT_GEN_BITS) - 1
SLOT_INDEX_LIMIT = 1 << SLOT_INDEX_BITS
_U64_LIMIT = 1 << 64

_counters_lock = threading.Lock()
_counters = {"tables": 0, "registries": 0, "queues": 0, "parking_locks": 0,
             "apc_nodes": 0, "thread_records": 0, "parked": 0}


def _count(kind: str, delta: int) -> None:
    with _counters_lock:
        _counters[kind] += delta


def build_info() -> dict[str, Any]:
    """How the core was built: the pure twin is not compiled."""
    return {"cython": None, "flags": None, "debug": False}


def debug_counters() -> dict[str, int]:
    """Core objects alive right now, by kind (same keys and meaning as the
    compiled core's; the pure twin allocates no parking locks or APC nodes of
    its own, so those stay at zero).

    ``thread_records`` counts the thread-lifetime records of every registry
    (one per ident in use, plus each ended lifetime that still has an open
    handle).  ``parked`` counts the threads parked in a core wait at this
    moment (``CompletionQueue.get``/``get_many``, ``ThreadRegistry.wait``):
    a thread is counted from the moment its wait is registered where a post,
    close, ``wake_waiters``, ``queue_apc`` or ``end_thread`` will find it,
    until it comes back from parking (woken, timed out or interrupted)."""
    with _counters_lock:
        return dict(_counters)


# ------------------------------------------------------------ argument checks
# An int subclass is read through int.__index__, which copies its value to
# a plain int without running any method the subclass defines -- as the C
# core reads its digits.

def _handle_value(obj: object) -> int | None:
    """The integer value of a handle argument, or None if it cannot name one."""
    if not isinstance(obj, int):
        return None
    value = int.__index__(obj)
    return value if 0 <= value < _U64_LIMIT else None


def _u64_arg(obj: object) -> int:
    value = operator.index(obj)  # TypeError for floats, str, None
    if not 0 <= value < _U64_LIMIT:
        raise WinsockError(WSAEINVAL)
    return value


def _count_arg(obj: object) -> int:
    value = operator.index(obj)
    if not 0 <= value < 1 << 63:
        raise WinsockError(WSAEINVAL)
    return value


def _batch_count_arg(obj: object) -> int:
    """How many things a batch call should create: TypeError for a
    non-integer, WSAEINVAL if negative; any size otherwise (the caller
    compares it with its room: too many is WSAENOBUFS)."""
    value = operator.index(obj)
    if value < 0:
        raise WinsockError(WSAEINVAL)
    return value


# Buffer arguments (``docs/guide/spi-model.rst, "The core"``: buffer forms), rule for rule and
# message for message as u64_buffer() in common.pxi: a one-dimensional C-contiguous buffer of
# native unsigned 64-bit items -- format 'Q', or 'L' where that is 8 bytes, optionally after '@',
# '=' or the prefix of this host's byte order -- checked in the order item type, shape,
# writability.
_NATIVE_ORDER = "<" if sys.byteorder == "little" else ">!"


def _u64_format(fmt: str, itemsize: int) -> bool:
    if itemsize != 8:
        return False
    if fmt[:1] in ("@", "=") or (fmt[:1] and fmt[:1] in _NATIVE_ORDER):
        fmt = fmt[1:]
    return fmt in ("Q", "L")


def _u64_view(obj: object, writable: bool, name: str) -> memoryview:
    """A 1-D memoryview of format 'Q' over the buffer of `obj` (the caller
    releases it: ``with``); TypeError naming `name` if `obj` is not a buffer
    argument of this kind."""
    try:
        view = memoryview(obj)  # type: ignore[arg-type]
    except (TypeError, BufferError, ValueError):
        raise TypeError(f"{name} must be a buffer of unsigned 64-bit integers, "
                        f"not {type(obj).__name__}") from None
    with view:
        if not _u64_format(view.format, view.itemsize):
            raise TypeError(f"{name} must hold unsigned 64-bit integers (format 'Q'), "
                            f"not items of format {view.format!r} and {view.itemsize} bytes")
        if view.ndim != 1 or not view.c_contiguous:
            raise TypeError(f"{name} must be a one-dimensional C-contiguous buffer")
        if writable and view.readonly:
            raise TypeError(f"{name} must be a writable buffer")
        if view.format == "Q":
            return view[:]               # outlives `view`: it holds the export itself
        with view.cast("B") as raw:
            return raw.cast("Q")


# Timeouts (``docs/guide/spi-model.rst, "The core"``), step for step as timeout_seconds() in
# common.pxi: None waits forever; a non-number is a TypeError; a timeout that is not a finite
# number >= 0 (negative, NaN, +inf, -inf) is WSAEINVAL; a finite one above _TIMEOUT_FOREVER seconds
# -- even one too large for a float, like 10**400 -- waits forever.
_TIMEOUT_FOREVER = 1e12


def _timeout_arg(timeout: object) -> float | None:
    """Seconds to wait (None: forever); same checks as the compiled core."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)) or not (
            isinstance(timeout, (int, float)) or hasattr(type(timeout), "__float__")):
        raise TypeError(f"timeout must be a number of seconds or None, "
                        f"not {type(timeout).__name__}")
    try:
        seconds = float(timeout)  # type: ignore[arg-type]
    except OverflowError:
        # Finite but beyond any float (a huge int or Fraction): its sign
        # decides between WSAEINVAL and forever.
        try:
            negative = bool(timeout < 0)  # type: ignore[operator]
        except Exception:
            raise WinsockError(WSAEINVAL) from None
        if negative:
            raise WinsockError(WSAEINVAL) from None
        return None
    except ValueError:             # e.g. Decimal("sNaN")
        raise WinsockError(WSAEINVAL) from None
    if seconds == math.inf and not isinstance(timeout, float):
        try:
            infinite = bool(timeout == seconds)
        except Exception:
            infinite = True
        if not infinite:
            return None            # finite, only its float is inf (Decimal("1e400"))
    if not seconds >= 0.0 or seconds == math.inf:   # NaN, negative, infinite
        raise WinsockError(WSAEINVAL)
    return None if seconds > _TIMEOUT_FOREVER else seconds


def _ident_arg(ident: object) -> int:
    if ident is None:
        return threading.get_ident()
    if not isinstance(ident, int):
        raise TypeError(f"thread ident must be an int, not {type(ident).__name__}")
    value = int.__index__(ident)
    if not 0 <= value < _U64_LIMIT:
        raise WinsockError(WSAEINVAL)
    return value


class _Deadline:
    """Remaining time of a wait, on the monotonic clock."""

    __slots__ = ("end",)

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        if self.end is None:
            return None
        return max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.0


# ------------------------------------------------------------------ slots
class _Slots:
    """The generation-tagged slot table, exactly as slots_* in common.pxi."""

    __slots__ = ("state", "payload", "free_stack", "live", "max_live")

    def __init__(self, max_live: int) -> None:
        self.state: list[int] = []        # generation << 1 | live bit
        self.payload: list[Any] = []
        self.free_stack: list[int] = []   # reused last-in first-out
        self.live = 0
        self.max_live = min(max_live, SLOT_INDEX_LIMIT)

    def acquire(self, payload: Any) -> int | None:
        if self.live >= self.max_live:
            return None
        if self.free_stack:
            i = self.free_stack.pop()
        else:
            i = len(self.state)
            self.state.append(0)
            self.payload.append(None)
        gen = (self.state[i] >> 1) + 1
        if gen > SLOT_GEN_MAX:
            gen = 1
        self.state[i] = (gen << 1) | 1
        self.payload[i] = payload
        self.live += 1
        return ((i << SLOT_GEN_BITS) | gen) << 2

    def find(self, handle: int | None) -> int:
        if handle is None or handle & 3:
            return -1
        gen = (handle >> 2) & SLOT_GEN_MAX
        i = handle >> (SLOT_GEN_BITS + 2)
        if gen == 0 or i >= len(self.state) or self.state[i] != (gen << 1) | 1:
            return -1
        return i

    def release(self, i: int) -> Any:
        payload = self.payload[i]
        self.payload[i] = None
        self.state[i] &= ~1
        self.free_stack.append(i)
        self.live -= 1
        return payload

    def handle_of(self, i: int) -> int:
        return ((i << SLOT_GEN_BITS) | (self.state[i] >> 1)) << 2


def _snapshot(items: object, message: str) -> tuple[Any, ...]:
    """tuple(items), with `message` as the TypeError for a non-iterable (a
    TypeError raised while iterating an iterable propagates as it is)."""
    try:
        return tuple(items)  # type: ignore[call-overload]
    except TypeError:
        if hasattr(type(items), "__iter__") or hasattr(type(items), "__getitem__"):
            raise
        raise TypeError(message) from None


# ------------------------------------------------------------- HandleTable
class HandleTable:
    """Thread-safe table of socket handles, each carrying a Python context.

    ``HandleTable(max_handles=None)``: ``create`` raises
    ``WinsockError(WSAENOBUFS)`` once ``max_handles`` handles are live.
    """

    __slots__ = ("_lock", "_slots", "__weakref__")

    def __init__(self, max_handles: int | None = None) -> None:
        if max_handles is None:
            limit = SLOT_INDEX_LIMIT
        else:
            limit = _count_arg(max_handles)
            if limit == 0:
                raise WinsockError(WSAEINVAL)
        self._lock = threading.Lock()
        self._slots = _Slots(limit)
        _count("tables", 1)

    def __del__(self) -> None:
        if hasattr(self, "_slots"):   # __init__ failed: nothing was counted
            _count("tables", -1)

    @property
    def max_handles(self) -> int:
        """The limit on live handles."""
        return self._slots.max_live

    def create(self, context: Any = None) -> int:
        """Store `context` under a new handle and return the handle.

        Raises WinsockError(WSAENOBUFS) when the table is full.
        """
        with self._lock:
            handle = self._slots.acquire(context)
        if handle is None:
            raise WinsockError(WSAENOBUFS)
        return handle

    def query(self, handle: object) -> Any:
        """The context stored under `handle`; WSAENOTSOCK if it is not live."""
        value = _handle_value(handle)
        with self._lock:
            i = self._slots.find(value)
            if i >= 0:
                return self._slots.payload[i]
        raise WinsockError(WSAENOTSOCK)

    def close(self, handle: object) -> Any:
        """Release `handle` and return its context; WSAENOTSOCK if not live."""
        value = _handle_value(handle)
        with self._lock:
            i = self._slots.find(value)
            if i >= 0:
                return self._slots.release(i)
        raise WinsockError(WSAENOTSOCK)

    def __contains__(self, handle: object) -> bool:
        value = _handle_value(handle)
        with self._lock:
            return self._slots.find(value) >= 0

    def __len__(self) -> int:
        with self._lock:
            return self._slots.live

    def handles(self) -> list[int]:
        """A snapshot list of the live handles, in slot order."""
        with self._lock:
            slots = self._slots
            return [slots.handle_of(i) for i, state in enumerate(slots.state) if state & 1]

    def create_many(self, n: int, context: Any = None) -> list[int]:
        """Create `n` handles sharing `context`, all or none; return them in
        creation order.  WSAEINVAL for a negative `n`, WSAENOBUFS if they do
        not all fit (checked before any work), TypeError for a non-integer."""
        count = _batch_count_arg(n)
        with self._lock:
            slots = self._slots
            if count > slots.max_live - slots.live:   # before any work, whatever n is
                raise WinsockError(WSAENOBUFS)
            return [slots.acquire(context) for _ in range(count)]  # type: ignore[misc]

    def close_many(self, handles: Iterable[object]) -> int:
        """Close every live handle in `handles` (an iterable); unknown,
        stale and duplicate ones are skipped.  Return how many were closed."""
        values = [_handle_value(h) for h in _snapshot(handles, "close_many() needs an "
                                                               "iterable of handles")]
        return self._close_values(values)

    def _close_values(self, values: Sequence[int | None]) -> int:
        contexts = []
        with self._lock:
            slots = self._slots
            for value in values:
                i = slots.find(value)
                if i >= 0:
                    contexts.append(slots.release(i))
        closed = len(contexts)
        del contexts  # contexts die outside the lock, as in the C core
        return closed

    def create_into(self, buf: Buffer, context: Any = None) -> int:
        """Fill every item of `buf` with a new handle, all sharing `context`,
        and return how many (``len(buf)``); the same handles, in the same
        order, as ``create_many(len(buf), context)``.  `buf`: a writable,
        one-dimensional, C-contiguous buffer of unsigned 64-bit items, else
        TypeError.  WSAENOBUFS if they do not all fit: nothing is created
        and `buf` is left as it was."""
        with _u64_view(buf, True, "create_into() argument 'buf'") as out:
            count = len(out)
            if count == 0:
                return 0
            with self._lock:
                slots = self._slots
                if count > slots.max_live - slots.live:
                    raise WinsockError(WSAENOBUFS)
                handles: list[int] = [slots.acquire(context)  # type: ignore[misc]
                                      for _ in range(count)]
            out[:] = array("Q", handles)
            return count

    def close_from(self, buf: Buffer) -> int:
        """Close every live handle in `buf`, a one-dimensional C-contiguous
        buffer of unsigned 64-bit items (read-only is fine; TypeError for
        anything else); unknown, stale and duplicate ones are skipped.
        Return how many were closed."""
        with _u64_view(buf, False, "close_from() argument 'buf'") as values:
            handles = values.tolist()
        return self._close_values(handles)

    def __repr__(self) -> str:
        return f"<wsp._core_py.HandleTable live={len(self)} max_handles={self.max_handles}>"


# ------------------------------------------------------------ parked waiters
_WAITING, _WOKEN, _DELIVERED, _CLOSED, _ENDED = 0, 1, 2, 3, 4


class _Waiter:
    __slots__ = ("sem", "state", "packet")

    def __init__(self) -> None:
        self.sem = threading.Lock()
        self.sem.acquire()          # held: the next acquire blocks until woken
        self.state = _WAITING
        self.packet: tuple[int, int, int, int] | None = None


def _park(waiter: _Waiter, lock: threading.Lock, waiters: list[_Waiter],
          deadline: _Deadline) -> bool:
    """Sleep until woken (True) or the deadline passes (False, and `waiter`
    is off `waiters` again).  A KeyboardInterrupt also takes it off the list
    unless it was already woken, in which case the caller must deal with what
    it was handed.

    The caller registered `waiter` (and counted it in ``parked``) under
    `lock`; it un-counts it when this returns.  A long wait sleeps in slices
    of at most threading.TIMEOUT_MAX seconds (Lock.acquire refuses longer
    ones), until the deadline: any finite timeout up to 1e12 s works."""
    try:
        while True:
            remaining = deadline.remaining()
            if remaining is None:
                woken = waiter.sem.acquire()
            else:
                woken = waiter.sem.acquire(timeout=min(remaining, threading.TIMEOUT_MAX))
            if woken or deadline.passed():
                break
    except BaseException:
        with lock:
            if waiter.state == _WAITING:
                waiters.remove(waiter)
        raise
    if woken:
        return True
    with lock:
        if waiter.state == _WAITING:
            waiters.remove(waiter)
            return False
    waiter.sem.acquire()            # a waker claimed us as we gave up
    return True


# ----------------------------------------------------------- ThreadRegistry
class _ThreadRecord:
    """One thread lifetime (see threads.pxi): live while in ``_records``."""

    __slots__ = ("ident", "open_handles", "apcs", "waiters", "ended")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.open_handles = 0
        self.apcs: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self.waiters: list[_Waiter] = []
        self.ended = False
        _count("thread_records", 1)


class _ThreadEndGuard:
    """Lives in a registry's threading.local for the one thread that opened
    a handle for itself; when that thread ends, CPython drops it there and
    this calls ``registry.end_thread(ident)``."""

    __slots__ = ("_registry", "_ident")

    def __init__(self, registry: ThreadRegistry, ident: int) -> None:
        self._registry = weakref.ref(registry)
        self._ident = ident

    def __del__(self) -> None:
        registry = self._registry()
        if registry is not None:
            try:
                registry.end_thread(self._ident)
            except BaseException:  # noqa: BLE001 -- at interpreter exit, say
                pass


class ThreadRegistry:
    """Thread handles and the APC queue of each thread lifetime.

    A handle names one lifetime of its thread: once that thread has ended
    (``end_thread``, called by itself at the exit of a thread that opened a
    handle for itself), a later thread that gets the same ident from the OS
    starts afresh and never runs APCs queued to the one before.
    """

    __slots__ = ("_lock", "_slots", "_records", "_local", "_nended", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots = _Slots(SLOT_INDEX_LIMIT)
        self._records: dict[int, _ThreadRecord] = {}
        self._local = threading.local()
        self._nended = 0            # ended records still held by open handles
        _count("registries", 1)

    def __del__(self) -> None:
        try:
            _count("thread_records", -(len(self._records) + self._nended))
        except AttributeError:      # __init__ never ran
            return
        _count("registries", -1)

    def _release_if_idle(self, rec: _ThreadRecord) -> None:
        if not rec.open_handles and not rec.apcs and not rec.waiters:
            del self._records[rec.ident]
            _count("thread_records", -1)

    def _record_or_none(self, handle: object) -> _ThreadRecord | None:
        i = self._slots.find(_handle_value(handle))
        return self._slots.payload[i] if i >= 0 else None

    def _live_record(self, tid: int) -> _ThreadRecord:
        rec = self._records.get(tid)
        if rec is None:
            rec = self._records[tid] = _ThreadRecord(tid)
        return rec

    def open(self, ident: int | None = None) -> int:
        """A new thread handle for OS thread `ident` (default: the caller).

        Each call returns a different handle, even for the same thread; each
        must be closed once.  The handle names the thread's current lifetime
        (see ``end_thread``).  When the handle is for the calling thread
        (`ident` None or ``threading.get_ident()``), the registry also
        arranges to learn when this thread ends: a guard kept in a
        per-registry ``threading.local`` (made once per thread) calls
        ``end_thread(ident)`` when CPython tears down the thread's
        thread-local data at its exit -- before the OS can hand the ident to
        a new thread.  Opening for another thread's ident sets no guard.
        """
        tid = _ident_arg(ident)
        with self._lock:
            rec = self._live_record(tid)
            handle = self._slots.acquire(rec)
            if handle is None:
                self._release_if_idle(rec)
                raise WinsockError(WSAENOBUFS)
            rec.open_handles += 1
        if tid == threading.get_ident():
            try:
                local = self._local
                if getattr(local, "guard", None) is None:
                    local.guard = _ThreadEndGuard(self, tid)
            except BaseException:
                self.close(handle)
                raise
        return handle

    def duplicate(self, handle: object) -> int:
        """A new thread handle naming the same thread lifetime as `handle`
        (like DuplicateHandle): APCs queued through either reach the same
        queue, and ``ended`` answers alike for both.  Each must be closed
        once.  WSAEINVAL if `handle` is unknown or closed, WSAENOBUFS if the
        registry is full."""
        with self._lock:
            rec = self._record_or_none(handle)
            if rec is None:
                raise WinsockError(WSAEINVAL)
            new_handle = self._slots.acquire(rec)
            if new_handle is None:
                raise WinsockError(WSAENOBUFS)
            rec.open_handles += 1
            return new_handle

    def close(self, handle: object) -> None:
        """Close a thread handle; WSAEINVAL if unknown or already closed.

        APCs already queued through it stay queued: closing a thread handle
        does not cancel work queued to the thread.  Closing the last handle
        of an ended lifetime frees it and drops the APCs left on it (they
        never run)."""
        discarded = None
        with self._lock:
            i = self._slots.find(_handle_value(handle))
            if i < 0:
                raise WinsockError(WSAEINVAL)
            rec = self._slots.release(i)
            rec.open_handles -= 1
            if not rec.ended:
                self._release_if_idle(rec)
            elif not rec.open_handles:
                discarded, rec.apcs = rec.apcs, deque()
                self._nended -= 1
                _count("thread_records", -1)
        del discarded               # dropped outside the lock: may run Python code

    def end_thread(self, ident: int | None) -> int:
        """End the current lifetime of OS thread `ident`; return how many
        APCs it had queued.

        The record of `ident` is detached from the ident -- a later
        ``open``/``run_apcs``/``wait``/``pending`` for `ident` starts a
        fresh, empty record -- and marked ended: its queued APCs never run,
        and APCs queued later through its handles are accepted and never run
        either.  Threads parked in ``wait`` on it wake and return False.  The
        ended record is freed, and the APCs on it are dropped (outside the
        registry's lock: dropping may run Python code), when its last handle
        is closed -- at once if it has none.  The return value counts the
        APCs that were queued when it ended: discarded at once if no handle
        was open, else left stranded until the last handle is closed
        (``pending_of`` still counts them).  Ending an ident that has no
        record is a no-op that returns 0.

        A thread that opened a handle for itself calls this for its own ident
        when it ends (see ``open``); call it directly when a thread's end is
        known some other way.
        """
        tid = _ident_arg(ident)
        discarded = None
        with self._lock:
            rec = self._records.pop(tid, None)
            if rec is None:
                return 0
            rec.ended = True
            stranded = len(rec.apcs)
            woken, rec.waiters = rec.waiters, []
            for waiter in woken:
                waiter.state = _ENDED
            if rec.open_handles:
                self._nended += 1
            else:
                discarded, rec.apcs = rec.apcs, deque()
                _count("thread_records", -1)
        for waiter in woken:
            waiter.sem.release()
        del discarded               # dropped outside the lock: may run Python code
        return stranded

    def ended(self, handle: object) -> bool:
        """Whether the thread lifetime that `handle` names is over (see
        ``end_thread``); WSAEINVAL if `handle` is unknown or closed."""
        with self._lock:
            rec = self._record_or_none(handle)
            if rec is None:
                raise WinsockError(WSAEINVAL)
            return rec.ended

    def ident_of(self, handle: object) -> int:
        """The OS thread ident behind a thread handle (still the old ident
        once that lifetime has ended); WSAEINVAL if not open."""
        with self._lock:
            rec = self._record_or_none(handle)
            if rec is None:
                raise WinsockError(WSAEINVAL)
            return rec.ident

    def __contains__(self, handle: object) -> bool:
        with self._lock:
            return self._record_or_none(handle) is not None

    def __len__(self) -> int:
        """How many thread handles are open."""
        with self._lock:
            return self._slots.live

    def queue_apc(self, handle: object, func: Callable[[Any], Any], context: Any = None) -> None:
        """Queue ``func(context)`` to the thread lifetime behind `handle`; it
        runs in that thread's next ``run_apcs``.  Wakes the thread if it is
        in ``wait``.  If that lifetime has ended the APC is accepted and
        never runs (it is dropped with the lifetime's last handle).
        WSAEINVAL for a closed handle, TypeError if `func` is not callable."""
        if not callable(func):
            raise TypeError(f"APC function must be callable, not {type(func).__name__}")
        with self._lock:
            rec = self._record_or_none(handle)
            if rec is None:
                raise WinsockError(WSAEINVAL)
            rec.apcs.append((func, context))
            woken, rec.waiters = rec.waiters, []
            for waiter in woken:
                waiter.state = _WOKEN
        for waiter in woken:
            waiter.sem.release()

    def run_apcs(self, ident: int | None = None) -> int:
        """Run, on the calling thread, every APC queued to the current
        lifetime of thread `ident` (default: the caller), oldest first,
        including any queued while they run; return how many ran.  If an APC
        raises, the exception propagates and the APCs behind it stay
        queued."""
        tid = _ident_arg(ident)
        ran = 0
        while True:
            with self._lock:
                rec = self._records.get(tid)
                if rec is None or not rec.apcs:
                    return ran
                func, context = rec.apcs.popleft()
                self._release_if_idle(rec)
            ran += 1
            func(context)

    def pending(self, ident: int | None = None) -> int:
        """How many APCs are queued to the current lifetime of thread `ident`
        (default: the caller)."""
        tid = _ident_arg(ident)
        with self._lock:
            rec = self._records.get(tid)
            return len(rec.apcs) if rec is not None else 0

    def pending_of(self, handle: object) -> int:
        """How many APCs are queued on the thread lifetime behind `handle`
        (ended or not: an ended one keeps its stranded APCs until its last
        handle is closed); WSAEINVAL if `handle` is unknown or closed."""
        with self._lock:
            rec = self._record_or_none(handle)
            if rec is None:
                raise WinsockError(WSAEINVAL)
            return len(rec.apcs)

    def wait(self, ident: int | None = None, timeout: float | None = None) -> bool:
        """Block until an APC is queued to thread `ident` (default: the
        caller) or `timeout` seconds pass (None: forever).  Return True if an
        APC is pending, False on timeout or when the lifetime waited on ends
        (``end_thread``).  Does not run the APCs."""
        tid = _ident_arg(ident)
        deadline = _Deadline(_timeout_arg(timeout))
        waiter = None
        while True:
            with self._lock:
                rec = self._records.get(tid)
                if rec is not None and rec.apcs:
                    return True
                if deadline.passed():
                    return False
                if waiter is None:
                    waiter = _Waiter()
                rec = self._live_record(tid)
                waiter.state = _WAITING
                rec.waiters.append(waiter)
                _count("parked", 1)      # registered: queue_apc/end_thread find it
            try:
                _park(waiter, self._lock, rec.waiters, deadline)
            finally:
                _count("parked", -1)
                with self._lock:
                    current = self._records.get(tid)
                    if current is not None:
                        self._release_if_idle(current)
            if waiter.state == _ENDED:
                return False


# ---------------------------------------------------------- CompletionQueue
Packet = tuple  # (status, nbytes, key, overlapped_id)


def _packet_from(item: object) -> tuple[int, int, int, int]:
    if type(item) is not tuple:
        try:
            item = tuple(item)  # type: ignore[call-overload]
        except TypeError:
            raise TypeError("each packet must be a (status, nbytes, key, overlapped_id) "
                            f"sequence, not {type(item).__name__}") from None
    if len(item) != 4:  # type: ignore[arg-type]
        raise TypeError("each packet must have 4 fields (status, nbytes, key, "
                        f"overlapped_id), not {len(item)}")  # type: ignore[arg-type]
    s, n, k, o = item  # type: ignore[misc]
    return (_u64_arg(s), _u64_arg(n), _u64_arg(k), _u64_arg(o))


def _since_arg(since: object) -> None:
    """Check a get's `since`: None or a value of CompletionQueue.wakes."""
    if since is not None and (type(since) is not int or since < 0):
        raise TypeError("since must be None or a value of CompletionQueue.wakes")


class CompletionQueue:
    """The queue of an I/O completion port: FIFO packets
    ``(status, nbytes, key, overlapped_id)`` of unsigned 64-bit integers."""

    __slots__ = ("_lock", "_ring", "_waiters", "_closed", "_posted", "_wakes", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ring: deque[tuple[int, int, int, int]] = deque()
        self._waiters: list[_Waiter] = []   # parked getters; the last is served first
        self._closed = False
        self._posted = 0                    # packets ever accepted (see the posted property)
        self._wakes = 0                     # wake_waiters() calls (see the wakes property)
        _count("queues", 1)

    def __del__(self) -> None:
        _count("queues", -1)

    def _deliver(self, packets: list[tuple[int, int, int, int]]) -> None:
        woken = []
        with self._lock:
            if self._closed:
                raise WinsockError(WSA_INVALID_HANDLE)
            i = 0
            while i < len(packets) and self._waiters:
                waiter = self._waiters.pop()
                waiter.packet = packets[i]
                waiter.state = _DELIVERED
                woken.append(waiter)
                i += 1
            self._ring.extend(packets[i:])
            self._posted += len(packets)
        for waiter in woken:
            waiter.sem.release()

    def post(self, status: int, nbytes: int, key: int, overlapped_id: int) -> None:
        """Queue one packet (or hand it to a parked getter)."""
        self._deliver([(_u64_arg(status), _u64_arg(nbytes), _u64_arg(key),
                        _u64_arg(overlapped_id))])

    def post_many(self, packets: Iterable[object]) -> None:
        """Queue a sequence of packets at once, all or none."""
        items = _snapshot(packets, "post_many() needs an iterable of packets")
        self._deliver([_packet_from(item) for item in items])

    def _wait_first(self, seconds: float | None,
                    since: int | None = None) -> tuple[int, int, int, int] | None:
        deadline = _Deadline(seconds)
        waiter = None
        while True:
            with self._lock:
                if self._ring:
                    return self._ring.popleft()
                if self._closed or deadline.passed():
                    return None
                if since is not None and self._wakes != since:
                    return None              # woken before it parked: as a wake
                if waiter is None:
                    waiter = _Waiter()
                waiter.state = _WAITING
                self._waiters.append(waiter)
                _count("parked", 1)      # registered: a post will find it
            try:
                woken = _park(waiter, self._lock, self._waiters, deadline)
            except BaseException:
                _count("parked", -1)
                if waiter.state == _DELIVERED:
                    # Interrupted after a packet was handed over: put it back
                    # at the front so that it is not lost.
                    waiter.sem.acquire()
                    with self._lock:
                        self._ring.appendleft(waiter.packet)  # type: ignore[arg-type]
                raise
            _count("parked", -1)
            if woken:
                if waiter.state == _DELIVERED:
                    return waiter.packet
                return None                  # closed, or wake_waiters()

    def get(self, timeout: float | None = None,
            since: int | None = None) -> tuple[int, int, int, int] | None:
        """The oldest packet as a tuple, or None after `timeout` seconds
        (None: wait forever) or when the queue is closed.  `since`: a value
        of :attr:`wakes` read earlier -- if wake_waiters() has been called
        since, return None instead of waiting."""
        _since_arg(since)
        seconds = _timeout_arg(timeout)      # checked before any work
        with self._lock:
            if self._ring:
                return self._ring.popleft()
            if self._closed or seconds == 0.0:
                return None
        return self._wait_first(seconds, since)

    def get_many(self, max_entries: int, timeout: float | None = None,
                 since: int | None = None) -> list[tuple[int, int, int, int]]:
        """Up to `max_entries` packets, oldest first, in one call; waits (as
        `get` does, `since` too) only for the first.  [] on timeout or when
        closed."""
        want = _count_arg(max_entries)
        if want == 0:
            raise WinsockError(WSAEINVAL)
        _since_arg(since)
        return self._take_many(want, _timeout_arg(timeout), since)   # all checked first

    def _take_many(self, want: int, seconds: float | None,
                   since: int | None = None) -> list[tuple[int, int, int, int]]:
        with self._lock:
            ring = self._ring
            taken = [ring.popleft() for _ in range(min(want, len(ring)))]
            closed = self._closed
        if taken or closed or seconds == 0.0:
            return taken
        first = self._wait_first(seconds, since)
        if first is None:
            return []
        with self._lock:
            ring = self._ring
            return [first] + [ring.popleft() for _ in range(min(want - 1, len(ring)))]

    def post_from(self, buf: Buffer) -> None:
        """Post one packet per four items of `buf` -- ``(status, nbytes, key,
        overlapped_id)``, in order -- all or none.  `buf`: a one-dimensional
        C-contiguous buffer of unsigned 64-bit items (read-only is fine),
        else TypeError; a length that is not a multiple of 4 is WSAEINVAL;
        a closed queue WSA_INVALID_HANDLE."""
        with _u64_view(buf, False, "post_from() argument 'buf'") as view:
            if len(view) % 4:
                raise WinsockError(WSAEINVAL)
            values = iter(view.tolist())
        self._deliver(list(zip(values, values, values, values)))

    def get_into(self, buf: Buffer, timeout: float | None = None) -> int:
        """Fill `buf` with up to ``len(buf) // 4`` packets, oldest first,
        four items each, and return how many packets it wrote; waits (as
        `get` does, same timeouts) only for the first.  0 on timeout or when
        the queue is closed; items past the packets written are untouched.
        `buf`: a writable, one-dimensional, C-contiguous buffer of unsigned
        64-bit items, else TypeError; a length of 0 or one that is not a
        multiple of 4 is WSAEINVAL."""
        with _u64_view(buf, True, "get_into() argument 'buf'") as out:
            items = len(out)
            if items == 0 or items % 4:
                raise WinsockError(WSAEINVAL)
            packets = self._take_many(items // 4, _timeout_arg(timeout))
            if packets:
                out[:4 * len(packets)] = array("Q", [v for p in packets for v in p])
            return len(packets)

    def close(self) -> list[tuple[int, int, int, int]]:
        """Close the port: parked getters return None at once, later posts
        raise WSA_INVALID_HANDLE, later gets return None / [] at once.
        Returns the packets that were still queued (discarded); closing again
        returns []."""
        with self._lock:
            if self._closed:
                discarded: list[tuple[int, int, int, int]] = []
            else:
                self._closed = True
                discarded = list(self._ring)
                self._ring.clear()
            woken, self._waiters = self._waiters, []
            for waiter in woken:
                waiter.state = _CLOSED
        for waiter in woken:
            waiter.sem.release()
        return discarded

    def wake_waiters(self) -> int:
        """Wake every thread parked in get()/get_many(); each returns as if
        its timeout had passed.  Return how many were woken."""
        with self._lock:
            self._wakes += 1
            woken, self._waiters = self._waiters, []
            for waiter in woken:
                waiter.state = _WOKEN
        for waiter in woken:
            waiter.sem.release()
        return len(woken)

    @property
    def closed(self) -> bool:
        """True once close() has been called."""
        return self._closed

    @property
    def wakes(self) -> int:
        """How many times wake_waiters() has been called (a get's `since`)."""
        return self._wakes

    @property
    def posted(self) -> int:
        """How many packets were ever posted (queued or handed to a getter)."""
        with self._lock:
            return self._posted

    def __len__(self) -> int:
        with self._lock:
            return len(self._ring)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<wsp._core_py.CompletionQueue {state} queued={len(self)}>"
