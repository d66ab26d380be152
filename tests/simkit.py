"""Building blocks for tests over the simulated network: ``Sim`` (one
Process with a started stack of zero or more wsp.lsp.LayeredProvider layers
over a wsp.sim.Provider), ``stack`` (such a stack, not started), ``connect``
(a connected pair, possibly across two processes), ``recv_all``, and
``sim_socket``/``wait_blocked`` (proof that a thread is blocked in a call on a
socket)."""
from __future__ import annotations

from helpers import wait_until

import wsp
import wsp.sim
from wsp import AF_INET, SO_LINGER, SO_RCVBUF, SOCK_STREAM, SOL_SOCKET, Linger
from wsp.lsp import LayeredProvider, LayerSocket
from wsp.sim.socket import SimSocket

LOCAL = "127.0.0.1"

#: the stack depths the behavioural tests run on, and their test ids
DEPTHS = (0, 1, 2)
DEPTH_IDS = {0: "base", 1: "1layer", 2: "2layers"}


def stack(base, layers):
    """`layers` LayeredProviders over the provider `base` (not started): the top."""
    prov = base
    for _ in range(layers):
        prov = LayeredProvider(prov)
    return prov


class Sim:
    """One Process with a started stack on a Network (a new one unless `net`
    is given): `layers` LayeredProviders over a wsp.sim.Provider.  `base` is
    the wsp.sim.Provider, `prov` the top of the stack (what an application
    calls; `base` itself when `layers` is 0)."""

    def __init__(self, net=None, seed=0, layers=0):
        self.net = net if net is not None else wsp.sim.Network(seed=seed)
        self.proc = wsp.Process()
        self.layers = layers
        self.base = wsp.sim.Provider(self.net)
        self.prov = stack(self.base, layers)
        self.prov.WSPStartup(0x0202, None, self.proc.upcalls)
        self.events = []
        self.ports = []

    def entries(self, n):
        """What `n` application sockets (or overlapped requests) occupy in
        the process's tables: the base provider's, and one more per layer
        (each layer has handles and requests of its own)."""
        return n * (self.layers + 1)

    def socket(self, type=SOCK_STREAM):
        return self.prov.WSPSocket(AF_INET, type, 0)

    def listener(self, addr=(LOCAL, 0), backlog=16):
        s = self.socket()
        self.prov.WSPBind(s, addr)
        self.prov.WSPListen(s, backlog)
        return s, self.prov.WSPGetSockName(s)

    def pair(self):
        """(client, accepted server socket, listener)."""
        lst, addr = self.listener()
        c = self.socket()
        self.prov.WSPConnect(c, addr)
        a, _ = self.prov.WSPAccept(lst)
        return c, a, lst

    def event(self):
        ev = self.proc.WSACreateEvent()
        self.events.append(ev)
        return ev

    def port(self):
        p = self.proc.CreateIoCompletionPort(None)
        self.ports.append(p)
        return p

    def linger(self, s, onoff, seconds):
        self.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_LINGER, Linger(onoff, seconds))

    def recv(self, s, size=4096):
        """One blocking receive: the bytes it returned."""
        buf = bytearray(size)
        rc, n, _ = self.prov.WSPRecv(s, [buf])
        assert rc == 0
        return bytes(buf[:n])

    def signalled(self, ev):
        return self.proc.WSAWaitForMultipleEvents([ev], False, 0, False) == wsp.WSA_WAIT_EVENT_0

    def clean(self):
        return all(v == 0 for v in self.proc.resources().values())

    def close(self):
        """Close everything and check that nothing is left behind."""
        self.net.set_down(False)
        if self.prov.started:
            for s in self.prov.sockets():
                try:
                    self.prov.WSPCloseSocket(s)
                except wsp.WinsockError:
                    pass
        while self.proc.SleepEx(0, True) == wsp.WAIT_IO_COMPLETION:
            pass                                   # completion routines queued to us
        for p in self.ports:
            self.proc.CloseHandle(p)
        for ev in self.events:
            self.proc.WSACloseEvent(ev)
        self.ports, self.events = [], []
        while self.prov.started:
            self.prov.WSPCleanup()
        res = self.proc.resources()
        assert res == dict.fromkeys(res, 0), res


def connect(client, server=None, rcvbuf=None):
    """A connected pair across `client` and `server` (default: the same
    Sim): (client socket, accepted server socket, listener).  `rcvbuf` sets
    the server side's SO_RCVBUF (through the listener)."""
    server = server or client
    listener, addr = server.listener()
    if rcvbuf is not None:
        server.prov.WSPSetSockOpt(listener, SOL_SOCKET, SO_RCVBUF, rcvbuf)
    c = client.socket()
    client.prov.WSPConnect(c, addr)
    a, _ = server.prov.WSPAccept(listener)
    return c, a, listener


def recv_all(prov, s, n, chunk=4096):
    """Blocking receives until `n` bytes have arrived."""
    out = bytearray()
    while len(out) < n:
        buf = bytearray(min(chunk, n - len(out)))
        rc, got, _ = prov.WSPRecv(s, [buf])
        assert rc == 0 and got > 0
        out += buf[:got]
    return bytes(out)


def sim_socket(proc, s):
    """The wsp.sim SimSocket at the bottom of `proc`'s socket handle `s`
    (through any layers).  Take it while `s` is open: it stays usable after
    the handle is closed."""
    ctx = proc.upcalls.WPUQuerySocketHandleContext(s)
    while type(ctx) is LayerSocket:
        ctx = proc.upcalls.WPUQuerySocketHandleContext(ctx.lower)
    assert type(ctx) is SimSocket, ctx
    return ctx


def blocked_on(sock):
    """How many threads wait on the SimSocket `sock` now.  Read under the
    network lock: a blocking call counts itself in ``watchers`` and keeps
    the lock until its Condition.wait releases it, so every thread counted
    here is inside that wait -- really blocked, not just about to be."""
    with sock.network.lock:
        return sock.watchers


def wait_blocked(sock, n=1, timeout=10.0):
    """Wait until at least `n` threads are blocked on the SimSocket `sock`
    (a blocking receive, send, accept, connect, linger close or select)."""
    return wait_until(lambda: blocked_on(sock) >= n, timeout,
                      f"{n} thread(s) blocked on {sock.local}")
