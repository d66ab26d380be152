"""Shared test helpers: bounded threads, bounded waits for an observable
condition, and WinsockError checks."""
from __future__ import annotations

import threading
import time

from wsp.errors import WinsockError

JOIN_TIMEOUT = 10.0     # no test thread may outlive this
POLL = 0.002            # seconds between two looks in wait_until


def assert_winsock(excinfo, code):
    assert isinstance(excinfo.value, WinsockError), excinfo.value
    assert excinfo.value.winerror == code


class Worker(threading.Thread):
    """A daemon thread that records its result or exception."""

    def __init__(self, target, *args):
        super().__init__(daemon=True)
        self._target_fn = target
        self._args = args
        self.result = None
        self.error = None
        self.started = threading.Event()

    def run(self):
        self.started.set()
        try:
            self.result = self._target_fn(*self._args)
        except BaseException as exc:  # noqa: BLE001 -- reported by finish()
            self.error = exc

    def finish(self, timeout=JOIN_TIMEOUT):
        self.join(timeout)
        assert not self.is_alive(), "worker thread did not finish in time"
        if self.error is not None:
            raise self.error
        return self.result


def spin_python_for(seconds):
    """Run Python bytecode for `seconds` of wall time; return (iterations,
    elapsed).  If another thread held the GIL all along, this could not run
    at all."""
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        n += 1
    return n, time.monotonic() - start


def wait_until(predicate, timeout=10.0, what="the condition"):
    """Poll predicate() until it returns something true; return that.  Fails
    the test, naming `what`, if it still does not hold after `timeout`
    seconds (a bound against hangs, never a speed check)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


def parked(core=None):
    """How many threads are parked right now inside a core wait
    (CompletionQueue.get/get_many, ThreadRegistry.wait) of `core` (a core
    module; default: the one wsp uses, wsp.core)."""
    if core is None:
        import wsp.core as core
    return core.debug_counters()["parked"]


def wait_parked(n, core=None, timeout=10.0):
    """Wait until at least `n` threads are parked inside a core wait of
    `core`: proof that a thread under test really blocked in its call, not
    merely that it started.  Returns the count seen."""
    def enough():
        count = parked(core)
        return count if count >= n else 0
    return wait_until(enough, timeout, f"{n} thread(s) parked in a core wait")
