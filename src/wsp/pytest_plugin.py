"""wsp's pytest plugin (SPEC §12), active once wsp is installed (entry point
``pytest11``: ``wsp = "wsp.pytest_plugin"``; ``-p no:wsp`` turns it off);
in a checkout that is not installed ``-p wsp.pytest_plugin`` loads it.

Fixtures:

* ``wsp_network`` -- a new :class:`wsp.sim.Network`; its seed is
  ``--wsp-seed`` (default 0), its clock None, unless the test's
  ``@pytest.mark.wsp(seed=..., clock=...)`` says otherwise.
* ``wsp_process`` -- a :class:`wsp.Process` with a :class:`wsp.sim.Provider`
  on ``wsp_network`` in its catalog and ``WSAStartup(0x0202)`` done.  When
  the test body returns, nothing may be left open in it: a socket, event or
  port still open, or an overlapped request still pending or undelivered,
  fails the test with the counts by kind.  At teardown ``WSACleanup`` runs
  and every count of ``resources()`` must then be zero (else the teardown
  fails, naming what is left).
* ``wsp_loop`` -- a :mod:`wsp.aio` event loop on ``wsp_network``
  (``wsp_loop.run_until_complete(coro)``), closed at teardown.

The marker ``@pytest.mark.wsp(seed=None, clock=None)`` sets the network's
seed and clock (``None``, ``"virtual"`` or ``"real"``) for one test.
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

from .testing import open_resources

__all__ = ["wsp_loop", "wsp_network", "wsp_process"]

#: What may stay open while the process is started: its loaded providers and
#: the threads it knows; WSACleanup releases both.
_HELD_UNTIL_CLEANUP = ("providers", "threads")
_CLOCKS = (None, "virtual", "real")
_PROCESSES = "_wsp_processes"           # the item's attribute: the wsp_process fixtures
_REPORTED = "_wsp_leaks_reported"       # ... and those whose leak failed the test already


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--wsp-seed N``: the seed of every ``wsp_network`` (default 0)."""
    group = parser.getgroup("wsp", "wsp (the simulated Windows Sockets SPI)")
    group.addoption("--wsp-seed", dest="wsp_seed", type=int, default=0, metavar="N",
                    help="seed of the wsp_network fixture's Network (default 0); "
                         "@pytest.mark.wsp(seed=...) overrides it for one test")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``wsp`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers", "wsp(seed=None, clock=None): the wsp_network fixture's seed and clock "
                   "(None, 'virtual' or 'real') for this test")


def _network_parameters(request: pytest.FixtureRequest) -> tuple[int, str | None]:
    seed = request.config.getoption("wsp_seed")
    clock = None
    marker = request.node.get_closest_marker("wsp")
    if marker is None:
        return seed, clock
    unknown = sorted(set(marker.kwargs) - {"seed", "clock"})
    if marker.args or unknown:
        pytest.fail(f"@pytest.mark.wsp takes only the keywords seed and clock, not "
                    f"{', '.join([*map(repr, marker.args), *unknown])}", pytrace=False)
    seed = marker.kwargs.get("seed", seed)
    if seed is None:
        seed = request.config.getoption("wsp_seed")
    clock = marker.kwargs.get("clock")
    if not isinstance(seed, int) or isinstance(seed, bool):
        pytest.fail(f"@pytest.mark.wsp: seed must be an int, not {seed!r}", pytrace=False)
    if clock not in _CLOCKS:
        pytest.fail(f"@pytest.mark.wsp: clock must be None, 'virtual' or 'real', "
                    f"not {clock!r}", pytrace=False)
    return seed, clock


@pytest.fixture
def wsp_network(request: pytest.FixtureRequest) -> Any:
    """A new ``wsp.sim.Network`` (seed ``--wsp-seed``, or the ``wsp``
    marker's seed and clock)."""
    from .sim import Network
    seed, clock = _network_parameters(request)
    return Network(seed=seed, clock=clock)


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


@pytest.fixture
def wsp_process(request: pytest.FixtureRequest, wsp_network: Any) -> Iterator[Any]:
    """A started ``wsp.Process`` with a ``wsp.sim.Provider`` on
    ``wsp_network`` in its catalog; the test fails if it leaves anything
    open, and the teardown's ``WSACleanup`` must leave nothing."""
    from .sim import Provider
    from .spi import Process
    proc = Process()
    proc.catalog.install(Provider(wsp_network))
    proc.WSAStartup(0x0202)
    processes = getattr(request.node, _PROCESSES, None)
    if processes is None:
        processes = []
        setattr(request.node, _PROCESSES, processes)
    processes.append(proc)
    yield proc
    proc.WSACleanup()
    left = open_resources(proc)
    if left and proc not in getattr(request.node, _REPORTED, ()):
        pytest.fail(f"wsp_process: after WSACleanup the process still holds "
                    f"{_describe(left)}", pytrace=False)


def _left_open(proc: Any) -> dict[str, int]:
    return {name: count for name, count in open_resources(proc).items()
            if name not in _HELD_UNTIL_CLEANUP}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test body that passed: fail it if a ``wsp_process`` still
    holds sockets, events, ports or overlapped requests."""
    result = yield                       # a test that failed already: its own failure
    for proc in getattr(item, _PROCESSES, ()):
        left = _left_open(proc)
        if left:
            setattr(item, _REPORTED, [*getattr(item, _REPORTED, ()), proc])
            pytest.fail(f"wsp_process leaked: {_describe(left)} still open when the test "
                        f"ended (close them, or WSACleanup, before it returns)",
                        pytrace=False)
    return result


@pytest.fixture
def wsp_loop(wsp_network: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """A ``wsp.aio`` event loop on ``wsp_network``: run coroutines with
    ``wsp_loop.run_until_complete(...)``.  At teardown the tasks still
    pending are cancelled, async generators shut down and the loop closed
    (its process's ``WSACleanup``)."""
    from . import aio
    loop = aio.new_event_loop(wsp_network)
    yield loop
    if loop.is_closed():
        return
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
