"""Where the sender of a datagram that completed a waiting overlapped
``WSPRecvFrom`` is kept until the application asks for it.

WSARecvFrom's ``lpFrom`` is filled in when the operation completes, not when
it is posted (the WSARecvFrom page: the lpFrom buffer must stay valid until the
overlapped operation completes).  wsp's completions carry a status, a byte count and
flags only, so the provider that receives the datagram records its sender
here, by the overlapped of the request it completed.  A layered provider
passes its own overlapped down: when such a receive completes it moves the
record up, from the overlapped it passed down to the application's
(:func:`forward`), so the sender survives any stack of layers.  The
application (``wsp.aio``'s proactor, for one) takes it once with
:func:`take`; an observer that must leave it to the application (the
tracing layer, wsp.lsp.trace) reads it with :func:`peek`.

Records are weak in their overlapped: one nobody takes goes with its
overlapped.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["forward", "peek", "record", "take"]

_lock = threading.Lock()
_senders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def record(overlapped: Any, sender: tuple[str, int]) -> None:
    """`sender` completed the waiting receive of `overlapped`."""
    with _lock:
        _senders[overlapped] = sender


def take(overlapped: Any) -> tuple[str, int] | None:
    """The sender recorded for `overlapped`, once (None afterwards, and for
    an overlapped no datagram completed)."""
    with _lock:
        return _senders.pop(overlapped, None)


def peek(overlapped: Any) -> tuple[str, int] | None:
    """The sender recorded for `overlapped`, left in place for :func:`take`
    (None when there is none, or it was taken already)."""
    with _lock:
        return _senders.get(overlapped)


def forward(lower: Any, upper: Any) -> None:
    """A layer's receive completed: the sender recorded for the overlapped
    it passed down (`lower`) now belongs to the one above (`upper`)."""
    with _lock:
        sender = _senders.pop(lower, None)
        if sender is not None:
            _senders[upper] = sender
