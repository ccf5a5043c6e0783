"""The benchmark harness: N slow servers in one process, each client in its own process.

Notebook 17 (the benchmark); notebook 01 uses it for its measured three-model picture.

:class:`ServerHost` starts ``python -m poetrylab.bench.server_host`` with as many
listeners as the largest N, so the servers never share a CPU budget with the client
being measured. :func:`run_client` starts ``python -m poetrylab.bench.client_run`` once
per run, so each run's CPU time and peak memory are that client's alone. :func:`run_bench`
sweeps clients x N x repeats and returns the results as plain data (see
:mod:`poetrylab.bench.results` for the layout).

Why the blocking client opens each connection only when it starts on that server: a
server that has been connected to starts sending at once, and the kernel's socket
buffers (hundreds of kilobytes on loopback) would quietly take in a whole small poem
while the client was busy elsewhere. Reading it later would then cost nothing, and the
blocking client would look as fast as the asynchronous ones. The course's blocking
client connects only when its turn comes, so it really waits for every server in turn.
"""

from __future__ import annotations

import json
import os
import platform
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from poetrylab.bench.ideal import ideal_concurrent, ideal_for, ideal_sequential, server_times
from poetrylab.bench.results import SCHEMA
from poetrylab.download import Address, Download

__all__ = [
    "BENCH_CLIENTS",
    "DEFAULT_CLIENTS",
    "BenchConfig",
    "BenchError",
    "ServerHost",
    "model_for",
    "record_from_downloads",
    "run_bench",
    "run_client",
]

BENCH_CLIENTS: dict[str, str] = {
    "blocking": "blocking",
    "threaded": "threaded",
    "select": "select",
    "twisted": "deferred",
    "asyncio": "asyncio",
}
"""Benchmark client names and the client model each runs. ``twisted`` is the Deferred
client (notebooks 04-05), the way the course ends up writing Twisted clients; any other
model name from :data:`poetrylab.clients.MODELS` (``protocol``, ``inline``...) works too."""

DEFAULT_CLIENTS = tuple(BENCH_CLIENTS)

_STARTUP_TIMEOUT = 60.0


class BenchError(RuntimeError):
    """The benchmark could not run: a server or client process failed to start or answer."""


def model_for(client: str) -> str:
    """The client model a benchmark client name runs; raise ValueError for an unknown one."""
    from poetrylab.clients import MODELS

    if client in BENCH_CLIENTS:
        return BENCH_CLIENTS[client]
    if client in MODELS:
        return client
    names = ", ".join([*BENCH_CLIENTS, *(m for m in MODELS if m not in BENCH_CLIENTS.values())])
    raise ValueError(f"unknown client {client!r}: choose from {names}")


def _child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTHONTRACEMALLOC", None)
    return env


class ServerHost:
    """``count`` slow poetry servers in a child process; ready when the constructor returns.

    ``addresses`` lists one :class:`~poetrylab.download.Address` per listener.
    :meth:`stats` asks the server what it did since the last call (see
    :class:`~poetrylab.bench.server_host.ServerStats`). Use it as a context manager, or
    call :meth:`stop`, so the process never outlives you. Raises :class:`BenchError`
    when the process fails to start. Not thread-safe.
    """

    def __init__(
        self,
        count: int,
        poem: str,
        delay: float,
        num_bytes: int,
        pacing: str = "timetable",
        timeout: float = _STARTUP_TIMEOUT,
    ) -> None:
        self.argv = [
            sys.executable, "-m", "poetrylab.bench.server_host", "--count", str(count),
            "--poem", poem, "--delay", repr(delay), "--num-bytes", str(num_bytes),
            "--pacing", pacing,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=_child_env(), text=True,
        )
        try:
            ready = json.loads(self._read_line(timeout, "start"))
        except BaseException:
            self.stop()
            raise
        self.addresses = [Address(ready["host"], port) for port in ready["ports"]]

    def _read_line(self, timeout: float, what: str) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise BenchError(f"the server process did not {what} within {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            err = self.process.stderr.read() if self.process.stderr else ""
            raise BenchError(
                f"the server process exited with status {self.process.wait()}: "
                f"{err.strip().splitlines()[-1] if err.strip() else 'no message'}"
            )
        return line

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """What the servers did since the last call: connections, writes, lateness, CPU."""
        assert self.process.stdin is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return json.loads(self._read_line(timeout, "answer 'stats'"))

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to quit (close its stdin), kill it if it lingers; idempotent."""
        if self.process.poll() is None:
            try:
                if self.process.stdin:
                    self.process.stdin.close()
                self.process.wait(timeout)
            except (subprocess.TimeoutExpired, OSError):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream and not stream.closed:
                stream.close()

    def __enter__(self) -> ServerHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _timeline(downloads: list[dict[str, Any]], keep_chunks: bool) -> list[dict[str, Any]]:
    if keep_chunks:
        return downloads
    return [{k: v for k, v in d.items() if k != "chunks"} | {"n_chunks": len(d["chunks"])}
            for d in downloads]  # fmt: skip


def run_client(
    client: str,
    addresses: Sequence[Address | str],
    timeout: float,
    process_timeout: float,
    keep_chunks: bool = True,
) -> dict[str, Any]:
    """Run one client in a fresh process against ``addresses``; return its run record.

    The record has ``client``, ``model``, ``n_servers``, ``elapsed_s`` (the downloads, by
    the client's own clock), ``process_s`` (the whole process, interpreter start and
    imports included, by ours), ``cpu_s`` (the downloads), ``cpu_total_s`` (the whole
    process), ``peak_rss_mb``, ``bytes``, ``errors``, ``error`` (the first reason, or
    None) and ``timeline`` (one entry per server, times in seconds from the client's
    start; chunk lists only if ``keep_chunks``). A client process that crashes or overruns
    ``process_timeout`` gives a record with ``error`` set and ``elapsed_s`` None; it is
    never raised.
    """
    model = model_for(client)
    request = {"model": model, "addresses": [str(a) for a in addresses], "timeout": timeout}
    record: dict[str, Any] = {"client": client, "model": model, "n_servers": len(addresses)}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "poetrylab.bench.client_run"], input=json.dumps(request),
            capture_output=True, text=True, timeout=process_timeout, env=_child_env(),
        )
    except subprocess.TimeoutExpired:
        reason = f"client process still running after {process_timeout:.0f} s; killed"
        return record | _failed(reason)
    record["process_s"] = time.perf_counter() - start
    if done.returncode != 0 or not done.stdout.strip():
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}, no message"
        return record | _failed(f"client process failed (status {done.returncode}): {reason}")
    result = json.loads(done.stdout)
    record |= {
        "elapsed_s": result["elapsed_s"],
        "cpu_s": result["cpu_s"],
        "cpu_total_s": result["cpu_total_s"],
        "peak_rss_mb": result["peak_rss_mb"],
        "bytes": result["bytes"],
        "errors": result["errors"],
        "error": result["first_error"],
        "chunks_stored": keep_chunks,
        "timeline": _timeline(result["downloads"], keep_chunks),
    }
    return record


def record_from_downloads(
    client: str,
    downloads: Sequence[Download],
    elapsed_s: float | None = None,
    ideal_s: float | None = None,
) -> dict[str, Any]:
    """A run record (as :func:`run_client` makes) from Downloads measured in this process.

    For a notebook that runs a client itself (notebook 01) and wants the same pictures.
    Times are made relative to the earliest start; ``elapsed_s`` defaults to the last
    finish. CPU time and memory are not known here, so they are None.
    """
    starts = [d.started for d in downloads if d.started is not None]
    origin = min(starts) if starts else 0.0
    finishes = [d.finished - origin for d in downloads if d.finished is not None]
    if elapsed_s is None:
        elapsed_s = max(finishes, default=0.0)
    failed = [d for d in downloads if not d.ok]
    try:
        model = model_for(client)
    except ValueError:
        model = client
    return {
        "client": client, "model": model, "n_servers": len(downloads), "repeat": 0,
        "elapsed_s": elapsed_s, "process_s": None, "cpu_s": None, "cpu_total_s": None,
        "peak_rss_mb": None, "bytes": sum(d.nbytes for d in downloads),
        "expected_bytes": None, "errors": len(failed),
        "error": failed[0].error if failed else None, "ideal_s": ideal_s,
        "efficiency": ideal_s / elapsed_s if ideal_s and elapsed_s else None,
        "chunks_stored": True, "timeline": [d.to_dict(origin=origin) for d in downloads],
    }  # fmt: skip


def _failed(reason: str) -> dict[str, Any]:
    return {
        "elapsed_s": None, "cpu_s": None, "cpu_total_s": None, "peak_rss_mb": None,
        "bytes": 0, "errors": None, "error": reason, "chunks_stored": False, "timeline": [],
    }  # fmt: skip


@dataclass
class BenchConfig:
    """What to measure. ``servers`` lists the N values; ``max_run_s`` skips any run whose
    ideal time is longer (the blocking client at large N); chunk timelines are kept for
    runs with N at most ``chunks_max_servers`` (at N = 1,000 they would run to megabytes).
    """

    clients: list[str] = field(default_factory=lambda: list(DEFAULT_CLIENTS))
    servers: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    poem: str = "hope"
    delay: float = 0.05
    num_bytes: int = 10
    repeats: int = 3
    pacing: str = "timetable"
    max_run_s: float = 60.0
    chunks_max_servers: int = 16

    def check(self) -> None:
        """Raise ValueError, saying what is wrong, unless every value makes sense."""
        from poetrylab.bench.server_host import PACINGS
        from poetrylab.servers import check_pacing

        if not self.clients:
            raise ValueError("name at least one client")
        for client in self.clients:
            model_for(client)
        if len(set(self.clients)) != len(self.clients):
            raise ValueError(f"a client is named twice in {','.join(self.clients)}")
        if not self.servers or any(n < 1 for n in self.servers):
            raise ValueError(f"server counts must be whole numbers >= 1, not {self.servers}")
        check_pacing(self.delay, self.num_bytes)
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, not {self.repeats}")
        if self.pacing not in PACINGS:
            raise ValueError(f"pacing must be one of {', '.join(PACINGS)}, not {self.pacing!r}")
        if not self.max_run_s > 0:
            raise ValueError(f"max_run_s must be > 0, not {self.max_run_s}")


@dataclass(frozen=True)
class PlannedRun:
    """One run to do: which client, against how many servers, which repeat."""

    client: str
    n_servers: int
    repeat: int
    ideal_s: float


def plan(config: BenchConfig, server_time: float) -> tuple[list[PlannedRun], list[dict[str, Any]]]:
    """The runs to do, in order, and the ones skipped because their ideal time is too long.

    Runs go repeat by repeat, and within a repeat N by N, every client in turn, so a
    burst of load on the machine spreads over all clients instead of hitting one.
    """
    runs: list[PlannedRun] = []
    skipped: list[dict[str, Any]] = []
    servers = sorted(set(config.servers))
    for repeat in range(config.repeats):
        for n in servers:
            for client in config.clients:
                ideal = ideal_for(model_for(client), [server_time] * n)
                if ideal > config.max_run_s:
                    if repeat == 0:
                        skipped.append({
                            "client": client, "n_servers": n, "ideal_s": ideal,
                            "reason": f"ideal time {ideal:.0f} s is over the "
                                      f"{config.max_run_s:g} s limit (--max-run-seconds)",
                        })  # fmt: skip
                    continue
                runs.append(PlannedRun(client, n, repeat, ideal))
    return runs, skipped


def estimate_seconds(runs: Sequence[PlannedRun], startup_s: float = 0.5) -> float:
    """A rough total: every run's ideal time plus ``startup_s`` to start its process."""
    return sum(run.ideal_s + startup_s for run in runs)


def _environment() -> dict[str, Any]:
    import twisted

    return {
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


ProgressHook = Callable[[int, int, PlannedRun, dict[str, Any] | None], None]


def run_bench(
    config: BenchConfig,
    progress: ProgressHook | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the whole sweep and return the results (layout in :mod:`poetrylab.bench.results`).

    ``progress(done, total, run, record)`` is called before each run (``record`` None) and
    after it. Raises ValueError for a bad config and :class:`BenchError` when the server
    process cannot start. A failed client run is recorded, not raised. On
    KeyboardInterrupt the partial results are returned with ``"interrupted": true``.
    """
    from poetrylab.corpus import load_poem

    config.check()
    poem = load_poem(config.poem)
    per_server = server_times(len(poem.data), config.num_bytes, config.delay, 1)[0]
    runs, skipped = plan(config, per_server)
    servers = sorted(set(config.servers))
    parameters = asdict(config) | {
        "servers": servers,
        "models": {c: model_for(c) for c in config.clients},
        "poem_bytes": len(poem.data),
        "server_time_s": per_server,
    } | _environment()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "parameters": parameters,
        "ideal": [
            {
                "n_servers": n,
                "sequential_s": ideal_sequential([per_server] * n),
                "concurrent_s": ideal_concurrent([per_server] * n),
            }
            for n in servers
        ],
        "machine": {"load_before": _load(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "command": command,
        "runs": [],
        "skipped": skipped,
        "interrupted": False,
    }
    if not runs:
        results["machine"]["load_after"] = _load()
        return results
    host = ServerHost(max(servers), config.poem, config.delay, config.num_bytes, config.pacing)
    with host:
        try:
            for done, run in enumerate(runs):
                if progress:
                    progress(done, len(runs), run, None)
                record = _one_run(host, config, run, per_server, len(poem.data))
                results["runs"].append(record)
                if progress:
                    progress(done + 1, len(runs), run, record)
        except KeyboardInterrupt:
            results["interrupted"] = True
    results["machine"]["load_after"] = _load()
    return results


def _one_run(
    host: ServerHost, config: BenchConfig, run: PlannedRun, per_server: float, poem_bytes: int
) -> dict[str, Any]:
    addresses = host.addresses[: run.n_servers]
    sequential = model_for(run.client) == "blocking"
    # Generous limits: they only stop a stuck run, and never shape a healthy one.
    timeout = 2 * per_server + 10 + 0.02 * (1 if sequential else run.n_servers)
    process_timeout = 2 * run.ideal_s + 30 + 0.05 * run.n_servers
    host.stats()  # reset the server's counters
    record = run_client(
        run.client, addresses, timeout, process_timeout,
        keep_chunks=run.n_servers <= config.chunks_max_servers,
    )
    stats = host.stats()
    elapsed = record.get("elapsed_s")
    record = {"repeat": run.repeat, **record}
    record["ideal_s"] = run.ideal_s
    record["expected_bytes"] = poem_bytes * run.n_servers
    record["efficiency"] = run.ideal_s / elapsed if elapsed else None
    record["server"] = stats
    return record

