"""How wsp's costs grow with the number of sockets (SPEC §7: linearly with
the work, never with what else exists).

groups (each entry against its reference in the same run, paired rounds):

* ``scale-echo``    -- one ping-pong message per connection per round over
  10,000 connections, per message, against the same echo over 8
  connections (target: at most 1.5x);
* ``scale-cleanup`` -- the final WSPCleanup of 10,000 open sockets, per
  socket (target: at most 20 µs), against closing as many host OS sockets
  one by one (``socket.socket().close()``, the peer a user has);
* ``scale-close``   -- WSPCloseSocket after the process has had 20,000
  overlapped operations in flight, per close, against the same close after
  a peak of 10 (target: flat, 1.0x);
* ``scale-memory``  -- not timed for speed: the Python memory an idle
  connected pair of sockets holds (tracemalloc), in ``extra_info``.

Run: ``python -m pytest bench/test_bench_scale.py --benchmark-only
--benchmark-json=scale.json && python bench/report.py scale.json``
(``WSP_SCALE_ROUNDS``, default 7, rounds per entry).
"""
from __future__ import annotations

import os
import socket
import statistics
import time
import tracemalloc

import pytest

import wsp
from echo_apps import WspEcho  # bench/echo_apps.py
from harness import tag  # bench/harness.py
from wsp import AF_INET, SOCK_STREAM, sim

ROUNDS = int(os.environ.get("WSP_SCALE_ROUNDS", "7"))
MANY = 10_000


def paired(benchmark, target, setup, reference, ref_setup, ref_ops, ref_impl):
    """``benchmark.pedantic`` of `target` (fixed ROUNDS), one timed round
    of `reference` before each, recorded as report.py's paired keys."""
    ref_times: list[float] = []

    def paired_setup():
        args = ref_setup()
        t0 = time.perf_counter()
        reference(*args)
        ref_times.append(time.perf_counter() - t0)
        return setup(), {}

    rounds = 1 if benchmark.disabled else ROUNDS
    result = benchmark.pedantic(target, setup=paired_setup, rounds=rounds, warmup_rounds=0)
    benchmark.extra_info.update(
        ref_impl=ref_impl,
        ref_median_ns=statistics.median(ref_times) / ref_ops * 1e9,
        ref_mean_ns=statistics.fmean(ref_times) / ref_ops * 1e9,
        ref_min_ns=min(ref_times) / ref_ops * 1e9)
    return result


# ------------------------------------------------------------------ echo
def test_echo_at_10000_connections(benchmark):
    benchmark.group = "scale-echo"
    conns = 200 if benchmark.disabled else MANY
    big, small = WspEcho(conns, window=1, batch=1), WspEcho(8, window=1, batch=1)
    per_small = 50                                    # 400 messages per reference round
    tag(benchmark, "wsp, 10,000 connections", "subject", conns, "message",
        f"{conns} connections x 1 ping-pong message per round, one port, GQCS")
    try:
        done = paired(benchmark, big.run_round, lambda: (1,), small.run_round,
                      lambda: (per_small,), 8 * per_small, "wsp, 8 connections")
        assert done == conns
    finally:
        assert all(v == 0 for v in big.close().values())
        assert all(v == 0 for v in small.close().values())


# --------------------------------------------------------------- cleanup
def _started():
    net = sim.Network()
    proc = wsp.Process()
    prov = sim.Provider(net)
    prov.WSPStartup(0x0202, None, proc.upcalls)
    return proc, prov


def _os_sockets(n):
    return ([socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)],)


def _close_os(socks):
    for s in socks:
        s.close()


def test_cleanup_of_10000_open_sockets(benchmark):
    benchmark.group = "scale-cleanup"
    n = 500 if benchmark.disabled else MANY
    os_n = min(n, 500)                  # stays well inside the descriptor limit
    tag(benchmark, "wsp WSPCleanup", "subject", n, "socket",
        f"the final WSPCleanup of {n} open (unconnected) stream sockets")
    made = []

    def setup():
        proc, prov = _started()
        for _ in range(n):
            prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
        made.append(proc)
        return (prov,)

    paired(benchmark, lambda prov: prov.WSPCleanup(), setup, _close_os,
           lambda: _os_sockets(os_n), os_n, "socket.socket().close()")
    for proc in made:
        assert all(v == 0 for v in proc.resources().values())


# ----------------------------------------------------------------- close
def _after_peak(peak):
    """A started provider whose process has had `peak` overlapped receives
    in flight (all completed now), and 200 fresh sockets to close."""
    proc, prov = _started()
    lst = prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
    prov.WSPBind(lst, ("127.0.0.1", 0))
    prov.WSPListen(lst, 4)
    c = prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
    prov.WSPConnect(c, prov.WSPGetSockName(lst))
    a, _ = prov.WSPAccept(lst)
    ovs = [wsp.Overlapped() for _ in range(peak)]
    for ov in ovs:
        prov.WSPRecv(a, [bytearray(1)], 0, ov)
    prov.WSPSend(c, [b"x" * peak])                   # every receive completes
    assert not any(ov.pending for ov in ovs)
    return prov, [prov.WSPSocket(AF_INET, SOCK_STREAM, 0) for _ in range(200)]


def _close_all(prov, socks):
    for s in socks:
        prov.WSPCloseSocket(s)


def test_close_after_a_peak_of_20000_operations(benchmark):
    benchmark.group = "scale-close"
    peak = 2000 if benchmark.disabled else 20_000
    tag(benchmark, "wsp close, after a 20,000-operation peak", "subject", 200, "close",
        f"200 WSPCloseSocket calls after {peak} overlapped receives were in flight")
    done = []

    def setup():
        prov, socks = _after_peak(peak)
        done.append(prov)
        return (prov, socks)

    paired(benchmark, _close_all, setup, _close_all, lambda: _after_peak(10), 200,
           "wsp close, after a 10-operation peak")
    for prov in done:
        prov.WSPCleanup()


# ---------------------------------------------------------------- memory
def test_memory_per_idle_connection(benchmark):
    """Python memory an idle connected pair holds (both ends, their handles
    and the network's records), in extra_info['bytes_per_connection']."""
    benchmark.group = "scale-memory"
    n = 100 if benchmark.disabled else 2000
    proc, prov = _started()
    lst = prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
    prov.WSPBind(lst, ("127.0.0.1", 0))
    prov.WSPListen(lst, 8)
    addr = prov.WSPGetSockName(lst)

    def connect_n():
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            c = prov.WSPSocket(AF_INET, SOCK_STREAM, 0)
            prov.WSPConnect(c, addr)
            prov.WSPAccept(lst)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return (after - before) / n

    tag(benchmark, "wsp idle connection", "subject", n, "connection",
        "connect + accept; memory measured with tracemalloc")
    per_conn = benchmark.pedantic(connect_n, rounds=1, warmup_rounds=0)
    benchmark.extra_info["bytes_per_connection"] = round(per_conn)
    assert 0 < per_conn < 1_000_000
    prov.WSPCleanup()
    assert all(v == 0 for v in proc.resources().values())


@pytest.mark.parametrize("peak", [10, 5000])
def test_close_leaves_nothing_whatever_the_peak(peak):
    """Not timed: the close path above leaves nothing behind."""
    prov, socks = _after_peak(peak)
    _close_all(prov, socks)
    proc = prov.process
    prov.WSPCleanup()
    assert all(v == 0 for v in proc.resources().values())
