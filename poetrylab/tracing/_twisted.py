"""Every touch of Twisted's private API that the tracer makes, in one place (notebooks 04-09).

The tracer records what really happens inside Deferreds, and some of that is only visible
through names Twisted does not promise to keep: the hook a ``DeferredList`` puts on each
member, the closure of ``race()``, the function that drives ``inlineCallbacks``
generators and coroutines, the code objects of ``succeed``/``fail``/``maybeDeferred``
(to say who made a Deferred), the frame-depth check behind ``returnValue``... Each of
those touches is a *probe* here, and nowhere else in poetrylab:

* each probe is checked once, when this module is imported, against the Twisted that is
  installed (:data:`PROBES`); a probe whose private name moved is switched off, and the
  tracer degrades instead of failing: the feature it served is "not traced here", and
  the trace says so (:func:`problems`, shown in the text and under the diagram);
* each probe has its own test (``tests/test_tracing_twisted.py``), so a Twisted release
  that moves one fails loudly there;
* :data:`SUPPORTED` is the range of Twisted versions the probes were tested on, and
  :func:`problems` names a version outside it.

Nothing here ever raises into the traced program and nothing here warns on its own
account. This module imports only Twisted and the standard library.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType, FunctionType, MethodType, TracebackType
from typing import Any, cast

from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredList

import twisted

__all__ = [
    "DEFERRED_LIST",
    "MISSING",
    "PROBES",
    "SUPPORTED",
    "Probe",
    "ReturnValueCheck",
    "cancel_cause",
    "canceller_of",
    "check_return_value",
    "current_result",
    "deferred_types",
    "fired_by_cancel_fallback",
    "generator_of_resume",
    "inline_part",
    "is_chaining_pause",
    "is_deferred",
    "is_gather_unwrap",
    "list_of_hook",
    "made_by",
    "problems",
    "race_of_hook",
    "stages_pending",
    "timeout_part",
    "twisted_version",
    "version_problem",
    "would_wait_on",
]

SUPPORTED = ((25, 5), (26, 10))
"""The oldest and newest Twisted (major, minor) the probes were tested on, inclusive."""

MISSING: Any = object()
"""What :func:`current_result` returns for a Deferred that has no result yet."""


@dataclass(frozen=True)
class Probe:
    """One touch of Twisted's private API: what it reaches, what it serves, and whether it
    works with the Twisted installed (``problem`` says why not). ``speed_only`` marks a
    probe that only saves time: when it fails the tracer does the same more slowly and
    sees everything, so :func:`problems` does not list it."""

    name: str
    reaches: str
    serves: str
    ok: bool
    problem: str = ""
    speed_only: bool = False


PROBES: dict[str, Probe] = {}
"""Every probe by name, checked when this module was imported."""


def _probe(
    name: str, reaches: str, serves: str, check: Callable[[], object], speed_only: bool = False
) -> Any:
    """Run ``check``; record the probe; return what it found (None when it failed)."""
    try:
        found = check()
    except Exception as exc:  # a moved private name: degrade, never fail the import
        problem = f"{type(exc).__name__}: {exc}"
        PROBES[name] = Probe(name, reaches, serves, False, problem, speed_only)
        return None
    PROBES[name] = Probe(name, reaches, serves, True, "", speed_only)
    return found


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise LookupError(what)


# -- versions ------------------------------------------------------------------------------
def twisted_version() -> tuple[int, int]:
    """The installed Twisted's (major, minor), from its public ``twisted.version``."""
    version = getattr(twisted, "version")  # noqa: B009  # public, but not in __all__
    return int(version.major), int(version.minor)


def version_problem() -> str:
    """A sentence when the installed Twisted is outside :data:`SUPPORTED`, else ``""``."""
    version = twisted_version()
    low, high = SUPPORTED
    if low <= version <= high:
        return ""
    tested = f"{low[0]}.{low[1]} to {high[0]}.{high[1]}"
    return (
        f"Twisted {version[0]}.{version[1]} is outside the range the tracer was tested with"
        f" ({tested}): what the tracer cannot see in it is listed here"
    )


def problems() -> list[str]:
    """Plain sentences, one per thing the tracer cannot see with this Twisted (or ``[]``)."""
    out = [version_problem()] if version_problem() else []
    for probe in PROBES.values():
        if not probe.ok and not probe.speed_only:
            out.append(f"not traced here: {probe.serves} (Twisted moved {probe.reaches})")
    return out


# -- 1. which objects are Deferreds, as Twisted itself decides ------------------------------
def _check_types() -> list[Any]:
    types = defer._DEFERRED_SUBCLASSES
    _require(isinstance(types, list) and Deferred in types, "_DEFERRED_SUBCLASSES")
    return types


class _SubclassesOfDeferred:
    """Stands in for Twisted's list when it is gone: ``type(x) in`` it asks issubclass."""

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, type) and issubclass(kind, Deferred)


_TYPES: Any = _probe(
    "deferred types",
    "twisted.internet.defer._DEFERRED_SUBCLASSES",
    "telling Deferreds from other results exactly as Twisted does",
    _check_types,
)
if _TYPES is None:
    _TYPES = _SubclassesOfDeferred()


DEFERRED_LIST: type[Any] = cast(type, DeferredList)
"""DeferredList, the class (type checkers know it by an overloaded stand-in)."""


def deferred_types() -> Any:
    """A container for ``type(x) in deferred_types()``: Twisted's own test of "a Deferred"."""
    return _TYPES


def is_deferred(obj: object) -> bool:
    """True when Twisted would treat ``obj`` as a Deferred (chain on it, wait for it)."""
    return type(obj) in _TYPES


# -- 2. a Deferred's state -------------------------------------------------------------------
def _check_state() -> bool:
    d: Deferred[Any] = Deferred()
    _require(isinstance(d._callbacks, list) and not hasattr(d, "result"), "Deferred state")
    d.callback(1)
    _require(d.result == 1, "Deferred.result")
    return True


_STATE = _probe(
    "deferred state",
    "Deferred._callbacks and Deferred.result",
    "stages added before tracing, and results found already there",
    _check_state,
)


_STATE_NAMES = ("result", "_callbacks", "_canceller")
# Twisted's own Deferred classes, where those are plain instance attributes (no class in
# their MRO but object defines them, or attribute lookup): getattr runs no code of theirs
_READ_DIRECTLY = frozenset(
    kind
    for kind in (Deferred, DEFERRED_LIST)
    if not any(
        name in vars(klass)
        for klass in kind.__mro__[:-1]
        for name in (*_STATE_NAMES, "__getattr__", "__getattribute__")
    )
)


def _state(d: object, name: str, default: Any) -> Any:
    """``d``'s own attribute ``name`` (``default`` when it has none), running no code of
    ``d``'s class. Reading ``d.__dict__`` would do that too, but it turns ``d``'s compact
    attribute storage into a dict for the rest of its life, and every attribute Twisted
    then reads or sets on ``d`` costs more (about a tenth of a microsecond per stage of
    its chain); so Twisted's own classes are read as Twisted reads them."""
    if type(d) in _READ_DIRECTLY:
        return getattr(d, name, default)
    return d.__dict__.get(name, default)


def current_result(d: object) -> Any:
    """The result ``d`` holds now (:data:`MISSING` when it has none or it cannot be read)."""
    try:
        return _state(d, "result", MISSING)
    except Exception:
        return MISSING


def stages_pending(d: object) -> bool | None:
    """True when ``d`` still has stages to run; None when that cannot be known."""
    if not _STATE:
        return None
    try:
        pending = _state(d, "_callbacks", None)
    except Exception:
        return None
    return bool(pending) if isinstance(pending, list) else None


def canceller_of(d: object) -> Any:
    """The canceller ``d`` was made with, while it is still pending (else None)."""
    try:
        return _state(d, "_canceller", None)
    except Exception:
        return None


def would_wait_on(inner: object) -> bool:
    """True when a stage returning ``inner`` makes Twisted pause the chain on it.

    Twisted takes an inner Deferred's result at once when it has one, unless that result
    is itself a Deferred or ``inner`` is paused; otherwise the outer chain waits.
    """
    result = current_result(inner)
    return result is MISSING or type(result) in _TYPES or bool(getattr(inner, "paused", 0))


# -- 2b. a stage added as Twisted's own addBoth adds it ----------------------------------------
_ORIGINAL_ADD_BOTH = Deferred.addBoth
_NO_KEYWORDS: dict[str, Any] = {}  # shared: Twisted never changes a stage's keywords


def _check_add_both() -> bool:
    """``Deferred.addBoth`` appends one entry (the same callback, args and keywords on both
    sides) and runs the chain when the Deferred has fired -- and does nothing else."""
    names = set(Deferred.addBoth.__code__.co_names)
    _require(names <= {"_callbacks", "append", "called", "_runCallbacks"}, "addBoth's body")

    def plus(x: int, y: int) -> int:
        return x + y

    theirs: Deferred[int] = Deferred()
    theirs.addBoth(plus, 1)
    ours: Deferred[int] = Deferred()
    half = (plus, (1,), _NO_KEYWORDS)
    ours._callbacks.append((half, half))
    _require(ours._callbacks == theirs._callbacks, "addBoth's entry")
    _require(ours.called is False and callable(ours._runCallbacks), "Deferred._runCallbacks")
    theirs.callback(1)
    ours.callback(1)
    _require(theirs.result == ours.result == 2, "addBoth's entry run")
    return True


_ADD_BOTH = _probe(
    "addBoth",
    "Deferred._callbacks and Deferred._runCallbacks, used as Deferred.addBoth uses them",
    "the usual traced stage added without packing its arguments and keywords anew",
    _check_add_both,
    speed_only=True,
)


def add_both(d: Any, callback: Any, args: tuple[Any, ...]) -> Any:
    """What ``d.addBoth(callback, *args)`` does -- Twisted's original ``addBoth``, whatever
    is patched -- with ``args`` as they are and no keywords: ``addBoth`` would pack them
    anew and make a dict of keywords for every stage of a traced chain of 10,000. Without
    the probe, it calls the original ``addBoth``. Returns ``d``."""
    if _ADD_BOTH:
        half = (callback, args, _NO_KEYWORDS)
        d._callbacks.append((half, half))
        if d.called:
            d._runCallbacks()
        return d
    return _ORIGINAL_ADD_BOTH(d, callback, *args)


# -- 3. Twisted's own callbacks, recognised in a chain --------------------------------------
def _check_list_hook() -> Any:
    hook = DeferredList.__dict__["_cbDeferred"]
    _require(isinstance(hook, FunctionType), "DeferredList._cbDeferred")
    return hook


_LIST_HOOK = _probe(
    "DeferredList hook",
    "DeferredList._cbDeferred",
    "DeferredList members and what each one gave",
    _check_list_hook,
)


def list_of_hook(fn: object) -> Deferred[Any] | None:
    """The DeferredList that ``fn`` (a hook it put on a member) reports to, else None."""
    if _LIST_HOOK is None or type(fn) is not MethodType:
        return None
    if fn.__func__ is not _LIST_HOOK:
        return None
    owner = fn.__self__
    return owner if isinstance(owner, Deferred) else None


def _check_race() -> dict[int, str]:
    code = defer.race.__code__
    hooks = {
        id(const): const.co_name
        for const in code.co_consts
        if isinstance(const, CodeType) and const.co_name in ("succeeded", "failed")
    }
    _require(sorted(hooks.values()) == ["failed", "succeeded"], "race hooks")
    for const in code.co_consts:
        if isinstance(const, CodeType) and const.co_name in ("succeeded", "failed"):
            _require("final_result" in const.co_freevars, "race's final_result")
    return hooks


_RACE_HOOKS: dict[int, str] | None = _probe(
    "race hooks",
    "the closure of race() (its succeeded/failed hooks and final_result)",
    "race() linked to its members, and its cancels of the losers",
    _check_race,
)


def race_of_hook(fn: object) -> tuple[Deferred[Any], str] | None:
    """``(the Deferred race() returned, "succeeded" or "failed")`` for a hook ``race()`` put
    on a member, else None."""
    if not _RACE_HOOKS or type(fn) is not FunctionType:
        return None
    name = _RACE_HOOKS.get(id(fn.__code__))
    if name is None:
        return None
    try:
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False))
        final = cells["final_result"].cell_contents
    except (KeyError, ValueError):  # ValueError: the cell is still empty
        return None
    return (final, name) if isinstance(final, Deferred) else None


_GATHER = _probe(
    "gatherResults unwrap",
    "twisted.internet.defer._parseDeferredListResult",
    "telling gatherResults apart from a DeferredList",
    lambda: defer._parseDeferredListResult,
)


def is_gather_unwrap(fn: object) -> bool:
    """True for the stage gatherResults adds to its DeferredList to unwrap the results."""
    return _GATHER is not None and fn is _GATHER


def _check_timeout() -> dict[int, str]:
    names = {
        const.co_name: id(const)
        for const in Deferred.addTimeout.__code__.co_consts
        if isinstance(const, CodeType)
    }
    for name in ("timeItOut", "convertCancelled", "cancelTimeout"):
        _require(name in names, f"addTimeout's {name}")
    return {code: name for name, code in names.items()}


_TIMEOUT_CODES: dict[int, str] | None = _probe(
    "addTimeout parts",
    "the inner functions of Deferred.addTimeout (timeItOut, convertCancelled, cancelTimeout)",
    "addTimeout's stages and the cancel() it makes, named as such",
    _check_timeout,
)


def timeout_part(fn: object) -> str | None:
    """``"convert"`` or ``"stop timer"`` for the two stages addTimeout adds, else None."""
    if not _TIMEOUT_CODES or type(fn) is not FunctionType:
        return None
    name = _TIMEOUT_CODES.get(id(fn.__code__))
    return {"convertCancelled": "convert", "cancelTimeout": "stop timer"}.get(name or "")


def _check_inline() -> tuple[Any, Any, Any, Any]:
    parts = (
        defer._cancellableInlineCallbacks,
        defer._gotResultInlineCallbacks,
        defer._handleCancelInlineCallbacks,
        defer._DefGen_Return,
    )
    _require(all(callable(part) for part in parts), "inlineCallbacks machinery")
    return parts


_INLINE = _probe(
    "inlineCallbacks driver",
    "twisted.internet.defer._cancellableInlineCallbacks and its helpers",
    "each step of inlineCallbacks generators and coroutines",
    _check_inline,
)


def inline_driver() -> tuple[Any, str] | None:
    """``(module, name)`` of the function that drives generators and coroutines, which the
    tracer replaces while it records; None when Twisted moved it."""
    return (defer, "_cancellableInlineCallbacks") if _INLINE else None


def inline_part(fn: object) -> str | None:
    """``"resume"`` for the stage inlineCallbacks adds to each awaited Deferred,
    ``"cancel"`` for the one that forwards a cancel to it, else None."""
    if not _INLINE:
        return None
    if fn is _INLINE[1]:
        return "resume"
    if fn is _INLINE[2]:
        return "cancel"
    return None


def generator_of_resume(args: tuple[Any, ...]) -> object:
    """The generator (or the tracer's stand-in for it) a resume stage's arguments name."""
    return args[1] if len(args) > 1 else None


def plumbing_codes() -> frozenset[int]:
    """Ids of the code of every Twisted function the tracer names specially when it is a
    stage (addTimeout's, race()'s, gatherResults', inlineCallbacks'): a function whose
    code is not among them is named as it is, with one set lookup."""
    codes: set[int] = set(_TIMEOUT_CODES or ()) | set(_RACE_HOOKS or ())
    if _GATHER is not None:
        codes.add(id(_GATHER.__code__))
    if _INLINE is not None:
        codes.update(id(part.__code__) for part in _INLINE[1:3])
    return frozenset(codes)


def plumbing_modules() -> frozenset[str]:
    """The modules defining every function whose code :func:`plumbing_codes` lists (each is
    one of those functions, or made inside one): a function whose ``__module__`` is none
    of them is no plumbing, which one string lookup tells."""
    owners: list[Any] = [Deferred.addTimeout, defer.race]
    if _GATHER is not None:
        owners.append(_GATHER)
    if _INLINE is not None:
        owners.extend(_INLINE[1:3])
    return frozenset(owner.__module__ for owner in owners)


# -- 4. who made a Deferred, who called cancel(), who paused it: the caller's frame ---------
def _check_codes() -> dict[str, CodeType]:
    codes = {
        "succeed": defer.succeed.__code__,
        "fail": defer.fail.__code__,
        "maybeDeferred": defer.maybeDeferred.__code__,
        "cancel": Deferred.cancel.__code__,
        "runCallbacks": Deferred._runCallbacks.__code__,
        "race": defer.race.__code__,
    }
    _require("f" in codes["maybeDeferred"].co_varnames, "maybeDeferred's f")
    _require(codes["race"].co_varnames[:1] == ("ds",), "race's ds")
    return codes


_CODES: dict[str, CodeType] | None = _probe(
    "caller frames",
    "sys._getframe and the code of succeed, fail, maybeDeferred, Deferred.cancel and "
    "Deferred._runCallbacks",
    "who made a Deferred (succeed, fail, maybeDeferred), pause() told apart from Twisted's"
    " own, and cancels by a timeout or a race",
    _check_codes,
)


def caller(depth: int) -> FrameType | None:
    """The frame ``depth`` levels above the caller of this function (None if there is none)."""
    try:
        return sys._getframe(depth + 1)
    except ValueError:
        return None


def _function_name(fn: object) -> str:
    """A name for ``fn`` read without running any of its code (for maybeDeferred(f))."""
    if type(fn) is FunctionType:
        name = fn.__name__
        return "lambda" if name == "<lambda>" else name
    return type(fn).__name__


def made_by(frame: FrameType | None) -> str | None:
    """``succeed()``, ``fail()`` or ``maybeDeferred(f)`` when ``frame`` (the one that made a
    Deferred) is one of those; None otherwise."""
    if _CODES is None or frame is None:
        return None
    code = frame.f_code
    if code is _CODES["succeed"] or code is _CODES["fail"]:
        outer = frame.f_back
        if outer is not None and outer.f_code is _CODES["maybeDeferred"]:
            return f"maybeDeferred({_function_name(outer.f_locals.get('f'))})"
        return "succeed()" if code is _CODES["succeed"] else "fail()"
    return None


def made_in_twisted(frame: FrameType | None) -> FrameType | None:
    """The first frame outside ``twisted.internet.defer``, walking out from ``frame``."""
    while frame is not None and frame.f_code.co_filename == _DEFER_FILE:
        frame = frame.f_back
    return frame


_DEFER_FILE = defer.succeed.__code__.co_filename


def race_members(frame: FrameType | None) -> list[Any] | None:
    """The Deferreds ``race()`` was given, when ``frame`` is race() making its Deferred."""
    if _CODES is None or frame is None or frame.f_code is not _CODES["race"]:
        return None
    try:
        return list(frame.f_locals["ds"])
    except Exception:
        return None


def _inner_codes(*functions: Any) -> frozenset[int]:
    return frozenset(
        id(const)
        for fn in functions
        for const in fn.__code__.co_consts
        if isinstance(const, CodeType)
    )


_CANCELLERS: tuple[frozenset[int], frozenset[int]] | None = _probe(
    "cancellers",
    "the cancellers inlineCallbacks and race() give their Deferreds",
    "naming those cancellers",
    lambda: (
        _inner_codes(defer._cancellableInlineCallbacks, defer._handleCancelInlineCallbacks),
        _inner_codes(defer.race),
    ),
)


def inline_canceller(fn: object) -> bool:
    """True for the canceller of an inlineCallbacks or coroutine Deferred."""
    return (
        _CANCELLERS is not None and type(fn) is FunctionType and id(fn.__code__) in _CANCELLERS[0]
    )


def race_canceller(fn: object) -> bool:
    """True for the canceller of the Deferred ``race()`` returns."""
    return (
        _CANCELLERS is not None and type(fn) is FunctionType and id(fn.__code__) in _CANCELLERS[1]
    )


def cancel_cause(frame: FrameType | None) -> tuple[str, Deferred[Any] | None] | None:
    """Why ``cancel()`` was called, from the frame that called it: ``("timeout", None)`` for
    addTimeout's timer, ``("race", the race's Deferred)`` for race() cancelling the
    losers; None for anyone else."""
    if frame is None:
        return None
    code = frame.f_code
    if _TIMEOUT_CODES and _TIMEOUT_CODES.get(id(code)) == "timeItOut":
        return ("timeout", None)
    if _RACE_HOOKS and _RACE_HOOKS.get(id(code)) == "succeeded":
        final = frame.f_locals.get("final_result")
        return ("race", final if isinstance(final, Deferred) else None)
    return None


def is_chaining_pause(frame: FrameType | None) -> bool:
    """True when ``pause()`` was called by Twisted itself, chaining on an inner Deferred."""
    return _CODES is not None and frame is not None and frame.f_code is _CODES["runCallbacks"]


def knows_chaining() -> bool:
    """True when Twisted's own pause (chaining on an inner Deferred) can be told apart."""
    return _CODES is not None


def fired_by_cancel_fallback(frame: FrameType | None) -> bool:
    """True when ``errback(CancelledError)`` was called by ``cancel()`` itself (no canceller,
    or one that did not fire the Deferred), not by a canceller."""
    return _CODES is not None and frame is not None and frame.f_code is _CODES["cancel"]


# -- 5. returnValue: Twisted's frame-depth check, done as Twisted does it -------------------
def _check_return_value() -> int:
    depth = 1
    fn: Any = defer.returnValue
    while hasattr(fn, "__wrapped__"):
        depth += 1
        fn = fn.__wrapped__
    _require(issubclass(defer._DefGen_Return, BaseException), "_DefGen_Return")
    return depth


_RETURN_DEPTH: int | None = _probe(
    "returnValue check",
    "twisted.internet.defer._DefGen_Return and the frames of returnValue()",
    "inlineCallbacks generators that use returnValue() (Twisted's own check of where it"
    " was called, without the tracer's frames)",
    _check_return_value,
)


def is_return_value(exc: BaseException) -> bool:
    """True for the exception ``returnValue()`` raises to end a generator."""
    return _INLINE is not None and isinstance(exc, _INLINE[3])


@dataclass(frozen=True)
class ReturnValueCheck:
    """What Twisted's check would warn, had the tracer's frames not been in the way."""

    message: str
    filename: str
    lineno: int


def check_return_value(tb: TracebackType | None) -> ReturnValueCheck | None:
    """Twisted's check that ``returnValue()`` was called by the generator itself.

    ``tb`` is the traceback of ``_DefGen_Return`` starting at the generator's own frame.
    Returns the warning Twisted gives when ``returnValue`` was called from a function the
    generator called (so the tracer can give exactly that warning and no other), or None.
    """
    if _RETURN_DEPTH is None or tb is None:
        return None
    frames = []
    walk: TracebackType | None = tb
    while walk is not None:
        frames.append(walk)
        walk = walk.tb_next
    # the generator's frame, then returnValue's own frames: nothing in between if local
    if len(frames) <= 1 + _RETURN_DEPTH:
        return None
    ultimate = frames[-1 - _RETURN_DEPTH]
    message = (
        f"returnValue() in {ultimate.tb_frame.f_code.co_name!r} causing "
        f"{tb.tb_frame.f_code.co_name!r} to exit: returnValue should only be invoked by "
        "functions decorated with inlineCallbacks"
    )
    return ReturnValueCheck(message, ultimate.tb_frame.f_code.co_filename, ultimate.tb_lineno)
