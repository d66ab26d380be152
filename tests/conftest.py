"""One test-suite, both cores: every test that takes the `core` fixture runs
against the compiled core (id ``cython``) and its pure-Python twin (id
``python``).

The compiled core is only skipped when the build was asked to leave it out
(``WSP_NO_EXTENSIONS`` set); on a normal install a missing extension is a
failure, not a skip.
"""
from __future__ import annotations

import importlib
import os

import pytest

NO_EXTENSIONS = bool(os.environ.get("WSP_NO_EXTENSIONS"))


def _load(name: str):
    if name == "cython" and NO_EXTENSIONS:
        pytest.skip("WSP_NO_EXTENSIONS is set: the compiled core is not in use")
    return importlib.import_module("wsp._core" if name == "cython" else "wsp._core_py")


@pytest.fixture(params=["cython", "python"])
def core(request):
    """The core module under test: wsp._core or wsp._core_py."""
    return _load(request.param)


@pytest.fixture
def both_cores():
    """(compiled, pure) for tests that compare the two directly."""
    return _load("cython"), _load("python")


# ------------------------------------------------------------ SPI fixtures
@pytest.fixture
def proc():
    """A fresh Process; whatever a test leaves behind is torn down after it."""
    from wsp import Process
    p = Process()
    yield p
    p.terminate()


@pytest.fixture
def provider(proc):
    """A started bare ServiceProvider on `proc`."""
    from wsp import ServiceProvider
    prov = ServiceProvider()
    prov.WSPStartup(0x0202, None, proc.upcalls)
    return prov


@pytest.fixture
def sock(proc, provider):
    """A socket handle made with WPUCreateSocketHandle."""
    return proc.upcalls.WPUCreateSocketHandle(1, {"name": "test socket"})


# --------------------------------------------- simulated network, stacked
# The behavioural tests over wsp.sim -- every test in tests/sim/ (the sim and
# seed tests) that uses the `sim`, `host` or `peer` fixture or asks for
# `layers` -- run on stacks of 0, 1 and 2 wsp.lsp.LayeredProvider layers over
# the wsp.sim.Provider: ids ``base``, ``1layer``, ``2layers``.  `host` and
# `peer` share one depth.  Elsewhere these fixtures are the bare provider
# (depth 0) unless the test parametrises `layers` itself.

#: the folder whose tests run over every stack depth
STACKED_FOLDER = "sim"


def pytest_generate_tests(metafunc):
    if "layers" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "layers" in ([n.strip() for n in names.split(",")] if isinstance(names, str)
                        else names):
            return                       # the test picks its own depths
    if metafunc.definition.path.parent.name != STACKED_FOLDER:
        return
    from simkit import DEPTH_IDS, DEPTHS
    metafunc.parametrize("layers", [pytest.param(d, id=DEPTH_IDS[d]) for d in DEPTHS],
                         indirect=True)


@pytest.fixture
def layers(request):
    """How many LayeredProviders sit over the wsp.sim.Provider (0: none)."""
    return getattr(request, "param", 0)


@pytest.fixture
def sim(layers):
    """A Process with a started stack over wsp.sim.Provider (simkit.Sim);
    torn down and checked for leaks afterwards."""
    from simkit import Sim
    s = Sim(layers=layers)
    yield s
    s.close()


@pytest.fixture
def net():
    """A fresh simulated network."""
    from wsp.sim import Network
    return Network(seed=0)


@pytest.fixture
def host(net, layers):
    """A process with a started stack over a sim provider on `net`;
    terminated afterwards."""
    from simkit import Sim
    h = Sim(net, layers=layers)
    yield h
    h.proc.terminate()


@pytest.fixture
def peer(net, layers):
    """Another process on the same network (a stack as deep as `host`'s),
    to watch `host` from outside."""
    from simkit import Sim
    h = Sim(net, layers=layers)
    yield h
    h.proc.terminate()
