"""Sweeps (issue 17): what a process pool buys, and what Ray costs per task.

groups (each entry against its reference in the same run, paired rounds):

* ``sweep-64``  -- a 64-run sweep (connections=16, messages=200, seeds 0-63)
  with ``jobs=2``, per run, against the same sweep with ``jobs=1``
  (target on a 2-core machine: at least 1.7x faster, i.e. a ratio of at
  most 0.59); each round starts its own pool, as ``wsp sweep`` does;
* ``sweep-ray`` -- a sweep of trivial runs (connections=1, messages=1) as
  Ray tasks on a local instance started once (its start is not timed), per
  task, against the same sweep on the local pool (``jobs=2``, the pool's
  start included).  Skipped without Ray.

Run: ``python -m pytest bench/test_bench_sweep.py --benchmark-only
--benchmark-json=sweep.json && python bench/report.py sweep.json``
(``WSP_SWEEP_ROUNDS``, default 3, rounds per entry).
"""
from __future__ import annotations

import os
import statistics
import time

import pytest

from harness import tag  # bench/harness.py
from wsp import sweep

ROUNDS = int(os.environ.get("WSP_SWEEP_ROUNDS", "3"))


def paired(benchmark, target, reference, ops, ref_impl):
    """``benchmark.pedantic`` of `target` (ROUNDS rounds), one timed round of
    `reference` before each, recorded as report.py's paired keys (per op)."""
    ref_times: list[float] = []

    def setup():
        t0 = time.perf_counter()
        reference()
        ref_times.append(time.perf_counter() - t0)
        return (), {}

    rounds = 1 if benchmark.disabled else ROUNDS
    result = benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=0)
    benchmark.extra_info.update(
        ref_impl=ref_impl,
        ref_median_ns=statistics.median(ref_times) / ops * 1e9,
        ref_mean_ns=statistics.fmean(ref_times) / ops * 1e9,
        ref_min_ns=min(ref_times) / ops * 1e9,
        loadavg_1min=os.getloadavg()[0])
    return result


def _check(reports, n):
    assert len(reports) == n
    assert all(sweep.run_status(r) == "ok" for r in reports), [r.get("error") for r in reports]


def test_sweep_of_64_runs_two_jobs_against_one(benchmark):
    benchmark.group = "sweep-64"
    n = 8 if benchmark.disabled else 64
    configs = [{"connections": 16, "messages": 200, "seed": s} for s in range(n)]
    tag(benchmark, "wsp sweep --jobs 2", "subject", n, "run",
        f"{n} runs of connections=16 messages=200, a fresh spawn pool per sweep")
    reports = paired(benchmark, lambda: sweep.run(configs, jobs=2),
                     lambda: _check(sweep.run(configs, jobs=1), n), n, "wsp sweep --jobs 1")
    _check(reports, n)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_overhead_per_task(benchmark, local_ray):
    benchmark.group = "sweep-ray"
    n = 8 if benchmark.disabled else 64
    configs = [{"connections": 1, "messages": 1, "seed": s} for s in range(n)]
    sweep.run(configs[:2], executor="ray")          # the workers start once, untimed
    tag(benchmark, "Ray tasks (local instance, 2 CPUs)", "subject", n, "task",
        f"{n} trivial runs (connections=1 messages=1), one Ray task each")
    reports = paired(benchmark, lambda: sweep.run(configs, executor="ray"),
                     lambda: _check(sweep.run(configs, jobs=2), n), n,
                     "local pool, jobs=2 (its start included)")
    _check(reports, n)
