"""``wsp trace FILE``: the summary of a JSON-lines trace, its ``--json``
form, and exit status 2 with one line for a file it cannot use."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lspkit import Stack
from wsp import Overlapped
from wsp.cli import main
from wsp.lsp import TracingProvider, summarize


@pytest.fixture
def trace_file(tmp_path):
    """A trace of 37 bytes each way (one receive overlapped and done at once)."""
    with Stack(TracingProvider) as st:
        top = st.top
        c, a, _ = st.pair()
        st.port(a)
        top.WSPSend(c, [b"q" * 37])
        top.WSPRecv(a, [bytearray(64)], 0, Overlapped())
        top.WSPSend(a, [b"r" * 37])
        top.WSPRecv(c, [bytearray(64)])
        path = tmp_path / "trace.jsonl"
        top.to_jsonl(path)
    return path, c, a


def test_trace_prints_the_table(trace_file, capsys):
    path, c, a = trace_file
    assert main(["trace", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.rstrip("\n") == summarize(path).format()
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[1:3] == ["74", "74"]                 # 37 + 37 each way, not 111
    row = next(line for line in out.splitlines() if line.startswith(str(a)))
    assert row.split()[3:5] == ["37", "37"]


def test_trace_json(trace_file, capsys):
    path, c, a = trace_file
    assert main(["trace", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == summarize(path).to_dict()
    by_socket = {s["socket"]: s for s in report["sockets"]}
    assert (by_socket[a]["sent"], by_socket[a]["received"]) == (37, 37)
    assert (by_socket[c]["sent"], by_socket[c]["received"]) == (37, 37)
    assert by_socket[a]["calls"] == {"WSPRecv": 1, "WSPSend": 1}
    assert report["time_unit"] == "ns"


def test_a_missing_file_or_a_directory_is_exit_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["trace", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert str(missing) in err and "No such file" in err
    assert main(["trace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err


def test_a_malformed_line_is_exit_2_naming_it(trace_file, capsys):
    path, _, _ = trace_file
    lines = path.read_text().splitlines()
    lines.insert(2, '{"op": "WSPSend", "time": "soon"}')
    path.write_text("\n".join(lines) + "\n")
    assert main(["trace", str(path), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"wsp trace: {path}, line 3: no numeric \"time\"\n"


def test_the_command_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n")
    for args in (["trace", str(tmp_path / "missing")], ["trace", str(bad)]):
        run = subprocess.run([sys.executable, "-m", "wsp", *args], capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
        assert run.stderr.startswith("wsp trace: ") and args[1] in run.stderr
    usage = subprocess.run([sys.executable, "-m", "wsp", "trace"], capture_output=True,
                           text=True, timeout=60)
    assert usage.returncode == 2 and "FILE" in usage.stderr          # argparse's usage error
