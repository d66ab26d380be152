"""Names on the simulated network: ``net.add_host`` and wsp.aio's
getaddrinfo/getnameinfo resolving through it."""
from __future__ import annotations

import asyncio
import socket

import pytest

import wsp.aio
from wsp.sim import Network


def _run(coro_fn, net):
    async def main():
        return await coro_fn(asyncio.get_running_loop())
    return wsp.aio.run(main(), network=net)


def test_add_host_checks_its_arguments_and_names_them():
    net = Network()
    with pytest.raises(TypeError, match="name"):
        net.add_host(b"server.test", "10.0.0.1")
    with pytest.raises(TypeError, match="address"):
        net.add_host("server.test", 167772161)
    with pytest.raises(ValueError, match="name"):
        net.add_host("", "10.0.0.1")
    with pytest.raises(ValueError, match="address"):
        net.add_host("server.test", "10.0.0")
    with pytest.raises(ValueError, match="address"):
        net.add_host("server.test", "server.test")
    assert net.host_address("server.test") is None       # nothing was added by a failed call


def test_add_host_again_replaces_the_address_and_names_ignore_case():
    net = Network()
    net.add_host("Server.Test", "10.0.0.1")
    assert net.host_address("server.test") == "10.0.0.1"
    net.add_host("server.test", "10.0.0.2")
    assert net.host_address("SERVER.TEST") == "10.0.0.2"


def test_getaddrinfo_resolves_added_names_and_unknown_ones_are_eai_noname():
    net = Network()
    net.add_host("server.test", "10.0.0.1")

    async def main(loop):
        infos = await loop.getaddrinfo("server.test", 80, type=socket.SOCK_STREAM)
        assert infos == [(socket.AF_INET, socket.SOCK_STREAM, 0, "", ("10.0.0.1", 80))]
        both = await loop.getaddrinfo(b"server.test", "80")
        assert {info[1] for info in both} == {socket.SOCK_STREAM, socket.SOCK_DGRAM}
        assert all(info[4] == ("10.0.0.1", 80) for info in both)
        with pytest.raises(socket.gaierror) as caught:
            await loop.getaddrinfo("other.test", 80)
        assert caught.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror) as caught:
            await loop.getaddrinfo("server.test", 80, flags=socket.AI_NUMERICHOST)
        assert caught.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror) as caught:
            await asyncio.wait_for(asyncio.open_connection("other.test", 80), 5)
        assert caught.value.errno == socket.EAI_NONAME
        return await loop.getnameinfo(("server.test", 80))

    assert _run(main, net) == ("10.0.0.1", "80")


@pytest.mark.parametrize("clock", [None, "virtual"])
def test_open_connection_and_start_server_by_name(clock):
    net = Network(seed=1, clock=clock)
    net.add_host("server.test", "10.0.0.1")

    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    async def main(loop):
        server = await asyncio.start_server(echo, "server.test", 80)
        assert server.sockets[0].getsockname() == ("10.0.0.1", 80)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("server.test", 80), 5)
        assert writer.get_extra_info("peername") == ("10.0.0.1", 80)
        writer.write(b"by name")
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return data

    assert _run(main, net) == b"by name"
