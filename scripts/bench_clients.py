"""Run the client benchmark's headline sweep (1 to 10,000 servers) and check its targets.

Notebook 17 (the benchmark) shows the figures this makes. The measuring is done by
``poetrylab bench``, exactly as printed; this script checks first that the machine is
quiet enough to measure (it refuses a busy one unless ``--force``), then runs the CLI,
reads the results file and says, target by target, what was measured::

    .venv/bin/python scripts/bench_clients.py                  # the sweep (~8 min)
    .venv/bin/python scripts/bench_clients.py --force          # ...even on a busy machine
    .venv/bin/python scripts/bench_clients.py --check RESULTS  # check a saved sweep
    .venv/bin/python scripts/bench_clients.py --notebook-copy  # also refresh notebook 17's
                                                               # copy and the README figures

Targets: the asynchronous clients (select, twisted, asyncio) within 5 % of the slowest
server's time up to N = 1,000; the blocking client within 3 % of the sum; the twisted
(Deferred) client's CPU at most 1.25x asyncio's at N = 10,000; the servers on their
timetable at N = 10,000 (each poem's last chunk on average under 50 ms late); and, side
by side at N = 10,000, each model's elapsed time, CPU, peak memory and where its time
went, or the limit that stopped it.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from poetrylab.bench._system import machine_load  # noqa: E402
from poetrylab.bench.results import (  # noqa: E402
    BenchResults,
    RunRecord,
    compact_results,
    good_runs,
    load_results,
    median_run,
    save_results,
)

HEADLINE = [
    "--clients", "blocking,threaded,select,twisted,asyncio",
    "--servers", "1,2,5,10,20,50,100,200,500,1000,2000,5000,10000",
    "--delay", "0.5", "--num-bytes", "100", "--poem", "hope",
    "--repeats", "3", "--max-run-seconds", "60",
]  # fmt: skip
NOTEBOOK_COPY = ROOT / "notebooks" / "data" / "17-bench-sweep.json"
README_FIGURES = ROOT / "docs"
TOP = 10_000


def _over(runs: list[RunRecord]) -> tuple[float, float]:
    """Median and worst percent over the ideal among ``runs``."""
    over = [100 * (r["elapsed_s"] / r["ideal_s"] - 1)
            for r in runs if r["elapsed_s"] and r["ideal_s"]]  # fmt: skip
    return statistics.median(over), max(over)


def _median(runs: list[RunRecord], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)  # type: ignore[literal-required]


def check_targets(results: BenchResults) -> list[str]:
    """One line per target: what was measured and whether it is met (by the median run)."""
    runs = good_runs(results["runs"])
    lines = []

    def verdict(ok: bool) -> str:
        return "MET   " if ok else "MISSED"

    for client in ("select", "twisted", "asyncio"):
        mine = [r for r in runs if r["client"] == client and r["n_servers"] <= 1000]
        if mine:
            by_n = {n: _over([r for r in mine if r["n_servers"] == n])
                    for n in {r["n_servers"] for r in mine}}  # fmt: skip
            worst_n = max(by_n, key=lambda n: by_n[n][0])
            median, worst = by_n[worst_n]
            lines.append(f"{verdict(median <= 5)} {client} at N <= 1,000: worst median "
                         f"{median:+.1f}% over the slowest server (at N={worst_n:,}; worst "
                         f"single run {worst:+.1f}%), target 5%")  # fmt: skip
    mine = [r for r in runs if r["client"] == "blocking"]
    if mine:
        by_n = {n: _over([r for r in mine if r["n_servers"] == n])
                for n in {r["n_servers"] for r in mine}}  # fmt: skip
        n, (median, worst) = max(by_n.items(), key=lambda kv: kv[1][0])
        lines.append(f"{verdict(median <= 3)} blocking: worst median {median:+.1f}% over the "
                     f"sum (at N={n:,}; worst run {worst:+.1f}%), target 3%")  # fmt: skip
    at_top = {c: [r for r in runs if r["client"] == c and r["n_servers"] == TOP]
              for c in results["parameters"]["clients"]}  # fmt: skip
    if at_top.get("twisted") and at_top.get("asyncio"):
        ratio = _median(at_top["twisted"], "cpu_s") / _median(at_top["asyncio"], "cpu_s")
        lines.append(f"{verdict(ratio <= 1.25)} twisted CPU at N = {TOP:,}: {ratio:.2f}x "
                     "asyncio's (medians), target 1.25x")
    late = [r["server"]["mean_final_late_s"] for r in runs
            if r["n_servers"] == TOP and "server" in r]  # fmt: skip
    if late:
        worst_late = 1000 * max(late)
        lines.append(f"{verdict(worst_late < 50)} servers on their timetable at N = {TOP:,}: "
                     f"last chunks {1000 * statistics.median(late):.1f} ms late on average "
                     f"(worst run {worst_late:.1f} ms), target 50 ms")
    lines.append(f"side by side at N = {TOP:,} (each client's median run, by elapsed time):")
    for client, mine in at_top.items():
        every = [r for r in results["runs"] if r["client"] == client and r["n_servers"] == TOP]
        limits = [r["limit"] for r in every if r["limit"]]
        middle = median_run(mine)
        if middle is None:
            reason = limits[0] if limits else (every[0]["error"] if every else "not measured")
            lines.append(f"  {client:<9} no complete run: {reason}")
            continue
        phases = middle["phases"] or {}

        def part(key: str, phases: Mapping[str, Any] = phases) -> float:
            value = phases.get(key)
            return float(value) if value is not None else float("nan")

        lines.append(
            f"  {client:<9} elapsed {float(middle['elapsed_s'] or 0):6.2f} s"
            f"  CPU {float(middle['cpu_s'] or 0):5.2f} s"
            f"  peak memory {max(float(r['peak_rss_mb'] or 0) for r in mine):6.1f} MB"
            f"  time: connecting {part('connect_s'):.2f} s, chunks {part('transfer_s'):.2f} s,"
            f" finishing {part('finish_s'):.2f} s; CPU: {part('cpu_connect_s'):.2f} /"
            f" {part('cpu_transfer_s'):.2f} / {part('cpu_finish_s'):.2f} s,"
            f" {1e6 * part('cpu_transfer_s') / max(1.0, part('transfer_chunks')):.0f} µs a chunk"
            f"  ({len(mine)} runs{'; limit: ' + limits[0] if limits else ''})"
        )
    for run in results["runs"]:
        if run["elapsed_s"] is None or run["errors"]:
            why = f"limit: {run['limit']}" if run["limit"] else run["error"]
            lines.append(f"  FAILED {run['client']} at N={run['n_servers']:,}: {why}")
    machine = results["machine"]
    lines.append(f"load average before {machine['load_before']} after "
                 f"{machine.get('load_after')}; {results['parameters']['usable_cpus']:g} "
                 "usable CPUs")  # fmt: skip
    if machine.get("busy"):
        lines.append(f"WARNING: measured while {machine['busy']}")
    return lines


def write_copies(results: BenchResults) -> list[Path]:
    """Notebook 17's compact copy of the sweep and the README's figures; return the paths."""
    from poetrylab.bench import figures

    written = [save_results(compact_results(results, timelines_max_servers=5), NOTEBOOK_COPY)]
    runs = figures.timeline_runs(results, max_servers=5)
    if runs:
        timelines = figures.plot_timelines(runs)
        written.append(timelines.save(README_FIGURES / "three-models-measured.png"))
    written.append(figures.plot_elapsed(results).save(README_FIGURES / "time-against-servers.png"))
    written.append(figures.plot_throughput(results).save(README_FIGURES / "throughput.png"))
    written.append(figures.plot_per_connection(results).save(README_FIGURES / "per-connection.png"))
    written.append(figures.plot_phases(results).save(README_FIGURES / "phases-10000.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out-dir", default="bench-out", help="where results and figures go")
    parser.add_argument("--check", metavar="RESULTS", help="check a saved results file only")
    parser.add_argument("--force", action="store_true",
                        help="measure even when the machine is busy (the figures will say so)")
    parser.add_argument("--notebook-copy", action="store_true",
                        help=f"write a compact copy for notebook 17 to {NOTEBOOK_COPY} and "
                             f"the README's figures to {README_FIGURES}/")
    args = parser.parse_args(argv)
    if args.check:
        results_path = Path(args.check)
    else:
        load = machine_load()
        if load.busy and not args.force:
            print(f"bench_clients: not starting a {TOP:,}-server sweep: {load.busy}\n"
                  "Wait until the machine is quiet (`uptime`), or run it anyway with "
                  "`make bench FORCE=1` (scripts/bench_clients.py --force).", file=sys.stderr)
            return 3
        print(f"bench_clients: {load.describe()}", flush=True)
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        results_path = out / "sweep.json"
        command = ["poetrylab", "bench", *HEADLINE, "--out", str(results_path),
                   "--plot", str(out / "sweep.png")]  # fmt: skip
        print("$", shlex.join(command), flush=True)
        status = subprocess.call([sys.executable, "-m", "poetrylab.bench.cli", *command[2:]])
        if status not in (0, 130):
            return status
    results = load_results(results_path)
    if results["command"]:
        print("measured with:", results["command"])
    params = results["parameters"]
    print(f"{params['poem']}: {params['poem_bytes']} bytes, {params['num_bytes']} every "
          f"{params['delay']} s = {params['server_time_s']:.2f} s per server; "
          f"pacing {params['pacing']}; Python {params['python']}, Twisted {params['twisted']}, "
          f"{params['usable_cpus']:g} usable CPUs")  # fmt: skip
    print("\n".join(check_targets(results)))
    if args.notebook_copy:
        for path in write_copies(results):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
