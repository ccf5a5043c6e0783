"""The tracer: records what really happens to Deferreds, from a live run (notebooks 04-09).

While at least one :class:`Tracer` is recording, a few methods of ``Deferred`` and
``DeferredList`` (and the function that drives ``inlineCallbacks`` generators and
coroutines) are replaced by recording versions; when the last tracer stops, the originals
are put back -- the very same objects, so tracing off costs nothing. Each callback or
errback added to a traced Deferred is wrapped in a small shim that records what it got
and what it returned or raised; the implicit pass-through Twisted adds opposite a lone
callback or errback is wrapped too, so the trace shows which side of every stage ran.
``Deferred.callbacks`` (deprecated since Twisted 25.5) is never read.

Which Deferreds are traced:

- every Deferred *created* while the tracer records, in the thread that started it
  (all threads with ``all_threads=True``);
- every Deferred handed to :meth:`Tracer.watch` (from any thread); only the stages added
  after that are seen;
- and every Deferred linked to a traced one: returned by one of its stages (the outer
  chain pauses on it), a member of a traced DeferredList or ``race()``, awaited by a
  traced ``inlineCallbacks`` generator or coroutine, or the target of ``chainDeferred``.

Stages that are not the learner's get a role (see :mod:`.model`): Twisted's own plumbing
(``addTimeout``, DeferredList, ``race``, ``inlineCallbacks``) and the notebook runtime's
stage that hands a result to the cell (``runtime``: any callable from the
``poetrylab.runtime`` package), which the views show as plumbing, not as a stage.

Traced Deferreds may be fired in any thread (for instance crochet's reactor thread);
every event records its thread name and a timestamp from the tracer's clock. Recording is
guarded by a lock, so several threads can fire traced Deferreds at once.

Stages added before a Deferred was traced are invisible. When some are still to run as
it comes into sight (a watched Deferred built by a client), the tracer marks it
``untraced`` and records its firing only when the result comes out of those stages, with
the value the first traced stage will get (outcome ``untraced``): the value it was first
fired with, and any pause in between, happened out of sight. It finds those stages in
``Deferred._callbacks`` (private; if a future Twisted renames it, such Deferreds are
drawn as before, fired with their first value).

Caveats: a coroutine awaiting an already-fired Deferred goes on without a step the tracer
can see; a tracer keeps the Deferreds it traces alive until it stops.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import pkgutil
import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import CodeType, FunctionType, MethodType, TracebackType
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import AlreadyCalledError, Deferred, DeferredList

from ._values import ValueTuple, summarize, summarize_exception
from .model import DeferredInfo, Event, Ref, Stage, Trace, Value

__all__ = ["Tracer", "trace", "is_patched"]

_MISSING = object()
_NO_KEYWORDS = defer._NONE_KWARGS  # Twisted's own shared, read-only empty mapping

# -- global patch state ----------------------------------------------------------------
_install_lock = threading.Lock()
_active: tuple[Tracer, ...] = ()
_saved: list[tuple[Any, str, Any]] = []
_tls = threading.local()

# The originals, bound when the patches go in (they stay bound afterwards, so a patched
# method captured during tracing still works once tracing is off).
_orig_init: Any = Deferred.__init__
_orig_add_callbacks: Any = Deferred.addCallbacks
_orig_add_callback: Any = Deferred.addCallback
_orig_add_errback: Any = Deferred.addErrback
_orig_add_both: Any = Deferred.addBoth
_orig_callback: Any = Deferred.callback
_orig_errback: Any = Deferred.errback
_orig_cancel: Any = Deferred.cancel
_orig_add_timeout: Any = Deferred.addTimeout
_orig_dl_init: Any = DeferredList.__init__
_orig_dl_cancel: Any = DeferredList.cancel
_orig_cic: Any = defer._cancellableInlineCallbacks

_DEFERRED_TYPES = defer._DEFERRED_SUBCLASSES  # Twisted keeps this list up to date
_dl_cb_func = DeferredList.__dict__["_cbDeferred"]
_succeed_code = defer.succeed.__code__
_fail_code = defer.fail.__code__
_maybe_code = defer.maybeDeferred.__code__
_parse_list = getattr(defer, "_parseDeferredListResult", None)
_got_result = getattr(defer, "_gotResultInlineCallbacks", None)
_handle_cancel = getattr(defer, "_handleCancelInlineCallbacks", None)
_DefGenReturn = getattr(defer, "_DefGen_Return", None)
_race = getattr(defer, "race", None)
_race_code = getattr(_race, "__code__", None)
# race()'s hooks on its members: ``succeeded(result, index)`` and ``failed(failure, index)``
_RACE_HOOKS = {
    id(const): const.co_name
    for const in (_race_code.co_consts if _race_code is not None else ())
    if isinstance(const, CodeType) and const.co_name in ("succeeded", "failed")
}
# Code objects of Twisted's own callbacks, so a plain function is told apart from them with
# one set lookup: addTimeout's inner functions, and the helpers named above.
_SPECIAL_CODES = {
    id(const) for const in Deferred.addTimeout.__code__.co_consts if isinstance(const, CodeType)
} | {id(f.__code__) for f in (_parse_list, _got_result, _handle_cancel) if f is not None}
_SPECIAL_CODES |= set(_RACE_HOOKS)


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
# told apart by the module that defines them.
_RUNTIME_MODULES = _runtime_modules()


def is_patched() -> bool:
    """True while any tracer is recording (Twisted's classes are patched)."""
    return bool(_active)


def _ident() -> int:
    return threading.get_ident()


class _Rec:
    """What a tracer knows about one Deferred while recording (mutable, private)."""

    __slots__ = (
        "did",
        "label",
        "kind",
        "origin",
        "made_by",
        "parent",
        "canceller",
        "coroutine",
        "members",
        "options",
        "stages",
        "thread",
        "time",
        "seq",
        "fired",
        "untraced",
        "reached",
    )

    def __init__(self, did: int, **fields: Any) -> None:
        self.did = did
        self.label = f"d{did}"
        self.kind = "Deferred"
        self.origin = "created"
        self.made_by = "Deferred()"
        self.parent: int | None = None
        self.canceller: str | None = None
        self.coroutine: str | None = None
        self.members: list[int] = []
        self.options: dict[str, bool] = {}
        self.stages: list[list[Any]] = []
        self.thread = ""
        self.time = 0.0
        self.seq = 0
        self.fired = False
        self.untraced = False  # stages added before tracing were still to run when seen
        self.reached = False  # the result has come out of those stages
        for key, value in fields.items():
            setattr(self, key, value)


class Tracer:
    """Records the flow of Deferreds while it is active (see the module docstring).

    Use it as a context manager (``with Tracer() as t:`` or ``with trace() as t:``), or
    call :meth:`start` and :meth:`stop`. While and after recording it shows what it has
    seen: ``snapshot()`` returns the :class:`~poetrylab.tracing.model.Trace`, and the
    views of a Trace (``text``, ``diagram``, ``timeline``, ``step_through``, ``save``,
    ``to_json``, ``path``) are available on the tracer too, accepting live Deferreds where
    a Trace takes an id or label. A Tracer records once: start it again and it raises.

    ``clock`` gives the timestamps (seconds; default ``time.perf_counter``).
    ``all_threads=True`` traces Deferreds created in any thread, not just the one that
    started the tracer. Recording is thread-safe; ``start``/``stop`` may be called from
    any thread but not concurrently with each other.
    """

    def __init__(
        self,
        *deferreds: Deferred[Any],
        all_threads: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.all_threads = all_threads
        self._clock = clock
        self._lock = threading.Lock()
        self._events: list[tuple[Any, ...]] = []
        self._recs: list[_Rec] = []
        self._refs: dict[int, tuple[Any, _Rec]] = {}
        self._seq = 0
        self._t0 = 0.0
        self._owner = 0
        self._recording = False
        self._started = False
        self._final: Trace | None = None
        self._cache: tuple[int, Trace] | None = None
        self._after: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._after_ids: dict[int, int] = {}
        self._pending_watch = list(deferreds)
        self._names: dict[int, str] = {}

    # -- lifetime ----------------------------------------------------------------------
    def start(self) -> Tracer:
        """Start recording; installs the patches if no other tracer has. Returns self.

        Raises RuntimeError if this tracer has already been started.
        """
        global _active
        with _install_lock:
            if self._started:
                raise RuntimeError("a Tracer records once; make a new one")
            self._started = True
            self._owner = _ident()
            self._t0 = self._clock()
            if not _active:
                _install()
            self._recording = True
            _active = (*_active, self)
        for d in self._pending_watch:
            self.watch(d)
        self._pending_watch = []
        return self

    def stop(self) -> None:
        """Stop recording (the trace is built when first asked for, by :meth:`snapshot`).

        When this was the last recording tracer, every patched attribute is restored to
        the original object. Stopping twice is harmless. Shims already placed in live
        chains stay there but record nothing once their tracer has stopped.
        """
        global _active
        with _install_lock:
            if not self._recording:
                return
            self._note_all_fired()
            _active = tuple(t for t in _active if t is not self)
            if not _active:
                _uninstall()
            with self._lock:
                self._recording = False
                for key, (d, rec) in self._refs.items():
                    self._after[key] = d
                    self._after_ids[key] = rec.did
                self._refs = {}

    def __enter__(self) -> Tracer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def recording(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._recording

    # -- choosing what to trace --------------------------------------------------------
    def watch(self, d: Deferred[Any], label: str | None = None) -> Deferred[Any]:
        """Trace ``d`` from now on (any thread may fire it); returns ``d``.

        Stages added to ``d`` before this call are not seen. If some are still to run, the
        views show one "earlier stages not traced" row, and the firing is recorded when the
        result comes out of them (outcome ``untraced``), with the value the first traced
        stage gets. Otherwise, if ``d`` has already fired, its current result is recorded as
        ``fired`` with outcome ``already``.
        Before :meth:`start` the Deferred is remembered and watched when recording starts.

        Seeing what comes out of earlier stages takes one stage of the tracer's own, added
        to ``d`` here: so, like ``addCallback``, call ``watch`` in the thread that fires
        ``d`` (the reactor thread, for a Deferred from a Twisted client).
        """
        if not self._started:
            self._pending_watch.append(d)
            return d
        if not self._recording:
            raise RuntimeError("this tracer has stopped; watch() needs a recording tracer")
        kind = "DeferredList" if isinstance(d, DeferredList) else "Deferred"
        rec = self._register(d, origin="watched", kind=kind, made_by=f"{type(d).__name__}(…)")
        if label is not None:
            rec.label = label
        self._note_fired(d, rec)
        return d

    def label(self, d: Deferred[Any], name: str) -> None:
        """Name a traced Deferred in every view (instead of ``d1``, ``d2``...).

        Raises KeyError if ``d`` is not traced.
        """
        rec = self._rec_of(d)
        rec.label = name
        if self._final is not None:
            self._final.deferred(rec.did).label = name

    def id_of(self, d: Deferred[Any]) -> int:
        """The id of a traced Deferred in the trace. Raises KeyError if it is not traced."""
        got = self._refs.get(id(d))
        if got is not None:
            return got[1].did
        if self._after.get(id(d)) is d:
            return self._after_ids[id(d)]
        raise KeyError(f"{d!r} is not traced by this tracer")

    def _rec_of(self, d: Deferred[Any]) -> _Rec:
        got = self._refs.get(id(d))
        if got is not None:
            return got[1]
        if self._after.get(id(d)) is d:
            return self._recs[self._after_ids[id(d)] - 1]
        raise KeyError(f"{d!r} is not traced by this tracer")

    # -- results -----------------------------------------------------------------------
    def snapshot(self) -> Trace:
        """The trace recorded so far, as plain data (the same object until more happens).

        Once the tracer has stopped the trace is final: every call returns the same
        :class:`Trace`. Views on it built while recording show the trace so far.
        """
        if self._final is not None:
            return self._final
        if self._recording:
            self._note_all_fired()
        with self._lock:
            if self._final is not None:
                return self._final
            if self._cache is not None and self._cache[0] == (self._seq, self._labels()):
                return self._cache[1]
            result = self._build()
            if self._started and not self._recording:
                self._final = result
                self._events = []
            else:
                self._cache = ((self._seq, self._labels()), result)
            return result

    def _labels(self) -> tuple[str, ...]:
        return tuple(rec.label for rec in self._recs)

    def _ref(self, ref: Ref | Deferred[Any] | None) -> Ref | None:
        if isinstance(ref, Deferred):
            return self.id_of(ref)
        return ref

    def path(self, ref: Ref | Deferred[Any] | None = None) -> list[tuple[str, str, str]]:
        """``(side, name, outcome)`` of each stage that ran; see :meth:`Trace.path`."""
        return self.snapshot().path(self._ref(ref))

    def text(self, view: str = "chains", threads: bool = False) -> str:
        """The deterministic text rendering; see :meth:`Trace.text`."""
        return self.snapshot().text(view=view, threads=threads)

    def diagram(self, ref: Ref | Deferred[Any] | None = None, **options: Any) -> Any:
        """The two-column diagram as a matplotlib Figure; see :meth:`Trace.diagram`."""
        return self.snapshot().diagram(self._ref(ref), **options)

    def timeline(self, by: str = "deferred", **options: Any) -> Any:
        """The timeline Figure; see :meth:`Trace.timeline`."""
        return self.snapshot().timeline(by=by, **options)

    def step_through(self, ref: Ref | Deferred[Any] | None = None) -> Any:
        """The replay widget; see :meth:`Trace.step_through`."""
        return self.snapshot().step_through(self._ref(ref))

    def save(self, path: Any, view: str = "diagram", **options: Any) -> Any:
        """Write the diagram or timeline to a PNG/SVG file; see :meth:`Trace.save`."""
        return self.snapshot().save(path, view=view, **options)

    def to_json(self, indent: int | None = 1) -> str:
        """The trace as JSON; see :meth:`Trace.to_json`."""
        return self.snapshot().to_json(indent=indent)

    def _repr_svg_(self) -> str:
        return self.snapshot()._repr_svg_()

    def __repr__(self) -> str:
        state = "recording" if self._recording else ("stopped" if self._started else "idle")
        return f"<Tracer {state}: {len(self._recs)} Deferreds, {len(self._events)} events>"

    # -- recording (called from the patches, in any thread) ----------------------------
    def _register(self, d: Any, **fields: Any) -> _Rec:
        """The record for ``d``, creating it (and its ``created`` event) if new."""
        key = id(d)
        got = self._refs.get(key)
        if got is not None:
            return got[1]
        now = self._clock()
        thread = self._thread_name()
        with self._lock:
            got = self._refs.get(key)
            if got is not None:
                return got[1]
            rec = _Rec(len(self._recs) + 1, thread=thread, time=now, **fields)
            if not self._recording:
                return rec
            self._refs[key] = (d, rec)
            self._recs.append(rec)
            rec.seq = self._seq
            self._seq += 1
            self._events.append(
                (
                    rec.seq,
                    now,
                    thread,
                    rec.did,
                    "created",
                    None,
                    None,
                    None,
                    None,
                    None,
                    rec.parent,
                    None,
                    rec.origin,
                    None,
                )
            )
        if _untraced_ahead(d):
            # Stages added before tracing are still to run: record what comes out of them,
            # when it does, from a stage placed right after them.
            rec.untraced = True
            exit_ = _UntracedExit(self, rec)
            _orig_add_callbacks(d, exit_.run, exit_.run, (), _NO_KEYWORDS, (), _NO_KEYWORDS)
        return rec

    def _emit(
        self,
        did: int,
        kind: str,
        stage: int | None = None,
        side: str | None = None,
        value: ValueTuple | None = None,
        result: ValueTuple | None = None,
        outcome: str | None = None,
        other: int | None = None,
        slot: int | None = None,
        detail: str | None = None,
        duration: float | None = None,
        when: float | None = None,
    ) -> None:
        now = self._clock() if when is None else when
        thread = self._names.get(_ident()) or self._thread_name()
        with self._lock:
            if not self._recording:
                return
            seq = self._seq
            self._seq = seq + 1
            self._events.append(
                (
                    seq,
                    now,
                    thread,
                    did,
                    kind,
                    stage,
                    side,
                    value,
                    result,
                    outcome,
                    other,
                    slot,
                    detail,
                    duration,
                )
            )

    def _add_stage(
        self,
        rec: _Rec,
        callback: str,
        errback: str,
        cb_implicit: bool,
        eb_implicit: bool,
        role: str,
        first: bool = False,
    ) -> int:
        now = self._clock()
        thread = self._names.get(_ident()) or self._thread_name()
        with self._lock:
            seq = self._seq
            self._seq = seq + 1
            sid = len(rec.stages)
            # the stage_added event is made from this tuple when the trace is built
            stage = (sid, callback, errback, cb_implicit, eb_implicit, role, seq, now, thread)
            if first:
                rec.stages.insert(0, stage)
            else:
                rec.stages.append(stage)
        return sid

    def _run(
        self,
        did: int,
        sid: int,
        side: str,
        value: Any,
        result: Any,
        outcome: str,
        other: int | None,
        start: float | None,
    ) -> None:
        """Record one stage_ran event (the hot path: no keyword arguments)."""
        now = self._clock()
        thread = self._names.get(_ident()) or self._thread_name()
        with self._lock:
            if not self._recording:
                return
            seq = self._seq
            self._seq = seq + 1
            self._events.append(
                (
                    seq,
                    now,
                    thread,
                    did,
                    "stage_ran",
                    sid,
                    side,
                    value,
                    result,
                    outcome,
                    other,
                    None,
                    None,
                    0.0 if start is None else now - start,
                )
            )

    def _thread_name(self) -> str:
        name = threading.current_thread().name
        self._names[_ident()] = name
        return name

    def _id_in(self, d: Any) -> int | None:
        got = self._refs.get(id(d))
        return None if got is None else got[1].did

    def _note_fired(self, d: Any, rec: _Rec) -> None:
        """Record a firing that happened out of sight (``succeed()``, or before tracing)."""
        if rec.fired or not getattr(d, "called", False):
            return
        with self._lock:
            if rec.fired:
                return
            rec.fired = True
        if rec.untraced and not rec.reached:
            return  # still in the untraced stages: _UntracedExit records what comes out
        result = getattr(d, "result", None)
        if type(result) in _DEFERRED_TYPES:
            inner = self._register(result, origin="inner", parent=rec.did)
            self._note_fired(result, inner)
            value = summarize(result, inner.did)
            note = f"waiting on {inner.label}"
        else:
            value = summarize(result)
            note = "fired before the tracer saw it"
            if rec.made_by.startswith(_AT_ONCE):
                note = "fired at once by " + rec.made_by.split("(")[0] + "()"
        self._emit(rec.did, "fired", value=value, outcome="already", detail=note)

    def _note_all_fired(self) -> None:
        for d, rec in list(self._refs.values()):
            if not rec.fired:
                self._note_fired(d, rec)

    def _build(self) -> Trace:
        """Turn the raw records into a Trace (call with the lock held)."""
        t0 = self._t0
        labels = {rec.did: rec.label for rec in self._recs}
        deferreds = []
        for rec in self._recs:
            made_by = rec.made_by
            if rec.kind in ("DeferredList", "gatherResults", "race") and rec.origin != "watched":
                names = ", ".join(labels.get(m, "?") for m in rec.members)
                opts = "".join(f", {k}=True" for k, v in rec.options.items() if v)
                if rec.kind == "gatherResults":
                    opts = ", consumeErrors=True" if rec.options.get("consumeErrors") else ""
                elif rec.kind == "race":
                    opts = ""
                made_by = f"{rec.kind}([{names}]{opts})"
            stages = [Stage(*s[:7]) for s in rec.stages]
            for i, stage in enumerate(stages):
                if stage.role == "list":  # named "→ d3[0]" before the list could be labelled
                    stages[i] = replace(
                        stage,
                        callback=_relabel(stage.callback, labels),
                        errback=_relabel(stage.errback, labels),
                    )
            deferreds.append(
                DeferredInfo(
                    id=rec.did,
                    label=rec.label,
                    kind=rec.kind,
                    origin=rec.origin,
                    made_by=made_by,
                    parent=rec.parent,
                    canceller=rec.canceller,
                    coroutine=rec.coroutine,
                    members=list(rec.members),
                    options=dict(rec.options),
                    stages=stages,
                    untraced=rec.untraced,
                    thread=rec.thread,
                    time=rec.time - t0,
                    seq=rec.seq,
                )
            )
        events = []
        values: dict[Any, Value] = {}

        def value_of(raw: Any) -> Value | None:
            if raw is None:
                return None
            if type(raw) is not tuple:  # an immutable value kept as is, summarised now
                raw = summarize(raw)
            got = values.get(raw)
            if got is None:
                got = values[raw] = Value(*raw)
            return got

        raws = list(self._events)
        for rec in self._recs:
            for sid, _, _, _, _, _, seq, now, thread in rec.stages:
                raws.append(
                    (
                        seq,
                        now,
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
                    )
                )
        raws.sort(key=lambda raw: raw[0])
        for raw in raws:
            (
                seq,
                now,
                thread,
                did,
                kind,
                stage,
                side,
                value,
                result,
                outcome,
                other,
                slot,
                detail,
                duration,
            ) = raw
            events.append(
                Event(
                    seq,
                    now - t0,
                    thread,
                    did,
                    kind,
                    stage,
                    side,
                    value_of(value),
                    value_of(result),
                    outcome,
                    other,
                    slot,
                    detail,
                    duration,
                )
            )
        meta = {"all_threads": self.all_threads, "recording": self._recording}
        return Trace(deferreds, events, meta)


def trace(
    *deferreds: Deferred[Any],
    all_threads: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> Tracer:
    """A new :class:`Tracer` to use in a ``with`` block; ``deferreds`` are watched too.

    ``with trace() as t:`` records every Deferred built in the block (and those linked to
    them); after the block ``t`` shows the diagram in a notebook, ``t.text()`` the text.
    """
    return Tracer(*deferreds, all_threads=all_threads, clock=clock)


# -- helpers used by the patches -------------------------------------------------------
def _targets(d: Any) -> list[tuple[Tracer, _Rec]]:
    key = id(d)
    if len(_active) == 1:
        tracer = _active[0]
        got = tracer._refs.get(key)
        return [] if got is None else [(tracer, got[1])]
    out = []
    for tracer in _active:
        got = tracer._refs.get(key)
        if got is not None:
            out.append((tracer, got[1]))
    return out


def _interested(extra: Iterable[Any] = ()) -> list[Tracer]:
    """The tracers that want a Deferred created now in this thread."""
    me = _ident()
    out = []
    stepping = getattr(_tls, "stepping", None)
    for tracer in _active:
        if (
            tracer.all_threads
            or tracer._owner == me
            or stepping is not None
            and tracer in stepping.tracers
            or any(id(x) in tracer._refs for x in extra)
        ):
            out.append(tracer)
    return out


def _name_of(fn: Any) -> str:
    if isinstance(fn, functools.partial):
        return _name_of(fn.func) + "(…)"
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        name = type(fn).__name__
    return "lambda" if name == "<lambda>" else name


def _describe(fn: Any, args: tuple[Any, ...], tracer: Tracer, owner_rec: _Rec) -> tuple[str, str]:
    """``(name, role)`` of a callable added to a traced Deferred's chain."""
    if type(fn) is FunctionType:
        if id(fn.__code__) not in _SPECIAL_CODES:
            name = fn.__name__
            role = "runtime" if fn.__module__ in _RUNTIME_MODULES else "user"
            return ("lambda" if name == "<lambda>" else name), role
        if id(fn.__code__) in _RACE_HOOKS:
            rec = tracer._register(_race_of(fn), kind="race")
            slot = args[0] if args else "?"
            return f"→ {rec.label}[{slot}]", "list"
        if fn is _parse_list:
            owner_rec.kind = "gatherResults"
            return "unwrap results", "gather"
        if fn is _got_result:
            gen = args[1] if len(args) > 1 else None
            name = gen.name if isinstance(gen, _GeneratorProbe) else _name_of(gen) + "()"
            return f"→ {name}", "inline"
        if fn is _handle_cancel:
            return "cancel the awaited Deferred", "inline"
        if fn.__qualname__.startswith("Deferred.addTimeout."):
            if fn.__name__ == "cancelTimeout":
                return "stop the timer", "timeout"
            return "to TimeoutError", "timeout"
        return _name_of(fn), "user"
    if type(fn) is MethodType:
        owner = fn.__self__
        if isinstance(owner, Deferred):
            if fn.__func__ is _dl_cb_func:
                rec = tracer._register(owner, kind="DeferredList")
                slot = args[0] if args else "?"
                return f"→ {rec.label}[{slot}]", "list"
            if fn.__name__ in ("callback", "errback"):
                rec = tracer._register(owner, origin="chained", parent=owner_rec.did)
                return f"{rec.label}.{fn.__name__}", "chain"
        role = "runtime" if getattr(fn, "__module__", None) in _RUNTIME_MODULES else "user"
        return f"{type(owner).__name__}.{fn.__name__}", role
    role = "runtime" if getattr(fn, "__module__", None) in _RUNTIME_MODULES else "user"
    return _name_of(fn), role


_LIST_HOOK = re.compile(r"^→ d(\d+)\[")


def _relabel(name: str, labels: dict[int, str]) -> str:
    """``→ d3[0]`` with the list's label as it is now: ``→ first[0]``."""
    found = _LIST_HOOK.match(name)
    if found is None or int(found[1]) not in labels:
        return name
    return f"→ {labels[int(found[1])]}[" + name[found.end() :]


def _race_of(hook: Any) -> Any:
    """The Deferred ``race()`` returned, from one of its hooks on a member (its closure)."""
    cells = dict(zip(hook.__code__.co_freevars, hook.__closure__ or (), strict=False))
    return cells["final_result"].cell_contents


def _list_of(hook: Any) -> Any:
    """The DeferredList or race Deferred a member's hook reports to."""
    return hook.__self__ if type(hook) is MethodType else _race_of(hook)


# Immutable values are kept as they are and summarised when the trace is built: this is
# the hot path of a traced chain, and most results are small ints and strings.
_LAZY = frozenset({int, float, bool, str, bytes, complex})
_NONE = summarize(None)


def _keep(value: Any) -> Any:
    kind = type(value)
    if kind in _LAZY:
        return value
    return _NONE if value is None else summarize(value)


def _stage_shim(fn: Any, side: str, targets: list[tuple[Tracer, int, int]]) -> Any:
    """Wrap a callback or errback so each run is recorded (``targets``: tracer, did, sid)."""
    if len(targets) == 1:
        return _stage_shim_1(fn, side, *targets[0])

    def shim(result: Any, *args: Any, **kwargs: Any) -> Any:
        value = _keep(result)
        start = targets[0][0]._clock()
        try:
            out = fn(result, *args, **kwargs)
        except BaseException as exc:
            failure = summarize_exception(exc)
            for tracer, did, sid in targets:
                if tracer._recording:
                    tracer._run(did, sid, side, value, failure, "raised", None, start)
            raise
        if type(out) in _DEFERRED_TYPES:
            _returned_deferred(out, side, value, start, targets)
        else:
            kept = _keep(out)
            for tracer, did, sid in targets:
                if tracer._recording:
                    tracer._run(did, sid, side, value, kept, "returned", None, start)
        return out

    return shim


class _Shim:
    """One traced side of one stage, for the usual case of a single tracer.

    Its bound ``run`` method goes into the chain: a traced chain of 10,000 stages holds
    20,000 of them, and two small objects each (this and the bound method) keep the
    garbage collector's work, and so the cost of tracing, low.
    """

    __slots__ = ("fn", "side", "tracer", "did", "sid")

    def __init__(self, fn: Any, side: str, tracer: Tracer, did: int, sid: int) -> None:
        self.fn = fn
        self.side = side
        self.tracer = tracer
        self.did = did
        self.sid = sid

    def run(self, result: Any, *args: Any, **kwargs: Any) -> Any:
        tracer = self.tracer
        value = result if type(result) in _LAZY else _keep(result)
        start = tracer._clock()
        try:
            out = self.fn(result, *args, **kwargs)
        except BaseException as exc:
            if tracer._recording:
                tracer._run(
                    self.did,
                    self.sid,
                    self.side,
                    value,
                    summarize_exception(exc),
                    "raised",
                    None,
                    start,
                )
            raise
        if type(out) in _DEFERRED_TYPES:
            _returned_deferred(out, self.side, value, start, [(tracer, self.did, self.sid)])
        elif tracer._recording:
            tracer._run(
                self.did,
                self.sid,
                self.side,
                value,
                out if type(out) in _LAZY else _keep(out),
                "returned",
                None,
                start,
            )
        return out

    def passthru(self, result: Any) -> Any:
        if self.tracer._recording:
            value = _keep(result)
            self.tracer._run(self.did, self.sid, self.side, value, value, "passed", None, None)
        return result

    # The implicit side of a stage whose other side is ``run``: one object serves both.
    def passthru_callback(self, result: Any) -> Any:
        if self.tracer._recording:
            value = _keep(result)
            self.tracer._run(self.did, self.sid, "callback", value, value, "passed", None, None)
        return result

    def passthru_errback(self, result: Any) -> Any:
        if self.tracer._recording:
            value = _keep(result)
            self.tracer._run(self.did, self.sid, "errback", value, value, "passed", None, None)
        return result


def _stage_shim_1(fn: Any, side: str, tracer: Tracer, did: int, sid: int) -> Any:
    return _Shim(fn, side, tracer, did, sid).run


def _passthru_shim(side: str, targets: list[tuple[Tracer, int, int]]) -> Any:
    """The implicit pass-through opposite a lone callback or errback, recorded."""
    if len(targets) == 1:
        return _Shim(None, side, *targets[0]).passthru
    return functools.partial(_run_passthru, side, targets)


def _run_passthru(side: str, targets: list[tuple[Tracer, int, int]], result: Any) -> Any:
    value = _keep(result)
    for tracer, did, sid in targets:
        if tracer._recording:
            tracer._run(did, sid, side, value, value, "passed", None, None)
    return result


def _list_hook_shim(
    fn: Any, side: str, targets: list[tuple[Tracer, int, int]], lists: list[tuple[int, int]]
) -> Any:
    """A DeferredList's hook on a member: records the run and the member's contribution."""
    inner = _stage_shim(fn, side, targets)

    def hook(result: Any, index: int, *more: Any) -> Any:
        # a DeferredList's hook gets (index, succeeded); race()'s gets (index,) on each side
        succeeded = more[0] if more else side == "callback"
        value = _keep(result)
        outcome = "success" if succeeded else "failure"
        for (tracer, did, _sid), (list_did, _) in zip(targets, lists, strict=True):
            if tracer._recording:
                tracer._emit(
                    list_did, "member_result", value=value, outcome=outcome, other=did, slot=index
                )
        return inner(result, index, *more)

    return hook


def _returned_deferred(
    inner: Any, side: str, value: Any, start: float, targets: list[tuple[Tracer, int, int]]
) -> None:
    """A stage returned a Deferred: record it, and whether the outer chain pauses on it."""
    result = getattr(inner, "result", _MISSING)
    pauses = result is _MISSING or type(result) in _DEFERRED_TYPES or bool(inner.paused)
    resumes: list[tuple[Tracer, int, int]] = []
    for tracer, did, sid in targets:
        if not tracer._recording:
            continue
        rec = tracer._register(inner, origin="inner", parent=did)
        tracer._run(did, sid, side, value, summarize(inner, rec.did), "returned", rec.did, start)
        tracer._note_fired(inner, rec)
        if pauses:
            tracer._emit(did, "paused", other=rec.did)
            resumes.append((tracer, did, rec.did))
        else:
            tracer._emit(did, "adopted", value=summarize(result), other=rec.did)
    if resumes:

        def resumed(result: Any) -> Any:
            summary = summarize(result)
            for tracer, did, inner_did in resumes:
                if tracer._recording:
                    tracer._emit(did, "resumed", value=summary, other=inner_did)
            return result

        # Runs as the inner Deferred's last step, just before Twisted hands its result on.
        _orig_add_both(inner, resumed)


def _made_by(frame: Any, canceller: Any) -> str:
    code = frame.f_code if frame is not None else None
    if code is _succeed_code or code is _fail_code:
        outer = frame.f_back
        if outer is not None and outer.f_code is _maybe_code:
            f = outer.f_locals.get("f")
            return f"maybeDeferred({_name_of(f)})"
        return "succeed()" if code is _succeed_code else "fail()"
    if canceller is not None:
        return f"Deferred({_canceller_name(canceller)})"
    return "Deferred()"


def _canceller_name(canceller: Any) -> str:
    qualname = getattr(canceller, "__qualname__", "")
    if "InlineCallbacks" in qualname:
        return "stop the generator"
    return _name_of(canceller)


def _wrap_canceller(canceller: Any, targets: list[tuple[Tracer, int]], name: str) -> Any:
    def recorded_canceller(d: Any) -> Any:
        for tracer, did in targets:
            if tracer._recording:
                tracer._emit(did, "canceller", detail=name)
        entry = _cancel_entry(d)
        if entry is not None:
            entry[1] = True
        try:
            return canceller(d)
        finally:
            if entry is not None:
                entry[1] = False

    return recorded_canceller


def _cancel_stack() -> list[list[Any]]:
    stack = getattr(_tls, "cancels", None)
    if stack is None:
        stack = _tls.cancels = []
    return stack


def _cancel_entry(d: Any) -> list[Any] | None:
    for entry in reversed(getattr(_tls, "cancels", ())):
        if entry[0] is d:
            return entry
    return None


# -- the patches -----------------------------------------------------------------------
def _p_init(self: Any, canceller: Any = None) -> None:
    if _active:
        name = None if canceller is None else _canceller_name(canceller)
        probe = getattr(_tls, "probe", None)
        if probe is not None:
            _tls.probe = None
            probe.bind(self, name)
        frame = sys._getframe(1)
        # the Deferred race() returns: its members come with it, as a DeferredList's do
        members = list(frame.f_locals.get("ds", ())) if frame.f_code is _race_code else None
        tracers = [t for t in _interested(members or ()) if id(self) not in t._refs]
        if tracers:
            made_by = _made_by(frame, canceller)
            for tracer in tracers:
                if members is None:
                    tracer._register(self, made_by=made_by, canceller=name)
                    continue
                rec = tracer._register(self, kind="race", made_by=made_by, canceller=name)
                for member in members:
                    mrec = tracer._register(member, origin="member", parent=rec.did)
                    tracer._note_fired(member, mrec)
                    rec.members.append(mrec.did)
        if canceller is not None:
            targets = [(tracer, rec.did) for tracer, rec in _targets(self)]
            if targets:
                canceller = _wrap_canceller(canceller, targets, name or "canceller")
    _orig_init(self, canceller)


def _add(
    self: Any,
    callback: Any,
    errback: Any,
    cb_args: tuple[Any, ...],
    cb_kw: Any,
    eb_args: tuple[Any, ...],
    eb_kw: Any,
    cb_implicit: bool,
    eb_implicit: bool,
    targets: list[tuple[Tracer, _Rec]],
) -> Any:
    """Add a traced stage: both sides wrapped, both recorded."""
    per_tracer = []
    lists: list[tuple[int, int]] = []
    first = errback is _handle_cancel
    for tracer, rec in targets:
        if not rec.fired:
            tracer._note_fired(self, rec)
        if cb_implicit:
            cb_name, role = "passthru", "user"
        else:
            cb_name, role = _describe(callback, cb_args, tracer, rec)
        if eb_implicit:
            eb_name = "passthru"
        elif errback is callback:
            eb_name = cb_name
        else:
            eb_name, eb_role = _describe(errback, eb_args, tracer, rec)
            role = eb_role if role == "user" else role
        if role == "list":
            lists.append((tracer._register(_list_of(callback)).did, 0))
        sid = tracer._add_stage(rec, cb_name, eb_name, cb_implicit, eb_implicit, role, first)
        per_tracer.append((tracer, rec.did, sid))
    if lists:
        cb = _list_hook_shim(callback, "callback", per_tracer, lists)
        eb = _list_hook_shim(errback, "errback", per_tracer, lists)
    else:
        if cb_implicit:
            cb = _passthru_shim("callback", per_tracer)
        else:
            cb = _stage_shim(callback, "callback", per_tracer)
        if eb_implicit:
            eb = _passthru_shim("errback", per_tracer)
        else:
            eb = _stage_shim(errback, "errback", per_tracer)
    return _orig_add_callbacks(self, cb, eb, cb_args, cb_kw, eb_args, eb_kw)


def _plain(fn: Any) -> bool:
    """True for an ordinary function: none of Twisted's own callbacks, no bound method, not
    the notebook runtime's."""
    return (
        type(fn) is FunctionType
        and id(fn.__code__) not in _SPECIAL_CODES
        and fn.__module__ not in _RUNTIME_MODULES
    )


def _add_1(
    self: Any,
    tracer: Tracer,
    rec: _Rec,
    callback: Any,
    errback: Any,
    cb_args: tuple[Any, ...],
    cb_kw: Any,
    eb_args: tuple[Any, ...],
    eb_kw: Any,
) -> Any:
    """:func:`_add` for the usual case: one tracer, a plain function on one side and the
    implicit pass-through (given as None) on the other. One shim serves both sides."""
    if not rec.fired:
        tracer._note_fired(self, rec)
    if callback is None:
        name = _name_of(errback)
        sid = tracer._add_stage(rec, "passthru", name, True, False, "user")
        shim = _Shim(errback, "errback", tracer, rec.did, sid)
        return _orig_add_callbacks(
            self, shim.passthru_callback, shim.run, cb_args, cb_kw, eb_args, eb_kw
        )
    sid = tracer._add_stage(rec, _name_of(callback), "passthru", False, True, "user")
    shim = _Shim(callback, "callback", tracer, rec.did, sid)
    return _orig_add_callbacks(
        self, shim.run, shim.passthru_errback, cb_args, cb_kw, eb_args, eb_kw
    )


def _p_add_callbacks(
    self: Any,
    callback: Any,
    errback: Any = None,
    callbackArgs: tuple[Any, ...] = (),
    callbackKeywords: Any = defer._NONE_KWARGS,
    errbackArgs: tuple[Any, ...] = (),
    errbackKeywords: Any = defer._NONE_KWARGS,
) -> Any:
    targets = _targets(self) if _active else None
    if not targets:
        return _orig_add_callbacks(
            self, callback, errback, callbackArgs, callbackKeywords, errbackArgs, errbackKeywords
        )
    return _add(
        self,
        callback,
        errback,
        callbackArgs or (),
        callbackKeywords or {},
        errbackArgs or (),
        errbackKeywords or {},
        False,
        errback is None,
        targets,
    )


def _p_add_callback(self: Any, callback: Any, *args: Any, **kwargs: Any) -> Any:
    if len(_active) == 1 and _plain(callback):
        tracer = _active[0]
        got = tracer._refs.get(id(self))
        if got is None:
            return _orig_add_callback(self, callback, *args, **kwargs)
        return _add_1(self, tracer, got[1], callback, None, args, kwargs, (), _NO_KEYWORDS)
    targets = _targets(self) if _active else None
    if not targets:
        return _orig_add_callback(self, callback, *args, **kwargs)
    return _add(self, callback, None, args, kwargs, (), {}, False, True, targets)


def _p_add_errback(self: Any, errback: Any, *args: Any, **kwargs: Any) -> Any:
    if len(_active) == 1 and _plain(errback):
        tracer = _active[0]
        got = tracer._refs.get(id(self))
        if got is None:
            return _orig_add_errback(self, errback, *args, **kwargs)
        return _add_1(self, tracer, got[1], None, errback, (), _NO_KEYWORDS, args, kwargs)
    targets = _targets(self) if _active else None
    if not targets:
        return _orig_add_errback(self, errback, *args, **kwargs)
    return _add(self, None, errback, (), {}, args, kwargs, True, False, targets)


def _p_add_both(self: Any, callback: Any, *args: Any, **kwargs: Any) -> Any:
    targets = _targets(self) if _active else None
    if not targets:
        return _orig_add_both(self, callback, *args, **kwargs)
    return _add(self, callback, callback, args, kwargs, args, kwargs, False, False, targets)


def _fire(self: Any, method: str, arg: Any, summary: ValueTuple, orig: Any) -> None:
    targets = _targets(self)
    for tracer, rec in targets:
        tracer._note_fired(self, rec)
    if not self.called:
        entry = _cancel_entry(self)
        how, note = method, None
        if entry is not None:
            how = "cancel"
            note = (
                f"{method} from its canceller" if entry[1] else f"{method}, no canceller fired it"
            )
        for tracer, rec in targets:
            rec.fired = True
            if rec.untraced and not rec.reached:
                continue  # what matters comes out of the untraced stages: _UntracedExit
            if how == method and rec.made_by.startswith(_AT_ONCE):
                # fail() and maybeDeferred fire the Deferred before handing it over, as
                # succeed() does without calling callback(): the same story for all three
                tracer._emit(
                    rec.did,
                    "fired",
                    value=summary,
                    outcome="already",
                    detail="fired at once by " + rec.made_by.split("(")[0] + "()",
                )
                continue
            tracer._emit(rec.did, "fired", value=summary, outcome=how, detail=note)
        return orig(self, arg)
    try:
        orig(self, arg)
    except AlreadyCalledError:
        for tracer, rec in targets:
            tracer._emit(
                rec.did, "fire_rejected", value=summary, outcome=method, detail="AlreadyCalledError"
            )
        raise
    for tracer, rec in targets:
        tracer._emit(
            rec.did,
            "fire_ignored",
            value=summary,
            outcome=method,
            detail="cancelled earlier: this late result is dropped",
        )


# made_by of the Deferreds fired before they are handed over
_AT_ONCE = ("succeed()", "fail()", "maybeDeferred(")


def _untraced_ahead(d: Any) -> bool:
    """True when stages added to ``d`` before it was traced are still to run."""
    if getattr(d, "_callbacks", None):
        return True
    # paused: one of those stages returned a Deferred that has not fired yet
    return bool(getattr(d, "called", False)) and type(getattr(d, "result", None)) in (
        _DEFERRED_TYPES
    )


class _UntracedExit:
    """Sits right after the stages a Deferred had before it was traced, and records the
    result coming out of them as its firing: the value the first traced stage gets."""

    __slots__ = ("tracer", "rec")

    def __init__(self, tracer: Tracer, rec: _Rec) -> None:
        self.tracer = tracer
        self.rec = rec

    def run(self, result: Any) -> Any:
        rec = self.rec
        if not rec.reached:
            rec.reached = rec.fired = True
            self.tracer._emit(
                rec.did,
                "fired",
                value=summarize(result),
                outcome="untraced",
                detail="out of the stages added before tracing",
            )
        return result


def _p_callback(self: Any, result: Any) -> None:
    if not _active or not _targets(self):
        return _orig_callback(self, result)
    return _fire(self, "callback", result, summarize(result), _orig_callback)


def _p_errback(self: Any, fail: Any = None) -> None:
    if not _active or not _targets(self):
        return _orig_errback(self, fail)
    if fail is None:
        current = sys.exc_info()[1]
        if current is None:  # Twisted raises NoCurrentExceptionError: nothing fired
            return _orig_errback(self, fail)
        summary = summarize_exception(current)
    else:
        summary = summarize_exception(fail) if isinstance(fail, BaseException) else summarize(fail)
    return _fire(self, "errback", fail, summary, _orig_errback)


def _cancel(self: Any, orig: Any) -> None:
    stack = _cancel_stack()
    parent = stack[-1][0] if stack else None
    if parent is None:
        # race()'s winning member cancels the others from its hook: by the race, not the user
        caller = sys._getframe(2)
        if _RACE_HOOKS.get(id(caller.f_code)) == "succeeded":
            parent = caller.f_locals.get("final_result")
    targets = _targets(self)
    if targets:
        timing_out = getattr(_tls, "timing_out", None) is self
        if not self.called:
            state = "pending"
        elif type(getattr(self, "result", None)) in _DEFERRED_TYPES:
            state = "waiting"
        else:
            state = "fired"
        for tracer, rec in targets:
            tracer._note_fired(self, rec)
            by = None if parent is None else tracer._id_in(parent)
            outcome = "timeout" if timing_out else ("deferred" if parent is not None else "user")
            tracer._emit(rec.did, "cancel", outcome=outcome, other=by, detail=state)
    stack.append([self, False])
    try:
        orig(self)
    finally:
        stack.pop()


def _p_cancel(self: Any) -> None:
    if not _active:
        return _orig_cancel(self)
    return _cancel(self, _orig_cancel)


def _p_dl_cancel(self: Any) -> None:
    if not _active:
        return _orig_dl_cancel(self)
    return _cancel(self, _orig_dl_cancel)


class _TimeoutClock:
    """Passes ``callLater`` through, marking the timeout's own call so cancel() knows it."""

    def __init__(self, clock: Any, d: Any) -> None:
        self._clock = clock
        self._d = d

    def callLater(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> Any:
        d = self._d

        def time_out() -> Any:
            previous = getattr(_tls, "timing_out", None)
            _tls.timing_out = d
            try:
                return f(*args, **kwargs)
            finally:
                _tls.timing_out = previous

        return self._clock.callLater(delay, time_out)


def _p_add_timeout(self: Any, timeout: float, clock: Any, onTimeoutCancel: Any = None) -> Any:
    targets = _targets(self) if _active else None
    if not targets:
        return _orig_add_timeout(self, timeout, clock, onTimeoutCancel)
    for tracer, rec in targets:
        tracer._emit(rec.did, "timeout_set", detail=f"{timeout:g} s")
    return _orig_add_timeout(self, timeout, _TimeoutClock(clock, self), onTimeoutCancel)


def _p_dl_init(
    self: Any,
    deferredList: Iterable[Any],
    fireOnOneCallback: bool = False,
    fireOnOneErrback: bool = False,
    consumeErrors: bool = False,
) -> None:
    members = list(deferredList)
    if _active:
        options = {
            "fireOnOneCallback": bool(fireOnOneCallback),
            "fireOnOneErrback": bool(fireOnOneErrback),
            "consumeErrors": bool(consumeErrors),
        }
        for tracer in _interested(members):
            rec = tracer._register(self, kind="DeferredList", options=options)
            for member in members:
                mrec = tracer._register(member, origin="member", parent=rec.did)
                tracer._note_fired(member, mrec)
                rec.members.append(mrec.did)
    _orig_dl_init(self, members, fireOnOneCallback, fireOnOneErrback, consumeErrors)


class _GeneratorProbe:
    """Stands in for a generator or coroutine driven by Twisted, recording each step."""

    def __init__(self, gen: Any, tracers: list[Tracer], parent: Any) -> None:
        self._gen = gen
        self.tracers = tracers
        self.name = _name_of(gen) + "()"
        self.kind = "inlineCallbacks" if inspect.isgenerator(gen) else "coroutine"
        self._parent = parent
        self._targets: list[tuple[Tracer, int]] = []

    def bind(self, d: Any, canceller: str | None = None) -> None:
        for tracer in self.tracers:
            parent = None if self._parent is None else self._parent._did_for(tracer)
            fields: dict[str, Any] = {
                "kind": self.kind,
                "made_by": self.name,
                "coroutine": self.name,
                "canceller": canceller,
            }
            if parent is not None:
                fields.update(origin="awaited", parent=parent)
            rec = tracer._register(d, **fields)
            self._targets.append((tracer, rec.did))

    def _did_for(self, tracer: Tracer) -> int | None:
        for t, did in self._targets:
            if t is tracer:
                return did
        return None

    def send(self, value: Any) -> Any:
        return self._step("send", summarize(value), self._gen.send, value)

    def throw(self, *exc: Any) -> Any:
        first = exc[0] if exc else None
        summary = (
            summarize_exception(first) if isinstance(first, BaseException) else summarize(first)
        )
        return self._step("throw", summary, self._gen.throw, *exc)

    def close(self) -> Any:
        return self._gen.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gen, name)

    def _step(self, side: str, came_in: ValueTuple, method: Any, *args: Any) -> Any:
        previous = getattr(_tls, "stepping", None)
        _tls.stepping = self
        start = time.perf_counter()
        try:
            out = method(*args)
        except StopIteration as stop:
            self._record(side, came_in, "returned", summarize(stop.value), None, start)
            raise
        except BaseException as exc:
            if _DefGenReturn is not None and isinstance(exc, _DefGenReturn):
                self._record(side, came_in, "returned", summarize(exc.value), None, start)
            else:
                self._record(side, came_in, "raised", summarize_exception(exc), None, start)
            raise
        finally:
            _tls.stepping = previous
        if type(out) in _DEFERRED_TYPES:
            for tracer, did in self._targets:
                rec = tracer._register(out, origin="awaited", parent=did)
                tracer._note_fired(out, rec)
                if tracer._recording:
                    tracer._emit(
                        did,
                        "step",
                        side=side,
                        value=came_in,
                        result=summarize(out, rec.did),
                        outcome="yielded",
                        other=rec.did,
                        duration=time.perf_counter() - start,
                    )
        else:
            self._record(side, came_in, "yielded", summarize(out), None, start)
        return out

    def _record(
        self,
        side: str,
        came_in: ValueTuple,
        outcome: str,
        out: ValueTuple,
        other: int | None,
        start: float,
    ) -> None:
        spent = time.perf_counter() - start
        for tracer, did in self._targets:
            if tracer._recording:
                tracer._emit(
                    did,
                    "step",
                    side=side,
                    value=came_in,
                    result=out,
                    outcome=outcome,
                    other=other,
                    duration=spent,
                )


def _p_cic(gen: Any) -> Any:
    if not _active:
        return _orig_cic(gen)
    tracers = _interested()
    if not tracers:
        return _orig_cic(gen)
    probe = _GeneratorProbe(gen, tracers, getattr(_tls, "stepping", None))
    previous = getattr(_tls, "probe", None)
    _tls.probe = probe
    try:
        d = _orig_cic(probe)
    finally:
        _tls.probe = previous
    if not probe._targets:  # Twisted built its Deferred some other way: bind late
        probe.bind(d)
    return d


_PATCHES: list[tuple[Any, str, Any]] = [
    (Deferred, "__init__", _p_init),
    (Deferred, "addCallbacks", _p_add_callbacks),
    (Deferred, "addCallback", _p_add_callback),
    (Deferred, "addErrback", _p_add_errback),
    (Deferred, "addBoth", _p_add_both),
    (Deferred, "callback", _p_callback),
    (Deferred, "errback", _p_errback),
    (Deferred, "cancel", _p_cancel),
    (Deferred, "addTimeout", _p_add_timeout),
    (DeferredList, "__init__", _p_dl_init),
    (DeferredList, "cancel", _p_dl_cancel),
    (defer, "_cancellableInlineCallbacks", _p_cic),
]


def _install() -> None:
    """Put the recording versions in place (call with ``_install_lock`` held)."""
    global _orig_init, _orig_add_callbacks, _orig_add_callback, _orig_add_errback
    global _orig_add_both, _orig_callback, _orig_errback
    global _orig_cancel, _orig_add_timeout, _orig_dl_init, _orig_dl_cancel, _orig_cic
    current = {(owner, name): vars(owner)[name] for owner, name, _ in _PATCHES}
    _orig_init = current[Deferred, "__init__"]
    _orig_add_callbacks = current[Deferred, "addCallbacks"]
    _orig_add_callback = current[Deferred, "addCallback"]
    _orig_add_errback = current[Deferred, "addErrback"]
    _orig_add_both = current[Deferred, "addBoth"]
    _orig_callback = current[Deferred, "callback"]
    _orig_errback = current[Deferred, "errback"]
    _orig_cancel = current[Deferred, "cancel"]
    _orig_add_timeout = current[Deferred, "addTimeout"]
    _orig_dl_init = current[DeferredList, "__init__"]
    _orig_dl_cancel = current[DeferredList, "cancel"]
    _orig_cic = current[defer, "_cancellableInlineCallbacks"]
    _saved[:] = [(owner, name, current[owner, name]) for owner, name, _ in _PATCHES]
    for owner, name, patch in _PATCHES:
        functools.update_wrapper(patch, current[owner, name])
        setattr(owner, name, patch)


def _uninstall() -> None:
    """Put every original back, the very same objects (call with ``_install_lock`` held)."""
    for owner, name, original in _saved:
        setattr(owner, name, original)
    _saved.clear()
