"""Checks for notebook 08 (``inlineCallbacks``, generators, ``async def``/``await``).

- :func:`check_run_order` -- predict the order of :func:`run_order_demo`'s log: how far an
  ``inlineCallbacks`` generator runs before its caller gets its Deferred back.
- :func:`check_shout_poem` -- rewrite a callback chain as an ``async def`` with
  ``try``/``except``; run on Deferreds the check fires itself.
- :func:`check_fetch_both` -- an ``async def`` that downloads two poems at the same time.

The checks need no reactor: the fake ``fetch`` they pass returns Deferreds that the check
fires by hand, in an order of its choosing. The notebook writes :func:`run_order_demo`
in a cell, for the learner to read; the check judges against this copy, and
tests/test_exercise_demos.py checks that both log the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator

from twisted.internet.defer import Deferred, inlineCallbacks, succeed

from poetrylab.exercises._deferreds import HandFetch, Outcome, outcome_of
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._predictions import judge_order
from poetrylab.exercises._registry import NotYet, async_function, exercise, value

__all__ = ["FakeFetch", "check_fetch_both", "check_run_order", "check_shout_poem", "run_order_demo"]


def run_order_demo() -> list[str]:
    """The code of the first exercise: who logs what, and when?"""
    log: list[str] = []
    later: Deferred[int] = Deferred()

    @inlineCallbacks
    def worker() -> Generator[Deferred[int], int, int]:
        log.append("W1")  # W1: the generator starts
        x = yield succeed(1)
        log.append("W2")  # W2: after yielding a Deferred that has fired
        y = yield later
        log.append("W3")  # W3: after yielding later
        return x + y

    log.append("M1")  # M1: before calling worker()
    worker()
    log.append("M2")  # M2: worker() has returned its Deferred
    later.callback(2)
    log.append("M3")  # M3: after later.callback(2)
    return log


def _order_hint(predicted: list[str]) -> str:
    position = {label: i for i, label in enumerate(predicted)}
    if position["W1"] > position["M2"]:
        return "calling worker() starts the generator at once: it does not wait to be scheduled"
    if position["W2"] > position["M2"]:
        return "yielding a Deferred that has already fired does not pause the generator"
    return "the generator resumes inside later.callback(2), before that call returns"


@exercise(
    "08", value("prediction", (str, list, tuple), '"M1 M2 M3 W1 W2 W3"'),
    title="how far does it run?",
)  # fmt: skip
def check_run_order(prediction: object) -> str:
    """Compare a predicted order (``"M1 W1 ..."``) with :func:`run_order_demo`'s log."""
    return judge_order(
        prediction,
        run_order_demo(),
        success="it runs at once, up to the first Deferred that has not fired.",
        hint=_order_hint,
    )


FakeFetch = HandFetch
"""The checks' download function: Deferreds the check fires by hand, in its own order."""


def _start(what: str, fn: Callable[..., object], *args: object) -> Deferred[object]:
    """Call the learner's ``async def`` and drive its coroutine with a Deferred."""
    coroutine = call_learner(what, fn, *args)
    if not inspect.iscoroutine(coroutine):
        raise NotYet(
            f"{what} did not give a coroutine",
            expected="a coroutine, from calling an async def function",
            got=short(coroutine),
            hint="write async def, and return the result: do not return a Deferred yourself",
        )
    return call_learner(what, Deferred.fromCoroutine, coroutine)


_SHOUT_CASES: list[tuple[str, Exception | None]] = [
    ("tyger", None),
    ("nightingale", None),
    ("hope", ValueError("the download was garbled")),
]


@exercise("08", async_function("shout_poem(fetch, name)"), title="from a chain to async def")
def check_shout_poem(shout_poem: Callable[..., object]) -> str:
    """``async def shout_poem(fetch, name)``: the poem upper-cased, or '(no such poem)'."""
    for poem, error in _SHOUT_CASES:
        fetch = FakeFetch()
        call = f"shout_poem(fetch, {poem!r})"
        d = _start(call, shout_poem, fetch, poem)
        if d.called:
            raise NotYet(
                f"{call} finished before its download arrived",
                expected="it waits for the Deferred that fetch(name) returns",
                got=f"it ended with {outcome_of(d)}",
                hint="await fetch(name): the Deferred has no result yet when fetch returns",
            )
        fetch.deliver(poem, error)
        _judge_shout(call, poem, error, outcome_of(d))
    return "the same logic as the chain, top to bottom, with try/except."


def _judge_shout(call: str, poem: str, error: Exception | None, outcome: Outcome) -> None:
    if error is not None:
        if not outcome.failed_with(ValueError):
            raise NotYet(
                f"{call}, whose download failed with ValueError: wrong outcome",
                expected="the ValueError goes on: a Failure(ValueError) comes out",
                got=str(outcome),
                hint="catch KeyError only: except KeyError, not a bare except",
            )
        return
    want = "(no such poem)" if poem == "nightingale" else FakeFetch.POEMS[poem].upper()
    if not outcome.is_value(want):
        raise NotYet(
            f"{call}: wrong outcome",
            expected=repr(want),
            got=str(outcome),
            hint="wrap the await in try/except KeyError and return '(no such poem)' there"
            if poem == "nightingale"
            else "return the poem upper-cased: poem.upper()",
        )


@exercise("08", async_function("fetch_both(fetch, first, second)"), title="two at once")
def check_fetch_both(fetch_both: Callable[..., object]) -> str:
    """``async def fetch_both(fetch, first, second)``: both downloads at once, results in order."""
    fetch = FakeFetch()
    d = _start("fetch_both(fetch, 'tyger', 'hope')", fetch_both, fetch, "tyger", "hope")
    if sorted(fetch.calls) != ["hope", "tyger"]:
        started = ", ".join(fetch.calls) or "nothing"
        raise NotYet(
            "the second download had not started while the first was still running",
            expected="fetch('tyger') and fetch('hope') both called before the first await",
            got=f"started so far: {started}",
            hint="call fetch twice first, keep both Deferreds, then await each one",
        )
    fetch.deliver("hope")  # the second server answers first
    if d.called:
        raise NotYet(
            "fetch_both finished before the first poem arrived",
            expected="it waits for both downloads",
            got=f"it ended with {outcome_of(d)} while tyger was still on its way",
            hint="await both Deferreds before you return",
        )
    fetch.deliver("tyger")
    outcome = outcome_of(d)
    want = [FakeFetch.POEMS["tyger"], FakeFetch.POEMS["hope"]]
    if not outcome.is_value(want):
        raise NotYet(
            "the poems did not come back in order",
            expected=repr(want),
            got=str(outcome),
            hint="return the two results as a list, first then second, whichever came first",
        )
    return "both downloads ran at the same time; the results came back in order."
