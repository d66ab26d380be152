"""Threads hammering the simulated network at once (bounded in size and
time): blocking senders and receivers on several connections through small
buffers, overlapped traffic drained by several threads, and closes landing
while calls are blocked.  Data must arrive intact and in order, every call
must end, nothing may leak."""
from __future__ import annotations

import random
import threading

import pytest

import wsp
from helpers import Worker
from simkit import connect
from wsp import SO_RCVBUF, SO_SNDBUF, SOL_SOCKET, Overlapped

pytestmark = pytest.mark.stress


def test_blocking_senders_and_receivers_on_many_connections(sim):
    pairs = [connect(sim) for _ in range(4)]
    for c, a, _ in pairs:
        sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 64)
        sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 48)
    payloads = [random.Random(i).randbytes(60_000) for i in range(len(pairs))]

    def send(c, data, seed):
        rng = random.Random(seed)
        i = 0
        while i < len(data):
            n = rng.randint(1, 700)
            sim.prov.WSPSend(c, [data[i:i + n]])
            i += n
        sim.prov.WSPShutdown(c, wsp.SD_SEND)

    def receive(a, seed):
        rng = random.Random(seed)
        got = bytearray()
        while True:
            buf = bytearray(rng.randint(1, 500))
            rc, n, _ = sim.prov.WSPRecv(a, [buf])
            if n == 0:
                return bytes(got)
            got += buf[:n]

    receivers = [Worker(receive, a, i) for i, (_, a, _) in enumerate(pairs)]
    senders = [Worker(send, c, payloads[i], i) for i, (c, _, _) in enumerate(pairs)]
    for w in receivers + senders:
        w.start()
    for w in senders:
        w.finish(60)
    assert [w.finish(60) for w in receivers] == payloads


def test_overlapped_traffic_drained_by_several_threads(sim):
    port = sim.port()
    pairs = [connect(sim) for _ in range(3)]
    total_per_conn = 300
    lock = threading.Lock()
    received = {a: bytearray() for _, a, _ in pairs}
    done = threading.Event()
    for key, (_, a, _) in enumerate(pairs):
        sim.proc.CreateIoCompletionPort(a, port, key)

    def post_recv(a):
        buf = bytearray(7)
        ov = Overlapped()
        ov.object = (a, buf)
        sim.prov.WSPRecv(a, [buf], 0, ov)

    for _, a, _ in pairs:
        for _ in range(4):                        # several receives in flight per socket
            post_recv(a)

    def drain():
        while not done.is_set():
            rc, n, key, ov = sim.proc.GetQueuedCompletionStatus(port, 50)
            if rc == wsp.WAIT_TIMEOUT:
                continue
            if rc != 0:
                continue                          # aborted at teardown
            a, buf = ov.object
            with lock:
                received[a] += buf[:n]
                if all(len(v) >= total_per_conn * 3 for v in received.values()):
                    done.set()
            if n:
                post_recv(a)

    def feed(c, seed):
        for i in range(total_per_conn):
            sim.prov.WSPSend(c, [b"%03d" % (i % 1000)])

    drainers = [Worker(drain) for _ in range(3)]
    feeders = [Worker(feed, c, i) for i, (c, _, _) in enumerate(pairs)]
    for w in drainers + feeders:
        w.start()
    for w in feeders:
        w.finish(60)
    assert done.wait(60)
    for w in drainers:
        w.finish(60)
    # Several threads drain one port, so one socket's completions can be
    # handled out of order: compare the bytes as multisets (each exactly once).
    expected = b"".join(b"%03d" % (i % 1000) for i in range(total_per_conn))
    for _, a, _ in pairs:
        assert len(received[a]) == len(expected)
        assert sorted(received[a]) == sorted(expected)


def test_closes_landing_on_blocked_calls_always_end_them(sim):
    rounds = 30
    outcomes = []
    for r in range(rounds):
        c, a, listener = connect(sim)
        blocked = [Worker(sim.prov.WSPRecv, a, [bytearray(8)]),
                   Worker(sim.prov.WSPRecv, c, [bytearray(8)]),
                   Worker(sim.prov.WSPAccept, listener)]
        for w in blocked:
            w.start()
        closer = random.Random(r).choice([a, c, listener])
        if r % 3 == 0:
            sim.linger(c, 1, 0)
        sim.prov.WSPCloseSocket(closer)
        for s in (a, c, listener):
            if s != closer:
                sim.prov.WSPCloseSocket(s)
        for w in blocked:
            try:
                outcomes.append(w.finish(10))
            except wsp.WinsockError as e:
                outcomes.append(e.winerror)
    assert len(outcomes) == rounds * 3           # every blocked call ended
    allowed = {wsp.WSAEINTR, wsp.WSAECONNRESET, (0, 0, 0)}
    assert set(outcomes) <= allowed, set(outcomes) - allowed
    assert sim.net.connections() == [] and sim.net.lingering == 0
