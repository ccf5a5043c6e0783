"""One benchmark run in a fresh process: one client model against the given servers.

Notebook 17 (the benchmark). The harness starts ``python -m poetrylab.bench.client_run``
once per run and writes one JSON request to its stdin::

    {"model": "deferred", "addresses": ["127.0.0.1:4001", ...], "timeout": 30.0}

The process imports the model (and, for Twisted models, the reactor) *before* starting
its clock, downloads every poem with :func:`poetrylab.clients.fetch`, and prints one JSON
object to stdout: elapsed and CPU time of the downloads alone, the whole process's CPU
time and peak memory, and every Download with times relative to the start. A fresh
process per run means the CPU time and memory are this client's alone, and the global
Twisted reactor, which cannot restart, runs once per process as it should.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from poetrylab.bench._system import peak_rss_mb, raise_fd_limit

__all__ = ["main", "run_request"]


def _cpu_total() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request (``model``, ``addresses``, ``timeout``) and return the result dict.

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
    downloads = fetch(model, addresses, timeout=timeout)
    t1 = time.perf_counter()
    cpu1 = time.process_time()

    errors = [d.error for d in downloads if not d.ok]
    return {
        "model": model,
        "t0": t0,
        "elapsed_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        "cpu_total_s": _cpu_total(),
        "peak_rss_mb": round(peak_rss_mb(), 2),
        "fd_limit": fd_limit,
        "bytes": sum(d.nbytes for d in downloads),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "downloads": [d.to_dict(origin=t0) for d in downloads],
        "pid": os.getpid(),
    }


def main() -> int:
    """Read one JSON request from stdin, run it, print the JSON result.

    Returns 0, or 2 for a malformed request (the reason goes to stderr).
    """
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
