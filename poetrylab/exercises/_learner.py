"""Running the learner's code from a check: safely, knowing what it used, and importing
what a check needs only when it runs.

Every ``nbNN`` check calls the learner's code through :func:`call_learner` (a verdict
when it raises) or :func:`run_learner_code` (when the check wants to look at the error
itself). Nothing here touches the reactor.
"""

from __future__ import annotations

import importlib
import inspect
import numbers
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeGuard, TypeVar

from poetrylab.exercises._feedback import one_line
from poetrylab.exercises._registry import NotYet

__all__ = ["call_learner", "imported", "is_number", "refers_to", "run_learner_code"]

_T = TypeVar("_T")

RUN_IT_ALONE = "run it in a cell of its own to see the whole error"


def run_learner_code(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the learner's ``fn``; return ``(True, result)`` or ``(False, "Error: message")``.

    Never raises for an ``Exception`` from the learner's code; ``KeyboardInterrupt``
    (the kernel's interrupt button) still interrupts.
    """
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:
        return False, one_line(exc)


def call_learner(
    what: str, fn: Callable[..., _T], /, *args: Any, hint: str = RUN_IT_ALONE, **kwargs: Any
) -> _T:
    """Return ``fn(*args, **kwargs)``; raise :class:`NotYet` ("``what`` raised an error",
    got the error's last line, and ``hint``) if the learner's code raised an ``Exception``.
    """
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise NotYet(f"{what} raised an error", got=one_line(exc), hint=hint) from None


def is_number(x: object) -> TypeGuard[numbers.Real]:
    """Whether ``x`` is a real number a learner may answer with (an int, a float, a
    Fraction, one of numpy's floats...), but not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def refers_to(fn: object, target: object, name: str) -> bool:
    """Whether the learner's function ``fn`` uses ``target``: names it ``name`` (as a global
    or an attribute, ``defer.maybeDeferred``), or uses a global, closure variable or
    default argument bound to it (``from ... import maybeDeferred as md``), in its own
    code or in any function or lambda written inside it.

    Reads the compiled code, never runs it. A function that fetches ``target`` by some
    other road (``getattr`` with a computed string) goes unseen.
    """
    if inspect.ismethod(fn):
        fn = fn.__func__
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return False
    namespace: dict[str, Any] = getattr(fn, "__globals__", {})
    bound = [cell.cell_contents for cell in getattr(fn, "__closure__", None) or ()]
    bound += list(getattr(fn, "__defaults__", None) or ())
    if any(value is target for value in bound):
        return True
    for each in _code_objects(code):
        for used in each.co_names:
            if used == name or namespace.get(used) is target:
                return True
    return False


def imported(module: str) -> types.ModuleType:
    """Import ``module`` when a check needs it, not when its exercise module is imported.

    Silences the DeprecationWarning a Twisted module may raise on import when it
    subclasses another deprecated part of Twisted (``twisted.web.xmlrpc``'s client
    subclasses the deprecated ``HTTPClient``): that warning says nothing about the
    learner's code.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(module)
