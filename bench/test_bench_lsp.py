"""What a layered provider costs: the per-operation overhead of an empty
pass-through ``wsp.lsp.LayeredProvider``, as a ratio to the base provider
alone (``wsp.sim.Provider``), in the same run.

groups (reference: the base provider, no layer):

* ``layer-call`` -- one non-overlapped call, ``WSPGetSockOpt(s, SOL_SOCKET,
  SO_RCVBUF)``: the bare cost of a hop (look the layer's handle up, call the
  lower provider);
* ``layer-echo`` -- the echo of bench/echo_apps.py (8 connections,
  ping-pong, overlapped WSPSend/WSPRecv drained from one completion port)
  with 0, 1 and 2 layers: a hop plus the layer's own overlapped request and
  the relay of each completion.  One operation = one message (four
  overlapped operations and four dequeues).
"""
from __future__ import annotations

import pytest

from echo_apps import WspEcho  # bench/echo_apps.py
from harness import REFERENCES, Reference, measure, tag  # bench/harness.py
import wsp
from wsp import AF_INET, SO_RCVBUF, SOCK_STREAM, SOL_SOCKET, sim
from wsp.lsp import LayeredProvider
from wsp.sim.socket import DEFAULT_BUFFER

N = 1000                      # calls per round, layer-call
ECHO_CONNS, ECHO_MSGS = 8, 25  # messages per round, layer-echo: 8 x 25
DEPTHS = [0, 1, 2]


def _stack(layers: int):
    net = sim.Network(seed=0)
    proc = wsp.Process()
    prov = sim.Provider(net)
    for _ in range(layers):
        prov = LayeredProvider(prov)
    prov.WSPStartup(0x0202, None, proc.upcalls)
    return proc, prov


def getsockopt_each(get, s, rng):
    for _ in rng:
        v = get(s, SOL_SOCKET, SO_RCVBUF)
    return v


class _CallBench:
    """A started stack of `layers` layers with one stream socket."""

    def __init__(self, layers: int) -> None:
        self.proc, self.prov = _stack(layers)
        self.s = self.prov.WSPSocket(AF_INET, SOCK_STREAM, 0)

    def args(self):
        return (self.prov.WSPGetSockOpt, self.s, range(N))

    def close(self) -> dict[str, int]:
        self.prov.WSPCloseSocket(self.s)
        self.prov.WSPCleanup()
        return self.proc.resources()


def _call_reference():
    bench = _CallBench(0)
    return Reference("base provider", N, getsockopt_each, bench.args)


def _echo_reference():
    echo = WspEcho(ECHO_CONNS, 1, batch=1, layers=0)
    return Reference("base provider", ECHO_CONNS * ECHO_MSGS, echo.run_round,
                     lambda: (ECHO_MSGS,))


REFERENCES["layer-call"] = _call_reference
REFERENCES["layer-echo"] = _echo_reference


def _name(layers: int) -> str:
    return "base provider" if layers == 0 else f"{layers} empty layer{'s' * (layers > 1)}"


@pytest.mark.parametrize("layers", DEPTHS)
def test_layer_call(benchmark, layers):
    benchmark.group = "layer-call"
    bench = _CallBench(layers)
    tag(benchmark, _name(layers), "reference" if layers == 0 else "subject", N, "call",
        f"WSPGetSockOpt(s, SOL_SOCKET, SO_RCVBUF) through {layers} LayeredProvider(s)")
    try:
        value = measure(benchmark, "layer-call", getsockopt_each, args=bench.args())
    finally:
        leftovers = bench.close()
    assert value == DEFAULT_BUFFER
    assert all(v == 0 for v in leftovers.values()), leftovers


@pytest.mark.parametrize("layers", DEPTHS)
def test_layer_echo(benchmark, layers):
    benchmark.group = "layer-echo"
    echo = WspEcho(ECHO_CONNS, 1, batch=1, layers=layers)
    n = 10 if benchmark.disabled else ECHO_MSGS
    tag(benchmark, _name(layers), "reference" if layers == 0 else "subject",
        ECHO_CONNS * n, "message",
        f"{ECHO_CONNS} conn ping-pong x {n} msgs of 64 B, overlapped + 1 port, "
        f"through {layers} LayeredProvider(s)")
    rounds = 0

    def one_round(k):
        nonlocal rounds
        rounds += 1
        return echo.run_round(k)

    try:
        done = measure(benchmark, "layer-echo", one_round, args=(n,))
    except BaseException:
        echo.close(strict=False)
        raise
    assert done == ECHO_CONNS * n
    assert all(st.sent == st.done == rounds * n for st in echo.clients)
    leftovers = echo.close()
    assert all(v == 0 for v in leftovers.values()), leftovers
