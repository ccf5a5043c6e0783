"""The benchmark's results file: its layout, a checker, and the summary table.

Notebook 17 (the benchmark) reads these files. One JSON object::

    schema       "poetrylab-bench/1"
    parameters   poem, poem_bytes, delay, num_bytes, servers (the N values), clients,
                 models (client -> model), repeats, pacing, max_run_s,
                 chunks_max_servers, server_time_s (one server's ideal time),
                 python, twisted, cpu_count, platform
    ideal        [{n_servers, sequential_s (the sum), concurrent_s (the slowest)}]
    machine      load_before, load_after (1/5/15-minute load averages), started_at
    command      the command line that made it (or null)
    runs         one record per run (below)
    skipped      [{client, n_servers, ideal_s, reason}]: runs not attempted
    interrupted  true if Ctrl-C cut the sweep short

A run record: ``client``, ``model``, ``n_servers``, ``repeat``, ``elapsed_s`` (the
downloads by the client's own clock; null if the process failed), ``process_s`` (the
whole client process, start-up and imports included), ``cpu_s`` (CPU time of the
downloads), ``cpu_total_s`` (of the whole process), ``peak_rss_mb``, ``bytes``,
``expected_bytes``, ``errors`` (failed downloads), ``error`` (the first reason, or
null), ``ideal_s``, ``efficiency`` (ideal / elapsed), ``server`` (what the server process
did during the run: writes, lateness, CPU) and ``timeline``: one entry per server with
``task``, ``address``, ``started``, ``connected``, ``finished``, ``bytes``, ``error``
and ``chunks`` (``[t, size]`` pairs; omitted, with ``n_chunks`` instead, when
``chunks_stored`` is false). Timeline times are seconds from the client's start.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_FIELDS",
    "SCHEMA",
    "SummaryRow",
    "compact_results",
    "dumps_results",
    "format_table",
    "load_results",
    "save_results",
    "summarise",
    "validate_results",
]

SCHEMA = "poetrylab-bench/1"

PARAMETER_FIELDS = (
    "poem", "poem_bytes", "delay", "num_bytes", "servers", "clients", "models", "repeats",
    "pacing", "server_time_s", "python", "twisted", "cpu_count",
)  # fmt: skip

RUN_FIELDS = (
    "client", "model", "n_servers", "repeat", "elapsed_s", "cpu_s", "bytes", "expected_bytes",
    "errors", "error", "ideal_s", "efficiency", "timeline",
)  # fmt: skip

_TIMELINE_FIELDS = ("task", "address", "started", "connected", "finished", "bytes", "error")


def validate_results(results: Any) -> None:
    """Raise ValueError naming the first missing or malformed field; return None if fine."""
    if not isinstance(results, dict):
        raise ValueError("results must be a JSON object")
    if results.get("schema") != SCHEMA:
        raise ValueError(f"schema is {results.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("parameters", "ideal", "runs", "skipped"):
        if key not in results:
            raise ValueError(f"results has no {key!r}")
    params = results["parameters"]
    for key in PARAMETER_FIELDS:
        if key not in params:
            raise ValueError(f"parameters has no {key!r}")
    for i, entry in enumerate(results["ideal"]):
        if not {"n_servers", "sequential_s", "concurrent_s"} <= entry.keys():
            raise ValueError(f"ideal[{i}] needs n_servers, sequential_s and concurrent_s")
    for i, run in enumerate(results["runs"]):
        for key in RUN_FIELDS:
            if key not in run:
                raise ValueError(f"runs[{i}] has no {key!r}")
        if run["elapsed_s"] is None and run["error"] is None:
            raise ValueError(f"runs[{i}] has no elapsed time and no error saying why")
        for j, entry in enumerate(run["timeline"]):
            for key in _TIMELINE_FIELDS:
                if key not in entry:
                    raise ValueError(f"runs[{i}].timeline[{j}] has no {key!r}")
            if run.get("chunks_stored", True) and "chunks" not in entry:
                raise ValueError(f"runs[{i}].timeline[{j}] has no 'chunks'")


def compact_results(
    results: dict[str, Any], timelines_max_servers: int = 16, timeline_repeats: int = 1
) -> dict[str, Any]:
    """A copy of ``results`` keeping per-server timelines only where a figure needs them.

    Runs above ``timelines_max_servers`` servers, or past the first ``timeline_repeats``
    repeats, get ``"timeline": []`` and ``"timeline_dropped": true``; every other field
    is kept, so the summary and the time / efficiency / CPU figures come out the same.
    For keeping a big sweep beside a notebook (one 1,000-server timeline is ~150 kB).
    """
    out = dict(results, runs=[])
    for run in results["runs"]:
        keep = run["n_servers"] <= timelines_max_servers and run["repeat"] < timeline_repeats
        if run["timeline"] and not keep:
            run = dict(run, timeline=[], timeline_dropped=True, chunks_stored=False)
        out["runs"].append(run)
    return out


def dumps_results(results: dict[str, Any]) -> str:
    """The results as JSON text: one line per top-level field and one per run.

    Compact (a run's chunk list stays on its line) yet easy to diff and to grep.
    """
    fields = []
    for key, value in results.items():
        if key == "runs" and value:
            body = ",\n".join("  " + json.dumps(run, separators=(",", ":")) for run in value)
            fields.append(f' "runs": [\n{body}\n ]')
        else:
            fields.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def save_results(results: dict[str, Any], path: str | Path) -> Path:
    """Check ``results`` and write them as JSON to ``path``; return the path."""
    validate_results(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_results(results), encoding="utf-8")
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and check a results file; raise ValueError if it is not one."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}")
    validate_results(results)
    return results


@dataclass(frozen=True)
class SummaryRow:
    """One client at one N, over its repeats: medians, and the worst case for failures.

    ``efficiency`` is ideal / median elapsed; ``over_ideal_pct`` is how far above the
    ideal the median came, in percent.
    """

    client: str
    n_servers: int
    runs: int
    failed: int
    ideal_s: float
    elapsed_s: float | None
    process_s: float | None
    cpu_s: float | None
    peak_rss_mb: float | None
    server_late_ms: float | None
    error: str | None

    @property
    def efficiency(self) -> float | None:
        """Ideal / median elapsed, or None when no run succeeded."""
        return self.ideal_s / self.elapsed_s if self.elapsed_s else None

    @property
    def over_ideal_pct(self) -> float | None:
        """Percent by which the median elapsed time exceeds the ideal."""
        if not self.elapsed_s or not self.ideal_s:
            return None
        return 100 * (self.elapsed_s / self.ideal_s - 1)


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ok(run: dict[str, Any]) -> bool:
    return run["elapsed_s"] is not None and not run["errors"]


def summarise(results: dict[str, Any]) -> list[SummaryRow]:
    """One :class:`SummaryRow` per client and N, clients in the order they were given.

    Medians are over the runs in which every download succeeded; ``failed`` counts the
    others and ``error`` gives the first failure's reason.
    """
    order = {c: i for i, c in enumerate(results["parameters"]["clients"])}
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in results["runs"]:
        groups.setdefault((run["client"], run["n_servers"]), []).append(run)
    rows = []
    def position(key: tuple[str, int]) -> tuple[int, int]:
        return order.get(key[0], len(order)), key[1]

    for (client, n), runs in sorted(groups.items(), key=lambda kv: position(kv[0])):
        good = [r for r in runs if _ok(r)]
        bad = [r for r in runs if not _ok(r)]
        rows.append(SummaryRow(
            client=client, n_servers=n, runs=len(runs), failed=len(bad),
            ideal_s=runs[0]["ideal_s"],
            elapsed_s=_median(r["elapsed_s"] for r in good),
            process_s=_median(r.get("process_s") for r in good),
            cpu_s=_median(r["cpu_s"] for r in good),
            peak_rss_mb=max((r["peak_rss_mb"] for r in good if r.get("peak_rss_mb")), default=None),
            server_late_ms=_median(
                1000 * r["server"]["mean_final_late_s"] for r in good if r.get("server")
            ),
            error=bad[0]["error"] if bad else None,
        ))  # fmt: skip
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def format_table(rows: Iterable[SummaryRow]) -> str:
    """The summary as a fixed-width text table (medians over repeats), one row per client and N.

    ``server late`` is how late, on average, the servers wrote each poem's last chunk:
    time the servers added, not the client.
    """
    header = (
        f"{'client':<10} {'N':>5} {'ideal s':>8} {'elapsed s':>10} {'vs ideal':>9} "
        f"{'process s':>10} {'CPU s':>7} {'peak MB':>8} {'runs':>5} {'server late':>11}"
    )
    lines = [header, "-" * len(header)]
    failures = []
    for row in rows:
        over = row.over_ideal_pct
        lines.append(
            f"{row.client:<10} {row.n_servers:>5} {row.ideal_s:>8.2f} "
            f"{_fmt(row.elapsed_s, '.3f'):>10} "
            f"{'-' if over is None else f'{over:+.1f}%':>9} {_fmt(row.process_s, '.2f'):>10} "
            f"{_fmt(row.cpu_s, '.2f'):>7} {_fmt(row.peak_rss_mb, '.0f'):>8} "
            f"{f'{row.runs - row.failed}/{row.runs}':>5} "
            f"{_ms(row.server_late_ms):>11}"
        )
        if row.error:
            failures.append(f"  {row.client} at N={row.n_servers}: {row.error}")
    if failures:
        lines += ["", "failed runs:", *failures]
    return "\n".join(lines)
