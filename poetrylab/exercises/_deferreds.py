"""What a Deferred ended with, told in a verdict's words: for the checks that get
Deferreds from the learner's code (notebooks 02, 04 to 09).

Not thread-safe, like the Deferreds it reads: use it in the thread that fires them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from twisted.internet.defer import Deferred, FirstError
from twisted.python.failure import Failure

from poetrylab.exercises._feedback import short
from poetrylab.exercises._registry import NotYet

__all__ = ["Outcome", "describe", "expect_deferred", "outcome_of"]


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
