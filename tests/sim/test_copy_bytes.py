"""The byte copy under the stream data path (wsp.sim.socket.copy_bytes and
PendingRecv.fill): the compiled twin copies contiguous buffers with memmove
and everything else with Python's slices; both must give Python's bytes."""
from __future__ import annotations

import array

import pytest

from wsp.sim.socket import PendingRecv, copy_bytes


@pytest.mark.parametrize("src", [b"abcdefgh", bytearray(b"abcdefgh"),
                                 memoryview(b"abcdefgh"), memoryview(b"xabcdefghx")[1:9]])
def test_copy_bytes_copies_the_range_asked_for(src):
    dst = bytearray(b"." * 10)
    copy_bytes(memoryview(dst), 2, src, 3, 4)
    assert dst == b"..defg...."
    copy_bytes(memoryview(dst), 0, src, 0, 0)          # nothing to copy: nothing changes
    assert dst == b"..defg...."


def test_copy_bytes_takes_strided_views_the_python_way():
    backing = bytearray(b"." * 8)
    strided_dst = memoryview(backing)[::2]             # 4 bytes, not contiguous
    copy_bytes(strided_dst, 1, b"WXYZ", 1, 3)
    assert backing == b"..X.Y.Z."
    strided_src = memoryview(b"a1b2c3d4")[::2]          # "abcd"
    dst = bytearray(4)
    copy_bytes(memoryview(dst), 0, strided_src, 1, 3)
    assert dst == b"bcd\x00"


def test_copy_bytes_out_of_range_raises_instead_of_overrunning():
    dst = bytearray(4)
    with pytest.raises(ValueError):
        copy_bytes(memoryview(dst), 2, b"abcdef", 0, 4)  # 2 + 4 > 4
    assert dst == bytearray(4)


def test_fill_scatters_from_an_offset_over_several_buffers():
    a, b, c = bytearray(3), bytearray(2), bytearray(10)
    entry = PendingRecv([memoryview(a), memoryview(b), memoryview(c)], None)
    assert entry.capacity == 15
    assert entry.fill(b"0123456789", 4) == 6
    assert (a, b, c[:1]) == (b"456", b"78", b"9")
    assert entry.fill(b"0123", 4) == 0 and entry.fill(b"0123", 9) == 0


def test_fill_into_one_buffer_stops_at_its_size():
    buf = bytearray(4)
    entry = PendingRecv([memoryview(buf)], None)
    assert entry.fill(bytearray(b"abcdefgh"), 1) == 4 and buf == b"bcde"
    words = array.array("i", [0, 0])
    entry = PendingRecv([memoryview(words).cast("B")], None)
    assert entry.fill(b"\x01\x00\x00\x00\x02\x00\x00\x00") == 8 and list(words) == [1, 2]
