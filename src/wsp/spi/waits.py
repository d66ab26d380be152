"""Alertable waits: SleepEx, WSAWaitForMultipleEvents, and how a queued APC
reaches a thread that is waiting somewhere (``docs/guide/spi-model.rst, "Process and upcalls"``).

This is the only place that knows which threads are in an alertable wait.
A thread blocked in an alertable wait that is not the core registry's own
``wait`` (an event wait here, a completion-port wait in ``ports``, a
blocking socket call in a provider) registers a *waker* for its OS thread
ident; :meth:`Waits.queue_apc` queues the APC in the core registry and
calls the wakers of the target thread, so the wait returns and runs it.

On a process that waits by a simulated clock (``Process.use_clock``) the
waits here count the clock's time instead of the wall clock's, following
the wait protocol of :mod:`wsp.spi.clock`; the wall-clock code is the
other branch, untouched.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable

from ..constants import WSA_MAXIMUM_WAIT_EVENTS
from ..errors import (WAIT_IO_COMPLETION, WSA_INVALID_PARAMETER, WSA_WAIT_EVENT_0,
                      WSA_WAIT_IO_COMPLETION, WSA_WAIT_TIMEOUT, WinsockError)
from .checks import block_time, ms_deadline, time_left, wait_time
from .events import Events
from .handles import EventEntry

__all__ = ["Waits", "Waiter"]


class Waiter:
    """A thread parked in WSAWaitForMultipleEvents; woken at most usefully
    once (extra wakes are harmless).  A wake that comes before the sleep is
    kept: the sleep then returns at once.  :attr:`woken` tells a simulated
    clock that the sleeper is about to act."""

    __slots__ = ("_lock", "woken")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        #: set by the first wake()
        self.woken = False

    def wake(self) -> None:
        """Let the sleeper go (a no-op if it was already woken)."""
        self.woken = True
        try:
            self._lock.release()
        except RuntimeError:        # already woken
            pass

    def sleep(self, timeout: float) -> None:
        """Sleep until woken or `timeout` seconds pass."""
        self._lock.acquire(timeout=timeout)


def _signalled(entries: list[Any], wait_all: bool) -> int | None:
    """What a wait on `entries` returns when their events hold: ``WSA_WAIT_EVENT_0``
    when all are signalled (`wait_all`), else ``WSA_WAIT_EVENT_0 + i`` for the
    lowest signalled index; None while they do not."""
    if wait_all:
        return WSA_WAIT_EVENT_0 if all(e.signalled for e in entries) else None
    for i, e in enumerate(entries):
        if e.signalled:
            return WSA_WAIT_EVENT_0 + i
    return None


class Waits:
    """The alertable-wait machinery of one process.  `registry` is a
    callable giving the process's current core ThreadRegistry (it is
    replaced when the process terminates)."""

    __slots__ = ("_registry", "events", "_lock", "_wakers", "clock")

    def __init__(self, registry: Callable[[], Any], events: Events) -> None:
        self._registry = registry
        self.events = events
        #: the simulated clock the waits count (wsp.spi.clock; set by
        #: Process.use_clock), or None: the wall clock
        self.clock: Any = None
        self._lock = threading.Lock()
        self._wakers: dict[int, list[Callable[[], Any]]] = {}   # ident -> wakers

    # -- reaching a waiting thread -------------------------------------------------
    def add_waker(self, ident: int, waker: Callable[[], Any]) -> None:
        """While registered, `waker()` is called whenever an APC is queued
        to thread `ident`."""
        with self._lock:
            self._wakers.setdefault(ident, []).append(waker)

    def remove_waker(self, ident: int, waker: Callable[[], Any]) -> None:
        """Undo :meth:`add_waker` (a no-op if it is not registered)."""
        with self._lock:
            wakers = self._wakers.get(ident)
            if wakers is not None:
                try:
                    wakers.remove(waker)
                except ValueError:
                    pass
                if not wakers:
                    del self._wakers[ident]

    def queue_apc(self, thread_handle: int, func: Callable[[Any], Any], context: Any) -> None:
        """Queue ``func(context)`` to the thread behind `thread_handle` and
        wake it if it is in an alertable wait (the registry's own ``wait``
        is woken by the registry).  WinsockError(WSAEINVAL) for a closed
        handle."""
        registry = self._registry()
        registry.queue_apc(thread_handle, func, context)
        if self._wakers:
            try:
                ident = registry.ident_of(thread_handle)
            except WinsockError:      # closed meanwhile: the APC is queued anyway
                return
            with self._lock:
                wakers = list(self._wakers.get(ident, ()))
            for wake in wakers:
                wake()

    def forget(self) -> None:
        """Drop every registered waker (the process terminated)."""
        with self._lock:
            self._wakers.clear()

    # -- the waits ---------------------------------------------------------------------
    def SleepEx(self, ms: int, alertable: bool) -> int:
        """Sleep `ms` milliseconds (INFINITE: forever).  An alertable sleep
        returns WAIT_IO_COMPLETION as soon as APCs queued to the calling
        thread have run; otherwise 0 after the time-out.  TypeError for a
        non-int `ms`; WSA_INVALID_PARAMETER outside a DWORD."""
        clock = self.clock
        if clock is not None:
            return self._sleep_by(clock, ms, alertable)
        deadline = ms_deadline(ms, "SleepEx")
        me = threading.get_ident()
        if not alertable:
            while True:
                left = time_left(deadline)
                if left is not None and left <= 0:
                    return 0
                time.sleep(wait_time(deadline))
        while True:
            registry = self._registry()
            if registry.run_apcs(me):
                return WAIT_IO_COMPLETION
            left = time_left(deadline)
            if left is not None and left <= 0:
                return 0
            registry.wait(me, left)

    def WSAWaitForMultipleEvents(self, events: Iterable[int], wait_all: bool, ms: int,
                                 alertable: bool) -> int:
        """Wait until one (or, with `wait_all`, every) event is signalled:
        ``WSA_WAIT_EVENT_0 + i`` for the lowest signalled index (or 0 when
        all are), ``WSA_WAIT_TIMEOUT``, or ``WSA_WAIT_IO_COMPLETION`` when an
        alertable wait ran APCs of the calling thread.  Signalled objects are
        checked before APCs, as the Windows kernel does.  WSA_INVALID_HANDLE
        for a handle that is not an event (also one closed while waiting);
        WSA_INVALID_PARAMETER for 0 or more than WSA_MAXIMUM_WAIT_EVENTS."""
        funcname = "WSAWaitForMultipleEvents"
        try:
            handles = list(events)
        except TypeError:
            raise TypeError("events must be an iterable of event handles") from None
        if not 1 <= len(handles) <= WSA_MAXIMUM_WAIT_EVENTS:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        clock = self.clock
        if clock is not None:
            return self._wait_events_by(clock, handles, wait_all, ms, alertable)
        deadline = ms_deadline(ms, funcname)
        me = threading.get_ident()
        lock = self.events.lock
        while True:
            entries = [self.events.entry(h, funcname) for h in handles]
            index = _signalled(entries, wait_all)
            if index is not None:
                return index
            registry = self._registry()
            if alertable and registry.run_apcs(me):
                return WSA_WAIT_IO_COMPLETION
            left = time_left(deadline)
            if left is not None and left <= 0:
                return WSA_WAIT_TIMEOUT
            # Register first, then re-check, so that a signal or an APC that
            # lands in between is not missed.
            waiter = Waiter()
            with lock:
                for e in entries:
                    e.waiters.append(waiter)
            if alertable:
                self.add_waker(me, waiter.wake)
            try:
                ready = (any(e.signalled for e in entries) if not wait_all
                         else all(e.signalled for e in entries))
                if not ready and not (alertable and registry.pending(me)):
                    waiter.sleep(wait_time(deadline))
            finally:
                with lock:
                    for e in entries:
                        try:
                            e.waiters.remove(waiter)
                        except ValueError:
                            pass
                if alertable:
                    self.remove_waker(me, waiter.wake)

    # -- the same waits on a simulated clock (wsp.spi.clock's protocol) ------------------
    def _sleep_by(self, clock: Any, ms: int, alertable: bool) -> int:
        """SleepEx counting `clock`'s time.  The thread parks on a Waiter,
        which the clock wakes when the deadline comes and an APC queued to
        the thread wakes when alertable (as WSAWaitForMultipleEvents's
        does); the core registry's own wait has no way to be woken by the
        clock."""
        deadline = clock.ms_deadline(ms, "SleepEx")
        me = threading.get_ident()
        while True:
            registry = self._registry()
            if alertable and registry.run_apcs(me):
                return WAIT_IO_COMPLETION
            if clock.expired(deadline):
                return 0
            waiter = Waiter()
            ready = _apc_ready(waiter, registry, me) if alertable else _woken(waiter)
            if alertable:
                self.add_waker(me, waiter.wake)
            try:
                try:
                    timeout = clock.begin_wait(ready, waiter.wake, deadline)
                    if not ready():
                        waiter.sleep(block_time(clock, timeout))
                finally:
                    clock.end_wait()
            finally:
                if alertable:
                    self.remove_waker(me, waiter.wake)

    def _wait_events_by(self, clock: Any, handles: list[int], wait_all: bool, ms: int,
                        alertable: bool) -> int:
        """WSAWaitForMultipleEvents counting `clock`'s time (its checks and
        their order as on the wall clock).  The thread can act once its
        Waiter was woken (a signal, a close, an APC, the clock), the events
        it waits for hold, or, alertable, an APC is queued to it."""
        funcname = "WSAWaitForMultipleEvents"
        deadline = clock.ms_deadline(ms, funcname)
        me = threading.get_ident()
        lock = self.events.lock
        while True:
            entries = [self.events.entry(h, funcname) for h in handles]
            index = _signalled(entries, wait_all)
            if index is not None:
                return index
            registry = self._registry()
            if alertable and registry.run_apcs(me):
                return WSA_WAIT_IO_COMPLETION
            if clock.expired(deadline):
                return WSA_WAIT_TIMEOUT
            waiter = Waiter()
            with lock:
                for e in entries:
                    e.waiters.append(waiter)
            if alertable:
                self.add_waker(me, waiter.wake)
            ready = _events_ready(waiter, entries, wait_all, registry if alertable else None, me)
            try:
                try:
                    timeout = clock.begin_wait(ready, waiter.wake, deadline)
                    if not ready():           # registered first: nothing lands unseen
                        waiter.sleep(block_time(clock, timeout))
                finally:
                    clock.end_wait()
            finally:
                with lock:
                    for e in entries:
                        try:
                            e.waiters.remove(waiter)
                        except ValueError:
                            pass
                if alertable:
                    self.remove_waker(me, waiter.wake)


# What a simulated clock asks (under its lock, from any thread) of a thread
# parked in one of the waits above: whether it can act.  Each closes over
# the waiting thread's own `me`, never the caller's ident.
def _woken(waiter: Waiter) -> Callable[[], bool]:
    def ready() -> bool:
        return waiter.woken
    return ready


def _apc_ready(waiter: Waiter, registry: Any, me: int) -> Callable[[], bool]:
    def ready() -> bool:
        return waiter.woken or bool(registry.pending(me))
    return ready


def _events_ready(waiter: Waiter, entries: list[EventEntry], wait_all: bool,
                  registry: Any, me: int) -> Callable[[], bool]:
    def ready() -> bool:
        if waiter.woken:
            return True
        if wait_all:
            if all(e.signalled for e in entries):
                return True
        elif any(e.signalled for e in entries):
            return True
        return registry is not None and bool(registry.pending(me))
    return ready
