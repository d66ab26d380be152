"""The main job, ``wsp sim``: an echo workload over the simulated network
that exercises the whole stack and reports what happened.

Two processes share one :class:`wsp.sim.Network`: a *server* process and a
*client* process, each with a :class:`wsp.sim.Provider` (optionally under
layered providers: ``lsp=("trace", "fault")``, top layer first) installed in
its catalog, and each using only the application-facing calls
(``WSAStartup``, ``WSASocket``, ``WSASend``, ...).  For every connection:

1. the client connects and the server accepts; both sockets are associated
   with their process's completion port (key = connection index);
2. the client sends ``messages`` messages of ``size`` bytes, one at a time
   (ping-pong), with overlapped ``WSASend``; the server echoes every chunk it
   receives with an overlapped ``WSASend`` and reposts its ``WSARecv``;
3. when its last echo is complete, the client closes in the connection's
   *close mode*, drawn from the seed:

   * ``graceful``: ``closesocket`` with the default ``SO_DONTLINGER`` -- the
     server's receive ends with 0 bytes (end of stream);
   * ``hard``: ``SO_LINGER`` on with a time-out of 0 -- a reset: the server's
     receive fails with ``WSAECONNRESET``;
   * ``linger``: ``SO_LINGER`` on with a 2 s time-out on a blocking socket --
     ``closesocket`` waits until the data is delivered, then closes
     gracefully;
   * ``retry``: a non-blocking socket with ``SO_LINGER`` on (5 s) and a last
     short message held in the network: ``closesocket`` fails with
     ``WSAEWOULDBLOCK`` and the handle stays valid (seed: LPWSPCloseSocket);
     the client then calls ``shutdown(SD_SEND)`` and retries, which closes;
     the network then delivers the held message and the end of stream (the
     server's echo of it then meets a closed peer that had shut its sending
     down: its next receive fails with ``WSAECONNABORTED``, as on Windows);

4. the server closes its socket once its receive has ended.

Worker threads (``threads`` per process) drain each completion port with
``GetQueuedCompletionStatusEx`` and react to each packet.  With the
``fault`` layer in the client's stack, a seeded few connections get a reset
injected on their first send.  At the end both processes call
``WSACleanup``, close their ports and report what they still hold: every
count must be zero.

With ``pcap`` (``wsp sim --pcap FILE``) the network's packets are captured
from before the first connect until after the cleanup (:mod:`wsp.sim.capture`),
so every connection shows its handshake and its FIN or RST.

Everything that decides the counts -- the close modes, the injected faults,
the order of events on each connection -- comes from ``seed``, and the
network delivers synchronously, so the same seed gives the same counts
whatever the thread timing (unless ``duration`` cuts the run short).
"""
from __future__ import annotations

import platform
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import wsp
from .constants import (AF_INET, FIONBIO, SD_SEND, SO_LINGER, SOCK_DGRAM, SOCK_STREAM,
                        SOL_SOCKET)
from .errors import (WSA_OPERATION_ABORTED, WSAECONNABORTED, WSAECONNRESET, WSAETIMEDOUT,
                     WSAEWOULDBLOCK, WinsockError,
                     error_name)
from .lsp import FaultProvider, TracingProvider
from .sim import Network, Provider
from .spi import Linger, Overlapped, Process

__all__ = ["CLOSE_MODES", "LAYERS", "Scenario", "ScenarioConfig"]

CLOSE_MODES = ("graceful", "hard", "linger", "retry")
LAYERS = {"trace": TracingProvider, "fault": FaultProvider}
SERVER_ADDR = ("10.0.0.1", 7)          # the echo service, on the server's host
PROBE_PORT = 9                         # the server's datagram sink (the discard port)
CLIENT_HOST = "10.0.0.2"               # the client process's machine
RECV_BUFFER = 4096
BACKLOG = 64                           # the listener's
FAULTY_SHARE = 0.05                    # connections that get a reset injected (with "fault")
_STOP = 0xFFFFFFFF                     # completion key of the packets that stop a worker
_PROBE = 0xFFFFFFFE                    # completion key of the server's datagram sink

#: The errors of a connection the peer tore down: a reset (WSAECONNRESET), or an
#: abort after the peer shut its sending down and closed (WSAECONNABORTED).
_TORN_DOWN = (WSAECONNRESET, WSAECONNABORTED)


@dataclass(frozen=True)
class ScenarioConfig:
    """The size and shape of a run (see the module docstring)."""

    connections: int = 64
    messages: int = 200              # per connection (the CLI's default is larger)
    size: int = 64                   # bytes per message
    threads: int = 2                 # worker threads per process
    seed: int = 0
    lsp: tuple[str, ...] = ()        # layered providers, top first: "trace", "fault"
    duration: float | None = None    # seconds (simulated with a clock); None: until all done
    clock: str | None = None         # the network's clock: None, "virtual" or "real"
    latency: float = 0.0             # the link between the two hosts, seconds
                                     # (``docs/guide/time-and-links.rst``)
    jitter: float = 0.0              # seconds
    bandwidth: float | None = None   # bytes per second, each way; None: unlimited
    loss: float = 0.0                # probability that a datagram is lost
    pcap: str | None = None          # capture the run's packets to this pcap file
                                     # (``docs/guide/capture.rst``)

    def __post_init__(self) -> None:
        for name in ("connections", "messages", "size", "threads", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if self.connections < 1 or self.messages < 1 or self.threads < 1:
            raise ValueError("connections, messages and threads must be at least 1")
        if not 1 <= self.size <= RECV_BUFFER:
            raise ValueError(f"size must be 1..{RECV_BUFFER} bytes")
        unknown = [name for name in self.lsp if name not in LAYERS]
        if unknown:
            raise ValueError(f"unknown layered provider(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(LAYERS)}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError("duration must be a positive number of seconds")
        if self.pcap is not None and not isinstance(self.pcap, str):
            raise TypeError(f"pcap must be a path str or None, not {type(self.pcap).__name__}")
        if self.clock not in (None, "virtual", "real"):
            raise ValueError(f"clock must be None, 'virtual' or 'real', not {self.clock!r}")
        # The link's own checks (ValueError naming the parameter), before anything runs.
        Network(clock=self.clock).set_link(CLIENT_HOST, SERVER_ADDR[0], latency=self.latency,
                                           jitter=self.jitter, bandwidth=self.bandwidth,
                                           loss=self.loss)


@dataclass
class _Conn:
    """One connection's state; touched only under `lock` (two worker
    threads may hold completions of the same connection)."""

    index: int
    mode: str
    faulty: bool
    client: int = 0
    server: int = 0
    client_rx: int = 0               # echoed bytes received by the client
    done: int = 0                    # messages whose echo is complete
    client_closed: bool = False
    server_closed: bool = False
    recv_buf: bytearray = field(default_factory=lambda: bytearray(RECV_BUFFER))
    server_buf: bytearray = field(default_factory=lambda: bytearray(RECV_BUFFER))
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Side:
    """One process of the scenario: its stack, port and worker threads."""

    def __init__(self, name: str, net: Network, layers: tuple[str, ...], seed: int,
                 host: str) -> None:
        self.name = name
        self.proc = Process()
        self.base = Provider(net, host=host)
        top: Any = self.base
        self.fault: FaultProvider | None = None
        self.tracer: TracingProvider | None = None
        for layer in reversed(layers):              # build bottom-up; `layers` is top first
            if layer == "fault":
                top = self.fault = FaultProvider(top, seed=seed)
            else:
                top = self.tracer = TracingProvider(top, sink=_count_records(self))
        self.trace_records = 0
        self.top = top
        self.proc.catalog.install(top)
        self.proc.WSAStartup(0x0202)
        self.port = self.proc.CreateIoCompletionPort(None)
        self.workers: list[threading.Thread] = []


def _count_records(side: _Side) -> Callable[[Any], None]:
    # The scenario keeps no trace in memory: it counts the records.
    lock = threading.Lock()

    def sink(_record: Any) -> None:
        with lock:
            side.trace_records += 1
    return sink


class Scenario:
    """One run of the echo scenario.  ``run()`` returns the report."""

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._completions: Counter[str] = Counter()   # dequeued packets, by status
        self._raised: Counter[str] = Counter()        # calls that failed, by error
        self._would_block = 0                         # closes that said WSAEWOULDBLOCK
        self._ops = 0                     # application calls made (sockets, I/O, closes)
        self._resets = 0                  # calls that found the connection reset or aborted
        self._messages = 0
        self._bytes = 0                   # bytes of completed sends and receives
        self._finished = 0                # connections closed at both ends
        self._errors: list[str] = []
        self._all_done = threading.Event()
        self._cut_short = False           # a simulated --duration ended the run
        self._sim_began = 0.0             # simulated time when the first messages went
        self._sim_end: float | None = None   # simulated time when the last connection ended
        self._counts_at_cut: tuple[int, int] | None = None   # (messages, bytes) at the cut
        self._probe: tuple[int, int] | None = None   # (client, server) datagram sockets
        self._datagrams_sent = 0
        self._datagrams_received = 0
        self._captured: int | None = None   # packets written with ``pcap``

    # -- bookkeeping --------------------------------------------------------------
    def _count(self, status: int, nbytes: int) -> None:
        name = "success" if status == 0 else error_name(status)
        if status == 0 and nbytes == 0:
            name = "end of stream"
        with self._lock:
            self._completions[name] += 1
            self._bytes += nbytes if status == 0 else 0

    def _op(self, n: int = 1) -> None:
        with self._lock:
            self._ops += n

    def _fail(self, what: str) -> None:
        with self._lock:
            self._errors.append(what)
        self._all_done.set()

    def _finish_one(self) -> None:
        with self._lock:
            self._finished += 1
            last = self._finished == self.config.connections
            if last and self._sim_end is None:
                self._sim_end = self.net.time()
        if last:
            self._all_done.set()

    # -- the run --------------------------------------------------------------------
    def run(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Run the scenario; `progress(messages_done, messages_total)` is
        called about ten times a second from the calling thread."""
        cfg = self.config
        rng = random.Random(cfg.seed)
        self.net = net = Network(seed=cfg.seed, clock=cfg.clock)
        net.set_link(CLIENT_HOST, SERVER_ADDR[0], latency=cfg.latency, jitter=cfg.jitter,
                     bandwidth=cfg.bandwidth, loss=cfg.loss)
        if cfg.pcap is None:
            return self._run(net, rng, progress)
        # The capture spans the whole run, the cleanup's resets and FINs included.
        with net.capture(cfg.pcap) as capture:
            report = self._run(net, rng, progress)
        report["packets_captured"] = capture.packets
        return report

    def _run(self, net: Network, rng: random.Random,
             progress: Callable[[int, int], None] | None) -> dict[str, Any]:
        cfg = self.config
        layers = tuple(cfg.lsp)
        server = _Side("server", net, layers, cfg.seed, SERVER_ADDR[0])
        client = _Side("client", net, layers, cfg.seed, CLIENT_HOST)
        self.server, self.client = server, client
        self.conns = conns = [
            _Conn(i, rng.choice(CLOSE_MODES),
                  client.fault is not None and rng.random() < FAULTY_SHARE)
            for i in range(cfg.connections)]
        started = time.perf_counter()
        self._setup(conns)
        for side, handler in ((server, self._on_server), (client, self._on_client)):
            for k in range(cfg.threads):
                t = threading.Thread(target=self._drain, args=(side, handler),
                                     name=f"wsp-sim-{side.name}-{k}", daemon=True)
                side.workers.append(t)
                t.start()
        self._sim_began = net.time()
        for conn in conns:                          # off they go: the first message each
            self._client_start(conn)
        cut_short = False
        deadline = None
        if cfg.duration is not None:
            if net.clock is not None:
                # Simulated seconds: the run is cut at that simulated moment.
                net.clock.call_at(self._sim_began + cfg.duration, self._cut)
            else:
                deadline = started + cfg.duration
        net.step_aside()                  # this thread only watches from now on (the idle rule)
        total = cfg.connections * cfg.messages
        while not self._all_done.wait(0.1):
            if progress is not None:
                progress(self._messages, total)
            if deadline is not None and time.perf_counter() >= deadline:
                cut_short = True
                break
        cut_short = cut_short or self._cut_short
        if progress is not None:
            progress(self._messages, total)
        elapsed = time.perf_counter() - started
        if self._sim_end is None:
            self._sim_end = net.time()
        self._let_network_drain()
        self._stop_workers(server, client)
        leaks = self._teardown(server, client)
        return self._report(elapsed, self._sim_end - self._sim_began, cut_short, leaks)

    def _cut(self) -> None:
        """The simulated --duration has passed (a clock event, lock held)."""
        self._cut_short = True
        self._sim_end = self.net.time()
        # The counts at the cut are the run's: the workers go on until the
        # watching thread stops them, and simulated time goes on with them
        # (how far depends on how soon that thread is scheduled).  The clock
        # fires this only when no worker can act, so nothing is mid-count.
        self._counts_at_cut = (self._messages, self._bytes)
        self._all_done.set()

    def _let_network_drain(self) -> None:
        """With a clock, what is still crossing the links when the last
        connection ends -- the last FINs, probe datagrams -- arrives a little
        later: wait for it (in simulated time, a bounded number of steps) so
        that the counts and the leak check see a quiet network."""
        net = self.net
        clock = net.clock
        if clock is None:
            return
        cfg = self.config
        step_ms = max(1, int((cfg.latency + cfg.jitter) * 1000) + 1)
        for _ in range(1000):
            if not clock.scheduled and not net.lingering:
                break
            self.client.proc.SleepEx(step_ms, False)
        net.step_aside()

    def _setup(self, conns: list[_Conn]) -> None:
        server, client = self.server, self.client
        sp, cp = server.proc, client.proc
        listener = sp.WSASocket(AF_INET, SOCK_STREAM, 0)
        sp.bind(listener, SERVER_ADDR)
        sp.listen(listener, BACKLOG)
        if self.net.clock is not None:
            self._connect_all(conns, listener)
        for conn in conns:
            if self.net.clock is None:
                conn.client = cp.WSASocket(AF_INET, SOCK_STREAM, 0)
                cp.connect(conn.client, SERVER_ADDR)
                conn.server, _ = sp.accept(listener)
            cp.CreateIoCompletionPort(conn.client, client.port, conn.index)
            sp.CreateIoCompletionPort(conn.server, server.port, conn.index)
            if conn.faulty:
                client.fault.add_rule("WSPSend", "reset", socket=self._handle_in(
                    client, conn.client, client.fault), count=1)
        sp.closesocket(listener)
        self._op(3 + 6 * len(conns))
        for conn in conns:
            self._server_recv(conn)
        if self.config.loss:
            self._open_probe()

    def _connect_all(self, conns: list[_Conn], listener: int) -> None:
        """With a clock a connect takes a round trip: start every connect at
        once (non-blocking), accept them as they arrive, then wait until each
        client knows it is connected (select, in simulated time)."""
        sp, cp = self.server.proc, self.client.proc
        for first in range(0, len(conns), BACKLOG):    # no more at once than the backlog holds
            batch = conns[first:first + BACKLOG]
            for conn in batch:
                conn.client = cp.WSASocket(AF_INET, SOCK_STREAM, 0)
                cp.ioctlsocket(conn.client, FIONBIO, 1)
                try:
                    cp.connect(conn.client, SERVER_ADDR)
                except WinsockError as exc:
                    if exc.winerror != WSAEWOULDBLOCK:
                        raise
            for conn in batch:
                conn.server, _ = sp.accept(listener)
        for conn in conns:
            _, writable, _ = cp.select([], [conn.client], [], 60.0)
            if not writable:
                raise WinsockError(WSAETIMEDOUT, "connect")
            cp.ioctlsocket(conn.client, FIONBIO, 0)
        self._op(5 * len(conns))

    def _open_probe(self) -> None:
        """The datagram side (with a loss): the client sends one
        datagram per completed message to the server's discard port, where
        one overlapped receive at a time counts them."""
        sp, cp = self.server.proc, self.client.proc
        sink = sp.WSASocket(AF_INET, SOCK_DGRAM, 0)
        sp.bind(sink, (SERVER_ADDR[0], PROBE_PORT))
        sp.CreateIoCompletionPort(sink, self.server.port, _PROBE)
        source = cp.WSASocket(AF_INET, SOCK_DGRAM, 0)
        self._probe = (source, sink)
        self._probe_buf = bytearray(RECV_BUFFER)
        self._probe_recv()
        self._op(5)

    def _probe_recv(self) -> None:
        ov = Overlapped()
        ov.object = "probe"
        self.server.proc.WSARecvFrom(self._probe[1], [self._probe_buf], 0, ov)

    def _on_probe(self, status: int) -> None:
        """A probe datagram arrived at the server (or its socket closed)."""
        if status:
            return                                  # the cleanup's cancellation
        with self._lock:
            self._datagrams_received += 1
        self._probe_recv()

    @staticmethod
    def _handle_in(side: _Side, s: int, layer: Any) -> int:
        """The handle that `layer` of `side`'s stack knows for the
        application's socket `s` (each layer has handles of its own)."""
        query = side.proc.upcalls.WPUQuerySocketHandleContext
        ctx = query(s)
        while ctx.layer is not layer:
            s = ctx.lower
            ctx = query(s)
        return s

    # -- server side --------------------------------------------------------------------
    def _server_recv(self, conn: _Conn) -> None:
        ov = Overlapped()
        ov.object = "recv"
        self.server.proc.WSARecv(conn.server, [conn.server_buf], 0, ov)
        self._op()

    def _on_server(self, status: int, nbytes: int, conn: _Conn, ov: Overlapped) -> None:
        proc = self.server.proc
        self._count(status, nbytes)
        if ov.object != "recv":
            return                                  # an echo's send completed
        with conn.lock:
            if conn.server_closed:
                return
            if status == 0 and nbytes:
                echo = Overlapped()
                echo.object = "send"
                try:
                    proc.WSASend(conn.server, [bytes(conn.server_buf[:nbytes])], 0, echo)
                except WinsockError as exc:         # the client reset meanwhile
                    self._count_error(exc)
                try:
                    self._server_recv(conn)
                    return
                except WinsockError as exc:
                    self._count_error(exc)
            elif status in _TORN_DOWN:
                with self._lock:
                    self._resets += 1
            elif status and status != WSA_OPERATION_ABORTED:
                self._fail(f"server receive on connection {conn.index}: {error_name(status)}")
            conn.server_closed = True               # end of stream, reset or error: done
            proc.closesocket(conn.server)
            self._op(3)
            finished = conn.client_closed
        if finished:
            self._finish_one()

    def _count_error(self, exc: WinsockError) -> None:
        with self._lock:
            self._raised[error_name(exc.winerror)] += 1
            if exc.winerror in _TORN_DOWN:
                self._resets += 1

    # -- client side --------------------------------------------------------------------
    def _client_start(self, conn: _Conn) -> None:
        with conn.lock:
            self._client_recv(conn)
            self._client_send(conn)

    def _client_recv(self, conn: _Conn) -> None:
        ov = Overlapped()
        ov.object = "recv"
        self.client.proc.WSARecv(conn.client, [conn.recv_buf], 0, ov)
        self._op()

    def _client_send(self, conn: _Conn) -> None:
        """The next message (lock held)."""
        size = self.config.size
        i = conn.done
        payload = (b"%d:%d|" % (conn.index, i)).ljust(size, b".")[:size]
        ov = Overlapped()
        ov.object = "send"
        try:
            self.client.proc.WSASend(conn.client, [payload], 0, ov)
        except WinsockError as exc:
            self._count_error(exc)                  # an injected reset: close the client
            self._client_close(conn, "hard")
        self._op()

    def _on_client(self, status: int, nbytes: int, conn: _Conn, ov: Overlapped) -> None:
        self._count(status, nbytes)
        if ov.object != "recv":
            return
        cfg = self.config
        with conn.lock:
            if conn.client_closed:
                return
            if status or not nbytes:
                if status in _TORN_DOWN:
                    with self._lock:
                        self._resets += 1
                else:
                    self._fail(f"client receive on connection {conn.index}: "
                               f"{error_name(status) if status else 'end of stream'}")
                self._client_close(conn, "hard")
                return
            conn.client_rx += nbytes
            done = conn.client_rx // cfg.size
            with self._lock:
                self._messages += done - conn.done
            if self._probe is not None and done > conn.done:
                self._send_probes(done - conn.done)
            conn.done = done
            if done < cfg.messages:
                if conn.client_rx % cfg.size == 0:
                    self._client_send(conn)
                self._client_recv(conn)
            else:
                self._client_close(conn, conn.mode)

    def _send_probes(self, n: int) -> None:
        payload = b"p" * self.config.size
        for _ in range(n):
            self.client.proc.WSASendTo(self._probe[0], [payload], 0,
                                       (SERVER_ADDR[0], PROBE_PORT))
        with self._lock:
            self._datagrams_sent += n

    def _client_close(self, conn: _Conn, mode: str) -> None:
        """Close the client socket in `mode` (lock held)."""
        proc, s = self.client.proc, conn.client
        conn.client_closed = True
        ops = 1
        if mode == "hard":
            proc.setsockopt(s, SOL_SOCKET, SO_LINGER, Linger(1, 0))
            proc.closesocket(s)
            ops += 1
        elif mode == "linger":
            proc.setsockopt(s, SOL_SOCKET, SO_LINGER, Linger(1, 2))
            proc.closesocket(s)
            ops += 1
        elif mode == "retry":
            ops += self._close_with_retry(s)
        else:
            proc.closesocket(s)
        self._op(ops)
        if conn.server_closed:
            self._finish_one()

    def _close_with_retry(self, s: int) -> int:
        """Seed: a non-blocking socket lingering with data undelivered gets
        WSAEWOULDBLOCK and stays valid; SD_SEND starts the close and the
        retry succeeds.  Returns the calls made."""
        proc = self.client.proc
        local = proc.getsockname(s)
        conn = next(c for c in self.net.connections() if c.client.local == local)
        conn.hold()                                 # the last bytes stay undelivered
        proc.ioctlsocket(s, FIONBIO, 1)
        proc.setsockopt(s, SOL_SOCKET, SO_LINGER, Linger(1, 5))
        proc.WSASend(s, [b"bye"])                  # into the send buffer; held there
        try:
            proc.closesocket(s)
        except WinsockError as exc:
            if exc.winerror != WSAEWOULDBLOCK:
                raise
            with self._lock:
                self._would_block += 1
        else:
            self._fail("a lingering non-blocking close with undelivered data did not block")
        proc.shutdown(s, SD_SEND)
        proc.closesocket(s)                         # the retry
        conn.release()                              # "bye" and the end of stream go out
        return 8

    # -- workers and teardown -----------------------------------------------------------
    def _drain(self, side: _Side, handler: Callable[..., None]) -> None:
        proc, port, conns = side.proc, side.port, self.conns
        try:
            while True:
                stops = 0
                for status, nbytes, key, ov in proc.GetQueuedCompletionStatusEx(port, 64, 1000):
                    if key == _STOP:
                        stops += 1
                    elif key == _PROBE:
                        self._on_probe(status)
                    else:
                        handler(status, nbytes, conns[key], ov)
                if stops:
                    # One stop packet per worker: hand on the ones that were
                    # meant for the others.
                    for _ in range(stops - 1):
                        proc.PostQueuedCompletionStatus(port, 0, _STOP, None)
                    return
        except BaseException as exc:               # report, and let the run end
            self._fail(f"{side.name} worker: {exc!r}")

    def _stop_workers(self, *sides: _Side) -> None:
        for side in sides:
            for _ in side.workers:
                side.proc.PostQueuedCompletionStatus(side.port, 0, _STOP, None)
        for side in sides:
            for t in side.workers:
                t.join(30)
                if t.is_alive():
                    self._errors.append(f"{t.name} did not stop")

    def _teardown(self, *sides: _Side) -> dict[str, int]:
        """WSACleanup each process (the seed's cleanup: whatever is still
        open is reset, pending requests cancelled), drain and close its port,
        and count what is left anywhere."""
        leaks: Counter[str] = Counter()
        for side in sides:
            proc = side.proc
            # Completions that came after the workers stopped (a cut-short
            # run) are counted, not handled.
            while True:
                late = proc.GetQueuedCompletionStatusEx(side.port, 64, 0)
                if not late:
                    break
                for status, nbytes, _, _ in late:
                    self._count(status, nbytes)
            proc.WSACleanup()
            proc.CloseHandle(side.port)
            while proc.SleepEx(0, True):
                pass
            for name, value in proc.resources().items():
                leaks[f"{side.name} {name}"] += value
        leaks["network lingering"] = self.net.lingering
        leaks["network connections"] = len(self.net.connections())
        return dict(leaks)

    def _report(self, elapsed: float, simulated: float, cut_short: bool,
                leaks: dict[str, int]) -> dict[str, Any]:
        cfg = self.config
        modes = Counter(conn.mode for conn in self.conns)
        traced = sum(side.trace_records for side in (self.server, self.client))
        completed = sum(self._completions.values())
        messages, nbytes = self._counts_at_cut or (self._messages, self._bytes)
        return {
            "wsp": wsp.__version__,
            "core": wsp.core_impl,
            "python": platform.python_version(),
            "seed": cfg.seed,
            "parameters": {**asdict(cfg), "lsp": list(cfg.lsp)},
            "seconds": round(elapsed, 3),
            "cut_short": cut_short,
            "messages": messages,
            "bytes": nbytes,
            "operations": self._ops + completed,
            "messages_per_second": round(messages / elapsed, 1) if elapsed else 0.0,
            "operations_per_second": round((self._ops + completed) / elapsed, 1)
            if elapsed else 0.0,
            "completions": dict(sorted(self._completions.items())),
            "calls_failed": dict(sorted(self._raised.items())),
            "closes_would_block": self._would_block,
            "resets_seen": self._resets,
            "close_modes": {mode: modes.get(mode, 0) for mode in CLOSE_MODES},
            "faults_injected": sum(conn.faulty for conn in self.conns),
            "trace_records": traced,
            "clock": cfg.clock,
            "hosts": {"client": CLIENT_HOST, "server": SERVER_ADDR[0]},
            "simulated_seconds": round(simulated, 6),
            "simulated_messages_per_second": round(messages / simulated, 1)
            if simulated else None,
            "simulated_bytes_per_second": round(nbytes / simulated, 1)
            if simulated else None,
            "datagrams": {"sent": self._datagrams_sent, "received": self._datagrams_received,
                          "lost": self._datagrams_sent - self._datagrams_received},
            "leaks": leaks,
            "leaked": sum(leaks.values()),
            "packets_captured": None,
            "errors": list(self._errors),
        }

