"""Simulated time (SPEC 7.1): how much wall time a run of simulated seconds
costs, next to trio's virtual clock, in the same run.

group ``time-128x50ms`` (ops = messages): 128 connections, each completing
100 ping-pong messages of 64 B over a link of 50 ms each way -- 10
simulated seconds -- on a virtual clock that jumps whenever everything
waits:

* ``trio MockClock`` (the peer): ``trio.testing.memory_stream_pair`` per
  connection, ``trio.sleep(0.05)`` for each direction's latency, run under
  ``MockClock(autojump_threshold=0)`` -- what a trio user writes to test a
  protocol over latency;
* ``wsp sim, 1 thread`` / ``2 threads``: the ``wsp sim`` scenario
  (``wsp.scenario``: two processes on two hosts, overlapped I/O drained by
  that many worker threads per process, close modes, teardown and leak
  checks) with ``clock="virtual"``, ``latency=0.05``;
* ``wsp sim, no clock`` (diagnostic): the same scenario on a network without
  time -- what the simulated time itself adds.

Each entry asserts its own result (every message echoed, 10 simulated
seconds) so a broken run cannot report a time.
"""
from __future__ import annotations

import os

import pytest

from wsp.scenario import Scenario, ScenarioConfig

trio = pytest.importorskip("trio")
trio_testing = pytest.importorskip("trio.testing")

CONNS, MESSAGES, SIZE, LATENCY = 128, 100, 64, 0.05
SIMULATED = MESSAGES * 2 * LATENCY            # ping-pong: one round trip per message
ROUNDS = int(os.environ.get("WSP_TIME_ROUNDS", "5"))


def _wsp(threads: int, clock: str | None) -> dict:
    cfg = ScenarioConfig(connections=CONNS, messages=MESSAGES, size=SIZE, threads=threads,
                         seed=0, clock=clock, latency=LATENCY if clock else 0.0)
    report = Scenario(cfg).run()
    assert report["messages"] == CONNS * MESSAGES and report["leaked"] == 0
    assert not report["errors"]
    if clock:
        assert SIMULATED <= report["simulated_seconds"] <= SIMULATED + 0.5
    return report


def _trio() -> float:
    async def server(stream):
        while True:
            data = await stream.receive_some(4096)
            if not data:
                return
            await trio.sleep(LATENCY)              # the echo's way back
            await stream.send_all(data)

    async def client(stream, done):
        payload = b"m" * SIZE
        for _ in range(MESSAGES):
            await trio.sleep(LATENCY)              # the message's way out
            await stream.send_all(payload)
            got = 0
            while got < SIZE:
                got += len(await stream.receive_some(4096))
            done.append(1)
        await stream.aclose()

    async def main():
        done: list[int] = []
        async with trio.open_nursery() as nursery:
            for _ in range(CONNS):
                a, b = trio_testing.memory_stream_pair()
                nursery.start_soon(server, b)
                nursery.start_soon(client, a, done)
        assert len(done) == CONNS * MESSAGES
        return trio.current_time()

    clock = trio_testing.MockClock(autojump_threshold=0)
    simulated = trio.run(main, clock=clock)
    assert simulated == pytest.approx(SIMULATED)
    return simulated


ENTRIES = {
    "trio MockClock": _trio,
    "wsp sim, 1 thread": lambda: _wsp(1, "virtual"),
    "wsp sim, 2 threads": lambda: _wsp(2, "virtual"),
    "wsp sim, no clock": lambda: _wsp(1, None),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_time_128x50ms(benchmark, entry):
    benchmark.group = "time-128x50ms"
    benchmark.extra_info.update(ops=CONNS * MESSAGES, simulated_seconds=SIMULATED)
    benchmark.pedantic(ENTRIES[entry], rounds=ROUNDS, iterations=1, warmup_rounds=1)
