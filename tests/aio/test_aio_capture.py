"""An asyncio program over wsp.aio, seen in a capture (SPEC §7.2, §10):
aiohttp's client and server on a virtual clock, captured by the network and
read back by tshark, which must decode the HTTP exchange, find one TCP
conversation with the bytes each side sent, and no expert error."""
from __future__ import annotations

import asyncio

import pytest

import wsp.aio
import wsp.sim
from helpers import importorskip_unless_ci
from tsharkkit import expert, fields, payload_by_direction

aiohttp = importorskip_unless_ci("aiohttp")
from aiohttp import web  # noqa: E402 -- after the gate above

LATENCY = 0.01


@pytest.mark.timeout(60)
def test_an_aiohttp_exchange_in_the_capture(tmp_path):
    net = wsp.sim.Network(clock="virtual")
    net.set_link("*", "*", latency=LATENCY)
    net.add_host("api.test", "10.0.0.1")
    path = tmp_path / "http.pcap"
    body = b"x" * 5000                        # more than one segment each way

    async def echo(request):
        return web.Response(body=await request.read())

    async def main():
        app = web.Application()
        app.router.add_post("/echo", echo)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "10.0.0.1", 8080).start()
        try:
            connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post("http://api.test:8080/echo", data=body) as response:
                    return response.status, await response.read()
        finally:
            await runner.cleanup()

    with net.capture(path) as capture:
        status, echoed = wsp.aio.run(asyncio.wait_for(main(), 30), network=net)
        net.advance(1)                        # what is still in flight arrives
    assert capture.error is None
    assert (status, echoed) == (200, body)

    expert(path)                              # no error, no retransmission, ...
    requests = fields(path, "http.request.method", "http.request.uri", "http.host",
                      display_filter="http.request")
    assert requests == [["POST", "/echo", "api.test:8080"]]
    responses = fields(path, "http.response.code", display_filter="http.response")
    assert responses == [["200"]]
    # one conversation: the request (headers + body) one way, the answer the other
    totals = payload_by_direction(path)
    assert {stream for stream, _ in totals} == {0}
    client, server = sorted(totals, key=lambda key: key[1].startswith("10.0.0.1:8080"))
    assert len(body) < totals[client] < len(body) + 1024
    assert len(body) < totals[server] < len(body) + 1024
    # and the handshake a round trip long, in simulated time
    syn, syn_ack = fields(path, "frame.time_relative", display_filter="tcp.flags.syn == 1")[:2]
    assert float(syn_ack[0]) - float(syn[0]) == pytest.approx(LATENCY, abs=1e-6)
