"""Shared test helpers: bounded threads, bounded waits for an observable
condition, WinsockError checks, and optional test dependencies."""
from __future__ import annotations

import dis
import os
import shutil
import sys
import threading
import time

from wsp.errors import WinsockError

JOIN_TIMEOUT = 10.0     # no test thread may outlive this
POLL = 0.002            # seconds between two looks in wait_until


def on_ci() -> bool:
    """Whether the tests run on CI (the CI environment variable is "true",
    as GitHub Actions and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def importorskip_unless_ci(modname, minversion=None):
    """``pytest.importorskip(modname, minversion)``, except on CI, where the
    optional test dependencies are installed (``pip install ".[test]"``): a
    missing or too old module fails there instead of skipping, so that a
    broken install cannot turn a test module into a silent skip."""
    import pytest

    try:
        return pytest.importorskip(modname, minversion=minversion)
    except pytest.skip.Exception as skipped:
        if not on_ci():
            raise
        reason = str(skipped)
    pytest.fail(f"CI=true and the test dependency {modname!r} cannot be used: {reason}",
                pytrace=False)


def require_tool_unless_ci(name):
    """The path of the command-line tool `name` (``shutil.which``); skips
    the test when it is not installed, except on CI, where .ci/run installs
    it: a missing tool fails there instead, so that a broken install cannot
    turn the tests that need it into silent skips."""
    import pytest

    path = shutil.which(name)
    if path is not None:
        return path
    if on_ci():
        pytest.fail(f"CI=true and the tool {name!r} is not on PATH", pytrace=False)
    pytest.skip(f"the tool {name!r} is not installed (on PATH)")


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
    module; default: the one wsp uses, wsp.core): its debug counter
    ``parked``, which counts a thread once its waiter is registered where a
    post, close or APC will find it."""
    if core is None:
        import wsp.core as core
    return core.debug_counters()["parked"]




def _called_method(code, lasti):
    """The attribute name of the call a frame of `code` is executing at
    `lasti`: the last attribute or method load before that instruction."""
    name = None
    for ins in dis.get_instructions(code):
        if ins.offset >= lasti:
            break
        if ins.opname in ("LOAD_METHOD", "LOAD_ATTR"):
            name = ins.argval
    return name


def wait_parked(n, core=None, timeout=10.0):
    """Wait until at least `n` threads are parked inside a core wait of
    `core`: proof that a thread under test really blocked in its call, not
    merely that it started.  Returns the count seen (on two looks in a row,
    POLL apart)."""
    seen = [0]

    def enough():
        count = parked(core)
        steady = count >= n and seen[0] >= n
        seen[0] = count
        return count if steady else 0
    return wait_until(enough, timeout, f"{n} thread(s) parked in a core wait")


def event_waiters(proc, ev):
    """How many WSAWaitForMultipleEvents calls of `proc` are registered on
    the event `ev` now (the event's waiter list, read under the events'
    lock).  A wait registers itself, re-checks the events once and sleeps:
    a signal from now on has to wake it."""
    with proc.events.lock:
        return len(proc.events.entry(ev, None).waiters)


def wait_event_waiters(proc, ev, n=1, timeout=10.0):
    """Wait until at least `n` waits are registered on the event `ev`."""
    return wait_until(lambda: event_waiters(proc, ev) >= n, timeout,
                      f"{n} wait(s) registered on event {ev}")


def calling(thread, name):
    """True if `thread`'s innermost Python frame is stopped in a call of a
    method or function attribute called `name` (``time.sleep`` -> "sleep"):
    the thread is inside that call now."""
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and _called_method(frame.f_code, frame.f_lasti) == name


def wait_calling(thread, name, timeout=10.0):
    """Wait until `thread` is inside a call of `name` (see calling())."""
    return wait_until(lambda: calling(thread, name), timeout,
                      f"{thread.name} inside a call of {name}()")


def condition_waiters(cond):
    """How many threads wait on the threading.Condition `cond` now.  Read
    under its lock: Condition.wait puts a thread on the list and then lets
    go of the lock, so a thread counted here is inside that wait."""
    with cond:
        return len(cond._waiters)


def wait_condition_waiters(cond, n=1, timeout=10.0, what="a Condition"):
    """Wait until at least `n` threads wait on the Condition `cond`."""
    return wait_until(lambda: condition_waiters(cond) >= n, timeout,
                      f"{n} thread(s) waiting on {what}")
