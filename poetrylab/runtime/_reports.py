"""Twisted's log, shown where a learner looks: warnings and errors in their cell.

Twisted reports trouble through its log: an error nobody handled in a Deferred (when the
Deferred is garbage-collected), an exception in a ``callLater`` function, a protocol that
raised. :class:`CellReports` is a log observer that turns each warning or error into a
short, plain report on standard error, which shows in the cell running now (see
``_cells``), and names the cell whose code raised it when the traceback goes through
one. Everything is also forwarded to the standard ``logging`` logger ``twisted``, for
those who configure logging (notebook 14).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any, cast

from twisted.logger import (
    ILogObserver,
    LogEvent,
    LogLevel,
    formatEvent,
    globalLogBeginner,
    globalLogPublisher,
)
from twisted.python.failure import Failure

from poetrylab._logging import route_twisted_log_to_stdlib
from poetrylab.runtime._cells import NoCells, cell_label

__all__ = ["CellReports", "begin_logging"]

_TWISTED_DIR = os.sep + "twisted" + os.sep
_FRAMES_SHOWN = 6
_UNHANDLED_DEFERRED = "Unhandled error in Deferred:"


class CellReports:
    """A Twisted log observer: warnings and errors as short reports in the right cell.

    Called in whatever thread logs (usually the reactor's). Never raises.
    """

    def __init__(self, cells: NoCells, min_level: LogLevel = LogLevel.warn) -> None:
        self._cells = cells
        self._min_level = min_level

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if level is None or level < self._min_level:
            return
        with contextlib.suppress(Exception):  # a broken report must not break logging
            self._report(event)

    def _report(self, event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is None:
            if event.get("log_format") == _UNHANDLED_DEFERRED:
                return  # Twisted logs the Failure itself next
            sys.stderr.write(f"Twisted {event['log_level'].name}: {formatEvent(event)}\n")
            return
        frames = list(getattr(failure, "frames", []) or [])
        cell = self._cells.locate(frame[1] for frame in frames)
        sys.stderr.write(render_failure(event, failure, cell.label if cell else None))


def render_failure(event: dict[str, Any], failure: Failure, origin: str | None) -> str:
    """A short report: what went unhandled, the exception, the frames outside Twisted."""
    if event.get("log_namespace") == "twisted.internet.defer":
        headline = "Unhandled error in a Deferred: nothing handled this failure"
        advice = (
            "Add an errback (d.addErrback(...)), or wait for the Deferred with "
            "runtime.wait(d) / await runtime.resolve(d) so the error is raised in your cell."
        )
    else:
        message = formatEvent(event).strip()
        headline = f"Error in the reactor thread{': ' + message if message else ''}"
        advice = ""
    if origin:
        headline += f" (raised by code from {origin})"
    exc = failure.value
    lines = [f"⚠ {headline}", f"    {type(exc).__name__}: {exc}".rstrip(": ")]
    frames = [f for f in getattr(failure, "frames", []) or [] if _TWISTED_DIR not in f[1]]
    for name, filename, lineno, *_ in frames[-_FRAMES_SHOWN:]:
        lines.append(f"      in {name}, {_where(filename)} line {lineno}")
    lines += _debug_lines(event.get("debugInfo") or "")
    if advice:
        lines.append(f"    {advice}")
    return "\n".join(lines) + "\n"


_DEBUG_FRAME = re.compile(
    r'^ ([CI]):\s+File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$'
)


def _debug_lines(debug_info: str) -> list[str]:
    """Where the Deferred was created and first fired, from ``defer.setDebugging(True)``.

    Twisted adds both stacks to its "Unhandled error in Deferred" event as text (lines
    marked `` C:`` and `` I:``); the innermost frames outside Twisted are shown.
    """
    where: dict[str, list[str]] = {"C": [], "I": []}
    for line in debug_info.splitlines():
        match = _DEBUG_FRAME.match(line)
        if match and _TWISTED_DIR not in match["file"]:
            where[line[1]].append(
                f"in {match['name']}, {_where(match['file'])} line {match['line']}"
            )
    shown = []
    for key, title in (("C", "created"), ("I", "first fired")):
        if where[key]:
            shown.append(f"    {title} {where[key][-1]}")
    return shown


def _where(filename: str) -> str:
    return f"{cell_label(filename) or os.path.basename(filename)},"


def begin_logging(observer: Callable[[LogEvent], None]) -> None:
    """Add ``observer`` to Twisted's log and forward the log to ``logging``. Call it once.

    If nothing has begun Twisted's logging yet, begin it now (so Twisted stops buffering
    events and printing critical ones itself), without redirecting standard output and
    without letting Twisted take over ``warnings.showwarning``.
    """
    # ILogObserver is a zope interface that every one-argument callable provides.
    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    route_twisted_log_to_stdlib()
    twisted_logger = logging.getLogger("twisted")
    if not twisted_logger.handlers:
        # Our observer already shows warnings and errors: keep logging's last-resort
        # handler from printing each one a second time. Configured handlers still see them.
        twisted_logger.addHandler(logging.NullHandler())
    # Twisted has no public "has logging begun?"; its beginner keeps a temporary
    # (buffering) observer until then. tests/test_runtime_unit.py pins this name.
    if getattr(globalLogBeginner, "_temporaryObserver", None) is not None:
        saved = warnings.showwarning
        globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
        warnings.showwarning = saved
