"""The benchmark's results: typed records, one loader that checks them, the summary table.

Notebook 17 (the benchmark) reads these files; notebook 01 draws its timelines from run
records. A results file is one JSON object, :class:`BenchResults`; every record in it is
a ``TypedDict`` below, so the same plain data is what ``json.load`` gives, what a
notebook indexes (``results["runs"][0]["elapsed_s"]``) and what mypy checks.
:func:`check_results` is the one validator: it walks the declared types, so a field
added to a record is checked without another line of checking code.

Times are seconds; a run's timeline times are seconds from the client's own start.
The schema name changes whenever a field changes meaning; ``poetrylab-bench/1`` files
(before throughput, phases and limits were recorded) are refused with a message saying
how to re-measure.
"""

from __future__ import annotations

import json
import statistics
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

__all__ = [
    "SCHEMA",
    "BenchResults",
    "IdealPoint",
    "Machine",
    "Parameters",
    "Phases",
    "RunRecord",
    "ServerReport",
    "Skip",
    "SummaryRow",
    "TimelineEntry",
    "check_results",
    "compact_results",
    "dumps_results",
    "format_table",
    "good_runs",
    "load_results",
    "median_run",
    "save_results",
    "summarise",
]

SCHEMA = "poetrylab-bench/2"


class TimelineEntry(TypedDict):
    """One server's download in a run: when it started, connected and finished, its bytes.

    ``chunks`` (``[t, size]`` pairs) is there only when the run kept chunk timelines
    (``chunks_stored``); otherwise ``n_chunks`` says how many there were.
    """

    address: str
    client: str
    task: int
    started: float | None
    connected: float | None
    finished: float | None
    bytes: int
    error: str | None
    chunks: NotRequired[list[list[float]]]
    n_chunks: NotRequired[int]


class ServerReport(TypedDict):
    """What the server processes did during one run (summed over processes; see server_host).

    ``max_late_s`` is the latest any chunk was written after its timetable slot,
    ``mean_final_late_s`` how late each poem's last chunk was on average, ``cpu_s``
    the server processes' CPU time.
    """

    connections: int
    completed: int
    writes: int
    bytes: int
    max_late_s: float
    final_late_s: float
    mean_final_late_s: float
    open_connections: int
    cpu_s: float
    processes: int


class Phases(TypedDict):
    """Where one run's time and CPU went: connecting, the chunks, finishing.

    The three time phases add up to ``elapsed_s``: ``connect_s`` runs from the start to
    the moment the last connection was made, ``transfer_s`` from there to the last chunk's
    arrival, ``finish_s`` from there until the client returned. A slow server starts its
    timetable when it accepts, so the last poem cannot end before ``connect_s`` plus one
    server's time: what ``transfer_s`` adds to that is the chunks arriving late.
    ``chunk_lag_*`` is how long after it was due (connection made + k x delay) each chunk
    arrived: server lateness and the client's own included. The ``cpu_*`` fields split the
    client's CPU time the same way (None when nobody sampled it, as in a notebook);
    ``chunks`` counts the reads that returned data, ``transfer_chunks`` those of them in
    the chunks phase (so ``cpu_transfer_s / transfer_chunks`` is the CPU a chunk cost),
    ``peak_threads`` the most threads the client process had (None when not sampled).
    """

    connect_s: float
    transfer_s: float
    finish_s: float
    connect_mean_ms: float
    chunk_lag_mean_ms: float | None
    chunk_lag_max_ms: float | None
    chunks: int
    transfer_chunks: int
    cpu_connect_s: float | None
    cpu_transfer_s: float | None
    cpu_finish_s: float | None
    peak_threads: int | None


class RunRecord(TypedDict):
    """One client model's run against ``n_servers`` servers.

    ``elapsed_s`` is the downloads by the client's own clock (None if the process failed;
    ``error`` then says why); ``process_s`` the whole client process, start-up and imports
    included; ``cpu_s`` the CPU time of the downloads, ``cpu_total_s`` of the whole
    process; ``errors`` counts failed downloads, ``error`` gives the first reason.
    ``limit`` is set when the model could not even try every server (no thread could be
    started, no file descriptor was left): the reason, measured, not a crash.
    ``efficiency`` is ideal / elapsed; ``poems_per_s`` and ``bytes_per_s`` the poems
    delivered whole, and their bytes, per second of ``elapsed_s``.
    """

    client: str
    model: str
    n_servers: int
    repeat: int
    elapsed_s: float | None
    process_s: float | None
    cpu_s: float | None
    cpu_total_s: float | None
    peak_rss_mb: float | None
    bytes: int
    expected_bytes: int | None
    poems: int
    errors: int | None
    error: str | None
    limit: str | None
    ideal_s: float | None
    efficiency: float | None
    poems_per_s: float | None
    bytes_per_s: float | None
    phases: Phases | None
    server: NotRequired[ServerReport]
    chunks_stored: bool
    timeline: list[TimelineEntry]
    timeline_dropped: NotRequired[bool]


class Parameters(TypedDict):
    """What was measured, and on what (``server_time_s`` is one server's ideal time)."""

    clients: list[str]
    servers: list[int]
    poem: str
    delay: float
    num_bytes: int
    repeats: int
    pacing: str
    max_run_s: float
    chunks_max_servers: int
    models: dict[str, str]
    poem_bytes: int
    server_time_s: float
    listeners_per_process: int
    python: str
    twisted: str
    cpu_count: int | None
    usable_cpus: float
    platform: str


class IdealPoint(TypedDict):
    """The ideal times at one N: one server at a time (the sum), all at once (the slowest)."""

    n_servers: int
    sequential_s: float
    concurrent_s: float


class Machine(TypedDict):
    """How busy the machine was: load averages before and after, and the verdict before."""

    load_before: list[float]
    load_after: NotRequired[list[float]]
    started_at: str
    busy: NotRequired[str | None]


class Skip(TypedDict):
    """A run not attempted, and why."""

    client: str
    n_servers: int
    ideal_s: float
    reason: str


class BenchResults(TypedDict):
    """A whole sweep: what was measured, the ideal times, every run, and what was skipped."""

    schema: Literal["poetrylab-bench/2"]
    parameters: Parameters
    ideal: list[IdealPoint]
    machine: Machine
    command: str | None
    runs: list[RunRecord]
    skipped: list[Skip]
    interrupted: bool


# ---------------------------------------------------------------- the one checker


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")


def _check(value: Any, expected: Any, where: str) -> None:
    """Raise ValueError at the first place ``value`` is not of the declared type ``expected``."""
    if expected is Any:
        return
    if expected is type(None):
        if value is not None:
            raise ValueError(f"{where} should be null, not {value!r}")
        return
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return
        if len(options) == 1:  # X | None and not None: say what is wrong inside X
            _check(value, options[0], where)
            return
        errors = []
        for option in args:
            try:
                _check(value, option, where)
            except ValueError as exc:
                errors.append(str(exc))
            else:
                return
        names = " or ".join(_type_name(a) for a in args)
        raise ValueError(f"{where} should be {names}, not {value!r}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{where} is {value!r}, expected one of {', '.join(map(repr, args))}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where} should be a list, not {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, args[0], f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} should be an object, not {type(value).__name__}")
        for key, item in value.items():
            _check(item, args[1], f"{where}[{key!r}]")
        return
    if typing.is_typeddict(expected):
        if not isinstance(value, dict):
            raise ValueError(f"{where} should be an object, not {type(value).__name__}")
        # include_extras keeps NotRequired[...], which __required_keys__ cannot see in
        # Python 3.11 when annotations are strings (from __future__ import annotations).
        hints = typing.get_type_hints(expected, include_extras=True)
        for key, hint in hints.items():
            optional = typing.get_origin(hint) is NotRequired
            if optional:
                hint = typing.get_args(hint)[0]
            if key in value:
                _check(value[key], hint, f"{where}.{key}")
            elif not optional:
                raise ValueError(f"{where} has no {key!r}")
        return
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} should be a number, not {value!r}")
        return
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} should be a whole number, not {value!r}")
        return
    if not isinstance(value, expected):
        raise ValueError(f"{where} should be {_type_name(expected)}, not {value!r}")


def check_results(data: Any) -> BenchResults:
    """Return ``data`` as :class:`BenchResults` if every record has its declared fields and
    types; raise ValueError naming the first place that does not (``runs[3].cpu_s``...).

    Beyond types it checks one rule: a run with no elapsed time must say why (``error``),
    and a run that kept its chunks has them in every timeline entry.
    """
    if not isinstance(data, dict):
        raise ValueError("results must be a JSON object")
    if data.get("schema") != SCHEMA:
        raise ValueError(
            f"schema is {data.get('schema')!r}, expected {SCHEMA!r}: this file was made by "
            "another version of poetrylab bench; measure again (poetrylab bench ...)"
        )
    _check(data, BenchResults, "results")
    results = cast(BenchResults, data)
    for i, run in enumerate(results["runs"]):
        if run["elapsed_s"] is None and run["error"] is None:
            raise ValueError(f"results.runs[{i}] has no elapsed time and no error saying why")
        if run["chunks_stored"]:
            for j, entry in enumerate(run["timeline"]):
                if "chunks" not in entry:
                    raise ValueError(f"results.runs[{i}].timeline[{j}] has no 'chunks'")
    return results


def compact_results(
    results: BenchResults, timelines_max_servers: int = 16, timeline_repeats: int = 1
) -> BenchResults:
    """A copy of ``results`` keeping per-server timelines only where a figure needs them.

    Runs above ``timelines_max_servers`` servers, or past the first ``timeline_repeats``
    repeats, get ``"timeline": []`` and ``"timeline_dropped": true``; every other field
    (phases and throughput included) is kept, so the summary and every figure but the
    timelines come out the same. For keeping a big sweep beside a notebook.
    """
    runs: list[RunRecord] = []
    for run in results["runs"]:
        keep = run["n_servers"] <= timelines_max_servers and run["repeat"] < timeline_repeats
        if run["timeline"] and not keep:
            run = cast(RunRecord, {**run, "timeline": [], "timeline_dropped": True,
                                   "chunks_stored": False})  # fmt: skip
        runs.append(run)
    return cast(BenchResults, {**results, "runs": runs})


def dumps_results(results: BenchResults) -> str:
    """The results as JSON text: one line per top-level field and one per run.

    Compact (a run's chunk list stays on its line) yet easy to diff and to grep.
    """
    fields = []
    for key, value in results.items():
        if key == "runs" and value:
            runs = cast(list[RunRecord], value)
            body = ",\n".join("  " + json.dumps(run, separators=(",", ":")) for run in runs)
            fields.append(f' "runs": [\n{body}\n ]')
        else:
            fields.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def save_results(results: BenchResults, path: str | Path) -> Path:
    """Check ``results`` and write them as JSON to ``path``; return the path.

    Raises ValueError (and writes nothing) when they do not pass :func:`check_results`.
    """
    check_results(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_results(results), encoding="utf-8")
    return path


def load_results(path: str | Path) -> BenchResults:
    """Read and check a results file; raise ValueError saying what is wrong if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}")
    try:
        return check_results(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}")


# ---------------------------------------------------------------- the summary


def good_runs(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The runs in which the client process ran and every download succeeded."""
    return [r for r in runs if r["elapsed_s"] is not None and not r["errors"]]


def median_run(runs: Iterable[RunRecord]) -> RunRecord | None:
    """The good run with the median elapsed time (the lower middle one of an even count).

    One real run, not a median per figure, so its phases add up to its elapsed time:
    what a figure splitting a run into parts must show. None without a good run.
    """
    ordered = sorted(good_runs(runs), key=lambda r: cast(float, r["elapsed_s"]))
    return ordered[(len(ordered) - 1) // 2] if ordered else None


@dataclass(frozen=True)
class SummaryRow:
    """One client at one N, over its repeats: medians of the good runs, and what failed.

    ``efficiency`` is ideal / median elapsed; ``over_ideal_pct`` is how far above the
    ideal the median came, in percent; ``limit`` is the first measured limit (a model that
    could not try every server) or None.
    """

    client: str
    n_servers: int
    runs: int
    failed: int
    ideal_s: float | None
    elapsed_s: float | None
    process_s: float | None
    cpu_s: float | None
    peak_rss_mb: float | None
    poems_per_s: float | None
    server_late_ms: float | None
    error: str | None
    limit: str | None

    @property
    def efficiency(self) -> float | None:
        """Ideal / median elapsed, or None when no run succeeded."""
        if not self.elapsed_s or self.ideal_s is None:
            return None
        return self.ideal_s / self.elapsed_s

    @property
    def over_ideal_pct(self) -> float | None:
        """Percent by which the median elapsed time exceeds the ideal."""
        if not self.elapsed_s or not self.ideal_s:
            return None
        return 100 * (self.elapsed_s / self.ideal_s - 1)


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(results: BenchResults) -> list[SummaryRow]:
    """One :class:`SummaryRow` per client and N, clients in the order they were given.

    Medians are over the runs in which every download succeeded; ``failed`` counts the
    others and ``error`` gives the first failure's reason. Peak memory is the largest.
    """
    order = {c: i for i, c in enumerate(results["parameters"]["clients"])}
    groups: dict[tuple[str, int], list[RunRecord]] = {}
    for run in results["runs"]:
        groups.setdefault((run["client"], run["n_servers"]), []).append(run)

    def position(key: tuple[str, int]) -> tuple[int, int]:
        return order.get(key[0], len(order)), key[1]

    rows = []
    for (client, n), runs in sorted(groups.items(), key=lambda kv: position(kv[0])):
        good = good_runs(runs)
        bad = [r for r in runs if r not in good]
        limits = [r["limit"] for r in runs if r["limit"]]
        rows.append(SummaryRow(
            client=client, n_servers=n, runs=len(runs), failed=len(bad),
            ideal_s=runs[0]["ideal_s"],
            elapsed_s=_median(r["elapsed_s"] for r in good),
            process_s=_median(r["process_s"] for r in good),
            cpu_s=_median(r["cpu_s"] for r in good),
            peak_rss_mb=max((r["peak_rss_mb"] for r in good if r["peak_rss_mb"]), default=None),
            poems_per_s=_median(r["poems_per_s"] for r in good),
            server_late_ms=_median(
                1000 * r["server"]["mean_final_late_s"] for r in good if "server" in r
            ),
            error=bad[0]["error"] if bad else None,
            limit=limits[0] if limits else None,
        ))  # fmt: skip
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Iterable[SummaryRow]) -> str:
    """The summary as a fixed-width text table (medians over repeats), one row per client and N.

    ``poems/s`` is the throughput; ``server late`` how late, on average, the servers
    wrote each poem's last chunk: time the servers added, not the client. Failed runs and
    measured limits are listed under the table with their reasons.
    """
    header = (
        f"{'client':<10} {'N':>6} {'ideal s':>8} {'elapsed s':>10} {'vs ideal':>9} "
        f"{'poems/s':>8} {'CPU s':>7} {'peak MB':>8} {'runs':>5} {'server late':>11}"
    )
    lines = [header, "-" * len(header)]
    notes = []
    for row in rows:
        over = row.over_ideal_pct
        late = "-" if row.server_late_ms is None else f"{row.server_late_ms:.1f} ms"
        lines.append(
            f"{row.client:<10} {row.n_servers:>6} {_fmt(row.ideal_s, '.2f'):>8} "
            f"{_fmt(row.elapsed_s, '.3f'):>10} "
            f"{'-' if over is None else f'{over:+.1f}%':>9} {_fmt(row.poems_per_s, ',.1f'):>8} "
            f"{_fmt(row.cpu_s, '.2f'):>7} {_fmt(row.peak_rss_mb, '.0f'):>8} "
            f"{f'{row.runs - row.failed}/{row.runs}':>5} {late:>11}"
        )
        if row.limit:
            notes.append(f"  {row.client} at N={row.n_servers:,}: limit: {row.limit}")
        elif row.error:
            notes.append(f"  {row.client} at N={row.n_servers:,}: {row.error}")
    if notes:
        lines += ["", "failed runs and measured limits:", *notes]
    return "\n".join(lines)

