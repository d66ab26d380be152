"""Building blocks for the tests of layered providers (test_lsp_*.py) and of
the application API (test_spi_application.py): ``Stack``, one Process with a
provider stack over a wsp.sim.Provider driven through the top's WSP entries,
and ``AppStack``, the same stack installed in the process's catalog and
driven through the application API; plus the small helpers those tests share.

A stack is built by a `build(base) -> top` callable, for example
``FaultProvider``, ``lambda base: TracingProvider(FaultProvider(base))`` or
``build_layers(InnerLayer, OuterLayer, worker=True)``.  ``finish()`` (or
leaving ``with Stack(...) as st:``) releases everything and checks that the
process holds nothing afterwards::

    @pytest.fixture
    def stack():
        with Stack(TracingProvider) as st:
            yield st
"""
from __future__ import annotations

import threading
import time

import wsp
import wsp.sim
from wsp import AF_INET, SOCK_DGRAM, SOCK_STREAM
from wsp.errors import WAIT_IO_COMPLETION, WSA_WAIT_EVENT_0
from wsp.lsp import LayerSocket

LOCAL = "127.0.0.1"
JOIN = 10.0          # seconds: no test thread may outlive this


def build_layers(*classes, **kw):
    """A `build` for Stack: one layer of each of `classes` over the base,
    innermost first, each made as ``cls(lower, **kw)``."""
    def build(base):
        top = base
        for cls in classes:
            top = cls(top, **kw)
        return top
    return build


class Stack:
    """One Process with a provider stack over a wsp.sim.Provider on a Network
    (a new one, seeded with `seed`, unless `net` is given).

    * ``base``: the wsp.sim.Provider; ``top = build(base)``: what the tests
      call (``base`` itself when `build` is None: no layer);
    * ``layers``: every provider over the base (``top`` too), innermost first;
      ``providers``: the whole stack, top first, ``base`` last;
    * started with ``top.WSPStartup(0x0202, None, proc.upcalls)`` unless
      `start` is false;
    * ``ports`` and ``events``: those made with port() and event(), closed
      by finish().

    pair(), listener() and dgrams() are made of socket(), bind(), listen(),
    getsockname(), connect() and accept(): the top's WSP entries here, the
    application API in AppStack."""

    def __init__(self, build=None, net=None, seed=0, start=True):
        self.net = net if net is not None else wsp.sim.Network(seed=seed)
        self.proc = wsp.Process()
        self.base = wsp.sim.Provider(self.net)
        self.top = build(self.base) if build is not None else self.base
        self.ports, self.events = [], []
        if start:
            self.top.WSPStartup(0x0202, None, self.proc.upcalls)

    @property
    def providers(self):
        """[top, next lower, ..., base]."""
        provs = [self.top]
        while provs[-1] is not self.base:
            provs.append(provs[-1].lower)
        return provs

    @property
    def layers(self):
        """The layers over the base, innermost first."""
        return self.providers[-2::-1]

    # -- the calls pair(), listener() and dgrams() are made of
    def socket(self, type=SOCK_STREAM):
        return self.top.WSPSocket(AF_INET, type, 0)

    def bind(self, s, addr):
        self.top.WSPBind(s, addr)

    def listen(self, s, backlog):
        self.top.WSPListen(s, backlog)

    def getsockname(self, s):
        return self.top.WSPGetSockName(s)

    def connect(self, s, addr):
        self.top.WSPConnect(s, addr)

    def accept(self, s):
        return self.top.WSPAccept(s)

    # -- sockets
    def listener(self, addr=(LOCAL, 0), backlog=16):
        """(a listening stream socket, its address)."""
        s = self.socket()
        self.bind(s, addr)
        self.listen(s, backlog)
        return s, self.getsockname(s)

    def pair(self):
        """(client, accepted, listener): a connected pair of stream sockets."""
        lst, addr = self.listener()
        c = self.socket()
        self.connect(c, addr)
        a, _ = self.accept(lst)
        return c, a, lst

    def dgrams(self):
        """(sender, receiver, receiver's address): two datagram sockets."""
        r = self.socket(SOCK_DGRAM)
        self.bind(r, (LOCAL, 0))
        s = self.socket(SOCK_DGRAM)
        return s, r, self.getsockname(r)

    def recv(self, s, size=4096):
        """One receive on the top that cannot hang (see recv_now)."""
        return recv_now(self.top, s, size)

    # -- handles
    def ctx(self, s):
        """The context of the handle `s` (a LayerSocket for a layer's own)."""
        return self.proc.upcalls.WPUQuerySocketHandleContext(s)

    def chain_of(self, s):
        """[top handle, next lower handle, ..., base handle] under `s`."""
        handles = [s]
        ctx = self.ctx(s)
        while type(ctx) is LayerSocket:
            handles.append(ctx.lower)
            ctx = self.ctx(ctx.lower)
        return handles

    def handle_in(self, provider, s):
        """The handle `provider` (one of this stack's) has under the top's `s`."""
        index = next(k for k, p in enumerate(self.providers) if p is provider)
        return self.chain_of(s)[index]

    # -- completion ports, events, APCs
    def port(self, *sockets, key=7):
        """A new completion port, with `sockets` associated under `key`."""
        port = self.proc.CreateIoCompletionPort(None)
        self.ports.append(port)
        for s in sockets:
            self.proc.CreateIoCompletionPort(s, port, key)
        return port

    def packets(self, port):
        """Every packet queued on `port` now, without waiting: (rc, nbytes, key)."""
        return [p[:3] for p in self.proc.GetQueuedCompletionStatusEx(port, 64, 0)]

    def event(self):
        ev = self.proc.WSACreateEvent()
        self.events.append(ev)
        return ev

    def signalled(self, ev):
        return self.proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_EVENT_0

    def drain_apcs(self):
        """Run the completion routines queued to this thread."""
        while self.proc.SleepEx(0, True) == WAIT_IO_COMPLETION:
            pass

    def flush(self):
        """Wait until every worker layer has issued what it was given, the
        top one first (it may give more to the next one down)."""
        for layer in self.providers[:-1]:
            layer.flush()

    # -- the end
    def finish(self):
        """Release everything and check that nothing is left behind: the
        network up again, worker layers flushed, every started provider of
        the stack cleaned up (top first), APCs drained, ports and events
        closed, then every count of proc.resources() zero."""
        self.net.set_down(False)
        self.drain_apcs()
        self.flush()
        for prov in self.providers:
            while prov.started:
                prov.WSPCleanup()
        self.drain_apcs()
        for port in self.ports:
            self.proc.CloseHandle(port)
        for ev in self.events:
            self.proc.WSACloseEvent(ev)
        self.ports, self.events = [], []
        res = self.proc.resources()
        assert res == dict.fromkeys(res, 0), res

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """finish() if the block succeeded; terminate the process in any case."""
        try:
            if exc_type is None:
                self.finish()
        finally:
            self.proc.terminate()


class AppStack(Stack):
    """A Stack installed in the process's catalog (``chains``: what
    catalog.install returned, the protocol chains over the base) and driven
    through the application API: not started; WSAStartup starts Winsock and
    the first WSASocket loads the providers."""

    def __init__(self, build=None, net=None, seed=0):
        super().__init__(build, net, seed, start=False)
        self.chains = self.proc.catalog.install(self.top)

    def socket(self, type=SOCK_STREAM, **kw):
        return self.proc.WSASocket(AF_INET, type, 0, **kw)

    def bind(self, s, addr):
        self.proc.bind(s, addr)

    def listen(self, s, backlog):
        self.proc.listen(s, backlog)

    def getsockname(self, s):
        return self.proc.getsockname(s)

    def connect(self, s, addr):
        self.proc.connect(s, addr)

    def accept(self, s):
        return self.proc.accept(s)

    def recv(self, s, size=4096):
        """A WSARecv that cannot hang: select with a time-out first."""
        readable, _, _ = self.proc.select([s], [], [], 2.0)
        assert readable == [s], "nothing to receive within 2 s"
        buf = bytearray(size)
        rc, n, flags = self.proc.WSARecv(s, [buf])
        assert (rc, flags) == (0, 0)
        return bytes(buf[:n])

    def finish(self):
        """WSACleanup until Winsock is stopped, which must unload every
        provider of the stack; then Stack.finish()."""
        self.net.set_down(False)
        self.drain_apcs()
        while self.proc.wsa_started:
            self.proc.WSACleanup()
        assert not any(p.started for p in self.providers)
        super().finish()


# ------------------------------------------------------------------ helpers
def recv_now(prov, s, size=4096):
    """One blocking WSPRecv on `prov` that cannot hang: WSPSelect first."""
    readable, _, _ = prov.WSPSelect([s], [], [], 2.0)
    assert readable == [s], "nothing to receive within 2 s"
    buf = bytearray(size)
    rc, n, _ = prov.WSPRecv(s, [buf])
    assert rc == 0
    return bytes(buf[:n])


def recorder():
    """(calls, routine): a completion routine that appends
    (error, nbytes, overlapped, flags, thread ident) to `calls`."""
    calls = []

    def routine(error, nbytes, overlapped, flags):
        calls.append((error, nbytes, overlapped, flags, threading.get_ident()))
    return calls, routine


def wait_alertable(proc, predicate, seconds=2.0):
    """Alertable waits in this thread until predicate() holds: False if it
    still does not after `seconds`."""
    deadline = time.monotonic() + seconds
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        proc.SleepEx(min(2000, max(1, int(remaining * 1000))), True)
    return True


def run_threads(target, n=4):
    """Run `target` in `n` threads at once; they must all end within JOIN
    seconds.  Returns the threads."""
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
    assert not any(t.is_alive() for t in threads)
    return threads
