"""The command line as it stands: ``wsp info`` and usage errors."""
from __future__ import annotations

import json
import subprocess
import sys

import wsp
from wsp.cli import main


def test_info_json_reports_version_and_core(capsys):
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == wsp.__version__
    assert facts["core"] == wsp.core_impl
    assert facts["python"].count(".") == 2
    assert isinstance(facts["free_threaded"], bool)


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "core" in out and wsp.core_impl in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: wsp" in capsys.readouterr().out


def test_python_dash_m_and_bad_option_exit_nonzero():
    ok = subprocess.run([sys.executable, "-m", "wsp", "info"], capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0 and "core" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "wsp", "info", "--nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr
