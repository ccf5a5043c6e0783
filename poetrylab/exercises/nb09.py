"""Checks for notebook 09 (many Deferreds, cancellation and timeouts).

- :func:`check_list_results` -- predict what ``DeferredList``, ``fireOnOneCallback`` and
  ``gatherResults`` fire with when three downloads finish out of order (:func:`fire_three`).
- :func:`check_fetch_all` -- ``fetch_all(fetch, names)``: every download at once, a dict of
  poems, a missing poem as ``None``, any other failure failing the whole.
- :func:`check_deadline` -- ``fetch_with_deadline(fetch, name, seconds, clock)``: the poem,
  or ``'(too slow)'`` once the deadline passes, with the download cancelled.

Every check fires real Deferreds by hand or with a ``task.Clock``: no reactor, no sockets.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred, DeferredList, FirstError, gatherResults
from twisted.python.failure import Failure

from poetrylab.exercises import Feedback, exercise, failed, passed, run_learner_code

__all__ = [
    "SlowFetch",
    "check_deadline",
    "check_fetch_all",
    "check_list_results",
    "fire_three",
    "outcome_of",
]


def fire_three(members: list[Deferred[str]]) -> None:
    """Fire three downloads out of order: the missing one fails first, then hope, then tyger."""
    tyger, nightingale, hope = members
    nightingale.errback(KeyError("nightingale"))
    hope.callback("Hope")
    tyger.callback("Tyger")


def outcome_of(d: Deferred[Any]) -> tuple[str, Any]:
    """``("value", v)``, ``("failure", Failure)`` or ``("unfired", None)``; handles a Failure."""
    box: list[tuple[str, Any]] = []
    d.addBoth(lambda r: box.append(("failure" if isinstance(r, Failure) else "value", r)))
    return box[0] if box else ("unfired", None)


def _three_runs() -> dict[str, tuple[str, Any]]:
    """Each of the three ways to wait, on its own three fresh members, fired by fire_three."""
    runs: dict[str, tuple[str, Any]] = {}
    makers: dict[str, Callable[[list[Deferred[str]]], Deferred[Any]]] = {
        "DeferredList": lambda ms: DeferredList(ms, consumeErrors=True),
        "fireOnOneCallback": lambda ms: DeferredList(
            ms, fireOnOneCallback=True, consumeErrors=True
        ),
        "gatherResults": lambda ms: gatherResults(ms, consumeErrors=True),
    }
    for key, make in makers.items():
        members: list[Deferred[str]] = [Deferred(), Deferred(), Deferred()]
        waiting = make(members)
        fire_three(members)
        runs[key] = outcome_of(waiting)
    return runs


def _plain(value: Any) -> Any:
    """A result with each Failure replaced by its exception's name, to compare with answers."""
    if isinstance(value, Failure):
        return value.type.__name__
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _answer(value: Any) -> Any:
    """The learner's answer with exception classes written as their names."""
    if isinstance(value, type) and issubclass(value, BaseException):
        return value.__name__
    if isinstance(value, list | tuple):
        return type(value)(_answer(v) for v in value)
    return value


@exercise("09")
def check_list_results(prediction: dict[str, Any]) -> Feedback:
    """Compare predictions for the three ways of waiting with what really fires."""
    name = "what does it fire with?"
    keys = ["DeferredList", "fireOnOneCallback", "gatherResults"]
    if not isinstance(prediction, dict) or set(prediction) != set(keys):
        return failed(
            name,
            "the prediction could not be read",
            expected='a dict with the keys "DeferredList", "fireOnOneCallback", "gatherResults"',
            got=repr(prediction),
        )
    runs = _three_runs()
    hints = {
        "DeferredList": "results come in the order of the list, not the order they fired",
        "fireOnOneCallback": (
            "it fires with (result, index) of the first member to *succeed*: a failure "
            "does not count"
        ),
        "gatherResults": (
            "one failure fails the whole: it errbacks with FirstError (write its name)"
        ),
    }
    right = 0
    first_miss = None
    for key in keys:
        kind, value = runs[key]
        truth = _plain(value) if kind == "value" else value.type.__name__
        guess = _answer(prediction[key])
        if isinstance(guess, list) and isinstance(truth, tuple):
            guess = tuple(guess)
        if guess == truth:
            right += 1
        elif first_miss is None:
            first_miss = (key, truth, guess)
    if first_miss is None:
        return passed(name, "all three right: order, first success, and FirstError.")
    key, truth, guess = first_miss
    return failed(
        name,
        f"{right} of 3 right; not quite for {key}",
        expected=repr(truth),
        got=repr(guess),
        hint=hints[key],
    )


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
        d = self.waiting[name]
        if d.called:  # cancelled already: the late result is dropped, as a protocol would
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


def _as_deferred(result: Any) -> Any:
    if inspect.iscoroutine(result):
        return Deferred.fromCoroutine(result)
    return result


def _show(kind: str, value: Any) -> str:
    if kind == "failure":
        inner = value.value
        if isinstance(inner, FirstError):
            sub = inner.subFailure
            return f"Failure(FirstError: member {inner.index} failed with {sub.type.__name__})"
        return f"Failure({value.type.__name__})"
    if kind == "unfired":
        return "nothing yet: it has not fired"
    return repr(value)


@exercise("09")
def check_fetch_all(fetch_all: Callable[..., Any]) -> Feedback:
    """``fetch_all(fetch, names)`` fires with ``{name: poem or None}``; other errors fail it."""
    name = "fetch them all"
    fetch = SlowFetch()
    names = ["tyger", "nightingale", "hope"]
    try:
        ok, d = run_learner_code(fetch_all, fetch, names)
        if ok:
            d = _as_deferred(d)
        if not ok or not isinstance(d, Deferred):
            return failed(
                name,
                "fetch_all(fetch, names) did not return a Deferred",
                got=d if not ok else type(d).__name__,
                hint="return the Deferred from gatherResults (with a callback that makes the dict)",
            )
        if fetch.calls != names:
            return failed(
                name,
                "not every download had started when fetch_all returned",
                expected="fetch called for tyger, nightingale and hope, at once",
                got=", ".join(fetch.calls) or "no fetch at all",
                hint="call fetch for every name first; gatherResults then waits for them all",
            )
        fetch.deliver("hope")
        fetch.deliver("nightingale")
        if d.called:
            kind, value = outcome_of(d)
            return failed(
                name,
                "fetch_all fired before tyger had arrived",
                expected="it waits for tyger; the missing nightingale is just None",
                got=_show(kind, value),
                hint=(
                    "the missing poem failed the whole gather: give each download its own "
                    "errback that traps KeyError and returns None, before gathering"
                    if kind == "failure"
                    else "wait for every member: gatherResults, not fireOnOneCallback"
                ),
            )
        fetch.deliver("tyger")
        kind, value = outcome_of(d)
        want = {"tyger": SlowFetch.POEMS["tyger"], "nightingale": None}
        want["hope"] = SlowFetch.POEMS["hope"]
        if (kind, value) != ("value", want):
            missing = kind == "failure" and "KeyError" in _show(kind, value)
            return failed(
                name,
                "a missing poem and two poems: the wrong outcome",
                expected=repr(want),
                got=_show(kind, value),
                hint=(
                    "give each download its own errback that traps KeyError and returns None, "
                    "before gathering"
                    if missing
                    else "turn the list of poems into a dict: dict(zip(names, poems))"
                ),
            )
    finally:
        fetch.settle()

    fetch = SlowFetch()
    try:
        ok, d = run_learner_code(fetch_all, fetch, ["tyger", "hope"])
        d = _as_deferred(d) if ok else d
        if not ok or not isinstance(d, Deferred):
            return failed(name, "fetch_all(fetch, ['tyger', 'hope']) failed to start", got=d)
        fetch.deliver("hope", ValueError("garbled"))
        fetch.deliver("tyger")
        kind, value = outcome_of(d)
        if kind != "failure":
            return failed(
                name,
                "a garbled download (ValueError) was hidden",
                expected="the whole Deferred fails (FirstError or ValueError)",
                got=_show(kind, value),
                hint="trap KeyError only: any other failure should fail the gathered Deferred",
            )
    finally:
        fetch.settle()
    return passed(name, "all at once, a missing poem as None, real errors still fail it.")


@exercise("09")
def check_deadline(fetch_with_deadline: Callable[..., Any]) -> Feedback:
    """``fetch_with_deadline(fetch, name, seconds, clock)``: poem, '(too slow)', or the error."""
    name = "a deadline"
    cases = [
        ("tyger", 1.0, None, ("value", SlowFetch.POEMS["tyger"]), "arrives after 1 s"),
        ("hope", None, None, ("value", "(too slow)"), "never arrives"),
        ("nightingale", 1.0, None, ("failure", KeyError), "is missing (KeyError after 1 s)"),
    ]
    for poem, at, error, want, story in cases:
        clock = task.Clock()
        fetch = SlowFetch()
        try:
            ok, d = run_learner_code(fetch_with_deadline, fetch, poem, 2, clock)
            d = _as_deferred(d) if ok else d
            if not ok or not isinstance(d, Deferred):
                return failed(
                    name,
                    f"fetch_with_deadline(fetch, {poem!r}, 2, clock) did not return a Deferred",
                    got=d if not ok else type(d).__name__,
                )
            if at is not None:
                clock.advance(at)
                fetch.deliver(poem, error)
            ok, got = run_learner_code(clock.advance, 5)  # well past the deadline
            if not ok:
                return failed(
                    name,
                    f"when the poem {story}, the timer still went off later and raised",
                    got=got,
                    hint="addTimeout stops its timer when the Deferred fires in time",
                )
            kind, value = outcome_of(d)
            if want[0] == "failure":
                right = kind == "failure" and value.check(want[1])
            else:
                right = (kind, value) == want
            if not right:
                wrong_timeout = kind == "failure" and value.check(defer.TimeoutError)
                if wrong_timeout:
                    hint = (
                        "addTimeout fails with twisted.internet.defer.TimeoutError, not "
                        "Python's built-in TimeoutError: trap defer.TimeoutError"
                    )
                elif kind == "failure" and value.check(defer.CancelledError):
                    hint = (
                        "cancel() fails the Deferred with CancelledError; addTimeout turns "
                        "that into defer.TimeoutError, which an errback can trap"
                    )
                elif kind == "unfired":
                    hint = "d.addTimeout(seconds, clock) cancels d when the time is up"
                elif poem == "nightingale":
                    hint = "trap the timeout only: a KeyError must go on as it is"
                else:
                    hint = "on timeout, recover with an errback that returns '(too slow)'"
                expected = "Failure(KeyError)" if want[0] == "failure" else repr(want[1])
                return failed(
                    name,
                    f"when the poem {story}: the wrong outcome",
                    expected=expected,
                    got=_show(kind, value),
                    hint=hint,
                )
            if poem == "hope" and fetch.cancelled != ["hope"]:
                return failed(
                    name,
                    "the slow download was not cancelled at the deadline",
                    expected="the download's Deferred cancelled (so its connection is closed)",
                    got="it was left running",
                    hint="addTimeout calls cancel() on the Deferred: use it on fetch's Deferred",
                )
        finally:
            fetch.settle()
    return passed(name, "in time: the poem; too slow: cancelled and '(too slow)'; errors pass.")
