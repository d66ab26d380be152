"""Per-operation overhead of the SPI engine: one overlapped completion
delivered through a completion port, against queue.SimpleQueue put+get.

group ``engine-one`` (reference: SimpleQueue; one operation per packet):

* ``WPUCompleteOverlappedRequest + GetQueuedCompletionStatus`` -- what a
  non-IFS provider and an application thread do per completed operation;
* ``start_overlapped + complete_overlapped + GetQueuedCompletionStatus`` --
  the same with the operation recorded at its start, as wsp's providers do;
* the core alone (``CompletionQueue.post + get``) and SimpleQueue, so the
  engine's own share is visible.
"""
from __future__ import annotations

import queue

import pytest

from harness import REFERENCES, Reference, measure, tag  # bench/harness.py
from wsp import Overlapped, Process, ServiceProvider, _core

N = 1000
STATUS, NBYTES, KEY, OV = 0, 512, 7, 123456


def put_get_each(put, get, rng):
    """SimpleQueue: the packet tuple is built at the call, as user code does."""
    for _ in rng:
        put((STATUS, NBYTES, KEY, OV))
        p = get()
    return p


def post_get_each(post, get, rng):
    for _ in rng:
        post(STATUS, NBYTES, KEY, OV)
        p = get()
    return p


def complete_get_each(complete, get, s, ov, port, rng):
    for _ in rng:
        complete(s, ov, STATUS, NBYTES)
        p = get(port, 0)
    return p


def start_complete_get_each(start, complete, get, s, ov, port, rng):
    for _ in rng:
        complete(start(s, ov), STATUS, NBYTES)
        p = get(port, 0)
    return p


def _reference():
    q = queue.SimpleQueue()
    return Reference("SimpleQueue", N, put_get_each, lambda: (q.put, q.get, range(N)))


REFERENCES["engine-one"] = _reference


@pytest.fixture
def engine():
    proc = Process()
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    s = proc.upcalls.WPUCreateSocketHandle(1, None)
    port = proc.CreateIoCompletionPort(s, None, KEY)
    yield proc, s, port
    proc.upcalls.WPUCloseSocketHandle(s)
    proc.CloseHandle(port)
    prov.WSPCleanup()
    assert all(v == 0 for v in proc.resources().values())


@pytest.mark.benchmark(group="engine-one")
def test_simplequeue(benchmark):
    q = queue.SimpleQueue()
    tag(benchmark, "SimpleQueue", "reference", N, "operation",
        f"put(({STATUS}, {NBYTES}, {KEY}, {OV})); get()")
    assert measure(benchmark, "engine-one", put_get_each,
                   args=(q.put, q.get, range(N))) == (STATUS, NBYTES, KEY, OV)


@pytest.mark.benchmark(group="engine-one")
def test_core_queue(benchmark):
    q = _core.CompletionQueue()
    tag(benchmark, "wsp._core queue", "diagnostic", N, "operation",
        f"CompletionQueue.post({STATUS}, {NBYTES}, {KEY}, {OV}); get()")
    assert measure(benchmark, "engine-one", post_get_each,
                   args=(q.post, q.get, range(N))) == (STATUS, NBYTES, KEY, OV)


@pytest.mark.benchmark(group="engine-one")
def test_complete_request_and_get(benchmark, engine):
    proc, s, port = engine
    ov = Overlapped()
    tag(benchmark, "wsp engine", "subject", N, "operation",
        "WPUCompleteOverlappedRequest(s, ov, 0, 512); GetQueuedCompletionStatus(port, 0)")
    rc, nbytes, key, got = measure(
        benchmark, "engine-one", complete_get_each,
        args=(proc.upcalls.WPUCompleteOverlappedRequest, proc.GetQueuedCompletionStatus,
              s, ov, port, range(N)))
    assert (rc, nbytes, key) == (STATUS, NBYTES, KEY) and got is ov


@pytest.mark.benchmark(group="engine-one")
def test_start_complete_and_get(benchmark, engine):
    proc, s, port = engine
    ov = Overlapped()
    tag(benchmark, "wsp engine, recorded start", "diagnostic", N, "operation",
        "complete_overlapped(start_overlapped(s, ov), 0, 512); GetQueuedCompletionStatus(port, 0)")
    rc, nbytes, key, got = measure(
        benchmark, "engine-one", start_complete_get_each,
        args=(proc.start_overlapped, proc.complete_overlapped, proc.GetQueuedCompletionStatus,
              s, ov, port, range(N)))
    assert (rc, nbytes, key) == (STATUS, NBYTES, KEY) and got is ov
