"""Benchmark the notebook runtime: latency, idle cost, first-cell cost, and no leaks.

Run ``.venv/bin/python scripts/bench_runtime.py`` with one of:

* (nothing) or ``--kernel``: latencies, in this process or inside a real IPython kernel
  (as a notebook sees them: top-level ``await`` on the kernel's loop), then 10,000 calls
  and 1,000 server start/stop cycles, counting threads and open file descriptors;
* ``--idle SECONDS``: the CPU an idle kernel that has started the runtime uses, read
  from ``/proc/<pid>/stat`` over that many seconds (target: at most 0.05 % of a core),
  and the kernel's threads;
* ``--first-cell N``: the first cell of every notebook (``from poetrylab import
  runtime; reactor = runtime.start().reactor``) in N fresh kernels: wall and CPU time,
  and which heavy packages it imported (matplotlib, the tracer and ipywidgets must not be);
* ``--blocked``: the blocked-reactor sequence of issue 12 in a kernel (serve; block the
  reactor with ``runtime.call(time.sleep, 13, timeout=1)``; ``stop_all()``; run the serve
  cell again; ``stop_all()``): how many listening sockets the kernel holds at the end,
  not counting its own (target: 0). About 16 s.

``--json`` prints machine-readable results. Every mode prints the load average first:
figures taken on a busy machine say so.

The latencies are measured side by side in interleaved rounds, so that machine noise
hits every method alike; each figure is the median of single-call times:

* ``bare hand-over``: the least a blocking hand-over can do (``callFromThread`` and a
  lock), the baseline;
* ``runtime.call``: a function returning a constant, through the runtime;
* ``await runtime.resolve(d)``: an already-fired Deferred awaited from the asyncio loop
  of the main thread (``--kernel``: the kernel's loop, as top-level ``await``);
* ``bare wrap_future``: the least a thread-safe asyncio bridge can do: the reactor
  thread completes a ``concurrent.futures.Future`` that asyncio awaits;
* ``crochet @wait_for``: crochet's blocking call on the same reactor, when crochet is
  installed (it is no longer a dependency; ``crochet.no_setup()`` lets it use ours).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.internet.defer import succeed

from poetrylab import runtime

FIRST_CELL = "from poetrylab import runtime\nreactor = runtime.start().reactor"
HEAVY = ("matplotlib", "ipywidgets", "numpy", "PIL", "crochet", "poetrylab.tracing")
IDLE_TARGET = 0.05  # per cent of one core


def _constant() -> int:
    return 42


def open_fds(pid: int | str = "self") -> int:
    """Open file descriptors of a process (Linux: /proc/PID/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


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
    reactor = runtime.start().reactor

    def bare_call() -> Any:
        lock = threading.Lock()
        lock.acquire()
        box: list[int] = []

        def in_reactor() -> None:
            box.append(_constant())
            lock.release()

        reactor.callFromThread(in_reactor)
        lock.acquire(True, 10.0)
        return box[0]

    def bare_bridge() -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        fired = succeed(42)

        def in_reactor() -> None:
            fired.addBoth(future.set_result)

        reactor.callFromThread(in_reactor)
        return asyncio.wrap_future(future)

    def already_fired() -> Any:
        return runtime.resolve(succeed(42))

    blocking: dict[str, Callable[[], Any]] = {
        "bare hand-over": bare_call,
        "runtime.call": lambda: runtime.call(_constant),
    }
    crochet_call = _crochet_wait_for()
    if crochet_call is not None:
        blocking["crochet @wait_for"] = crochet_call
    awaiting = {"await runtime.resolve(d)": already_fired, "bare wrap_future": bare_bridge}
    samples: dict[str, list[float]] = {name: [] for name in [*blocking, *awaiting]}
    for _ in range(rounds):
        for name, call_once in blocking.items():
            samples[name] += measure_blocking(call_once, per_round)
        for name, await_once in awaiting.items():
            samples[name] += await measure_awaiting(await_once, per_round)
    return {name: statistics.median(times) * 1e6 for name, times in samples.items()}


def _crochet_wait_for() -> Callable[[], Any] | None:
    """crochet's ``wait_for`` on the runtime's reactor, if crochet is installed."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crochet
    except ImportError:
        return None
    with contextlib.suppress(RuntimeError):  # RuntimeError: set up before, in this process
        crochet.no_setup()  # the reactor runs already: crochet must not start another
    waiting = crochet.wait_for(timeout=10.0)(_constant)

    def call() -> Any:
        import warnings

        with warnings.catch_warnings():  # crochet 2.1.1 calls Event.isSet()
            warnings.simplefilter("ignore", DeprecationWarning)
            return waiting()

    return call


@contextmanager
def kernel() -> Iterator[Any]:
    """A fresh IPython kernel (jupyter_client); shut down on the way out.

    It talks over Unix sockets (IPC): with TCP, the ports jupyter_client picks can be
    taken by another process before the kernel binds them, on a busy machine.
    """
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="poetrylab-kernel-") as sockets:
        manager = KernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
        )
        manager.start_kernel()
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            yield manager, client
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def run_cell(client: Any, code: str, timeout: float = 120.0) -> str:
    """Run ``code`` in the kernel; return what it printed. Raises if the cell failed."""
    printed: list[str] = []

    def collect(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    reply = client.execute_interactive(code, timeout=timeout, output_hook=collect)
    if reply["content"]["status"] != "ok":
        content = reply["content"]
        raise RuntimeError(f"cell failed: {content.get('ename')}: {content.get('evalue')}")
    return "".join(printed)


def latencies_in_kernel(rounds: int, per_round: int) -> dict[str, float]:
    """:func:`latencies` run by a real IPython kernel, with top-level ``await``."""
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('bench', {__file__!r})\n"
        "bench = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(bench)\n"
        f"print(json.dumps(await bench.latencies({rounds}, {per_round})))"
    )
    with kernel() as (_, client):
        result: dict[str, float] = json.loads(run_cell(client, code, timeout=600))
        return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux: /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_names(pid: int) -> list[str]:
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as comm:
            names.append(comm.read().strip())
    return sorted(names)


def idle_cpu(seconds: float, code: str = FIRST_CELL) -> dict[str, Any]:
    """CPU used by an idle kernel over ``seconds``, after running ``code``."""
    with kernel() as (manager, client):
        run_cell(client, code)
        threads = run_cell(
            client, "import threading\nprint(sorted(t.name for t in threading.enumerate()))"
        )
        pid = manager.provisioner.pid
        time.sleep(3.0)  # let start-up work settle
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(pid) - before, time.monotonic() - started
        return {
            "seconds": elapsed,
            "cpu_seconds": used,
            "percent_of_a_core": 100 * used / elapsed,
            "python_threads": threads.strip(),
            "os_threads": thread_names(pid),
        }


FIRST_CELL_PROBE = """
import sys, time, json
_before = set(sys.modules)
_wall, _cpu = time.perf_counter(), time.process_time()
{cell}
_wall, _cpu = time.perf_counter() - _wall, time.process_time() - _cpu
_new = set(sys.modules) - _before
print(json.dumps({{"wall": _wall, "cpu": _cpu, "modules": len(_new),
    "heavy": sorted(m for m in _new if m.startswith({heavy!r}))}}))
"""


def first_cell(kernels: int) -> dict[str, Any]:
    """The first cell's cost in ``kernels`` fresh kernels: medians, and what it imported."""
    runs = []
    probe = FIRST_CELL_PROBE.format(cell=FIRST_CELL, heavy=HEAVY)
    for _ in range(kernels):
        with kernel() as (_, client):
            runs.append(json.loads(run_cell(client, probe)))
    return {
        "kernels": kernels,
        "wall_ms": 1000 * statistics.median(r["wall"] for r in runs),
        "cpu_ms": 1000 * statistics.median(r["cpu"] for r in runs),
        "modules_imported": runs[0]["modules"],
        "heavy_imported": sorted({m for r in runs for m in r["heavy"]}),
    }


BLOCKED_SEQUENCE = [  # issue 12's sequence, with the runtime's default timeouts
    FIRST_CELL,
    "server = runtime.serve('slow', 'raven')\nprint(server.port)",
    "import time\ntry:\n    runtime.call(time.sleep, 13, timeout=1)\n"
    "except TimeoutError as error:\n    print(error)",
    "try:\n    print(runtime.stop_all())\nexcept TimeoutError as error:\n    print(error)",
    "print(len(runtime.servers()), 'server(s) listed')",
    "server = runtime.serve('slow', 'raven')\nprint(server.port)",  # the cell, run again
    "time.sleep(1)\nprint(runtime.stop_all())",
]


def listening_sockets(pid: int) -> int:
    """TCP sockets in LISTEN state held by process ``pid`` (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    listening += 1
    return listening


def blocked_sequence() -> dict[str, Any]:
    """Issue 12's sequence in a kernel; the listening sockets it leaves behind.

    The kernel listens on its own ZMQ channels: they are counted after the first cell
    and left out.
    """
    with kernel() as (manager, client):
        pid = manager.provisioner.pid
        shown = [run_cell(client, BLOCKED_SEQUENCE[0]).strip()]
        kernels_own = listening_sockets(pid)
        for cell in BLOCKED_SEQUENCE[1:]:
            shown.append(run_cell(client, cell).strip())
        left = listening_sockets(pid) - kernels_own
        return {"cells": shown, "kernels_own_listeners": kernels_own, "listeners_left": left}


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


def report_latency(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    if args.kernel:
        medians = latencies_in_kernel(args.rounds, args.per_round)
    else:
        medians = asyncio.run(latencies(args.rounds, args.per_round))
    leak = leaks(args.calls, args.cycles)
    base = medians["bare hand-over"]
    if not args.json:
        where = "in an IPython kernel" if args.kernel else "in this process"
        print(f"median µs per call, {where} ({args.rounds} x {args.per_round} calls each, "
              "interleaved)")  # fmt: skip
        for name, us in medians.items():
            print(f"  {name:26} {us:7.1f} µs  {us / base:4.2f}x the bare hand-over")
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
    return {"median_us": medians, "leaks": leak}, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=500)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=1_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--kernel", action="store_true",
        help="measure the latencies inside a real IPython kernel (top-level await)",
    )  # fmt: skip
    mode.add_argument("--idle", type=float, metavar="SECONDS",
                      help="measure an idle kernel's CPU over SECONDS")  # fmt: skip
    mode.add_argument("--first-cell", type=int, metavar="N",
                      help="measure the first cell in N fresh kernels")  # fmt: skip
    mode.add_argument("--blocked", action="store_true",
                      help="run the blocked-reactor sequence; count listeners left")  # fmt: skip
    args = parser.parse_args()

    load = load_average()
    if not args.json:
        print(load)
    if args.idle is not None:
        result: dict[str, Any] = idle_cpu(args.idle)
        ok = result["percent_of_a_core"] <= IDLE_TARGET
        summary = (
            f"idle kernel with the runtime started: {result['cpu_seconds']:.2f} s of CPU in "
            f"{result['seconds']:.0f} s = {result['percent_of_a_core']:.3f} % of a core "
            f"(target <= {IDLE_TARGET} %)\nPython threads: {result['python_threads']}"
        )
    elif args.first_cell is not None:
        result = first_cell(args.first_cell)
        ok = not result["heavy_imported"]
        summary = (
            f"first cell in {result['kernels']} fresh kernels: median {result['wall_ms']:.0f} ms "
            f"wall, {result['cpu_ms']:.0f} ms CPU; {result['modules_imported']} modules "
            f"imported; heavy packages imported: {result['heavy_imported'] or 'none'}"
        )
    elif args.blocked:
        result = blocked_sequence()
        ok = result["listeners_left"] == 0
        summary = "\n".join(f"  [{i}] {text}" for i, text in enumerate(result["cells"])) + (
            f"\nlistening sockets left after the blocked-reactor sequence: "
            f"{result['listeners_left']} (not counting the kernel's own "
            f"{result['kernels_own_listeners']})"
        )
    else:
        result, ok = report_latency(args)
        summary = ""
    result["load"] = load
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if summary:
            print(summary)
        print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
