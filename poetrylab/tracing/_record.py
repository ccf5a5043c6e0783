"""What one tracer has recorded, and the trace built from it (private; notebooks 04-09).

A :class:`Recorder` keeps, for each Deferred it traces, a small mutable record
(:class:`Rec`) and, for everything that happens, one raw event. It never keeps a Deferred
alive: Deferreds are known by a key (their ``id()``), kept only while a weak reference
says they are alive. It keeps no value of the traced program either, except exact
built-in ints, floats, bools and strings of at most :data:`~._values.KEEP_STR`
characters, which are immutable, tiny and without finalizers: they are summarised when an
event's value is read (:class:`~.model.Event` does it), and everything else is summarised
the moment it is seen (:mod:`._values`). So tracing changes neither what the program keeps
alive nor when Twisted reports an unhandled error (at garbage collection).

Events and stages are typed records (:class:`~.model.Event`, :class:`~.model.Stage`:
tuples underneath), each made once, when it happens, from a bare tuple in field order with
one C call: by :meth:`Recorder.emit`, its hot-path twin :meth:`Recorder.ran` and
:meth:`Recorder.add_stage`, and -- for the usual stage, added and run 10,000 times in a
long chain -- by the fast path in :mod:`._patches`, which builds the same records inline.
:meth:`Recorder.build` puts the events in number order and adds the Deferreds' records;
a later build reuses what an earlier one ordered.

Recording is called from the patched Deferred methods, in whatever thread fires the
Deferreds. Each event takes its number from one counter and is appended to one list;
both are single atomic operations under CPython's global interpreter lock, so recording
takes no lock, and the build puts events in number order. Registrations, labels and
builds take the recorder's lock.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from . import _twisted
from ._values import keep, summarize
from .model import DeferredInfo, Event, Stage, TraceData

__all__ = ["Rec", "Recorder"]

_AT_ONCE = ("succeed()", "fail()", "maybeDeferred(")
_RELABELLED = ("list", "chain")  # the roles of stages named after another Deferred
NOT_PLAIN: Any = object()
"""What :attr:`Rec.plain` holds before a usual stage of the Deferred has returned."""


class Rec:
    """What a recorder knows about one Deferred while recording (mutable, private).

    ``stages`` holds its :class:`~.model.Stage` records, in chain order.
    """

    __slots__ = (
        "recorder",
        "did",
        "key",
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
        "held",
        "relabel",
        "plain",
    )

    def __init__(self, recorder: Recorder, did: int, key: int) -> None:
        self.recorder = recorder
        self.did = did
        self.key = key
        self.label = f"d{did}"
        self.kind = "Deferred"
        self.origin = "created"
        self.made_by = "Deferred()"
        self.parent: int | None = None
        self.canceller: str | None = None
        self.coroutine: str | None = None
        self.members: list[int] = []
        self.options: dict[str, bool] = {}
        self.stages: list[Stage] = []
        self.thread = ""
        self.time = 0.0
        self.seq = 0
        self.fired = False
        self.untraced = False  # stages added before tracing were still to run when seen
        self.reached = False  # the result has come out of those stages
        self.held = 0  # pause() calls not yet matched by unpause()
        self.relabel = False  # a stage is named after another Deferred ("→ #3[0]")
        # the last int, float or bool a usual stage of it returned (its event keeps it too):
        # the next stage, given that very object, need not ask whether to keep it as it is
        self.plain: object = NOT_PLAIN


class Recorder:
    """The record of one tracer: Deferreds seen (by key) and events, in order.

    ``clock`` gives the event times (seconds; the recorder subtracts its start).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._events: list[Event] = []
        self._recs: list[Rec] = []
        self._by_key: dict[int, Rec] = {}
        self._alive: dict[int, weakref.ref[Any]] = {}
        self._counter = itertools.count()
        self._next = self._counter.__next__  # bound once: the hot paths call them per stage
        self._append = self._events.append
        self._here = threading.local()  # .name: this thread's name, as first seen
        # what the hot paths (the usual stage, added and run) use, read in one go
        self._hot = (self._counter, self._append, self._here, clock)
        self._t0 = 0.0
        self._recording = False
        self._notes: list[str] = []
        # what build() has already turned into typed objects
        self._built: list[Event] = []
        self._built_upto = 0
        self._cache: tuple[tuple[int, int, int, tuple[str, ...]], TraceData] | None = None

    @property
    def event_count(self) -> int:
        """How many events have been recorded so far (read in any thread)."""
        return len(self._events)

    # -- time and place ------------------------------------------------------------------
    def _now(self) -> float:
        return self._clock() - self._t0

    def _thread(self) -> str:
        """The name of the thread running now, as it was when this recorder first saw it."""
        here = self._here
        try:
            return here.name  # type: ignore[no-any-return]
        except AttributeError:
            here.name = name = threading.current_thread().name
            return name

    # -- Deferreds ---------------------------------------------------------------------------
    def rec_for(self, d: object) -> Rec | None:
        """The record of ``d`` if this recorder traces it (``d`` must be alive)."""
        return self._by_key.get(id(d))

    def register(self, d: object, **fields: Any) -> Rec:
        """The record for ``d``, created with ``fields`` (and a ``created`` event) if new."""
        key = id(d)
        rec = self._by_key.get(key)
        if rec is not None:
            return rec
        if not self._recording:  # stopped: a record that goes nowhere
            return Rec(self, 0, key)
        with self._lock:
            rec = self._by_key.get(key)
            if rec is not None:
                return rec
            rec = Rec(self, len(self._recs) + 1, key)
            for name, value in fields.items():
                setattr(rec, name, value)
            rec.thread = self._thread()
            rec.time = self._now()
            rec.seq = next(self._counter)
            self._recs.append(rec)
            self._by_key[key] = rec
            try:
                self._alive[key] = weakref.ref(d, self._forget(key))
            except TypeError:  # a Deferred subclass without weak references
                self.note(f"{rec.label} cannot be watched for garbage collection")
        self._events.append(
            Event(
                rec.seq,
                rec.time,
                rec.thread,
                rec.did,
                "created",
                other=rec.parent,
                detail=rec.origin,
            )  # fmt: skip
        )
        pending = _twisted.stages_pending(d)
        if pending or _twisted.is_deferred(_twisted.current_result(d)):
            # stages added before tracing are still to run (or wait on an inner Deferred):
            # what comes out of them is recorded when the first traced stage gets it
            rec.untraced = True
        elif pending is None and getattr(d, "called", False):
            self.note(f"{rec.label}: whether earlier stages were still to run is unknown")
        return rec

    def _forget(self, key: int) -> Callable[[weakref.ref[Any]], None]:
        """A weakref callback dropping a dead Deferred's key (ids are reused)."""

        def gone(_: weakref.ref[Any]) -> None:
            self._alive.pop(key, None)
            self._by_key.pop(key, None)

        return gone

    def alive(self, rec: Rec) -> Any:
        """The Deferred of ``rec`` if it is still alive, else None."""
        ref = self._alive.get(rec.key)
        d = ref() if ref is not None else None
        return d if d is not None and self._by_key.get(rec.key) is rec else None

    # -- events ------------------------------------------------------------------------------
    def emit(
        self,
        did: int,
        kind: str,
        stage: int | None = None,
        side: str | None = None,
        value: Any = None,
        result: Any = None,
        outcome: str | None = None,
        other: int | None = None,
        slot: int | None = None,
        detail: str | None = None,
        duration: float | None = None,
    ) -> None:
        """Record one event on Deferred ``did`` (nothing once the recorder has stopped).

        ``value`` and ``result`` are what :func:`~._values.keep` made of the objects.
        """
        if self._recording:
            self._events.append(
                Event(
                    next(self._counter),
                    self._clock() - self._t0,
                    self._thread(),
                    did,
                    kind,
                    stage=stage,
                    side=side,
                    value=value,
                    result=result,
                    outcome=outcome,
                    other=other,
                    slot=slot,
                    detail=detail,
                    duration=duration,
                )
            )

    def ran(
        self,
        did: int,
        sid: int,
        side: str,
        value: Any,
        result: Any,
        outcome: str,
        other: int | None,
        duration: float,
    ) -> None:
        """Record that stage ``sid`` of ``did`` ran on ``side``.

        This and :meth:`add_stage` run once per stage recorded by the general path (the
        fast path in :mod:`._patches` builds the same records inline): they build the event
        from a bare tuple in :class:`~.model.Event`'s field order (``Event(...)`` does the
        same, with names, three times slower).
        """
        if self._recording:
            self._append(
                _new(
                    Event,
                    (
                        self._next(),
                        self._clock() - self._t0,
                        self._thread(),
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
                        duration,
                    ),
                )
            )

    def add_stage(
        self,
        rec: Rec,
        callback: str,
        errback: str,
        callback_implicit: bool,
        errback_implicit: bool,
        role: str,
        first: bool = False,
    ) -> int:
        """Record a stage added to ``rec``'s chain; returns its id. ``first`` puts it first
        (Twisted's own cancel handler for inlineCallbacks goes in front of the others)."""
        stages = rec.stages
        sid = len(stages)
        if role in _RELABELLED:
            rec.relabel = True
        seq = self._next()
        stage = _new(
            Stage, (sid, callback, errback, callback_implicit, errback_implicit, role, seq)
        )
        if first:
            stages.insert(0, stage)
        else:
            stages.append(stage)
        self._append(
            _new(
                Event,
                (
                    seq,
                    self._clock() - self._t0,
                    self._thread(),
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
        return sid

    def note(self, text: str) -> None:
        """Say, in the trace, something the tracer could not see (once per text)."""
        with self._lock:
            if text not in self._notes:
                self._notes.append(text)

    def note_fired(self, d: object, rec: Rec) -> None:
        """Record a firing that happened out of sight: ``succeed()``, or before tracing."""
        if not getattr(d, "called", False):
            return
        with self._lock:  # another thread may get here at the same time: one records it
            if rec.fired:
                return
            rec.fired = True
        if rec.untraced and not rec.reached:
            return  # still in the untraced stages: the first traced stage records it
        result = _twisted.current_result(d)
        if result is _twisted.MISSING:
            return
        if _twisted.is_deferred(result):
            inner = self.register(result, origin="inner", parent=rec.did)
            self.note_fired(result, inner)
            value = summarize(result, inner.did)
            note = f"waiting on {inner.label}"
        else:
            value = keep(result)
            note = "fired before the tracer saw it"
            if rec.made_by.startswith(_AT_ONCE):
                note = "fired at once by " + rec.made_by.split("(")[0] + "()"
        self.emit(rec.did, "fired", value=value, outcome="already", detail=note)

    def reach(self, rec: Rec, value: Any) -> None:
        """The first traced stage of a Deferred with untraced stages got ``value``."""
        rec.reached = rec.fired = True
        self.emit(
            rec.did,
            "fired",
            value=value,
            outcome="untraced",
            detail="out of the stages added before tracing",
        )

    def note_all_fired(self) -> None:
        """Look once more at every live traced Deferred for results that came unseen."""
        for rec in list(self._recs):
            d = self.alive(rec)
            if d is None:
                continue
            if rec.untraced and not rec.reached:
                if _twisted.stages_pending(d) is False and not _twisted.is_deferred(
                    _twisted.current_result(d)
                ):
                    result = _twisted.current_result(d)
                    if result is not _twisted.MISSING:
                        self.reach(rec, keep(result))
                continue
            if not rec.fired:
                self.note_fired(d, rec)

    # -- the trace -------------------------------------------------------------------------
    def build(self, trace_type: type[TraceData], meta: dict[str, Any]) -> TraceData:
        """The trace of everything recorded so far, as typed plain data.

        Events and stages already built are reused (they are never mutated); a trace
        asked for again with nothing new is the same object.
        """
        with self._lock:
            recs = list(self._recs)
            labels = tuple(rec.label for rec in recs)
            staged = sum(len(rec.stages) for rec in recs)
            key = (len(self._events), len(recs), staged, labels)
            if self._cache is not None and self._cache[0] == key:
                cached = self._cache[1]
                if type(cached) is trace_type:
                    return cached
            fresh = self._events[self._built_upto : key[0]]
            self._built_upto = key[0]
            built = self._built
            in_order = not built or not fresh or built[-1].seq < min(map(_seq, fresh))
            fresh.sort(key=_seq)
            built.extend(fresh)
            if not in_order:
                built.sort(key=_seq)
            names = {rec.did: rec.label for rec in recs}
            deferreds = [_info(rec, names) for rec in recs]
            events = list(built)
            notes = [*_twisted.problems(), *self._notes]
            trace = trace_type(deferreds, events, {**meta, "notes": notes})
            self._cache = (key, trace)
            return trace


_new = tuple.__new__
_seq = itemgetter(0)


def _info(rec: Rec, labels: dict[int, str]) -> DeferredInfo:
    made_by = rec.made_by
    if rec.kind in ("DeferredList", "gatherResults", "race") and rec.origin != "watched":
        names = ", ".join(labels.get(m, "?") for m in rec.members)
        opts = "".join(f", {k}=True" for k, v in rec.options.items() if v)
        if rec.kind == "gatherResults":
            opts = ", consumeErrors=True" if rec.options.get("consumeErrors") else ""
        elif rec.kind == "race":
            opts = ""
        made_by = f"{rec.kind}([{names}]{opts})"
    stages = list(rec.stages)
    for i, stage in enumerate(stages if rec.relabel else ()):
        if stage.role in _RELABELLED:  # named "→ #3[0]" before any label was given
            stages[i] = stage.renamed(
                _relabel(stage.callback, labels), _relabel(stage.errback, labels)
            )
    return DeferredInfo(
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
        time=rec.time,
        seq=rec.seq,
    )


def _relabel(name: str, labels: dict[int, str]) -> str:
    """``→ #3[0]`` or ``#3.callback`` with Deferred 3's label as it is now."""
    start = name.find("#")
    if start < 0:
        return name
    end = start + 1
    while end < len(name) and name[end].isdigit():
        end += 1
    did = int(name[start + 1 : end]) if end > start + 1 else 0
    return name[:start] + labels.get(did, f"d{did}") + name[end:]
