"""The vocabulary of the fault layer (``docs/guide/faults.rst``): which entries a rule may
name, the actions and the parameters each takes, the checks of those
parameters, and the three objects a user of :class:`wsp.lsp.FaultProvider`
handles -- :class:`Rule` (what ``add_rule`` returns), :class:`Call` (what a
``"hook"`` is shown) and :class:`Action` (what it may answer).

This is the only place that decides what a valid rule is; wsp.lsp.fault
applies the rules to calls.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable, Sequence

from ..spi.checks import gather, wsabuf_nbytes

__all__ = ["ACTIONS", "APPLIES", "EXTENSIONS", "FAULT_OPS", "ON_SOCKETS", "PARAMETERS", "RECEIVES",
           "RESETTING", "SENDS", "SOCKETLESS", "Action", "Call", "Rule", "code_arg", "count_arg",
           "rate_arg", "rule_parameters", "seconds_arg", "variation_arg"]

SENDS = ("WSPSend", "WSPSendTo")
RECEIVES = ("WSPRecv", "WSPRecvFrom")
#: entries that take no socket handle
SOCKETLESS = ("WSPSocket", "WSPSelect", "WSPAddressToString", "WSPStringToAddress")
#: the Microsoft extension functions a layer hands out
#: (``docs/guide/spi-model.rst, "Extension functions"``): IOCP programs -- asyncio's proactor among
#: them -- connect and accept with these, never with WSPConnect or WSPAccept, so rules can name
#: them too
EXTENSIONS = ("AcceptEx", "ConnectEx", "DisconnectEx")
#: the entries rules may name (WSPStartup and WSPCleanup are left alone, so
#: that a stack can always be started and torn down)
FAULT_OPS = ("WSPAccept", "WSPBind", "WSPCloseSocket", "WSPConnect", "WSPEnumNetworkEvents",
             "WSPEventSelect", "WSPGetPeerName", "WSPGetSockName", "WSPGetSockOpt", "WSPIoctl",
             "WSPListen", "WSPRecv", "WSPRecvDisconnect", "WSPRecvFrom", "WSPSend",
             "WSPSendDisconnect", "WSPSendTo", "WSPSetSockOpt", "WSPShutdown") + SOCKETLESS \
    + EXTENSIONS
ACTIONS = ("fail", "truncate", "drop", "delay", "reset", "abort_status",
           "latency", "bandwidth", "slice", "limit", "stall", "slow_close", "hook")

ON_SOCKETS = tuple(op for op in FAULT_OPS if op not in SOCKETLESS)

# The entries each action can apply to ("*" rules apply to these only).
APPLIES = {
    "fail": FAULT_OPS,
    "truncate": SENDS + RECEIVES,
    "drop": SENDS,
    "delay": SENDS + RECEIVES,                 # overlapped calls only
    "reset": ON_SOCKETS,
    "abort_status": ("WSPCloseSocket",),
    "latency": SENDS + RECEIVES,
    "bandwidth": SENDS,
    "slice": SENDS,
    "limit": SENDS,
    "stall": SENDS,
    "slow_close": ("WSPCloseSocket",),
    "hook": FAULT_OPS,
}

# The parameters each action takes, and whether it must be given.
PARAMETERS: dict[str, dict[str, bool]] = {
    "fail": {"code": True},
    "truncate": {"size": True},
    "drop": {},
    "delay": {"delay": False},
    "reset": {},
    "abort_status": {"code": True},
    "latency": {"delay": True, "jitter": False},
    "bandwidth": {"rate": True},
    "slice": {"size": True, "variation": False},
    "limit": {"nbytes": True},
    "stall": {"timeout": False},
    "slow_close": {"delay": True},
    "hook": {"func": True},
}

# Actions that reset connections at the simulated network.
RESETTING = ("reset", "limit", "stall")


# -- parameter checks (add_rule and Action share them) ------------------------------------
def seconds_arg(value: object, name: str) -> float:
    """A number of seconds >= 0: TypeError or ValueError naming `name`.  An
    int too large for a float is finite but beyond any wait: inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not value >= 0:                                     # also NaN
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
    try:
        seconds = float(value)
    except OverflowError:
        return math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
    return seconds


def count_arg(value: object, name: str, minimum: int) -> int:
    """An int >= `minimum`: TypeError or ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")
    return value


def code_arg(value: object) -> int:
    """`value` checked as a rule's WSA error code.

    TypeError unless an int, ValueError unless positive.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"code must be an int, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"code must be a positive WSA error code, not {value}")
    return value


def rate_arg(value: object) -> float:
    """`value` checked as a rule's rate in bytes per second, as a float.

    TypeError unless a number; ValueError unless finite and above 0.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"rate must be a number of bytes per second, not {type(value).__name__}")
    try:
        rate = float(value)
    except OverflowError:
        rate = math.inf
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a finite number of bytes per second > 0, not {value!r}")
    return rate


def variation_arg(value: object, size: int) -> int:
    """`value` checked as a rule's variation of `size`: an int from 0 up to below `size`.

    TypeError unless an int; ValueError when negative or not below `size`.
    """
    variation = count_arg(value, "variation", 0)
    if variation >= size:
        raise ValueError(f"variation must be below size ({size}), not {variation}")
    return variation


class Rule:
    """One fault rule (made by :meth:`FaultProvider.add_rule`).  ``hits``
    counts the calls it was applied to; once it reaches ``count`` (when
    set) the rule no longer matches.  The action's parameters are
    attributes of the same names (None for those of other actions)."""

    __slots__ = ("op", "action", "socket", "probability", "count", "code", "size", "delay",
                 "jitter", "rate", "variation", "nbytes", "timeout", "func", "data", "hits")

    def __init__(self, op: str, action: str, socket: int | None, probability: float,
                 count: int | None, code: int | None = None, size: int | None = None,
                 delay: float | None = None, *, jitter: float | None = None,
                 rate: float | None = None, variation: int | None = None,
                 nbytes: int | None = None, timeout: float | None = None,
                 func: Callable[[Call], Any] | None = None, data: bytes | None = None) -> None:
        self.op = op
        self.action = action
        self.socket = socket
        self.probability = probability
        self.count = count
        self.code = code
        self.size = size
        self.delay = delay
        self.jitter = jitter
        self.rate = rate
        self.variation = variation
        self.nbytes = nbytes
        self.timeout = timeout
        self.func = func
        self.data = data            # a hook's "replace" only
        self.hits = 0

    def matches(self, op: str, s: int | None, overlapped: bool) -> bool:
        """Whether the rule covers a call of `op` on `s` (ignoring its
        probability and count)."""
        if self.op != op and self.op != "*":
            return False
        if op not in APPLIES[self.action]:
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
                        for name in ("socket", "code", "size", "delay", "jitter", "rate",
                                     "variation", "nbytes", "timeout", "func", "count")
                        if getattr(self, name) is not None)
        return (f"<Rule {self.op} {self.action}{extra} p={self.probability} "
                f"hits={self.hits}>")


class Call:
    """What a "hook" rule's function is given: one call about to pass
    through the layer (read-only by convention; made afresh for each call).

    * ``op``: the entry name (``"WSPSend"``);
    * ``socket``: the layer's socket handle, None for the entries that take
      none (WSPSocket, WSPSelect, WSPAddressToString, WSPStringToAddress);
    * ``buffers``: the WSABUF array of a send or receive (the application's
      own buffers: a hook must not keep them), None for other entries;
    * ``size``: the bytes a send offers or a receive can take, else None;
    * ``flags``: the flags of a send or receive, else None;
    * ``overlapped``: True for a call with an overlapped;
    * ``args``: the entry's other arguments in order (WSPSendTo: ``(to,)``,
      WSPConnect: ``(addr,)``, WSPSetSockOpt: ``(level, optname, value)``,
      WSPSocket: ``(af, type, protocol)``, ...);
    * ``time``: when the call was made: the network clock's seconds, or
      ``time.monotonic()`` without a clock;
    * ``data``: the bytes a send offers (None for other calls).
    """

    __slots__ = ("op", "socket", "buffers", "size", "flags", "overlapped", "args", "time")

    def __init__(self, op: str, socket: int | None, buffers: Sequence[Any] | None = None,
                 flags: int | None = None, overlapped: bool = False, args: tuple = (),
                 time: float = 0.0) -> None:  # noqa: A002 -- the documented field name
        self.op = op
        self.socket = socket
        self.buffers = buffers
        self.size = None if buffers is None else wsabuf_nbytes(buffers)
        self.flags = flags
        self.overlapped = overlapped
        self.args = args
        self.time = time

    @property
    def data(self) -> bytes | None:
        """The bytes of a send (gathered from its buffers); None otherwise."""
        if self.op not in SENDS or self.buffers is None:
            return None
        return gather(self.buffers, self.op)

    def __repr__(self) -> str:
        where = "" if self.socket is None else f" on {self.socket}"
        size = "" if self.size is None else f" size={self.size}"
        return f"<Call {self.op}{where}{size} at {self.time}>"


class Action:
    """A hook's decision for one call.  `kind`, and its parameters:

    * ``"pass"``: let the call through (as returning None);
    * ``"fail"`` (``code``): raise ``WinsockError(code)``, nothing happens; any entry;
    * ``"reset"``: reset the connection, the call fails with WSAECONNRESET;
      entries on a socket;
    * ``"drop"``: a send reports every byte, nothing goes down;
    * ``"replace"`` (``data``): a send passes `data` down instead of its
      own bytes and, once that succeeds, reports its own size as sent
      (corrupting, rewriting, shortening or lengthening what the peer gets);
    * ``"truncate"`` (``size``): as the "truncate" action, sends and receives;
    * ``"slice"`` (``size``, ``variation=0``): as the "slice" action, sends;
    * ``"delay"`` (``delay``): sends and receives: the completion, or the
      call without an overlapped, is held that many seconds (as
      "latency"); WSPCloseSocket: the close reaches the lower provider that
      much later (as "slow_close").

    TypeError or ValueError (naming the parameter) for bad parameters,
    also for one the kind does not take."""

    KINDS = ("pass", "fail", "reset", "drop", "replace", "truncate", "slice", "delay")
    _TAKES: dict[str, tuple[str, ...]] = {
        "pass": (), "fail": ("code",), "reset": (), "drop": (), "replace": ("data",),
        "truncate": ("size",), "slice": ("size", "variation"), "delay": ("delay",)}
    #: the entries each kind applies to
    APPLIES: dict[str, tuple[str, ...]] = {
        "pass": FAULT_OPS, "fail": FAULT_OPS, "reset": ON_SOCKETS, "drop": SENDS,
        "replace": SENDS, "truncate": SENDS + RECEIVES, "slice": SENDS,
        "delay": SENDS + RECEIVES + ("WSPCloseSocket",)}

    __slots__ = ("kind", "code", "size", "variation", "delay", "data")

    def __init__(self, kind: str, *, code: int | None = None, size: int | None = None,
                 variation: int | None = None, delay: float | None = None,
                 data: Any = None) -> None:
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a str, not {type(kind).__name__}")
        if kind not in self.KINDS:
            raise ValueError(f"unknown hook decision {kind!r}: expected one of {self.KINDS}")
        given = {"code": code, "size": size, "variation": variation, "delay": delay,
                 "data": data}
        takes = self._TAKES[kind]
        for name, value in given.items():
            if value is not None and name not in takes:
                raise ValueError(f"{name} is not a parameter of the decision {kind!r}")
        for name in takes:
            if given[name] is None and name != "variation":
                raise ValueError(f"the decision {kind!r} needs {name}=...")
        self.kind = kind
        self.code = None if code is None else code_arg(code)
        self.size = None if size is None else count_arg(size, "size", 1 if kind == "slice" else 0)
        self.variation = None
        if kind == "slice":
            self.variation = variation_arg(0 if variation is None else variation, self.size)
        self.delay = None if delay is None else seconds_arg(delay, "delay")
        self.data = None
        if data is not None:
            try:
                self.data = bytes(memoryview(data))
            except TypeError:
                raise TypeError(f"data must be a bytes-like object, "
                                f"not {type(data).__name__}") from None

    def __repr__(self) -> str:
        extra = "".join(f" {name}={getattr(self, name)!r}" for name in self._TAKES[self.kind]
                        if getattr(self, name) is not None)
        return f"<Action {self.kind}{extra}>"


# -- what the layer keeps ----------------------------------------------------------------


def rule_parameters(action: str, given: dict[str, Any]) -> dict[str, Any]:
    """The checked parameters of `action` for add_rule (None: not given):
    ValueError for one another action takes or a required one missing,
    TypeError/ValueError naming a bad value."""
    takes = PARAMETERS[action]
    for name, value in given.items():
        if value is not None and name not in takes:
            owners = ", ".join(repr(a) for a, p in PARAMETERS.items() if name in p)
            raise ValueError(f"{name} is for {owners}, not {action!r}")
    for name, required in takes.items():
        if required and given[name] is None:
            raise ValueError(f"action {action!r} needs {name}=...")
    out: dict[str, Any] = {}
    if "code" in takes:
        out["code"] = code_arg(given["code"])
    if "size" in takes:
        out["size"] = count_arg(given["size"], "size", 1 if action == "slice" else 0)
    if action == "slice":
        variation = given["variation"]
        out["variation"] = variation_arg(0 if variation is None else variation, out["size"])
    if "delay" in takes and given["delay"] is not None:
        seconds = seconds_arg(given["delay"], "delay")
        if action == "delay" and seconds > threading.TIMEOUT_MAX:
            # Longer than a timer can wait: held until release(), which
            # is what such a delay amounts to.
            seconds = None
        out["delay"] = seconds
    if action == "latency":
        jitter = given["jitter"]
        out["jitter"] = 0.0 if jitter is None else seconds_arg(jitter, "jitter")
    if action == "bandwidth":
        out["rate"] = rate_arg(given["rate"])
    if action == "limit":
        out["nbytes"] = count_arg(given["nbytes"], "nbytes", 0)
    if action == "stall" and given["timeout"] is not None:
        out["timeout"] = seconds_arg(given["timeout"], "timeout")
    if action == "hook":
        if not callable(given["func"]):
            raise TypeError(f"func must be callable, not {type(given['func']).__name__}")
        out["func"] = given["func"]
    return out
