"""Is the reactor thread free? Asked only while a cell waits for it, and answered plainly.

Notebook 02 teaches, and notebook 11 shows, that a function run in the reactor thread
must not block: while it runs, no server answers, no timer fires, no download moves,
and a cell waiting for the reactor waits in vain. This module catches that in the act.

There is no watchdog thread and no timer. While a cell waits for the reactor (a blocking
wait, or an ``await``) and the wait has lasted a moment, the waiting side calls
:meth:`Watchdog.check` every fraction of a second. That hands the reactor a no-op (a
*ping*) unless one is already on its way; when a ping has gone unanswered for over
:data:`BUSY_AFTER` seconds, it looks at the reactor thread's current frame
(``sys._current_frames()``, CPython's documented window onto other threads) and
describes what is running there: the call in progress, and the notebook cell and line
it came from (``time.sleep(13), from In[8], line 2``). When the reactor thread is only
waiting for its sockets (its idle poll) it is not blocked, merely slow to get the CPU
on a busy machine, and nothing is reported.

Not thread-safe to construct; every method may be called from any thread.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from twisted.internet.defer import Deferred

from poetrylab._typing import ReactorThreads

__all__ = [
    "BUSY_AFTER",
    "Blocker",
    "Running",
    "Watchdog",
    "describe",
    "describe_call",
    "describe_frame",
    "short",
]

BUSY_AFTER = 1.0
"""Seconds a ping may go unanswered before the reactor thread counts as blocked."""

_RUNTIME_PACKAGE = __name__.rpartition(".")[0]
_TWISTED_DIR = os.sep + "twisted" + os.sep
# The frames a reactor sits in while it waits for its sockets (not blocked: idle).
_IDLE_POLLS = frozenset({"doPoll", "doSelect", "doKEvent", "doIteration", "_doIteration"})
_LONGEST = 100
_ARGUMENT = 24


@dataclass(frozen=True)
class Running:
    """A call the runtime handed to the reactor thread and that is running there now."""

    call: str
    """The call in words, with its arguments: ``time.sleep(13)``."""
    origin: str | None
    """Where the cell asked for it: ``In[8], line 2`` (None when unknown)."""


@dataclass(frozen=True)
class Blocker:
    """What keeps the reactor thread from answering: the call running, and where from."""

    running: str
    """The call in progress, as the code says it: ``time.sleep(13)``."""
    where: str | None
    """The notebook cell (or file) and line it came from, if known: ``In[8], line 2``."""
    silent_for: float
    """Seconds the reactor thread has not answered a ping (0 when none was on its way)."""
    handed_over: bool = False
    """True when the call is one the runtime handed over (``runtime.call(fn)``)."""

    def __str__(self) -> str:
        where = f", from {self.where}" if self.where else ""
        return f"{self.running}{where}"

    def report(self) -> str:
        """The warning shown in the waiting cell, on one short paragraph."""
        return (
            f"⚠ The reactor thread has not answered for over {BUSY_AFTER:g} s: it is busy "
            f"running {self}. Until that returns nothing else runs in the reactor (no "
            "server answers, no timer fires, no download moves). A function run in the "
            "reactor thread must return quickly: give blocking work to a thread "
            "(deferToThread).\n"
        )


class Watchdog:
    """Pings the reactor for waiting threads and describes what blocks it.

    ``reactor`` runs in the thread whose ident is ``reactor_thread``; ``running()``
    says which handed-over call the reactor thread is running now, if any;
    ``label(filename)`` names a notebook cell's file (``In[8]``) or returns None.
    """

    def __init__(
        self,
        reactor: ReactorThreads,
        reactor_thread: int,
        running: Callable[[], Running | None] = lambda: None,
        label: Callable[[str], str | None] = lambda filename: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reactor = reactor
        self._reactor_thread = reactor_thread
        self._running = running
        self._label = label
        self._clock = clock
        self._lock = threading.Lock()
        self._ping: object | None = None  # the ping on its way, if any
        self._sent = 0.0

    def check(self, describe: bool = True) -> Blocker | None:
        """Ping the reactor unless a ping is on its way; say what blocks it if it is late.

        Returns a :class:`Blocker` when the ping on its way has gone unanswered for over
        :data:`BUSY_AFTER` seconds and the reactor thread is running code (not waiting
        for its sockets); else None, as always when ``describe`` is false (the caller
        only keeps the heartbeat going: it has said what blocks the reactor already).
        """
        now = self._clock()
        with self._lock:
            if self._ping is None:
                self._send(now)
                return None
            silent_for = now - self._sent
        if silent_for <= BUSY_AFTER or not describe:
            return None
        return self.blocker(silent_for)

    def _send(self, now: float) -> None:
        ping = object()
        self._ping, self._sent = ping, now
        self._reactor.callFromThread(self._answered, ping)

    def _answered(self, ping: object) -> None:
        """Reactor thread: the ping arrived, so the reactor answers again."""
        with self._lock:
            if self._ping is ping:
                self._ping = None

    def silent_for(self) -> float:
        """Seconds the ping on its way has gone unanswered (0 when none is)."""
        with self._lock:
            return self._clock() - self._sent if self._ping is not None else 0.0

    def blocker(self, silent_for: float | None = None) -> Blocker | None:
        """What the reactor thread is running now, unless it is only waiting for sockets."""
        frame = sys._current_frames().get(self._reactor_thread)
        if frame is None:
            return None
        seconds = self.silent_for() if silent_for is None else silent_for
        return describe_frame(frame, self._running(), self._label, seconds)


def describe_frame(
    frame: FrameType,
    running: Running | None,
    label: Callable[[str], str | None],
    silent_for: float = 0.0,
) -> Blocker | None:
    """Describe what the thread whose innermost frame is ``frame`` is doing.

    Returns None when it sits in a reactor's idle poll. When the innermost frame is the
    runtime's own (a handed-over function written in C, such as ``time.sleep``, runs
    with no frame of its own), ``running`` names the call; when it is Twisted's, running
    a ``callLater`` timer, the timer's function is named. Otherwise the call in progress
    is read from the source (``co_positions``), and the innermost notebook cell on the
    stack (or, failing that, where the call was handed over) says where it came from.
    ``label(filename)`` names a cell's file (``In[8]``) or returns None.
    """
    innermost = frame
    code = innermost.f_code
    if _is_idle_poll(code.co_name, code.co_filename):
        return None
    if _module(innermost).startswith(_RUNTIME_PACKAGE) and running is not None:
        return Blocker(running.call, running.origin, silent_for, handed_over=True)
    timer = _timer_running(innermost) if _TWISTED_DIR in code.co_filename else None
    if timer is not None:
        return Blocker(timer, None, silent_for)
    call = _source_of_call(innermost) or f"{code.co_qualname}()"
    where: str | None = None
    cell: FrameType | None = innermost
    while cell is not None:
        name = label(cell.f_code.co_filename)
        if name is not None:
            where = f"{name}, line {cell.f_lineno}"
            break
        cell = cell.f_back
    if cell is not innermost:
        file = os.path.basename(code.co_filename)
        call = f"{call} (in {code.co_qualname}, {file} line {innermost.f_lineno})"
    if where is None and running is not None:
        where = running.origin
    return Blocker(_shorten(call), where, silent_for)


def _is_idle_poll(function: str, filename: str) -> bool:
    if function in _IDLE_POLLS and _TWISTED_DIR in filename:
        return True
    return function == "select" and filename.endswith("selectors.py")  # asyncio's reactor


def describe(thing: object) -> str:
    """A short name for what is being waited for, for error messages: ``time.sleep()``.

    A function is named with its module's last part unless it comes from a notebook
    cell or the builtins: ``deferred.get_poetry()``, ``my_callback()``, ``print()``.
    """
    if isinstance(thing, Deferred):
        return "a Deferred"
    func = getattr(thing, "func", None)  # functools.partial
    target = func if func is not None and callable(thing) else thing
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if not name:
        return repr(thing)
    module = getattr(target, "__module__", None)
    if isinstance(module, str) and module not in ("builtins", "__main__"):
        name = f"{module.rpartition('.')[2]}.{name}"
    return f"{name}()"


def describe_call(fn: object, args: Sequence[object], kwargs: Mapping[str, object]) -> str:
    """A call in words, with short arguments: ``time.sleep(13)``."""
    shown = [short(a) for a in args] + [f"{k}={short(v)}" for k, v in kwargs.items()]
    return f"{describe(fn).removesuffix('()')}({', '.join(shown)})"


def short(value: object) -> str:
    """``repr(value)``, cut to a few characters for a message."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break a message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _ARGUMENT else text[: _ARGUMENT - 1] + "…"


def _timer_running(frame: FrameType) -> str | None:
    """The ``callLater`` timer Twisted's frame is running, if any: ``time.sleep(3)``.

    Found by type (a ``DelayedCall`` among the frame's variables), not by Twisted's
    private variable names, so a change in Twisted makes this say less, never wrong.
    """
    from twisted.internet.base import DelayedCall

    try:
        timers = [v for v in frame.f_locals.values() if isinstance(v, DelayedCall)]
    except Exception:  # a frame whose variables cannot be read: say less
        return None
    if len(timers) != 1:
        return None
    timer = timers[0]
    return f"{describe_call(timer.func, timer.args, timer.kw)} (a reactor.callLater timer)"


def _module(frame: FrameType) -> str:
    name = frame.f_globals.get("__name__", "")
    return name if isinstance(name, str) else ""


def _source_of_call(frame: FrameType) -> str | None:
    """The source text of the expression ``frame`` is evaluating (the call it is in)."""
    code = frame.f_code
    try:
        positions = list(code.co_positions())
        line, end_line, start, end = positions[frame.f_lasti // 2]
    except (IndexError, ValueError):
        return None
    if line is None or start is None or end is None:
        return None
    lines = linecache.getlines(code.co_filename, frame.f_globals)
    if not 0 < line <= len(lines):
        return None
    text = lines[line - 1].encode()
    if end_line == line:
        return text[start:end].decode(errors="replace").strip() or None
    return text[start:].decode(errors="replace").strip() + " …"


def _shorten(text: str) -> str:
    return text if len(text) <= _LONGEST else text[: _LONGEST - 1] + "…"
