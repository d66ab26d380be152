"""Datagrams over wsp.aio: create_datagram_endpoint and sock_recvfrom that
waits (the sender of a datagram that completes a waiting overlapped
WSARecvFrom comes from the network's record for its overlapped)."""
from __future__ import annotations

import asyncio
import socket

import pytest

import wsp.aio
import wsp.sim
from wsp.lsp import FaultProvider, TracingProvider
from wsp.sim import Network


def _run(coro_fn, net, provider=None):
    async def main():
        return await coro_fn(asyncio.get_running_loop())
    return wsp.aio.run(main(), network=net, provider=provider)


# The stacks a waiting receive's sender must come up through: each layer
# passes its own overlapped down and carries the sender up (wsp.spi.senders).
STACKS = {
    "sim": lambda net: None,
    "trace": lambda net: TracingProvider(wsp.sim.Provider(net)),
    "fault/trace": lambda net: FaultProvider(TracingProvider(wsp.sim.Provider(net))),
}


def _network(clock):
    net = Network(seed=1, clock=clock)
    if clock is not None:
        net.set_link("*", "*", latency=0.01)
    return net


class Collect(asyncio.DatagramProtocol):
    def __init__(self, echo=False):
        self.echo = echo
        self.got = asyncio.Queue()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if self.echo:
            self.transport.sendto(data, addr)
        self.got.put_nowait((data, addr))


@pytest.mark.parametrize("clock", [None, "virtual"])
def test_datagram_echo_between_two_endpoints_reports_the_senders(clock):
    net = _network(clock)

    async def main(loop):
        server_t, server = await loop.create_datagram_endpoint(
            lambda: Collect(echo=True), local_addr=("10.0.0.1", 9000))
        client_t, client = await loop.create_datagram_endpoint(
            Collect, local_addr=("10.0.0.2", 9001))
        # The endpoints are reading (waiting WSARecvFroms) before anything is sent.
        await asyncio.sleep(0)
        assert server_t.get_extra_info("sockname") == ("10.0.0.1", 9000)
        results = []
        for payload in (b"one", b"two"):
            client_t.sendto(payload, ("10.0.0.1", 9000))
            results.append(await asyncio.wait_for(server.got.get(), 5))
            results.append(await asyncio.wait_for(client.got.get(), 5))
        client_t.close()
        server_t.close()
        await asyncio.sleep(0)
        return results

    assert _run(main, net) == [(b"one", ("10.0.0.2", 9001)), (b"one", ("10.0.0.1", 9000)),
                               (b"two", ("10.0.0.2", 9001)), (b"two", ("10.0.0.1", 9000))]


def test_a_connected_endpoint_by_remote_addr_and_by_name():
    net = Network()
    net.add_host("server.test", "10.0.0.1")

    async def main(loop):
        server_t, server = await loop.create_datagram_endpoint(
            lambda: Collect(echo=True), local_addr=("server.test", 53))
        client_t, client = await loop.create_datagram_endpoint(
            Collect, remote_addr=("server.test", 53))
        await asyncio.sleep(0)
        assert client_t.get_extra_info("peername") == ("10.0.0.1", 53)
        client_t.sendto(b"query")
        data, sender = await asyncio.wait_for(server.got.get(), 5)
        # Bound to the any address, it sends from its provider's host (SPEC §7.1).
        assert sender == ("127.0.0.1", client_t.get_extra_info("sockname")[1])
        reply = await asyncio.wait_for(client.got.get(), 5)
        client_t.close()
        server_t.close()
        await asyncio.sleep(0)
        return data, reply

    assert _run(main, net) == (b"query", (b"query", ("10.0.0.1", 53)))


@pytest.mark.parametrize("stack", list(STACKS))
def test_sock_recvfrom_that_waits_reports_its_sender(stack):
    net = Network()

    async def main(loop):
        a = loop.wsp_socket(type=socket.SOCK_DGRAM)
        b = loop.wsp_socket(type=socket.SOCK_DGRAM)
        a.bind(("10.0.0.1", 7000))
        b.bind(("10.0.0.2", 7001))
        waiting = asyncio.ensure_future(loop.sock_recvfrom(a, 100))
        await asyncio.sleep(0)
        assert not waiting.done()
        await loop.sock_sendto(b, b"late", ("10.0.0.1", 7000))
        result = await asyncio.wait_for(waiting, 5)
        a.close()
        b.close()
        return result

    assert _run(main, net, STACKS[stack](net)) == (b"late", ("10.0.0.2", 7001))


def test_a_lost_datagram_never_arrives():
    net = Network(seed=1, clock="virtual")
    net.set_link("10.0.0.1", "10.0.0.2", latency=0.01, loss=1.0)

    async def main(loop):
        server_t, server = await loop.create_datagram_endpoint(
            Collect, local_addr=("10.0.0.1", 9000))
        client_t, _ = await loop.create_datagram_endpoint(
            Collect, local_addr=("10.0.0.2", 9001))
        client_t.sendto(b"lost", ("10.0.0.1", 9000))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(server.got.get(), 1)
        client_t.close()
        server_t.close()
        await asyncio.sleep(0)
        return server.got.empty()

    assert _run(main, net)
