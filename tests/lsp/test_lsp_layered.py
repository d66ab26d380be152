"""wsp.lsp.LayeredProvider (issue 5, part 3; SPEC §8): a non-IFS layer with
its own handles over the lower provider's sockets, its own overlapped
requests relayed to the application's completion action exactly once, a
worker thread that passes the application's ThreadId down, and the seed
rules (WPUCloseSocketHandle, WPUOpenCurrentThread/WPUCloseThread,
LPWSPCloseSocket, LPWSPCleanup) through any stack of layers."""
from __future__ import annotations

import threading

import pytest

import wsp
import wsp.sim
from helpers import wait_until
from lspkit import JOIN, AppStack, Stack, build_layers, recorder, recv_now, wait_alertable
from simkit import sim_socket, wait_blocked
from wsp import (AF_INET, CF_ACCEPT, FIONBIO, SD_SEND, SO_LINGER, SO_RCVBUF, SO_SNDBUF,
                 SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, Linger, Overlapped, ThreadId, UpcallTable,
                 WinsockError)
from wsp.errors import (WAIT_TIMEOUT, WSA_IO_INCOMPLETE, WSA_IO_PENDING, WSA_OPERATION_ABORTED,
                        WSA_WAIT_EVENT_0, WSAECONNABORTED, WSAECONNRESET, WSAEINPROGRESS,
                        WSAEINTR, WSAEINVAL, WSAENOTCONN, WSAENOTSOCK, WSAEWOULDBLOCK,
                        WSANOTINITIALISED)
from wsp.lsp import LayeredProvider, LayerSocket

WAIT_MS = 2000


class InnerLayer(LayeredProvider):
    description = "inner layer"


class OuterLayer(LayeredProvider):
    description = "outer layer"


def stack_of(depth=1, worker=False, top_cls=None):
    """A started lspkit.Stack of `depth` layers of distinct classes over a
    wsp.sim.Provider: InnerLayer innermost, OuterLayer over it (`top_cls`, if
    given, for the top one)."""
    classes = [InnerLayer] + [OuterLayer] * (depth - 1)
    if top_cls is not None:
        classes[-1] = top_cls
    return Stack(build_layers(*classes, worker=worker))


@pytest.fixture
def stack():
    with stack_of() as st:
        yield st


@pytest.fixture
def stack2():
    with stack_of(depth=2) as st:
        yield st


@pytest.fixture
def wstack():
    with stack_of(worker=True) as st:
        yield st


@pytest.fixture
def peer():
    """Another process on the same network as the test's stack; made on
    demand with peer(net)."""
    made = []

    def make(net):
        from simkit import Sim
        p = Sim(net)
        made.append(p)
        return p
    yield make
    for p in made:
        p.proc.terminate()


def _notsock(proc, s):
    with pytest.raises(WinsockError) as exc:
        proc.upcalls.WPUQuerySocketHandleContext(s)
    return exc.value.winerror == WSAENOTSOCK


# ------------------------------------------------------------------- own handles
def test_layer_sockets_are_its_own_handles(stack):
    s = stack.socket()
    ctx = stack.ctx(s)
    assert type(ctx) is LayerSocket
    assert ctx.layer is stack.top and ctx.handle == s
    assert ctx.lower != s and ctx.lower in stack.base.sockets()
    assert type(stack.ctx(ctx.lower)).__name__ == "SimSocket"
    assert stack.top.sockets() == [s] and stack.base.sockets() == [ctx.lower]
    assert stack.proc.resources()["sockets"] == 2
    u = stack.socket(SOCK_DGRAM)
    assert len({s, u, ctx.lower, stack.ctx(u).lower}) == 4
    stack.top.WSPCloseSocket(u)
    stack.top.WSPCloseSocket(s)


def test_accepted_sockets_are_wrapped_too(stack2):
    c, a, lst = stack2.pair()
    for s in (c, a, lst):
        chain = stack2.chain_of(s)
        assert len(chain) == 3 and len(set(chain)) == 3
        assert stack2.ctx(chain[0]).layer is stack2.top
        assert stack2.ctx(chain[1]).layer is stack2.layers[0]
        assert chain[2] in stack2.base.sockets()
    assert sorted(stack2.top.sockets()) == sorted([c, a, lst])
    assert stack2.proc.resources()["sockets"] == 9


def test_a_lower_handle_is_not_a_socket_of_the_layer(stack):
    s = stack.socket()
    lower = stack.ctx(s).lower
    with pytest.raises(WinsockError) as exc:
        stack.top.WSPGetSockOpt(lower, SOL_SOCKET, SO_SNDBUF)
    assert exc.value.winerror == WSAENOTSOCK
    with pytest.raises(WinsockError) as exc:
        stack.top.WSPCloseSocket(12344)
    assert exc.value.winerror == WSAENOTSOCK
    stack.top.WSPCloseSocket(s)


def test_a_layer_of_another_stack_does_not_take_our_handles(stack):
    s = stack.socket()
    other = LayeredProvider(stack.base)
    other.WSPStartup(0x0202, None, stack.proc.upcalls)
    with pytest.raises(WinsockError) as exc:
        other.WSPCloseSocket(s)
    assert exc.value.winerror == WSAENOTSOCK
    other.WSPCleanup()
    assert stack.ctx(s).layer is stack.top
    stack.top.WSPCloseSocket(s)


def test_calls_before_startup_are_wsanotinitialised():
    layer = LayeredProvider(wsp.sim.Provider(wsp.sim.Network()))
    for call in (lambda: layer.WSPSocket(AF_INET, SOCK_STREAM, 0),
                 lambda: layer.WSPCloseSocket(4), lambda: layer.WSPRecv(4, [bytearray(1)]),
                 lambda: layer.WSPCleanup()):
        with pytest.raises(WinsockError) as exc:
            call()
        assert exc.value.winerror == WSANOTINITIALISED


def test_startup_starts_the_lower_provider_and_cleanup_stops_it():
    with stack_of(depth=2) as st:
        assert all(p.started for p in (st.top, st.layers[0], st.base))
        assert st.proc.resources()["providers"] == 3
        st.top.WSPStartup(0x0202, None, st.proc.upcalls)          # counted
        st.top.WSPCleanup()
        assert st.base.started
        st.top.WSPCleanup()
        assert not any(p.started for p in (st.top, st.layers[0], st.base))
        assert not st.proc.initialised


# ------------------------------------------------------------- close and release
def test_close_at_the_top_releases_every_layers_handle(stack2, peer):
    p = peer(stack2.net)
    lst, addr = p.listener()
    c = stack2.socket()
    stack2.top.WSPConnect(c, addr)
    pa, _ = p.prov.WSPAccept(lst)
    handles = stack2.chain_of(c)
    assert len(handles) == 3
    stack2.top.WSPSend(c, [b"last words"])
    stack2.top.WSPCloseSocket(c)
    for h in handles:
        assert _notsock(stack2.proc, h), h
    assert stack2.top.sockets() == [] and stack2.layers[0].sockets() == []
    assert stack2.base.sockets() == []
    assert stack2.proc.resources()["sockets"] == 0
    with pytest.raises(WinsockError) as exc:
        stack2.top.WSPCloseSocket(c)                               # a second close
    assert exc.value.winerror == WSAENOTSOCK
    with pytest.raises(WinsockError) as exc:
        stack2.top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAENOTSOCK
    with pytest.raises(WinsockError) as exc:
        stack2.proc.upcalls.WPUCloseSocketHandle(handles[0])      # the layer closed it
    assert exc.value.winerror == WSAENOTSOCK
    # graceful: the data, then the end of the stream
    assert recv_now(p.prov, pa) == b"last words"
    assert recv_now(p.prov, pa) == b""
    p.prov.WSPCloseSocket(pa)
    p.prov.WSPCloseSocket(lst)


def test_hard_close_through_the_stack_resets_the_peer(stack2, peer):
    p = peer(stack2.net)
    lst, addr = p.listener()
    c = stack2.socket()
    stack2.top.WSPConnect(c, addr)
    pa, _ = p.prov.WSPAccept(lst)
    stack2.top.WSPSetSockOpt(c, SOL_SOCKET, SO_LINGER, Linger(1, 0))
    assert stack2.top.WSPGetSockOpt(c, SOL_SOCKET, SO_LINGER) == Linger(1, 0)
    stack2.top.WSPCloseSocket(c)
    with pytest.raises(WinsockError) as exc:
        p.prov.WSPRecv(pa, [bytearray(4)])
    assert exc.value.winerror == WSAECONNRESET


def _undelivered(st):
    """A connected pair whose client `c` has data it cannot deliver: the
    peer's receive window and the client's send buffer are small."""
    c, a, lst = st.pair()
    st.top.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 64)
    st.top.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 64)
    st.top.WSPIoctl(c, FIONBIO, 1)
    rc, n = st.top.WSPSend(c, [bytes(1000)])
    assert (rc, n) == (0, 128)                             # 64 at the peer, 64 buffered
    with pytest.raises(WinsockError) as exc:
        st.top.WSPSend(c, [bytes(100)])
    assert exc.value.winerror == WSAEWOULDBLOCK            # really full
    st.top.WSPSetSockOpt(c, SOL_SOCKET, SO_LINGER, Linger(1, 5))
    return c, a, lst, n


@pytest.mark.parametrize("then", ["linger-zero", "dontlinger", "shutdown"])
def test_lower_close_failure_leaves_the_top_handle_valid(stack2, then):
    st = stack2
    c, a, lst, sent = _undelivered(st)
    handles = st.chain_of(c)
    for _ in range(2):                                     # keeps failing, without waiting
        with pytest.raises(WinsockError) as exc:
            st.top.WSPCloseSocket(c)
        assert exc.value.winerror == WSAEWOULDBLOCK
    assert st.chain_of(c) == handles                       # every handle still valid
    assert c in st.top.sockets()
    assert st.top.WSPGetSockOpt(c, SOL_SOCKET, SO_LINGER) == Linger(1, 5)
    assert st.top.WSPGetPeerName(c) == st.top.WSPGetSockName(a)   # no disconnect started
    if then == "linger-zero":
        st.top.WSPSetSockOpt(c, SOL_SOCKET, SO_LINGER, Linger(1, 0))
    elif then == "dontlinger":
        st.top.WSPSetSockOpt(c, SOL_SOCKET, wsp.SO_DONTLINGER, True)
    else:
        st.top.WSPShutdown(c, SD_SEND)
    st.top.WSPCloseSocket(c)
    for h in handles:
        assert _notsock(st.proc, h)
    if then == "linger-zero":
        with pytest.raises(WinsockError) as exc:
            st.top.WSPRecv(a, [bytearray(2000)])
        assert exc.value.winerror == WSAECONNRESET
    else:                                                  # graceful: everything arrives
        st.top.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 1 << 16)
        got = 0
        while True:
            chunk = recv_now(st.top, a)
            if not chunk:
                break
            got += len(chunk)
        assert got == sent


def test_close_from_the_accept_condition_is_wsaeinprogress(stack):
    lst, addr = stack.listener()
    c = stack.socket()
    stack.top.WSPConnect(c, addr)
    seen = []

    def condition(caller, callee, data):
        with pytest.raises(WinsockError) as exc:
            stack.top.WSPCloseSocket(lst)
        seen.append(exc.value.winerror)
        return CF_ACCEPT

    a, _ = stack.top.WSPAccept(lst, condition, 0)
    assert seen == [WSAEINPROGRESS]
    assert stack.ctx(lst).layer is stack.top               # still valid
    stack.top.WSPCloseSocket(lst)
    assert _notsock(stack.proc, lst)


def test_blocked_caller_gets_wsaeintr_when_the_top_is_closed(stack2):
    c, a, lst = stack2.pair()
    result = {}

    def blocked():
        try:
            stack2.top.WSPRecv(a, [bytearray(8)])
        except WinsockError as exc:
            result["code"] = exc.winerror

    base_sock = sim_socket(stack2.proc, a)
    t = threading.Thread(target=blocked, daemon=True)
    t.start()
    wait_blocked(base_sock)                  # the receive waits at the bottom of the stack
    assert t.is_alive()
    stack2.top.WSPCloseSocket(a)
    t.join(JOIN)
    assert not t.is_alive()
    assert result == {"code": WSAEINTR}


# ------------------------------------------------------- overlapped: exactly once
def _start_recv(st, s, mode, buf, key=3):
    """An overlapped receive on `s` in completion `mode`; returns
    (overlapped, check) where check() -> list of completions seen."""
    proc = st.proc
    if mode == "port":
        port = st.port(s, key=key)
        ov = Overlapped()
        rc = st.top.WSPRecv(s, [buf], 0, ov)

        def seen():
            out = []
            while True:
                pkt = proc.GetQueuedCompletionStatus(port, 0)
                if pkt[3] is None:
                    assert pkt == (WAIT_TIMEOUT, 0, 0, None)
                    return out
                out.append(pkt)
        return ov, rc, seen
    if mode == "event":
        ev = st.event()
        ov = Overlapped(ev)
        rc = st.top.WSPRecv(s, [buf], 0, ov)

        def seen():
            if not st.signalled(ev):
                return []
            proc.WSAResetEvent(ev)
            return [(ov.Internal, ov.InternalHigh)]
        return ov, rc, seen
    calls, routine = recorder()
    ov = Overlapped()
    rc = st.top.WSPRecv(s, [buf], 0, ov, routine)

    def seen():
        st.drain_apcs()
        out = list(calls)
        calls.clear()
        return out
    return ov, rc, seen


@pytest.mark.parametrize("mode", ["port", "event", "routine"])
@pytest.mark.parametrize("when", ["pending", "at-once"])
def test_overlapped_on_the_top_completes_exactly_once(stack2, mode, when):
    st = stack2
    c, a, lst = st.pair()
    if when == "at-once":
        st.top.WSPSend(c, [b"early"])
    buf = bytearray(16)
    ov, rc, seen = _start_recv(st, a, mode, buf)
    if when == "at-once":
        assert rc == (0, 5, 0)
    else:
        assert rc == (WSA_IO_PENDING, 0, 0) and ov.pending
        assert seen() == []
        st.top.WSPSend(c, [b"later"])
    got = seen()
    assert len(got) == 1
    if mode == "port":
        assert got[0] == (0, 5, 3, ov)
    elif mode == "event":
        assert got[0] == (0, 5)
    else:
        assert got[0] == (0, 5, ov, 0, threading.get_ident())
    assert (ov.Internal, ov.InternalHigh) == (0, 5)
    assert bytes(buf[:5]) == (b"early" if when == "at-once" else b"later")
    st.top.WSPCloseSocket(a)                               # nothing more afterwards
    assert seen() == []
    res = st.proc.resources()
    assert res["overlapped_pending"] == 0 and res["overlapped_undelivered"] == 0
    assert res["threads"] == 0


@pytest.mark.parametrize("mode", ["port", "event", "routine"])
def test_overlapped_send_on_the_top_completes_exactly_once(stack2, mode):
    st = stack2
    c, a, lst = st.pair()
    proc = st.proc
    calls, routine = recorder()
    ev = st.event()
    ov = Overlapped(ev if mode == "event" else None)
    if mode == "port":
        port = st.port(c, key=9)
    rc = st.top.WSPSend(c, [b"abc", b"de"], 0, ov, routine if mode == "routine" else None)
    assert rc == (0, 5)
    if mode == "port":
        assert proc.GetQueuedCompletionStatus(port, WAIT_MS) == (0, 5, 9, ov)
        assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    elif mode == "event":
        assert st.signalled(ev)
    else:
        assert not st.signalled(ev)
        assert wait_alertable(proc, lambda: calls)
        st.drain_apcs()
        assert [c_[:4] for c_ in calls] == [(0, 5, ov, 0)]
    assert st.top.WSPGetOverlappedResult(c, ov, False) == (5, 0)
    assert recv_now(st.top, a) == b"abcde"


@pytest.mark.parametrize("mode", ["port", "event", "routine"])
def test_close_with_pending_requests_aborts_them_through_the_completion_action(stack2, mode):
    st = stack2
    c, a, lst = st.pair()
    ovs, seens = [], []
    ov, rc, seen = _start_recv(st, a, mode, bytearray(8))
    assert rc[0] == WSA_IO_PENDING
    if mode == "event":
        ev2 = st.event()
        ov2 = Overlapped(ev2)
        assert st.top.WSPRecv(a, [bytearray(8)], 0, ov2)[0] == WSA_IO_PENDING
        ovs.append(ov2)
        seens.append(lambda: [1] if st.signalled(ev2) else [])
    st.top.WSPCloseSocket(a)
    got = seen()
    if mode == "port":
        assert got == [(WSA_OPERATION_ABORTED, 0, 3, ov)]
    elif mode == "event":
        assert got == [(WSA_OPERATION_ABORTED, 0)]
        assert [f() for f in seens] == [[1]]
        assert ovs[0].Internal == WSA_OPERATION_ABORTED
    else:
        assert got == [(WSA_OPERATION_ABORTED, 0, ov, 0, threading.get_ident())]
    assert ov.Internal == WSA_OPERATION_ABORTED and not ov.pending
    assert seen() == []
    res = st.proc.resources()
    assert res["overlapped_pending"] == 0 and res["threads"] == 0
    assert res["overlapped_undelivered"] == 0


def test_close_with_many_pending_requests_of_every_mode(stack2):
    st = stack2
    proc = st.proc
    c, a, lst = st.pair()
    calls, routine = recorder()
    events = [st.event() for _ in range(5)]
    ov_ev = [Overlapped(ev) for ev in events]
    ov_rt = [Overlapped() for _ in range(5)]
    for ov in ov_ev:
        st.top.WSPRecv(a, [bytearray(4)], 0, ov)
    for ov in ov_rt:
        st.top.WSPRecv(a, [bytearray(4)], 0, ov, routine)
    st.top.WSPSend(c, [b"12345678"])                 # the first two complete with data
    st.top.WSPCloseSocket(a)
    st.drain_apcs()
    assert [(ov.Internal, ov.InternalHigh) for ov in ov_ev] == [
        (0, 4), (0, 4), (WSA_OPERATION_ABORTED, 0), (WSA_OPERATION_ABORTED, 0),
        (WSA_OPERATION_ABORTED, 0)]
    assert all(st.signalled(ev) for ev in events)
    assert sorted((e, n) for e, n, *_ in calls) == [(WSA_OPERATION_ABORTED, 0)] * 5
    assert sorted(id(o) for _, _, o, _, _ in calls) == sorted(id(o) for o in ov_rt)
    assert proc.resources()["threads"] == 0


def test_routine_on_a_port_associated_socket_is_wsaeinval_with_nothing_recorded(stack2):
    st = stack2
    proc = st.proc
    c, a, lst = st.pair()
    port = st.port(a, key=1)
    calls, routine = recorder()
    ov = Overlapped()
    before = proc.resources()
    with pytest.raises(WinsockError) as exc:
        st.top.WSPRecv(a, [bytearray(4)], 0, ov, routine)
    assert exc.value.winerror == WSAEINVAL
    assert not ov.pending and ov.Internal == 0
    assert proc.resources() == before
    assert proc.operations() == []                  # nothing was issued below either
    st.top.WSPSend(c, [b"zz"])
    st.drain_apcs()
    assert calls == []
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert recv_now(st.top, a) == b"zz"


def test_second_request_on_a_pending_overlapped_is_wsaeinval(stack):
    c, a, lst = stack.pair()
    ov = Overlapped()
    stack.top.WSPRecv(a, [bytearray(4)], 0, ov)
    with pytest.raises(WinsockError) as exc:
        stack.top.WSPRecv(a, [bytearray(4)], 0, ov)
    assert exc.value.winerror == WSAEINVAL
    assert len(stack.proc.operations(socket=a)) == 1
    stack.top.WSPSend(c, [b"ok"])
    assert (ov.Internal, ov.InternalHigh) == (0, 2)
    assert stack.proc.operations() == []


def test_request_failing_below_delivers_nothing(stack):
    s = stack.socket()                              # not connected
    ev = stack.event()
    ov = Overlapped(ev)
    with pytest.raises(WinsockError) as exc:
        stack.top.WSPRecv(s, [bytearray(4)], 0, ov)
    assert exc.value.winerror == WSAENOTCONN
    assert not stack.signalled(ev) and not ov.pending
    res = stack.proc.resources()
    assert res["overlapped_pending"] == 0 and res["threads"] == 0


def test_getoverlappedresult_through_the_layer(stack):
    c, a, lst = stack.pair()
    ov = Overlapped()
    stack.top.WSPRecv(a, [bytearray(8)], 0, ov)
    with pytest.raises(WinsockError) as exc:
        stack.top.WSPGetOverlappedResult(a, ov, False)
    assert exc.value.winerror == WSA_IO_INCOMPLETE
    stack.top.WSPSend(c, [b"four"])
    assert stack.top.WSPGetOverlappedResult(a, ov, False) == (4, 0)


# --------------------------------------------------------------- worker threads
@pytest.fixture
def counted_threads(monkeypatch):
    """Wrap WPUOpenCurrentThread/WPUCloseThread with recorders."""
    log = {"open": [], "close": []}
    real_open = UpcallTable.WPUOpenCurrentThread
    real_close = UpcallTable.WPUCloseThread

    def open_(self):
        tid = real_open(self)
        log["open"].append((threading.get_ident(), tid))
        return tid

    def close(self, thread_id):
        real_close(self, thread_id)
        log["close"].append((threading.get_ident(), thread_id))

    monkeypatch.setattr(UpcallTable, "WPUOpenCurrentThread", open_)
    monkeypatch.setattr(UpcallTable, "WPUCloseThread", close)
    return log


def test_worker_delivers_the_routine_on_the_applications_thread(wstack, counted_threads):
    st = wstack
    proc = st.proc
    c, a, lst = st.pair()
    calls, routine = recorder()
    ov, buf = Overlapped(), bytearray(16)
    assert st.top.WSPRecv(a, [buf], 0, ov, routine) == (WSA_IO_PENDING, 0, 0)
    st.top.flush()
    lower = st.ctx(a).lower
    assert len(proc.operations(socket=lower)) == 1         # issued below by the worker
    st.top.WSPSend(c, [b"from below"])
    assert wait_alertable(proc, lambda: calls)
    me = threading.get_ident()
    assert calls == [(0, 10, ov, 0, me)]
    assert bytes(buf[:10]) == b"from below"
    assert proc.SleepEx(0, True) == 0                     # exactly once
    assert proc.resources()["threads"] == 0
    # WPUOpenCurrentThread in the application's thread, paired with one WPUCloseThread
    assert len(counted_threads["open"]) == 1 and len(counted_threads["close"]) == 1
    opener, opened = counted_threads["open"][0]
    closer, closed = counted_threads["close"][0]
    assert opener == me and closed == opened and isinstance(opened, ThreadId)
    # closed once the lower request had completed: in its routine, which ran
    # here (a worker layer below could still have needed it before that)
    assert closer == me


def test_worker_pairs_opens_and_closes_over_many_requests(wstack, counted_threads):
    st = wstack
    proc = st.proc
    c, a, lst = st.pair()
    calls, routine = recorder()
    ovs = [Overlapped() for _ in range(20)]
    for ov in ovs:
        st.top.WSPRecv(a, [bytearray(1)], 0, ov, routine)
    st.top.flush()
    st.top.WSPSend(c, [bytes(range(20))])
    assert wait_alertable(proc, lambda: len(calls) == 20)
    assert [n for _, n, _, _, _ in calls] == [1] * 20
    assert [o for _, _, o, _, _ in calls] == ovs              # in issue order
    opened = [tid for _, tid in counted_threads["open"]]
    closed = [tid for _, tid in counted_threads["close"]]
    assert len(opened) == 20 and sorted(opened, key=hash) == sorted(closed, key=hash)
    assert len(set(opened)) == 20
    assert proc.resources()["threads"] == 0


def test_worker_forwards_a_given_threadid_without_opening_its_own(wstack, counted_threads):
    st = wstack
    proc = st.proc
    c, a, lst = st.pair()
    calls, routine = recorder()
    tid = proc.upcalls.WPUOpenCurrentThread()              # the caller's, kept open
    ov = Overlapped()
    assert st.top.WSPRecv(a, [bytearray(8)], 0, ov, routine, tid)[0] == WSA_IO_PENDING
    st.top.flush()
    st.top.WSPSend(c, [b"fwd"])
    assert wait_alertable(proc, lambda: calls)
    assert calls[0][:2] == (0, 3) and calls[0][4] == threading.get_ident()
    assert [t for _, t in counted_threads["open"]] == [tid]      # only the test's own
    assert counted_threads["close"] == []
    proc.upcalls.WPUCloseThread(tid)
    assert proc.resources()["threads"] == 0


def test_worker_routine_requested_from_another_thread_runs_there(wstack):
    st = wstack
    proc = st.proc
    c, a, lst = st.pair()
    state = {}
    issued, done = threading.Event(), threading.Event()

    def app_thread():
        calls, routine = recorder()
        st.top.WSPRecv(a, [bytearray(8)], 0, Overlapped(), routine)
        issued.set()
        state["ok"] = wait_alertable(proc, lambda: calls, 5.0)
        state["calls"], state["me"] = calls, threading.get_ident()
        done.set()

    t = threading.Thread(target=app_thread, daemon=True)
    t.start()
    assert issued.wait(JOIN)
    st.top.flush()
    st.top.WSPSend(c, [b"there"])
    assert proc.SleepEx(50, True) == 0                     # nothing runs here
    assert done.wait(JOIN)
    t.join(JOIN)
    assert state["ok"] is True
    assert [x[:2] + x[3:] for x in state["calls"]] == [(0, 5, 0, state["me"])]
    assert type(state["calls"][0][2]) is Overlapped
    assert state["me"] != threading.get_ident()
    assert proc.resources()["threads"] == 0


@pytest.mark.parametrize("mode", ["port", "event"])
def test_worker_without_routine(wstack, mode):
    st = wstack
    c, a, lst = st.pair()
    buf = bytearray(8)
    ov, rc, seen = _start_recv(st, a, mode, buf)
    assert rc == (WSA_IO_PENDING, 0, 0)
    st.top.flush()
    st.top.WSPSend(c, [b"wk"])
    got = wait_until(seen, what="the completion")
    assert got == ([(0, 2, 3, ov)] if mode == "port" else [(0, 2)])
    assert (ov.Internal, ov.InternalHigh, bytes(buf[:2])) == (0, 2, b"wk")
    assert seen() == []


def test_worker_lower_failure_completes_the_request_with_its_error(wstack):
    st = wstack
    proc = st.proc
    s = st.socket()                                        # not connected
    port = st.port(s, key=4)
    ov = Overlapped()
    assert st.top.WSPRecv(s, [bytearray(4)], 0, ov) == (WSA_IO_PENDING, 0, 0)
    st.top.flush()
    assert proc.GetQueuedCompletionStatus(port, WAIT_MS) == (WSAENOTCONN, 0, 4, ov)
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert ov.Internal == WSAENOTCONN


def test_flush(wstack, stack):
    assert stack.top.flush() is None                       # no worker: nothing to wait for
    assert wstack.top.flush() is None                      # worker not started yet
    c, a, lst = wstack.pair()
    for _ in range(50):
        wstack.top.WSPRecv(a, [bytearray(1)], 0, Overlapped())
    wstack.top.flush(timeout=5)
    assert len(wstack.proc.operations(socket=wstack.ctx(a).lower)) == 50
    assert len(wstack.proc.operations(socket=a)) == 50


def _gate_lower_recv(monkeypatch, base):
    """Hold every WSPRecv the base gets until the returned `gate` is set;
    `entered` is set when the first one arrives."""
    gate, entered = threading.Event(), threading.Event()
    real = base.WSPRecv
    count = []

    def held(*args, **kwargs):
        count.append(1)
        entered.set()
        assert gate.wait(JOIN)
        return real(*args, **kwargs)
    monkeypatch.setattr(base, "WSPRecv", held)
    return gate, entered, count


def test_worker_request_still_queued_at_close_is_aborted_once(wstack, monkeypatch):
    st = wstack
    proc = st.proc
    c, a, lst = st.pair()
    port = st.port(a, key=8)
    gate, entered, count = _gate_lower_recv(monkeypatch, st.base)
    ov1, ov2 = Overlapped(), Overlapped()
    assert st.top.WSPRecv(a, [bytearray(4)], 0, ov1) == (WSA_IO_PENDING, 0, 0)
    assert entered.wait(JOIN)                       # the worker is busy with the first
    assert st.top.WSPRecv(a, [bytearray(4)], 0, ov2) == (WSA_IO_PENDING, 0, 0)
    st.top.WSPCloseSocket(a)                        # the second is still queued
    assert proc.GetQueuedCompletionStatus(port, 0) == (WSA_OPERATION_ABORTED, 0, 8, ov2)
    gate.set()
    st.top.flush()
    # in flight when the close began: a late request, aborted
    assert proc.GetQueuedCompletionStatus(port, WAIT_MS) == (WSA_OPERATION_ABORTED, 0, 8, ov1)
    assert ov1.Internal == WSA_OPERATION_ABORTED
    assert proc.GetQueuedCompletionStatus(port, 100) == (WAIT_TIMEOUT, 0, 0, None)
    assert ov2.Internal == WSA_OPERATION_ABORTED
    assert len(count) == 1                          # the second never went below
    assert proc.resources()["overlapped_pending"] == 0


def test_worker_request_in_flight_at_close_is_aborted(wstack, monkeypatch):
    st = wstack
    proc = st.proc
    c, a, lst = st.pair()
    ev = st.event()
    gate, entered, _ = _gate_lower_recv(monkeypatch, st.base)
    ov = Overlapped(ev)
    assert st.top.WSPRecv(a, [bytearray(4)], 0, ov) == (WSA_IO_PENDING, 0, 0)
    assert entered.wait(JOIN)
    st.top.WSPCloseSocket(a)
    gate.set()
    st.top.flush()
    assert proc.WSAWaitForMultipleEvents([ev], False, WAIT_MS, False) == WSA_WAIT_EVENT_0
    assert ov.Internal == WSA_OPERATION_ABORTED


def test_worker_routine_through_the_application_api(monkeypatch):
    with AppStack(build_layers(LayeredProvider, worker=True)) as app:
        proc, layer = app.proc, app.top
        proc.WSAStartup()
        c, a, lst = app.pair()
        gate, _, _ = _gate_lower_recv(monkeypatch, app.base)  # the worker is slower than us
        calls, routine = recorder()
        ov, buf = Overlapped(), bytearray(8)
        assert proc.WSARecv(a, [buf], 0, ov, routine) == (WSA_IO_PENDING, 0, 0)
        gate.set()
        layer.flush()
        proc.WSASend(c, [b"app"])
        assert wait_alertable(proc, lambda: calls)
        assert calls[0][:2] == (0, 3) and calls[0][4] == threading.get_ident()
        assert bytes(buf[:3]) == b"app"


# --------------------------------------------------------- lower_completed hook
class AbortingLayer(LayeredProvider):
    """Turns every successful lower completion into WSAECONNABORTED."""

    description = "aborting layer"

    def __init__(self, lower, **kw):
        super().__init__(lower, **kw)
        self.seen = []

    def lower_completed(self, op, error, nbytes, flags):
        self.seen.append((op.overlapped, error, nbytes))
        super().lower_completed(op, WSAECONNABORTED if error == 0 else error, nbytes, flags)


class HoldingLayer(LayeredProvider):
    """Keeps lower completions and delivers them when asked."""

    description = "holding layer"

    def __init__(self, lower, **kw):
        super().__init__(lower, **kw)
        self.held = []

    def lower_completed(self, op, error, nbytes, flags):
        self.held.append((op, error, nbytes, flags))

    def release(self):
        held, self.held = self.held, []
        return [self.process.complete_overlapped(*h) for h in held]


@pytest.mark.parametrize("mode", ["port", "event", "routine"])
def test_lower_completed_can_change_the_status(mode):
    with stack_of(top_cls=AbortingLayer) as st:
        c, a, lst = st.pair()
        ov, rc, seen = _start_recv(st, a, mode, bytearray(8))
        st.top.WSPSend(c, [b"data"])
        got = seen()
        assert len(got) == 1
        if mode == "port":
            # GQCS reports the Win32 form (SPEC §6.1); the overlapped keeps the WSA code
            assert got[0] == (wsp.ERROR_CONNECTION_ABORTED, 4, 3, ov)
        elif mode == "event":
            assert got[0] == (WSAECONNABORTED, 4)
        else:
            assert got[0][:2] == (WSAECONNABORTED, 4)
        assert ov.Internal == WSAECONNABORTED
        assert st.top.seen == [(ov, 0, 4)]           # the hook saw the lower status
        with pytest.raises(WinsockError) as exc:
            st.top.WSPGetOverlappedResult(a, ov, False)
        assert exc.value.winerror == WSAECONNABORTED


def test_lower_completed_can_hold_and_deliver_later():
    with stack_of(top_cls=HoldingLayer) as st:
        c, a, lst = st.pair()
        ev = st.event()
        ov = Overlapped(ev)
        st.top.WSPRecv(a, [bytearray(8)], 0, ov)
        st.top.WSPSend(c, [b"held"])
        assert ov.pending and not st.signalled(ev)
        assert [(e, n) for _, e, n, _ in st.top.held] == [(0, 4)]
        assert st.top.release() == [True]
        assert (ov.Internal, ov.InternalHigh) == (0, 4) and st.signalled(ev)
        # a completion the lower provider made before the close keeps its
        # status through the close, and is delivered exactly once
        ev2 = st.event()
        ov2 = Overlapped(ev2)
        st.top.WSPRecv(a, [bytearray(8)], 0, ov2)
        st.top.WSPSend(c, [b"race"])
        st.top.WSPCloseSocket(a)
        assert ov2.pending and not st.signalled(ev2)
        assert _notsock(st.proc, a)
        assert st.top.release() == [True]
        assert (ov2.Internal, ov2.InternalHigh) == (0, 4) and st.signalled(ev2)
        assert st.top.release() == []
        # one still held at the final cleanup is cancelled silently
        ev3 = st.event()
        ov3 = Overlapped(ev3)
        assert st.top.WSPRecv(c, [bytearray(8)], 0, ov3) == (0, 0, 0)   # the end of stream
        assert ov3.pending and len(st.top.held) == 1
        st.top.WSPCleanup()
        assert ov3.Internal == WSA_OPERATION_ABORTED and not st.signalled(ev3)
        assert st.top.release() == [False]
        assert ov3.Internal == WSA_OPERATION_ABORTED and not st.signalled(ev3)


# ---------------------------------------------------------------------- cleanup
def test_cleanup_through_the_stack_follows_the_seed(stack2, peer):
    st = stack2
    proc = st.proc
    p = peer(st.net)
    lst, addr = p.listener()
    c1 = st.socket()
    st.top.WSPConnect(c1, addr)
    p1, _ = p.prov.WSPAccept(lst)
    ev = st.event()
    calls, routine = recorder()
    c2 = st.socket()
    st.top.WSPConnect(c2, addr)
    p2, _ = p.prov.WSPAccept(lst)
    port = st.port(c2, key=2)
    ov_ev, ov_port, ov_rt = Overlapped(ev), Overlapped(), Overlapped()
    st.top.WSPRecv(c1, [bytearray(4)], 0, ov_ev)
    st.top.WSPRecv(c2, [bytearray(4)], 0, ov_port)
    st.top.WSPRecv(c1, [bytearray(4)], 0, ov_rt, routine)
    # closed earlier, still delivering
    p.prov.WSPSetSockOpt(lst, SOL_SOCKET, SO_RCVBUF, 100)
    c3 = st.socket()
    st.top.WSPSetSockOpt(c3, SOL_SOCKET, SO_SNDBUF, 1 << 16)
    st.top.WSPConnect(c3, addr)
    p3, _ = p.prov.WSPAccept(lst)
    payload = bytes(range(200)) * 10
    assert st.top.WSPSend(c3, [payload]) == (0, 2000)
    st.top.WSPCloseSocket(c3)
    handles = st.chain_of(c1) + st.chain_of(c2)

    st.top.WSPCleanup()

    for ov in (ov_ev, ov_port, ov_rt):
        assert ov.Internal == WSA_OPERATION_ABORTED
    assert not st.signalled(ev)
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    assert proc.SleepEx(0, True) == 0 and calls == []
    for h in (p1, p2):
        with pytest.raises(WinsockError) as exc:
            p.prov.WSPRecv(h, [bytearray(4)])
        assert exc.value.winerror == WSAECONNRESET
    got = b""
    while True:
        chunk = recv_now(p.prov, p3)
        if not chunk:
            break
        got += chunk
    assert got == payload
    assert not any(x.started for x in (st.top, st.layers[0], st.base))
    assert all(layer.sockets() == [] for layer in st.layers) and st.base.sockets() == []
    res = proc.resources()
    assert res == dict(sockets=0, events=1, ports=1, threads=0, overlapped_pending=0,
                       overlapped_undelivered=0, providers=0)
    # at once again, with a clean table
    st.top.WSPStartup(0x0202, None, proc.upcalls)
    for h in handles:
        assert _notsock(proc, h)
    s = st.socket()
    st.top.WSPConnect(s, addr)
    ps, _ = p.prov.WSPAccept(lst)
    st.top.WSPSend(s, [b"again"])
    assert recv_now(p.prov, ps) == b"again"
    assert proc.resources()["sockets"] == 3


def test_cleanup_with_a_shared_lower_resets_only_the_layers_sockets(peer):
    with stack_of(depth=2) as st:
        proc, base = st.proc, st.base
        base.WSPStartup(0x0202, None, proc.upcalls)          # the application's own use
        p = peer(st.net)
        lst, addr = p.listener()
        own = base.WSPSocket(AF_INET, SOCK_STREAM, 0)
        base.WSPConnect(own, addr)
        p_own, _ = p.prov.WSPAccept(lst)
        own_ov = Overlapped()
        base.WSPRecv(own, [bytearray(8)], 0, own_ov)
        c = st.socket()
        st.top.WSPConnect(c, addr)
        p_layer, _ = p.prov.WSPAccept(lst)
        ev = st.event()
        ov = Overlapped(ev)
        st.top.WSPRecv(c, [bytearray(8)], 0, ov)
        handles = st.chain_of(c)

        st.top.WSPCleanup()

        assert not st.top.started and not st.layers[0].started
        assert base.started and proc.initialised
        for h in handles:
            assert _notsock(proc, h)
        assert ov.Internal == WSA_OPERATION_ABORTED and not st.signalled(ev)
        with pytest.raises(WinsockError) as exc:
            p.prov.WSPRecv(p_layer, [bytearray(8)])
        assert exc.value.winerror == WSAECONNRESET
        # the application's own socket on the base is untouched and still works
        assert base.sockets() == [own] and own_ov.pending
        p.prov.WSPSend(p_own, [b"mine"])
        assert (own_ov.Internal, own_ov.InternalHigh) == (0, 4)
        base.WSPSend(own, [b"ours"])
        assert recv_now(p.prov, p_own) == b"ours"
        res = proc.resources()
        assert res["sockets"] == 1 and res["overlapped_pending"] == 0 and res["threads"] == 0
        assert res["providers"] == 1
        base.WSPCloseSocket(own)
        base.WSPCleanup()


def test_cleanup_with_the_network_down_changes_nothing(stack2):
    st = stack2
    c, a, lst = st.pair()
    ov = Overlapped()
    st.top.WSPRecv(a, [bytearray(8)], 0, ov)
    before = st.proc.resources()
    st.net.set_down(True)
    with pytest.raises(WinsockError) as exc:
        st.top.WSPCleanup()
    assert exc.value.winerror == wsp.WSAENETDOWN
    assert st.proc.resources() == before
    assert all(x.started for x in (st.top, st.layers[0], st.base))
    st.net.set_down(False)
    st.top.WSPSend(c, [b"up"])
    assert (ov.Internal, ov.InternalHigh) == (0, 2)


# ---------------------------------------------------------------------- terminate
def test_terminate_with_a_stack_releases_everything(peer):
    st = stack_of(depth=2, worker=True)
    proc = st.proc
    p = peer(st.net)
    lst, addr = p.listener()
    c = st.socket()
    st.top.WSPConnect(c, addr)
    pa, _ = p.prov.WSPAccept(lst)
    st.port(c, key=1)
    for _ in range(3):
        st.top.WSPRecv(c, [bytearray(8)], 0, Overlapped())
    st.top.flush()
    st.layers[0].flush()
    assert proc.resources()["providers"] == 3
    proc.terminate()
    res = proc.resources()
    assert res == dict.fromkeys(res, 0), res
    assert not any(x.started for x in (st.top, st.layers[0], st.base))
    assert all(layer.sockets() == [] for layer in st.layers) and st.base.sockets() == []
    with pytest.raises(WinsockError) as exc:
        p.prov.WSPRecv(pa, [bytearray(4)])
    assert exc.value.winerror == WSAECONNRESET
    assert p.prov.WSPSelect([lst], [], [], 0) == ([], [], [])
    # the providers can serve the process again
    st.top.WSPStartup(0x0202, None, proc.upcalls)
    s = st.socket()
    st.top.WSPConnect(s, addr)
    st.top.WSPCloseSocket(s)
    st.top.WSPCleanup()
    res = proc.resources()
    assert res == dict.fromkeys(res, 0), res


def test_terminate_with_a_stack_of_one_layer_class():
    st = Stack(build_layers(LayeredProvider, LayeredProvider))
    mid, top = st.layers
    st.socket()
    st.proc.terminate()
    assert not top.started and not mid.started and not st.base.started
    assert top.sockets() == [] and mid.sockets() == []


# ------------------------------------------------------------------------ stress
def test_stress_close_while_draining_many_pending_receives(stack2):
    st = stack2
    proc = st.proc
    c, a, lst = st.pair()
    port = st.port(a, key=77)
    n = 2000
    ovs = [Overlapped() for _ in range(n)]
    bufs = [bytearray(3) for _ in range(n)]
    for ov, buf in zip(ovs, bufs):
        assert st.top.WSPRecv(a, [buf], 0, ov) == (WSA_IO_PENDING, 0, 0)
    assert proc.resources()["overlapped_pending"] == 3 * n     # one request per layer + base

    packets, lock = [], threading.Lock()
    stop = threading.Event()
    errors = []

    def drainer():
        try:
            while not stop.is_set():
                pkt = proc.GetQueuedCompletionStatus(port, 50)
                if pkt[3] is None:
                    continue
                with lock:
                    packets.append(pkt)
                    if len(packets) >= n:
                        stop.set()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    sent = bytearray()
    halfway = threading.Event()

    def sender():
        # 900 chunks of 5 bytes fill at most 1800 of the 2000 receives (3 bytes
        # each): whatever happens, some are left for the close to abort.
        try:
            for k in range(900):
                if k == 200:
                    halfway.set()
                chunk = bytes([k % 251]) * 5
                st.top.WSPSend(c, [chunk])
                sent.extend(chunk)
        except WinsockError:
            pass                       # the other end is gone
        finally:
            halfway.set()

    closed = threading.Event()

    def closer():
        assert halfway.wait(JOIN)
        st.top.WSPCloseSocket(a)       # races the sender and the drainers
        closed.set()

    threads = [threading.Thread(target=drainer, daemon=True) for _ in range(3)]
    threads += [threading.Thread(target=sender, daemon=True),
                threading.Thread(target=closer, daemon=True)]
    for t in threads:
        t.start()
    stop.wait(JOIN)                    # every receive delivered (checked below)
    stop.set()
    for t in threads:
        t.join(JOIN)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and closed.is_set()
    assert len(packets) == n
    by_ov = {id(pkt[3]): pkt for pkt in packets}
    assert len(by_ov) == n and set(by_ov) == {id(ov) for ov in ovs}     # each exactly once
    received = bytearray()
    aborted_seen = False
    for ov, buf in zip(ovs, bufs):
        rc, nbytes, key, _ = by_ov[id(ov)]
        assert key == 77
        assert (ov.Internal, ov.InternalHigh) == (rc, nbytes)
        if rc == 0:
            assert not aborted_seen and nbytes > 0       # data only before the close
            received += buf[:nbytes]
        else:
            assert (rc, nbytes) == (WSA_OPERATION_ABORTED, 0)
            aborted_seen = True
    assert bytes(received) == bytes(sent[:len(received)])
    assert aborted_seen and len(received) >= 200 * 5
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    res = proc.resources()
    assert res["overlapped_pending"] == 0 and res["overlapped_undelivered"] == 0
    assert res["threads"] == 0
    assert _notsock(proc, a)


# -- two worker layers stacked: the lower one issues later still, with the
#    ThreadId the upper one opened; it must stay open until the request is done
@pytest.mark.parametrize("mode", ["routine", "event"])
def test_two_stacked_worker_layers_deliver_every_request(mode):
    with stack_of(depth=2, worker=True) as st:
        proc = st.proc
        c, a, _ = st.pair()
        calls, routine = recorder()
        events, overlappeds = [], []
        for _ in range(20):
            ev = st.event() if mode == "event" else None
            ov = Overlapped(ev)
            overlappeds.append(ov)
            events.append(ev)
            rc = st.top.WSPRecv(a, [bytearray(8)], 0, ov, routine if mode == "routine" else None)
            assert rc == (WSA_IO_PENDING, 0, 0)
        for layer in reversed(st.layers):            # the top worker first, then the next
            layer.flush()
        for _ in range(20):
            assert st.top.WSPSend(c, [b"abc"]) == (0, 3)
        if mode == "routine":
            assert wait_alertable(proc, lambda: len(calls) == 20)
            assert [cl[:2] for cl in calls] == [(0, 3)] * 20
            assert {cl[4] for cl in calls} == {threading.get_ident()}
        else:
            for ev in events:
                assert proc.WSAWaitForMultipleEvents([ev], False, 2000, False) == WSA_WAIT_EVENT_0
        assert [(ov.Internal, ov.InternalHigh) for ov in overlappeds] == [(0, 3)] * 20
        # Every ThreadId a layer opened is closed again; only the engine's
        # own references for routines still to run could remain, and none do.
        assert proc.resources()["threads"] == 0
        assert proc.resources()["overlapped_pending"] == 0


def test_worker_layer_cleanup_closes_the_threadids_of_cancelled_requests():
    with stack_of(worker=True) as st:
        proc = st.proc
        c, a, _ = st.pair()
        calls, routine = recorder()
        ov = Overlapped()
        assert st.top.WSPRecv(a, [bytearray(8)], 0, ov, routine)[0] == WSA_IO_PENDING
        st.top.flush()
        assert proc.resources()["threads"] >= 1           # the layer's ThreadId, the engine's
        st.top.WSPCleanup()                               # cancelled silently: no routine
        assert proc.SleepEx(0, True) == 0 and calls == []
        assert ov.Internal == WSA_OPERATION_ABORTED
        assert proc.resources() == dict.fromkeys(proc.resources(), 0)


@pytest.mark.parametrize("depth,worker,routine", [(1, False, False), (2, False, True),
                                                  (1, True, False), (2, True, True)])
def test_a_waiting_recvfrom_sender_comes_up_through_the_layers(depth, worker, routine):
    # WSARecvFrom's lpFrom is filled at the completion (the WSPRecvFrom
    # page); every layer passes its own overlapped down, and the sender
    # recorded for that one must reach the application's (wsp.spi.senders).
    from wsp.spi import senders

    with stack_of(depth=depth, worker=worker) as st:
        sender, receiver, to = st.dgrams()
        st.bind(sender, ("127.0.0.1", 0))
        calls, done = recorder()
        ev = None if routine else st.event()
        ov = Overlapped(ev)
        result = st.top.WSPRecvFrom(receiver, [bytearray(16)], 0, ov, done if routine else None)
        assert result[0] == WSA_IO_PENDING
        st.flush()
        st.top.WSPSendTo(sender, [b"who?"], 0, to)
        if routine:
            assert wait_alertable(st.proc, lambda: calls)
            assert calls[0][:2] == (0, 4)
        else:
            assert st.proc.WSAWaitForMultipleEvents([ev], False, WAIT_MS, False) == 0
        assert senders.take(ov) == st.getsockname(sender)
        assert senders.take(ov) is None                           # taken once
