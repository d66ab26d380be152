"""Argument checks shared by the SPI, the simulated network and the layers.

This is the only place that decides what an integer argument, a timeout or a WSABUF array must look
like, so every entry point answers bad input the same way (``docs/guide/spi-model.rst, "Errors"``,
``docs/guide/spi-model.rst, "The core"``): the wrong Python type raises ``TypeError`` naming the
argument; a value the SPI defines an error for raises ``WinsockError`` with that code; nothing ends
in an ``OverflowError`` from deep inside or in a wait that never ends.

Timeouts come in two units:

* seconds (``WSPSelect``, ``Process.wait_overlapped``): ``None`` waits
  forever; a finite number >= 0 waits that long, and one above
  :data:`FOREVER_SECONDS` (about 31,700 years) counts as forever; a
  negative, NaN or infinite one is ``WSAEINVAL``.  The same rule as the
  core's (``docs/guide/spi-model.rst, "The core"``).
* milliseconds (``SleepEx``, ``WSAWaitForMultipleEvents``,
  ``GetQueuedCompletionStatus(Ex)``): a DWORD, ``INFINITE`` for none, as
  Win32 takes them.

Waits built on ``threading`` must never ask for more than
``threading.TIMEOUT_MAX`` at once (it raises ``OverflowError``; on Windows
the limit is only about 49 days): :func:`wait_time` hands out a slice, and
every wait loop re-checks its condition and its deadline after each slice.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any

from ..errors import INFINITE, WSA_INVALID_PARAMETER, WSAEINVAL, WinsockError

__all__ = ["FOREVER_SECONDS", "REWAKE", "int_arg", "seconds_timeout", "ms_seconds", "ms_deadline",
           "deadline_after", "wait_time", "block_time", "time_left", "gather", "scatter", "wsabuf_nbytes"]

#: A timeout in seconds above this is "practically forever" (as in the core).
FOREVER_SECONDS = 1e12

# The longest single sleep a threading primitive is asked for.
_WAIT_SLICE = min(threading.TIMEOUT_MAX, 3600.0 * 24)

#: The longest real time a wait on a virtual clock blocks before it looks
#: again (see :func:`block_time`): a watchdog, not a poll -- a wait normally
#: ends on its wake long before.
REWAKE = 0.05


def int_arg(value: object, name: str, *, bool_ok: bool = True) -> int:
    """`value` as an int, or TypeError naming `name`.  ``bool_ok=False``
    also refuses True/False (where a flag would be a caller's mistake)."""
    if not isinstance(value, int) or (not bool_ok and isinstance(value, bool)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def seconds_timeout(timeout: object, funcname: str | None = None,
                    name: str = "timeout") -> float | None:
    """A timeout in seconds: None (forever) or a finite float >= 0.

    TypeError for a non-number (bool included: ``True`` is no timeout);
    WSAEINVAL (with `funcname`) for a negative, NaN or infinite value.  A
    finite value above :data:`FOREVER_SECONDS` -- also an int too large for
    a float -- is returned as None."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, "
                        f"not {type(timeout).__name__}")
    try:
        seconds = float(timeout)
    except OverflowError:                 # an int beyond any float: finite, huge
        if timeout < 0:
            raise WinsockError(WSAEINVAL, funcname) from None
        return None
    if not math.isfinite(seconds) or seconds < 0.0:
        raise WinsockError(WSAEINVAL, funcname)
    if seconds > FOREVER_SECONDS:
        return None
    return seconds


def deadline_after(seconds: float | None) -> float | None:
    """The monotonic deadline `seconds` from now (None: never)."""
    return None if seconds is None else time.monotonic() + seconds


def ms_seconds(ms: object, funcname: str | None = None) -> float | None:
    """A Win32 millisecond time-out in seconds (INFINITE: None).  TypeError
    unless an int (bool refused); WSA_INVALID_PARAMETER outside
    0..INFINITE, as a DWORD cannot hold it."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise TypeError(f"time-out must be an int of milliseconds, not {type(ms).__name__}")
    if not 0 <= ms <= INFINITE:
        raise WinsockError(WSA_INVALID_PARAMETER, funcname)
    if ms == INFINITE:
        return None
    return ms / 1000.0


def ms_deadline(ms: object, funcname: str | None = None) -> float | None:
    """Monotonic deadline for a Win32 millisecond time-out (INFINITE: None);
    the checks of :func:`ms_seconds`."""
    seconds = ms_seconds(ms, funcname)
    return None if seconds is None else time.monotonic() + seconds


def time_left(deadline: float | None) -> float | None:
    """Seconds left until `deadline` (never negative; None: no deadline)."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def wait_time(deadline: float | None) -> float:
    """How long the next sleep of a wait loop may last: what is left of
    `deadline`, capped at a slice threading accepts.  Never None, so that
    no wait is handed an unbounded or oversized timeout."""
    left = time_left(deadline)
    return _WAIT_SLICE if left is None or left > _WAIT_SLICE else left


def block_time(clock: Any, timeout: float | None) -> float:
    """How long a wait on the simulated clock `clock` may block a threading
    primitive for the real seconds ``clock.begin_wait`` allowed (None: until
    woken).  On the real clock: what it allowed, capped at a slice as by
    :func:`wait_time`.  On a virtual clock: at most :data:`REWAKE`, after
    which the wait looks again and begins a new wait, so that the clock
    settles again.  That bounds two things a virtual clock's wake alone does
    not: a wake that falls between a waiter's last look and its park (a
    completion port's getter can only be woken once parked), and a thread
    that was woken, acted and then blocked outside wsp without waiting again
    (the clock said "until woken" to the others, and only a new wait notices
    that its grace has run out)."""
    if clock.virtual:
        return REWAKE if timeout is None or timeout > REWAKE else timeout
    return _WAIT_SLICE if timeout is None or timeout > _WAIT_SLICE else timeout


# ----------------------------------------------------------------- WSABUF arrays
def wsabuf_nbytes(buffers: Any) -> int | None:
    """Bytes in a WSABUF array (a sequence of buffers); None if it is not
    one -- the call it was handed to reports that (the tracer and the fault
    layer's hooks size calls with this before passing them on)."""
    if isinstance(buffers, (bytes, bytearray, memoryview, str)):
        return None
    try:
        return sum(memoryview(b).nbytes for b in buffers)
    except TypeError:
        return None


def gather(buffers: Any, funcname: str) -> bytes:
    """The bytes of a send's WSABUF array (a sequence of bytes-like objects).
    TypeError for a single buffer or anything that is not such a sequence."""
    if isinstance(buffers, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"{funcname}: buffers must be a sequence of bytes-like objects "
                        "(the WSABUF array), not a single buffer")
    try:
        return b"".join(buffers)
    except TypeError:
        raise TypeError(f"{funcname}: buffers must be a sequence of bytes-like objects") from None


def scatter(buffers: Any, funcname: str) -> list[memoryview]:
    """Writable byte views of a receive's WSABUF array.  Buffers of other
    item formats (``array('i')``) are addressed as bytes.  TypeError for a
    single buffer, a non-buffer or a read-only one."""
    if isinstance(buffers, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"{funcname}: buffers must be a sequence of writable buffers "
                        "(the WSABUF array), not a single buffer")
    try:
        views = [memoryview(b) for b in buffers]
    except TypeError:
        raise TypeError(f"{funcname}: buffers must be a sequence of writable buffers") from None
    for i, view in enumerate(views):
        if view.readonly:
            raise TypeError(f"{funcname}: receive buffers must be writable")
        if view.format != "B" or view.ndim != 1:
            try:
                views[i] = view.cast("B")
            except TypeError:             # not C-contiguous: cannot be addressed as bytes
                raise TypeError(f"{funcname}: receive buffers must be contiguous") from None
    return views
