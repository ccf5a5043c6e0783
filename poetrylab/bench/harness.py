"""The benchmark harness: N slow servers in their own processes, each client in a fresh one.

Notebook 17 (the benchmark); notebook 01 uses it for its measured three-model picture.

:class:`ServerHost` starts ``python -m poetrylab.bench.server_host`` processes with as
many listeners as the largest N, so the servers never share a CPU budget with the client
being measured. A listener and its connection are two file descriptors and a process
may open only so many (20,000 here), so 10,000 servers are spread over several processes,
all keeping the same per-connection timetable. :func:`run_client` starts
``python -m poetrylab.bench.client_run`` once per run, so each run's CPU time and peak
memory are that client's alone, and samples the child's CPU clock and thread count from
``/proc`` while it runs (nothing in the client is disturbed) to split its CPU time
into phases (:mod:`poetrylab.bench.phases`). :func:`run_bench` sweeps clients x N x
repeats and returns :class:`~poetrylab.bench.results.BenchResults`.

Why the blocking client opens each connection only when it starts on that server: a
server that has been connected to starts sending at once, and the kernel's socket
buffers (hundreds of kilobytes on loopback) would quietly take in a whole small poem
while the client was busy elsewhere. Reading it later would then cost nothing, and the
blocking client would look as fast as the asynchronous ones. The course's blocking
client connects only when its turn comes, so it really waits for every server in turn.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from poetrylab.bench._system import machine_load, usable_cpus
from poetrylab.bench.ideal import (
    SEQUENTIAL_CLIENTS,
    ideal_concurrent,
    ideal_for,
    ideal_sequential,
    server_times,
)
from poetrylab.bench.phases import CpuSample, phases_of, with_cpu
from poetrylab.bench.results import (
    BenchResults,
    IdealPoint,
    Parameters,
    Phases,
    RunRecord,
    ServerReport,
    Skip,
    TimelineEntry,
)
from poetrylab.download import Address, Download

__all__ = [
    "BENCH_CLIENTS",
    "DEFAULT_CLIENTS",
    "BenchConfig",
    "BenchError",
    "PlannedRun",
    "ServerHost",
    "model_for",
    "plan",
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

LISTENERS_PER_PROCESS = 2500
"""Listeners per server process: 5,000 descriptors with their connections, well inside a
20,000 open-file limit, and four processes at N = 10,000 that the kernel can spread over
every core."""

_STARTUP_TIMEOUT = 60.0
_SAMPLE_EVERY = 0.02


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


def _read_line(process: subprocess.Popen[str], deadline: float, what: str) -> str:
    """One line from ``process``'s stdout by ``deadline``; BenchError if none comes."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(process.stdout, selectors.EVENT_READ)
        if not sel.select(max(0.0, deadline - time.monotonic())):
            raise BenchError(f"a server process (pid {process.pid}) did not {what} in time")
    line = process.stdout.readline()
    if not line:
        err = process.stderr.read() if process.stderr else ""
        last = err.strip().splitlines()[-1] if err.strip() else "no message"
        raise BenchError(f"a server process exited with status {process.wait()}: {last}")
    return line


class ServerHost:
    """``count`` slow poetry servers in child processes; ready when the constructor returns.

    The listeners are spread over ``ceil(count / listeners_per_process)`` processes.
    ``addresses`` lists one :class:`~poetrylab.download.Address` per listener.
    :meth:`stats` asks every process what it did since the last call and adds it up.
    Use it as a context manager, or call :meth:`stop`, so no process outlives you.
    Raises :class:`BenchError` when a process fails to start (those already started are
    stopped). Not thread-safe.
    """

    def __init__(
        self,
        count: int,
        poem: str,
        delay: float,
        num_bytes: int,
        pacing: str = "timetable",
        timeout: float = _STARTUP_TIMEOUT,
        listeners_per_process: int = LISTENERS_PER_PROCESS,
    ) -> None:
        if count < 1 or listeners_per_process < 1:
            raise ValueError("count and listeners_per_process must be at least 1")
        n_processes = math.ceil(count / listeners_per_process)
        shares = [count // n_processes + (i < count % n_processes) for i in range(n_processes)]
        self.processes: list[subprocess.Popen[str]] = []
        self.addresses: list[Address] = []
        try:
            for share in shares:
                argv = [
                    sys.executable, "-m", "poetrylab.bench.server_host", "--count", str(share),
                    "--poem", poem, "--delay", repr(delay), "--num-bytes", str(num_bytes),
                    "--pacing", pacing,
                ]  # fmt: skip
                self.processes.append(subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=_child_env(), text=True,
                ))  # fmt: skip
            deadline = time.monotonic() + timeout
            for process in self.processes:
                ready = json.loads(_read_line(process, deadline, "start"))
                self.addresses += [Address(ready["host"], port) for port in ready["ports"]]
        except BaseException:
            self.stop()
            raise

    def stats(self, timeout: float = 10.0) -> ServerReport:
        """What the servers did since the last call: connections, writes, lateness, CPU.

        Counts and CPU time are summed over the processes; ``max_late_s`` is the worst.
        """
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write("stats\n")
            process.stdin.flush()
        deadline = time.monotonic() + timeout
        reports = [json.loads(_read_line(p, deadline, "answer 'stats'")) for p in self.processes]
        summed = {key: sum(r[key] for r in reports)
                  for key in ("connections", "completed", "writes", "bytes", "final_late_s",
                              "open_connections", "cpu_s")}  # fmt: skip
        completed = summed["completed"]
        return ServerReport(
            connections=int(summed["connections"]), completed=int(completed),
            writes=int(summed["writes"]), bytes=int(summed["bytes"]),
            max_late_s=max(r["max_late_s"] for r in reports),
            final_late_s=summed["final_late_s"],
            mean_final_late_s=summed["final_late_s"] / completed if completed else 0.0,
            open_connections=int(summed["open_connections"]), cpu_s=summed["cpu_s"],
            processes=len(reports),
        )  # fmt: skip

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every process to quit (close its stdin), kill any that lingers; idempotent."""
        for process in self.processes:
            if process.poll() is None and process.stdin and not process.stdin.closed:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream and not stream.closed:
                    stream.close()

    def __enter__(self) -> ServerHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ProcSampler(threading.Thread):
    """Sample a child process's CPU time and thread count from ``/proc`` until stopped.

    Linux only; elsewhere it records nothing and the CPU phases stay None.
    """

    def __init__(self, pid: int, every: float = _SAMPLE_EVERY) -> None:
        super().__init__(name=f"sampler-{pid}", daemon=True)
        self.path = f"/proc/{pid}/stat"
        self.every = every
        self.samples: list[CpuSample] = []
        self.peak_threads: int | None = None
        self._stop_event = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def sample(self) -> None:
        """Take one sample now (silently nothing once the process is gone)."""
        try:
            with open(self.path, encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return
        cpu = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        self.samples.append((time.perf_counter(), cpu))
        self.peak_threads = max(self.peak_threads or 0, int(fields[17]))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        """Take a last sample and stop."""
        self.sample()
        self._stop_event.set()
        self.join(5.0)


def _timeline(downloads: list[TimelineEntry], keep_chunks: bool) -> list[TimelineEntry]:
    if keep_chunks:
        return downloads
    out = []
    for entry in downloads:
        short = cast(TimelineEntry, {k: v for k, v in entry.items() if k != "chunks"})
        short["n_chunks"] = len(entry.get("chunks", []))
        out.append(short)
    return out


def _record(
    client: str,
    n_servers: int,
    repeat: int,
    ideal_s: float | None,
    expected_bytes: int | None,
    **measured: Any,
) -> RunRecord:
    """A complete run record: ``measured`` fields over failed-run defaults, ratios computed."""
    record: dict[str, Any] = {
        "client": client, "model": _model_or_name(client), "n_servers": n_servers,
        "repeat": repeat, "elapsed_s": None, "process_s": None, "cpu_s": None,
        "cpu_total_s": None, "peak_rss_mb": None, "bytes": 0,
        "expected_bytes": expected_bytes, "poems": 0, "errors": None, "error": None,
        "limit": None, "ideal_s": ideal_s, "phases": None, "chunks_stored": False,
        "timeline": [],
    }  # fmt: skip
    record |= measured
    elapsed = record["elapsed_s"]
    record["efficiency"] = ideal_s / elapsed if ideal_s is not None and elapsed else None
    record["poems_per_s"] = record["poems"] / elapsed if elapsed else None
    record["bytes_per_s"] = record["bytes"] / elapsed if elapsed else None
    return cast(RunRecord, record)


def _model_or_name(client: str) -> str:
    try:
        return model_for(client)
    except ValueError:
        return client


def run_client(
    client: str,
    addresses: Sequence[Address | str],
    timeout: float,
    process_timeout: float,
    keep_chunks: bool = True,
    *,
    delay: float | None = None,
    num_bytes: int | None = None,
    repeat: int = 0,
    ideal_s: float | None = None,
    expected_bytes: int | None = None,
) -> RunRecord:
    """Run one client in a fresh process against ``addresses``; return its run record.

    ``delay`` and ``num_bytes`` (the servers' pacing) let the record say how late each
    chunk arrived; ``repeat``, ``ideal_s`` and ``expected_bytes`` are copied in (the
    efficiency needs the ideal). Chunk lists are kept only if ``keep_chunks``. A client
    process that crashes or overruns ``process_timeout`` gives a record with ``error``
    set and ``elapsed_s`` None; it is never raised. Raises ValueError for an unknown
    client name.
    """
    model = model_for(client)
    request = {"model": model, "addresses": [str(a) for a in addresses], "timeout": timeout,
               "delay": delay, "num_bytes": num_bytes}  # fmt: skip

    def record(**measured: Any) -> RunRecord:
        return _record(client, len(addresses), repeat, ideal_s, expected_bytes, **measured)

    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "poetrylab.bench.client_run"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env(),
    )
    sampler = _ProcSampler(process.pid)
    sampler.start()
    try:
        out, err = process.communicate(json.dumps(request), timeout=process_timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        sampler.stop()
        reason = f"client process still running after {process_timeout:.0f} s; killed"
        return record(error=reason)
    finally:
        sampler.stop()
    process_s = time.perf_counter() - start
    if process.returncode != 0 or not out.strip():
        lines = [line for line in err.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {process.returncode}, no message"
        limit = reason if "MemoryError" in reason else None
        return record(process_s=process_s, limit=limit,
                      error=f"client process failed (status {process.returncode}): {reason}")
    result = json.loads(out)
    phases = with_cpu(result["phases"], result["phase_windows"], sampler.samples, result["t0"],
                      sampler.peak_threads)  # fmt: skip
    return record(
        process_s=process_s, elapsed_s=result["elapsed_s"], cpu_s=result["cpu_s"],
        cpu_total_s=result["cpu_total_s"], peak_rss_mb=result["peak_rss_mb"],
        bytes=result["bytes"], poems=result["poems"], errors=result["errors"],
        error=result["first_error"], limit=result["limit"], phases=phases,
        chunks_stored=keep_chunks, timeline=_timeline(result["downloads"], keep_chunks),
    )


def record_from_downloads(
    client: str,
    downloads: Sequence[Download],
    elapsed_s: float | None = None,
    ideal_s: float | None = None,
    *,
    delay: float | None = None,
    num_bytes: int | None = None,
) -> RunRecord:
    """A run record (as :func:`run_client` makes) from Downloads measured in this process.

    For a notebook that runs a client itself (notebook 01) and wants the same pictures and
    phases. Times are made relative to the earliest start; ``elapsed_s`` defaults to the
    last finish. CPU time and memory are not known here, so they are None; ``delay`` and
    ``num_bytes`` give the chunk lags.
    """
    starts = [d.started for d in downloads if d.started is not None]
    origin = min(starts) if starts else 0.0
    finishes = [d.finished - origin for d in downloads if d.finished is not None]
    if elapsed_s is None:
        elapsed_s = max(finishes, default=0.0)
    failed = [d for d in downloads if not d.ok]
    sequential = _model_or_name(client) in SEQUENTIAL_CLIENTS
    phases: Phases = phases_of(downloads, origin, elapsed_s, delay, num_bytes, sequential)
    timeline = [cast(TimelineEntry, d.to_dict(origin=origin)) for d in downloads]
    return _record(
        client, len(downloads), 0, ideal_s, None, elapsed_s=elapsed_s,
        bytes=sum(d.nbytes for d in downloads), poems=len(downloads) - len(failed),
        errors=len(failed), error=failed[0].error if failed else None, phases=phases,
        chunks_stored=True, timeline=timeline,
    )


@dataclass
class BenchConfig:
    """What to measure. ``servers`` lists the N values; ``max_run_s`` skips any run whose
    ideal time is longer (the blocking client at large N); chunk timelines are kept for
    runs with N at most ``chunks_max_servers`` (at N = 10,000 they would run to megabytes);
    each server process holds at most ``listeners_per_process`` listeners.
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
    listeners_per_process: int = LISTENERS_PER_PROCESS

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
        if self.listeners_per_process < 1:
            raise ValueError("listeners_per_process must be at least 1")


@dataclass(frozen=True)
class PlannedRun:
    """One run to do: which client, against how many servers, which repeat."""

    client: str
    n_servers: int
    repeat: int
    ideal_s: float


def plan(config: BenchConfig, server_time: float) -> tuple[list[PlannedRun], list[Skip]]:
    """The runs to do, in order, and the ones skipped because their ideal time is too long.

    Runs go repeat by repeat, and within a repeat N by N, every client in turn, so a
    burst of load on the machine spreads over all clients instead of hitting one.
    """
    runs: list[PlannedRun] = []
    skipped: list[Skip] = []
    servers = sorted(set(config.servers))
    for repeat in range(config.repeats):
        for n in servers:
            for client in config.clients:
                ideal = ideal_for(model_for(client), [server_time] * n)
                if ideal > config.max_run_s:
                    if repeat == 0:
                        skipped.append(Skip(
                            client=client, n_servers=n, ideal_s=ideal,
                            reason=f"ideal time {ideal:,.0f} s is over the "
                                   f"{config.max_run_s:g} s limit (--max-run-seconds)",
                        ))  # fmt: skip
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
        "usable_cpus": usable_cpus(),
        "platform": platform.platform(),
    }


ProgressHook = Callable[[int, int, PlannedRun, RunRecord | None], None]


def run_bench(
    config: BenchConfig,
    progress: ProgressHook | None = None,
    command: str | None = None,
) -> BenchResults:
    """Run the whole sweep and return the results (layout in :mod:`poetrylab.bench.results`).

    ``progress(done, total, run, record)`` is called before each run (``record`` None) and
    after it. The machine's load is recorded before and after, with a verdict (``busy``)
    when it was too busy to measure fairly; it never refuses to run (``poetrylab bench``
    warns, ``make bench`` refuses unless forced). Raises ValueError for a bad config and
    :class:`BenchError` when a server process cannot start. A failed client run is
    recorded, not raised. On KeyboardInterrupt the partial results are returned with
    ``"interrupted": true``.
    """
    from poetrylab.corpus import load_poem

    config.check()
    poem = load_poem(config.poem)
    per_server = server_times(len(poem.data), config.num_bytes, config.delay, 1)[0]
    runs, skipped = plan(config, per_server)
    servers = sorted(set(config.servers))
    parameters = cast(Parameters, asdict(config) | {
        "servers": servers,
        "models": {c: model_for(c) for c in config.clients},
        "poem_bytes": len(poem.data),
        "server_time_s": per_server,
    } | _environment())  # fmt: skip
    load = machine_load()
    results = BenchResults(
        schema="poetrylab-bench/2",
        parameters=parameters,
        ideal=[
            IdealPoint(n_servers=n, sequential_s=ideal_sequential([per_server] * n),
                       concurrent_s=ideal_concurrent([per_server] * n))
            for n in servers
        ],  # fmt: skip
        machine={"load_before": list(load.load), "busy": load.busy,
                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")},  # fmt: skip
        command=command,
        runs=[],
        skipped=skipped,
        interrupted=False,
    )
    if runs:
        largest = max(run.n_servers for run in runs)
        with ServerHost(largest, config.poem, config.delay, config.num_bytes, config.pacing,
                        listeners_per_process=config.listeners_per_process) as host:
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
    results["machine"]["load_after"] = list(machine_load().load)
    return results


def _one_run(
    host: ServerHost, config: BenchConfig, run: PlannedRun, per_server: float, poem_bytes: int
) -> RunRecord:
    addresses = host.addresses[: run.n_servers]
    sequential = model_for(run.client) == "blocking"
    # Generous limits: they only stop a stuck run, and never shape a healthy one.
    timeout = 2 * per_server + 10 + 0.02 * (1 if sequential else run.n_servers)
    process_timeout = 2 * run.ideal_s + 30 + 0.05 * run.n_servers
    host.stats()  # reset the servers' counters
    record = run_client(
        run.client, addresses, timeout, process_timeout,
        keep_chunks=run.n_servers <= config.chunks_max_servers,
        delay=config.delay, num_bytes=config.num_bytes, repeat=run.repeat,
        ideal_s=run.ideal_s, expected_bytes=poem_bytes * run.n_servers,
    )  # fmt: skip
    record["server"] = host.stats()
    return record

