"""FaultProvider (wsp.lsp.fault): fail, truncate, drop, delay, reset and
abort_status, alone and in two-layer stacks, over the simulated network."""
from __future__ import annotations

import threading
import time

import pytest

import wsp
from lspkit import JOIN, Stack, run_threads, wait_alertable
from wsp import AF_INET, FIONBIO, SOCK_STREAM, Overlapped, ServiceProvider, WinsockError
from wsp.errors import (WAIT_IO_COMPLETION, WSA_IO_PENDING, WSA_OPERATION_ABORTED,
                        WSAECONNABORTED, WSAECONNREFUSED, WSAECONNRESET, WSAEINVAL,
                        WSAENETDOWN, WSAENETRESET, WSAENOTSOCK, WSAEOPNOTSUPP, WSAETIMEDOUT,
                        WSAEWOULDBLOCK)
from wsp.lsp import FaultProvider, LayeredProvider, Rule, TracingProvider
from wsp.lsp.rules import FAULT_OPS


class FaultStack(Stack):
    """An lspkit.Stack whose `build` puts a FaultProvider in it (by default
    the FaultProvider alone): ``fault`` is that layer, its rules cleared
    before finish()."""

    def __init__(self, build=FaultProvider):
        super().__init__(build)
        self.fault = next(p for p in self.layers if isinstance(p, FaultProvider))

    def nothing_to_read(self, s):
        """True if a non-blocking receive on `s` would block."""
        self.top.WSPIoctl(s, FIONBIO, 1)
        try:
            self.top.WSPRecv(s, [bytearray(64)])
        except WinsockError as exc:
            assert exc.winerror == WSAEWOULDBLOCK
            return True
        finally:
            self.top.WSPIoctl(s, FIONBIO, 0)
        return False

    def finish(self):
        self.fault.clear()
        super().finish()


# The stacks every action is exercised on: the fault layer alone, over a
# tracer, and under one.
STACKS = {
    "fault": FaultProvider,
    "fault/trace": lambda base: FaultProvider(TracingProvider(base)),
    "trace/fault": lambda base: TracingProvider(FaultProvider(base)),
}


@pytest.fixture(params=list(STACKS))
def stack(request):
    with FaultStack(STACKS[request.param]) as st:
        yield st


@pytest.fixture
def single():
    with FaultStack() as st:
        yield st


# ------------------------------------------------------------------- add_rule
@pytest.mark.parametrize("args, kwargs, exc", [
    (("WSPSend", "explode"), {}, ValueError),
    (("WSPFrobnicate", "fail"), {"code": 1}, ValueError),
    (("WSPStartup", "fail"), {"code": 1}, ValueError),
    ((1, "fail"), {"code": 1}, TypeError),
    (("WSPSend", None), {}, TypeError),
    (("WSPSend", "fail"), {}, ValueError),                          # code missing
    (("WSPSend", "fail"), {"code": "10054"}, TypeError),
    (("WSPSend", "fail"), {"code": 0}, ValueError),
    (("WSPSend", "fail"), {"code": 1, "size": 3}, ValueError),
    (("WSPSend", "truncate"), {}, ValueError),                      # size missing
    (("WSPSend", "truncate"), {"size": -1}, ValueError),
    (("WSPSend", "truncate"), {"size": 1.5}, TypeError),
    (("WSPBind", "truncate"), {"size": 1}, ValueError),
    (("WSPRecv", "drop"), {}, ValueError),
    (("WSPConnect", "delay"), {}, ValueError),
    (("WSPRecv", "delay"), {"delay": -0.1}, ValueError),
    (("WSPRecv", "delay"), {"delay": float("inf")}, ValueError),
    (("WSPRecv", "delay"), {"delay": "soon"}, TypeError),
    (("WSPSend", "drop"), {"delay": 1.0}, ValueError),
    (("WSPSend", "abort_status"), {"code": 1}, ValueError),
    (("WSPCloseSocket", "abort_status"), {}, ValueError),
    (("WSPSocket", "fail"), {"code": 1, "socket": 4}, ValueError),
    (("WSPSocket", "reset"), {}, ValueError),
    (("WSPSend", "fail"), {"code": 1, "socket": "4"}, TypeError),
    (("WSPSend", "fail"), {"code": 1, "probability": 1.5}, ValueError),
    (("WSPSend", "fail"), {"code": 1, "probability": True}, TypeError),
    (("WSPSend", "fail"), {"code": 1, "count": -1}, ValueError),
    (("WSPSend", "fail"), {"code": 1, "count": 2.0}, TypeError),
])
def test_add_rule_rejects_bad_arguments(single, args, kwargs, exc):
    with pytest.raises(exc) as info:
        single.fault.add_rule(*args, **kwargs)
    assert str(info.value)                                    # a message that says why
    assert single.fault.rules == []


def test_reset_needs_the_simulated_network_at_the_bottom():
    fault = FaultProvider(LayeredProvider(ServiceProvider()))
    with pytest.raises(WinsockError) as exc:
        fault.add_rule("WSPSend", "reset")
    assert exc.value.winerror == WSAEOPNOTSUPP
    assert fault.rules == []
    assert fault.add_rule("WSPSend", "fail", code=WSAENETDOWN).action == "fail"


def test_rules_list_remove_and_clear(single):
    fault, top = single.fault, single.top
    c, a, _ = single.pair()
    r1 = fault.add_rule("WSPSend", "fail", code=WSAENETRESET)
    r2 = fault.add_rule("*", "fail", code=WSAENETDOWN)
    assert isinstance(r1, Rule) and fault.rules == [r1, r2]
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAENETRESET                 # the first rule that fires wins
    fault.remove_rule(r1)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAENETDOWN
    with pytest.raises(ValueError):
        fault.remove_rule(r1)
    fault.clear()
    assert fault.rules == []
    assert top.WSPSend(c, [b"x"]) == (0, 1)
    assert (r1.hits, r2.hits) == (1, 1)
    assert "fail" in repr(r1)


# ----------------------------------------------------------------------- fail
def test_fail_blocking_send_sends_nothing(stack):
    top = stack.top
    c, a, _ = stack.pair()
    rule = stack.fault.add_rule("WSPSend", "fail", code=WSAENETRESET)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"lost"])
    assert exc.value.winerror == WSAENETRESET
    assert rule.hits == 1
    assert stack.nothing_to_read(a)


def test_fail_nonblocking_recv(stack):
    top = stack.top
    c, a, _ = stack.pair()
    top.WSPSend(c, [b"kept"])
    top.WSPIoctl(a, FIONBIO, 1)
    stack.fault.add_rule("WSPRecv", "fail", code=WSAETIMEDOUT, count=1)
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(8)])
    assert exc.value.winerror == WSAETIMEDOUT
    buf = bytearray(8)
    assert top.WSPRecv(a, [buf]) == (0, 4, 0) and bytes(buf[:4]) == b"kept"


def test_fail_overlapped_delivers_nothing(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    port = stack.port(c, a)
    ev = stack.event()
    stack.fault.add_rule("*", "fail", code=WSAENETDOWN, count=2)
    ov = Overlapped(ev)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"abc"], 0, ov)
    assert exc.value.winerror == WSAENETDOWN
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(4)], 0, Overlapped())
    assert exc.value.winerror == WSAENETDOWN
    assert not ov.pending and not stack.signalled(ev)
    assert stack.packets(port) == []
    assert proc.resources()["overlapped_pending"] == 0
    assert stack.nothing_to_read(a)


def test_fail_connect_accept_and_close(stack):
    top, fault = stack.top, stack.fault
    lst, addr = stack.listener()
    c = stack.socket()
    rule = fault.add_rule("WSPConnect", "fail", code=WSAECONNREFUSED)
    with pytest.raises(WinsockError) as exc:
        top.WSPConnect(c, addr)
    assert exc.value.winerror == WSAECONNREFUSED
    fault.remove_rule(rule)
    top.WSPConnect(c, addr)
    rule = fault.add_rule("WSPAccept", "fail", code=WSAENETDOWN)
    with pytest.raises(WinsockError) as exc:
        top.WSPAccept(lst)
    assert exc.value.winerror == WSAENETDOWN
    fault.remove_rule(rule)
    a, _ = top.WSPAccept(lst)                         # the connection stayed queued
    rule = fault.add_rule("WSPCloseSocket", "fail", code=WSAENETDOWN,
                          socket=stack.handle_in(stack.fault, a))
    with pytest.raises(WinsockError) as exc:
        top.WSPCloseSocket(a)
    assert exc.value.winerror == WSAENETDOWN
    assert top.WSPSend(c, [b"still open"]) == (0, 10)     # the handle stayed valid
    fault.remove_rule(rule)
    top.WSPCloseSocket(a)
    with pytest.raises(WinsockError) as exc:
        top.WSPGetPeerName(a)
    assert exc.value.winerror == WSAENOTSOCK


def test_fail_the_extension_functions_before_they_start(stack):
    # AcceptEx, ConnectEx and DisconnectEx are entries of their own (asyncio's
    # proactor connects and accepts with them only); a failed one starts
    # nothing: no packet, no connection, nothing pending.
    top, fault, proc = stack.top, stack.fault, stack.proc
    lst, addr = stack.listener()
    c, spare = stack.socket(), stack.socket()
    top.WSPBind(c, (addr[0], 0))
    port = stack.port(c, lst)

    def ext(s, guid):
        return top.WSPIoctl(s, wsp.SIO_GET_EXTENSION_FUNCTION_POINTER, guid)

    connect_ex, accept_ex = ext(c, wsp.WSAID_CONNECTEX), ext(lst, wsp.WSAID_ACCEPTEX)
    disconnect_ex = ext(c, wsp.WSAID_DISCONNECTEX)
    rule = fault.add_rule("ConnectEx", "fail", code=WSAETIMEDOUT, count=1)
    with pytest.raises(WinsockError) as exc:
        connect_ex(c, addr, None, Overlapped())
    assert exc.value.winerror == WSAETIMEDOUT and rule.hits == 1
    fault.add_rule("AcceptEx", "fail", code=WSAENETDOWN, count=1,
                   socket=stack.handle_in(fault, lst))
    with pytest.raises(WinsockError) as exc:
        accept_ex(lst, spare, bytearray(64), 0, 32, 32, Overlapped())
    assert exc.value.winerror == WSAENETDOWN
    assert stack.packets(port) == [] and proc.resources()["overlapped_pending"] == 0
    # the rules are spent: both go through now
    accepted = Overlapped()
    assert accept_ex(lst, spare, bytearray(64), 0, 32, 32, accepted)[0] == WSA_IO_PENDING
    connect_ex(c, addr, None, Overlapped())
    stack.flush()
    assert top.WSPGetPeerName(c) == addr
    fault.add_rule("*", "fail", code=WSAENETRESET, count=1)      # "*" covers them too
    with pytest.raises(WinsockError) as exc:
        disconnect_ex(c, Overlapped(), 0)
    assert exc.value.winerror == WSAENETRESET
    assert top.WSPSend(c, [b"still connected"]) == (0, 15)


def test_rules_name_the_extension_functions():
    assert {"AcceptEx", "ConnectEx", "DisconnectEx"} <= set(FAULT_OPS)
    fault = FaultProvider(wsp.sim.Provider(wsp.sim.Network()))
    with pytest.raises(ValueError, match="TransmitFile"):
        fault.add_rule("TransmitFile", "fail", code=WSAENETDOWN)
    with pytest.raises(ValueError):
        fault.add_rule("ConnectEx", "truncate", size=1)        # not a send or a receive


def test_fail_socketless_entries(single):
    top, fault = single.top, single.fault
    fault.add_rule("WSPSocket", "fail", code=wsp.WSAEMFILE, count=1)
    with pytest.raises(WinsockError) as exc:
        top.WSPSocket(AF_INET, SOCK_STREAM, 0)
    assert exc.value.winerror == wsp.WSAEMFILE
    assert single.proc.resources()["sockets"] == 0
    s = top.WSPSocket(AF_INET, SOCK_STREAM, 0)
    fault.add_rule("WSPSelect", "fail", code=WSAEINVAL)
    with pytest.raises(WinsockError) as exc:
        top.WSPSelect([s], [], [], 0)
    assert exc.value.winerror == WSAEINVAL


def test_socket_filter_and_count(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    rule = fault.add_rule("WSPSend", "fail", code=WSAENETRESET, socket=a, count=2)
    assert top.WSPSend(c, [b"c"]) == (0, 1)                  # another socket: untouched
    for _ in range(2):
        with pytest.raises(WinsockError) as exc:
            top.WSPSend(a, [b"a"])
        assert exc.value.winerror == WSAENETRESET
    assert top.WSPSend(a, [b"a"]) == (0, 1)                  # the count is used up
    assert rule.hits == 2 and rule.exhausted


# ------------------------------------------------------------------- truncate
def test_truncate_blocking_and_nonblocking_send(stack):
    top = stack.top
    c, a, _ = stack.pair()
    stack.fault.add_rule("WSPSend", "truncate", size=4)
    assert top.WSPSend(c, [b"0123", b"456789"]) == (0, 4)
    top.WSPIoctl(c, FIONBIO, 1)
    assert top.WSPSend(c, [b"abcdefgh"]) == (0, 4)
    buf = bytearray(64)
    assert top.WSPRecv(a, [buf]) == (0, 8, 0)
    assert bytes(buf[:8]) == b"0123abcd"


def test_truncate_overlapped_send_port_and_routine(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    stack.fault.add_rule("WSPSend", "truncate", size=3)
    port = stack.port(c)
    ov = Overlapped()
    assert top.WSPSend(c, [b"port mode"], 0, ov) == (0, 3)
    assert stack.packets(port) == [(0, 3, 7)] and ov.InternalHigh == 3
    got = []
    assert top.WSPSend(a, [b"routine"], 0, Overlapped(),
                       lambda e, n, o, f: got.append((e, n))) == (0, 3)
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert got == [(0, 3)]
    buf = bytearray(16)
    assert top.WSPRecv(a, [buf]) == (0, 3, 0) and bytes(buf[:3]) == b"por"
    assert top.WSPRecv(c, [buf]) == (0, 3, 0) and bytes(buf[:3]) == b"rou"


def test_truncate_blocking_recv_loses_the_rest(stack):
    top = stack.top
    c, a, _ = stack.pair()
    rule = stack.fault.add_rule("WSPRecv", "truncate", size=5, count=1)
    top.WSPSend(c, [b"hello world"])
    buf = bytearray(b"." * 16)
    assert top.WSPRecv(a, [buf]) == (0, 5, 0)
    assert bytes(buf) == b"hello" + b"." * 11           # nothing past `size` reaches the buffer
    assert rule.hits == 1
    assert stack.nothing_to_read(a)                      # " world" was lost
    top.WSPSend(c, [b"next"])
    assert top.WSPRecv(a, [buf]) == (0, 4, 0) and bytes(buf[:4]) == b"next"


def test_truncate_nonblocking_recv_over_two_buffers(stack):
    top = stack.top
    c, a, _ = stack.pair()
    top.WSPIoctl(a, FIONBIO, 1)
    stack.fault.add_rule("WSPRecv", "truncate", size=6)
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(4)])
    assert exc.value.winerror == WSAEWOULDBLOCK
    top.WSPSend(c, [b"abcdefghij"])
    b1, b2 = bytearray(4), bytearray(b"----")
    assert top.WSPRecv(a, [b1, b2]) == (0, 6, 0)
    assert (bytes(b1), bytes(b2)) == (b"abcd", b"ef--")


def test_truncate_overlapped_recv_pending_and_immediate(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    port = stack.port(a)
    stack.fault.add_rule("WSPRecv", "truncate", size=2)
    buf, ov = bytearray(8), Overlapped()
    assert top.WSPRecv(a, [buf], 0, ov) == (WSA_IO_PENDING, 0, 0)
    top.WSPSend(c, [b"pending"])
    assert proc.GetQueuedCompletionStatus(port, 1000)[:3] == (0, 2, 7)
    assert bytes(buf) == b"pe" + bytes(6) and ov.InternalHigh == 2
    top.WSPSend(c, [b"immediate"])
    buf2 = bytearray(8)
    assert top.WSPRecv(a, [buf2], 0, Overlapped()) == (0, 2, 0)
    assert bytes(buf2[:2]) == b"im"
    assert stack.packets(port) == [(0, 2, 7)]


def test_truncate_overlapped_recv_routine_immediate_fills_the_buffer_at_once(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    stack.fault.add_rule("WSPRecv", "truncate", size=3)
    top.WSPSend(c, [b"routine"])
    got, buf = [], bytearray(8)
    assert top.WSPRecv(a, [buf], 0, Overlapped(), lambda e, n, o, f: got.append((e, n))) == (
        0, 3, 0)
    assert bytes(buf[:3]) == b"rou"                    # rc 0: the data is there now
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert got == [(0, 3)] and bytes(buf) == b"rou" + bytes(5)


def test_truncate_datagram(stack):
    top = stack.top
    s, r, to = stack.dgrams()
    stack.fault.add_rule("WSPRecvFrom", "truncate", size=3)
    top.WSPSendTo(s, [b"datagram"], 0, to)
    buf = bytearray(16)
    rc, n, flags, src = top.WSPRecvFrom(r, [buf])
    assert (rc, n, flags) == (0, 3, 0) and bytes(buf[:4]) == b"dat\x00"
    assert src == top.WSPGetSockName(s)
    stack.fault.clear()
    top.WSPSendTo(s, [b"whole"], 0, to)
    assert top.WSPRecvFrom(r, [buf])[:3] == (0, 5, 0)


# ----------------------------------------------------------------------- drop
def test_drop_blocking_and_nonblocking(stack):
    top = stack.top
    c, a, _ = stack.pair()
    rule = stack.fault.add_rule("WSPSend", "drop")
    assert top.WSPSend(c, [b"gone", b"!"]) == (0, 5)
    top.WSPIoctl(c, FIONBIO, 1)
    assert top.WSPSend(c, [b"also gone"]) == (0, 9)
    assert rule.hits == 2
    assert stack.nothing_to_read(a)
    stack.fault.remove_rule(rule)
    top.WSPSend(c, [b"arrives"])
    buf = bytearray(16)
    assert top.WSPRecv(a, [buf]) == (0, 7, 0) and bytes(buf[:7]) == b"arrives"


def test_drop_still_checks_the_handle(single):
    single.fault.add_rule("WSPSend", "drop")
    with pytest.raises(WinsockError) as exc:
        single.top.WSPSend(123456, [b"x"])
    assert exc.value.winerror == WSAENOTSOCK


def test_drop_overlapped_port_event_and_routine(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    s2, a2, _ = stack.pair()
    stack.fault.add_rule("WSPSend", "drop")
    port = stack.port(c)
    ov = Overlapped()
    assert top.WSPSend(c, [b"port"], 0, ov) == (0, 4)
    assert (ov.Internal, ov.InternalHigh) == (0, 4)
    assert stack.packets(port) == [(0, 4, 7)]
    assert stack.packets(port) == []                            # exactly once
    ev = stack.event()
    ov = Overlapped(ev)
    assert top.WSPSend(s2, [b"event"], 0, ov) == (0, 5)
    assert stack.signalled(ev) and ov.InternalHigh == 5
    got = []
    assert top.WSPSend(a2, [b"routine"], 0, Overlapped(),
                       lambda e, n, o, f: got.append((e, n, threading.get_ident()))) == (0, 7)
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert got == [(0, 7, threading.get_ident())]
    assert stack.nothing_to_read(a) and stack.nothing_to_read(a2) and stack.nothing_to_read(s2)


def test_drop_overlapped_with_a_routine_on_a_port_socket_fails_before_start(single):
    top = single.top
    c, a, _ = single.pair()
    port = single.port(c)
    single.fault.add_rule("WSPSend", "drop")
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"], 0, Overlapped(), lambda *args: None)
    assert exc.value.winerror == WSAEINVAL
    assert single.packets(port) == []
    assert single.proc.resources()["overlapped_pending"] == 0


def test_drop_datagram(stack):
    top = stack.top
    s, r, to = stack.dgrams()
    stack.fault.add_rule("WSPSendTo", "drop", count=1)
    assert top.WSPSendTo(s, [b"lost"], 0, to) == (0, 4)
    assert top.WSPSendTo(s, [b"kept"], 0, to) == (0, 4)
    buf = bytearray(8)
    assert top.WSPRecvFrom(r, [buf])[:2] == (0, 4) and bytes(buf[:4]) == b"kept"


# ---------------------------------------------------------------------- delay
def test_delay_until_release_port_mode(stack):
    top, fault = stack.top, stack.fault
    c, a, _ = stack.pair()
    port = stack.port(a)
    rule = fault.add_rule("WSPRecv", "delay")
    buf, ov = bytearray(8), Overlapped()
    assert top.WSPRecv(a, [buf], 0, ov) == (WSA_IO_PENDING, 0, 0)
    top.WSPSend(c, [b"late"])
    assert fault.held == 1 and ov.pending
    assert stack.packets(port) == []
    assert bytes(buf[:4]) == b"late"                       # the data is there, the news is not
    assert fault.release() == 1
    assert stack.packets(port) == [(0, 4, 7)]
    assert (ov.Internal, ov.InternalHigh) == (0, 4)
    assert fault.release() == 0 and fault.held == 0
    assert rule.hits == 1


def test_delay_is_not_applied_to_blocking_calls(stack):
    top, fault = stack.top, stack.fault
    c, a, _ = stack.pair()
    rule = fault.add_rule("*", "delay")
    assert top.WSPSend(c, [b"now"]) == (0, 3)
    assert top.WSPRecv(a, [bytearray(8)]) == (0, 3, 0)
    assert rule.hits == 0 and fault.held == 0


def test_delay_an_immediate_completion_reports_pending(stack):
    top, fault = stack.top, stack.fault
    c, a, _ = stack.pair()
    port = stack.port(c)
    fault.add_rule("WSPSend", "delay")
    ov = Overlapped()
    assert top.WSPSend(c, [b"12345"], 0, ov) == (WSA_IO_PENDING, 0)
    assert ov.pending and stack.packets(port) == []
    assert top.WSPRecv(a, [bytearray(8)]) == (0, 5, 0)        # the bytes went at once
    assert fault.release() == 1
    assert stack.packets(port) == [(0, 5, 7)]


def test_delay_routine_released_from_another_thread(stack):
    top, proc, fault = stack.top, stack.proc, stack.fault
    c, a, _ = stack.pair()
    fault.add_rule("WSPRecv", "delay")
    got = []
    top.WSPRecv(a, [bytearray(8)], 0, Overlapped(),
                lambda e, n, o, f: got.append((e, n, threading.get_ident())))
    top.WSPSend(c, [b"abc"])
    proc.SleepEx(0, True)                    # runs the lower completion: now held
    assert got == [] and fault.held == 1
    releaser = threading.Thread(target=fault.release)
    releaser.start()
    releaser.join(5)
    assert not releaser.is_alive()
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert got == [(0, 3, threading.get_ident())]


def test_delay_with_a_timer(stack):
    top, proc, fault = stack.top, stack.proc, stack.fault
    c, a, _ = stack.pair()
    port = stack.port(a)
    fault.add_rule("WSPRecv", "delay", delay=0.05)
    ov = Overlapped()
    started = time.monotonic()
    top.WSPRecv(a, [bytearray(8)], 0, ov)
    top.WSPSend(c, [b"timed"])
    early = stack.packets(port)
    assert early == [] or time.monotonic() - started >= 0.05
    got = early or [proc.GetQueuedCompletionStatus(port, 2000)[:3]]
    assert got == [(0, 5, 7)]
    assert time.monotonic() - started >= 0.05
    assert fault.held == 0 and fault.release() == 0
    assert stack.packets(port) == []


def test_delay_with_a_timer_released_early(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    port = single.port(a)
    fault.add_rule("WSPRecv", "delay", delay=60.0)      # far beyond any test's run
    top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
    top.WSPSend(c, [b"x"])
    assert fault.held == 1
    timer = fault._held[0].timer
    assert timer.is_alive()                           # counting down
    assert fault.release() == 1
    assert single.packets(port) == [(0, 1, 7)]
    # the release cancelled the timer: its thread ends without delivering
    timer.join(JOIN)
    assert not timer.is_alive() and timer.finished.is_set()
    assert single.packets(port) == [] and fault.held == 0


def test_delay_keeps_completion_order(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    port = single.port(a)
    fault.add_rule("WSPRecv", "delay")
    ovs = [Overlapped() for _ in range(3)]
    for ov in ovs:
        top.WSPRecv(a, [bytearray(1)], 0, ov)
    top.WSPSend(c, [b"xyz"])
    assert fault.held == 3
    assert fault.release() == 3
    got = single.proc.GetQueuedCompletionStatusEx(port, 8, 0)
    assert [g[3] for g in got] == ovs


def test_delay_then_close_delivers_exactly_once_with_the_held_status(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    port = single.port(a)
    fault.add_rule("WSPRecv", "delay")
    done, below = Overlapped(), Overlapped()
    top.WSPRecv(a, [bytearray(4)], 0, done)
    top.WSPSend(c, [b"data"])                         # `done` completed below: held (0, 4)
    top.WSPRecv(a, [bytearray(4)], 0, below)          # still pending below
    top.WSPCloseSocket(a)                             # aborts `below`: held too
    assert fault.held == 2
    assert single.packets(port) == []
    assert done.pending and below.pending
    assert fault.release() == 2
    got = single.proc.GetQueuedCompletionStatusEx(port, 8, 0)
    assert [(g[0], g[1], g[3]) for g in got] == [(0, 4, done),
                                                 (WSA_OPERATION_ABORTED, 0, below)]
    assert fault.release() == 0
    assert single.packets(port) == []


def test_delay_then_close_routine_mode(single):
    top, proc, fault = single.top, single.proc, single.fault
    c, a, _ = single.pair()
    fault.add_rule("WSPRecv", "delay")
    got = []
    top.WSPRecv(a, [bytearray(4)], 0, Overlapped(), lambda e, n, o, f: got.append((e, n)))
    top.WSPSend(c, [b"abcd"])
    top.WSPCloseSocket(a)
    while proc.SleepEx(0, True) == WAIT_IO_COMPLETION:
        pass
    assert got == [] and fault.held == 1
    assert fault.release() == 1
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    assert got == [(0, 4)]
    assert proc.SleepEx(0, True) == 0


def test_cleanup_cancels_held_completions_silently(single):
    top, proc, fault = single.top, single.proc, single.fault
    c, a, _ = single.pair()
    port = single.port(a)
    ev = single.event()
    fault.add_rule("WSPRecv", "delay")
    fault.add_rule("WSPSend", "delay", delay=0.3)
    held_ov, timed_ov = Overlapped(ev), Overlapped()
    top.WSPRecv(a, [bytearray(4)], 0, held_ov)
    top.WSPSend(c, [b"data"], 0, timed_ov)
    assert fault.held == 2
    timer, = [item.timer for item in fault._held if item.timer is not None]
    assert proc.resources()["overlapped_pending"] == 2
    top.WSPCleanup()
    assert not top.started and fault.held == 0
    assert held_ov.Internal == WSA_OPERATION_ABORTED == timed_ov.Internal
    timer.join(JOIN)                                  # past the timer: nothing comes
    assert not timer.is_alive() and timer.finished.is_set()
    assert fault.release() == 0
    assert single.packets(port) == [] and not single.signalled(ev)
    proc.CloseHandle(port)
    single.ports.remove(port)
    res = proc.resources()
    assert res["overlapped_pending"] == 0 and res["overlapped_undelivered"] == 0
    assert res["sockets"] == 0 and res["threads"] == 0


# ---------------------------------------------------------------------- reset
def test_reset_on_send(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    peer_ov = Overlapped()
    top.WSPRecv(a, [bytearray(8)], 0, peer_ov)
    stack.fault.add_rule("WSPSend", "reset", count=1)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAECONNRESET
    assert stack.packets(port) == [(WSAECONNRESET, 0, 7)]   # the peer's pending receive
    for s in (a, c):
        with pytest.raises(WinsockError) as exc:
            top.WSPRecv(s, [bytearray(8)])
        assert exc.value.winerror == WSAECONNRESET
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])                              # the rule is used up; the reset stays
    assert exc.value.winerror == WSAECONNRESET


def test_reset_on_overlapped_recv_fails_the_own_pending_ones(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c)
    first = Overlapped()
    top.WSPRecv(c, [bytearray(8)], 0, first)
    stack.fault.add_rule("WSPRecv", "reset", socket=stack.handle_in(stack.fault, c))
    second = Overlapped()
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(c, [bytearray(8)], 0, second)
    assert exc.value.winerror == WSAECONNRESET
    assert not second.pending
    got = stack.proc.GetQueuedCompletionStatusEx(port, 8, 0)
    assert [(g[0], g[3]) for g in got] == [(WSAECONNRESET, first)]
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(8)])
    assert exc.value.winerror == WSAECONNRESET


def test_reset_datagram_fails_only_the_call(single):
    top = single.top
    s, r, to = single.dgrams()
    single.fault.add_rule("WSPSendTo", "reset", count=1)
    with pytest.raises(WinsockError) as exc:
        top.WSPSendTo(s, [b"x"], 0, to)
    assert exc.value.winerror == WSAECONNRESET
    assert top.WSPSendTo(s, [b"y"], 0, to) == (0, 1)


def test_reset_on_a_closed_handle_is_not_a_socket(single):
    single.fault.add_rule("*", "reset")
    with pytest.raises(WinsockError) as exc:
        single.top.WSPGetPeerName(123456)
    assert exc.value.winerror == WSAENOTSOCK


# --------------------------------------------------------------- abort_status
def test_abort_status_port_mode(stack):
    top = stack.top
    c, a, _ = stack.pair()
    other, _, _ = stack.pair()
    port = stack.port(a, other)
    stack.fault.add_rule("WSPCloseSocket", "abort_status", code=WSAECONNABORTED,
                         socket=stack.handle_in(stack.fault, a))
    ov1, ov2 = Overlapped(), Overlapped()
    top.WSPRecv(a, [bytearray(4)], 0, ov1)
    top.WSPRecv(a, [bytearray(4)], 0, ov2)
    top.WSPCloseSocket(a)
    got = stack.proc.GetQueuedCompletionStatusEx(port, 8, 0)
    assert [(g[0], g[1], g[3]) for g in got] == [(WSAECONNABORTED, 0, ov1),
                                                 (WSAECONNABORTED, 0, ov2)]
    ov3 = Overlapped()                                     # another socket: the usual status
    top.WSPRecv(other, [bytearray(4)], 0, ov3)
    top.WSPCloseSocket(other)
    assert stack.packets(port) == [(WSA_OPERATION_ABORTED, 0, 7)]


# A layer above the fault layer must not abort the request itself at close:
# the lower completion (an APC) is still on its way up through it.
def test_abort_status_routine_mode(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    stack.fault.add_rule("WSPCloseSocket", "abort_status", code=WSAECONNRESET)
    got = []
    top.WSPRecv(a, [bytearray(4)], 0, Overlapped(), lambda e, n, o, f: got.append((e, n)))
    top.WSPCloseSocket(a)
    wait_alertable(proc, lambda: got, 5.0)
    assert got == [(WSAECONNRESET, 0)]


def test_abort_status_keeps_completed_requests(single):
    top = single.top
    c, a, _ = single.pair()
    port = single.port(a)
    single.fault.add_rule("WSPCloseSocket", "abort_status", code=WSAECONNABORTED)
    top.WSPRecv(a, [bytearray(4)], 0, Overlapped())
    top.WSPSend(c, [b"ok"])
    top.WSPCloseSocket(a)
    assert single.packets(port) == [(0, 2, 7)]
    assert not single.fault._abort_codes


# ------------------------------------------------------------- determinism
def run_pattern(seed, n=200):
    with FaultStack(lambda base: FaultProvider(base, seed=seed)) as st:
        c, a, _ = st.pair()
        rule = st.fault.add_rule("WSPSend", "fail", code=WSAENETRESET, probability=0.5)
        st.top.WSPIoctl(c, FIONBIO, 1)
        pattern = []
        for _ in range(n):
            try:
                st.top.WSPSend(c, [b"x"])
                pattern.append(0)
            except WinsockError as exc:
                assert exc.winerror == WSAENETRESET
                pattern.append(1)
        assert rule.hits == sum(pattern)
    return pattern


def test_seed_reproducibility():
    first, again, other = run_pattern(1234), run_pattern(1234), run_pattern(4321)
    assert first == again
    assert first != other
    assert 60 < sum(first) < 140 and 60 < sum(other) < 140


def test_random_draws_only_for_matching_probabilistic_rules(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    fault.add_rule("WSPRecv", "fail", code=WSAENETRESET, probability=0.5)
    fault.add_rule("WSPSend", "fail", code=WSAENETDOWN, probability=1.0, count=0)
    state = fault.random.getstate()
    top.WSPSend(c, [b"x"])                         # no probabilistic rule matches a send
    top.WSPGetPeerName(c)
    assert fault.random.getstate() == state


def test_concurrent_hits_are_counted(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    rule = fault.add_rule("WSPGetSockName", "fail", code=WSAENETDOWN, probability=0.5)
    failures = []
    lock = threading.Lock()

    def worker():
        n = 0
        for _ in range(200):
            try:
                top.WSPGetSockName(c)
            except WinsockError:
                n += 1
        with lock:
            failures.append(n)

    run_threads(worker)
    assert rule.hits == sum(failures)


# ---------------------------------------------------------------- stacking
def test_fault_over_trace_hides_dropped_sends_from_the_tracer():
    with FaultStack(STACKS["fault/trace"]) as st:
        top, tracer = st.top, st.top.lower
        c, a, _ = st.pair()
        st.fault.add_rule("WSPSend", "drop", count=1)
        top.WSPSend(c, [b"dropped"])
        top.WSPSend(c, [b"sent"])
        sends = [r for r in tracer.records if r.op == "WSPSend"]
        assert [(r.size, r.nbytes) for r in sends] == [(4, 4)]
        st.fault.add_rule("WSPSend", "truncate", size=2)
        top.WSPSend(c, [b"abcdef"])
        assert (tracer.records[-1].size, tracer.records[-1].nbytes) == (2, 2)


# A delayed receive under a tracer: neither delivered nor traced until the
# release, then both, with the held status -- also when the socket was closed
# in between (the tracer must not abort the request itself at close).
@pytest.mark.parametrize("close_first", [False, True], ids=["open", "closed"])
def test_trace_over_fault_records_delayed_completions_when_released(close_first):
    with FaultStack(STACKS["trace/fault"]) as st:
        top, fault = st.top, st.fault
        c, a, _ = st.pair()
        port = st.port(a)
        fault.add_rule("WSPRecv", "delay")
        top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
        top.WSPSend(c, [b"late"])
        if close_first:
            top.WSPCloseSocket(a)
        assert not [r for r in top.records if r.op == "completion"]
        fault.release()
        done, = [r for r in top.records if r.op == "completion"]
        assert (done.call, done.nbytes, done.error) == ("WSPRecv", 4, None)
        assert st.packets(port) == [(0, 4, 7)]
