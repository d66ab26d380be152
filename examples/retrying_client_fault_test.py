"""A retrying client, tested under a fault: pytest tests that use
``wsp.lsp.FaultProvider`` to reset the client's first send.

The client (``send_with_retry``) connects, sends its request and, when the
connection is reset (``ConnectionResetError``, whose ``winerror`` is
WSAECONNRESET), closes the socket and tries again on a new connection.  The
fault layer sits between the client's process and the simulated network: its
rule resets the first send and counts what it did in ``rule.hits``.  The
server runs in a second process on the same network and sees the reset too.

Run it with ``python -m pytest examples/retrying_client_fault_test.py``, or
``python examples/retrying_client_fault_test.py`` to run the tests without
pytest.
"""
from __future__ import annotations

import wsp
import wsp.lsp
import wsp.sim
from wsp import AF_INET, SOCK_STREAM

SERVER = ("10.0.0.1", 8080)


def send_with_retry(proc: wsp.Process, addr: tuple[str, int], data: bytes,
                    attempts: int = 3) -> tuple[int, int]:
    """Connect to `addr` and send `data`, on a new connection after each
    reset; returns ``(socket, attempts used)``.  The last error is raised
    when every attempt fails."""
    for attempt in range(1, attempts + 1):
        s = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
        try:
            proc.connect(s, addr)
            proc.WSASend(s, [data])
        except ConnectionResetError:
            proc.closesocket(s)
            if attempt == attempts:
                raise
            continue
        return s, attempt
    raise AssertionError("unreachable: attempts must be at least 1")


class Setup:
    """A server process on 10.0.0.1 and a client process on 10.0.0.2 whose
    calls pass through a fault layer."""

    def __init__(self) -> None:
        self.net = wsp.sim.Network()
        self.server = wsp.Process()
        self.server.catalog.install(wsp.sim.Provider(self.net, host=SERVER[0]))
        self.client = wsp.Process()
        self.fault = wsp.lsp.FaultProvider(wsp.sim.Provider(self.net, host="10.0.0.2"))
        self.client.catalog.install(self.fault)
        self.server.WSAStartup(0x0202)
        self.client.WSAStartup(0x0202)
        self.listener = self.server.WSASocket(AF_INET, SOCK_STREAM, 0)
        self.server.bind(self.listener, SERVER)
        self.server.listen(self.listener, 8)

    def receive(self, nbytes: int) -> tuple[int, bytes]:
        """Accept the next connection and read `nbytes` from it."""
        peer, _ = self.server.accept(self.listener)
        buf, got = bytearray(nbytes), 0
        while got < nbytes:
            n = self.server.WSARecv(peer, [memoryview(buf)[got:]])[1]
            if n == 0:
                break
            got += n
        return peer, bytes(buf[:got])

    def close(self) -> None:
        self.client.WSACleanup()
        self.server.WSACleanup()
        for proc in (self.client, self.server):
            assert all(n == 0 for n in proc.resources().values()), proc.resources()


def test_first_send_reset_then_the_retry_succeeds() -> None:
    env = Setup()
    rule = env.fault.add_rule("WSPSend", "reset", count=1)
    s, attempts = send_with_retry(env.client, SERVER, b"GET / HTTP/1.0\r\n\r\n")
    assert attempts == 2 and rule.hits == 1
    # The reset connection never reached the server's accept (a connection
    # reset while in the backlog is dropped from it): the one it accepts is
    # the retry's, and it carries the request.
    peer, data = env.receive(18)
    assert data == b"GET / HTTP/1.0\r\n\r\n"
    assert env.server.getpeername(peer) == env.client.getsockname(s)
    env.server.closesocket(peer)
    env.client.closesocket(s)
    env.close()


def test_every_send_reset_the_client_gives_up() -> None:
    env = Setup()
    rule = env.fault.add_rule("WSPSend", "reset")           # every send, no count
    try:
        send_with_retry(env.client, SERVER, b"ping", attempts=3)
    except ConnectionResetError as e:
        assert isinstance(e, wsp.WinsockError) and e.winerror == wsp.WSAECONNRESET
    else:
        raise AssertionError("three resets should make the client give up")
    assert rule.hits == 3
    env.close()


def test_without_a_fault_one_attempt_is_enough() -> None:
    env = Setup()
    s, attempts = send_with_retry(env.client, SERVER, b"ping")
    assert attempts == 1
    peer, data = env.receive(4)
    assert data == b"ping"
    env.server.closesocket(peer)
    env.client.closesocket(s)
    env.close()


def main() -> None:
    tests = [test_first_send_reset_then_the_retry_succeeds,
             test_every_send_reset_the_client_gives_up,
             test_without_a_fault_one_attempt_is_enough]
    for test in tests:
        test()
        print(f"{test.__name__}: passed")


if __name__ == "__main__":
    main()
