"""The ``wsp`` command line (also ``python -m wsp``).

* ``wsp sim``   -- the main job: the echo scenario of :mod:`wsp.scenario`
  over the simulated network, with a summary table (or ``--json``);
* ``wsp bench`` -- the core and engine microbenchmarks of
  :mod:`wsp.microbench`, each against its peer, as a table of ratios;
* ``wsp trace FILE`` -- the summary (:func:`wsp.lsp.summarize`) of a
  TracingProvider's JSON-lines trace, per socket;
* ``wsp info``  -- version, core in use, which modules are compiled, how the
  core was built, interpreter.

Exit status: 0 on success; 1 when ``wsp sim`` finds a leak or an unexpected
error (the resets and aborts its close modes and fault layer cause on purpose
are expected failures and leave it 0);
2 for a usage error (argparse's convention), and when ``wsp trace`` cannot
read its file or a line of it is not a trace record; 141 (128 + SIGPIPE, as
a shell reports for a Unix tool that a closed pipe ended) when stdout closes
early, as in ``wsp sim | head -1``, with nothing on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import sysconfig
from typing import Any, Callable, Sequence

import wsp

EXAMPLES = """\
examples:
  wsp sim                               the default scenario (about 5-10 s)
  wsp sim --connections 16 --messages 50 --seed 7 --json
  wsp sim --lsp trace,fault             the same through two layered providers
  wsp sim --connections 4 --pcap run.pcap   and read it: tshark -r run.pcap -z conv,tcp
  wsp bench                             core and engine against their peers
  wsp bench --quick --json
  wsp trace trace.jsonl                 per-socket bytes, calls, errors of a trace
  wsp info
"""


# ----------------------------------------------------------------------- info
def info_facts() -> dict[str, Any]:
    """What ``wsp info`` reports."""
    build = wsp.core.build_info()
    return {
        "version": wsp.__version__,
        "core": wsp.core_impl,
        # module -> True when its compiled twin is the one in use
        "compiled_modules": wsp.compiled_modules(),
        "cython": build["cython"],
        "build_flags": build["flags"],
        "debug_build": build["debug"],
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "platform": platform.platform(),
    }


def _print_facts(facts: dict[str, Any]) -> None:
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if isinstance(value, dict):         # compiled_modules: one line per module
            print(key)
            inner = max(len(k) for k in value)
            for name, compiled in value.items():
                print(f"  {name:<{inner}}  {'compiled' if compiled else 'source'}")
            continue
        print(f"{key:<{width}}  {'-' if value is None else value}")


# ------------------------------------------------------------------------ sim
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _message_size(text: str) -> int:
    value = _positive_int(text)
    if value > 4096:
        raise argparse.ArgumentTypeError(f"must be at most 4096 bytes, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "m": 60.0, "min": 60.0}
_SIZE_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30,
               "b": 1 / 8, "kb": 10**3 / 8, "Kb": 10**3 / 8, "Mb": 10**6 / 8, "Gb": 10**9 / 8}


def _split_number(text: str) -> tuple[float, str]:
    """``"50ms"`` -> ``(50.0, "ms")``; ArgumentTypeError without a number."""
    text = text.strip()
    i = len(text)
    while i and not (text[i - 1].isdigit() or text[i - 1] == "."):
        i -= 1
    try:
        value = float(text[:i])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value, text[i:].strip()


def duration_arg(text: str) -> float:
    """A time span: ``50ms``, ``0.05s``, ``20us``, ``2min``; a bare number is
    seconds.  Seconds, >= 0."""
    value, unit = _split_number(text)
    if unit not in ("", *_TIME_UNITS):
        raise argparse.ArgumentTypeError(
            f"unknown time unit {unit!r} in {text!r}; use s, ms, us or min")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value * _TIME_UNITS.get(unit, 1.0)


def rate_arg(text: str) -> float:
    """A bandwidth: ``10MB/s``, ``100kB/s``, ``8Mb/s`` (bits), ``1MiB/s``; a
    bare number is bytes per second.  Bytes per second, > 0."""
    value, unit = _split_number(text.removesuffix("/s").removesuffix("ps"))
    if unit not in ("", *_SIZE_UNITS):
        raise argparse.ArgumentTypeError(
            f"unknown rate unit in {text!r}; use B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s "
            "or bits: kb/s, Mb/s, Gb/s")
    rate = value * _SIZE_UNITS.get(unit, 1)
    if not rate > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return rate


def fraction_arg(text: str) -> float:
    """A probability: ``1%``, ``0.5%`` or ``0.01``; within [0, 1]."""
    value, unit = _split_number(text)
    if unit not in ("", "%"):
        raise argparse.ArgumentTypeError(f"not a probability: {text!r} (say 1% or 0.01)")
    if unit == "%":
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..100% (0..1): {text!r}")
    return value


def _layers(text: str) -> tuple[str, ...]:
    from .scenario import LAYERS
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in LAYERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown layered provider {', '.join(unknown) or text!r}; "
            f"choose from {', '.join(LAYERS)} (comma-separated, top layer first)")
    return names


def _progress_bar(total: int, unit: str) -> tuple[Callable[..., None], Callable[[], None]]:
    """A progress bar on stderr when it is a terminal (tqdm), else nothing."""
    if not sys.stderr.isatty():
        return (lambda *args: None), (lambda: None)
    try:
        from tqdm import tqdm
    except ImportError:          # an install without the dependency: no bar
        return (lambda *args: None), (lambda: None)
    bar = tqdm(total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(done: int, *_: Any) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def sim_summary(report: dict[str, Any]) -> str:
    """The readable summary of a ``wsp sim`` report."""
    p = report["parameters"]
    stack = " over ".join([*p["lsp"], "sim provider"])
    rows = [
        ("scenario", f"{p['connections']} connections x {p['messages']} messages of "
                     f"{p['size']} B, {p['threads']} worker threads per process, seed {p['seed']}"),
        ("stack", stack),
        ("core", f"{report['core']} (wsp {report['wsp']}, Python {report['python']})"),
        ("wall time", f"{report['seconds']:.2f} s" + ("  (cut short by --duration)"
                                                 if report["cut_short"] else "")),
        ("messages", f"{report['messages']:,}  ({report['messages_per_second']:,.0f}/s)"),
    ]
    if report.get("clock"):
        link = [f"{p['latency'] * 1000:g} ms latency"] if p["latency"] else []
        if p["jitter"]:
            link.append(f"± {p['jitter'] * 1000:g} ms jitter")
        if p["bandwidth"]:
            link.append(f"{p['bandwidth'] / 1e6:g} MB/s")
        if p["loss"]:
            link.append(f"{p['loss'] * 100:g}% datagram loss")
        sim_rate = report["simulated_messages_per_second"] or 0.0
        sim_bytes = report["simulated_bytes_per_second"] or 0.0
        rows += [
            ("clock", f"{report['clock']}; hosts {report['hosts']['client']} -> "
                      f"{report['hosts']['server']}: {', '.join(link) or 'a perfect link'}"),
            ("simulated time", f"{report['simulated_seconds']:.6f} s of echo  "
                               f"({sim_rate:,.0f} messages/s, {sim_bytes:,.0f} B/s simulated)"),
        ]
    if report["datagrams"]["sent"]:
        d = report["datagrams"]
        rows.append(("datagrams", f"{d['sent']:,} sent, {d['received']:,} received, "
                                  f"{d['lost']:,} lost"))
    if report.get("packets_captured") is not None:
        rows.append(("capture", f"{report['packets_captured']:,} packets to {p['pcap']}"))
    rows += [
        ("operations", f"{report['operations']:,}  ({report['operations_per_second']:,.0f}/s)"),
        ("bytes moved", f"{report['bytes']:,}  (echo payload sent + received, "
                        "both ends: each message 4 times)"),
    ]
    if report["goodbye_bytes"]:
        rows.append(("goodbye bytes", f"{report['goodbye_bytes']:,}  (the retry closes' "
                                      "\"bye\", received and echoed by the server)"))
    rows += [
        ("close modes", _close_modes(report)),
        ("resets seen", f"{report['resets_seen']}"),
    ]
    if "fault" in p["lsp"]:
        rows.append(("faults injected", str(report["faults_injected"])))
    if "trace" in p["lsp"]:
        rows.append(("trace records", f"{report['trace_records']:,}"))
    rows.append(("completions", ""))
    rows += [(f"  {name}", f"{count:,}") for name, count in report["completions"].items()]
    if report["calls_failed"]:
        rows.append(("expected failures", ", ".join(
            f"{name} {count:,}" for name, count in report["calls_failed"].items())
            + "  (calls that met the scenario's own resets and aborts)"))
    rows.append(("closes would-block", f"{report['closes_would_block']} (then retried)"))
    leaked = {k: v for k, v in report["leaks"].items() if v}
    rows.append(("leaks", "none" if not leaked else
                 ", ".join(f"{k} {v}" for k, v in leaked.items())))
    rows.append(("unexpected errors", "; ".join(report["errors"]) or "none"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}".rstrip() for name, value in rows)


def _close_modes(report: dict[str, Any]) -> str:
    """How the client sockets actually closed (at the cut, with
    ``--duration``): the seeded modes, hard after a reset, still open."""
    closes = dict(report["closes"])
    still_open = closes.pop("open at the end")
    after_reset = closes.pop("after a reset")
    text = ", ".join(f"{mode} {count}" for mode, count in closes.items())
    if after_reset:
        text += f"; hard after a reset {after_reset}"
    if still_open:
        where = " at the cut" if report["cut_short"] else ""
        text += f"; still open{where} {still_open} (closed by WSACleanup)"
    return text


def run_sim(args: argparse.Namespace) -> int:
    """Run ``wsp sim``: the echo scenario configured by `args`, with a progress bar.

    Prints the report as JSON (``--json``) or as a summary; returns 1 when the run leaked
    handles or had errors, else 0.
    """
    from .scenario import Scenario, ScenarioConfig
    clock = None if args.clock == "none" else args.clock
    if clock is None and (args.latency or args.jitter or args.bandwidth is not None):
        clock = "virtual"          # link delays need simulated time: the virtual clock
    config = ScenarioConfig(connections=args.connections, messages=args.messages,
                            size=args.size, threads=args.threads, seed=args.seed,
                            lsp=args.lsp, duration=args.duration, clock=clock,
                            latency=args.latency, jitter=args.jitter,
                            bandwidth=args.bandwidth, loss=args.loss, pcap=args.pcap)
    update, close = _progress_bar(config.connections * config.messages, "msg")
    try:
        report = Scenario(config).run(progress=update)
    finally:
        close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(sim_summary(report))
    return 1 if report["leaked"] or report["errors"] else 0


# ---------------------------------------------------------------------- bench
def run_bench(args: argparse.Namespace) -> int:
    """Run ``wsp bench``: the micro-benchmarks, with a progress bar.

    Prints the results as JSON (``--json``) or as a table; returns 0.
    """
    from . import microbench
    update, close = _progress_bar(len(microbench.GROUPS), "group")
    try:
        report = microbench.run(quick=args.quick, seconds=args.seconds,
                                progress=lambda _group, index, _total: update(index))
    finally:
        close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(microbench.format_table(report))
    return 0


# ---------------------------------------------------------------------- trace
def run_trace(args: argparse.Namespace) -> int:
    """``wsp trace FILE``: print the summary of a JSON-lines trace; 2, with
    one line on stderr naming the file (and the line), when it cannot be
    read or holds something that is not a trace record."""
    from .lsp.summary import TraceFormatError, summarize
    try:
        summary = summarize(args.file)
    except TraceFormatError as exc:
        print(f"wsp trace: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wsp trace: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.format())
    return 0


def add_trace_command(commands: Any) -> None:
    """The ``trace`` subcommand, on the subparsers `commands`."""
    trace = commands.add_parser(
        "trace", help="summarise a TracingProvider's JSON-lines trace, per socket",
        description="Reads the JSON lines that TracingProvider.to_jsonl wrote and prints, "
                    "per socket, its addresses, the bytes sent and received (each transfer "
                    "once), the calls per entry, the errors per WSA error name and the time "
                    "from call to completion (times in ns, the trace's unit).",
        epilog="example: wsp trace trace.jsonl --json")
    trace.add_argument("file", metavar="FILE", help="a JSON-lines trace (tracer.to_jsonl)")
    trace.add_argument("--json", action="store_true", help="print the summary as JSON")
    trace.set_defaults(run=run_trace, parser=trace)


# ---------------------------------------------------------------------- sweep
#: The sim options a --param may sweep (--seeds sweeps the seed; --pcap and
#: --json are not a run's parameters).
SWEEPABLE = ("connections", "messages", "size", "threads", "lsp", "duration", "clock",
             "latency", "jitter", "bandwidth", "loss")


def seeds_arg(text: str) -> list[int]:
    """``--seeds``: ``A-B`` (inclusive), ``N``, or a comma list of either
    (``1-3,7``), each seed at least 0."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        try:
            first = int(lo)
            last = int(hi) if dash else first
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a seed, a range A-B or a comma list: {text!r}") from None
        if first < 0 or last < first:
            raise argparse.ArgumentTypeError(
                f"a range must go up from 0 or more (A-B with A <= B): {part!r}")
        seeds.extend(range(first, last + 1))
    return seeds


def _param_arg(sim: argparse.ArgumentParser) -> Callable[[str], tuple[str, list[Any]]]:
    """``--param NAME=V1,V2,...``: each value parsed as the sim option
    ``--NAME`` parses it (its type and choices, so units work); ``none`` (or
    ``unlimited``) for an option whose default is none; for --lsp, the
    layers of one value are joined by ``+`` (``none``: no layer)."""
    # A copy of sim's options that raises instead of exiting: it parses one value.
    probe = argparse.ArgumentParser(parents=[sim], add_help=False, exit_on_error=False)

    def parse(text: str) -> tuple[str, list[Any]]:
        name, eq, values = text.partition("=")
        name = name.strip().removeprefix("--").replace("-", "_")
        if not eq or name not in SWEEPABLE:
            raise argparse.ArgumentTypeError(
                f"not NAME=V1,V2,... with NAME one of {', '.join(SWEEPABLE)}: {text!r}")
        parsed: list[Any] = []
        for value in values.split(","):
            value = value.strip()
            if name == "lsp":
                parsed.append(() if value == "none" else _layers(value.replace("+", ",")))
                continue
            if probe.get_default(name) is None and value in ("none", "unlimited"):
                parsed.append(None)
                continue
            try:
                known, _ = probe.parse_known_args([f"--{name}={value}"])
            except argparse.ArgumentError as exc:
                raise argparse.ArgumentTypeError(f"{name}={value}: {exc}") from None
            parsed.append(getattr(known, name))
        return name, parsed

    return parse


def _run_path(template: str, index: int, seed: int) -> str:
    root, dot, ext = template.rpartition(".")
    stem = f"-{index:04d}-seed{seed}"
    return f"{root}{stem}.{ext}" if dot and "/" not in ext else f"{template}{stem}"


def sweep_configs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs of a ``wsp sweep`` command line, in their order: for each
    combination of the --param values (the first --param varies slowest,
    each one's values in the order given), every seed of --seeds in order.
    Returns (configs, the swept option names)."""
    import itertools

    from .sweep import SIM_DEFAULTS
    base = {name: getattr(args, name) for name in SIM_DEFAULTS}
    params: dict[str, list[Any]] = {}
    for name, values in args.param:
        params[name] = values                 # a later --param NAME replaces an earlier one
    seeds = args.seeds if args.seeds is not None else [args.seed]
    configs = []
    for combo in itertools.product(*params.values()):
        for seed in seeds:
            config = {**base, **dict(zip(params, combo)), "seed": seed}
            if args.pcap:                    # one capture per run
                config["pcap"] = _run_path(args.pcap, len(configs), seed)
            configs.append(config)
    return configs, list(params)


def run_sweep(args: argparse.Namespace) -> int:
    """Run ``wsp sweep``: the runs of `args` (:func:`sweep_configs`) through
    :func:`wsp.sweep.run`, with a progress bar and ``--out`` files as runs
    finish; prints the table, ``--json`` or ``--csv``, draws ``--plot``.

    Returns 1 when a run leaked or failed, 2 for a value a scenario refuses
    or a missing extra (one line on stderr), 130 after Ctrl-C (what finished
    printed first), else 0.
    """
    import csv
    import os

    from . import sweep
    if args.json and args.csv:
        print("wsp sweep: error: argument --csv: not allowed with --json", file=sys.stderr)
        return 2
    configs, swept = sweep_configs(args)
    try:
        for config in configs:
            sweep.scenario_config(sweep.options(config))
        if args.plot:
            sweep.check_plot()
    except (ValueError, TypeError) as exc:
        print(f"wsp sweep: error: {exc}", file=sys.stderr)
        return 2
    except sweep.MissingExtra as exc:
        print(f"wsp sweep: {exc}", file=sys.stderr)
        return 2
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    update, close = _progress_bar(len(configs), "run")

    def progress(done: int, _total: int, index: int, report: dict[str, Any]) -> None:
        if args.out:
            name = f"run-{index:04d}-seed{configs[index]['seed']}.json"
            with open(os.path.join(args.out, name), "w") as f:
                json.dump(report, f, indent=2)
        update(done)

    interrupted = False
    try:
        reports: list[Any] = sweep.run(configs, executor=args.executor, jobs=args.jobs,
                                       address=args.address, progress=progress)
    except sweep.Interrupted as exc:
        reports, interrupted = exc.results, True
    except sweep.MissingExtra as exc:
        print(f"wsp sweep: {exc}", file=sys.stderr)
        return 2
    finally:
        close()
    aggregates = sweep.aggregate(reports)
    if args.json:
        print(json.dumps({"runs": reports, "aggregates": aggregates}, indent=2))
    elif args.csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(sweep.to_csv_rows(reports, swept))
    else:
        print(sweep.format_table(reports, swept, aggregates))
    if args.plot and not interrupted:
        sweep.plot(reports, swept, args.plot)
    if interrupted:
        print(f"interrupted: {aggregates['finished']} of {len(reports)} runs finished",
              file=sys.stderr)
        return 130
    return 1 if aggregates["failed"] or aggregates["leaked"] else 0


def add_sweep_command(commands: Any, sim: argparse.ArgumentParser) -> None:
    """The ``sweep`` subcommand: every option of `sim` (its parser's, so the
    same names, defaults and units), plus the sweep's own."""
    sweep = commands.add_parser(
        "sweep", parents=[sim], add_help=False,
        help="run many seeded sim scenarios at once, on a process pool or a Ray cluster",
        description="Runs one wsp sim scenario per (parameter combination, seed) -- for each "
                    "combination of the --param values (the first --param varies slowest), "
                    "every seed of --seeds in order -- and prints one row per run, then the "
                    "distribution of the rates (count, mean, min, p50, p95, p99, max), the "
                    "sums of the counts and the runs that leaked or failed (exit status 1 "
                    "if any).  A run's counts depend only on its seed and parameters.",
        epilog="example: wsp sweep --connections 8 --messages 50 --seeds 0-15 "
               "--param latency=1ms,10ms --jobs 2")
    sweep.add_argument("--seeds", type=seeds_arg, default=None, metavar="A-B",
                       help="the seeds: a range A-B (inclusive), one N, or a comma list "
                            "(1-3,7); default: --seed alone")
    sweep.add_argument("--param", type=_param_arg(sim), action="append", default=[],
                       metavar="NAME=V1,V2,...",
                       help="sweep a sim option over these values, parsed as the option "
                            "parses them (--param latency=1ms,50ms --param "
                            "bandwidth=1MB/s,unlimited --param lsp=none,trace+fault); "
                            "repeatable: the runs take every combination")
    sweep.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: a process pool of --jobs processes (the default); "
                            'ray: one Ray task per run (pip install "wsp[ray]")')
    sweep.add_argument("--address", default=None,
                       help="with --executor ray: the cluster to join (auto: the one running "
                            "here); default: start a local Ray instance for the sweep")
    sweep.add_argument("--jobs", type=_positive_int, default=None,
                       help="processes of the local pool (default: the CPU count); the "
                            "CPUs of a local Ray instance (default 2)")
    sweep.add_argument("--csv", action="store_true",
                       help="print one CSV row per run (its swept values, key numbers)")
    sweep.add_argument("--out", default=None, metavar="DIR",
                       help="write each run's report to DIR/run-INDEX-seedSEED.json as it "
                            "finishes")
    sweep.add_argument("--plot", default=None, metavar="FILE.png",
                       help="draw the message rates (and simulated durations) per swept "
                            'value to a PNG (pip install "wsp[plot]")')
    sweep.set_defaults(run=run_sweep, parser=sweep)


# ----------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The ``wsp`` command's argument parser, with its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="wsp",
        description="The Windows Sockets 2 SPI, in-process, on any OS.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wsp {wsp.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = commands.add_parser(
        "sim", help="run the echo scenario over the simulated network (the main job)",
        description="Two processes on one simulated network echo messages over "
                    "overlapped sends and receives drained from completion ports by "
                    "worker threads, close in a seeded mix of modes (graceful, hard, "
                    "linger with time-out, non-blocking would-block then retry) and "
                    "clean up; prints rates, completions by status, resets and leaks.",
        epilog="example: wsp sim --connections 16 --messages 50 --lsp trace,fault --json")
    sim.add_argument("--connections", type=_positive_int, default=128,
                     help="client/server connection pairs (default 128)")
    sim.add_argument("--messages", type=_positive_int, default=500,
                     help="messages per connection (default 500)")
    sim.add_argument("--size", type=_message_size, default=64,
                     help="bytes per message, at most 4096 (default 64)")
    sim.add_argument("--threads", type=_positive_int, default=2,
                     help="worker threads draining each process's port (default 2)")
    sim.add_argument("--seed", type=int, default=0,
                     help="seed of the close modes and faults: same seed, same counts "
                          "(default 0)")
    sim.add_argument("--lsp", type=_layers, default=(), metavar="LAYERS",
                     help="layered providers over the sim provider, top first: "
                          "trace, fault or both (e.g. trace,fault)")
    sim.add_argument("--duration", type=_seconds, default=None, metavar="SECONDS",
                     help="stop after this long even if unfinished: simulated seconds with "
                          "a clock (the counts stay the seed's), wall seconds without "
                          "(counts then vary)")
    sim.add_argument("--clock", choices=("none", "virtual", "real"), default="none",
                     help="the network's time: none (synchronous delivery, the default), "
                          "virtual (simulated time that jumps ahead whenever every thread "
                          "waits; chosen by itself when a link delay is given) or real "
                          "(wall-clock time)")
    sim.add_argument("--latency", type=duration_arg, default=0.0, metavar="TIME",
                     help="one-way delay of the link between the two hosts, e.g. 50ms, "
                          "0.05s, 200us (bare number: seconds)")
    sim.add_argument("--jitter", type=duration_arg, default=0.0, metavar="TIME",
                     help="each packet's delay varies by up to this much, seeded (e.g. 5ms)")
    sim.add_argument("--bandwidth", type=rate_arg, default=None, metavar="RATE",
                     help="the link's rate each way, e.g. 10MB/s, 100kB/s, 1MiB/s, 8Mb/s "
                          "(bits); bare number: bytes per second; default unlimited")
    sim.add_argument("--loss", type=fraction_arg, default=0.0, metavar="PROB",
                     help="probability that a datagram is lost, e.g. 1%% or 0.01 (the "
                          "streams stay reliable; the run's probe datagrams show the loss)")
    sim.add_argument("--pcap", default=None, metavar="FILE",
                     help="write every packet of the run to this pcap file (Wireshark, "
                          "tshark): the connections as TCP, the datagrams as UDP")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.set_defaults(run=run_sim, parser=sim)
    add_sweep_command(commands, sim)

    bench = commands.add_parser(
        "bench", help="time the core and the engine against their peers",
        description="The core structures and the SPI engine, each timed against the "
                    "peer a user would pick instead (dict, queue.SimpleQueue), in "
                    "alternating rounds; prints medians and ratios.",
        epilog="example: wsp bench --quick")
    bench.add_argument("--quick", action="store_true", help="a short run (about 0.5 s)")
    bench.add_argument("--seconds", type=_seconds, default=None,
                       help="time budget per group (default 1.5, quick 0.1)")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.set_defaults(run=run_bench, parser=bench)

    add_trace_command(commands)

    info = commands.add_parser("info", help="version, core in use, compiled modules, build, "
                               "interpreter",
                               epilog="example: wsp info --json")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.set_defaults(run=None, parser=info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``wsp`` command: parse `argv` (None: ``sys.argv[1:]``), run its
    sub-command and return the exit status: 2 without a sub-command (after
    printing the help) and for bad arguments, 130 when interrupted.

    When stdout is a pipe that closes early (``wsp sim | head -1``), the
    command stops quietly with 141 -- what a shell reports for a Unix tool that
    SIGPIPE ended (128 + 13) -- and nothing on stderr.
    """
    try:
        status = _main(argv)
        sys.stdout.flush()              # a closed pipe shows here, not at exit
    except BrokenPipeError:
        # Python's flush at exit would fail again and print a traceback: point
        # stdout at the null device first.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        return 128 + 13
    return status


def _main(argv: Sequence[str] | None) -> int:
    """:func:`main` without its handling of a closed pipe."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # an option the subcommand does not know: its usage, not the top level's
        (getattr(args, "parser", None) or parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    if args.run is None:                    # info
        facts = info_facts()
        if args.json:
            print(json.dumps(facts, indent=2))
        else:
            _print_facts(facts)
        return 0
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
