"""Safe, bounded summaries of the values that flow through a Deferred (private).

The tracer never keeps a reference to a user's object: each value is summarised the moment
it is seen, as a :class:`~.model.Value` holding only text the tracer made (a type name and
a bounded ``repr``, or an exception's type and message). A summary never raises, whatever
the object does in its ``__repr__`` or ``__str__``, and its text is never longer than
:data:`MAX_TEXT` characters: a longer one keeps its beginning and its end around an
ellipsis (``'Tyger Tyger, b…forests of the night;'``) and is marked ``cut``.

:func:`keep` is what the tracer records: the summary, except for exact built-in ints (of
at most 15 digits), floats, bools and strings of at most :data:`KEEP_STR` characters,
which are kept as they are and summarised when the trace's events are read
(:class:`~.model.Event` does that). Those are immutable, tiny and have no finalizer, so
keeping them costs no memory to speak of and changes nothing the program can see, while a
traced chain of 10,000 callbacks does not pay for 20,000 summaries as it runs.
"""

from __future__ import annotations

import reprlib
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import FirstError
from twisted.python.failure import Failure

from ._twisted import deferred_types
from .model import Value

__all__ = [
    "KEEP_STR",
    "MAX_TEXT",
    "NONE",
    "elide",
    "keep",
    "summarize",
    "summarize_exception",
    "type_name",
]

MAX_TEXT = 80
"""The longest text a summary keeps, in characters."""

KEEP_STR = MAX_TEXT - 2
"""Exact strings up to this long are kept as they are until the trace is built."""

_KEEP_INT = 10**15

ELLIPSIS = "…"


def elide(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters by leaving out its middle (marked ``…``)."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail > 0 else "")


class _Repr(reprlib.Repr):
    """reprlib, with Failures inside containers shown briefly."""

    def repr_Failure(self, obj: Any, level: int) -> str:
        value = summarize(obj)
        return f"Failure({value.type}: {value.text})" if value.text else f"Failure({value.type})"


_repr = _Repr()
_repr.maxstring = MAX_TEXT - 2
_repr.maxother = MAX_TEXT
_repr.maxlong = MAX_TEXT
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 6
_repr.maxlevel = 3
_repr.fillvalue = ELLIPSIS

_SHARED_MAX = 20_000
_ints: dict[str, Value] = {}
_strs: dict[str, Value] = {}
NONE = Value("value", "NoneType", "None")
_TRUE = Value("value", "bool", "True")
_FALSE = Value("value", "bool", "False")


def type_name(cls: type) -> str:
    """The qualified name of a class, read without running any of its code; a class made
    inside a function is named by itself (``Poem``, not ``make.<locals>.Poem``)."""
    try:
        name = cls.__qualname__
    except Exception:  # a metaclass may do anything
        return "?"
    return name.rsplit("<locals>.", 1)[-1] if isinstance(name, str) else "?"


_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks and tabs written as ``\\n``, ``\\r``, ``\\t``
    (a multi-line repr or exception message would break a label in two)."""
    return text.translate(_ONE_LINE) if ("\n" in text or "\r" in text or "\t" in text) else text


def _safe_repr(obj: object) -> tuple[str, bool]:
    """A bounded repr and whether it was cut (reprlib leaves out the middle of long
    strings and the tail of long containers, marking each cut with an ellipsis)."""
    try:
        text: object = _repr.repr(obj)
    except Exception as e:  # a broken __repr__ must never break the traced program
        return f"<{type_name(type(obj))} (repr raised {type_name(type(e))})>", False
    if not isinstance(text, str):
        return f"<{type_name(type(obj))}>", False
    text = _one_line(text)
    cut = len(obj) > _repr.maxstring if isinstance(obj, (str, bytes)) else ELLIPSIS in text
    if len(text) > MAX_TEXT:
        return elide(text), True
    return text, cut


def _message(exc: BaseException) -> tuple[str, bool]:
    try:
        text: object = str(exc)
    except Exception:
        return "(str() raised)", False
    if not isinstance(text, str):
        return "", False
    text = _one_line(text)
    if len(text) > MAX_TEXT:
        return elide(text), True
    return text, False


def _shared(cache: dict[str, Value], kind: str, text: str) -> Value:
    found = cache.get(text)
    if found is None:
        if len(cache) >= _SHARED_MAX:
            cache.clear()
        found = cache[text] = Value("value", kind, text)
    return found


def summarize_exception(exc: BaseException) -> Value:
    """Summarise a raised exception as a failure: its type name and its message.

    A FirstError (from a DeferredList or gatherResults) is described by the member that
    failed: ``#1: ValueError: boom``. Never raises.
    """
    try:
        if isinstance(exc, Failure):
            return summarize(exc)
        if isinstance(exc, FirstError):
            sub = getattr(exc, "subFailure", None)
            if isinstance(sub, Failure):
                inner = summarize(sub)
                text = f"#{getattr(exc, 'index', '?')}: {inner.type}: {inner.text}"
                return Value("failure", "FirstError", elide(text), None, inner.cut)
        if isinstance(exc, defer.TimeoutError) and len(exc.args) == 2:
            # addTimeout's TimeoutError(seconds, "Deferred") reads badly as "(5, 'Deferred')"
            return Value("failure", "TimeoutError", f"timed out after {exc.args[0]} s")
        text, cut = _message(exc)
        return Value("failure", type_name(type(exc)), text, None, cut)
    except Exception:
        return Value("failure", "?", "(could not be summarised)")


def keep(obj: object) -> Any:
    """What the tracer records for ``obj``: ``obj`` itself when it is an exact int (15
    digits at most), float, bool or str (:data:`KEEP_STR` characters at most), else its
    :func:`summarize` (so ``None`` is recorded as the summary of ``None``, never as "no
    value"). Never raises."""
    cls = type(obj)
    if cls is int:
        if -_KEEP_INT < obj < _KEEP_INT:  # type: ignore[operator]  # cls is int here
            return obj
    elif cls is str:
        if len(obj) <= KEEP_STR:  # type: ignore[arg-type]  # cls is str here
            return obj
    elif cls is bool or cls is float:
        return obj
    elif obj is None:
        return NONE
    return summarize(obj)


def summarize(obj: object, deferred_id: int | None = None) -> Value:
    """Summarise ``obj`` as a :class:`~.model.Value`, never raising.

    ``kind`` is ``"failure"`` for a Failure (type and message of its exception),
    ``"deferred"`` for a Deferred (``deferred_id`` names it in the trace) and ``"value"``
    for anything else (a bounded ``repr``).
    """
    cls = type(obj)
    if cls is int:
        if -(10**15) < obj < 10**15:  # type: ignore[operator]  # cls is int here
            return _shared(_ints, "int", repr(obj))
        if not -(10**60) < obj < 10**60:  # type: ignore[operator]
            # a huge int: its repr may be refused (sys.int_info) and would say nothing
            digits = int(abs(int(obj)).bit_length() * 0.30103) + 1  # type: ignore[call-overload]
            return Value("value", "int", f"<an int of about {digits:,} digits>", None, True)
    elif cls is str:
        if len(obj) <= MAX_TEXT - 2:  # type: ignore[arg-type]  # cls is str here
            return _shared(_strs, "str", repr(obj))
    elif obj is None:
        return NONE
    elif cls is bool:
        return _TRUE if obj else _FALSE
    # issubclass on the type: isinstance could ask the object for its __class__
    if issubclass(cls, Failure):
        value = getattr(obj, "value", None)
        if isinstance(value, BaseException) and not isinstance(value, Failure):
            return summarize_exception(value)
        kind = getattr(obj, "type", None)
        return Value("failure", type_name(kind) if isinstance(kind, type) else "?", "")
    if cls in deferred_types():
        return Value("deferred", type_name(cls), "", deferred_id)
    text, cut = _safe_repr(obj)
    return Value("value", type_name(cls), text, None, cut)
