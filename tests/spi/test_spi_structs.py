"""Overlapped, ThreadId, Linger, WSPData."""
from __future__ import annotations

import pytest

from helpers import assert_winsock
from wsp import Linger, Overlapped, ThreadId, WSPData
from wsp.errors import WSA_IO_PENDING, WSAEINVAL, WinsockError


def test_overlapped_has_pywin32_fields_and_pending():
    ov = Overlapped()
    assert (ov.Internal, ov.InternalHigh, ov.Offset, ov.OffsetHigh) == (0, 0, 0, 0)
    assert ov.hEvent is None and ov.object is None and ov.pending is False
    ov.object = "mine"
    ov.Internal = WSA_IO_PENDING
    assert ov.pending is True
    ov.Internal = 0
    assert ov.pending is False
    assert Overlapped(hEvent=8).hEvent == 8
    with pytest.raises(TypeError):
        Overlapped(hEvent="event")
    with pytest.raises(AttributeError):
        ov.not_a_field = 1          # __slots__: typos fail loudly


def test_thread_id_fields():
    tid = ThreadId(12, 0)
    assert tid.ThreadHandle == 12 and tid.Reserved == 0
    assert tid == ThreadId(12) and hash(tid) == hash(ThreadId(12))
    with pytest.raises(TypeError):
        ThreadId("12")


def test_linger_fields_and_validation():
    lg = Linger(1, 30)
    assert (lg.l_onoff, lg.l_linger) == (1, 30) and lg == Linger(1, 30)
    assert Linger() == Linger(0, 0)
    for bad in ((-1, 0), (0, 65536)):
        with pytest.raises(WinsockError) as e:
            Linger(*bad)
        assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        Linger(1, 2.5)


def test_wspdata_repr():
    data = WSPData(0x0202, 0x0202, "x")
    assert "0x0202" in repr(data) and data.szDescription == "x"
