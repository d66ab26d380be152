"""FaultProvider: a layer that injects faults into the calls passing
through it, deterministically under a seed (SPEC §7, §8).

Rules say which calls are hit and how::

    fault = FaultProvider(wsp.sim.Provider(net), seed=7)
    fault.add_rule("WSPSend", "fail", code=WSAENETRESET, probability=0.5)
    fault.add_rule("WSPRecv", "delay")          # completions wait for fault.release()

For each call the rules are tried in the order they were added; the first
one that matches the call and fires is applied, and the call sees no other
rule.  A rule with a probability below 1 draws one number from the layer's
``random.Random(seed)`` each time it matches, so the same calls in the same
order hit the same faults, run after run.  The actions:

``"fail"``
    The call raises ``WinsockError(code)`` without reaching the lower
    provider: nothing is sent, received, started or delivered (an
    overlapped call fails before it starts, SPEC §6.2).  Any entry.
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
    with ``delay=seconds`` a timer thread delivers it after that time
    (``release`` delivers those early too).  A delayed request always
    reports WSA_IO_PENDING, even if it completed at once below.  Held
    completions of a socket that gets closed are still delivered, with the
    status they had (the close does not turn them into aborts); the final
    WSPCleanup cancels them silently like any pending request, so nothing is
    delivered after it.
``"reset"``
    Calls on a socket: the socket's connection is reset at the simulated
    network -- both ends' pending requests fail with WSAECONNRESET, the
    peer's next receive too -- and the call fails with WSAECONNRESET.  Needs
    a ``wsp.sim.Provider`` at the bottom of the stack (else ``add_rule``
    raises WSAEOPNOTSUPP).  A datagram socket has no connection: only the
    call fails.
``"abort_status"`` (``code``)
    WSPCloseSocket: the requests the close aborts complete with `code`
    instead of WSA_OPERATION_ABORTED.
"""
from __future__ import annotations

import math
import random
import threading
from typing import Any, Callable, Sequence

from ..errors import (WSA_IO_PENDING, WSA_OPERATION_ABORTED, WSAECONNRESET, WSAEMSGSIZE,
                      WSAEOPNOTSUPP, WinsockError)
from ..sim.provider import Provider as SimProvider
from ..spi.checks import gather, scatter
from ..spi.process import Operation
from ..spi.structs import Overlapped, ThreadId
from .layered import LayeredProvider

__all__ = ["ACTIONS", "FAULT_OPS", "FaultProvider", "Rule"]

SENDS = ("WSPSend", "WSPSendTo")
RECEIVES = ("WSPRecv", "WSPRecvFrom")
#: entries that take no socket handle
SOCKETLESS = ("WSPSocket", "WSPSelect", "WSPAddressToString", "WSPStringToAddress")
#: the entries rules may name (WSPStartup and WSPCleanup are left alone, so
#: that a stack can always be started and torn down)
FAULT_OPS = ("WSPAccept", "WSPBind", "WSPCloseSocket", "WSPConnect", "WSPEnumNetworkEvents",
             "WSPEventSelect", "WSPGetPeerName", "WSPGetSockName", "WSPGetSockOpt", "WSPIoctl",
             "WSPListen", "WSPRecv", "WSPRecvDisconnect", "WSPRecvFrom", "WSPSend",
             "WSPSendDisconnect", "WSPSendTo", "WSPSetSockOpt", "WSPShutdown") + SOCKETLESS
ACTIONS = ("fail", "truncate", "drop", "delay", "reset", "abort_status")

# The entries each action can apply to ("*" rules apply to these only).
_APPLIES = {
    "fail": FAULT_OPS,
    "truncate": SENDS + RECEIVES,
    "drop": SENDS,
    "delay": SENDS + RECEIVES,                 # overlapped calls only
    "reset": tuple(op for op in FAULT_OPS if op not in SOCKETLESS),
    "abort_status": ("WSPCloseSocket",),
}



class Rule:
    """One fault rule (made by :meth:`FaultProvider.add_rule`).  ``hits``
    counts the calls it was applied to; once it reaches ``count`` (when
    set) the rule no longer matches."""

    __slots__ = ("op", "action", "socket", "probability", "count", "code", "size", "delay",
                 "hits")

    def __init__(self, op: str, action: str, socket: int | None, probability: float,
                 count: int | None, code: int | None, size: int | None,
                 delay: float | None) -> None:
        self.op = op
        self.action = action
        self.socket = socket
        self.probability = probability
        self.count = count
        self.code = code
        self.size = size
        self.delay = delay
        self.hits = 0

    def matches(self, op: str, s: int | None, overlapped: bool) -> bool:
        """Whether the rule covers a call of `op` on `s` (ignoring its
        probability and count)."""
        if self.op != op and self.op != "*":
            return False
        if op not in _APPLIES[self.action]:
            return False
        if self.action == "delay" and not overlapped:
            return False
        return self.socket is None or (s is not None and self.socket == s)

    @property
    def exhausted(self) -> bool:
        """True once it has been applied `count` times."""
        return self.count is not None and self.hits >= self.count

    def __repr__(self) -> str:
        extra = "".join(f" {name}={getattr(self, name)!r}"
                        for name in ("socket", "code", "size", "delay", "count")
                        if getattr(self, name) is not None)
        return (f"<Rule {self.op} {self.action}{extra} p={self.probability} "
                f"hits={self.hits}>")


class _Plan:
    """What the layer must do when the lower request behind an overlapped
    completes: hold it (delay) or trim it (truncated receive)."""

    __slots__ = ("delay", "hold", "size", "scratch", "views", "filled")

    def __init__(self, hold: bool = False, delay: float | None = None, size: int = 0,
                 scratch: bytearray | None = None, views: list[memoryview] | None = None) -> None:
        self.hold = hold
        self.delay = delay
        self.size = size
        self.scratch = scratch
        self.views = views
        self.filled = False


class _Held:
    """A completion the layer holds back (delay)."""

    __slots__ = ("op", "error", "nbytes", "flags", "timer")

    def __init__(self, op: Operation, error: int, nbytes: int, flags: int) -> None:
        self.op = op
        self.error = error
        self.nbytes = nbytes
        self.flags = flags
        self.timer: threading.Timer | None = None



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
        self._lock = threading.Lock()
        self._plans: dict[Overlapped, _Plan] = {}      # the application's overlapped -> plan
        self._held: list[_Held] = []                    # in the order they were held
        self._abort_codes: dict[Operation, int] = {}   # requests a close aborts -> their status

    # -- rules ---------------------------------------------------------------------------
    def add_rule(self, op: str, action: str, *, socket: int | None = None,
                 probability: float = 1.0, count: int | None = None, code: int | None = None,
                 size: int | None = None, delay: float | None = None) -> Rule:
        """Add a rule and return it.  `op`: a WSP entry name (one of
        ``FAULT_OPS``) or ``"*"`` for every entry the action applies to;
        `socket`: a handle of this layer, or None for any socket;
        `probability`: chance that a matching call is hit; `count`: the
        most calls it is applied to.  `code` (fail, abort_status), `size`
        (truncate) and `delay` (delay) belong to their action only.

        TypeError for arguments of the wrong type, ValueError for an
        unknown entry or action, a missing or out-of-range parameter, or an
        action the entry cannot take; WinsockError(WSAEOPNOTSUPP) for
        "reset" when the bottom of the stack is not a ``wsp.sim.Provider``.
        """
        if not isinstance(op, str):
            raise TypeError(f"op must be a WSP entry name or '*', not {type(op).__name__}")
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, not {type(action).__name__}")
        if op != "*" and op not in FAULT_OPS:
            raise ValueError(f"unknown WSP entry {op!r}: expected '*' or one of {FAULT_OPS}")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: expected one of {ACTIONS}")
        if op != "*" and op not in _APPLIES[action]:
            raise ValueError(f"action {action!r} does not apply to {op}; it applies to "
                             f"{_APPLIES[action]}")
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
            if not isinstance(count, int) or isinstance(count, bool):
                raise TypeError(f"count must be an int or None, not {type(count).__name__}")
            if count < 0:
                raise ValueError(f"count must not be negative, not {count}")
        if action in ("fail", "abort_status"):
            if code is None:
                raise ValueError(f"action {action!r} needs code=<WSA error code>")
            if not isinstance(code, int) or isinstance(code, bool):
                raise TypeError(f"code must be an int, not {type(code).__name__}")
            if code <= 0:
                raise ValueError(f"code must be a positive WSA error code, not {code}")
        elif code is not None:
            raise ValueError(f"code is for 'fail' and 'abort_status', not {action!r}")
        if action == "truncate":
            if size is None:
                raise ValueError("action 'truncate' needs size=<bytes>")
            if not isinstance(size, int) or isinstance(size, bool):
                raise TypeError(f"size must be an int, not {type(size).__name__}")
            if size < 0:
                raise ValueError(f"size must not be negative, not {size}")
        elif size is not None:
            raise ValueError(f"size is for 'truncate', not {action!r}")
        if action == "delay":
            if delay is not None:
                if isinstance(delay, bool) or not isinstance(delay, (int, float)):
                    raise TypeError(f"delay must be seconds or None, not {type(delay).__name__}")
                try:
                    finite = delay >= 0 and math.isfinite(delay)
                except OverflowError:         # an int beyond any float: finite, huge
                    finite = True
                if not finite:
                    raise ValueError(f"delay must be a finite number of seconds >= 0, "
                                     f"not {delay!r}")
                # Longer than a timer can wait (threading.TIMEOUT_MAX) is held
                # until release(), which is what such a delay amounts to.
                delay = None if delay > threading.TIMEOUT_MAX else float(delay)
        elif delay is not None:
            raise ValueError(f"delay is for 'delay', not {action!r}")
        if action == "reset" and not isinstance(self._bottom(), SimProvider):
            raise WinsockError(WSAEOPNOTSUPP, "add_rule")
        rule = Rule(op, action, socket, float(probability), count, code, size, delay)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove_rule(self, rule: Rule) -> None:
        """Remove a rule (ValueError if it is not one of this layer's)."""
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

    # -- held completions -------------------------------------------------------------------
    @property
    def held(self) -> int:
        """How many completions are held now."""
        with self._lock:
            return len(self._held)

    def release(self) -> int:
        """Deliver every held completion, in the order they were held (timed
        ones too, early); returns how many were delivered."""
        with self._lock:
            items, self._held = self._held, []
        for item in items:
            if item.timer is not None:
                item.timer.cancel()
        return sum(1 for item in items if self._deliver(item))

    def _hold(self, op: Operation, error: int, nbytes: int, flags: int,
              delay: float | None) -> None:
        item = _Held(op, error, nbytes, flags)
        with self._lock:
            self._held.append(item)
            if delay is not None:
                item.timer = threading.Timer(delay, self._due, (item,))
                item.timer.daemon = True
                item.timer.start()

    def _due(self, item: _Held) -> None:
        """A timed hold ran out (timer thread)."""
        with self._lock:
            try:
                self._held.remove(item)
            except ValueError:                  # released, or dropped by the cleanup
                return
        self._deliver(item)

    def _deliver(self, item: _Held) -> bool:
        process = self._process
        if process is None:
            return False
        # The engine delivers exactly once: after the final WSPCleanup has
        # cancelled the request silently this is a no-op.
        return process.complete_overlapped(item.op, item.error, item.nbytes, item.flags)

    def _forget(self) -> None:
        with self._lock:
            held, self._held = self._held, []
            self._plans.clear()
            self._abort_codes.clear()
        for item in held:
            if item.timer is not None:
                item.timer.cancel()

    def on_cleanup(self) -> None:
        # The base class has cancelled the held requests silently, with every
        # other pending one (seed: LPWSPCleanup); they must never be delivered.
        self._forget()
        super().on_cleanup()

    def on_terminated(self, process: Any) -> None:
        self._forget()
        super().on_terminated(process)

    # -- completions ----------------------------------------------------------------------
    def lower_completed(self, op: Operation, error: int, nbytes: int, flags: int) -> None:
        with self._lock:
            plan = self._plans.pop(op.overlapped, None)
            code = self._abort_codes.pop(op, None)
        if code is not None and error == WSA_OPERATION_ABORTED:
            error = code
        if plan is not None:
            if plan.hold:
                self._hold(op, error, nbytes, flags, plan.delay)
                return
            if plan.views is not None:
                nbytes = min(nbytes, plan.size)
                self._fill(plan, nbytes)
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
    def _gate(self, op: str, s: int | None) -> Rule | None:
        """Apply the rule for a call, if one fires: "fail" and "reset" raise;
        any other rule is returned for the entry to apply."""
        rule = self._fire(op, s)
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

    def _reset(self, s: int, funcname: str) -> None:
        """Reset the connection under the layer's socket `s` at the simulated
        network, then fail the call with WSAECONNRESET."""
        handle = self.lower_handle(s, funcname)
        provider = self.lower
        while isinstance(provider, LayeredProvider):      # down the stack, handle by handle
            handle = provider.lower_handle(handle, funcname)
            provider = provider.lower
        if not isinstance(provider, SimProvider):
            raise WinsockError(WSAEOPNOTSUPP, funcname)
        # A reset from the network (a middlebox's RST): both ends fail with
        # WSAECONNRESET and FD_CLOSE carries it.
        provider.reset_connection(handle, funcname)
        raise WinsockError(WSAECONNRESET, funcname)

    def _send(self, funcname: str, s: int, buffers: Sequence[Any], overlapped: Any,
              routine: Any, thread_id: Any, down: Callable[[Any], tuple[int, int]]) -> Any:
        """A send with the rule that fires for it applied.  `down(buffers)`
        passes it to the lower provider."""
        rule = self._fire(funcname, s, overlapped is not None)
        if rule is None:
            return down(buffers)
        self._raise_for(rule, funcname, s)
        if rule.action == "truncate":
            return down([gather(buffers, funcname)[:rule.size]])
        if rule.action == "drop":
            self._sock(s, funcname)                   # the handle is still checked
            total = len(gather(buffers, funcname))
            if overlapped is not None:
                process = self._process
                op = process.start_overlapped(s, overlapped, routine, thread_id, buffers,
                                              provider=self, funcname=funcname)
                process.complete_overlapped(op, 0, total)
            return (0, total)
        # delay
        result = self._planned(overlapped, _Plan(hold=True, delay=rule.delay),
                               lambda: down(buffers))
        return (WSA_IO_PENDING, 0) if result[0] == 0 else result

    def _recv(self, funcname: str, s: int, buffers: Sequence[Any], overlapped: Any,
              down: Callable[[Any], tuple], pending: tuple) -> Any:
        """A receive with the rule that fires for it applied."""
        rule = self._fire(funcname, s, overlapped is not None)
        if rule is None:
            return down(buffers)
        self._raise_for(rule, funcname, s)
        if rule.action == "delay":
            result = self._planned(overlapped, _Plan(hold=True, delay=rule.delay),
                                   lambda: down(buffers))
            return pending if result[0] == 0 else result
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

    # -- the entries ------------------------------------------------------------------------
    def WSPSocket(self, af: int, type: int, protocol: int,  # noqa: A002
                  protocol_info: Any = None, g: int = 0, flags: int = 0) -> int:
        self._gate("WSPSocket", None)
        return super().WSPSocket(af, type, protocol, protocol_info, g, flags)

    def WSPAccept(self, s: int, condition: Callable[..., int] | None = None,
                  callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        self._gate("WSPAccept", s)
        return super().WSPAccept(s, condition, callback_data)

    def WSPCloseSocket(self, s: int) -> None:
        """LayeredProvider's close (the lower close aborts what is pending
        below; completions this layer holds for a delay keep the status
        they had), with the abort_status rule applied to what it aborts."""
        funcname = "WSPCloseSocket"
        rule = self._gate(funcname, s)
        self._sock(s, funcname)                       # WSAENOTSOCK before the rule acts
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

    def WSPBind(self, s: int, addr: tuple[str, int]) -> None:
        self._gate("WSPBind", s)
        super().WSPBind(s, addr)

    def WSPListen(self, s: int, backlog: int) -> None:
        self._gate("WSPListen", s)
        super().WSPListen(s, backlog)

    def WSPConnect(self, s: int, addr: tuple[str, int]) -> None:
        self._gate("WSPConnect", s)
        super().WSPConnect(s, addr)

    def WSPShutdown(self, s: int, how: int) -> None:
        self._gate("WSPShutdown", s)
        super().WSPShutdown(s, how)

    def WSPGetSockName(self, s: int) -> tuple[str, int]:
        self._gate("WSPGetSockName", s)
        return super().WSPGetSockName(s)

    def WSPGetPeerName(self, s: int) -> tuple[str, int]:
        self._gate("WSPGetPeerName", s)
        return super().WSPGetPeerName(s)

    def WSPSetSockOpt(self, s: int, level: int, optname: int, value: Any) -> None:
        self._gate("WSPSetSockOpt", s)
        super().WSPSetSockOpt(s, level, optname, value)

    def WSPGetSockOpt(self, s: int, level: int, optname: int) -> Any:
        self._gate("WSPGetSockOpt", s)
        return super().WSPGetSockOpt(s, level, optname)

    def WSPEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        self._gate("WSPEventSelect", s)
        super().WSPEventSelect(s, event, network_events)

    def WSPEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        self._gate("WSPEnumNetworkEvents", s)
        return super().WSPEnumNetworkEvents(s, event)

    def WSPSendDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        self._gate("WSPSendDisconnect", s)
        super().WSPSendDisconnect(s, disconnect_data)

    def WSPRecvDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        self._gate("WSPRecvDisconnect", s)
        super().WSPRecvDisconnect(s, disconnect_data)

    def WSPAddressToString(self, addr: tuple[str, int], protocol_info: Any = None) -> str:
        self._gate("WSPAddressToString", None)
        return super().WSPAddressToString(addr, protocol_info)

    def WSPStringToAddress(self, address: str, af: int = 2,
                           protocol_info: Any = None) -> tuple[str, int]:
        self._gate("WSPStringToAddress", None)
        return super().WSPStringToAddress(address, af, protocol_info)

    def WSPSelect(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
                  timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        self._gate("WSPSelect", None)
        return super().WSPSelect(read, write, except_, timeout)

    def WSPIoctl(self, s: int, code: int, value: Any = None, overlapped: Any = None,
                 completion_routine: Any = None, thread_id: ThreadId | None = None) -> Any:
        self._gate("WSPIoctl", s)
        return super().WSPIoctl(s, code, value, overlapped, completion_routine, thread_id)

    def WSPSend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int]:
        down = super().WSPSend
        return self._send("WSPSend", s, buffers, overlapped, completion_routine, thread_id,
                          lambda bufs: down(s, bufs, flags, overlapped, completion_routine,
                                            thread_id))

    def WSPSendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None, completion_routine: Any = None,
                  thread_id: ThreadId | None = None) -> tuple[int, int]:
        down = super().WSPSendTo
        return self._send("WSPSendTo", s, buffers, overlapped, completion_routine, thread_id,
                          lambda bufs: down(s, bufs, flags, to, overlapped, completion_routine,
                                            thread_id))

    def WSPRecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int, int]:
        down = super().WSPRecv
        return self._recv("WSPRecv", s, buffers, overlapped,
                          lambda bufs: down(s, bufs, flags, overlapped, completion_routine,
                                            thread_id),
                          (WSA_IO_PENDING, 0, 0))

    def WSPRecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None, completion_routine: Any = None,
                    thread_id: ThreadId | None = None) -> tuple[int, int, int, Any]:
        down = super().WSPRecvFrom
        return self._recv("WSPRecvFrom", s, buffers, overlapped,
                          lambda bufs: down(s, bufs, flags, overlapped, completion_routine,
                                            thread_id),
                          (WSA_IO_PENDING, 0, 0, None))
