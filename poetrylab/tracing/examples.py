"""Canonical Deferred flows, each run on real Deferreds under a tracer (notebooks 04-09).

Every function here builds a small, classic situation -- a callback that raises and an
errback that recovers, an inner Deferred that pauses the chain, a DeferredList, a race,
cancellation, a timeout on a ``task.Clock``, an ``inlineCallbacks`` generator, a coroutine
whose ``await`` fails -- and returns its :class:`~poetrylab.tracing.model.Trace`. They are
the gallery the tests, the benchmark and the docs draw; the notebooks write the same code
in their cells. No reactor is needed: Deferreds are fired by hand or by a ``Clock``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import CancelledError, Deferred, DeferredList, gatherResults, race
from twisted.python.failure import Failure

from .capture import Tracer
from .views import Trace

__all__ = ["EXAMPLES", "example"]


def double(x: int) -> int:
    """A callback: twice its input."""
    return x * 2


def too_big(x: int) -> int:
    """A callback that raises ValueError when its input is over 5."""
    if x > 5:
        raise ValueError(f"{x} is too big")
    return x


def recover(failure: Failure) -> str:
    """An errback that recovers from any failure."""
    return "recovered"


def only_key_errors(failure: Failure) -> str:
    """An errback that traps KeyError; any other Failure passes on."""
    failure.trap(KeyError)
    return "no such key"


def ignore(failure: Failure) -> None:
    """An errback that swallows the Failure (the chain goes on with None)."""
    return None


def straight() -> Trace:
    """Success straight down the callbacks."""
    with Tracer() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addCallback(too_big)
        d.addErrback(recover)
        d.callback(2)
    return t.snapshot()


def raise_and_recover() -> Trace:
    """A callback raises; the next errback recovers; the callbacks go on."""
    with Tracer() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addCallback(too_big)
        d.addErrback(recover)
        d.addCallback(str.upper)
        d.callback(3)
    return t.snapshot()


def trap_passes() -> Trace:
    """``trap`` does not match: the Failure passes on to the next errback."""
    with Tracer() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(too_big)
        d.addErrback(only_key_errors)
        d.addErrback(recover)
        d.callback(7)
    return t.snapshot()


def inner_deferred() -> Trace:
    """A callback returns an unfired Deferred: the outer chain pauses, then resumes."""
    with Tracer() as t:
        inner: Deferred[int] = Deferred()
        outer: Deferred[Any] = Deferred()

        def fetch(x: int) -> Deferred[int]:
            return inner

        outer.addCallback(fetch)
        outer.addCallback(double)
        inner.addCallback(too_big)
        inner.addErrback(recover)
        outer.callback(1)
        inner.callback(9)
    return t.snapshot()


def deferred_list() -> Trace:
    """A DeferredList with consumeErrors: one member succeeds, one fails."""
    with Tracer() as t:
        first: Deferred[int] = Deferred()
        second: Deferred[int] = Deferred()
        first.addCallback(double)
        second.addCallback(too_big)
        both = DeferredList([first, second], consumeErrors=True)
        both.addCallback(lambda results: [ok for ok, _ in results])
        first.callback(2)
        second.callback(8)
    return t.snapshot()


def gather_one_failure() -> Trace:
    """gatherResults: the first failure fails the whole gather."""
    with Tracer() as t:
        a: Deferred[int] = Deferred()
        b: Deferred[int] = Deferred()
        gathered = gatherResults([a, b], consumeErrors=True)
        gathered.addErrback(recover)
        a.callback(1)
        b.errback(ValueError("b broke"))
    return t.snapshot()


def race_first() -> Trace:
    """race(): the first success wins, and the race cancels the others."""
    with Tracer() as t:
        members: list[Deferred[str]] = [Deferred(lambda d: None) for _ in range(3)]
        first = race(members)
        first.addCallback(lambda won: won[1])
        members[1].callback("quick")
    return t.snapshot()


def cancelled(failure: Failure) -> str:
    """An errback that recovers from a cancel (CancelledError) and nothing else."""
    failure.trap(CancelledError)
    return "cancelled"


def cancel_waiting_outer() -> Trace:
    """cancel() on an outer Deferred waiting on an inner one goes up to the inner."""
    with Tracer() as t:
        stopped: list[Deferred[int]] = []
        inner: Deferred[int] = Deferred(stopped.append)
        outer: Deferred[Any] = Deferred()
        outer.addCallback(lambda _: inner)
        outer.addErrback(cancelled)
        outer.callback(None)
        outer.cancel()
    return t.snapshot()


def timeout_on_clock() -> Trace:
    """addTimeout on a task.Clock: nothing fires it in time, so it times out."""
    clock = task.Clock()
    with Tracer() as t:
        d: Deferred[Any] = Deferred()
        d.addTimeout(5, clock)
        d.addErrback(recover)
        clock.advance(5)
    return t.snapshot()


def inline_callbacks() -> Trace:
    """An inlineCallbacks generator waits on two Deferreds, fired later."""
    waiting: list[Deferred[int]] = []

    def later() -> Deferred[int]:
        d: Deferred[int] = Deferred()
        waiting.append(d)
        return d

    @defer.inlineCallbacks
    def add_two():  # type: ignore[no-untyped-def]
        x = yield later()
        y = yield later()
        return x + y

    with Tracer() as t:
        result = add_two()
        result.addCallback(double)
        waiting[0].callback(1)
        waiting[1].callback(2)
    return t.snapshot()


def coroutine_failing_await() -> Trace:
    """A coroutine whose second ``await`` fails; it catches nothing, so it raises."""
    waiting: list[Deferred[int]] = []

    def later() -> Deferred[int]:
        d: Deferred[int] = Deferred()
        waiting.append(d)
        return d

    async def fetch_two() -> int:
        x = await later()
        y = await later()
        return x + y

    with Tracer() as t:
        result = Deferred.fromCoroutine(fetch_two())
        result.addErrback(recover)
        waiting[0].callback(1)
        waiting[1].errback(ConnectionError("server went away"))
    return t.snapshot()


EXAMPLES: dict[str, Callable[[], Trace]] = {
    "straight": straight,
    "raise_and_recover": raise_and_recover,
    "trap_passes": trap_passes,
    "inner_deferred": inner_deferred,
    "deferred_list": deferred_list,
    "gather_one_failure": gather_one_failure,
    "race_first": race_first,
    "cancel_waiting_outer": cancel_waiting_outer,
    "timeout_on_clock": timeout_on_clock,
    "inline_callbacks": inline_callbacks,
    "coroutine_failing_await": coroutine_failing_await,
}


def example(name: str) -> Trace:
    """Run the example ``name`` (a key of :data:`EXAMPLES`) and return its trace.

    Raises KeyError, listing the names, for an unknown one.
    """
    if name not in EXAMPLES:
        raise KeyError(f"no example {name!r}; choose from {', '.join(EXAMPLES)}")
    return EXAMPLES[name]()
