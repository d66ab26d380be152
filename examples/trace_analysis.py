"""Trace an exchange and analyse the trace: ``wsp.lsp.TracingProvider``
records every WSP call of a client and server, ``to_jsonl`` writes the
records as JSON lines, and ``wsp.lsp.summarize`` reads the file back and
gives, per socket, the bytes sent and received, the calls and the errors.

The exchange: a client connects to a port nobody listens on (refused: an
error in the trace), then to the server, sends three requests of different
sizes and reads the echo of each.  Run it with
``python examples/trace_analysis.py [trace.jsonl]`` (without a path the trace
goes to a temporary directory); it prints a table of the sockets.
"""
from __future__ import annotations

import os
import sys
import tempfile

import wsp
import wsp.lsp
import wsp.sim
from wsp import AF_INET, SOCK_STREAM

REQUESTS = [b"a" * 10, b"b" * 200, b"c" * 3000]


def exchange(proc: wsp.Process) -> tuple[int, int]:
    """Run the exchange on `proc` (WSAStarted, the catalog set up); returns
    the client's socket and the server's accepted one."""
    listener = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    proc.bind(listener, ("127.0.0.1", 7))
    proc.listen(listener, 4)
    refused = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    try:
        proc.connect(refused, ("127.0.0.1", 9))               # nobody listens there
    except ConnectionRefusedError as e:
        assert isinstance(e, wsp.WinsockError) and e.winerror == wsp.WSAECONNREFUSED
    else:
        raise AssertionError("the connect to port 9 should have been refused")
    proc.closesocket(refused)
    client = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    proc.connect(client, ("127.0.0.1", 7))
    server, _ = proc.accept(listener)
    buf = bytearray(4096)
    for request in REQUESTS:
        proc.WSASend(client, [request])
        got = proc.WSARecv(server, [buf])[1]                   # all of it: no clock, no loss
        proc.WSASend(server, [buf[:got]])                      # the echo
        assert proc.WSARecv(client, [buf])[1] == len(request)
    proc.closesocket(listener)
    return client, server


def report(summary: wsp.lsp.TraceSummary) -> str:
    """A table of the summary's sockets: handle, addresses, bytes, errors."""
    lines = [f"{'socket':>10}  {'local':<16} {'peer':<16} {'sent':>6} {'received':>8}  errors"]
    for handle, sock in summary.sockets.items():
        local = "%s:%d" % sock.address if sock.address else "-"
        peer = ", ".join("%s:%d" % p for p in sock.peers) or "-"
        errors = ", ".join(f"{name} x{n}" for name, n in sock.errors.items()) or "-"
        lines.append(f"{handle if handle is not None else '-':>10}  {local:<16} {peer:<16} "
                     f"{sock.sent:>6} {sock.received:>8}  {errors}")
    lines.append(f"{'total':>10}  {'':<16} {'':<16} {summary.sent:>6} {summary.received:>8}  "
                 f"{sum(summary.errors.values())} error(s)")
    return "\n".join(lines)


def analyse(path: str) -> wsp.lsp.TraceSummary:
    """Trace the exchange into `path` (JSON lines) and summarise the file."""
    proc = wsp.Process()
    tracer = wsp.lsp.TracingProvider(wsp.sim.Provider(wsp.sim.Network()))
    proc.catalog.install(tracer)
    proc.WSAStartup(0x0202)
    client, server = exchange(proc)
    written = tracer.to_jsonl(path)
    assert written == len(tracer.records)
    summary = wsp.lsp.summarize(path)                # what `wsp trace path` prints
    total = sum(len(r) for r in REQUESTS)
    assert summary.socket(client).sent == summary.socket(server).received == total
    assert summary.socket(server).sent == summary.socket(client).received == total
    assert summary.errors == {"WSAECONNREFUSED": 1}
    proc.WSACleanup()
    assert all(n == 0 for n in proc.resources().values())
    return summary


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        summary = analyse(argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            summary = analyse(os.path.join(tmp, "trace.jsonl"))
    print(f"{summary.records} records over {summary.duration} {summary.time_unit}")
    print(report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
