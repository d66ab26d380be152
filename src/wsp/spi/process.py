"""Process: the per-process state that ws2_32.dll keeps (SPEC §6.1, §6.2).

One ``Process`` holds:

* one handle namespace (a core ``HandleTable``) shared by socket handles,
  event handles and completion ports, as Win32 handles share one namespace,
  so a value can never name two kinds of object at once;
* the ``ThreadRegistry`` behind WPUOpenCurrentThread and WPUQueueApc;
* one core ``CompletionQueue`` per completion port;
* the overlapped operations in flight, and the one place
  (:meth:`Process.complete_overlapped`) where SPEC §6.2's delivery rules are
  applied: completion routine as an APC to the right thread, otherwise event
  and/or port packet, exactly once.

The upcalls (``proc.upcalls``) need an outstanding WSPStartup; the waits,
events and ports are the application's and work at any time.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable

from ..core import CompletionQueue, HandleTable, ThreadRegistry
from ..errors import (ERROR_ABANDONED_WAIT_0, WAIT_IO_COMPLETION, WAIT_TIMEOUT,
                      WSA_INVALID_HANDLE, WSA_INVALID_PARAMETER, WSA_IO_PENDING,
                      WSA_OPERATION_ABORTED, WSA_WAIT_EVENT_0, WSA_WAIT_IO_COMPLETION,
                      WSA_WAIT_TIMEOUT, WSAEINVAL, WSAENOTSOCK, WinsockError)
from ..constants import WSA_MAXIMUM_WAIT_EVENTS
from .application import ApplicationAPI
from .checks import deadline_after, ms_deadline, seconds_timeout, time_left, wait_time
from .structs import Overlapped, ThreadId

__all__ = ["Process", "Operation"]

_U64 = 1 << 64


# ------------------------------------------------------------ handle entries
class _SocketEntry:
    """A socket handle made by WPUCreateSocketHandle."""

    __slots__ = ("catalog_entry_id", "context", "port", "key")

    def __init__(self, catalog_entry_id: int, context: Any) -> None:
        self.catalog_entry_id = catalog_entry_id
        self.context = context
        self.port: _PortEntry | None = None   # set by CreateIoCompletionPort
        self.key = 0


class _EventEntry:
    """A manual-reset event."""

    __slots__ = ("signalled", "waiters")

    def __init__(self) -> None:
        self.signalled = False
        self.waiters: list[_Waiter] = []


class _PortEntry:
    """An I/O completion port."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue = CompletionQueue()


class _Waiter:
    """A thread parked in WSAWaitForMultipleEvents; woken at most usefully
    once (extra wakes are harmless)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:        # already woken
            pass

    def sleep(self, timeout: float | None) -> None:
        self._lock.acquire(timeout=-1 if timeout is None else timeout)


# ----------------------------------------------------------------- operations
class Operation:
    """One started overlapped operation, from start to delivery.

    Providers get one from :meth:`Process.start_overlapped` and finish it
    with :meth:`Process.complete_overlapped` (or
    :meth:`Process.cancel_overlapped`).  It holds the overlapped and the
    operation's buffers until the completion has been delivered.
    """

    __slots__ = ("overlapped", "socket", "entry", "provider", "routine", "thread_handle",
                 "buffers", "event", "settled", "__weakref__")

    def __init__(self, overlapped: Overlapped, socket: int, entry: _SocketEntry,
                 provider: Any, routine: Callable[..., Any] | None,
                 thread_handle: int, buffers: Any) -> None:
        self.overlapped = overlapped
        self.socket = socket
        self.entry = entry
        self.provider = provider
        self.routine = routine
        self.thread_handle = thread_handle    # the engine's own, for the routine's APC
        self.buffers = buffers
        self.event: threading.Event | None = None   # for WSPGetOverlappedResult(wait=True)
        self.settled: tuple[int, int, int] | None = None   # see Process.settle_overlapped

    def __repr__(self) -> str:
        return f"<Operation socket={self.socket} {self.overlapped!r}>"


# ----------------------------------------------------------------- arguments



# -------------------------------------------------------------------- process
class Process(ApplicationAPI):
    """The state ws2_32.dll keeps for one process: handles, threads, events,
    completion ports and overlapped operations in flight.

    ``proc.upcalls`` is the WSPUPCALLTABLE handed to providers at WSPStartup.
    """

    def __init__(self) -> None:
        from .upcalls import UpcallTable

        self._lock = threading.Lock()
        self._handles = HandleTable()        # sockets, events and ports
        self.threads = ThreadRegistry()
        self._inflight = HandleTable()       # what port packets carry: Operation / Overlapped
        self._operations: set[Operation] = set()   # started and not completed
        self._routines_queued = 0            # completion APCs not yet run
        self._alertable: dict[int, list[Callable[[], Any]]] = {}  # ident -> wakers
        self._startups = 0                   # outstanding WSPStartups, all providers
        self._providers: dict[int, Any] = {}     # id(provider) -> started provider
        self.upcalls = UpcallTable(self)
        self._init_application()             # the catalog and WSAStartup state

    # -- initialisation (driven by ServiceProvider.WSPStartup/WSPCleanup) -----
    @property
    def initialised(self) -> bool:
        """True while at least one provider has an outstanding WSPStartup."""
        return self._startups > 0

    def _provider_started(self, provider: Any) -> None:
        with self._lock:
            self._startups += 1
            self._providers[id(provider)] = provider

    def _provider_cleaned(self, provider: Any, final: bool) -> None:
        with self._lock:
            self._startups -= 1
            if final and self._providers.get(id(provider)) is provider:
                del self._providers[id(provider)]

    # -- handle lookups ----------------------------------------------------------
    def _lookup(self, handle: object, kind: type) -> Any:
        """The entry behind `handle` if it is of `kind`, else None."""
        try:
            entry = self._handles.query(handle)
        except WinsockError:
            return None
        return entry if type(entry) is kind else None

    def _socket(self, s: object, code: int, funcname: str | None) -> _SocketEntry:
        entry = self._lookup(s, _SocketEntry)
        if entry is None:
            raise WinsockError(code, funcname)
        return entry

    def _event(self, h: object, funcname: str | None) -> _EventEntry:
        entry = self._lookup(h, _EventEntry)
        if entry is None:
            raise WinsockError(WSA_INVALID_HANDLE, funcname)
        return entry

    def _port(self, h: object, funcname: str | None) -> _PortEntry:
        entry = self._lookup(h, _PortEntry)
        if entry is None:
            raise WinsockError(WSA_INVALID_HANDLE, funcname)
        return entry

    # -- socket handles (used by the upcalls) -------------------------------------
    def _create_socket_handle(self, catalog_entry_id: int, context: Any) -> int:
        return self._handles.create(_SocketEntry(catalog_entry_id, context))

    def _close_socket_handle(self, s: object, funcname: str) -> _SocketEntry:
        entry = self._socket(s, WSAENOTSOCK, funcname)
        self._handles.close(s)
        return entry

    # -- events (the application's WSA*Event; the WPU*Event upcalls share them) --
    def WSACreateEvent(self) -> int:
        """A new manual-reset event, not signalled."""
        return self._handles.create(_EventEntry())

    def WSASetEvent(self, h: int, _funcname: str = "WSASetEvent") -> None:
        """Signal an event and wake every thread waiting on it."""
        entry = self._event(h, _funcname)
        with self._lock:
            entry.signalled = True
            waiters = list(entry.waiters)
        for waiter in waiters:
            waiter.wake()

    def WSAResetEvent(self, h: int, _funcname: str = "WSAResetEvent") -> None:
        """Reset an event to not signalled."""
        entry = self._event(h, _funcname)
        entry.signalled = False

    def WSACloseEvent(self, h: int, _funcname: str = "WSACloseEvent") -> None:
        """Close an event handle; threads waiting on it wake and fail with
        WSA_INVALID_HANDLE."""
        entry = self._event(h, _funcname)
        self._handles.close(h)
        with self._lock:
            waiters = list(entry.waiters)
        for waiter in waiters:
            waiter.wake()

    # -- alertable waits ------------------------------------------------------------
    def _add_alert_waker(self, ident: int, waker: Callable[[], Any]) -> None:
        with self._lock:
            self._alertable.setdefault(ident, []).append(waker)

    def _remove_alert_waker(self, ident: int, waker: Callable[[], Any]) -> None:
        with self._lock:
            wakers = self._alertable.get(ident)
            if wakers is not None:
                try:
                    wakers.remove(waker)
                except ValueError:
                    pass
                if not wakers:
                    del self._alertable[ident]

    def _queue_apc(self, thread_handle: int, func: Callable[[Any], Any], context: Any) -> None:
        """Queue an APC and wake the target thread if it is in an alertable
        wait (SleepEx waits on the registry itself and is woken by it)."""
        self.threads.queue_apc(thread_handle, func, context)
        if self._alertable:
            try:
                ident = self.threads.ident_of(thread_handle)
            except WinsockError:      # closed meanwhile: the APC is queued anyway
                return
            with self._lock:
                wakers = list(self._alertable.get(ident, ()))
            for wake in wakers:
                wake()

    def SleepEx(self, ms: int, alertable: bool) -> int:
        """Sleep `ms` milliseconds (INFINITE: forever).  An alertable sleep
        returns WAIT_IO_COMPLETION as soon as APCs queued to the calling
        thread have run; otherwise 0 after the time-out."""
        deadline = ms_deadline(ms, "SleepEx")
        me = threading.get_ident()
        if not alertable:
            while True:
                remaining = time_left(deadline)
                if remaining is not None and remaining <= 0:
                    return 0
                time.sleep(3600.0 if remaining is None else remaining)
        while True:
            if self.threads.run_apcs(me):
                return WAIT_IO_COMPLETION
            remaining = time_left(deadline)
            if remaining is not None and remaining <= 0:
                return 0
            self.threads.wait(me, remaining)

    def WSAWaitForMultipleEvents(self, events: Iterable[int], wait_all: bool, ms: int,
                                 alertable: bool) -> int:
        """Wait until one (or, with `wait_all`, every) event is signalled:
        ``WSA_WAIT_EVENT_0 + i`` for the lowest signalled index (or 0 when
        all are), ``WSA_WAIT_TIMEOUT``, or ``WSA_WAIT_IO_COMPLETION`` when an
        alertable wait ran APCs of the calling thread.  Signalled objects are
        checked before APCs, as the Windows kernel does."""
        funcname = "WSAWaitForMultipleEvents"
        try:
            handles = list(events)
        except TypeError:
            raise TypeError("events must be an iterable of event handles") from None
        if not 1 <= len(handles) <= WSA_MAXIMUM_WAIT_EVENTS:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        deadline = ms_deadline(ms, funcname)
        me = threading.get_ident()
        waiter: _Waiter | None = None
        while True:
            entries = [self._event(h, funcname) for h in handles]
            if wait_all:
                if all(e.signalled for e in entries):
                    return WSA_WAIT_EVENT_0
            else:
                for i, e in enumerate(entries):
                    if e.signalled:
                        return WSA_WAIT_EVENT_0 + i
            if alertable and self.threads.run_apcs(me):
                return WSA_WAIT_IO_COMPLETION
            remaining = time_left(deadline)
            if remaining is not None and remaining <= 0:
                return WSA_WAIT_TIMEOUT
            # Register first, then re-check, so that a signal or an APC that
            # lands in between is not missed.
            waiter = _Waiter()
            with self._lock:
                for e in entries:
                    e.waiters.append(waiter)
            if alertable:
                self._add_alert_waker(me, waiter.wake)
            try:
                ready = (any(e.signalled for e in entries) if not wait_all
                         else all(e.signalled for e in entries))
                if not ready and not (alertable and self.threads.pending(me)):
                    waiter.sleep(remaining)
            finally:
                with self._lock:
                    for e in entries:
                        try:
                            e.waiters.remove(waiter)
                        except ValueError:
                            pass
                if alertable:
                    self._remove_alert_waker(me, waiter.wake)

    # -- completion ports ---------------------------------------------------------------
    def CreateIoCompletionPort(self, handle: int | None, existing_port: int | None = None,
                               key: int = 0, concurrency: int = 0) -> int:
        """With `handle` None: a new port.  With a socket handle: associate it
        with `existing_port` (or a new port) and `key`; its completions go
        there.  Returns the port.  ``concurrency`` is accepted and not
        enforced (any number of threads may drain a port at once)."""
        funcname = "CreateIoCompletionPort"
        if not isinstance(key, int) or not isinstance(concurrency, int):
            raise TypeError("key and concurrency must be ints")
        if not 0 <= key < _U64 or concurrency < 0:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        if handle is None:
            if existing_port is not None:
                raise WinsockError(WSA_INVALID_PARAMETER, funcname)
            return self._handles.create(_PortEntry())
        entry = self._lookup(handle, _SocketEntry)
        if entry is None:
            raise WinsockError(WSA_INVALID_HANDLE, funcname)
        if existing_port is None:
            port_handle = self._handles.create(_PortEntry())
        else:
            self._port(existing_port, funcname)
            port_handle = existing_port
        with self._lock:
            if entry.port is not None:           # one association per handle
                fail = True
            else:
                fail = False
                entry.port = self._handles.query(port_handle)
                entry.key = key
        if fail:
            if existing_port is None:
                self._handles.close(port_handle)
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        return port_handle

    def _unpack(self, packet: tuple[int, int, int, int]) -> tuple[int, int, int, Any]:
        status, nbytes, key, overlapped_id = packet
        if not overlapped_id:
            return (status, nbytes, key, None)
        # An Operation (a completion: it keeps the buffers alive until now)
        # or a bare Overlapped (PostQueuedCompletionStatus).
        riding = self._inflight.close(overlapped_id)
        if type(riding) is Operation:
            riding = riding.overlapped
        return (status, nbytes, key, riding)

    def GetQueuedCompletionStatus(self, port: int, ms: int) -> tuple[int, int, int, Any]:
        """``(rc, nbytes, key, overlapped)`` of the next completion packet.
        Never raises for an I/O error: ``rc`` is 0 or the operation's error;
        ``(WAIT_TIMEOUT, 0, 0, None)`` on time-out;
        ``(ERROR_ABANDONED_WAIT_0, 0, 0, None)`` if the port is closed while
        waiting.  Waits without the GIL."""
        # The hot path of every completion-port program: lookups inlined,
        # and no clock reads unless the wait is timed and gets woken early.
        try:
            entry = self._handles.query(port)
        except WinsockError:
            entry = None
        if type(entry) is not _PortEntry:
            raise WinsockError(WSA_INVALID_HANDLE, "GetQueuedCompletionStatus")
        queue = entry.queue
        if ms == 0 and type(ms) is int:
            packet = queue.get(0)
            if packet is not None:
                status, nbytes, key, overlapped_id = packet
                if not overlapped_id:
                    return packet[:3] + (None,)
                riding = self._inflight.close(overlapped_id)
                if type(riding) is Operation:
                    riding = riding.overlapped
                return (status, nbytes, key, riding)
            return (ERROR_ABANDONED_WAIT_0 if queue.closed else WAIT_TIMEOUT, 0, 0, None)
        deadline = ms_deadline(ms, "GetQueuedCompletionStatus")
        packet = queue.get(0)                       # a packet waiting: no clock needed
        if packet is not None:
            return self._unpack(packet)
        while True:
            packet = queue.get(None if deadline is None else time_left(deadline))
            if packet is not None:
                return self._unpack(packet)
            if queue.closed:
                return (ERROR_ABANDONED_WAIT_0, 0, 0, None)
            if deadline is not None and time.monotonic() >= deadline:
                return (WAIT_TIMEOUT, 0, 0, None)
            # Woken early (an APC for another, alertable, waiter): wait on.

    def GetQueuedCompletionStatusEx(self, port: int, max_entries: int, ms: int,
                                    alertable: bool = False) -> list[tuple[int, int, int, Any]]:
        """Up to `max_entries` packets as ``(rc, nbytes, key, overlapped)``;
        waits only for the first.  ``[]`` on time-out, when the port is
        closed, or when an alertable wait ran APCs of the calling thread."""
        funcname = "GetQueuedCompletionStatusEx"
        queue = self._port(port, funcname).queue
        if not isinstance(max_entries, int):
            raise TypeError("max_entries must be an int")
        if max_entries < 1:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        if not alertable and ms == 0 and type(ms) is int:     # a poll: no clock, no loop
            return [self._unpack(p) for p in queue.get_many(max_entries, 0)]
        deadline = ms_deadline(ms, funcname)
        me = threading.get_ident()
        while True:
            if alertable:
                if self.threads.run_apcs(me):
                    return []
                self._add_alert_waker(me, queue.wake_waiters)
                try:
                    if self.threads.pending(me):
                        continue
                    packets = queue.get_many(max_entries, time_left(deadline))
                finally:
                    self._remove_alert_waker(me, queue.wake_waiters)
            else:
                packets = queue.get_many(max_entries, time_left(deadline))
            if packets:
                return [self._unpack(p) for p in packets]
            if queue.closed:
                return []
            remaining = time_left(deadline)
            if remaining is not None and remaining <= 0:
                return []

    def PostQueuedCompletionStatus(self, port: int, nbytes: int, key: int,
                                   overlapped: Overlapped | None) -> None:
        """Post a packet ``(0, nbytes, key, overlapped)`` to a port."""
        funcname = "PostQueuedCompletionStatus"
        queue = self._port(port, funcname).queue
        if overlapped is not None and not isinstance(overlapped, Overlapped):
            raise TypeError("overlapped must be an Overlapped or None")
        overlapped_id = self._inflight.create(overlapped) if overlapped is not None else 0
        try:
            queue.post(0, nbytes, key, overlapped_id)
        except BaseException as exc:
            if overlapped_id:
                self._inflight.close(overlapped_id)
            if isinstance(exc, WinsockError):
                raise WinsockError(exc.winerror, funcname) from None
            raise

    def CloseHandle(self, handle: int) -> None:
        """Close a completion port or an event handle.  Closing a port wakes
        its waiters (``ERROR_ABANDONED_WAIT_0``) and discards its queued
        packets, as Windows does.  Socket handles are closed by their
        provider, not here: WSA_INVALID_HANDLE."""
        try:
            entry = self._handles.query(handle)
        except WinsockError:
            entry = None
        if type(entry) is _EventEntry:
            self.WSACloseEvent(handle, "CloseHandle")
            return
        if type(entry) is not _PortEntry:
            raise WinsockError(WSA_INVALID_HANDLE, "CloseHandle")
        self._handles.close(handle)
        self._drop_port(entry)

    def _drop_port(self, entry: _PortEntry) -> None:
        for _, _, _, overlapped_id in entry.queue.close():
            if overlapped_id:
                self._inflight.close(overlapped_id)

    # -- overlapped operations: the delivery rules of SPEC §6.2, in one place ----
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

        The routine will run on the thread `thread_id` names, or on the
        calling thread when it is None; the engine keeps its own thread
        handle for that, so the caller may close `thread_id` at any time.
        The overlapped's event, if any, is reset now.
        """
        try:
            entry = self._handles.query(s)
        except WinsockError:
            entry = None
        if type(entry) is not _SocketEntry:
            raise WinsockError(WSAENOTSOCK, funcname)
        return self._start_on(entry, s, overlapped, routine, thread_id, buffers, provider,
                              funcname)

    def _start_on(self, entry: _SocketEntry, s: int, overlapped: Overlapped,
                  routine: Callable[..., Any] | None, thread_id: ThreadId | None,
                  buffers: Any, provider: Any, funcname: str | None) -> Operation:
        """start_overlapped for a caller that has already looked `s` up."""
        if not isinstance(overlapped, Overlapped):
            raise TypeError(f"overlapped must be an Overlapped, not {type(overlapped).__name__}")
        thread_handle = 0
        if thread_id is not None and not isinstance(thread_id, ThreadId):
            raise TypeError(f"thread_id must be a ThreadId or None, not {type(thread_id).__name__}")
        if routine is not None:
            if not callable(routine):
                raise TypeError("completion routine must be callable")
            if entry.port is not None:
                raise WinsockError(WSAEINVAL, funcname)
            if thread_id is None:
                thread_handle = self.threads.open()
            else:
                try:
                    thread_handle = self.threads.open(self.threads.ident_of(thread_id.ThreadHandle))
                except WinsockError:
                    raise WinsockError(WSAEINVAL, funcname) from None
        if overlapped._operation is not None:
            if thread_handle:
                self.threads.close(thread_handle)
            raise WinsockError(WSAEINVAL, funcname)
        op = Operation(overlapped, s, entry, provider, routine, thread_handle, buffers)
        overlapped.Internal = WSA_IO_PENDING
        overlapped.InternalHigh = 0
        overlapped._flags = 0
        overlapped._operation = op
        if overlapped.hEvent is not None:
            event = self._lookup(overlapped.hEvent, _EventEntry)
            if event is not None:
                event.signalled = False
        self._operations.add(op)
        return op

    def complete_overlapped(self, op: Operation, error: int, nbytes: int, flags: int = 0) -> bool:
        """Complete `op` and perform its completion action (SPEC §6.2).

        With a completion routine: ``routine(error, nbytes, overlapped,
        flags)`` is queued as an APC to its thread, the event is not
        signalled.  Otherwise the overlapped's event is signalled and, if the
        socket is associated with a port, a packet is posted there.
        Returns True if this call completed `op`, False if it had already
        been completed (or cancelled): a second completion is a no-op, so
        that racing completers (data arriving while the socket closes)
        deliver exactly once.
        """
        try:
            self._operations.remove(op)          # the one atomic claim
        except KeyError:
            return False
        overlapped = op.overlapped
        overlapped.InternalHigh = nbytes
        overlapped._flags = flags
        overlapped._operation = None
        overlapped.Internal = error               # last: ends `pending`
        if op.event is not None:
            op.event.set()
        relay = overlapped._relay
        if relay is not None and not relay(error, nbytes, flags):
            # A layer above issued this operation with its own overlapped:
            # it takes the completion over, at once and in this thread (the
            # in-process form of a layered provider noticing its lower
            # request completed and calling WPUCompleteOverlappedRequest).
            # A true result means: deliver this one too (its routine).
            return True
        if op.routine is not None:
            with self._lock:
                self._routines_queued += 1
            self._queue_apc(op.thread_handle, self._run_routine, (op, error, nbytes, flags))
            return True
        self._signal_and_post(op.entry, op, overlapped, error, nbytes)
        return True

    def settle_overlapped(self, op: Operation, error: int, nbytes: int, flags: int = 0) -> bool:
        """Complete `op`'s status now and owe its completion routine: the
        overlapped shows the result at once (as Windows writes the status
        when the I/O completes, before the routine's APC runs), and
        :meth:`deliver_settled` runs the routine later, in the thread that
        should run it.  For a layered provider whose lower request
        completes through an APC on the application's thread.  Until then
        the routine counts as undelivered.  False if `op` had already
        completed."""
        try:
            self._operations.remove(op)
        except KeyError:
            return False
        overlapped = op.overlapped
        overlapped.InternalHigh = nbytes
        overlapped._flags = flags
        overlapped._operation = None
        op.settled = (error, nbytes, flags)
        with self._lock:
            self._routines_queued += 1
        overlapped.Internal = error               # last: ends `pending`
        if op.event is not None:
            op.event.set()
        relay = overlapped._relay
        if relay is not None:                     # a layer above settles its own request
            relay(error, nbytes, flags)
        return True

    def deliver_settled(self, op: Operation) -> bool:
        """Run the routine :meth:`settle_overlapped` owed, in this thread;
        False if there is none (never settled, or already delivered)."""
        with self._lock:
            args, op.settled = op.settled, None
        if args is None:
            return False
        self._run_routine((op, *args))
        return True

    def _complete_unstarted(self, entry: _SocketEntry, overlapped: Overlapped, error: int,
                            nbytes: int) -> None:
        """WPUCompleteOverlappedRequest for an overlapped the engine never saw
        start (the provider completed it without start_overlapped): the same
        event/port rules, without recording an Operation first."""
        overlapped.InternalHigh = nbytes
        overlapped._flags = 0
        overlapped.Internal = error
        relay = overlapped._relay
        if relay is not None:
            relay(error, nbytes, 0)               # no routine here to deliver
            return
        self._signal_and_post(entry, overlapped, overlapped, error, nbytes)

    def _signal_and_post(self, entry: _SocketEntry, riding: Any, overlapped: Overlapped,
                         error: int, nbytes: int) -> None:
        """SPEC §6.2 without a routine: signal the event, post to the port.
        `riding` (the Operation, or the bare Overlapped) is what the packet
        keeps alive until GetQueuedCompletionStatus dequeues it."""
        if overlapped.hEvent is not None:
            event = self._lookup(overlapped.hEvent, _EventEntry)
            if event is not None:                 # a closed event: nothing to signal
                self.WSASetEvent(overlapped.hEvent)
        port = entry.port
        if port is not None:
            overlapped_id = self._inflight.create(riding)
            try:
                port.queue.post(error, nbytes, entry.key, overlapped_id)
            except WinsockError:                  # the port was closed: packet lost
                self._inflight.close(overlapped_id)

    def cancel_overlapped(self, op: Operation, error: int = WSA_OPERATION_ABORTED,
                          notify: bool = True) -> bool:
        """Fail `op` with `error`.  With `notify` (WSPCloseSocket) the
        completion action is performed as by :meth:`complete_overlapped`;
        without it (the final WSPCleanup) nothing is signalled, queued or
        posted.  Returns False if `op` had already completed."""
        if notify:
            return self.complete_overlapped(op, error, 0)
        try:
            self._operations.remove(op)
        except KeyError:
            return False
        overlapped = op.overlapped
        overlapped.InternalHigh = 0
        overlapped._operation = None
        overlapped.Internal = error
        if op.event is not None:
            op.event.set()
        if op.thread_handle:
            self.threads.close(op.thread_handle)
        return True

    def _run_routine(self, args: tuple[Operation, int, int, int]) -> None:
        op, error, nbytes, flags = args
        with self._lock:
            self._routines_queued -= 1
        self.threads.close(op.thread_handle)
        op.routine(error, nbytes, op.overlapped, flags)   # type: ignore[misc]

    def operations(self, provider: Any = None, socket: int | None = None) -> list[Operation]:
        """A snapshot of the started, not yet completed operations (of one
        provider and/or socket)."""
        return [op for op in list(self._operations)
                if (provider is None or op.provider is provider)
                and (socket is None or op.socket == socket)]

    def wait_overlapped(self, overlapped: Overlapped, timeout: float | None = None) -> bool:
        """Block (without holding the GIL) until the operation on `overlapped`
        completes or `timeout` seconds pass (None: forever; checked as
        every seconds timeout is, see wsp.spi.checks); True if it has
        completed."""
        deadline = deadline_after(seconds_timeout(timeout, "wait_overlapped"))
        op = overlapped._operation
        if op is None:
            return not overlapped.pending
        event = op.event
        if event is None:
            with self._lock:
                if op.event is None:
                    op.event = threading.Event()
                event = op.event
        while overlapped.pending:                # re-checked after publishing the event
            if event.wait(wait_time(deadline)):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    # -- accounting and teardown -----------------------------------------------------
    def resources(self) -> dict[str, int]:
        """What the process holds right now, by kind; all zero after a clean
        teardown.  ``overlapped_pending``: started, not completed;
        ``overlapped_undelivered``: completed, but the packet is still in a
        port or the completion routine has not run yet."""
        counts = {"sockets": 0, "events": 0, "ports": 0}
        for handle in self._handles.handles():
            try:
                entry = self._handles.query(handle)
            except WinsockError:                  # closed meanwhile
                continue
            kind = type(entry)
            if kind is _SocketEntry:
                counts["sockets"] += 1
            elif kind is _EventEntry:
                counts["events"] += 1
            else:
                counts["ports"] += 1
        counts["threads"] = len(self.threads)
        counts["overlapped_pending"] = len(self._operations)
        counts["overlapped_undelivered"] = len(self._inflight) + self._routines_queued
        counts["providers"] = len(self._providers)
        return counts

    def terminate(self) -> None:
        """End the process without WSPCleanup, as a crash would: every
        provider serving it releases what it held (its ``_on_terminate``
        hook), pending operations vanish without notification, ports and
        events are closed (their waiters woken), queued APCs are dropped,
        and every handle is gone.  The object is then a fresh, uninitialised
        process."""
        with self._lock:
            providers = list(self._providers.values())
        # Runs to the end whatever a provider's hook does: a crash releases
        # everything.  The first error a hook raised is re-raised at the end.
        first_error: BaseException | None = None
        for provider in providers:
            try:
                provider._terminated(self)
            except Exception as exc:  # noqa: BLE001 -- re-raised below
                first_error = first_error or exc
        for op in list(self._operations):
            self.cancel_overlapped(op, notify=False)
        for handle in self._handles.handles():
            try:
                entry = self._handles.close(handle)
            except WinsockError:
                continue
            if type(entry) is _PortEntry:
                self._drop_port(entry)
            elif type(entry) is _EventEntry:
                for waiter in list(entry.waiters):
                    waiter.wake()
        self._forget_application()
        with self._lock:
            self._startups = 0
            self._providers.clear()
            self._alertable.clear()
            self._routines_queued = 0
            # Fresh registries drop the APCs still queued and the in-flight
            # overlapped references with the old ones.
            self.threads = ThreadRegistry()
            self._inflight = HandleTable()
        if first_error is not None:
            raise first_error

    def __repr__(self) -> str:
        state = "initialised" if self.initialised else "not initialised"
        return f"<wsp.Process {state} {self.resources()}>"
