"""FaultProvider's timed actions (SPEC §9): latency, bandwidth, slice, limit,
stall, slow_close and hook, over a virtual clock driven by hand.

Time only moves through ``net.advance()`` (or a wait of the layer's own,
for calls without an overlapped); completions are polled without waiting,
so these tests do not depend on how the process's own waits count time."""
from __future__ import annotations

import threading
import time

import pytest

import wsp
import wsp.sim
from lspkit import JOIN, Stack
from wsp import (FIONBIO, SO_LINGER, SOL_SOCKET, Linger, Overlapped,
                 ServiceProvider, WinsockError)
from wsp.errors import (WAIT_IO_COMPLETION, WSA_IO_PENDING, WSA_OPERATION_ABORTED,
                        WSAECONNRESET, WSAEINTR, WSAENETDOWN, WSAENOBUFS, WSAENOTSOCK,
                        WSAEOPNOTSUPP, WSAEWOULDBLOCK)
from wsp.lsp import Action, Call, FaultProvider, LayeredProvider, TracingProvider


def sim_ns(net):
    """A TracingProvider clock that reads the network's simulated time (ns)."""
    return lambda: round(net.time() * 1e9)


class TimedStack(Stack):
    """An lspkit.Stack over a Network with a virtual clock; ``fault`` is the
    topmost FaultProvider (the one tests give rules to), ``tracer`` the
    TracingProvider of the stack, if any (recording simulated ns)."""

    def __init__(self, build=FaultProvider, seed=0, clock="virtual", net=None):
        net = net if net is not None else wsp.sim.Network(seed=seed, clock=clock)
        super().__init__(build, net=net)
        self.fault = next(p for p in self.providers if isinstance(p, FaultProvider))
        self.tracer = next((p for p in self.providers if isinstance(p, TracingProvider)), None)

    def at(self, when):
        """Advance the virtual clock to `when` (absolute simulated seconds)."""
        self.net.advance(when - self.net.time())
        assert self.net.time() == when

    def sends_below(self):
        """(size, nbytes) of the sends the tracer saw: an overlapped send's
        bytes are on its completion record (the one with its request id),
        an overlapped send that has not completed has None."""
        records = self.tracer.records
        done = {r.request: r.nbytes for r in records if r.op == "completion"}
        return [(r.size, done.get(r.request) if r.overlapped else r.nbytes) for r in records
                if r.op in ("WSPSend", "WSPSendTo")]

    def finish(self):
        for layer in self.layers:
            if isinstance(layer, FaultProvider):
                layer.clear()
        super().finish()
        clock = self.net.clock
        assert clock is None or clock.scheduled == 0       # nothing left on the clock


def traced(inner):
    """A TracingProvider over `inner`, recording in simulated time (the build
    gets the base only: the tracer finds the network through it)."""
    return lambda lower: TracingProvider(inner(lower), clock=sim_ns(lower.network))


# The stacks the actions are exercised on.  The rules go to the topmost fault layer.
STACKS = {
    "fault": FaultProvider,
    "fault/trace": lambda base: FaultProvider(TracingProvider(base, clock=sim_ns(base.network))),
    "trace/fault": traced(FaultProvider),
    "fault/fault": lambda base: FaultProvider(FaultProvider(base, seed=99)),
}


@pytest.fixture(params=list(STACKS))
def stack(request):
    with TimedStack(STACKS[request.param]) as st:
        yield st


@pytest.fixture
def single():
    with TimedStack() as st:
        yield st


@pytest.fixture
def below():
    """The fault layer over a tracer: the tracer sees what the layer passes down."""
    with TimedStack(STACKS["fault/trace"]) as st:
        yield st


# -------------------------------------------------------------- bad parameters
@pytest.mark.parametrize("args, kwargs, exc, names", [
    (("WSPSend", "latency"), {}, ValueError, "delay"),
    (("WSPSend", "latency"), {"delay": -0.1}, ValueError, "delay"),
    (("WSPSend", "latency"), {"delay": float("inf")}, ValueError, "delay"),
    (("WSPSend", "latency"), {"delay": float("nan")}, ValueError, "delay"),
    (("WSPSend", "latency"), {"delay": "1s"}, TypeError, "delay"),
    (("WSPSend", "latency"), {"delay": 0.1, "jitter": -0.01}, ValueError, "jitter"),
    (("WSPSend", "latency"), {"delay": 0.1, "jitter": True}, TypeError, "jitter"),
    (("WSPSend", "latency"), {"delay": 0.1, "rate": 5}, ValueError, "rate"),
    (("WSPConnect", "latency"), {"delay": 0.1}, ValueError, "latency"),
    (("WSPCloseSocket", "latency"), {"delay": 0.1}, ValueError, "latency"),
    (("WSPSend", "bandwidth"), {}, ValueError, "rate"),
    (("WSPSend", "bandwidth"), {"rate": 0}, ValueError, "rate"),
    (("WSPSend", "bandwidth"), {"rate": -5.0}, ValueError, "rate"),
    (("WSPSend", "bandwidth"), {"rate": float("inf")}, ValueError, "rate"),
    (("WSPSend", "bandwidth"), {"rate": "fast"}, TypeError, "rate"),
    (("WSPSend", "bandwidth"), {"rate": 10, "jitter": 1.0}, ValueError, "jitter"),
    (("WSPRecv", "bandwidth"), {"rate": 10}, ValueError, "bandwidth"),
    (("WSPSend", "slice"), {}, ValueError, "size"),
    (("WSPSend", "slice"), {"size": 0}, ValueError, "size"),
    (("WSPSend", "slice"), {"size": 2.5}, TypeError, "size"),
    (("WSPSend", "slice"), {"size": 4, "variation": -1}, ValueError, "variation"),
    (("WSPSend", "slice"), {"size": 4, "variation": 4}, ValueError, "variation"),
    (("WSPSend", "slice"), {"size": 4, "variation": 9}, ValueError, "variation"),
    (("WSPSend", "slice"), {"size": 4, "variation": 1.0}, TypeError, "variation"),
    (("WSPSend", "truncate"), {"size": 4, "variation": 1}, ValueError, "variation"),
    (("WSPRecvFrom", "slice"), {"size": 4}, ValueError, "slice"),
    (("WSPSend", "limit"), {}, ValueError, "nbytes"),
    (("WSPSend", "limit"), {"nbytes": -1}, ValueError, "nbytes"),
    (("WSPSend", "limit"), {"nbytes": 1.0}, TypeError, "nbytes"),
    (("WSPRecv", "limit"), {"nbytes": 1}, ValueError, "limit"),
    (("WSPSend", "stall"), {"timeout": -1}, ValueError, "timeout"),
    (("WSPSend", "stall"), {"timeout": float("inf")}, ValueError, "timeout"),
    (("WSPSend", "stall"), {"timeout": "never"}, TypeError, "timeout"),
    (("WSPSend", "stall"), {"delay": 1.0}, ValueError, "delay"),
    (("WSPRecv", "stall"), {"timeout": 1.0}, ValueError, "stall"),
    (("WSPCloseSocket", "slow_close"), {}, ValueError, "delay"),
    (("WSPCloseSocket", "slow_close"), {"delay": -2}, ValueError, "delay"),
    (("WSPCloseSocket", "slow_close"), {"timeout": 2}, ValueError, "timeout"),
    (("WSPSend", "slow_close"), {"delay": 1}, ValueError, "slow_close"),
    (("WSPSend", "hook"), {}, ValueError, "func"),
    (("WSPSend", "hook"), {"func": 3}, TypeError, "func"),
    (("WSPSend", "hook"), {"func": print, "delay": 1.0}, ValueError, "delay"),
    (("WSPSend", "fail"), {"code": 1, "func": print}, ValueError, "func"),
    (("WSPRecv", "delay"), {"jitter": 0.1}, ValueError, "jitter"),
    (("WSPSend", "drop"), {"nbytes": 1}, ValueError, "nbytes"),
])
def test_add_rule_rejects_bad_parameters(single, args, kwargs, exc, names):
    fault = single.fault
    state = fault.random.getstate()
    with pytest.raises(exc) as info:
        fault.add_rule(*args, **kwargs)
    assert names in str(info.value)                  # the message names what is wrong
    assert fault.rules == [] and fault.random.getstate() == state


@pytest.mark.parametrize("action, kwargs", [("limit", {"nbytes": 4}),
                                            ("stall", {"timeout": 1.0}),
                                            ("stall", {})])
def test_limit_and_stall_need_the_simulated_network_at_the_bottom(action, kwargs):
    fault = FaultProvider(LayeredProvider(ServiceProvider()))
    with pytest.raises(WinsockError) as exc:
        fault.add_rule("WSPSend", action, **kwargs)
    assert exc.value.winerror == WSAEOPNOTSUPP and fault.rules == []


def test_rules_keep_their_parameters(single):
    fault = single.fault
    rules = [fault.add_rule("WSPSend", "latency", delay=1, jitter=0.5),
             fault.add_rule("WSPSend", "bandwidth", rate=1000),
             fault.add_rule("WSPSend", "slice", size=3),
             fault.add_rule("WSPSendTo", "limit", nbytes=0),
             fault.add_rule("WSPSend", "stall"),
             fault.add_rule("WSPCloseSocket", "slow_close", delay=2),
             fault.add_rule("*", "hook", func=len)]
    assert fault.rules == rules
    assert (rules[0].delay, rules[0].jitter) == (1.0, 0.5)
    assert rules[1].rate == 1000.0 and (rules[2].size, rules[2].variation) == (3, 0)
    assert rules[3].nbytes == 0 and rules[4].timeout is None and rules[5].delay == 2.0
    assert rules[6].func is len and "hook" in repr(rules[6]) and "jitter=0.5" in repr(rules[0])


@pytest.mark.parametrize("args, kwargs, exc", [
    (("explode",), {}, ValueError),
    ((3,), {}, TypeError),
    (("fail",), {}, ValueError),                     # code missing
    (("fail",), {"code": 0}, ValueError),
    (("drop",), {"code": 1}, ValueError),
    (("truncate",), {"size": -1}, ValueError),
    (("slice",), {"size": 0}, ValueError),
    (("slice",), {"size": 2, "variation": 2}, ValueError),
    (("delay",), {}, ValueError),
    (("delay",), {"delay": -1.0}, ValueError),
    (("replace",), {"data": 3}, TypeError),
    (("replace",), {}, ValueError),
])
def test_action_rejects_bad_parameters(args, kwargs, exc):
    with pytest.raises(exc) as info:
        Action(*args, **kwargs)
    assert str(info.value)


# -------------------------------------------------------------------- latency
def test_latency_holds_an_overlapped_send_completion(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c)
    rule = stack.fault.add_rule("WSPSend", "latency", delay=0.05)
    ov = Overlapped()
    assert top.WSPSend(c, [b"hello"], 0, ov) == (WSA_IO_PENDING, 0)
    assert stack.recv(a) == b"hello"                  # the data went at once: the news waits
    stack.at(0.049)
    assert stack.packets(port) == [] and ov.pending
    stack.at(0.05)
    assert stack.packets(port) == [(0, 5, 7)]
    assert (ov.Internal, ov.InternalHigh) == (0, 5) and rule.hits == 1


def test_latency_holds_a_receive_from_when_its_data_arrived(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    stack.fault.add_rule("WSPRecv", "latency", delay=0.125)
    buf = bytearray(8)
    assert top.WSPRecv(a, [buf], 0, Overlapped()) == (WSA_IO_PENDING, 0, 0)
    stack.at(0.5)
    top.WSPSend(c, [b"late"])                         # arrives at 0.5 below
    stack.at(0.625 - 2 ** -20)
    assert stack.packets(port) == []
    stack.at(0.625)
    assert stack.packets(port) == [(0, 4, 7)] and bytes(buf[:4]) == b"late"


def test_latency_datagrams(stack):
    top = stack.top
    s, r, to = stack.dgrams()
    port = stack.port(s, r)
    stack.fault.add_rule("*", "latency", delay=0.25)
    assert top.WSPSendTo(s, [b"dgram"], 0, to, Overlapped()) == (WSA_IO_PENDING, 0)
    assert top.WSPRecvFrom(r, [bytearray(8)], 0, Overlapped()) == (WSA_IO_PENDING, 0, 0, None)
    assert stack.packets(port) == []
    stack.at(0.25)
    assert stack.packets(port) == [(0, 5, 7), (0, 5, 7)]


def test_latency_blocking_calls_return_after_the_hold(stack):
    """The calling thread waits the hold out by the clock's wait protocol:
    the virtual clock moves on to it (nothing else can act)."""
    top = stack.top
    c, a, _ = stack.pair()
    stack.fault.add_rule("WSPSend", "latency", delay=0.25)
    stack.fault.add_rule("WSPRecv", "latency", delay=0.5)
    assert top.WSPSend(c, [b"slow"]) == (0, 4)
    assert stack.net.time() == 0.25
    buf = bytearray(8)
    assert top.WSPRecv(a, [buf]) == (0, 4, 0) and bytes(buf[:4]) == b"slow"
    assert stack.net.time() == 0.75


def test_latency_blocking_call_that_fails_is_not_held(single):
    top = single.top
    c, a, _ = single.pair()
    single.fault.add_rule("WSPRecv", "latency", delay=5.0)
    top.WSPIoctl(a, FIONBIO, 1)
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(4)])
    assert exc.value.winerror == WSAEWOULDBLOCK and single.net.time() == 0.0
    top.WSPSend(c, [b"x"])
    assert top.WSPRecv(a, [bytearray(4)]) == (0, 1, 0)    # non-blocking, data there: held too
    assert single.net.time() == 5.0


def test_latency_zero_is_not_a_hold(single):
    top = single.top
    c, a, _ = single.pair()
    port = single.port(c)
    single.fault.add_rule("WSPSend", "latency", delay=0)
    assert top.WSPSend(c, [b"now"], 0, Overlapped()) == (0, 3)
    assert single.packets(port) == [(0, 3, 7)] and single.fault.held == 0


def test_latency_completion_routine(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    got = []
    stack.fault.add_rule("WSPSend", "latency", delay=0.25)
    top.WSPSend(c, [b"abc"], 0, Overlapped(), lambda e, n, o, f: got.append((e, n)))
    stack.drain_apcs()
    assert got == []
    stack.at(0.25)
    assert proc.SleepEx(0, True) == WAIT_IO_COMPLETION
    assert got == [(0, 3)]


def test_latency_release_delivers_early(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    port = single.port(c)
    fault.add_rule("WSPSend", "latency", delay=10.0)
    top.WSPSend(c, [b"x"], 0, Overlapped())
    assert fault.held == 1 and single.net.clock.scheduled == 1
    assert fault.release() == 1
    assert single.packets(port) == [(0, 1, 7)] and single.net.clock.scheduled == 0
    single.at(20.0)
    assert single.packets(port) == []


def run_jitter(seed, n=24, spacing=0.25):
    """The records of a tracer over the fault layer (simulated ns) for `n`
    overlapped sends made `spacing` seconds apart under latency 0.1 +- 0.05."""
    with TimedStack(traced(lambda base: FaultProvider(base, seed=seed)), seed=5) as st:
        c, a, _ = st.pair()
        st.fault.add_rule("WSPSend", "latency", delay=0.1, jitter=0.05)
        for i in range(n):
            st.at(i * spacing)
            st.top.WSPSend(c, [b"j"], 0, Overlapped())
        st.at(n * spacing + 1.0)
        records = [r.to_dict() for r in st.top.records if r.op in ("WSPSend", "completion")]
    return records


def held_ns(records):
    """How long each completion was held (ns), call by call."""
    calls = [r["time"] for r in records if r["op"] == "WSPSend"]
    done = [r["time"] for r in records if r["op"] == "completion"]
    assert len(calls) == len(done)
    return [d - c for c, d in zip(calls, done)]


def test_latency_jitter_is_seeded_and_bounded():
    first, again, other = run_jitter(11), run_jitter(11), run_jitter(12)
    assert first == again                                  # identical records, times too
    holds = held_ns(first)
    assert len(holds) == 24 and all(50_000_000 <= h <= 150_000_000 for h in holds)
    assert len(set(holds)) == 24                           # every draw differs
    assert holds != held_ns(other)


def test_latency_jitter_keeps_a_sockets_completions_in_order():
    records = run_jitter(11, spacing=0.0)                  # all sent at once
    done = [r["time"] for r in records if r["op"] == "completion"]
    assert len(done) == 24 and done == sorted(done)        # whatever the draws
    assert all(50_000_000 <= t <= 150_000_000 for t in done)
    assert len(set(done)) > 1


def test_latency_jitter_never_goes_below_zero(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    port = single.port(c)
    fault.add_rule("WSPSend", "latency", delay=0.0, jitter=1.0)
    results = [top.WSPSend(c, [b"z"], 0, Overlapped()) for _ in range(20)]
    now = [r for r in results if r == (0, 1)]
    assert len(single.packets(port)) == len(now)          # drawn <= 0: not held at all
    single.at(1.0)
    assert len(single.packets(port)) == 20 - len(now)


# ------------------------------------------------------------------ bandwidth
def test_bandwidth_back_to_back_sends_queue(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c)
    stack.fault.add_rule("WSPSend", "bandwidth", rate=80)          # 10 bytes: 0.125 s
    ovs = [Overlapped() for _ in range(3)]
    for ov in ovs:
        assert top.WSPSend(c, [b"0123456789"], 0, ov) == (WSA_IO_PENDING, 0)
    for due in (0.125, 0.25, 0.375):
        stack.at(due - 2 ** -20)
        assert stack.packets(port) == []
        stack.at(due)
        assert stack.packets(port) == [(0, 10, 7)]
    assert not any(ov.pending for ov in ovs)


def test_bandwidth_blocking_send_and_an_idle_wire(single):
    top = single.top
    c, a, _ = single.pair()
    port = single.port(c)
    single.fault.add_rule("WSPSend", "bandwidth", rate=40)
    assert top.WSPSend(c, [b"x" * 10]) == (0, 10)
    assert single.net.time() == 0.25
    top.WSPSend(c, [b"y" * 20], 0, Overlapped())                   # the wire is free: 0.5 s
    single.at(0.5)
    assert single.packets(port) == []
    single.at(0.75)
    assert single.packets(port) == [(0, 20, 7)]
    single.at(4.0)                                                 # idle a while
    top.WSPSend(c, [b"z" * 5], 0, Overlapped())
    single.at(4.125)
    assert single.packets(port) == [(0, 5, 7)]
    assert single.recv(a, 64) == b"x" * 10 + b"y" * 20 + b"z" * 5


def test_bandwidth_is_per_socket(single):
    top = single.top
    c1, a1, _ = single.pair()
    c2, a2, _ = single.pair()
    port = single.port(c1, c2)
    single.fault.add_rule("WSPSend", "bandwidth", rate=8)
    top.WSPSend(c1, [b"a"], 0, Overlapped())
    top.WSPSend(c2, [b"b"], 0, Overlapped())
    single.at(0.125)
    assert single.packets(port) == [(0, 1, 7), (0, 1, 7)]           # side by side, not queued


def test_two_fault_layers_compose_bandwidth_and_latency():
    with TimedStack(lambda base: FaultProvider(FaultProvider(base))) as st:
        upper, lower = st.layers[1], st.layers[0]
        c, a, _ = st.pair()
        port = st.port(c)
        lower.add_rule("WSPSend", "bandwidth", rate=80)
        upper.add_rule("WSPSend", "latency", delay=0.25)
        st.top.WSPSend(c, [b"x" * 10], 0, Overlapped())
        st.at(0.125)
        assert (lower.held, upper.held) == (0, 1) and st.packets(port) == []
        st.at(0.375 - 2 ** -20)
        assert st.packets(port) == []
        st.at(0.375)
        assert st.packets(port) == [(0, 10, 7)]


# ---------------------------------------------------------------------- slice
def test_slice_blocking_send_goes_down_in_pieces(below):
    top = below.top
    c, a, _ = below.pair()
    below.fault.add_rule("WSPSend", "slice", size=4)
    assert top.WSPSend(c, [b"0123456", b"789"]) == (0, 10)
    assert below.sends_below() == [(4, 4), (4, 4), (2, 2)]
    assert below.recv(a) == b"0123456789"
    assert top.WSPSend(c, [b"abc"]) == (0, 3)                 # one piece: as it is
    assert below.sends_below()[-1] == (3, 3)


def test_slice_overlapped_send_is_one_completion(below):
    top, proc = below.top, below.proc
    c, a, _ = below.pair()
    port = below.port(c)
    below.fault.add_rule("WSPSend", "slice", size=3)
    ov = Overlapped()
    assert top.WSPSend(c, [b"abcdefgh"], 0, ov) == (0, 8)
    assert below.packets(port) == [(0, 8, 7)] and ov.InternalHigh == 8
    assert below.sends_below() == [(3, 3), (3, 3), (2, 2)]
    got = []
    assert top.WSPSend(a, [b"routine"], 0, Overlapped(),
                       lambda e, n, o, f: got.append((e, n))) == (0, 7)
    assert proc.SleepEx(0, True) == WAIT_IO_COMPLETION and got == [(0, 7)]
    assert proc.SleepEx(0, True) == 0                            # exactly once
    assert below.recv(a) == b"abcdefgh" and below.recv(c) == b"routine"


def test_slice_pending_pieces_complete_the_request_when_the_last_one_does(below):
    top = below.top
    c, a, _ = below.pair()
    top.WSPSetSockOpt(c, SOL_SOCKET, wsp.SO_SNDBUF, 4)
    top.WSPSetSockOpt(a, SOL_SOCKET, wsp.SO_RCVBUF, 4)
    port = below.port(c)
    below.fault.add_rule("WSPSend", "slice", size=4)
    assert top.WSPSend(c, [b"x" * 16], 0, Overlapped()) == (WSA_IO_PENDING, 0)
    assert below.packets(port) == []
    got = b""
    while len(got) < 16:
        got += below.recv(a, 64)
    assert got == b"x" * 16
    assert below.packets(port) == [(0, 16, 7)]


def test_slice_variation_is_seeded():
    def run(seed):
        with TimedStack(lambda base: FaultProvider(TracingProvider(base), seed=seed)) as st:
            c, a, _ = st.pair()
            st.fault.add_rule("WSPSend", "slice", size=6, variation=3)
            for _ in range(5):
                assert st.top.WSPSend(c, [bytes(range(40))]) == (0, 40)
            sizes = [size for size, _ in st.sends_below()]
            data = b""
            while len(data) < 200:
                data += st.recv(a, 512)
            assert data == bytes(range(40)) * 5
        return sizes
    first, again, other = run(3), run(3), run(4)
    assert first == again and first != other
    assert sum(first) == 200 and all(1 <= n <= 9 for n in first)
    assert len(set(first)) > 2                                  # the sizes do vary


def test_slice_datagram_becomes_several(below):
    top = below.top
    s, r, to = below.dgrams()
    below.fault.add_rule("WSPSendTo", "slice", size=2)
    assert top.WSPSendTo(s, [b"abcde"], 0, to) == (0, 5)
    got = []
    for _ in range(3):
        buf = bytearray(8)
        n = top.WSPRecvFrom(r, [buf])[1]
        got.append(bytes(buf[:n]))
    assert got == [b"ab", b"cd", b"e"]


def test_slice_on_a_reset_connection_fails_before_starting(below):
    top = below.top
    c, a, _ = below.pair()
    port = below.port(c)
    below.fault.add_rule("WSPSend", "reset", count=1)
    with pytest.raises(WinsockError):
        top.WSPSend(c, [b"x"])
    below.fault.add_rule("WSPSend", "slice", size=1)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"xyz"], 0, Overlapped())
    assert exc.value.winerror == WSAECONNRESET
    assert below.packets(port) == [] and below.proc.resources()["overlapped_pending"] == 0


# ---------------------------------------------------------------------- limit
def test_limit_resets_after_nbytes(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    rule = stack.fault.add_rule("WSPSend", "limit", nbytes=10,
                                socket=stack.handle_in(stack.fault, c))
    bufs = [bytearray(64) for _ in range(3)]
    for buf in bufs:
        top.WSPRecv(a, [buf], 0, Overlapped())
    assert top.WSPSend(c, [b"abcdef"]) == (0, 6)
    assert top.WSPSend(c, [b"ghijkl"]) == (0, 4)           # only the bytes up to the limit
    assert stack.packets(port) == [(0, 6, 7), (0, 4, 7), (WSAECONNRESET, 0, 7)]
    assert bytes(bufs[1][:4]) == b"ghij"
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"more"])
    assert exc.value.winerror == WSAECONNRESET
    assert rule.hits == 3


def test_limit_exactly_reached_resets_after_that_send(below):
    top = below.top
    c, a, _ = below.pair()
    port = below.port(c)
    below.fault.add_rule("WSPSend", "limit", nbytes=4)
    assert top.WSPSend(c, [b"ab"], 0, Overlapped()) == (0, 2)
    assert top.WSPSend(c, [b"cd"], 0, Overlapped()) == (0, 2)
    assert below.packets(port) == [(0, 2, 7), (0, 2, 7)]
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(8)])
    assert exc.value.winerror == WSAECONNRESET
    assert below.sends_below() == [(2, 2), (2, 2)]


def test_limit_counts_each_socket(below):
    top = below.top
    c1, a1, _ = below.pair()
    c2, a2, _ = below.pair()
    below.fault.add_rule("WSPSend", "limit", nbytes=3)
    assert top.WSPSend(c1, [b"12345"]) == (0, 3)
    assert top.WSPSend(c2, [b"1"]) == (0, 1)                # its own budget
    assert top.WSPSend(c2, [b"2"]) == (0, 1)
    for s in (c1, a1):
        with pytest.raises(WinsockError) as exc:
            top.WSPSend(s, [b"x"])
        assert exc.value.winerror == WSAECONNRESET
    assert below.sends_below()[:3] == [(3, 3), (1, 1), (1, 1)]


def test_limit_zero_resets_at_once(single):
    top = single.top
    c, a, _ = single.pair()
    single.fault.add_rule("WSPSend", "limit", nbytes=0)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"], 0, Overlapped())
    assert exc.value.winerror == WSAECONNRESET
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(4)])
    assert exc.value.winerror == WSAECONNRESET


def test_limit_datagram_fails_only_the_calls(single):
    top = single.top
    s, r, to = single.dgrams()
    single.fault.add_rule("WSPSendTo", "limit", nbytes=3)
    assert top.WSPSendTo(s, [b"abcde"], 0, to) == (0, 3)
    for _ in range(2):
        with pytest.raises(WinsockError) as exc:
            top.WSPSendTo(s, [b"x"], 0, to)
        assert exc.value.winerror == WSAECONNRESET
    buf = bytearray(8)
    assert top.WSPRecvFrom(r, [buf])[:2] == (0, 3) and bytes(buf[:3]) == b"abc"


# ---------------------------------------------------------------------- stall
def test_stall_holds_sends_then_resets(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c, a)
    rule = stack.fault.add_rule("WSPSend", "stall", timeout=0.5,
                                socket=stack.handle_in(stack.fault, c))
    peer = Overlapped()
    top.WSPRecv(a, [bytearray(8)], 0, peer)
    ov1, ov2 = Overlapped(), Overlapped()
    stack.at(0.25)
    assert top.WSPSend(c, [b"stuck"], 0, ov1) == (WSA_IO_PENDING, 0)      # stalls from 0.25
    stack.at(0.5)
    assert top.WSPSend(c, [b"also"], 0, ov2) == (WSA_IO_PENDING, 0)
    stack.at(0.75 - 2 ** -20)
    assert stack.packets(port) == [] and ov1.pending and peer.pending
    stack.at(0.75)
    got = stack.proc.GetQueuedCompletionStatusEx(port, 8, 0)
    assert sorted((g[0], g[1], id(g[3])) for g in got) == sorted(
        [(WSAECONNRESET, 0, id(peer)), (WSAECONNRESET, 0, id(ov1)), (WSAECONNRESET, 0, id(ov2))])
    assert rule.hits == 1                                 # the stall belongs to the socket
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAECONNRESET


def test_stall_passes_nothing_down(below):
    top = below.top
    c, a, _ = below.pair()
    below.fault.add_rule("WSPSend", "stall", timeout=1.0)
    top.WSPSend(c, [b"a"], 0, Overlapped())
    top.WSPSend(c, [b"b"], 0, Overlapped())
    below.at(0.5)
    assert below.sends_below() == []
    top.WSPIoctl(a, FIONBIO, 1)
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(a, [bytearray(4)])
    assert exc.value.winerror == WSAEWOULDBLOCK
    below.at(1.0)
    assert below.sends_below() == []


def test_stall_datagram_fails_the_held_sends_then_flows_again(single):
    top = single.top
    s, r, to = single.dgrams()
    port = single.port(s)
    single.fault.add_rule("WSPSendTo", "stall", timeout=0.25)
    top.WSPSendTo(s, [b"held"], 0, to, Overlapped())
    single.at(0.25)
    assert single.packets(port) == [(WSAECONNRESET, 0, 7)]
    assert top.WSPSendTo(s, [b"flows"], 0, to) == (0, 5)          # it stalls once
    buf = bytearray(8)
    assert top.WSPRecvFrom(r, [buf])[:2] == (0, 5) and bytes(buf[:5]) == b"flows"


def test_stall_blocking_send_fails_at_the_reset(stack):
    top = stack.top
    c, a, _ = stack.pair()
    stack.fault.add_rule("WSPSend", "stall", timeout=0.5)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAECONNRESET and stack.net.time() == 0.5


def test_stall_nonblocking_send_would_block(single):
    top = single.top
    c, a, _ = single.pair()
    single.fault.add_rule("WSPSend", "stall", timeout=2.0)
    top.WSPIoctl(c, FIONBIO, 1)
    for _ in range(2):
        with pytest.raises(WinsockError) as exc:
            top.WSPSend(c, [b"x"])
        assert exc.value.winerror == WSAEWOULDBLOCK
    assert single.net.time() == 0.0
    single.at(2.0)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAECONNRESET


def test_stall_without_timeout_lasts_until_close(single):
    top, fault = single.top, single.fault
    c, a, _ = single.pair()
    port = single.port(c)
    fault.add_rule("WSPSend", "stall")
    ov = Overlapped()
    top.WSPSend(c, [b"never"], 0, ov)
    assert single.net.clock.scheduled == 0                 # no reset is coming
    single.at(1000.0)
    assert ov.pending and single.packets(port) == []
    fault.clear()
    top.WSPSend(c, [b"still"], 0, Overlapped())            # the stall outlives its rule
    top.WSPCloseSocket(c)
    got = single.proc.GetQueuedCompletionStatusEx(port, 8, 0)
    assert [(g[0], g[1]) for g in got] == [(WSA_OPERATION_ABORTED, 0)] * 2


def test_stall_abort_status_on_close(single):
    top = single.top
    c, a, _ = single.pair()
    port = single.port(c)
    single.fault.add_rule("WSPSend", "stall")
    single.fault.add_rule("WSPCloseSocket", "abort_status", code=WSAENETDOWN)
    top.WSPSend(c, [b"x"], 0, Overlapped())
    top.WSPCloseSocket(c)
    assert single.packets(port) == [(WSAENETDOWN, 0, 7)]


def test_stall_blocked_thread_is_interrupted_by_close(single):
    top = single.top
    c, a, _ = single.pair()
    single.fault.add_rule("WSPSend", "stall")
    errors = []

    def blocked():
        try:
            top.WSPSend(c, [b"x"])
        except WinsockError as exc:
            errors.append(exc.winerror)

    thread = threading.Thread(target=blocked)
    thread.start()
    deadline = time.monotonic() + JOIN
    while single.net.clock.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.001)                                   # until it waits on the network
    assert single.net.clock.waiting == 1
    top.WSPCloseSocket(c)
    thread.join(JOIN)
    assert not thread.is_alive() and errors == [WSAEINTR]


def test_cleanup_ends_stalls_and_timers():
    with TimedStack() as st:
        c, a, _ = st.pair()
        st.fault.add_rule("WSPSend", "stall", timeout=5.0)
        ov = Overlapped()
        st.top.WSPSend(c, [b"x"], 0, ov)
        assert st.net.clock.scheduled == 1
        st.top.WSPCleanup()
        assert st.net.clock.scheduled == 0 and ov.Internal == WSA_OPERATION_ABORTED
        st.at(10.0)
        assert st.proc.resources()["overlapped_pending"] == 0


# ----------------------------------------------------------------- slow_close
def test_slow_close_reaches_the_peer_later(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    stack.fault.add_rule("WSPCloseSocket", "slow_close", delay=0.25,
                         socket=stack.handle_in(stack.fault, c))
    top.WSPSend(c, [b"bye"])
    buf = bytearray(8)
    top.WSPRecv(a, [buf], 0, Overlapped())
    assert stack.packets(port) == [(0, 3, 7)]
    fin = Overlapped()
    top.WSPRecv(a, [bytearray(8)], 0, fin)
    top.WSPCloseSocket(c)                                   # returns at once
    with pytest.raises(WinsockError) as exc:
        top.WSPGetPeerName(c)
    assert exc.value.winerror == WSAENOTSOCK                # the handle is gone now
    stack.at(0.25 - 2 ** -20)
    assert stack.packets(port) == [] and fin.pending        # the peer does not know yet
    stack.at(0.25)
    assert stack.packets(port) == [(0, 0, 7)]               # the graceful end of the stream


def test_slow_close_aborts_pending_requests_when_it_arrives(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c)
    stack.fault.add_rule("WSPCloseSocket", "slow_close", delay=0.5)
    pending = Overlapped()
    top.WSPRecv(c, [bytearray(8)], 0, pending)
    top.WSPCloseSocket(c)
    top.WSPSend(a, [b"late"])                 # still open below: the receive gets it
    assert stack.packets(port) == [(0, 4, 7)]
    again = Overlapped()
    c2, a2, _ = stack.pair()
    port2 = stack.port(c2)
    top.WSPRecv(c2, [bytearray(8)], 0, again)
    top.WSPCloseSocket(c2)
    stack.at(0.25)
    assert again.pending and stack.packets(port2) == []
    stack.at(0.5)
    assert stack.packets(port2) == [(WSA_OPERATION_ABORTED, 0, 7)]


def test_slow_close_the_lower_close_comes_late(below):
    top = below.top
    c, a, _ = below.pair()
    port = below.port(c)
    below.fault.add_rule("WSPCloseSocket", "slow_close", delay=1.0)
    pending = Overlapped()
    top.WSPRecv(c, [bytearray(8)], 0, pending)
    top.WSPCloseSocket(c)
    assert not [r for r in below.tracer.records if r.op == "WSPCloseSocket"]
    below.at(0.5)
    assert pending.pending and below.packets(port) == []
    below.at(1.0)
    closes = [r for r in below.tracer.records if r.op == "WSPCloseSocket"]
    assert len(closes) == 1 and closes[0].time == 1_000_000_000
    assert below.packets(port) == [(WSA_OPERATION_ABORTED, 0, 7)]


def test_slow_close_lingering_close_does_not_wait_and_hard_close_stays_hard(single):
    top = single.top
    c1, a1, _ = single.pair()
    c2, a2, _ = single.pair()
    port = single.port(a1, a2)
    single.fault.add_rule("WSPCloseSocket", "slow_close", delay=0.5)
    top.WSPSetSockOpt(c1, SOL_SOCKET, SO_LINGER, Linger(1, 30))
    top.WSPSetSockOpt(c2, SOL_SOCKET, SO_LINGER, Linger(1, 0))
    top.WSPRecv(a1, [bytearray(8)], 0, Overlapped())
    top.WSPRecv(a2, [bytearray(8)], 0, Overlapped())
    top.WSPCloseSocket(c1)
    top.WSPCloseSocket(c2)
    single.at(0.5)
    got = sorted(p[:2] for p in single.packets(port))
    assert got == sorted([(0, 0), (WSAECONNRESET, 0)])      # graceful; hard


def test_slow_close_then_cleanup_closes_everything(single):
    top = single.top
    c, a, _ = single.pair()
    single.fault.add_rule("WSPCloseSocket", "slow_close", delay=100.0)
    top.WSPCloseSocket(c)
    assert single.net.clock.scheduled == 1
    # finish(): the final cleanup closes the lower socket and drops the timer


# ----------------------------------------------------------------------- hook
def test_hook_sees_the_calls(stack):
    top = stack.top
    calls = []
    stack.fault.add_rule("*", "hook", func=calls.append)
    c, a, lst = stack.pair()
    stack.at(0.5)
    ov = Overlapped()
    top.WSPSend(c, [b"ab", b"cde"], 0, ov)
    top.WSPRecv(a, [bytearray(16)], 0)
    s, r, to = stack.dgrams()
    top.WSPSendTo(s, [b"d"], 0, to)
    assert all(isinstance(call, Call) for call in calls)
    ops = [call.op for call in calls]
    assert ops[:4] == ["WSPSocket", "WSPBind", "WSPListen", "WSPGetSockName"]
    assert "WSPConnect" in ops and "WSPAccept" in ops
    mine = stack.handle_in(stack.fault, c)
    send, = [call for call in calls if call.op == "WSPSend"]
    assert (send.socket, send.size, send.data, send.flags, send.overlapped) == (
        mine, 5, b"abcde", 0, True)
    assert send.time == 0.5 and send.args == () and send.buffers == [b"ab", b"cde"]
    recv, = [call for call in calls if call.op == "WSPRecv"]
    assert (recv.size, recv.data, recv.overlapped) == (16, None, False)
    sendto, = [call for call in calls if call.op == "WSPSendTo"]
    assert sendto.args == (to,) and sendto.data == b"d"
    socket_call = calls[0]
    assert socket_call.socket is None and socket_call.args == (wsp.AF_INET, wsp.SOCK_STREAM, 0)
    connect, = [call for call in calls if call.op == "WSPConnect"]
    assert connect.args == (stack.getsockname(lst),) and connect.size is None
    assert "WSPSend" in repr(send)


def test_hook_decisions(below):
    top = below.top
    c, a, _ = below.pair()
    decisions = iter([None, "pass", Action("fail", code=WSAENOBUFS), "drop",
                      Action("truncate", size=2), Action("replace", data=b"XY"),
                      Action("slice", size=2)])
    rule = below.fault.add_rule("WSPSend", "hook", func=lambda call: next(decisions))
    assert top.WSPSend(c, [b"one"]) == (0, 3)
    assert top.WSPSend(c, [b"two"]) == (0, 3)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"failed"])
    assert exc.value.winerror == WSAENOBUFS
    assert top.WSPSend(c, [b"dropped"]) == (0, 7)
    assert top.WSPSend(c, [b"truncated"]) == (0, 2)
    assert top.WSPSend(c, [b"replaced"]) == (0, 8)          # its own size
    assert top.WSPSend(c, [b"slice"]) == (0, 5)
    assert below.sends_below() == [(3, 3), (3, 3), (2, 2), (2, 2), (2, 2), (2, 2), (1, 1)]
    assert below.recv(a, 64) == b"onetwotrXYslice"
    assert rule.hits == 7


def test_hook_replace_overlapped_reports_its_own_size(single):
    top = single.top
    c, a, _ = single.pair()
    port = single.port(c)
    single.fault.add_rule("WSPSend", "hook", func=lambda call: Action(
        "replace", data=call.data.upper()))
    assert top.WSPSend(c, [b"shout"], 0, Overlapped()) == (0, 5)
    assert single.packets(port) == [(0, 5, 7)]
    assert single.recv(a) == b"SHOUT"


def test_hook_delay_reset_and_slow_close(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c, a)
    delay = Action("delay", delay=0.25)
    stack.fault.add_rule("WSPRecv", "hook", func=lambda call: delay)
    stack.fault.add_rule("WSPSend", "hook",
                         func=lambda call: "reset" if call.data == b"reset" else None)
    stack.fault.add_rule("WSPCloseSocket", "hook", func=lambda call: Action("delay", delay=1))
    top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
    top.WSPSend(c, [b"hi"])
    stack.at(0.25)
    assert stack.packets(port) == [(0, 2, 7)]
    buf = bytearray(8)
    top.WSPSend(c, [b"yo"])
    assert top.WSPRecv(a, [buf]) == (0, 2, 0) and stack.net.time() == 0.5   # blocking: waits
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"reset"])
    assert exc.value.winerror == WSAECONNRESET
    c2, a2, _ = stack.pair()
    top.WSPCloseSocket(c2)                                  # "delay" on a close: a slow close
    fin = Overlapped()
    top.WSPRecv(a2, [bytearray(8)], 0, fin)
    stack.at(1.0)
    assert fin.pending                                      # the receive itself is delayed too
    stack.at(1.75)
    assert not fin.pending and fin.InternalHigh == 0


def test_hook_can_keep_state(single):
    top = single.top
    c, a, _ = single.pair()
    seen = []

    def third_fails(call):
        seen.append(call.size)
        return Action("fail", code=WSAENETDOWN) if len(seen) == 3 else None

    single.fault.add_rule("WSPSend", "hook", func=third_fails)
    results = []
    for _ in range(5):
        try:
            results.append(top.WSPSend(c, [b"x"]))
        except WinsockError as exc:
            results.append(exc.winerror)
    assert results == [(0, 1), (0, 1), WSAENETDOWN, (0, 1), (0, 1)]


def test_hook_errors_propagate(single):
    top = single.top
    c, a, _ = single.pair()

    def boom(call):
        raise RuntimeError("hook says no")

    rule = single.fault.add_rule("WSPGetPeerName", "hook", func=boom)
    with pytest.raises(RuntimeError):
        top.WSPGetPeerName(c)
    single.fault.remove_rule(rule)
    for decision, exc in [(Action("drop"), ValueError), (42, TypeError),
                          ("fail", ValueError), (Action("slice", size=1), ValueError)]:
        rule = single.fault.add_rule("WSPRecv", "hook", func=lambda call, d=decision: d)
        with pytest.raises(exc):
            top.WSPRecv(a, [bytearray(4)], 0, Overlapped())
        single.fault.remove_rule(rule)
        assert single.proc.resources()["overlapped_pending"] == 0      # nothing started
    rule = single.fault.add_rule("WSPConnect", "hook", func=lambda call: Action("drop"))
    with pytest.raises(ValueError):
        top.WSPConnect(single.socket(), ("127.0.0.1", 9))


def test_hook_fail_on_a_socketless_entry(single):
    single.fault.add_rule("WSPSocket", "hook", func=lambda call: Action("fail", code=WSAENOBUFS))
    with pytest.raises(WinsockError) as exc:
        single.socket()
    assert exc.value.winerror == WSAENOBUFS
    assert single.proc.resources()["sockets"] == 0


# -------------------------------------------------- processes, determinism, wall clock
def test_two_processes_on_one_virtual_network():
    """A server process with latency on its receives, a client process
    with bandwidth on its sends: both count the network's one clock."""
    net = wsp.sim.Network(seed=2, clock="virtual")
    with TimedStack(net=net) as server, TimedStack(net=net) as client:
        assert server.proc.clock is client.proc.clock is net.clock
        lst, addr = server.listener()
        c = client.socket()
        client.connect(c, addr)
        a, _ = server.accept(lst)
        sport, cport = server.port(a), client.port(c)
        server.fault.add_rule("WSPRecv", "latency", delay=0.5)
        client.fault.add_rule("WSPSend", "bandwidth", rate=16)
        server.top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
        client.top.WSPSend(c, [b"12345678"], 0, Overlapped())
        server.at(0.5)
        assert (server.packets(sport), client.packets(cport)) == ([(0, 8, 7)], [(0, 8, 7)])


def run_mixed(seed):
    """Jitter and slice variation over a tracer, both recording simulated time."""
    build = traced(lambda base: FaultProvider(TracingProvider(base, clock=sim_ns(base.network)),
                                              seed=seed))
    with TimedStack(build, seed=seed) as st:
        c, a, _ = st.pair()
        st.fault.add_rule("WSPSend", "slice", size=5, variation=4, socket=st.handle_in(st.fault, c))
        st.fault.add_rule("WSPSend", "latency", delay=0.2, jitter=0.1)
        st.fault.add_rule("WSPRecv", "latency", delay=0.1, jitter=0.1)
        for _ in range(6):
            st.top.WSPSend(c, [bytes(30)], 0, Overlapped())
            st.top.WSPSend(a, [bytes(7)], 0, Overlapped())
            st.top.WSPRecv(c, [bytearray(64)], 0, Overlapped())
            st.at(st.net.time() + 0.125)
        st.at(2.0)
        inner = st.providers[2]
        records = ([r.to_dict() for r in st.top.records],
                   [r.to_dict() for r in inner.records])
    return records


def test_same_seed_same_records_other_seed_other_records():
    first, again, other = run_mixed(21), run_mixed(21), run_mixed(22)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]   # times above, piece sizes below


def test_wall_clock_latency():
    with TimedStack(clock=None) as st:
        assert st.proc.clock is None
        c, a, _ = st.pair()
        port = st.port(c)
        st.fault.add_rule("WSPSend", "latency", delay=0.05)
        started = time.monotonic()
        assert st.top.WSPSend(c, [b"wall"], 0, Overlapped()) == (WSA_IO_PENDING, 0)
        early = st.packets(port)
        assert early == [] or time.monotonic() - started >= 0.05
        got = early or [st.proc.GetQueuedCompletionStatus(port, 5000)[:3]]
        assert got == [(0, 4, 7)]
        assert 0.05 <= time.monotonic() - started < 5.0
        started = time.monotonic()
        assert st.top.WSPSend(c, [b"block"]) == (0, 5)             # a blocking call waits
        assert 0.05 <= time.monotonic() - started < 5.0


def test_wall_clock_stall_and_slow_close():
    with TimedStack(clock=None) as st:
        c, a, _ = st.pair()
        port = st.port(c, a)
        st.fault.add_rule("WSPSend", "stall", timeout=0.05, socket=st.handle_in(st.fault, c))
        st.fault.add_rule("WSPCloseSocket", "slow_close", delay=0.05)
        started = time.monotonic()
        st.top.WSPSend(c, [b"x"], 0, Overlapped())
        got = st.proc.GetQueuedCompletionStatusEx(port, 8, 5000)
        assert [g[:3] for g in got] == [(WSAECONNRESET, 0, 7)]
        assert 0.05 <= time.monotonic() - started < 5.0
        c2, a2, _ = st.pair()
        port2 = st.port(a2)
        st.top.WSPRecv(a2, [bytearray(4)], 0, Overlapped())
        started = time.monotonic()
        st.top.WSPCloseSocket(c2)
        assert st.proc.GetQueuedCompletionStatus(port2, 5000)[:3] == (0, 0, 7)
        assert 0.05 <= time.monotonic() - started < 5.0


def test_a_send_that_fails_at_once_is_not_held(single):
    top = single.top
    c, a, _ = single.pair()
    single.fault.add_rule("WSPSend", "bandwidth", rate=1)
    single.net.set_down(True)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"], 0, Overlapped())
    assert exc.value.winerror == WSAENETDOWN
    assert single.fault.held == 0 and single.net.time() == 0.0
    single.net.set_down(False)
