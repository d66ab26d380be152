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
import threading
from collections import deque
from typing import Any, Callable, Iterable

from .errors import WSA_INVALID_HANDLE, WSAEINVAL, WSAENOBUFS, WSAENOTSOCK, WinsockError

__all__ = ["HandleTable", "ThreadRegistry", "CompletionQueue", "build_info", "debug_counters"]

# Handle values: ((index << SLOT_GEN_BITS) | generation) << 2 -- see _core.pxd.
SLOT_INDEX_BITS = 32
SLOT_GEN_BITS = 21
SLOT_GEN_MAX = (1 << SLOT_GEN_BITS) - 1
SLOT_INDEX_LIMIT = 1 << SLOT_INDEX_BITS
_U64_LIMIT = 1 << 64

_counters_lock = threading.Lock()
_counters = {"tables": 0, "registries": 0, "queues": 0, "parking_locks": 0,
             "apc_nodes": 0, "thread_records": 0}


def _count(kind: str, delta: int) -> None:
    with _counters_lock:
        _counters[kind] += delta


def build_info() -> dict[str, Any]:
    """How the core was built: the pure twin is not compiled."""
    return {"cython": None, "flags": None, "debug": False}


def debug_counters() -> dict[str, int]:
    """Core objects alive right now, by kind (same keys as the compiled core;
    the pure twin allocates no parking locks, APC nodes or thread records of
    its own, so those stay at zero)."""
    with _counters_lock:
        return dict(_counters)


# ------------------------------------------------------------ argument checks
def _handle_value(obj: object) -> int | None:
    """The integer value of a handle argument, or None if it cannot name one."""
    if not isinstance(obj, int) or not 0 <= obj < _U64_LIMIT:
        return None
    return int(obj)


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


def _timeout_arg(timeout: object) -> float | None:
    """Seconds to wait (None: forever); same checks as the compiled core."""
    if timeout is None:
        return None
    if isinstance(timeout, (str, bytes, bytearray)) or not (
            isinstance(timeout, (int, float)) or hasattr(type(timeout), "__float__")):
        raise TypeError(f"timeout must be a number of seconds or None, "
                        f"not {type(timeout).__name__}")
    seconds = float(timeout)  # type: ignore[arg-type]
    if not seconds >= 0.0:
        raise WinsockError(WSAEINVAL)
    if seconds > 1e12 or math.isinf(seconds):
        return None
    return seconds


def _ident_arg(ident: object) -> int:
    if ident is None:
        return threading.get_ident()
    if not isinstance(ident, int):
        raise TypeError(f"thread ident must be an int, not {type(ident).__name__}")
    if not 0 <= ident < _U64_LIMIT:
        raise WinsockError(WSAEINVAL)
    return int(ident)


class _Deadline:
    """Remaining time of a wait, on the monotonic clock."""

    __slots__ = ("end",)

    def __init__(self, seconds: float | None) -> None:
        import time
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        import time
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
        _count("tables", -1)

    @property
    def max_handles(self) -> int:
        return self._slots.max_live

    def create(self, context: Any = None) -> int:
        with self._lock:
            handle = self._slots.acquire(context)
        if handle is None:
            raise WinsockError(WSAENOBUFS)
        return handle

    def query(self, handle: object) -> Any:
        value = _handle_value(handle)
        with self._lock:
            i = self._slots.find(value)
            if i >= 0:
                return self._slots.payload[i]
        raise WinsockError(WSAENOTSOCK)

    def close(self, handle: object) -> Any:
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
        with self._lock:
            slots = self._slots
            return [slots.handle_of(i) for i, state in enumerate(slots.state) if state & 1]

    def create_many(self, n: int, context: Any = None) -> list[int]:
        count = _count_arg(n)
        with self._lock:
            slots = self._slots
            if count > slots.max_live - slots.live:
                raise WinsockError(WSAENOBUFS)
            return [slots.acquire(context) for _ in range(count)]  # type: ignore[misc]

    def close_many(self, handles: Iterable[object]) -> int:
        try:
            values = [_handle_value(h) for h in handles]
        except TypeError:
            raise TypeError("close_many() needs an iterable of handles") from None
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

    def __repr__(self) -> str:
        return f"<wsp._core_py.HandleTable live={len(self)} max_handles={self.max_handles}>"


# ------------------------------------------------------------ parked waiters
_WAITING, _WOKEN, _DELIVERED, _CLOSED = 0, 1, 2, 3


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
    it was handed."""
    try:
        remaining = deadline.remaining()
        woken = waiter.sem.acquire(timeout=-1 if remaining is None else remaining)
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
    __slots__ = ("ident", "open_handles", "apcs", "waiters")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.open_handles = 0
        self.apcs: deque[tuple[Callable[[Any], Any], Any]] = deque()
        self.waiters: list[_Waiter] = []


class ThreadRegistry:
    """Thread handles and the APC queue of each OS thread."""

    __slots__ = ("_lock", "_slots", "_records", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots = _Slots(SLOT_INDEX_LIMIT)
        self._records: dict[int, _ThreadRecord] = {}
        _count("registries", 1)

    def __del__(self) -> None:
        _count("registries", -1)

    def _release_if_idle(self, rec: _ThreadRecord) -> None:
        if not rec.open_handles and not rec.apcs and not rec.waiters:
            del self._records[rec.ident]

    def _record_or_none(self, handle: object) -> _ThreadRecord | None:
        i = self._slots.find(_handle_value(handle))
        return self._slots.payload[i] if i >= 0 else None

    def open(self, ident: int | None = None) -> int:
        tid = _ident_arg(ident)
        with self._lock:
            rec = self._records.get(tid)
            if rec is None:
                rec = self._records[tid] = _ThreadRecord(tid)
            handle = self._slots.acquire(rec)
            if handle is None:
                self._release_if_idle(rec)
                raise WinsockError(WSAENOBUFS)
            rec.open_handles += 1
            return handle

    def close(self, handle: object) -> None:
        with self._lock:
            i = self._slots.find(_handle_value(handle))
            if i < 0:
                raise WinsockError(WSAEINVAL)
            rec = self._slots.release(i)
            rec.open_handles -= 1
            self._release_if_idle(rec)

    def ident_of(self, handle: object) -> int:
        with self._lock:
            rec = self._record_or_none(handle)
            if rec is None:
                raise WinsockError(WSAEINVAL)
            return rec.ident

    def __contains__(self, handle: object) -> bool:
        with self._lock:
            return self._record_or_none(handle) is not None

    def __len__(self) -> int:
        with self._lock:
            return self._slots.live

    def queue_apc(self, handle: object, func: Callable[[Any], Any], context: Any = None) -> None:
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
        tid = _ident_arg(ident)
        with self._lock:
            rec = self._records.get(tid)
            return len(rec.apcs) if rec is not None else 0

    def wait(self, ident: int | None = None, timeout: float | None = None) -> bool:
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
                if rec is None:
                    rec = self._records[tid] = _ThreadRecord(tid)
                if waiter is None:
                    waiter = _Waiter()
                waiter.state = _WAITING
                rec.waiters.append(waiter)
            try:
                _park(waiter, self._lock, rec.waiters, deadline)
            finally:
                with self._lock:
                    current = self._records.get(tid)
                    if current is not None:
                        self._release_if_idle(current)


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


class CompletionQueue:
    """The queue of an I/O completion port: FIFO packets
    ``(status, nbytes, key, overlapped_id)`` of unsigned 64-bit integers."""

    __slots__ = ("_lock", "_ring", "_waiters", "_closed", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ring: deque[tuple[int, int, int, int]] = deque()
        self._waiters: list[_Waiter] = []   # parked getters; the last is served first
        self._closed = False
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
        for waiter in woken:
            waiter.sem.release()

    def post(self, status: int, nbytes: int, key: int, overlapped_id: int) -> None:
        self._deliver([(_u64_arg(status), _u64_arg(nbytes), _u64_arg(key),
                        _u64_arg(overlapped_id))])

    def post_many(self, packets: Iterable[object]) -> None:
        try:
            items = list(packets)
        except TypeError:
            raise TypeError("post_many() needs an iterable of packets") from None
        self._deliver([_packet_from(item) for item in items])

    def _wait_first(self, timeout: object) -> tuple[int, int, int, int] | None:
        deadline = _Deadline(_timeout_arg(timeout))
        waiter = None
        while True:
            with self._lock:
                if self._ring:
                    return self._ring.popleft()
                if self._closed or deadline.passed():
                    return None
                if waiter is None:
                    waiter = _Waiter()
                waiter.state = _WAITING
                self._waiters.append(waiter)
            try:
                woken = _park(waiter, self._lock, self._waiters, deadline)
            except BaseException:
                if waiter.state == _DELIVERED:
                    # Interrupted after a packet was handed over: put it back
                    # at the front so that it is not lost.
                    waiter.sem.acquire()
                    with self._lock:
                        self._ring.appendleft(waiter.packet)  # type: ignore[arg-type]
                raise
            if woken:
                if waiter.state == _DELIVERED:
                    return waiter.packet
                return None                  # closed, or wake_waiters()

    def get(self, timeout: float | None = None) -> tuple[int, int, int, int] | None:
        with self._lock:
            if self._ring:
                return self._ring.popleft()
            if self._closed:
                return None
        return self._wait_first(timeout)

    def get_many(self, max_entries: int,
                 timeout: float | None = None) -> list[tuple[int, int, int, int]]:
        want = _count_arg(max_entries)
        if want == 0:
            raise WinsockError(WSAEINVAL)
        with self._lock:
            ring = self._ring
            taken = [ring.popleft() for _ in range(min(want, len(ring)))]
            closed = self._closed
        if taken or closed:
            return taken
        first = self._wait_first(timeout)
        if first is None:
            return []
        with self._lock:
            ring = self._ring
            return [first] + [ring.popleft() for _ in range(min(want - 1, len(ring)))]

    def close(self) -> list[tuple[int, int, int, int]]:
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
        with self._lock:
            woken, self._waiters = self._waiters, []
            for waiter in woken:
                waiter.state = _WOKEN
        for waiter in woken:
            waiter.sem.release()
        return len(woken)

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._lock:
            return len(self._ring)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<wsp._core_py.CompletionQueue {state} queued={len(self)}>"
