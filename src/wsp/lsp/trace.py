"""TracingProvider: a layer that records every WSP call passing through it,
every call of its extension functions (AcceptEx, ConnectEx, DisconnectEx),
and every completion of an overlapped request it relays (``docs/guide/layers.rst``).

The layer is transparent: each entry records what happened and then hands
back exactly what the layer below returned or raised.  A record is a
:class:`TraceRecord`; by default they are kept in ``tracer.records`` and
:meth:`TracingProvider.to_jsonl` writes them out one JSON object per line::

    tracer = TracingProvider(wsp.sim.Provider(net))
    tracer.WSPStartup(0x0202, None, proc.upcalls)
    ...
    tracer.to_jsonl("trace.jsonl")

Every call gets a request id; the completion of an overlapped call repeats
it.  Bytes are counted once: an overlapped call's record leaves ``nbytes``
out (None) and its completion record carries them, also when the call
completed at once (its ``result`` still shows the ``(0, nbytes)`` it
returned), so summing ``nbytes`` over a trace counts every transfer once.
:func:`wsp.lsp.summarize` does the sums.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable, Sequence

from ..errors import WinsockError
from ..sim.extensions import unpack_sockaddr
from ..spi import senders
from ..spi.checks import wsabuf_nbytes
from ..spi.process import Operation
from ..spi.structs import Overlapped, ThreadId
from .layered import LayeredProvider

__all__ = ["TraceRecord", "TracingProvider"]


class TraceRecord:
    """One traced event: a call that returned or raised, or the completion
    of an overlapped request.

    * ``time``: the clock (ns) when the record was made -- when the call
      returned or raised, or when the completion arrived from below;
    * ``thread``: ``threading.get_ident()`` of the thread it happened in;
    * ``socket``: the layer's socket handle (for ``WSPSocket`` the new
      handle; for AcceptEx and its completion the listening socket; None
      for calls without a socket, or when ``WSPSocket`` failed);
    * ``op``: the entry name (``"WSPSend"``, ``"ConnectEx"``), or
      ``"completion"``;
    * ``call``: for a completion, the entry that started the request
      (``"WSPRecv"``, ``"AcceptEx"``); None for call records;
    * ``size``: bytes offered by a send (and ConnectEx's send buffer),
      buffer capacity of a receive (and AcceptEx's receive_data_length),
      also on their completions; None otherwise;
    * ``nbytes``: bytes this record counts as transferred, so that a sum
      over records counts each transfer once: a send or receive made
      without an overlapped that completed, and every completion; None on
      the call record of an overlapped call (its completion counts them,
      also when it completed at once) and on ``WSPGetOverlappedResult``
      (it reports a completion already recorded; its ``result`` has them);
    * ``result``: the return value made JSON-friendly (tuples become lists,
      small structures dicts, anything else its ``repr``); the exception's
      type name when a call raised something other than ``WinsockError``;
      the completion flags for a completion;
    * ``error``: the WSA error code of a ``WinsockError`` or of a failed
      completion; None on success (and for other exceptions);
    * ``request``: the request id, unique in the tracer (1, 2, ...): every
      call record has a new one; a completion record repeats the id of the
      call that started it (None for a request the tracer did not see start);
    * ``overlapped``: whether the call was made as overlapped I/O, given
      an overlapped to carry its request (False for the rest, also for
      ``WSPGetOverlappedResult``, which only asks about one); True on every
      completion record;
    * ``address``: the local address, as ``[host, port]``, where the record
      tells it: WSPBind's, WSPGetSockName's, the accepted socket's on an
      AcceptEx completion; else None;
    * ``peer``: the remote address where the record tells it: WSPConnect's
      and ConnectEx's target, WSPAccept's caller and the AcceptEx
      completion's, WSPSendTo's destination, WSPRecvFrom's sender (on the
      call record when it completed at once, on the completion when it
      waited), WSPGetPeerName's; else None;
    * ``accepted``: for WSPAccept and AcceptEx (call and completion), the
      handle of the accepted socket (the bytes AcceptEx's completion
      received belong to it); else None.

    A completion that happens inside its call (an overlapped send on an
    idle connection) is recorded before the call's own record, which is
    made when the call returns: link them by ``request``, not by order.
    """

    __slots__ = ("time", "thread", "socket", "op", "call", "size", "nbytes", "result", "error",
                 "request", "overlapped", "address", "peer", "accepted")

    #: the field names, in the order ``to_dict`` gives them
    FIELDS = __slots__

    def __init__(self, time: int, thread: int, socket: int | None, op: str,
                 call: str | None = None, size: int | None = None, nbytes: int | None = None,
                 result: Any = None, error: int | None = None, request: int | None = None,
                 overlapped: bool | None = None, address: Any = None, peer: Any = None,
                 accepted: int | None = None) -> None:
        self.time = time
        self.thread = thread
        self.socket = socket
        self.op = op
        self.call = call
        self.size = size
        self.nbytes = nbytes
        self.result = result
        self.error = error
        self.request = request
        self.overlapped = overlapped
        self.address = address
        self.peer = peer
        self.accepted = accepted

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (the keys are :attr:`FIELDS`)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraceRecord):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  -- mutable, compared by value

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"TraceRecord({fields})"


def summarise(value: Any) -> Any:
    """`value` as something ``json.dumps`` accepts: scalars as they are,
    tuples and lists as lists, dicts with string keys, a small structure
    with ``__slots__`` (``WSPData``, ``Linger``) as a dict of its public
    fields, bytes-like objects as their length, anything else as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [summarise(item) for item in value]
    if isinstance(value, dict):
        return {str(key): summarise(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(memoryview(value))
    names = [name for klass in type(value).__mro__
             for name in getattr(klass, "__slots__", ())
             if isinstance(name, str) and not name.startswith("_")]
    if names:
        return {name: summarise(getattr(value, name, None)) for name in names}
    return repr(value)


_offered = _capacity = wsabuf_nbytes   # what a send offers / a receive can take


def _immediate(value: Any) -> int | None:
    """nbytes of a send/receive result ``(rc, nbytes, ...)`` that completed
    at once; None while it is pending."""
    if isinstance(value, tuple) and len(value) >= 2 and value[0] == 0:
        return value[1]
    return None


def _sender(value: Any) -> dict[str, Any]:
    """WSPRecvFrom's ``(rc, nbytes, flags, from_addr)``: the sender, when
    it completed at once (a pending one learns it at completion)."""
    if isinstance(value, tuple) and len(value) >= 4 and value[0] == 0 and value[3] is not None:
        return {"peer": summarise(value[3])}
    return {}


def _waited_sender(overlapped: Any) -> Callable[[int], dict[str, Any]]:
    """What the completion of an overlapped WSPRecvFrom that waited knows:
    its sender, recorded by overlapped (wsp.spi.senders) and only peeked
    at: the application takes it."""
    def read(error: int) -> dict[str, Any]:
        sender = senders.peek(overlapped)
        return {} if sender is None else {"peer": summarise(sender)}
    return read


def _accepted(value: Any) -> dict[str, Any]:
    """WSPAccept's ``(new_socket, caller_addr)``."""
    return {"accepted": value[0], "peer": summarise(value[1])}


class _Request:
    """A started overlapped request, until its completion is recorded: what
    the completion record repeats of its call, and how it learns what only
    the completion knows (`at_completion(error) -> fields`)."""

    __slots__ = ("call", "request", "size", "fields", "at_completion")

    def __init__(self, call: str, request: int, size: int | None, fields: dict[str, Any],
                 at_completion: Callable[[int], dict[str, Any]] | None) -> None:
        self.call = call
        self.request = request
        self.size = size
        self.fields = fields
        self.at_completion = at_completion


def _accept_addresses(buffer: Any, receive_data_length: Any,
                      local_address_length: Any) -> Callable[[int], dict[str, Any]]:
    """What an AcceptEx completion knows: the accepted socket's local and
    remote addresses, read from the areas after the data in its buffer
    (where GetAcceptExSockaddrs reads them: a Windows sockaddr_in each)."""
    def read(error: int) -> dict[str, Any]:
        if error:
            return {}                    # nothing was accepted: the areas mean nothing
        try:
            view = memoryview(buffer).cast("B")
            receive, local_len = int(receive_data_length), int(local_address_length)
            local = unpack_sockaddr(view[receive:receive + 16])
            remote = unpack_sockaddr(view[receive + local_len:receive + local_len + 16])
        except (TypeError, ValueError, WinsockError):
            return {}                    # not ours to judge: the call's own checks did
        return {"address": list(local), "peer": list(remote)}
    return read


class TracingProvider(LayeredProvider):
    """A layered provider that records every WSP call, every call of its
    extension functions and every overlapped completion passing through it.

    `sink` takes each :class:`TraceRecord` as it is made, in the thread
    where the call or completion happened (so it must be thread-safe);
    by default records are appended to :attr:`records`.  `clock` gives the
    records' ``time`` (ns; default ``time.monotonic_ns``).

    A record is made when the call returns or raises, so a completion that
    happens inside the call (an overlapped send on an idle connection)
    is recorded before the call itself; both carry the same ``request``.
    Exceptions propagate unchanged.  Completions cancelled silently by the
    final ``WSPCleanup`` are not completions and are not recorded.
    """

    description = "wsp tracing layer"

    def __init__(self, lower: Any, sink: Callable[[TraceRecord], Any] | None = None, *,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(lower)
        if sink is not None and not callable(sink):
            raise TypeError("sink must be callable or None")
        if not callable(clock):
            raise TypeError("clock must be callable")
        #: the records, when no sink was given
        self.records: list[TraceRecord] = []
        self._records_lock = threading.Lock()
        self._sink = sink if sink is not None else self._append
        self._clock = clock
        self._last_request = 0           # request ids: 1, 2, ... (under _records_lock)
        # The application's overlapped -> the request it carries, for that
        # request's completion record.
        self._requests: dict[Overlapped, _Request] = {}

    # -- recording -------------------------------------------------------------------------
    def _append(self, record: TraceRecord) -> None:
        with self._records_lock:
            self.records.append(record)

    def _emit(self, socket: int | None, op: str, **fields: Any) -> None:
        self._sink(TraceRecord(self._clock(), threading.get_ident(), socket, op, **fields))

    def _traced(self, op: str, socket: int | None, func: Callable[..., Any], *args: Any,
                size: int | None = None,
                nbytes_of: Callable[[Any], int | None] | None = None,
                overlapped: Any = None, fields: dict[str, Any] | None = None,
                fields_of: Callable[[Any], dict[str, Any]] | None = None,
                at_completion: Callable[[int], dict[str, Any]] | None = None) -> Any:
        """Run ``func(*args)`` and record it.  `nbytes_of` reads the bytes
        transferred from the result of a call made without an overlapped.
        `overlapped`: the application's, remembered for the completion
        record.  `fields`: address, peer or accepted known from the
        arguments (on the call record and on its completion's);
        `fields_of(result)`: those the result tells; `at_completion(error)`:
        those only the completion knows."""
        fields = fields or {}
        request = None
        with self._records_lock:
            self._last_request += 1
            request_id = self._last_request
            if isinstance(overlapped, Overlapped) and not overlapped.pending:
                # (A pending one makes the call fail with WSAEINVAL: leave the
                # request it carries alone.)  Registered before the call: its
                # completion may come inside it.
                request = _Request(op, request_id, size, fields, at_completion)
                self._requests[overlapped] = request
        given = overlapped is not None
        try:
            value = func(*args)
        except BaseException as exc:
            if request is not None and not overlapped.pending:
                with self._records_lock:      # the request never started
                    if self._requests.get(overlapped) is request:
                        del self._requests[overlapped]
            if isinstance(exc, WinsockError):
                self._emit(socket, op, size=size, error=exc.winerror, request=request_id,
                           overlapped=given, **fields)
            else:
                self._emit(socket, op, size=size, result=type(exc).__name__,
                           request=request_id, overlapped=given, **fields)
            raise
        if op == "WSPSocket":
            socket = value
        if fields_of is not None:
            fields = {**fields, **fields_of(value)}
        # An overlapped call's bytes are counted on its completion, which every started request
        # gets (``docs/guide/spi-model.rst, "Overlapped operations"``), also one done at once.
        nbytes = None if given or nbytes_of is None else nbytes_of(value)
        self._emit(socket, op, size=size, nbytes=nbytes, result=summarise(value),
                   request=request_id, overlapped=given, **fields)
        return value

    def lower_completed(self, op: Operation, error: int, nbytes: int, flags: int) -> None:
        """Record the completion, then deliver it (always, even if the sink
        raises: the application's request must still complete)."""
        with self._records_lock:
            request = self._requests.pop(op.overlapped, None)
        try:
            if request is None:
                self._emit(op.socket, "completion", nbytes=nbytes, result=flags,
                           error=error or None, overlapped=True)
            else:
                fields = request.fields
                if request.at_completion is not None:
                    fields = {**fields, **request.at_completion(error)}
                self._emit(op.socket, "completion", call=request.call, size=request.size,
                           nbytes=nbytes, result=flags, error=error or None,
                           request=request.request, overlapped=True, **fields)
        finally:
            super().lower_completed(op, error, nbytes, flags)

    # -- output --------------------------------------------------------------------------
    def to_jsonl(self, file_or_path: Any) -> int:
        """Write :attr:`records` as JSON lines (one ``to_dict`` object per
        line) to an open text file or a path (created or truncated);
        returns the number of lines written."""
        with self._records_lock:
            records = list(self.records)
        lines = [json.dumps(record.to_dict()) + "\n" for record in records]
        if hasattr(file_or_path, "write"):
            for line in lines:
                file_or_path.write(line)
        else:
            with open(os.fspath(file_or_path), "w", encoding="utf-8") as out:
                out.writelines(lines)
        return len(lines)

    def _forget_requests(self) -> None:
        with self._records_lock:
            self._requests.clear()

    def on_cleanup(self) -> None:
        """Forget the pending requests, then clean up as a layer does.

        The final cleanup cancelled them silently: no completion record follows.
        """
        # The requests still pending were cancelled silently: no completions.
        self._forget_requests()
        super().on_cleanup()

    def on_terminated(self, process: Any) -> None:
        """Forget the pending requests (no completion record follows), then the layer's state."""
        self._forget_requests()
        super().on_terminated(process)

    # -- startup and cleanup -------------------------------------------------------------
    def WSPStartup(self, version: int, protocol_info: Any, upcalls: Any) -> Any:
        """Record WSPStartup (socket None) and start the stack below.

        Returns the WSPData; WSAVERNOTSUPPORTED below 2.2. Returns or raises exactly what the
        layer below does; the record carries the request id and the result or the WSA error.
        """
        return self._traced("WSPStartup", None, super().WSPStartup, version, protocol_info,
                            upcalls)

    def WSPCleanup(self) -> None:
        """Record WSPCleanup (socket None); the final one cleans the stack up.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPCleanup", None, super().WSPCleanup)

    # -- sockets -------------------------------------------------------------------------
    def WSPSocket(self, af: int, type: int, protocol: int,  # noqa: A002
                  protocol_info: Any = None, g: int = 0, flags: int = 0) -> int:
        """Record WSPSocket, the new handle as its socket.

        Returns the layer's handle (the record's socket is None if it failed). Returns or raises
        exactly what the layer below does; the record carries the request id and the result or
        the WSA error.
        """
        return self._traced("WSPSocket", None, super().WSPSocket, af, type, protocol,
                            protocol_info, g, flags)

    def WSPAccept(self, s: int, condition: Callable[..., int] | None = None,
                  callback_data: Any = 0) -> tuple[int, tuple[str, int]]:
        """Record WSPAccept on the listening socket.

        The record carries the accepted handle and the peer's address. Returns
        ``(new handle, peer address)``. Returns or raises exactly what the layer below does; the
        record carries the request id and the result or the WSA error.
        """
        return self._traced("WSPAccept", s, super().WSPAccept, s, condition, callback_data,
                            fields_of=_accepted)

    def WSPCloseSocket(self, s: int) -> None:
        """Record WSPCloseSocket, then close as a layer does.

        A lower failure (WSAEWOULDBLOCK under linger) is recorded and `s` stays valid. Returns
        or raises exactly what the layer below does; the record carries the request id and the
        result or the WSA error.
        """
        return self._traced("WSPCloseSocket", s, super().WSPCloseSocket, s)

    def WSPBind(self, s: int, addr: tuple[str, int]) -> None:
        """Record WSPBind, ``address`` the address asked for.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPBind", s, super().WSPBind, s, addr,
                            fields={"address": summarise(addr)})

    def WSPListen(self, s: int, backlog: int) -> None:
        """Record WSPListen and pass it down.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPListen", s, super().WSPListen, s, backlog)

    def WSPConnect(self, s: int, addr: tuple[str, int]) -> None:
        """Record WSPConnect, ``peer`` the address asked for.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPConnect", s, super().WSPConnect, s, addr,
                            fields={"peer": summarise(addr)})

    def WSPShutdown(self, s: int, how: int) -> None:
        """Record WSPShutdown and pass it down.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPShutdown", s, super().WSPShutdown, s, how)

    def WSPGetSockName(self, s: int) -> tuple[str, int]:
        """Record WSPGetSockName, ``address`` the address returned.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPGetSockName", s, super().WSPGetSockName, s,
                            fields_of=lambda addr: {"address": summarise(addr)})

    def WSPGetPeerName(self, s: int) -> tuple[str, int]:
        """Record WSPGetPeerName, ``peer`` the address returned.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPGetPeerName", s, super().WSPGetPeerName, s,
                            fields_of=lambda addr: {"peer": summarise(addr)})

    def WSPSetSockOpt(self, s: int, level: int, optname: int, value: Any) -> None:
        """Record WSPSetSockOpt and pass it down.

        SO_UPDATE_ACCEPT_CONTEXT's handle is translated by the layer. Returns or raises exactly
        what the layer below does; the record carries the request id and the result or the WSA
        error.
        """
        return self._traced("WSPSetSockOpt", s, super().WSPSetSockOpt, s, level, optname,
                            value)

    def WSPGetSockOpt(self, s: int, level: int, optname: int) -> Any:
        """Record WSPGetSockOpt, the value read as its result.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPGetSockOpt", s, super().WSPGetSockOpt, s, level, optname)

    def WSPEventSelect(self, s: int, event: int | None, network_events: int) -> None:
        """Record WSPEventSelect and pass it down.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPEventSelect", s, super().WSPEventSelect, s, event,
                            network_events)

    def WSPEnumNetworkEvents(self, s: int, event: int | None = None) -> dict[int, int]:
        """Record WSPEnumNetworkEvents, the events as its result.

        The result is ``{FD_flag: error_code}``. Returns or raises exactly what the layer below
        does; the record carries the request id and the result or the WSA error.
        """
        return self._traced("WSPEnumNetworkEvents", s, super().WSPEnumNetworkEvents, s, event)

    def WSPSendDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Record WSPSendDisconnect and pass it down.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPSendDisconnect", s, super().WSPSendDisconnect, s,
                            disconnect_data)

    def WSPRecvDisconnect(self, s: int, disconnect_data: Any = None) -> None:
        """Record WSPRecvDisconnect and pass it down.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPRecvDisconnect", s, super().WSPRecvDisconnect, s,
                            disconnect_data)

    def WSPAddressToString(self, addr: tuple[str, int], protocol_info: Any = None) -> str:
        """Record WSPAddressToString (socket None), the text as its result.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPAddressToString", None, super().WSPAddressToString, addr,
                            protocol_info)

    def WSPStringToAddress(self, address: str, af: int = 2,
                           protocol_info: Any = None) -> tuple[str, int]:
        """Record WSPStringToAddress (socket None), the address as its result.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPStringToAddress", None, super().WSPStringToAddress, address,
                            af, protocol_info)

    def WSPSelect(self, read: Sequence[int], write: Sequence[int], except_: Sequence[int],
                  timeout: float | None) -> tuple[list[int], list[int], list[int]]:
        """Record WSPSelect (socket None), the ready lists as its result.

        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        return self._traced("WSPSelect", None, super().WSPSelect, read, write, except_,
                            timeout)

    def WSPGetOverlappedResult(self, s: int, overlapped: Overlapped,
                               wait: bool) -> tuple[int, int]:
        """Record WSPGetOverlappedResult, ``(nbytes, flags)`` as its result.

        Its ``nbytes`` field stays None: the completion record counted those bytes already.
        Returns or raises exactly what the layer below does; the record carries the request id
        and the result or the WSA error.
        """
        # No nbytes: the completion this reports was recorded (and counted)
        # already; the result has them.
        return self._traced("WSPGetOverlappedResult", s, super().WSPGetOverlappedResult, s,
                            overlapped, wait)

    # The entries this layer does not support (WSAEOPNOTSUPP) are calls too.
    def WSPAsyncSelect(self, s: int, *args: Any) -> Any:
        """Record WSPAsyncSelect.

        No layer supports it: the base entry raises WSAEOPNOTSUPP, which the record shows as its
        error before it propagates.
        """
        return self._traced("WSPAsyncSelect", s, super().WSPAsyncSelect, s, *args)

    def WSPDuplicateSocket(self, s: int, *args: Any) -> Any:
        """Record WSPDuplicateSocket.

        No layer supports it: the base entry raises WSAEOPNOTSUPP, which the record shows as its
        error before it propagates.
        """
        return self._traced("WSPDuplicateSocket", s, super().WSPDuplicateSocket, s, *args)

    def WSPJoinLeaf(self, s: int, *args: Any) -> Any:
        """Record WSPJoinLeaf.

        No layer supports it: the base entry raises WSAEOPNOTSUPP, which the record shows as its
        error before it propagates.
        """
        return self._traced("WSPJoinLeaf", s, super().WSPJoinLeaf, s, *args)

    def WSPGetQOSByName(self, s: int, *args: Any) -> Any:
        """Record WSPGetQOSByName.

        No layer supports it: the base entry raises WSAEOPNOTSUPP, which the record shows as its
        error before it propagates.
        """
        return self._traced("WSPGetQOSByName", s, super().WSPGetQOSByName, s, *args)

    def WSPCancelBlockingCall(self, *args: Any) -> Any:
        """Record WSPCancelBlockingCall (socket None).

        No layer supports it: the base entry raises WSAEOPNOTSUPP, which the record shows as its
        error before it propagates.
        """
        return self._traced("WSPCancelBlockingCall", None, super().WSPCancelBlockingCall,
                            *args)

    # -- data ----------------------------------------------------------------------------
    def WSPSend(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int]:
        """Record WSPSend, ``size`` the bytes offered.

        Returns ``(rc, nbytes)`` from below. The call record sets ``nbytes`` only for a send
        without an overlapped; an overlapped send's bytes are on its completion record.
        """
        return self._traced("WSPSend", s, super().WSPSend, s, buffers, flags, overlapped,
                            completion_routine, thread_id, size=_offered(buffers),
                            nbytes_of=_immediate, overlapped=overlapped)

    def WSPSendTo(self, s: int, buffers: Sequence[Any], flags: int, to: tuple[str, int],
                  overlapped: Overlapped | None = None, completion_routine: Any = None,
                  thread_id: ThreadId | None = None) -> tuple[int, int]:
        """Record WSPSendTo, ``size`` the bytes offered, ``peer`` the destination.

        Returns ``(rc, nbytes)`` from below; bytes are counted as for :meth:`WSPSend`.
        """
        return self._traced("WSPSendTo", s, super().WSPSendTo, s, buffers, flags, to,
                            overlapped, completion_routine, thread_id, size=_offered(buffers),
                            nbytes_of=_immediate, overlapped=overlapped,
                            fields={"peer": summarise(to)})

    def WSPRecv(self, s: int, buffers: Sequence[Any], flags: int = 0,
                overlapped: Overlapped | None = None, completion_routine: Any = None,
                thread_id: ThreadId | None = None) -> tuple[int, int, int]:
        """Record WSPRecv, ``size`` the buffers' capacity.

        Returns ``(rc, nbytes, flags)`` from below; bytes are counted as for :meth:`WSPSend`.
        """
        return self._traced("WSPRecv", s, super().WSPRecv, s, buffers, flags, overlapped,
                            completion_routine, thread_id, size=_capacity(buffers),
                            nbytes_of=_immediate, overlapped=overlapped)

    def WSPRecvFrom(self, s: int, buffers: Sequence[Any], flags: int = 0,
                    overlapped: Overlapped | None = None, completion_routine: Any = None,
                    thread_id: ThreadId | None = None) -> tuple[int, int, int, Any]:
        """Record WSPRecvFrom, ``size`` the capacity, ``peer`` the sender.

        An overlapped receive's sender is on its completion record. Returns
        ``(rc, nbytes, flags, from_addr)`` from below; bytes are counted as for :meth:`WSPSend`.
        """
        return self._traced("WSPRecvFrom", s, super().WSPRecvFrom, s, buffers, flags,
                            overlapped, completion_routine, thread_id,
                            size=_capacity(buffers), nbytes_of=_immediate, overlapped=overlapped,
                            fields_of=_sender, at_completion=_waited_sender(overlapped))

    def WSPIoctl(self, s: int, code: int, value: Any = None, overlapped: Any = None,
                 completion_routine: Any = None, thread_id: ThreadId | None = None) -> Any:
        """Record WSPIoctl and pass it to the layer's WSPIoctl.

        The result is summarised: an extension function returned for
        SIO_GET_EXTENSION_FUNCTION_POINTER shows as its repr. Returns or raises exactly what the
        layer below does; the record carries the request id and the result or the WSA error.
        """
        return self._traced("WSPIoctl", s, super().WSPIoctl, s, code, value, overlapped,
                            completion_routine, thread_id, overlapped=overlapped)

    # -- the extension functions: the layer's own, recorded ---------------------------------
    # (``docs/guide/spi-model.rst, "Extension functions"``)
    def AcceptEx(self, listen_s: int, accept_s: int, buffer: Any, receive_data_length: int,
                 local_address_length: int, remote_address_length: int,
                 overlapped: Overlapped) -> tuple[int, int]:
        """The layer's AcceptEx, recorded on `listen_s` with ``accepted``
        (`accept_s`) and ``size`` (receive_data_length); its completion
        also gives the accepted socket's ``address`` and ``peer``, and
        counts the first data it received."""
        size = receive_data_length if type(receive_data_length) is int else None
        return self._traced("AcceptEx", listen_s, super().AcceptEx, listen_s, accept_s, buffer,
                            receive_data_length, local_address_length, remote_address_length,
                            overlapped, size=size, overlapped=overlapped,
                            fields={"accepted": accept_s},
                            at_completion=_accept_addresses(buffer, receive_data_length,
                                                            local_address_length))

    def ConnectEx(self, s: int, addr: tuple[str, int], send_buffer: Any,
                  overlapped: Overlapped) -> tuple[int, int]:
        """The layer's ConnectEx, recorded with its target as ``peer`` and
        the send buffer's length as ``size`` (its completion counts what
        was sent)."""
        size = 0 if send_buffer is None else _offered([send_buffer])
        return self._traced("ConnectEx", s, super().ConnectEx, s, addr, send_buffer,
                            overlapped, size=size, overlapped=overlapped,
                            fields={"peer": summarise(addr)})

    def DisconnectEx(self, s: int, overlapped: Overlapped, flags: int = 0) -> tuple[int, int]:
        """The layer's DisconnectEx, recorded."""
        return self._traced("DisconnectEx", s, super().DisconnectEx, s, overlapped, flags,
                            overlapped=overlapped)
