"""Reading captures back with the real tshark, for the capture tests
(tests/sim/test_sim_capture.py, tests/aio/test_aio_capture.py): the
helpers run tshark with checksums checked, bounded in time, and fail the
test on what its expert information must never say about a wsp capture."""
from __future__ import annotations

import collections
import subprocess

from helpers import require_tool_unless_ci

TSHARK_TIMEOUT = 60            # seconds any tshark run may take
#: tshark does not check checksums unless told to
CHECKSUMS = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
             "-o", "udp.check_checksum:TRUE"]
#: what tshark's expert information must never say about a capture
FORBIDDEN = ("retransmission", "out-of-order", "out of order", "not captured",
             "wasn't captured", "unseen", "malformed", "bad checksum", "incorrect",
             "spurious", "lost", "duplicate ack", "dup ack")


# ------------------------------------------------------------------ tshark
def tshark(*args: str) -> str:
    """tshark's standard output for `args` (checksums checked); fails the
    test on a non-zero exit or after TSHARK_TIMEOUT seconds."""
    exe = require_tool_unless_ci("tshark")
    done = subprocess.run([exe, *CHECKSUMS, *args], capture_output=True, text=True,
                          timeout=TSHARK_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fields(path, *names: str, display_filter: str = "") -> list[list[str]]:
    """One row per packet of `path`: the values of the fields `names`."""
    args = ["-r", str(path), "-T", "fields", "-E", "separator=/t"]
    if display_filter:
        args += ["-Y", display_filter]
    for name in names:
        args += ["-e", name]
    return [line.split("\t") for line in tshark(*args).splitlines() if line.strip()]


def expert(path) -> str:
    """tshark's expert information about `path`, checked to hold no error
    and none of the FORBIDDEN findings."""
    text = tshark("-r", str(path), "-q", "-z", "expert")
    lower = text.lower()
    assert "errors (" not in lower, text
    found = [word for word in FORBIDDEN if word in lower]
    assert not found, f"tshark's expert information says {found}:\n{text}"
    return text


def payload_by_direction(path) -> dict[tuple[int, str], int]:
    """(TCP stream index, source "host:port") -> payload bytes, by tshark
    (directions that carried no payload left out)."""
    totals: collections.Counter = collections.Counter()
    for stream, src, port, length in fields(path, "tcp.stream", "ip.src", "tcp.srcport",
                                            "tcp.len", display_filter="tcp"):
        totals[(int(stream), f"{src}:{port}")] += int(length)
    return {key: n for key, n in totals.items() if n}


def tcp_flags(path) -> list[tuple[str, int, int]]:
    """(source "host:port", TCP flags, payload length) of each TCP packet, in order."""
    return [(f"{src}:{port}", int(flags, 16), int(length))
            for src, port, flags, length in fields(path, "ip.src", "tcp.srcport",
                                                   "tcp.flags", "tcp.len",
                                                   display_filter="tcp")]


