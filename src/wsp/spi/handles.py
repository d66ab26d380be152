"""The kinds of object a process's one handle namespace holds
(``docs/guide/spi-model.rst, "Process and upcalls"``).

Win32 gives sockets, events and completion ports one handle namespace, so a
value can never name two kinds of object at once; a ``Process`` keeps them
all in one core ``HandleTable`` and tells them apart by the type of the
entry stored under the handle.  These are those entry types.  They are the
package-internal interface between the process and the modules that look
handles up (the upcalls, the provider base class, the application API);
applications never see them.
"""
from __future__ import annotations

from typing import Any

from ..core import CompletionQueue, HandleTable
from ..errors import WinsockError

try:
    import cython             # compiling: Cython's own; uncompiled: Cython.Shadow
except ImportError:           # uncompiled, Cython not installed
    from .. import _cython_shim as cython

__all__ = ["SocketEntry", "EventEntry", "PortEntry", "HandleSpace", "lookup"]


class SocketEntry:
    """A socket handle made by WPUCreateSocketHandle: the provider's
    context, and the completion port (with its key) the socket is
    associated with, if any."""

    __slots__ = ("catalog_entry_id", "context", "port", "key", "operations")

    def __init__(self, catalog_entry_id: int, context: Any) -> None:
        self.catalog_entry_id = catalog_entry_id
        self.context = context
        self.port: PortEntry | None = None    # set by CreateIoCompletionPort
        self.key = 0
        #: the overlapped operations started on this socket and not yet
        #: completed (an insertion-ordered set; see wsp.spi.engine)
        self.operations: dict[Any, None] = {}


class EventEntry:
    """A manual-reset event and the threads waiting on it (objects with a
    ``wake()`` method)."""

    __slots__ = ("signalled", "waiters")

    def __init__(self) -> None:
        self.signalled = False
        self.waiters: list[Any] = []


class PortEntry:
    """An I/O completion port: its core packet queue."""

    __slots__ = ("queue", "owns_riders")

    def __init__(self) -> None:
        self.queue = CompletionQueue()
        #: Set by the compiled wsp.spi.ports: each queued packet's overlapped
        #: field is an object's address holding one reference (see there).
        self.owns_riders = False

    def __dealloc__(self) -> None:
        """Compiled only (Python never calls it): a port freed without being
        closed -- its Process dropped without terminate() -- releases the
        references its queued packets hold, which would otherwise leak."""
        if cython.compiled and self.owns_riders and self.queue is not None:
            for packet in self.queue.close():
                if packet[3]:
                    Py_DECREF(cython.cast(object, cython.cast(  # noqa: F821 -- handles.pxd
                        cython.p_void, cython.cast(cython.size_t, packet[3]))))


def lookup(table: HandleTable, handle: object, kind: type) -> Any:
    """The entry of type `kind` stored under `handle` in `table`, or None
    (unknown, closed, or another kind of handle)."""
    try:
        entry = table.query(handle)
    except WinsockError:              # WSAENOTSOCK: not a live handle of this table
        return None
    return entry if type(entry) is kind else None


class HandleSpace:
    """One process's handle namespace: sockets, events and ports in one
    core ``HandleTable``, so a value never names two kinds of object.

    ``table`` is the core table itself, for the hot paths that inline a
    lookup (``type(table.query(h)) is SocketEntry``)."""

    __slots__ = ("table",)

    def __init__(self) -> None:
        self.table = HandleTable()

    def add(self, entry: Any) -> int:
        """A new handle for `entry`."""
        return self.table.create(entry)

    def remove(self, handle: object) -> Any:
        """Close `handle` and return its entry (WSAENOTSOCK if not live)."""
        return self.table.close(handle)

    def lookup(self, handle: object, kind: type) -> Any:
        """The entry of type `kind` behind `handle`, or None."""
        return lookup(self.table, handle, kind)

    def require(self, handle: object, kind: type, code: int, funcname: str | None) -> Any:
        """The entry of type `kind` behind `handle`, or WinsockError(code)."""
        entry = lookup(self.table, handle, kind)
        if entry is None:
            raise WinsockError(code, funcname)
        return entry

    def entries(self) -> list[tuple[int, Any]]:
        """A snapshot of ``(handle, entry)`` for every live handle."""
        found = []
        table = self.table
        for handle in table.handles():
            try:
                found.append((handle, table.query(handle)))
            except WinsockError:          # closed meanwhile
                continue
        return found
