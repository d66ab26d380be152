"""Time one echo workload on this tree and on an earlier revision, in the
same run: ``python dev/compare_rev.py REV [--rounds N] [--conns 8]``.

Builds REV's compiled modules in a git worktree under /tmp (once), then
runs ``bench/echo_apps.WspEcho`` (this tree's copy: the same application
on both) in alternating subprocesses, one per tree per round, and prints
each tree's median microseconds per message and their ratio.  The issue
13 target it checks: a network without a clock within 10% of its speed
before simulated time existed (``REV`` = 6f37b28).  Also times this tree
with ``clock="virtual"`` and no link conditions (the clock's own cost),
and with ``--capture`` this tree with a packet capture running (issue 15:
``net.capture`` to a file in a temporary directory).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
from echo_apps import WspEcho
conns, msgs, clock, capture = {conns}, {msgs}, {clock!r}, {capture!r}
app = WspEcho(conns, 1, batch=1) if clock is None else WspEcho(conns, 1, batch=1, clock=clock)
if capture:
    import os, tempfile
    app.net.capture(os.path.join(tempfile.mkdtemp(), "echo.pcap"))
app.run_round(msgs)                                  # warm up
best = None
for _ in range(5):
    t = time.perf_counter(); app.run_round(msgs); d = time.perf_counter() - t
    best = d if best is None else min(best, d)
print(json.dumps(best * 1e6 / (conns * msgs)))
"""


def worktree(rev: str) -> Path:
    """REV checked out and built under /tmp (reused when it exists)."""
    path = Path("/tmp") / f"wsp-rev-{rev}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
                       check=True, capture_output=True)
    if not list((path / "src" / "wsp").glob("_core*.so")):
        # WSP_BUILD_PYTHON: an interpreter with Cython and setuptools, if this one has none
        builder = os.environ.get("WSP_BUILD_PYTHON", sys.executable)
        subprocess.run([builder, "setup.py", "-q", "build_ext", "--inplace"],
                       cwd=path, check=True, capture_output=True)
    return path


def one(src: Path, conns: int, msgs: int, clock: str | None, capture: bool = False) -> float:
    code = PROBE.format(bench=str(ROOT / "bench"), conns=conns, msgs=msgs, clock=clock,
                        capture=capture)
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(json.loads(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--capture", action="store_true",
                        help="also time this tree with a packet capture running")
    args = parser.parse_args()
    old = worktree(args.rev) / "src"
    new = ROOT / "src"
    runs: dict[str, list[float]] = {"before": [], "now": [], "now, virtual clock": []}
    for _ in range(args.rounds):                       # alternate: drift hits all alike
        runs["before"].append(one(old, args.conns, args.messages, None))
        runs["now"].append(one(new, args.conns, args.messages, None))
        runs["now, virtual clock"].append(one(new, args.conns, args.messages, "virtual"))
        if args.capture:
            runs.setdefault("now, capture on", []).append(
                one(new, args.conns, args.messages, None, capture=True))
    base = statistics.median(runs["before"])
    floor = min(runs["before"])
    print(f"{args.conns} connections x {args.messages} messages, ping-pong, one thread; "
          f"median (and min) of {args.rounds} alternating runs (each the best of 5 rounds)")
    for name, values in runs.items():
        med, low = statistics.median(values), min(values)
        # the min is the steadier figure on a shared machine: noise only adds time
        print(f"  {name:<20} {med:8.2f} us/message   {med / base:5.3f}x before ({args.rev})"
              f"   min {low:6.2f} us   {low / floor:5.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
