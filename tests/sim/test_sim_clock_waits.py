"""The simulated provider's own waits on a clocked network (SPEC §7.1): a
blocking call, WSPSelect and the linger time-out of a blocking close count
the network's simulated seconds.  What a test waits for is scheduled on the
clock (``net.clock.call_at``), so each answer comes at an exact simulated
time, and no wait takes real seconds."""
from __future__ import annotations

import time

import pytest

from helpers import assert_winsock
from simkit import Sim, connect
import wsp.sim
from wsp.errors import WSAECONNRESET, WinsockError


@pytest.fixture
def vhost():
    """A process on a network with a virtual clock: (Sim, clock)."""
    host = Sim(wsp.sim.Network(clock="virtual"))
    yield host, host.net.clock
    host.proc.terminate()


def test_a_process_on_a_clocked_network_waits_by_its_clock(vhost):
    host, clock = vhost
    assert host.proc.clock is clock
    assert host.proc.SleepEx(1500, False) == 0
    assert host.net.time() == 1.5


def test_a_blocking_receive_returns_when_data_is_sent_at_a_simulated_time(vhost):
    host, clock = vhost
    c, a, _ = connect(host)
    clock.call_at(0.5, host.prov.WSPSend, c, [b"hello"])
    real = time.monotonic()
    assert host.recv(a) == b"hello"
    assert clock.now() == 0.5
    assert time.monotonic() - real < 5.0


def test_a_blocking_receive_runs_an_apc_at_its_time_and_waits_on(vhost):
    host, clock = vhost
    c, a, _ = connect(host)
    tid = host.proc.upcalls.WPUOpenCurrentThread()
    ran = []
    clock.call_at(0.2, host.proc.upcalls.WPUQueueApc, tid,
                  lambda ctx: ran.append((ctx, clock.now())), "apc")
    clock.call_at(0.6, host.prov.WSPSend, c, [b"later"])
    assert host.recv(a) == b"later"
    assert ran == [("apc", 0.2)] and clock.now() == 0.6
    host.proc.upcalls.WPUCloseThread(tid)


def test_select_times_out_after_simulated_seconds(vhost):
    host, clock = vhost
    c, a, _ = connect(host)
    assert host.prov.WSPSelect([a], [], [], 2.5) == ([], [], [])
    assert clock.now() == 2.5


def test_select_returns_a_socket_made_readable_at_a_simulated_time(vhost):
    host, clock = vhost
    c, a, _ = connect(host)
    clock.call_at(0.3, host.prov.WSPSend, c, [b"x"])
    assert host.prov.WSPSelect([a], [], [], None) == ([a], [], [])
    assert clock.now() == 0.3
    assert host.prov.WSPSelect([a], [c], [], 1.0) == ([a], [c], [])   # ready: no wait
    assert clock.now() == 0.3


def test_linger_times_out_after_simulated_seconds_and_resets(vhost):
    host, clock = vhost
    c, a, _ = connect(host, rcvbuf=8)
    assert host.prov.WSPSend(c, [b"s" * 100]) == (0, 100)     # 92 bytes stay behind
    host.linger(c, 1, 3)
    real = time.monotonic()
    host.prov.WSPCloseSocket(c)              # blocks for the linger time-out, then resets
    assert clock.now() == 3.0
    assert time.monotonic() - real < 5.0
    assert host.net.lingering == 0
    with pytest.raises(WinsockError) as e:
        host.prov.WSPRecv(a, [bytearray(200)])
    assert_winsock(e, WSAECONNRESET)


def test_linger_ends_when_the_peer_reads_in_simulated_time(vhost):
    host, clock = vhost
    c, a, _ = connect(host, rcvbuf=8)
    assert host.prov.WSPSend(c, [b"s" * 20]) == (0, 20)
    host.linger(c, 1, 10)
    got = []

    def drain():
        for _ in range(3):
            buf = bytearray(8)
            rc, n, _ = host.prov.WSPRecv(a, [buf])
            got.append(bytes(buf[:n]))

    clock.call_at(1.25, drain)               # reading frees room: the rest moves on
    host.prov.WSPCloseSocket(c)
    assert clock.now() == 1.25               # delivered before the time-out: no reset
    assert b"".join(got) == b"s" * 20


def test_a_real_clock_network_waits_real_time():
    host = Sim(wsp.sim.Network(clock="real"))
    try:
        c, a, _ = connect(host)
        start = host.net.time()
        assert host.prov.WSPSelect([a], [], [], 0.05) == ([], [], [])
        assert 0.045 <= host.net.time() - start < 2.0
        host.net.clock.call_later(0.05, host.prov.WSPSend, c, [b"r"])
        assert host.recv(a) == b"r"
    finally:
        host.proc.terminate()
