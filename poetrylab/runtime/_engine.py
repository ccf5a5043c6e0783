"""The engine: Twisted's global reactor running in crochet's background thread.

This is the only module in poetrylab that imports crochet or the global reactor. crochet
2.1.1 is pinned and unmaintained, and three of its habits must not reach a learner:

* ``EventualResult`` calls ``threading.Event.isSet()``, deprecated since Python 3.10.
  Under ``-W error`` that warning is raised inside the reactor thread, the result is
  never delivered, and every later wait ends in a timeout. The runtime never uses
  ``EventualResult`` (see ``_waits``), and :func:`ignore_crochet_isset_warning` silences
  the warning for anyone else's crochet calls, for crochet's modules only.
* ``setup()`` begins Twisted's logging in the reactor thread, which replaces
  ``warnings.showwarning`` so every warning becomes a Twisted log event, and sends every
  log event through an extra thread. We switch that step off before ``setup()`` and
  put ``warnings.showwarning`` back if someone else's ``setup()`` already took it; the
  runtime's own observer (``_reports``) handles the log instead.
* ``wait()`` timeouts do not cancel the Deferred: ``_waits`` does its own waiting.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["CrochetEngine", "EngineError", "Started", "ignore_crochet_isset_warning"]

_BARRIER_TIMEOUT = 10.0


class EngineError(RuntimeError):
    """The reactor cannot be started (or restarted) in this process."""


@dataclass(frozen=True)
class Started:
    """What :meth:`CrochetEngine.start` hands back: the reactor and the thread that runs it."""

    reactor: Any
    thread_ident: int
    thread_name: str


def ignore_crochet_isset_warning() -> None:
    """Ignore crochet's ``isSet() is deprecated`` DeprecationWarning, and nothing else.

    The filter matches that message, that category and warnings raised from crochet's
    own modules only, so ``-W error`` keeps working for everything else. Idempotent
    (``warnings.filterwarnings`` does not add the same filter twice).
    """
    warnings.filterwarnings(
        "ignore",
        message=r"isSet\(\) is deprecated",
        category=DeprecationWarning,
        module=r"crochet(\.|$)",
    )


def _is_twisted_showwarning(func: Any) -> bool:
    owner = getattr(func, "__self__", None)
    return type(owner).__module__.startswith("twisted.")


class CrochetEngine:
    """Start the global reactor in crochet's thread, once; thread-safe and idempotent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: Started | None = None

    def start(self) -> Started:
        """Start the reactor thread if needed and return it, running.

        Raises :class:`EngineError` when the reactor has already run and stopped in this
        process (Twisted reactors cannot restart: restart the kernel), or when its
        thread does not answer within 10 s.
        """
        with self._lock:
            if self._started is not None and self._started.reactor.running:
                return self._started
            ignore_crochet_isset_warning()
            import crochet
            from twisted.internet import reactor

            if getattr(reactor, "_startedBefore", False) and not reactor.running:
                raise EngineError(
                    "the Twisted reactor has stopped and a reactor cannot restart: "
                    "restart the kernel (Kernel > Restart Kernel)"
                )
            loop = getattr(crochet, "_main", None)
            if loop is not None and not getattr(loop, "_started", True):
                # crochet would begin Twisted's logging in the reactor thread (see above).
                loop._startLoggingWithObserver = None
            saved = warnings.showwarning
            crochet.setup()
            started = self._barrier(reactor)
            if _is_twisted_showwarning(warnings.showwarning):
                warnings.showwarning = (
                    saved if not _is_twisted_showwarning(saved) else warnings._showwarning_orig  # type: ignore[attr-defined]
                )
            self._started = started
            return started

    @staticmethod
    def _barrier(reactor: Any) -> Started:
        """Run a no-op in the reactor thread and wait: the reactor runs, and every call
        queued before this one (crochet's own set-up) has happened."""
        ran = threading.Event()
        where: list[threading.Thread] = []

        def here() -> None:
            where.append(threading.current_thread())
            ran.set()

        reactor.callFromThread(here)
        if not ran.wait(_BARRIER_TIMEOUT):
            raise EngineError(
                f"the reactor thread did not answer within {_BARRIER_TIMEOUT:g} s: "
                "restart the kernel"
            )
        thread = where[0]
        assert thread.ident is not None
        return Started(reactor, thread.ident, thread.name)
