"""Simulated time: the clock a process's waits count and the scheduler of
what falls due (``docs/guide/time-and-links.rst``).

This is the only place that decides when simulated time passes.  A
:class:`wsp.sim.Network` made with ``clock="virtual"`` or ``clock="real"``
owns one of the two clocks below; every process whose providers run on that
network waits by it (``Process.clock``): a time-out of ``SleepEx``,
``WSAWaitForMultipleEvents``, ``GetQueuedCompletionStatus(Ex)``, a blocking
socket call, ``WSPSelect`` or the linger time-out is a deadline in simulated
seconds, and the network's deliveries are events scheduled on the clock
(:meth:`SimClock.call_at`).

Both clocks share one protocol, which the wait sites follow::

    deadline = clock.ms_deadline(ms, funcname)         # simulated seconds, or None
    while <not satisfied>:
        if clock.expired(deadline): <time-out>
        timeout = clock.begin_wait(ready, wake, deadline)   # real seconds, or None
        try:
            if not <satisfied>: <block at most `timeout` real seconds; `wake()` ends it>
        finally:
            clock.end_wait()

``ready()`` answers, under the clock's lock, whether the waiting thread has
something to take (a packet, a signalled event, an APC, a finished entry);
``wake()`` makes its blocking call return early.

The virtual clock's idle rule
-----------------------------
Simulated time starts at 0.0 and jumps to the next due event or wait
deadline only when the simulation is *idle*: no thread that waits on the
network's processes can act.  Precisely, a thread **can act** when

1. it is waiting on the network (between ``begin_wait`` and ``end_wait``)
   and its ``ready()`` is true -- something has been delivered to it, or its
   deadline has passed; or
2. it is *acting*: a wait of it on the network returned, or it made a call
   into a provider on the network (``touch``), and it has not waited on the
   network since -- for at most :attr:`VirtualClock.grace` seconds of real
   time after that return or call.

So a single-threaded driver advances the clock each time it waits; worker
threads draining completion ports hold the clock while any of them handles
a packet (until it waits again); and a thread blocked outside wsp (joining
the workers, say) stops holding it after the grace, or at once after
:meth:`SimClock.step_aside`.  A thread that has never called into the
network does not count.  When the simulation is idle the clock first lets
the network transmit what was sent at the current time (``on_idle``, in an
order that does not depend on thread timing), then moves to the earliest
due event or deadline, runs the events due then, oldest first, and wakes the
threads whose deadlines have passed.  A wait with a deadline always ends;
waits without one, with nothing scheduled, wait as they would on a real
network.  A poll (a time-out of 0) never waits, so it never moves the clock:
a driver that only polls calls ``net.advance()``.

The real clock follows the wall clock (time since it was made); a timer
thread runs the events at their due times.
"""
from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
from typing import Any, Callable

from .checks import ms_seconds

__all__ = ["SimClock", "VirtualClock", "RealClock", "Timer", "DEFAULT_GRACE"]

#: Real seconds a thread holds the virtual clock after its last return from
#: a wait or call on the network, unless it waits again first (the idle rule).
DEFAULT_GRACE = 0.2

_WAIT_SLICE = min(threading.TIMEOUT_MAX, 3600.0 * 24)   # as wsp.spi.checks


class Timer:
    """An event scheduled on a clock: ``func(*args)`` at simulated time
    :attr:`when`.  :meth:`cancel` takes it back (a no-op once it ran)."""

    __slots__ = ("when", "seq", "func", "args", "cancelled")

    def __init__(self, when: float, seq: int, func: Callable[..., Any], args: tuple) -> None:
        self.when = when
        self.seq = seq
        self.func = func
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run this event."""
        self.cancelled = True
        self.args = ()


class _Wait:
    """One thread's wait on the network: what it waits for and how to wake it."""

    __slots__ = ("ready", "wake", "deadline", "kicked")

    def __init__(self, ready: Callable[[], bool], wake: Callable[[], Any],
                 deadline: float | None) -> None:
        self.ready = ready
        self.wake = wake
        self.deadline = deadline
        self.kicked = False           # woken by the clock: about to return (and act)


def _report(exc: BaseException, func: Any) -> None:
    """An event raised: report it as an unraisable exception (the thread
    that ran it was only passing by), and go on with the others."""
    hook = sys.unraisablehook
    hook(type("UnraisableHookArgs", (), {
        "exc_type": type(exc), "exc_value": exc, "exc_traceback": exc.__traceback__,
        "err_msg": "Exception in a simulated-network event", "object": func})())


class SimClock:
    """What both clocks offer: the time, the scheduler, and the wait protocol
    (see the module docstring).  `lock` is the network's lock; every event
    runs with it held."""

    #: True for the virtual clock: time passes only when the simulation is idle
    virtual = False

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self._events: list[tuple[float, int, Timer]] = []   # a heap
        self._seq = itertools.count()
        #: called (lock held) when the simulation is idle, before time moves;
        #: returns True if it did anything (the network's transmissions)
        self.on_idle: Callable[[], bool] | None = None

    # -- time ----------------------------------------------------------------------
    def now(self) -> float:
        """Simulated seconds."""
        raise NotImplementedError

    def deadline(self, seconds: float | None) -> float | None:
        """The simulated deadline `seconds` from now (None: never)."""
        return None if seconds is None else self.now() + seconds

    def ms_deadline(self, ms: object, funcname: str | None = None) -> float | None:
        """The simulated deadline of a Win32 millisecond time-out (INFINITE:
        None), with the checks of wsp.spi.checks.ms_seconds."""
        seconds = ms_seconds(ms, funcname)
        return None if seconds is None else self.now() + seconds

    def left(self, deadline: float | None) -> float | None:
        """Simulated seconds left until `deadline` (never negative; None: no deadline)."""
        if deadline is None:
            return None
        return max(0.0, deadline - self.now())

    def expired(self, deadline: float | None) -> bool:
        """Whether `deadline` has passed."""
        return deadline is not None and self.now() >= deadline

    # -- the scheduler -------------------------------------------------------------
    def call_at(self, when: float, func: Callable[..., Any], *args: Any) -> Timer:
        """Run ``func(*args)`` (lock held) at simulated time `when` (a time
        already passed: as soon as the clock next runs events).  Events due at
        the same time run in the order they were scheduled."""
        with self.lock:
            event = Timer(float(when), next(self._seq), func, args)
            # (when, seq) first: the heap compares tuples in C, never the Timers
            heapq.heappush(self._events, (event.when, event.seq, event))
            self._scheduled(event)
            return event

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any) -> Timer:
        """``call_at(now() + delay, func, *args)``."""
        return self.call_at(self.now() + delay, func, *args)

    def _scheduled(self, event: Timer) -> None:
        """A new event was pushed (lock held)."""

    def next_due(self) -> float | None:
        """When the earliest scheduled event falls due (None: nothing is scheduled)."""
        with self.lock:
            return self._next_due()

    def _next_due(self) -> float | None:
        """When the earliest live event falls due (lock held)."""
        events = self._events
        while events and events[0][2].cancelled:
            heapq.heappop(events)
        return events[0][0] if events else None

    def _run_due(self, now: float) -> int:
        """Run every live event due at or before `now`, oldest first, also
        those the events schedule for then (lock held).  How many ran."""
        events = self._events
        ran = 0
        while events and events[0][0] <= now:
            event = heapq.heappop(events)[2]
            if event.cancelled:
                continue
            func, args = event.func, event.args
            event.cancel()
            ran += 1
            try:
                func(*args)
            except Exception as exc:     # a bug in an event: report it, keep the clock going
                _report(exc, func)
        return ran

    @property
    def scheduled(self) -> int:
        """How many events are waiting to run."""
        with self.lock:
            return sum(1 for _, _, e in self._events if not e.cancelled)

    # -- the wait protocol ---------------------------------------------------------------
    def begin_wait(self, ready: Callable[[], bool], wake: Callable[[], Any],
                   deadline: float | None) -> float | None:
        """The calling thread is about to block until ``ready()`` or
        `deadline`; return the longest it may block in real seconds (None:
        until woken).  The caller re-checks its condition before blocking."""
        raise NotImplementedError

    def end_wait(self) -> None:
        """The calling thread's wait returned."""

    def touch(self) -> None:
        """The calling thread made a call into the network (it holds a
        virtual clock for the grace; see the idle rule)."""

    def step_aside(self) -> None:
        """The calling thread is about to block outside wsp: it stops holding
        a virtual clock now (until its next wait or call on the network)."""


class VirtualClock(SimClock):
    """Simulated time that passes only when the simulation is idle (the
    module docstring has the rule).  `grace`: see :data:`DEFAULT_GRACE`."""

    virtual = True

    def __init__(self, lock: Any, grace: float = DEFAULT_GRACE) -> None:
        super().__init__(lock)
        self._now = 0.0
        self.grace = float(grace)
        self._waiting: dict[int, _Wait] = {}      # thread ident -> its wait
        self._acting: dict[int, float] = {}       # thread ident -> when it last acted (real)
        # Wakes decided under the lock, made after it is released: a wake may
        # have to repeat until its waiter has parked, and nobody should wait
        # for the lock meanwhile.
        self._to_wake: list[Callable[[], Any]] = []
        self._settle_wanted = False               # a waiter could not settle: the lock was held
        #: how many times the clock moved forward (a cost figure for reports)
        self.advances = 0

    def now(self) -> float:
        """The simulated time in seconds.

        It moves only when the simulation is idle, or by :meth:`advance`.
        """
        return self._now

    # -- moving time -----------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` forward by hand, running what falls due on
        the way (and what the network transmits at each step), in order."""
        with self.lock:
            target = self._now + seconds
            while True:
                self._idle_work()
                due = self._next_due()
                if due is None or due > target:
                    break
                self._move_to(due)
            self._move_to(target)
            self._idle_work()
        self._wake_now()

    def _wake_now(self) -> None:
        """Make the wakes decided under the lock (call without it)."""
        while self._to_wake:
            wakes, self._to_wake = self._to_wake, []
            for wake in wakes:
                wake()

    def _idle_work(self) -> None:
        """Let the network transmit what waits at the current time (lock
        held), and the events that sets off at this same time, until neither
        has more to do."""
        hook = self.on_idle
        while True:
            did = hook() if hook is not None else False
            if not self._run_due(self._now) and not did:
                return

    def _move_to(self, when: float) -> None:
        """Set the time (never backwards), run what is due, wake the waits
        whose deadlines have passed (lock held)."""
        if when > self._now:
            self._now = when
            self.advances += 1
        self._run_due(self._now)
        for wait in list(self._waiting.values()):
            if wait.deadline is not None and wait.deadline <= self._now and not wait.kicked:
                wait.kicked = True
                self._to_wake.append(wait.wake)

    def _settle(self) -> float | None:
        """Advance while the simulation is idle (lock held).  Returns how long
        the calling waiter may block in real seconds: until the earliest
        grace of an acting thread runs out, or None."""
        while True:
            if self._acting:
                real = time.monotonic()
                soonest = None
                for ident, since in list(self._acting.items()):
                    left = since + self.grace - real
                    if left <= 0:
                        del self._acting[ident]        # presumed blocked outside wsp
                    elif soonest is None or left < soonest:
                        soonest = left
                if soonest is not None:
                    return soonest
            if not self._waiting:
                return None
            now = self._now
            blocked = True
            for wait in list(self._waiting.values()):
                if wait.kicked:
                    blocked = False              # woken already: it is on its way back
                elif (wait.deadline is not None and wait.deadline <= now) or wait.ready():
                    # It can act.  Wake it (once) in case it has not noticed
                    # (a packet another thread took since it began: it looks
                    # again and begins a new wait).
                    wait.kicked = True
                    self._to_wake.append(wait.wake)
                    blocked = False
            if not blocked:
                return None
            hook = self.on_idle
            if hook is not None and hook():
                continue                         # transmitting may have finished sends
            if self._run_due(now):
                continue                         # events scheduled for now
            due = self._next_due()
            for wait in self._waiting.values():
                if wait.deadline is not None and (due is None or wait.deadline < due):
                    due = wait.deadline
            if due is None:
                return None                      # everyone waits for ever, nothing to come
            self._move_to(due)

    # -- the wait protocol -------------------------------------------------------------
    def begin_wait(self, ready: Callable[[], bool], wake: Callable[[], Any],
                   deadline: float | None) -> float | None:
        """Register the calling thread as waiting and let time move if the simulation is idle.

        If the lock is free, settles: advances to what falls due while no thread is acting,
        running it. Returns 0.0 when ``ready()`` is true or `deadline` has passed, else how long
        the thread may block in real seconds: until an acting thread's grace runs out, or None
        (until woken, by `wake`).
        """
        me = threading.get_ident()
        # Waiting first, then no longer acting: a settle running meanwhile
        # sees the thread in one of the two at every moment (dict stores are
        # atomic), so it never takes a thread that is about to act for idle.
        self._waiting[me] = _Wait(ready, wake, deadline)
        self._acting.pop(me, None)
        timeout = None
        # Settle only if the lock is free.  Held, it is a thread inside a call
        # on the network -- acting, so not idle; it settles when it waits --
        # or one settling already.  Waiting for the lock would also stall
        # every caller behind a holder that lost the GIL in Python code.  A
        # wait that did not settle blocks at most a short slice and looks
        # again (wsp.spi.checks.block_time).
        # A settle asked for while the lock is held is made by whoever holds
        # it for a settle, right after (the loop below): none is lost.
        lock = self.lock
        self._settle_wanted = True
        while self._settle_wanted and lock.acquire(False):
            try:
                self._settle_wanted = False
                timeout = self._settle()
            finally:
                lock.release()
            self._wake_now()
        if ready() or (deadline is not None and deadline <= self._now):
            return 0.0
        return timeout

    def end_wait(self) -> None:
        """Mark the calling thread as acting again: its wait returned."""
        me = threading.get_ident()
        # Acting first, then no longer waiting (see begin_wait): no lock.
        self._acting[me] = time.monotonic()
        self._waiting.pop(me, None)

    def touch(self) -> None:
        """Mark the calling thread as acting: time holds still for its grace."""
        # No lock: a dict store is atomic, and a touch racing a settle is a
        # thread acting at the moment time moves, which no lock could order.
        self._acting[threading.get_ident()] = time.monotonic()

    def step_aside(self) -> None:
        """Stop counting the calling thread as acting, and let time move if that leaves it idle.

        For a thread about to block outside wsp; it acts again at its next call or wait.
        """
        with self.lock:
            self._acting.pop(threading.get_ident(), None)
            self._settle()
        self._wake_now()

    def _scheduled(self, event: Timer) -> None:
        pass                                     # the next idle moment picks it up

    @property
    def waiting(self) -> int:
        """How many threads wait on the network now."""
        with self.lock:
            return len(self._waiting)


class RealClock(SimClock):
    """Simulated time that is wall-clock time since the clock was made; a
    timer thread runs the events at their due times."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self._origin = time.monotonic()
        self._due = threading.Condition(lock)
        self._runner: threading.Thread | None = None

    def now(self) -> float:
        """Wall-clock seconds since the clock was made (``time.monotonic``)."""
        return time.monotonic() - self._origin

    def begin_wait(self, ready: Callable[[], bool], wake: Callable[[], Any],
                   deadline: float | None) -> float | None:
        """How long the calling thread may block, in real seconds.

        Real time moves by itself, so nothing is settled; `ready` and `wake` are not needed.
        Returns the seconds left to `deadline` (never negative), capped at a day, the same cap
        without a deadline.
        """
        if deadline is None:
            return _WAIT_SLICE
        return min(max(0.0, deadline - self.now()), _WAIT_SLICE)

    def _scheduled(self, event: Timer) -> None:
        if self._runner is None:
            self._runner = threading.Thread(target=self._run, name="wsp-clock", daemon=True)
            self._runner.start()
        elif self._events[0][2] is event:
            self._due.notify()                   # an earlier deadline than the runner's

    def _run(self) -> None:
        """The timer thread: run events at their times; end when none is left
        (the next call_at starts another)."""
        with self.lock:
            while True:
                due = self._next_due()
                if due is None:
                    self._runner = None
                    return
                left = due - self.now()
                if left > 0:
                    self._due.wait(min(left, _WAIT_SLICE))
                    continue
                hook = self.on_idle
                if hook is not None:
                    hook()
                self._run_due(self.now())
