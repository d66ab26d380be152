"""The handle tables a user would write instead of using wsp's core.

Both peers are written the way a careful Python programmer would write them
for production use -- plain, idiomatic, no deliberate slowness -- and with
the call shapes of ``wsp._core.HandleTable``:

* ``create(context=None) -> int``
* ``query(handle) -> context``
* ``close(handle) -> context``

An unknown, stale or closed handle raises
``WinsockError(WSAENOTSOCK)`` as the core does.  Neither peer enforces a
``max_handles`` limit and neither takes a lock of its own: each relies on
single dict/list operations being atomic under the GIL.  Both choices can
only make the peers faster than the core they are compared with.

``handles()`` and ``len()`` exist so that the benchmarks can reset a table
between rounds and check it afterwards; they are not timed.
"""
from __future__ import annotations

from typing import Any

from wsp.errors import WSAENOTSOCK, WinsockError
from wsp.microbench import DictHandleTable as _DictHandleTable

__all__ = ["DictHandleTable", "GenSlotTable"]


class DictHandleTable(_DictHandleTable):
    """``wsp.microbench.DictHandleTable`` (the same peer ``wsp bench`` uses):
    handles are keys of a dict, values from ``itertools.count(4, 4)``."""

    __slots__ = ()

    def handles(self) -> list[int]:
        return list(self._contexts)


# Handle layout of GenSlotTable: ((generation << INDEX_BITS) | index) << 2,
# so handles are non-zero multiples of 4 like Windows SOCKET values.
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_GEN_SHIFT = _INDEX_BITS + 2


class GenSlotTable:
    """A slot list with a generation per slot, the classic stale-handle guard.

    ``_gens[i]`` is odd while slot ``i`` is live and even while it is free;
    it goes up by one on every create and every close of that slot.  A handle
    carries the (odd) generation it was issued with, so once its slot is
    closed -- or closed and reused -- the handle no longer matches and is
    rejected.  Free slots are reused last-in first-out from a free list.
    (Generations are unbounded Python ints; a slot would need 2**29 reuses
    before its handles passed 2**63, which no benchmark comes near.)
    """

    __slots__ = ("_contexts", "_free", "_gens")

    def __init__(self) -> None:
        self._gens: list[int] = []
        self._contexts: list[Any] = []
        self._free: list[int] = []

    def create(self, context: Any = None) -> int:
        gens = self._gens
        if self._free:
            i = self._free.pop()
            gen = gens[i] + 1
            gens[i] = gen
            self._contexts[i] = context
        else:
            i = len(gens)
            gen = 1
            gens.append(1)
            self._contexts.append(context)
        return ((gen << _INDEX_BITS) | i) << 2

    def query(self, handle: int) -> Any:
        i = (handle >> 2) & _INDEX_MASK
        gens = self._gens
        # Live slots have an odd generation and handles carry the generation
        # they were issued with, so equality means "this very handle, live".
        if handle & 3 or i >= len(gens) or gens[i] != handle >> _GEN_SHIFT:
            raise WinsockError(WSAENOTSOCK)
        return self._contexts[i]

    def close(self, handle: int) -> Any:
        i = (handle >> 2) & _INDEX_MASK
        gens = self._gens
        if handle & 3 or i >= len(gens) or gens[i] != handle >> _GEN_SHIFT:
            raise WinsockError(WSAENOTSOCK)
        gens[i] += 1
        contexts = self._contexts
        context = contexts[i]
        contexts[i] = None
        self._free.append(i)
        return context

    def __len__(self) -> int:
        return len(self._gens) - len(self._free)

    def handles(self) -> list[int]:
        return [((gen << _INDEX_BITS) | i) << 2
                for i, gen in enumerate(self._gens) if gen & 1]
