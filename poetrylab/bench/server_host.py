"""The benchmark's server process: many slow poetry servers under one Twisted reactor.

Notebook 17 (the benchmark). ``python -m poetrylab.bench.server_host --count N ...``
listens on N loopback ports, prints one JSON line ``{"host": ..., "ports": [...]}`` to
stdout when every listener is ready, and serves until SIGINT/SIGTERM, a ``quit`` line
or the end of its stdin (so it never outlives the harness that started it). A ``stats``
line on stdin answers with one JSON line of server-side statistics since the last
``stats``: connections, chunks written and how late the writes were.

Pacing. The course's slow server (:class:`~poetrylab.servers.SlowPoetryProtocol`,
``--pacing classic``) schedules each chunk ``delay`` after the previous one was written,
so every late wake-up pushes all later chunks back: at 1,000 connections the server
itself drifts and the clients get the blame. The default, ``--pacing timetable``, keeps
to a fixed timetable instead: chunk *k* is due ``k * delay`` after the connection was
made, and a late wake-up writes every chunk that is due at once. Each connection then
lasts :func:`~poetrylab.servers.poem_duration` seconds plus one wake-up's lateness,
which the ``stats`` line reports, so a benchmark measures its clients, not its server.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import socket
import sys
from dataclasses import asdict, dataclass
from typing import Any

from twisted.internet import interfaces
from twisted.internet.protocol import Protocol
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from poetrylab.bench._system import raise_fd_limit
from poetrylab.servers import PoetryFactory, SlowPoetryProtocol

__all__ = [
    "PACINGS",
    "ServerStats",
    "TimetablePoetryProtocol",
    "build_factory",
    "listen_many",
    "main",
]

PACINGS = ("timetable", "classic")


@dataclass
class ServerStats:
    """What the server did since the last reset: connections, writes, lateness.

    ``max_late_s`` is the latest any write came after its timetable slot (chunk *k* of a
    connection is due ``k * delay`` after it was made); ``final_late_s`` sums how late
    each connection's last write was (divide by ``completed``).
    """

    connections: int = 0
    completed: int = 0
    writes: int = 0
    bytes: int = 0
    max_late_s: float = 0.0
    final_late_s: float = 0.0

    def wrote(self, nbytes: int, late: float, last: bool) -> None:
        """Count one write of ``nbytes``, ``late`` seconds after its slot."""
        self.writes += 1
        self.bytes += nbytes
        self.max_late_s = max(self.max_late_s, late)
        if last:
            self.completed += 1
            self.final_late_s += late

    def report(self) -> dict[str, Any]:
        """The statistics as plain data, with the mean final lateness added."""
        out = asdict(self)
        out["mean_final_late_s"] = self.final_late_s / self.completed if self.completed else 0.0
        return out


class _BenchFactory(PoetryFactory):
    stats: ServerStats


class TimetablePoetryProtocol(Protocol):
    """Send the poem on a fixed timetable: chunk *k* is due ``k * delay`` after connecting.

    The first chunk goes out at once. When the reactor wakes late, every chunk that is
    due goes out in one write, so lateness never accumulates. Closes after the last
    chunk; cancels its pending call when the client hangs up first.
    """

    factory: _BenchFactory

    def __init__(self) -> None:
        self._start = 0.0
        self._sent = 0
        self._socket: socket.socket | None = None
        self._pending: interfaces.IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.factory.connections += 1
        self.factory.stats.connections += 1
        self._start = self.factory.reactor.seconds()
        get_handle = getattr(self.transport, "getHandle", None)
        handle = get_handle() if get_handle else None
        self._socket = handle if isinstance(handle, socket.socket) else None
        self._send_due()

    def _send_due(self) -> None:
        self._pending = None
        factory = self.factory
        poem, size, delay = factory.poem, factory.num_bytes, factory.delay
        total = max(1, math.ceil(len(poem) / size))
        now = factory.reactor.seconds()
        due = min(total, int((now - self._start) / delay + 1e-9) + 1) if delay > 0 else total
        due = max(due, self._sent + 1)
        data = poem[self._sent * size : due * size]
        self._sent = due
        self._write(data)
        late = max(0.0, now - (self._start + (due - 1) * delay))
        factory.stats.wrote(len(data), late, last=due >= total)
        if due >= total:
            self.transport.loseConnection()
        else:
            wait = self._start + due * delay - now
            self._pending = factory.reactor.callLater(max(0.0, wait), self._send_due)

    def _write(self, data: bytes) -> None:
        # Twisted's write() buffers and sends on the next reactor turn, which costs two
        # more epoll updates per chunk; 50,000 chunks a second (1,000 servers at 0.02 s)
        # make that the server's main cost. A 10-byte write to a loopback peer almost
        # always fits the kernel's buffer, so send it now, and hand whatever did not fit
        # (and everything after it, to keep the order) to the transport.
        if self._socket is None:
            self.transport.write(data)
            return
        try:
            sent = self._socket.send(data)
        except OSError:  # full (EAGAIN), or broken: the transport will notice and report it
            sent = 0
        if sent < len(data):
            self._socket = None
            self.transport.write(data[sent:])

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.factory.connections -= 1


class _ClassicStatsProtocol(SlowPoetryProtocol):
    """The course's slow protocol, unchanged, plus lateness measured against the timetable."""

    factory: _BenchFactory

    def connectionMade(self) -> None:
        self._start = self.factory.reactor.seconds()
        self._chunk = 0
        self.factory.stats.connections += 1
        super().connectionMade()

    def _send_next(self) -> None:
        factory = self.factory
        before = self._offset
        late = factory.reactor.seconds() - (self._start + self._chunk * factory.delay)
        self._chunk += 1
        super()._send_next()
        factory.stats.wrote(self._offset - before, max(0.0, late), last=self._pending is None)


def build_factory(
    reactor: Any, poem: bytes, delay: float, num_bytes: int, pacing: str = "timetable"
) -> PoetryFactory:
    """A poetry factory for the benchmark, with a :class:`ServerStats` in ``stats``.

    Raises ValueError for a pacing other than those in :data:`PACINGS` or bad pacing values.
    """
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be one of {', '.join(PACINGS)}, not {pacing!r}")
    factory = _BenchFactory(poem, reactor, delay=delay, num_bytes=num_bytes)
    factory.protocol = TimetablePoetryProtocol if pacing == "timetable" else _ClassicStatsProtocol
    factory.stats = ServerStats()
    return factory


def listen_many(
    reactor: Any, factory: PoetryFactory, count: int, interface: str = "127.0.0.1",
    backlog: int = 1024,
) -> list[interfaces.IListeningPort]:
    """Listen on ``count`` free ports with one shared factory; return the listening ports.

    Call it in the reactor thread. If one listen fails, the ports already opened are
    closed before the error propagates.
    """
    ports: list[interfaces.IListeningPort] = []
    try:
        for _ in range(count):
            ports.append(reactor.listenTCP(0, factory, backlog=backlog, interface=interface))
    except Exception:
        for port in ports:
            port.stopListening()
        raise
    return ports


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Control(LineReceiver):
    """Commands on stdin: ``stats`` answers with one JSON line; ``quit`` (or EOF) stops."""

    delimiter = b"\n"

    def __init__(self, reactor: Any, factory: _BenchFactory) -> None:
        self.reactor = reactor
        self.factory = factory
        self._cpu_mark = _cpu_seconds()

    def lineReceived(self, line: bytes) -> None:
        command = line.strip().decode("ascii", "replace")
        if command == "stats":
            report = self.factory.stats.report()
            report["open_connections"] = self.factory.connections
            cpu = _cpu_seconds()
            report["cpu_s"] = cpu - self._cpu_mark
            self._cpu_mark = cpu
            self.factory.stats = ServerStats()
            self.sendLine(json.dumps(report).encode())
        elif command == "quit":
            self._stop()
        elif command:
            self.sendLine(json.dumps({"error": f"unknown command {command!r}"}).encode())

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._stop()

    def _stop(self) -> None:
        if self.reactor.running:
            self.reactor.stop()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m poetrylab.bench.server_host",
        description="Serve one poem slowly on COUNT loopback ports (the benchmark's servers).",
    )
    parser.add_argument("--count", type=int, default=1, help="how many listeners (default 1)")
    parser.add_argument("--poem", default="ecstasy", help="corpus name or file (default ecstasy)")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between chunks")
    parser.add_argument("--num-bytes", type=int, default=10, help="bytes per chunk")
    parser.add_argument("--pacing", choices=PACINGS, default="timetable")
    parser.add_argument("--iface", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--backlog", type=int, default=1024, help="listen backlog per port")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the server process (see the module docstring); return its exit status."""
    args = _parse(argv)
    if args.count < 1:
        print("server_host: --count must be at least 1", file=sys.stderr)
        return 2
    raise_fd_limit()
    from twisted.internet import reactor
    from twisted.internet.stdio import StandardIO

    from poetrylab.corpus import load_poem

    poem = load_poem(args.poem).data
    factory = build_factory(reactor, poem, args.delay, args.num_bytes, args.pacing)
    ports = listen_many(reactor, factory, args.count, args.iface, args.backlog)
    ready = {"host": args.iface, "ports": [p.getHost().port for p in ports]}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    StandardIO(_Control(reactor, factory), reactor=reactor)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
