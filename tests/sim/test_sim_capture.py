"""Packet capture of the simulated network (SPEC §7.2): ``net.capture(path,
hosts=None)`` and ``wsp sim --pcap``, checked by the real tool: every
capture is read back by tshark, which must find the TCP conversations the
program made, with the bytes it sent, the handshake first, FIN and RST where
they belong, and no expert error, retransmission, out-of-order, lost or
unseen segment, bad checksum or malformed packet."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc

import pytest

import wsp
from helpers import require_tool_unless_ci
from tsharkkit import expert, fields, payload_by_direction, tcp_flags, tshark
from wsp import (AF_INET, SD_SEND, SO_LINGER, SO_RCVBUF, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET,
                 Linger, Overlapped)
from wsp.sim import Capture, Network, Provider

SERVER, CLIENT = "10.0.0.1", "10.0.0.2"
PORT = 80
LATENCY = 0.005
CLOCKS = [None, "virtual"]
CLOCK_IDS = ["no-clock", "virtual-latency"]


SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04


# ---------------------------------------------------------------- programs
class Hosts:
    """A server process on SERVER and a client process on CLIENT, on one
    network (a virtual clock with a LATENCY link, or none)."""

    def __init__(self, clock=None, seed=0):
        self.net = Network(seed=seed, clock=clock)
        if clock is not None:
            self.net.set_link(CLIENT, SERVER, latency=LATENCY)
        self.sp, self.cp = wsp.Process(), wsp.Process()
        self.sp.catalog.install(Provider(self.net, host=SERVER))
        self.cp.catalog.install(Provider(self.net, host=CLIENT))
        self.sp.WSAStartup(0x0202)
        self.cp.WSAStartup(0x0202)
        self.listener = self.sp.WSASocket(AF_INET, SOCK_STREAM, 0)
        self.sp.bind(self.listener, (SERVER, PORT))
        self.sp.listen(self.listener, 16)

    def pair(self, rcvbuf=None):
        """A connected (client, server) pair; `rcvbuf`: the server's SO_RCVBUF
        (set on the listener, so the server has it from its SYN-ACK on)."""
        if rcvbuf is not None:
            self.sp.setsockopt(self.listener, SOL_SOCKET, SO_RCVBUF, rcvbuf)
        c = self.cp.WSASocket(AF_INET, SOCK_STREAM, 0)
        self.cp.connect(c, (SERVER, PORT))
        a, _ = self.sp.accept(self.listener)
        return c, a

    def settle(self):
        """With a clock, let what is still crossing the link arrive."""
        if self.net.clock is not None:
            self.net.advance(1.0)

    def finish(self):
        self.sp.closesocket(self.listener)
        self.settle()
        self.sp.WSACleanup()
        self.cp.WSACleanup()
        self.settle()


def recv_exactly(proc, s, n, chunk=65536):
    """Receive `n` bytes from `s` (blocking receives); returns them."""
    got = bytearray()
    buf = bytearray(chunk)
    while len(got) < n:
        _, k, _ = proc.WSARecv(s, [buf])
        assert k, "end of stream before the bytes"
        got += buf[:k]
    return bytes(got)


def recv_eof(proc, s):
    """The next receive on `s` ends the stream (0 bytes)."""
    assert proc.WSARecv(s, [bytearray(16)])[1] == 0


# ------------------------------------------------------------------- tests
@pytest.mark.parametrize("clock", CLOCKS, ids=CLOCK_IDS)
def test_graceful_close_is_a_clean_tcp_conversation(tmp_path, clock):
    path = tmp_path / "graceful.pcap"
    h = Hosts(clock)
    with h.net.capture(path) as cap:
        c, a = h.pair()
        request, reply = bytes(range(256)) * 40, b"r" * 3001      # 10240 B: 8 segments
        h.cp.WSASend(c, [request])
        assert recv_exactly(h.sp, a, len(request)) == request
        h.sp.WSASend(a, [reply])
        assert recv_exactly(h.cp, c, len(reply)) == reply
        h.cp.closesocket(c)                 # graceful: FIN after the data
        recv_eof(h.sp, a)
        h.sp.closesocket(a)
        h.finish()
    assert cap.closed and h.net.tap is None and cap.packets > 0
    totals = payload_by_direction(path)
    assert sorted(totals.values()) == sorted([len(request), len(reply)])
    by_source = {src.split(":")[0]: n for (_, src), n in totals.items()}
    assert by_source == {CLIENT: len(request), SERVER: len(reply)}
    flags = tcp_flags(path)
    assert [f & (SYN | ACK) for _, f, _ in flags[:3]] == [SYN, SYN | ACK, ACK]
    assert flags[0][0].startswith(CLIENT) and flags[1][0].startswith(SERVER)
    assert not any(f & RST for _, f, _ in flags)
    fins = [src.split(":")[0] for src, f, _ in flags if f & FIN]
    assert fins == [CLIENT, SERVER]
    assert flags[-1][1] == ACK                 # the last FIN's ACK ends it
    assert all(n <= 1460 for _, _, n in flags)
    expert(path)


@pytest.mark.parametrize("clock", CLOCKS, ids=CLOCK_IDS)
def test_hard_close_ends_with_an_rst_from_the_closer(tmp_path, clock):
    path = tmp_path / "hard.pcap"
    h = Hosts(clock)
    with h.net.capture(path):
        c, a = h.pair()
        h.cp.WSASend(c, [b"q" * 2000])
        recv_exactly(h.sp, a, 2000)
        h.cp.setsockopt(c, SOL_SOCKET, SO_LINGER, Linger(1, 0))
        h.cp.closesocket(c)                 # SO_LINGER 0: a reset
        h.settle()
        h.sp.closesocket(a)
        h.finish()
    flags = tcp_flags(path)
    rsts = [(src, f) for src, f, _ in flags if f & RST]
    assert len(rsts) == 1 and rsts[0][0].startswith(CLIENT)
    assert flags[-1][1] & RST                  # nothing after it
    assert not any(f & FIN for _, f, _ in flags)
    assert sum(payload_by_direction(path).values()) == 2000
    expert(path)


@pytest.mark.parametrize("clock", CLOCKS, ids=CLOCK_IDS)
def test_connection_reset_by_the_network_rsts_both_ends(tmp_path, clock):
    path = tmp_path / "reset.pcap"
    h = Hosts(clock)
    with h.net.capture(path):
        c, a = h.pair()
        h.cp.WSASend(c, [b"z" * 100])
        recv_exactly(h.sp, a, 100)
        (conn,) = h.net.connections()
        conn.reset()
        h.cp.closesocket(c)
        h.sp.closesocket(a)
        h.finish()
    rsts = sorted(src.split(":")[0] for src, f, _ in tcp_flags(path) if f & RST)
    assert rsts == sorted([CLIENT, SERVER])
    expert(path)


@pytest.mark.parametrize("clock", CLOCKS, ids=CLOCK_IDS)
def test_flow_control_shows_a_zero_window_then_window_updates(tmp_path, clock):
    path = tmp_path / "flow.pcap"
    h = Hosts(clock)
    total = 40_000
    with h.net.capture(path):
        c, a = h.pair(rcvbuf=8192)
        ov = Overlapped()
        h.cp.WSASend(c, [bytes(i % 251 for i in range(total))], 0, ov)   # all buffered at once
        h.settle()                          # the server does not read: its buffer fills
        got = bytearray()
        buf = bytearray(1000)
        while len(got) < total:             # now it reads, 1000 B at a time
            _, k, _ = h.sp.WSARecv(a, [buf])
            got += buf[:k]
        assert bytes(got) == bytes(i % 251 for i in range(total))
        h.cp.closesocket(c)
        recv_eof(h.sp, a)
        h.sp.closesocket(a)
        h.finish()
    rows = fields(path, "ip.src", "tcp.window_size", "tcp.len", "tcp.analysis.zero_window",
                  "tcp.analysis.window_update", display_filter="tcp")
    from_server = [r for r in rows if r[0] == SERVER]
    assert any(r[3] for r in from_server), "no zero window from the full receiver"
    assert any(r[4] for r in from_server), "no window update when it read"
    zero_at = next(i for i, r in enumerate(rows) if r[0] == SERVER and r[3])
    update_at = next(i for i, r in enumerate(rows) if r[0] == SERVER and r[4] and i > zero_at)
    assert zero_at < update_at
    # while the window was zero, the client sent nothing
    assert not any(r[0] == CLIENT and int(r[2]) for r in rows[zero_at + 1:update_at])
    totals = payload_by_direction(path)
    assert list(totals.values()) == [total]
    assert next(iter(totals))[1].startswith(CLIENT)
    text = expert(path)
    assert "zero window" in text.lower() or "zerowindow" in text.lower()


def test_latency_is_the_gap_between_a_segment_and_its_ack(tmp_path):
    path = tmp_path / "latency.pcap"
    h = Hosts("virtual")
    with h.net.capture(path):
        c, a = h.pair()
        h.cp.WSASend(c, [b"p" * 500])
        recv_exactly(h.sp, a, 500)
        h.cp.closesocket(c)
        recv_eof(h.sp, a)
        h.sp.closesocket(a)
        h.finish()
    rows = fields(path, "frame.time_relative", "ip.src", "tcp.flags", "tcp.len", "tcp.seq",
                  "tcp.ack", "tcp.nxtseq", display_filter="tcp")
    times = [float(r[0]) for r in rows]
    assert times == sorted(times)
    assert times[0] == 0.0                                     # SYN
    assert times[1] == pytest.approx(LATENCY)                  # SYN-ACK, one way later
    assert times[2] == pytest.approx(2 * LATENCY)              # ACK
    data = next(r for r in rows if r[1] == CLIENT and int(r[3]) == 500)
    ack = next(r for r in rows if r[1] == SERVER and r[5] == data[6])
    assert float(ack[0]) - float(data[0]) == pytest.approx(LATENCY)
    expert(path)


@pytest.mark.parametrize("clock", CLOCKS, ids=CLOCK_IDS)
def test_datagrams_are_udp_with_their_byte_totals(tmp_path, clock):
    path = tmp_path / "udp.pcap"
    h = Hosts(clock)
    with h.net.capture(path):
        sink = h.sp.WSASocket(AF_INET, SOCK_DGRAM, 0)
        h.sp.bind(sink, (SERVER, 9))
        source = h.cp.WSASocket(AF_INET, SOCK_DGRAM, 0)
        sizes = [1, 100, 1472, 9000, 0, 33]
        for n in sizes:
            h.cp.WSASendTo(source, [b"d" * n], 0, (SERVER, 9))
        h.settle()
        buf = bytearray(10000)
        got = [h.sp.WSARecvFrom(sink, [buf])[1] for _ in sizes]
        assert got == sizes
        h.finish()
    rows = fields(path, "ip.src", "ip.dst", "udp.dstport", "udp.length", display_filter="udp")
    assert [int(r[3]) - 8 for r in rows] == sizes
    assert {(r[0], r[1], r[2]) for r in rows} == {(CLIENT, SERVER, "9")}
    conv = tshark("-r", str(path), "-q", "-z", "conv,udp")
    assert f"{CLIENT}:" in conv and f"{SERVER}:9" in conv
    expert(path)


def test_hosts_keeps_only_the_packets_of_those_hosts(tmp_path):
    path = tmp_path / "hosts.pcap"
    net = Network()
    procs = []
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        proc = wsp.Process()
        proc.catalog.install(Provider(net, host=host))
        proc.WSAStartup(0x0202)
        procs.append(proc)
    server = procs[0]
    lst = server.WSASocket(AF_INET, SOCK_STREAM, 0)
    server.bind(lst, ("10.0.0.1", PORT))
    server.listen(lst, 4)
    with net.capture(path, hosts=["10.0.0.3"]) as cap:
        for proc in procs[1:]:
            c = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
            proc.connect(c, ("10.0.0.1", PORT))
            a, _ = server.accept(lst)
            proc.WSASend(c, [b"h" * 10])
            recv_exactly(server, a, 10)
            proc.closesocket(c)
            server.closesocket(a)
    assert cap.packets > 0
    pairs = {(s, d) for s, d in fields(path, "ip.src", "ip.dst")}
    assert pairs == {("10.0.0.3", "10.0.0.1"), ("10.0.0.1", "10.0.0.3")}
    for proc in procs:
        proc.WSACleanup()


def test_connectex_and_acceptex_connections_are_captured(tmp_path):
    from wsp.constants import (SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_ACCEPTEX,
                               WSAID_CONNECTEX)
    path = tmp_path / "ex.pcap"
    h = Hosts()
    with h.net.capture(path):
        acceptex = h.sp.WSAIoctl(h.listener, SIO_GET_EXTENSION_FUNCTION_POINTER,
                                 WSAID_ACCEPTEX)
        accept_s = h.sp.WSASocket(AF_INET, SOCK_STREAM, 0)
        area = bytearray(10 + 64)
        ov_a = Overlapped()
        acceptex(h.listener, accept_s, area, 10, 32, 32, ov_a)
        c = h.cp.WSASocket(AF_INET, SOCK_STREAM, 0)
        h.cp.bind(c, (CLIENT, 0))
        connectex = h.cp.WSAIoctl(c, SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_CONNECTEX)
        connectex(c, (SERVER, PORT), b"first data", Overlapped())
        assert bytes(area[:10]) == b"first data"
        h.cp.closesocket(c)
        h.sp.closesocket(accept_s)
        h.finish()
    flags = tcp_flags(path)
    assert [f & (SYN | ACK) for _, f, _ in flags[:3]] == [SYN, SYN | ACK, ACK]
    assert sum(payload_by_direction(path).values()) == 10
    expert(path)


def test_wsp_sim_pcap_captures_the_run(tmp_path):
    require_tool_unless_ci("tshark")
    for extra in ([], ["--latency", "2ms"],
                  ["--latency", "2ms", "--jitter", "1ms", "--bandwidth", "1MB/s", "--loss", "5%",
                   "--lsp", "trace,fault"]):
        path = tmp_path / f"sim{len(extra)}.pcap"            # (a name per variant)
        connections = 6
        done = subprocess.run(
            [sys.executable, "-m", "wsp", "sim", "--connections", str(connections),
             "--messages", "20", "--size", "700", "--seed", "3", "--pcap", str(path),
             "--json", *extra],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.returncode == 0, done.stderr + done.stdout
        import json
        report = json.loads(done.stdout)
        assert report["parameters"]["pcap"] == str(path)
        conv = tshark("-r", str(path), "-q", "-z", "conv,tcp")
        lines = [line for line in conv.splitlines() if "<->" in line]
        assert len(lines) == connections, conv
        streams = {stream for stream, _ in payload_by_direction(path)}
        assert len(streams) == connections
        flags = tcp_flags(path)
        assert sum(1 for _, f, _ in flags if f & SYN and not f & ACK) == connections
        if "--loss" in extra:
            # one probe datagram per message; the lost ones never reach the
            # server's host, so they are not in the file (a late one that
            # reaches a closed sink is)
            udp = fields(path, "udp.length", display_filter="udp")
            d = report["datagrams"]
            assert d["received"] <= len(udp) < d["sent"]
        expert(path)


# -------------------------------------------------------- the API itself
def test_capture_api_errors_and_one_at_a_time(tmp_path):
    net = Network()
    with pytest.raises(OSError):
        net.capture(tmp_path / "no such dir" / "x.pcap")
    assert net.tap is None
    with pytest.raises(TypeError, match="path"):
        net.capture(42)
    with pytest.raises(TypeError, match="hosts"):
        net.capture(tmp_path / "a.pcap", hosts=42)
    with pytest.raises(TypeError, match="hosts"):
        net.capture(tmp_path / "a.pcap", hosts=[1])
    with pytest.raises(ValueError, match="hosts"):
        net.capture(tmp_path / "a.pcap", hosts=["not-an-address"])
    with pytest.raises(ValueError, match="hosts"):
        net.capture(tmp_path / "a.pcap", hosts=[])
    assert net.tap is None
    cap = net.capture(tmp_path / "a.pcap", hosts="127.0.0.1")
    assert isinstance(cap, Capture) and net.tap is cap and not cap.closed
    with pytest.raises(ValueError, match="already running"):
        net.capture(tmp_path / "b.pcap")
    cap.close()
    cap.close()                                   # again: nothing
    assert net.tap is None and cap.closed
    assert os.path.getsize(tmp_path / "a.pcap") == 24     # the pcap header only
    with net.capture(tmp_path / "b.pcap") as again:
        assert net.tap is again
    assert net.tap is None


def _echo(net, messages, size=1000):
    """`messages` ping-pong messages over one connection, then a graceful close."""
    proc = wsp.Process()
    proc.catalog.install(Provider(net))
    proc.WSAStartup(0x0202)
    lst = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    proc.bind(lst, ("127.0.0.1", 0))
    proc.listen(lst, 1)
    c = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    proc.connect(c, proc.getsockname(lst))
    a, _ = proc.accept(lst)
    payload = b"m" * size
    buf = bytearray(size)
    for _ in range(messages):
        proc.WSASend(c, [payload])
        proc.WSARecv(a, [buf])
        proc.WSASend(a, [buf])
        proc.WSARecv(c, [buf])
    proc.shutdown(c, SD_SEND)
    proc.closesocket(c)
    proc.closesocket(a)
    proc.closesocket(lst)
    proc.WSACleanup()


def test_a_capture_holds_no_traffic_in_memory(tmp_path):
    peaks, sizes = [], []
    for n in (200, 2000):                          # ten times the traffic
        net = Network()
        path = tmp_path / f"mem{n}.pcap"
        gc.collect()
        tracemalloc.start()
        try:
            with net.capture(path):
                _echo(net, n)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        peaks.append(peak)
        sizes.append(os.path.getsize(path))
    assert sizes[1] > 9 * sizes[0]                 # the file took the traffic...
    assert sizes[1] > 4_000_000
    # ... the memory did not: not even a tenth of the extra traffic
    assert peaks[1] - peaks[0] < (sizes[1] - sizes[0]) / 10, (peaks, sizes)
    assert peaks[1] < 2 * peaks[0] + 256 * 1024, peaks


def test_a_failed_write_stops_the_capture_not_the_network(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    net = Network()
    proc = wsp.Process()
    proc.catalog.install(Provider(net))
    proc.WSAStartup(0x0202)
    cap = net.capture("/dev/full")              # every write: ENOSPC
    lst = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    proc.bind(lst, ("127.0.0.1", 0))
    proc.listen(lst, 1)
    c = proc.WSASocket(AF_INET, SOCK_STREAM, 0)
    proc.connect(c, proc.getsockname(lst))
    a, _ = proc.accept(lst)
    payload = b"f" * 200_000                     # more than the file's buffer holds
    proc.WSASend(c, [payload], 0, Overlapped())
    assert recv_exactly(proc, a, len(payload)) == payload
    assert isinstance(cap.error, OSError) and cap.closed and net.tap is None
    cap.close()
    proc.WSACleanup()


@pytest.mark.parametrize("clock", CLOCKS, ids=CLOCK_IDS)
def test_the_fault_layers_reset_rsts_both_ends(tmp_path, clock):
    from wsp.errors import WSAECONNRESET, WinsockError
    from wsp.lsp import FaultProvider
    path = tmp_path / "fault.pcap"
    net = Network(clock=clock)
    if clock is not None:
        net.set_link(CLIENT, SERVER, latency=LATENCY)
    sp, cp = wsp.Process(), wsp.Process()
    sp.catalog.install(Provider(net, host=SERVER))
    fault = FaultProvider(Provider(net, host=CLIENT))
    cp.catalog.install(fault)
    sp.WSAStartup(0x0202)
    cp.WSAStartup(0x0202)
    with net.capture(path):
        lst = sp.WSASocket(AF_INET, SOCK_STREAM, 0)
        sp.bind(lst, (SERVER, PORT))
        sp.listen(lst, 4)
        c = cp.WSASocket(AF_INET, SOCK_STREAM, 0)
        cp.connect(c, (SERVER, PORT))
        a, _ = sp.accept(lst)
        cp.WSASend(c, [b"before"])
        recv_exactly(sp, a, 6)
        fault.add_rule("WSPSend", "reset", count=1)
        with pytest.raises(WinsockError) as excinfo:
            cp.WSASend(c, [b"never"])
        assert excinfo.value.winerror == WSAECONNRESET
        if clock is not None:
            net.advance(1.0)
        for proc, s in ((cp, c), (sp, a), (sp, lst)):
            proc.closesocket(s)
        sp.WSACleanup()
        cp.WSACleanup()
    flags = tcp_flags(path)
    rsts = sorted(src.split(":")[0] for src, f, _ in flags if f & RST)
    assert rsts == sorted([CLIENT, SERVER])
    assert sum(n for _, _, n in flags) == 6               # "never" never left
    expert(path)


def test_require_tool_unless_ci_fails_on_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool_unless_ci("no-such-tool-wsp-test")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_tool_unless_ci("no-such-tool-wsp-test")
