"""The client benchmark: blocking, threaded and asynchronous clients against N slow servers.

Notebook 17 (the benchmark) is its lesson; notebook 01 uses it for the measured
three-model picture. Layout, bottom up:

    ideal        ideal times and throughputs: one at a time = the sum, all at once = the slowest
    results      the results: typed records, the one loader that checks them, summary table
    phases       where a run's time and CPU went: connecting, the chunks, finishing
    _system      the machine: file limit, peak memory, usable CPUs, is it busy?
    server_host  a server process: many slow servers under one reactor, on a timetable
    client_run   one client model in a fresh process; prints its timings as JSON
    harness      ServerHost, run_client and run_bench: the sweep, as typed plain data
    figures      timelines; time, throughput, efficiency, CPU, per connection, phases
    cli          `poetrylab bench` (progress with tqdm)

Nothing here imports the global reactor when imported: only the entry points of the
server and client processes (``server_host.main`` and, through
:func:`poetrylab.clients.fetch`, ``client_run``) run it, each in its own process.
"""

from poetrylab.bench.harness import (
    BENCH_CLIENTS,
    BenchConfig,
    BenchError,
    ServerHost,
    record_from_downloads,
    run_bench,
    run_client,
)
from poetrylab.bench.ideal import (
    efficiency,
    ideal_concurrent,
    ideal_for,
    ideal_poems_per_s,
    ideal_sequential,
)
from poetrylab.bench.results import (
    BenchResults,
    RunRecord,
    format_table,
    load_results,
    save_results,
    summarise,
)

__all__ = [
    "BENCH_CLIENTS",
    "BenchConfig",
    "BenchError",
    "BenchResults",
    "RunRecord",
    "ServerHost",
    "SweepProgress",
    "efficiency",
    "format_table",
    "ideal_concurrent",
    "ideal_for",
    "ideal_poems_per_s",
    "ideal_sequential",
    "load_results",
    "record_from_downloads",
    "run_bench",
    "run_client",
    "save_results",
    "summarise",
]


def __getattr__(name: str) -> object:
    # SweepProgress imports tqdm: only when asked for, so `poetrylab --help` stays quick.
    if name == "SweepProgress":
        from poetrylab.bench._progress import SweepProgress

        return SweepProgress
    raise AttributeError(f"module 'poetrylab.bench' has no attribute {name!r}")
