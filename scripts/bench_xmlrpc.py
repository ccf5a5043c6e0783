"""Benchmark the Twisted XML-RPC gateway against the stdlib's SimpleXMLRPCServer.

Run: ``.venv/bin/python scripts/bench_xmlrpc.py`` (``--json results.json`` to keep them).

One tagged backend (``poetrylab serve tagged --delay 0.05``) stands for a backend whose every
operation takes 50 ms. Three XML-RPC servers forward ``add(a, b)`` to it, each in its own
process, all on 127.0.0.1:

* the Twisted gateway (``poetrylab serve xmlrpc --backend ...``): ONE persistent backend
  connection, calls multiplexed by tag, each answered when its reply line arrives;
* ``SimpleXMLRPCServer``: one request at a time, a blocking call to the backend each;
* the same with ``ThreadingMixIn``: a thread per connection, blocking backend calls from a
  small pool of backend connections.

For 1, 10 and 100 concurrent clients (threads using the stdlib ``xmlrpc.client``, spread
over a few client processes), each client calls ``add`` in a loop for ``--seconds``
after a warm-up. Reported: requests per second completed in that window and p50/p99
latency of the calls started in it. The blocking server can only do ~1/0.05 = 20 calls a
second whatever the concurrency; an asynchronous gateway should scale about linearly
until the CPU runs out. Figures are noisy on a shared machine: run it twice.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

HERE = Path(__file__).resolve()
BACKEND_DELAY = 0.05


# --- the stdlib servers (run in a child process: this script with --stdlib-server) -------


class _BackendPool:
    """Blocking connections to the tagged backend, one per concurrent caller."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._idle: queue.SimpleQueue[tuple[socket.socket, Any]] = queue.SimpleQueue()
        self._tag = 0
        self._lock = threading.Lock()

    def call(self, verb: str, *args: Any) -> Any:
        from poetrylab.services.tagged import format_request, parse_reply

        try:
            sock, reader = self._idle.get_nowait()
        except queue.Empty:
            sock = socket.create_connection(self.address)
            reader = sock.makefile("rb")
        with self._lock:
            self._tag += 1
            tag = str(self._tag)
        sock.sendall(format_request(tag, verb, args) + b"\n")
        _, result, error = parse_reply(reader.readline().rstrip(b"\n"))
        self._idle.put((sock, reader))
        if error is not None:
            raise xmlrpc.client.Fault(500, error.message)
        return result


class _PlainServer(SimpleXMLRPCServer):
    request_queue_size = 128  # the default 5 would drop connections: be fair to it


class _ThreadingServer(ThreadingMixIn, SimpleXMLRPCServer):
    request_queue_size = 128
    daemon_threads = True


def serve_stdlib(kind: str, backend: str) -> None:
    """Serve ``add`` with the stdlib server ``kind`` until killed; print the address."""
    host, port = backend.rsplit(":", 1)
    pool = _BackendPool(host, int(port))
    server_type = _ThreadingServer if kind == "threading" else _PlainServer
    server = server_type(
        ("127.0.0.1", 0), SimpleXMLRPCRequestHandler, logRequests=False, allow_none=False
    )
    server.register_function(lambda a, b: pool.call("add", a, b), "add")
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


# --- starting servers --------------------------------------------------------------------


class Child:
    """A child process that prints ``listening on HOST:PORT`` lines when ready."""

    def __init__(self, argv: list[str], listeners: int = 1) -> None:
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        self.addresses: list[str] = []
        deadline = time.monotonic() + 20
        assert self.process.stdout is not None
        while len(self.addresses) < listeners:
            line = self.process.stdout.readline()  # the child prints promptly or dies
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{' '.join(argv)} did not start")
            if line.startswith("listening on "):
                self.addresses.append(line.split()[-1])

    @property
    def address(self) -> str:
        return self.addresses[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def poetrylab(*args: str) -> list[str]:
    return [sys.executable, "-m", "poetrylab", "serve", *args]


# --- the load ----------------------------------------------------------------------------


def _client_process(url: str, threads: int, start: float, end: float) -> list[tuple[float, float]]:
    """Run ``threads`` clients calling ``add`` in a loop until ``end``; return the
    (started, finished) times of the calls that finished after ``start`` (time.monotonic,
    which all processes share on Linux)."""
    calls: list[tuple[float, float]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        mine: list[tuple[float, float]] = []
        try:
            with xmlrpc.client.ServerProxy(url) as server:
                i = 0
                while True:
                    t0 = time.monotonic()
                    if t0 >= end:
                        break
                    result = server.add(n, i)
                    t1 = time.monotonic()
                    if result != n + i:
                        raise AssertionError(f"add({n}, {i}) returned {result}")
                    if t1 >= start:
                        mine.append((t0, t1))
                    i += 1
        except BaseException as exc:  # report, do not hang the run
            errors.append(exc)
        with lock:
            calls.extend(mine)

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed; first: {errors[0]!r}")
    return calls


@dataclass
class Cell:
    """One measurement: a server at one concurrency."""

    server: str
    clients: int
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def measure(
    pool: ProcessPoolExecutor, server: str, url: str, clients: int, procs: int, seconds: float,
    warmup: float,
) -> Cell:  # fmt: skip
    start = time.monotonic() + warmup
    end = start + seconds
    share = [clients // procs + (1 if p < clients % procs else 0) for p in range(procs)]
    futures = [pool.submit(_client_process, url, n, start, end) for n in share if n]
    calls = [c for f in futures for c in f.result(timeout=seconds + warmup + 120)]
    # Throughput: calls finished inside the window. Latency: calls started inside it.
    done_in_window = sum(1 for _, t1 in calls if t1 <= end)
    latencies = [(t1 - t0) * 1000 for t0, t1 in calls if t0 >= start]
    return Cell(
        server, clients, done_in_window, seconds, done_in_window / seconds,
        _percentile(latencies, 50), _percentile(latencies, 99),
    )  # fmt: skip


def print_table(cells: list[Cell]) -> None:
    delay_ms = BACKEND_DELAY * 1000
    print(f"\nBackend operation: {delay_ms:.0f} ms.  Clients: stdlib xmlrpc.client threads.")
    print(f"{'server':<34} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for c in cells:
        print(f"{c.server:<34} {c.clients:>7} {c.rate:>8.1f} {c.p50_ms:>8.1f} {c.p99_ms:>8.1f}")
    by = {(c.server, c.clients): c.rate for c in cells}
    servers = list(dict.fromkeys(c.server for c in cells))
    levels = sorted({c.clients for c in cells})
    lo, hi = levels[0], levels[-1]
    print()
    for s in servers:
        if by.get((s, lo)):
            print(f"{s:<34} {hi} clients / {lo} client: {by[(s, hi)] / by[(s, lo)]:5.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", default="1,10,100", help="concurrency levels (default 1,10,100)"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measuring window per cell (default 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds before each window (default 1)"
    )
    parser.add_argument(
        "--client-procs", type=int, default=2, help="client processes at most (default 2)"
    )
    parser.add_argument(
        "--only",
        choices=["twisted", "plain", "threading"],
        action="append",
        help="measure only these servers (repeatable)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--stdlib-server", choices=["plain", "threading"], help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stdlib_server:
        serve_stdlib(args.stdlib_server, args.backend)
        return 0

    levels = [int(n) for n in args.clients.split(",")]
    wanted = args.only or ["twisted", "plain", "threading"]
    backend = Child(poetrylab("tagged", "--delay", str(BACKEND_DELAY)))
    children = [backend]
    cells: list[Cell] = []
    try:
        servers: dict[str, str] = {}
        if "twisted" in wanted:
            gateway = Child(poetrylab("xmlrpc", "--backend", backend.address, "--timeout", "60"))
            children.append(gateway)
            servers["Twisted gateway (twisted.web)"] = gateway.address
        for kind, label in (
            ("plain", "SimpleXMLRPCServer"),
            ("threading", "SimpleXMLRPCServer+threads"),
        ):
            if kind in wanted:
                child = Child(
                    [
                        sys.executable,
                        str(HERE),
                        "--stdlib-server",
                        kind,
                        "--backend",
                        backend.address,
                    ]
                )
                children.append(child)
                servers[label] = child.address
        with ProcessPoolExecutor(args.client_procs) as pool:
            for label, address in servers.items():
                for n in levels:
                    procs = max(1, min(args.client_procs, n // 10 or 1))
                    cell = measure(
                        pool, label, f"http://{address}/RPC2", n, procs, args.seconds, args.warmup
                    )
                    print(f"  {label:<34} {n:>4} clients: {cell.rate:7.1f} req/s", flush=True)
                    cells.append(cell)
    finally:
        for child in reversed(children):
            child.stop()
    print_table(cells)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(c) for c in cells], indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
