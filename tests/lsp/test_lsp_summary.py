"""wsp.lsp.summarize: a trace's bytes, calls, errors, call-to-completion
times and addresses, per socket, from records, dicts, a tracer or a
JSON-lines file."""
from __future__ import annotations

import itertools
import json
import pathlib

import pytest

import wsp
from lspkit import Stack
from wsp import Overlapped, WinsockError
from wsp.errors import WSA_IO_PENDING, WSAECONNRESET, WSAENOTSOCK
from wsp.lsp import (FaultProvider, SocketSummary, TraceFormatError, TraceRecord, TraceSummary,
                     TracingProvider, summarize)


def ticking():
    """A tracer clock that moves 10 ns per record: waits come out exact."""
    ticks = itertools.count(0, 10)
    return lambda: next(ticks)


def known_exchange():
    """A tracer over a fault layer, with a clock of 10 ns a record, after a
    known exchange; returns (tracer, client, accepted, listener, the
    listener's address, the client's)."""
    with Stack(lambda base: TracingProvider(FaultProvider(base), clock=ticking())) as st:
        top = st.top
        c, a, lst = st.pair()
        st.port(a, c)
        addr = top.WSPGetPeerName(c)
        client_addr = top.WSPGetSockName(c)
        top.WSPSend(c, [b"x" * 37])                                      # plain: 37 sent
        assert top.WSPRecv(a, [bytearray(64)], 0, Overlapped()) == (0, 37, 0)   # done at once
        assert top.WSPRecv(a, [bytearray(64)], 0, Overlapped())[0] == WSA_IO_PENDING
        assert top.WSPSend(c, [b"y" * 5], 0, Overlapped()) == (0, 5)    # completes both
        top.lower.add_rule("WSPRecv", "fail", code=WSAECONNRESET, count=1)
        with pytest.raises(WinsockError) as exc:
            top.WSPRecv(a, [bytearray(4)])                              # the injected reset
        assert exc.value.winerror == WSAECONNRESET
        with pytest.raises(WinsockError):
            top.WSPGetPeerName(999)
    # (the final WSPCleanup resets the sockets still open: no close calls)
    return top, c, a, lst, addr, client_addr


def test_the_numbers_of_a_known_exchange():
    top, c, a, lst, addr, client_addr = known_exchange()
    summary = summarize(top.records)
    assert isinstance(summary, TraceSummary)
    assert list(summary.sockets) == [None, lst, c, a, 999]           # in order of appearance
    client, server, listener = summary.socket(c), summary.socket(a), summary.socket(lst)
    assert isinstance(client, SocketSummary)
    # each transfer once: 37 + 5 each way, though the receive of the 37 and
    # the overlapped send each made a call record and a completion record
    assert (client.sent, client.received) == (42, 0)
    assert (server.sent, server.received) == (0, 42)
    assert (summary.sent, summary.received) == (42, 42)
    assert client.calls == {"WSPSocket": 1, "WSPConnect": 1, "WSPGetPeerName": 1,
                            "WSPGetSockName": 1, "WSPSend": 2}
    assert server.calls == {"WSPRecv": 3}
    assert listener.calls == {"WSPSocket": 1, "WSPBind": 1, "WSPListen": 1,
                              "WSPGetSockName": 1, "WSPAccept": 1}
    assert summary.socket(None).calls == {"WSPStartup": 1, "WSPCleanup": 1}
    # the fault layer's reset under the tracer, and the bad handle
    assert server.errors == {"WSAECONNRESET": 1} and client.errors == {}
    assert summary.socket(999).errors == {"WSAENOTSOCK": 1}
    assert summary.errors == {"WSAECONNRESET": 1, "WSAENOTSOCK": 1}
    # call to completion (ns): the receive done at once 0, the pending one
    # 10 (its completion is the next record); the send done at once 0
    assert (server.completions, server.waits, server.wait_mean, server.wait_max) == (2, 2, 5.0,
                                                                                     10)
    assert (client.completions, client.waits, client.wait_mean, client.wait_max) == (1, 1, 0.0,
                                                                                     0)
    assert listener.wait_mean is None and listener.wait_max is None
    # the addresses: the listener's, the client's target, the accepted
    # socket's caller (from WSPAccept, though it is the listener's record)
    assert listener.address == addr and listener.peers == []
    assert client.address == client_addr and client.peers == [addr]
    assert server.peers == [client_addr]
    assert summary.records == len(top.records)
    assert summary.duration == top.records[-1].time - top.records[0].time
    assert summary.time_unit == "ns"
    # a naive sum over the records agrees (that is the trace's rule)
    for s in (c, a):
        assert sum(r.nbytes or 0 for r in top.records if r.socket == s) == 42


def test_every_kind_of_input_gives_the_same_summary(tmp_path):
    top = known_exchange()[0]
    expected = summarize(top.records).to_dict()
    path = tmp_path / "trace.jsonl"
    top.to_jsonl(path)
    assert summarize(path).to_dict() == expected                     # a Path
    assert summarize(str(path)).to_dict() == expected                # a str
    assert summarize(top).to_dict() == expected                      # the tracer
    assert summarize([r.to_dict() for r in top.records]).to_dict() == expected
    assert summarize(iter(top.records)).to_dict() == expected
    assert json.loads(json.dumps(expected)) == expected              # plain JSON
    assert expected["sent"] == expected["received"] == 42
    server = [s for s in expected["sockets"] if s["received"]][0]
    assert server["completion_time"] == {"count": 2, "mean": 5.0, "max": 10}
    assert server["errors"] == {"WSAECONNRESET": 1}


def test_the_table():
    top, c, a, lst, addr, client_addr = known_exchange()
    summary = summarize(top)
    text = summary.format()
    assert str(summary) == text
    lines = text.splitlines()
    assert lines[0].startswith(f"{len(top.records)} records over ")
    assert "times in ns" in lines[0]
    header = lines[1].split()
    assert header[:6] == ["socket", "local", "peer", "sent", "received", "calls"]
    row = next(line for line in lines if line.startswith(str(a)))
    assert f"{client_addr[0]}:{client_addr[1]}" in row and "WSAECONNRESET 1" in row
    assert row.split()[3:5] == ["0", "42"]                          # sent, received
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:3] == ["42", "42"]
    assert "calls per socket" in lines
    assert any(line.split()[:1] == [str(a)] and "WSPRecv 3" in line
               for line in lines[lines.index("calls per socket"):])
    assert summarize([]).format().startswith("0 records")


def test_extension_functions_count_on_the_right_sockets():
    with Stack(lambda base: TracingProvider(base)) as st:
        top = st.top
        lst, addr = st.listener()
        st.port(lst)
        spare, c = st.socket(), st.socket()
        top.WSPBind(c, (addr[0], 0))
        me = top.WSPGetSockName(c)
        ext = wsp.SIO_GET_EXTENSION_FUNCTION_POINTER
        accept_ex = top.WSPIoctl(lst, ext, wsp.WSAID_ACCEPTEX)
        connect_ex = top.WSPIoctl(c, ext, wsp.WSAID_CONNECTEX)
        accept_ex(lst, spare, bytearray(16 + 64), 16, 32, 32, Overlapped())
        connect_ex(c, addr, b"hello", Overlapped())
        summary = summarize(top)
    # ConnectEx's buffer sent by the client; AcceptEx's first data received
    # by the accepted socket (its completion is the listener's)
    assert (summary.socket(c).sent, summary.socket(spare).received) == (5, 5)
    assert summary.socket(lst).received == 0
    assert summary.socket(c).peers == [addr]
    assert summary.socket(spare).peers == [me] and summary.socket(spare).address == addr
    assert summary.socket(lst).calls["AcceptEx"] == 1
    assert summary.socket(c).calls["ConnectEx"] == 1
    assert summary.socket(lst).completions == 1 and summary.socket(c).completions == 1


def test_a_datagram_socket_lists_its_peers():
    with Stack(TracingProvider) as st:
        top = st.top
        s, r1, to1 = st.dgrams()
        r2 = st.socket(wsp.SOCK_DGRAM)
        top.WSPBind(r2, (to1[0], 0))
        to2 = top.WSPGetSockName(r2)
        for to in (to1, to2, to1):
            top.WSPSendTo(s, [b"abc"], 0, to)
        summary = summarize(top)
    sender = summary.socket(s)
    assert sender.peers == [to1, to2] and sender.sent == 9
    assert f"{to1[0]}:{to1[1]} +1" in summary.format()


# -- bad input ------------------------------------------------------------------------------
def write(tmp_path, *lines, name="trace.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"".join(line if isinstance(line, bytes) else line.encode() + b"\n"
                              for line in lines))
    return path


GOOD = json.dumps(TraceRecord(1, 2, 3, "WSPSend", None, 4, 4, [0, 4], None, request=1,
                              overlapped=False).to_dict())


@pytest.mark.parametrize("bad,reason", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object but list"),
    ('{"time": 5}', '"op"'),
    ('{"op": "WSPSend"}', '"time"'),
    ('{"op": "WSPSend", "time": 1, "nbytes": "4"}', '"nbytes"'),
    ('{"op": "WSPSend", "time": 1, "socket": true}', '"socket"'),
    ('{"op": "WSPBind", "time": 1, "address": "10.0.0.1"}', '"address"'),
    (b"\xff\xfe\n", "not UTF-8"),
])
def test_a_malformed_line_is_named_by_its_number(tmp_path, bad, reason):
    path = write(tmp_path, GOOD, "", bad, GOOD)
    with pytest.raises(TraceFormatError) as exc:
        summarize(path)
    assert (exc.value.path, exc.value.line) == (str(path), 3)
    assert str(exc.value).startswith(f"{path}, line 3: ") and reason in str(exc.value)


def test_blank_lines_are_skipped_and_records_given_directly_are_checked(tmp_path):
    path = write(tmp_path, "", GOOD, "   ", GOOD)
    summary = summarize(path)
    assert summary.records == 2 and summary.socket(3).sent == 8
    with pytest.raises(TraceFormatError) as exc:
        summarize([json.loads(GOOD), {"op": 5, "time": 0}])
    assert (exc.value.path, exc.value.line) == (None, 1)
    assert str(exc.value).startswith("record 1: ")
    with pytest.raises(TypeError):
        summarize(42)


def test_a_file_that_cannot_be_read_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        summarize(tmp_path / "missing.jsonl")
    with pytest.raises(OSError):
        summarize(pathlib.Path(tmp_path))                            # a directory


def test_completions_without_their_call_count_but_have_no_wait():
    records = [TraceRecord(100, 1, 7, "completion", "WSPRecv", 8, 3, 0, None, request=41,
                           overlapped=True),
               TraceRecord(200, 1, 7, "completion", None, None, 0, 0, WSAENOTSOCK,
                           overlapped=True)]
    s = summarize(records).socket(7)
    assert (s.received, s.completions, s.waits, s.errors) == (3, 2, 0, {"WSAENOTSOCK": 1})
