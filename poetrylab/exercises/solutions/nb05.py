"""Model answers for notebook 05 (Deferreds all the way down), with wrong answers to catch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
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


def call_as_deferred_chained(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Also right: catch the exception by name, and hand back a Deferred that follows f's."""
    try:
        result = f(*args, **kwargs)
    except Exception as exc:
        return fail(exc)
    if isinstance(result, Deferred):
        follower: Deferred[Any] = Deferred()
        result.chainDeferred(follower)
        return follower
    return succeed(result)


def uses_maybe_deferred(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Wrong: the exercise asks to rebuild maybeDeferred, not to call it."""
    return defer.maybeDeferred(f, *args, **kwargs)


call_it_safely = defer.maybeDeferred  # maybeDeferred under another name


def uses_maybe_deferred_renamed(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Wrong: maybeDeferred under another name is still maybeDeferred."""
    return call_it_safely(f, *args, **kwargs)


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
    "check_inner_path": Answers(
        solution="c e e c",
        wrong=["c c c c", "c c e c", "c e e"],
        also_right=["ceec", "Callback, Errback, Errback, Callback"],
    ),
    "check_print_order": Answers(
        solution="A B C E D F",
        wrong=["A C E F B D", "A C B E D F", "A B C D E F", "A B", "A B C E D F G"],
        also_right=["ABCEDF", "a, b, c, e, d, f", ["A", "B", "C", "E", "D", "F"]],
    ),
    "check_as_deferred": Answers(
        solution=call_as_deferred,
        wrong=[
            wraps_everything,
            forgets_deferreds,
            drops_keywords,
            uses_maybe_deferred,
            uses_maybe_deferred_renamed,
        ],
        also_right=[call_as_deferred_chained],
    ),
}
