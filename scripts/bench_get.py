"""Time ``poetrylab get`` as a whole process against another client command, and start-up.

Run: ``.venv/bin/python scripts/bench_get.py --other "python3 /path/to/get-poetry.py"``

One slow server (``poetrylab serve slow raven --delay 0.01 --num-bytes 1000``: four
chunks, about 30 ms a poem; ``--delay`` and ``--num-bytes`` change it) serves
``--downloads`` downloads (default 100), all started at once, to ``poetrylab get -q
--client deferred`` and to the ``--other`` command, which is given the same
``127.0.0.1:PORT`` arguments (the classic tutorial's ``twisted-client-4/get-poetry.py``
takes them that way). The two alternate, ``--pairs`` times (default 5), so a change in
the machine's load hits both; reported: the median wall time and CPU time (user +
system, from ``getrusage``) of each, and the ratio ours / other. Then ``poetrylab --help``
is started ``--pairs`` times: its median wall time is the command's start-up cost.

Without ``--other`` only ``poetrylab get`` and ``--help`` are timed. Both commands must
exit 0. Note the load average with the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from poetrylab.testing import ServerProcess


@dataclass
class Timing:
    """One run of a command: wall-clock seconds and CPU seconds (user + system)."""

    wall: float
    cpu: float


def timed(argv: list[str]) -> Timing:
    """Run ``argv`` to completion (output discarded); raise if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(argv)} exited {result.returncode}: {result.stderr[-300:]!r}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def median(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", help="the command to compare with (addresses are appended)")
    parser.add_argument("--downloads", type=int, default=100, help="downloads per run (100)")
    parser.add_argument("--pairs", type=int, default=5, help="alternating runs of each (5)")
    parser.add_argument("--delay", default="0.01", help="the server's --delay (0.01)")
    parser.add_argument("--num-bytes", default="1000", help="the server's --num-bytes (1000)")
    args = parser.parse_args(argv)
    poetrylab = [str(Path(sys.executable).with_name("poetrylab"))]
    if not Path(poetrylab[0]).exists():
        poetrylab = [sys.executable, "-m", "poetrylab"]
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    ours: list[Timing] = []
    other: list[Timing] = []
    pacing = ["--delay", args.delay, "--num-bytes", args.num_bytes]
    with ServerProcess("slow", "raven", *pacing) as server:
        addresses = [str(server.address)] * args.downloads
        get = [*poetrylab, "get", "-q", "--client", "deferred", *addresses]
        timed(get)  # warm the file cache (and write bytecode where allowed)
        for _ in range(args.pairs):
            ours.append(timed(get))
            if args.other:
                other.append(timed([*shlex.split(args.other), *addresses]))
    m = median(ours)
    print(f"poetrylab get, {args.downloads} downloads: wall {m.wall:.3f} s, cpu {m.cpu:.3f} s")
    if other:
        o = median(other)
        print(f"other command, same downloads:    wall {o.wall:.3f} s, cpu {o.cpu:.3f} s")
        print(f"ours / other: wall {m.wall / o.wall:.2f}, cpu {m.cpu / o.cpu:.2f}")
        pairs = ", ".join(f"{a.wall / b.wall:.2f}" for a, b in zip(ours, other, strict=True))
        print(f"  wall ratio of each pair: {pairs}")
    helps = [timed([*poetrylab, "--help"]) for _ in range(args.pairs)]
    h = median(helps)
    print(f"poetrylab --help: wall {h.wall:.3f} s, cpu {h.cpu:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
