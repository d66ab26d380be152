"""HandleTable (SPEC §5), on both cores."""
from __future__ import annotations

import gc
import weakref

import pytest

from wsp.constants import INVALID_SOCKET
from wsp.errors import WSAEINVAL, WSAENOBUFS, WSAENOTSOCK, WinsockError


class Ctx:
    """A context object that can be weakly referenced (to prove release)."""


# Values that can never name a handle: zero, not multiples of 4, negative,
# beyond 2**63, INVALID_SOCKET, and objects that are not ints at all.
NEVER_HANDLES = [0, 1, 2, 3, 5, -4, -(2 ** 63), 2 ** 63, 2 ** 64, 2 ** 100, INVALID_SOCKET,
                 True, False, None, "4", b"4", 4.0, (4,), object()]


def assert_winsock(excinfo, code):
    assert isinstance(excinfo.value, WinsockError)
    assert excinfo.value.winerror == code


def test_create_returns_valid_handle_values(core):
    table = core.HandleTable()
    handles = [table.create(i) for i in range(200)]
    assert len(set(handles)) == 200
    for h in handles:
        assert type(h) is int
        assert h != 0 and h % 4 == 0 and h < 2 ** 63 and h != INVALID_SOCKET
    assert len(table) == 200


def test_query_and_close_return_the_same_context_object(core):
    table = core.HandleTable()
    ctx = Ctx()
    h = table.create(ctx)
    assert table.query(h) is ctx
    assert table.query(h) is ctx            # query does not consume
    assert h in table
    assert table.close(h) is ctx
    assert h not in table
    assert len(table) == 0


def test_context_defaults_to_none(core):
    table = core.HandleTable()
    h = table.create()
    assert table.query(h) is None


def test_closed_handle_is_notsock_for_query_and_second_close(core):
    table = core.HandleTable()
    h = table.create("x")
    table.close(h)
    with pytest.raises(WinsockError) as e:
        table.query(h)
    assert_winsock(e, WSAENOTSOCK)
    with pytest.raises(WinsockError) as e:
        table.close(h)
    assert_winsock(e, WSAENOTSOCK)


@pytest.mark.parametrize("bad", NEVER_HANDLES, ids=repr)
def test_never_handles_are_notsock(core, bad):
    table = core.HandleTable()
    table.create("live")                    # a live handle must not be reachable
    for method in (table.query, table.close):
        with pytest.raises(WinsockError) as e:
            method(bad)
        assert_winsock(e, WSAENOTSOCK)
    assert bad not in table
    assert len(table) == 1


def test_unknown_handle_of_right_shape_is_notsock(core):
    table = core.HandleTable()
    h = table.create(1)
    for other in (h + 4, h + (1 << 34), h - (1 << 34), h ^ (1 << 40)):
        with pytest.raises(WinsockError) as e:
            table.query(other)
        assert_winsock(e, WSAENOTSOCK)


def test_stale_handle_does_not_reach_the_new_socket_in_its_slot(core):
    table = core.HandleTable()
    old = table.create("old")
    table.close(old)
    new = table.create("new")               # same slot (LIFO reuse), next generation
    assert new != old
    assert new >> 23 == old >> 23          # slot index above the 21 generation bits
    with pytest.raises(WinsockError) as e:
        table.query(old)
    assert_winsock(e, WSAENOTSOCK)
    assert table.query(new) == "new"


def test_closed_value_not_reissued_for_2_pow_20_creations(core):
    table = core.HandleTable()
    first = table.create(None)
    table.close(first)
    seen_again = False
    created = 0
    while created < 2 ** 20:
        batch = table.create_many(1024)
        seen_again |= first in batch
        created += len(batch)
        table.close_many(batch)
    assert created >= 2 ** 20
    assert not seen_again
    assert len(table) == 0


def test_max_handles_full_is_enobufs_and_recovers(core):
    table = core.HandleTable(max_handles=3)
    assert table.max_handles == 3
    hs = [table.create(i) for i in range(3)]
    with pytest.raises(WinsockError) as e:
        table.create(99)
    assert_winsock(e, WSAENOBUFS)
    assert len(table) == 3
    table.close(hs[1])
    h = table.create(42)
    assert table.query(h) == 42


@pytest.mark.parametrize("bad, exc, code", [
    (0, WinsockError, WSAEINVAL),
    (-1, WinsockError, WSAEINVAL),
    (2 ** 64, WinsockError, WSAEINVAL),
    ("3", TypeError, None),
    (3.0, TypeError, None),
])
def test_bad_max_handles(core, bad, exc, code):
    with pytest.raises(exc) as e:
        core.HandleTable(max_handles=bad)
    if code is not None:
        assert_winsock(e, code)


def test_create_many_and_close_many(core):
    table = core.HandleTable()
    ctx = Ctx()
    hs = table.create_many(300, ctx)        # >= 256: the loop runs without the GIL
    assert len(hs) == 300 and len(set(hs)) == 300
    assert all(table.query(h) is ctx for h in hs)
    assert len(table) == 300
    assert table.close_many(hs[:100]) == 100
    assert len(table) == 200
    # unknown, stale, duplicate and non-handle entries are skipped
    mixed = hs[:100] + [hs[150], hs[150], 0, -4, "x", None, 2 ** 70] + hs[200:]
    assert table.close_many(mixed) == 101
    assert sorted(table.handles()) == sorted(hs[100:150] + hs[151:200])
    assert table.close_many(iter(table.handles())) == 99   # any iterable
    assert len(table) == 0


def test_create_many_edge_cases(core):
    table = core.HandleTable(max_handles=10)
    assert table.create_many(0) == []
    table.create_many(4, "a")
    with pytest.raises(WinsockError) as e:
        table.create_many(7)                # all or nothing
    assert_winsock(e, WSAENOBUFS)
    assert len(table) == 4
    assert len(table.create_many(6)) == 6
    with pytest.raises(WinsockError) as e:
        table.create_many(-1)
    assert_winsock(e, WSAEINVAL)
    with pytest.raises(TypeError):
        table.create_many("2")
    with pytest.raises(TypeError):
        table.create_many(2.0)


def test_close_many_rejects_non_iterables(core):
    table = core.HandleTable()
    with pytest.raises(TypeError):
        table.close_many(5)
    with pytest.raises(TypeError):
        table.close_many(None)
    assert table.close_many([]) == 0


def test_handles_snapshot_is_in_slot_order(core):
    table = core.HandleTable()
    hs = [table.create(i) for i in range(6)]
    table.close(hs[2])
    table.close(hs[4])
    snap = table.handles()
    assert snap == [hs[0], hs[1], hs[3], hs[5]]
    h = table.create("new")                 # reuses slot 4 (last freed)
    assert table.handles() == [hs[0], hs[1], hs[3], h, hs[5]]
    snap.clear()                            # a snapshot, not a view
    assert len(table.handles()) == 5


def test_contexts_are_released_by_close_close_many_and_teardown(core):
    table = core.HandleTable()
    a, b, c = Ctx(), Ctx(), Ctx()
    refs = [weakref.ref(x) for x in (a, b, c)]
    ha = table.create(a)
    hb = table.create_many(3, b)
    table.create(c)
    del a, b, c
    gc.collect()
    assert all(r() is not None for r in refs)      # the table holds them
    table.close(ha)
    gc.collect()
    assert refs[0]() is None
    table.close_many(hb)
    gc.collect()
    assert refs[1]() is None
    del table                                      # teardown drops the rest
    gc.collect()
    assert refs[2]() is None


def test_failed_create_does_not_leak_context(core):
    table = core.HandleTable(max_handles=1)
    table.create(None)
    ctx = Ctx()
    ref = weakref.ref(ctx)
    with pytest.raises(WinsockError):
        table.create(ctx)
    with pytest.raises(WinsockError):
        table.create_many(5, ctx)
    del ctx
    gc.collect()
    assert ref() is None


def test_debug_counter_counts_tables(core):
    gc.collect()
    before = core.debug_counters()["tables"]
    tables = [core.HandleTable() for _ in range(3)]
    assert core.debug_counters()["tables"] == before + 3
    del tables
    gc.collect()
    assert core.debug_counters()["tables"] == before


def test_repr_mentions_state(core):
    table = core.HandleTable(max_handles=5)
    table.create()
    assert "live=1" in repr(table) and "max_handles=5" in repr(table)
