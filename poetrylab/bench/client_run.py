"""One benchmark run in a fresh process: one client model against the given servers.

Notebook 17 (the benchmark). The harness starts ``python -m poetrylab.bench.client_run``
once per run and writes one JSON request to its stdin::

    {"model": "deferred", "addresses": ["127.0.0.1:4001", ...], "timeout": 30.0,
     "delay": 0.5, "num_bytes": 100}

The process imports the model (and, for Twisted models, the reactor) *before* starting
its clock, downloads every poem with :func:`poetrylab.clients.fetch`, and prints one JSON
object to stdout: elapsed and CPU time of the downloads alone, the whole process's CPU
time and peak memory, where the time went (:mod:`poetrylab.bench.phases`; ``delay`` and
``num_bytes`` give the chunk lags), a measured limit if the model could not even try
every server, and every Download with times relative to the start. A fresh process per
run means the CPU time and memory are this client's alone, and the global Twisted
reactor, which cannot restart, runs once per process as it should.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from poetrylab.bench._system import peak_rss_mb, raise_fd_limit
from poetrylab.bench.ideal import SEQUENTIAL_CLIENTS
from poetrylab.bench.phases import phase_windows, phases_of
from poetrylab.download import Download

__all__ = ["limit_reached", "main", "run_request"]

_LIMIT_SIGNS = ("no thread for this download", "can't start new thread", "Too many open files",
                "MemoryError", "Cannot allocate")
"""Words in a download's error that mean the client ran out of something it needs per
connection (``poetrylab.clients.threaded.NO_THREAD``, EMFILE, ENOMEM)."""


def _cpu_total() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def limit_reached(downloads: list[Download]) -> str | None:
    """A sentence saying which limit stopped the model, if downloads failed on one.

    A limit is the process running out of something it needs per connection (threads,
    file descriptors, memory), as opposed to a server that refused or was slow. Returns
    None when no download failed that way.
    """
    hit = [d for d in downloads if d.error and any(sign in d.error for sign in _LIMIT_SIGNS)]
    if not hit:
        return None
    tried = len(downloads) - len(hit)
    return (f"{len(hit):,} of {len(downloads):,} downloads could not even start "
            f"({tried:,} did): {hit[0].error}")  # fmt: skip


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request (``model``, ``addresses``, ``timeout``, optional pacing) and return
    the result dict described in the module docstring.

    Raises ValueError for an unknown model or a malformed address. Runs the global Twisted
    reactor for a Twisted model, so it works once per process.
    """
    from poetrylab.clients import MODELS, fetch

    model = request["model"]
    if model not in MODELS:
        raise ValueError(f"unknown client model {model!r}: choose one of {', '.join(MODELS)}")
    spec = MODELS[model]
    spec.load()
    if spec.kind == "twisted":
        from twisted.internet import reactor  # noqa: F401  (installed before the clock starts)
    addresses = request["addresses"]
    timeout = float(request.get("timeout", 30.0))
    fd_limit = raise_fd_limit()

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        downloads = fetch(model, addresses, timeout=timeout)
    except MemoryError:
        raise SystemExit("client_run: MemoryError: the client ran out of memory")
    t1 = time.perf_counter()
    cpu1 = time.process_time()

    errors = [d.error for d in downloads if not d.ok]
    sequential = model in SEQUENTIAL_CLIENTS
    phases = phases_of(downloads, t0, t1 - t0, request.get("delay"), request.get("num_bytes"),
                       sequential)  # fmt: skip
    windows = phase_windows(downloads, t0, t1 - t0, sequential)
    return {
        "model": model,
        "t0": t0,
        "elapsed_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        "cpu_total_s": _cpu_total(),
        "peak_rss_mb": round(peak_rss_mb(), 2),
        "fd_limit": fd_limit,
        "bytes": sum(d.nbytes for d in downloads),
        "poems": sum(d.ok for d in downloads),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "limit": limit_reached(downloads),
        "phases": phases,
        "phase_windows": windows,
        "downloads": [d.to_dict(origin=t0) for d in downloads],
        "pid": os.getpid(),
    }


def main() -> int:
    """Read one JSON request from stdin, run it, print the JSON result.

    Returns 0, or 2 for a malformed request (the reason goes to stderr).
    """
    from poetrylab._logging import begin_cli_logging

    begin_cli_logging()  # before any reactor: Twisted's start-up log buffer keeps nothing
    try:
        request = json.loads(sys.stdin.read())
        result = run_request(request)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"client_run: bad request: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
