"""Network events and readiness: WSPEventSelect, WSPEnumNetworkEvents and
WSPSelect of the simulated TCP/UDP provider.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from ..constants import FD_ACCEPT, FD_ALL_EVENTS, FD_CLOSE, FD_CONNECT, FD_READ, FD_WRITE
from ..errors import (WSAEINTR, WSAEINVAL, WinsockError)
from ..spi.checks import block_time, deadline_after, int_arg, seconds_timeout, wait_time

__all__ = ["Selecting"]


class Selecting:
    """The provider's event-select and select entries (a part of :class:`wsp.sim.Provider`)."""

    # -- event select and select ---------------------------------------------------------------
    def WSPEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        """Record `network_events` (FD_* bits) for `s` and signal `event` when
        one occurs; makes the socket non-blocking.  A mask of 0 cancels.
        Conditions already true are recorded at once -- unless they were
        recorded before and nothing re-enabled them since: Windows records a
        condition once, however often the socket is selected (Wine's
        test_read_events, test_write_events, test_accept_events,
        test_close_events), and records FD_CONNECT (with its error) to a
        select made after the connect (test_connect_events)."""
        funcname = "WSPEventSelect"
        sock = self.sim_socket(s, funcname)
        int_arg(network_events, "network_events")
        if network_events and event is None:
            raise WinsockError(WSAEINVAL, funcname)
        if event is not None:
            self.process.events.entry(event, funcname)   # WSA_INVALID_HANDLE for a bad event
        with self.network.lock:
            sock.event = event if network_events else None
            sock.event_mask = network_events & FD_ALL_EVENTS
            sock.net_events.clear()
            sock.nonblocking = True
            if sock.connect_error is not None:
                sock.post(FD_CONNECT, sock.connect_error)
            if sock.state == "listening":
                if sock.accept_queue:
                    sock.post(FD_ACCEPT)
            else:
                if sock.readable() and not sock.eof and not sock.reset_error:
                    sock.post(FD_READ)
                if sock.writable():
                    sock.post(FD_WRITE)
                if sock.eof:
                    if sock.recv_buf:
                        sock.post(FD_READ)
                    sock.post(FD_CLOSE, 0)

    def WSPEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        """The network events recorded since the last call, as
        ``{FD_flag: error_code}``; clears the record and resets `event`."""
        funcname = "WSPEnumNetworkEvents"
        sock = self.sim_socket(s, funcname)
        if event is not None:
            self.process.WSAResetEvent(event, funcname)
        with self.network.lock:
            events = dict(sock.net_events)
            sock.net_events.clear()
            return events

    def WSPSelect(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
                  timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """``(readable, writable, exceptional)`` subsets of the three
        sequences; waits up to `timeout` seconds (None: until one is ready).
        A socket whose non-blocking connect failed is exceptional (and neither
        readable nor writable), as on Windows.
        WSAEINVAL if all three are empty; WSAENOTSOCK for a non-socket."""
        funcname = "WSPSelect"
        try:
            sets = [list(read or ()), list(write or ()), list(except_ or ())]
        except TypeError:
            raise TypeError("WSPSelect takes sequences of socket handles") from None
        if not any(sets):
            raise WinsockError(WSAEINVAL, funcname)
        socks = {s: self.sim_socket(s, funcname) for group in sets for s in group}
        clock = self.clock
        if clock is not None:
            return self._select_by(clock, sets, socks, seconds_timeout(timeout, funcname))
        deadline = deadline_after(seconds_timeout(timeout, funcname))
        network = self.network
        with network.lock:
            while True:
                ready = ([s for s in sets[0] if socks[s].readable()],
                         [s for s in sets[1] if socks[s].writable()],
                         [s for s in sets[2] if socks[s].connect_error
                          and socks[s].state != "connected"])
                if any(ready):
                    return ready
                if any(sock.interrupted for sock in socks.values()):
                    raise WinsockError(WSAEINTR, funcname)
                if deadline is not None and time.monotonic() >= deadline:
                    return ([], [], [])
                waiter = threading.Condition(network.lock)
                for sock in socks.values():
                    sock.cond = _Fanout(sock.cond, waiter)
                    sock.watchers += 1
                try:
                    waiter.wait(wait_time(deadline))   # a slice: the loop re-checks
                finally:
                    for sock in socks.values():
                        sock.watchers -= 1
                        if isinstance(sock.cond, _Fanout):
                            sock.cond = sock.cond.unwrap(waiter)

    def _select_by(self, clock: Any, sets: list[list[int]], socks: dict[int, Any],
                   timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """WSPSelect on a clocked network: `timeout` in simulated seconds,
        waited by wsp.spi.clock's protocol.  The selecting thread waits on
        its own condition of the network lock (the clock's), which every
        selected socket's wake reaches, as on the wall clock."""
        funcname = "WSPSelect"
        deadline = clock.deadline(timeout)
        network = self.network

        def ready() -> tuple[list[int], list[int], list[int]]:
            return ([s for s in sets[0] if socks[s].readable()],
                    [s for s in sets[1] if socks[s].writable()],
                    [s for s in sets[2] if socks[s].connect_error
                     and socks[s].state != "connected"])

        def can_act() -> bool:
            return any(ready()) or any(sock.interrupted for sock in socks.values())

        with network.lock:
            while True:
                found = ready()
                if any(found):
                    return found
                if any(sock.interrupted for sock in socks.values()):
                    raise WinsockError(WSAEINTR, funcname)
                if clock.expired(deadline):
                    return ([], [], [])
                waiter = threading.Condition(network.lock)
                for sock in socks.values():
                    sock.cond = _Fanout(sock.cond, waiter)
                    sock.watchers += 1
                try:
                    try:
                        left = clock.begin_wait(can_act, waiter.notify_all, deadline)
                        if not can_act() and not clock.expired(deadline):
                            waiter.wait(block_time(clock, left))
                    finally:
                        clock.end_wait()
                finally:
                    for sock in socks.values():
                        sock.watchers -= 1
                        if isinstance(sock.cond, _Fanout):
                            sock.cond = sock.cond.unwrap(waiter)


class _Fanout:
    """Stands in for a socket's condition while WSPSelect waits on it: a
    wake of the socket also wakes the selecting thread."""

    __slots__ = ("inner", "extra")

    def __init__(self, inner: Any, extra: threading.Condition) -> None:
        self.inner = inner
        self.extra = extra

    def notify_all(self) -> None:
        self.inner.notify_all()
        self.extra.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        return self.inner.wait(timeout)

    def unwrap(self, extra: threading.Condition) -> Any:
        if self.extra is extra:
            return self.inner
        self.inner = self.inner.unwrap(extra) if isinstance(self.inner, _Fanout) else self.inner
        return self
