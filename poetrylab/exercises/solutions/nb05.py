"""Model answers for notebook 05 (Deferreds all the way down), with wrong answers to catch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed

from poetrylab.exercises import Answers


def call_as_deferred(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """What maybeDeferred does: a value, an exception or a Deferred, always as a Deferred."""
    try:
        result = f(*args, **kwargs)
    except Exception:
        return fail()  # fail() with no argument captures the exception being handled
    if isinstance(result, Deferred):
        return result
    return succeed(result)


def wraps_everything(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Wrong (the notebook's starter): an exception escapes; a Deferred is wrapped again."""
    return succeed(f(*args, **kwargs))


def forgets_deferreds(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Wrong: exceptions are handled, but a returned Deferred is passed to succeed()."""
    try:
        return succeed(f(*args, **kwargs))
    except Exception:
        return fail()


def drops_keywords(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Wrong: keyword arguments are lost."""
    try:
        result = f(*args)
    except Exception:
        return fail()
    return result if isinstance(result, Deferred) else succeed(result)


SOLUTIONS = {
    "check_inner_path": Answers(solution="c e e c", wrong=["c c c c", "c c e c", "c e e"]),
    "check_print_order": Answers(
        solution="A B C E D F", wrong=["A C E F B D", "A C B E D F", "A B C D E F", "A B"]
    ),
    "check_as_deferred": Answers(
        solution=call_as_deferred, wrong=[wraps_everything, forgets_deferreds, drops_keywords]
    ),
}
