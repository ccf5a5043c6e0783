"""The recording versions of Deferred's methods, put in place while a tracer records (private).

While at least one tracer records, a few public methods of ``Deferred`` and
``DeferredList`` (``__init__``, ``addCallbacks`` and friends, ``callback``, ``errback``,
``cancel``, ``pause``, ``unpause``, ``addTimeout``) and the function that drives
``inlineCallbacks`` generators and coroutines are replaced by recording versions; when the
last tracer stops, the originals are put back: the very same objects, so tracing off costs
nothing. Every private name of Twisted's that this needs is reached through
:mod:`._twisted` and nowhere else.

Each stage added to a traced Deferred records, as it runs, which side ran, what it got and
what it returned or raised, and hands the result on unchanged; the implicit pass-through
Twisted adds opposite a lone callback or errback is recorded too, so the trace shows which
side of every stage ran. The usual stage -- one of the learner's plain functions added by
``addCallback`` or ``addErrback`` with no extra arguments, while one tracer records -- goes
in as Twisted's own ``addBoth`` adds it, with one of two shared runners (:class:`StageRunner`),
Twisted keeping the function as the stage's argument: a traced chain of 10,000 stages makes
no wrapper per stage. Any other callback or errback is wrapped in a small callable
(:class:`Side`; the pass-through in :class:`Passing`). A wrapper answers to the attributes
of the callable it wraps (``__module__``, ``__code__``, ``__name__``...), and a runner to
those of the function whose stage has just returned its own Deferred, so the warning
Twisted gives about that names the learner's code, exactly as untraced.

The tracer's own code never lets an exception or a warning reach the traced program: a
recording step that fails is switched off for that event and noted in the trace ("not
traced here"), and the program goes on exactly as it would untraced.

Which Deferreds are traced: those *created* while a tracer is active in the current
``contextvars`` context (``with trace():`` sets it, and the notebook runtime copies the
cell's context into the reactor thread), or in the thread that started the tracer, or
anywhere with ``all_threads=True``; those handed to ``watch``; and every Deferred linked
to a traced one (returned by one of its stages, a member of a traced list or race,
awaited by a traced generator or coroutine, the target of ``chainDeferred``). Deferreds
the notebook runtime makes for its own bookkeeping are not traced.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.util
import pkgutil
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterable
from types import BuiltinFunctionType, FrameType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import AlreadyCalledError, Deferred, DeferredList
from twisted.python.failure import Failure

from . import _twisted
from ._twisted import add_both as _add_both
from ._twisted import deferred_types
from ._values import keep, summarize, summarize_exception, type_name
from .model import Event, Stage

if TYPE_CHECKING:
    from ._record import Rec, Recorder

__all__ = ["ACTIVE", "install", "recording", "uninstall"]

ACTIVE: contextvars.ContextVar[tuple[Recorder, ...]] = contextvars.ContextVar(
    "poetrylab_tracers", default=()
)
"""The tracers active in this context: Deferreds created here are traced by them."""

_install_lock = threading.Lock()
_recording: tuple[Recorder, ...] = ()
_tls = threading.local()
_DEFERRED = deferred_types()
_PLUMBING = _twisted.plumbing_codes()
_perf = time.perf_counter
_new = tuple.__new__
_PLAIN = frozenset({bool, float})  # kept as they are (see _values.keep)
# ints kept as they are without asking _values.keep: within one CPython "digit", so the
# interpreter compares them quickly (keep keeps larger ones too, up to 15 digits)
_SMALL_MAX = 2**30 - 1
_SMALL_MIN = -_SMALL_MAX


def recording() -> tuple[Recorder, ...]:
    """Every recorder now recording (any thread, any context)."""
    return _recording


def _runtime_modules() -> frozenset[str]:
    """The module names of the ``poetrylab.runtime`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("poetrylab.runtime")
    except (ImportError, ValueError):
        return frozenset()
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    subs = pkgutil.iter_modules(spec.submodule_search_locations, "poetrylab.runtime.")
    return frozenset({"poetrylab.runtime", *(info.name for info in subs)})


# The notebook runtime's own stages (the one that hands a result to the cell) are plumbing,
# told apart by the module that defines them; so are the Deferreds its code makes.
RUNTIME_MODULES = _runtime_modules()
# a function defined in one of these takes the general path (which names Twisted's plumbing
# and the runtime's stages): the fast path asks one set, not two
_GENERAL_MODULES = RUNTIME_MODULES | _twisted.plumbing_modules()


def _internal(recorders: Iterable[Recorder], what: str, exc: BaseException) -> None:
    """The tracer failed to record something: say so in the trace, never to the program."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise exc
    text = f"not traced here: {what} ({type(exc).__name__}: {exc})"
    for recorder in recorders:
        try:
            recorder.note(text)
        except Exception:
            continue


# -- naming callables, without running any of their code --------------------------------
def _static(obj: object, name: str) -> Any:
    """``obj.name`` looked up on its type and instance dict only: no ``__getattr__``."""
    try:
        found = object.__getattribute__(obj, name)
    except Exception:
        return None
    return found


def _short_qualname(qualname: str) -> str:
    return qualname.rsplit("<locals>.", 1)[-1]


def name_of(fn: object) -> str:
    """A short name for a callable: ``double``, ``Poem.tag``, ``list.append``, ``lambda``.

    Names are read from the function, method or type itself, never through an object's
    own ``__getattr__``, so naming can run none of the program's code and never raises.
    """
    try:
        kind = type(fn)
        if kind is FunctionType:
            name = _short_qualname(fn.__qualname__)  # type: ignore[attr-defined]
            return "lambda" if name.endswith("<lambda>") else name
        if kind is MethodType:
            owner = fn.__self__  # type: ignore[attr-defined]
            cls = owner if isinstance(owner, type) else type(owner)
            owner_name = _short_qualname(type_name(cls))
            return f"{owner_name}.{name_of(fn.__func__).rsplit('.', 1)[-1]}"  # type: ignore[attr-defined]
        if kind is functools.partial:
            return name_of(fn.func) + "(…)"  # type: ignore[attr-defined]
        if kind is BuiltinFunctionType:
            qualname = _static(fn, "__qualname__")
            owner = _static(fn, "__self__")
            if isinstance(qualname, str):
                if owner is None or isinstance(owner, type) or type(owner).__module__ == "builtins":
                    return qualname
                return qualname.rsplit(".", 1)[-1]
        qualname = _static(fn, "__qualname__")
        if (
            isinstance(qualname, str)
            and not isinstance(fn, type)
            and (
                kind.__module__ == "builtins"
                or "wrapper" in kind.__name__
                or "descriptor" in kind.__name__
            )
        ):
            return qualname
        if isinstance(fn, type):
            return type_name(fn)
        return type_name(kind)
    except Exception:
        return "?"


# -- which recorders want what -----------------------------------------------------------
def _targets(d: object) -> list[tuple[Recorder, Rec]]:
    """The recorders tracing ``d`` and their records of it."""
    key = id(d)
    out = []
    for recorder in _recording:
        rec = recorder._by_key.get(key)
        if rec is not None:
            out.append((recorder, rec))
    return out


def _interested(extra: Iterable[object] = ()) -> list[Recorder]:
    """The recorders that want a Deferred created now, here (see the module docstring)."""
    active = ACTIVE.get()
    me = threading.get_ident()
    stepping = getattr(_tls, "stepping", None)
    out = []
    for recorder in _recording:
        if (
            recorder.all_threads  # type: ignore[attr-defined]
            or recorder in active
            or recorder._owner == me  # type: ignore[attr-defined]
            or (stepping is not None and recorder in stepping.recorders)
            or any(id(x) in recorder._by_key for x in extra)
        ):
            out.append(recorder)
    return out


def _runtime_made(frame: FrameType | None) -> bool:
    """True when the code that made a Deferred (outside Twisted) is the notebook runtime's."""
    outside = _twisted.made_in_twisted(frame)
    return outside is not None and outside.f_globals.get("__name__") in RUNTIME_MODULES


# -- the wrappers placed in traced chains ------------------------------------------------
class Side:
    """One traced side of one stage: calls the learner's callable, records the run.

    ``targets`` are ``(recorder, rec, stage id)``; ``key`` is ``id()`` of the Deferred the
    stage belongs to (alive whenever the stage runs), to spot a stage returning it.
    Attributes it does not have are the wrapped callable's, so Twisted's warnings about a
    callback name the learner's function, not this class.
    """

    __slots__ = ("fn", "side", "targets", "key")

    def __init__(
        self, fn: Any, side: str, targets: tuple[tuple[Recorder, Rec, int], ...], key: int
    ) -> None:
        self.fn = fn
        self.side = side
        self.targets = targets
        self.key = key

    def __call__(self, result: Any, *args: Any, **kwargs: Any) -> Any:
        came = keep(result)
        start = _perf()
        try:
            out = self.fn(result, *args, **kwargs)
        except BaseException as exc:
            self._ran(came, exc, "raised", start)
            raise
        if type(out) in _DEFERRED:
            try:
                _returned_deferred(self.side, self.key, self.targets, came, out, _perf() - start)
            except Exception as error:
                _internal([t[0] for t in self.targets], "a stage that returned", error)
        else:
            self._ran(came, out, "returned", start)
        return out

    def _ran(self, came: Any, out: Any, outcome: str, start: float) -> None:
        """Record the run on every target (never raising into the chain)."""
        try:
            kept = summarize_exception(out) if outcome == "raised" else keep(out)
            for recorder, rec, sid in self.targets:
                if rec.untraced and not rec.reached:
                    recorder.reach(rec, came)
                recorder.ran(rec.did, sid, self.side, came, kept, outcome, None, _perf() - start)
        except Exception as error:
            _internal([t[0] for t in self.targets], f"a stage that {outcome}", error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fn, name)

    def __repr__(self) -> str:
        return f"<traced {self.side} {self.fn!r}>"


def _module_of_wrapped(self: Side) -> Any:
    return self.fn.__module__


# ``__module__`` is a class attribute of every class, so __getattr__ never sees it: answer
# with the wrapped callable's, as Twisted's warnAboutFunction looks it up.
Side.__module__ = property(_module_of_wrapped)  # type: ignore[assignment]


class Passing:
    """Twisted's implicit pass-through on one side of a traced stage: recorded, unchanged."""

    __slots__ = ("side", "targets")

    def __init__(self, side: str, targets: tuple[tuple[Recorder, Rec, int], ...]) -> None:
        self.side = side
        self.targets = targets

    def __call__(self, result: Any) -> Any:
        try:
            came = keep(result)
            for recorder, rec, sid in self.targets:
                if rec.untraced and not rec.reached:
                    recorder.reach(rec, came)
                recorder.ran(rec.did, sid, self.side, came, came, "passed", None, 0.0)
        except Exception as error:
            _internal([t[0] for t in self.targets], "a pass-through", error)
        return result


class StageRunner:
    """Runs and records the usual stage: one recorder, one of the learner's functions on
    one side, called with the result alone, and Twisted's implicit pass-through on the
    other side (see :func:`_fast_adder`).

    There are two of these, :data:`RUN_CALLBACK` and :data:`RUN_ERRBACK`, shared by every
    such stage: the stage goes in as Twisted's ``addBoth(runner, fn, rec, sid)`` puts it, so
    Twisted keeps the learner's function, the Deferred's record and the stage's id as the
    stage's arguments, and hands them back with the result -- a traced chain of 10,000
    stages makes no wrapper object per stage. Twisted calls a stage's errback exactly
    when the result is a Failure (``isinstance(result, Failure)``), so the runner tells
    which side it is called on by the same test (an exact int, float or bool is no
    Failure: for those, most results, the test is skipped): on its own side it runs the
    function, on the other it passes the result through, and records either.

    Twisted names the function of a stage that returned its own Deferred in a warning,
    reading ``__module__``, ``__code__`` and ``__globals__`` from the callable it called:
    the runner answers with those of the function that just did so (held by weak
    reference, per thread), so the warning names the learner's code, as untraced.
    """

    __slots__ = ("on_errback", "side", "other")

    def __init__(self, on_errback: bool) -> None:
        self.on_errback = on_errback
        self.side = "errback" if on_errback else "callback"
        self.other = "callback" if on_errback else "errback"

    def __call__(self, result: Any, fn: Any, rec: Rec, sid: int) -> Any:
        recorder = rec.recorder
        if result is rec.plain or (
            (kind := type(result)) is int and _SMALL_MIN <= result <= _SMALL_MAX or kind in _PLAIN
        ):
            came = result
            if self.on_errback:  # a plain value is no Failure: Twisted chose the callback
                return _passed(recorder, rec, sid, "callback", result)
        elif isinstance(result, Failure) is not self.on_errback:
            return _passed(recorder, rec, sid, self.other, result)
        else:
            came = keep(result)
        counter, append, here, clock = recorder._hot
        start = clock()
        try:
            out = fn(result)
        except BaseException as exc:
            _raised(recorder, rec, sid, self.side, came, exc, clock() - start)
            raise
        kind = type(out)
        if (kind is int and _SMALL_MIN <= out <= _SMALL_MAX) or kind in _PLAIN:
            kept = rec.plain = out
        elif kind in _DEFERRED:
            _ran_to_deferred(self.side, fn, rec, sid, came, out, clock() - start)
            return out
        else:
            kept = keep(out)
        if recorder._recording:
            end = clock()
            try:
                try:
                    thread = here.name
                except AttributeError:  # the first event this recorder sees in this thread
                    thread = recorder._thread()
                # Recorder.ran's event, built here: this runs once per stage of every chain
                append(
                    _new(
                        Event,
                        (
                            next(counter),
                            end - recorder._t0,
                            thread,
                            rec.did,
                            "stage_ran",
                            sid,
                            self.side,
                            came,
                            kept,
                            "returned",
                            None,
                            None,
                            None,
                            end - start,
                        ),
                    )
                )
            except Exception as error:
                _internal([recorder], "a stage that returned", error)
        return out

    def __repr__(self) -> str:
        return f"<traced {self.side}s>"


def _offender() -> Any:
    """The function whose stage last returned its own Deferred, in this thread."""
    ref = getattr(_tls, "offender", None)
    fn = ref() if ref is not None else None
    if fn is None:
        raise AttributeError("no traced stage returned its own Deferred here")
    return fn


def _offender_module(self: StageRunner) -> Any:
    try:
        return _offender().__module__
    except AttributeError:
        return __name__


def _forwarded(name: str) -> property:
    def get(self: StageRunner) -> Any:
        return getattr(_offender(), name)

    return property(get)


StageRunner.__module__ = property(_offender_module)  # type: ignore[assignment]
for _name in ("__code__", "__globals__"):
    setattr(StageRunner, _name, _forwarded(_name))

RUN_CALLBACK = StageRunner(False)
RUN_ERRBACK = StageRunner(True)


def _passed(recorder: Recorder, rec: Rec, sid: int, side: str, result: Any) -> Any:
    """Twisted's implicit pass-through on ``side`` of a usual stage: recorded; returns the
    result unchanged."""
    try:
        if recorder._recording:
            came = keep(result)
            recorder.ran(rec.did, sid, side, came, came, "passed", None, 0.0)
    except Exception as error:
        _internal([recorder], "a pass-through", error)
    return result


def _raised(
    recorder: Recorder, rec: Rec, sid: int, side: str, came: Any, exc: BaseException, spent: float
) -> None:
    """The learner's function in a usual stage raised: record it (never raising)."""
    try:
        if recorder._recording:
            failure = summarize_exception(exc)
            recorder.ran(rec.did, sid, side, came, failure, "raised", None, spent)
    except Exception as error:
        _internal([recorder], "a stage that raised", error)


def _ran_to_deferred(
    side: str, fn: Any, rec: Rec, sid: int, came: Any, out: Any, spent: float
) -> None:
    """The learner's function in a usual stage returned a Deferred: record it (never
    raising). When it is the stage's own Deferred, Twisted is about to warn, naming the
    function through the runner (see :class:`StageRunner`)."""
    try:
        if id(out) == rec.key:
            _tls.offender = weakref.ref(fn)
        _returned_deferred(side, rec.key, ((rec.recorder, rec, sid),), came, out, spent)
    except Exception as error:
        _internal([rec.recorder], "a stage that returned", error)


class ListSide(Side):
    """A DeferredList's or race's hook on a member: also records what the member gave."""

    __slots__ = ("lists",)

    def __init__(
        self,
        fn: Any,
        side: str,
        targets: tuple[tuple[Recorder, Rec, int], ...],
        key: int,
        lists: tuple[int, ...],
    ) -> None:
        super().__init__(fn, side, targets, key)
        self.lists = lists

    def __call__(self, result: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            index = args[0] if args else None
            # a DeferredList's hook gets (index, succeeded); race()'s gets (index,)
            succeeded = args[1] if len(args) > 1 else self.side == "callback"
            value = keep(result)
            outcome = "success" if succeeded else "failure"
            for (recorder, rec, _sid), list_did in zip(self.targets, self.lists, strict=True):
                recorder.emit(
                    list_did,
                    "member_result",
                    value=value,
                    outcome=outcome,
                    other=rec.did,
                    slot=index,
                )
        except Exception as error:
            _internal([t[0] for t in self.targets], "a list member's result", error)
        return super().__call__(result, *args, **kwargs)


ListSide.__module__ = property(_module_of_wrapped)  # type: ignore[assignment]


class Resumed:
    """Placed on an inner Deferred a chain waits on, just before Twisted hands its result
    to the waiting chain: records the resumption. Returns the result unchanged."""

    __slots__ = ("targets",)

    def __init__(self, targets: tuple[tuple[Recorder, int, int], ...]) -> None:
        self.targets = targets

    def __call__(self, result: Any) -> Any:
        try:
            value = keep(result)
            for recorder, outer, inner in self.targets:
                recorder.emit(outer, "resumed", value=value, other=inner)
        except Exception as error:
            _internal([t[0] for t in self.targets], "a resumption", error)
        return result


def _returned_deferred(
    side: str,
    key: int,
    targets: tuple[tuple[Recorder, Rec, int], ...],
    came: Any,
    inner: Any,
    duration: float,
) -> None:
    """A stage returned a Deferred: record it. Whether the chain then waits on it is
    recorded when Twisted pauses the chain (:func:`_p_pause`): Twisted may not get that
    far (its warning about a stage returning its own Deferred can raise, when warnings
    are errors), and the record says only what happened."""
    if id(inner) == key:
        for recorder, rec, sid in targets:
            if rec.untraced and not rec.reached:
                recorder.reach(rec, came)
            itself = summarize(inner, rec.did)
            recorder.ran(rec.did, sid, side, came, itself, "returned", rec.did, duration)
        return
    waits = _twisted.would_wait_on(inner)
    for recorder, rec, sid in targets:
        if not recorder._recording:
            continue
        if rec.untraced and not rec.reached:
            recorder.reach(rec, came)
        irec = recorder.register(inner, origin="inner", parent=rec.did)
        recorder.ran(
            rec.did, sid, side, came, summarize(inner, irec.did), "returned", irec.did, duration
        )
        recorder.note_fired(inner, irec)
        if not waits:
            took = keep(_twisted.current_result(inner))
            recorder.emit(rec.did, "adopted", value=took, other=irec.did)
        elif not _twisted.knows_chaining():
            _waits(recorder, rec, inner)  # no way to see Twisted's pause: say it now
            _orig["add_both"](inner, Resumed(((recorder, rec.did, irec.did),)))


def _waits(recorder: Recorder, rec: Rec, inner: Any) -> int | None:
    """Record that ``rec``'s chain now waits on ``inner`` (itself, maybe)."""
    if recorder.rec_for(inner) is rec:
        recorder.emit(rec.did, "paused", other=rec.did, detail="itself")
        return None
    irec = recorder.register(inner, origin="inner", parent=rec.did)
    recorder.emit(rec.did, "paused", other=irec.did)
    return irec.did


def _chained(d: Any) -> None:
    """Twisted paused ``d`` to wait on the Deferred one of its stages returned."""
    inner = _twisted.current_result(d)
    if not _twisted.is_deferred(inner):
        return
    resumes = []
    for recorder, rec in _targets(d):
        inner_did = _waits(recorder, rec, inner)
        if inner_did is not None:
            resumes.append((recorder, rec.did, inner_did))
    if resumes:
        # runs as the inner Deferred's last stage, just before Twisted hands its result on
        _orig["add_both"](inner, Resumed(tuple(resumes)))


# -- describing what is added to a chain -------------------------------------------------
def _function_name(fn: Any) -> str:
    name: str = fn.__qualname__
    if "<" in name:
        name = name.rsplit("<locals>.", 1)[-1]
        if name.endswith("<lambda>"):
            return "lambda"
    return name


def _describe(fn: Any, args: tuple[Any, ...], recorder: Recorder, owner: Rec) -> tuple[str, str]:
    """``(name, role)`` of a callable added to a traced Deferred's chain."""
    if type(fn) is FunctionType and id(fn.__code__) not in _PLUMBING:
        # the usual case: one of the learner's functions (or the runtime's hand-over)
        return _function_name(fn), ("runtime" if fn.__module__ in RUNTIME_MODULES else "user")
    hook = _twisted.list_of_hook(fn)
    if hook is not None:
        rec = recorder.register(hook, kind="DeferredList")
        return f"→ #{rec.did}[{args[0] if args else '?'}]", "list"
    race = _twisted.race_of_hook(fn)
    if race is not None:
        rec = recorder.register(race[0], kind="race", made_by="race(…)")
        if owner.did not in rec.members:
            rec.members.append(owner.did)
        return f"→ #{rec.did}[{args[0] if args else '?'}]", "list"
    if _twisted.is_gather_unwrap(fn):
        owner.kind = "gatherResults"
        return "unwrap results", "gather"
    part = _twisted.inline_part(fn)
    if part == "resume":
        gen = _twisted.generator_of_resume(args)
        name = gen.name if isinstance(gen, GeneratorProbe) else name_of(gen) + "()"
        return f"→ {name}", "inline"
    if part == "cancel":
        return "cancel the awaited Deferred", "inline"
    part = _twisted.timeout_part(fn)
    if part is not None:
        return ("to TimeoutError" if part == "convert" else "stop the timer"), "timeout"
    if type(fn) is MethodType:
        target = fn.__self__
        if type(target) in _DEFERRED and fn.__name__ in ("callback", "errback"):
            rec = recorder.register(target, origin="chained", parent=owner.did)
            return f"#{rec.did}.{fn.__name__}", "chain"
    if _module_of(fn) in RUNTIME_MODULES:
        return name_of(fn), "runtime"
    return name_of(fn), "user"


def _module_of(fn: object) -> str | None:
    """The module that defines a callable, read without running any of its code."""
    try:
        while True:
            kind = type(fn)
            if kind is MethodType:
                fn = fn.__func__  # type: ignore[attr-defined]
            elif kind is functools.partial:
                fn = fn.func  # type: ignore[attr-defined]
            else:
                break
        module = _static(fn, "__module__") if type(fn) is FunctionType else None
        if module is None:
            module = vars(type(fn)).get("__module__")
        return module if isinstance(module, str) else None
    except Exception:
        return None


def _add(
    d: Any,
    callback: Any,
    errback: Any,
    cb_args: tuple[Any, ...],
    cb_kw: Any,
    eb_args: tuple[Any, ...],
    eb_kw: Any,
    cb_implicit: bool,
    eb_implicit: bool,
    targets: list[tuple[Recorder, Rec]],
) -> tuple[Any, Any]:
    """Record a stage on every target; return the (callback, errback) to put in the chain."""
    stage_targets = []
    lists = []
    for recorder, rec in targets:
        if not rec.fired:
            recorder.note_fired(d, rec)
        if cb_implicit:
            cb_name, role = "passthru", "user"
        else:
            cb_name, role = _describe(callback, cb_args, recorder, rec)
        if eb_implicit:
            eb_name = "passthru"
        elif errback is callback:
            eb_name = cb_name
        else:
            eb_name, eb_role = _describe(errback, eb_args, recorder, rec)
            role = eb_role if role == "user" else role
        if role == "list":
            hook = _twisted.list_of_hook(callback)
            race = _twisted.race_of_hook(callback)
            owner = hook if hook is not None else (race[0] if race is not None else None)
            lists.append(recorder.register(owner).did if owner is not None else 0)
        first = _twisted.inline_part(errback) == "cancel"
        sid = recorder.add_stage(rec, cb_name, eb_name, cb_implicit, eb_implicit, role, first)
        stage_targets.append((recorder, rec, sid))
    key = id(d)
    stages = tuple(stage_targets)
    if lists and len(lists) == len(stages):
        return (
            ListSide(callback, "callback", stages, key, tuple(lists)),
            ListSide(errback, "errback", stages, key, tuple(lists)),
        )
    cb = Passing("callback", stages) if cb_implicit else Side(callback, "callback", stages, key)
    eb = Passing("errback", stages) if eb_implicit else Side(errback, "errback", stages, key)
    return cb, eb


# -- the recording methods -------------------------------------------------------------------
_orig: dict[str, Any] = {}
# the originals the hot paths call, bound when the patches go in
_orig_add_callbacks: Any = Deferred.addCallbacks
_orig_add_callback: Any = Deferred.addCallback
_orig_add_errback: Any = Deferred.addErrback
_single: Recorder | None = None  # the one recorder recording, when there is exactly one


def _p_init(self: Any, canceller: Any = None) -> None:
    _orig["init"](self, canceller)
    if not _recording:
        return
    try:
        _created(self, canceller, _twisted.caller(1))
    except Exception as error:
        _internal(_recording, "a new Deferred", error)


def _created(d: Any, canceller: Any, frame: FrameType | None) -> None:
    probe = getattr(_tls, "probe", None)
    if probe is not None:
        _tls.probe = None
        probe.bind(d, None if canceller is None else _canceller_name(canceller))
        return
    if any(recorder._by_key.get(id(d)) is not None for recorder in _recording):
        return  # a DeferredList, registered as such
    members = _twisted.race_members(frame)
    recorders = _interested(members or ())
    if not recorders or (_runtime_made(frame) and members is None):
        return
    name = None if canceller is None else _canceller_name(canceller)
    made_by = _twisted.made_by(frame)
    if made_by is None:
        made_by = f"Deferred({name})" if name else "Deferred()"
    for recorder in recorders:
        if members is None:
            recorder.register(d, made_by=made_by, canceller=name)
            continue
        # race(): its members come with it, as a DeferredList's do
        rec = recorder.register(d, kind="race", made_by="race(…)", canceller=name)
        for member in members:
            mrec = recorder.register(member, origin="member", parent=rec.did)
            recorder.note_fired(member, mrec)
            if mrec.did not in rec.members:
                rec.members.append(mrec.did)


def _canceller_name(canceller: Any) -> str:
    if _twisted.inline_canceller(canceller):
        return "stop the generator"
    if _twisted.race_canceller(canceller):
        return "cancel every member"
    return name_of(canceller)


def _stage_arguments(
    callback: Any,
    errback: Any = None,
    callbackArgs: Any = (),
    callbackKeywords: Any = None,
    errbackArgs: Any = (),
    errbackKeywords: Any = None,
) -> tuple[Any, Any, tuple[Any, ...], Any, tuple[Any, ...], Any]:
    """``addCallbacks``' arguments, by name, as Twisted reads them (None means empty)."""
    return (
        callback,
        errback,
        tuple(callbackArgs or ()),
        callbackKeywords or {},
        tuple(errbackArgs or ()),
        errbackKeywords or {},
    )


def _p_add_callbacks(self: Any, *args: Any, **kwargs: Any) -> Any:
    if _recording:
        targets = _targets(self)
        if targets:
            try:
                callback, errback, cb_args, cb_kw, eb_args, eb_kw = _stage_arguments(
                    *args, **kwargs
                )
                cb, eb = _add(
                    self,
                    callback,
                    errback,
                    cb_args,
                    cb_kw,
                    eb_args,
                    eb_kw,
                    False,
                    errback is None,
                    targets,
                )
            except Exception as error:
                _internal([t[0] for t in targets], "a stage added", error)
            else:
                return _orig_add_callbacks(self, cb, eb, cb_args, cb_kw, eb_args, eb_kw)
    return _orig_add_callbacks(self, *args, **kwargs)


def _fast_adder(runner: StageRunner, slow: Any) -> Any:
    """The recording ``addCallback`` (``runner`` is :data:`RUN_CALLBACK`) or
    ``addErrback`` (:data:`RUN_ERRBACK`).

    The usual stage -- one recorder, one of the learner's plain functions, no extra
    arguments, Twisted's pass-through on the other side -- is recorded right here: its
    :class:`~.model.Stage` and its ``stage_added`` event are built as
    :meth:`Recorder.add_stage` would build them, and the stage goes in with Twisted's own
    ``addBoth(runner, fn, rec, sid)`` (see :class:`StageRunner`; :func:`._twisted.add_both`
    does what Twisted's ``addBoth`` does without calling it). Anything else goes to
    ``slow``, the general path: another recorder, extra arguments, any other callable,
    Twisted's plumbing and the notebook runtime's stages (told by the module defining the
    function), and a Deferred whose stages added before tracing are still to run (the
    general path records what comes out of them). A traced chain of 10,000 stages comes
    through here 10,000 times.
    """
    on_errback = runner.on_errback

    def add(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = _single
        if recorder is not None and type(fn) is FunctionType and not args and not kwargs:
            rec = recorder._by_key.get(id(self))
            if rec is not None and (not rec.untraced or rec.reached):
                try:
                    general = fn.__module__ in _GENERAL_MODULES
                    if not general:
                        if not rec.fired and self.called:
                            recorder.note_fired(self, rec)
                        name = fn.__qualname__
                        if "<" in name:
                            name = _function_name(fn)
                        stages = rec.stages
                        sid = len(stages)
                        counter, append, here, clock = recorder._hot
                        seq = next(counter)
                        try:
                            thread = here.name
                        except AttributeError:  # the first event it sees in this thread
                            thread = recorder._thread()
                        if on_errback:
                            stage = _new(Stage, (sid, "passthru", name, True, False, "user", seq))
                        else:
                            stage = _new(Stage, (sid, name, "passthru", False, True, "user", seq))
                        stages.append(stage)
                        append(
                            _new(
                                Event,
                                (
                                    seq,
                                    clock() - recorder._t0,
                                    thread,
                                    rec.did,
                                    "stage_added",
                                    sid,
                                    None,
                                    None,
                                    None,
                                    None,
                                    None,
                                    None,
                                    None,
                                    None,
                                ),
                            )
                        )
                except Exception as error:
                    _internal([recorder], "a stage added", error)
                else:
                    if not general:  # outside the try: what Twisted raises is the program's
                        return _add_both(self, runner, (fn, rec, sid))
        return slow(self, fn, *args, **kwargs)

    return add


def _add_callback(self: Any, callback: Any, *args: Any, **kwargs: Any) -> Any:
    """``addCallback``, recorded by the general path."""
    if _recording:
        targets = _targets(self)
        if targets:
            try:
                cb, eb = _add(self, callback, None, args, kwargs, (), {}, False, True, targets)
            except Exception as error:
                _internal([t[0] for t in targets], "a stage added", error)
            else:
                return _orig_add_callbacks(self, cb, eb, args, kwargs)
    return _orig_add_callback(self, callback, *args, **kwargs)


def _add_errback(self: Any, errback: Any, *args: Any, **kwargs: Any) -> Any:
    """``addErrback``, recorded by the general path."""
    if _recording:
        targets = _targets(self)
        if targets:
            try:
                cb, eb = _add(self, None, errback, (), {}, args, kwargs, True, False, targets)
            except Exception as error:
                _internal([t[0] for t in targets], "a stage added", error)
            else:
                return _orig_add_callbacks(self, cb, eb, (), {}, args, kwargs)
    return _orig_add_errback(self, errback, *args, **kwargs)


_p_add_callback = _fast_adder(RUN_CALLBACK, _add_callback)
_p_add_errback = _fast_adder(RUN_ERRBACK, _add_errback)


def _p_add_both(self: Any, callback: Any, *args: Any, **kwargs: Any) -> Any:
    if _recording:
        targets = _targets(self)
        if targets:
            try:
                cb, eb = _add(
                    self, callback, callback, args, kwargs, args, kwargs, False, False, targets
                )
            except Exception as error:
                _internal([t[0] for t in targets], "a stage added", error)
            else:
                return _orig_add_callbacks(self, cb, eb, args, kwargs, args, kwargs)
    return _orig["add_both"](self, callback, *args, **kwargs)


def _fire(d: Any, method: str, arg: Any, summary: Any, frame: FrameType | None) -> None:
    targets = _targets(d)
    for recorder, rec in targets:
        recorder.note_fired(d, rec)
    if d.called:
        try:
            _orig[method](d, arg)
        except AlreadyCalledError:
            for recorder, rec in targets:
                recorder.emit(
                    rec.did,
                    "fire_rejected",
                    value=summary,
                    outcome=method,
                    detail="AlreadyCalledError",
                )
            raise
        for recorder, rec in targets:
            recorder.emit(
                rec.did,
                "fire_ignored",
                value=summary,
                outcome=method,
                detail="cancelled earlier: this late result is dropped",
            )
        return None
    how, note = method, None
    if _cancelling(d):
        how = "cancel"
        if _twisted.fired_by_cancel_fallback(frame):
            note = f"{method}, no canceller fired it"
        else:
            note = f"{method} from its canceller"
    for recorder, rec in targets:
        rec.fired = True
        if rec.untraced and not rec.reached:
            continue  # what matters comes out of the untraced stages
        if how == method and rec.made_by.startswith(("succeed()", "fail()", "maybeDeferred(")):
            # fail() and maybeDeferred fire the Deferred before handing it over, as
            # succeed() does without calling callback(): the same story for all three
            recorder.emit(
                rec.did,
                "fired",
                value=summary,
                outcome="already",
                detail="fired at once by " + rec.made_by.split("(")[0] + "()",
            )
            continue
        recorder.emit(rec.did, "fired", value=summary, outcome=how, detail=note)
    return _orig[method](d, arg)  # type: ignore[no-any-return]


def _p_callback(self: Any, result: Any) -> None:
    if _recording and _targets(self):
        try:
            summary = keep(result)
            frame = _twisted.caller(1)
        except Exception as error:
            _internal(_recording, "a firing", error)
        else:
            return _fire(self, "callback", result, summary, frame)
    return _orig["callback"](self, result)  # type: ignore[no-any-return]


def _p_errback(self: Any, fail: Any = None) -> None:
    if _recording and _targets(self):
        try:
            if fail is None:
                current = sys.exc_info()[1]
                summary = None if current is None else summarize_exception(current)
            elif isinstance(fail, BaseException):
                summary = summarize_exception(fail)
            else:
                summary = keep(fail)
            frame = _twisted.caller(1)
        except Exception as error:
            _internal(_recording, "a firing", error)
        else:
            if summary is not None:  # with no current exception Twisted raises: nothing fired
                return _fire(self, "errback", fail, summary, frame)
    return _orig["errback"](self, fail)  # type: ignore[no-any-return]


def _cancel_stack() -> list[Any]:
    stack: list[Any] | None = getattr(_tls, "cancels", None)
    if stack is None:
        stack = _tls.cancels = []
    return stack


def _cancelling(d: object) -> bool:
    return any(entry is d for entry in getattr(_tls, "cancels", ()))


def _cancel(d: Any, orig: Any, frame: FrameType | None) -> None:
    targets = _targets(d)
    stack = _cancel_stack()
    by = stack[-1] if stack else None
    cause = None if by is not None else _twisted.cancel_cause(frame)
    canceller = None
    try:
        if not d.called:
            state = "pending"
            canceller = _twisted.canceller_of(d)
        elif type(_twisted.current_result(d)) in _DEFERRED:
            state = "waiting"
        else:
            state = "fired"
        for recorder, rec in targets:
            recorder.note_fired(d, rec)
            if cause is not None and cause[0] == "timeout":
                outcome, other = "timeout", None
            elif by is not None or cause is not None:
                parent = by if by is not None else cause[1]  # type: ignore[index]
                prec = recorder.rec_for(parent) if parent is not None else None
                outcome, other = "deferred", (prec.did if prec is not None else None)
            else:
                outcome, other = "user", None
            recorder.emit(rec.did, "cancel", outcome=outcome, other=other, detail=state)
            if canceller is not None:
                recorder.emit(rec.did, "canceller", detail=_canceller_name(canceller))
    except Exception as error:
        _internal([t[0] for t in targets], "a cancel", error)
    stack.append(d)
    try:
        orig(d)
    except BaseException as exc:
        if canceller is not None:
            failure = summarize_exception(exc)
            for recorder, rec in targets:
                recorder.emit(
                    rec.did,
                    "canceller",
                    outcome="raised",
                    result=failure,
                    detail=_canceller_name(canceller),
                )
        raise
    finally:
        stack.pop()


def _p_cancel(self: Any) -> None:
    if _recording and _targets(self):
        return _cancel(self, _orig["cancel"], _twisted.caller(1))
    return _orig["cancel"](self)  # type: ignore[no-any-return]


def _p_dl_cancel(self: Any) -> None:
    if _recording and _targets(self):
        return _cancel(self, _orig["dl_cancel"], _twisted.caller(1))
    return _orig["dl_cancel"](self)  # type: ignore[no-any-return]


def _p_pause(self: Any) -> None:
    if _recording:
        targets = _targets(self)
        if targets:
            try:
                if _twisted.is_chaining_pause(_twisted.caller(1)):
                    _chained(self)
                else:
                    for recorder, rec in targets:
                        rec.held += 1
                        recorder.emit(rec.did, "held", slot=rec.held)
            except Exception as error:
                _internal([t[0] for t in targets], "a pause", error)
    return _orig["pause"](self)  # type: ignore[no-any-return]


def _p_unpause(self: Any) -> None:
    if _recording:
        for recorder, rec in _targets(self):
            rec.held = max(0, rec.held - 1)
            recorder.emit(rec.did, "released", slot=rec.held)
    return _orig["unpause"](self)  # type: ignore[no-any-return]


def _p_add_timeout(self: Any, timeout: float, clock: Any, onTimeoutCancel: Any = None) -> Any:
    if _recording:
        for recorder, rec in _targets(self):
            try:
                recorder.emit(rec.did, "timeout_set", detail=f"{timeout:g} s")
            except Exception as error:
                _internal([recorder], "addTimeout", error)
    return _orig["add_timeout"](self, timeout, clock, onTimeoutCancel)


def _p_dl_init(
    self: Any,
    deferredList: Iterable[Any],
    fireOnOneCallback: bool = False,
    fireOnOneErrback: bool = False,
    consumeErrors: bool = False,
) -> None:
    members = list(deferredList)
    if _recording:
        try:
            options = {
                "fireOnOneCallback": bool(fireOnOneCallback),
                "fireOnOneErrback": bool(fireOnOneErrback),
                "consumeErrors": bool(consumeErrors),
            }
            made_by_runtime = _runtime_made(_twisted.caller(1))
            for recorder in _interested(members):
                if made_by_runtime and not any(id(m) in recorder._by_key for m in members):
                    continue
                rec = recorder.register(
                    self, kind="DeferredList", options=options, made_by="DeferredList(…)"
                )
                for member in members:
                    mrec = recorder.register(member, origin="member", parent=rec.did)
                    recorder.note_fired(member, mrec)
                    rec.members.append(mrec.did)
        except Exception as error:
            _internal(_recording, "a DeferredList", error)
    _orig["dl_init"](self, members, fireOnOneCallback, fireOnOneErrback, consumeErrors)


# -- generators and coroutines -----------------------------------------------------------
class GeneratorProbe:
    """Stands in for a generator or coroutine that Twisted drives, recording each step.

    Twisted sends each result in (``send``) or throws each failure in (``throw``); the
    probe passes it on and records what came out: a yielded (awaited) Deferred, a return,
    or an exception. ``returnValue()`` is checked here as Twisted checks it (see
    :func:`~._twisted.check_return_value`), since the probe's own frames would otherwise
    make Twisted's check warn falsely; the generator's return is then handed to Twisted
    as a plain return.
    """

    def __init__(self, gen: Any, recorders: list[Recorder], parents: dict[Recorder, int]) -> None:
        self._gen = gen
        self.recorders = recorders
        self.name = _generator_name(gen) + "()"
        self.kind = "coroutine" if _static(gen, "cr_code") is not None else "inlineCallbacks"
        self._parents = parents  # the generator this one was made in, by recorder: ids only
        self._targets: list[tuple[Recorder, int]] = []

    def bind(self, d: Any, canceller: str | None = None) -> None:
        for recorder in self.recorders:
            parent = self._parents.get(recorder)
            fields: dict[str, Any] = {
                "kind": self.kind,
                "made_by": self.name,
                "coroutine": self.name,
                "canceller": canceller,
            }
            if parent is not None:
                fields.update(origin="awaited", parent=parent)
            rec = recorder.register(d, **fields)
            self._targets.append((recorder, rec.did))

    def send(self, value: Any) -> Any:
        return self._step("send", summarize(value), self._gen.send, value)

    def throw(self, *exc: Any) -> Any:
        first = exc[0] if exc else None
        came = summarize_exception(first) if isinstance(first, BaseException) else keep(first)
        return self._step("throw", came, self._gen.throw, *exc)

    def close(self) -> Any:
        return self._gen.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gen, name)

    def _step(self, side: str, came: Any, method: Any, *args: Any) -> Any:
        previous = getattr(_tls, "stepping", None)
        _tls.stepping = self
        start = _perf()
        try:
            out = method(*args)
        except StopIteration as stop:
            self._record(side, came, "returned", summarize(stop.value), None, start)
            raise
        except BaseException as exc:
            if _twisted.is_return_value(exc):
                value = getattr(exc, "value", None)
                self._record(side, came, "returned", summarize(value), None, start)
                # Twisted's own check, on the generator's frames only (not the probe's)
                check = _twisted.check_return_value(_generator_frames(exc.__traceback__))
                if check is not None:
                    warnings.warn_explicit(
                        check.message, DeprecationWarning, check.filename, check.lineno
                    )
                raise StopIteration(value) from None
            self._record(side, came, "raised", summarize_exception(exc), None, start)
            raise
        finally:
            _tls.stepping = previous
        try:
            if type(out) in _DEFERRED:
                for recorder, did in self._targets:
                    rec = recorder.register(out, origin="awaited", parent=did)
                    recorder.note_fired(out, rec)
                    recorder.emit(
                        did,
                        "step",
                        side=side,
                        value=came,
                        result=summarize(out, rec.did),
                        outcome="yielded",
                        other=rec.did,
                        duration=_perf() - start,
                    )
            else:
                self._record(side, came, "yielded", summarize(out), None, start)
        except Exception as error:
            _internal(self.recorders, "a generator step", error)
        return out

    def _record(
        self, side: str, came: Any, outcome: str, out: Any, other: int | None, start: float
    ) -> None:
        try:
            spent = _perf() - start
            for recorder, did in self._targets:
                recorder.emit(
                    did,
                    "step",
                    side=side,
                    value=came,
                    result=out,
                    outcome=outcome,
                    other=other,
                    duration=spent,
                )
        except Exception as error:
            _internal(self.recorders, "a generator step", error)


def _generator_name(gen: Any) -> str:
    """The name of the function a generator or coroutine came from (``total_words``)."""
    name = _static(gen, "__qualname__")
    return _short_qualname(name) if isinstance(name, str) else type_name(type(gen))


def _generator_frames(tb: Any) -> Any:
    """The traceback from the generator's own frame on: the probe's frames left out."""
    while tb is not None and tb.tb_frame.f_code in _PROBE_CODES:
        tb = tb.tb_next
    return tb


def _p_cic(gen: Any) -> Any:
    if not _recording:
        return _orig["cic"](gen)
    try:
        recorders = _interested()
        stepping = getattr(_tls, "stepping", None)
        parents = {} if stepping is None else dict(stepping._targets)
        probe = GeneratorProbe(gen, recorders, parents) if recorders else None
    except Exception as error:
        _internal(_recording, "a generator or coroutine", error)
        probe = None
    if probe is None:
        return _orig["cic"](gen)
    previous = getattr(_tls, "probe", None)
    _tls.probe = probe
    try:
        d = _orig["cic"](probe)
    finally:
        _tls.probe = previous
    if not probe._targets:  # Twisted built its Deferred some other way: bind late
        probe.bind(d)
    return d


_PROBE_CODES = frozenset(
    {GeneratorProbe._step.__code__, GeneratorProbe.send.__code__, GeneratorProbe.throw.__code__}
)


# -- putting the patches in and taking them out ------------------------------------------
def _patch_list() -> list[tuple[Any, str, str, Any]]:
    patches: list[tuple[Any, str, str, Any]] = [
        (Deferred, "__init__", "init", _p_init),
        (Deferred, "addCallbacks", "add_callbacks", _p_add_callbacks),
        (Deferred, "addCallback", "add_callback", _p_add_callback),
        (Deferred, "addErrback", "add_errback", _p_add_errback),
        (Deferred, "addBoth", "add_both", _p_add_both),
        (Deferred, "callback", "callback", _p_callback),
        (Deferred, "errback", "errback", _p_errback),
        (Deferred, "cancel", "cancel", _p_cancel),
        (Deferred, "pause", "pause", _p_pause),
        (Deferred, "unpause", "unpause", _p_unpause),
        (Deferred, "addTimeout", "add_timeout", _p_add_timeout),
        (DeferredList, "__init__", "dl_init", _p_dl_init),
        (DeferredList, "cancel", "dl_cancel", _p_dl_cancel),
    ]
    driver = _twisted.inline_driver()
    if driver is not None:
        patches.append((driver[0], driver[1], "cic", _p_cic))
    return patches


_saved: list[tuple[Any, str, Any]] = []


def install(recorder: Recorder) -> None:
    """Start ``recorder`` recording; the first one in puts the patches in place."""
    global _recording, _single, _orig_add_callbacks, _orig_add_callback, _orig_add_errback
    with _install_lock:
        if not _recording:
            current = {}
            for owner, name, key, patch in _patch_list():
                original = vars(owner)[name]
                current[key] = original
                _saved.append((owner, name, original))
                functools.update_wrapper(patch, original)
                setattr(owner, name, patch)
            _orig.update(current)
            _orig_add_callbacks = current["add_callbacks"]
            _orig_add_callback = current["add_callback"]
            _orig_add_errback = current["add_errback"]
        _recording = (*_recording, recorder)
        _single = _recording[0] if len(_recording) == 1 else None


def uninstall(recorder: Recorder) -> None:
    """Stop ``recorder``; the last one out puts every original back (the same objects)."""
    global _recording, _single
    with _install_lock:
        if recorder not in _recording:
            return
        _recording = tuple(r for r in _recording if r is not recorder)
        _single = _recording[0] if len(_recording) == 1 else None
        if not _recording:
            for owner, name, original in reversed(_saved):
                setattr(owner, name, original)
            _saved.clear()


def is_installed() -> bool:
    """True while the recording versions are in place."""
    return bool(_recording)


def active_here(recorder: Recorder) -> contextvars.Token[tuple[Recorder, ...]]:
    """Mark ``recorder`` active in the current context; returns the token to undo it."""
    return ACTIVE.set((*ACTIVE.get(), recorder))


def inactive_here(
    recorder: Recorder, token: contextvars.Token[tuple[Recorder, ...]] | None
) -> None:
    """Undo :func:`active_here` (from another context, just drop ``recorder``)."""
    if token is not None:
        try:
            ACTIVE.reset(token)
            return
        except ValueError:  # stopped in another context than it was started in
            pass
    ACTIVE.set(tuple(r for r in ACTIVE.get() if r is not recorder))
