"""wsp.sweep on Ray, against a local instance (``ray.init(num_cpus=2)``):
one task per run, the same counts as the local pool whatever order the tasks
finish in, a task that kills its worker is a failed run.  Skipped without
Ray, except on CI (``pip install ".[ray]"``), where it must run."""
from __future__ import annotations

import pytest

from helpers import importorskip_unless_ci
from wsp import sweep
from wsp.cli import main

ray = importorskip_unless_ci("ray")

TINY = {"connections": 4, "messages": 10}
CONFIGS = [
    {**TINY, "seed": 0},
    {**TINY, "seed": 1, "lsp": ("trace", "fault")},
    {**TINY, "seed": 2, "latency": 0.002, "loss": 0.2},
    {**TINY, "seed": 3, "clock": "virtual", "jitter": 0.001},
    # a bigger run first in the list, so that it finishes after later ones
    {"connections": 16, "messages": 60, "seed": 4},
    {**TINY, "seed": 5},
]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; sweep.run uses it as it is
    (and leaves it running) since Ray is already initialised."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_pools_counts_in_config_order(local_ray):
    finished = []
    on_ray = sweep.run(CONFIGS, executor="ray",
                       progress=lambda done, total, index, report: finished.append(index))
    assert sorted(finished) == list(range(len(CONFIGS)))
    assert ray.is_initialized()                  # not ours to shut down
    local = sweep.run(CONFIGS, jobs=2)
    for config, a, b in zip(CONFIGS, on_ray, local):
        assert a["seed"] == config["seed"]
        assert sweep.counts(a) == sweep.counts(b)
        assert a["leaked"] == 0 and a["errors"] == []


def test_a_task_that_kills_its_worker_is_a_failed_run(local_ray):
    configs = [{**TINY, "seed": 0}, {**TINY, "seed": 1, "_exit": 3}, {**TINY, "seed": 2}]
    reports = sweep.run(configs, executor="ray")
    assert [sweep.run_status(r) for r in reports] == ["ok", "FAILED", "ok"]
    assert "WorkerCrashedError" in reports[1]["error"]


def test_wsp_sweep_executor_ray(local_ray, capsys):
    assert main(["sweep", "--connections", "4", "--messages", "10", "--seeds", "0-3",
                 "--executor", "ray", "--json"]) == 0
    import json
    doc = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in doc["runs"]] == [0, 1, 2, 3]
    assert doc["aggregates"]["sums"]["messages"] == 160
