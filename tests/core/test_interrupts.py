"""A wait parked without the GIL must still let signal handlers (Ctrl-C) run
in the main thread, and an interrupted wait must not lose a packet."""
from __future__ import annotations

import signal
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not hasattr(signal, "setitimer"),
                                reason="needs POSIX interval timers")


class Alarm(Exception):
    pass


@pytest.fixture
def alarm():
    def raise_alarm(signum, frame):
        raise Alarm()

    previous = signal.signal(signal.SIGALRM, raise_alarm)
    yield lambda seconds: signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("method", ["get", "get_many"])
def test_parked_get_is_interrupted_by_a_signal_handler(core, alarm, method):
    q = core.CompletionQueue()
    alarm(0.1)
    start = time.monotonic()
    with pytest.raises(Alarm):
        if method == "get":
            q.get(10)
        else:
            q.get_many(4, 10)
    assert time.monotonic() - start < 5
    q.post(1, 2, 3, 4)                 # the queue still works afterwards
    assert q.get(0) == (1, 2, 3, 4)


def test_parked_wait_is_interrupted_by_a_signal_handler(core, alarm):
    reg = core.ThreadRegistry()
    alarm(0.1)
    start = time.monotonic()
    with pytest.raises(Alarm):
        reg.wait(None, 10)
    assert time.monotonic() - start < 5
    h = reg.open()
    reg.queue_apc(h, lambda ctx: None)
    assert reg.wait(None, 0) is True and reg.run_apcs() == 1
    reg.close(h)


def test_signal_whose_handler_returns_keeps_waiting(core):
    seen = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: seen.append(signum))
    try:
        q = core.CompletionQueue()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        start = time.monotonic()
        assert q.get(0.3) is None      # the handler ran; the wait went on to its timeout
        assert time.monotonic() - start >= 0.25
        assert seen == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
