"""wsp.spi.senders: the sender of a datagram that completed a waiting
overlapped WSPRecvFrom, kept by overlapped until the application takes it;
``peek`` reads it without taking it (for an observer such as the tracer)."""
from __future__ import annotations

import gc

from wsp import Overlapped
from wsp.spi import senders


def test_peek_leaves_the_sender_for_take():
    ov = Overlapped()
    assert senders.peek(ov) is None                       # nothing recorded yet
    senders.record(ov, ("10.0.0.2", 4000))
    assert senders.peek(ov) == ("10.0.0.2", 4000)
    assert senders.peek(ov) == ("10.0.0.2", 4000)         # as often as it likes
    assert senders.take(ov) == ("10.0.0.2", 4000)         # the application still gets it
    assert senders.take(ov) is None and senders.peek(ov) is None


def test_peek_follows_forward_and_records_stay_weak():
    lower, upper = Overlapped(), Overlapped()
    senders.record(lower, ("10.0.0.3", 53))
    senders.forward(lower, upper)
    assert senders.peek(lower) is None
    assert senders.peek(upper) == ("10.0.0.3", 53)
    # One nobody takes goes with its overlapped.
    before = len(senders._senders)
    del upper
    gc.collect()
    assert len(senders._senders) == before - 1
