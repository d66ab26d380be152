"""The overlapped engine: starting, completing, settling, cancelling and
delivering overlapped operations (``docs/guide/spi-model.rst, "Overlapped operations"``).

This is the only place where the delivery rules of
``docs/guide/spi-model.rst, "Overlapped operations"`` are applied, in :meth:`Engine.deliver`: a
completion routine is queued as an APC to the thread (lifetime) it belongs to; otherwise the
overlapped's event is signalled and, when the socket has a completion port, a packet naming the
operation goes there.  Every started operation is claimed exactly once -- by a completion, a
settlement or a cancellation -- through one atomic ``dict`` deletion, so racing completers (data
arriving while the socket closes) deliver once.

Operations are indexed by their socket (``SocketEntry.operations``), so
closing a socket touches only its own operations, whatever else the
process has in flight or has had (``docs/guide/network.rst``: costs grow with the work).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..errors import WSA_IO_PENDING, WSA_OPERATION_ABORTED, WSAEINVAL, WSAENOTSOCK, WinsockError
from .checks import block_time, deadline_after, seconds_timeout, wait_time
from .events import Events
from .handles import HandleSpace, SocketEntry
from .ports import Ports
from .structs import Overlapped, ThreadId
from .waits import Waiter, Waits

try:
    import cython             # compiling: Cython's own; uncompiled: Cython.Shadow
except ImportError:           # uncompiled, Cython not installed
    from .. import _cython_shim as cython

__all__ = ["Engine", "Operation"]


class Operation:
    """One started overlapped operation, from start to delivery.

    Providers get one from :meth:`Process.start_overlapped` and finish it
    with :meth:`Process.complete_overlapped` (or
    :meth:`Process.cancel_overlapped`).  It holds the overlapped and the
    operation's buffers until the completion has been delivered.
    """

    __slots__ = ("overlapped", "socket", "entry", "provider", "routine", "thread_handle",
                 "buffers", "event", "settled", "__weakref__")

    def __init__(self, overlapped: Overlapped, socket: int, entry: SocketEntry,
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
        self.settled: tuple[int, int, int] | None = None   # see Engine.settle

    def __repr__(self) -> str:
        return f"<Operation socket={self.socket} {self.overlapped!r}>"


def _operation(op: object) -> Operation:
    """`op` if it is an Operation, else TypeError (never None: the compiled
    engine reads its C fields)."""
    if type(op) is not Operation:
        raise TypeError(f"op must be an Operation, not {type(op).__name__}")
    return cython.cast(Operation, op)


def _record(op: Operation, error: int, nbytes: int, flags: int) -> Overlapped:
    """Write the result into `op`'s overlapped; `Internal` last, since it is
    what ends ``pending``."""
    overlapped = op.overlapped
    overlapped.InternalHigh = nbytes
    overlapped.result_flags = flags
    overlapped.operation = None
    overlapped.Internal = error
    if op.event is not None:
        op.event.set()
    return overlapped


class _Completion(threading.Event):
    """An operation's completion event when a wait on a simulated clock
    waits for it (``Operation.event``; the wall-clock wait uses a plain
    ``threading.Event``).  Such a wait parks on a :class:`Waiter` that the
    clock can wake as well, so :meth:`set` also wakes the Waiters parked
    here -- and the plain event it replaced, if a wall-clock wait had made
    one, so that a waiter on that one is not stranded."""

    def __init__(self, previous: threading.Event | None) -> None:
        super().__init__()
        self.previous = previous
        #: the Waiters of the clocked waits on this operation
        self.waiters: list[Waiter] = []
        if previous is not None and previous.is_set():
            super().set()

    def set(self) -> None:
        super().set()
        if self.previous is not None:
            self.previous.set()
        for waiter in list(self.waiters):
            waiter.wake()


class Engine:
    """The overlapped operations of one process.  `registry` is a callable
    giving the process's current core ThreadRegistry."""

    __slots__ = ("handles", "_registry", "events", "waits", "ports", "_lock", "_owed",
                 "_detached", "clock")

    def __init__(self, handles: HandleSpace, registry: Callable[[], Any], events: Events,
                 waits: Waits, ports: Ports) -> None:
        self.handles = handles
        self._registry = registry
        self.events = events
        self.waits = waits
        self.ports = ports
        self._lock = threading.Lock()
        # Operations whose completion routine is owed (queued as an APC, or
        # settled for a layer to deliver) and has not run yet.
        self._owed: dict[Operation, None] = {}
        # Socket entries whose handle was closed while operations were still
        # pending on them, so that those stay findable by socket handle.
        self._detached: dict[int, SocketEntry] = {}
        #: the simulated clock wait() counts (wsp.spi.clock; set by
        #: Process.use_clock), or None: the wall clock
        self.clock = None

    # -- starting ------------------------------------------------------------------
    def start(self, s: int, overlapped: Overlapped,
              routine: Callable[[int, int, Overlapped, int], Any] | None = None,
              thread_id: ThreadId | None = None, buffers: Any = None,
              provider: Any = None, funcname: str | None = None) -> Operation:
        """Record the start of an overlapped operation on socket `s` (see
        :meth:`Process.start_overlapped`)."""
        try:
            entry = self.handles.table.query(s)
        except WinsockError:
            entry = None
        if type(entry) is not SocketEntry:
            raise WinsockError(WSAENOTSOCK, funcname)
        return self.start_on(entry, s, overlapped, routine, thread_id, buffers, provider,
                             funcname)

    @cython.locals(ov=Overlapped, socket_entry=SocketEntry, op=Operation)
    def start_on(self, entry: SocketEntry, s: int, overlapped: Overlapped,
                 routine: Callable[..., Any] | None, thread_id: ThreadId | None,
                 buffers: Any, provider: Any, funcname: str | None) -> Operation:
        """:meth:`start` for a caller that has already looked `s` up."""
        if not isinstance(overlapped, Overlapped):
            raise TypeError(f"overlapped must be an Overlapped, not {type(overlapped).__name__}")
        if type(entry) is not SocketEntry:
            raise WinsockError(WSAENOTSOCK, funcname)
        ov = cython.cast(Overlapped, overlapped)
        socket_entry = cython.cast(SocketEntry, entry)
        thread_handle = 0
        if thread_id is not None and not isinstance(thread_id, ThreadId):
            raise TypeError(f"thread_id must be a ThreadId or None, not {type(thread_id).__name__}")
        if routine is not None:
            if not callable(routine):
                raise TypeError("completion routine must be callable")
            if socket_entry.port is not None:
                raise WinsockError(WSAEINVAL, funcname)
            registry = self._registry()
            if thread_id is None:
                thread_handle = registry.open()
            else:
                # The same thread *lifetime* as the caller's ThreadId, not
                # just the same ident: an ident the OS hands to a later
                # thread must never receive this routine.
                try:
                    thread_handle = registry.duplicate(thread_id.ThreadHandle)
                except WinsockError:
                    raise WinsockError(WSAEINVAL, funcname) from None
        if ov.operation is not None:
            if thread_handle:
                self._registry().close(thread_handle)
            raise WinsockError(WSAEINVAL, funcname)
        op = Operation(ov, s, socket_entry, provider, routine, thread_handle, buffers)
        ov.Internal = WSA_IO_PENDING
        ov.InternalHigh = 0
        ov.result_flags = 0
        ov.operation = op
        if ov.hEvent is not None:
            self.events.reset_if_open(ov.hEvent)
        socket_entry.operations[op] = None
        return op

    # -- finishing: every path claims first --------------------------------------------
    def _claim(self, op: Operation) -> bool:
        """Take `op` out of the pending operations; False if someone else
        already did (the one atomic step of exactly-once delivery)."""
        ops = op.entry.operations
        try:
            del ops[op]
        except KeyError:
            return False
        if not ops and self._detached:
            self._detached.pop(op.socket, None)
        return True

    @cython.locals(operation=Operation, overlapped=Overlapped)
    def complete(self, op: Operation, error: int, nbytes: int, flags: int = 0) -> bool:
        """Complete `op` and perform its completion action (see
        :meth:`Process.complete_overlapped`); False if it had already
        completed."""
        operation = _operation(op)
        if not self._claim(operation):
            return False
        overlapped = _record(operation, error, nbytes, flags)
        relay = overlapped.relay
        if relay is not None and not relay(error, nbytes, flags):
            # A layer above issued this operation with its own overlapped:
            # it takes the completion over, at once and in this thread (the
            # in-process form of a layered provider noticing its lower
            # request completed and calling WPUCompleteOverlappedRequest).
            # A true result means: deliver this one too (its routine).
            return True
        self.deliver(operation, operation.entry, overlapped, error, nbytes, flags)
        return True

    @cython.locals(socket_entry=SocketEntry)
    def deliver(self, op: Operation | None, entry: SocketEntry, overlapped: Overlapped,
                error: int, nbytes: int, flags: int) -> None:
        """The completion action of ``docs/guide/spi-model.rst, "Overlapped operations"``, the one
        place it is written: the routine as an APC to its thread; otherwise the event, and a packet
        to the socket's port naming `op` (or the bare overlapped when the engine never saw it
        start), which keeps it alive until dequeued."""
        if type(entry) is not SocketEntry:
            raise TypeError(f"entry must be a SocketEntry, not {type(entry).__name__}")
        socket_entry = cython.cast(SocketEntry, entry)
        if op is not None and op.routine is not None:
            with self._lock:
                self._owed[op] = None
            self.waits.queue_apc(op.thread_handle, self._run_routine, (op, error, nbytes, flags))
            return
        if overlapped.hEvent is not None:
            self.events.signal_if_open(overlapped.hEvent)   # a closed event: nothing
        port = socket_entry.port
        if port is not None:
            self.ports.post(port, error, nbytes, socket_entry.key,
                            op if op is not None else overlapped)

    def settle(self, op: Operation, error: int, nbytes: int, flags: int = 0) -> bool:
        """Complete `op`'s status now and owe its routine (see
        :meth:`Process.settle_overlapped`); False if it had already
        completed."""
        op = _operation(op)
        if not self._claim(op):
            return False
        op.settled = (error, nbytes, flags)
        with self._lock:
            self._owed[op] = None
        overlapped = _record(op, error, nbytes, flags)
        relay = overlapped.relay
        if relay is not None:                     # a layer above settles its own request
            relay(error, nbytes, flags)
        return True

    def deliver_settled(self, op: Operation) -> bool:
        """Run the routine :meth:`settle` owed, in this thread; False if
        there is none (never settled, or already delivered)."""
        with self._lock:
            args, op.settled = op.settled, None
        if args is None:
            return False
        self._run_routine((op, *args))
        return True

    def complete_unstarted(self, entry: SocketEntry, overlapped: Overlapped, error: int,
                           nbytes: int) -> None:
        """WPUCompleteOverlappedRequest for an overlapped the engine never
        saw start (the provider completed it without start_overlapped): the
        same event/port rules, without an Operation."""
        overlapped.InternalHigh = nbytes
        overlapped.result_flags = 0
        overlapped.Internal = error
        relay = overlapped.relay
        if relay is not None:
            relay(error, nbytes, 0)               # no routine here to deliver
            return
        self.deliver(None, entry, overlapped, error, nbytes, 0)

    def cancel(self, op: Operation, error: int = WSA_OPERATION_ABORTED,
               notify: bool = True) -> bool:
        """Fail `op` with `error`: with `notify` (WSPCloseSocket) through its
        completion action, without it (the final WSPCleanup, terminate)
        silently.  False if it had already completed."""
        if notify:
            return self.complete(op, error, 0)
        op = _operation(op)
        if not self._claim(op):
            return False
        _record(op, error, 0, 0)
        if op.thread_handle:
            self._registry().close(op.thread_handle)
        return True

    def _run_routine(self, args: tuple[Operation, int, int, int]) -> None:
        op, error, nbytes, flags = args
        with self._lock:
            self._owed.pop(op, None)
        self._registry().close(op.thread_handle)
        op.routine(error, nbytes, op.overlapped, flags)   # type: ignore[misc]

    def discard_stranded_routines(self, provider: Any = None) -> int:
        """Discard the completion routines owed to threads that have ended
        (of one provider's operations, or all): they can never run -- a
        routine belongs to one thread's lifetime, and a later thread that
        gets the same OS ident is another thread, as on Windows, where an
        APC queued to a thread that exits is lost.  Until discarded they
        count in ``resources()`` (``overlapped_undelivered``, ``threads``).
        Returns how many."""
        registry = self._registry()
        with self._lock:
            owed = [op for op in self._owed if provider is None or op.provider is provider]
        discarded = 0
        for op in owed:
            try:
                if not registry.ended(op.thread_handle):
                    continue
            except WinsockError:              # delivered meanwhile
                continue
            with self._lock:
                if op not in self._owed:      # delivered meanwhile
                    continue
                del self._owed[op]
            try:
                registry.close(op.thread_handle)   # drops the queued APC with it
            except WinsockError:
                pass
            discarded += 1
        return discarded

    # -- finding operations -------------------------------------------------------------
    def detach(self, s: int, entry: SocketEntry) -> None:
        """Socket handle `s` was closed: keep its pending operations
        findable by :meth:`operations` until they finish."""
        if entry.operations:
            self._detached[s] = entry
            if not entry.operations:              # finished meanwhile
                self._detached.pop(s, None)

    def operations(self, provider: Any = None, socket: int | None = None) -> list[Operation]:
        """A snapshot of the started, not yet completed operations (of one
        provider and/or socket).  With `socket`, the cost is that socket's
        own operations."""
        if socket is not None:
            entry = self.handles.lookup(socket, SocketEntry) or self._detached.get(socket)
            if entry is None:
                return []
            return [op for op in list(entry.operations)
                    if provider is None or op.provider is provider]
        found = []
        for entry in self._socket_entries():
            found.extend(op for op in list(entry.operations)
                         if provider is None or op.provider is provider)
        return found

    def pending_count(self) -> int:
        """How many operations are started and not completed."""
        return sum(len(entry.operations) for entry in self._socket_entries())

    def owed_count(self) -> int:
        """How many completion routines are owed and have not run."""
        return len(self._owed)

    def _socket_entries(self) -> list[SocketEntry]:
        entries = [e for _, e in self.handles.entries() if type(e) is SocketEntry]
        return entries + list(self._detached.values())

    def wait(self, overlapped: Overlapped, timeout: float | None = None) -> bool:
        """Block until the operation on `overlapped` completes (see
        :meth:`Process.wait_overlapped`)."""
        clock = self.clock
        if clock is not None:
            return self._wait_by(clock, overlapped, timeout)
        deadline = deadline_after(seconds_timeout(timeout, "wait_overlapped"))
        op = overlapped.operation
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

    def _wait_by(self, clock: Any, overlapped: Overlapped, timeout: float | None) -> bool:
        """:meth:`wait` counting `clock`'s time (`timeout` in simulated
        seconds), by wsp.spi.clock's wait protocol: the thread parks on a
        Waiter that the operation's completion (a :class:`_Completion`) and
        the clock both wake."""
        deadline = clock.deadline(seconds_timeout(timeout, "wait_overlapped"))
        op = overlapped.operation
        if op is None:
            return not overlapped.pending
        with self._lock:
            event = op.event
            if type(event) is not _Completion:
                event = _Completion(event)
                op.event = event
        waiters = event.waiters
        while overlapped.pending:
            if clock.expired(deadline):
                return False
            waiter = Waiter()
            waiters.append(waiter)
            ready = _settled(waiter, overlapped)
            try:
                try:
                    left = clock.begin_wait(ready, waiter.wake, deadline)
                    if not ready():           # registered first: a completion is not missed
                        waiter.sleep(block_time(clock, left))
                finally:
                    clock.end_wait()
            finally:
                waiters.remove(waiter)
        return True

    def forget(self) -> None:
        """Drop every record (the process terminated; its operations have
        been cancelled silently)."""
        with self._lock:
            self._owed.clear()
        self._detached.clear()


def _settled(waiter: Waiter, overlapped: Overlapped) -> Callable[[], bool]:
    """Whether a thread in :meth:`Engine.wait` on a simulated clock can act
    (asked by the clock, under its lock, from any thread)."""
    def ready() -> bool:
        return waiter.woken or not overlapped.pending
    return ready
