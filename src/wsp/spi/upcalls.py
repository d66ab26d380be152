"""UpcallTable: the WSPUPCALLTABLE a process hands its providers
(``docs/guide/spi-model.rst, "Process and upcalls"``).

All fifteen entries plus WPUCompleteOverlappedRequest.  Every one of them
raises ``WinsockError(WSANOTINITIALISED)`` unless some provider has an
outstanding WSPStartup with this process; that check comes first, then the
arguments, as in Winsock.
"""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable

from ..constants import INVALID_SOCKET
from ..errors import WSAEINVAL, WSAENOTSOCK, WSANOTINITIALISED, WinsockError
from .checks import int_arg
from .handles import SocketEntry
from .structs import Overlapped, ThreadId

_U32 = 1 << 32

if TYPE_CHECKING:
    from .process import Process

__all__ = ["UpcallTable"]



class UpcallTable:
    """The upcalls of one :class:`~wsp.Process` (``proc.upcalls``)."""

    __slots__ = ("process",)

    def __init__(self, process: Process) -> None:
        self.process = process

    def _ready(self, funcname: str) -> Process:
        process = self.process
        if not process.initialised:
            raise WinsockError(WSANOTINITIALISED, funcname)
        return process

    # -- socket handles -------------------------------------------------------
    def WPUCreateSocketHandle(self, catalog_entry_id: int, context: Any) -> int:
        """A new socket handle carrying the provider's `context` (for non-IFS
        providers)."""
        process = self._ready("WPUCreateSocketHandle")
        entry_id = int_arg(catalog_entry_id, "catalog_entry_id")
        return process.handles.add(SocketEntry(entry_id, context))

    def WPUQuerySocketHandleContext(self, s: int) -> Any:
        """The context given to WPUCreateSocketHandle for `s`;
        WSAENOTSOCK if `s` is not such a handle."""
        process = self._ready("WPUQuerySocketHandleContext")
        return process.socket_entry(s, WSAENOTSOCK, "WPUQuerySocketHandleContext").context

    def WPUCloseSocketHandle(self, s: int) -> None:
        """Remove `s` from the process's handle table.  The provider stays
        responsible for the resources behind it.  WSAENOTSOCK if `s` was not
        made by WPUCreateSocketHandle or is already closed."""
        process = self._ready("WPUCloseSocketHandle")
        process.close_socket_handle(s, "WPUCloseSocketHandle")

    def WPUModifyIFSHandle(self, catalog_entry_id: int, proposed_handle: int) -> int:
        """The handle an IFS provider must use for a socket it created.  IFS
        handles are the provider's own; ws2_32 returns them unmodified, and so
        does wsp (it keeps no table entry for them).  WSAEINVAL for 0 or
        INVALID_SOCKET."""
        self._ready("WPUModifyIFSHandle")
        int_arg(catalog_entry_id, "catalog_entry_id")
        handle = int_arg(proposed_handle, "proposed_handle")
        if handle in (0, INVALID_SOCKET) or handle < 0:
            raise WinsockError(WSAEINVAL, "WPUModifyIFSHandle")
        return handle

    # -- threads and APCs ---------------------------------------------------------
    def WPUOpenCurrentThread(self) -> ThreadId:
        """A ThreadId for the calling thread, to pass to overlapped calls so
        their completion routines run on this thread.  Every call needs one
        WPUCloseThread."""
        process = self._ready("WPUOpenCurrentThread")
        return ThreadId(process.threads.open(), 0)

    def WPUCloseThread(self, thread_id: ThreadId) -> None:
        """Close a ThreadId from WPUOpenCurrentThread; WSAEINVAL if it is
        unknown or already closed."""
        process = self._ready("WPUCloseThread")
        if not isinstance(thread_id, ThreadId):
            raise TypeError(f"thread_id must be a ThreadId, not {type(thread_id).__name__}")
        try:
            process.threads.close(thread_id.ThreadHandle)
        except WinsockError:
            raise WinsockError(WSAEINVAL, "WPUCloseThread") from None

    def WPUQueueApc(self, thread_id: ThreadId, apc: Callable[[Any], Any], context: Any) -> None:
        """Queue ``apc(context)`` to run on the thread of `thread_id` during
        its next alertable wait; WSAEINVAL if `thread_id` is closed."""
        process = self._ready("WPUQueueApc")
        if not isinstance(thread_id, ThreadId):
            raise TypeError(f"thread_id must be a ThreadId, not {type(thread_id).__name__}")
        if not callable(apc):
            raise TypeError("apc must be callable")
        try:
            process.waits.queue_apc(thread_id.ThreadHandle, apc, context)
        except WinsockError:
            raise WinsockError(WSAEINVAL, "WPUQueueApc") from None

    # -- events --------------------------------------------------------------------
    def WPUCreateEvent(self) -> int:
        """A new manual-reset event handle, not signalled."""
        return self._ready("WPUCreateEvent").WSACreateEvent()

    def WPUSetEvent(self, h: int) -> None:
        """Signal an event; WSA_INVALID_HANDLE for an unknown one."""
        self._ready("WPUSetEvent").WSASetEvent(h, "WPUSetEvent")

    def WPUResetEvent(self, h: int) -> None:
        """Reset an event; WSA_INVALID_HANDLE for an unknown one."""
        self._ready("WPUResetEvent").WSAResetEvent(h, "WPUResetEvent")

    def WPUCloseEvent(self, h: int) -> None:
        """Close an event; WSA_INVALID_HANDLE for an unknown one."""
        self._ready("WPUCloseEvent").WSACloseEvent(h, "WPUCloseEvent")

    # -- overlapped completion ---------------------------------------------------------
    def WPUCompleteOverlappedRequest(self, s: int, overlapped: Overlapped, error: int,
                                     transferred: int) -> None:
        """Complete `overlapped` (``Internal = error``, ``InternalHigh = transferred``): signal its
        event when set and post a packet to the port `s` is associated with, if any.  If the
        operation was started with a completion routine (through ``Process.start_overlapped``), the
        routine is queued instead, as ``docs/guide/spi-model.rst, "Overlapped operations"``
        requires.  WSAEINVAL if `s` is not a handle from WPUCreateSocketHandle, or if `overlapped`
        is pending on another socket."""
        funcname = "WPUCompleteOverlappedRequest"
        process = self.process
        if not process.initialised:
            raise WinsockError(WSANOTINITIALISED, funcname)
        # Hot path (one call per completed operation): checks inlined.
        try:
            entry = process.handles.table.query(s)
        except WinsockError:
            entry = None
        if type(entry) is not SocketEntry:
            raise WinsockError(WSAEINVAL, funcname)
        if not isinstance(overlapped, Overlapped):
            raise TypeError(f"overlapped must be an Overlapped, not {type(overlapped).__name__}")
        if type(error) is not int or type(transferred) is not int:
            for value, name in ((error, "error"), (transferred, "transferred")):
                if not isinstance(value, int):
                    raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not (0 <= error < _U32 and 0 <= transferred < _U32):
            raise WinsockError(WSAEINVAL, funcname)
        op = overlapped.operation
        if op is None:                 # never started through the engine
            process.engine.complete_unstarted(entry, overlapped, error, transferred)
        elif op.socket != s:
            raise WinsockError(WSAEINVAL, funcname)
        else:
            process.complete_overlapped(op, error, transferred)

    # -- the rest of the table -----------------------------------------------------------
    def WPUQueryBlockingCallback(self, catalog_entry_id: int) -> tuple[Any, int]:
        """``(callback, context)`` of the Winsock 1.1 blocking hook.  Winsock
        2.2 applications cannot install one, so it is always ``(None, 0)``:
        providers block without calling back."""
        self._ready("WPUQueryBlockingCallback")
        int_arg(catalog_entry_id, "catalog_entry_id")
        return (None, 0)

    def WPUFDIsSet(self, s: int, fdset: Any) -> bool:
        """True if socket `s` is a member of `fdset` (any container of socket
        handles: a set, list, dict, ...).  TypeError if `s` is not an int or
        `fdset` is not such a container -- a str or bytes-like object is
        not, although Python can test membership in it."""
        self._ready("WPUFDIsSet")
        int_arg(s, "s")
        if isinstance(fdset, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"fdset must be a container of socket handles, "
                            f"not {type(fdset).__name__}")
        try:
            return s in fdset
        except TypeError:
            raise TypeError("fdset must be a container of socket handles") from None

    def WPUPostMessage(self, hwnd: Any, msg: int, wparam: int, lparam: int) -> None:
        """Post a window message.  In-process a "window" is an object with a
        ``put`` method (a queue: ``(msg, wparam, lparam)`` is put on it) or a
        callable (called as ``hwnd(msg, wparam, lparam)``).  WSAEINVAL for
        anything else."""
        self._ready("WPUPostMessage")
        put = getattr(hwnd, "put", None)
        if put is not None:
            put((msg, wparam, lparam))
        elif callable(hwnd):
            hwnd(msg, wparam, lparam)
        else:
            raise WinsockError(WSAEINVAL, "WPUPostMessage")

    def WPUGetProviderPath(self, provider_id: uuid.UUID | str) -> str:
        """Where the provider with `provider_id` lives: in-process, the
        ``module:QualifiedName`` of its class (the role its DLL path plays
        on Windows).  WSAEINVAL for a provider the process does not know."""
        process = self._ready("WPUGetProviderPath")
        if isinstance(provider_id, str):
            try:
                provider_id = uuid.UUID(provider_id)
            except ValueError:
                raise WinsockError(WSAEINVAL, "WPUGetProviderPath") from None
        if not isinstance(provider_id, uuid.UUID):
            raise TypeError("provider_id must be a uuid.UUID or its string form")
        provider = next((p for p in process.providers()
                         if p.provider_id == provider_id), None)
        if provider is None:
            raise WinsockError(WSAEINVAL, "WPUGetProviderPath")
        cls = type(provider)
        return f"{cls.__module__}:{cls.__qualname__}"

    def __repr__(self) -> str:
        return f"<UpcallTable of {self.process!r}>"
