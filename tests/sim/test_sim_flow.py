"""wsp.sim.Provider, stream flow control (SPEC §7): per-socket send and
receive buffers sized by SO_SNDBUF/SO_RCVBUF, senders that wait for room
(non-blocking, overlapped, blocking), and FD_WRITE after WSAEWOULDBLOCK."""
from __future__ import annotations

import random

import pytest

import wsp
import wsp.sim
from simkit import recv_all, sim_socket, wait_blocked
from helpers import Worker, assert_winsock
from wsp import (FD_WRITE, FIONBIO, FIONREAD, SD_SEND, SO_RCVBUF, SO_SNDBUF,
                 SOL_SOCKET, Overlapped)


def small_pair(sim, sndbuf=16, rcvbuf=32):
    """A connection whose client sends through SO_SNDBUF=sndbuf into a
    server socket with SO_RCVBUF=rcvbuf."""
    c, a, _ = sim.pair()
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, sndbuf)
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, rcvbuf)
    return c, a


PAYLOAD = bytes(range(100))


def test_buffer_sizes_are_options(sim):
    c, a = small_pair(sim)
    assert sim.prov.WSPGetSockOpt(c, SOL_SOCKET, SO_SNDBUF) == 16
    assert sim.prov.WSPGetSockOpt(a, SOL_SOCKET, SO_RCVBUF) == 32
    assert sim.prov.WSPGetSockOpt(c, SOL_SOCKET, SO_RCVBUF) == 65536
    assert sim.prov.WSPGetSockOpt(a, SOL_SOCKET, SO_SNDBUF) == 65536


def test_non_blocking_sender_gets_a_partial_count_then_would_block(sim):
    c, a = small_pair(sim)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    # 32 bytes fill the receiver's buffer, 16 the sender's
    assert sim.prov.WSPSend(c, [PAYLOAD]) == (0, 48)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 32
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [PAYLOAD[48:]])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    # reading 10 bytes lets 10 more in; the sender's buffer still holds 6
    buf = bytearray(10)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 10, 0)
    assert bytes(buf) == PAYLOAD[:10]
    assert sim.prov.WSPIoctl(a, FIONREAD) == 32
    assert sim.prov.WSPSend(c, [PAYLOAD[48:]]) == (0, 10)    # room for 10 in the send buffer
    assert recv_all(sim.prov, a, 48) == PAYLOAD[10:58]
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0


def test_overlapped_send_stays_pending_until_the_receiver_reads(sim):
    c, a = small_pair(sim)
    ev = sim.event()
    ov = Overlapped(ev)
    assert sim.prov.WSPSend(c, [PAYLOAD], 0, ov) == (wsp.WSA_IO_PENDING, 0)
    assert ov.pending and not sim.signalled(ev)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPGetOverlappedResult(c, ov, False)
    assert_winsock(e, wsp.WSA_IO_INCOMPLETE)
    got = bytearray()
    buf = bytearray(32)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 32, 0)
    got += buf
    assert ov.pending                          # 32 read + 16 + 32 buffered: 80 of 100
    assert sim.prov.WSPRecv(a, [buf]) == (0, 32, 0)
    got += buf
    assert not ov.pending
    assert sim.signalled(ev)
    assert sim.prov.WSPGetOverlappedResult(c, ov, False) == (100, 0)
    got += recv_all(sim.prov, a, 36)
    assert bytes(got) == PAYLOAD


def test_overlapped_sends_queue_and_complete_in_order(sim):
    c, a = small_pair(sim)
    port = sim.port()
    sim.proc.CreateIoCompletionPort(c, port, 9)
    ovs = [Overlapped() for _ in range(5)]
    chunks = [bytes([i]) * 30 for i in range(5)]
    rcs = [sim.prov.WSPSend(c, [chunk], 0, ov) for chunk, ov in zip(chunks, ovs)]
    assert rcs[0] == (0, 30)                                   # fits in the peer's buffer
    assert rcs[1:] == [(wsp.WSA_IO_PENDING, 0)] * 4
    assert recv_all(sim.prov, a, 150, chunk=7) == b"".join(chunks)
    packets = [sim.proc.GetQueuedCompletionStatus(port, 1000) for _ in range(5)]
    assert packets == [(0, 30, 9, ov) for ov in ovs]
    assert sim.proc.GetQueuedCompletionStatus(port, 0) == (wsp.WAIT_TIMEOUT, 0, 0, None)


def test_blocking_sender_blocks_until_the_receiver_reads(sim):
    c, a = small_pair(sim)
    data = bytes(range(256)) * 2
    w = Worker(sim.prov.WSPSend, c, [data])
    w.start()
    wait_blocked(sim_socket(sim.proc, c))        # 48 of 512 bytes fit: the send waits
    assert w.is_alive()
    assert sim.prov.WSPIoctl(a, FIONREAD) == 32
    assert recv_all(sim.prov, a, len(data), chunk=20) == data
    assert w.finish(5) == (0, len(data))


def test_raising_so_rcvbuf_at_run_time_lets_data_flow(sim):
    c, a = small_pair(sim)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    assert sim.prov.WSPSend(c, [PAYLOAD[:60]]) == (0, 48)
    ov = Overlapped()
    assert sim.prov.WSPSend(c, [PAYLOAD[48:]], 0, ov) == (wsp.WSA_IO_PENDING, 0)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 32
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 1000)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 100
    assert not ov.pending
    assert sim.prov.WSPGetOverlappedResult(c, ov, False) == (52, 0)
    assert recv_all(sim.prov, a, 100) == PAYLOAD


def test_raising_so_sndbuf_at_run_time_takes_more(sim):
    c, a = small_pair(sim)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    assert sim.prov.WSPSend(c, [PAYLOAD]) == (0, 48)
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 64)
    assert sim.prov.WSPSend(c, [PAYLOAD[48:]]) == (0, 48)
    assert recv_all(sim.prov, a, 96) == PAYLOAD[:96]


def test_zero_buffers_still_deliver_into_posted_receives(sim):
    c, a = small_pair(sim, sndbuf=0, rcvbuf=0)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    with pytest.raises(wsp.WinsockError) as e:          # nowhere to put it
        sim.prov.WSPSend(c, [b"nothing"])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    ovs = [Overlapped(), Overlapped()]
    bufs = [bytearray(4), bytearray(8)]
    for ov, buf in zip(ovs, bufs):
        assert sim.prov.WSPRecv(a, [buf], 0, ov) == (wsp.WSA_IO_PENDING, 0, 0)
    assert sim.prov.WSPSend(c, [b"direct!"]) == (0, 7)  # straight into the receives
    assert [ov.InternalHigh for ov in ovs] == [4, 3]
    assert (bytes(bufs[0]), bytes(bufs[1][:3])) == (b"dire", b"ct!")
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0


def test_zero_buffers_blocking_receiver_in_a_worker_gets_the_data(sim):
    c, a = small_pair(sim, sndbuf=0, rcvbuf=0)
    buf = bytearray(16)
    w = Worker(sim.prov.WSPRecv, a, [buf])
    w.start()
    wait_blocked(sim_socket(sim.proc, a))        # the receive is posted and waits
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    assert sim.prov.WSPSend(c, [b"zero-copy"]) == (0, 9)   # straight into it: no buffer
    assert w.finish(5) == (0, 9, 0)
    assert bytes(buf[:9]) == b"zero-copy"


def test_zero_rcvbuf_receive_posted_later_pulls_waiting_data(sim):
    c, a = small_pair(sim, sndbuf=65536, rcvbuf=0)
    assert sim.prov.WSPSend(c, [b"waiting"]) == (0, 7)   # sits in the send buffer
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0
    ov = Overlapped()
    buf = bytearray(16)
    sim.prov.WSPRecv(a, [buf], 0, ov)
    assert not ov.pending
    assert sim.prov.WSPGetOverlappedResult(a, ov, False) == (7, 0)
    assert bytes(buf[:7]) == b"waiting"


def test_zero_buffers_pending_send_meets_a_later_receive(sim):
    c, a = small_pair(sim, sndbuf=0, rcvbuf=0)
    sov = Overlapped()
    assert sim.prov.WSPSend(c, [b"later"], 0, sov) == (wsp.WSA_IO_PENDING, 0)
    rov = Overlapped()
    buf = bytearray(16)
    sim.prov.WSPRecv(a, [buf], 0, rov)
    assert not rov.pending and not sov.pending
    assert sim.prov.WSPGetOverlappedResult(a, rov, False) == (5, 0)
    assert sim.prov.WSPGetOverlappedResult(c, sov, False) == (5, 0)
    assert bytes(buf[:5]) == b"later"


# The run is one thread over a deterministic network driven by a seeded
# generator: how often each side was turned away is a fact of the buffer
# sizes -- (sends that got WSAEWOULDBLOCK, receives that got it, send calls).
MEGABYTE_RUNS = {(16, 32): (40984, 7404, 68430), (700, 1500): (940, 140, 1774),
                 (0, 100): (15695, 7030, 26352)}


@pytest.mark.parametrize("sndbuf, rcvbuf", list(MEGABYTE_RUNS))
def test_one_megabyte_in_random_chunks_arrives_intact_and_in_order(sim, sndbuf, rcvbuf):
    c, a = small_pair(sim, sndbuf=sndbuf, rcvbuf=rcvbuf)
    rng = random.Random(12345)
    data = rng.randbytes(1 << 20)
    sim.prov.WSPIoctl(c, FIONBIO, 1)
    sim.prov.WSPIoctl(a, FIONBIO, 1)
    sent = 0
    received = bytearray()
    would_block = recv_would_block = sends = 0
    while len(received) < len(data):
        if sent < len(data) and rng.random() < 0.6:
            size = rng.randint(1, 5000)
            # scatter the chunk over up to three buffers
            chunk = data[sent:sent + size]
            cut1, cut2 = sorted(rng.randint(0, len(chunk)) for _ in range(2))
            sends += 1
            try:
                rc, n = sim.prov.WSPSend(c, [chunk[:cut1], chunk[cut1:cut2], chunk[cut2:]])
            except wsp.WinsockError as exc:
                assert exc.winerror == wsp.WSAEWOULDBLOCK
                would_block += 1
            else:
                assert rc == 0 and 0 < n <= len(chunk)
                sent += n
        else:
            buf1, buf2 = bytearray(rng.randint(1, 2000)), bytearray(rng.randint(0, 1000))
            try:
                rc, n, flags = sim.prov.WSPRecv(a, [buf1, buf2])
            except wsp.WinsockError as exc:
                assert exc.winerror == wsp.WSAEWOULDBLOCK
                recv_would_block += 1
            else:
                assert rc == 0 and flags == 0 and n > 0
                received += (buf1 + buf2)[:n]
    assert sent == len(data)
    assert bytes(received) == data
    assert would_block >= 1 and recv_would_block >= 1      # both sides were turned away
    assert (would_block, recv_would_block, sends) == MEGABYTE_RUNS[(sndbuf, rcvbuf)]
    assert would_block > 0                        # flow control did hold the sender back
    assert sim.prov.WSPIoctl(a, FIONREAD) == 0


def test_threaded_blocking_sender_and_receiver_through_small_buffers(sim):
    c, a = small_pair(sim, sndbuf=64, rcvbuf=128)
    rng = random.Random(7)
    data = rng.randbytes(200_000)
    sizes = []
    total = 0
    while total < len(data):
        sizes.append(min(rng.randint(1, 3000), len(data) - total))
        total += sizes[-1]

    def sender():
        offset = 0
        for size in sizes:
            assert sim.prov.WSPSend(c, [data[offset:offset + size]]) == (0, size)
            offset += size
        sim.prov.WSPShutdown(c, SD_SEND)
        return offset

    w = Worker(sender)
    w.start()
    received = bytearray()
    buf = bytearray(1000)
    while True:
        rc, n, _ = sim.prov.WSPRecv(a, [buf])
        if n == 0:
            break
        received += buf[:n]
        assert len(received) <= len(data)
    assert w.finish(10) == len(data)
    assert bytes(received) == data


def test_shutdown_waits_for_queued_data_before_the_end_of_stream(sim):
    c, a = small_pair(sim)
    ov = Overlapped()
    assert sim.prov.WSPSend(c, [PAYLOAD], 0, ov) == (wsp.WSA_IO_PENDING, 0)
    sim.prov.WSPShutdown(c, SD_SEND)
    assert recv_all(sim.prov, a, 100, chunk=9) == PAYLOAD
    assert sim.prov.WSPRecv(a, [bytearray(4)]) == (0, 0, 0)
    assert sim.prov.WSPGetOverlappedResult(c, ov, False) == (100, 0)


def test_fd_write_is_recorded_again_after_would_block_once_room_frees(sim):
    c, a = small_pair(sim)
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_WRITE)            # also makes c non-blocking
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_WRITE: 0}
    assert not sim.signalled(ev)
    assert sim.prov.WSPSend(c, [PAYLOAD]) == (0, 48)
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPSend(c, [PAYLOAD[48:]])
    assert_winsock(e, wsp.WSAEWOULDBLOCK)
    assert sim.prov.WSPEnumNetworkEvents(c) == {}
    assert not sim.signalled(ev)
    buf = bytearray(10)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 10, 0)     # room frees on the sender's side
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_WRITE: 0}
    assert not sim.signalled(ev)
    # once consumed, FD_WRITE is not recorded again without a new WSAEWOULDBLOCK
    assert sim.prov.WSPSend(c, [b"x"]) == (0, 1)
    assert recv_all(sim.prov, a, 39) == PAYLOAD[10:48] + b"x"
    assert sim.prov.WSPEnumNetworkEvents(c) == {}
    assert not sim.signalled(ev)


def test_no_fd_write_after_sends_that_never_blocked(sim):
    c, a = small_pair(sim)
    ev = sim.event()
    sim.prov.WSPEventSelect(c, ev, FD_WRITE)
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {FD_WRITE: 0}
    assert sim.prov.WSPSend(c, [b"small"]) == (0, 5)
    assert recv_all(sim.prov, a, 5) == b"small"
    assert sim.prov.WSPEnumNetworkEvents(c, ev) == {}
    assert not sim.signalled(ev)
