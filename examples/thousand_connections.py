"""A thousand connections at once, with the application API: a server
process listens, a client process opens 1,000 connections (the server
accepts each as it arrives), every client sends one message, the server
reads them all and answers each, every socket is closed, and both processes
end holding nothing (``proc.resources()`` all zero after ``WSACleanup``).

Without a clock the simulated network delivers at once, so blocking calls
never wait here: ``connect`` completes as soon as the listener queues the
connection and ``accept`` takes it straight from the queue.  Run it with
``python examples/thousand_connections.py [count]``; it prints the counts
and the time taken.
"""
from __future__ import annotations

import sys
import time

import wsp
import wsp.sim
from wsp import AF_INET, SOCK_STREAM

ADDR = ("10.0.0.1", 80)


def run(count: int = 1000) -> dict[str, int]:
    """Open `count` connections, exchange one message on each, close them;
    returns the figures the run checks."""
    net = wsp.sim.Network()
    server, client = wsp.Process(), wsp.Process()
    server.catalog.install(wsp.sim.Provider(net, host=ADDR[0]))
    client.catalog.install(wsp.sim.Provider(net, host="10.0.0.2"))
    server.WSAStartup(0x0202)
    client.WSAStartup(0x0202)
    listener = server.WSASocket(AF_INET, SOCK_STREAM, 0)
    server.bind(listener, ADDR)
    server.listen(listener, wsp.SOMAXCONN)

    pairs: list[tuple[int, int]] = []            # (client socket, server socket)
    for _ in range(count):
        c = client.WSASocket(AF_INET, SOCK_STREAM, 0)
        client.connect(c, ADDR)
        s, _peer = server.accept(listener)
        pairs.append((c, s))
    open_connections = len(net.connections())
    open_sockets = client.resources()["sockets"] + server.resources()["sockets"]

    for i, (c, _s) in enumerate(pairs):
        client.WSASend(c, [b"hello %04d" % i])
    buf = bytearray(64)
    replies = 0
    for i, (c, s) in enumerate(pairs):
        n = server.WSARecv(s, [buf])[1]
        assert bytes(buf[:n]) == b"hello %04d" % i
        server.WSASend(s, [b"ok"])
        assert client.WSARecv(c, [buf])[1] == 2 and buf[:2] == b"ok"
        replies += 1

    for c, s in pairs:
        client.closesocket(c)
        server.closesocket(s)
    server.closesocket(listener)
    client.WSACleanup()
    server.WSACleanup()
    left = sum(client.resources().values()) + sum(server.resources().values())
    return {"connections": open_connections, "sockets": open_sockets,
            "replies": replies, "left": left}


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 1000
    start = time.perf_counter()
    figures = run(count)
    elapsed = time.perf_counter() - start
    assert figures == {"connections": count, "sockets": 2 * count + 1,
                       "replies": count, "left": 0}, figures
    print(f"{figures['connections']} connections open at once, {figures['sockets']} sockets "
          f"(with the listener), {figures['replies']} messages answered, "
          f"{figures['left']} resources left; {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
