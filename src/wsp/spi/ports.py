"""I/O completion ports: CreateIoCompletionPort, GetQueuedCompletionStatus(Ex),
PostQueuedCompletionStatus, and closing a port
(``docs/guide/spi-model.rst, "Process and upcalls"``).

A port is a core ``CompletionQueue`` of integer packets.  What a packet
names -- the Operation of a completion (which keeps the caller's buffers
alive until the dequeue) or the bare Overlapped of a posted packet -- rides
in the packet itself: compiled, the packet's overlapped field is the
object's address, holding one reference of its own (:func:`_board` /
:func:`_alight`); the pure twin, which has no addresses, parks the object in
an *in-flight* table and the packet carries its handle there.
:meth:`Ports.post` is the only way a completion enters a port and the
dequeues are the only way one leaves, so an in-flight entry is released
exactly once: at its dequeue, or when its port closes and discards it.

A process that waits by a simulated clock (``Process.use_clock``) dequeues
through the clock's wait protocol (:mod:`wsp.spi.clock`) on one branch off
the hot path, taken only when a dequeue is about to block.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..core import HandleTable
from ..errors import (ERROR_ABANDONED_WAIT_0, WAIT_TIMEOUT, WIN32_ERROR_OF_WSA,
                      WSA_INVALID_HANDLE, WSA_INVALID_PARAMETER, WinsockError)
from .checks import block_time, ms_deadline, time_left
from .handles import HandleSpace, PortEntry, SocketEntry
from .structs import Overlapped
from .waits import Waits

try:
    import cython             # compiling: Cython's own; uncompiled: Cython.Shadow
except ImportError:           # uncompiled, Cython not installed
    from .. import _cython_shim as cython

__all__ = ["Ports"]

_U64 = 1 << 64


def _board(inflight: HandleTable, riding: object) -> int:
    """The overlapped field of a packet that carries `riding`, which keeps it
    alive until :func:`_alight` (exactly once per packet: at its dequeue, at
    its port's close, or when the post failed).  Compiled: the object's
    address, with a reference of the packet's own; pure: a handle in
    `inflight`."""
    if cython.compiled:
        Py_INCREF(riding)  # noqa: F821 -- cimported by ports.pxd
        return cython.cast(cython.size_t, cython.cast(cython.p_void, riding))
    return inflight.create(riding)


def _alight(inflight: HandleTable, overlapped_id: int) -> object:
    """What a packet's overlapped field carried (see :func:`_board`); the
    packet's reference passes to the caller."""
    if cython.compiled:
        riding = cython.cast(object, cython.cast(cython.p_void,
                                                 cython.cast(cython.size_t, overlapped_id)))
        Py_DECREF(riding)  # noqa: F821 -- the packet's own; `riding` holds the caller's
        return riding
    return inflight.close(overlapped_id)


def _new_port() -> PortEntry:
    """A port whose packets this module fills: compiled, they carry object
    addresses, which the port releases if it is freed still holding some."""
    port = PortEntry()
    if cython.compiled:
        port.owns_riders = True
    return port


class Ports:
    """The completion ports of one process."""

    __slots__ = ("handles", "waits", "_registry", "inflight", "riders", "_lock", "clock")

    def __init__(self, handles: HandleSpace, waits: Waits, registry: Callable[[], Any]) -> None:
        self.handles = handles
        self.waits = waits
        self._registry = registry
        #: the pure twin's parking place for what packets carry: an Operation
        #: (a completion) or an Overlapped (posted); unused when compiled
        self.inflight = HandleTable()
        #: packets queued that name an object (counted for resources())
        self.riders = 0
        self._lock = threading.Lock()
        #: the simulated clock the dequeues count (wsp.spi.clock; set by
        #: Process.use_clock), or None: the wall clock
        self.clock = None

    def reset(self) -> None:
        """Forget every in-flight reference (the process terminated; its
        ports were dropped first)."""
        self.inflight = HandleTable()
        self.riders = 0

    def in_flight(self) -> int:
        """How many queued packets name an Operation or an Overlapped."""
        return self.riders

    # -- making and associating ----------------------------------------------------
    def CreateIoCompletionPort(self, handle: int | None, existing_port: int | None = None,
                               key: int = 0, concurrency: int = 0) -> int:
        """With `handle` None: a new port.  With a socket handle: associate it
        with `existing_port` (or a new port) and `key`; its completions go
        there.  Returns the port.  ``concurrency`` is accepted and not
        enforced (any number of threads may drain a port at once).  A socket
        can be associated once (WSA_INVALID_PARAMETER again); a handle that
        is not a socket, or a port that is not one: WSA_INVALID_HANDLE."""
        funcname = "CreateIoCompletionPort"
        if not isinstance(key, int) or not isinstance(concurrency, int):
            raise TypeError("key and concurrency must be ints")
        if not 0 <= key < _U64 or concurrency < 0:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        handles = self.handles
        if handle is None:
            if existing_port is not None:
                raise WinsockError(WSA_INVALID_PARAMETER, funcname)
            return handles.add(_new_port())
        entry = handles.require(handle, SocketEntry, WSA_INVALID_HANDLE, funcname)
        if existing_port is None:
            port = _new_port()
            port_handle = handles.add(port)
        else:
            port = handles.require(existing_port, PortEntry, WSA_INVALID_HANDLE, funcname)
            port_handle = existing_port
        with self._lock:
            fail = entry.port is not None          # one association per handle
            if not fail:
                entry.port = port
                entry.key = key
        if fail:
            if existing_port is None:
                handles.remove(port_handle)
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        return port_handle

    # -- packets in ------------------------------------------------------------------
    def post(self, port: PortEntry, status: int, nbytes: int, key: int, riding: Any) -> bool:
        """Post a packet naming `riding` (None for none).  False if the port
        has been closed: the packet is lost, as on Windows.  Other errors
        (a value that does not fit the packet) raise, and nothing stays in
        the in-flight table."""
        queue = port.queue
        overlapped_id = _board(self.inflight, riding) if riding is not None else 0
        try:
            queue.post(status, nbytes, key, overlapped_id)
        except BaseException as exc:
            if overlapped_id:
                _alight(self.inflight, overlapped_id)
            if isinstance(exc, WinsockError) and exc.winerror == WSA_INVALID_HANDLE:
                return False                      # the port was closed
            raise
        if overlapped_id:
            self.riders += 1
        return True

    def PostQueuedCompletionStatus(self, port: int, nbytes: int, key: int,
                                   overlapped: Overlapped | None) -> None:
        """Post a packet ``(0, nbytes, key, overlapped)`` to a port.
        WSA_INVALID_HANDLE for a handle that is not an open port;
        WSAEINVAL for a value that does not fit a ULONG_PTR/DWORD."""
        funcname = "PostQueuedCompletionStatus"
        entry = self.handles.require(port, PortEntry, WSA_INVALID_HANDLE, funcname)
        if overlapped is not None and not isinstance(overlapped, Overlapped):
            raise TypeError("overlapped must be an Overlapped or None")
        try:
            posted = self.post(entry, 0, nbytes, key, overlapped)
        except WinsockError as exc:
            raise WinsockError(exc.winerror, funcname) from None
        if not posted:                            # closed between the lookup and the post
            raise WinsockError(WSA_INVALID_HANDLE, funcname)

    # -- packets out ---------------------------------------------------------------------
    def _unpack(self, packet: tuple[int, int, int, int],
                win32: bool) -> tuple[int, int, int, Any]:
        """A dequeued packet as the caller sees it.  With `win32` (the GetQueuedCompletionStatus
        form) a failure's status is what GetLastError() says after a failed dequeue on Windows: the
        Win32 form of the operation's error (``docs/guide/spi-model.rst, "Process and upcalls"``),
        not always the WSA code the overlapped keeps.  GetQueuedCompletionStatusEx has no per-entry
        GetLastError on Windows (its entries carry the overlapped, whose Internal is the status),
        so its form keeps the operation's code."""
        status, nbytes, key, overlapped_id = packet
        if status and win32:
            status = WIN32_ERROR_OF_WSA.get(status, status)
        if not overlapped_id:
            return (status, nbytes, key, None)
        # An Operation (a completion: it kept the buffers alive until now)
        # or a bare Overlapped (PostQueuedCompletionStatus).
        riding = _alight(self.inflight, overlapped_id)
        self.riders -= 1
        if type(riding) is not Overlapped:
            riding = riding.overlapped
        return (status, nbytes, key, riding)

    def GetQueuedCompletionStatus(self, port: int, ms: int) -> tuple[int, int, int, Any]:
        """``(rc, nbytes, key, overlapped)`` of the next completion packet.
        Never raises for an I/O error: ``rc`` is 0 or the Win32 form of the
        operation's error (``wsp.errors.win32_error``: ERROR_NETNAME_DELETED
        for WSAECONNRESET, ...; the overlapped keeps the WSA code);
        ``(WAIT_TIMEOUT, 0, 0, None)`` on time-out;
        ``(ERROR_ABANDONED_WAIT_0, 0, 0, None)`` if the port is closed while
        waiting.  Waits without the GIL.  WSA_INVALID_HANDLE for a handle
        that is not an open port."""
        # The hot path of every completion-port program: the lookup inlined,
        # and no clock read unless the wait is timed and gets woken early.
        try:
            entry = self.handles.table.query(port)
        except WinsockError:
            entry = None
        if type(entry) is not PortEntry:
            raise WinsockError(WSA_INVALID_HANDLE, "GetQueuedCompletionStatus")
        queue = cython.cast(PortEntry, entry).queue
        if ms == 0 and type(ms) is int:
            packet = queue.get(0)
            if packet is not None:
                return self._unpack(packet, True)
            return (ERROR_ABANDONED_WAIT_0 if queue.closed else WAIT_TIMEOUT, 0, 0, None)
        clock = self.clock
        if clock is not None:
            return self._dequeue_by(clock, queue, ms)
        deadline = ms_deadline(ms, "GetQueuedCompletionStatus")
        packet = queue.get(0)                       # a packet waiting: no clock needed
        if packet is not None:
            return self._unpack(packet, True)
        while True:
            packet = queue.get(time_left(deadline))
            if packet is not None:
                return self._unpack(packet, True)
            if queue.closed:
                return (ERROR_ABANDONED_WAIT_0, 0, 0, None)
            if deadline is not None and time.monotonic() >= deadline:
                return (WAIT_TIMEOUT, 0, 0, None)
            # Woken early (an APC for another, alertable, waiter): wait on.

    def GetQueuedCompletionStatusEx(self, port: int, max_entries: int, ms: int,
                                    alertable: bool = False) -> list[tuple[int, int, int, Any]]:
        """Up to `max_entries` packets as ``(rc, nbytes, key, overlapped)``,
        ``rc`` 0 or the operation's WSA error (its overlapped's ``Internal``;
        only GetQueuedCompletionStatus translates it); waits only for the first.  ``[]`` on time-out, when the port is
        closed, or when an alertable wait ran APCs of the calling thread.
        WSA_INVALID_PARAMETER for `max_entries` < 1."""
        funcname = "GetQueuedCompletionStatusEx"
        queue = self.handles.require(port, PortEntry, WSA_INVALID_HANDLE, funcname).queue
        if not isinstance(max_entries, int):
            raise TypeError("max_entries must be an int")
        if max_entries < 1:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        if not alertable and ms == 0 and type(ms) is int:     # a poll: no clock, no loop
            return [self._unpack(p, False) for p in queue.get_many(max_entries, 0)]
        clock = self.clock
        if clock is not None:
            return self._dequeue_many_by(clock, queue, max_entries, ms, alertable)
        deadline = ms_deadline(ms, funcname)
        me = threading.get_ident()
        waits = self.waits
        while True:
            if alertable:
                registry = self._registry()
                if registry.run_apcs(me):
                    return []
                # The wake count before the last look: an APC's wake that
                # comes between that look and the park is kept (since).
                since = queue.wakes
                waits.add_waker(me, queue.wake_waiters)
                try:
                    if registry.pending(me):
                        continue
                    packets = queue.get_many(max_entries, time_left(deadline), since)
                finally:
                    waits.remove_waker(me, queue.wake_waiters)
            else:
                packets = queue.get_many(max_entries, time_left(deadline))
            if packets:
                return [self._unpack(p, False) for p in packets]
            if queue.closed:
                return []
            left = time_left(deadline)
            if left is not None and left <= 0:
                return []

    # -- the dequeues on a simulated clock (wsp.spi.clock's protocol) --------------------
    def _dequeue_by(self, clock: Any, queue: Any, ms: int) -> tuple[int, int, int, Any]:
        """GetQueuedCompletionStatus counting `clock`'s time (never a poll:
        that took the hot path)."""
        deadline = clock.ms_deadline(ms, "GetQueuedCompletionStatus")
        while True:
            packet = queue.get(0)
            if packet is not None:
                return self._unpack(packet, True)
            if queue.closed:
                return (ERROR_ABANDONED_WAIT_0, 0, 0, None)
            if clock.expired(deadline):
                return (WAIT_TIMEOUT, 0, 0, None)
            wait = _PortWait(queue, None, 0)
            try:
                timeout = clock.begin_wait(wait.ready, wait.wake, deadline)
                if not wait.ready() and not clock.expired(deadline):
                    packet = queue.get(block_time(clock, timeout), wait.wakes)
            finally:
                clock.end_wait()
            if packet is not None:
                return self._unpack(packet, True)

    def _dequeue_many_by(self, clock: Any, queue: Any, max_entries: int, ms: int,
                         alertable: bool) -> list[tuple[int, int, int, Any]]:
        """GetQueuedCompletionStatusEx counting `clock`'s time; alertable,
        an APC queued to the thread wakes it (it runs, and the call returns
        [])."""
        deadline = clock.ms_deadline(ms, "GetQueuedCompletionStatusEx")
        me = threading.get_ident()
        waits = self.waits
        while True:
            registry = self._registry()
            if alertable and registry.run_apcs(me):
                return []
            packets = queue.get_many(max_entries, 0)
            if packets:
                return [self._unpack(p, False) for p in packets]
            if queue.closed or clock.expired(deadline):
                return []
            wait = _PortWait(queue, registry if alertable else None, me)
            if alertable:
                waits.add_waker(me, wait.wake)
            try:
                try:
                    timeout = clock.begin_wait(wait.ready, wait.wake, deadline)
                    if not wait.ready() and not clock.expired(deadline):
                        packets = queue.get_many(max_entries, block_time(clock, timeout),
                                                 wait.wakes)
                finally:
                    clock.end_wait()
            finally:
                if alertable:
                    waits.remove_waker(me, wait.wake)
            if packets:
                return [self._unpack(p, False) for p in packets]

    # -- closing ---------------------------------------------------------------------------
    def close(self, handle: int, funcname: str) -> None:
        """Close a port: its waiters wake (ERROR_ABANDONED_WAIT_0) and its
        queued packets are discarded, as Windows does."""
        entry = self.handles.require(handle, PortEntry, WSA_INVALID_HANDLE, funcname)
        self.handles.remove(handle)
        self.drop(entry)

    def drop(self, entry: PortEntry) -> None:
        """Close a port whose handle is gone and release what its queued
        packets named."""
        for _, _, _, overlapped_id in entry.queue.close():
            if overlapped_id:
                _alight(self.inflight, overlapped_id)
                self.riders -= 1


class _PortWait:
    """One thread's wait on a port as a simulated clock sees it: whether it
    can act (:meth:`ready`, asked under the clock's lock from any thread)
    and how to wake it (:meth:`wake`).

    `posted` is the queue's count of packets ever posted when the wait
    began: a packet handed straight to the parked getter never shows in
    ``len(queue)``, but it moves that count (so does a packet another getter
    took: the waiter then only looks again).  With `registry`, an APC queued
    to thread `me` counts too (an alertable wait).

    The core queue's ``wake_waiters()`` reaches only a getter already parked,
    so a wake could fall between the waiter's last look and its park; the
    waiter reads the queue's wake count (:attr:`wakes`) when it begins and
    hands it to its get as ``since``, which then returns at once if a wake
    came in between (the core checks it under the queue's lock, before
    parking)."""

    __slots__ = ("queue", "posted", "wakes", "registry", "me")

    def __init__(self, queue: Any, registry: Any, me: int) -> None:
        self.queue = queue
        self.posted = queue.posted
        self.wakes = queue.wakes          # the get's `since`: no wake before parking is lost
        self.registry = registry
        self.me = me

    def ready(self) -> bool:
        queue = self.queue
        registry = self.registry
        return (queue.closed or len(queue) > 0 or queue.posted != self.posted
                or (registry is not None and bool(registry.pending(self.me))))

    def wake(self) -> None:
        self.queue.wake_waiters()
