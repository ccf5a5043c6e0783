"""Route Twisted's log into the standard ``logging`` module without touching ``warnings``.

``twisted.logger.globalLogBeginner.beginLoggingTo`` (and crochet's ``setup()``, which calls
it) replaces ``warnings.showwarning`` so every warning becomes a Twisted log event. A
notebook or a test run under ``-W error`` must keep Python's own warning handling, so we
add a standard-library bridge to the global log publisher instead, once.
"""

from __future__ import annotations

import logging
import sys
import threading

from twisted.logger import STDLibLogObserver, globalLogPublisher

_lock = threading.Lock()
_observer: STDLibLogObserver | None = None


def route_twisted_log_to_stdlib() -> None:
    """Send Twisted log events to the ``logging`` logger ``twisted``; idempotent, thread-safe."""
    global _observer
    with _lock:
        if _observer is None:
            _observer = STDLibLogObserver(name="twisted")
            globalLogPublisher.addObserver(_observer)


def configure_cli_logging(verbose: bool = False) -> None:
    """Log to stderr, one line per event: what the servers did, and bad input they refused."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    route_twisted_log_to_stdlib()
