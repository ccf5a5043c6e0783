"""One pending result, many waiters: how concurrent callers share a single fetch or connect.

The caching proxy (notebook 07) shares one upstream fetch between every client that
missed the cache at the same time; the XML-RPC gateway (notebook 13) shares one
connection attempt between concurrent first calls. Both need the same thing: each caller
gets its own Deferred (so cancelling one caller does not disturb the others), and the
work itself is cancelled when the last caller gives up.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["SharedOutcome"]

T = TypeVar("T")


class SharedOutcome(Generic[T]):
    """Hand out Deferreds that all fire with the outcome of one ``work`` Deferred.

    :meth:`wait` returns a new Deferred per caller. When ``work`` fires, every waiter
    fires with its result (or its Failure). Cancelling a waiter removes only that waiter;
    when the last waiter is cancelled before ``work`` has fired, ``work`` itself is
    cancelled. A Failure nobody waits for is consumed here, not left unhandled.

    Not thread-safe: use it in the reactor thread.
    """

    def __init__(self, work: Deferred[T]) -> None:
        self._work = work
        self._waiters: list[Deferred[T]] = []
        self._outcome: T | Failure | None = None
        self._done = False
        work.addBoth(self._finished)

    @property
    def waiting(self) -> int:
        """How many callers are still waiting."""
        return len(self._waiters)

    @property
    def done(self) -> bool:
        """True once the shared work has fired."""
        return self._done

    def cancel(self) -> None:
        """Cancel the shared work (every waiter then fails with its outcome)."""
        if not self._done:
            self._work.cancel()

    def wait(self) -> Deferred[T]:
        """Return a new Deferred that fires with the shared outcome."""
        if self._done:
            done: Deferred[T] = Deferred()
            if isinstance(self._outcome, Failure):
                done.errback(self._outcome)
            else:
                done.callback(self._outcome)  # type: ignore[arg-type]
            return done
        waiter: Deferred[T] = Deferred(self._waiter_cancelled)
        self._waiters.append(waiter)
        return waiter

    def _waiter_cancelled(self, waiter: Deferred[Any]) -> None:
        # Deferred.cancel errbacks ``waiter`` with CancelledError once this returns.
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if not self._waiters and not self._done:
            self._work.cancel()

    def _finished(self, outcome: T | Failure) -> None:
        self._done = True
        self._outcome = outcome
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)
        return None
