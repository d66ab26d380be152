"""wsp sim on a clocked network (SPEC 7.1): two hosts, link conditions,
simulated duration and throughput, and the same simulated times and counts
run after run and whatever the number of worker threads."""
from __future__ import annotations

import time

import pytest

from wsp.scenario import Scenario, ScenarioConfig

# What must not depend on thread timing: every count and the simulated time.
SAME = ("simulated_seconds", "messages", "bytes", "completions", "calls_failed",
        "resets_seen", "close_modes", "closes_would_block", "datagrams", "leaks", "errors")


def run(**kw):
    base = dict(connections=12, messages=15, seed=5, clock="virtual", latency=0.02)
    base.update(kw)
    return Scenario(ScenarioConfig(**base)).run()


def facts(report):
    return {key: report[key] for key in SAME}


def test_a_clocked_run_reports_simulated_time_beside_wall_time():
    report = run()
    assert report["leaked"] == 0 and report["errors"] == []
    assert report["messages"] == 12 * 15
    assert report["clock"] == "virtual"
    assert report["hosts"] == {"client": "10.0.0.2", "server": "10.0.0.1"}
    # ping-pong: one message per round trip of 2 x 20 ms, the last echo plus
    # the closes' round trip on top
    assert 15 * 0.04 <= report["simulated_seconds"] <= 15 * 0.04 + 0.1
    assert report["simulated_messages_per_second"] == pytest.approx(
        report["messages"] / report["simulated_seconds"], rel=1e-3)
    assert report["seconds"] < report["simulated_seconds"] * 20    # far from real time


@pytest.mark.parametrize("link", [
    dict(latency=0.02),
    dict(latency=0.03, jitter=0.01, loss=0.1),
    dict(latency=0.005, bandwidth=20_000),
], ids=["latency", "jitter+loss", "bandwidth"])
def test_the_same_seed_gives_the_same_simulated_run_whatever_the_threads(link):
    first = facts(run(threads=1, **link))
    assert first["errors"] == [] and set(first["leaks"].values()) == {0}
    assert first == facts(run(threads=1, **link))                 # run after run
    for threads in (2, 3):
        assert facts(run(threads=threads, **link)) == first, f"threads={threads}"


def test_loss_shows_in_the_probe_datagrams_and_never_in_the_streams():
    report = run(loss=0.2, latency=0.01)
    d = report["datagrams"]
    assert d["sent"] == report["messages"] == 12 * 15                # every echo arrived
    assert d["received"] + d["lost"] == d["sent"]
    assert 0.1 * d["sent"] < d["lost"] < 0.3 * d["sent"]
    other = run(loss=0.2, latency=0.01, seed=6)
    assert other["datagrams"] != d or other["close_modes"] != report["close_modes"]


def test_a_simulated_duration_cuts_the_run_at_that_simulated_moment():
    report = run(messages=1000, duration=0.5)
    assert report["cut_short"] is True
    assert report["simulated_seconds"] == pytest.approx(0.5)
    assert report["leaked"] == 0 and report["errors"] == []
    # 20 ms each way: at most one message per 40 ms per connection
    assert report["messages"] <= 12 * (0.5 / 0.04 + 1)


class _SlowWatcher(Scenario):
    """A watching thread that is scheduled late after the cut (as on a loaded
    machine): meanwhile the workers go on and simulated time with them."""

    def _let_network_drain(self):
        time.sleep(0.3)
        super()._let_network_drain()


def test_the_counts_of_a_cut_run_are_those_at_the_cut_however_late_it_is_seen():
    config = ScenarioConfig(connections=12, messages=1000, seed=5, clock="virtual",
                            latency=0.02, duration=0.5)
    prompt = Scenario(config).run()
    late = _SlowWatcher(config).run()
    assert late["leaked"] == 0 and late["errors"] == []
    assert late["cut_short"] is True
    assert late["simulated_seconds"] == pytest.approx(0.5)
    assert (late["messages"], late["bytes"]) == (prompt["messages"], prompt["bytes"])
    assert late["messages"] <= 12 * (0.5 / 0.04 + 1)


def test_a_real_clock_run_takes_real_time():
    report = run(clock="real", latency=0.005, connections=4, messages=5)
    assert report["leaked"] == 0 and report["errors"] == []
    assert report["seconds"] >= 5 * 0.01
    assert report["simulated_seconds"] >= 5 * 0.01


def test_a_clock_without_link_conditions_runs_like_no_clock():
    timed, plain = run(latency=0.0), run(clock=None, latency=0.0)
    assert timed["simulated_seconds"] == 0.0
    for key in ("messages", "bytes", "completions", "close_modes", "resets_seen"):
        assert timed[key] == plain[key], key


@pytest.mark.parametrize("kw, exc, word", [
    (dict(clock="fake"), ValueError, "clock"),
    (dict(clock=None, latency=0.01), ValueError, "clock"),
    (dict(latency=-1), ValueError, "latency"),
    (dict(jitter=-1), ValueError, "jitter"),
    (dict(bandwidth=0), ValueError, "bandwidth"),
    (dict(loss=2), ValueError, "loss"),
    (dict(latency="1"), TypeError, "latency"),
])
def test_bad_link_parameters_are_refused_before_anything_runs(kw, exc, word):
    base = dict(connections=2, messages=2, clock="virtual")
    base.update(kw)
    with pytest.raises(exc, match=word):
        ScenarioConfig(**base)
