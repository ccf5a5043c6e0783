"""Checks for notebook 09 (many Deferreds, cancellation and timeouts).

- :func:`check_list_results` -- predict what ``DeferredList``, ``fireOnOneCallback`` and
  ``gatherResults`` fire with when three downloads finish out of order (:func:`fire_three`).
- :func:`check_fetch_all` -- ``fetch_all(fetch, names)``: every download at once, a dict of
  poems, a missing poem as ``None``, any other failure failing the whole.
- :func:`check_deadline` -- ``fetch_with_deadline(fetch, name, seconds, clock)``: the poem,
  or ``'(too slow)'`` once the deadline passes, with the download cancelled.

Every check fires real Deferreds by hand or with a ``task.Clock``: no reactor, no sockets.
The notebook shows the source of :func:`fire_three`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.python.failure import Failure

from poetrylab.exercises._deferreds import Outcome, expect_deferred, outcome_of
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet, exercise, function, value

__all__ = [
    "MEMBERS",
    "SlowFetch",
    "check_deadline",
    "check_fetch_all",
    "check_list_results",
    "fire_three",
]

MEMBERS = ["tyger", "nightingale", "hope"]
"""The three downloads of :func:`fire_three`, in the order of the list."""


def fire_three(members: list[Deferred[str]]) -> None:
    """Fire three downloads out of order: the missing one fails first, then hope, then tyger."""
    tyger, nightingale, hope = members
    nightingale.errback(KeyError("nightingale"))
    hope.callback("Hope")
    tyger.callback("Tyger")


def _three_runs() -> dict[str, Outcome]:
    """Each of the three ways to wait, on its own three fresh members, fired by fire_three."""
    makers: dict[str, Callable[[list[Deferred[str]]], Deferred[Any]]] = {
        "DeferredList": lambda ms: DeferredList(ms, consumeErrors=True),
        "fireOnOneCallback": lambda ms: DeferredList(
            ms, fireOnOneCallback=True, consumeErrors=True
        ),
        "gatherResults": lambda ms: gatherResults(ms, consumeErrors=True),
    }
    runs: dict[str, Outcome] = {}
    for key, make in makers.items():
        members: list[Deferred[str]] = [Deferred(), Deferred(), Deferred()]
        waiting = make(members)
        fire_three(members)
        runs[key] = outcome_of(waiting)
    return runs


_EXCEPTION_NAME = re.compile(r"^\s*(?:Failure\(\s*)?(?:\w+\.)*(\w*(?:Error|Exception))\s*\)?\s*$")


def _plain(thing: object) -> object:
    """An answer or a result in one comparable form: sequences as tuples, and a failure
    (an exception class or instance, a Failure, or a name such as ``"KeyError"``,
    ``"defer.FirstError"``, ``"Failure(KeyError)"``) as its exception's name."""
    if isinstance(thing, Failure):  # before BaseException: a Failure is one in Twisted 26
        return thing.type.__name__ if thing.type else "?"
    if isinstance(thing, type) and issubclass(thing, BaseException):
        return thing.__name__
    if isinstance(thing, BaseException):
        return type(thing).__name__
    if isinstance(thing, str) and (match := _EXCEPTION_NAME.match(thing)):
        return match.group(1)
    if isinstance(thing, list | tuple):
        return tuple(_plain(item) for item in thing)
    return thing


_FIRED = (1, 2, 0)
"""The order in which :func:`fire_three` fires the members."""


def _judge_list(guess: object, truth: tuple[Any, ...]) -> NotYet:
    if not isinstance(guess, tuple) or len(guess) != len(truth):
        return NotYet(
            "not quite for DeferredList",
            expected=f"a list of {len(truth)} (success, result) pairs, one per member",
            got=short(guess),
            hint="DeferredList fires with one pair per member, whatever happened to it",
        )
    if sorted(map(repr, guess)) == sorted(map(repr, truth)):
        as_fired = guess == tuple(truth[i] for i in _FIRED)
        return NotYet(
            "not quite for DeferredList: the right pairs, in another order",
            expected=f"the pairs in the order of the list: {', '.join(MEMBERS)}",
            got="the pairs in the order the members fired" if as_fired else "another order",
            hint="results come in the order of the list, not the order they fired",
        )
    i = next(i for i, (g, t) in enumerate(zip(guess, truth, strict=True)) if g != t)
    return NotYet(
        "not quite for DeferredList",
        expected=f"pair {i} tells how member {i} ({MEMBERS[i]}) ended, as (success, result)",
        got=f"pair {i} is {short(guess[i])}",
        hint="a member that succeeded gives (True, its result); one that failed gives "
        '(False, its failure), written here as its exception\'s name: (False, "KeyError")',
    )


def _judge_first(guess: object, truth: tuple[Any, ...]) -> NotYet:
    if not isinstance(guess, tuple) or len(guess) != 2:
        return NotYet(
            "not quite for fireOnOneCallback",
            expected="a pair (result, index)",
            got=short(guess),
            hint="with fireOnOneCallback=True, DeferredList fires with one pair",
        )
    result, index = guess
    if isinstance(index, int) and 0 <= index < len(MEMBERS) and index != truth[1]:
        said = f"member {index} ({MEMBERS[index]})"
        reason = "failed" if index == 1 else "was not the first to succeed"
        return NotYet(
            "not quite for fireOnOneCallback",
            expected="the result and index of the first member to succeed",
            got=f"{short(guess)}: {said} {reason}",
            hint="it fires with (result, index) of the first member to *succeed*: a failure "
            "does not count, and the members fire in fire_three's order",
        )
    return NotYet(
        "not quite for fireOnOneCallback",
        expected=f"the index, then the result member {truth[1]} fired with",
        got=short(guess),
        hint="the pair is (result, index): the result first",
    )


def _judge_gather(guess: object, truth: object) -> NotYet:
    if isinstance(guess, tuple):
        return NotYet(
            "not quite for gatherResults",
            expected="the name of the exception it fails with",
            got=f"a list of results, {short(guess)}: it does not succeed here",
            hint="one failed member fails the whole: gatherResults then fails with an "
            "exception that wraps the member's failure and says which member it was",
        )
    if guess == "KeyError":
        return NotYet(
            "not quite for gatherResults",
            expected="the exception gatherResults itself fails with",
            got="KeyError: that is the member's exception, which gatherResults wraps",
            hint="the wrapper says which member failed (its index) and holds its Failure: "
            "look for it in twisted.internet.defer",
        )
    return NotYet(
        "not quite for gatherResults",
        expected="the name of the exception it fails with",
        got=short(guess),
        hint="one failed member fails the whole: it fails with the exception that wraps "
        "the member's failure",
    )


_KEYS = ["DeferredList", "fireOnOneCallback", "gatherResults"]


@exercise(
    "09",
    value("prediction", dict, '{"DeferredList": [...], "fireOnOneCallback": (...), '
          '"gatherResults": ...}'),
    title="what does it fire with?",
)  # fmt: skip
def check_list_results(prediction: dict[Any, Any]) -> str:
    """Compare predictions for the three ways of waiting with what really fires."""
    if set(prediction) != set(_KEYS):
        raise NotYet(
            "the prediction could not be read",
            expected='a dict with the keys "DeferredList", "fireOnOneCallback", "gatherResults"',
            got="the keys " + ", ".join(repr(key) for key in prediction)
            if prediction
            else "an empty dict",
            hint="keep the starter's three keys and change only the values",
        )
    runs = _three_runs()
    truths = {key: _plain(run.result) for key, run in runs.items()}
    judges: dict[str, Callable[[Any, Any], NotYet]] = {
        "DeferredList": _judge_list,
        "fireOnOneCallback": _judge_first,
        "gatherResults": _judge_gather,
    }
    misses = [
        judges[key](_plain(prediction[key]), truths[key])
        for key in _KEYS
        if _plain(prediction[key]) != truths[key]
    ]
    if not misses:
        return "all three right: order, first success, and the wrapped failure."
    first = misses[0]
    first.message = f"{3 - len(misses)} of 3 right; {first.message}"
    raise first


class SlowFetch:
    """A fake download function: ``fetch(name)`` returns a Deferred that records cancellation.

    ``deliver(name)`` fires it with the poem (or ``error``); ``settle()`` handles whatever
    Failure is left in any of them, so nothing is logged as unhandled later.
    """

    POEMS = {"tyger": "Tyger Tyger, burning bright", "hope": "Hope is the thing with feathers"}

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.waiting: dict[str, Deferred[str]] = {}
        self._all: list[Deferred[str]] = []

    def __call__(self, name: str) -> Deferred[str]:
        self.calls.append(name)
        d: Deferred[str] = Deferred(lambda _: self.cancelled.append(name))
        self.waiting[name] = d
        self._all.append(d)
        return d

    def deliver(self, name: str, error: Exception | None = None) -> None:
        """Fire ``name``'s download, unless it was cancelled (a late result is dropped, as
        a protocol would drop it)."""
        d = self.waiting[name]
        if d.called:
            return
        if error is not None:
            d.errback(error)
        elif name in self.POEMS:
            d.callback(self.POEMS[name])
        else:
            d.errback(KeyError(name))

    def settle(self) -> None:
        for d in self._all:
            d.addErrback(lambda _: None)


def _deferred_from(what: str, fn: Callable[..., object], *args: object) -> Deferred[Any]:
    """Call the learner's ``fn``: its Deferred (a coroutine is run as one), or NotYet."""
    result = call_learner(what, fn, *args)
    if inspect.iscoroutine(result):
        result = Deferred.fromCoroutine(result)
    return expect_deferred(
        result,
        f"{what} did not return a Deferred",
        expected="a Deferred",
        hint="return the Deferred you built (or write async def)",
    )


@exercise("09", function("fetch_all(fetch, names)"), title="fetch them all")
def check_fetch_all(fetch_all: Callable[..., object]) -> str:
    """``fetch_all(fetch, names)`` fires with ``{name: poem or None}``; other errors fail it."""
    fetch = SlowFetch()
    try:
        d = _deferred_from("fetch_all(fetch, names)", fetch_all, fetch, list(MEMBERS))
        if sorted(fetch.calls) != sorted(MEMBERS):
            raise NotYet(
                "not every download had started when fetch_all returned",
                expected="fetch called for tyger, nightingale and hope, at once",
                got="fetch called for " + (", ".join(fetch.calls) or "nothing at all"),
                hint="call fetch for every name first; gatherResults then waits for them all",
            )
        fetch.deliver("hope")
        fetch.deliver("nightingale")
        if d.called:
            outcome = outcome_of(d)
            raise NotYet(
                "fetch_all fired before tyger had arrived",
                expected="it waits for tyger; the missing nightingale is just None",
                got=f"it fired with {outcome}",
                hint="the missing poem failed the whole gather: give each download its own "
                "errback that traps KeyError and returns None, before gathering"
                if outcome.kind == "failure"
                else "wait for every member: gatherResults, not fireOnOneCallback",
            )
        fetch.deliver("tyger")
        outcome = outcome_of(d)
        want = {"tyger": SlowFetch.POEMS["tyger"], "nightingale": None}
        want["hope"] = SlowFetch.POEMS["hope"]
        if not outcome.is_value(want):
            raise NotYet(
                "a missing poem and two poems: the wrong outcome",
                expected=repr(want),
                got=str(outcome),
                hint="give each download its own errback that traps KeyError and returns None, "
                "before gathering"
                if outcome.failed_with(KeyError) or "KeyError" in str(outcome)
                else "turn the list of poems into a dict: dict(zip(names, poems))",
            )
    finally:
        fetch.settle()

    fetch = SlowFetch()
    try:
        d = _deferred_from(
            "fetch_all(fetch, ['tyger', 'hope'])", fetch_all, fetch, ["tyger", "hope"]
        )
        fetch.deliver("hope", ValueError("garbled"))
        fetch.deliver("tyger")
        outcome = outcome_of(d)
        if outcome.kind != "failure":
            raise NotYet(
                "a garbled download (ValueError) was hidden",
                expected="the whole Deferred fails (FirstError or ValueError)",
                got=f"it fired with {outcome}",
                hint="trap KeyError only: any other failure should fail the gathered Deferred",
            )
    finally:
        fetch.settle()
    return "all at once, a missing poem as None, real errors still fail it."


_DEADLINE_CASES: list[tuple[str, float | None, str]] = [
    ("tyger", 1.0, "arrives after 1 s"),
    ("hope", None, "never arrives"),
    ("nightingale", 1.0, "is missing (KeyError after 1 s)"),
]


def _deadline_hint(poem: str, outcome: Outcome) -> str:
    if outcome.failed_with(defer.TimeoutError):
        if poem == "nightingale":
            return "trap the timeout only: a KeyError must go on as it is"
        return (
            "addTimeout fails with twisted.internet.defer.TimeoutError, not Python's built-in "
            "TimeoutError: trap defer.TimeoutError"
        )
    if outcome.failed_with(defer.CancelledError):
        return (
            "cancel() fails the Deferred with CancelledError; addTimeout turns that into "
            "defer.TimeoutError, which an errback can trap"
        )
    if outcome.kind == "unfired":
        return "d.addTimeout(seconds, clock) cancels d when the time is up"
    if poem == "nightingale":
        return "trap the timeout only: a KeyError must go on as it is"
    return "on timeout, recover with an errback that returns '(too slow)'"


@exercise("09", function("fetch_with_deadline(fetch, name, seconds, clock)"), title="a deadline")
def check_deadline(fetch_with_deadline: Callable[..., object]) -> str:
    """``fetch_with_deadline(fetch, name, seconds, clock)``: poem, '(too slow)', or the error."""
    for poem, at, story in _DEADLINE_CASES:
        clock = task.Clock()
        fetch = SlowFetch()
        try:
            call = f"fetch_with_deadline(fetch, {poem!r}, 2, clock)"
            d = _deferred_from(call, fetch_with_deadline, fetch, poem, 2, clock)
            if at is not None:
                clock.advance(at)
                fetch.deliver(poem)
            call_learner(
                f"when the poem {story}, the timer that went off later",
                clock.advance, 5,  # well past the deadline
                hint="addTimeout stops its timer when the Deferred fires in time",
            )  # fmt: skip
            outcome = outcome_of(d)
            if poem == "nightingale":
                right = outcome.failed_with(KeyError)
                expected = "Failure(KeyError: 'nightingale')"
            else:
                want = SlowFetch.POEMS["tyger"] if poem == "tyger" else "(too slow)"
                right, expected = outcome.is_value(want), repr(want)
            if not right:
                raise NotYet(
                    f"when the poem {story}: the wrong outcome",
                    expected=expected,
                    got=str(outcome),
                    hint=_deadline_hint(poem, outcome),
                )
            if poem == "hope" and fetch.cancelled != ["hope"]:
                raise NotYet(
                    "the slow download was not cancelled at the deadline",
                    expected="the download's Deferred cancelled (so its connection is closed)",
                    got="it was left running",
                    hint="addTimeout calls cancel() on the Deferred: use it on fetch's Deferred",
                )
        finally:
            fetch.settle()
    return "in time: the poem; too slow: cancelled and '(too slow)'; errors pass."
