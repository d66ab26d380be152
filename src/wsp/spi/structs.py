"""The SPI's data structures as Python objects: OVERLAPPED, WSATHREADID,
linger, WSPDATA.

Field names follow pywin32 and the C structures so that code written against
either reads the same.
"""
from __future__ import annotations

from ..errors import WSA_IO_PENDING, WSAEINVAL, WinsockError

__all__ = ["Overlapped", "ThreadId", "Linger", "WSPData"]


class Overlapped:
    """An OVERLAPPED: the state of one overlapped operation.

    ``Internal`` is the status (``WSA_IO_PENDING`` while pending, ``0`` on
    success, else the WSA error), ``InternalHigh`` the bytes transferred,
    ``Offset``/``OffsetHigh`` unused by sockets, ``hEvent`` an event handle
    (or None) and ``object`` free for the caller.  ``pending`` is True from
    the moment an operation starts on it until it completes.

    While an operation is pending, the engine keeps a reference to the
    overlapped and its buffers; one Overlapped can carry one operation at a
    time (starting a second while one is pending raises WSAEINVAL).

    Three more attributes serve the engine and layered providers:
    ``operation``, ``result_flags`` and ``relay`` (see below).
    """

    __slots__ = ("Internal", "InternalHigh", "Offset", "OffsetHigh", "hEvent", "object",
                 "operation", "result_flags", "relay", "__weakref__")

    def __init__(self, hEvent: int | None = None) -> None:  # noqa: N803 -- Win32 name
        if hEvent is not None and not isinstance(hEvent, int):
            raise TypeError(f"hEvent must be an event handle or None, not {type(hEvent).__name__}")
        self.Internal = 0
        self.InternalHigh = 0
        self.Offset = 0
        self.OffsetHigh = 0
        self.hEvent = hEvent
        self.object = None
        #: The engine's record of the operation while one is pending (None
        #: otherwise).  Read it; only the engine (wsp.spi.engine) sets it.
        self.operation = None
        #: The flags the completed operation reported (WSPGetOverlappedResult).
        self.result_flags = 0
        #: A layered provider's hand-over: when set, completing this
        #: overlapped calls ``relay(error, nbytes, flags)`` instead of the
        #: routine/event/port delivery (see wsp.spi.engine and wsp.lsp).
        self.relay = None

    @property
    def pending(self) -> bool:
        """True while an operation started on this overlapped has not completed."""
        return self.Internal == WSA_IO_PENDING

    def __repr__(self) -> str:
        state = "pending" if self.pending else f"Internal={self.Internal}"
        return f"<Overlapped {state} InternalHigh={self.InternalHigh} hEvent={self.hEvent}>"


class ThreadId:
    """A WSATHREADID, as WPUOpenCurrentThread returns it.

    ``ThreadHandle`` is the thread handle in the process's thread registry;
    ``Reserved`` is kept as in the C structure (0).
    """

    __slots__ = ("ThreadHandle", "Reserved")

    def __init__(self, ThreadHandle: int, Reserved: int = 0) -> None:  # noqa: N803
        if not isinstance(ThreadHandle, int) or not isinstance(Reserved, int):
            raise TypeError("ThreadHandle and Reserved must be ints")
        self.ThreadHandle = ThreadHandle
        self.Reserved = Reserved

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ThreadId):
            return NotImplemented
        return (self.ThreadHandle, self.Reserved) == (other.ThreadHandle, other.Reserved)

    def __hash__(self) -> int:
        return hash((self.ThreadHandle, self.Reserved))

    def __repr__(self) -> str:
        return f"ThreadId(ThreadHandle={self.ThreadHandle}, Reserved={self.Reserved})"


class Linger:
    """The linger structure of SO_LINGER: ``l_onoff`` (nonzero: linger on)
    and ``l_linger`` (the time-out in seconds, 0..65535)."""

    __slots__ = ("l_onoff", "l_linger")

    def __init__(self, l_onoff: int = 0, l_linger: int = 0) -> None:
        for name, value in (("l_onoff", l_onoff), ("l_linger", l_linger)):
            if not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if not 0 <= value <= 0xFFFF:            # u_short in the C structure
                raise WinsockError(WSAEINVAL)
        self.l_onoff = l_onoff
        self.l_linger = l_linger

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Linger):
            return NotImplemented
        return (self.l_onoff, self.l_linger) == (other.l_onoff, other.l_linger)

    def __hash__(self) -> int:
        return hash((self.l_onoff, self.l_linger))

    def __repr__(self) -> str:
        return f"Linger(l_onoff={self.l_onoff}, l_linger={self.l_linger})"


class WSPData:
    """What WSPStartup returns (WSPDATA): the negotiated version, the highest
    version the provider supports, and a description."""

    __slots__ = ("wVersion", "wHighVersion", "szDescription")

    def __init__(self, wVersion: int, wHighVersion: int, szDescription: str) -> None:  # noqa: N803
        self.wVersion = wVersion
        self.wHighVersion = wHighVersion
        self.szDescription = szDescription

    def __repr__(self) -> str:
        return (f"WSPData(wVersion=0x{self.wVersion:04X}, wHighVersion=0x{self.wHighVersion:04X}, "
                f"szDescription={self.szDescription!r})")
