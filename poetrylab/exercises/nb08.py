"""Checks for notebook 08 (``inlineCallbacks``, generators, ``async def``/``await``).

- :func:`check_run_order` -- predict the order of :func:`run_order_demo`'s log: how far an
  ``inlineCallbacks`` generator runs before its caller gets its Deferred back.
- :func:`check_shout_poem` -- rewrite a callback chain as an ``async def`` with
  ``try``/``except``; run on Deferreds the check fires itself.
- :func:`check_fetch_both` -- an ``async def`` that downloads two poems at the same time.

The checks need no reactor: the fake ``fetch`` they pass returns Deferreds that the check
fires by hand, in an order of its choosing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.python.failure import Failure

from poetrylab.exercises import Feedback, exercise, failed, passed, run_learner_code

__all__ = ["FakeFetch", "check_fetch_both", "check_run_order", "check_shout_poem", "run_order_demo"]


def run_order_demo() -> list[str]:
    """The code of the first exercise: who logs what, and when?"""
    log = []
    later = Deferred()

    @inlineCallbacks
    def worker():
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


@exercise("08")
def check_run_order(prediction: str) -> Feedback:
    """Compare a predicted order (``"M1 W1 ..."``) with :func:`run_order_demo`'s log."""
    name = "how far does it run?"
    actual = run_order_demo()
    predicted = str(prediction).upper().replace(",", " ").split()
    if sorted(predicted) != sorted(actual):
        return failed(
            name,
            "use each of M1 M2 M3 W1 W2 W3 once",
            expected='six labels, e.g. "M1 M2 M3 W1 W2 W3"',
            got=" ".join(predicted) or repr(prediction),
        )
    if predicted == actual:
        return passed(name, "it runs at once, up to the first Deferred that has not fired.")
    position = {label: i for i, label in enumerate(predicted)}
    if position["W1"] > position["M2"]:
        hint = "calling worker() starts the generator at once: it does not wait to be scheduled"
    elif position["W2"] > position["M2"]:
        hint = "yielding a Deferred that has already fired does not pause the generator"
    else:
        hint = "the generator resumes inside later.callback(2), before that call returns"
    return failed(
        name,
        "not that order",
        expected="each label where the code really logs it",
        got=" ".join(predicted),
        hint=hint,
    )


class FakeFetch:
    """A stand-in download function: ``fetch(name)`` returns a Deferred fired by :meth:`deliver`."""

    POEMS = {"tyger": "Tyger Tyger, burning bright", "hope": "Hope is the thing with feathers"}

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.waiting: dict[str, Deferred[str]] = {}

    def __call__(self, name: str) -> Deferred[str]:
        self.calls.append(name)
        d: Deferred[str] = Deferred()
        self.waiting[name] = d
        return d

    def deliver(self, name: str, error: Exception | None = None) -> None:
        """Fire ``name``'s download with its poem, or with ``error``."""
        d = self.waiting.pop(name)
        if error is not None:
            d.errback(error)
        elif name in self.POEMS:
            d.callback(self.POEMS[name])
        else:
            d.errback(KeyError(name))


def _outcome(d: Deferred[Any]) -> tuple[str, Any]:
    box: list[tuple[str, Any]] = []
    d.addBoth(lambda r: box.append(("failure" if isinstance(r, Failure) else "value", r)))
    return box[0] if box else ("unfired", None)


def _describe(kind: str, value: Any) -> str:
    if kind == "failure":
        return f"Failure({value.type.__name__}: {value.getErrorMessage()})"
    if kind == "unfired":
        return "its Deferred never fired"
    return repr(value)


def _kind_of(thing: Any) -> str:
    """``a plain function 'f'`` or the type of anything else, without a memory address."""
    if inspect.isfunction(thing):
        return f"a plain function {thing.__name__!r} (def, not async def)"
    return (
        f"{type(thing).__name__} {thing!r}"
        if isinstance(thing, str | int)
        else type(thing).__name__
    )


def _start(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """Call the learner's ``async def`` and wrap its coroutine; ``(False, error)`` if that fails."""
    ok, coro = run_learner_code(fn, *args)
    if not ok:
        return False, coro
    if not inspect.iscoroutine(coro):
        return False, f"it returned {type(coro).__name__}, not a coroutine: write async def"
    return run_learner_code(Deferred.fromCoroutine, coro)


@exercise("08")
def check_shout_poem(shout_poem: Callable[..., Any]) -> Feedback:
    """``async def shout_poem(fetch, name)``: the poem upper-cased, or '(no such poem)'."""
    name = "from a chain to async def"
    if not inspect.iscoroutinefunction(shout_poem):
        return failed(
            name,
            "shout_poem is not an async def function",
            expected="async def shout_poem(fetch, name): ...",
            got=_kind_of(shout_poem),
            hint="write async def, and await the Deferred that fetch returns",
        )
    cases: list[tuple[str, Exception | None, tuple[str, Any]]] = [
        ("tyger", None, ("value", "TYGER TYGER, BURNING BRIGHT")),
        ("nightingale", None, ("value", "(no such poem)")),
        ("hope", ValueError("the download was garbled"), ("failure", ValueError)),
    ]
    for poem, error, (want_kind, want) in cases:
        fetch = FakeFetch()
        ok, d = _start(shout_poem, fetch, poem)
        if not ok:
            return failed(name, f"shout_poem(fetch, {poem!r}) could not start", got=d)
        if d.called:
            kind, value = _outcome(d)
            return failed(
                name,
                f"shout_poem(fetch, {poem!r}) finished before its download arrived",
                expected="it waits for the Deferred that fetch(name) returns",
                got=_describe(kind, value),
                hint="await fetch(name): the Deferred has no result yet when fetch returns",
            )
        fetch.deliver(poem, error)
        kind, value = _outcome(d)
        if want_kind == "failure":
            right = kind == "failure" and value.check(want)
            expected = "the ValueError goes on: a Failure(ValueError) comes out"
            hint = "catch KeyError only: except KeyError, not a bare except"
        else:
            right = (kind, value) == (want_kind, want)
            expected = repr(want)
            hint = (
                "wrap the await in try/except KeyError and return '(no such poem)' there"
                if poem == "nightingale"
                else "return the poem upper-cased: poem.upper()"
            )
        if not right:
            story = f"fetch({poem!r})" + (" failed with ValueError" if error else "")
            return failed(name, f"{story}: wrong outcome", expected=expected,
                          got=_describe(kind, value), hint=hint)  # fmt: skip
    return passed(name, "the same logic as the chain, top to bottom, with try/except.")


@exercise("08")
def check_fetch_both(fetch_both: Callable[..., Any]) -> Feedback:
    """``async def fetch_both(fetch, first, second)``: both downloads at once, results in order."""
    name = "two at once"
    if not inspect.iscoroutinefunction(fetch_both):
        return failed(
            name,
            "fetch_both is not an async def function",
            expected="async def fetch_both(fetch, first, second): ...",
            got=_kind_of(fetch_both),
        )
    fetch = FakeFetch()
    ok, d = _start(fetch_both, fetch, "tyger", "hope")
    if not ok:
        return failed(name, "fetch_both(fetch, 'tyger', 'hope') could not start", got=d)
    if fetch.calls != ["tyger", "hope"]:
        started = ", ".join(fetch.calls) or "nothing"
        return failed(
            name,
            "the second download had not started while the first was still running",
            expected="fetch('tyger') and fetch('hope') both called before the first await",
            got=f"started so far: {started}",
            hint="call fetch twice first, keep both Deferreds, then await each one",
        )
    fetch.deliver("hope")  # the second server answers first
    if d.called:
        return failed(
            name,
            "fetch_both finished before the first poem arrived",
            got=_describe(*_outcome(d)),
        )
    fetch.deliver("tyger")
    kind, value = _outcome(d)
    want = [FakeFetch.POEMS["tyger"], FakeFetch.POEMS["hope"]]
    if (kind, value) != ("value", want):
        return failed(
            name,
            "the poems did not come back in order",
            expected=repr(want),
            got=_describe(kind, value),
            hint="return the two results as a list, first then second, whichever came first",
        )
    return passed(name, "both downloads ran at the same time; the results came back in order.")
