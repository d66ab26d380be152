"""asyncio streams over the wsp event loop (issue 14), next to the default
asyncio loop and uvloop over real loopback TCP, in the same run.

group ``aio-streams-8conn`` (ops = messages): 8 connections, each doing
ping-pong with 64-byte messages through asyncio *streams* --
``asyncio.start_server`` on the server side, ``asyncio.open_connection`` on
the client side -- with the same application code on every loop.  A message
counts once its echo has come back and matched what was sent.

The loop, the server and the 8 connections are opened once per entry,
outside the timing; each timed round is ``loop.run_until_complete`` of one
round in which every connection completes ``MESSAGES`` more messages.  At
the end everything is closed and every message checked as echoed, so a
broken run cannot report a time.

entries:

* ``asyncio``: ``asyncio.new_event_loop()``, 127.0.0.1 TCP (the baseline);
* ``uvloop``: ``uvloop.new_event_loop()``, 127.0.0.1 TCP;
* ``wsp loop``: ``wsp.aio.new_event_loop(wsp.sim.Network())``, no clock;
* ``wsp loop, virtual clock`` (diagnostic): the same on
  ``Network(clock="virtual")`` with no link conditions.
"""
from __future__ import annotations

import asyncio
import os

import pytest

import wsp.aio
import wsp.sim

try:
    import uvloop
except ImportError:
    uvloop = None

CONNS, MESSAGES, SIZE = 8, 100, 64
SMOKE_MESSAGES = 5
ROUNDS = int(os.environ.get("WSP_AIO_ROUNDS", "40"))
TIMEOUT = 10.0


class StreamsEcho:
    """`CONNS` stream connections to an echo server, all on one loop."""

    def __init__(self, new_loop, host: str) -> None:
        self.loop = new_loop()
        self.host = host
        self.server = None
        self.conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.handlers: set[asyncio.Task] = set()
        self.echoed = 0
        try:
            self.loop.run_until_complete(asyncio.wait_for(self._open(), TIMEOUT))
        except BaseException:
            self.close()
            raise

    async def _serve(self, reader, writer) -> None:
        self.handlers.add(asyncio.current_task())
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, 0)
        port = self.server.sockets[0].getsockname()[1]
        for _ in range(CONNS):
            self.conns.append(await asyncio.open_connection(self.host, port))
        while len(self.handlers) < CONNS:
            await asyncio.sleep(0)

    async def _client(self, i: int, reader, writer, n: int) -> None:
        for k in range(n):
            msg = (b"%02d:%06d|" % (i, k)).ljust(SIZE, b"x")
            writer.write(msg)
            await writer.drain()
            if await reader.readexactly(SIZE) != msg:
                raise AssertionError(f"connection {i}: message {k} echoed wrong")
            self.echoed += 1

    async def _round(self, n: int) -> None:
        await asyncio.wait_for(asyncio.gather(
            *(self._client(i, r, w, n) for i, (r, w) in enumerate(self.conns))), TIMEOUT)

    def run_round(self, n: int) -> int:
        self.loop.run_until_complete(self._round(n))
        return n * CONNS

    def close(self) -> None:
        loop = self.loop

        async def shut() -> None:
            for _, w in self.conns:
                w.close()
            for _, w in self.conns:
                await w.wait_closed()
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
            await asyncio.wait_for(asyncio.gather(*self.handlers), TIMEOUT)

        try:
            loop.run_until_complete(shut())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _wsp(clock):
    return lambda: wsp.aio.new_event_loop(wsp.sim.Network(clock=clock))


ENTRIES = {
    "asyncio": (asyncio.new_event_loop, "127.0.0.1"),
    "uvloop": (getattr(uvloop, "new_event_loop", None), "127.0.0.1"),
    "wsp loop": (_wsp(None), "10.0.0.1"),
    "wsp loop, virtual clock": (_wsp("virtual"), "10.0.0.1"),
}


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_aio_streams_8conn(benchmark, entry):
    new_loop, host = ENTRIES[entry]
    if new_loop is None:
        pytest.skip("uvloop is not installed")
    benchmark.group = "aio-streams-8conn"
    n = SMOKE_MESSAGES if benchmark.disabled else MESSAGES
    benchmark.extra_info.update(ops=CONNS * n, unit="message")
    echo = StreamsEcho(new_loop, host)
    try:
        done = benchmark.pedantic(echo.run_round, args=(n,), rounds=ROUNDS,
                                  iterations=1, warmup_rounds=2)
        assert done == CONNS * n
    finally:
        echo.close()
    rounds = 1 if benchmark.disabled else ROUNDS + 2
    assert echo.echoed == rounds * CONNS * n
    if isinstance(echo.loop, wsp.aio.WspEventLoop):
        assert all(v == 0 for v in echo.loop.process.resources().values())
