"""Echo over wsp's simulated network, next to asyncio and uvloop echoing over
real loopback TCP, in the same run.

A *message* is 64 bytes, counted once its echo is complete at the client:
one client -> server -> client round trip.  Every side runs the same
application (bench/echo_apps.py): clients that check every echoed byte and
keep 1 (ping-pong) or 32 (pipelined) messages in flight, and a server that
echoes each chunk as it arrives.  Connections are opened once per entry;
each timed round makes every connection complete a fixed number of
messages.

groups (reference: uvloop; ops = messages per round):

* ``echo-1conn``    -- 1 connection, ping-pong;
* ``echo-8conn``    -- 8 connections, ping-pong, all in flight at once;
* ``echo-window32`` -- 1 connection, 32 messages in flight.

entries:

* ``uvloop`` / ``asyncio``: one event loop holding a Protocol echo server
  on 127.0.0.1 port 0 and the client Protocols, over real TCP sockets
  (TCP_NODELAY, the asyncio default);
* ``wsp``: one Process and one sim.Provider holding both ends of every
  connection, every socket associated with one completion port, overlapped
  WSPRecv/WSPSend, and one thread that dequeues one packet per
  GetQueuedCompletionStatus and reacts to it;
* ``wsp, application API``: the same through a Process's catalog and its
  application calls (WSAStartup, WSASocket, overlapped WSASend/WSARecv);
* ``trio memory streams``: ``trio.testing.memory_stream_pair``, the
  in-process peer a trio user picks, one trio.run per round;
* ``deque floor`` (diagnostic): the same application over two deques per
  connection moved by one loop -- the floor of any in-process echo;
* ``wsp, GQCSEx batches`` (diagnostic): the same, draining the port with
  GetQueuedCompletionStatusEx, up to 64 packets a call;
* ``thin-Python floor`` (diagnostic): the ``wsp`` loop and application over
  ``echo_apps.FloorProvider``, which does per call only what any SPI layer
  of Python classes over the core must (look the socket up, copy, post a
  packet): the ceiling of that architecture.

Measuring: harness.measure sizes an entry by time (at least 100 rounds),
which for rounds of 5-40 ms would take minutes.  ``measure_rounds`` below
is the same paired-round scheme with a fixed number of rounds
(``WSP_ECHO_ROUNDS``, default 60, after 4 warm-up rounds): before each
round of an entry, one round of the group's reference workload (uvloop,
on its own loop, server and connections) runs and is timed, and the same
``extra_info`` keys are recorded, so report.py shows paired ratios.
"""
from __future__ import annotations

import asyncio
import os
import statistics

import pytest

from echo_apps import (SIZE, AppEcho, AsyncioEcho, DequeEcho, EchoError, FloorEcho, TrioEcho,
                       WspEcho)  # bench/echo_apps.py
from harness import REFERENCES, Reference, tag  # bench/harness.py

try:
    import uvloop
except ImportError:          # pip install ".[bench]"; without it only smoke runs of the rest
    uvloop = None

ROUNDS = int(os.environ.get("WSP_ECHO_ROUNDS", "60"))
WARMUP = 4
SMOKE_MESSAGES = 40          # per connection, --benchmark-disable

#: group -> (connections, window, messages per connection per round)
GROUPS = {
    "echo-1conn": (1, 1, 500),
    "echo-8conn": (8, 1, 100),
    "echo-window32": (1, 32, 1600),
}


def _what(group: str) -> str:
    conns, window, per_conn = GROUPS[group]
    flight = "ping-pong" if window == 1 else f"{window} in flight"
    return f"{conns} conn x {per_conn} msgs of {SIZE} B, {flight}"


# --------------------------------------------------------- the transports
def _make(impl: str, group: str):
    conns, window, _ = GROUPS[group]
    if impl == "uvloop":
        return AsyncioEcho(uvloop.new_event_loop, conns, window)
    if impl == "asyncio":
        return AsyncioEcho(asyncio.new_event_loop, conns, window)
    if impl == "wsp":
        return WspEcho(conns, window, batch=1)
    if impl == "wsp-ex":
        return WspEcho(conns, window, batch=64)
    if impl == "floor":
        return FloorEcho(conns, window)
    if impl == "wsp-app":
        return AppEcho(conns, window)
    if impl == "trio":
        return TrioEcho(conns, window)
    if impl == "deque":
        return DequeEcho(conns, window)
    raise ValueError(impl)


def _check_and_close(echo, rounds_run: int, per_conn: int) -> None:
    """Every client completed exactly what was asked, nothing is in flight,
    and teardown leaves nothing behind."""
    states = [p.state for p in echo.clients] if isinstance(echo, AsyncioEcho) else echo.clients
    counts = [(st.sent, st.done, st.rx) for st in states]
    leftovers = echo.close()
    for sent, done, rx in counts:
        assert sent == done == rounds_run * per_conn, (sent, done, rounds_run)
        assert rx == done * SIZE
    if isinstance(echo, FloorEcho):
        assert leftovers == {"sockets": 0, "parked": 0, "packets": 0}, leftovers
    elif isinstance(echo, WspEcho):
        assert all(v == 0 for v in leftovers.values()), leftovers
        assert echo.net.lingering == 0 and not echo.net.connections()
    elif isinstance(echo, (TrioEcho, DequeEcho)):
        assert leftovers is None                  # nothing outlives a round
    else:
        assert echo.loop.is_closed()


# ---------------------------------------------------------- the reference
class EchoReference(Reference):
    """The group's uvloop echo as a Reference, with its own loop, server and
    connections, closed after the entry it was paired with."""

    def __init__(self, group: str) -> None:
        conns, _, per_conn = GROUPS[group]
        self.echo = _make("uvloop", group)
        self.per_conn = per_conn
        self.rounds_run = 0
        super().__init__("uvloop", conns * per_conn, self._round, lambda: (per_conn,))

    def _round(self, n: int) -> int:
        self.rounds_run += 1
        return self.echo.run_round(n)

    def close(self) -> None:
        _check_and_close(self.echo, self.rounds_run, self.per_conn)


for _group in GROUPS:
    REFERENCES[_group] = lambda g=_group: EchoReference(g)


def measure_rounds(benchmark, group: str, target):
    """harness.measure's paired rounds with a fixed round count: `target(n)`
    once per round (n = messages per connection), one reference round
    before each.  Returns (result of the last call, rounds run)."""
    per_conn = GROUPS[group][2]
    if benchmark.disabled:
        return benchmark.pedantic(target, args=(SMOKE_MESSAGES,)), 1
    ref = REFERENCES[group]()
    ref_times: list[float] = []

    def paired_setup():
        ref_times.append(ref.round())
        return (per_conn,), {}

    try:
        result = benchmark.pedantic(target, setup=paired_setup, rounds=ROUNDS,
                                    warmup_rounds=WARMUP)
    finally:
        ref.close()
    paired = ref_times[WARMUP:]
    benchmark.extra_info.update(
        ref_impl=ref.impl,
        ref_median_ns=statistics.median(paired) / ref.ops * 1e9,
        ref_mean_ns=statistics.fmean(paired) / ref.ops * 1e9,
        ref_min_ns=min(paired) / ref.ops * 1e9)
    return result, ROUNDS + WARMUP


# ------------------------------------------------------------- the entries
ENTRIES = [
    # (impl key, name in the report, role, how it runs)
    ("uvloop", "uvloop", "reference",
     "uvloop {v} loop: Protocol server + clients, loopback TCP"),
    ("asyncio", "asyncio", "peer",
     "asyncio loop: Protocol server + clients, loopback TCP"),
    ("wsp", "wsp", "subject",
     "sim network, 1 port, overlapped WSPRecv/WSPSend, 1 thread, GetQueuedCompletionStatus"),
    ("wsp-app", "wsp, application API", "subject",
     "the same through the catalog: WSASocket, overlapped WSASend/WSARecv, one port, GQCS"),
    ("trio", "trio memory streams", "peer",
     "trio.testing.memory_stream_pair per connection, an echo task and a client task each"),
    ("deque", "deque floor", "diagnostic",
     "a deque each way per connection, moved by one plain loop: no sockets at all"),
    ("wsp-ex", "wsp, GQCSEx batches", "diagnostic",
     "the same, draining with GetQueuedCompletionStatusEx(port, 64, 0)"),
    ("floor", "thin-Python floor", "diagnostic",
     "the wsp loop over echo_apps.FloorProvider: lookup + copy + packet per call, nothing else"),
]


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("impl,name,role,how", ENTRIES, ids=[e[0] for e in ENTRIES])
def test_echo(benchmark, group, impl, name, role, how):
    if uvloop is None and (impl == "uvloop" or not benchmark.disabled):
        pytest.skip("uvloop is not installed (it is the reference of the echo groups)")
    benchmark.group = group
    conns, _, per_conn = GROUPS[group]
    n = SMOKE_MESSAGES if benchmark.disabled else per_conn
    tag(benchmark, name, role, conns * n, "message",
        f"{_what(group)}; " + how.format(v=getattr(uvloop, "__version__", "?")))
    echo = _make(impl, group)
    try:
        done, rounds_run = measure_rounds(benchmark, group, echo.run_round)
    except BaseException:
        echo.close(strict=False)
        raise
    assert done == conns * n
    _check_and_close(echo, rounds_run, n)


# ------------------------------------------------ correctness, not timed
@pytest.mark.parametrize("recv_buffer", [1, 100])
def test_wsp_echo_partial_receives(recv_buffer, monkeypatch):
    """Receives smaller than a message, or not a multiple of one, split
    messages across completions; the echo must still count bytes right."""
    import echo_apps
    monkeypatch.setattr(echo_apps, "RECV_BUFFER", recv_buffer)
    for batch in (1, 64):
        echo = WspEcho(conns=3, window=32, batch=batch)
        assert all(len(ep.buf) == recv_buffer for ep in echo.endpoints)
        try:
            for _ in range(3):
                assert echo.run_round(50) == 150
        except BaseException:
            echo.close(strict=False)
            raise
        _check_and_close(echo, 3, 50)


def test_wsp_echo_detects_corruption():
    """The check is live: one bit flipped in the server's echo is caught,
    and a failed round still tears down without leaks."""
    echo = WspEcho(conns=1, window=1, batch=1)
    server = echo.endpoints[1]
    real_send = server._send

    def corrupting_send(s, buffers, flags, ov):
        data = bytearray(buffers[0])
        data[-1] ^= 1
        return real_send(s, [data], flags, ov)

    server._send = corrupting_send
    with pytest.raises(EchoError, match="differ"):
        echo.run_round(3)
    leftovers = echo.close(strict=False)
    assert all(v == 0 for v in leftovers.values()), leftovers
