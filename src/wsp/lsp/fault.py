"""FaultProvider: a layer that injects faults into the calls passing through it, deterministically
under a seed (``docs/guide/network.rst``, ``docs/guide/layers.rst``, ``docs/guide/faults.rst``).
What a valid rule is -- the entries, actions and parameters, ``Rule``, ``Call`` and ``Action`` --
lives in :mod:`wsp.lsp.rules`; this module applies rules to calls.

Rules say which calls are hit and how::

    fault = FaultProvider(wsp.sim.Provider(net), seed=7)
    fault.add_rule("WSPSend", "fail", code=WSAENETRESET, probability=0.5)
    fault.add_rule("WSPRecv", "delay")          # completions wait for fault.release()

For each call the rules are tried in the order they were added; the first
one that matches the call and fires is applied, and the call sees no other
rule (to combine two conditions on one socket, stack two fault layers).  A
rule with a probability below 1 draws one number from the layer's
``random.Random(seed)`` each time it matches, so the same calls in the same
order hit the same faults, run after run.  The actions:

``"fail"`` (``code``)
    The call raises ``WinsockError(code)`` without reaching the lower provider: nothing is sent,
    received, started or delivered (an overlapped call fails before it starts,
    ``docs/guide/spi-model.rst, "Overlapped operations"``).  Any entry, the extension functions
    AcceptEx, ConnectEx and DisconnectEx included (named so in rules; rules on the listening socket
    for AcceptEx): a failed ConnectEx is how a connect that times out (WSAETIMEDOUT) or finds no
    route reaches an IOCP program such as asyncio's proactor.
``"truncate"`` (``size``)
    Sends (WSPSend, WSPSendTo): only the first `size` bytes go down; the
    result and the completion report what the lower provider reports.
    Receives (WSPRecv, WSPRecvFrom): the receive runs below with the full
    capacity, but the result or completion reports at most `size` bytes,
    and only those reach the application's buffers; the rest of what was
    received is lost, as a truncating middlebox would lose it (a stream
    loses those bytes, a datagram arrives shortened; the status and flags
    of the lower receive are kept).
``"drop"``
    Sends: the data is not passed down, yet the call succeeds reporting
    every byte.  An overlapped send is started and completed at once
    through the engine (status 0, all bytes; the application's routine,
    event or port packet as usual).  Only the handle is checked.
``"delay"`` (``delay``)
    Overlapped sends and receives: the completion is held once the lower
    request completes.  With ``delay=None`` it waits for :meth:`release`;
    with ``delay=seconds`` it is delivered that much later (by the
    network's clock, see *Time* below; ``release`` delivers those early
    too).  A delayed request always reports WSA_IO_PENDING, even if it
    completed at once below.  Held completions of a socket that gets closed
    are still delivered, with the status they had (the close does not turn
    them into aborts); the final WSPCleanup cancels them silently like any
    pending request, so nothing is delivered after it.  Calls without an
    overlapped are not delayed.
``"reset"``
    Calls on a socket: the socket's connection is reset at the simulated
    network -- both ends' pending requests fail with WSAECONNRESET, the
    peer's next receive too -- and the call fails with WSAECONNRESET.  Needs
    a ``wsp.sim.Provider`` at the bottom of the stack (else ``add_rule``
    raises WSAEOPNOTSUPP; so do "limit" and "stall").  A datagram socket has
    no connection: only the call fails.
``"abort_status"`` (``code``)
    WSPCloseSocket: the requests the close aborts complete with `code`
    instead of WSA_OPERATION_ABORTED.

The network conditions of a fault-injection proxy (toxiproxy's toxics),
per socket, timed by the network's clock:

``"latency"`` (``delay``, ``jitter=0``)
    Sends and receives: each completion is held ``delay`` seconds plus a
    seeded draw in [-jitter, +jitter] (drawn when the call is made, never
    below 0 in total) after the lower request completed -- for a receive,
    after the data arrived below.  A socket's completions in one direction
    keep their order: one is never delivered before an earlier held one.
    A request whose hold came to nothing (no time left) is not held.
``"bandwidth"`` (``rate``: bytes per second)
    Sends: the bytes of one socket leave one after another at `rate`, so a
    send's completion is held until its bytes have left: it starts when the
    lower request completed or when the socket's previous send has left,
    whichever is later, and lasts ``nbytes / rate`` seconds.  Back-to-back
    sends queue.
``"slice"`` (``size``, ``variation=0``)
    Sends: the data goes down to the lower provider in pieces of ``size``
    bytes plus a seeded draw in [-variation, +variation] (the last piece
    what is left), one lower send each, in order; the application sees one
    send reporting the bytes of every piece (its overlapped completes once
    all of them have, with the first error any of them had).  A send of at
    most one piece goes down as it is.  A datagram send becomes one
    datagram per piece.
``"limit"`` (``nbytes``)
    Sends: once `nbytes` bytes have gone through a socket's sends (counted
    per rule and socket) the connection is reset as by "reset".  The send
    that reaches the limit passes only the bytes up to it, reports what the
    lower provider reports for them, and then the connection is reset (as
    any reset, what the peer has not read yet is gone); every later send
    fails with WSAECONNRESET.
``"stall"`` (``timeout=None``)
    Sends: from the first send the rule fires for, the socket's data stops
    flowing: every send on it is held, nothing goes down, whatever the
    rules say (removing the rule does not end a stall).  After `timeout`
    seconds the connection is reset ("reset"), and the held sends complete
    with WSAECONNRESET; with ``timeout=None`` the stall lasts until the
    socket is closed (held sends abort then, WSA_OPERATION_ABORTED, or the
    code of an "abort_status" rule).  A socket stalls once: after its reset
    its sends go down again (and fail there).  A datagram socket has no
    connection to reset: its held sends fail with WSAECONNRESET, and later
    ones go through.
``"slow_close"`` (``delay``)
    WSPCloseSocket: the application's handle is released at once and the
    call returns, but the close reaches the lower provider -- and so the
    peer -- `delay` seconds later.  Until then the lower socket is open:
    data sent before the close is still delivered, and the lower requests
    of pending calls still run; the late close aborts what is left of them.
    The late close is graceful, or hard if the application set SO_LINGER
    with a zero time-out; a lingering close with a time-out is not waited
    for (the application had its return long ago): it becomes a graceful
    one.  A final WSPCleanup before then closes the socket with everything
    else.
``"hook"`` (``func``)
    Any entry: ``func(call)`` gets a :class:`Call` describing the call
    (entry, socket, buffers and their size, flags, the other arguments, the
    time) before anything happens, in the calling thread, no lock held, and
    decides: ``None`` (or ``"pass"``) lets the call through; an
    :class:`Action` (or the name of one that takes no parameter: ``"drop"``,
    ``"reset"``) says what to do with it -- fail with a code, drop,
    truncate, replace a send's data, slice it, delay it, reset the
    connection.  Whatever the hook raises propagates to the caller, as from
    a trio stream's hook; a decision the entry cannot take raises
    ValueError.  A hook can keep state of its own and so do what
    "probability" and "count" cannot (fail the third send, corrupt one byte
    of every tenth, ...).

Time
----
Timed holds (latency, bandwidth, delay with seconds, stall's time-out,
slow_close, a hook's delay) count the network's clock when the process has
one (``Process.clock``, set by a ``wsp.sim.Provider`` over a
``Network(clock="virtual")`` or ``clock="real"``): they are events on that
clock, so a virtual clock delivers them when the simulation is idle or when
``net.advance()`` passes them.  Without a clock they count wall-clock time
(timer threads).

Calls without an overlapped
---------------------------
Latency, bandwidth and a hook's delay hold a blocking call as they hold a
completion: the call is made below at once, and the calling thread then
waits out the hold before the call returns its result (as the application
of a slow link would see it: the send or the receive takes that long).  A
call that fails at once below fails at once.  The thread waits by the
network's clock (its wait protocol, wsp.spi.clock: a virtual clock moves on
to the hold's end when nothing else can act), or by the wall clock.  The
same holds for non-blocking sockets: their calls still never report
WSAEWOULDBLOCK for data that has already moved.  A stalled send on a
blocking socket waits until the stall's reset (then WSAECONNRESET) or until
the socket is closed (WSAEINTR); on a non-blocking socket it fails with
WSAEWOULDBLOCK at once.  "slice" makes one lower call per piece (a
non-blocking send that stops short after the first piece reports the bytes
that went); "limit" and "slow_close" do not wait.

Example: the connection of the layer's socket `client` dies after 1 kB
sent; every other send or receive takes 50 ms, give or take 10 ms; and a
hook refuses sends of more than 64 kB (the rules are tried in this order)::

    net = wsp.sim.Network(seed=1, clock="virtual")
    fault = FaultProvider(wsp.sim.Provider(net), seed=1)
    ...                                              # start it, connect `client`
    fault.add_rule("WSPSend", "limit", socket=client, nbytes=1024)
    fault.add_rule("WSPSend", "hook",
                   func=lambda call: Action("fail", code=WSAENOBUFS)
                   if call.size > 65536 else None)
    fault.add_rule("*", "latency", delay=0.05, jitter=0.01)
    ...
    net.advance(0.06)                                # completions fall due on the way

(The hook lets the calls it passes through go on untouched: the latency rule
after it does not see them.  To have both, stack two fault layers.)
"""
from __future__ import annotations

import functools
import math
import random
import threading
import time
from typing import Any, Callable, Sequence

from ..constants import SO_LINGER, SOL_SOCKET
from ..errors import (WSA_IO_PENDING, WSA_OPERATION_ABORTED, WSAECONNRESET, WSAEINTR,
                      WSAEINVAL, WSAEMSGSIZE, WSAEOPNOTSUPP, WSAEWOULDBLOCK, WinsockError)
from ..sim.provider import Provider as SimProvider
from ..spi.checks import gather, scatter
from ..spi.process import Operation
from ..spi.structs import Linger, Overlapped, ThreadId
from .layered import LayeredProvider
from .rules import (ACTIONS, APPLIES, FAULT_OPS, RESETTING, SOCKETLESS, Action,
                    Call, Rule, count_arg, rule_parameters)

__all__ = ["ACTIONS", "FAULT_OPS", "Action", "Call", "FaultProvider", "Rule"]

class _Timing:
    """How long a completion is held, decided when the call was made:
    `after` seconds once the lower request completed, or `rate` bytes per
    second on the socket's wire; `lane` ("send" or "recv") keeps a
    socket's completions of one direction in order."""

    __slots__ = ("socket", "lane", "after", "rate")

    def __init__(self, socket: int, lane: str, after: float | None = None,
                 rate: float | None = None) -> None:
        self.socket = socket
        self.lane = lane
        self.after = after
        self.rate = rate


class _Plan:
    """What the layer must do when the lower request behind an overlapped
    completes: hold it (`timing`; None: until release), trim it (truncated
    receive: `size`, `scratch`, `views`) or report another size
    (`report`: a replaced send's own size)."""

    __slots__ = ("hold", "timing", "always", "held", "size", "scratch", "views", "filled",
                 "report")

    def __init__(self, hold: bool = False, timing: _Timing | None = None, always: bool = False,
                 size: int = 0, scratch: bytearray | None = None,
                 views: list[memoryview] | None = None, report: int | None = None) -> None:
        self.hold = hold
        self.timing = timing
        self.always = always        # held even with no time left ("delay")
        self.held = False           # set once the completion was held
        self.size = size
        self.scratch = scratch
        self.views = views
        self.filled = False
        self.report = report


class _Held:
    """A completion the layer holds back."""

    __slots__ = ("op", "error", "nbytes", "flags", "timer")

    def __init__(self, op: Operation, error: int, nbytes: int, flags: int) -> None:
        self.op = op
        self.error = error
        self.nbytes = nbytes
        self.flags = flags
        self.timer: Any = None      # a threading.Timer, or a clock's Timer


class _Waiter:
    """A thread held in a call until :meth:`finish` (from a scheduled event
    or another thread); `kick` wakes its wait early (the clock protocol)."""

    __slots__ = ("done", "kick", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.kick = threading.Event()
        self.error = 0

    def finish(self, error: int = 0) -> None:
        self.error = error
        self.done.set()
        self.kick.set()


class _Stall:
    """A socket whose sends are held ("stall"): the requests and blocked
    threads waiting on it, and the timer of its reset."""

    __slots__ = ("ops", "waiters", "timer", "over", "error")

    def __init__(self) -> None:
        self.ops: list[Operation] = []
        self.waiters: list[_Waiter] = []
        self.timer: Any = None
        self.over = False
        self.error = 0


class _Batch:
    """An overlapped send that went down in pieces ("slice")."""

    __slots__ = ("op", "left", "nbytes", "error")

    def __init__(self, op: Operation, pieces: int) -> None:
        self.op = op
        self.left = pieces
        self.nbytes = 0
        self.error = 0


class FaultProvider(LayeredProvider):
    """A layered provider that injects faults into the calls passing
    through it, deterministic under `seed` (see the module documentation
    for what each action does)."""

    description = "wsp fault-injection layer"

    def __init__(self, lower: Any, seed: int = 0) -> None:
        super().__init__(lower)
        self.seed = seed
        self.random = random.Random(seed)
        self._rules: list[Rule] = []
        # The layer's lock guards its own tables only: nothing that calls
        # out (below, into the engine, onto the clock, whose events run
        # under the network's lock) is done while holding it.
        self._lock = threading.Lock()
        self._plans: dict[Overlapped, _Plan] = {}      # the application's overlapped -> plan
        self._held: list[_Held] = []                    # in the order they were held
        self._abort_codes: dict[Operation, int] = {}   # requests a close aborts -> their status
        self._order: dict[tuple[int, str], float] = {}  # (socket, lane) -> last held due time
        self._wire: dict[int, float] = {}               # socket -> when its wire is free
        self._used: dict[tuple[Rule, int], int] = {}    # (limit rule, socket) -> bytes sent
        self._stalls: dict[int, _Stall] = {}
        self._closing: dict[int, Any] = {}              # lower handle -> the late close's timer

    # -- rules ---------------------------------------------------------------------------
    def add_rule(self, op: str, action: str, *, socket: int | None = None,
                 probability: float = 1.0, count: int | None = None, code: int | None = None,
                 size: int | None = None, delay: float | None = None,
                 jitter: float | None = None, rate: float | None = None,
                 variation: int | None = None, nbytes: int | None = None,
                 timeout: float | None = None,
                 func: Callable[[Call], Any] | None = None) -> Rule:
        """Add a rule and return it.  `op`: a WSP entry name (one of
        ``FAULT_OPS``) or ``"*"`` for every entry the action applies to;
        `socket`: a handle of this layer, or None for any socket;
        `probability`: chance that a matching call is hit; `count`: the
        most calls it is applied to.  The other parameters belong to their
        actions only: `code` (fail, abort_status), `size` (truncate, slice),
        `delay` (delay, latency, slow_close), `jitter` (latency), `rate`
        (bandwidth), `variation` (slice), `nbytes` (limit), `timeout`
        (stall), `func` (hook); see the module documentation.

        TypeError for arguments of the wrong type (a `func` that is not
        callable), ValueError naming the parameter for an unknown entry or
        action, a missing or out-of-range parameter (negative seconds, a
        rate <= 0, a slice size below 1, a variation outside [0, size), a
        negative nbytes), a parameter of another action, or an action the
        entry cannot take; WinsockError(WSAEOPNOTSUPP) for "reset", "limit"
        and "stall" when the bottom of the stack is not a
        ``wsp.sim.Provider``.  A call that raises adds nothing.
        """
        if not isinstance(op, str):
            raise TypeError(f"op must be a WSP entry name or '*', not {type(op).__name__}")
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, not {type(action).__name__}")
        if op != "*" and op not in FAULT_OPS:
            raise ValueError(f"unknown WSP entry {op!r}: expected '*' or one of {FAULT_OPS}")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: expected one of {ACTIONS}")
        if op != "*" and op not in APPLIES[action]:
            raise ValueError(f"action {action!r} does not apply to {op}; it applies to "
                             f"{APPLIES[action]}")
        if socket is not None:
            if not isinstance(socket, int) or isinstance(socket, bool):
                raise TypeError(f"socket must be a socket handle (int) or None, "
                                f"not {type(socket).__name__}")
            if op in SOCKETLESS:
                raise ValueError(f"{op} takes no socket: a rule for it cannot name one")
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise TypeError(f"probability must be a number, not {type(probability).__name__}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], not {probability!r}")
        if count is not None:
            count = count_arg(count, "count", 0)
        params = rule_parameters(action, {"code": code, "size": size, "delay": delay,
                                           "jitter": jitter, "rate": rate,
                                           "variation": variation, "nbytes": nbytes,
                                           "timeout": timeout, "func": func})
        if action in RESETTING and not isinstance(self._bottom(), SimProvider):
            raise WinsockError(WSAEOPNOTSUPP, "add_rule")
        rule = Rule(op, action, socket, float(probability), count, **params)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove_rule(self, rule: Rule) -> None:
        """Remove a rule (ValueError if it is not one of this layer's).  A
        stall it began goes on (the stall belongs to the socket now)."""
        with self._lock:
            for i, mine in enumerate(self._rules):
                if mine is rule:
                    del self._rules[i]
                    return
        raise ValueError(f"{rule!r} is not a rule of this layer")

    def clear(self) -> None:
        """Remove every rule (held completions stay held)."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        """The rules, in the order they are tried."""
        with self._lock:
            return list(self._rules)

    def _fire(self, op: str, s: int | None, overlapped: bool = False) -> Rule | None:
        """The rule applied to this call, if any (its hit counted)."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(op, s, overlapped):
                    continue
                if rule.probability < 1.0 and not self.random.random() < rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None

    # -- hooks ----------------------------------------------------------------------------
    def _decide(self, rule: Rule, call: Call) -> Rule | None:
        """Ask a hook rule's function about `call`: None to let it through,
        else a one-call rule that says what to do (applied like any rule)."""
        decision = rule.func(call)
        if decision is None:
            return None
        if isinstance(decision, str):
            decision = Action(decision)
        if not isinstance(decision, Action):
            raise TypeError(f"a hook must return None, an action name or an Action, "
                            f"not {type(decision).__name__}")
        kind, op = decision.kind, call.op
        if kind == "pass":
            return None
        if op not in Action.APPLIES[kind]:
            raise ValueError(f"the hook's decision {kind!r} does not apply to {op}")
        if kind == "delay":
            if op == "WSPCloseSocket":
                return Rule(op, "slow_close", call.socket, 1.0, None, delay=decision.delay)
            return Rule(op, "latency", call.socket, 1.0, None, delay=decision.delay, jitter=0.0)
        return Rule(op, kind, call.socket, 1.0, None, code=decision.code, size=decision.size,
                    variation=decision.variation, data=decision.data)

    def _call(self, op: str, s: int | None, buffers: Any = None, flags: int | None = None,
              overlapped: bool = False, args: tuple = ()) -> Call:
        return Call(op, s, buffers, flags, overlapped, args, self._now())

    # -- time: one scheduler and one wait for both clocks ------------------------------------
    def _clock(self) -> Any:
        """The network clock the process waits by (wsp.spi.clock), or None."""
        process = self._process
        return None if process is None else process.clock

    def _now(self) -> float:
        """The time the layer's holds count: the clock's, or the wall clock's."""
        clock = self._clock()
        return time.monotonic() if clock is None else clock.now()

    def _schedule(self, when: float, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` at `when` (:meth:`_now`'s time): an event on
        the network's clock (run with the network's lock held), or a timer
        thread without one.  Returns what cancels it (``.cancel()``), or None
        when `when` never comes."""
        if not math.isfinite(when):
            return None
        clock = self._clock()
        if clock is not None:
            return clock.call_at(when, func, *args)
        wait = max(0.0, when - time.monotonic())
        if wait > threading.TIMEOUT_MAX:
            return None
        timer = threading.Timer(wait, func, args)
        timer.daemon = True
        timer.start()
        return timer

    def _block(self, waiter: _Waiter) -> None:
        """Hold the calling thread until ``waiter.finish()``: by the clock's
        wait protocol (a virtual clock moves on when nothing else can act),
        or on the wall clock."""
        clock = self._clock()
        done = waiter.done
        if clock is None:
            done.wait()
            return
        ready = done.is_set
        while not ready():
            waiter.kick.clear()
            timeout = clock.begin_wait(ready, waiter.kick.set, None)
            try:
                if not ready():
                    waiter.kick.wait(timeout)
            finally:
                clock.end_wait()

    def _sleep_until(self, when: float) -> None:
        """Hold the calling thread until `when` (nothing to do once passed)."""
        if when <= self._now():
            return
        waiter = _Waiter()
        self._schedule(when, waiter.finish)
        self._block(waiter)

    def _timing(self, rule: Rule, s: int, lane: str) -> _Timing | None:
        """How a call's completion is held under `rule` (delay, latency,
        bandwidth), decided now: jitter is drawn in call order."""
        if rule.action == "bandwidth":
            return _Timing(s, lane, rate=rule.rate)
        after = rule.delay
        if after is None:
            return None                            # "delay": until release()
        if rule.jitter:
            with self._lock:
                after = max(0.0, after + self.random.uniform(-rule.jitter, rule.jitter))
        return _Timing(s, lane, after=after)

    def _due_time(self, timing: _Timing, nbytes: int) -> float:
        """When a completion of `nbytes` bytes, held by `timing`, is due --
        never before an earlier one of its socket and lane."""
        now = self._now()
        key = (timing.socket, timing.lane)
        with self._lock:
            if timing.rate is not None:
                start = max(now, self._wire.get(timing.socket, now))
                due = start + nbytes / timing.rate
                self._wire[timing.socket] = due
            else:
                due = now + timing.after
            due = max(due, self._order.get(key, due))
            self._order[key] = due
        return due

    # -- held completions -------------------------------------------------------------------
    @property
    def held(self) -> int:
        """How many completions are held now."""
        with self._lock:
            return len(self._held)

    def release(self) -> int:
        """Deliver every held completion, in the order they were held (timed
        ones too, early); returns how many were delivered.  Stalled sends
        are not completions: they stay stalled."""
        with self._lock:
            items, self._held = self._held, []
        for item in items:
            if item.timer is not None:
                item.timer.cancel()
        return sum(1 for item in items if self._deliver(item))

    def _hold(self, op: Operation, error: int, nbytes: int, flags: int,
              due: float | None) -> None:
        item = _Held(op, error, nbytes, flags)
        with self._lock:
            self._held.append(item)
        if due is None:
            return
        timer = self._schedule(due, self._due, item)     # outside the lock: see __init__
        with self._lock:
            if any(held is item for held in self._held):
                item.timer = timer
                return
        if timer is not None:                            # released or delivered meanwhile
            timer.cancel()

    def _due(self, item: _Held) -> None:
        """A timed hold ran out (a timer thread, or a clock event)."""
        with self._lock:
            for i, held in enumerate(self._held):
                if held is item:
                    del self._held[i]
                    break
            else:                               # released, or dropped by the cleanup
                return
        self._deliver(item)

    def _deliver(self, item: _Held) -> bool:
        process = self._process
        if process is None:
            return False
        # The engine delivers exactly once: after the final WSPCleanup has
        # cancelled the request silently this is a no-op.
        return process.complete_overlapped(item.op, item.error, item.nbytes, item.flags)

    def _complete(self, op: Operation, error: int, nbytes: int) -> None:
        """Complete a request of the layer's own making (a sliced or stalled
        send), with the status an abort_status rule gave an abort."""
        with self._lock:
            code = self._abort_codes.pop(op, None)
        if code is not None and error == WSA_OPERATION_ABORTED:
            error = code
        process = self._process
        if process is not None:
            process.complete_overlapped(op, error, nbytes)

    def _forget(self) -> list[int]:
        """Drop everything the layer holds (final cleanup, termination):
        timers cancelled, stalled threads woken (WSAEINTR).  Returns the
        lower handles whose late close had not happened yet."""
        with self._lock:
            held, self._held = self._held, []
            stalls, self._stalls = list(self._stalls.values()), {}
            closing, self._closing = self._closing, {}
            self._plans.clear()
            self._abort_codes.clear()
            self._order.clear()
            self._wire.clear()
            self._used.clear()
            for stall in stalls:
                stall.over, stall.error = True, WSAEINTR
        for item in held:
            if item.timer is not None:
                item.timer.cancel()
        for timer in closing.values():
            if timer is not None:
                timer.cancel()
        for stall in stalls:
            if stall.timer is not None:
                stall.timer.cancel()
            for waiter in stall.waiters:
                waiter.finish(WSAEINTR)
        return list(closing)

    def on_cleanup(self) -> None:
        """Forget held completions and stalls, then clean up as a layer does.

        The final WSPCleanup cancelled the held requests silently: none is ever delivered. If
        the lower provider is still started by someone else, the late closes "slow_close" owes
        are made now.
        """
        # The base class has cancelled the held requests silently, with every
        # other pending one (seed: LPWSPCleanup); they must never be delivered.
        late = self._forget()
        if self.lower.started:
            # Still started by someone else: the closes this layer owed go now.
            for lower_handle in late:
                self._hard_close_lower(lower_handle)
        super().on_cleanup()

    def on_terminated(self, process: Any) -> None:
        """Forget held completions, stalls and late closes: the process ended."""
        self._forget()
        super().on_terminated(process)

    # -- completions ----------------------------------------------------------------------
    def lower_completed(self, op: Operation, error: int, nbytes: int, flags: int) -> None:
        """Apply the request's rule to its lower completion, then deliver it.

        "abort_status" turns WSA_OPERATION_ABORTED into its code; "delay", "latency" and
        "bandwidth" hold the completion (until :meth:`release` or its due time); "truncate" on a
        receive reports at most ``size`` bytes and copies only those to the application's
        buffers; "replace" reports the bytes the application offered.
        """
        with self._lock:
            plan = self._plans.pop(op.overlapped, None)
            code = self._abort_codes.pop(op, None)
        if code is not None and error == WSA_OPERATION_ABORTED:
            error = code
        if plan is not None:
            if plan.hold:
                due = None if plan.timing is None else self._due_time(plan.timing, nbytes)
                if plan.always or due is None or due > self._now():
                    plan.held = True
                    self._hold(op, error, nbytes, flags, due)
                    return
            elif plan.views is not None:
                nbytes = min(nbytes, plan.size)
                self._fill(plan, nbytes)
            elif plan.report is not None and error == 0:
                nbytes = plan.report
        super().lower_completed(op, error, nbytes, flags)

    def _fill(self, plan: _Plan, nbytes: int) -> None:
        """Copy the first `nbytes` received bytes into the application's
        buffers (once: the immediate result and the completion may both ask)."""
        with self._lock:
            if plan.filled:
                return
            plan.filled = True
        data = memoryview(plan.scratch)[:nbytes]
        for view in plan.views:
            if not data:
                break
            n = min(len(view), len(data))
            view[:n] = data[:n]
            data = data[n:]

    def _planned(self, overlapped: Any, plan: _Plan, call: Callable[[], Any]) -> Any:
        """Make an overlapped call with `plan` attached to its request."""
        installed = False
        if isinstance(overlapped, Overlapped):
            with self._lock:
                # An overlapped that carries a pending request fails below
                # (WSAEINVAL): keep that request's own plan.
                installed = self._plans.setdefault(overlapped, plan) is plan
        try:
            return call()
        except BaseException:
            if installed:
                with self._lock:
                    if self._plans.get(overlapped) is plan:
                        del self._plans[overlapped]
            raise

    # -- applying rules ---------------------------------------------------------------------
    def _gate(self, op: str, s: int | None, args: tuple = ()) -> Rule | None:
        """Apply the rule for a call, if one fires: "fail" and "reset" raise
        (also as a hook's decision); any other rule is returned for the
        entry to apply."""
        rule = self._fire(op, s)
        if rule is not None and rule.action == "hook":
            rule = self._decide(rule, self._call(op, s, args=args))
        if rule is not None:
            self._raise_for(rule, op, s)
        return rule

    def _raise_for(self, rule: Rule, op: str, s: Any) -> None:
        if rule.action == "fail":
            raise WinsockError(rule.code, op)
        if rule.action == "reset":
            self._reset(s, op)

    def _bottom(self) -> Any:
        provider = self.lower
        while isinstance(provider, LayeredProvider):
            provider = provider.lower
        return provider

    def _base_of(self, lower_handle: int, funcname: str) -> tuple[Any, int]:
        """The provider at the bottom of the stack and its handle under the
        lower provider's `lower_handle`, down the stack handle by handle."""
        provider, handle = self.lower, lower_handle
        while isinstance(provider, LayeredProvider):
            handle = provider.lower_handle(handle, funcname)
            provider = provider.lower
        return provider, handle

    def _reset_below(self, s: int, funcname: str) -> None:
        """Reset the connection under the layer's socket `s` at the simulated
        network: a reset from the network (a middlebox's RST), both ends
        fail with WSAECONNRESET and FD_CLOSE carries it."""
        provider, handle = self._base_of(self.lower_handle(s, funcname), funcname)
        if not isinstance(provider, SimProvider):
            raise WinsockError(WSAEOPNOTSUPP, funcname)
        provider.reset_connection(handle, funcname)

    def _reset(self, s: int, funcname: str) -> None:
        """Reset the connection under `s`, then fail the call with WSAECONNRESET."""
        self._reset_below(s, funcname)
        raise WinsockError(WSAECONNRESET, funcname)

    def _nonblocking(self, s: int, funcname: str) -> bool:
        """Whether the socket under `s` is in non-blocking mode (FIONBIO,
        WSPEventSelect) at the simulated network; False over other bases."""
        provider, handle = self._base_of(self.lower_handle(s, funcname), funcname)
        if not isinstance(provider, SimProvider):
            return False
        return bool(provider.sim_socket(handle, funcname, network=False).nonblocking)

    def _send(self, funcname: str, s: int, buffers: Sequence[Any], flags: int, to: Any,
              overlapped: Any, routine: Any, thread_id: Any,
              down: Callable[[Any], tuple[int, int]]) -> Any:
        """A send with the rule that fires for it applied (a stalled socket's
        sends are held whatever the rules).  `down(buffers)` passes it to
        the lower provider; `to` is WSPSendTo's address."""
        if self._stalls:
            with self._lock:
                stall = self._stalls.get(s)
            if stall is not None and not stall.over:
                return self._stalled(funcname, s, stall, buffers, overlapped, routine,
                                     thread_id)
        rule = self._fire(funcname, s, overlapped is not None)
        if rule is None:
            return down(buffers)
        if rule.action == "hook":
            args = (to,) if funcname == "WSPSendTo" else ()
            rule = self._decide(rule, self._call(funcname, s, buffers, flags,
                                                 overlapped is not None, args))
            if rule is None:
                return down(buffers)
        self._raise_for(rule, funcname, s)
        action = rule.action
        if action == "truncate":
            return down([gather(buffers, funcname)[:rule.size]])
        if action == "drop":
            self._sock(s, funcname)                   # the handle is still checked
            total = len(gather(buffers, funcname))
            if overlapped is not None:
                process = self._process
                op = process.start_overlapped(s, overlapped, routine, thread_id, buffers,
                                              provider=self, funcname=funcname)
                process.complete_overlapped(op, 0, total)
            return (0, total)
        if action == "replace":
            total = len(gather(buffers, funcname))
            if overlapped is None:
                result = down([rule.data])
                return (0, total) if result[0] == 0 else result
            result = self._planned(overlapped, _Plan(report=total), lambda: down([rule.data]))
            return (0, total) if result[0] == 0 else result
        if action == "slice":
            return self._slice(rule, funcname, s, buffers, flags, to, overlapped, routine,
                               thread_id, down)
        if action == "limit":
            return self._limit(rule, funcname, s, buffers, down)
        if action == "stall":
            return self._stall(rule, funcname, s, buffers, overlapped, routine, thread_id, down)
        # delay, latency, bandwidth: a timed hold
        return self._timed(rule, s, "send", overlapped, buffers, down, (WSA_IO_PENDING, 0))

    def _timed(self, rule: Rule, s: int, lane: str, overlapped: Any, buffers: Any,
               down: Callable[[Any], tuple], pending: tuple) -> Any:
        """A call whose completion is held (delay, latency, bandwidth); without
        an overlapped the calling thread waits the hold out."""
        timing = self._timing(rule, s, lane)
        if overlapped is None:                        # never "delay" (it needs an overlapped)
            result = down(buffers)
            if result[0] == 0:
                self._sleep_until(self._due_time(timing, result[1]))
            return result
        plan = _Plan(hold=True, timing=timing, always=rule.action == "delay")
        result = self._planned(overlapped, plan, lambda: down(buffers))
        return pending if result[0] == 0 and plan.held else result

    def _cut(self, rule: Rule, data: bytes) -> list[bytes]:
        """`data` in slice pieces (the draws in order)."""
        pieces = []
        size, variation = rule.size, rule.variation
        at = 0
        with self._lock:
            while at < len(data):
                n = size + (self.random.randint(-variation, variation) if variation else 0)
                pieces.append(data[at:at + n])
                at += n
        return pieces

    def _slice(self, rule: Rule, funcname: str, s: int, buffers: Any, flags: int, to: Any,
               overlapped: Any, routine: Any, thread_id: Any,
               down: Callable[[Any], tuple[int, int]]) -> Any:
        """A send passed down in pieces, reported as one."""
        ls = self._sock(s, funcname)
        pieces = self._cut(rule, gather(buffers, funcname))
        if len(pieces) <= 1:
            return down(buffers)
        if overlapped is None:
            sent = 0
            for piece in pieces:
                try:
                    n = down([piece])[1]
                except WinsockError as exc:
                    if sent and exc.winerror == WSAEWOULDBLOCK:
                        break                         # a non-blocking send stops short
                    raise
                sent += n
                if n < len(piece):
                    break
            return (0, sent)
        process = self._process
        op = process.start_overlapped(s, overlapped, routine, thread_id, buffers,
                                      provider=self, funcname=funcname)
        batch = _Batch(op, len(pieces))
        lower, handle = self.lower, ls.lower
        for i, piece in enumerate(pieces):
            inner = Overlapped()
            inner.relay = functools.partial(self._piece_done, batch)
            try:
                if funcname == "WSPSendTo":
                    lower.WSPSendTo(handle, [piece], flags, to, inner, None, None)
                else:
                    lower.WSPSend(handle, [piece], flags, inner, None, None)
            except BaseException as exc:
                code = exc.winerror if isinstance(exc, WinsockError) else 0
                if i == 0:                            # nothing started: the call fails
                    process.cancel_overlapped(op, code or WSAEINVAL, notify=False)
                    raise
                # Pieces are under way: the failure is the request's completion.
                self._piece_done(batch, code or WSAEINVAL, 0, 0, len(pieces) - i)
                break
        with self._lock:
            done = not batch.left and not batch.error
        return (0, batch.nbytes) if done else (WSA_IO_PENDING, 0)

    def _piece_done(self, batch: _Batch, error: int, nbytes: int, flags: int,
                    pieces: int = 1) -> None:
        """A lower piece of a sliced send completed (a relay: in the thread
        that completed it)."""
        with self._lock:
            batch.left -= pieces
            batch.nbytes += nbytes
            if error and not batch.error:
                batch.error = error
            if batch.left:
                return
        self._complete(batch.op, batch.error, batch.nbytes)

    def _limit(self, rule: Rule, funcname: str, s: int, buffers: Any,
               down: Callable[[Any], tuple[int, int]]) -> Any:
        """A send counted against a limit rule's budget for `s`."""
        data = gather(buffers, funcname)
        key = (rule, s)
        with self._lock:
            used = self._used.get(key, 0)
            take = min(len(data), max(0, rule.nbytes - used))
            self._used[key] = used + take
        reached = used + take >= rule.nbytes
        if reached and not take:
            self._reset(s, funcname)                  # nothing left to pass: the reset fails it
        try:
            result = down(buffers if take == len(data) else [data[:take]])
        except BaseException:
            with self._lock:
                if key in self._used:
                    self._used[key] -= take
            raise
        if reached:
            self._reset_below(s, funcname)
        return result

    def _stall(self, rule: Rule, funcname: str, s: int, buffers: Any, overlapped: Any,
               routine: Any, thread_id: Any, down: Callable[[Any], tuple[int, int]]) -> Any:
        """The first send a stall rule fires for on `s`: the socket stalls.  A
        socket stalls once: after its reset, sends go down (and fail there)."""
        self._sock(s, funcname)
        fresh = _Stall()
        with self._lock:
            stall = self._stalls.setdefault(s, fresh)
        if stall.over:
            return down(buffers)
        if stall is fresh and rule.timeout is not None:
            timer = self._schedule(self._now() + rule.timeout, self._stall_over, s, stall)
            with self._lock:
                if not stall.over:
                    stall.timer = timer
                    timer = None
            if timer is not None:
                timer.cancel()
        return self._stalled(funcname, s, stall, buffers, overlapped, routine, thread_id)

    def _stalled(self, funcname: str, s: int, stall: _Stall, buffers: Any, overlapped: Any,
                 routine: Any, thread_id: Any) -> Any:
        """A send on a stalled socket: held until the stall ends."""
        if overlapped is not None:
            process = self._process
            op = process.start_overlapped(s, overlapped, routine, thread_id, buffers,
                                          provider=self, funcname=funcname)
            with self._lock:
                if not stall.over:
                    stall.ops.append(op)
                    return (WSA_IO_PENDING, 0)
            self._complete(op, stall.error, 0)      # it ended meanwhile
            return (WSA_IO_PENDING, 0)
        if self._nonblocking(s, funcname):
            raise WinsockError(WSAEWOULDBLOCK, funcname)
        waiter = _Waiter()
        with self._lock:
            waiting = not stall.over
            if waiting:
                stall.waiters.append(waiter)
        if not waiting:
            raise WinsockError(stall.error, funcname)
        self._block(waiter)
        raise WinsockError(waiter.error, funcname)

    def _end_stall(self, s: int, stall: _Stall, error: int) -> tuple[list[Operation],
                                                                       list[_Waiter]] | None:
        """Mark a stall over (lock taken here); its held requests and threads,
        or None if it was over already.  The stall stays on record until the
        socket is closed (so it does not stall again)."""
        with self._lock:
            if stall.over:
                return None
            stall.over, stall.error = True, error
            ops, waiters = stall.ops, stall.waiters
            stall.ops, stall.waiters = [], []
        if stall.timer is not None:
            stall.timer.cancel()
        return ops, waiters

    def _stall_over(self, s: int, stall: _Stall) -> None:
        """A stall's time-out ran out (a timer thread, or a clock event): the
        connection is reset, the held sends fail with WSAECONNRESET."""
        ended = self._end_stall(s, stall, WSAECONNRESET)
        if ended is None:
            return
        try:
            self._reset_below(s, "WSPSend")
        except WinsockError:                          # the stack is being torn down
            pass
        ops, waiters = ended
        for op in ops:
            self._complete(op, WSAECONNRESET, 0)
        for waiter in waiters:
            waiter.finish(WSAECONNRESET)

    def _closed(self, s: int) -> None:
        """The application closed `s`: what the layer keeps for it goes;
        stalled sends abort, stalled threads fail with WSAEINTR."""
        with self._lock:
            stall = self._stalls.pop(s, None)
            self._wire.pop(s, None)
            for key in [key for key in self._order if key[0] == s]:
                del self._order[key]
            for key in [key for key in self._used if key[1] == s]:
                del self._used[key]
        if stall is None:
            return
        ended = self._end_stall(s, stall, WSAEINTR)
        if ended is None:
            return
        ops, waiters = ended
        for op in ops:
            self._complete(op, WSA_OPERATION_ABORTED, 0)
        for waiter in waiters:
            waiter.finish(WSAEINTR)

    def _recv(self, funcname: str, s: int, buffers: Sequence[Any], flags: int, overlapped: Any,
              down: Callable[[Any], tuple], pending: tuple) -> Any:
        """A receive with the rule that fires for it applied."""
        rule = self._fire(funcname, s, overlapped is not None)
        if rule is None:
            return down(buffers)
        if rule.action == "hook":
            rule = self._decide(rule, self._call(funcname, s, buffers, flags,
                                                 overlapped is not None))
            if rule is None:
                return down(buffers)
        self._raise_for(rule, funcname, s)
        if rule.action in ("delay", "latency"):
            return self._timed(rule, s, "recv", overlapped, buffers, down, pending)
        # truncate: receive into a scratch buffer, pass on the first `size` bytes
        views = scatter(buffers, funcname)
        plan = _Plan(size=rule.size, scratch=bytearray(sum(len(v) for v in views)),
                     views=views)
        if overlapped is None:
            try:
                result = down([plan.scratch])
            except WinsockError as exc:
                if exc.winerror == WSAEMSGSIZE:       # the buffers were filled: trim them too
                    self._fill(plan, min(len(plan.scratch), plan.size))
                raise
        else:
            result = self._planned(overlapped, plan, lambda: down([plan.scratch]))
        if result[0] != 0:
            return result
        nbytes = min(result[1], plan.size)
        self._fill(plan, nbytes)
        return (0, nbytes) + tuple(result[2:])

    # -- closing ----------------------------------------------------------------------------
    def _close_later(self, s: int, delay: float) -> None:
        """slow_close: release the application's handle now, close the lower
        socket `delay` seconds later."""
        funcname = "WSPCloseSocket"
        ls = self._sock(s, funcname)
        ls.closing = True
        self._closed(s)
        lower_handle = ls.lower
        with self._lock:
            self._closing[lower_handle] = None
        self._unwrap(s, ls)
        timer = self._schedule(self._now() + delay, self._close_below, lower_handle)
        with self._lock:
            if lower_handle in self._closing:
                self._closing[lower_handle] = timer
                return
        if timer is not None:                            # the cleanup came first
            timer.cancel()

    def _close_below(self, lower_handle: int) -> None:
        """A slow close reaches the lower provider (a timer thread, or a
        clock event): a graceful close (or hard, if linger says so) that
        does not wait for linger."""
        with self._lock:
            if self._closing.pop(lower_handle, False) is False:
                return                                   # the cleanup took it
        funcname = "WSPCloseSocket"
        try:
            provider, handle = self._base_of(lower_handle, funcname)
            if isinstance(provider, SimProvider):
                sock = provider.sim_socket(handle, funcname, network=False)
                if sock.linger_onoff and sock.linger_seconds:
                    self.lower.WSPSetSockOpt(lower_handle, SOL_SOCKET, SO_LINGER, Linger(0, 0))
            self.lower.WSPCloseSocket(lower_handle)
        except WinsockError:
            self._hard_close_lower(lower_handle)

    # -- the entries ------------------------------------------------------------------------
    def WSPSocket(self, af: int, type: int, protocol: int,  # noqa: A002
                  protocol_info: Any = None, g: int = 0, flags: int = 0) -> int:
        """Apply the fault rules for "WSPSocket", then make the layer's socket.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "hook" decides to fail or to let the call pass (no socket, so no "reset"). Returns the
        layer's handle; rules see socket None. The lower provider's errors pass up.
        """
        self._gate("WSPSocket", None, (af, type, protocol))
        return super().WSPSocket(af, type, protocol, protocol_info, g, flags)

    def WSPAccept(self, s: int, condition: Callable[..., int] | None = None,
                  callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        """Apply the fault rules for "WSPAccept", then accept through the layer.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). Returns ``(new handle, peer address)``. WSAENOTSOCK for a handle not of
        this layer; the lower provider's errors pass up.
        """
        self._gate("WSPAccept", s)
        return super().WSPAccept(s, condition, callback_data)

    def WSPCloseSocket(self, s: int) -> None:
        """LayeredProvider's close (the lower close aborts what is pending
        below; completions this layer holds for a delay keep the status
        they had), with the abort_status rule applied to what it aborts,
        stalled sends aborted, or slow_close's late close."""
        funcname = "WSPCloseSocket"
        rule = self._gate(funcname, s)
        self._sock(s, funcname)                       # WSAENOTSOCK before the rule acts
        if rule is not None and rule.action == "slow_close":
            self._close_later(s, rule.delay)
            return
        marked: list[Operation] = []
        if rule is not None:                          # abort_status
            process = self._process
            with self._lock:
                held = {item.op for item in self._held}
                for op in process.operations(provider=self, socket=s):
                    if op not in held:
                        # Marked before the close: with completion routines the
                        # lower completion arrives later, as an APC.
                        self._abort_codes[op] = rule.code
                        marked.append(op)
        try:
            super().WSPCloseSocket(s)
        except BaseException:
            with self._lock:
                for op in marked:
                    self._abort_codes.pop(op, None)
            raise
        self._closed(s)

    def WSPBind(self, s: int, addr: tuple[str, int]) -> None:
        """Apply the fault rules for "WSPBind", then bind the lower socket.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPBind", s, (addr,))
        super().WSPBind(s, addr)

    def WSPListen(self, s: int, backlog: int) -> None:
        """Apply the fault rules for "WSPListen", then make the lower socket listen.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPListen", s, (backlog,))
        super().WSPListen(s, backlog)

    def WSPConnect(self, s: int, addr: tuple[str, int]) -> None:
        """Apply the fault rules for "WSPConnect", then connect the lower socket.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPConnect", s, (addr,))
        super().WSPConnect(s, addr)

    # The extension functions: the layer's own (LayeredProvider's), gated
    # like any entry before they go down.
    def AcceptEx(self, listen_s: int, accept_s: int, buffer: Any, receive_data_length: int,
                 local_address_length: int, remote_address_length: int,
                 overlapped: Overlapped) -> tuple[int, int]:
        """AcceptEx through the layer, after the rules on `listen_s` ("AcceptEx")."""
        self._gate("AcceptEx", listen_s, (accept_s,))
        return super().AcceptEx(listen_s, accept_s, buffer, receive_data_length,
                                local_address_length, remote_address_length, overlapped)

    def ConnectEx(self, s: int, addr: tuple[str, int], send_buffer: Any,
                  overlapped: Overlapped) -> tuple[int, int]:
        """ConnectEx through the layer, after the rules on `s` ("ConnectEx")."""
        self._gate("ConnectEx", s, (addr,))
        return super().ConnectEx(s, addr, send_buffer, overlapped)

    def DisconnectEx(self, s: int, overlapped: Overlapped, flags: int = 0) -> tuple[int, int]:
        """DisconnectEx through the layer, after the rules on `s` ("DisconnectEx")."""
        self._gate("DisconnectEx", s, (flags,))
        return super().DisconnectEx(s, overlapped, flags)

    def WSPShutdown(self, s: int, how: int) -> None:
        """Apply the fault rules for "WSPShutdown", then shut the lower socket down.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPShutdown", s, (how,))
        super().WSPShutdown(s, how)

    def WSPGetSockName(self, s: int) -> tuple[str, int]:
        """Apply the fault rules for "WSPGetSockName", then return the lower socket's address.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). Returns ``(host, port)``. WSAENOTSOCK for a handle not of this layer;
        the lower provider's errors pass up.
        """
        self._gate("WSPGetSockName", s)
        return super().WSPGetSockName(s)

    def WSPGetPeerName(self, s: int) -> tuple[str, int]:
        """Apply the fault rules for "WSPGetPeerName", then return the lower socket's peer.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). Returns ``(host, port)``. WSAENOTSOCK for a handle not of this layer;
        the lower provider's errors pass up.
        """
        self._gate("WSPGetPeerName", s)
        return super().WSPGetPeerName(s)

    def WSPSetSockOpt(self, s: int, level: int, optname: int, value: Any) -> None:
        """Apply the fault rules for "WSPSetSockOpt", then set the lower socket's option.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPSetSockOpt", s, (level, optname, value))
        super().WSPSetSockOpt(s, level, optname, value)

    def WSPGetSockOpt(self, s: int, level: int, optname: int) -> Any:
        """Apply the fault rules for "WSPGetSockOpt", then read the lower socket's option.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). Returns the option's value. WSAENOTSOCK for a handle not of this layer;
        the lower provider's errors pass up.
        """
        self._gate("WSPGetSockOpt", s, (level, optname))
        return super().WSPGetSockOpt(s, level, optname)

    def WSPEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        """Apply the fault rules for "WSPEventSelect", then select events on the lower socket.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPEventSelect", s, (event, network_events))
        super().WSPEventSelect(s, event, network_events)

    def WSPEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        """Apply the fault rules for "WSPEnumNetworkEvents", then read the lower socket's.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). Returns ``{FD_flag: error_code}``. WSAENOTSOCK for a handle not of this
        layer; the lower provider's errors pass up.
        """
        self._gate("WSPEnumNetworkEvents", s, (event,))
        return super().WSPEnumNetworkEvents(s, event)

    def WSPSendDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Apply the fault rules for "WSPSendDisconnect", then pass it to the lower socket.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPSendDisconnect", s, (disconnect_data,))
        super().WSPSendDisconnect(s, disconnect_data)

    def WSPRecvDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Apply the fault rules for "WSPRecvDisconnect", then pass it to the lower socket.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). WSAENOTSOCK for a handle not of this layer; the lower provider's errors
        pass up.
        """
        self._gate("WSPRecvDisconnect", s, (disconnect_data,))
        super().WSPRecvDisconnect(s, disconnect_data)

    def WSPAddressToString(self, addr: tuple[str, int], protocol_info: Any = None) -> str:
        """Apply the fault rules for "WSPAddressToString", then ask the lower provider.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "hook" decides to fail or to let the call pass (no socket, so no "reset"). Returns the
        address as text; rules see socket None. The lower provider's errors pass up.
        """
        self._gate("WSPAddressToString", None, (addr,))
        return super().WSPAddressToString(addr, protocol_info)

    def WSPStringToAddress(self, address: str, af: int = 2,
                           protocol_info: Any = None) -> tuple[str, int]:
        """Apply the fault rules for "WSPStringToAddress", then ask the lower provider.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "hook" decides to fail or to let the call pass (no socket, so no "reset"). Returns
        ``(host, port)``; rules see socket None. The lower provider's errors pass up.
        """
        self._gate("WSPStringToAddress", None, (address, af))
        return super().WSPStringToAddress(address, af, protocol_info)

    def WSPSelect(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
                  timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """Apply the fault rules for "WSPSelect", then select over the lower sockets.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "hook" decides to fail or to let the call pass (no socket, so no "reset"). Returns the
        three ready lists, naming the layer's handles; rules see socket None. WSAENOTSOCK for a
        handle not of this layer. The lower provider's errors pass up.
        """
        self._gate("WSPSelect", None, (read, write, except_, timeout))
        return super().WSPSelect(read, write, except_, timeout)

    def WSPIoctl(self, s: int, code: int, value: Any = None, overlapped: Any = None,
                 completion_routine: Any = None, thread_id: ThreadId | None = None) -> Any:
        """Apply the fault rules for "WSPIoctl", then run the layer's WSPIoctl.

        The first rule that fires acts before the call goes down: "fail" raises its ``code``,
        "reset" resets the connection and raises WSAECONNRESET, "hook" decides which (or lets
        the call pass). Returns the control code's result (extension functions are the layer's
        own). WSAENOTSOCK for a handle not of this layer; the lower provider's errors pass up.
        """
        self._gate("WSPIoctl", s, (code, value))
        return super().WSPIoctl(s, code, value, overlapped, completion_routine, thread_id)

    def WSPSend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int]:
        """Send `buffers` with the first rule for "WSPSend" that fires applied.

        The actions: "fail", "reset", "truncate", "drop", "replace", "slice", "limit", "stall",
        "delay", "latency", "bandwidth" or a "hook"'s decision (see the module documentation).
        Returns ``(rc, nbytes)`` as the lower provider would: ``(0, nbytes)`` or
        ``(WSA_IO_PENDING, 0)``; a delayed overlapped send always reports WSA_IO_PENDING, a
        dropped one all its bytes. "fail" raises its code; "reset", and "limit" past its limit,
        WSAECONNRESET.
        """
        down = super().WSPSend
        return self._send("WSPSend", s, buffers, flags, None, overlapped, completion_routine,
                          thread_id,
                          lambda bufs: down(s, bufs, flags, overlapped, completion_routine,
                                            thread_id))

    def WSPSendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None, completion_routine: Any = None,
                  thread_id: ThreadId | None = None) -> tuple[int, int]:
        """Send a datagram to `to` with the first rule for "WSPSendTo" that fires applied.

        Rules act as for :meth:`WSPSend` (a sliced datagram goes down as one datagram per
        piece). Returns ``(rc, nbytes)``. "fail" raises its code, "reset" WSAECONNRESET.
        """
        down = super().WSPSendTo
        return self._send("WSPSendTo", s, buffers, flags, to, overlapped, completion_routine,
                          thread_id,
                          lambda bufs: down(s, bufs, flags, to, overlapped, completion_routine,
                                            thread_id))

    def WSPRecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int, int]:
        """Receive into `buffers` with the first rule for "WSPRecv" that fires applied.

        The actions: "fail", "reset", "truncate" (at most ``size`` bytes reach the buffers, the
        rest is lost), "delay", "latency" or a "hook"'s decision. Returns
        ``(rc, nbytes, flags)``; a delayed overlapped receive returns
        ``(WSA_IO_PENDING, 0, 0)``. "fail" raises its code, "reset" WSAECONNRESET.
        """
        down = super().WSPRecv
        return self._recv("WSPRecv", s, buffers, flags, overlapped,
                          lambda bufs: down(s, bufs, flags, overlapped, completion_routine,
                                            thread_id),
                          (WSA_IO_PENDING, 0, 0))

    def WSPRecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None, completion_routine: Any = None,
                    thread_id: ThreadId | None = None) -> tuple[int, int, int, Any]:
        """Receive a datagram with the first rule for "WSPRecvFrom" that fires applied.

        Rules act as for :meth:`WSPRecv`. Returns ``(rc, nbytes, flags, from_addr)``; a delayed
        overlapped receive returns ``(WSA_IO_PENDING, 0, 0, None)``. "fail" raises its code,
        "reset" WSAECONNRESET.
        """
        down = super().WSPRecvFrom
        return self._recv("WSPRecvFrom", s, buffers, flags, overlapped,
                          lambda bufs: down(s, bufs, flags, overlapped, completion_routine,
                                            thread_id),
                          (WSA_IO_PENDING, 0, 0, None))
