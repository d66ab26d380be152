"""Building blocks for tests over the simulated network."""
from __future__ import annotations

from dataclasses import dataclass, field

import wsp
from wsp import AF_INET, SOCK_STREAM, SOL_SOCKET, Linger, SO_LINGER, SO_RCVBUF
from wsp.sim import Network, Provider


@dataclass
class Host:
    """One process with a started sim provider."""

    net: Network
    proc: wsp.Process = field(default_factory=wsp.Process)
    prov: Provider = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.prov = Provider(self.net)
        self.prov.WSPStartup(0x0202, None, self.proc.upcalls)

    def stream(self) -> int:
        return self.prov.WSPSocket(AF_INET, SOCK_STREAM, 0)

    def listener(self, addr=("127.0.0.1", 0)) -> tuple[int, tuple[str, int]]:
        s = self.stream()
        self.prov.WSPBind(s, addr)
        self.prov.WSPListen(s, 16)
        return s, self.prov.WSPGetSockName(s)

    def linger(self, s: int, onoff: int, seconds: int) -> None:
        self.prov.WSPSetSockOpt(s, SOL_SOCKET, SO_LINGER, Linger(onoff, seconds))

    def recv(self, s: int, size: int = 4096) -> bytes:
        buf = bytearray(size)
        rc, n, _ = self.prov.WSPRecv(s, [buf])
        assert rc == 0
        return bytes(buf[:n])

    def signalled(self, event: int) -> bool:
        return self.proc.WSAWaitForMultipleEvents([event], False, 0, False) == 0

    def clean(self) -> bool:
        return all(v == 0 for v in self.proc.resources().values())


def connect(client: Host, server: Host | None = None,
            rcvbuf: int | None = None) -> tuple[int, int, int]:
    """A connected pair: (client socket, accepted server socket, listener).
    `rcvbuf` sets the server side's SO_RCVBUF (through the listener)."""
    server = server or client
    listener, addr = server.listener()
    if rcvbuf is not None:
        server.prov.WSPSetSockOpt(listener, SOL_SOCKET, SO_RCVBUF, rcvbuf)
    c = client.stream()
    client.prov.WSPConnect(c, addr)
    a, _ = server.prov.WSPAccept(listener)
    return c, a, listener
