"""Safe, bounded summaries of the values that flow through a Deferred (private).

The tracer never keeps a reference to a user's object: each value is summarised on the spot
as a ``(kind, type, text, deferred)`` tuple that later becomes a :class:`~.model.Value`.
A summary never raises, whatever the object does in its ``__repr__``, and is never longer
than :data:`MAX_TEXT` characters. Plain ints, floats, bools, ``None`` and short strings take
a fast path because a traced chain of 10,000 callbacks summarises 20,000 of them.
"""

from __future__ import annotations

import reprlib
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, FirstError
from twisted.python.failure import Failure

__all__ = ["MAX_TEXT", "summarize", "summarize_exception", "shorten"]

MAX_TEXT = 80


class _Repr(reprlib.Repr):
    """reprlib, with Failures inside containers shown briefly."""

    def repr_Failure(self, obj: Any, level: int) -> str:
        kind, type_name, text, _ = summarize(obj)
        return f"Failure({type_name}: {text})" if text else f"Failure({type_name})"


_repr = _Repr()
_repr.maxstring = MAX_TEXT - 4
_repr.maxother = MAX_TEXT
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 6
_repr.maxlevel = 3

_PLAIN = {bool, float, type(None)}

ValueTuple = tuple[str, str, str, Any]


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _type_name(cls: type) -> str:
    name = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", None)
    return name if isinstance(name, str) else "?"


def _safe_repr(obj: object) -> str:
    try:
        text = _repr.repr(obj)
    except BaseException as e:  # a broken __repr__ must never break the traced program
        return f"<{_type_name(type(obj))} (repr raised {_type_name(type(e))})>"
    if not isinstance(text, str):
        return f"<{_type_name(type(obj))}>"
    return shorten(text)


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:
        return "(str() raised)"
    if not isinstance(text, str):
        return ""
    return shorten(text)


def summarize_exception(exc: BaseException) -> ValueTuple:
    """Summarise a raised exception as a failure: its type name and its message.

    A FirstError (from a DeferredList or gatherResults) is described by the member that
    failed: ``#1: ValueError: boom``.
    """
    if isinstance(exc, Failure):
        return summarize(exc)
    if isinstance(exc, FirstError):
        sub = getattr(exc, "subFailure", None)
        if isinstance(sub, Failure):
            _, inner_type, inner_text, _ = summarize(sub)
            text = f"#{getattr(exc, 'index', '?')}: {inner_type}: {inner_text}"
            return ("failure", "FirstError", shorten(text), None)
    if isinstance(exc, defer.TimeoutError) and len(exc.args) == 2:
        # addTimeout's TimeoutError(seconds, "Deferred") reads badly as "(5, 'Deferred')"
        return ("failure", "TimeoutError", f"timed out after {exc.args[0]} s", None)
    return ("failure", _type_name(type(exc)), _message(exc), None)


def summarize(obj: object, deferred_id: int | None = None) -> ValueTuple:
    """Summarise ``obj`` as ``(kind, type, text, deferred)`` without ever raising.

    ``kind`` is ``"failure"`` for a Failure (type and message of its exception),
    ``"deferred"`` for a Deferred (``deferred_id`` names it in the trace) and ``"value"``
    for anything else (a bounded ``repr``).
    """
    cls = type(obj)
    if cls is int:
        if -(10**30) < obj < 10**30:  # type: ignore[operator]
            return ("value", "int", repr(obj), None)
        return ("value", "int", _safe_repr(obj), None)
    if cls is str:
        if len(obj) <= MAX_TEXT - 2:  # type: ignore[arg-type]
            return ("value", "str", repr(obj), None)
        return ("value", "str", _safe_repr(obj), None)
    if cls in _PLAIN:
        return ("value", cls.__name__, repr(obj), None)
    if isinstance(obj, Failure):
        value = getattr(obj, "value", None)
        if isinstance(value, BaseException) and not isinstance(value, Failure):
            return summarize_exception(value)
        return ("failure", _type_name(getattr(obj, "type", type(None))), "", None)
    if isinstance(obj, Deferred):
        return ("deferred", _type_name(cls), "", deferred_id)
    return ("value", _type_name(cls), _safe_repr(obj), None)
