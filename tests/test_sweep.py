"""wsp.sweep and ``wsp sweep`` on the local process pool: run order, counts
that do not depend on the job count, a run that kills its worker, Ctrl-C,
bad values, and the table, JSON, CSV, --out and --plot outputs.  Small runs,
few pools: each pool spawns fresh interpreters."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import importorskip_unless_ci
from wsp import sweep
from wsp.cli import build_parser, main, seeds_arg

TINY = {"connections": 4, "messages": 10}
SMALL = ["--connections", "4", "--messages", "10"]

#: the runs of the determinism tests: plain, through both layers, with a link
CONFIGS = [
    {**TINY, "seed": 0},
    {**TINY, "seed": 1, "lsp": ("trace", "fault")},
    {**TINY, "seed": 2, "latency": 0.002, "loss": 0.2},
    {**TINY, "seed": 3, "clock": "virtual", "jitter": 0.001},
    {**TINY, "seed": 4},
]


@pytest.fixture(scope="module")
def two_jobs():
    return sweep.run(CONFIGS, jobs=2)


def test_defaults_are_the_sim_commands():
    """A config's missing options take ``wsp sim``'s defaults, which are not
    all ScenarioConfig's (connections, messages)."""
    parser = build_parser()
    sim = parser.parse_args(["sim"])
    assert sweep.SIM_DEFAULTS == {name: getattr(sim, name) for name in sweep.SIM_DEFAULTS}
    assert sweep.options({"seed": 3})["connections"] == 128


def test_reports_come_in_config_order_with_the_same_counts_whatever_the_jobs(two_jobs):
    finished = []
    one_job = sweep.run(CONFIGS, jobs=1,
                        progress=lambda done, total, index, report: finished.append(index))
    assert sorted(finished) == list(range(len(CONFIGS)))
    in_process = [sweep.run_one(sweep.options(c)) for c in CONFIGS]
    for config, a, b, c in zip(CONFIGS, one_job, two_jobs, in_process):
        assert a["seed"] == b["seed"] == config["seed"]
        assert a["parameters"]["lsp"] == list(config.get("lsp", ()))
        assert sweep.counts(a) == sweep.counts(b) == sweep.counts(c)
        assert a["leaked"] == 0 and a["errors"] == [] and a["messages"] == 40
    # a link delay without a clock is the virtual clock, as in wsp sim
    assert two_jobs[2]["clock"] == "virtual" and "simulated_seconds" in sweep.counts(two_jobs[2])
    assert two_jobs[2]["datagrams"]["sent"] == 40


def test_aggregates_of_the_rates_and_counts(two_jobs):
    agg = sweep.aggregate(two_jobs)
    rates = agg["rates"]["messages_per_second"]
    assert rates["count"] == len(CONFIGS)
    assert rates["min"] <= rates["p50"] <= rates["p95"] <= rates["p99"] <= rates["max"]
    assert "simulated_seconds" in agg["rates"]            # two runs had a clock
    assert agg["rates"]["simulated_seconds"]["count"] == 2
    assert agg["sums"]["messages"] == 40 * len(CONFIGS)
    assert agg["sums"]["completions"]["success"] == sum(
        r["completions"]["success"] for r in two_jobs)
    assert agg["failed"] == [] and agg["leaked"] == []


def test_distribution_interpolates_like_numpy():
    d = sweep.distribution([4, 1, 3, 2, 5])
    assert d == {"count": 5, "mean": 3.0, "min": 1.0, "p50": 3.0, "p95": 4.8,
                 "p99": pytest.approx(4.96), "max": 5.0}
    assert sweep.distribution([7])["p99"] == 7.0
    assert sweep.distribution([]) == {"count": 0}


def test_a_run_that_kills_its_worker_is_a_failed_run_and_the_others_go_on():
    configs = [{**TINY, "seed": s} for s in range(4)]
    configs[1] = {**configs[1], "_exit": 3}             # the tests' hook: os._exit(3)
    started = time.monotonic()
    reports = sweep.run(configs, jobs=2)
    assert time.monotonic() - started < 60
    assert [sweep.run_status(r) for r in reports] == ["ok", "FAILED", "ok", "ok"]
    assert reports[1]["seed"] == 1 and "exit code 3" in reports[1]["error"]
    agg = sweep.aggregate(reports)
    assert [f["run"] for f in agg["failed"]] == [1]
    assert agg["rates"]["messages_per_second"]["count"] == 3


def test_bad_configs_raise_before_anything_runs():
    with pytest.raises(KeyError, match="not a wsp sim option: nope"):
        sweep.run([{"nope": 1}])
    with pytest.raises(ValueError, match="size"):
        sweep.run([{"size": 5000}])
    with pytest.raises(ValueError, match="executor"):
        sweep.run([TINY], executor="cloud")
    with pytest.raises(ValueError, match="jobs"):
        sweep.run([TINY], jobs=0)
    assert sweep.run([]) == []


def test_seeds_ranges_single_and_lists():
    assert seeds_arg("0-3") == [0, 1, 2, 3]
    assert seeds_arg("5") == [5]
    assert seeds_arg("1-2,7, 9") == [1, 2, 7, 9]


@pytest.mark.parametrize("args, option, word", [
    (["--seeds", "5-3"], "--seeds", "A <= B"),
    (["--seeds", "x"], "--seeds", "not a seed"),
    (["--seeds", "-2"], "--seeds", "not a seed"),
    (["--param", "latency=5h"], "--param", "unknown time unit"),
    (["--param", "bandwidth=1MB/s,0MB/s"], "--param", "more than 0"),
    (["--param", "loss=150%"], "--param", "0..100%"),
    (["--param", "clock=sundial"], "--param", "invalid choice"),
    (["--param", "nope=1,2"], "--param", "NAME=V1,V2"),
    (["--param", "latency"], "--param", "NAME=V1,V2"),
    (["--param", "lsp=trace,zip"], "--param", "unknown layered provider"),
    (["--param", "connections=4,0"], "--param", "at least 1"),
    (["--jobs", "0"], "--jobs", "at least 1"),
    (["--executor", "cloud"], "--executor", "invalid choice"),
])
def test_bad_sweep_values_exit_2_naming_the_option(capsys, args, option, word):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", *SMALL, *args])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in last and word in last


def test_a_value_the_sim_option_refuses_is_a_usage_error_naming_it(capsys):
    # --size's own check (at most 4096 bytes) refuses it, as `wsp sim --size
    # 5000` does: the sweep's usage, then one line naming the option, status 2.
    with pytest.raises(SystemExit) as exited:
        main(["sweep", *SMALL, "--param", "size=64,5000"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: wsp sweep")
    assert err[-1].startswith("wsp sweep: error: argument --param: size=5000")
    assert main(["sweep", *SMALL, "--json", "--csv"]) == 2
    assert "--csv" in capsys.readouterr().err


def test_sweep_json_csv_out_and_table(capsys, tmp_path):
    """Runs: for each --param combination (the first --param slowest), every
    seed; the JSON has the runs and the aggregates, the CSV a row per run
    with the swept values, --out a report per run."""
    out = tmp_path / "runs"
    args = ["sweep", *SMALL, "--seeds", "0-1", "--param", "latency=1ms,3ms",
            "--param", "lsp=none,trace+fault", "--jobs", "2", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"runs", "aggregates"}
    runs = doc["runs"]
    order = [(r["parameters"]["latency"], r["parameters"]["lsp"], r["seed"]) for r in runs]
    assert order == [(lat, lsp, seed) for lat in (0.001, 0.003)
                     for lsp in ([], ["trace", "fault"]) for seed in (0, 1)]
    assert doc["aggregates"]["runs"] == 8 and doc["aggregates"]["failed"] == []
    names = sorted(os.listdir(out))
    assert names == [f"run-{i:04d}-seed{i % 2}.json" for i in range(8)]
    saved = json.loads((out / names[5]).read_text())
    assert sweep.counts(saved) == sweep.counts(runs[5])

    assert main(["sweep", *SMALL, "--seeds", "3,5", "--param", "bandwidth=1MB/s,unlimited",
                 "--jobs", "1", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["run", "seed", "bandwidth"] and "messages_per_second" in rows[0]
    assert [row[:3] for row in rows[1:]] == [["0", "3", "1e+06"], ["1", "5", "1e+06"],
                                              ["2", "3", "none"], ["3", "5", "none"]]
    status = rows[0].index("status")
    assert {row[status] for row in rows[1:]} == {"ok"}

    assert main(["sweep", *SMALL, "--seeds", "0-1", "--jobs", "1"]) == 0
    table = capsys.readouterr().out
    assert "2 of 2 runs finished; 0 failed, 0 leaked" in table
    assert "messages_per_second" in table and "p99" in table


def test_a_failed_run_makes_exit_status_1(capsys, monkeypatch):
    real = sweep.run

    def crashing(configs, **kwargs):
        return real([{**c, "_exit": 3} if c["seed"] == 1 else c for c in configs], **kwargs)

    monkeypatch.setattr(sweep, "run", crashing)
    assert main(["sweep", *SMALL, "--seeds", "0-1", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "failed: run 1 (seed 1): its worker process died (exit code 3)" in out


def test_plot_writes_a_png(tmp_path, capsys):
    importorskip_unless_ci("matplotlib")
    png = tmp_path / "rates.png"
    assert main(["sweep", *SMALL, "--seeds", "0-1", "--param", "latency=1ms,2ms",
                 "--jobs", "2", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_extras_name_themselves(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)          # import ray -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(sweep.MissingExtra, match=r'pip install "wsp\[ray\]"'):
        sweep.run([TINY], executor="ray")
    assert main(["sweep", *SMALL, "--executor", "ray"]) == 2
    assert 'pip install "wsp[ray]"' in capsys.readouterr().err
    assert main(["sweep", *SMALL, "--plot", str(tmp_path / "x.png")]) == 2
    assert 'pip install "wsp[plot]"' in capsys.readouterr().err


def test_ctrl_c_stops_the_pool_and_prints_what_finished(tmp_path):
    """SIGINT after the first results: the sweep stops its workers, prints
    the runs that finished and exits 130 -- within a bound, never hung."""
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(sweep.__file__)), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsp", "sweep", "--connections", "8", "--messages", "100",
         "--seeds", "0-59", "--jobs", "2", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 90
        while not (out.is_dir() and os.listdir(out)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no run finished in 90 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    done = len(os.listdir(out))
    assert 1 <= done < 60
    assert "interrupted:" in stderr and "of 60 runs finished" in stderr
    assert "not run" in stdout and " ok" in stdout
    assert "Traceback" not in stderr
