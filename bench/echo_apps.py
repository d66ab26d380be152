"""The echo workloads of bench/test_bench_echo.py: one application, three
transports.

The application is the same everywhere.  ``ClientState`` produces the
client's messages, checks every echoed byte against what it sent, and
keeps up to ``window`` messages in flight: window 1 is ping-pong, window 32
a pipelined client.  The server echoes each chunk it receives, as it
arrived.  A *message* is ``SIZE`` (64) bytes, counted once its echo is
complete at the client: one client -> server -> client round trip.

Transports:

* ``WspEcho``: a ``wsp.sim.Network`` with one ``Process`` and one
  ``Provider`` holding both ends of every connection, every socket
  associated with one completion port, overlapped ``WSPRecv``/``WSPSend``,
  and one thread draining the port and reacting to each completion.
* ``AsyncioEcho``: an asyncio event loop (stock or uvloop) running a TCP
  echo server on 127.0.0.1, port 0, and the clients, all with Protocols,
  over real loopback sockets.

Each object is built once per benchmark entry (connections stay open), and
``run_round(n)`` makes every connection complete ``n`` more messages.  It
returns the number of messages completed and raises if anything went wrong
(a wrong byte, an error completion, a stall, a time-out).
"""
from __future__ import annotations

import asyncio
import socket

import wsp
from wsp import AF_INET, SOCK_STREAM, Overlapped, sim
from wsp.lsp import LayeredProvider

SIZE = 64                 # bytes per message
DISTINCT = 256            # distinct messages per connection, sent cyclically
RECV_BUFFER = 4096        # bytes per posted receive (wsp); > 32 messages
ROUND_TIMEOUT = 10.0      # seconds: a round that takes longer has failed


class EchoError(AssertionError):
    """The echo went wrong: bytes differ, an operation failed, a stall."""


def messages(conn_id: int) -> list[bytes]:
    """The DISTINCT messages of connection `conn_id` (each one different, so
    that a byte out of place, lost or duplicated shows)."""
    out = []
    for i in range(DISTINCT):
        head = b"%04d:%03d|" % (conn_id, i)
        body = bytes((conn_id * 31 + i * 7 + j) & 0xFF for j in range(SIZE - len(head)))
        out.append(head + body)
    return out


class ClientState:
    """One connection's client: what to send next, what must come back.

    ``send`` is the transport's send call for one message; ``received``
    checks a chunk of echoed bytes (any length: a stream), counts completed
    messages and sends new ones so that ``window`` stay in flight.
    """

    __slots__ = (
        "conn_id",
        "done",
        "expect",
        "goal",
        "msgs",
        "period",
        "rx",
        "send",
        "sent",
        "window",
    )

    def __init__(self, conn_id: int, window: int) -> None:
        self.conn_id = conn_id
        self.msgs = messages(conn_id)
        one = b"".join(self.msgs)
        self.period = len(one)
        self.expect = one * 2         # any chunk (<= window * SIZE bytes) is one slice
        assert window * SIZE <= self.period
        self.window = window
        self.send = None
        self.sent = self.done = self.rx = self.goal = 0

    def start_round(self, n: int) -> None:
        if self.sent != self.done:
            raise EchoError(f"connection {self.conn_id}: messages still in flight")
        self.goal = self.done + n
        self._fill()

    def _fill(self) -> None:
        limit = min(self.goal, self.done + self.window)
        send, msgs = self.send, self.msgs
        while self.sent < limit:
            send(msgs[self.sent % DISTINCT])
            self.sent += 1

    def received(self, data) -> bool:
        """Take echoed bytes; True when this round's goal is reached."""
        n = len(data)
        o = self.rx % self.period
        if self.expect[o:o + n] != data:
            raise EchoError(f"connection {self.conn_id}: echoed bytes differ at offset {self.rx}")
        self.rx += n
        self.done = self.rx // SIZE
        if self.done > self.sent:
            raise EchoError(f"connection {self.conn_id}: more bytes came back than were sent")
        self._fill()
        return self.done >= self.goal


# ------------------------------------------------------------------- wsp
class _Endpoint:
    """One socket of the wsp echo: its posted receive and a free list of
    send overlappeds (one Overlapped per send in flight; an Overlapped goes
    back to the list when its completion has been dequeued)."""

    __slots__ = ("_recv", "_send", "buf", "bufs", "client", "free", "made", "recv_ov", "s")

    def __init__(self, prov: sim.Provider, s: int, client: ClientState | None) -> None:
        self.s = s
        self.buf = bytearray(RECV_BUFFER)
        self.bufs = [self.buf]
        self.recv_ov = Overlapped()
        self.free: list[Overlapped] = []
        self.made = 0
        self.client = client
        self._send = prov.WSPSend
        self._recv = prov.WSPRecv
        if client is not None:
            client.send = self.send

    def post_recv(self) -> None:
        # rc 0 (data was there) or WSA_IO_PENDING: a packet comes either way
        self._recv(self.s, self.bufs, 0, self.recv_ov)

    def send(self, data: bytes) -> None:
        free = self.free
        if free:
            ov = free.pop()
        else:
            ov = Overlapped()
            self.made += 1
        ov.object = len(data)         # what its completion must report
        self._send(self.s, [data], 0, ov)


class WspEcho:
    """`conns` connections over a wsp.sim.Network, one completion port, one
    thread, through `layers` empty LayeredProviders over the sim Provider.
    ``batch`` > 1 drains the port with GetQueuedCompletionStatusEx
    (up to `batch` packets a call), 1 with GetQueuedCompletionStatus."""

    def __init__(self, conns: int, window: int, batch: int = 64, layers: int = 0,
                 clock: str | None = None) -> None:
        self.batch = batch
        # clock: the network's (SPEC 7.1); None is the default network, and
        # what an older wsp without clocks builds (dev/compare_rev.py)
        self.net = sim.Network(seed=0) if clock is None else sim.Network(seed=0, clock=clock)
        self.proc = proc = wsp.Process()
        prov = sim.Provider(self.net)
        for _ in range(layers):              # empty pass-through layers on top
            prov = LayeredProvider(prov)
        self.prov = prov
        prov.WSPStartup(0x0202, None, proc.upcalls)
        self.port = proc.CreateIoCompletionPort(None)
        self.listener = prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
        prov.WSPBind(self.listener, ("127.0.0.1", 0))
        prov.WSPListen(self.listener, 64)
        addr = prov.WSPGetSockName(self.listener)
        self.clients = [ClientState(i, window) for i in range(conns)]
        self.endpoints: list[_Endpoint] = []      # the completion key is the index
        for st in self.clients:
            c = prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
            prov.WSPConnect(c, addr)
            a, _ = prov.WSPAccept(self.listener)
            for s, client in ((c, st), (a, None)):
                proc.CreateIoCompletionPort(s, self.port, len(self.endpoints))
                self.endpoints.append(_Endpoint(prov, s, client))
        for ep in self.endpoints:
            ep.post_recv()

    def _on_completion(self, status: int, nbytes: int, key: int, ov: Overlapped) -> int:
        """React to one completion; 1 if it finished a client's round."""
        ep = self.endpoints[key]
        if ov is ep.recv_ov:
            if status or not nbytes:
                raise EchoError(f"receive completed with status {status}, {nbytes} bytes")
            data = ep.buf[:nbytes]
            client = ep.client
            done = 0
            if client is None:
                ep.send(data)                     # the server echoes what came
            elif client.received(data):
                done = 1
            ep.post_recv()
            return done
        if status or nbytes != ov.object:
            raise EchoError(f"send completed with status {status}, "
                            f"{nbytes} of {ov.object} bytes")
        ep.free.append(ov)
        return 0

    def run_round(self, n: int) -> int:
        """Every connection completes `n` messages; drain the port."""
        for st in self.clients:
            st.start_round(n)
        active = len(self.clients)
        port, handle = self.port, self._on_completion
        if self.batch > 1:
            getex, batch = self.proc.GetQueuedCompletionStatusEx, self.batch
            while True:
                packets = getex(port, batch, 0)
                if not packets:
                    break
                for status, nbytes, key, ov in packets:
                    active -= handle(status, nbytes, key, ov)
        else:
            get = self.proc.GetQueuedCompletionStatus
            while True:
                status, nbytes, key, ov = get(port, 0)
                if ov is None:
                    break
                active -= handle(status, nbytes, key, ov)
        # One thread and a synchronous network: an empty port means every
        # completion has been handled.  A client short of its goal here
        # would have waited forever on a real port.
        if active:
            raise EchoError(f"stall: {active} connections short of their goal, port empty")
        for ep in self.endpoints:
            if len(ep.free) != ep.made:
                raise EchoError("a send completion was never dequeued")
        return n * len(self.clients)

    def close(self, strict: bool = True) -> dict[str, int]:
        """Close everything; return ``proc.resources()`` (all zero if clean).
        `strict`: check that each posted receive ended as it should (False
        after a failed round, whose packets CloseHandle then discards)."""
        proc, prov = self.proc, self.prov
        for ep in self.endpoints:
            prov.WSPCloseSocket(ep.s)
        prov.WSPCloseSocket(self.listener)
        # Each posted receive has completed: aborted by the close of its own
        # socket, or with 0 bytes (end of stream) when its peer closed first.
        if not strict:
            proc.CloseHandle(self.port)
            prov.WSPCleanup()
            return proc.resources()
        done = proc.GetQueuedCompletionStatusEx(self.port, 2 * len(self.endpoints) + 1, 0)
        outcomes = sorted((p[0], p[1]) for p in done)
        if (len(done) != len(self.endpoints)
                or any(o not in ((0, 0), (wsp.WSA_OPERATION_ABORTED, 0)) for o in outcomes)
                or {p[3] for p in done} != {ep.recv_ov for ep in self.endpoints}):
            raise EchoError(f"teardown: expected one ended receive per socket, got {outcomes}")
        proc.CloseHandle(self.port)
        prov.WSPCleanup()
        return proc.resources()


class _ApplicationCalls:
    """The application's calls of a Process under the names WspEcho uses
    for provider entries, so that one echo loop drives either."""

    def __init__(self, proc: wsp.Process) -> None:
        self.WSPSend = proc.WSASend
        self.WSPRecv = proc.WSARecv
        self.WSPCloseSocket = proc.closesocket
        self.WSPCleanup = proc.WSACleanup


class AppEcho(WspEcho):
    """The wsp echo through the application API: a sim Provider installed
    in the process's catalog, WSAStartup, WSASocket/bind/listen/connect/
    accept, overlapped WSASend/WSARecv routed through the catalog, and the
    same port and loop as WspEcho."""

    def __init__(self, conns: int, window: int, batch: int = 1) -> None:
        self.batch = batch
        self.net = sim.Network(seed=0)
        self.proc = proc = wsp.Process()
        proc.catalog.install(sim.Provider(self.net))
        proc.WSAStartup(0x0202)
        self.prov = _ApplicationCalls(proc)
        self.port = proc.CreateIoCompletionPort(None)
        self.listener = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
        proc.bind(self.listener, ("127.0.0.1", 0))
        proc.listen(self.listener, 64)
        addr = proc.getsockname(self.listener)
        self.clients = [ClientState(i, window) for i in range(conns)]
        self.endpoints = []
        for st in self.clients:
            c = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
            proc.connect(c, addr)
            a, _ = proc.accept(self.listener)
            for s, client in ((c, st), (a, None)):
                proc.CreateIoCompletionPort(s, self.port, len(self.endpoints))
                self.endpoints.append(_Endpoint(self.prov, s, client))
        for ep in self.endpoints:
            ep.post_recv()


# ------------------------------------------------- the thin-Python floor
class _FloorSocket:
    """One end of a FloorEcho connection: its peer, its completion key, the
    bytes received with no receive posted, and the posted receive."""

    __slots__ = ("key", "peer", "recv_bufs", "recv_ov", "unread")

    def __init__(self, key: int) -> None:
        self.key = key
        self.peer: _FloorSocket | None = None
        self.unread = bytearray()
        self.recv_ov: Overlapped | None = None
        self.recv_bufs: list | None = None


class FloorProvider:
    """The least any SPI layer written as Python classes over the core can do
    per call, used to find the ceiling of that architecture (diagnostic, not
    a provider: no parameter checks, no lock, no events, no flow control, no
    exactly-once bookkeeping, single-buffer stream sends only).

    ``WSPSend``/``WSPRecv`` look the socket up in a core ``HandleTable``,
    copy the bytes (straight into the peer's posted receive when there is
    one), and post one packet per completed operation to a core
    ``CompletionQueue``, parking the Overlapped in a second ``HandleTable``
    whose handle is the packet's overlapped id, as wsp's engine does.
    ``GetQueuedCompletionStatus`` takes a packet and swaps the id back."""

    def __init__(self) -> None:
        core = wsp.core
        self.sockets = core.HandleTable()
        self.parked = core.HandleTable()
        self.queue = core.CompletionQueue()

    def socket_pair(self, key: int) -> tuple[int, int]:
        a, b = _FloorSocket(key), _FloorSocket(key + 1)
        a.peer, b.peer = b, a
        return self.sockets.create(a), self.sockets.create(b)

    def WSPSend(self, s: int, buffers: list, flags: int, ov: Overlapped) -> int:
        sock = self.sockets.query(s)
        data = buffers[0]
        n = len(data)
        peer = sock.peer
        rov = peer.recv_ov
        if rov is None:
            peer.unread += data
        else:
            peer.recv_bufs[0][:n] = data
            peer.recv_ov = None
            rov.Internal, rov.InternalHigh = 0, n
            self.queue.post(0, n, peer.key, self.parked.create(rov))
        ov.Internal, ov.InternalHigh = 0, n
        self.queue.post(0, n, sock.key, self.parked.create(ov))
        return 0

    def WSPRecv(self, s: int, buffers: list, flags: int, ov: Overlapped) -> int:
        sock = self.sockets.query(s)
        unread = sock.unread
        if not unread:
            sock.recv_ov, sock.recv_bufs = ov, buffers
            return wsp.WSA_IO_PENDING
        n = min(len(buffers[0]), len(unread))
        buffers[0][:n] = unread[:n]
        del unread[:n]
        ov.Internal, ov.InternalHigh = 0, n
        self.queue.post(0, n, sock.key, self.parked.create(ov))
        return 0

    def GetQueuedCompletionStatus(self, port: object, ms: int):
        packet = self.queue.get(0)
        if packet is None:
            return (wsp.WAIT_TIMEOUT, 0, 0, None)
        status, nbytes, key, ov_id = packet
        return status, nbytes, key, self.parked.close(ov_id)


class FloorEcho(WspEcho):
    """The wsp echo's application and loop (``WspEcho.run_round``, one
    packet per call) over :class:`FloorProvider` instead of the simulated
    network: what the echo would cost if wsp's SPI, sim provider and engine
    did nothing but the unavoidable Python-level work."""

    def __init__(self, conns: int, window: int) -> None:
        self.batch = 1
        self.prov = self.proc = prov = FloorProvider()
        self.port = None
        self.clients = [ClientState(i, window) for i in range(conns)]
        self.endpoints = []
        for st in self.clients:
            pair = prov.socket_pair(len(self.endpoints))
            for s, client in zip(pair, (st, None)):
                self.endpoints.append(_Endpoint(prov, s, client))
        for ep in self.endpoints:
            ep.post_recv()

    def close(self, strict: bool = True) -> dict[str, int]:
        prov = self.prov
        for ep in self.endpoints:
            prov.sockets.close(ep.s)
        return {"sockets": len(prov.sockets), "parked": len(prov.parked),
                "packets": len(prov.queue)}


# --------------------------------------------------------- asyncio / uvloop
class _ServerProtocol(asyncio.Protocol):
    def __init__(self, owner: AsyncioEcho) -> None:
        self.owner = owner
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.owner.server_transports.append(transport)

    def data_received(self, data) -> None:
        self.transport.write(data)                # echo each chunk as it came


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, state: ClientState) -> None:
        self.state = state
        self.waiter: asyncio.Future | None = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.state.send = transport.write

    def data_received(self, data) -> None:
        if self.state.received(data):
            self.waiter.set_result(None)

    def connection_lost(self, exc) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(EchoError(f"connection lost: {exc!r}"))


class AsyncioEcho:
    """`conns` connections to an echo server on 127.0.0.1, all in one event
    loop made by `new_loop` (asyncio.new_event_loop or uvloop.new_event_loop)."""

    def __init__(self, new_loop, conns: int, window: int) -> None:
        self.loop = new_loop()
        self.server = None
        self.server_transports: list = []
        self.clients: list[_ClientProtocol] = []
        try:
            self.loop.run_until_complete(
                asyncio.wait_for(self._open(conns, window), ROUND_TIMEOUT))
        except BaseException:
            self.close()
            raise

    async def _open(self, conns: int, window: int) -> None:
        loop = self.loop
        self.server = await loop.create_server(lambda: _ServerProtocol(self), "127.0.0.1", 0,
                                               backlog=64)
        host, port = self.server.sockets[0].getsockname()[:2]
        for i in range(conns):
            _, proto = await loop.create_connection(
                lambda i=i: _ClientProtocol(ClientState(i, window)), host, port)
            sock = proto.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.clients.append(proto)
        while len(self.server_transports) < conns:      # accepted on the server side
            await asyncio.sleep(0.001)

    async def _round(self, n: int) -> None:
        waiters = []
        for proto in self.clients:
            proto.waiter = self.loop.create_future()
            waiters.append(proto.waiter)
            proto.state.start_round(n)
        await asyncio.wait_for(asyncio.gather(*waiters), ROUND_TIMEOUT)

    def run_round(self, n: int) -> int:
        self.loop.run_until_complete(self._round(n))
        return n * len(self.clients)

    def close(self, strict: bool = True) -> None:
        loop = self.loop
        if loop.is_closed():
            return
        for proto in self.clients:
            proto.waiter = None
            if proto.transport is not None:
                proto.transport.close()
        for tr in self.server_transports:
            tr.close()
        if self.server is not None:
            self.server.close()

            async def closed() -> None:
                await asyncio.wait_for(self.server.wait_closed(), ROUND_TIMEOUT)
                await asyncio.sleep(0)
            loop.run_until_complete(closed())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# ------------------------------------------------------- trio, in-process
class TrioEcho:
    """`conns` connections over ``trio.testing.memory_stream_pair`` (the
    in-process peer a trio user picks), a server task echoing each chunk and
    a client task per connection, in one ``trio.run`` per round (the pairs
    are made at the start of the round: microseconds against the round's
    hundreds of messages)."""

    def __init__(self, conns: int, window: int) -> None:
        import trio                                   # the bench extra installs it
        self.trio = trio
        self.clients = [ClientState(i, window) for i in range(conns)]

    async def _conn(self, state: ClientState, n: int) -> None:
        trio = self.trio
        from trio.testing import memory_stream_pair
        client, server = memory_stream_pair()
        pending: list[bytes] = []
        state.send = pending.append

        async def echo() -> None:
            while True:
                data = await server.receive_some(65536)
                if not data:
                    return
                await server.send_all(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            state.start_round(n)
            while state.done < state.goal:
                if pending:
                    out = b"".join(pending)
                    pending.clear()
                    await client.send_all(out)
                data = await client.receive_some(65536)
                if not data:
                    raise EchoError("trio stream ended early")
                state.received(data)
            nursery.cancel_scope.cancel()

    async def _round(self, n: int) -> None:
        async with self.trio.open_nursery() as nursery:
            for st in self.clients:
                nursery.start_soon(self._conn, st, n)

    def run_round(self, n: int) -> int:
        async def bounded() -> None:
            with self.trio.fail_after(ROUND_TIMEOUT):     # a stall fails the round
                await self._round(n)
        self.trio.run(bounded)
        return n * len(self.clients)

    def close(self, strict: bool = True) -> None:
        """Nothing outlives a round."""


# --------------------------------------------------------- the deque floor
class DequeEcho:
    """The floor of any in-process echo: per connection, a ``deque`` each
    way, the same ClientState, and a loop that moves every chunk by hand --
    no sockets, no events, no completion ports."""

    def __init__(self, conns: int, window: int) -> None:
        from collections import deque
        self.clients = [ClientState(i, window) for i in range(conns)]
        self.pipes = [(deque(), deque()) for _ in self.clients]
        for st, (to_server, _) in zip(self.clients, self.pipes):
            st.send = to_server.append

    def run_round(self, n: int) -> int:
        for st in self.clients:
            st.start_round(n)
        active = len(self.clients)
        pairs = list(zip(self.clients, self.pipes))
        while active:
            for st, (to_server, to_client) in pairs:
                while to_server:
                    to_client.append(to_server.popleft())      # the server echoes
                while to_client:
                    if st.received(to_client.popleft()):
                        active -= 1
        return n * len(self.clients)

    def close(self, strict: bool = True) -> None:
        """Nothing to release."""
