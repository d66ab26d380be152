"""The command line: ``wsp sim`` (the main job), ``wsp bench``, ``wsp info``,
and usage errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import wsp
from wsp._compiled import COMPILED_MODULES
from wsp.cli import main
from wsp.scenario import CLOSE_MODES

SMALL = ["--connections", "12", "--messages", "15", "--threads", "2"]
# What a report must say; every count is a function of the parameters and seed.
REPORT_KEYS = {"wsp", "core", "python", "seed", "parameters", "seconds", "cut_short",
               "messages", "bytes", "operations", "messages_per_second",
               "operations_per_second", "completions", "calls_failed", "closes_would_block",
               "resets_seen", "close_modes", "faults_injected", "trace_records", "leaks",
               "leaked", "errors", "clock", "hosts", "simulated_seconds",
               "simulated_messages_per_second", "simulated_bytes_per_second", "datagrams",
               "packets_captured", "goodbye_bytes", "closes"}
COUNTS = ("messages", "bytes", "goodbye_bytes", "completions", "calls_failed",
          "closes_would_block", "resets_seen", "close_modes", "closes", "faults_injected",
          "trace_records", "leaks")


def sim_json(capsys, *args):
    rc = main(["sim", *SMALL, "--json", *args])
    report = json.loads(capsys.readouterr().out)
    return rc, report


# ------------------------------------------------------------------------ sim
def test_sim_json_has_the_documented_fields_and_no_leaks(capsys):
    rc, report = sim_json(capsys, "--seed", "3")
    assert rc == 0
    assert set(report) == REPORT_KEYS
    assert report["wsp"] == wsp.__version__ and report["core"] == wsp.core_impl
    assert report["seed"] == 3
    assert report["parameters"] == {"connections": 12, "messages": 15, "size": 64,
                                    "threads": 2, "seed": 3, "lsp": [], "duration": None,
                                    "clock": None, "latency": 0.0, "jitter": 0.0,
                                    "bandwidth": None, "loss": 0.0, "pcap": None}
    # no clock: no simulated time, no probe datagrams, the two machines all the same
    assert report["clock"] is None and report["simulated_seconds"] == 0.0
    assert report["datagrams"] == {"sent": 0, "received": 0, "lost": 0}
    assert report["hosts"] == {"client": "10.0.0.2", "server": "10.0.0.1"}
    assert report["leaked"] == 0 and set(report["leaks"].values()) == {0}
    assert report["errors"] == [] and report["cut_short"] is False
    # every connection completed all its messages: no faults without the fault layer
    assert report["messages"] == 12 * 15 and report["faults_injected"] == 0
    modes = report["close_modes"]
    assert set(modes) == set(CLOSE_MODES) and sum(modes.values()) == 12
    # each "retry" close first got WSAEWOULDBLOCK; each "hard" close reset the server
    assert report["closes_would_block"] == modes["retry"]
    assert report["completions"].get("WSAECONNRESET", 0) == modes["hard"]
    # a graceful or lingering close ends the server's stream
    assert report["completions"]["end of stream"] == modes["graceful"] + modes["linger"]
    # after a retried close the server echoes the held "bye" into a socket that shut
    # its sending down and closed: its next receive fails at once with WSAECONNABORTED
    # (what Windows does; Wine's test_shutdown)
    assert report["calls_failed"] == ({"WSAECONNABORTED": modes["retry"]} if modes["retry"]
                                      else {})
    assert report["resets_seen"] == modes["hard"] + modes["retry"]
    # payload bytes of completed sends and receives: each message is sent, received,
    # echoed and received again (4 x 64); each retry's 3-byte "bye", received and echoed
    # by the server, is counted apart
    assert report["bytes"] == 12 * 15 * 64 * 4
    assert report["goodbye_bytes"] == modes["retry"] * 3 * 2
    # what happened is the plan: every client closed in its seeded mode
    assert report["closes"] == {**modes, "after a reset": 0, "open at the end": 0}
    assert report["operations"] > 4 * report["messages"]
    assert report["messages_per_second"] > 0


def test_sim_same_seed_same_counts_other_seed_other_modes(capsys):
    _, a = sim_json(capsys, "--seed", "11", "--threads", "3")
    _, b = sim_json(capsys, "--seed", "11")
    _, c = sim_json(capsys, "--seed", "12")
    # thread count changes the timing, never the counts
    assert {k: a[k] for k in COUNTS} == {k: b[k] for k in COUNTS}
    assert a["close_modes"] != c["close_modes"] or a["bytes"] != c["bytes"]


def test_sim_through_trace_and_fault_layers(capsys):
    rc, report = sim_json(capsys, "--lsp", "trace,fault", "--connections", "40",
                          "--seed", "5")
    assert rc == 0 and report["leaked"] == 0 and report["errors"] == []
    assert report["parameters"]["lsp"] == ["trace", "fault"]
    faulty = report["faults_injected"]
    assert faulty >= 1                                   # seed 5 picks some: deterministic
    # a connection reset on its first send moves no message
    assert report["messages"] == (40 - faulty) * 15
    assert report["calls_failed"]["WSAECONNRESET"] >= faulty
    assert report["trace_records"] > 4 * report["messages"]
    _, again = sim_json(capsys, "--lsp", "trace,fault", "--connections", "40", "--seed", "5")
    assert {k: again[k] for k in COUNTS} == {k: report[k] for k in COUNTS}


def test_sim_text_summary(capsys):
    assert main(["sim", *SMALL, "--lsp", "fault"]) == 0
    out = capsys.readouterr().out
    for label in ("scenario", "stack", "messages", "operations", "bytes", "close modes",
                  "resets seen", "completions", "leaks"):
        assert label in out
    assert "fault over sim provider" in out
    assert "leaks" in out and "none" in out.split("leaks", 1)[1].splitlines()[0]


def test_sim_duration_cuts_a_long_run_short(capsys):
    rc = main(["sim", "--connections", "8", "--messages", "1000000", "--duration", "0.3",
               "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["cut_short"] is True
    assert 0 < report["messages"] < 8 * 1000000
    assert report["leaked"] == 0 and report["errors"] == []     # cleanup resets the rest
    assert report["parameters"]["duration"] == 0.3
    assert report["seconds"] >= 0.3                 # cut once the duration had passed


@pytest.mark.parametrize("args,message", [
    (["sim", "--connections", "0"], "must be at least 1"),
    (["sim", "--messages", "many"], "not a whole number"),
    (["sim", "--size", "5000"], "at most 4096"),
    (["sim", "--lsp", "trace,nope"], "unknown layered provider"),
    (["sim", "--lsp", ""], "unknown layered provider"),
    (["sim", "--duration", "-1"], "positive number of seconds"),
    (["sim", "--duration", "soon"], "not a number of seconds"),
    (["bench", "--seconds", "0"], "positive number of seconds"),
    (["sim", "--nope"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_options_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "wsp sim --lsp trace,fault" in out
    for command in ("sim", "bench", "info"):
        assert command in out


# ---------------------------------------------------------------------- bench
def test_bench_quick_json(capsys):
    assert main(["bench", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["core"] == wsp.core_impl and report["quick"] is True
    groups = [r["group"] for r in report["results"]]
    assert groups == ["handle-cycle", "handle-buffer64", "queue-one", "queue-batch64",
                      "queue-buffer64", "thread-ids", "engine-complete"]
    for r in report["results"]:
        assert r["subject_ns"] > 0 and r["peer_ns"] > 0
        assert r["ratio"] == pytest.approx(r["peer_ns"] / r["subject_ns"])


def test_bench_quick_table(capsys):
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "handle-cycle" in out and "SimpleQueue" in out and wsp.__version__ in out


# ----------------------------------------------------------------------- info
def test_info_json_reports_version_core_and_build(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == wsp.__version__
    assert facts["core"] == wsp.core_impl
    assert facts["python"].count(".") == 2
    assert isinstance(facts["free_threaded"], bool)
    assert isinstance(facts["debug_build"], bool)
    # the core, then every compiled data-plane module: is its compiled twin in use?
    assert facts["compiled_modules"] == wsp.compiled_modules()
    assert list(facts["compiled_modules"]) == ["wsp._core", *COMPILED_MODULES]
    assert (facts["core"] == "cython") is all(facts["compiled_modules"].values())
    if facts["compiled_modules"]["wsp._core"]:          # the build facts are the core's
        assert facts["cython"].split(".")[0] == "3"          # the Cython that built it
        assert facts["build_flags"]
    else:
        assert facts["cython"] is None and facts["build_flags"] is None


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "core" in out and wsp.core_impl in out and "cython" in out
    lines = out.splitlines()
    for name, compiled in wsp.compiled_modules().items():
        (line,) = [ln for ln in lines if ln.split()[:1] == [name]]
        assert line.split()[1] == ("compiled" if compiled else "source")


def test_info_json_in_a_run_with_one_module_from_source():
    env = dict(os.environ, WSP_PURE_MODULES="wsp.sim.data")
    env.pop("WSP_NO_EXTENSIONS", None)
    out = subprocess.run([sys.executable, "-m", "wsp", "info", "--json"], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    facts = json.loads(out)
    assert facts["core"] == "python" and facts["compiled_modules"]["wsp.sim.data"] is False
    if not os.environ.get("WSP_NO_EXTENSIONS"):        # a normal install: only that one
        assert [n for n, c in facts["compiled_modules"].items() if not c] == ["wsp.sim.data"]
        assert facts["cython"] is not None             # the core is still the compiled one


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: wsp" in capsys.readouterr().out


def test_console_entry_points_and_bad_option_exit_nonzero():
    ok = subprocess.run([sys.executable, "-m", "wsp", "info"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "core" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "wsp", "info", "--nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr
    sim = subprocess.run([sys.executable, "-m", "wsp", "sim", *SMALL, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert sim.returncode == 0 and json.loads(sim.stdout)["leaked"] == 0
    assert sim.stderr == ""                 # no progress bar when stderr is not a terminal


class _Terminal:
    """A stand-in for a terminal on stderr: tqdm writes its bar here."""

    def __init__(self):
        self.text = []

    def isatty(self):
        return True

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["sim", *SMALL, "--json"]) == 0
    json.loads(capsys.readouterr().out)               # stdout stays pure JSON
    drawn = "".join(term.text)
    assert "msg" in drawn and "/180" in drawn         # a bar over 12 x 15 messages
    monkeypatch.undo()
    assert main(["sim", *SMALL, "--json"]) == 0       # not a terminal: nothing drawn
    assert capsys.readouterr().err == ""


def test_sim_link_options_take_units_and_imply_the_virtual_clock(capsys):
    rc, report = sim_json(capsys, "--latency", "20ms", "--jitter", "2ms", "--bandwidth",
                          "1MB/s", "--loss", "5%")
    assert rc == 0 and report["leaked"] == 0 and report["errors"] == []
    p = report["parameters"]
    assert (p["clock"], p["latency"], p["jitter"], p["bandwidth"], p["loss"]) == (
        "virtual", 0.02, 0.002, 1_000_000.0, 0.05)
    assert report["clock"] == "virtual" and report["simulated_seconds"] > 15 * 0.036
    d = report["datagrams"]
    assert d["sent"] == report["messages"] and d["received"] + d["lost"] == d["sent"]
    rc, again = sim_json(capsys, "--latency", "20ms", "--jitter", "2ms", "--bandwidth",
                         "1MB/s", "--loss", "5%", "--threads", "1")
    assert {k: again[k] for k in COUNTS + ("simulated_seconds", "datagrams")} == {
        k: report[k] for k in COUNTS + ("simulated_seconds", "datagrams")}


def test_sim_summary_shows_simulated_time_beside_wall_time(capsys):
    assert main(["sim", *SMALL, "--latency", "10ms"]) == 0
    out = capsys.readouterr().out
    assert "wall time" in out and "simulated time" in out
    assert "virtual; hosts 10.0.0.2 -> 10.0.0.1: 10 ms latency" in out


@pytest.mark.parametrize("flag, value, word", [
    ("--latency", "5h", "unknown time unit"),
    ("--latency", "-5ms", "negative"),
    ("--jitter", "abc", "not a number"),
    ("--bandwidth", "0MB/s", "more than 0"),
    ("--bandwidth", "10furlongs/s", "unknown rate unit"),
    ("--loss", "150%", "0..100%"),
    ("--loss", "1x", "probability"),
    ("--clock", "sundial", "invalid choice"),
])
def test_sim_refuses_bad_link_options_with_exit_status_2(capsys, flag, value, word):
    with pytest.raises(SystemExit) as info:
        main(["sim", *SMALL, f"{flag}={value}"])
    assert info.value.code == 2
    assert word in capsys.readouterr().err
