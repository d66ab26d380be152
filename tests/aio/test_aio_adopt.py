"""Host socket.socket objects handed to a wsp.aio loop are adopted: a wsp
socket of the same family and type stands in for each (SPEC §10), and the
host socket itself never connects anywhere."""
from __future__ import annotations

import asyncio
import socket

import pytest

import wsp
import wsp.aio
from wsp.sim import Network
from aiokit import ZERO


def _run(coro_fn, net):
    async def main():
        loop = asyncio.get_running_loop()
        return await coro_fn(loop), loop
    return wsp.aio.run(main(), network=net)


async def _echo(reader, writer):
    writer.write(await reader.read(100))
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("clock", [None, "virtual"])
def test_sock_connect_sendall_recv_on_a_host_socket(clock):
    net = Network(seed=1, clock=clock)
    if clock is not None:
        net.set_link("*", "*", latency=0.01)

    async def main(loop):
        server = await asyncio.start_server(_echo, "10.0.0.1", 8080)
        host = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            host.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(host, ("10.0.0.1", 8080)), 5)
            stand_in = loop.adopt(host)
            assert isinstance(stand_in, wsp.aio.WspSocket)
            assert loop.adopt(host) is stand_in                    # one stand-in per host socket
            assert stand_in.family == socket.AF_INET and stand_in.type == socket.SOCK_STREAM
            assert stand_in.getpeername() == ("10.0.0.1", 8080)
            # The host socket itself never connected anywhere.
            with pytest.raises(OSError):
                host.getpeername()
            await loop.sock_sendall(host, b"adopted")
            data = await asyncio.wait_for(loop.sock_recv(host, 100), 5)
            stand_in.close()
        finally:
            host.close()
        server.close()
        await server.wait_closed()
        return data

    data, loop = _run(main, net)
    assert data == b"adopted"
    assert loop.process.resources() == ZERO


def test_create_connection_with_a_host_socket():
    net = Network()

    async def main(loop):
        server = await asyncio.start_server(_echo, "10.0.0.1", 8080)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as host:
            host.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(host, ("10.0.0.1", 8080)), 5)
            reader, writer = await asyncio.open_connection(sock=host)
            assert writer.get_extra_info("peername") == ("10.0.0.1", 8080)
            writer.write(b"over a transport")
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            await writer.wait_closed()
            assert loop.adopt(host).closed          # the transport closed the stand-in
        server.close()
        await server.wait_closed()
        return data

    data, loop = _run(main, net)
    assert data == b"over a transport"
    assert loop.process.resources() == ZERO


def test_a_host_datagram_socket_is_adopted_with_its_type():
    net = Network()

    async def main(loop):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            loop.adopt(a).bind(("10.0.0.1", 5000))
            loop.adopt(b).bind(("10.0.0.2", 5001))
            assert loop.adopt(a).type == socket.SOCK_DGRAM
            waiting = asyncio.ensure_future(loop.sock_recvfrom(a, 100))
            await asyncio.sleep(0)
            await loop.sock_sendto(b, b"dgram", ("10.0.0.1", 5000))
            result = await asyncio.wait_for(waiting, 5)
            loop.adopt(a).close()
            loop.adopt(b).close()
        return result

    result, loop = _run(main, net)
    assert result == (b"dgram", ("10.0.0.2", 5001))
    assert loop.process.resources() == ZERO


def test_a_closed_host_socket_is_not_adopted():
    net = Network()

    async def main(loop):
        host = socket.socket()
        host.close()
        with pytest.raises(OSError):
            await asyncio.wait_for(loop.sock_connect(host, ("10.0.0.1", 80)), 5)

    _run(main, net)


def test_host_option_names_reach_the_provider_and_tuning_options_are_kept():
    # Libraries written for socket.socket pass the host's numbers (Linux's
    # SOL_SOCKET is 1, Windows' 0xFFFF); aiohttp sets SO_KEEPALIVE on every
    # connection it serves, which the simulated network has no use for.
    net = Network()

    async def main(loop):
        s = loop.wsp_socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 12345)
            through_wsp = s.getsockopt(wsp.SOL_SOCKET, wsp.SO_RCVBUF)
            through_host = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            before = s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            kept = (s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            # An option that is neither known nor a mere tuning still fails.
            with pytest.raises(OSError):
                s.setsockopt(wsp.SOL_SOCKET, 0x7777, 1)
        finally:
            s.close()
        return through_wsp, through_host, before, kept

    (through_wsp, through_host, before, kept), loop = _run(main, net)
    assert through_wsp == through_host == 12345
    assert before == 0 and kept == (1, 1)
    assert loop.process.resources() == ZERO


def test_a_host_socket_dropped_once_a_transport_has_it_closes_with_the_transport():
    # aiohappyeyeballs makes the socket, connects it with sock_connect, hands
    # it to create_connection(sock=) and drops its own reference: the
    # transport owns it then, and nothing may be left to the garbage
    # collector unclosed (a ResourceWarning).
    import gc
    import warnings
    import weakref

    net = Network()

    async def main(loop):
        server = await asyncio.start_server(_echo, "10.0.0.1", 8080)
        host = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        host.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(host, ("10.0.0.1", 8080)), 5)
        reader, writer = await asyncio.open_connection(sock=host)
        gone = weakref.ref(host)
        del host
        gc.collect()
        alive_with_the_transport = gone() is not None and gone().fileno() != -1
        writer.write(b"owned")
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        closed_with_it = gone() is None or gone().fileno() == -1
        server.close()
        await server.wait_closed()
        return data, alive_with_the_transport, closed_with_it

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (data, alive, closed), loop = _run(main, net)
        gc.collect()
    assert data == b"owned" and alive and closed
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert loop.process.resources() == ZERO


def test_the_stand_in_of_a_host_socket_its_owner_closed_is_closed_at_the_next_adoption():
    # aiohappyeyeballs closes its host socket after a refused connect: the
    # stand-in must not stay open (one wsp socket per attempt) until the
    # loop closes.
    net = Network()

    async def main(loop):
        counts = []
        for _ in range(3):
            host = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            host.setblocking(False)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.wait_for(loop.sock_connect(host, ("10.0.0.1", 9)), 5)
            stand_in = loop.adopt(host)
            host.close()
            counts.append(loop.process.resources()["sockets"])
        assert not stand_in.closed            # nothing was adopted after the last one
        return counts

    counts, loop = _run(main, net)
    assert counts == [1, 1, 1]
    assert loop.process.resources() == ZERO
