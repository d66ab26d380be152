"""SPEC §7: the same calls in the same order give the same results, run
after run -- handle values, ephemeral ports, byte counts, errors, packet
order, and what the seeded faults do."""
from __future__ import annotations

import wsp
from simkit import Sim, connect
from wsp import SOCK_DGRAM, Overlapped


def scenario(seed, layers=0):
    """A scripted mix of streams, datagrams, overlapped I/O, faults and close
    modes, through stacks of `layers` layers; returns everything observable,
    in order."""
    net = wsp.sim.Network(seed=seed)
    one, two = Sim(net, layers=layers), Sim(net, layers=layers)
    log = []

    def attempt(label, call, *args):
        try:
            log.append((label, call(*args)))
        except wsp.WinsockError as e:
            log.append((label, "error", e.winerror, e.funcname))

    try:
        net.set_datagram_loss(0.3)
        port = one.proc.CreateIoCompletionPort(None)
        conns = [connect(one, two) for _ in range(3)]
        log.append(("handles", [tuple(c) for c in conns]))
        log.append(("names", [one.prov.WSPGetSockName(c) for c, _, _ in conns]))
        for i, (c, a, _) in enumerate(conns):
            one.proc.CreateIoCompletionPort(c, port, i)
            ov = Overlapped()
            ov.object = i
            attempt(f"recv {i}", one.prov.WSPRecv, c, [bytearray(7)], 0, ov)
            attempt(f"send {i}", two.prov.WSPSend, a, [b"reply-%d-" % i * 3])
        log.append(("packets", [(rc, n, key, ov.object)
                                for rc, n, key, ov in one.proc.GetQueuedCompletionStatusEx(port, 16, 0)]))
        u1, u2 = one.socket(SOCK_DGRAM), two.socket(SOCK_DGRAM)
        one.prov.WSPBind(u1, ("127.0.0.1", 0))
        target = one.prov.WSPGetSockName(u1)
        for i in range(20):
            two.prov.WSPSendTo(u2, [bytes([i]) * (i + 1)], 0, target)
        one.prov.WSPIoctl(u1, wsp.FIONBIO, 1)
        for _ in range(20):
            attempt("recvfrom", one.prov.WSPRecvFrom, u1, [bytearray(64)])
        net.connections()[1].reset()
        attempt("after reset", two.prov.WSPRecv, conns[1][1], [bytearray(4)])
        one.linger(conns[2][0], 1, 0)
        attempt("hard close", one.prov.WSPCloseSocket, conns[2][0])
        attempt("peer of hard close", two.prov.WSPRecv, conns[2][1], [bytearray(64)])
        attempt("graceful close", one.prov.WSPCloseSocket, conns[0][0])
        attempt("peer of graceful", two.prov.WSPRecv, conns[0][1], [bytearray(64)])
        log.append(("resources", one.proc.resources(), two.proc.resources()))
        one.proc.CloseHandle(port)
    finally:
        one.close()
        two.close()
    return log


def test_same_seed_same_transcript(layers):
    first, second = scenario(7, layers), scenario(7, layers)
    assert first == second
    assert len(first) == 35
    # and the transcript says something: datagrams were lost (8 of 20 under seed 7)
    received = [entry for entry in first if entry[0] == "recvfrom" and entry[1] != "error"]
    assert len(received) == 12


def test_the_seed_drives_the_faults(layers):
    lost = [sum(1 for e in scenario(seed, layers) if e[0] == "recvfrom" and e[1] == "error")
            for seed in (1, 2, 3, 4)]
    assert lost == [7, 4, 6, 10]         # different seeds, different datagrams lost
