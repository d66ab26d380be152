"""What ``wsp sim`` says agrees with what it did and with its exit status; the
commands stop quietly on a closed pipe; a subcommand's usage errors print
that subcommand's usage."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wsp.cli import main, sim_summary
from wsp.scenario import Scenario, ScenarioConfig

SMALL = ["--connections", "12", "--messages", "15"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    return env


# ------------------------------------------------------------ closed pipes
@pytest.fixture
def trace_path(tmp_path):
    from lspkit import Stack
    from wsp.lsp import TracingProvider
    with Stack(TracingProvider) as st:
        c, a, _ = st.pair()
        st.top.WSPSend(c, [b"q" * 37])
        path = tmp_path / "trace.jsonl"
        st.top.to_jsonl(path)
    return path


@pytest.mark.parametrize("args", [
    ["sim", *SMALL], ["sim", *SMALL, "--json"], ["info"], ["info", "--json"],
    ["bench", "--quick", "--seconds", "0.01"], ["trace", "TRACE"], ["--help"],
])
def test_a_closed_pipe_ends_the_command_quietly(args, trace_path):
    """The reader went away before the output came (``wsp ... | head -0``):
    status 141, as a shell reports for a tool SIGPIPE ended, and no
    traceback."""
    args = [str(trace_path) if a == "TRACE" else a for a in args]
    proc = subprocess.Popen([sys.executable, "-m", "wsp", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    proc.stdout.close()                      # before the command writes anything
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert err == ""
    assert status == (0 if args == ["--help"] else 141)   # argparse's help: its own exit


def test_head_takes_the_first_line(trace_path):
    for command in ("sim --connections 4 --messages 5", "info", f"trace {trace_path}"):
        run = subprocess.run(f"set -o pipefail; {sys.executable} -m wsp {command} | head -1",
                             shell=True, executable="/bin/bash", capture_output=True,
                             text=True, env=_env(), timeout=120)
        assert run.stderr == "" and run.stdout.count("\n") == 1
        assert run.returncode in (0, 141)    # 141 if head was gone before the write


# ------------------------------------------------------------- usage errors
@pytest.mark.parametrize("args", [
    ["sim", "--size", "5000"], ["sim", "--bogus"], ["sim", "--connections", "0"],
    ["sim", "--clock", "sundial"], ["sim", "--latency", "5h"],
])
def test_every_sim_usage_error_prints_the_sim_usage(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: wsp sim ") and "\nwsp sim: error: " in err


@pytest.mark.parametrize("command,args", [
    ("bench", ["--bogus"]), ("bench", ["--seconds", "0"]), ("info", ["--bogus"]),
    ("trace", ["f", "--bogus"]), ("trace", []),
])
def test_other_subcommands_print_their_own_usage(command, args, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: wsp {command} ") and f"\nwsp {command}: error: " in err


def test_a_top_level_error_prints_the_top_level_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("usage: wsp [-h]")


# ------------------------------------------------- the report and the status
def _rows(text):
    """The summary's rows: label -> value (labels and values are two spaces
    or more apart)."""
    import re
    return {m[1]: m[2] for m in re.finditer(r"^(\S.*?)(?:\s{2,}(.*))?$", text, re.M)}


def test_expected_failures_are_named_so_and_leave_status_0(capsys):
    """The resets and aborts the close modes and the fault layer cause are
    the scenario's, on purpose: listed as expected failures; status 0."""
    rc = main(["sim", "--connections", "40", "--messages", "15", "--lsp", "fault",
               "--seed", "5"])
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rc == 0
    assert "calls failed" not in out
    assert rows["expected failures"].startswith("WSAECONNABORTED ")
    assert "WSAECONNRESET" in rows["expected failures"]
    assert rows["unexpected errors"] == "none" and rows["leaks"] == "none"


def test_an_unexpected_error_or_a_leak_gives_status_1(monkeypatch, capsys):
    real = Scenario._report

    def with_an_error(self, *args):
        report = real(self, *args)
        report["errors"] = ["client receive on connection 3: WSAENETDOWN"]
        return report

    monkeypatch.setattr(Scenario, "_report", with_an_error)
    assert main(["sim", *SMALL]) == 1
    out = capsys.readouterr().out
    assert "unexpected errors   client receive on connection 3: WSAENETDOWN" in out

    def with_a_leak(self, *args):
        report = real(self, *args)
        report["leaks"]["client sockets"] = 2
        report["leaked"] = 2
        return report

    monkeypatch.setattr(Scenario, "_report", with_a_leak)
    assert main(["sim", *SMALL]) == 1
    assert "leaks               client sockets 2" in capsys.readouterr().out


def test_a_torn_down_error_is_expected_any_other_is_not():
    from wsp.errors import WSAECONNRESET, WSAENETDOWN, WinsockError
    sc = Scenario(ScenarioConfig(connections=1, messages=1))
    sc._count_error(WinsockError(WSAECONNRESET, "WSASend"), "client send")
    assert sc._raised == {"WSAECONNRESET": 1} and sc._errors == []
    sc._count_error(WinsockError(WSAENETDOWN, "WSASend"), "client send on connection 0")
    assert sc._raised == {"WSAECONNRESET": 1}
    assert sc._errors == ["client send on connection 0: WSAENETDOWN"]


def test_bytes_say_what_they_count(capsys):
    rc = main(["sim", *SMALL, "--seed", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert report["bytes"] == 12 * 15 * 64 * 4             # payload, each message 4 times
    assert report["goodbye_bytes"] == report["close_modes"]["retry"] * 6
    text = sim_summary(report)
    assert f"bytes moved         {12 * 15 * 64 * 4:,}  (echo payload" in text
    assert "each message 4 times" in text
    assert f"goodbye bytes       {report['goodbye_bytes']}  (the retry closes'" in text


def test_close_modes_say_what_happened_when_cut_short():
    """With --duration the report counts the closes that happened by the cut
    and the connections still open then, not the seed's plan."""
    config = ScenarioConfig(connections=16, messages=200, seed=2, clock="virtual",
                            latency=0.01, duration=1.0)
    report = Scenario(config).run()
    assert report["cut_short"] and report["leaked"] == 0 and report["errors"] == []
    closes = report["closes"]
    assert sum(closes.values()) == 16
    assert closes["open at the end"] == 16            # 200 round trips of 20 ms: > 1 s
    assert sum(report["close_modes"].values()) == 16  # the plan, still in the JSON
    assert "still open at the cut 16" in sim_summary(report)
    short = Scenario(ScenarioConfig(connections=16, messages=20, seed=2, clock="virtual",
                                    latency=0.01, duration=1.0)).run()
    # 20 round trips of 20 ms finish before the cut: every client closed as planned
    assert not short["cut_short"]
    assert short["closes"] == {**short["close_modes"], "after a reset": 0,
                               "open at the end": 0}


def test_a_cut_between_closes_reports_the_closed_and_the_open():
    """Jitter spreads the connections out: the cut at 0.2 simulated seconds
    finds half of them closed (the seed's counts, run after run)."""
    config = ScenarioConfig(connections=8, messages=10, seed=4, clock="virtual",
                            latency=0.01, jitter=0.009, duration=0.2)
    report = Scenario(config).run()
    assert report["cut_short"] and report["leaked"] == 0 and report["errors"] == []
    assert report["closes"] == {"graceful": 2, "hard": 1, "linger": 1, "retry": 0,
                                "after a reset": 0, "open at the end": 4}
    assert report["close_modes"] == {"graceful": 3, "hard": 2, "linger": 1, "retry": 2}
    assert ("close modes         graceful 2, hard 1, linger 1, retry 0; still open at the "
            "cut 4 (closed by WSACleanup)") in sim_summary(report)


def test_injected_resets_are_counted_as_hard_after_a_reset(capsys):
    rc = main(["sim", "--connections", "40", "--messages", "15", "--lsp", "fault",
               "--seed", "5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["faults_injected"] >= 1
    assert report["closes"]["after a reset"] == report["faults_injected"]
    assert "hard after a reset" in sim_summary(report)
