"""What a packet capture costs (issue 15): the ping-pong echo of
bench/test_bench_echo.py over wsp's simulated network, with ``net.capture``
writing every packet to a pcap file in a temporary directory, against the
same echo with no capture running, in the same run.

group ``echo-capture`` (reference: the echo with capture off; ops =
messages per round, 1 connection x 500 messages of 64 B, ping-pong):

* ``wsp, capture off``: the echo as test_bench_echo's ``wsp`` entry runs it
  (its paired ratio against the reference is the noise floor: 1.00);
* ``wsp, capture on``: the same network with a capture running; every
  message is two data segments and two ACKs in the file.

The capture starts after the connections are made (so the file shows no
handshake): what is timed is the per-message cost only.  Capture off must
cost nothing measurable: the data path's one attribute test.
"""
from __future__ import annotations

import os

import pytest

from echo_apps import SIZE, WspEcho  # bench/echo_apps.py
from harness import REFERENCES, Reference, measure, tag  # bench/harness.py

GROUP = "echo-capture"
PER_ROUND = 500
SMOKE_MESSAGES = 40


class CaptureOffReference(Reference):
    """The echo with no capture, on its own network and connection."""

    def __init__(self) -> None:
        self.echo = WspEcho(1, 1, batch=1)
        super().__init__("wsp, capture off", PER_ROUND, self.echo.run_round,
                         lambda: (PER_ROUND,))

    def close(self) -> None:
        self.echo.close()


REFERENCES[GROUP] = CaptureOffReference


@pytest.mark.parametrize("capture", [False, True], ids=["capture-off", "capture-on"])
def test_echo_capture(benchmark, tmp_path, capture):
    benchmark.group = GROUP
    n = SMOKE_MESSAGES if benchmark.disabled else PER_ROUND
    name = "wsp, capture on" if capture else "wsp, capture off"
    tag(benchmark, name, "subject", n, "message",
        f"1 conn x {n} msgs of {SIZE} B, ping-pong; "
        + ("net.capture(pcap in tmp) running" if capture else "no capture"))
    echo = WspEcho(1, 1, batch=1)
    path = tmp_path / "echo.pcap"
    cap = echo.net.capture(path) if capture else None
    try:
        done = measure(benchmark, GROUP, echo.run_round, args=(n,))
    finally:
        if cap is not None:
            cap.close()
        echo.close()
    assert done == n
    if capture:
        # every message: a segment and an ACK each way (40-byte headers, 64 B payload)
        assert os.path.getsize(path) > 4 * n * 40
        benchmark.extra_info["pcap_bytes"] = os.path.getsize(path)
