"""LayeredProvider: the base class of non-IFS layered service providers
(``docs/guide/layers.rst``).

A layer sits on a lower provider (a base provider or another layer) and, by
default, passes every WSP call down.  What makes it a non-IFS layer:

* **Its own handles.**  ``WSPSocket``/``WSPAccept`` get a socket from the
  lower provider and hand the application a handle of the layer's own, made
  with ``WPUCreateSocketHandle`` (context: a :class:`LayerSocket` naming the
  lower socket).  ``WSPCloseSocket`` closes the lower socket first and then
  the layer's handle with ``WPUCloseSocketHandle``; if the lower close fails
  (WSAEWOULDBLOCK under linger, WSAEINPROGRESS, WSAENETDOWN) the layer's
  handle stays valid too.
* **Its own overlapped requests.**  An overlapped call is recorded on the
  layer's handle (``Process.start_overlapped``: the application's overlapped,
  routine and thread), then issued to the lower provider with an
  ``Overlapped`` of the layer's.  When that lower request completes, the
  layer completes the application's request on its own handle
  (:meth:`LayeredProvider.lower_completed`), so the completion port, event
  or routine the application chose is used, exactly once:

  - without a completion routine, the lower overlapped carries a *relay*:
    the engine hands its completion straight to the layer, in the thread
    that completed it (what a real layer does from the worker thread that
    drains its private completion port, without the thread hop);
  - with a completion routine, the relay settles the application's request
    at once (its overlapped shows the result, as on Windows before the
    routine runs), and the layer gives the lower provider a routine of its
    own and the application's ``ThreadId``: that routine runs as an APC on
    the application's thread, and runs the application's routine there.
    When the layer issues the lower call from its own worker thread
    (``worker=True``), it opens that ``ThreadId`` with
    ``WPUOpenCurrentThread`` in the application's thread (unless it was
    given one to forward) and closes it with ``WPUCloseThread`` once the
    lower request has completed (or failed to start, or was cancelled by
    the final cleanup): a worker layer below may still forward it until
    then.

* **Its own startup and cleanup.**  The first ``WSPStartup`` starts the
  lower provider with the same protocol info; the final ``WSPCleanup``
  applies the LPWSPCleanup seed through the whole stack: every pending
  request is cancelled silently, every open socket is reset, and the layer's
  handles are released.

Subclasses override any ``WSP*`` entry and call ``super()`` (or ``lower``)
to pass it on, and :meth:`lower_completed` to see or change completions.
"""
from __future__ import annotations

import queue
import threading
import time
import weakref
from typing import Any, Callable, Sequence

from ..constants import (SIO_GET_EXTENSION_FUNCTION_POINTER, SO_LINGER, SO_UPDATE_ACCEPT_CONTEXT,
                         SOL_SOCKET,
                         WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX)
from ..errors import (WSA_INVALID_PARAMETER, WSA_IO_PENDING, WSA_OPERATION_ABORTED, WSAEINVAL, WSAENOTSOCK,
                      WSANOTINITIALISED, WinsockError)
from ..spi import senders
from ..spi.checks import deadline_after, seconds_timeout, wait_time
from ..spi.process import Operation, Process
from ..spi.provider import WINSOCK_2_2, ServiceProvider
from ..spi.structs import Linger, Overlapped, ThreadId

__all__ = ["LayerSocket", "LayeredProvider"]


class LayerSocket:
    """The context of a layer's socket handle: the layer and the lower
    provider's socket under it."""

    __slots__ = ("layer", "lower", "handle", "closing")

    def __init__(self, layer: LayeredProvider, lower: int) -> None:
        self.layer = layer
        self.lower = lower          # the lower provider's handle
        self.handle = 0             # the layer's own handle (set once made)
        self.closing = False        # WSPCloseSocket has begun: late requests are aborted

    def __repr__(self) -> str:
        return f"<LayerSocket {self.handle} over {self.lower} in {type(self.layer).__name__}>"


class LayeredProvider(ServiceProvider):
    """A non-IFS layered provider over `lower`; passes every call down.

    `worker`: issue overlapped sends and receives to the lower provider from
    the layer's own worker thread instead of the calling thread (the
    request returns WSA_IO_PENDING at once; a lower call that fails then
    completes the request with its error)."""

    description = "wsp layered provider"
    #: a standalone layer's catalog entry id; Process.catalog.install sets the instance's
    catalog_entry_id = 2001

    def __init__(self, lower: ServiceProvider, *, worker: bool = False) -> None:
        if not isinstance(lower, ServiceProvider):
            raise TypeError(f"lower must be a ServiceProvider, not {type(lower).__name__}")
        super().__init__()
        self.lower = lower
        self.worker = bool(worker)
        self._by_lower: dict[int, int] = {}      # lower handle -> the layer's handle
        self._map_lock = threading.Lock()
        self._jobs: queue.SimpleQueue | None = None
        self._unissued: set[Operation] = set()   # with the worker, not yet issued below
        self._opened: set[ThreadId] = set()      # ThreadIds it opened, until their use ends
        self._worker_thread: threading.Thread | None = None

    # -- handles ---------------------------------------------------------------------
    def _sock(self, s: object, funcname: str) -> LayerSocket:
        """The LayerSocket behind the layer's handle `s` (WSANOTINITIALISED,
        then WSAENOTSOCK)."""
        ls = self._context_of(s, funcname)
        if type(ls) is not LayerSocket or ls.layer is not self:
            raise WinsockError(WSAENOTSOCK, funcname)
        return ls

    def lower_handle(self, s: object, funcname: str = "lower_handle") -> int:
        """The lower provider's socket handle under the layer's handle `s`
        (WSANOTINITIALISED, then WSAENOTSOCK), for code that walks a stack
        down to its base."""
        return self._sock(s, funcname).lower

    def _wrap(self, lower_handle: int) -> int:
        """A handle of the layer's own over the lower socket `lower_handle`
        (closed again if the handle cannot be made)."""
        ls = LayerSocket(self, lower_handle)
        try:
            h = self.upcalls.WPUCreateSocketHandle(self.catalog_entry_id, ls)
        except BaseException:
            self._hard_close_lower(lower_handle)
            raise
        ls.handle = h
        with self._map_lock:
            self._by_lower[lower_handle] = h
        return h

    def _unwrap(self, s: int, ls: LayerSocket) -> None:
        with self._map_lock:
            self._by_lower.pop(ls.lower, None)
        self.upcalls.WPUCloseSocketHandle(s)

    def sockets(self) -> list[int]:
        """The layer's open socket handles."""
        with self._map_lock:
            return list(self._by_lower.values())

    def _hard_close_lower(self, lower_handle: int) -> None:
        try:
            self.lower.WSPSetSockOpt(lower_handle, SOL_SOCKET, SO_LINGER, Linger(1, 0))
        except WinsockError:
            pass                         # a datagram socket has no linger: a plain close
        try:
            self.lower.WSPCloseSocket(lower_handle)
        except WinsockError:
            pass

    # -- startup, cleanup, termination -------------------------------------------------
    def on_startup(self, protocol_info: Any) -> None:
        """Start the lower provider (WSPStartup 2.2 with the same protocol info and upcalls).

        Its errors (WSAVERNOTSUPPORTED, WSAEINVAL) fail this layer's first WSPStartup.
        """
        self.lower.WSPStartup(WINSOCK_2_2, protocol_info, self.upcalls)

    def WSPCleanup(self) -> None:
        """End one WSPStartup.  The final one (seed: LPWSPCleanup, through
        the stack): the lower provider's final cleanup runs first, so a
        failure there (WSAENETDOWN) changes nothing anywhere; then the
        layer's pending requests are cancelled without notification and its
        handles released.  If the lower provider is still started by
        someone else, the layer resets its own lower sockets instead (their
        pending requests cancelled silently first)."""
        with self._state_lock:
            if self._startup_count <= 0 or self._process is None:
                raise WinsockError(WSANOTINITIALISED, "WSPCleanup")
            final = self._startup_count == 1
            process = self._process
        if final:
            lower = self.lower
            if lower.started:
                lower.WSPCleanup()                  # raises: nothing has changed
            if lower.started:
                # Still started by someone else: reset this layer's own
                # sockets there, their requests cancelled silently first.
                for lower_handle in list(self._by_lower):
                    for op in process.operations(socket=lower_handle):
                        process.cancel_overlapped(op, notify=False)
                    self._hard_close_lower(lower_handle)
        super().WSPCleanup()

    def on_cleanup(self) -> None:
        """Release the layer's handles after the final WSPCleanup.

        Closes every handle it made (WPUCloseSocketHandle), stops the worker thread and closes
        the ThreadIds it opened for cancelled requests.
        """
        # The base class has cancelled this layer's requests silently.
        with self._map_lock:
            handles = list(self._by_lower.values())
            self._by_lower.clear()
            self._unissued.clear()
        for h in handles:
            try:
                self.upcalls.WPUCloseSocketHandle(h)
            except WinsockError:
                pass
        self._stop_worker()
        self._close_all_opened()        # of requests the cleanup cancelled

    def on_terminated(self, process: Process) -> None:
        """Forget the layer's handles, queued requests and ThreadIds.

        `process` ended without WSPCleanup.
        """
        with self._map_lock:
            self._by_lower.clear()
            self._unissued.clear()
            self._opened.clear()        # gone with the process's thread registry
        self._stop_worker()
        super().on_terminated(process)

    # -- overlapped requests -------------------------------------------------------------
    def lower_completed(self, op: Operation, error: int, nbytes: int, flags: int) -> None:
        """The lower request behind `op` completed: complete the
        application's request.  Override to observe or alter completions
        (call super() to deliver; not calling it holds the completion, which
        must then be delivered later with ``process.complete_overlapped``).

        Called at once, in the thread that completed the lower request.
        Without a completion routine this delivers the application's
        completion (event, port).  With one it settles the request (the
        overlapped shows the result now) and the routine runs when the
        lower request's own routine runs as an APC on the application's
        thread (the ThreadId passed down)."""
        engine = self._process.engine          # the process's own calls, without their hop
        if op.routine is None:
            engine.complete(op, error, nbytes, flags)
        else:
            engine.settle(op, error, nbytes, flags)

    def _overlapped(self, funcname: str, s: int, overlapped: Overlapped,
                    routine: Callable[..., Any] | None, thread_id: ThreadId | None,
                    buffers: Any, issue: Callable[[Overlapped, Any, Any], Any],
                    pending_result: tuple, use_worker: bool = True) -> Any:
        """Record an overlapped request on the layer's handle `s` and issue
        it below: `issue(lower_overlapped, lower_routine, lower_thread_id)`
        makes the lower call and returns its result."""
        process = self._process
        op = process.engine.start(s, overlapped, routine, thread_id, buffers, self, funcname)
        to_worker = self.worker and use_worker
        opened = None
        if to_worker and routine is not None and thread_id is None:
            # The lower call happens later, on the worker: it needs a
            # ThreadId naming this (the application's) thread, open until
            # the lower request has completed (a worker layer below may
            # forward it later still).  One it was given is forwarded: its
            # owner keeps it open until the request completes, as the
            # application API does.
            thread_id = opened = self.upcalls.WPUOpenCurrentThread()
            with self._map_lock:
                self._opened.add(opened)
        inner = Overlapped()
        # A datagram receive's sender is recorded for the overlapped that
        # completed below: carry it up to the application's (wsp.spi.senders).
        carry = funcname == "WSPRecvFrom"
        below = weakref.ref(inner)          # (the relay is inner's: no cycle through it)
        if routine is None and not carry:
            inner.relay = lambda error, nbytes, flags: self.lower_completed(
                op, error, nbytes, flags)
            lower_routine = None
        elif routine is None:
            def carry_relay(error: int, nbytes: int, flags: int) -> None:
                senders.forward(below(), op.overlapped)
                self.lower_completed(op, error, nbytes, flags)

            inner.relay = carry_relay
            lower_routine = None
        else:
            def relay(error: int, nbytes: int, flags: int) -> bool:
                if carry:
                    senders.forward(below(), op.overlapped)
                self.lower_completed(op, error, nbytes, flags)
                return True                 # and queue lower_routine, below, as usual

            def lower_routine(error: int, nbytes: int, _inner: Overlapped, flags: int) -> None:
                if opened is not None:
                    self._close_opened(opened)
                process.deliver_settled(op)   # on the thread the ThreadId named

            inner.relay = relay
        if to_worker:
            self._submit(op, funcname, issue, inner, lower_routine, thread_id, opened)
            return pending_result
        try:
            return issue(inner, lower_routine, thread_id)
        except WinsockError as exc:
            # Failed before it started below: the request raises and
            # delivers nothing (``docs/guide/spi-model.rst, "Overlapped operations"``).
            process.cancel_overlapped(op, exc.winerror or WSAEINVAL, notify=False)
            raise
        except BaseException:
            process.cancel_overlapped(op, WSAEINVAL, notify=False)
            raise

    def _submit(self, op: Operation, funcname: str, issue: Callable[..., Any],
                inner: Overlapped, lower_routine: Any, thread_id: ThreadId | None,
                opened: ThreadId | None) -> None:
        with self._map_lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                self._worker_thread = threading.Thread(
                    target=self._work, args=(self._jobs,), daemon=True,
                    name=f"wsp-{type(self).__name__}-worker")
                self._worker_thread.start()
            jobs = self._jobs
            self._unissued.add(op)
        jobs.put((op, issue, inner, lower_routine, thread_id, opened))

    def _work(self, jobs: queue.SimpleQueue) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            op, issue, inner, lower_routine, thread_id, opened = job
            with self._map_lock:
                claimed = op is None or op in self._unissued
                self._unissued.discard(op)
            try:
                if claimed:            # else: cancelled by a close or cleanup meanwhile
                    issue(inner, lower_routine, thread_id)
            except WinsockError as exc:
                # The application already has WSA_IO_PENDING: the failure is
                # its completion -- an abort if the socket closed under it.
                closing = op.entry.context.closing
                self._process.complete_overlapped(
                    op, WSA_OPERATION_ABORTED if closing else exc.winerror or WSAEINVAL, 0)
                if opened is not None:
                    self._close_opened(opened)     # nothing below will use it
            except BaseException:       # a bug below: fail the request, keep the worker
                self._process.complete_overlapped(op, WSAEINVAL, 0)
                if opened is not None:
                    self._close_opened(opened)
            else:
                if not claimed and opened is not None:
                    self._close_opened(opened)

    def _close_opened(self, tid: ThreadId) -> None:
        """WPUCloseThread a ThreadId this layer opened, once."""
        with self._map_lock:
            if tid not in self._opened:
                return
            self._opened.discard(tid)
        try:
            self.upcalls.WPUCloseThread(tid)
        except WinsockError:
            pass                        # the process was cleaned up or terminated meanwhile

    def _close_all_opened(self) -> None:
        with self._map_lock:
            leftover = list(self._opened)
        for tid in leftover:
            self._close_opened(tid)

    def _stop_worker(self) -> None:
        with self._map_lock:
            jobs, thread = self._jobs, self._worker_thread
            self._jobs = self._worker_thread = None
        if jobs is not None:
            jobs.put(None)
            if thread is not threading.current_thread():
                thread.join(10)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until the worker thread has issued every request submitted
        so far (no-op without ``worker``); TimeoutError after `timeout`
        seconds (None: no limit; bad values as for every seconds timeout)."""
        # Wall-clock seconds even on a clocked network, on purpose: the worker
        # only issues overlapped requests below, which return at once and need
        # no simulated time to pass, so draining it is real work whatever the
        # clock says; and this thread is not in a wait on the network, so it
        # does not hold a virtual clock (past the idle rule's grace) either.
        # The time-out only guards a test against a stuck worker.
        deadline = deadline_after(seconds_timeout(timeout, "flush"))
        with self._map_lock:
            jobs = self._jobs
        if jobs is None:
            return
        done = threading.Event()
        jobs.put((None, lambda *a: done.set(), None, None, None, None))
        while not done.wait(wait_time(deadline)):
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("the layer's worker did not drain in time")

    # -- sockets ------------------------------------------------------------------------
    def WSPSocket(self, af: int, type: int, protocol: int,  # noqa: A002
                  protocol_info: Any = None, g: int = 0, flags: int = 0) -> int:
        """A new socket: the lower provider's WSPSocket, wrapped in a handle of the layer's own.

        Returns the layer's handle (WPUCreateSocketHandle, context a LayerSocket).
        WSANOTINITIALISED unless started; the lower provider's errors (WSAEAFNOSUPPORT, ...)
        pass up.
        """
        self._require_started("WSPSocket")
        return self._wrap(self.lower.WSPSocket(af, type, protocol, protocol_info, g, flags))

    def WSPAccept(self, s: int, condition: Callable[..., int] | None = None,
                  callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        """Accept on the lower listening socket, under a handle of the layer's own.

        Returns ``(layer handle, peer address)``. WSANOTINITIALISED unless started, WSAENOTSOCK
        when `s` is not a handle of this layer; the lower provider's errors pass up unchanged.
        """
        ls = self._sock(s, "WSPAccept")
        lower_new, addr = self.lower.WSPAccept(ls.lower, condition, callback_data)
        return self._wrap(lower_new), addr

    def WSPCloseSocket(self, s: int) -> None:
        """Close the lower socket (seed semantics happen there: linger,
        aborted requests completed, WSAEINTR for blocked callers), then
        release the layer's handle.  A lower failure leaves `s` valid."""
        ls = self._sock(s, "WSPCloseSocket")
        ls.closing = True
        try:
            self.lower.WSPCloseSocket(ls.lower)
        except BaseException:
            ls.closing = False                  # the close did not happen: s stays valid
            raise
        # The lower close aborted what it had; requests it never saw (still
        # queued for the worker) are aborted here.  Requests the lower
        # provider already completed keep their status: their completion is
        # on its way up (an APC, or a completion a subclass holds).
        with self._map_lock:
            unissued = [op for op in self._unissued if op.socket == s]
            self._unissued.difference_update(unissued)
        for op in unissued:
            self._process.cancel_overlapped(op, WSA_OPERATION_ABORTED, notify=True)
        self._unwrap(s, ls)

    def WSPBind(self, s: int, addr: tuple[str, int]) -> None:
        """Bind the lower socket under `s` to `addr`.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPBind(self._sock(s, "WSPBind").lower, addr)

    def WSPListen(self, s: int, backlog: int) -> None:
        """Make the lower socket under `s` listen with `backlog`.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPListen(self._sock(s, "WSPListen").lower, backlog)

    def WSPConnect(self, s: int, addr: tuple[str, int]) -> None:
        """Connect the lower socket under `s` to `addr`.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPConnect(self._sock(s, "WSPConnect").lower, addr)

    def WSPShutdown(self, s: int, how: int) -> None:
        """Shut down the lower socket under `s` (`how`: SD_RECEIVE, SD_SEND, SD_BOTH).

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPShutdown(self._sock(s, "WSPShutdown").lower, how)

    def WSPGetSockName(self, s: int) -> tuple[str, int]:
        """The lower socket's local ``(host, port)``.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        return self.lower.WSPGetSockName(self._sock(s, "WSPGetSockName").lower)

    def WSPGetPeerName(self, s: int) -> tuple[str, int]:
        """The lower socket's peer ``(host, port)``.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        return self.lower.WSPGetPeerName(self._sock(s, "WSPGetPeerName").lower)

    def WSPSetSockOpt(self, s: int, level: int, optname: int, value: Any) -> None:
        """Passed to the lower socket; SO_UPDATE_ACCEPT_CONTEXT's value (the
        listening socket) is a handle too, translated to the lower one."""
        ls = self._sock(s, "WSPSetSockOpt")
        if level == SOL_SOCKET and optname == SO_UPDATE_ACCEPT_CONTEXT:
            value = self._sock(value, "WSPSetSockOpt").lower
        self.lower.WSPSetSockOpt(ls.lower, level, optname, value)

    def WSPGetSockOpt(self, s: int, level: int, optname: int) -> Any:
        """The lower socket's option `optname` at `level`, read from the lower provider.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        return self.lower.WSPGetSockOpt(self._sock(s, "WSPGetSockOpt").lower, level, optname)

    def WSPEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        """Select `network_events` on the lower socket, signalling the application's `event`.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPEventSelect(self._sock(s, "WSPEventSelect").lower, event, network_events)

    def WSPEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        """The lower socket's recorded network events; resets `event`.

        Returns ``{FD_flag: error_code}``.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        return self.lower.WSPEnumNetworkEvents(self._sock(s, "WSPEnumNetworkEvents").lower,
                                               event)

    def WSPSendDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """WSPSendDisconnect on the lower socket under `s`.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPSendDisconnect(self._sock(s, "WSPSendDisconnect").lower, disconnect_data)

    def WSPRecvDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """WSPRecvDisconnect on the lower socket under `s`.

        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        self.lower.WSPRecvDisconnect(self._sock(s, "WSPRecvDisconnect").lower, disconnect_data)

    def WSPAddressToString(self, addr: tuple[str, int], protocol_info: Any = None) -> str:
        """The lower provider's text for `addr`.

        WSANOTINITIALISED unless started; the lower provider's errors pass up.
        """
        self._require_started("WSPAddressToString")
        return self.lower.WSPAddressToString(addr, protocol_info)

    def WSPStringToAddress(self, address: str, af: int = 2,
                           protocol_info: Any = None) -> tuple[str, int]:
        """The lower provider's parse of `address` into ``(host, port)``.

        WSANOTINITIALISED unless started; the lower provider's errors pass up.
        """
        self._require_started("WSPStringToAddress")
        return self.lower.WSPStringToAddress(address, af, protocol_info)

    def WSPSelect(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
                  timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """Select over the lower sockets; the result names the layer's handles."""
        funcname = "WSPSelect"
        sets = []
        for handles in (read, write, except_):
            if isinstance(handles, (str, bytes)) or not hasattr(handles, "__iter__"):
                raise TypeError(f"{funcname}: socket sets must be sequences of handles")
            sets.append([self._sock(h, funcname).lower for h in handles])
        ready = self.lower.WSPSelect(sets[0], sets[1], sets[2], timeout)
        with self._map_lock:
            back = dict(self._by_lower)
        return tuple([back[h] for h in lst if h in back] for lst in ready)  # type: ignore[return-value]

    def WSPGetOverlappedResult(self, s: int, overlapped: Overlapped,
                               wait: bool) -> tuple[int, int]:
        """``(nbytes, flags)`` of the layer's own request on `overlapped`.

        The request is the layer's (see the module docstring), so the base class's generic
        result is used once `s` is known as this layer's handle: WSAENOTSOCK otherwise; pending
        with `wait` false: WSA_IO_INCOMPLETE; a failed request raises its error.
        """
        self._sock(s, "WSPGetOverlappedResult")      # a socket of this layer's, or WSAENOTSOCK
        return super().WSPGetOverlappedResult(s, overlapped, wait)

    # -- data ---------------------------------------------------------------------------
    def WSPSend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int]:
        """Send `buffers` on the lower socket under `s`.

        Without `overlapped`, the lower provider's WSPSend and its ``(rc, nbytes)``. Overlapped,
        the layer records its own request and issues the lower one (from its worker thread with
        ``worker=True``, then returning ``(WSA_IO_PENDING, 0)`` at once); the application's
        completion comes from :meth:`lower_completed`. WSANOTINITIALISED unless started,
        WSAENOTSOCK when `s` is not a handle of this layer; the lower provider's errors pass up
        unchanged.
        """
        ls = self._sock(s, "WSPSend")
        lower, ls_lower = self.lower, ls.lower
        if overlapped is None:
            return lower.WSPSend(ls_lower, buffers, flags, None, completion_routine, thread_id)
        return self._overlapped(
            "WSPSend", s, overlapped, completion_routine, thread_id, buffers,
            lambda inner, routine, tid: lower.WSPSend(ls_lower, buffers, flags, inner, routine,
                                                      tid),
            (WSA_IO_PENDING, 0))

    def WSPSendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None, completion_routine: Any = None,
                  thread_id: ThreadId | None = None) -> tuple[int, int]:
        """Send a datagram to `to` on the lower socket under `s`.

        Returns ``(rc, nbytes)``; overlapped requests are the layer's own, as for
        :meth:`WSPSend`. WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle
        of this layer; the lower provider's errors pass up unchanged.
        """
        ls = self._sock(s, "WSPSendTo")
        lower, ls_lower = self.lower, ls.lower
        if overlapped is None:
            return lower.WSPSendTo(ls_lower, buffers, flags, to, None, completion_routine,
                                   thread_id)
        return self._overlapped(
            "WSPSendTo", s, overlapped, completion_routine, thread_id, buffers,
            lambda inner, routine, tid: lower.WSPSendTo(ls_lower, buffers, flags, to, inner,
                                                        routine, tid),
            (WSA_IO_PENDING, 0))

    def WSPRecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int, int]:
        """Receive into `buffers` from the lower socket under `s`.

        Returns ``(rc, nbytes, flags)``; overlapped requests are the layer's own, as for
        :meth:`WSPSend` (with the worker: ``(WSA_IO_PENDING, 0, 0)`` at once). WSANOTINITIALISED
        unless started, WSAENOTSOCK when `s` is not a handle of this layer; the lower provider's
        errors pass up unchanged.
        """
        ls = self._sock(s, "WSPRecv")
        lower, ls_lower = self.lower, ls.lower
        if overlapped is None:
            return lower.WSPRecv(ls_lower, buffers, flags, None, completion_routine, thread_id)
        return self._overlapped(
            "WSPRecv", s, overlapped, completion_routine, thread_id, buffers,
            lambda inner, routine, tid: lower.WSPRecv(ls_lower, buffers, flags, inner, routine,
                                                      tid),
            (WSA_IO_PENDING, 0, 0))

    def WSPRecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None, completion_routine: Any = None,
                    thread_id: ThreadId | None = None) -> tuple[int, int, int, Any]:
        """Receive a datagram from the lower socket under `s`.

        Returns ``(rc, nbytes, flags, from_addr)``; overlapped requests are the layer's own, as
        for :meth:`WSPSend` (with the worker: ``(WSA_IO_PENDING, 0, 0, None)`` at once).
        WSANOTINITIALISED unless started, WSAENOTSOCK when `s` is not a handle of this layer;
        the lower provider's errors pass up unchanged.
        """
        ls = self._sock(s, "WSPRecvFrom")
        lower, ls_lower = self.lower, ls.lower
        if overlapped is None:
            return lower.WSPRecvFrom(ls_lower, buffers, flags, None, completion_routine,
                                     thread_id)
        return self._overlapped(
            "WSPRecvFrom", s, overlapped, completion_routine, thread_id, buffers,
            lambda inner, routine, tid: lower.WSPRecvFrom(ls_lower, buffers, flags, inner,
                                                          routine, tid),
            (WSA_IO_PENDING, 0, 0, None))

    def WSPIoctl(self, s: int, code: int, value: Any = None, overlapped: Any = None,
                 completion_routine: Any = None, thread_id: ThreadId | None = None) -> Any:
        """Passed to the lower provider, but for
        SIO_GET_EXTENSION_FUNCTION_POINTER: the layer hands out its own
        AcceptEx, ConnectEx and DisconnectEx, which take the layer's handles
        and call the lower provider's (the classic duty of a layered
        provider), once the lower provider has shown it has the function."""
        ls = self._sock(s, "WSPIoctl")
        lower, ls_lower = self.lower, ls.lower
        if overlapped is None:
            result = lower.WSPIoctl(ls_lower, code, value, None, completion_routine, thread_id)
        else:
            result = self._overlapped(                  # ioctls are always issued inline
                "WSPIoctl", s, overlapped, completion_routine, thread_id, None,
                lambda inner, routine, tid: lower.WSPIoctl(ls_lower, code, value, inner,
                                                           routine, tid),
                (WSA_IO_PENDING,), use_worker=False)
        if code == SIO_GET_EXTENSION_FUNCTION_POINTER:
            # The lower provider has the function (or raised): hand out the
            # layer's own where it takes handles; GetAcceptExSockaddrs takes none.
            own = {WSAID_ACCEPTEX: self.AcceptEx, WSAID_CONNECTEX: self.ConnectEx,
                   WSAID_DISCONNECTEX: self.DisconnectEx}
            return own.get(value, result)
        return result

    # -- the extension functions, over the lower provider's ---------------------------------
    # (``docs/guide/spi-model.rst, "Extension functions"``)
    def _extension_request(self, funcname: str, s: int, guid: Any, overlapped: Overlapped,
                           buffers: Any, call: Callable[[Any, Overlapped], Any]) -> Any:
        """The layer's own request on its handle `s` (checked already), issued
        below as ``call(lower_function, lower_overlapped)`` with the lower
        provider's extension function for `guid`.  These are overlapped I/O
        only: no overlapped is WSA_INVALID_PARAMETER."""
        if overlapped is None:
            raise WinsockError(WSA_INVALID_PARAMETER, funcname)
        lower_function = self.lower.WSPIoctl(self._sock(s, funcname).lower,
                                             SIO_GET_EXTENSION_FUNCTION_POINTER, guid)
        return self._overlapped(funcname, s, overlapped, None, None, buffers,
                                lambda inner, routine, tid: call(lower_function, inner),
                                (WSA_IO_PENDING, 0), use_worker=False)

    def AcceptEx(self, listen_s: int, accept_s: int, buffer: Any, receive_data_length: int,
                 local_address_length: int, remote_address_length: int,
                 overlapped: Overlapped) -> tuple[int, int]:
        """The lower provider's AcceptEx on the lower sockets under the
        layer's `listen_s` and `accept_s`, as the layer's own request on
        `listen_s` (its completion is delivered as for `listen_s`)."""
        funcname = "AcceptEx"
        lower_listen = self._sock(listen_s, funcname).lower
        lower_accept = self._sock(accept_s, funcname).lower
        return self._extension_request(
            funcname, listen_s, WSAID_ACCEPTEX, overlapped, buffer,
            lambda accept_ex, inner: accept_ex(lower_listen, lower_accept, buffer,
                                               receive_data_length, local_address_length,
                                               remote_address_length, inner))

    def ConnectEx(self, s: int, addr: tuple[str, int], send_buffer: Any,
                  overlapped: Overlapped) -> tuple[int, int]:
        """The lower provider's ConnectEx under the layer's `s`, as the
        layer's own request."""
        lower = self._sock(s, "ConnectEx").lower
        return self._extension_request(
            "ConnectEx", s, WSAID_CONNECTEX, overlapped, send_buffer,
            lambda connect_ex, inner: connect_ex(lower, addr, send_buffer, inner))

    def DisconnectEx(self, s: int, overlapped: Overlapped, flags: int = 0) -> tuple[int, int]:
        """The lower provider's DisconnectEx under the layer's `s`, as the
        layer's own request; with TF_REUSE_SOCKET the layer's handle keeps
        naming the (reused) lower socket."""
        lower = self._sock(s, "DisconnectEx").lower
        return self._extension_request(
            "DisconnectEx", s, WSAID_DISCONNECTEX, overlapped, None,
            lambda disconnect_ex, inner: disconnect_ex(lower, inner, flags))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.lower!r}>"

