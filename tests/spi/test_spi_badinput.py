"""Hypothesis-drawn bad arguments over every SPI entry that takes a count,
a size, a timeout, a flag word or a buffer (SPEC §3, §5): each call either
succeeds or raises TypeError / WinsockError with a code the SPI defines for
it (ValueError outside the SPI functions) -- never OverflowError, never
another exception, never a hang -- and the process is left consistent.

Every call is arranged to return at once whatever valid value is drawn: the
sockets are non-blocking, waits have an APC queued, a signalled event or a
packet posted before they start, so a valid huge timeout cannot stall the
test."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsp
import wsp.sim
from simkit import LOCAL, Sim, connect
from wsp import (FIONBIO, FIONREAD, SO_LINGER, SO_RCVBUF, SO_SNDBUF, SOCK_DGRAM, SOL_SOCKET,
                 WinsockError)
from wsp.lsp import FaultProvider


class _Index:
    """An int-like object (``__index__``), as numpy integers are."""

    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value


class _Evil:
    """Raises from every conversion a careless check might attempt."""

    def __index__(self):
        raise ZeroDivisionError("__index__")

    def __float__(self):
        raise ZeroDivisionError("__float__")

    def __iter__(self):
        raise ZeroDivisionError("__iter__")


def junk():
    """Anything a caller might pass by mistake, or on purpose."""
    ints = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.sampled_from(
        [0, 1, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1,
         2 ** 64, 10 ** 400, -10 ** 400]))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -0.0, 0.5]))
    return st.one_of(
        ints, floats, st.booleans(), st.none(), st.text(max_size=4), st.binary(max_size=4),
        st.builds(bytearray, st.binary(max_size=4)),
        st.lists(st.integers(-3, 300), max_size=3),
        st.lists(st.binary(max_size=3), max_size=3),
        st.builds(_Index, ints), st.just(_Evil()), st.just(object()),
    )


# Codes an entry may answer bad input with (beyond TypeError).  WSAEWOULDBLOCK
# and friends are there because a valid drawn value reaches the operation.
GENERAL = {wsp.WSAEINVAL, wsp.WSAEFAULT, wsp.WSAENOBUFS, wsp.WSAEOPNOTSUPP, wsp.WSAEWOULDBLOCK,
           wsp.WSAEMSGSIZE, wsp.WSAENOPROTOOPT, wsp.WSA_INVALID_PARAMETER,
           wsp.WSA_INVALID_HANDLE, wsp.WSAENOTSOCK, wsp.WSAEADDRNOTAVAIL, wsp.WSAEAFNOSUPPORT,
           wsp.WSAEADDRINUSE, wsp.WSAEISCONN, wsp.WSAENOTCONN, wsp.WSAESHUTDOWN,
           wsp.WSAECONNREFUSED, wsp.WSAEINPROGRESS, wsp.WSAEALREADY}


class World:
    """A process with connected and datagram sockets, a port and an event,
    reset between drawn calls so one call cannot poison the next."""

    def __init__(self):
        self.sim = Sim()
        self.c, self.a, self.lst = connect(self.sim)
        self.u = self.sim.socket(SOCK_DGRAM)
        self.sim.prov.WSPBind(self.u, (LOCAL, 0))
        for s in (self.c, self.a, self.u):
            self.sim.prov.WSPIoctl(s, FIONBIO, 1)
        self.port = self.sim.port()
        self.event = self.sim.event()
        self.proc = self.sim.proc
        self.prov = self.sim.prov

    def ready_for_a_wait(self):
        """Make every wait entry return at once for any valid timeout."""
        self.proc.upcalls.WPUQueueApc(self.tid, lambda _: None, None)
        self.proc.WSASetEvent(self.event)
        self.proc.PostQueuedCompletionStatus(self.port, 0, 7, None)

    def close(self):
        while self.proc.SleepEx(0, True) == wsp.WAIT_IO_COMPLETION:
            pass
        while self.proc.GetQueuedCompletionStatus(self.port, 0)[0] != wsp.WAIT_TIMEOUT:
            pass
        self.sim.close()


@pytest.fixture(scope="module")
def world():
    w = World()
    w.tid = w.proc.upcalls.WPUOpenCurrentThread()
    yield w
    w.proc.upcalls.WPUCloseThread(w.tid)
    w.close()


def entries(w):
    """name -> (call taking one drawn value, allowed WSA codes)."""
    p, proc, buf = w.prov, w.proc, bytearray(16)
    return {
        "WSPSend.buffers": (lambda v: p.WSPSend(w.c, v), GENERAL),
        "WSPSend.flags": (lambda v: p.WSPSend(w.c, [b"x"], v), GENERAL),
        "WSPSendTo.buffers": (lambda v: p.WSPSendTo(w.u, v, 0, w.sim.prov.WSPGetSockName(w.u)),
                              GENERAL),
        "WSPSendTo.flags": (lambda v: p.WSPSendTo(w.u, [b"x"], v, p.WSPGetSockName(w.u)),
                            GENERAL),
        "WSPSendTo.to": (lambda v: p.WSPSendTo(w.u, [b"x"], 0, v), GENERAL),
        "WSPRecv.buffers": (lambda v: p.WSPRecv(w.a, v), GENERAL),
        "WSPRecv.flags": (lambda v: p.WSPRecv(w.a, [buf], v), GENERAL),
        "WSPRecvFrom.buffers": (lambda v: p.WSPRecvFrom(w.u, v), GENERAL),
        "WSPRecvFrom.flags": (lambda v: p.WSPRecvFrom(w.u, [buf], v), GENERAL),
        "WSPSelect.timeout": (lambda v: p.WSPSelect([w.c], [w.c], [], v), GENERAL),
        "WSPSelect.read": (lambda v: p.WSPSelect(v, [w.c], [], 0), GENERAL),
        "WSPListen.backlog": (lambda v: p.WSPListen(w.lst, v), GENERAL),
        "WSPSetSockOpt.SO_RCVBUF": (lambda v: p.WSPSetSockOpt(w.a, SOL_SOCKET, SO_RCVBUF, v),
                                    GENERAL),
        "WSPSetSockOpt.SO_SNDBUF": (lambda v: p.WSPSetSockOpt(w.a, SOL_SOCKET, SO_SNDBUF, v),
                                    GENERAL),
        "WSPSetSockOpt.SO_LINGER": (lambda v: p.WSPSetSockOpt(w.a, SOL_SOCKET, SO_LINGER, v),
                                    GENERAL),
        "WSPSetSockOpt.level": (lambda v: p.WSPSetSockOpt(w.a, v, SO_RCVBUF, 4096), GENERAL),
        "WSPGetSockOpt.optname": (lambda v: p.WSPGetSockOpt(w.a, SOL_SOCKET, v), GENERAL),
        "WSPIoctl.FIONBIO": (lambda v: p.WSPIoctl(w.c, FIONBIO, v), GENERAL),
        "WSPIoctl.code": (lambda v: p.WSPIoctl(w.c, v, 1), GENERAL),
        "WSPIoctl.FIONREAD": (lambda v: p.WSPIoctl(w.c, FIONREAD, v), GENERAL),
        "WSPShutdown.how": (lambda v: p.WSPShutdown(w.lst, v), GENERAL),
        "WSPSocket.af": (lambda v: p.WSPCloseSocket(p.WSPSocket(v, wsp.SOCK_STREAM, 0)),
                         GENERAL | {wsp.WSAESOCKTNOSUPPORT, wsp.WSAEPROTONOSUPPORT,
                                    wsp.WSAEPROTOTYPE}),
        "WSPSocket.type": (lambda v: p.WSPCloseSocket(p.WSPSocket(wsp.AF_INET, v, 0)),
                           GENERAL | {wsp.WSAESOCKTNOSUPPORT, wsp.WSAEPROTONOSUPPORT,
                                      wsp.WSAEPROTOTYPE}),
        "WSPBind.addr": (lambda v: _bind_fresh(p, v), GENERAL),
        "WSPConnect.addr": (lambda v: _connect_fresh(p, v), GENERAL),
        "WSPEventSelect.events": (lambda v: p.WSPEventSelect(w.c, w.event, v), GENERAL),
        "WSPGetOverlappedResult.wait": (
            lambda v: p.WSPGetOverlappedResult(w.c, wsp.Overlapped(), v), GENERAL),
        "SleepEx.ms": (lambda v: proc.SleepEx(v, True), GENERAL),
        "WSAWaitForMultipleEvents.ms": (
            lambda v: proc.WSAWaitForMultipleEvents([w.event], False, v, True), GENERAL),
        "WSAWaitForMultipleEvents.events": (
            lambda v: proc.WSAWaitForMultipleEvents(v, False, 0, False), GENERAL),
        "GetQueuedCompletionStatus.ms": (lambda v: proc.GetQueuedCompletionStatus(w.port, v),
                                         GENERAL),
        "GetQueuedCompletionStatusEx.max_entries": (
            lambda v: proc.GetQueuedCompletionStatusEx(w.port, v, 0), GENERAL),
        "GetQueuedCompletionStatusEx.ms": (
            lambda v: proc.GetQueuedCompletionStatusEx(w.port, 4, v), GENERAL),
        "PostQueuedCompletionStatus.nbytes": (
            lambda v: proc.PostQueuedCompletionStatus(w.port, v, 0, None), GENERAL),
        "PostQueuedCompletionStatus.key": (
            lambda v: proc.PostQueuedCompletionStatus(w.port, 0, v, None), GENERAL),
        "CreateIoCompletionPort.key": (lambda v: proc.CloseHandle(
            proc.CreateIoCompletionPort(None, None, v)), GENERAL),
        "CreateIoCompletionPort.concurrency": (lambda v: proc.CloseHandle(
            proc.CreateIoCompletionPort(None, None, 0, v)), GENERAL),
        "WPUCreateSocketHandle.catalog_entry_id": (
            lambda v: proc.upcalls.WPUCloseSocketHandle(
                proc.upcalls.WPUCreateSocketHandle(v, None)), GENERAL),
        "WPUQuerySocketHandleContext.s": (
            lambda v: proc.upcalls.WPUQuerySocketHandleContext(v), GENERAL),
        "WPUFDIsSet.fdset": (lambda v: proc.upcalls.WPUFDIsSet(w.c, v), GENERAL),
        "WPUFDIsSet.s": (lambda v: proc.upcalls.WPUFDIsSet(v, {w.c}), GENERAL),
        "WPUSetEvent.h": (lambda v: proc.upcalls.WPUSetEvent(v), GENERAL),
        "WPUCompleteOverlappedRequest.transferred": (
            lambda v: proc.upcalls.WPUCompleteOverlappedRequest(w.u, wsp.Overlapped(), 0, v),
            GENERAL),
        "WPUCompleteOverlappedRequest.error": (
            lambda v: proc.upcalls.WPUCompleteOverlappedRequest(w.u, wsp.Overlapped(), v, 0),
            GENERAL),
        "Overlapped.Offset": (lambda v: setattr(wsp.Overlapped(), "Offset", v), GENERAL),
        "Linger": (lambda v: wsp.Linger(v, 0), GENERAL),
    }


def _bind_fresh(p, addr):
    s = p.WSPSocket(wsp.AF_INET, wsp.SOCK_STREAM, 0)
    try:
        p.WSPBind(s, addr)
    finally:
        p.WSPCloseSocket(s)


def _connect_fresh(p, addr):
    s = p.WSPSocket(wsp.AF_INET, wsp.SOCK_STREAM, 0)
    p.WSPIoctl(s, FIONBIO, 1)
    try:
        p.WSPConnect(s, addr)
    finally:
        p.WSPCloseSocket(s)


def _entry_names():
    class _Stub:
        def __getattr__(self, name):
            return None
    return sorted(entries(_Stub()))


def check(call, allowed, value):
    try:
        call(value)
    except TypeError:
        pass
    except ZeroDivisionError as exc:
        # The caller's own object raised: passing that on is right (as
        # Python's builtins do); only where it came from is checked.
        assert isinstance(value, _Evil) and exc.args[0] in ("__index__", "__float__",
                                                             "__iter__"), exc
    except WinsockError as exc:
        assert exc.winerror in allowed, (value, exc)
    except (OverflowError, ValueError, SystemError, AttributeError,
            KeyError, IndexError) as exc:
        pytest.fail(f"{type(exc).__name__} for {value!r}: {exc}")


@pytest.mark.parametrize("name", _entry_names())
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=junk())
def test_bad_arguments_get_clear_errors(world, name, value):
    call, allowed = entries(world)[name]
    world.ready_for_a_wait()
    check(call, allowed, value)      # a hang here is caught by the suite's timeout


def test_the_world_is_still_consistent_after_the_drawn_calls(world):
    """Runs after the drawn calls (same module fixture): the connection
    still carries data both ways and nothing leaked into the tables."""
    prov = world.prov
    for s in (world.c, world.a):
        prov.WSPEventSelect(s, None, 0)     # drawn event selects end here (Windows' rule)
        prov.WSPIoctl(s, FIONBIO, 0)
    for s in (world.c, world.a):            # drain what drawn sends left
        prov.WSPIoctl(s, FIONBIO, 1)
        while True:
            try:
                prov.WSPRecv(s, [bytearray(4096)])
            except WinsockError as exc:
                assert exc.winerror in (wsp.WSAEWOULDBLOCK, wsp.WSAESHUTDOWN), exc
                break
    res = world.proc.resources()
    assert res["overlapped_pending"] == 0
    assert res["sockets"] == 4              # c, a, the listener and the datagram socket



@pytest.mark.parametrize("kwargs", [
    {"probability": math.nan}, {"probability": 10 ** 400}, {"count": -1}, {"count": 1.5},
    {"delay": math.nan}, {"delay": -1}, {"delay": math.inf}, {"socket": 1.0},
])
def test_fault_rules_refuse_bad_parameters_with_valueerror_or_typeerror(kwargs):
    net = wsp.sim.Network()
    layer = FaultProvider(wsp.sim.Provider(net), seed=1)
    action = "delay" if "delay" in kwargs else "drop"
    op = "WSPRecv" if action == "delay" else "WSPSend"
    with pytest.raises((ValueError, TypeError)):
        layer.add_rule(op, action, **kwargs)


@pytest.mark.parametrize("delay", [1e300, 10 ** 400, 2 ** 64])
def test_a_fault_delay_too_long_for_a_timer_holds_until_release(delay):
    net = wsp.sim.Network()
    layer = FaultProvider(wsp.sim.Provider(net), seed=1)
    rule = layer.add_rule("WSPRecv", "delay", delay=delay)
    assert rule.delay is None                 # no timer thread that would overflow


@pytest.mark.parametrize("seed", [None, 1.5, "1", True, math.nan, (1,)], ids=repr)
def test_a_network_seed_must_be_an_int(seed):
    """random.Random takes any hashable (None: an OS-random seed), which
    would make a run unreproducible from its seed."""
    with pytest.raises(TypeError, match="seed must be an int"):
        wsp.sim.Network(seed=seed)


@pytest.mark.parametrize("seed", [0, -3, 2 ** 64, 10 ** 400])
def test_any_int_seed_is_reproducible(seed):
    draws = [wsp.sim.Network(seed=seed).random.random() for _ in range(2)]
    assert draws[0] == draws[1]


@pytest.mark.parametrize("probability,error", [
    (math.nan, ValueError), (math.inf, ValueError), (-0.1, ValueError), (1.5, ValueError),
    (10 ** 400, ValueError), ("0.5", TypeError), (None, TypeError), (True, TypeError)],
    ids=repr)
def test_datagram_loss_refuses_bad_probabilities(probability, error):
    net = wsp.sim.Network()
    with pytest.raises(error, match="probability"):
        net.set_datagram_loss(probability)
    assert net.datagram_loss == 0.0


@pytest.mark.parametrize("timeout", [math.nan, -1, math.inf])
def test_layer_flush_checks_its_timeout(timeout):
    from wsp.lsp import LayeredProvider
    layer = LayeredProvider(wsp.sim.Provider(wsp.sim.Network()), worker=True)
    with pytest.raises(WinsockError) as excinfo:
        layer.flush(timeout)
    assert excinfo.value.winerror == wsp.WSAEINVAL
