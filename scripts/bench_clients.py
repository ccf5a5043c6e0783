"""Run the client benchmark's headline sweep with ``poetrylab bench`` and check its targets.

Notebook 17 (the benchmark) shows the figures this makes. The measuring is done by the
CLI, exactly as printed; this script only runs it, then reads the results file and says,
target by target, what was measured::

    .venv/bin/python scripts/bench_clients.py                  # the sweep (~20 min)
    .venv/bin/python scripts/bench_clients.py --check RESULTS  # check a saved sweep
    .venv/bin/python scripts/bench_clients.py --notebook-copy  # also refresh notebook 17's copy

Targets: asynchronous clients (select, twisted, asyncio) within 3 % of the slowest server's
time at N <= 100; twisted and asyncio within 5 % at N = 1,000; the blocking client within
3 % of the sum; and twisted, asyncio and threaded side by side at N = 1,000.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from poetrylab.bench.results import compact_results, load_results, save_results  # noqa: E402

HEADLINE = [
    "--clients", "blocking,threaded,select,twisted,asyncio",
    "--servers", "1,2,5,10,20,50,100,200,500,1000",
    "--delay", "0.02", "--num-bytes", "10", "--poem", "ecstasy",
    "--repeats", "3", "--max-run-seconds", "60",
]  # fmt: skip
NOTEBOOK_COPY = ROOT / "notebooks" / "data" / "17-bench-sweep.json"


def _over(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """Median and worst percent over the ideal among ``runs``."""
    over = [100 * (r["elapsed_s"] / r["ideal_s"] - 1) for r in runs if r["elapsed_s"]]
    return statistics.median(over), max(over)


def check_targets(results: dict[str, Any]) -> list[str]:
    """One line per target: what was measured and whether it is met (by the median run)."""
    runs = [r for r in results["runs"] if r["elapsed_s"] is not None and not r["errors"]]
    failed = [r for r in results["runs"] if r["elapsed_s"] is None or r["errors"]]
    lines = []

    def verdict(ok: bool) -> str:
        return "MET " if ok else "MISSED"

    for client in ("select", "twisted", "asyncio"):
        mine = [r for r in runs if r["client"] == client and r["n_servers"] <= 100]
        if mine:
            worst_n = max(
                {r["n_servers"] for r in mine},
                key=lambda n: _over([r for r in mine if r["n_servers"] == n])[0],
            )
            median, worst = _over([r for r in mine if r["n_servers"] == worst_n])
            lines.append(
                f"{verdict(median <= 3)} {client} at N <= 100: worst median {median:+.1f}% over "
                f"the slowest server (at N={worst_n}; worst single run {worst:+.1f}%), target 3%"
            )
    for client in ("twisted", "asyncio"):
        mine = [r for r in runs if r["client"] == client and r["n_servers"] == 1000]
        if mine:
            median, worst = _over(mine)
            lines.append(f"{verdict(median <= 5)} {client} at N = 1,000: median {median:+.1f}% "
                         f"(worst run {worst:+.1f}%), target 5%")
    mine = [r for r in runs if r["client"] == "blocking"]
    if mine:
        counts = {r["n_servers"] for r in mine}
        by_n = {n: _over([r for r in mine if r["n_servers"] == n]) for n in counts}
        n, (median, worst) = max(by_n.items(), key=lambda kv: kv[1][0])
        lines.append(f"{verdict(median <= 3)} blocking: worst median {median:+.1f}% over the sum "
                     f"(at N={n}; worst run {worst:+.1f}%), target 3%")
    lines.append("side by side at N = 1,000 (median of repeats):")
    for client in ("twisted", "asyncio", "threaded"):
        mine = [r for r in runs if r["client"] == client and r["n_servers"] == 1000]
        if mine:
            lines.append(
                f"  {client:<9} elapsed {statistics.median(r['elapsed_s'] for r in mine):6.3f} s"
                f"  CPU {statistics.median(r['cpu_s'] for r in mine):6.2f} s"
                f"  peak memory {max(r['peak_rss_mb'] for r in mine):6.1f} MB"
                f"  ({len(mine)} runs)"
            )
    for run in failed:
        lines.append(f"  FAILED {run['client']} at N={run['n_servers']}: {run['error']}")
    machine = results.get("machine", {})
    lines.append(
        f"load average before {machine.get('load_before')} after {machine.get('load_after')}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default="bench-out", help="where results and figures go")
    parser.add_argument("--check", metavar="RESULTS", help="check a saved results file only")
    parser.add_argument("--notebook-copy", action="store_true",
                        help=f"write a compact copy for notebook 17 to {NOTEBOOK_COPY}")
    args = parser.parse_args(argv)
    if args.check:
        results_path = Path(args.check)
    else:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        results_path = out / "sweep.json"
        command = ["poetrylab", "bench", *HEADLINE, "--out", str(results_path),
                   "--plot", str(out / "sweep.png")]  # fmt: skip
        print("$", shlex.join(command), flush=True)
        status = subprocess.call([sys.executable, "-m", "poetrylab", *command[1:]])
        if status not in (0, 130):
            return status
    results = load_results(results_path)
    if results.get("command"):
        print("measured with:", results["command"])
    params = results["parameters"]
    print(f"{params['poem']}: {params['poem_bytes']} bytes, {params['num_bytes']} every "
          f"{params['delay']} s = {params['server_time_s']:.2f} s per server; "
          f"pacing {params['pacing']}; Python {params['python']}, Twisted {params['twisted']}, "
          f"{params['cpu_count']} CPUs")
    print("\n".join(check_targets(results)))
    if args.notebook_copy:
        save_results(compact_results(results, timelines_max_servers=5), NOTEBOOK_COPY)
        print(f"notebook copy: {NOTEBOOK_COPY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
