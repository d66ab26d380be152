"""wsp.aio: an asyncio loop over wsp overlapped I/O (SPEC §10).

Every await that could wait on the network is bounded by asyncio.wait_for,
so a broken loop fails a test instead of hanging it.
"""
from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time

import pytest

import wsp
import wsp.aio
import wsp.lsp
import wsp.sim
from wsp.sim import Network
from aiokit import ZERO, echo_streams, sock_pair


CLOCKS = [None, "virtual"]


def _network(clock):
    net = Network(seed=1, clock=clock)
    if clock is not None:
        net.set_link("*", "*", latency=0.01)
    return net


def _run(coro_fn, net):
    """Run `coro_fn(loop)` on a new wsp loop on `net`; (result, loop)."""
    async def main():
        loop = asyncio.get_running_loop()
        return await coro_fn(loop), loop
    return wsp.aio.run(main(), network=net)


# -- the loop itself --------------------------------------------------------------------
def test_new_event_loop_is_a_proactor_loop_that_closes_clean():
    net = Network()
    loop = wsp.aio.new_event_loop(net)
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert loop.process.wsa_started
        assert loop.run_until_complete(asyncio.sleep(0, "done")) == "done"
    finally:
        loop.close()
    assert loop.process.resources() == ZERO
    loop.close()                                   # a second close does nothing


def test_sleep_an_hour_on_a_virtual_clock_takes_no_wall_time():
    net = Network(clock="virtual")

    async def main(loop):
        start, wall = loop.time(), time.monotonic()
        await asyncio.sleep(3600)
        return loop.time() - start, time.monotonic() - wall

    (elapsed, wall), loop = _run(main, net)
    assert 3600 <= elapsed < 3600.01
    assert wall < 1.0
    assert net.time() >= 3600
    assert loop.process.resources() == ZERO


def test_loop_time_is_monotonic_without_a_clock():
    net = Network()

    async def main(loop):
        return loop.time(), time.monotonic()

    (loop_time, now), _ = _run(main, net)
    assert abs(loop_time - now) < 1.0


def test_call_soon_threadsafe_wakes_a_waiting_loop():
    net = Network()

    async def main(loop):
        fut = loop.create_future()
        timer = threading.Timer(0.05, loop.call_soon_threadsafe, (fut.set_result, "woken"))
        timer.start()
        try:
            return await asyncio.wait_for(fut, 5)
        finally:
            timer.join()

    assert _run(main, net)[0] == "woken"


# -- streams ------------------------------------------------------------------------
@pytest.mark.parametrize("clock", CLOCKS)
def test_stream_echo(clock):
    net = _network(clock)

    async def main(loop):
        server = await asyncio.start_server(echo_streams, "10.0.0.1", 7000)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7000), 5)
        assert writer.get_extra_info("peername") == ("10.0.0.1", 7000)
        got = []
        for i in range(5):
            message = f"message {i}".encode() * 100
            writer.write(message)
            await writer.drain()
            got.append(await asyncio.wait_for(reader.readexactly(len(message)), 5))
        writer.write_eof()
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return got, rest

    (got, rest), loop = _run(main, net)
    assert got == [f"message {i}".encode() * 100 for i in range(5)]
    assert rest == b""
    assert loop.process.resources() == ZERO


def test_a_large_transfer_is_flow_controlled_and_arrives_whole():
    net = _network("virtual")
    payload = bytes(range(256)) * 4096              # 1 MiB, far above the buffers

    async def main(loop):
        received = loop.create_future()

        async def sink(reader, writer):
            received.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(sink, "10.0.0.1", 7001)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7001), 5)
        writer.write(payload)
        await asyncio.wait_for(writer.drain(), 60)
        writer.write_eof()
        data = await asyncio.wait_for(received, 60)
        writer.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return data

    data, loop = _run(main, net)
    assert data == payload
    assert loop.process.resources() == ZERO


@pytest.mark.parametrize("clock", CLOCKS)
def test_create_server_and_create_connection_with_protocols(clock):
    net = _network(clock)
    servers = []

    class Server(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            servers.append(self)
            self.lost = asyncio.get_running_loop().create_future()

        def connection_lost(self, exc):
            self.lost.set_result(exc)

        def data_received(self, data):
            self.transport.write(data[::-1])

    class Client(asyncio.Protocol):
        def __init__(self, loop):
            self.answer = loop.create_future()
            self.lost = loop.create_future()

        def data_received(self, data):
            if not self.answer.done():
                self.answer.set_result(data)

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main(loop):
        server = await loop.create_server(Server, "10.0.0.2", 0)
        port = server.sockets[0].getsockname()[1]
        assert port != 0
        transport, client = await asyncio.wait_for(
            loop.create_connection(lambda: Client(loop), "10.0.0.2", port), 5)
        transport.write(b"stressed")
        answer = await asyncio.wait_for(client.answer, 5)
        transport.close()
        lost = await asyncio.wait_for(client.lost, 5)
        assert await asyncio.wait_for(servers[0].lost, 5) is None
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return answer, lost

    (answer, lost), loop = _run(main, net)
    assert answer == b"desserts"
    assert lost is None
    assert loop.process.resources() == ZERO


# -- sock_* methods -----------------------------------------------------------------------
@pytest.mark.parametrize("clock", CLOCKS)
def test_sock_methods(clock):
    net = _network(clock)

    async def main(loop):
        listener = loop.wsp_socket()
        listener.bind(("10.0.0.3", 0))
        listener.listen(4)
        address = listener.getsockname()
        client = wsp.aio.socket(socket.AF_INET, socket.SOCK_STREAM)
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        await asyncio.wait_for(loop.sock_connect(client, address), 5)
        conn, peer = await asyncio.wait_for(accepting, 5)
        assert peer == client.getsockname()
        assert conn.getpeername() == client.getsockname()
        await asyncio.wait_for(loop.sock_sendall(client, b"ping"), 5)
        first = await asyncio.wait_for(loop.sock_recv(conn, 100), 5)
        await asyncio.wait_for(loop.sock_sendall(conn, b"pong!"), 5)
        buf = bytearray(10)
        n = await asyncio.wait_for(loop.sock_recv_into(client, buf), 5)
        client.shutdown(socket.SHUT_WR)
        eof = await asyncio.wait_for(loop.sock_recv(conn, 100), 5)
        for s in (client, conn, listener):
            s.close()
        assert client.fileno() == -1
        return first, bytes(buf[:n]), eof

    (first, second, eof), loop = _run(main, net)
    assert (first, second, eof) == (b"ping", b"pong!", b"")
    assert loop.process.resources() == ZERO


def test_wsp_socket_looks_like_a_socket():
    net = Network()

    async def main(loop):
        s = loop.wsp_socket()
        try:
            assert s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
            assert s.fileno() > 0
            s.setblocking(False)
            assert s.gettimeout() == 0.0
        finally:
            s.close()
        with pytest.raises(OSError):
            s.getsockname()

    _run(main, net)


# -- names ----------------------------------------------------------------------------
def test_getaddrinfo_knows_ipv4_literals_only():
    net = Network()

    async def main(loop):
        infos = await loop.getaddrinfo("10.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos == [(socket.AF_INET, socket.SOCK_STREAM, 0, "", ("10.0.0.1", 80))]
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("example.com", 80)
        with pytest.raises(socket.gaierror):
            await asyncio.wait_for(asyncio.open_connection("example.com", 80), 5)
        return await loop.getnameinfo(("10.0.0.1", 80))

    assert _run(main, net)[0] == ("10.0.0.1", "80")


# -- errors --------------------------------------------------------------------------
@pytest.mark.parametrize("clock", CLOCKS)
def test_a_refused_connect_raises_connection_refused(clock):
    net = _network(clock)

    async def main(loop):
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection("10.0.0.9", 4321), 5)
        s = loop.wsp_socket()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.sock_connect(s, ("10.0.0.9", 4321)), 5)
        s.close()

    _, loop = _run(main, net)
    assert loop.process.resources() == ZERO


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_reset_connection_raises_connection_reset(clock):
    net = _network(clock)

    async def main(loop):
        server = await asyncio.start_server(echo_streams, "10.0.0.1", 7002)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7002), 5)
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
        net.connections()[0].reset()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 5)
        writer.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)

    _, loop = _run(main, net)
    assert loop.process.resources() == ZERO


def test_a_hard_close_of_the_peer_resets_sock_recv():
    net = Network()

    async def main(loop):
        listener = loop.wsp_socket()
        listener.bind(("10.0.0.1", 0))
        listener.listen(1)
        client = loop.wsp_socket()
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        await asyncio.wait_for(loop.sock_connect(client, listener.getsockname()), 5)
        conn, _ = await asyncio.wait_for(accepting, 5)
        reading = asyncio.ensure_future(loop.sock_recv(client, 10))
        await asyncio.sleep(0)
        conn.setsockopt(wsp.SOL_SOCKET, wsp.SO_LINGER, wsp.Linger(1, 0))
        conn.close()                                       # SO_LINGER 0: a reset
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reading, 5)
        client.close()
        listener.close()

    _, loop = _run(main, net)
    assert loop.process.resources() == ZERO


# -- time-outs and cancellation --------------------------------------------------------
def test_wait_for_times_out_in_simulated_time():
    net = _network("virtual")

    async def main(loop):
        left = loop.create_future()

        async def silent(reader, writer):
            await reader.read()                # never answers; ends when the client leaves
            writer.close()
            left.set_result(None)

        server = await asyncio.start_server(silent, "10.0.0.1", 7003)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7003), 5)
        start, wall = loop.time(), time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(), 5)
        elapsed, wall = loop.time() - start, time.monotonic() - wall
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        await asyncio.wait_for(left, 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return elapsed, wall

    (elapsed, wall), loop = _run(main, net)
    assert 5 <= elapsed < 5.01
    assert wall < 2.0
    assert loop.process.resources() == ZERO


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_cancelled_read_loses_no_bytes(clock):
    # The simulated provider has no CancelIoEx: a receive cancelled under it
    # would still take the next bytes.  So a cancelled read leaves its
    # receive posted, and what that receive brings in is the next read's.
    net = _network(clock)

    async def main(loop):
        listener, client, conn = await sock_pair(loop)
        reading = asyncio.ensure_future(loop.sock_recv(client, 10))
        await asyncio.sleep(0.001)
        assert len(loop.process.operations(socket=client.fileno())) == 1
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await asyncio.wait_for(loop.sock_sendall(conn, b"after"), 5)
        got = [await asyncio.wait_for(loop.sock_recv(client, 3), 5)]
        got.append(await asyncio.wait_for(loop.sock_recv(client, 10), 5))
        # And a read that waits for the parked receive gets its bytes.
        reading = asyncio.ensure_future(loop.sock_recv(client, 10))
        await asyncio.sleep(0.001)
        reading.cancel()
        again = asyncio.ensure_future(loop.sock_recv(client, 10))
        await asyncio.sleep(0.001)
        await asyncio.wait_for(loop.sock_sendall(conn, b"more"), 5)
        got.append(await asyncio.wait_for(again, 5))
        assert loop.process.operations(socket=client.fileno()) == []
        for s in (client, conn, listener):
            s.close()
        return got

    got, loop = _run(main, net)
    assert got == [b"aft", b"er", b"more"]
    assert loop.process.resources() == ZERO


def test_cancelling_a_task_awaiting_a_stream_read_then_closing():
    net = _network("virtual")

    async def main(loop):
        server = await asyncio.start_server(echo_streams, "10.0.0.1", 7005)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7005), 5)
        task = asyncio.ensure_future(reader.read(10))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        writer.write(b"still here")
        answer = await asyncio.wait_for(reader.readexactly(10), 5)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return answer

    answer, loop = _run(main, net)
    assert answer == b"still here"
    assert loop.process.resources() == ZERO


def test_cancelling_a_pending_accept_and_serving_again():
    net = Network()

    async def main(loop):
        listener = loop.wsp_socket()
        listener.bind(("10.0.0.1", 0))
        listener.listen(1)
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        await asyncio.sleep(0)
        accepting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await accepting
        assert loop.process.operations(socket=listener.fileno()) == []
        accepting = asyncio.ensure_future(loop.sock_accept(listener))
        client = loop.wsp_socket()
        await asyncio.wait_for(loop.sock_connect(client, listener.getsockname()), 5)
        conn, peer = await asyncio.wait_for(accepting, 5)
        assert peer == client.getsockname()
        for s in (client, conn, listener):
            s.close()

    _, loop = _run(main, net)
    assert loop.process.resources() == ZERO


@pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning",
                            "ignore:loop is closed:ResourceWarning")
def test_closing_the_loop_with_connections_open_leaves_nothing():
    net = Network()

    async def main(loop):
        await asyncio.start_server(echo_streams, "10.0.0.1", 7004)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7004), 5)
        writer.write(b"hi")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"hi"
        return writer                          # left open: the loop's close cleans up

    writer, loop = _run(main, net)
    assert loop.process.resources() == ZERO
    del writer
    gc.collect()          # asyncio's warnings about what was left open come here, not later


# -- providers, hosts and debug mode ---------------------------------------------------
def test_link_latency_times_a_connect_and_an_echo_in_debug_mode():
    net = Network(clock="virtual")
    net.set_link("10.0.0.5", "10.0.0.1", latency=0.1)

    async def main(loop):
        assert loop.get_debug()
        server = await asyncio.start_server(echo_streams, "10.0.0.1", 80)
        start = loop.time()
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 80), 5)
        connected = loop.time() - start
        writer.write(b"hello")
        echoed = await asyncio.wait_for(reader.readexactly(5), 5)
        answered = loop.time() - start
        sockname = writer.get_extra_info("sockname")
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return connected, echoed, answered, sockname

    async def outer():
        return await main(asyncio.get_running_loop())

    connected, echoed, answered, sockname = wsp.aio.run(
        outer(), network=net, provider=wsp.sim.Provider(net, host="10.0.0.5"), debug=True)
    assert round(connected, 6) == 0.2                 # one round trip
    assert echoed == b"hello" and round(answered, 6) == 0.4
    assert sockname[0] == "10.0.0.5"                  # the provider's host


def test_a_layered_stack_serves_the_loop():
    from wsp.lsp import TracingProvider

    net = Network()
    tracer = TracingProvider(wsp.sim.Provider(net))

    async def main():
        server = await asyncio.start_server(echo_streams, "10.0.0.1", 81)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 81), 5)
        writer.write(b"traced")
        got = await asyncio.wait_for(reader.readexactly(6), 5)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return got, asyncio.get_running_loop()

    got, loop = wsp.aio.run(main(), network=net, provider=tracer)
    assert got == b"traced"
    # The loop's own calls fail only where a close aborts what was pending
    # (it probes nothing with a call that fails, such as getsockname on an
    # unbound socket before ConnectEx).
    summary = wsp.lsp.summarize(tracer.records)
    assert set(summary.errors) <= {"WSA_OPERATION_ABORTED"}, summary.errors
    assert summary.sent == summary.received == 2 * 6
    assert loop.process.resources() == ZERO


def test_sock_sendto_and_sock_recvfrom_of_a_queued_datagram():
    net = Network()

    async def main(loop):
        a = loop.wsp_socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = loop.wsp_socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("10.0.0.1", 0))
        b.bind(("10.0.0.2", 0))
        sent = await asyncio.wait_for(loop.sock_sendto(a, b"datagram", b.getsockname()), 5)
        got = await asyncio.wait_for(loop.sock_recvfrom(b, 100), 5)
        a.close()
        b.close()
        return sent, got

    (sent, (data, sender)), loop = _run(main, net)
    assert sent == 8 and data == b"datagram" and sender[0] == "10.0.0.1"
    assert loop.process.resources() == ZERO


@pytest.mark.parametrize("clock", CLOCKS)
def test_two_loops_in_two_threads_on_one_network(clock):
    # Two processes, each on its own host, each loop in its own thread.  The
    # loops are made before either runs: with a virtual clock, a process
    # that is not there yet cannot hold the clock back, and the server's
    # idle loop would jump its time-out before the client came.
    net = Network(clock=clock)
    if clock is not None:
        net.set_link("10.0.0.1", "10.0.0.2", latency=0.1)
    server_loop = wsp.aio.new_event_loop(net, provider=wsp.sim.Provider(net, host="10.0.0.2"))
    client_loop = wsp.aio.new_event_loop(net, provider=wsp.sim.Provider(net, host="10.0.0.1"))
    ready = threading.Event()

    async def serve():
        done = asyncio.get_running_loop().create_future()

        async def shout(reader, writer):
            writer.write((await reader.read(100)).upper())
            await writer.drain()
            writer.close()
            done.set_result(None)

        server = await asyncio.start_server(shout, "10.0.0.2", 80)
        ready.set()
        try:
            await asyncio.wait_for(done, 30)
        finally:
            server.close()
            await asyncio.wait_for(server.wait_closed(), 5)

    async def ask():
        loop = asyncio.get_running_loop()
        start = loop.time()
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.2", 80), 5)
        writer.write(b"two loops")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        return answer, loop.time() - start

    failures = []

    def run_server():
        try:
            server_loop.run_until_complete(serve())
        except BaseException as exc:  # noqa: BLE001 -- reported by the test below
            failures.append(exc)
            ready.set()

    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    try:
        assert ready.wait(5)
        answer, elapsed = client_loop.run_until_complete(ask())
    finally:
        thread.join(10)
        assert not thread.is_alive()
        server_loop.close()
        client_loop.close()
    assert not failures
    assert answer == b"TWO LOOPS"
    if clock is not None:
        assert round(elapsed, 6) == 0.4           # a round trip to connect, one to answer
    assert server_loop.process.resources() == ZERO
    assert client_loop.process.resources() == ZERO


def test_what_is_neither_a_wsp_nor_a_host_socket_is_a_type_error():
    net = Network()

    async def main(loop):
        with pytest.raises(TypeError, match="WspSocket"):
            await asyncio.wait_for(loop.sock_connect(object(), ("10.0.0.1", 80)), 5)
        with pytest.raises(TypeError, match="WspSocket"):
            await asyncio.wait_for(loop.sock_recv(5, 10), 5)

    _, loop = _run(main, net)
    assert loop.process.resources() == ZERO


def test_create_server_reuse_address_and_backlog():
    # SO_REUSEADDR on both listeners shares the port (the simulated network's
    # rule); without it the second bind is WSAEADDRINUSE, as on Windows.
    async def main():
        loop = asyncio.get_running_loop()
        first = await loop.create_server(asyncio.Protocol, "10.0.0.1", 7201,
                                         reuse_address=True, backlog=3)
        second = await loop.create_server(asyncio.Protocol, "10.0.0.1", 7201,
                                          reuse_address=True)
        with pytest.raises(OSError) as taken:
            await loop.create_server(asyncio.Protocol, "10.0.0.1", 7201)
        with pytest.raises(ValueError, match="reuse_port"):
            await loop.create_server(asyncio.Protocol, "10.0.0.1", 7202, reuse_port=True)
        with pytest.raises(ValueError, match="reuse_address"):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                local_addr=("10.0.0.1", 7203),
                                                reuse_address=True)
        with pytest.raises(ValueError, match="reuse_port"):
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                local_addr=("10.0.0.1", 7203), reuse_port=True)
        opts = [s.getsockopt(wsp.SOL_SOCKET, wsp.SO_REUSEADDR)
                for srv in (first, second) for s in srv.sockets]
        for srv in (first, second):
            srv.close()
            await asyncio.wait_for(srv.wait_closed(), 5)
        return taken.value, opts, loop

    taken, opts, loop = wsp.aio.run(main(), network=Network())
    assert taken.winerror == wsp.WSAEADDRINUSE
    assert all(opts)
    assert loop.process.resources() == ZERO


@pytest.mark.parametrize("clock", CLOCKS)
def test_sock_disconnect_ends_gracefully_and_reuse_connects_the_same_socket_again(clock):
    net = _network(clock)

    async def main(loop):
        first, client, conn = await sock_pair(loop)
        await asyncio.wait_for(loop.sock_sendall(client, b"last words"), 5)
        handle = client.fileno()
        await asyncio.wait_for(loop.sock_disconnect(client, reuse=True), 5)
        heard = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(conn, 100), 5):
            heard += chunk                       # the data, then the end of the stream
        # the same socket, unconnected again, connects elsewhere
        second = loop.wsp_socket()
        second.bind(("10.0.0.1", 0))
        second.listen(1)
        accepting = asyncio.ensure_future(loop.sock_accept(second))
        await asyncio.wait_for(loop.sock_connect(client, second.getsockname()), 5)
        again, _ = await asyncio.wait_for(accepting, 5)
        await asyncio.wait_for(loop.sock_sendall(client, b"hello again"), 5)
        answer = await asyncio.wait_for(loop.sock_recv(again, 100), 5)
        assert client.fileno() == handle                 # one handle all along
        # without reuse: the end of the connection, then the socket is closed
        await asyncio.wait_for(loop.sock_disconnect(client), 5)
        assert await asyncio.wait_for(loop.sock_recv(again, 100), 5) == b""
        # a socket that is not connected has nothing to disconnect
        loose = loop.wsp_socket()
        with pytest.raises(wsp.WinsockError) as caught:
            await asyncio.wait_for(loop.sock_disconnect(loose), 5)
        for s in (client, conn, again, first, second, loose):
            s.close()
        return heard, handle, answer, caught.value.winerror

    (heard, handle, answer, code), loop = _run(main, net)
    assert heard == b"last words" and answer == b"hello again"
    assert code == wsp.WSAENOTCONN
    assert loop.process.resources() == ZERO
