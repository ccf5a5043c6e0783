"""The benchmark's server process: many slow poetry servers under one Twisted reactor.

Notebook 17 (the benchmark). ``python -m poetrylab.bench.server_host --count N ...``
listens on N loopback ports, prints one JSON line ``{"host": ..., "ports": [...]}`` to
stdout when every listener is ready, and serves until SIGINT/SIGTERM, a ``quit`` line
or the end of its stdin (so it never outlives the harness that started it). A ``stats``
line on stdin answers with one JSON line of server-side statistics since the last
``stats``: connections, chunks written, how late the writes were, CPU time. The harness
(:class:`~poetrylab.bench.harness.ServerHost`) starts several of these processes when N
is large (each listener and each connection is a file descriptor, and a process may
open only so many) and adds their statistics up.

Pacing. The course's slow server (:class:`~poetrylab.servers.SlowPoetryProtocol`,
``--pacing classic``) schedules each chunk ``delay`` after the previous one was written,
so every late wake-up pushes all later chunks back: at 1,000 connections the server
itself drifts and the clients get the blame. The default, ``--pacing timetable``, keeps
every connection on one timetable instead, the same in every process: chunk *k* is due
``k * delay`` after the connection was accepted. Twisted's ``LoopingCall`` keeps that
schedule (it wakes at ``start + k * delay`` and skips the intervals it missed), and each
wake-up writes every chunk that is due, in one write, so lateness never accumulates.
Each connection then lasts :func:`~poetrylab.servers.poem_duration` seconds plus one
wake-up's lateness, which the ``stats`` line reports, so a benchmark measures its
clients, not its server.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import interfaces
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from poetrylab._typing import ReactorCore, ReactorTCP, ReactorTime, TCPTransport
from poetrylab.bench._system import raise_fd_limit
from poetrylab.servers import PoetryFactory, SlowPoetryProtocol

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

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
    connection is due ``k * delay`` after it was accepted); ``final_late_s`` sums how late
    each connection's last write was (divide by ``completed``). Not thread-safe (the
    reactor thread alone updates it).
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


_EARLY = 1e-4
"""Seconds a wake-up may come before its slot and still count as on time: clock values
near 1.7e9 s (``time.time``) carry rounding errors of about 1e-7 s."""


class TimetablePoetryProtocol(Protocol):
    """Send the poem on a fixed timetable: chunk *k* is due ``k * delay`` after accepting.

    A ``LoopingCall`` on the factory's reactor calls :meth:`send_due` at
    ``start + k * delay``; it writes every chunk due by then (one on time, several after
    a late wake-up) in one write. The first chunk goes out at once. Closes after the last
    chunk; stops its loop when the client hangs up first.

    Why not ``LoopingCall.withCount``, which counts the intervals itself: it rounds
    ``(now - start) / delay`` down, and with the reactor's clock (seconds since 1970,
    rounding errors of 1e-7 s) that skips its first call and now and then a later one,
    each time holding a chunk back by a whole ``delay``: measured, every poem came one
    ``delay`` late. Counting chunks from the clock with a tolerance (:data:`_EARLY`) does
    not. Writes go through the transport, which sends on the reactor's next turn. It
    costs little: at N = 10,000 (40,000 writes over four processes) the servers used
    1.25 s of CPU per run through the transport against 1.14 s writing to the socket
    directly, about 3 microseconds a chunk; on a quiet machine their last chunks came
    1-2 ms after the timetable on average. So nothing here writes behind its back.
    """

    factory: _BenchFactory
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; set once connected

    def __init__(self) -> None:
        self._sent = 0
        self._total = 0
        self._loop: LoopingCall | None = None

    def connectionMade(self) -> None:
        factory = self.factory
        factory.connections += 1
        factory.stats.connections += 1
        self._total = max(1, math.ceil(len(factory.poem) / factory.num_bytes))
        if factory.delay <= 0:
            self.send_due(self._total)
            return
        self._loop = LoopingCall(self.send_due)
        # Twisted types the clock as the zope interface IReactorTime; ours is the same object.
        self._loop.clock = cast("IReactorTime", factory.reactor)
        self._loop.start(factory.delay, now=True)

    def send_due(self, due: int | None = None) -> None:
        """Write, in one write, every chunk due by now (or the first ``due`` chunks)."""
        factory = self.factory
        now = factory.reactor.seconds()
        start = self._loop.starttime if self._loop and self._loop.starttime is not None else now
        if due is None:
            due = int((now - start + _EARLY) / factory.delay) + 1 if factory.delay > 0 else 1
        due = min(self._total, due)
        if due <= self._sent:  # woken a hair early: nothing is due yet
            return
        size = factory.num_bytes
        data = factory.poem[self._sent * size : due * size]
        self._sent = due
        self.transport.write(data)
        late = max(0.0, now - (start + (due - 1) * factory.delay))
        factory.stats.wrote(len(data), late, last=due >= self._total)
        if due >= self._total:
            self._stop_loop()
            self.transport.loseConnection()

    def _stop_loop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]  # Twisted's own signature defaults to None
        self._stop_loop()
        self.factory.connections -= 1


class _ClassicStatsProtocol(SlowPoetryProtocol):
    """The course's slow protocol, unchanged, plus lateness measured against the timetable."""

    factory: _BenchFactory

    def connectionMade(self) -> None:
        self._start = self.factory.reactor.seconds()
        self._chunk = 0
        self.factory.stats.connections += 1
        super().connectionMade()

    def chunk_sent(self, size: int, last: bool) -> None:
        factory = self.factory
        late = factory.reactor.seconds() - (self._start + self._chunk * factory.delay)
        self._chunk += 1
        factory.stats.wrote(size, max(0.0, late), last=last)


def build_factory(
    reactor: ReactorTime, poem: bytes, delay: float, num_bytes: int, pacing: str = "timetable"
) -> PoetryFactory:
    """A poetry factory for the benchmark, with a :class:`ServerStats` in ``stats``.

    Raises ValueError for a pacing other than those in :data:`PACINGS` or bad pacing values.
    """
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be one of {', '.join(PACINGS)}, not {pacing!r}")
    factory = _BenchFactory(poem, reactor, delay=delay, num_bytes=num_bytes)
    protocol: type[Protocol] = (
        TimetablePoetryProtocol if pacing == "timetable" else _ClassicStatsProtocol
    )
    factory.protocol = protocol
    factory.stats = ServerStats()
    return factory


def listen_many(
    reactor: ReactorTCP,
    factory: PoetryFactory,
    count: int,
    interface: str = "127.0.0.1",
    backlog: int = 64,
) -> list[interfaces.IListeningPort]:
    """Listen on ``count`` free ports with one shared factory; return the listening ports.

    Call it in the reactor thread. If one listen fails, the ports already opened are
    closed before the error propagates. Each port takes one benchmark connection per
    run, so a small ``backlog`` is plenty and keeps the kernel's memory down.
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

    def __init__(self, reactor: ReactorCore, factory: _BenchFactory) -> None:
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
            self.reply(report)
        elif command == "quit":
            self._stop()
        elif command:
            self.reply({"error": f"unknown command {command!r}"})

    def reply(self, data: dict[str, Any]) -> None:
        """Write ``data`` as one JSON line to stdout."""
        self.sendLine(json.dumps(data).encode())  # type: ignore[no-untyped-call]  # Twisted: unannotated

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]  # Twisted's own signature defaults to None
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
    parser.add_argument("--backlog", type=int, default=64, help="listen backlog per port")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the server process (see the module docstring); return its exit status.

    The process's entry point, so the one place here that imports the global reactor.
    """
    args = _parse(argv)
    if args.count < 1:
        print("server_host: --count must be at least 1", file=sys.stderr)
        return 2
    limit = raise_fd_limit()
    if 2 * args.count + 32 > limit:
        print(f"server_host: {args.count} listeners need about {2 * args.count + 32} file "
              f"descriptors (a listener and a connection each) but this process may open "
              f"{limit}: start more processes with fewer listeners each", file=sys.stderr)
        return 2
    from poetrylab._logging import begin_cli_logging

    begin_cli_logging()  # before the reactor: Twisted's start-up log buffer keeps nothing
    from twisted.internet import reactor
    from twisted.internet.stdio import StandardIO

    from poetrylab.corpus import load_poem

    poem = load_poem(args.poem).data
    factory = build_factory(reactor, poem, args.delay, args.num_bytes, args.pacing)
    assert isinstance(factory, _BenchFactory)
    ports = listen_many(cast(ReactorTCP, reactor), factory, args.count, args.iface, args.backlog)
    ready = {"host": args.iface, "ports": [cast(IPv4Address, p.getHost()).port for p in ports]}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    StandardIO(_Control(cast(ReactorCore, reactor), factory), reactor=reactor)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
