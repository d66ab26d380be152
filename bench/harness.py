"""The measuring machinery shared by the benchmark modules.

Every entry runs through :func:`measure`: ``benchmark.pedantic`` with as many
rounds as fit in ``WSP_BENCH_SECONDS`` of timed work, and one round of its
group's *reference* workload before each round, so that ``report.py`` can
give a **paired ratio** (entry median / median of the reference rounds run
between its own) that survives the slow phases of a shared 2-core machine.
A benchmark module registers each group's reference in :data:`REFERENCES`.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from typing import Callable

SECONDS = float(os.environ.get("WSP_BENCH_SECONDS", "0.5"))
MIN_ROUNDS, MAX_ROUNDS, WARMUP_ROUNDS = 100, 10000, 20

#: group name -> a function that builds the group's Reference
REFERENCES: dict[str, Callable[[], "Reference"]] = {}


class Reference:
    """One group's reference workload, run one round at a time between the
    rounds of every entry of the group (see the module docstring)."""

    def __init__(self, impl, ops, target, make_args):
        self.impl, self.ops = impl, ops
        self.target, self.make_args = target, make_args

    def round(self):
        args = self.make_args()
        t0 = time.perf_counter()
        self.target(*args)
        return time.perf_counter() - t0



def measure(benchmark, group, target, args=(), setup=None):
    """``benchmark.pedantic``: one call of `target` per round, `setup` before
    each round (untimed), as many rounds as fit in SECONDS, and one round of
    the group's reference workload before each round (paired ratio)."""
    if benchmark.disabled:
        return benchmark.pedantic(target, args=args, setup=setup)
    ref = REFERENCES[group]()
    ref_times = []

    def paired_setup():
        ref_times.append(ref.round())
        return setup() if setup is not None else (args, {})

    fastest = math.inf
    for _ in range(3):
        a = paired_setup()[0]
        t0 = time.perf_counter()
        target(*a)
        fastest = min(fastest, time.perf_counter() - t0)
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, SECONDS / fastest)))
    del ref_times[:]
    result = benchmark.pedantic(target, setup=paired_setup, rounds=rounds,
                                warmup_rounds=WARMUP_ROUNDS)
    paired = ref_times[WARMUP_ROUNDS:]
    benchmark.extra_info.update(
        ref_impl=ref.impl,
        ref_median_ns=statistics.median(paired) / ref.ops * 1e9,
        ref_mean_ns=statistics.fmean(paired) / ref.ops * 1e9,
        ref_min_ns=min(paired) / ref.ops * 1e9)
    return result


def tag(benchmark, impl, role, ops, unit, note=""):
    benchmark.extra_info.update(impl=impl, role=role, ops=ops, unit=unit, note=note)


