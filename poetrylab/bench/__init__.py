"""The client benchmark: blocking, threaded and asynchronous clients against N slow servers.

Notebook 17 (the benchmark) is its lesson; notebook 01 uses it for the measured
three-model picture. Layout, bottom up:

    ideal        the ideal times: one server at a time = the sum, all at once = the slowest
    server_host  the server process: N slow servers under one reactor, on a timetable
    client_run   one client model in a fresh process; prints its timings as JSON
    harness      ServerHost, run_client and run_bench: the sweep, as plain data
    results      the results file: layout, checker, summary table
    figures      timelines, time / efficiency / CPU against N (matplotlib)
    cli          `poetrylab bench`

Nothing here imports the global reactor: the server and client processes each run
their own.
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
from poetrylab.bench.ideal import efficiency, ideal_concurrent, ideal_for, ideal_sequential
from poetrylab.bench.results import format_table, load_results, save_results, summarise

__all__ = [
    "BENCH_CLIENTS",
    "BenchConfig",
    "BenchError",
    "ServerHost",
    "efficiency",
    "format_table",
    "ideal_concurrent",
    "ideal_for",
    "ideal_sequential",
    "load_results",
    "record_from_downloads",
    "run_bench",
    "run_client",
    "save_results",
    "summarise",
]
