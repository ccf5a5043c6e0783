"""Checks for notebook 05 (Deferreds all the way down): inner Deferreds, already-fired ones.

- :func:`check_inner_path` -- predict the outer chain's path when its inner Deferred fails
  (the chain is :func:`inner_fails`, run under the tracer).
- :func:`check_print_order` -- predict the order of :func:`order_demo`'s log, where one
  Deferred has already fired and another fires later.
- :func:`check_as_deferred` -- write ``call_as_deferred(f, *args, **kwargs)``, the heart
  of ``maybeDeferred``: always a Deferred, whatever ``f`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from poetrylab.exercises import Feedback, exercise, failed, passed, run_learner_code
from poetrylab.exercises.nb04 import judge_path
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
    pending = []

    def fetch(name):
        d = Deferred()
        d.addCallback(str.strip)
        pending.append(d)
        return d  # the outer chain waits for this one

    def count_lines(poem):
        return len(poem.splitlines())

    def missing(failure):
        failure.trap(KeyError)
        return 0

    def report(count):
        return f"{count} lines"

    with trace() as t:
        outer = Deferred()
        t.label(outer, "outer")
        outer.addCallback(fetch)
        outer.addCallback(count_lines)
        outer.addErrback(missing)
        outer.addCallback(report)
        outer.callback("nightingale")
        t.label(pending[0], "inner")
        pending[0].errback(KeyError("nightingale"))
    return t.snapshot()


@exercise("05")
def check_inner_path(prediction: str) -> Feedback:
    """Compare a prediction (``"c e ..."``, one side per stage of ``outer``) with the run."""
    return judge_path(
        "the outer path",
        prediction,
        [side for side, _, _ in inner_fails().path("outer")],
        chain="outer",
        example='one c or e per stage of outer, e.g. "c c e c"',
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
    later = Deferred()  # not fired yet
    later.addCallback(lambda poem: log.append("D"))  # D: later's callback
    log.append("E")  # E: after adding later's callback
    later.callback("Hope is the thing with feathers")
    log.append("F")  # F: after later.callback(...)
    return log


@exercise("05")
def check_print_order(prediction: str) -> Feedback:
    """Compare a predicted order of :func:`order_demo`'s letters with what it logs."""
    name = "when do callbacks run?"
    actual = order_demo()
    predicted = [ch for ch in str(prediction).upper() if ch.isalpha()]
    if sorted(predicted) != sorted(actual):
        return failed(
            name,
            "the prediction should use each letter A to F once",
            expected='six letters, e.g. "A B C D E F"',
            got=" ".join(predicted) or repr(prediction),
        )
    if predicted == actual:
        return passed(name, "a callback added to a fired Deferred runs at once, right there.")
    b_after_c = predicted.index("B") > predicted.index("C")
    d_early = predicted.index("D") < predicted.index("E")
    if b_after_c:
        hint = (
            "ready has already fired: addCallback runs the callback before it returns, "
            "so B comes before C"
        )
    elif d_early:
        hint = "later has not fired when its callback is added: D waits for later.callback(...)"
    else:
        hint = "callbacks run inside callback(...): D is logged before the line after it"
    return failed(
        name,
        "not that order",
        expected="each letter where the code really logs it",
        got=" ".join(predicted),
        hint=hint,
    )


def _fires_with(d: Any) -> tuple[str, Any]:
    """``("value", v)``, ``("failure", Failure)`` or ``("unfired", None)`` for a Deferred."""
    box: list[tuple[str, Any]] = []

    def got(result: Any) -> None:
        kind = "failure" if isinstance(result, Failure) else "value"
        box.append((kind, result))

    d.addBoth(got)
    return box[0] if box else ("unfired", None)


@exercise("05")
def check_as_deferred(call_as_deferred: Callable[..., Any]) -> Feedback:
    """``call_as_deferred(f, *args, **kwargs)`` must always return a Deferred with f's outcome."""
    name = "always a Deferred"
    if not callable(call_as_deferred):
        return failed(name, "pass the function itself", got=repr(call_as_deferred))

    # 1. a plain value comes back as an already-fired Deferred
    ok, d = run_learner_code(call_as_deferred, sorted, [3, 1, 2], reverse=True)
    if not ok:
        return failed(name, "calling sorted([3, 1, 2], reverse=True) through it raised", got=d)
    if not isinstance(d, Deferred):
        return failed(
            name,
            "a plain value did not come back in a Deferred",
            expected="a Deferred that has already fired with [3, 2, 1]",
            got=repr(d),
            hint="succeed(value) makes a Deferred that has already fired with value",
        )
    kind, value = _fires_with(d)
    if (kind, value) != ("value", [3, 2, 1]):
        return failed(
            name,
            "sorted([3, 1, 2], reverse=True) gave the wrong result",
            expected="a Deferred already fired with [3, 2, 1]",
            got=f"{kind} {value!r}",
            hint="pass the keyword arguments on too: f(*args, **kwargs)",
        )

    # 2. an exception comes back as a failed Deferred, not raised
    ok, d = run_learner_code(call_as_deferred, int, "seven")
    if not ok:
        return failed(
            name,
            "int('seven') raised ValueError straight out of call_as_deferred",
            expected="a Deferred that has already failed with ValueError",
            got=d,
            hint="catch the exception and return fail() (inside except, it captures it)",
        )
    kind, value = _fires_with(d) if isinstance(d, Deferred) else ("not a Deferred", d)
    if kind != "failure" or not value.check(ValueError):
        return failed(
            name,
            "int('seven') did not come back as a failed Deferred",
            expected="a Deferred already failed with ValueError",
            got=f"{kind} {value!r}",
            hint="fail(exception) makes a Deferred that has already failed",
        )

    # 3. a Deferred comes back as the same Deferred (or one that follows it)
    pending: Deferred[str] = Deferred()
    ok, d = run_learner_code(call_as_deferred, lambda: pending)
    if not ok:
        return failed(
            name,
            "a function returning a Deferred made call_as_deferred raise",
            expected="that Deferred itself",
            got=d,
            hint="succeed() refuses a Deferred: if f returned one, return it as it is",
        )
    if not isinstance(d, Deferred):
        return failed(name, "a Deferred result did not come back as a Deferred", got=repr(d))
    pending.callback("Tyger Tyger")
    kind, value = _fires_with(d)
    if (kind, value) != ("value", "Tyger Tyger"):
        got = (
            "a Deferred whose result is the other Deferred: it was wrapped, not returned"
            if isinstance(value, Deferred)
            else f"{kind} {value!r}"
        )
        return failed(
            name,
            "a function returning a Deferred: its result did not come through",
            expected="a Deferred that fires with 'Tyger Tyger' when the inner one does",
            got=got,
            hint="if f returned a Deferred, return that same Deferred",
        )
    return passed(name, "values, exceptions and Deferreds all come back as a Deferred.")
