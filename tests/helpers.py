"""Shared test helpers: bounded threads and WinsockError checks."""
from __future__ import annotations

import threading
import time

from wsp.errors import WinsockError

JOIN_TIMEOUT = 10.0     # no test thread may outlive this


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
