"""wsp.aio's errors are the ones asyncio raises on Windows (SPEC §10): a
shut-down send is BrokenPipeError (WSAESHUTDOWN), an aborted connection
ConnectionAbortedError (WSAECONNABORTED), a timed-out connect TimeoutError
(WSAETIMEDOUT), a reset ConnectionResetError -- each also the WinsockError
of its code, so a handler can look at ``winerror``.  And asyncio's debug mode
finds nothing of wsp.aio's left unclosed or unretrieved.

Every await that could wait on the network is bounded by asyncio.wait_for.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import socket
import warnings

import pytest

import wsp
import wsp.aio
import wsp.sim
from wsp.lsp import FaultProvider
from wsp.sim import Network
from aiokit import ZERO, echo_streams, sock_pair


def _close(*socks):
    for s in socks:
        s.close()


def test_a_send_after_shutdown_is_broken_pipe_and_the_peer_sees_the_end():
    async def main():
        loop = asyncio.get_running_loop()
        listener, client, conn = await sock_pair(loop)
        try:
            client.shutdown(socket.SHUT_WR)
            with pytest.raises(BrokenPipeError) as caught:
                await asyncio.wait_for(loop.sock_sendall(client, b"late"), 5)
            eof = await asyncio.wait_for(loop.sock_recv(conn, 10), 5)
            # the other direction still works after a half close
            await asyncio.wait_for(loop.sock_sendall(conn, b"still"), 5)
            back = await asyncio.wait_for(loop.sock_recv(client, 10), 5)
        finally:
            _close(client, conn, listener)
        return caught.value, eof, back, loop

    error, eof, back, loop = wsp.aio.run(main(), network=Network())
    assert isinstance(error, wsp.WinsockError) and error.winerror == wsp.WSAESHUTDOWN
    assert (eof, back) == (b"", b"still")
    assert loop.process.resources() == ZERO


def test_a_stream_write_after_write_eof_is_refused_by_asyncio_and_the_peer_reads_eof():
    async def main():
        got = asyncio.get_running_loop().create_future()

        async def serve(reader, writer):
            got.set_result(await reader.read())          # to the end of the stream
            writer.write(b"bye")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "10.0.0.1", 7101)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7101), 5)
        writer.write(b"all of it")
        assert writer.can_write_eof()
        writer.write_eof()
        with pytest.raises(RuntimeError):
            writer.write(b"more")
        data = await asyncio.wait_for(got, 5)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return data, answer, asyncio.get_running_loop()

    data, answer, loop = wsp.aio.run(main(), network=Network())
    assert (data, answer) == (b"all of it", b"bye")
    assert loop.process.resources() == ZERO


@pytest.mark.parametrize("how", ["sock_recv", "stream"])
def test_an_aborted_receive_is_connection_aborted(how):
    net = Network()
    fault = FaultProvider(wsp.sim.Provider(net))

    async def main():
        loop = asyncio.get_running_loop()
        if how == "sock_recv":
            listener, client, conn = await sock_pair(loop)
            fault.add_rule("WSPRecv", "fail", code=wsp.WSAECONNABORTED, count=1)
            try:
                with pytest.raises(ConnectionAbortedError) as caught:
                    await asyncio.wait_for(loop.sock_recv(client, 10), 5)
            finally:
                _close(client, conn, listener)
            return caught.value, loop
        served = loop.create_future()

        async def serve(reader, writer):
            served.set_result(writer)

        server = await asyncio.start_server(serve, "10.0.0.1", 7102)
        peer_of = asyncio.ensure_future(served)
        client = loop.wsp_socket()
        await asyncio.wait_for(loop.sock_connect(client, ("10.0.0.1", 7102)), 5)
        peer = await asyncio.wait_for(peer_of, 5)
        # the client's receives only (the server's transport has one posted already)
        fault.add_rule("WSPRecv", "fail", code=wsp.WSAECONNABORTED, count=1,
                       socket=client.fileno())
        reader, writer = await asyncio.wait_for(asyncio.open_connection(sock=client), 5)
        with pytest.raises(ConnectionAbortedError) as caught:
            await asyncio.wait_for(reader.read(10), 5)
        writer.close()
        peer.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return caught.value, loop

    error, loop = wsp.aio.run(main(), network=net, provider=fault)
    assert isinstance(error, wsp.WinsockError) and error.winerror == wsp.WSAECONNABORTED
    assert [rule.hits for rule in fault.rules] == [1]
    assert loop.process.resources() == ZERO


def test_a_connect_that_times_out_is_timeout_error_and_a_refused_one_connection_refused():
    net = Network()
    fault = FaultProvider(wsp.sim.Provider(net))

    async def main():
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(lambda r, w: w.close(), "10.0.0.1", 7103)
        # asyncio connects with ConnectEx (never WSPConnect): the rule names it
        rule = fault.add_rule("ConnectEx", "fail", code=wsp.WSAETIMEDOUT, count=1)
        with pytest.raises(TimeoutError) as timed_out:
            await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7103), 5)
        # the rule is spent: the next connect goes through
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7103), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        with pytest.raises(ConnectionRefusedError) as refused:
            await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7103), 5)
        return timed_out.value, refused.value, rule.hits, loop

    timed_out, refused, hits, loop = wsp.aio.run(main(), network=net, provider=fault)
    assert hits == 1
    assert isinstance(timed_out, wsp.WinsockError) and timed_out.winerror == wsp.WSAETIMEDOUT
    assert refused.winerror == wsp.WSAECONNREFUSED
    assert loop.process.resources() == ZERO


def test_draining_into_a_reset_connection_is_connection_reset():
    async def main():
        loop = asyncio.get_running_loop()
        served = loop.create_future()

        async def serve(reader, writer):
            served.set_result(writer)

        server = await asyncio.start_server(serve, "10.0.0.1", 7104)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7104), 5)
        peer = await asyncio.wait_for(served, 5)
        for conn in loop.network.connections():
            conn.reset()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(10), 5)
        with pytest.raises(ConnectionResetError):
            writer.write(b"into the void")
            await asyncio.wait_for(writer.drain(), 5)
        writer.close()
        peer.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return loop

    loop = wsp.aio.run(main(), network=Network())
    assert loop.process.resources() == ZERO


# -- asyncio's debug mode --------------------------------------------------------------
#: what asyncio (and Python) say of what a program left behind
_LEFT_BEHIND = ("unclosed", "never retrieved", "destroyed but it is pending",
                "was never awaited")


def test_debug_mode_reports_nothing_left_behind(caplog):
    net = Network(clock="virtual")
    net.set_link("*", "*", latency=0.01)

    async def main():
        loop = asyncio.get_running_loop()
        assert loop.get_debug()
        server = await asyncio.start_server(echo_streams, "10.0.0.1", 7105)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7105), 5)
        writer.write(b"debug")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"debug"
        # a read that times out (its receive stays posted) and one that then works
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(5), 1)
        writer.write(b"again")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"again"
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)
        # a refused connect, its exception retrieved
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection("10.0.0.1", 7106), 5)
        # datagrams
        received = loop.create_future()

        class Catch(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if not received.done():
                    received.set_result(data)

        inbound, _ = await loop.create_datagram_endpoint(Catch, local_addr=("10.0.0.1", 7107))
        outbound, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("10.0.0.1", 7107))
        outbound.sendto(b"dgram")
        assert await asyncio.wait_for(received, 5) == b"dgram"
        inbound.close()
        outbound.close()
        # sock_* on a connection left open: the loop's close resets and releases it
        listener, client, conn = await sock_pair(loop, 7108)
        await asyncio.wait_for(loop.sock_sendall(client, b"x"), 5)
        assert await asyncio.wait_for(loop.sock_recv(conn, 1), 5) == b"x"
        _close(client, conn, listener)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        await asyncio.sleep(0)
        return loop

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            loop = wsp.aio.run(main(), network=net, debug=True)
            del main
            gc.collect()
    said = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [line for line in said if any(key in line for key in _LEFT_BEHIND)], said
    assert loop.process.resources() == ZERO
