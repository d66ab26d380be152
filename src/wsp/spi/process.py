"""Process: the per-process state that ws2_32.dll keeps
(``docs/guide/spi-model.rst, "Process and upcalls"``,
``docs/guide/spi-model.rst, "Overlapped operations"``), assembled from one component per job:

========================  =====================================================
``proc.handles``          the one handle namespace of sockets, events and ports
                          (:mod:`wsp.spi.handles`)
``proc.threads``          the core ThreadRegistry behind WPUOpenCurrentThread,
                          WPUQueueApc and the alertable waits
``proc.events``           manual-reset events (:mod:`wsp.spi.events`)
``proc.waits``            SleepEx, WSAWaitForMultipleEvents, APC wake-ups
                          (:mod:`wsp.spi.waits`)
``proc.ports``            completion ports (:mod:`wsp.spi.ports`)
``proc.engine``           overlapped operations and their delivery
                          (:mod:`wsp.spi.engine`)
``proc.upcalls``          the WSPUPCALLTABLE (:mod:`wsp.spi.upcalls`)
``proc.application``      the catalog and the application's calls
                          (:mod:`wsp.spi.application`)
========================  =====================================================

What is left here is what only the whole process knows: which providers
serve it (the *initialised* state the upcalls need), what it holds
(:meth:`Process.resources`) and how it dies (:meth:`Process.terminate`).
The Win32-named methods (``proc.SleepEx``, ``proc.WSASocket``, ...) are
thin delegations to the component that does the work.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

from ..core import ThreadRegistry
from ..errors import (WSA_INVALID_HANDLE, WSA_OPERATION_ABORTED, WSAEINVAL, WSAENOTSOCK,
                      WinsockError)
from .application import APPLICATION_CALLS, Application
from .engine import Engine, Operation
from .events import Events
from .handles import EventEntry, HandleSpace, PortEntry, SocketEntry
from .ports import Ports
from .structs import Overlapped, ThreadId
from .upcalls import UpcallTable
from .clock import SimClock
from .waits import Waits

__all__ = ["Process", "Operation"]

#: The completion-port calls a Process binds to its Ports (see __init__).
_PORT_CALLS = ("GetQueuedCompletionStatus", "GetQueuedCompletionStatusEx",
               "PostQueuedCompletionStatus")


class Process:
    """The state ws2_32.dll keeps for one process: handles, threads, events,
    completion ports and overlapped operations in flight.

    ``proc.upcalls`` is the WSPUPCALLTABLE handed to providers at
    WSPStartup; ``proc.catalog`` the protocol catalog the application's
    calls route through.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.handles = HandleSpace()
        #: the core ThreadRegistry (replaced by a fresh one at terminate())
        self.threads = ThreadRegistry()
        registry: Callable[[], ThreadRegistry] = lambda: self.threads  # noqa: E731
        self.events = Events(self.handles)
        self.waits = Waits(registry, self.events)
        self.ports = Ports(self.handles, self.waits, registry)
        self.engine = Engine(self.handles, registry, self.events, self.waits, self.ports)
        self.upcalls = UpcallTable(self)
        self.application = Application(self.upcalls, self.handles, registry)
        self.catalog = self.application.catalog
        # The hot calls, bound straight to the component that does them: the
        # class-level delegations stay for help() and introspection, and this
        # instance skips their extra call (every overlapped program loops on
        # the port calls and the application's sends and receives).
        for component, names in ((self.ports, _PORT_CALLS),
                                 (self.application, APPLICATION_CALLS)):
            for name in names:
                setattr(self, name, getattr(component, name))
        #: the simulated clock the process's waits count (wsp.spi.clock), set
        #: by a provider over a clocked network (use_clock); None: the wall clock
        self.clock: SimClock | None = None
        self._startups = 0                       # outstanding WSPStartups, all providers
        self._providers: dict[int, Any] = {}     # id(provider) -> started provider

    # -- which providers serve the process (ServiceProvider.WSPStartup/WSPCleanup) -
    @property
    def initialised(self) -> bool:
        """True while at least one provider has an outstanding WSPStartup."""
        return self._startups > 0

    def provider_started(self, provider: Any) -> None:
        """Count one WSPStartup of `provider` (its base class calls this)."""
        with self._lock:
            self._startups += 1
            self._providers[id(provider)] = provider

    def use_clock(self, clock: SimClock | None, funcname: str | None = None) -> None:
        """From now on the process's waits count time by `clock` (a network's
        simulated clock; None: the wall clock again).  A process stands on one
        network's time: WinsockError(WSAEINVAL) if it already waits by
        another clock.  Its waits (``waits``, ``ports``, ``engine``) follow
        wsp.spi.clock's wait protocol from their next wait on."""
        with self._lock:
            if clock is not None and self.clock is not None and self.clock is not clock:
                raise WinsockError(WSAEINVAL, funcname)
            self.clock = clock
            # The components that wait read their own copy (one field read
            # on the hot path instead of a walk back to the process).
            self.waits.clock = clock
            self.ports.clock = clock
            self.engine.clock = clock

    def provider_cleaned(self, provider: Any, final: bool) -> None:
        """Count one WSPCleanup of `provider`; `final` when it was its last."""
        with self._lock:
            self._startups -= 1
            if final and self._providers.get(id(provider)) is provider:
                del self._providers[id(provider)]
            last = self._startups <= 0
        if last:
            self.use_clock(None)     # no provider left: no network's time to stand on

    def providers(self) -> list[Any]:
        """The providers with an outstanding WSPStartup on this process."""
        with self._lock:
            return list(self._providers.values())

    # -- socket handles (the upcalls' half) ------------------------------------------
    def socket_entry(self, s: object, code: int = WSAENOTSOCK,
                     funcname: str | None = None) -> SocketEntry:
        """The entry of socket handle `s`, or WinsockError(code)."""
        return self.handles.require(s, SocketEntry, code, funcname)

    def find_socket(self, s: object) -> SocketEntry | None:
        """The entry of socket handle `s`, or None."""
        return self.handles.lookup(s, SocketEntry)

    def close_socket_handle(self, s: object, funcname: str) -> SocketEntry:
        """Remove socket handle `s` (WPUCloseSocketHandle); its pending
        operations stay findable until they finish."""
        entry = self.socket_entry(s, WSAENOTSOCK, funcname)
        self.handles.remove(s)
        self.engine.detach(s, entry)  # type: ignore[arg-type]
        return entry

    # -- events --------------------------------------------------------------------
    def WSACreateEvent(self) -> int:
        """A new manual-reset event, not signalled."""
        return self.events.create()

    def WSASetEvent(self, h: int, _funcname: str = "WSASetEvent") -> None:
        """Signal an event and wake every thread waiting on it;
        WSA_INVALID_HANDLE for a handle that is not an event."""
        self.events.set(h, _funcname)

    def WSAResetEvent(self, h: int, _funcname: str = "WSAResetEvent") -> None:
        """Reset an event to not signalled; WSA_INVALID_HANDLE for a handle
        that is not an event."""
        self.events.reset(h, _funcname)

    def WSACloseEvent(self, h: int, _funcname: str = "WSACloseEvent") -> None:
        """Close an event handle; threads waiting on it wake and fail with
        WSA_INVALID_HANDLE."""
        self.events.close(h, _funcname)

    # -- waits ------------------------------------------------------------------------
    def SleepEx(self, ms: int, alertable: bool) -> int:
        """Sleep `ms` milliseconds (see :meth:`wsp.spi.waits.Waits.SleepEx`)."""
        return self.waits.SleepEx(ms, alertable)

    def WSAWaitForMultipleEvents(self, events: Iterable[int], wait_all: bool, ms: int,
                                 alertable: bool) -> int:
        """Wait for events (see
        :meth:`wsp.spi.waits.Waits.WSAWaitForMultipleEvents`)."""
        return self.waits.WSAWaitForMultipleEvents(events, wait_all, ms, alertable)

    # -- completion ports ----------------------------------------------------------------
    def CreateIoCompletionPort(self, handle: int | None, existing_port: int | None = None,
                               key: int = 0, concurrency: int = 0) -> int:
        """Make a port or associate a socket with one (see
        :meth:`wsp.spi.ports.Ports.CreateIoCompletionPort`)."""
        return self.ports.CreateIoCompletionPort(handle, existing_port, key, concurrency)

    def GetQueuedCompletionStatus(self, port: int, ms: int) -> tuple[int, int, int, Any]:
        """``(rc, nbytes, key, overlapped)`` of the next packet (see
        :meth:`wsp.spi.ports.Ports.GetQueuedCompletionStatus`)."""
        return self.ports.GetQueuedCompletionStatus(port, ms)

    def GetQueuedCompletionStatusEx(self, port: int, max_entries: int, ms: int,
                                    alertable: bool = False) -> list[tuple[int, int, int, Any]]:
        """Up to `max_entries` packets (see
        :meth:`wsp.spi.ports.Ports.GetQueuedCompletionStatusEx`)."""
        return self.ports.GetQueuedCompletionStatusEx(port, max_entries, ms, alertable)

    def PostQueuedCompletionStatus(self, port: int, nbytes: int, key: int,
                                   overlapped: Overlapped | None) -> None:
        """Post ``(0, nbytes, key, overlapped)`` to a port (see
        :meth:`wsp.spi.ports.Ports.PostQueuedCompletionStatus`)."""
        self.ports.PostQueuedCompletionStatus(port, nbytes, key, overlapped)

    def CloseHandle(self, handle: int) -> None:
        """Close a completion port or an event handle.  Closing a port wakes
        its waiters (``ERROR_ABANDONED_WAIT_0``) and discards its queued
        packets, as Windows does.  Socket handles are closed by their
        provider, not here: WSA_INVALID_HANDLE."""
        if self.handles.lookup(handle, EventEntry) is not None:
            self.events.close(handle, "CloseHandle")
            return
        if self.handles.lookup(handle, PortEntry) is None:
            raise WinsockError(WSA_INVALID_HANDLE, "CloseHandle")
        self.ports.close(handle, "CloseHandle")

    # -- overlapped operations (wsp.spi.engine) --------------------------------------------
    def start_overlapped(self, s: int, overlapped: Overlapped,
                         routine: Callable[[int, int, Overlapped, int], Any] | None = None,
                         thread_id: ThreadId | None = None, buffers: Any = None,
                         provider: Any = None, funcname: str | None = None) -> Operation:
        """Record the start of an overlapped operation on socket `s`.

        Every started operation must later be finished exactly once by
        :meth:`complete_overlapped` or :meth:`cancel_overlapped`, also one
        that completes at once.  Raises (and records nothing) for: `s` not a
        socket of this process (WSAENOTSOCK), a completion routine on a
        socket associated with a port (WSAEINVAL), an overlapped that already
        carries a pending operation (WSAEINVAL), a closed `thread_id`
        (WSAEINVAL), wrong types (TypeError).

        The routine will run on the thread `thread_id` names (that thread's
        lifetime: never on a later thread that gets the same OS ident), or
        on the calling thread when it is None; the engine keeps its own
        thread handle for that, so the caller may close `thread_id` at any
        time.  The overlapped's event, if any, is reset now.
        """
        return self.engine.start(s, overlapped, routine, thread_id, buffers, provider, funcname)

    def start_on(self, entry: SocketEntry, s: int, overlapped: Overlapped,
                 routine: Callable[..., Any] | None, thread_id: ThreadId | None,
                 buffers: Any, provider: Any, funcname: str | None) -> Operation:
        """:meth:`start_overlapped` for a provider that has already looked
        `s` up (its entry from :meth:`find_socket`)."""
        return self.engine.start_on(entry, s, overlapped, routine, thread_id, buffers, provider,
                                    funcname)

    def complete_overlapped(self, op: Operation, error: int, nbytes: int, flags: int = 0) -> bool:
        """Complete `op` and perform its completion action
        (``docs/guide/spi-model.rst, "Overlapped operations"``).

        With a completion routine: ``routine(error, nbytes, overlapped,
        flags)`` is queued as an APC to its thread, the event is not
        signalled.  Otherwise the overlapped's event is signalled and, if the
        socket is associated with a port, a packet is posted there.
        Returns True if this call completed `op`, False if it had already
        been completed (or cancelled): a second completion is a no-op, so
        that racing completers (data arriving while the socket closes)
        deliver exactly once.
        """
        return self.engine.complete(op, error, nbytes, flags)

    def settle_overlapped(self, op: Operation, error: int, nbytes: int, flags: int = 0) -> bool:
        """Complete `op`'s status now and owe its completion routine: the
        overlapped shows the result at once (as Windows writes the status
        when the I/O completes, before the routine's APC runs), and
        :meth:`deliver_settled` runs the routine later, in the thread that
        should run it.  For a layered provider whose lower request
        completes through an APC on the application's thread.  Until then
        the routine counts as undelivered.  False if `op` had already
        completed."""
        return self.engine.settle(op, error, nbytes, flags)

    def deliver_settled(self, op: Operation) -> bool:
        """Run the routine :meth:`settle_overlapped` owed, in this thread;
        False if there is none (never settled, or already delivered)."""
        return self.engine.deliver_settled(op)

    def cancel_overlapped(self, op: Operation, error: int = WSA_OPERATION_ABORTED,
                          notify: bool = True) -> bool:
        """Fail `op` with `error`.  With `notify` (WSPCloseSocket) the
        completion action is performed as by :meth:`complete_overlapped`;
        without it (the final WSPCleanup) nothing is signalled, queued or
        posted.  Returns False if `op` had already completed."""
        return self.engine.cancel(op, error, notify)

    def operations(self, provider: Any = None, socket: int | None = None) -> list[Operation]:
        """A snapshot of the started, not yet completed operations (of one
        provider and/or socket; with `socket`, at the cost of that socket's
        own operations only)."""
        return self.engine.operations(provider, socket)

    def wait_overlapped(self, overlapped: Overlapped, timeout: float | None = None) -> bool:
        """Block (without holding the GIL) until the operation on `overlapped`
        completes or `timeout` seconds pass (None: forever; checked as
        every seconds timeout is, see wsp.spi.checks); True if it has
        completed."""
        return self.engine.wait(overlapped, timeout)

    def discard_stranded_routines(self, provider: Any = None) -> int:
        """Discard completion routines owed to threads that have ended (see
        :meth:`wsp.spi.engine.Engine.discard_stranded_routines`); the final
        WSPCleanup of a provider calls it.  Returns how many."""
        return self.engine.discard_stranded_routines(provider)

    # -- accounting and teardown -----------------------------------------------------
    def resources(self) -> dict[str, int]:
        """What the process holds right now, by kind; all zero after a clean
        teardown.  ``overlapped_pending``: started, not completed;
        ``overlapped_undelivered``: completed, but the packet is still in a
        port or the completion routine has not run yet (or, owed to a thread
        that has ended, has not been discarded yet)."""
        counts = {"sockets": 0, "events": 0, "ports": 0}
        for _, entry in self.handles.entries():
            kind = type(entry)
            if kind is SocketEntry:
                counts["sockets"] += 1
            elif kind is EventEntry:
                counts["events"] += 1
            else:
                counts["ports"] += 1
        counts["threads"] = len(self.threads)
        counts["overlapped_pending"] = self.engine.pending_count()
        counts["overlapped_undelivered"] = self.ports.in_flight() + self.engine.owed_count()
        counts["providers"] = len(self._providers)
        return counts

    def terminate(self) -> None:
        """End the process without WSPCleanup, as a crash would: every
        provider serving it releases what it held (its ``on_terminated``
        hook), pending operations vanish without notification, ports and
        events are closed (their waiters woken), queued APCs are dropped,
        and every handle is gone.  The object is then a fresh, uninitialised
        process.  It runs to the end whatever a provider's hook does; the
        first error a hook raised is raised afterwards."""
        with self._lock:
            providers = list(self._providers.values())
        first_error: BaseException | None = None
        for provider in providers:
            try:
                provider.on_terminated(self)
            except Exception as exc:  # noqa: BLE001 -- re-raised below
                first_error = first_error or exc
        for op in self.engine.operations():
            self.engine.cancel(op, notify=False)
        for handle, entry in self.handles.entries():
            try:
                self.handles.remove(handle)
            except WinsockError:
                continue
            if type(entry) is PortEntry:
                self.ports.drop(entry)
            elif type(entry) is EventEntry:
                self.events.release(entry)
        self.application.forget()
        self.waits.forget()
        self.engine.forget()
        with self._lock:
            self._startups = 0
            self._providers.clear()
            # A fresh registry drops the APCs still queued; the ports were
            # dropped above, releasing what their queued packets carried, and
            # ports.reset() clears what is left of that bookkeeping.
            self.threads = ThreadRegistry()
        self.ports.reset()
        self.use_clock(None)                     # and its waits go back to the wall clock
        if first_error is not None:
            raise first_error

    def __repr__(self) -> str:
        state = "initialised" if self.initialised else "not initialised"
        return f"<wsp.Process {state} {self.resources()}>"


def _application_call(name: str) -> Callable[..., Any]:
    call = getattr(Application, name)

    def delegate(self: Process, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.application, name)(*args, **kwargs)

    delegate.__name__ = delegate.__qualname__ = name
    delegate.__doc__ = call.__doc__ or f"{name}: routed through the catalog (see Application)."
    delegate.__wrapped__ = call  # type: ignore[attr-defined]  # inspect.signature shows its own
    return delegate


for _name in APPLICATION_CALLS:
    setattr(Process, _name, _application_call(_name))
del _name


def _wsa_started(self: Process) -> bool:
    """True between WSAStartup and the last WSACleanup."""
    return self.application.wsa_started


Process.wsa_started = property(_wsa_started)  # type: ignore[attr-defined]
