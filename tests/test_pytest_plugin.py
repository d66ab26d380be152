"""wsp's pytest plugin (SPEC §12) and wsp.testing.connected_pairs: small test
files run by pytester with ``-p wsp.pytest_plugin``, their outcomes checked."""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

import wsp
from wsp.sim import Network, Provider
from wsp.testing import connected_pairs, open_resources

pytest_plugins = ["pytester"]

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture(autouse=True)
def _plugins_by_hand_only(monkeypatch):
    """Where wsp is installed its entry point would load the plugin in the
    inner runs too, and their -p wsp.pytest_plugin would then register the
    module a second time: the inner runs load plugins by -p only."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def run(pytester, source, *args):
    pytester.makepyfile(source)
    # (hypothesis's and pytest-benchmark's plugins take seconds to start: not here)
    return pytester.runpytest_inprocess("-p", "wsp.pytest_plugin", "-p", "no:cacheprovider",
                                        "-p", "no:hypothesispytest", "-p", "no:benchmark",
                                        "--strict-markers", *args)


def test_the_entry_point_names_the_plugin():
    text = PYPROJECT.read_text(encoding="utf-8")
    section = text.split("[project.entry-points.pytest11]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^wsp = "wsp.pytest_plugin"$', section, re.M)


def test_the_fixtures_work(pytester):
    result = run(pytester, """
        import wsp, wsp.sim
        from wsp import AF_INET, SOCK_STREAM

        def test_network(wsp_network):
            assert isinstance(wsp_network, wsp.sim.Network)
            assert wsp_network.seed == 0 and wsp_network.clock is None

        def test_process(wsp_process, wsp_network):
            s = wsp_process.WSASocket(AF_INET, SOCK_STREAM, 0)
            wsp_process.bind(s, ("127.0.0.1", 0))
            wsp_process.closesocket(s)

        def test_one_network_per_test(wsp_network):
            assert wsp_network.connections() == []
    """)
    result.assert_outcomes(passed=3)


def test_a_leaking_test_fails_naming_the_leak(pytester):
    result = run(pytester, """
        from wsp import AF_INET, SOCK_STREAM

        def test_leaks(wsp_process):
            wsp_process.WSASocket(AF_INET, SOCK_STREAM, 0)
            wsp_process.WSASocket(AF_INET, SOCK_STREAM, 0)
            wsp_process.WSACreateEvent()

        def test_clean(wsp_process):
            wsp_process.closesocket(wsp_process.WSASocket(AF_INET, SOCK_STREAM, 0))

        def test_fails_of_its_own(wsp_process):
            wsp_process.WSASocket(AF_INET, SOCK_STREAM, 0)
            assert 1 == 2
    """)
    # the leak fails the test itself (not its teardown), once
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*_ test_leaks _*",
                                 "wsp_process leaked: sockets 2, events 1 still open*"])
    out = result.stdout.str()
    assert "assert 1 == 2" in out
    # a test that failed of its own is reported for that, not for the leak
    assert "leaked: sockets 1" not in out


def test_the_marker_sets_seed_and_clock(pytester):
    result = run(pytester, """
        import pytest

        @pytest.mark.wsp(seed=42, clock="virtual")
        def test_marked(wsp_network):
            assert wsp_network.seed == 42 and wsp_network.clock is not None
            assert wsp_network.time() == 0.0

        @pytest.mark.wsp(clock="real")
        def test_real_clock(wsp_network):
            assert wsp_network.seed == 0 and wsp_network.clock is not None

        def test_unmarked(wsp_network):
            assert wsp_network.seed == 0 and wsp_network.clock is None

        @pytest.mark.wsp(clock="sundial")
        def test_bad_clock(wsp_network):
            pass

        @pytest.mark.wsp(speed=3)
        def test_bad_keyword(wsp_network):
            pass
    """)
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*clock must be None, 'virtual' or 'real', not 'sundial'*",
                                 "*takes only the keywords seed and clock, not speed*"])


def test_the_marker_is_registered(pytester):
    pytester.makepyfile("")
    result = pytester.runpytest_inprocess("-p", "wsp.pytest_plugin", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.wsp(seed=None, clock=None):*"])


def test_the_seed_option(pytester):
    source = """
        import pytest

        def test_seed(wsp_network):
            assert wsp_network.seed == 7

        @pytest.mark.wsp(seed=3)
        def test_marker_wins(wsp_network):
            assert wsp_network.seed == 3
    """
    run(pytester, source, "--wsp-seed", "7").assert_outcomes(passed=2)
    run(pytester, source).assert_outcomes(passed=1, failed=1)      # default 0


def test_wsp_loop_runs_a_coroutine_and_is_closed(pytester):
    result = run(pytester, """
        import asyncio
        import pytest
        import wsp.aio

        LOOPS = []

        async def echo_once():
            async def serve(reader, writer):
                writer.write(await reader.read(100))
                await writer.drain()
                writer.close()
            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            data = await reader.read(100)
            writer.close()
            server.close()
            await server.wait_closed()
            return data

        def test_loop(wsp_loop):
            LOOPS.append(wsp_loop)
            assert isinstance(wsp_loop, wsp.aio.WspEventLoop)
            assert wsp_loop.run_until_complete(echo_once()) == b"ping"

        @pytest.mark.wsp(clock="virtual")
        def test_virtual_time(wsp_loop):
            async def nap():
                await asyncio.sleep(3600)
                return wsp_loop.time()
            assert wsp_loop.run_until_complete(nap()) >= 3600

        def test_left_a_task(wsp_loop):
            LOOPS.append(wsp_loop)
            wsp_loop.create_task(asyncio.sleep(10))       # cancelled at teardown

        def test_closed_afterwards():
            assert len(LOOPS) == 2 and all(loop.is_closed() for loop in LOOPS)
    """)
    result.assert_outcomes(passed=4)


def test_connected_pairs_in_a_test_file(pytester):
    result = run(pytester, """
        from wsp.testing import connected_pairs, open_resources

        def test_pairs(wsp_process):
            pairs = connected_pairs(wsp_process, 1000)
            assert len(pairs) == 1000
            c, s = pairs[-1]
            wsp_process.WSASend(c, [b"x"])
            buf = bytearray(1)
            wsp_process.WSARecv(s, [buf])
            assert buf == b"x"
            for c, s in pairs:
                wsp_process.closesocket(c)
                wsp_process.closesocket(s)
            assert "sockets" not in open_resources(wsp_process)
    """)
    result.assert_outcomes(passed=1)


# ------------------------------------------------ connected_pairs, directly
@pytest.fixture(params=[None, "virtual"])
def started(request):
    proc = wsp.Process()
    net = Network(seed=1, clock=request.param)
    proc.catalog.install(Provider(net))
    proc.WSAStartup(0x0202)
    yield proc, net
    proc.WSACleanup()
    assert open_resources(proc) == {} and net.connections() == []


def test_connected_pairs_1000_quickly_and_nothing_left(started):
    proc, net = started
    began = time.perf_counter()
    pairs = connected_pairs(proc, 1000)
    assert time.perf_counter() - began < 5.0          # about 0.5 s with the pure core
    assert len(pairs) == 1000 and len({s for pair in pairs for s in pair}) == 2000
    assert open_resources(proc) == {"sockets": 2000, "providers": 1}
    for client, server in pairs[:: 97]:               # each pair is one connection
        assert proc.getpeername(client) == proc.getsockname(server)
        assert proc.getpeername(server) == proc.getsockname(client)
    assert len(net.connections()) == 1000
    for client, server in pairs:
        proc.closesocket(client)
        proc.closesocket(server)
    assert open_resources(proc) == {"providers": 1}


def test_connected_pairs_arguments(started):
    proc, _ = started
    assert connected_pairs(proc, 0) == []
    with pytest.raises(ValueError, match="negative"):
        connected_pairs(proc, -1)
    with pytest.raises(TypeError, match="int"):
        connected_pairs(proc, 2.0)
    with pytest.raises(ValueError, match="backlog"):
        connected_pairs(proc, 2, backlog=0)
    pairs = connected_pairs(proc, 5, backlog=2)       # three batches
    assert len(pairs) == 5
    for pair in pairs:
        for s in pair:
            proc.closesocket(s)
    assert open_resources(proc) == {"providers": 1}


def test_connected_pairs_closes_what_it_made_when_it_fails(started, monkeypatch):
    proc, _ = started
    accept, accepted = proc.accept, []

    def accept_twice(s):
        if len(accepted) == 2:
            raise wsp.WinsockError(wsp.WSAENOBUFS, "accept")
        accepted.append(accept(s))
        return accepted[-1]

    monkeypatch.setattr(proc, "accept", accept_twice)
    with pytest.raises(wsp.WinsockError) as caught:
        connected_pairs(proc, 3)
    assert caught.value.winerror == wsp.WSAENOBUFS
    assert "sockets" not in open_resources(proc)      # 3 clients, 2 servers, the listener


def test_the_plugin_leaves_the_suites_own_fixtures_alone():
    """When wsp is installed the plugin is active in this suite too: none of
    its names may shadow tests/conftest.py's."""
    import conftest
    import wsp.pytest_plugin as plugin
    ours = {name for name in dir(conftest) if not name.startswith("_")}
    assert not ours & {"wsp_network", "wsp_process", "wsp_loop"}
    assert set(plugin.__all__) == {"wsp_network", "wsp_process", "wsp_loop"}
    assert "pytest_addoption" not in vars(conftest) or "--wsp-seed" not in (
        Path(conftest.__file__).read_text(encoding="utf-8"))
    assert sys.modules["wsp.pytest_plugin"] is plugin


def test_the_readme_pytest_example_passes(pytester):
    """The README's ```py example is a test file for the plugin: it passes."""
    readme = PYPROJECT.with_name("README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```py\n(.*?)```", readme, re.S)
    run(pytester, example).assert_outcomes(passed=2)


def test_the_guide_example_test_file_passes(pytester):
    """docs/guide/testing.rst's example test file passes under the plugin."""
    guide = PYPROJECT.with_name("docs") / "guide" / "testing.rst"
    text = guide.read_text(encoding="utf-8").split("An example test file", 1)[1]
    block = text.split(".. code-block:: python\n\n", 1)[1].split("\nRun it with", 1)[0]
    source = "\n".join(line[3:] for line in block.splitlines())
    run(pytester, source, "--wsp-seed", "3").assert_outcomes(passed=4)
