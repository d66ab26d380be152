"""The application-facing calls on Process (issue 5, part 2; SPEC §8):
WSAStartup/WSACleanup reference counting, providers loaded on first use and
cleaned up at the last WSACleanup, every call routed through the catalog to
the top of the matching chain, ThreadIds opened and closed for the caller,
and the LPWSPCleanup seed's semantics through the application API."""
from __future__ import annotations

import collections
import threading
import time

import pytest

import wsp
from lspkit import JOIN, LOCAL, AppStack, build_layers, recorder, recv_now, wait_alertable
from helpers import wait_condition_waiters, wait_until
from simkit import Sim, sim_socket, wait_blocked
from wsp import (AF_INET, FD_CLOSE, FD_READ, FD_WRITE, FIONBIO, FIONREAD, INVALID_SOCKET,
                 IPPROTO_TCP, SD_SEND, SO_LINGER, SO_RCVBUF, SO_SNDBUF, SO_TYPE, SOCK_DGRAM,
                 SOCK_STREAM, SOL_SOCKET, Linger, Overlapped, WinsockError)
from wsp.errors import (WAIT_TIMEOUT, WSA_INVALID_HANDLE, WSA_IO_INCOMPLETE, WSA_IO_PENDING,
                        WSA_OPERATION_ABORTED, WSA_WAIT_EVENT_0, WSA_WAIT_TIMEOUT,
                        WSAEAFNOSUPPORT, WSAECONNRESET, WSAEINVAL, WSAEINVALIDPROVIDER,
                        WSAENETDOWN, WSAENOTSOCK, WSAEPROTONOSUPPORT, WSAESOCKTNOSUPPORT,
                        WSANOTINITIALISED, WSAVERNOTSUPPORTED)
from wsp.lsp import LayeredProvider, LayerSocket

WAIT_MS = 2000

# Every WSP entry a counting layer records.
_COUNTED = ("WSPStartup", "WSPCleanup", "WSPSocket", "WSPCloseSocket", "WSPBind", "WSPListen",
            "WSPConnect", "WSPAccept", "WSPShutdown", "WSPGetSockName", "WSPGetPeerName",
            "WSPSetSockOpt", "WSPGetSockOpt", "WSPIoctl", "WSPEventSelect",
            "WSPEnumNetworkEvents", "WSPGetOverlappedResult", "WSPSelect", "WSPSend",
            "WSPSendTo", "WSPRecv", "WSPRecvFrom")


class CountingLayer(LayeredProvider):
    """A pass-through layer that counts the WSP calls it receives."""

    description = "counting layer"

    def __init__(self, lower, **kw):
        super().__init__(lower, **kw)
        self.calls = collections.Counter()


def _counting(name):
    def method(self, *args, **kwargs):
        self.calls[name] += 1
        return getattr(super(CountingLayer, self), name)(*args, **kwargs)
    method.__name__ = name
    return method


for _name in _COUNTED:
    setattr(CountingLayer, _name, _counting(_name))


class OuterLayer(CountingLayer):
    """A second layer class, so that a two-layer stack has two provider ids."""

    description = "outer counting layer"


class App(AppStack):
    """An lspkit.AppStack over `layers` (1 or more) counting layers
    (CountingLayer innermost, OuterLayer over it): its chains are installed
    ahead of the base entries (``base_entries``), and the application API
    drives it."""

    def __init__(self, net=None, layers=1):
        super().__init__(build_layers(CountingLayer, *[OuterLayer] * (layers - 1)), net=net)
        self.base_entries = [i for i in self.proc.catalog.entries()
                             if i.ProtocolChain.ChainLen == 1]


@pytest.fixture
def app():
    with App() as a:
        yield a


@pytest.fixture
def started(app):
    app.proc.WSAStartup(0x0202)
    return app


@pytest.fixture
def peer(app):
    """Another process on the same network (a started sim provider)."""
    p = Sim(app.net)
    yield p
    p.proc.terminate()


class _Call(threading.Thread):
    """Run a blocking call in a daemon thread; result() joins with a time-out."""

    def __init__(self, func, *args):
        super().__init__(daemon=True)
        self._func, self._args = func, args
        self._value = self._error = None
        self.start()

    def run(self):
        try:
            self._value = self._func(*self._args)
        except BaseException as exc:     # re-raised by result()
            self._error = exc

    def result(self, timeout=JOIN):
        self.join(timeout)
        assert not self.is_alive(), "the call did not return in time"
        if self._error is not None:
            raise self._error
        return self._value


# ---------------------------------------------------------- before WSAStartup
_CALLS = {
    "WSASocket": lambda p, s: p.WSASocket(AF_INET, SOCK_STREAM, 0),
    "closesocket": lambda p, s: p.closesocket(s),
    "bind": lambda p, s: p.bind(s, (LOCAL, 0)),
    "listen": lambda p, s: p.listen(s, 5),
    "connect": lambda p, s: p.connect(s, (LOCAL, 1)),
    "accept": lambda p, s: p.accept(s),
    "shutdown": lambda p, s: p.shutdown(s, SD_SEND),
    "getsockname": lambda p, s: p.getsockname(s),
    "getpeername": lambda p, s: p.getpeername(s),
    "setsockopt": lambda p, s: p.setsockopt(s, SOL_SOCKET, SO_RCVBUF, 10),
    "getsockopt": lambda p, s: p.getsockopt(s, SOL_SOCKET, SO_TYPE),
    "ioctlsocket": lambda p, s: p.ioctlsocket(s, FIONREAD),
    "WSAIoctl": lambda p, s: p.WSAIoctl(s, FIONBIO, 1),
    "WSAEventSelect": lambda p, s: p.WSAEventSelect(s, None, 0),
    "WSAEnumNetworkEvents": lambda p, s: p.WSAEnumNetworkEvents(s),
    "WSAGetOverlappedResult": lambda p, s: p.WSAGetOverlappedResult(s, Overlapped(), False),
    "select": lambda p, s: p.select([s], [], [], 0),
    "select-empty": lambda p, s: p.select([], [], [], 0),
    "WSASend": lambda p, s: p.WSASend(s, [b"x"]),
    "WSASendTo": lambda p, s: p.WSASendTo(s, [b"x"], 0, (LOCAL, 9)),
    "WSARecv": lambda p, s: p.WSARecv(s, [bytearray(4)]),
    "WSARecvFrom": lambda p, s: p.WSARecvFrom(s, [bytearray(4)]),
    "WSACleanup": lambda p, s: p.WSACleanup(),
}


@pytest.mark.parametrize("name", list(_CALLS))
def test_every_call_before_wsastartup_is_wsanotinitialised(app, name):
    with pytest.raises(WinsockError) as exc:
        _CALLS[name](app.proc, 4)
    assert exc.value.winerror == WSANOTINITIALISED
    assert not app.base.started and not app.top.started   # nothing was loaded


@pytest.mark.parametrize("name", list(_CALLS))
def test_every_call_after_the_last_wsacleanup_is_wsanotinitialised(app, name):
    proc = app.proc
    proc.WSAStartup()
    s = app.socket()
    proc.WSACleanup()
    with pytest.raises(WinsockError) as exc:
        _CALLS[name](proc, s)
    assert exc.value.winerror == WSANOTINITIALISED


def test_the_error_names_the_call(app):
    with pytest.raises(WinsockError) as exc:
        app.proc.closesocket(4)
    assert (exc.value.winerror, exc.value.funcname) == (WSANOTINITIALISED, "closesocket")
    with pytest.raises(WinsockError) as exc:
        app.proc.WSARecv(4, [bytearray(1)])
    assert (exc.value.winerror, exc.value.funcname) == (WSANOTINITIALISED, "WSARecv")
    app.proc.WSAStartup(0x0202)
    with pytest.raises(WinsockError) as exc:
        app.proc.closesocket(4)
    assert (exc.value.winerror, exc.value.funcname) == (WSAENOTSOCK, "closesocket")


def test_a_provider_started_directly_does_not_start_winsock(app):
    app.base.WSPStartup(0x0202, None, app.proc.upcalls)
    s = app.base.WSPSocket(AF_INET, SOCK_STREAM, 0)
    assert app.proc.initialised and not app.proc.wsa_started
    with pytest.raises(WinsockError) as exc:
        app.proc.getsockopt(s, SOL_SOCKET, SO_TYPE)
    assert exc.value.winerror == WSANOTINITIALISED
    app.base.WSPCloseSocket(s)
    app.base.WSPCleanup()


# ------------------------------------------------------------------ WSAStartup
@pytest.mark.parametrize("version", [0x0202, 0x0302, 0x0303, 0xFFFF])
def test_wsastartup_negotiates_2_2(app, version):
    data = app.proc.WSAStartup(version)
    assert isinstance(data, wsp.WSPData)
    assert (data.wVersion, data.wHighVersion) == (0x0202, 0x0202)
    assert app.proc.wsa_started
    app.proc.WSACleanup()
    assert not app.proc.wsa_started


@pytest.mark.parametrize("version", [0x0101, 0x0001, 0x0002, 0x0102, 0x0000, 0x0201, -1,
                                     0x10000])
def test_wsastartup_below_2_2_is_wsavernotsupported(app, version):
    with pytest.raises(WinsockError) as exc:
        app.proc.WSAStartup(version)
    assert exc.value.winerror == WSAVERNOTSUPPORTED
    assert not app.proc.wsa_started
    with pytest.raises(WinsockError) as exc:
        app.proc.WSACleanup()                    # the failed startup did not count
    assert exc.value.winerror == WSANOTINITIALISED


@pytest.mark.parametrize("version", ["2.2", 2.2, None, True, b"\x02\x02", [2, 2]])
def test_wsastartup_bad_types(app, version):
    with pytest.raises(TypeError):
        app.proc.WSAStartup(version)
    assert not app.proc.wsa_started


def test_wsastartup_default_version_is_2_2(app):
    assert app.proc.WSAStartup().wVersion == 0x0202
    app.proc.WSACleanup()


# --------------------------------------------------------- reference counting
def test_two_startups_need_two_cleanups(app):
    proc = app.proc
    proc.WSAStartup()
    proc.WSAStartup()
    s = app.socket()
    proc.WSACleanup()
    assert proc.wsa_started and app.top.started and app.base.started
    assert proc.getsockopt(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM    # still usable
    proc.WSACleanup()
    assert not proc.wsa_started and not app.top.started and not app.base.started
    with pytest.raises(WinsockError) as exc:
        proc.WSACleanup()
    assert exc.value.winerror == WSANOTINITIALISED
    res = proc.resources()
    assert res == dict.fromkeys(res, 0)


def test_wsacleanup_without_startup(app):
    with pytest.raises(WinsockError) as exc:
        app.proc.WSACleanup()
    assert exc.value.winerror == WSANOTINITIALISED
    assert exc.value.funcname == "WSACleanup"


def test_providers_load_on_first_wsasocket_and_clean_at_the_last_cleanup(app):
    proc, layer, base = app.proc, app.top, app.base
    proc.WSAStartup()
    assert not layer.started and not base.started and not proc.initialised
    assert layer.calls["WSPStartup"] == 0
    s1 = app.socket()
    assert layer.started and base.started and proc.initialised
    assert layer.calls["WSPStartup"] == 1
    s2 = app.socket()
    u = app.socket(SOCK_DGRAM)
    assert layer.calls["WSPStartup"] == 1            # loaded once
    assert layer.calls["WSPSocket"] == 3
    assert sorted(layer.sockets()) == sorted([s1, s2, u])
    assert proc.resources()["providers"] == 2
    proc.WSAStartup()
    proc.WSACleanup()
    assert layer.started and layer.calls["WSPCleanup"] == 0
    proc.WSACleanup()
    assert layer.calls["WSPCleanup"] == 1
    assert not layer.started and not base.started and not proc.initialised
    assert layer.sockets() == [] and base.sockets() == []
    res = proc.resources()
    assert res == dict.fromkeys(res, 0)


def test_startup_without_sockets_loads_nothing(app):
    app.proc.WSAStartup()
    app.proc.WSACleanup()
    assert app.top.calls["WSPStartup"] == 0 and app.top.calls["WSPCleanup"] == 0


def test_wsastartup_works_again_after_the_last_cleanup(app):
    proc = app.proc
    for _ in range(3):
        proc.WSAStartup()
        c, a, lst = app.pair()
        assert proc.resources()["sockets"] == 6     # 3 of the layer's, 3 of the base's
        proc.WSACleanup()
        res = proc.resources()
        assert res == dict.fromkeys(res, 0)
    assert app.top.calls["WSPStartup"] == 3 and app.top.calls["WSPCleanup"] == 3


# -------------------------------------------------------------------- routing
def test_wsasocket_reaches_the_top_of_the_chain(started):
    s = started.socket()
    ctx = started.proc.upcalls.WPUQuerySocketHandleContext(s)
    assert type(ctx) is LayerSocket and ctx.layer is started.top and ctx.handle == s
    assert started.top.calls["WSPSocket"] == 1


def test_every_call_is_routed_to_the_top_layer(started):
    proc, layer = started.proc, started.top

    def expect(name, call):
        before = layer.calls[name]
        result = call()
        assert layer.calls[name] == before + 1, name
        return result

    lst = expect("WSPSocket", lambda: started.socket())
    expect("WSPBind", lambda: proc.bind(lst, (LOCAL, 0)))
    expect("WSPListen", lambda: proc.listen(lst, 4))
    addr = expect("WSPGetSockName", lambda: proc.getsockname(lst))
    c = started.socket()
    expect("WSPConnect", lambda: proc.connect(c, addr))
    a, peer_addr = expect("WSPAccept", lambda: proc.accept(lst))
    assert expect("WSPGetPeerName", lambda: proc.getpeername(a)) == peer_addr
    expect("WSPSetSockOpt", lambda: proc.setsockopt(c, SOL_SOCKET, SO_SNDBUF, 8192))
    assert expect("WSPGetSockOpt", lambda: proc.getsockopt(c, SOL_SOCKET, SO_SNDBUF)) == 8192
    assert expect("WSPSend", lambda: proc.WSASend(c, [b"ping"])) == (0, 4)
    assert expect("WSPIoctl", lambda: proc.ioctlsocket(a, FIONREAD)) == 4
    assert expect("WSPIoctl", lambda: proc.WSAIoctl(a, FIONREAD)) == 4
    assert expect("WSPSelect", lambda: proc.select([a], [], [], 1.0)) == ([a], [], [])
    buf = bytearray(8)
    assert expect("WSPRecv", lambda: proc.WSARecv(a, [buf])) == (0, 4, 0)
    ov = Overlapped()
    assert expect("WSPRecv", lambda: proc.WSARecv(a, [buf], 0, ov)) == (WSA_IO_PENDING, 0, 0)
    with pytest.raises(WinsockError) as exc:
        expect("WSPGetOverlappedResult", lambda: proc.WSAGetOverlappedResult(a, ov, False))
    assert exc.value.winerror == WSA_IO_INCOMPLETE
    proc.WSASend(c, [b"pong"])
    assert proc.WSAGetOverlappedResult(a, ov, False) == (4, 0)
    ev = started.event()
    expect("WSPEventSelect", lambda: proc.WSAEventSelect(a, ev, FD_READ))
    assert expect("WSPEnumNetworkEvents", lambda: proc.WSAEnumNetworkEvents(a, ev)) == {}
    expect("WSPShutdown", lambda: proc.shutdown(c, SD_SEND))
    u1, u2 = started.socket(SOCK_DGRAM), started.socket(SOCK_DGRAM)
    proc.bind(u2, (LOCAL, 0))
    to = proc.getsockname(u2)
    assert expect("WSPSendTo", lambda: proc.WSASendTo(u1, [b"dg"], 0, to)) == (0, 2)
    rc, n, flags, src = expect("WSPRecvFrom", lambda: proc.WSARecvFrom(u2, [bytearray(8)]))
    assert (rc, n, flags, src) == (0, 2, 0, proc.getsockname(u1))
    for s in (c, a, lst, u1, u2):
        expect("WSPCloseSocket", lambda s=s: proc.closesocket(s))
    assert layer.sockets() == [] and started.base.sockets() == []


def test_routing_through_two_layers_reaches_both():
    with App(layers=2) as app:
        app.proc.WSAStartup()
        inner, outer = app.layers
        c, a, lst = app.pair()
        assert app.proc.WSASend(c, [b"two layers"]) == (0, 10)
        assert app.recv(a) == b"two layers"
        for layer in (inner, outer):
            assert layer.calls["WSPSend"] == 1 and layer.calls["WSPRecv"] == 1
            assert layer.calls["WSPSocket"] == 2 and layer.calls["WSPAccept"] == 1
        ctx = app.proc.upcalls.WPUQuerySocketHandleContext(c)
        assert ctx.layer is outer
        assert app.proc.upcalls.WPUQuerySocketHandleContext(ctx.lower).layer is inner
        assert app.chains[0].ProtocolChain.ChainLen == 3


def test_a_base_entry_chosen_with_protocol_info(started):
    proc, layer, base = started.proc, started.top, started.base
    tcp = next(i for i in started.base_entries if i.iSocketType == SOCK_STREAM)
    s = started.socket(protocol_info=tcp)
    ctx = proc.upcalls.WPUQuerySocketHandleContext(s)
    assert type(ctx).__name__ == "SimSocket"         # the base provider's own socket
    assert layer.calls["WSPSocket"] == 0 and not layer.started and base.started
    assert s in base.sockets()
    assert proc.getsockopt(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM
    proc.closesocket(s)
    assert base.sockets() == []


def test_protocol_info_of_a_chain_and_bad_protocol_infos(started):
    proc = started.proc
    dgram_chain = started.chains[1]
    u = started.socket(SOCK_DGRAM, protocol_info=dgram_chain)
    assert type(proc.upcalls.WPUQuerySocketHandleContext(u)) is LayerSocket
    layered = next(i for i in proc.catalog.entries() if i.layered)
    with pytest.raises(WinsockError) as exc:
        started.socket(protocol_info=layered)        # never chosen for a socket
    assert exc.value.winerror == WSAEINVALIDPROVIDER
    foreign = wsp.Process().catalog.install_base(started.base, AF_INET, SOCK_STREAM, 0)
    foreign.dwCatalogEntryId = 4242                 # an entry this catalog does not have
    with pytest.raises(WinsockError) as exc:
        started.socket(protocol_info=foreign)
    assert exc.value.winerror == WSAEINVALIDPROVIDER
    with pytest.raises(TypeError):
        started.socket(protocol_info=1001)


@pytest.mark.parametrize("triple, code", [
    ((23, SOCK_STREAM, 0), WSAEAFNOSUPPORT),
    ((AF_INET, 5, 0), WSAESOCKTNOSUPPORT),
    ((AF_INET, SOCK_STREAM, 17), WSAEPROTONOSUPPORT),
])
def test_wsasocket_without_a_matching_entry(started, triple, code):
    with pytest.raises(WinsockError) as exc:
        started.proc.WSASocket(*triple)
    assert exc.value.winerror == code
    assert not started.top.started                  # nothing was loaded for it


def test_wsasocket_with_an_empty_catalog():
    proc = wsp.Process()
    proc.WSAStartup()
    with pytest.raises(WinsockError) as exc:
        proc.WSASocket(AF_INET, SOCK_STREAM, IPPROTO_TCP)
    assert exc.value.winerror == WSAEAFNOSUPPORT
    proc.WSACleanup()


_HANDLE_CALLS = [n for n in _CALLS if n not in ("WSASocket", "WSACleanup", "select-empty")]


@pytest.mark.parametrize("name", _HANDLE_CALLS)
def test_unknown_handle_is_wsaenotsock(started, name):
    proc = started.proc
    live = started.socket()                         # the providers are loaded
    closed = started.socket()
    proc.closesocket(closed)
    ev = started.event()
    for bad in (12344, closed, ev, 0, INVALID_SOCKET):
        with pytest.raises(WinsockError) as exc:
            _CALLS[name](proc, bad)
        assert exc.value.winerror == WSAENOTSOCK, (name, bad)
    assert proc.getsockopt(live, SOL_SOCKET, SO_TYPE) == SOCK_STREAM


def test_a_handle_of_a_provider_outside_the_catalog_is_wsaenotsock(started):
    started.socket()
    foreign = started.proc.upcalls.WPUCreateSocketHandle(77, object())
    with pytest.raises(WinsockError) as exc:
        started.proc.closesocket(foreign)
    assert exc.value.winerror == WSAENOTSOCK
    started.proc.upcalls.WPUCloseSocketHandle(foreign)


def test_select_across_two_providers_is_wsaenotsock(started):
    tcp = next(i for i in started.base_entries if i.iSocketType == SOCK_STREAM)
    layered = started.socket()
    plain = started.socket(protocol_info=tcp)
    with pytest.raises(WinsockError) as exc:
        started.proc.select([layered, plain], [], [], 0)
    assert exc.value.winerror == WSAENOTSOCK
    with pytest.raises(WinsockError) as exc:
        started.proc.select([], [], [], 0)
    assert exc.value.winerror == WSAEINVAL


def test_open_sockets_keep_their_stack_after_the_entries_are_removed(started):
    proc = started.proc
    s = started.socket()
    for chain in started.chains:
        proc.catalog.remove(chain.dwCatalogEntryId)
    layered = next(i for i in proc.catalog.entries() if i.layered)
    proc.catalog.remove(layered.dwCatalogEntryId)
    assert proc.getsockopt(s, SOL_SOCKET, SO_TYPE) == SOCK_STREAM
    proc.closesocket(s)


def test_open_sockets_keep_their_stack_while_only_the_chain_is_removed(started):
    proc = started.proc
    c, a, lst = started.pair()
    proc.catalog.remove(started.chains[0].dwCatalogEntryId)
    assert proc.WSASend(c, [b"still layered"]) == (0, 13)
    assert started.recv(a) == b"still layered"
    assert started.top.calls["WSPSend"] == 1
    plain = started.socket()                        # new sockets get the base entry now
    assert type(proc.upcalls.WPUQuerySocketHandleContext(plain)).__name__ == "SimSocket"


def test_wsasocket_bad_family_type_is_a_type_error(started):
    with pytest.raises(TypeError):
        started.proc.WSASocket("2", SOCK_STREAM, 0)


# ------------------------------------------------------------------ exchanges
def test_tcp_exchange_through_a_one_layer_stack(started, peer):
    proc = started.proc
    c, a, lst = started.pair()
    assert proc.getpeername(c) == proc.getsockname(a)
    assert proc.getpeername(a) == proc.getsockname(c)
    assert proc.WSASend(c, [b"hello ", bytearray(b"world")]) == (0, 11)
    assert started.recv(a) == b"hello world"
    assert proc.WSASend(a, [memoryview(b"reply")]) == (0, 5)
    assert started.recv(c) == b"reply"
    proc.shutdown(c, SD_SEND)
    assert started.recv(a) == b""                    # graceful end of stream
    # a peer process (no layers) talks to the layered application
    lst2, addr = started.listener()
    pc = peer.socket()
    peer.prov.WSPConnect(pc, addr)
    pa, _ = proc.accept(lst2)
    peer.prov.WSPSend(pc, [b"from the peer"])
    assert started.recv(pa) == b"from the peer"
    proc.WSASend(pa, [b"to the peer"])
    assert recv_now(peer.prov, pc) == b"to the peer"
    for s in (c, a, lst, pa, lst2):
        proc.closesocket(s)
    assert recv_now(peer.prov, pc) == b""
    peer.prov.WSPCloseSocket(pc)
    assert started.top.sockets() == [] and started.base.sockets() == []


def test_udp_exchange_through_a_one_layer_stack(started):
    proc = started.proc
    u1, u2 = started.socket(SOCK_DGRAM), started.socket(SOCK_DGRAM)
    proc.bind(u1, (LOCAL, 0))
    proc.bind(u2, (LOCAL, 0))
    a1, a2 = proc.getsockname(u1), proc.getsockname(u2)
    assert proc.WSASendTo(u1, [b"one"], 0, a2) == (0, 3)
    assert proc.WSASendTo(u1, [b"two!"], 0, a2) == (0, 4)
    buf = bytearray(16)
    assert proc.WSARecvFrom(u2, [buf]) == (0, 3, 0, a1)
    assert bytes(buf[:3]) == b"one"
    assert proc.WSARecvFrom(u2, [buf]) == (0, 4, 0, a1)
    # overlapped, through a completion port
    port = started.port(u1, key=21)
    ov, rbuf = Overlapped(), bytearray(8)
    assert proc.WSARecvFrom(u1, [rbuf], 0, ov) == (WSA_IO_PENDING, 0, 0, None)
    proc.WSASendTo(u2, [b"back"], 0, a1)
    assert proc.GetQueuedCompletionStatus(port, WAIT_MS) == (0, 4, 21, ov)
    assert bytes(rbuf[:4]) == b"back"
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    # connected datagram sockets: WSASend/WSARecv
    proc.connect(u2, a1)
    assert proc.WSASend(u2, [b"conn"]) == (0, 4)
    assert proc.WSARecv(u1, [rbuf]) == (0, 4, 0)
    proc.closesocket(u1)
    proc.closesocket(u2)


# ------------------------------------------------------ completion routines
def test_wsarecv_routine_runs_on_the_calling_thread_and_closes_its_threadid(started):
    proc = started.proc
    c, a, lst = started.pair()
    calls, routine = recorder()
    ov, buf = Overlapped(), bytearray(16)
    assert proc.WSARecv(a, [buf], 0, ov, routine) == (WSA_IO_PENDING, 0, 0)
    assert proc.resources()["overlapped_pending"] >= 1
    proc.WSASend(c, [b"routine"])
    assert calls == []                                 # only in an alertable wait
    assert wait_alertable(proc, lambda: calls)
    assert calls == [(0, 7, ov, 0, threading.get_ident())]
    assert bytes(buf[:7]) == b"routine" and ov.Internal == 0 and ov.InternalHigh == 7
    assert proc.SleepEx(0, True) == 0                  # exactly once
    res = proc.resources()
    assert res["threads"] == 0 and res["overlapped_pending"] == 0
    assert res["overlapped_undelivered"] == 0


def test_routine_of_a_request_made_on_another_thread_runs_there(started):
    proc = started.proc
    c, a, lst = started.pair()
    ready, done = threading.Event(), threading.Event()
    result = {}

    def requester():
        calls, routine = recorder()
        result["ov"] = ov = Overlapped()
        assert proc.WSARecv(a, [bytearray(8)], 0, ov, routine) == (WSA_IO_PENDING, 0, 0)
        ready.set()
        result["ok"] = wait_alertable(proc, lambda: calls)
        result["calls"] = calls
        result["me"] = threading.get_ident()
        done.set()

    t = threading.Thread(target=requester, daemon=True)
    t.start()
    assert ready.wait(JOIN)
    proc.WSASend(c, [b"xyz"])
    assert proc.SleepEx(100, True) == 0                # nothing for this thread
    assert done.wait(JOIN)
    t.join(JOIN)
    assert result["ok"] is True
    assert result["calls"] == [(0, 3, result["ov"], 0, result["me"])]
    assert result["me"] != threading.get_ident()
    assert proc.resources()["threads"] == 0


def test_wsasend_and_wsaioctl_with_routines(started):
    proc = started.proc
    c, a, lst = started.pair()
    calls, routine = recorder()
    ov1, ov2 = Overlapped(), Overlapped()
    assert proc.WSASend(c, [b"abc"], 0, ov1, routine) == (0, 3)
    proc.WSAIoctl(a, FIONREAD, None, ov2, routine)
    assert wait_alertable(proc, lambda: len(calls) == 2)
    assert [(e, n, o) for e, n, o, _, _ in calls] == [(0, 3, ov1), (0, 0, ov2)]
    assert proc.SleepEx(0, True) == 0
    assert proc.resources()["threads"] == 0


def test_routine_on_a_port_associated_socket_is_wsaeinval(started):
    proc = started.proc
    c, a, lst = started.pair()
    port = started.port(a, key=1)
    calls, routine = recorder()
    ov = Overlapped()
    with pytest.raises(WinsockError) as exc:
        proc.WSARecv(a, [bytearray(4)], 0, ov, routine)
    assert exc.value.winerror == WSAEINVAL
    assert not ov.pending
    res = proc.resources()
    assert res["threads"] == 0 and res["overlapped_pending"] == 0
    proc.WSASend(c, [b"data"])
    assert proc.SleepEx(0, True) == 0 and calls == []
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert started.recv(a) == b"data"                   # the data was not taken


# ----------------------------------------------------- WSAGetOverlappedResult
def test_wsagetoverlappedresult(started):
    proc = started.proc
    c, a, lst = started.pair()
    ov, buf = Overlapped(), bytearray(8)
    proc.WSARecv(a, [buf], 0, ov)
    with pytest.raises(WinsockError) as exc:
        proc.WSAGetOverlappedResult(a, ov, False)
    assert exc.value.winerror == WSA_IO_INCOMPLETE
    waiter = _Call(proc.WSAGetOverlappedResult, a, ov, True)       # waits
    # proof that it waits: parked on the operation's threading.Event
    op = ov.operation
    wait_until(lambda: op.event is not None, what="the wait's event")
    wait_condition_waiters(op.event._cond, what="the operation's event")
    assert waiter.is_alive()
    proc.WSASend(c, [b"later"])
    assert waiter.result() == (5, 0)
    assert bytes(buf[:5]) == b"later"
    assert proc.WSAGetOverlappedResult(a, ov, False) == (5, 0)        # again: same answer
    # a failed operation reports its error
    ov2 = Overlapped()
    proc.WSARecv(a, [buf], 0, ov2)
    proc.setsockopt(c, SOL_SOCKET, SO_LINGER, Linger(1, 0))
    proc.closesocket(c)                                               # reset
    with pytest.raises(WinsockError) as exc:
        proc.WSAGetOverlappedResult(a, ov2, False)
    assert exc.value.winerror == WSAECONNRESET
    with pytest.raises(WinsockError) as exc:
        proc.WSAGetOverlappedResult(c, ov2, False)                   # closed handle
    assert exc.value.winerror == WSAENOTSOCK


# --------------------------------------------------------------------- select
def test_select(started):
    proc = started.proc
    c, a, lst = started.pair()
    assert proc.select([a], [], [], 0) == ([], [], [])
    assert proc.select([a], [a, c], [], 0) == ([], [a, c], [])
    t0 = time.monotonic()
    assert proc.select([a], [], [], 0.1) == ([], [], [])
    assert time.monotonic() - t0 >= 0.09
    proc.WSASend(c, [b"r"])
    assert proc.select([a, c], [], [], 1.0) == ([a], [], [])
    c2 = started.socket()
    proc.connect(c2, proc.getsockname(lst))
    assert proc.select([lst], [], [], 1.0) == ([lst], [], [])   # a pending accept
    a2, _ = proc.accept(lst)
    selecting = _Call(proc.select, [c2], [], [], 5.0)
    wait_blocked(sim_socket(proc, c2))            # the select waits on c2
    proc.WSASend(a2, [b"wake"])
    assert selecting.result() == ([c2], [], [])  # woken by the data, not the time-out


# ------------------------------------------- WSAEventSelect / WSAEnumNetworkEvents
def test_event_select_and_enum_network_events(started):
    proc = started.proc
    c, a, lst = started.pair()
    ev = started.event()
    proc.WSAEventSelect(a, ev, FD_READ | FD_CLOSE)
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_TIMEOUT
    assert proc.WSAEnumNetworkEvents(a, ev) == {}
    proc.WSASend(c, [b"evt"])
    assert proc.WSAWaitForMultipleEvents([ev], False, WAIT_MS, False) == WSA_WAIT_EVENT_0
    assert proc.WSAEnumNetworkEvents(a, ev) == {FD_READ: 0}
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_TIMEOUT  # reset
    assert proc.ioctlsocket(a, FIONREAD) == 3
    proc.closesocket(c)
    assert proc.WSAWaitForMultipleEvents([ev], False, WAIT_MS, False) == WSA_WAIT_EVENT_0
    assert proc.WSAEnumNetworkEvents(a, ev) == {FD_CLOSE: 0}
    ev2 = started.event()
    c3 = started.socket()
    proc.connect(c3, proc.getsockname(lst))
    a3, _ = proc.accept(lst)
    proc.WSAEventSelect(c3, ev2, FD_WRITE)           # already writable: recorded at once
    assert proc.WSAWaitForMultipleEvents([ev2], False, 0, False) == WSA_WAIT_EVENT_0
    assert proc.WSAEnumNetworkEvents(c3) == {FD_WRITE: 0}
    with pytest.raises(WinsockError) as exc:
        proc.WSAEventSelect(a, 999999, FD_READ)
    assert exc.value.winerror == WSA_INVALID_HANDLE


# ---------------------------------------------------- WSACleanup: seed semantics
def test_wsacleanup_follows_the_cleanup_seed(app, peer):
    proc = app.proc
    proc.WSAStartup()
    lst, addr = peer.listener()
    # 1. an open connection with pending requests in every completion mode
    c1 = app.socket()
    proc.connect(c1, addr)
    p1, _ = peer.prov.WSPAccept(lst)
    c2 = app.socket()
    proc.connect(c2, addr)
    p2, _ = peer.prov.WSPAccept(lst)
    port, ev = app.port(c2, key=5), app.event()
    calls, routine = recorder()
    ov_ev, ov_port, ov_rt = Overlapped(ev), Overlapped(), Overlapped()
    assert proc.WSARecv(c1, [bytearray(8)], 0, ov_ev)[0] == WSA_IO_PENDING
    assert proc.WSARecv(c2, [bytearray(8)], 0, ov_port)[0] == WSA_IO_PENDING
    u = app.socket(SOCK_DGRAM)
    proc.bind(u, (LOCAL, 0))
    assert proc.WSARecvFrom(u, [bytearray(8)], 0, ov_rt, routine)[0] == WSA_IO_PENDING
    # 2. a socket closed gracefully while its data still waits for room at the peer
    peer.prov.WSPSetSockOpt(lst, SOL_SOCKET, SO_RCVBUF, 1000)
    c3 = app.socket()
    proc.setsockopt(c3, SOL_SOCKET, SO_SNDBUF, 1 << 20)
    proc.connect(c3, addr)
    p3, _ = peer.prov.WSPAccept(lst)
    payload = bytes(range(256)) * 40                    # 10240 bytes, 1000 fit at the peer
    assert proc.WSASend(c3, [payload]) == (0, len(payload))
    proc.closesocket(c3)                                # SO_DONTLINGER: lingers, delivering
    assert app.net.lingering == 1

    proc.WSACleanup()

    # pending requests: aborted, silently
    for ov in (ov_ev, ov_port, ov_rt):
        assert ov.Internal == WSA_OPERATION_ABORTED and not ov.pending
    assert proc.WSAWaitForMultipleEvents([ev], False, 0, False) == WSA_WAIT_TIMEOUT
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert proc.SleepEx(0, True) == 0 and calls == []
    # open sockets: reset, the peer in the other process sees it
    for p in (p1, p2):
        with pytest.raises(WinsockError) as exc:
            peer.prov.WSPRecv(p, [bytearray(8)])
        assert exc.value.winerror == WSAECONNRESET
    # the closed, lingering socket: still delivers everything, then a graceful close
    got = bytearray()
    while True:
        chunk = recv_now(peer.prov, p3, 4096)
        if not chunk:
            break
        got += chunk
    assert bytes(got) == payload
    # everything released; events and ports stay the application's
    assert app.top.sockets() == [] and app.base.sockets() == []
    assert not app.top.started and not app.base.started
    res = proc.resources()
    assert res == dict(sockets=0, events=1, ports=1, threads=0, overlapped_pending=0,
                       overlapped_undelivered=0, providers=0)
    # WSAStartup works again at once, with a clean table
    proc.WSAStartup()
    s = app.socket()
    proc.connect(s, addr)
    ps, _ = peer.prov.WSPAccept(lst)
    proc.WSASend(s, [b"again"])
    assert recv_now(peer.prov, ps) == b"again"
    assert proc.resources()["sockets"] == 2 and app.top.sockets() == [s]
    proc.WSACleanup()
    for h in (p1, p2, p3, ps, lst):
        peer.prov.WSPCloseSocket(h)


@pytest.mark.parametrize("base_loaded", [False, True], ids=["layer-only", "base-also-loaded"])
def test_wsacleanup_while_the_network_is_down_changes_nothing(app, peer, base_loaded):
    proc = app.proc
    proc.WSAStartup()
    if base_loaded:
        tcp = next(i for i in app.base_entries if i.iSocketType == SOCK_STREAM)
        plain = app.socket(protocol_info=tcp)    # loads the base provider for the application
    lst, addr = peer.listener()
    c = app.socket()                             # through the layer
    proc.connect(c, addr)
    p, _ = peer.prov.WSPAccept(lst)
    ev = app.event()
    ov, buf = Overlapped(ev), bytearray(8)
    assert proc.WSARecv(c, [buf], 0, ov)[0] == WSA_IO_PENDING
    before = proc.resources()
    app.net.set_down(True)
    with pytest.raises(WinsockError) as exc:
        proc.WSACleanup()
    assert exc.value.winerror == WSAENETDOWN
    assert proc.wsa_started and app.top.started and app.base.started
    assert proc.resources() == before and ov.pending
    assert app.top.sockets() == [c]
    app.net.set_down(False)
    peer.prov.WSPSend(p, [b"alive"])                      # the request is still there
    assert proc.WSAWaitForMultipleEvents([ev], False, WAIT_MS, False) == WSA_WAIT_EVENT_0
    assert (ov.Internal, ov.InternalHigh, bytes(buf[:5])) == (0, 5, b"alive")
    assert proc.resources() == {**before, "overlapped_pending": 0}   # the receive completed
    if base_loaded:
        proc.closesocket(plain)
    proc.WSACleanup()                                      # now it works
    assert not proc.wsa_started and not app.top.started and not app.base.started
    with pytest.raises(WinsockError) as exc:
        peer.prov.WSPRecv(p, [bytearray(8)])
    assert exc.value.winerror == WSAECONNRESET
    peer.prov.WSPCloseSocket(p)
    peer.prov.WSPCloseSocket(lst)


def test_wsacleanup_network_down_with_a_count_still_outstanding(app):
    """A WSACleanup that only decrements the count needs no network."""
    proc = app.proc
    proc.WSAStartup()
    proc.WSAStartup()
    app.socket()
    app.net.set_down(True)
    proc.WSACleanup()
    assert proc.wsa_started and app.top.started
    with pytest.raises(WinsockError) as exc:
        proc.WSACleanup()
    assert exc.value.winerror == WSAENETDOWN
    app.net.set_down(False)
    proc.WSACleanup()
    assert not app.top.started
