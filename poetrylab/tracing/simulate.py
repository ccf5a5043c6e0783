"""Build a callback chain from a short description, run it, draw it (notebooks 04, 05).

A learner writes the chain in a few words, predicts which side of each stage will run,
and checks the prediction against a real Deferred::

    simulate("return 1, raise ValueError, recover, passthru", fire="callback",
             predict="callback, callback, errback, callback")

The description is a list of stages separated by commas, semicolons or new lines. Each
stage is an action, optionally prefixed by the side it goes on: ``callback:``,
``errback:`` or ``both:`` (``cb:`` and ``eb:`` for short). Actions:

=====================  ======================================================  =========
action                 what the stage does                                     side
=====================  ======================================================  =========
``return V``           returns ``V``, a Python literal (``1``, ``'hi'``,        callback
                       ``None``, ``[1, 2]``)
``raise E``            raises ``E``, a built-in exception name; ``raise E:     callback
                       some text`` gives it a message
``passthru``           returns what it got, unchanged                          callback
``double``, ``add N``  arithmetic on what it got (TypeError on a non-number)   callback
``wait V``             returns a new Deferred that is fired with ``V`` once    callback
                       the chain has paused on it
``recover [V]``        returns ``V`` (default ``'recovered'``) instead of the   errback
                       Failure: the chain goes back to the callbacks
``trap E [V]``         ``failure.trap(E)``: a matching Failure recovers with    errback
                       ``V`` (default ``'trapped'``); any other passes on
=====================  ======================================================  =========

``fire`` is ``"callback"`` or ``"errback"`` with ``value`` (default ``1``, or
``ValueError('boom')`` for errback), or written out: ``"callback(3)"``,
``"errback(KeyError)"``, ``"errback(KeyError: no such poem)"``. ``predict`` lists one side
per stage (``callback``/``errback``, or ``c``/``e``, ``cb``/``eb``); the trace's
``meta["prediction"]`` says whether it was right, and the diagram's subtitle too.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from .capture import Tracer
from .views import Trace

__all__ = ["simulate", "parse_chain", "SimulationError"]

_DEFAULT: Any = object()
_SIDES = {
    "callback": "callback",
    "cb": "callback",
    "c": "callback",
    "errback": "errback",
    "eb": "errback",
    "e": "errback",
    "both": "both",
}


class SimulationError(ValueError):
    """A description, firing or prediction the simulator cannot understand."""


def _literal(text: str, default: Any = None) -> Any:
    text = text.strip()
    if not text:
        return default
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise SimulationError(
            f"{text!r} is not a Python literal: write 1, 'text', None or [1, 2]"
        ) from None


def _exception_type(name: str) -> type[BaseException]:
    found = getattr(builtins, name.strip(), None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise SimulationError(f"{name.strip()!r} is not a built-in exception (try ValueError)")
    return found


def _named(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    return fn


def _action(text: str, inner: list[tuple[Deferred[Any], Any]]) -> tuple[str, Callable[..., Any]]:
    """``(default side, callable)`` for one action."""
    word, _, rest = text.strip().partition(" ")
    word = word.lower()
    rest = rest.strip()
    if word == "return":
        value = _literal(rest)
        return "callback", _named(lambda result: value, text)
    if word == "raise":
        name, _, message = rest.partition(":")
        if not name:
            raise SimulationError("raise needs an exception name, e.g. 'raise ValueError'")
        error = _exception_type(name)
        detail = message.strip()

        def fail(result: Any) -> Any:
            raise error(detail) if detail else error()

        return "callback", _named(fail, text)
    if word in ("passthru", "pass"):
        return "callback", _named(lambda result: result, "passthru")
    if word == "double":
        return "callback", _named(lambda result: result * 2, text)
    if word == "add":
        amount = _literal(rest, 1)
        return "callback", _named(lambda result: result + amount, text)
    if word == "wait":
        value = _literal(rest)

        def wait(result: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            inner.append((d, value))
            return d

        return "callback", _named(wait, text)
    if word == "recover":
        value = _literal(rest, "recovered")
        return "errback", _named(lambda failure: value, text)
    if word == "trap":
        name, _, default = rest.partition(" ")
        if not name:
            raise SimulationError("trap needs an exception name, e.g. 'trap KeyError'")
        error = _exception_type(name)
        value = _literal(default, "trapped")

        def trap(failure: Failure) -> Any:
            failure.trap(error)
            return value

        return "errback", _named(trap, text)
    raise SimulationError(
        f"unknown action {word!r} in {text!r}: use return, raise, passthru, double, add, wait, "
        "recover or trap"
    )


def parse_chain(
    description: str, inner: list[tuple[Deferred[Any], Any]] | None = None
) -> list[tuple[str, Callable[..., Any]]]:
    """Parse a description into ``(side, callable)`` stages (see the module docstring).

    ``inner`` collects the Deferreds ``wait`` stages will create. Raises SimulationError
    on anything it cannot read, saying what it expected.
    """
    pending = inner if inner is not None else []
    stages = []
    for part in re.split(r"[,;\n]", description):
        part = part.strip()
        if not part:
            continue
        side = None
        head, colon, rest = part.partition(":")
        if colon and head.strip().lower() in _SIDES:
            side, part = _SIDES[head.strip().lower()], rest.strip()
        default_side, fn = _action(part, pending)
        stages.append((side or default_side, fn))
    if not stages:
        raise SimulationError("the description has no stages")
    return stages


def _firing(fire: str, value: Any) -> tuple[str, Any]:
    match = re.fullmatch(r"\s*(callback|errback)\s*(?:\((.*)\))?\s*", fire, re.S)
    if not match:
        raise SimulationError(
            f"fire must be 'callback', 'errback' or e.g. 'callback(3)', not {fire!r}"
        )
    how, inside = match[1], match[2]
    if how == "callback":
        if inside is not None:
            return how, _literal(inside)
        return how, 1 if value is _DEFAULT else value
    if inside is not None:
        name, _, message = inside.partition(":")
        error = _exception_type(name)
        return how, error(message.strip()) if message.strip() else error()
    if value is _DEFAULT:
        return how, ValueError("boom")
    if isinstance(value, BaseException):
        return how, value
    if isinstance(value, type) and issubclass(value, BaseException):
        return how, value()
    raise SimulationError(f"errback needs an exception, not {value!r}")


def _prediction(predict: str | list[str], count: int) -> list[str]:
    # Read as notebooks 04 and 05's checks read it: any separator ("c, c, e", "c→c→e"),
    # or none between single letters ("cce").
    text = predict if isinstance(predict, str) else " ".join(map(str, predict))
    words = []
    for word in re.findall(r"[^\W_]+", text):
        words += list(word) if re.fullmatch(r"[ceCE]{2,}", word) else [word]
    sides = []
    for word in words:
        side = _SIDES.get(str(word).strip().lower())
        if side is None or side == "both":
            raise SimulationError(f"predict each stage as callback or errback, not {word!r}")
        sides.append(side)
    if len(sides) != count:
        raise SimulationError(f"the chain has {count} stages; the prediction names {len(sides)}")
    return sides


def simulate(
    description: str,
    fire: str = "callback",
    value: Any = _DEFAULT,
    predict: str | list[str] | None = None,
) -> Trace:
    """Build the chain described, fire it on a real Deferred, and return its trace.

    The trace shows itself as the diagram in a notebook; ``trace.path()`` lists the sides
    that ran. ``wait`` stages' Deferreds are fired, in order, after the chain has paused
    on each. With ``predict``, ``trace.meta["prediction"]`` holds the predicted and actual
    sides and ``correct``. Raises SimulationError for a description it cannot read; an
    exception the chain ends with stays in the trace (it is not raised here).
    """
    inner: list[tuple[Deferred[Any], Any]] = []
    stages = parse_chain(description, inner)
    how, first = _firing(fire, value)
    expected = _prediction(predict, len(stages)) if predict is not None else None
    with Tracer() as tracer:
        d: Deferred[Any] = Deferred()
        for side, fn in stages:
            if side == "callback":
                d.addCallback(fn)
            elif side == "errback":
                d.addErrback(fn)
            else:
                d.addBoth(fn)
        if how == "callback":
            d.callback(first)
        else:
            d.errback(first)
        while inner:
            waiting, result = inner.pop(0)
            waiting.callback(result)
    # Untraced, now: a final Failure is shown in the trace, not logged as unhandled.
    d.addErrback(lambda failure: None)
    trace = tracer.snapshot()
    root = trace.deferreds[0]
    trace.meta.update(description=description, fire=fire)
    if expected is not None:
        actual = [side for side, _, _ in trace.path(root.id)]
        trace.meta["prediction"] = {
            "predicted": expected,
            "actual": actual,
            "correct": expected == actual,
        }
    return trace
