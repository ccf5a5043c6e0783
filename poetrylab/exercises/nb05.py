"""Checks for notebook 05 (Deferreds all the way down): inner Deferreds, already-fired ones.

- :func:`check_inner_path` -- predict the outer chain's path when its inner Deferred fails
  (the chain is :func:`inner_fails`, run under the tracer).
- :func:`check_print_order` -- predict the order of :func:`order_demo`'s log, where one
  Deferred has already fired and another fires later.
- :func:`check_as_deferred` -- write ``call_as_deferred(f, *args, **kwargs)``, the heart
  of ``maybeDeferred``, with ``succeed`` and ``fail`` and without ``maybeDeferred``:
  always a Deferred, whatever ``f`` does.

The notebook writes :func:`inner_fails` and :func:`order_demo` in its cells, for the learner
to read; the checks judge against these copies, and tests/test_exercise_demos.py checks
that both give the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from poetrylab.exercises._deferreds import expect_deferred, outcome_of
from poetrylab.exercises._learner import call_learner, refers_to, run_learner_code
from poetrylab.exercises._predictions import judge_order, judge_path
from poetrylab.exercises._registry import NotYet, exercise, function, value
from poetrylab.tracing import Trace, trace

__all__ = [
    "check_as_deferred",
    "check_inner_path",
    "check_print_order",
    "inner_fails",
    "order_demo",
]


def inner_fails() -> Trace:
    """The chain of the first exercise: stage 0 starts a download whose Deferred fails."""
    pending: list[Deferred[str]] = []

    def fetch(name: str) -> Deferred[str]:
        d: Deferred[str] = Deferred()
        d.addCallback(str.strip)
        pending.append(d)
        return d  # the outer chain waits for this one

    def count_lines(poem: str) -> int:
        return len(poem.splitlines())

    def missing(failure: Failure) -> int:
        failure.trap(KeyError)
        return 0

    def report(count: int) -> str:
        return f"{count} lines"

    with trace() as t:
        outer: Deferred[Any] = Deferred()
        t.label(outer, "outer")
        outer.addCallback(fetch)
        outer.addCallback(count_lines)
        outer.addErrback(missing)
        outer.addCallback(report)
        outer.callback("nightingale")
        t.label(pending[0], "inner")
        pending[0].errback(KeyError("nightingale"))
    return t.snapshot()


@exercise("05", value("prediction", (str, list, tuple), '"c c e c"'), title="the outer path")
def check_inner_path(prediction: object) -> str:
    """Compare a prediction (``"c e ..."``, one side per stage of ``outer``) with the run."""
    return judge_path(
        prediction,
        [side for side, _, _ in inner_fails().path("outer")],
        chain="outer",
        count_hint="count outer's stages only: the inner Deferred's stage is its own chain",
        success="the inner Failure became the outer chain's result.",
        miss_hint=lambda row: (
            "fetch ran and returned a Deferred: returning anything is not a failure"
            if row == 0
            else "outer resumes with the inner Deferred's result: what did the inner end with?"
        ),
    )


def order_demo() -> list[str]:
    """The code of the second exercise: which line is logged when?"""
    log = []
    log.append("A")  # A: start
    ready = succeed("Tyger Tyger")  # already fired
    ready.addCallback(lambda poem: log.append("B"))  # B: ready's callback
    log.append("C")  # C: after adding ready's callback
    later: Deferred[str] = Deferred()  # not fired yet
    later.addCallback(lambda poem: log.append("D"))  # D: later's callback
    log.append("E")  # E: after adding later's callback
    later.callback("Hope is the thing with feathers")
    log.append("F")  # F: after later.callback(...)
    return log


def _order_hint(predicted: list[str]) -> str:
    if predicted.index("B") > predicted.index("C"):
        return (
            "ready has already fired: addCallback runs the callback before it returns, "
            "so B comes before C"
        )
    if predicted.index("D") < predicted.index("E"):
        return "later has not fired when its callback is added: D waits for later.callback(...)"
    return "callbacks run inside callback(...): D is logged before the line after it"


@exercise(
    "05", value("prediction", (str, list, tuple), '"A B C D E F"'), title="when do callbacks run?"
)
def check_print_order(prediction: object) -> str:
    """Compare a predicted order of :func:`order_demo`'s letters with what it logs."""
    return judge_order(
        prediction,
        order_demo(),
        success="a callback added to a fired Deferred runs at once, right there.",
        hint=_order_hint,
    )


def _fires_with(d: Deferred[Any]) -> str:
    """``value [3, 2, 1]``, ``failure Failure(...)`` or ``unfired``."""
    outcome = outcome_of(d)
    return outcome.kind if outcome.kind == "unfired" else f"{outcome.kind} {outcome}"


_SUCCEED_HINT = (
    "succeed() is for plain values: given a Deferred it does not wait for it, it hands the "
    "Deferred itself on as the result. If f returned a Deferred, return that Deferred."
)


@exercise("05", function("call_as_deferred(f, *args, **kwargs)"), title="always a Deferred")
def check_as_deferred(call_as_deferred: Callable[..., object]) -> str:
    """``call_as_deferred(f, *args, **kwargs)`` must always return a Deferred with f's
    outcome, made with ``succeed`` and ``fail``, not with ``maybeDeferred``."""
    if refers_to(call_as_deferred, defer.maybeDeferred, "maybeDeferred"):
        raise NotYet(
            "call_as_deferred uses maybeDeferred",
            expected="call_as_deferred written with succeed and fail",
            got="a call to maybeDeferred, the function this exercise rebuilds",
            hint="call f yourself in a try block; succeed(result) for a value, fail() in the "
            "except block, and a Deferred result as it is.",
        )
    # 1. a plain value comes back as an already-fired Deferred
    call = "call_as_deferred(sorted, [3, 1, 2], reverse=True)"
    d = expect_deferred(
        call_learner(call, call_as_deferred, sorted, [3, 1, 2], reverse=True),
        "a plain value did not come back in a Deferred",
        expected="a Deferred that has already fired with [3, 2, 1]",
        hint="succeed(value) makes a Deferred that has already fired with value",
    )
    if (got := _fires_with(d)) != "value [3, 2, 1]":
        raise NotYet(
            "sorted([3, 1, 2], reverse=True) gave the wrong result",
            expected="a Deferred already fired with [3, 2, 1]",
            got=got,
            hint="pass the keyword arguments on too: f(*args, **kwargs)",
        )

    # 2. an exception comes back as a failed Deferred, not raised
    ok, returned = run_learner_code(call_as_deferred, int, "seven")
    if not ok:
        raise NotYet(
            "int('seven') raised ValueError straight out of call_as_deferred",
            expected="a Deferred that has already failed with ValueError",
            got=returned,
            hint="catch the exception and return fail() (inside except, it captures it)",
        )
    outcome = outcome_of(
        expect_deferred(
            returned,
            "int('seven') did not come back in a Deferred",
            expected="a Deferred already failed with ValueError",
            hint="fail(exception) makes a Deferred that has already failed",
        )
    )
    if not outcome.failed_with(ValueError):
        raise NotYet(
            "int('seven') did not come back as a failed Deferred",
            expected="a Deferred already failed with ValueError",
            got=f"{outcome.kind} {outcome}",
            hint="fail(exception) makes a Deferred that has already failed",
        )

    # 3. a Deferred comes back as itself (or one that follows it)
    pending: Deferred[str] = Deferred()
    call = "call_as_deferred(f) where f returns a Deferred"
    d = expect_deferred(
        call_learner(call, call_as_deferred, lambda: pending, hint=_SUCCEED_HINT),
        "a Deferred result did not come back as a Deferred",
        expected="that Deferred itself",
        hint="if f returned a Deferred, return it as it is",
    )
    pending.callback("Tyger Tyger")
    outcome = outcome_of(d)
    if not outcome.is_value("Tyger Tyger"):
        wrapped = outcome.kind == "value" and isinstance(outcome.result, Deferred)
        raise NotYet(
            "a function returning a Deferred: its result did not come through",
            expected="a Deferred that fires with 'Tyger Tyger' when the inner one does",
            got="a Deferred whose result is the other Deferred: it was wrapped, not returned"
            if wrapped
            else f"{outcome.kind} {outcome}",
            hint=_SUCCEED_HINT,
        )
    return "values, exceptions and Deferreds all come back as a Deferred."
