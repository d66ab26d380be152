"""Turn a pytest-benchmark JSON file into Markdown tables and target checks.

Usage::

    python bench/report.py bench-results.json [--stat median|mean|min] [--strict]

Each benchmark of bench/test_bench_core.py stores in ``extra_info`` how many
operations one timed call performs (``ops``) and what one operation is
(``unit``: call, cycle, handle, packet).  Every time shown here is the
chosen statistic of the per-round times (median by default: on a shared
2-core machine it is far less sensitive than the mean to the rounds another
process interrupted) divided by ``ops``, in nanoseconds per unit.

Ratios compare times: a ratio of 2.0 takes twice as long as the reference.
Two are shown.  "ratio to ref" divides by the group's reference *entry*,
measured before or after this one.  "paired ratio" divides by the reference
workload's rounds that ran interleaved with this entry's rounds (one before
each), so both sides saw the same machine; the targets use it.  Only ratios
inside one run mean anything; absolute times drift between runs.

``--strict`` exits with status 1 when a target is not met (or not measured).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from typing import Callable

GROUP_ORDER = ["call-floor+create", "call-floor+query", "call-floor+close",
               "cycle", "batch-handles", "buffer-handles64", "buffer-handles1024", "queue-one",
               "queue-batch64", "buffer-queue64", "diag-int-alloc"]
ROLE_ORDER = {"reference": 0, "subject": 1, "peer": 2, "diagnostic": 3}
DISTURBED = 1.3   # statistic / fastest round above this: flag the entry


@dataclass
class Entry:
    group: str
    impl: str
    role: str
    unit: str
    note: str
    ops: int
    ns: float          # chosen statistic, per operation
    min_ns: float      # fastest round, per operation
    rounds: int
    ref_impl: str      # the reference workload run between this entry's rounds
    ref_ns: float      # its statistic per operation (nan if not recorded)

    @property
    def paired(self) -> float:
        """This entry's time over the interleaved reference rounds' time."""
        return self.ns / self.ref_ns


def load(path: str, stat: str) -> dict[str, list[Entry]]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    groups: dict[str, list[Entry]] = {}
    for b in data["benchmarks"]:
        extra = b.get("extra_info") or {}
        if "ops" not in extra:
            sys.exit(f"{b['fullname']}: extra_info has no 'ops'; cannot normalise it")
        ops = int(extra["ops"])
        s = b["stats"]
        groups.setdefault(b["group"] or "(no group)", []).append(Entry(
            group=b["group"], impl=extra.get("impl", b["name"]),
            role=extra.get("role", "peer"), unit=extra.get("unit", "op"),
            note=extra.get("note", ""), ops=ops,
            ns=s[stat] / ops * 1e9, min_ns=s["min"] / ops * 1e9,
            rounds=s["rounds"], ref_impl=extra.get("ref_impl", ""),
            ref_ns=float(extra.get(f"ref_{stat}_ns", "nan"))))
    return groups


def machine_line(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    m = data.get("machine_info", {})
    cpu = m.get("cpu", {}) or {}
    parts = [f"{m.get('python_implementation', '?')} {m.get('python_version', '?')}",
             f"{cpu.get('brand_raw', m.get('processor', '?'))}",
             f"{cpu.get('count', '?')} logical CPUs",
             f"run {data.get('datetime', '?')}"]
    commit = data.get("commit_info", {}) or {}
    if commit.get("id"):
        dirty = " (dirty tree)" if commit.get("dirty") else ""
        parts.append(f"commit {commit['id'][:10]}{dirty}")
    return "; ".join(parts)


def reference(entries: list[Entry]) -> Entry | None:
    refs = [e for e in entries if e.role == "reference"]
    return refs[0] if refs else None


def table(group: str, entries: list[Entry], stat: str) -> str:
    ref = reference(entries)
    unit = entries[0].unit
    rows = sorted(entries, key=lambda e: (ROLE_ORDER.get(e.role, 9), e.ns))
    out = [f"### {group}", ""]
    if ref is not None:
        out.append(f"Reference: **{ref.impl}**. Times are the {stat} per {unit}, in ns.")
    out.append("")
    out.append(f"| entry | role | timed | {stat} ns/{unit} | min ns/{unit} | ratio to ref "
               f"| paired ratio | {stat}/min | rounds |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for e in rows:
        ratio = f"{e.ns / ref.ns:.2f}x" if ref is not None else "-"
        paired = "-" if math.isnan(e.ref_ns) else f"{e.paired:.2f}x"
        out.append(f"| {e.impl} | {e.role} | {e.note} | {e.ns:.1f} | {e.min_ns:.1f} "
                   f"| {ratio} | {paired} | {e.ns / e.min_ns:.2f} | {e.rounds} |")
    return "\n".join(out)


def disturbed(groups: dict[str, list[Entry]]) -> list[str]:
    """Entries whose typical round is far slower than their fastest one.

    On this kind of machine a neighbour (a build, a test run) on the other
    core can slow every round of an entry by 30-80% for as long as it runs;
    the median then moves as a whole and the IQR stays small, but the gap to
    the fastest round gives it away.
    """
    lines = []
    for g, entries in groups.items():
        for e in entries:
            if e.ns > DISTURBED * e.min_ns:
                lines.append(f"- {g} / {e.impl}: typical round {e.ns / e.min_ns:.2f}x its "
                             "fastest -- the machine was slow while it ran; its plain "
                             "ratio is suspect, its paired ratio less so")
    return lines


# ------------------------------------------------------------------- targets
@dataclass
class Target:
    text: str
    measure: Callable[[dict[tuple[str, str], Entry]], float]
    ok: Callable[[float], bool]
    fmt: str                      # how to show the measured value


def _ns(group: str, impl: str):
    return lambda idx: idx[(group, impl)].ns


def _paired(group: str, impl: str, ref_impl: str, invert: bool = False):
    """`impl`'s time over `ref_impl`'s, from the rounds run interleaved."""
    def measure(idx: dict[tuple[str, str], Entry]) -> float:
        e = idx[(group, impl)]
        if e.ref_impl != ref_impl or math.isnan(e.ref_ns):
            raise KeyError(f"{group}/{impl} was not paired with {ref_impl}")
        return 1.0 / e.paired if invert else e.paired
    return measure


TARGETS = [
    *[Target(f"per-call {op} of wsp._core within 1.5x of the Cython call floor",
             _paired(f"call-floor+{op}", "wsp._core", "call floor"),
             lambda r: r <= 1.5, "{:.2f}x the floor")
      for op in ("create", "query", "close")],
    Target("create+query+close cycle at least 2x faster than DictHandleTable",
           _paired("cycle", "DictHandleTable", "wsp._core"),
           lambda r: r >= 2.0, "{:.2f}x faster"),
    Target("create+query+close cycle at least 5x faster than GenSlotTable",
           _paired("cycle", "GenSlotTable", "wsp._core"),
           lambda r: r >= 5.0, "{:.2f}x faster"),
    # The list forms' targets (create_many+close_many at 10 ns per handle,
    # post_many+get_many(64) 2x SimpleQueue) are retired: a list form must
    # build a Python int or 4-tuple per item (16.8 / 35.8 ns, measured).
    # The buffer forms carry the targets now.
    Target("create_into+close_from at most 10 ns per handle (64 per call)",
           _ns("buffer-handles64", "wsp._core"),
           lambda v: v <= 10.0, "{:.1f} ns/handle"),
    Target("post+get of one packet no slower than SimpleQueue put+get (ratio <= 1.0)",
           _paired("queue-one", "wsp._core", "SimpleQueue"),
           lambda r: r <= 1.0, "ratio {:.2f}"),
    Target("post_from+get_into of 64 at least 5x faster per packet than SimpleQueue",
           _paired("buffer-queue64", "wsp._core", "SimpleQueue", invert=True),
           lambda r: r >= 5.0, "{:.2f}x faster"),
    Target("echo, 8 connections ping-pong: wsp at least 3x uvloop's messages per second",
           _paired("echo-8conn", "wsp", "uvloop", invert=True),
           lambda r: r >= 3.0, "{:.2f}x uvloop's rate"),
    Target("echo, 8 connections, through the application API: at least 2x uvloop's rate",
           _paired("echo-8conn", "wsp, application API", "uvloop", invert=True),
           lambda r: r >= 2.0, "{:.2f}x uvloop's rate"),
    Target("echo at 10,000 connections: per message at most 1.5x that at 8",
           _paired("scale-echo", "wsp, 10,000 connections", "wsp, 8 connections"),
           lambda r: r <= 1.5, "{:.2f}x"),
    Target("WSPCleanup of 10,000 open sockets at most 20 us per socket",
           lambda idx: idx[("scale-cleanup", "wsp WSPCleanup")].ns / 1000.0,
           lambda v: v <= 20.0, "{:.1f} us/socket"),
    Target("WSPCloseSocket flat whatever the peak of operations in flight (at most 1.2x)",
           _paired("scale-close", "wsp close, after a 20,000-operation peak",
                   "wsp close, after a 10-operation peak"),
           lambda r: r <= 1.2, "{:.2f}x the cost after a 10-operation peak"),
]


def check_targets(groups: dict[str, list[Entry]]) -> tuple[list[str], bool]:
    idx = {(e.group, e.impl): e for entries in groups.values() for e in entries}
    lines, all_met = [], True
    for t in TARGETS:
        try:
            value = t.measure(idx)
        except KeyError:
            lines.append(f"- target {t.text}: not measured in this run")
            all_met = False
            continue
        met = t.ok(value)
        all_met &= met
        lines.append(f"- target {t.text}: measured {t.fmt.format(value)} -> "
                     f"{'met' if met else 'NOT met'}")
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="file written by pytest --benchmark-json=PATH")
    ap.add_argument("--stat", choices=["median", "mean", "min"], default="median",
                    help="statistic of the per-round times (default: median)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if any target is not met")
    args = ap.parse_args(argv)

    groups = load(args.json, args.stat)
    print(f"Machine: {machine_line(args.json)}")
    print(f"Statistic: {args.stat} of the rounds, divided by the operations per round.")
    print()
    order = [g for g in GROUP_ORDER if g in groups] + sorted(set(groups) - set(GROUP_ORDER))
    for g in order:
        print(table(g, groups[g], args.stat))
        print()
    noisy = disturbed(groups)
    if noisy:
        print("### Disturbed entries")
        print()
        print("\n".join(noisy))
        print()
    lines, all_met = check_targets(groups)
    print("### Targets")
    print()
    print("\n".join(lines))
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
