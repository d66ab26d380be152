"""Regression tests for what adversarial testing broke in the SPI layer:
timeouts that hung or overflowed, a cleanup that stopped half-way after a
handle was closed behind the provider's back, an unclear WPUFDIsSet error,
and the README's claim about handle reuse.  Each failed before its fix."""
from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import pytest

import wsp
import wsp.sim
from helpers import JOIN_TIMEOUT, Worker, assert_winsock
from simkit import LOCAL, Sim, connect
from wsp import (INFINITE, SOCK_DGRAM, WAIT_TIMEOUT, WSA_INVALID_PARAMETER, WSAEINVAL,
                 WSAENOTSOCK, WinsockError)
from wsp.spi.checks import FOREVER_SECONDS, gather, int_arg, scatter, seconds_timeout

HUGE_FINITE = [FOREVER_SECONDS * 10, 1e300, 2 ** 64, 10 ** 400]
NOT_FINITE = [math.nan, math.inf, -math.inf, -1, -0.5, -(10 ** 400)]


# ----------------------------------------------------------- the shared rule
@pytest.mark.parametrize("value", HUGE_FINITE, ids=repr)
def test_a_huge_finite_timeout_means_forever(value):
    assert seconds_timeout(value) is None


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_a_timeout_that_is_not_finite_and_positive_is_wsaeinval(value):
    with pytest.raises(WinsockError) as excinfo:
        seconds_timeout(value, "WSPSelect")
    assert_winsock(excinfo, WSAEINVAL)
    assert excinfo.value.funcname == "WSPSelect"


@pytest.mark.parametrize("value", ["1", b"1", object(), True, [1]], ids=repr)
def test_a_timeout_of_the_wrong_type_is_a_typeerror(value):
    with pytest.raises(TypeError, match="timeout"):
        seconds_timeout(value)


@pytest.mark.parametrize("value,expected", [(0, 0.0), (0.25, 0.25), (7, 7.0),
                                            (FOREVER_SECONDS, FOREVER_SECONDS)])
def test_an_ordinary_timeout_is_kept(value, expected):
    assert seconds_timeout(value) == expected


# ------------------------------------------------------------------ WSPSelect
@pytest.fixture
def idle_pair():
    sim = Sim()
    c, a, lst = connect(sim)
    yield sim, c, a
    sim.close()


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
def test_wspselect_refuses_a_timeout_that_is_not_finite(idle_pair, value):
    sim, c, _ = idle_pair
    with pytest.raises(WinsockError) as excinfo:
        sim.prov.WSPSelect([c], [], [], value)      # nan used to spin at 100% CPU
    assert_winsock(excinfo, WSAEINVAL)


@pytest.mark.parametrize("value", HUGE_FINITE, ids=repr)
def test_wspselect_with_a_huge_timeout_waits_until_ready(idle_pair, value):
    """inf, 1e300 and 2**64 used to raise OverflowError from threading."""
    sim, c, a = idle_pair
    worker = Worker(sim.prov.WSPSelect, [c], [], [], value)
    worker.start()
    assert worker.started.wait(JOIN_TIMEOUT)
    worker.join(0.05)
    assert worker.is_alive() and worker.error is None      # still waiting, no error
    sim.prov.WSPSend(a, [b"x"])
    assert worker.finish() == ([c], [], [])


def test_wspselect_timeout_zero_polls(idle_pair):
    sim, c, _ = idle_pair
    assert sim.prov.WSPSelect([c], [], [], 0) == ([], [], [])
    assert sim.prov.WSPSelect([c], [c], [], 0.0) == ([], [c], [])


# ------------------------------------------------- millisecond timeouts of the SPI
@pytest.fixture
def proc():
    p = wsp.Process()
    yield p
    p.terminate()


def _ms_calls(proc):
    port = proc.CreateIoCompletionPort(None)
    event = proc.WSACreateEvent()
    return {
        "SleepEx": lambda ms: proc.SleepEx(ms, True),
        "WSAWaitForMultipleEvents": lambda ms: proc.WSAWaitForMultipleEvents([event], False,
                                                                            ms, True),
        "GetQueuedCompletionStatus": lambda ms: proc.GetQueuedCompletionStatus(port, ms),
        "GetQueuedCompletionStatusEx": lambda ms: proc.GetQueuedCompletionStatusEx(port, 4, ms),
    }


@pytest.mark.parametrize("name", ["SleepEx", "WSAWaitForMultipleEvents",
                                  "GetQueuedCompletionStatus", "GetQueuedCompletionStatusEx"])
@pytest.mark.parametrize("ms", [-1, INFINITE + 1, 2 ** 64, 10 ** 400])
def test_a_millisecond_timeout_outside_a_dword_is_invalid_parameter(proc, name, ms):
    with pytest.raises(WinsockError) as excinfo:
        _ms_calls(proc)[name](ms)
    assert_winsock(excinfo, WSA_INVALID_PARAMETER)
    assert excinfo.value.funcname == name


@pytest.mark.parametrize("name", ["SleepEx", "WSAWaitForMultipleEvents",
                                  "GetQueuedCompletionStatus", "GetQueuedCompletionStatusEx"])
@pytest.mark.parametrize("ms", [0.5, math.nan, math.inf, "10", None, True])
def test_a_millisecond_timeout_that_is_not_an_int_is_a_typeerror(proc, name, ms):
    with pytest.raises(TypeError, match="milliseconds"):
        _ms_calls(proc)[name](ms)


def test_millisecond_timeouts_of_zero_return_their_timeout_values(proc):
    calls = _ms_calls(proc)
    assert calls["SleepEx"](0) == 0
    assert calls["WSAWaitForMultipleEvents"](0) == wsp.WSA_WAIT_TIMEOUT
    assert calls["GetQueuedCompletionStatus"](0) == (WAIT_TIMEOUT, 0, 0, None)
    assert calls["GetQueuedCompletionStatusEx"](0) == []


def test_wait_overlapped_checks_its_timeout(proc):
    ov = wsp.Overlapped()
    assert proc.wait_overlapped(ov, 1e300) is True        # nothing pending: at once
    with pytest.raises(WinsockError) as excinfo:
        proc.wait_overlapped(ov, math.nan)
    assert_winsock(excinfo, WSAEINVAL)
    with pytest.raises(TypeError):
        proc.wait_overlapped(ov, "1")


# --------------------------------------- cleanup after a handle closed behind its back
def _rogue_close_setup():
    """A process with four bound sockets of the sim provider, one of whose
    handles someone else closed with WPUCloseSocketHandle."""
    net = wsp.sim.Network(seed=0)
    sim = Sim(net)
    socks = [sim.socket() for _ in range(3)] + [sim.socket(SOCK_DGRAM)]
    for port, s in zip((5001, 5002, 5003, 5004), socks):
        sim.prov.WSPBind(s, (LOCAL, port))
    victim = socks[1]
    sim.proc.upcalls.WPUCloseSocketHandle(victim)
    return net, sim, socks, victim


def _addresses_free(net):
    other = Sim(net)
    try:
        for port in (5001, 5002, 5003):
            s = other.socket()
            other.prov.WSPBind(s, (LOCAL, port))       # WSAEADDRINUSE if still bound
        other.prov.WSPBind(other.socket(SOCK_DGRAM), (LOCAL, 5004))
    finally:
        other.close()


def test_final_cleanup_runs_to_the_end_after_a_handle_was_closed_behind_its_back():
    net, sim, socks, victim = _rogue_close_setup()
    sim.prov.WSPCleanup()                       # used to raise WSAENOTSOCK half-way
    assert not sim.prov.started
    assert not sim.proc.initialised
    assert sim.proc.resources() == dict.fromkeys(sim.proc.resources(), 0)
    assert sim.prov.sockets() == []
    _addresses_free(net)
    # And the provider can start again at once, with a clean table.
    sim.prov.WSPStartup(0x0202, None, sim.proc.upcalls)
    assert sim.prov.sockets() == []
    sim.prov.WSPCleanup()


def test_the_victim_handle_itself_is_gone_for_every_caller():
    net, sim, socks, victim = _rogue_close_setup()
    with pytest.raises(WinsockError) as excinfo:
        sim.prov.WSPCloseSocket(victim)
    assert_winsock(excinfo, WSAENOTSOCK)
    sim.prov.WSPCleanup()
    assert sim.proc.resources() == dict.fromkeys(sim.proc.resources(), 0)


def test_terminate_runs_to_the_end_after_a_handle_was_closed_behind_its_back():
    net, sim, socks, victim = _rogue_close_setup()
    port = sim.proc.CreateIoCompletionPort(None)
    event = sim.proc.WSACreateEvent()
    sim.proc.terminate()                        # used to raise and leave these behind
    assert sim.proc.resources() == dict.fromkeys(sim.proc.resources(), 0)
    assert not sim.prov.started
    with pytest.raises(WinsockError) as excinfo:
        sim.proc.GetQueuedCompletionStatus(port, 0)
    assert_winsock(excinfo, wsp.WSA_INVALID_HANDLE)
    with pytest.raises(WinsockError) as excinfo:
        sim.proc.WSASetEvent(event)
    assert_winsock(excinfo, wsp.WSA_INVALID_HANDLE)
    _addresses_free(net)


def test_application_cleanup_runs_to_the_end_after_a_rogue_close():
    net = wsp.sim.Network(seed=0)
    proc = wsp.Process()
    proc.catalog.install(wsp.sim.Provider(net))
    proc.WSAStartup(0x0202)
    s = proc.WSASocket(wsp.AF_INET, wsp.SOCK_STREAM, 0)
    t = proc.WSASocket(wsp.AF_INET, wsp.SOCK_STREAM, 0)
    proc.bind(t, (LOCAL, 5010))
    proc.upcalls.WPUCloseSocketHandle(s)
    proc.WSACleanup()
    assert not proc.wsa_started
    assert proc.resources() == dict.fromkeys(proc.resources(), 0)
    _addresses_free_port(net, 5010)


def _addresses_free_port(net, port):
    other = Sim(net)
    try:
        other.prov.WSPBind(other.socket(), (LOCAL, port))
    finally:
        other.close()


class _BrokenHook(wsp.ServiceProvider):
    """A provider whose termination hook fails: terminate must still finish."""

    def on_terminated(self, process):
        super().on_terminated(process)
        raise RuntimeError("hook failed")


def test_terminate_releases_everything_even_when_a_provider_hook_raises():
    proc = wsp.Process()
    broken = _BrokenHook()
    broken.WSPStartup(0x0202, None, proc.upcalls)
    net = wsp.sim.Network()
    sim_prov = wsp.sim.Provider(net)
    sim_prov.WSPStartup(0x0202, None, proc.upcalls)
    s = sim_prov.WSPSocket(wsp.AF_INET, wsp.SOCK_STREAM, 0)
    sim_prov.WSPBind(s, (LOCAL, 5020))
    proc.CreateIoCompletionPort(None)
    with pytest.raises(RuntimeError, match="hook failed"):
        proc.terminate()
    assert proc.resources() == dict.fromkeys(proc.resources(), 0)
    assert not sim_prov.started and not broken.started
    _addresses_free_port(net, 5020)


class _FailingCleanup(wsp.ServiceProvider):
    def on_cleanup(self):
        raise RuntimeError("cleanup hook failed")


def test_a_failing_cleanup_hook_still_ends_the_startup():
    proc = wsp.Process()
    prov = _FailingCleanup()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    with pytest.raises(RuntimeError, match="cleanup hook failed"):
        prov.WSPCleanup()
    assert not prov.started
    assert not proc.initialised                   # used to stay initialised, counted
    assert proc.resources()["providers"] == 0
    with pytest.raises(WinsockError) as excinfo:
        prov.WSPCleanup()
    assert_winsock(excinfo, wsp.WSANOTINITIALISED)


# ---------------------------------------------------------------- WPUFDIsSet
@pytest.fixture
def started(proc):
    prov = wsp.ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    yield proc
    prov.WSPCleanup()


@pytest.mark.parametrize("fdset", [b"abc", bytearray(b"abc"), memoryview(b"abc"), "abc"],
                         ids=["bytes", "bytearray", "memoryview", "str"])
def test_wpufdisset_with_a_bytes_like_or_str_set_is_a_typeerror(started, fdset):
    first = started.upcalls.WPUCreateSocketHandle(1, None)
    s = started.upcalls.WPUCreateSocketHandle(1, None)
    assert s >= 256                             # bytes raised ValueError for these
    with pytest.raises(TypeError, match="fdset"):
        started.upcalls.WPUFDIsSet(s, fdset)
    with pytest.raises(TypeError, match="fdset"):
        started.upcalls.WPUFDIsSet(first, fdset)  # small handles too: never a byte test
    started.upcalls.WPUCloseSocketHandle(s)
    started.upcalls.WPUCloseSocketHandle(first)


def test_wpufdisset_answers_for_real_containers(started):
    s = started.upcalls.WPUCreateSocketHandle(1, None)
    assert started.upcalls.WPUFDIsSet(s, {s}) is True
    assert started.upcalls.WPUFDIsSet(s, [s + 4]) is False
    assert started.upcalls.WPUFDIsSet(s, {s: 1}) is True
    with pytest.raises(TypeError, match="fdset"):
        started.upcalls.WPUFDIsSet(s, 42)
    with pytest.raises(TypeError, match="s must be an int"):
        started.upcalls.WPUFDIsSet("4", {4})
    started.upcalls.WPUCloseSocketHandle(s)


# ------------------------------------------------------------ shared arguments
def test_int_arg_names_the_argument():
    assert int_arg(5, "backlog") == 5
    assert int_arg(True, "flag") is True
    with pytest.raises(TypeError, match="entry_id must be an int, not bool"):
        int_arg(True, "entry_id", bool_ok=False)
    with pytest.raises(TypeError, match="backlog must be an int, not float"):
        int_arg(1.0, "backlog")


def test_gather_and_scatter_refuse_single_buffers_and_readonly_ones():
    assert gather([b"ab", bytearray(b"c"), memoryview(b"d")], "WSPSend") == b"abcd"
    with pytest.raises(TypeError, match="WSPSend: buffers must be a sequence"):
        gather(b"abc", "WSPSend")
    with pytest.raises(TypeError, match="WSPSend"):
        gather([1, 2], "WSPSend")
    import array
    views = scatter([bytearray(3), array.array("i", [0, 0])], "WSPRecv")
    assert [v.nbytes for v in views] == [3, 8] and all(v.format == "B" for v in views)
    with pytest.raises(TypeError, match="writable"):
        scatter([b"abc"], "WSPRecv")
    with pytest.raises(TypeError, match="single buffer"):
        scatter(bytearray(3), "WSPRecv")
    with pytest.raises(TypeError, match="contiguous"):
        scatter([memoryview(array.array("i", [0] * 4))[::2]], "WSPRecv")


# -------------------------------------------------------- the README's numbers
def test_readme_states_when_a_closed_handle_value_comes_back():
    """README: a closed handle's value comes back only after its slot has
    been reused 2**21 - 1 times -- checked on the compiled core (the model
    test holds the pure twin to the same handle values)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"reused 2\*\*(\d+) − 1 times", readme)
    assert match, "the README no longer states the reuse period"
    bits = int(match.group(1))
    core = pytest.importorskip("wsp._core") if not wsp.core_impl == "python" else None
    if core is None:
        pytest.skip("the compiled core is not in use (WSP_NO_EXTENSIONS)")
    table = core.HandleTable()
    first = table.create()
    table.close(first)
    seen_again = None
    for i in range(1, 2 ** bits + 1):
        h = table.create()
        table.close(h)
        if h == first:
            seen_again = i
            break
    assert seen_again == 2 ** bits - 1



# -------------------------------------------- routines belong to one thread's lifetime
def _thread_with_ident(ident, body, attempts=300):
    """Run `body` on new threads until one gets OS thread ident `ident`
    (idents are reused once a thread has ended); its result, or skip."""
    for _ in range(attempts):
        worker = Worker(lambda: (threading.get_ident(), body()))
        worker.start()
        got, result = worker.finish()
        if got == ident:
            return result
    pytest.skip(f"the OS did not reuse thread ident {ident} in {attempts} threads")


@pytest.mark.parametrize("completes", ["before_the_thread_ends", "after_the_thread_ended"])
def test_a_routine_owed_to_an_ended_thread_never_runs_on_a_later_thread(completes):
    """A routine was queued by OS thread id, and the id was reused: it ran
    on an unrelated later thread (its SleepEx(0, True) returned 192)."""
    sim = Sim()
    c, a, _ = connect(sim)
    ran = []
    recv_done = threading.Event()

    def issue_and_end():
        ov = wsp.Overlapped()
        rc, _, _ = sim.prov.WSPRecv(c, [bytearray(8)], 0, ov,
                                    lambda *args: ran.append(threading.get_ident()))
        assert rc == wsp.WSA_IO_PENDING
        if completes == "before_the_thread_ends":
            sim.prov.WSPSend(a, [b"x"])        # the APC is queued to this live thread
        recv_done.set()
        return threading.get_ident()           # ends without an alertable wait

    worker = Worker(issue_and_end)
    worker.start()
    old_ident = worker.finish()
    assert recv_done.is_set()
    if completes == "after_the_thread_ended":
        sim.prov.WSPSend(a, [b"x"])
    assert sim.proc.resources()["overlapped_undelivered"] == 1   # shown until discarded
    rc = _thread_with_ident(old_ident, lambda: sim.proc.SleepEx(0, True))
    assert rc == 0                              # not WAIT_IO_COMPLETION: nothing ran
    assert ran == []
    assert sim.proc.SleepEx(0, True) == 0       # nor on this thread
    assert sim.proc.resources()["overlapped_undelivered"] == 1
    for s in sim.prov.sockets():
        sim.prov.WSPCloseSocket(s)
    sim.prov.WSPCleanup()                       # the final cleanup discards it
    assert ran == []
    assert sim.proc.resources() == dict.fromkeys(sim.proc.resources(), 0)


def test_an_apc_queued_through_a_threadid_of_an_ended_thread_never_runs(started):
    ran = []
    holder = {}

    def open_and_end():
        holder["tid"] = started.upcalls.WPUOpenCurrentThread()
        return threading.get_ident()

    worker = Worker(open_and_end)
    worker.start()
    old_ident = worker.finish()
    tid = holder["tid"]
    started.upcalls.WPUQueueApc(tid, ran.append, "late")       # accepted, never runs
    assert _thread_with_ident(old_ident, lambda: started.SleepEx(0, True)) == 0
    assert ran == []
    started.upcalls.WPUCloseThread(tid)
    assert started.resources()["threads"] == 0
    with pytest.raises(WinsockError) as excinfo:
        started.upcalls.WPUCloseThread(tid)
    assert_winsock(excinfo, WSAEINVAL)


def test_a_routine_for_a_live_threadid_still_reaches_its_thread():
    """The lifetime rule must not lose what a live thread is owed."""
    sim = Sim()
    c, a, _ = connect(sim)
    ran = []
    tid = sim.proc.upcalls.WPUOpenCurrentThread()
    ov = wsp.Overlapped()
    worker = Worker(lambda: sim.prov.WSPRecv(c, [bytearray(8)], 0, ov,
                                             lambda err, n, o, f: ran.append((err, n)), tid))
    worker.start()
    assert worker.finish()[0] == wsp.WSA_IO_PENDING   # issued from another thread
    sim.prov.WSPSend(a, [b"xyz"])
    assert sim.proc.SleepEx(0, True) == wsp.WAIT_IO_COMPLETION
    assert ran == [(0, 3)]
    sim.proc.upcalls.WPUCloseThread(tid)
    sim.close()


@pytest.mark.parametrize("nbytes, error", [(2 ** 64, WinsockError), (-1, WinsockError),
                                           ("1", TypeError), (1.0, TypeError)])
def test_a_packet_that_cannot_be_posted_leaves_nothing_in_flight(proc, nbytes, error):
    port = proc.CreateIoCompletionPort(None)
    ov = wsp.Overlapped()
    with pytest.raises(error) as excinfo:
        proc.PostQueuedCompletionStatus(port, nbytes, 0, ov)
    if error is WinsockError:
        assert_winsock(excinfo, WSAEINVAL)
        assert excinfo.value.funcname == "PostQueuedCompletionStatus"
    assert proc.resources()["overlapped_undelivered"] == 0
    assert proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)
    proc.CloseHandle(port)
    with pytest.raises(WinsockError) as excinfo:
        proc.PostQueuedCompletionStatus(port, 0, 0, ov)
    assert_winsock(excinfo, wsp.WSA_INVALID_HANDLE)
    assert proc.resources()["overlapped_undelivered"] == 0


def test_a_process_dropped_with_packets_queued_frees_what_they_carried():
    # Compiled, a packet carries its object's address and one reference; a port
    # freed without being closed (its Process dropped, no terminate()) must
    # release it, as the pure twin's in-flight table does.  (A completion whose
    # Operation leads back to the Process through its socket is a cycle the
    # garbage collector cannot see through a queue; terminate() or WSPCleanup
    # releases those -- see the closing note of issue 11.)
    import gc
    import weakref

    from wsp import Overlapped

    def leave_packets_behind():
        proc = wsp.Process()
        port = proc.CreateIoCompletionPort(None)
        posted, other = Overlapped(), Overlapped()
        proc.PostQueuedCompletionStatus(port, 3, 2, posted)
        proc.PostQueuedCompletionStatus(port, 4, 2, other)
        proc.PostQueuedCompletionStatus(port, 5, 2, None)
        assert proc.resources()["overlapped_undelivered"] == 2
        assert proc.GetQueuedCompletionStatus(port, 0) == (0, 3, 2, posted)
        assert proc.resources()["overlapped_undelivered"] == 1
        return weakref.ref(posted), weakref.ref(other)

    kept, dropped = leave_packets_behind()
    gc.collect()
    assert kept() is None and dropped() is None
