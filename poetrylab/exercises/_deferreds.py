"""What a Deferred ended with, told in a verdict's words, and the stand-in downloads the
checks fire by hand: for the checks that get Deferreds from the learner's code
(notebooks 02, 04 to 09, 15).

Not thread-safe, like the Deferreds it reads: use it in the thread that fires them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from twisted.internet.defer import Deferred, FirstError
from twisted.python.failure import Failure

from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet

__all__ = ["HandFetch", "Outcome", "deferred_from", "describe", "expect_deferred", "outcome_of"]


@dataclass(frozen=True)
class Outcome:
    """What a Deferred's chain ended with: ``kind`` is ``"value"``, ``"failure"`` (then
    ``result`` is the Failure) or ``"unfired"`` (then ``result`` is None)."""

    kind: Literal["value", "failure", "unfired"]
    result: Any = None

    def failed_with(self, exception: type[BaseException]) -> bool:
        """Whether it failed with ``exception`` (or a subclass of it)."""
        return isinstance(self.result, Failure) and isinstance(self.result.value, exception)

    def is_value(self, expected: object) -> bool:
        """Whether it fired with a value equal to ``expected``."""
        return self.kind == "value" and bool(self.result == expected)

    def __str__(self) -> str:
        if self.kind == "unfired":
            return "nothing yet: it has not fired"
        return describe(self.result)


def outcome_of(d: Deferred[Any]) -> Outcome:
    """What ``d`` has ended with so far, or ``Outcome("unfired")``.

    Adds a callback that takes the result and leaves None in its place, so a Failure is
    handled (nothing is logged as unhandled later) and whoever adds a callback after
    this one gets None: call it once, when the check is done with ``d``.
    """
    box: list[Outcome] = []

    def keep(result: object) -> None:
        box.append(Outcome("failure" if isinstance(result, Failure) else "value", result))

    d.addBoth(keep)
    return box[0] if box else Outcome("unfired")


def describe(result: object) -> str:
    """A result in a verdict's words, without a memory address: ``'TYGER'``,
    ``Failure(KeyError: 'nightingale')``, ``a Deferred that has not fired``..."""
    if isinstance(result, Failure):
        inner = result.value
        if isinstance(inner, FirstError):
            failure = inner.subFailure
            return (
                f"Failure(FirstError: member {inner.index} failed with "
                f"{failure.type.__name__ if failure.type else '?'})"
            )
        name = result.type.__name__ if result.type else "?"
        message = result.getErrorMessage()
        return f"Failure({name}: {message})" if message else f"Failure({name})"
    if isinstance(result, Deferred):
        if not result.called:
            return "a Deferred that has not fired"
        return "a Deferred that has already fired"
    return short(result)


def expect_deferred(
    result: object, message: str, *, expected: str = "a Deferred", hint: str = ""
) -> Deferred[Any]:
    """``result`` when it is a Deferred; else raise :class:`NotYet` with ``message``,
    ``expected``, what ``result`` is instead, and ``hint``."""
    if isinstance(result, Deferred):
        return result
    raise NotYet(message, expected=expected, got=describe(result), hint=hint)


def deferred_from(
    what: str,
    fn: Callable[..., object],
    *args: object,
    expected: str = "a Deferred",
    hint: str = "return the Deferred you built (or write async def)",
) -> Deferred[Any]:
    """Call the learner's ``fn`` (``what`` names the call): its Deferred, a coroutine it
    returned run as one (``Deferred.fromCoroutine``), or :class:`NotYet` when it raised or
    returned anything else."""
    result = call_learner(what, fn, *args)
    if inspect.iscoroutine(result):
        result = Deferred.fromCoroutine(result)
    return expect_deferred(
        result, f"{what} did not return a Deferred", expected=expected, hint=hint
    )


class HandFetch:
    """A stand-in download function: ``fetch(name)`` returns a Deferred that the check fires
    with :meth:`deliver`, in an order of its choosing, and that records being cancelled.

    :attr:`POEMS` is what a delivered download brings (a subclass may bring others).
    :meth:`settle` handles whatever Failure is left in any of them, so that nothing is
    logged as unhandled later. Not thread-safe, like the Deferreds it makes.
    """

    POEMS: ClassVar[Mapping[str, str]] = {
        "tyger": "Tyger Tyger, burning bright",
        "hope": "Hope is the thing with feathers",
    }

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
        """Fire ``name``'s download: with its poem, with ``error``, or with KeyError for a
        poem there is none of. A download already cancelled is left as it is (its late
        result is dropped, as a protocol would drop it)."""
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
        """Handle every Failure still held by a download (call it when the check is done)."""
        for d in self._all:
            d.addErrback(lambda _: None)
