"""Logging in every process poetrylab starts: Twisted's log begun, bounded, never blocking.

Until someone *begins* Twisted's global log (``globalLogBeginner.beginLoggingTo``),
Twisted keeps every event in a start-up buffer of up to 65,536 events, and each event
holds on to what it mentions: a factory, its protocol, the poem in it. A long-running
server that never begins logging grows by every connection it makes, for ever. So each
process we start begins it as its first act: ``poetrylab`` (:func:`begin_cli_logging`),
``twistd poetry`` (twistd begins it itself) and the notebook runtime
(``poetrylab.runtime``, through :func:`route_twisted_log_to_stdlib`).

:func:`begin_cli_logging` sends Twisted's events and ours to stderr, one line each,
through a handler that never blocks the reactor: lines wait in a bounded queue for a
writer thread. If nobody reads stderr (a pipe left full), the queue fills, new lines
are dropped and counted, and one line says how many once stderr moves again; the server
never stalls and never grows because of its log.

Beginning Twisted's log also routes ``warnings`` through it (Twisted's choice). A
notebook or a test run under ``-W error`` must keep Python's own warning handling, so
there :func:`route_twisted_log_to_stdlib` only adds a bridge to the standard library.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    STDLibLogObserver,
    globalLogBeginner,
    globalLogPublisher,
)

__all__ = ["QueueToStderr", "begin_cli_logging", "route_twisted_log_to_stdlib"]

_lock = threading.Lock()
_observer: STDLibLogObserver | None = None

FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
"""How a line reads: time, where it came from, how bad, what happened."""


def route_twisted_log_to_stdlib() -> None:
    """Send Twisted log events to the ``logging`` logger ``twisted``; idempotent, thread-safe.

    Does not begin Twisted's log (whoever starts the reactor must, see the module doc).
    """
    global _observer
    with _lock:
        if _observer is None:
            _observer = STDLibLogObserver(name="twisted")
            globalLogPublisher.addObserver(_observer)


class QueueToStderr(logging.Handler):
    """A handler that queues formatted lines for a writer thread that writes them to fd 2.

    :meth:`emit` never blocks: at most ``capacity`` lines wait; beyond that a line is
    dropped and counted, and the writer reports the count when it next writes. The
    writer uses ``os.write`` on the file descriptor, holding no Python lock while it
    waits, so a process whose stderr is stuck still exits at once. :meth:`flush` waits
    (at most ``timeout`` seconds) for the queue to drain. Thread-safe.
    """

    def __init__(self, capacity: int = 10_000, fd: int | None = None) -> None:
        super().__init__()
        self.fd = sys.stderr.fileno() if fd is None else fd
        self.dropped = 0
        self._count_lock = threading.Lock()
        self._lines: queue.Queue[bytes] = queue.Queue(capacity)
        self._writer = threading.Thread(target=self._write_lines, name="poetrylab-log", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:
            self.handleError(record)
            return
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1

    def _write_lines(self) -> None:
        reported = 0
        while True:
            line = self._lines.get()
            dropped = self.dropped
            if dropped != reported:
                note = f"poetrylab: {dropped - reported} log lines dropped (stderr was not read)\n"
                line = note.encode() + line
                reported = dropped
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError:
                pass  # stderr is closed: nothing more can be said
            finally:
                self._lines.task_done()

    def flush(self, timeout: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while self._lines.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def begin_cli_logging(verbose: bool = False) -> None:
    """Begin Twisted's log and send it, with ours, to stderr: one line per event.

    Our loggers (``poetrylab.*``) log at INFO (DEBUG if ``verbose``): what the servers
    did and the bad input they refused, naming the client. Twisted's own events are
    shown from WARNING up (all of them if ``verbose``): its "Starting factory" lines say
    nothing a user needs. Call it once, first thing, in a process about to run a reactor.
    """
    handler = QueueToStderr()
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("twisted").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # Events below WARNING are not even formatted unless asked for: cheaper under load.
    shown = LogLevel.debug if verbose else LogLevel.warn
    to_stdlib = FilteringLogObserver(
        STDLibLogObserver(name="twisted"), [LogLevelFilterPredicate(defaultLogLevel=shown)]
    )
    # discardBuffer: the start-up buffer holds only what happened before now, which was
    # nothing a user needs; replaying it would keep it alive a little longer for nothing.
    globalLogBeginner.beginLoggingTo([to_stdlib], discardBuffer=True, redirectStandardIO=False)
