"""The engine: Twisted's global reactor, run in a background thread of its own.

Notebooks 00 and 02 explain why a cell never calls ``reactor.run()``: the kernel's main
thread must stay free to run the next cell. So :class:`ReactorThread` runs
``reactor.run(installSignalHandlers=False)`` in a daemon thread (signal handlers can
only be installed by the main thread, which the kernel keeps for itself), waits until
the reactor reports it is running, and stops it when the interpreter exits (an
``atexit`` hook, which a daemon thread does not hold back), so the reactor's
``before shutdown`` triggers run and every server started from a cell is closed.

Why not crochet, which the course used before: crochet's shutdown watchdog thread and its
process reaper each wake ten times a second for as long as the kernel lives (0.2 % of a
core per idle kernel, measured), and it offers no public way to turn both off; the
runtime used none of its waiting functions anyway. Here nothing runs while nothing is
asked of the reactor. Child processes started with ``reactor.spawnProcess`` still need
reaping: Twisted reaps a child when its pipes close, but a child that has not quite
exited by then (one in ten, measured) is left a zombie whose ``processEnded`` never comes,
unless a SIGCHLD handler reaps it, and only the main thread (the kernel's) may install
one. So while children spawned through this reactor live, and only then, they are
reaped every :data:`REAP_EVERY` seconds (:func:`reap_children_while_any`).

Within the runtime, this is the only module that imports the global reactor (the CLI,
``twistd`` and one-shot scripts run their own); everything else is handed the reactor.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from poetrylab._typing import RuntimeReactor
from poetrylab.runtime._waits import TIMEOUT_SCALE

__all__ = [
    "REAP_EVERY",
    "THREAD_NAME",
    "EngineError",
    "ReactorThread",
    "Started",
    "reap_children_while_any",
]

THREAD_NAME = "ReactorThread"
"""The name of the thread the reactor runs in (shown by ``threading.current_thread()``)."""

_START_TIMEOUT = 10.0 * TIMEOUT_SCALE  # seconds; a loaded hub scales every default wait
_EXIT_TIMEOUT = 3.0

REAP_EVERY = 0.1
"""Seconds between two reapings of child processes, while any is alive."""


class EngineError(RuntimeError):
    """The reactor cannot be started (or restarted) in this process."""


@dataclass(frozen=True)
class Started:
    """What :meth:`ReactorThread.start` hands back: the reactor and the thread that runs it."""

    reactor: RuntimeReactor = field(repr=False)
    thread_ident: int
    thread_name: str


def global_reactor() -> RuntimeReactor:
    """Twisted's global reactor (installing the platform's default one if none is yet)."""
    from twisted.internet import reactor

    return cast("RuntimeReactor", reactor)


class ReactorThread:
    """Run a reactor in a background thread, once; thread-safe and idempotent.

    ``reactor_factory()`` returns the reactor (the global one unless a test says
    otherwise); ``at_exit(fn)`` registers ``fn`` to run when the interpreter exits.
    """

    def __init__(
        self,
        reactor_factory: Callable[[], RuntimeReactor] = global_reactor,
        at_exit: Callable[[Callable[[], None]], object] = atexit.register,
        thread_name: str = THREAD_NAME,
    ) -> None:
        self._reactor_factory = reactor_factory
        self._at_exit = at_exit
        self._thread_name = thread_name
        self._lock = threading.Lock()
        self._started: Started | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Started:
        """Start the reactor thread if needed and return it, running.

        If the reactor is already running in some other thread (someone else started
        it), that thread is adopted. Raises :class:`EngineError` when the reactor has
        run and stopped in this process (a Twisted reactor cannot restart: restart the
        kernel), or when it does not report running within 10 s (times
        ``POETRYLAB_TIMEOUT_SCALE``).
        """
        with self._lock:
            started = self._started
            if started is not None and started.reactor.running:
                return started
            if self._thread is not None:
                raise EngineError(
                    "the Twisted reactor has stopped, and a reactor cannot restart: "
                    "restart the kernel (Kernel > Restart Kernel)"
                )
            reactor = self._reactor_factory()
            if reactor.running:
                self._started = _adopt(reactor)
                return self._started
            self._started = self._run_in_thread(reactor)
            return self._started

    def _run_in_thread(self, reactor: RuntimeReactor) -> Started:
        running = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            try:
                reactor.run(installSignalHandlers=False)
            except BaseException as exc:  # reported to start() below; the thread just ends
                failed.append(exc)
            finally:
                running.set()

        reactor.callWhenRunning(running.set)
        reap_children_while_any(reactor)
        thread = threading.Thread(target=run, name=self._thread_name, daemon=True)
        self._thread = thread
        thread.start()
        if not running.wait(_START_TIMEOUT) or failed:
            cause = failed[0] if failed else None
            raise EngineError(
                "the Twisted reactor could not start in its background thread"
                + (f" ({type(cause).__name__}: {cause})" if cause else "")
                + ": restart the kernel (Kernel > Restart Kernel)"
            ) from cause
        self._at_exit(lambda: self._stop_at_exit(reactor, thread))
        assert thread.ident is not None
        return Started(reactor, thread.ident, thread.name)

    @staticmethod
    def _stop_at_exit(reactor: RuntimeReactor, thread: threading.Thread) -> None:
        """Stop the reactor (its shutdown triggers close every server) and let it finish."""
        if thread.is_alive() and reactor.running:
            reactor.callFromThread(reactor.stop)
            thread.join(_EXIT_TIMEOUT)


def reap_children_while_any(reactor: RuntimeReactor) -> None:
    """Make ``reactor.spawnProcess`` also reap children every 0.1 s while any is alive.

    Wraps the method on this reactor instance (public API only: ``LoopingCall`` and
    ``twisted.internet.process.reapAllProcesses``); the reaping stops by itself when no
    child is left, so an idle reactor has no timer. Does nothing for a reactor that
    cannot spawn processes. Reactor thread only, like ``spawnProcess`` itself.
    """
    spawn = getattr(reactor, "spawnProcess", None)
    if spawn is None:
        return
    from twisted.internet import process
    from twisted.internet.interfaces import IReactorTime
    from twisted.internet.task import LoopingCall

    def reap() -> None:
        process.reapAllProcesses()
        if not process.reapProcessHandlers and reaper.running:
            reaper.stop()

    reaper = LoopingCall(reap)
    reaper.clock = cast("IReactorTime", reactor)  # a zope interface; our Protocol mirrors it

    def spawn_and_reap(*args: Any, **kwargs: Any) -> Any:
        child = spawn(*args, **kwargs)
        if not reaper.running:
            reaper.start(REAP_EVERY, now=False)
        return child

    setattr(reactor, "spawnProcess", spawn_and_reap)  # noqa: B010 - this instance only


def _adopt(reactor: RuntimeReactor) -> Started:
    """The reactor already runs in another thread: find out which, by asking it."""
    answered = threading.Event()
    where: list[threading.Thread] = []

    def here() -> None:
        where.append(threading.current_thread())
        answered.set()

    reactor.callFromThread(here)
    if not answered.wait(_START_TIMEOUT):
        raise EngineError(
            f"the running reactor did not answer within {_START_TIMEOUT:g} s: "
            "restart the kernel (Kernel > Restart Kernel)"
        )
    thread = where[0]
    assert thread.ident is not None
    return Started(reactor, thread.ident, thread.name)
