"""Helpers for tests of code that runs over wsp (the pytest plugin,
:mod:`wsp.pytest_plugin`, uses them; they need no pytest).

* :func:`connected_pairs` -- N connected (client, server) stream socket pairs
  in one process, made through its catalog: one listener with a backlog,
  non-blocking connects in batches of the backlog, the accepts, then a wait
  until every client knows it is connected.  A thousand pairs take a fraction
  of a second.
* :func:`open_resources` -- what a process still holds, without the zeros.
"""
from __future__ import annotations

from typing import Any

from .constants import AF_INET, FIONBIO, SOCK_STREAM
from .errors import WSAETIMEDOUT, WSAEWOULDBLOCK, WinsockError

__all__ = ["connected_pairs", "open_resources"]


def connected_pairs(process: Any, n: int, *, host: str = "127.0.0.1", backlog: int = 128,
                    timeout: float = 60.0) -> list[tuple[int, int]]:
    """`n` connected stream socket pairs ``(client, server)`` in `process`
    (a started :class:`wsp.Process` whose catalog has a stream provider, as
    the ``wsp_process`` fixture gives).

    The listener is bound to ``(host, 0)``, listens with `backlog`, and is
    closed before this returns; the clients connect non-blocking, at most
    `backlog` at a time, and each is paired with the accepted socket whose
    peer is its local address.  Every returned socket is blocking again.  On
    a network with a clock the connects complete in simulated time (at most
    `timeout` simulated seconds each, else ``WinsockError(WSAETIMEDOUT)``).
    The caller closes the sockets (``closesocket``, or ``WSACleanup``); if
    anything fails, every socket made so far is closed before the error
    propagates.
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must not be negative, not {n}")
    if not isinstance(backlog, int) or isinstance(backlog, bool) or backlog < 1:
        raise ValueError(f"backlog must be a positive int, not {backlog!r}")
    made: list[int] = []
    pairs: list[tuple[int, int]] = []
    listener = process.WSASocket(AF_INET, SOCK_STREAM, 0)
    try:
        process.bind(listener, (host, 0))
        process.listen(listener, backlog)
        address = process.getsockname(listener)
        for first in range(0, n, backlog):
            batch = []
            for _ in range(min(backlog, n - first)):
                client = process.WSASocket(AF_INET, SOCK_STREAM, 0)
                made.append(client)
                process.ioctlsocket(client, FIONBIO, 1)
                try:
                    process.connect(client, address)
                except WinsockError as exc:
                    if exc.winerror != WSAEWOULDBLOCK:
                        raise
                batch.append(client)
            by_address = {tuple(process.getsockname(c)): c for c in batch}
            for _ in batch:
                server, peer = process.accept(listener)
                made.append(server)
                pairs.append((by_address.pop(tuple(peer)), server))
        for client, _ in pairs:
            _, writable, _ = process.select([], [client], [], timeout)
            if not writable:
                raise WinsockError(WSAETIMEDOUT, "connect")
            process.ioctlsocket(client, FIONBIO, 0)
    except BaseException:
        for s in made:
            try:
                process.closesocket(s)
            except WinsockError:
                pass
        raise
    finally:
        process.closesocket(listener)
    return pairs


def open_resources(process: Any) -> dict[str, int]:
    """``process.resources()`` without its zeros: ``{}`` when nothing is
    held."""
    return {name: count for name, count in process.resources().items() if count}
