"""``wsp.microbench``, the measurements behind ``wsp bench``.

Only the shape and the consistency of the report are checked, never a speed:
the project's rule is no timed assertions in tests (the machine is shared and
has slow phases).  One quick run (~0.5 s) is shared by the whole module.
"""
from __future__ import annotations

import json
import math
import platform

import pytest

import wsp
from wsp import microbench

GROUP_NAMES = ["handle-cycle", "handle-buffer64", "queue-one", "queue-batch64", "queue-buffer64",
               "thread-ids", "engine-complete"]


@pytest.fixture(scope="module")
def quick_run():
    calls = []
    report = microbench.run(quick=True, progress=lambda *a: calls.append(a))
    return report, calls


def test_every_group_once_in_order(quick_run):
    report, _ = quick_run
    assert [r["group"] for r in report["results"]] == GROUP_NAMES
    assert [g.name for g in microbench.GROUPS] == GROUP_NAMES


def test_numbers_are_positive_finite_and_consistent(quick_run):
    report, _ = quick_run
    for r in report["results"]:
        for key in ("subject_ns", "peer_ns", "ratio"):
            assert isinstance(r[key], float), (r["group"], key)
            assert math.isfinite(r[key]) and r[key] > 0, (r["group"], key)
        assert r["ratio"] == r["peer_ns"] / r["subject_ns"]
        assert isinstance(r["rounds"], int) and r["rounds"] >= microbench.MIN_ROUNDS
        assert r["what"] and r["subject"] and r["peer"]


def test_header_fields(quick_run):
    report, _ = quick_run
    assert report["core"] == wsp.core_impl
    assert report["version"] == wsp.__version__
    assert report["python"] == platform.python_version()
    assert report["quick"] is True


def test_report_round_trips_through_json(quick_run):
    report, _ = quick_run
    assert json.loads(json.dumps(report)) == report


def test_progress_called_once_per_group_in_order(quick_run):
    _, calls = quick_run
    total = len(GROUP_NAMES)
    assert calls == [(name, i, total) for i, name in enumerate(GROUP_NAMES)]


def test_format_table_names_every_group_and_the_version(quick_run):
    report, _ = quick_run
    text = microbench.format_table(report)
    assert wsp.__version__ in text and wsp.core_impl in text
    for r in report["results"]:
        assert r["group"] in text and r["peer"] in text
    assert text.count("wsp is ") == len(GROUP_NAMES)


def test_format_table_verdicts_and_alignment():
    # A made-up report: the wording and layout do not depend on a timing.
    def row(group, subject_ns, peer_ns):
        return {"group": group, "what": "one thing", "subject": "wsp.X", "peer": "peer-" + group,
                "subject_ns": subject_ns, "peer_ns": peer_ns,
                "ratio": peer_ns / subject_ns, "rounds": 7}
    report = {"version": "9.8.7", "core": "python", "python": "3.11.7", "quick": False,
              "results": [row("fast", 50.0, 175.0), row("slow-group", 200.0, 100.0)]}
    lines = microbench.format_table(report).splitlines()
    assert "9.8.7" in lines[0] and "python core" in lines[0] and "3.11.7" in lines[0]
    fast = next(ln for ln in lines if ln.startswith("fast "))
    slow = next(ln for ln in lines if ln.startswith("slow-group "))
    assert fast.endswith("wsp is 3.50x faster")
    assert slow.endswith("wsp is 2.00x slower")
    assert fast.index("peer-fast") == slow.index("peer-slow-group")    # aligned columns
    assert fast.index("wsp is") == slow.index("wsp is")


@pytest.mark.parametrize("seconds", [0, -1.0, math.nan, math.inf])
def test_bad_budget_is_refused(seconds):
    with pytest.raises(ValueError):
        microbench.run(seconds=seconds)


def test_a_wrong_result_raises(monkeypatch):
    # The queue-one check expects PACKET back; make it expect something else.
    group = next(g for g in microbench.GROUPS if g.name == "queue-one")
    monkeypatch.setattr(microbench, "GROUPS", (group,))
    monkeypatch.setattr(microbench, "PACKET", (0, 512, 7, 1))
    with pytest.raises(AssertionError, match="queue-one|CompletionQueue"):
        microbench.run(seconds=0.01)


def test_engine_group_leaves_nothing_behind(monkeypatch):
    # run() itself raises if the engine's Process holds anything after
    # teardown; a short run of that group alone must pass.
    group = next(g for g in microbench.GROUPS if g.name == "engine-complete")
    monkeypatch.setattr(microbench, "GROUPS", (group,))
    report = microbench.run(seconds=0.01)
    assert [r["group"] for r in report["results"]] == ["engine-complete"]
    assert report["quick"] is False
