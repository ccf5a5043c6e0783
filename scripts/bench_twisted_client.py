"""Where the Deferred client's CPU goes, and how it compares with asyncio's (notebook 17).

Issue 15 asks for the course's Twisted client (``poetrylab.clients.deferred``, the
benchmark's ``twisted``) to spend at most 1.25x asyncio's CPU at 10,000 connections.
This script measures exactly that, with the benchmark's own harness: N slow servers in
their own processes, each client in a fresh process, alternating twisted and asyncio
(and select, the hand-written loop, for scale) ``--repeats`` times, medians reported
with the servers' lateness (is the timetable kept at N?) and the load average. With
``--profile`` it also runs the Deferred client once under cProfile in a child process
and prints the functions that cost the most::

    .venv/bin/python scripts/bench_twisted_client.py                 # N = 10,000, 3 repeats
    .venv/bin/python scripts/bench_twisted_client.py -n 5000 --profile

Figures are measured, never asserted: run it on a quiet machine (it says when it is not).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from poetrylab.bench._system import machine_load  # noqa: E402
from poetrylab.bench.harness import ServerHost, run_client  # noqa: E402
from poetrylab.bench.ideal import server_times  # noqa: E402
from poetrylab.bench.results import RunRecord  # noqa: E402
from poetrylab.corpus import load_poem  # noqa: E402

POEM, DELAY, NUM_BYTES = "hope", 0.5, 100  # the headline sweep's servers: 1.5 s each

_PROFILE = """
import cProfile, json, pstats, sys
from poetrylab.bench._system import raise_fd_limit
from poetrylab.clients import MODELS, fetch
raise_fd_limit()
MODELS["deferred"].load()
from twisted.internet import reactor  # noqa: F401
addresses = json.load(open(sys.argv[1]))
profile = cProfile.Profile()
profile.enable()
downloads = fetch("deferred", addresses, timeout=120)
profile.disable()
print(f"{sum(d.ok for d in downloads)} of {len(downloads)} poems")
pstats.Stats(profile).sort_stats("tottime").print_stats(int(sys.argv[2]))
"""


def _median(runs: list[RunRecord], key: str) -> float:
    return statistics.median(float(r[key] or 0.0) for r in runs)  # type: ignore[literal-required]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", "--servers", type=int, default=10_000, help="N (default 10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per client (default 3)")
    parser.add_argument("--clients", default="twisted,asyncio,select", help="clients to compare")
    parser.add_argument("--profile", action="store_true", help="also profile the Deferred client")
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    args = parser.parse_args(argv)
    clients = args.clients.split(",")
    print(f"load before: {machine_load().describe()}", flush=True)
    runs: dict[str, list[RunRecord]] = {c: [] for c in clients}
    ideal = server_times(len(load_poem(POEM).data), NUM_BYTES, DELAY, 1)[0]
    with ServerHost(args.servers, POEM, DELAY, NUM_BYTES) as host:
        for repeat in range(args.repeats):
            for client in clients:
                host.stats()
                record = run_client(client, host.addresses, timeout=120, process_timeout=600,
                                    keep_chunks=False, delay=DELAY, num_bytes=NUM_BYTES,
                                    repeat=repeat, ideal_s=ideal)  # fmt: skip
                record["server"] = host.stats()
                runs[client].append(record)
                print(f"  {client:<8} repeat {repeat + 1}: elapsed "
                      f"{record['elapsed_s'] or 0:.2f} s, CPU {record['cpu_s'] or 0:.2f} s, "
                      f"{record['errors']} failed", flush=True)  # fmt: skip
        if args.profile:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
                json.dump([str(a) for a in host.addresses], listing)
            done = subprocess.run([sys.executable, "-c", _PROFILE, listing.name, str(args.top)],
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            print(done.stdout, done.stderr[-2000:])
            Path(listing.name).unlink()
    print(f"\nN = {args.servers:,}, medians of {args.repeats} runs (CPU: the client process's "
          "user + system time while downloading):")
    for client, mine in runs.items():
        good = [r for r in mine if r["elapsed_s"] is not None and not r["errors"]]
        if not good:
            print(f"  {client:<8} no complete run: {mine[0]['limit'] or mine[0]['error']}")
            continue
        late = statistics.median(1000 * r["server"]["mean_final_late_s"] for r in good)
        print(f"  {client:<8} elapsed {_median(good, 'elapsed_s'):5.2f} s  CPU "
              f"{_median(good, 'cpu_s'):5.2f} s "
              f"({1e6 * _median(good, 'cpu_s') / args.servers:4.0f} µs per connection)"
              f"  peak memory {max(r['peak_rss_mb'] or 0 for r in good):5.0f} MB"
              f"  servers' last chunks {late:.1f} ms late")
    if runs.get("twisted") and runs.get("asyncio"):
        ratio = _median(runs["twisted"], "cpu_s") / _median(runs["asyncio"], "cpu_s")
        print(f"twisted / asyncio CPU: {ratio:.2f}x (target at most 1.25x)")
    print(f"load after: {machine_load().describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
