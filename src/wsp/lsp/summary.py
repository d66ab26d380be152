"""What a trace says, socket by socket: the one place that reads a
TracingProvider's records back (``docs/guide/layers.rst``; ``wsp trace FILE`` prints it).

:func:`summarize` takes the records (``TraceRecord`` objects, their dicts,
the tracer itself, or the path of a JSON-lines file that
``tracer.to_jsonl`` wrote) and gives a :class:`TraceSummary`; per socket:

* bytes sent and received, each transfer once -- the trace's rule: a
  record's ``nbytes`` is what that record counts (a send or receive made
  without an overlapped, and every completion; never an overlapped call's
  own record), so the summary adds ``nbytes`` over records.  Sends are
  WSPSend, WSPSendTo and ConnectEx (its send buffer); receives WSPRecv,
  WSPRecvFrom and AcceptEx (the first data, counted on the *accepted*
  socket, which the completion names in ``accepted``);
* calls per entry (completions are not calls);
* errors per WSA error name, of calls and of completions;
* the time from a call to its completion (the records' ``request`` links
  them): count, mean and max, in the trace's time unit, nanoseconds (the
  tracer's clock, ``time.monotonic_ns`` unless it was given another).  A
  call that completed at once has its completion recorded inside it, before
  the call's own record (made when the call returned): that is 0;
* the socket's local address and its peers, as far as the records tell.

Traces written before records had ``request`` and ``overlapped`` (wsp
before issue 15) counted an overlapped call that completed at once on its
call record too; their sums here count such transfers twice.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable

from ..errors import error_name

__all__ = ["RECEIVES", "SENDS", "SocketSummary", "TraceFormatError", "TraceSummary",
           "load_trace", "summarize"]

#: the entries whose bytes are sent / received
SENDS = frozenset({"WSPSend", "WSPSendTo", "ConnectEx"})
RECEIVES = frozenset({"WSPRecv", "WSPRecvFrom", "AcceptEx"})

# The fields a record must have, and what each may hold (JSON's types).
_INT_OR_NONE = ("socket", "size", "nbytes", "error", "request", "accepted")


class TraceFormatError(ValueError):
    """A trace that holds something other than records: `path` (None for
    records given directly) and `line` (1-based; for records given directly
    their position, 0-based) say where, `reason` what."""

    def __init__(self, path: str | None, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}, line {line}" if path is not None else f"record {line}"
        super().__init__(f"{where}: {reason}")


def _problem(record: Any) -> str | None:
    """What makes `record` (a decoded dict) not a trace record, or None."""
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    if not isinstance(record.get("op"), str):
        return "no \"op\" (the entry name, or \"completion\")"
    time = record.get("time")
    if isinstance(time, bool) or not isinstance(time, (int, float)):
        return "no numeric \"time\""
    for name in _INT_OR_NONE:
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"\"{name}\" is {value!r}, not a whole number or null"
    for name in ("address", "peer"):
        value = record.get(name)
        if value is not None and not (isinstance(value, (list, tuple)) and len(value) == 2):
            return f"\"{name}\" is {value!r}, not [host, port] or null"
    return None


def load_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of the JSON-lines trace file `path` (one object per
    line; blank lines are skipped), as dicts.

    OSError when the file cannot be read; TraceFormatError naming the line
    that is not JSON, not UTF-8, or not a record."""
    name = os.fspath(path)
    records = []
    with open(name, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise TraceFormatError(name, number, "not UTF-8 text") from None
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                raise TraceFormatError(name, number, f"not JSON ({exc.msg})") from None
            problem = _problem(record)
            if problem is not None:
                raise TraceFormatError(name, number, problem)
            records.append(record)
    return records


def _address(value: Any) -> tuple[str, int] | None:
    return None if value is None else (value[0], value[1])


class SocketSummary:
    """What the trace says of one socket (``socket`` None: the calls made
    without one -- WSPStartup, WSPSelect, WSPCleanup, a failed WSPSocket).

    ``address`` (local) and ``peers`` (remote addresses, in the order first
    seen; a datagram socket may have several) as ``(host, port)``;
    ``sent``/``received`` bytes; ``calls`` and ``errors`` as ``{name:
    count}``; ``completions`` and the call-to-completion times of those
    whose call is in the trace: ``waits`` of them, ``wait_mean`` and
    ``wait_max`` (ns; None without any)."""

    __slots__ = ("socket", "address", "peers", "sent", "received", "calls", "errors",
                 "completions", "waits", "wait_total", "wait_max")

    def __init__(self, socket: int | None) -> None:
        self.socket = socket
        self.address: tuple[str, int] | None = None
        self.peers: list[tuple[str, int]] = []
        self.sent = 0
        self.received = 0
        self.calls: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.completions = 0
        self.waits = 0
        self.wait_total = 0
        self.wait_max: int | float | None = None

    @property
    def wait_mean(self) -> float | None:
        """The mean time from call to completion (ns), None without any."""
        return self.wait_total / self.waits if self.waits else None

    def add_peer(self, peer: tuple[str, int] | None) -> None:
        """A remote address the trace names for this socket (None: none)."""
        if peer is not None and peer not in self.peers:
            self.peers.append(peer)

    def count_error(self, code: int | None) -> None:
        """One more error `code` (a WSA code; None: no error)."""
        if code is not None:
            name = error_name(code)
            self.errors[name] = self.errors.get(name, 0) + 1

    def count_wait(self, duration: int | float) -> None:
        """One more request that took `duration` (ns) from call to completion."""
        self.waits += 1
        self.wait_total += duration
        if self.wait_max is None or duration > self.wait_max:
            self.wait_max = duration

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON values (addresses as ``[host, port]``)."""
        return {
            "socket": self.socket,
            "address": None if self.address is None else list(self.address),
            "peers": [list(peer) for peer in self.peers],
            "sent": self.sent,
            "received": self.received,
            "calls": dict(self.calls),
            "errors": dict(self.errors),
            "completions": self.completions,
            "completion_time": {"count": self.waits, "mean": self.wait_mean,
                                "max": self.wait_max},
        }

    def __repr__(self) -> str:
        return (f"<SocketSummary {self.socket}: sent {self.sent}, received {self.received}, "
                f"{sum(self.calls.values())} calls, {sum(self.errors.values())} errors>")


class TraceSummary:
    """The summary of a trace: ``sockets`` (``{handle: SocketSummary}``, in
    the order they first appear; the key None for calls without a socket),
    ``records`` (how many), ``duration`` (last record's time minus the
    first's), ``time_unit`` ("ns") and the totals ``sent``, ``received``,
    ``calls`` and ``errors`` (``{name: count}``)."""

    #: the unit of every time in a trace and in its summary
    time_unit = "ns"

    def __init__(self, sockets: dict[int | None, SocketSummary], records: int,
                 duration: int | float) -> None:
        self.sockets = sockets
        self.records = records
        self.duration = duration

    @property
    def sent(self) -> int:
        """Bytes sent, over every socket."""
        return sum(s.sent for s in self.sockets.values())

    @property
    def received(self) -> int:
        """Bytes received, over every socket."""
        return sum(s.received for s in self.sockets.values())

    @property
    def calls(self) -> int:
        """Calls recorded, over every socket."""
        return sum(sum(s.calls.values()) for s in self.sockets.values())

    @property
    def errors(self) -> dict[str, int]:
        """Errors per WSA error name, over every socket."""
        total: dict[str, int] = {}
        for s in self.sockets.values():
            for name, count in s.errors.items():
                total[name] = total.get(name, 0) + count
        return total

    def socket(self, handle: int | None) -> SocketSummary:
        """The summary of socket `handle` (KeyError if the trace never names it)."""
        return self.sockets[handle]

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON values (what ``wsp trace --json`` prints)."""
        return {"records": self.records, "time_unit": self.time_unit,
                "duration": self.duration, "sent": self.sent, "received": self.received,
                "calls": self.calls, "errors": self.errors,
                "sockets": [s.to_dict() for s in self.sockets.values()]}

    def format(self) -> str:
        """The summary as a readable table: a row per socket and a total,
        then each socket's calls per entry."""
        head = ("socket", "local", "peer", "sent", "received", "calls", "completions",
                "mean wait", "max wait", "errors")
        rows = [head]
        for s in self.sockets.values():
            peers = _show(s.peers[0]) if s.peers else "-"
            if len(s.peers) > 1:
                peers += f" +{len(s.peers) - 1}"
            rows.append(("-" if s.socket is None else str(s.socket), _show(s.address), peers,
                         f"{s.sent:,}", f"{s.received:,}", f"{sum(s.calls.values()):,}",
                         f"{s.completions:,}", _duration(s.wait_mean), _duration(s.wait_max),
                         _counts(s.errors)))
        rows.append(("total", "", "", f"{self.sent:,}", f"{self.received:,}",
                     f"{self.calls:,}",
                     f"{sum(s.completions for s in self.sockets.values()):,}", "", "",
                     _counts(self.errors)))
        numeric = {3, 4, 5, 6, 7, 8}
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = [f"{self.records:,} records over {_duration(self.duration)} "
                 f"(times in {self.time_unit} from the tracer's clock; wait: call to "
                 f"completion)"]
        for row in rows:
            cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                     for i, cell in enumerate(row)]
            lines.append("  ".join(cells).rstrip())
        lines.append("calls per socket")
        for s in self.sockets.values():
            if s.calls:
                name = "-" if s.socket is None else str(s.socket)
                lines.append(f"  {name:<{widths[0]}}  {_counts(s.calls)}")
        return "\n".join(lines)

    __str__ = format

    def __repr__(self) -> str:
        return (f"<TraceSummary {self.records} records, {len(self.sockets)} sockets, "
                f"sent {self.sent}, received {self.received}>")


def _show(address: tuple[str, int] | None) -> str:
    return "-" if address is None else f"{address[0]}:{address[1]}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counts.items()) or "-"


def _duration(ns: int | float | None) -> str:
    """`ns` nanoseconds in a readable unit."""
    if ns is None:
        return "-"
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= size:
            return f"{ns / size:.3g} {unit}"
    return f"{ns:.3g} ns"


def _records_of(source: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The records of whatever summarize was given, as dicts, and the path
    they came from (None if not read from a file)."""
    if isinstance(source, (str, os.PathLike)):
        return load_trace(source), os.fspath(source)
    records = getattr(source, "records", None)
    if records is not None and not isinstance(source, (list, tuple)):
        source = list(records)              # a TracingProvider: a copy, it may still grow
    if not isinstance(source, Iterable):
        raise TypeError(f"summarize takes records, a tracer or a path, not "
                        f"{type(source).__name__}")
    out = []
    for index, record in enumerate(source):
        as_dict = record.to_dict() if hasattr(record, "to_dict") else record
        problem = _problem(as_dict)
        if problem is not None:
            raise TraceFormatError(None, index, problem)
        out.append(as_dict)
    return out, None


def summarize(source: Any) -> TraceSummary:
    """Summarise a trace: `source` is an iterable of ``TraceRecord``\\ s or
    their dicts, a ``TracingProvider`` (its records), or the path of a
    JSON-lines trace (``str`` or path-like).

    OSError when the file cannot be read; TraceFormatError for a line or a
    record that is not a trace record; TypeError for anything else."""
    records, _ = _records_of(source)
    sockets: dict[int | None, SocketSummary] = {}

    def of(handle: int | None) -> SocketSummary:
        summary = sockets.get(handle)
        if summary is None:
            summary = sockets[handle] = SocketSummary(handle)
        return summary

    # When each request's call returned: its completion may come first in
    # the trace (one done inside the call), so calls are gathered first.
    called = {r["request"]: r["time"] for r in records
              if r["op"] != "completion" and r.get("request") is not None}
    for r in records:
        op, error, nbytes = r["op"], r.get("error"), r.get("nbytes")
        target = of(r.get("socket"))
        accepted = r.get("accepted")
        if op == "completion":
            call = r.get("call")
            target.completions += 1
            target.count_error(error)
            started = called.get(r.get("request"))
            if started is not None:
                target.count_wait(max(0, r["time"] - started))
        else:
            call = op
            target.calls[op] = target.calls.get(op, 0) + 1
            target.count_error(error)
        # What an accept learns belongs to the accepted socket, not the listener.
        owner = of(accepted) if accepted is not None and call in ("WSPAccept", "AcceptEx") \
            else target
        if nbytes is not None:
            if call in SENDS:
                owner.sent += nbytes
            elif call in RECEIVES:
                owner.received += nbytes
        if error is None:
            address = _address(r.get("address"))
            if address is not None:
                owner.address = address
            owner.add_peer(_address(r.get("peer")))
    first = min((r["time"] for r in records), default=0)
    last = max((r["time"] for r in records), default=0)
    return TraceSummary(sockets, len(records), last - first)
