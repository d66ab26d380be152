"""Manual-reset events: WSACreateEvent, WSASetEvent, WSAResetEvent,
WSACloseEvent (and the WPU*Event upcalls, which share them).

The events of a process live in its handle namespace (``handles.EventEntry``).
Setting one wakes every thread parked on it in WSAWaitForMultipleEvents
(``waits.Waits``); closing one wakes them too, and they fail with
WSA_INVALID_HANDLE when they look again.
"""
from __future__ import annotations

import threading

from ..errors import WSA_INVALID_HANDLE
from .handles import EventEntry, HandleSpace

__all__ = ["Events"]


class Events:
    """The events of one process."""

    __slots__ = ("handles", "lock")

    def __init__(self, handles: HandleSpace) -> None:
        self.handles = handles
        #: guards every event's waiter list
        self.lock = threading.Lock()

    def entry(self, h: object, funcname: str | None) -> EventEntry:
        """The event behind `h`, or WSA_INVALID_HANDLE."""
        return self.handles.require(h, EventEntry, WSA_INVALID_HANDLE, funcname)

    def create(self) -> int:
        """A new manual-reset event, not signalled."""
        return self.handles.add(EventEntry())

    def set(self, h: object, funcname: str | None) -> None:
        """Signal `h` and wake every thread waiting on it."""
        self.signal(self.entry(h, funcname))

    def signal(self, entry: EventEntry) -> None:
        """Signal an event already looked up."""
        with self.lock:
            entry.signalled = True
            waiters = list(entry.waiters)
        for waiter in waiters:
            waiter.wake()

    def reset(self, h: object, funcname: str | None) -> None:
        """Reset `h` to not signalled."""
        self.entry(h, funcname).signalled = False

    def close(self, h: object, funcname: str | None) -> None:
        """Close `h`; its waiters wake (and then fail with WSA_INVALID_HANDLE)."""
        entry = self.entry(h, funcname)
        self.handles.remove(h)
        self.release(entry)

    def release(self, entry: EventEntry) -> None:
        """Wake every waiter of an event whose handle is gone."""
        with self.lock:
            waiters = list(entry.waiters)
        for waiter in waiters:
            waiter.wake()

    def signal_if_open(self, h: object) -> None:
        """Signal `h` if it is still an open event (a completion's event may
        have been closed by the application: then nothing is signalled)."""
        entry = self.handles.lookup(h, EventEntry)
        if entry is not None:
            self.signal(entry)

    def reset_if_open(self, h: object) -> None:
        """Reset `h` if it is still an open event (an operation starting)."""
        entry = self.handles.lookup(h, EventEntry)
        if entry is not None:
            entry.signalled = False
