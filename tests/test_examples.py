"""The programs in examples/ run as their docstrings say: each as
``python examples/X.py`` (exit status 0, its report printed), and the
pytest-style one under pytest too.  They run in a subprocess on the wsp
these tests import (its directory's parent first on PYTHONPATH), with the
same WSP_NO_EXTENSIONS, and a time-out against hangs."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wsp
import wsp.lsp

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 90            # s, against a hang; each takes a few seconds


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    package_parent = str(Path(wsp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, (
        f"{args} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_every_example_is_tested_here() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == [
        "retrying_client_fault_test.py", "thousand_connections.py", "trace_analysis.py"]


@pytest.mark.timeout(TIMEOUT + 30)
def test_retrying_client_runs_as_a_script() -> None:
    out = _run(str(EXAMPLES / "retrying_client_fault_test.py")).stdout
    assert out.splitlines() == [
        "test_first_send_reset_then_the_retry_succeeds: passed",
        "test_every_send_reset_the_client_gives_up: passed",
        "test_without_a_fault_one_attempt_is_enough: passed",
    ]


@pytest.mark.timeout(TIMEOUT + 30)
def test_retrying_client_passes_under_pytest() -> None:
    out = _run("-m", "pytest", "-q", "-p", "no:cacheprovider",
               str(EXAMPLES / "retrying_client_fault_test.py")).stdout
    assert re.search(r"^3 passed\b", out, re.M), out


@pytest.mark.timeout(TIMEOUT + 30)
def test_trace_analysis_writes_and_summarises_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    out = _run(str(EXAMPLES / "trace_analysis.py"), str(path)).stdout
    lines = path.read_text(encoding="utf-8").splitlines()
    assert out.startswith(f"{len(lines)} records over ")
    assert re.search(r"WSAECONNREFUSED x1", out), out
    total = out.splitlines()[-1].split()
    assert total[:3] == ["total", "6420", "6420"], out
    assert " ".join(total[3:]) == "1 error(s)"
    # the file is the tracer's: the same summary as the program's
    summary = wsp.lsp.summarize(path)
    assert (summary.sent, summary.received) == (6420, 6420)
    assert summary.errors == {"WSAECONNREFUSED": 1}


@pytest.mark.timeout(TIMEOUT + 30)
def test_thousand_connections() -> None:
    out = _run(str(EXAMPLES / "thousand_connections.py")).stdout
    assert out.startswith("1000 connections open at once, 2001 sockets (with the listener), "
                          "1000 messages answered, 0 resources left; "), out
