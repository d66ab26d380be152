"""Unmodified third-party asyncio code over wsp.aio (SPEC §10): aiohttp's
server (``web.AppRunner`` + ``web.TCPSite``, which calls
``loop.create_server(host, port)``) and its client (``ClientSession`` with
its ``TCPConnector``: the resolver asks ``loop.getaddrinfo`` for a name
given with ``net.add_host``, and aiohappyeyeballs makes its own host
``socket.socket`` and connects it with ``loop.sock_connect``, the adoption
path), plainly, on a virtual clock, through the fault layer and through the
tracing layer.

Client and server share one loop (one wsp process).  Every await is bounded
by ``asyncio.wait_for`` (simulated seconds on a virtual clock) and every
test by a wall-clock ``pytest.mark.timeout``.  aiohttp is an optional test
dependency: the module is skipped without it, except on CI (``CI=true``),
where a missing aiohttp fails.
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import socket
import time
import warnings

import pytest
from helpers import importorskip_unless_ci

import wsp.aio
import wsp.lsp
import wsp.sim
from wsp.lsp import FaultProvider, TracingProvider
from wsp.sim import Network
from aiokit import ZERO

aiohttp = importorskip_unless_ci("aiohttp", minversion="3.9")
web = importorskip_unless_ci("aiohttp.web")


HOST, ADDRESS, PORT = "api.test", "10.0.0.1", 8080
BASE = f"http://{HOST}:{PORT}"
LATENCY = 0.05                          # one way, on the virtual clock
CHUNK = bytes(range(256)) * 256         # 64 KiB
CHUNKS = 16                             # 1 MiB streamed
STREAMED = CHUNK * CHUNKS
BOUND = 30                              # every await's bound (seconds of the loop's clock)

pytestmark = pytest.mark.timeout(60)


def _network(clock=None):
    net = Network(seed=1, clock=clock)
    if clock is not None:
        net.set_link("*", "*", latency=LATENCY)
    net.add_host(HOST, ADDRESS)
    return net


# -- the server ------------------------------------------------------------------------
class Served:
    """What the server saw: the peer of every request (one peer per
    connection) and when the sleeping handler began and ended."""

    def __init__(self):
        self.peers = []
        self.sleep_began = None
        self.sleep_cancelled = False


def _app(served):
    routes = web.RouteTableDef()

    @web.middleware
    async def note_peer(request, handler):
        served.peers.append(request.transport.get_extra_info("peername"))
        return await handler(request)

    @routes.get("/hello")
    async def hello(request):
        return web.Response(text="hello over wsp", headers={"X-Served-By": "wsp.aio"})

    @routes.post("/echo")
    async def echo(request):
        body = await request.json()
        return web.json_response({"echo": body, "length": request.content_length})

    @routes.get("/stream")
    async def stream(request):
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(CHUNKS):
            await response.write(CHUNK)          # waits for the transport to drain
        await response.write_eof()
        return response

    @routes.get("/sleep")
    async def sleep(request):
        served.sleep_began = asyncio.get_running_loop().time()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            served.sleep_cancelled = True
            raise
        return web.Response(text="too late")

    app = web.Application(middlewares=[note_peer])
    app.add_routes(routes)
    return app


class Connections:
    """The client's connection counts, from aiohttp's own TraceConfig."""

    def __init__(self):
        self.created = 0
        self.reused = 0
        self.failures = []
        self.config = aiohttp.TraceConfig()
        self.config.on_connection_create_end.append(self._created)
        self.config.on_connection_reuseconn.append(self._reused)
        self.config.on_request_exception.append(self._failed)

    async def _created(self, session, ctx, params):
        self.created += 1

    async def _reused(self, session, ctx, params):
        self.reused += 1

    async def _failed(self, session, ctx, params):
        self.failures.append(params.exception)


def _serve(net, client, *, provider=None, debug=None):
    """Run `client(session, served, connections, loop)` on a new wsp loop on
    `net` with the server up; (its result, served, connections, loop) once
    the loop is closed."""
    served, connections = Served(), Connections()

    async def main():
        loop = asyncio.get_running_loop()
        runner = web.AppRunner(_app(served), shutdown_timeout=1.0)
        await asyncio.wait_for(runner.setup(), BOUND)
        try:
            site = web.TCPSite(runner, ADDRESS, PORT)
            await asyncio.wait_for(site.start(), BOUND)
            # The resolver named, so that an installed aiodns (AsyncResolver,
            # which asks real DNS servers) cannot become the default.
            connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
            session = aiohttp.ClientSession(connector=connector,
                                            trace_configs=[connections.config])
            try:
                result = await asyncio.wait_for(client(session, served, connections, loop),
                                                BOUND)
            finally:
                await asyncio.wait_for(session.close(), BOUND)
        finally:
            await asyncio.wait_for(runner.cleanup(), BOUND)
        return result, loop

    result, loop = wsp.aio.run(main(), network=net, provider=provider, debug=debug)
    return result, served, connections, loop


async def _get(session, path, **kwargs):
    """GET `path` of the server (or the URL `path` when it is a full one)."""
    url = path if path.startswith("http://") else BASE + path
    async with session.get(url, **kwargs) as response:
        return response.status, response.headers, await response.read()


async def _post(session, path, payload, **kwargs):
    async with session.post(BASE + path, json=payload, **kwargs) as response:
        return response.status, response.headers, await response.json()


# -- plainly -----------------------------------------------------------------------------
@pytest.mark.parametrize("clock", [None, "virtual"])
def test_aiohttp_client_and_server_over_one_kept_alive_connection(clock, caplog):
    net = _network(clock)

    async def client(session, served, connections, loop):
        results = {"hello": [await _get(session, "/hello") for _ in range(3)]}
        results["echo"] = await _post(session, "/echo", {"n": 1, "text": "é" * 10})
        # Host sockets aiohappyeyeballs made, adopted by the loop: the one
        # connection's, while it is open.
        results["adopted"] = len(loop.wsp_proactor.adopted)
        async with session.get(BASE + "/stream") as response:
            results["stream_status"] = response.status
            results["stream_chunked"] = response.headers.get("Transfer-Encoding")
            digest, size = hashlib.sha256(), 0
            async for piece in response.content.iter_chunked(65536):
                digest.update(piece)
                size += len(piece)
            results["stream"] = size, digest.hexdigest()
        return results

    caplog.set_level(logging.WARNING, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results, served, connections, loop = _serve(net, client, debug=True)
        gc.collect()

    for status, headers, body in results["hello"]:
        assert status == 200
        assert body == b"hello over wsp"
        assert headers["X-Served-By"] == "wsp.aio"
        assert headers["Content-Type"].startswith("text/plain")
    status, headers, body = results["echo"]
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body["echo"] == {"n": 1, "text": "é" * 10}
    # aiohttp's client encodes JSON with json.dumps: the server got that many bytes.
    assert body["length"] == len(json.dumps({"n": 1, "text": "é" * 10}).encode())
    assert results["stream_status"] == 200 and results["stream_chunked"] == "chunked"
    assert results["stream"] == (len(STREAMED), hashlib.sha256(STREAMED).hexdigest())
    # Five requests, one connection: the server saw one peer, the client
    # made one connection and reused it four times.
    assert len(served.peers) == 5 and len(set(served.peers)) == 1
    assert connections.created == 1 and connections.reused == 4
    assert not connections.failures
    assert results["adopted"] == 1
    # Nothing unclosed and nothing the loop had to report (debug mode).
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)
                or "nclosed" in str(w.message)], [str(w.message) for w in caught]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert loop.process.resources() == ZERO


def test_a_refused_port_and_an_unknown_name_are_aiohttps_connector_errors():
    net = _network()

    async def client(session, served, connections, loop):
        errors, sockets = [], []
        for url in [f"http://{HOST}:9999/"] * 3 + ["http://nowhere.test/"]:
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await _get(session, url)
            errors.append(caught.value)
            sockets.append(loop.process.resources()["sockets"])
        return errors, sockets

    (errors, sockets), served, connections, loop = _serve(net, client)
    *refused, unknown = errors
    for error in refused:
        assert type(error) is aiohttp.ClientConnectorError
        assert isinstance(error.os_error, ConnectionRefusedError)
    assert isinstance(unknown, aiohttp.ClientConnectorError)
    assert isinstance(unknown.os_error, socket.gaierror)
    # A refused attempt leaves nothing open beyond the next one: the
    # listener, its pending accept's socket and the last attempt's stand-in.
    assert sockets[:3] == [3, 3, 3]
    assert not served.peers
    assert loop.process.resources() == ZERO


# -- on a virtual clock ----------------------------------------------------------------
def test_a_request_takes_its_round_trips_of_simulated_time_and_no_wall_time():
    net = _network("virtual")

    async def client(session, served, connections, loop):
        times = []
        for _ in range(3):
            start = loop.time()
            status, _, body = await _get(session, "/hello")
            assert status == 200 and body == b"hello over wsp"
            times.append(loop.time() - start)
        return times

    wall = time.monotonic()
    times, served, connections, loop = _serve(net, client)
    wall = time.monotonic() - wall
    # The first request connects (a round trip) and then asks (another);
    # the others ask over the kept connection (one round trip each).
    assert times == pytest.approx([4 * LATENCY, 2 * LATENCY, 2 * LATENCY], abs=1e-6)
    assert connections.created == 1
    assert wall < 5.0
    assert loop.process.resources() == ZERO


def test_a_client_timeout_fires_at_its_simulated_moment_in_no_wall_time():
    net = _network("virtual")
    total = 2.5              # below aiohttp's ceil_threshold (5 s): not rounded up

    async def client(session, served, connections, loop):
        start = loop.time()
        with pytest.raises(asyncio.TimeoutError) as caught:
            await _get(session, "/sleep", timeout=aiohttp.ClientTimeout(total=total))
        return start, loop.time(), caught.value

    wall = time.monotonic()
    (start, end, error), served, connections, loop = _serve(net, client)
    wall = time.monotonic() - wall
    assert isinstance(error, asyncio.TimeoutError)
    assert total <= end - start < total + 1e-6
    # The handler began once the request was there: a round trip to
    # connect, then the request's one way.
    assert served.sleep_began - start == pytest.approx(3 * LATENCY, abs=1e-6)
    # The runner's cleanup cancelled the handler after its shutdown timeout.
    assert served.sleep_cancelled
    assert wall < 5.0
    assert loop.process.resources() == ZERO


# -- through the fault layer -------------------------------------------------------------
def _reset_the_first_response(fault):
    """A rule that resets the connection of the first HTTP response sent:
    the request has arrived and been handled, and the client, waiting for
    the answer, sees the reset -- whenever its transport posted its
    receives.  (rule, the sockets it reset)."""
    fired = []

    def decide(call):
        data = b"".join(bytes(b) for b in call.buffers)
        if not fired and data.startswith(b"HTTP/1.1 "):
            fired.append(call.socket)
            return "reset"
        return None

    return fault.add_rule("WSPSend", "hook", func=decide), fired


@pytest.mark.parametrize("clock", [None, "virtual"])
def test_a_reset_first_connection_fails_once_and_a_retry_succeeds(clock):
    net = _network(clock)
    fault = FaultProvider(wsp.sim.Provider(net))

    async def client(session, served, connections, loop):
        rule, fired = _reset_the_first_response(fault)
        attempts = []
        for _ in range(3):
            try:
                # A POST: aiohttp retries an idempotent request on a reset
                # connection by itself, not this one.
                result = await _post(session, "/echo", {"attempt": len(attempts)})
            except (aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError) as exc:
                attempts.append(exc)
            else:
                attempts.append(result)
                break
        return fired, attempts

    (fired, attempts), served, connections, loop = _serve(net, client, provider=fault)
    assert len(attempts) == 2
    first, second = attempts
    # The client, waiting for the answer, saw the reset.
    assert isinstance(first, aiohttp.ClientOSError), repr(first)
    # aiohttp rebuilds the error from the reset's args (errno WSAECONNRESET);
    # whether it chains the original depends on where its parser stood.
    assert first.errno == wsp.WSAECONNRESET, repr(first)
    assert first.__cause__ is None or isinstance(first.__cause__, ConnectionResetError)
    status, _, body = second
    assert status == 200 and body["echo"] == {"attempt": 1}
    assert len(fired) == 1                           # one reset, on the server's side
    # Two connections: the reset one and the retry's; the server handled
    # the request on both (the first answer was lost to the reset).
    assert connections.created == 2
    assert len(served.peers) == 2 and len(set(served.peers)) == 2
    assert loop.process.resources() == ZERO


def test_aiohttp_retries_an_idempotent_request_over_a_reset_connection_itself():
    net = _network()
    fault = FaultProvider(wsp.sim.Provider(net))

    async def client(session, served, connections, loop):
        rule, fired = _reset_the_first_response(fault)
        return fired, await _get(session, "/hello")

    (fired, (status, _, body)), served, connections, loop = _serve(net, client, provider=fault)
    assert status == 200 and body == b"hello over wsp"
    assert len(fired) == 1
    assert connections.created == 2
    assert len(served.peers) == 2 and len(set(served.peers)) == 2
    assert loop.process.resources() == ZERO


# -- through the tracing layer -----------------------------------------------------------
def test_the_trace_of_an_http_exchange():
    net = _network()
    tracer = TracingProvider(wsp.sim.Provider(net))
    payload = {"data": "x" * 5000}

    async def client(session, served, connections, loop):
        tracer.records.clear()                    # from here on: the client's work only
        first = await _post(session, "/echo", payload)
        second = await _get(session, "/stream")
        return first, second

    ((echo_status, _, echoed), (stream_status, _, streamed)), served, connections, loop = \
        _serve(net, client, provider=tracer)
    assert echo_status == stream_status == 200
    assert echoed["echo"] == payload and streamed == STREAMED
    records = tracer.records
    assert records[-1].op == "WSPCleanup"

    # The client's connect: one socket made, bound, ConnectEx looked up on
    # it, called (the tracer records the calls of its extension functions
    # too, with the target) and completed (the completion names its call).
    made = [r.socket for r in records if r.op == "WSPSocket" and r.error is None]
    ioctls = [r for r in records if r.op == "WSPIoctl" and r.error is None]
    connects = [r.socket for r in ioctls if "ConnectEx" in str(r.result)]
    assert len(connects) == 1
    client_socket = connects[0]
    assert client_socket in made
    assert any(r.op == "WSPBind" and r.socket == client_socket for r in records)
    connect_call, = [r for r in records if r.op == "ConnectEx"]
    assert connect_call.socket == client_socket and connect_call.overlapped is True
    assert any(r.op == "completion" and r.call == "ConnectEx" and r.socket == client_socket
               and r.request == connect_call.request and r.error is None for r in records)
    # The server's accept: the listener's AcceptEx completed (its call comes
    # before the clear, except for the next accept's) into the one other
    # socket that sent and received; the completion names it and its peer.
    listener = [r.socket for r in ioctls if "AcceptEx" in str(r.result)]
    assert listener
    accepted, = [r for r in records if r.op == "completion" and r.call == "AcceptEx"
                 and r.socket == listener[0] and r.error is None]
    talking = {r.socket for r in records if r.op in ("WSPSend", "WSPRecv")}
    assert client_socket in talking and len(talking) == 2
    server_socket = (talking - {client_socket}).pop()
    assert server_socket != listener[0]
    assert accepted.accepted == server_socket
    # what the client connected to, the server accepted on, and back
    client_address = [r.address for r in records if r.op == "WSPGetSockName"
                      and r.socket == client_socket and r.error is None][-1]
    assert accepted.address == connect_call.peer and accepted.peer == client_address

    # What one end sent the other received, byte for byte (the summary
    # counts each transfer once: the transport's receives are overlapped,
    # its sends go out without an overlapped while nothing is queued).
    summary = wsp.lsp.summarize(records)
    client_side, server_side = summary.socket(client_socket), summary.socket(server_socket)
    request_bytes, response_bytes = client_side.sent, server_side.sent
    assert server_side.received == request_bytes
    assert client_side.received == response_bytes
    # The requests carry the JSON body and little else (request lines and
    # headers); the responses the echo and the 1 MiB stream, with its
    # chunked framing and headers.
    body = len(json.dumps(payload).encode())           # what aiohttp's client sends
    assert body < request_bytes < body + 1024
    echoed_body = len(json.dumps(echoed).encode())     # what web.json_response sends
    assert echoed_body + len(STREAMED) < response_bytes < echoed_body + len(STREAMED) + 2048
    # The connection ends with the loop: shut down and closed on both ends.
    for s in (client_socket, server_socket):
        assert any(r.op == "WSPCloseSocket" and r.socket == s for r in records)
    assert loop.process.resources() == ZERO


# -- the gate of this module -------------------------------------------------------------
def test_a_missing_test_dependency_skips_but_fails_on_ci(monkeypatch):
    missing = "wsp_no_such_test_dependency"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        importorskip_unless_ci(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        importorskip_unless_ci(missing)
    assert importorskip_unless_ci("aiohttp") is aiohttp
