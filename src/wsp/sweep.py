"""Sweeps: many seeded ``wsp sim`` scenarios at once (SPEC 11), on a local
process pool or on a Ray cluster.

``run(configs)`` takes one mapping of ``wsp sim`` option names to values per
run (``{"seed": 3, "connections": 64, "latency": 0.05}``; values as the
options give them once parsed: seconds, bytes per second, probabilities;
missing options take ``wsp sim``'s defaults, :data:`SIM_DEFAULTS`) and returns
one report per config, in the order given -- the report ``wsp sim --json``
prints, or, for a run that could not finish (its scenario raised, or its
worker process died), a *failed* record: ``{"failed": True, "error": ...,
"seed": ..., "parameters": ...}``.

A run's counts (:data:`COUNT_KEYS`, :func:`counts`) depend only on its
config: the scenario is seeded and delivers deterministically, so the
executor, the job count and the order in which runs finish change the wall
times and the rates per wall second, never the counts.

Executors:

* ``"local"`` (the default): a :class:`concurrent.futures.ProcessPoolExecutor`
  of ``jobs`` processes (default ``os.cpu_count()``) started with the *spawn*
  method.  At most ``jobs + 1`` runs are in flight, so when a worker process
  dies (``BrokenProcessPool``) the suspects are few and known: they are run
  again one at a time on a fresh one-process pool, the one that kills its worker again is
  reported as failed, and the remaining runs go on on a fresh pool -- a sweep
  never hangs on a dead worker.  (Spawned workers import the calling
  script's main module again: a script that calls ``run`` guards the call
  with ``if __name__ == "__main__":``.)
* ``"ray"``: one Ray task per run (``pip install "wsp[ray]"``), gathered with
  ``ray.wait`` as they finish; ``address`` joins a cluster (``"auto"``: the one
  running here), without it a local instance of ``jobs or 2`` CPUs is
  started and shut down after (an already initialised Ray is used as it is).

Ctrl-C (KeyboardInterrupt) stops the pool's processes (or cancels the Ray
tasks) and raises :class:`Interrupted`, which carries what finished.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import signal
from collections import Counter
from os import _exit as exit_now      # public (documented); named so, no finalizers run
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Mapping, Sequence

from .scenario import Scenario, ScenarioConfig

__all__ = ["COUNT_KEYS", "EXECUTORS", "RATE_KEYS", "SIM_DEFAULTS", "Interrupted",
           "MissingExtra", "aggregate", "counts", "format_table", "plot", "run", "to_csv_rows"]

#: ``wsp sim``'s options and their defaults (the command line's, which differ
#: from ScenarioConfig's for connections and messages); clock "none" with a
#: link delay means the virtual clock, as in ``wsp sim``.
SIM_DEFAULTS: dict[str, Any] = {
    "connections": 128, "messages": 500, "size": 64, "threads": 2, "seed": 0, "lsp": (),
    "duration": None, "clock": "none", "latency": 0.0, "jitter": 0.0, "bandwidth": None,
    "loss": 0.0, "pcap": None,
}

EXECUTORS = ("local", "ray")

#: The keys of a report that depend only on the run's config.
COUNT_KEYS = ("messages", "bytes", "goodbye_bytes", "operations", "completions", "calls_failed",
              "closes_would_block", "resets_seen", "close_modes", "closes", "faults_injected",
              "trace_records", "datagrams", "leaks", "leaked", "errors", "cut_short")
#: ... and, when the run has a clock, the simulated times as well.
CLOCK_COUNT_KEYS = ("simulated_seconds", "simulated_messages_per_second",
                    "simulated_bytes_per_second")
#: The rates (and times) the aggregates give a distribution of.
RATE_KEYS = ("messages_per_second", "operations_per_second", "seconds")
CLOCK_RATE_KEYS = ("simulated_seconds", "simulated_messages_per_second",
                   "simulated_bytes_per_second")
#: The counts the aggregates sum.
SUM_KEYS = ("messages", "bytes", "operations", "resets_seen", "closes_would_block",
            "faults_injected", "trace_records", "leaked")

#: Hidden config key, for the tests only: the run's worker calls os._exit(value).
_EXIT_KEY = "_exit"


class MissingExtra(ImportError):
    """An optional dependency (a pip extra of wsp) is not installed."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(f"{what} needs {module}, which is not installed: "
                         f'pip install "wsp[{extra}]"', name=module)
        self.extra = extra


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: ``results`` has one entry per config, the
    report of each run that finished and None for the others."""

    def __init__(self, results: list[dict[str, Any] | None]) -> None:
        super().__init__(f"{sum(r is not None for r in results)} of {len(results)} runs finished")
        self.results = results


# ------------------------------------------------------------------ configs
def options(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` completed with :data:`SIM_DEFAULTS`; KeyError naming an
    option ``wsp sim`` does not have."""
    unknown = [k for k in config if k not in SIM_DEFAULTS and k != _EXIT_KEY]
    if unknown:
        raise KeyError(f"not a wsp sim option: {', '.join(map(str, unknown))} "
                       f"(choose from {', '.join(SIM_DEFAULTS)})")
    full = {**SIM_DEFAULTS, **config}
    if isinstance(full["lsp"], str):
        full["lsp"] = tuple(name for name in full["lsp"].split(",") if name)
    full["lsp"] = tuple(full["lsp"])
    return full


def scenario_config(opts: Mapping[str, Any]) -> ScenarioConfig:
    """The ScenarioConfig ``wsp sim`` would run for these options (a link
    delay without a clock picks the virtual clock); ValueError/TypeError as
    ScenarioConfig raises them."""
    clock = None if opts["clock"] in ("none", None) else opts["clock"]
    if clock is None and (opts["latency"] or opts["jitter"] or opts["bandwidth"] is not None):
        clock = "virtual"
    return ScenarioConfig(connections=opts["connections"], messages=opts["messages"],
                          size=opts["size"], threads=opts["threads"], seed=opts["seed"],
                          lsp=tuple(opts["lsp"]), duration=opts["duration"], clock=clock,
                          latency=opts["latency"], jitter=opts["jitter"],
                          bandwidth=opts["bandwidth"], loss=opts["loss"], pcap=opts["pcap"])


def run_one(opts: Mapping[str, Any]) -> dict[str, Any]:
    """One run, in whatever process: the task every executor runs."""
    code = opts.get(_EXIT_KEY)
    if code is not None:                      # the tests' crashing scenario
        exit_now(int(code))
    return Scenario(scenario_config(opts)).run()


def _failed(opts: Mapping[str, Any], error: str) -> dict[str, Any]:
    return {"failed": True, "error": error, "seed": opts["seed"],
            "parameters": {k: (list(v) if k == "lsp" else v) for k, v in opts.items()
                           if k in SIM_DEFAULTS}}


def is_failed(report: Mapping[str, Any]) -> bool:
    return bool(report.get("failed"))


def counts(report: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a report that depends only on the run's config."""
    if is_failed(report):
        return {"failed": True, "error": report["error"]}
    keys = COUNT_KEYS + (CLOCK_COUNT_KEYS if report.get("clock") else ())
    return {key: report[key] for key in keys}


# ------------------------------------------------------------------ running
Progress = Callable[[int, int, int, "dict[str, Any]"], None]


def run(configs: Iterable[Mapping[str, Any]], *, executor: str = "local",
        jobs: int | None = None, address: str | None = None,
        progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run one scenario per config; one report per config, in their order.

    `progress(done, total, index, report)` is called in the calling process
    each time a run finishes (in the order they finish).  Every config is
    checked before anything runs (KeyError, ValueError, TypeError)."""
    all_opts = [options(config) for config in configs]
    for opts in all_opts:
        scenario_config(opts)                 # its checks, here and now
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a whole number of at least 1, not {jobs!r}")
    results: list[dict[str, Any] | None] = [None] * len(all_opts)
    done = 0

    def finished(index: int, report: dict[str, Any]) -> None:
        nonlocal done
        results[index] = report
        done += 1
        if progress is not None:
            progress(done, len(all_opts), index, report)

    if all_opts:
        if executor == "ray":
            _run_ray(all_opts, jobs, address, finished, results)
        else:
            _run_local(all_opts, jobs or os.cpu_count() or 1, finished, results)
    return results                            # type: ignore[return-value]


def _worker_init() -> None:
    # Ctrl-C is the sweep's to handle: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Pool:
    """A spawn-method process pool that knows its worker processes (to stop
    them on Ctrl-C and to say how one died)."""

    def __init__(self, jobs: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._before = set(multiprocessing.active_children())
        self.executor = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                               initializer=_worker_init)
        self.processes: set[Any] = set()

    def submit(self, opts: Mapping[str, Any]) -> cf.Future:
        future = self.executor.submit(run_one, opts)
        self.processes |= set(multiprocessing.active_children()) - self._before
        return future

    def death(self) -> str:
        """How the broken pool's worker died (after the pool has wound up:
        its manager thread reaps the processes, and only then are their
        exit codes known)."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        for p in self.processes:
            p.join(5)
        codes = [p.exitcode for p in self.processes if p.exitcode not in (None, 0)]
        if not codes:
            return "its worker process died"
        # The pool terminates (SIGTERM) the workers that survived: not them.
        code = next((c for c in codes if c != -signal.SIGTERM), codes[0])
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"its worker process died ({how})"

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def kill(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        for p in self.processes:
            if p.is_alive():
                p.terminate()
        for p in self.processes:
            p.join(5)


def _run_local(all_opts: list[dict[str, Any]], jobs: int,
               finished: Callable[[int, dict[str, Any]], None],
               results: list[dict[str, Any] | None]) -> None:
    pending = list(range(len(all_opts)))[::-1]          # a stack: pop() gives the next
    pool: _Pool | None = None
    try:
        while pending:
            pool = _Pool(jobs)
            # One run more than workers in flight: a worker that finishes finds
            # the next run queued instead of waiting for this process to submit it.
            suspects = _drive(pool, all_opts, pending, jobs + 1, finished)
            if len(suspects) == 1:
                # It was alone in flight: its worker died under it (no retry).
                # (Two or more: any of them may be the one; see below.)
                finished(suspects[0], _failed(all_opts[suspects[0]], pool.death()))
                suspects = []
            pool.close()
            pool = None
            for index in sorted(suspects):             # one at a time: which one was it?
                pool = _Pool(1)
                if _drive(pool, all_opts, [index], 1, finished):
                    finished(index, _failed(all_opts[index], pool.death()))
                pool.close()
                pool = None
    except KeyboardInterrupt:
        if pool is not None:
            pool.kill()
        raise Interrupted(list(results)) from None


def _drive(pool: _Pool, all_opts: list[dict[str, Any]], pending: list[int], jobs: int,
           finished: Callable[[int, dict[str, Any]], None]) -> list[int]:
    """Run `pending` (a stack of indexes, consumed) on `pool`, at most `jobs`
    in flight; returns the runs that were in flight when the pool broke
    (empty when it did not break): one of them killed its worker."""
    inflight: dict[cf.Future, int] = {}
    suspects: list[int] = []
    broken = False
    while pending or inflight:
        while pending and not broken and len(inflight) < jobs:
            index = pending.pop()
            try:
                inflight[pool.submit(all_opts[index])] = index
            except BrokenProcessPool:
                pending.append(index)
                broken = True
        if not inflight:
            break
        done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
        for future in done:
            index = inflight.pop(future)
            exc = future.exception()
            if isinstance(exc, BrokenProcessPool):
                broken = True
                suspects.append(index)
            elif exc is not None:
                finished(index, _failed(all_opts[index], f"{type(exc).__name__}: {exc}"))
            else:
                finished(index, future.result())
        if broken and not inflight:
            break
    return suspects


def _run_ray(all_opts: list[dict[str, Any]], jobs: int | None, address: str | None,
             finished: Callable[[int, dict[str, Any]], None],
             results: list[dict[str, Any] | None]) -> None:
    try:
        import ray
    except ImportError:
        raise MissingExtra("the Ray executor", "ray", "ray") from None
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=jobs or 2, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    refs: dict[Any, int] = {}
    try:
        # max_retries=0: a run that kills its worker is a failed run, not retried.
        task = ray.remote(num_cpus=1, max_retries=0)(run_one)
        refs = {task.remote(opts): index for index, opts in enumerate(all_opts)}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                index = refs.pop(ref)
                try:
                    report = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    report = _failed(all_opts[index], _ray_error(exc))
                finished(index, report)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise Interrupted(list(results)) from None
    finally:
        if started:
            ray.shutdown()


def _ray_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):      # the task raised: say what
        return f"{type(cause).__name__}: {cause}"
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}".rstrip(": ")


# --------------------------------------------------------------- aggregates
def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def distribution(values: Iterable[float]) -> dict[str, float | int]:
    """count, mean, min, p50, p95, p99, max of `values`."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return {"count": 0}
    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "min": ordered[0],
            "p50": _percentile(ordered, 0.50), "p95": _percentile(ordered, 0.95),
            "p99": _percentile(ordered, 0.99), "max": ordered[-1]}


def aggregate(reports: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """The aggregates of a sweep's reports (None entries: runs that did not
    finish): the distribution of every rate, the sums of the counts, and the
    runs (by index) that leaked or failed."""
    ran = [(i, r) for i, r in enumerate(reports) if r is not None and not is_failed(r)]
    clocked = any(r.get("clock") for _, r in ran)
    rates = {key: distribution(r[key] for _, r in ran if r.get(key) is not None)
             for key in RATE_KEYS}
    if clocked:                   # the runs with a clock (simulated time is 0 without)
        rates.update((key, distribution(r[key] for _, r in ran
                                        if r.get("clock") and r.get(key) is not None))
                     for key in CLOCK_RATE_KEYS)
    sums: dict[str, Any] = {key: sum(r[key] for _, r in ran) for key in SUM_KEYS}
    for key in ("completions", "calls_failed"):
        total: Counter[str] = Counter()
        for _, r in ran:
            total.update(r[key])
        sums[key] = dict(sorted(total.items()))
    sums["datagrams"] = {key: sum(r["datagrams"][key] for _, r in ran)
                         for key in ("sent", "received", "lost")}
    if clocked:
        sums["simulated_seconds"] = round(sum(r["simulated_seconds"] for _, r in ran), 6)
    failed = [{"run": i, "seed": r["seed"], "error": r["error"] if is_failed(r)
               else "; ".join(r["errors"])}
              for i, r in enumerate(reports)
              if r is not None and (is_failed(r) or r["errors"])]
    leaked = [{"run": i, "seed": r["seed"], "leaks": {k: v for k, v in r["leaks"].items() if v}}
              for i, r in ran if r["leaked"]]
    return {"runs": len(reports), "finished": sum(r is not None for r in reports),
            "rates": rates, "sums": sums, "failed": failed, "leaked": leaked}


def run_status(report: Mapping[str, Any] | None) -> str:
    if report is None:
        return "not run"
    if is_failed(report):
        return "FAILED"
    if report["errors"]:
        return "ERROR"
    return "LEAK" if report["leaked"] else "ok"


def _value_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "+".join(value) or "none"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def swept_values(report: Mapping[str, Any], swept: Sequence[str]) -> list[str]:
    p = report["parameters"]
    return [_value_text(p.get(name)) for name in swept]


def format_table(reports: Sequence[dict[str, Any] | None], swept: Sequence[str] = (),
                 aggregates: dict[str, Any] | None = None) -> str:
    """One row per run, then the aggregates, as ``wsp sweep`` prints them."""
    aggregates = aggregates or aggregate(reports)
    clocked = "simulated_seconds" in aggregates["rates"]
    head = ["run", "seed", *swept, "messages", "msg/s", *(["sim s", "sim msg/s"] if clocked
                                                        else []), "resets", "leaked", "status"]
    rows = [head]
    for i, r in enumerate(reports):
        if r is None or is_failed(r):
            seed = "" if r is None else str(r["seed"])
            values = [""] * len(swept) if r is None else swept_values(r, swept)
            rows.append([str(i), seed, *values, "", "", *(["", ""] if clocked else []), "", "",
                         run_status(r)])
            continue
        sim = [] if not clocked else ["-", "-"] if not r.get("clock") else [
            f"{r['simulated_seconds']:.6f}", f"{r['simulated_messages_per_second'] or 0:,.0f}"]
        rows.append([str(i), str(r["seed"]), *swept_values(r, swept), f"{r['messages']:,}",
                     f"{r['messages_per_second']:,.0f}", *sim, str(r["resets_seen"]),
                     str(r["leaked"]), run_status(r)])
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if c else cell.ljust(w)
                       for c, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines.append("")
    lines.append(f"{aggregates['finished']} of {aggregates['runs']} runs finished; "
                 f"{len(aggregates['failed'])} failed, {len(aggregates['leaked'])} leaked")
    stats = ("count", "mean", "min", "p50", "p95", "p99", "max")
    table = [["rate", *stats]]
    for key, dist in aggregates["rates"].items():
        if not dist["count"]:
            continue
        fmt = "{:,.6f}" if "seconds" == key.split("_")[-1] else "{:,.0f}"
        table.append([key, str(dist["count"]), *(fmt.format(dist[s]) for s in stats[1:])])
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines += ["  ".join(cell.rjust(w) if c else cell.ljust(w)
                        for c, (cell, w) in enumerate(zip(row, widths))) for row in table]
    s = aggregates["sums"]
    lines.append(f"sums: {s['messages']:,} messages, {s['bytes']:,} bytes, "
                 f"{s['operations']:,} operations, {s['resets_seen']:,} resets seen, "
                 f"{s['datagrams']['lost']:,} of {s['datagrams']['sent']:,} datagrams lost, "
                 f"{s['leaked']} leaked")
    for f in aggregates["failed"]:
        lines.append(f"failed: run {f['run']} (seed {f['seed']}): {f['error']}")
    for f in aggregates["leaked"]:
        leaks = ", ".join(f"{k} {v}" for k, v in f["leaks"].items())
        lines.append(f"leaked: run {f['run']} (seed {f['seed']}): {leaks}")
    return "\n".join(lines)


CSV_KEYS = ("messages", "bytes", "operations", "seconds", "messages_per_second",
            "operations_per_second", "simulated_seconds", "simulated_messages_per_second",
            "resets_seen", "closes_would_block", "faults_injected", "leaked")


def to_csv_rows(reports: Sequence[dict[str, Any] | None],
                swept: Sequence[str] = ()) -> list[list[Any]]:
    """The rows of ``wsp sweep --csv``, header first: run, seed, the swept
    options' values, the key numbers, the status and the errors."""
    rows: list[list[Any]] = [["run", "seed", *swept, *CSV_KEYS, "status", "error"]]
    for i, r in enumerate(reports):
        if r is None:
            rows.append([i, "", *[""] * len(swept), *[""] * len(CSV_KEYS), "not run", ""])
        elif is_failed(r):
            rows.append([i, r["seed"], *swept_values(r, swept), *[""] * len(CSV_KEYS),
                         run_status(r), r["error"]])
        else:
            rows.append([i, r["seed"], *swept_values(r, swept),
                         *("" if r.get(k) is None else r[k] for k in CSV_KEYS),
                         run_status(r), "; ".join(r["errors"])])
    return rows


def plot(reports: Sequence[dict[str, Any] | None], swept: Sequence[str], path: str) -> None:
    """Draw the distribution of the message rates (and of the simulated
    durations, when a clock is used) per value of each swept option, as
    strip plots over box plots, to the PNG `path` (matplotlib, Agg)."""
    plt = _pyplot()
    ran = [r for r in reports if r is not None and not is_failed(r)]
    clocked = any(r.get("clock") for r in ran)
    metrics = [("messages_per_second", "messages / wall s")]
    if clocked:
        metrics.append(("simulated_seconds", "simulated s"))
    groups = list(swept) or [None]
    fig, axes = plt.subplots(len(metrics), len(groups), squeeze=False,
                             figsize=(4.5 * len(groups), 3.5 * len(metrics)))
    for col, name in enumerate(groups):
        labels = (sorted({_value_text(r["parameters"][name]) for r in ran},
                         key=lambda v: (_sort_key(v)))
                  if name else ["all runs"])
        for row, (key, title) in enumerate(metrics):
            ax = axes[row][col]
            data = [[r[key] for r in ran if r.get(key) is not None
                     and (name is None or _value_text(r["parameters"][name]) == label)]
                    for label in labels]
            ax.boxplot(data, showfliers=False)
            for k, values in enumerate(data, start=1):
                xs = [k + (j % 7 - 3) * 0.03 for j in range(len(values))]
                ax.plot(xs, values, "o", markersize=3, alpha=0.6)
            ax.set_xticks(range(1, len(labels) + 1))
            ax.set_xticklabels(labels)
            ax.set_xlabel(name or "")
            ax.set_ylabel(title)
    fig.suptitle(f"wsp sweep: {len(ran)} runs")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _sort_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("--plot", "matplotlib", "plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def check_plot() -> None:
    """MissingExtra now, before a sweep runs, when --plot cannot work."""
    _pyplot()
