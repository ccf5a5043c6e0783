"""Benchmark the notebook runtime against raw crochet, and check that it leaks nothing.

Run: ``.venv/bin/python scripts/bench_runtime.py`` (``--kernel`` to measure the latencies
inside a real IPython kernel, as a notebook sees them; ``--json`` for machine-readable).

Measured side by side in one process, in interleaved rounds so that machine noise hits
every method alike, each figure the median of single-call times:

* ``crochet @wait_for``: raw crochet, a function returning a constant (the baseline);
* ``runtime.call``: the same function through poetrylab's blocking call;
* ``await runtime.resolve(d)``: an already-fired Deferred awaited from the asyncio loop
  of the main thread (``--kernel``: a notebook's top-level ``await``, on the kernel's loop);
* ``bare wrap_future``: the least a thread-safe bridge can do, for comparison: the
  reactor thread completes a ``concurrent.futures.Future`` that asyncio awaits.

Then 10,000 sequential calls and 1,000 server start/stop cycles, counting threads and
open file descriptors before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import succeed

from poetrylab import runtime

Timer = Callable[[], float]


def _constant() -> int:
    return 42


def open_fds() -> int:
    """Open file descriptors of this process (Linux: /proc/self/fd)."""
    return len(os.listdir("/proc/self/fd"))


def measure_blocking(call_once: Callable[[], Any], n: int) -> list[float]:
    times = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        call_once()
        times.append(clock() - start)
    return times


async def measure_awaiting(await_once: Callable[[], Any], n: int) -> list[float]:
    times = []
    clock = time.perf_counter
    for _ in range(n):
        start = clock()
        await await_once()
        times.append(clock() - start)
    return times


async def latencies(rounds: int, per_round: int) -> dict[str, float]:
    """Median µs per call of each method, measured in interleaved rounds.

    Awaits run on the event loop running this coroutine: ``asyncio.run`` from the
    command line, the kernel's own loop with ``--kernel``.
    """
    import crochet

    reactor = runtime.start().reactor
    raw = crochet.wait_for(timeout=10.0)(_constant)

    def bare_bridge() -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        fired = succeed(42)

        def in_reactor() -> None:
            fired.addBoth(future.set_result)

        reactor.callFromThread(in_reactor)
        return asyncio.wrap_future(future)

    def already_fired() -> Any:
        return runtime.resolve(succeed(42))

    samples: dict[str, list[float]] = {
        "crochet @wait_for": [], "runtime.call": [],
        "await runtime.resolve(d)": [], "bare wrap_future": [],
    }  # fmt: skip
    for _ in range(rounds):
        samples["crochet @wait_for"] += measure_blocking(raw, per_round)
        samples["runtime.call"] += measure_blocking(lambda: runtime.call(_constant), per_round)
        samples["await runtime.resolve(d)"] += await measure_awaiting(already_fired, per_round)
        samples["bare wrap_future"] += await measure_awaiting(bare_bridge, per_round)
    return {name: statistics.median(times) * 1e6 for name, times in samples.items()}


def latencies_in_kernel(rounds: int, per_round: int) -> dict[str, float]:
    """:func:`latencies` run by a real IPython kernel, with top-level ``await``."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    cell = new_code_cell(
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('bench', {__file__!r})\n"
        "bench = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(bench)\n"
        f"print(json.dumps(await bench.latencies({rounds}, {per_round})))"
    )
    nb = new_notebook(cells=[cell])
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    return json.loads(cell.outputs[0]["text"])


def leaks(calls: int, cycles: int) -> dict[str, Any]:
    """Threads and fds before and after many calls and many server start/stop cycles."""
    runtime.start()
    for _ in range(100):  # warm up: the first calls create what lives for ever
        runtime.call(_constant)
    runtime.serve("fast", "furuike", name="warm-up").stop()
    runtime.serve("blocking", "furuike", name="warm-up").stop()
    before = threading.active_count(), open_fds()
    for _ in range(calls):
        runtime.call(_constant)
    after_calls = threading.active_count(), open_fds()
    kinds = ["slow", "fast", "blocking"]
    for i in range(cycles):
        runtime.serve(kinds[i % 3], "furuike", name="cycled").stop()
    for i in range(cycles // 10):  # the same name again and again: replaced, not leaked
        runtime.serve(kinds[i % 3], "furuike", name="replaced")
    runtime.stop_all()
    after_cycles = threading.active_count(), open_fds()
    return {
        "threads": [before[0], after_calls[0], after_cycles[0]],
        "fds": [before[1], after_calls[1], after_cycles[1]],
        "servers_left": len(runtime.servers()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=500)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=1_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--kernel", action="store_true",
        help="measure the latencies inside a real IPython kernel (top-level await)",
    )  # fmt: skip
    args = parser.parse_args()

    if args.kernel:
        medians = latencies_in_kernel(args.rounds, args.per_round)
    else:
        medians = asyncio.run(latencies(args.rounds, args.per_round))
    leak = leaks(args.calls, args.cycles)
    base = medians["crochet @wait_for"]
    if args.json:
        print(json.dumps({"median_us": medians, "leaks": leak}, indent=2))
    else:
        where = "in an IPython kernel" if args.kernel else "in this process"
        print(f"median µs per call, {where} ({args.rounds} x {args.per_round} calls each, "
              "interleaved)")  # fmt: skip
        for name, us in medians.items():
            print(f"  {name:26} {us:7.1f} µs  {us / base:4.2f}x crochet")
        print(f"threads before / after {args.calls} calls / after {args.cycles} server cycles: "
              f"{leak['threads']}")  # fmt: skip
        print(f"open fds, same moments: {leak['fds']}; servers left: {leak['servers_left']}")
    ok = (
        medians["runtime.call"] <= 1.5 * base
        and medians["await runtime.resolve(d)"] <= 2.0 * base
        and len(set(leak["threads"])) == 1
        and len(set(leak["fds"])) == 1
        and leak["servers_left"] == 0
    )
    if not args.json:
        print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
