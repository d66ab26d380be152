"""TracingProvider (wsp.lsp.trace): one record per WSP call and per
overlapped completion, over the simulated network."""
from __future__ import annotations

import io
import json
import threading

import pytest

import wsp
import wsp.sim
from lspkit import AppStack, Stack, run_threads
from wsp import (FD_CLOSE, FD_READ, FIONBIO, FIONREAD, SO_LINGER, SOL_SOCKET, Overlapped,
                 WinsockError)
from wsp.errors import (WAIT_IO_COMPLETION, WAIT_TIMEOUT, WSA_IO_PENDING, WSA_OPERATION_ABORTED,
                        WSAEMSGSIZE, WSAENOTCONN, WSAENOTSOCK, WSAEOPNOTSUPP, WSAEWOULDBLOCK)
from wsp.lsp import FaultProvider, LayeredProvider, TraceRecord, TracingProvider

FIELDS = {"time", "thread", "socket", "op", "call", "size", "nbytes", "result", "error",
          "request", "overlapped", "address", "peer", "accepted"}


@pytest.fixture
def stack():
    """A started TracingProvider over a wsp.sim.Provider (lspkit.Stack)."""
    with Stack(TracingProvider) as st:
        yield st


def records_of(tracer, socket=None, op=None):
    return [r for r in tracer.records
            if (socket is None or r.socket == socket) and (op is None or r.op == op)]


def test_connect_send_recv_close_sequence(stack):
    top = stack.top
    c, a, lst = stack.pair()
    assert top.WSPSend(c, [b"hel", b"lo"]) == (0, 5)
    buf = bytearray(16)
    assert top.WSPRecv(a, [buf]) == (0, 5, 0)
    client_addr = top.WSPGetSockName(c)
    top.WSPCloseSocket(c)
    with pytest.raises(WinsockError) as exc:
        top.WSPSend(c, [b"x"])
    assert exc.value.winerror == WSAENOTSOCK

    ops = [r.op for r in records_of(top, socket=c)]
    assert ops == ["WSPSocket", "WSPConnect", "WSPSend", "WSPGetSockName", "WSPCloseSocket",
                   "WSPSend"]
    sock_rec, conn_rec, send_rec, _, close_rec, bad_rec = records_of(top, socket=c)
    assert sock_rec.result == c and sock_rec.error is None and sock_rec.size is None
    assert conn_rec.result is None and conn_rec.error is None
    assert (send_rec.size, send_rec.nbytes, send_rec.result, send_rec.error) == (5, 5, [0, 5],
                                                                                  None)
    assert close_rec.error is None
    assert (bad_rec.size, bad_rec.nbytes, bad_rec.result, bad_rec.error) == (1, None, None,
                                                                              WSAENOTSOCK)
    recv_rec, = records_of(top, socket=a, op="WSPRecv")
    assert (recv_rec.size, recv_rec.nbytes, recv_rec.result, recv_rec.error) == (16, 5,
                                                                                  [0, 5, 0], None)
    accept_rec, = records_of(top, op="WSPAccept")
    assert accept_rec.socket == lst
    assert accept_rec.result == [a, list(client_addr)]
    assert [r.op for r in top.records[:1]] == ["WSPStartup"]
    assert top.records[0].result["wVersion"] == 0x0202
    assert all(r.thread == threading.get_ident() for r in top.records)
    times = [r.time for r in top.records]
    assert times == sorted(times)
    assert records_of(top, op="completion") == []


def test_completion_recorded_in_port_mode(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    buf, ov = bytearray(10), Overlapped()
    assert top.WSPRecv(a, [buf], 0, ov) == (WSA_IO_PENDING, 0, 0)
    issued = top.records[-1]
    assert (issued.op, issued.size, issued.nbytes, issued.result) == ("WSPRecv", 10, None,
                                                                       [WSA_IO_PENDING, 0, 0])
    top.WSPSend(c, [b"hello"])
    done, = records_of(top, op="completion")
    assert done.socket == a and done.call == "WSPRecv"
    assert (done.size, done.nbytes, done.error, done.result) == (10, 5, None, 0)
    assert done.thread == threading.get_ident()
    rc, nbytes, key, got = stack.proc.GetQueuedCompletionStatus(port, 1000)
    assert (rc, nbytes, key, got) == (0, 5, 7, ov) and bytes(buf[:5]) == b"hello"


def test_completion_recorded_in_routine_mode_when_it_happens(stack):
    top, proc = stack.top, stack.proc
    c, a, _ = stack.pair()
    got = []
    ov = Overlapped()
    assert top.WSPRecv(a, [bytearray(8)], 0, ov,
                       lambda e, n, o, f: got.append((e, n, threading.get_ident()))) == (
        WSA_IO_PENDING, 0, 0)

    sender = threading.Thread(target=top.WSPSend, args=(c, [b"abc"]))
    sender.start()
    sender.join(5)
    assert not sender.is_alive()
    # The completion is recorded when the lower request completes, in the
    # thread that completed it (the sender's); the overlapped already shows
    # it, and the routine waits for this thread's alertable wait.
    done, = records_of(top, op="completion")
    assert (done.call, done.nbytes, done.error, done.thread) == ("WSPRecv", 3, None, sender.ident)
    assert not ov.pending and ov.InternalHigh == 3 and got == []
    assert proc.SleepEx(1000, True) == WAIT_IO_COMPLETION
    me = threading.get_ident()
    assert got == [(0, 3, me)]
    send_rec, = records_of(top, op="WSPSend")
    assert send_rec.thread == sender.ident != me


def test_immediate_overlapped_completion_is_recorded_before_the_call(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(c)
    ov = Overlapped()
    assert top.WSPSend(c, [b"12345678"], 0, ov) == (0, 8)
    done, call = top.records[-2:]
    assert (done.op, done.call, done.size, done.nbytes) == ("completion", "WSPSend", 8, 8)
    # The call's record leaves the bytes to its completion (they were
    # counted twice before: issue 15); its result still says (0, 8).
    assert (call.op, call.size, call.nbytes, call.result) == ("WSPSend", 8, None, [0, 8])
    assert call.overlapped is True and done.overlapped is True
    assert done.request == call.request is not None
    assert done.time <= call.time
    assert stack.packets(port) == [(0, 8, 7)]


def test_aborted_completion_on_close(stack):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    ov = Overlapped()
    top.WSPRecv(a, [bytearray(4)], 0, ov)
    top.WSPCloseSocket(a)
    done, = records_of(top, op="completion")
    assert (done.socket, done.call, done.nbytes, done.error) == (a, "WSPRecv", 0,
                                                                 WSA_OPERATION_ABORTED)
    assert stack.packets(port) == [(WSA_OPERATION_ABORTED, 0, 7)]


def test_failure_before_start_records_the_error_and_no_completion(stack):
    top = stack.top
    s = stack.socket()
    ov = Overlapped()
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(s, [bytearray(4)], 0, ov)
    assert exc.value.winerror == WSAENOTCONN
    rec = top.records[-1]
    assert (rec.op, rec.socket, rec.size, rec.error, rec.result) == ("WSPRecv", s, 4,
                                                                     WSAENOTCONN, None)
    assert not ov.pending and top._requests == {}
    assert stack.proc.resources()["overlapped_pending"] == 0


def test_type_error_is_recorded_by_name_and_propagates(stack):
    top = stack.top
    c, a, _ = stack.pair()
    with pytest.raises(TypeError):
        top.WSPSend(c, b"not a WSABUF array")
    rec = top.records[-1]
    assert (rec.op, rec.socket, rec.size, rec.error, rec.result) == ("WSPSend", c, None, None,
                                                                     "TypeError")


def test_unsupported_entry_is_recorded(stack):
    top = stack.top
    s = stack.socket()
    with pytest.raises(WinsockError) as exc:
        top.WSPDuplicateSocket(s, 1234)
    assert exc.value.winerror == WSAEOPNOTSUPP
    rec = top.records[-1]
    assert (rec.op, rec.socket, rec.error) == ("WSPDuplicateSocket", s, WSAEOPNOTSUPP)


def test_datagram_results_and_sizes(stack):
    top = stack.top
    s, r, to = stack.dgrams()
    assert top.WSPSendTo(s, [b"ping!"], 0, to) == (0, 5)
    rc, n, flags, src = top.WSPRecvFrom(r, [bytearray(32)])
    assert (rc, n, flags) == (0, 5, 0)
    rec = top.records[-1]
    assert (rec.op, rec.size, rec.nbytes) == ("WSPRecvFrom", 32, 5)
    assert rec.result == [0, 5, 0, list(src)]
    send_rec, = records_of(top, op="WSPSendTo")
    assert (send_rec.socket, send_rec.size, send_rec.nbytes) == (s, 5, 5)
    # a datagram larger than the buffer: WSAEMSGSIZE, recorded with the capacity
    top.WSPSendTo(s, [b"0123456789"], 0, to)
    with pytest.raises(WinsockError) as exc:
        top.WSPRecvFrom(r, [bytearray(4)])
    assert exc.value.winerror == WSAEMSGSIZE
    assert (top.records[-1].size, top.records[-1].error) == (4, WSAEMSGSIZE)


def test_ioctl_select_and_would_block(stack):
    top = stack.top
    c, a, _ = stack.pair()
    top.WSPSend(c, [b"xyz"])
    assert top.WSPIoctl(a, FIONREAD) == 3
    assert top.records[-1].result == 3 and top.records[-1].nbytes is None
    assert top.WSPSelect([a], [], [], 0) == ([a], [], [])
    rec = top.records[-1]
    assert (rec.op, rec.socket, rec.result) == ("WSPSelect", None, [[a], [], []])
    top.WSPIoctl(c, FIONBIO, 1)
    with pytest.raises(WinsockError) as exc:
        top.WSPRecv(c, [bytearray(4)])
    assert exc.value.winerror == WSAEWOULDBLOCK
    assert (top.records[-1].op, top.records[-1].error) == ("WSPRecv", WSAEWOULDBLOCK)


def test_structures_and_event_maps_are_summarised(stack):
    top = stack.top
    c, a, _ = stack.pair()
    assert top.WSPGetSockOpt(c, SOL_SOCKET, SO_LINGER).l_onoff == 0
    assert top.records[-1].result == {"l_onoff": 0, "l_linger": 0}
    ev = stack.event()
    top.WSPEventSelect(a, ev, FD_READ | FD_CLOSE)
    top.WSPSend(c, [b"x"])
    assert top.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0}
    assert top.records[-1].result == {str(FD_READ): 0}
    dicts = [r.to_dict() for r in top.records]
    assert json.loads(json.dumps(dicts)) == dicts           # plain JSON values throughout


def test_get_overlapped_result_records_the_bytes(stack):
    top = stack.top
    c, a, _ = stack.pair()
    ov = Overlapped(stack.event())
    top.WSPRecv(a, [bytearray(8)], 0, ov)
    top.WSPSend(c, [b"four"])
    assert top.WSPGetOverlappedResult(a, ov, True) == (4, 0)
    rec = top.records[-1]
    # The bytes are in the result; nbytes is left to the completion record,
    # which counted them already.
    assert (rec.op, rec.socket, rec.nbytes, rec.result) == ("WSPGetOverlappedResult", a, None,
                                                            [4, 0])
    done, = records_of(top, op="completion")
    assert done.nbytes == 4
    assert sum(r.nbytes or 0 for r in records_of(top, socket=a)) == 4


def test_to_jsonl_round_trip(stack, tmp_path):
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
    top.WSPSend(c, [b"json"])
    with pytest.raises(WinsockError) as exc:
        top.WSPGetPeerName(123456)
    assert exc.value.winerror == WSAENOTSOCK
    assert stack.packets(port) == [(0, 4, 7)]

    out = io.StringIO()
    n = top.to_jsonl(out)
    lines = out.getvalue().splitlines()
    assert n == len(lines) == len(top.records)
    decoded = [json.loads(line) for line in lines]
    assert decoded == [r.to_dict() for r in top.records]
    assert all(set(d) == FIELDS for d in decoded)
    assert decoded[-1]["error"] == WSAENOTSOCK
    done, = [d for d in decoded if d["op"] == "completion"]
    assert (done["socket"], done["call"], done["size"], done["nbytes"], done["result"],
            done["error"]) == (a, "WSPRecv", 8, 4, 0, None)

    path = tmp_path / "trace.jsonl"
    assert top.to_jsonl(path) == n
    assert [json.loads(line) for line in path.read_text().splitlines()] == decoded
    assert top.to_jsonl(str(path)) == n                  # a str path, truncated and rewritten
    assert len(path.read_text().splitlines()) == n


def test_call_from_another_thread_records_its_ident(stack):
    top = stack.top
    c, a, _ = stack.pair()
    seen = {}

    def worker():
        seen["ident"] = threading.get_ident()
        top.WSPGetPeerName(c)

    run_threads(worker, 1)
    rec = top.records[-1]
    assert rec.op == "WSPGetPeerName" and rec.socket == c
    assert rec.thread == seen["ident"] != threading.get_ident()


def test_concurrent_calls_are_all_recorded(stack):
    top = stack.top
    c, a, _ = stack.pair()
    before = len(top.records)
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait(5)
        for _ in range(250):
            top.WSPGetSockName(c)

    threads = run_threads(worker)
    assert len(top.records) - before == 1000
    assert {r.thread for r in top.records[before:]} == {t.ident for t in threads}
    ids = [r.request for r in top.records]
    assert len(set(ids)) == len(ids)                     # unique across the threads too


def test_custom_sink_and_clock():
    ticks = iter(range(1000, 2000))
    sunk = []
    with Stack(lambda base: TracingProvider(base, sunk.append,
                                            clock=lambda: next(ticks))) as st:
        st.top.WSPCloseSocket(st.socket())
    assert st.top.records == []
    assert [r.op for r in sunk] == ["WSPStartup", "WSPSocket", "WSPCloseSocket", "WSPCleanup"]
    assert [r.time for r in sunk] == [1000, 1001, 1002, 1003]
    assert all(isinstance(r, TraceRecord) for r in sunk)


def test_bad_arguments():
    base = wsp.sim.Provider(wsp.sim.Network())
    with pytest.raises(TypeError):
        TracingProvider(base, sink=42)
    with pytest.raises(TypeError):
        TracingProvider(base, clock=None)
    with pytest.raises(TypeError):
        TracingProvider(object())


def test_record_to_dict_and_equality():
    rec = TraceRecord(1, 2, 3, "completion", "WSPSend", 4, 4, 0, None, request=9,
                      overlapped=True, peer=["10.0.0.1", 80])
    assert rec.to_dict() == {"time": 1, "thread": 2, "socket": 3, "op": "completion",
                             "call": "WSPSend", "size": 4, "nbytes": 4, "result": 0,
                             "error": None, "request": 9, "overlapped": True,
                             "address": None, "peer": ["10.0.0.1", 80], "accepted": None}
    assert rec == TraceRecord(**rec.to_dict())
    assert rec != TraceRecord(**{**rec.to_dict(), "nbytes": 3})
    assert repr(rec) == ("TraceRecord(time=1, thread=2, socket=3, op='completion', "
                         "call='WSPSend', size=4, nbytes=4, result=0, error=None, request=9, "
                         "overlapped=True, address=None, peer=['10.0.0.1', 80], "
                         "accepted=None)")
    # the nine positional fields of the first format still make a record
    old = TraceRecord(1, 2, 3, "WSPSend", None, 4, 4, [0, 4], None)
    assert (old.request, old.overlapped, old.peer) == (None, None, None)


def test_cleanup_with_pending_request_records_no_completion():
    with Stack(TracingProvider) as st:
        top = st.top
        c, a, _ = st.pair()
        ov = Overlapped()
        top.WSPRecv(a, [bytearray(4)], 0, ov)
        top.WSPCleanup()                                    # the final one
        assert ov.Internal == WSA_OPERATION_ABORTED
        assert records_of(top, op="completion") == []
        assert top.records[-1].op == "WSPCleanup" and top.records[-1].error is None
        assert top._requests == {}


def test_tracer_inside_a_stack_sees_the_layer_handles_below():
    """trace over a plain layer over the base: the records name the tracer's
    own handles, and completions relay through both layers."""
    with Stack(lambda base: TracingProvider(LayeredProvider(base))) as st:
        top = st.top
        c, a, lst = st.pair()
        assert sorted(top.sockets()) == sorted([c, a, lst])
        assert len(top.lower.sockets()) == 3
        assert set(top.lower.sockets()) & {c, a, lst} == set()
        port = st.port(a)
        top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
        top.WSPSend(c, [b"two"])
        assert st.packets(port) == [(0, 3, 7)]
        done, = records_of(top, op="completion")
        assert (done.socket, done.nbytes) == (a, 3)


def test_tracer_over_a_fault_layer_records_injected_errors_and_dropped_sends():
    with Stack(lambda base: TracingProvider(FaultProvider(base))) as st:
        top, fault = st.top, st.top.lower
        c, a, _ = st.pair()
        fault_c = top.lower_handle(c)             # the fault layer's handle under c
        fault.add_rule("WSPSend", "fail", code=wsp.WSAENETRESET, count=1)
        with pytest.raises(WinsockError) as exc:
            top.WSPSend(c, [b"lost"])
        assert exc.value.winerror == wsp.WSAENETRESET
        assert (top.records[-1].op, top.records[-1].error) == ("WSPSend", wsp.WSAENETRESET)

        fault.add_rule("WSPSend", "drop", socket=fault_c)
        port = st.port(c)
        assert top.WSPSend(c, [b"dropped"], 0, Overlapped()) == (0, 7)
        done, call = top.records[-2:]
        assert (done.op, done.call, done.nbytes, done.error) == ("completion", "WSPSend", 7,
                                                                 None)
        assert (call.op, call.nbytes, call.result) == ("WSPSend", None, [0, 7])
        assert st.packets(port) == [(0, 7, 7)]
        assert st.proc.GetQueuedCompletionStatus(port, 0) == (WAIT_TIMEOUT, 0, 0, None)


def test_application_calls_through_the_catalog_are_traced():
    with AppStack(lambda base: TracingProvider(FaultProvider(base))) as app:
        proc, tracer = app.proc, app.top
        proc.WSAStartup()
        c, a, lst = app.pair()
        proc.WSASend(c, [b"abc"])
        proc.WSACleanup()
        ops = [(r.op, r.socket) for r in tracer.records]
        assert ops[:4] == [("WSPStartup", None), ("WSPSocket", lst), ("WSPBind", lst),
                           ("WSPListen", lst)]
        assert ("WSPConnect", c) in ops and ("WSPAccept", lst) in ops
        send_rec, = [r for r in tracer.records if r.op == "WSPSend"]
        assert (send_rec.socket, send_rec.size, send_rec.nbytes) == (c, 3, 3)
        assert ops[-1] == ("WSPCleanup", None)
        res = proc.resources()
        assert res == dict.fromkeys(res, 0), res


# -- issue 15: requests, bytes counted once, addresses, the extension functions ------------
def ext(top, s, guid):
    """The tracer's own extension function for `guid`, looked up on `s`."""
    return top.WSPIoctl(s, wsp.SIO_GET_EXTENSION_FUNCTION_POINTER, guid)


def test_an_overlapped_receive_done_at_once_is_counted_once(stack):
    # The user's case: 37 bytes wait at the receiver, an overlapped receive
    # takes them at once and returns (0, 37), and its completion follows.
    # Both records used to carry nbytes 37, and a per-socket sum said 74.
    top = stack.top
    c, a, _ = stack.pair()
    port = stack.port(a)
    message = b"x" * 37
    top.WSPSend(c, [message])
    ov = Overlapped()
    assert top.WSPRecv(a, [bytearray(64)], 0, ov) == (0, 37, 0)
    done, call = records_of(top, socket=a)[-2:]
    assert (call.op, call.overlapped, call.nbytes, call.result) == ("WSPRecv", True, None,
                                                                     [0, 37, 0])
    assert (done.op, done.call, done.nbytes, done.request) == ("completion", "WSPRecv", 37,
                                                               call.request)
    # what the call returned and what completed: the same 37 bytes, once
    assert sum(r.nbytes or 0 for r in records_of(top, socket=a)) == 37 == len(message)
    assert sum(r.nbytes or 0 for r in records_of(top, socket=c)) == 37   # the plain send
    assert stack.packets(port) == [(0, 37, 7)]


def test_a_pending_receive_is_counted_on_its_completion(stack):
    top = stack.top
    c, a, _ = stack.pair()
    stack.port(a)
    ov = Overlapped()
    assert top.WSPRecv(a, [bytearray(64)], 0, ov) == (WSA_IO_PENDING, 0, 0)
    call = top.records[-1]
    assert (call.op, call.overlapped, call.nbytes) == ("WSPRecv", True, None)
    top.WSPSend(c, [b"y" * 37])
    done, = records_of(top, op="completion")
    assert (done.request, done.nbytes, done.overlapped, done.call) == (call.request, 37, True,
                                                                        "WSPRecv")
    assert done.time >= call.time
    assert sum(r.nbytes or 0 for r in records_of(top, socket=a)) == 37


def test_request_ids_are_unique_and_completions_repeat_their_calls(stack):
    top = stack.top
    c, a, _ = stack.pair()
    stack.port(a, c)
    for _ in range(3):
        top.WSPRecv(a, [bytearray(8)], 0, Overlapped())
        top.WSPSend(c, [b"abc"], 0, Overlapped())
        top.WSPSend(c, [b"plain"])
    top.WSPRecv(a, [bytearray(8)], 0, Overlapped())       # takes the last plain send
    calls = [r for r in top.records if r.op != "completion"]
    ids = [r.request for r in calls]
    assert len(set(ids)) == len(ids) and None not in ids and ids == sorted(ids)
    assert [r.overlapped for r in calls if r.op == "WSPSend"] == [True, False] * 3
    by_id = {r.request: r for r in calls}
    completions = records_of(top, op="completion")
    # each overlapped call completed exactly once, under its own id
    assert sorted(d.request for d in completions) == [r.request for r in calls if r.overlapped]
    assert len(completions) == 7
    for done in completions:
        call = by_id[done.request]
        assert (call.op, call.socket, call.overlapped) == (done.call, done.socket, True)


def test_stream_entries_record_their_addresses(stack):
    top = stack.top
    lst = stack.socket()
    top.WSPBind(lst, ("127.0.0.1", 0))
    bind_rec = top.records[-1]
    top.WSPListen(lst, 4)
    addr = top.WSPGetSockName(lst)
    assert top.records[-1].address == list(addr)
    assert bind_rec.address == [addr[0], 0]
    c = stack.socket()
    top.WSPConnect(c, addr)
    conn_rec = top.records[-1]
    assert (conn_rec.op, conn_rec.peer, conn_rec.result) == ("WSPConnect", list(addr), None)
    client_addr = top.WSPGetSockName(c)
    a, caller = top.WSPAccept(lst)
    acc_rec = top.records[-1]
    assert (acc_rec.socket, acc_rec.accepted, acc_rec.peer) == (lst, a, list(client_addr))
    assert caller == client_addr
    assert top.WSPGetPeerName(a) == client_addr
    assert top.records[-1].peer == list(client_addr)
    # a refused connect: the target it tried, with the error
    top.WSPCloseSocket(lst)
    s = stack.socket()
    with pytest.raises(WinsockError):
        top.WSPConnect(s, addr)
    refused = top.records[-1]
    assert (refused.peer, refused.error) == (list(addr), wsp.WSAECONNREFUSED)


def test_datagram_entries_record_their_addresses(stack):
    from wsp.spi import senders

    top = stack.top
    s, r, to = stack.dgrams()
    top.WSPBind(s, (to[0], 0))
    me = top.WSPGetSockName(s)
    # sendto's destination; a receive done at once has the sender on its call
    top.WSPSendTo(s, [b"one"], 0, to)
    assert top.records[-1].peer == list(to)
    top.WSPRecvFrom(r, [bytearray(16)])
    assert top.records[-1].peer == list(me)
    top.WSPSendTo(s, [b"two"], 0, to)
    stack.port(r, s)
    assert top.WSPRecvFrom(r, [bytearray(16)], 0, Overlapped())[3] == me
    done, call = top.records[-2:]
    assert (call.op, call.peer, call.nbytes) == ("WSPRecvFrom", list(me), None)
    assert (done.op, done.nbytes, done.request) == ("completion", 3, call.request)
    # an overlapped sendto: the destination on its completion too
    top.WSPSendTo(s, [b"three"], 0, to, Overlapped())
    done, call = top.records[-2:]
    assert call.peer == done.peer == list(to) and done.nbytes == 5
    assert top.WSPRecvFrom(r, [bytearray(16)])[:2] == (0, 5)
    # a receive that waits: its sender is known at the completion, and the
    # tracer only peeks at it: the application still takes it
    ov = Overlapped()
    assert top.WSPRecvFrom(r, [bytearray(16)], 0, ov)[0] == WSA_IO_PENDING
    waiting = top.records[-1]
    assert waiting.peer is None
    top.WSPSendTo(s, [b"four"], 0, to)
    done, = [d for d in records_of(top, op="completion") if d.request == waiting.request]
    assert (done.call, done.nbytes, done.peer) == ("WSPRecvFrom", 4, list(me))
    assert senders.take(ov) == me


def test_connect_ex_and_accept_ex_have_call_records(stack):
    top = stack.top
    lst, addr = stack.listener()
    port = stack.port(lst)
    spare, c = stack.socket(), stack.socket()
    top.WSPBind(c, (addr[0], 0))
    client_addr = top.WSPGetSockName(c)
    accept_ex = ext(top, lst, wsp.WSAID_ACCEPTEX)
    connect_ex = ext(top, c, wsp.WSAID_CONNECTEX)
    disconnect_ex = ext(top, c, wsp.WSAID_DISCONNECTEX)
    # what the application gets is the tracer's own (bound to it)
    assert accept_ex.__self__ is top and connect_ex.__func__ is TracingProvider.ConnectEx

    buf = bytearray(16 + 64)
    accept_ov, connect_ov = Overlapped(), Overlapped()
    assert accept_ex(lst, spare, buf, 16, 32, 32, accept_ov) == (WSA_IO_PENDING, 0)
    acc_call = top.records[-1]
    assert (acc_call.op, acc_call.socket, acc_call.accepted, acc_call.size,
            acc_call.overlapped, acc_call.nbytes) == ("AcceptEx", lst, spare, 16, True, None)
    assert connect_ex(c, addr, b"hello", connect_ov)[0] in (0, WSA_IO_PENDING)
    con_call, = records_of(top, op="ConnectEx")
    assert (con_call.socket, con_call.peer, con_call.size, con_call.overlapped) == (
        c, list(addr), 5, True)
    # the connection's first data completed the AcceptEx (inside ConnectEx)
    done = {d.call: d for d in records_of(top, op="completion")}
    acc_done, con_done = done["AcceptEx"], done["ConnectEx"]
    assert (acc_done.socket, acc_done.request, acc_done.accepted, acc_done.nbytes) == (
        lst, acc_call.request, spare, 5)
    assert acc_done.address == list(addr) and acc_done.peer == list(client_addr)
    assert (con_done.socket, con_done.request, con_done.nbytes, con_done.error) == (
        c, con_call.request, 5, None)
    assert bytes(buf[:5]) == b"hello"
    assert stack.packets(port) == [(0, 5, 7)]
    # DisconnectEx: a call record and its completion
    disconnect_ex(c, Overlapped(), 0)
    dis_call, = records_of(top, op="DisconnectEx")
    assert (dis_call.socket, dis_call.overlapped) == (c, True)
    stack.flush()
    assert any(d.call == "DisconnectEx" and d.request == dis_call.request
               for d in records_of(top, op="completion"))
    # an extension call that fails before it starts: its record, no completion
    with pytest.raises(WinsockError) as exc:
        connect_ex(c, addr, None, None)
    assert exc.value.winerror == wsp.WSA_INVALID_PARAMETER
    bad = top.records[-1]
    assert (bad.op, bad.overlapped, bad.error) == ("ConnectEx", False,
                                                   wsp.WSA_INVALID_PARAMETER)
    assert top._requests == {}
