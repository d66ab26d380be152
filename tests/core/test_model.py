"""Model-based test: random operation sequences run against the compiled core
and the pure twin side by side; every observable result must be identical
(values, handle numbers, error classes and codes)."""
from __future__ import annotations

import os
from array import array

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from wsp import _core_py

if os.environ.get("WSP_NO_EXTENSIONS"):
    pytest.skip("the compiled core is not built", allow_module_level=True)
from wsp import _core  # noqa: E402

ARBITRARY = st.one_of(st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                      st.sampled_from([None, "x", 4.0, True]))
U64ISH = st.one_of(st.integers(min_value=-2, max_value=2 ** 64 + 1), st.sampled_from([1.5, None]))
U64 = st.integers(min_value=0, max_value=2 ** 64 - 1)
# Buffer arguments of the buffer forms: mostly 'Q' arrays, now and then a
# read-only view or an item type the calls refuse.
BUFFER_KIND = st.sampled_from(["Q", "Q", "Q", "Q", "readonly", "i"])


def make_buffer(kind, values):
    if kind == "i":
        return array("i", [v & 0x7FFFFFFF for v in values])
    buf = array("Q", values)
    return memoryview(buf).toreadonly() if kind == "readonly" else buf


def contents(buf):
    return buf.tolist()


def outcome(call, *args):
    try:
        return ("ok", call(*args))
    except Exception as exc:  # noqa: BLE001 -- compared, not swallowed
        return ("error", type(exc).__name__, getattr(exc, "winerror", None))


class TwinMachine(RuleBasedStateMachine):
    handles = Bundle("handles")
    threads = Bundle("threads")

    @initialize(max_handles=st.one_of(st.none(), st.integers(1, 12)))
    def setup(self, max_handles):
        self.tables = (_core.HandleTable(max_handles), _core_py.HandleTable(max_handles))
        self.queues = (_core.CompletionQueue(), _core_py.CompletionQueue())
        self.registries = (_core.ThreadRegistry(), _core_py.ThreadRegistry())
        self.apc_logs = ([], [])

    def both(self, objs, name, *args):
        a = outcome(getattr(objs[0], name), *args)
        b = outcome(getattr(objs[1], name), *args)
        assert a == b, (name, args, a, b)
        return a

    # -- HandleTable --
    @rule(target=handles, ctx=st.integers(0, 50))
    def create(self, ctx):
        result = self.both(self.tables, "create", ctx)
        return result[1] if result[0] == "ok" else 0

    @rule(target=handles, n=st.integers(-1, 6), ctx=st.integers(0, 5))
    def create_many(self, n, ctx):
        result = self.both(self.tables, "create_many", n, ctx)
        return result[1][0] if result[0] == "ok" and result[1] else 0

    @rule(h=st.one_of(handles, ARBITRARY))
    def query(self, h):
        self.both(self.tables, "query", h)

    @rule(h=st.one_of(handles, ARBITRARY))
    def close(self, h):
        self.both(self.tables, "close", h)

    @rule(hs=st.lists(st.one_of(handles, ARBITRARY), max_size=6))
    def close_many(self, hs):
        self.both(self.tables, "close_many", hs)

    def both_buffers(self, objs, name, kind, values, *args):
        """`name` on each twin with its own copy of the buffer; the outcomes
        and what each call left in its buffer must be equal."""
        bufs = (make_buffer(kind, values), make_buffer(kind, values))
        a = outcome(getattr(objs[0], name), bufs[0], *args)
        b = outcome(getattr(objs[1], name), bufs[1], *args)
        assert a == b, (name, kind, values, args, a, b)
        assert contents(bufs[0]) == contents(bufs[1]), (name, kind, values, args)
        return a, contents(bufs[0])

    @rule(target=handles, n=st.integers(0, 6), ctx=st.integers(0, 5), kind=BUFFER_KIND)
    def create_into(self, n, ctx, kind):
        result, values = self.both_buffers(self.tables, "create_into", kind, [0] * n, ctx)
        return values[0] if result[0] == "ok" and values else 0

    @rule(hs=st.lists(st.one_of(handles, U64), max_size=6), kind=BUFFER_KIND)
    def close_from(self, hs, kind):
        self.both_buffers(self.tables, "close_from", kind, hs)

    @rule(h=st.one_of(handles, ARBITRARY))
    def contains(self, h):
        assert (h in self.tables[0]) == (h in self.tables[1])

    # -- CompletionQueue --
    @rule(fields=st.tuples(U64ISH, U64ISH, U64ISH, U64ISH))
    def post(self, fields):
        self.both(self.queues, "post", *fields)

    @rule(packets=st.lists(st.tuples(U64ISH, st.integers(0, 9), st.integers(0, 9),
                                     st.integers(0, 9)), max_size=5))
    def post_many(self, packets):
        self.both(self.queues, "post_many", packets)

    @rule()
    def get(self):
        self.both(self.queues, "get", 0)

    @rule(n=st.integers(-1, 8))
    def get_many(self, n):
        self.both(self.queues, "get_many", n, 0)

    @rule(values=st.one_of(
        # whole packets, distinct values: a packet out of order cannot hide
        st.integers(1, 4).flatmap(lambda k: st.lists(st.one_of(U64, st.integers(0, 99)),
                                                     min_size=4 * k, max_size=4 * k,
                                                     unique=True)),
        st.lists(st.integers(0, 9), max_size=7)), kind=BUFFER_KIND)
    def post_from(self, values, kind):
        self.both_buffers(self.queues, "post_from", kind, values)

    @rule(items=st.one_of(st.sampled_from([8, 12, 16, 20]), st.integers(0, 13)),
          kind=BUFFER_KIND)
    def get_into(self, items, kind):
        self.both_buffers(self.queues, "get_into", kind, [7] * items, 0)

    @rule()
    def close_queue(self):
        self.both(self.queues, "close")

    # -- ThreadRegistry --
    @rule(target=threads, ident=st.integers(1, 4))
    def open_thread(self, ident):
        result = self.both(self.registries, "open", ident)
        return result[1]

    @rule(h=st.one_of(threads, ARBITRARY))
    def close_thread(self, h):
        self.both(self.registries, "close", h)

    @rule(h=st.one_of(threads, ARBITRARY))
    def ident_of(self, h):
        self.both(self.registries, "ident_of", h)

    @rule(h=st.one_of(threads, ARBITRARY), ctx=st.integers(0, 99))
    def queue_apc(self, h, ctx):
        a = outcome(self.registries[0].queue_apc, h, self.apc_logs[0].append, ctx)
        b = outcome(self.registries[1].queue_apc, h, self.apc_logs[1].append, ctx)
        assert a == b

    @rule(ident=st.integers(1, 4))
    def run_apcs(self, ident):
        self.both(self.registries, "run_apcs", ident)
        assert self.apc_logs[0] == self.apc_logs[1]

    @rule(ident=st.integers(1, 4))
    def pending(self, ident):
        self.both(self.registries, "pending", ident)

    # -- thread lifetimes --
    @rule(ident=st.one_of(st.integers(1, 5), ARBITRARY))
    def end_thread(self, ident):
        self.both(self.registries, "end_thread", ident)

    @rule(target=threads, h=st.one_of(threads, ARBITRARY))
    def duplicate(self, h):
        result = self.both(self.registries, "duplicate", h)
        return result[1] if result[0] == "ok" else 0

    @rule(h=st.one_of(threads, ARBITRARY))
    def ended(self, h):
        self.both(self.registries, "ended", h)

    @rule(h=st.one_of(threads, ARBITRARY))
    def pending_of(self, h):
        self.both(self.registries, "pending_of", h)

    @invariant()
    def same_observable_state(self):
        if not hasattr(self, "tables"):
            return
        assert len(self.tables[0]) == len(self.tables[1])
        assert self.tables[0].handles() == self.tables[1].handles()
        assert len(self.queues[0]) == len(self.queues[1])
        assert self.queues[0].closed == self.queues[1].closed
        assert len(self.registries[0]) == len(self.registries[1])


TwinMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                         deadline=None)
test_twins_agree = TwinMachine.TestCase
