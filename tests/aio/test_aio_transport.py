"""wsp.aio's own stream transport (wsp.aio.transport.WspStreamTransport):
reads delivered from the completion packet without a future, writes sent at
once when nothing is queued, flow control against the send buffer, the
closing paths and the errors.

Every await that could wait on the network is bounded by asyncio.wait_for,
so a broken transport fails a test instead of hanging it.
"""
from __future__ import annotations

import asyncio
import random
import warnings

import pytest

import wsp
import wsp.aio
from wsp.aio.transport import WspStreamTransport
from wsp.sim import Network
from aiokit import ZERO

T = 5                                  # seconds any single await may take


def _run(coro_fn, net=None, debug=None):
    """Run `coro_fn(loop)` on a new wsp loop; (result, loop)."""
    async def main():
        loop = asyncio.get_running_loop()
        return await coro_fn(loop), loop
    return wsp.aio.run(main(), network=net if net is not None else Network(), debug=debug)


class Recorder(asyncio.Protocol):
    """Records every callback in order; `lost` resolves with connection_lost's argument."""

    def __init__(self, loop, keep_open_on_eof=False):
        self.events = []
        self.data = bytearray()
        self.keep_open_on_eof = keep_open_on_eof
        self.transport = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof = loop.create_future()
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        assert type(data) is bytes
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(bytes(self.data))
        return self.keep_open_on_eof

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1


async def _pair(loop, server_factory, client_factory, host="10.0.0.1"):
    """A server (one connection from `server_factory`) and a client
    transport; (server, client transport, client protocol, server protocol)."""
    accepted = []

    def make():
        p = server_factory()
        accepted.append(p)
        return p

    server = await loop.create_server(make, host, 0)
    port = server.sockets[0].getsockname()[1]
    transport, client = await asyncio.wait_for(
        loop.create_connection(client_factory, host, port), T)
    while not accepted or accepted[0].transport is None:
        await asyncio.sleep(0)
    return server, transport, client, accepted[0]


async def _close_server(server):
    server.close()
    await asyncio.wait_for(server.wait_closed(), T)


def test_streams_use_the_wsp_transport_with_its_extra_info():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        sock = transport.get_extra_info("socket")
        info = (type(transport), type(peer.transport), isinstance(sock, wsp.aio.WspSocket),
                transport.get_extra_info("peername"), transport.get_extra_info("sockname"),
                sock.getsockname(), peer.transport.get_extra_info("peername"),
                transport.get_extra_info("nothing", "default"), transport.get_protocol() is client,
                transport.can_write_eof(), transport.is_reading(), transport.is_closing(),
                "fd=" in repr(transport))
        transport.close()
        assert transport.is_closing()
        await asyncio.wait_for(client.lost, T)
        await asyncio.wait_for(peer.lost, T)
        await _close_server(server)
        return info

    info, loop = _run(main)
    (kind, peer_kind, is_wsp, peername, sockname, sock_sockname, peer_peername, default,
     same_protocol, can_eof, reading, closing, has_fd) = info
    assert kind is WspStreamTransport and peer_kind is WspStreamTransport
    assert is_wsp
    assert peername[0] == "10.0.0.1" and peername[1] != 0
    assert sockname == sock_sockname and sockname[1] != 0
    assert peer_peername == sockname
    assert default == "default"
    assert same_protocol and can_eof and reading and not closing and has_fd
    assert loop.process.resources() == ZERO


def test_data_eof_and_lost_come_in_order():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        for i in range(10):
            transport.write(b"part %d;" % i)
        transport.write_eof()
        with pytest.raises(RuntimeError):
            transport.write(b"more")
        got = await asyncio.wait_for(peer.eof, T)
        # The server's eof_received returned False: it closes, the client sees EOF.
        assert await asyncio.wait_for(peer.lost, T) is None
        assert await asyncio.wait_for(client.eof, T) == b""
        assert await asyncio.wait_for(client.lost, T) is None
        await _close_server(server)
        return got, peer.events, client.events

    (got, server_events, client_events), loop = _run(main)
    assert got == b"".join(b"part %d;" % i for i in range(10))
    assert server_events == ["made", "data", "eof", "lost"]
    assert client_events == ["made", "eof", "lost"]
    assert loop.process.resources() == ZERO


def test_eof_received_true_keeps_the_transport_open_for_writing():
    async def main(loop):
        server, transport, client, peer = await _pair(
            loop, lambda: Recorder(loop, keep_open_on_eof=True), lambda: Recorder(loop))
        transport.write(b"question")
        transport.write_eof()
        assert await asyncio.wait_for(peer.eof, T) == b"question"
        assert not peer.transport.is_closing()
        peer.transport.write(b"answer after half close")
        peer.transport.close()
        assert await asyncio.wait_for(client.eof, T) == b"answer after half close"
        lost = await asyncio.wait_for(client.lost, T)
        await asyncio.wait_for(peer.lost, T)
        await _close_server(server)
        return lost, peer.events

    (lost, events), loop = _run(main)
    assert lost is None
    assert events == ["made", "data", "eof", "lost"]
    assert loop.process.resources() == ZERO


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, loop, size):
        self.buf = bytearray(size)
        self.data = bytearray()
        self.sizes = []
        self.hints = []
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        self.hints.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes):
        self.sizes.append(nbytes)
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.eof.set_result(bytes(self.data))

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_a_buffered_protocol_receives_into_its_own_buffer():
    payload = bytes(range(256)) * 40                 # 10240 bytes, in 1000-byte buffers

    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Buffered(loop, 1000),
                                                      lambda: Recorder(loop))
        transport.write(payload)
        transport.write_eof()
        got = await asyncio.wait_for(peer.eof, T)
        assert await asyncio.wait_for(peer.lost, T) is None
        await asyncio.wait_for(client.lost, T)
        await _close_server(server)
        return got, peer.sizes, peer.hints

    (got, sizes, hints), loop = _run(main)
    assert got == payload
    assert sum(sizes) == len(payload)
    assert max(sizes) <= 1000
    assert all(h == -1 for h in hints)
    assert loop.process.resources() == ZERO


def test_pause_reading_holds_data_and_resume_delivers_it_in_order():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        transport.write(b"before;")
        while bytes(peer.data) != b"before;":
            await asyncio.sleep(0)
        peer.transport.pause_reading()
        assert not peer.transport.is_reading()
        for i in range(50):
            transport.write(b"while paused %d;" % i)
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        during = bytes(peer.data)
        peer.transport.pause_reading()                 # twice: nothing more
        peer.transport.resume_reading()
        assert peer.transport.is_reading()
        transport.write(b"after;")
        expected = b"before;" + b"".join(b"while paused %d;" % i for i in range(50)) + b"after;"
        while len(peer.data) < len(expected):
            await asyncio.wait_for(asyncio.sleep(0.001), T)
        transport.close()
        await asyncio.wait_for(peer.lost, T)
        await asyncio.wait_for(client.lost, T)
        await _close_server(server)
        return during, bytes(peer.data), expected

    (during, data, expected), loop = _run(main)
    assert during == b"before;"                       # nothing delivered while paused
    assert data == expected                           # none lost, order kept
    assert loop.process.resources() == ZERO


def test_write_flow_control_against_a_peer_that_does_not_read():
    chunk = b"z" * 16384

    class Stalled(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.get_extra_info("socket").setsockopt(wsp.SOL_SOCKET, wsp.SO_RCVBUF, 4096)
            transport.pause_reading()

    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Stalled(loop),
                                                      lambda: Recorder(loop))
        transport.get_extra_info("socket").setsockopt(wsp.SOL_SOCKET, wsp.SO_SNDBUF, 4096)
        transport.set_write_buffer_limits(high=32768, low=8192)
        limits = transport.get_write_buffer_limits()
        sizes = []
        writes = 0
        while client.paused == 0 and writes < 100:
            transport.write(chunk)
            writes += 1
            sizes.append(transport.get_write_buffer_size())
            await asyncio.sleep(0)
        size_paused = transport.get_write_buffer_size()
        resumed_before = client.resumed
        peer.transport.resume_reading()
        total = writes * len(chunk)
        while len(peer.data) < total:
            await asyncio.wait_for(asyncio.sleep(0.001), T)
        for _ in range(5):
            await asyncio.sleep(0)
        size_after = transport.get_write_buffer_size()
        transport.close()
        await asyncio.wait_for(client.lost, T)
        await asyncio.wait_for(peer.lost, T)
        await _close_server(server)
        return (limits, sizes, writes, size_paused, resumed_before, client.paused,
                client.resumed, size_after, len(peer.data), total)

    (limits, sizes, writes, size_paused, resumed_before, paused, resumed, size_after,
     received, total), loop = _run(main)
    assert limits == (8192, 32768)
    assert writes < 100
    assert sizes[0] < 32768                           # the provider took the first chunk (mostly)
    assert sizes == sorted(sizes)                     # nothing drains while the peer is stalled
    assert size_paused > 32768                        # paused once above the high mark
    assert paused == 1 and resumed_before == 0
    assert resumed == 1                               # resumed once the peer read
    assert size_after == 0
    assert received == total
    assert loop.process.resources() == ZERO


def test_set_write_buffer_limits_checks_and_defaults():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        default = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(low=1000)
        from_low = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=1000)
        from_high = transport.get_write_buffer_limits()
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=10, low=20)
        transport.abort()
        await asyncio.wait_for(client.lost, T)
        await asyncio.wait_for(peer.lost, T)
        await _close_server(server)
        return default, from_low, from_high

    (default, from_low, from_high), loop = _run(main)
    assert default == (16384, 65536)
    assert from_low == (1000, 4000)
    assert from_high == (250, 1000)
    assert loop.process.resources() == ZERO


def test_stream_writer_drain_blocks_until_the_peer_reads():
    async def main(loop):
        release = asyncio.Event()
        got = loop.create_future()

        async def slow_reader(reader, writer):
            await release.wait()
            got.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(slow_reader, "10.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", port), T)
        writer.transport.get_extra_info("socket").setsockopt(wsp.SOL_SOCKET, wsp.SO_SNDBUF, 1024)
        writer.transport.set_write_buffer_limits(high=4096)
        payload = b"d" * 400_000                      # more than the peer's 64 KiB receive buffer
        writer.write(payload)
        drain = asyncio.ensure_future(writer.drain())
        for _ in range(20):
            await asyncio.sleep(0)
        blocked = not drain.done()
        queued = writer.transport.get_write_buffer_size()
        release.set()
        await asyncio.wait_for(drain, T)
        writer.write_eof()
        data = await asyncio.wait_for(got, T)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        await _close_server(server)
        return blocked, queued, data == payload

    (blocked, queued, whole), loop = _run(main)
    assert blocked
    assert queued > 4096
    assert whole
    assert loop.process.resources() == ZERO


def test_close_with_queued_data_delivers_all_of_it():
    payload = bytes(range(256)) * 2048                # 512 KiB, far above the buffers

    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        transport.write(payload)
        queued = transport.get_write_buffer_size()
        transport.close()
        transport.write(b"after close: dropped")     # counted, not raised
        assert await asyncio.wait_for(client.lost, T) is None
        got = await asyncio.wait_for(peer.eof, T)
        await asyncio.wait_for(peer.lost, T)
        await _close_server(server)
        return queued, got, client.events

    (queued, got, events), loop = _run(main)
    assert queued > 0
    assert got == payload
    assert events == ["made", "lost"]
    assert loop.process.resources() == ZERO


def test_abort_drops_the_queue_and_loses_the_connection_at_once():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        transport.get_extra_info("socket").setsockopt(wsp.SOL_SOCKET, wsp.SO_SNDBUF, 1024)
        peer.transport.pause_reading()
        transport.write(b"q" * 300_000)
        queued = transport.get_write_buffer_size()
        transport.abort()
        closing = transport.is_closing()
        lost = await asyncio.wait_for(client.lost, T)
        peer.transport.resume_reading()              # the peer learns of the end once it reads
        peer_lost = await asyncio.wait_for(peer.lost, T)
        await _close_server(server)
        return queued, closing, lost, peer_lost, len(peer.data)

    (queued, closing, lost, peer_lost, received), loop = _run(main)
    assert queued > 0 and closing
    assert lost is None
    assert peer_lost is None or isinstance(peer_lost, ConnectionResetError)
    assert received < 300_000
    assert loop.process.resources() == ZERO


def test_a_reset_peer_gives_connection_reset_error():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        transport.write(b"hello")
        while bytes(peer.data) != b"hello":
            await asyncio.sleep(0)
        loop.network.connections()[0].reset()
        lost = await asyncio.wait_for(client.lost, T)
        peer_lost = await asyncio.wait_for(peer.lost, T)
        # Writes after the loss are counted and dropped, not raised.
        for _ in range(10):
            transport.write(b"into the void")
        await _close_server(server)
        return lost, peer_lost, client.events

    (lost, peer_lost, events), loop = _run(main)
    assert isinstance(lost, ConnectionResetError)
    assert isinstance(peer_lost, ConnectionResetError)
    assert events == ["made", "lost"]
    assert loop.process.resources() == ZERO


def test_writes_after_the_connection_is_lost_are_logged_past_the_threshold(caplog):
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        transport.abort()
        await asyncio.wait_for(client.lost, T)
        await asyncio.wait_for(peer.lost, T)
        with caplog.at_level("WARNING", logger="asyncio"):
            for _ in range(10):
                transport.write(b"x")
        await _close_server(server)
        return [r.getMessage() for r in caplog.records if r.name == "asyncio"]

    messages, loop = _run(main)
    assert messages.count("socket.send() raised exception.") == 6   # writes 5..10 (abort counts 1)
    assert loop.process.resources() == ZERO


def test_protocol_errors_go_to_the_exception_handler():
    class Broken(Recorder):
        def data_received(self, data):
            raise ValueError("broken protocol")

    async def main(loop):
        contexts = []
        loop.set_exception_handler(lambda _loop, context: contexts.append(context))
        server, transport, client, peer = await _pair(loop, lambda: Broken(loop),
                                                      lambda: Recorder(loop))
        transport.write(b"boom")
        lost = await asyncio.wait_for(peer.lost, T)
        await asyncio.wait_for(client.lost, T)
        await _close_server(server)
        return contexts, lost

    (contexts, lost), loop = _run(main)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ValueError)
    assert contexts[0]["message"] == "Fatal error: protocol.data_received() call failed."
    assert isinstance(lost, ValueError)
    assert loop.process.resources() == ZERO


def test_set_protocol_switches_delivery():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        second = Recorder(loop)
        peer.transport.set_protocol(second)
        assert peer.transport.get_protocol() is second
        transport.write(b"for the second")
        transport.write_eof()
        got = await asyncio.wait_for(second.eof, T)
        await asyncio.wait_for(second.lost, T)
        await asyncio.wait_for(client.lost, T)
        await _close_server(server)
        return got, bytes(peer.data)

    (got, first), loop = _run(main)
    assert got == b"for the second"
    assert first == b""
    assert loop.process.resources() == ZERO


def test_many_concurrent_connections_echo_random_sizes():
    rng = random.Random(14)
    sizes = [[rng.randint(1, 20000) for _ in range(rng.randint(1, 4))] for _ in range(200)]

    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def client(i, port):
        reader, writer = await asyncio.open_connection("10.0.0.1", port)
        ok = True
        for k, size in enumerate(sizes[i]):
            msg = bytes((i + k + j) % 251 for j in range(size))
            writer.write(msg)
            await writer.drain()
            ok = ok and await reader.readexactly(size) == msg
        writer.close()
        await writer.wait_closed()
        return ok

    async def main(loop):
        server = await asyncio.start_server(echo, "10.0.0.1", 0, backlog=256)
        port = server.sockets[0].getsockname()[1]
        results = await asyncio.wait_for(
            asyncio.gather(*(client(i, port) for i in range(len(sizes)))), 60)
        await _close_server(server)
        return results

    results, loop = _run(main)
    assert results == [True] * 200
    assert loop.process.resources() == ZERO


def test_debug_mode_reports_no_unclosed_transport():
    async def main(loop):
        server = await asyncio.start_server(
            lambda r, w: w.close(), "10.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", port), T)
        writer.write(b"debug")
        await asyncio.wait_for(writer.drain(), T)
        rest = await asyncio.wait_for(reader.read(), T)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        await _close_server(server)
        return loop.get_debug(), rest

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        (debug, rest), loop = _run(main, debug=True)
        import gc
        gc.collect()
    assert debug is True
    assert rest == b""
    assert loop.process.resources() == ZERO


def test_an_unclosed_transport_warns_when_collected():
    async def main(loop):
        server, transport, client, peer = await _pair(loop, lambda: Recorder(loop),
                                                      lambda: Recorder(loop))
        peer.transport.close()
        await asyncio.wait_for(peer.lost, T)
        await asyncio.wait_for(client.lost, T)       # the client's EOF closed it
        await _close_server(server)
        # A transport made and dropped without close(): reading never started.
        sock = loop.wsp_socket()
        leaked = WspStreamTransport(loop, sock, asyncio.Protocol())
        leaked._recv_posted = True                   # keep it from posting a receive
        text = repr(leaked)
        return text

    text, loop = _run(main)
    assert "WspStreamTransport" in text
    import gc
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        gc.collect()
    assert loop.process.resources() == ZERO


def _self_signed(tmp_path):
    """A throw-away certificate and key from the openssl command (skip without it)."""
    import shutil
    import subprocess
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=localhost", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_streams_run_over_the_wsp_transport(tmp_path):
    import ssl
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE

    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def main(loop):
        server = await asyncio.start_server(echo, "10.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("10.0.0.1", port, ssl=client_ctx), T)
        got = []
        for size in (1, 1000, 100_000):
            msg = bytes(i % 253 for i in range(size))
            writer.write(msg)
            await asyncio.wait_for(writer.drain(), T)
            got.append(await asyncio.wait_for(reader.readexactly(size), T) == msg)
        cipher = writer.get_extra_info("cipher")
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        await _close_server(server)
        return got, cipher

    (got, cipher), loop = _run(main)
    assert got == [True, True, True]
    assert cipher is not None
    assert loop.process.resources() == ZERO


def test_start_tls_upgrades_a_plain_connection(tmp_path):
    import ssl
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE

    async def upgrade_then_echo(reader, writer):
        try:
            assert await reader.readexactly(9) == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def main(loop):
        server = await asyncio.start_server(upgrade_then_echo, "10.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", port), T)
        writer.write(b"STARTTLS\n")
        ok = await asyncio.wait_for(reader.readexactly(3), T)
        await asyncio.wait_for(writer.start_tls(client_ctx), T)
        secure = writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret" * 1000)
        echoed = await asyncio.wait_for(reader.readexactly(6000), T)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        await _close_server(server)
        return ok, secure, echoed

    (ok, secure, echoed), loop = _run(main)
    assert ok == b"OK\n"
    assert secure
    assert echoed == b"secret" * 1000
    assert loop.process.resources() == ZERO


def test_loop_sendfile_falls_back_to_writes(tmp_path):
    data = bytes(random.Random(3).randbytes(300_000))
    path = tmp_path / "payload.bin"
    path.write_bytes(data)

    async def main(loop):
        got = loop.create_future()

        async def sink(reader, writer):
            got.set_result(await reader.read())
            writer.close()

        server = await asyncio.start_server(sink, "10.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.wait_for(asyncio.open_connection("10.0.0.1", port), T)
        with open(path, "rb") as f:
            sent = await asyncio.wait_for(loop.sendfile(writer.transport, f), T)
        writer.write(b"tail")                       # the stream protocol is back in place
        writer.write_eof()
        received = await asyncio.wait_for(got, T)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), T)
        await _close_server(server)
        return sent, received

    (sent, received), loop = _run(main)
    assert sent == len(data)
    assert received == data + b"tail"
    assert loop.process.resources() == ZERO
