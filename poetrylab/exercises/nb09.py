"""Checks for notebook 09 (many Deferreds, cancellation and timeouts).

- :func:`check_fetch_all` -- ``fetch_all(fetch, names)``: every download at once, a dict of
  poems, a missing poem as ``None``, any other failure failing the whole.
- :func:`check_deadline` -- ``fetch_with_deadline(fetch, name, seconds, clock)``: the poem,
  or ``'(too slow)'`` once the deadline passes, with the download cancelled.

Every check fires real Deferreds by hand or with a ``task.Clock``: no reactor, no sockets.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer, task

from poetrylab.exercises._deferreds import HandFetch, Outcome, deferred_from, outcome_of
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet, exercise, function

__all__ = [
    "MEMBERS",
    "SlowFetch",
    "check_deadline",
    "check_fetch_all",
]

MEMBERS = ["tyger", "nightingale", "hope"]
"""The three downloads :func:`check_fetch_all` asks for, in the order of the list."""


SlowFetch = HandFetch
"""The checks' download function: Deferreds fired by hand, that record being cancelled."""


@exercise("09", function("fetch_all(fetch, names)"), title="fetch them all")
def check_fetch_all(fetch_all: Callable[..., object]) -> str:
    """``fetch_all(fetch, names)`` fires with ``{name: poem or None}``; other errors fail it."""
    fetch = SlowFetch()
    try:
        d = deferred_from("fetch_all(fetch, names)", fetch_all, fetch, list(MEMBERS))
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
        d = deferred_from(
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
            d = deferred_from(call, fetch_with_deadline, fetch, poem, 2, clock)
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
