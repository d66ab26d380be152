"""Guards for gaps a mutation run (dev/mutants.py) found: each test pins an
exact value or error code at a boundary the rest of the suite left open, so
that the planted bug named in its docstring fails here."""
from __future__ import annotations

import pytest

import wsp
from helpers import assert_winsock
from wsp import (FD_ACCEPT, FD_CLOSE, FD_READ, FIONREAD, SO_RCVBUF, SO_SNDBUF, SOCK_DGRAM,
                 SOL_SOCKET, WSA_MAXIMUM_WAIT_EVENTS, Overlapped, ServiceProvider)
from wsp.errors import (WSA_INVALID_PARAMETER, WSA_IO_PENDING, WSA_WAIT_EVENT_0,
                        WSAEWOULDBLOCK, WSAVERNOTSUPPORTED)

STACKS = pytest.mark.parametrize("layers", [0, 1, 2], ids=["base", "1layer", "2layers"],
                                 indirect=True)


# ------------------------------------------------------------ version WORDs
# A version WORD keeps the major version in its low byte: 0x0103 is 3.1 (at
# least 2.2: negotiates 2.2), 0x0301 is 1.3 (below 2.2).  The suite's other
# versions read the same with the bytes swapped; these two do not.
@pytest.mark.parametrize("version", [0x0103, 0x0003])
def test_wspstartup_reads_the_major_version_from_the_low_byte(proc, version):
    """mutant version-bytes: WSPStartup with the WORD's bytes swapped."""
    prov = ServiceProvider()
    data = prov.WSPStartup(version, None, proc.upcalls)
    assert (data.wVersion, data.wHighVersion) == (0x0202, 0x0202)
    assert prov.started
    prov.WSPCleanup()
    assert not prov.started


@pytest.mark.parametrize("version", [0x0301, 0x0300, 0xFF01])
def test_wspstartup_refuses_a_low_major_whatever_the_minor(proc, version):
    """mutant version-bytes."""
    prov = ServiceProvider()
    with pytest.raises(wsp.WinsockError) as e:
        prov.WSPStartup(version, None, proc.upcalls)
    assert_winsock(e, WSAVERNOTSUPPORTED)
    assert not prov.started and not proc.initialised


@pytest.mark.parametrize("version", [0x0103, 0x0003])
def test_wsastartup_reads_the_major_version_from_the_low_byte(proc, version):
    """mutant wsastartup-version-bytes."""
    data = proc.WSAStartup(version)
    assert (data.wVersion, data.wHighVersion) == (0x0202, 0x0202)
    assert proc.wsa_started
    proc.WSACleanup()
    assert not proc.wsa_started


@pytest.mark.parametrize("version", [0x0301, 0x0300, 0xFF01])
def test_wsastartup_refuses_a_low_major_whatever_the_minor(proc, version):
    """mutant wsastartup-version-bytes."""
    with pytest.raises(wsp.WinsockError) as e:
        proc.WSAStartup(version)
    assert_winsock(e, WSAVERNOTSUPPORTED)
    assert not proc.wsa_started


# ------------------------------------------------------------ waits and ports
def test_wait_for_exactly_the_maximum_number_of_events(proc):
    """mutant wfme-max: WSA_MAXIMUM_WAIT_EVENTS events are allowed, one
    more is WSA_INVALID_PARAMETER."""
    assert WSA_MAXIMUM_WAIT_EVENTS == 64
    events = [proc.WSACreateEvent() for _ in range(WSA_MAXIMUM_WAIT_EVENTS + 1)]
    try:
        most = events[:WSA_MAXIMUM_WAIT_EVENTS]
        assert proc.WSAWaitForMultipleEvents(most, False, 0, False) == wsp.WSA_WAIT_TIMEOUT
        proc.WSASetEvent(most[-1])
        assert proc.WSAWaitForMultipleEvents(most, False, 0, False) == WSA_WAIT_EVENT_0 + 63
        with pytest.raises(wsp.WinsockError) as e:
            proc.WSAWaitForMultipleEvents(events, False, 0, False)
        assert_winsock(e, WSA_INVALID_PARAMETER)
    finally:
        for ev in events:
            proc.WSACloseEvent(ev)


def test_the_largest_completion_key_is_accepted_and_delivered(proc, sock):
    """mutant iocp-key-max: a completion key is a ULONG_PTR, 0 .. 2**64-1;
    2**64 is WSA_INVALID_PARAMETER."""
    key = 2 ** 64 - 1
    with pytest.raises(wsp.WinsockError) as e:
        proc.CreateIoCompletionPort(sock, None, key + 1)
    assert_winsock(e, WSA_INVALID_PARAMETER)
    port = proc.CreateIoCompletionPort(sock, None, key)
    try:
        ov = Overlapped()
        proc.upcalls.WPUCompleteOverlappedRequest(sock, ov, 0, 5)
        assert proc.GetQueuedCompletionStatus(port, 0) == (0, 5, key, ov)
        assert proc.GetQueuedCompletionStatus(port, 0) == (wsp.WAIT_TIMEOUT, 0, 0, None)
    finally:
        proc.CloseHandle(port)


# ------------------------------------------------------------ the simulated network
def test_a_datagram_that_exactly_fills_the_receive_buffer_is_queued(sim):
    """mutant dgram-rcvbuf: datagrams are queued while they fit SO_RCVBUF
    (the last one may fill it exactly); one that does not fit is dropped."""
    rx, tx = sim.socket(SOCK_DGRAM), sim.socket(SOCK_DGRAM)
    sim.prov.WSPSetSockOpt(rx, SOL_SOCKET, SO_RCVBUF, 100)
    sim.prov.WSPBind(rx, ("127.0.0.1", 0))
    to = sim.prov.WSPGetSockName(rx)
    for size in (60, 40, 1):                      # 60 + 40 == 100: full; the 1 is dropped
        assert sim.prov.WSPSendTo(tx, [bytes([size]) * size], 0, to) == (0, size)
    assert sim.prov.WSPIoctl(rx, FIONREAD) == 60
    sim.prov.WSPIoctl(rx, wsp.FIONBIO, 1)
    buf = bytearray(200)
    src = sim.prov.WSPGetSockName(tx)
    assert sim.prov.WSPRecvFrom(rx, [buf]) == (0, 60, 0, src)
    assert bytes(buf[:60]) == bytes([60]) * 60
    assert sim.prov.WSPRecvFrom(rx, [buf]) == (0, 40, 0, src)
    assert bytes(buf[:40]) == bytes([40]) * 40
    with pytest.raises(wsp.WinsockError) as e:
        sim.prov.WSPRecvFrom(rx, [buf])
    assert_winsock(e, WSAEWOULDBLOCK)


@STACKS
def test_a_connection_accepted_after_its_peer_closed_records_fd_close(sim):
    """mutant accept-eof-fdclose: the accepted socket inherits the listener's
    selection, and what already happened on the connection -- data, then
    the peer's graceful close -- is recorded at once: FD_READ and FD_CLOSE."""
    lst, addr = sim.listener()
    ev = sim.event()
    sim.prov.WSPEventSelect(lst, ev, FD_ACCEPT | FD_READ | FD_CLOSE)
    c = sim.socket()
    sim.prov.WSPConnect(c, addr)
    assert sim.prov.WSPSend(c, [b"last words"]) == (0, 10)
    sim.prov.WSPCloseSocket(c)                     # SO_DONTLINGER: graceful
    assert sim.prov.WSPEnumNetworkEvents(lst, ev) == {FD_ACCEPT: 0}
    a, _ = sim.prov.WSPAccept(lst)
    assert sim.signalled(ev)
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {FD_READ: 0, FD_CLOSE: 0}
    buf = bytearray(32)
    assert sim.prov.WSPRecv(a, [buf]) == (0, 10, 0)
    assert bytes(buf[:10]) == b"last words"
    assert sim.prov.WSPRecv(a, [buf]) == (0, 0, 0)          # end of the stream
    assert sim.prov.WSPEnumNetworkEvents(a, ev) == {}       # FD_CLOSE only once


@STACKS
def test_raising_so_sndbuf_moves_a_waiting_send_into_the_buffer_at_once(sim):
    """mutant sndbuf-no-pump: with the peer's receive buffer full, an
    overlapped send waits for send-buffer room; enlarging SO_SNDBUF makes
    that room, so the send completes inside WSPSetSockOpt."""
    c, a, _ = sim.pair()
    sim.prov.WSPSetSockOpt(a, SOL_SOCKET, SO_RCVBUF, 10)
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 10)
    data = bytes(range(30))
    ov = Overlapped()
    # 10 bytes fill the peer's receive buffer, 10 the send buffer, 10 wait.
    assert sim.prov.WSPSend(c, [data], 0, ov) == (WSA_IO_PENDING, 0)
    assert ov.pending
    sim.prov.WSPSetSockOpt(c, SOL_SOCKET, SO_SNDBUF, 100)
    assert not ov.pending
    assert (ov.Internal, ov.InternalHigh) == (0, 30)
    assert sim.prov.WSPGetOverlappedResult(c, ov, False) == (30, 0)
    assert sim.prov.WSPIoctl(a, FIONREAD) == 10
    got = b""
    buf = bytearray(64)
    while len(got) < 30:
        rc, n, _ = sim.prov.WSPRecv(a, [buf])
        assert rc == 0 and n > 0
        got += bytes(buf[:n])
    assert got == data
