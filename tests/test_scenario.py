"""wsp.scenario, the engine of ``wsp sim``: its configuration checks and the
rules each close mode follows (the CLI tests cover the report as a whole)."""
from __future__ import annotations

import random

import pytest

from wsp import scenario
from wsp.scenario import CLOSE_MODES, Scenario, ScenarioConfig


@pytest.mark.parametrize("kwargs,error", [
    ({"connections": 0}, ValueError),
    ({"messages": 0}, ValueError),
    ({"threads": 0}, ValueError),
    ({"size": 0}, ValueError),
    ({"size": 4097}, ValueError),
    ({"lsp": ("trace", "zip")}, ValueError),
    ({"duration": 0}, ValueError),
    ({"connections": 2.5}, TypeError),
    ({"seed": "1"}, TypeError),
    ({"messages": True}, TypeError),
])
def test_bad_configuration(kwargs, error):
    with pytest.raises(error):
        ScenarioConfig(**kwargs)


@pytest.mark.parametrize("mode", CLOSE_MODES)
def test_each_close_mode_on_its_own(mode, monkeypatch):
    """Every connection closes in `mode`; the server sees exactly what the
    mode promises, and nothing leaks."""
    real = random.Random.choice
    monkeypatch.setattr(random.Random, "choice",
                        lambda self, seq: mode if seq == CLOSE_MODES else real(self, seq))
    report = Scenario(ScenarioConfig(connections=6, messages=5, threads=2)).run()
    assert report["close_modes"] == {m: (6 if m == mode else 0) for m in CLOSE_MODES}
    assert report["messages"] == 30 and report["leaked"] == 0 and report["errors"] == []
    completions = report["completions"]
    if mode in ("graceful", "linger"):
        assert completions["end of stream"] == 6 and report["resets_seen"] == 0
        assert report["closes_would_block"] == 0 and report["calls_failed"] == {}
    elif mode == "hard":
        assert completions["WSAECONNRESET"] == 6 and report["resets_seen"] == 6
        assert "end of stream" not in completions
    else:                                   # retry: would-block, shutdown, close, "bye"
        assert report["closes_would_block"] == 6
        # the echo of "bye" meets a peer that shut its sending down and closed:
        # the server's next receive fails with WSAECONNABORTED (Windows; Wine's test_shutdown)
        assert report["calls_failed"] == {"WSAECONNABORTED": 6}
        assert report["resets_seen"] == 6


def test_the_fault_layer_resets_the_chosen_connections(monkeypatch):
    monkeypatch.setattr(scenario, "FAULTY_SHARE", 1.0)     # every connection
    report = Scenario(ScenarioConfig(connections=5, messages=5, lsp=("fault", "trace"))).run()
    assert report["faults_injected"] == 5 and report["messages"] == 0
    assert report["calls_failed"]["WSAECONNRESET"] >= 5
    assert report["leaked"] == 0 and report["errors"] == []
    assert report["trace_records"] > 0
