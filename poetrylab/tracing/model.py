"""The trace: plain data saying what really happened to some Deferreds (notebooks 04, 05, 08, 09).

A :class:`Trace` is what :class:`~poetrylab.tracing.Tracer` records and what every view
(text, two-column diagram, timeline, step-through widget) draws. It holds no live objects:
values are summarised when they are seen, so a trace can be saved as JSON, loaded later and
drawn again without Twisted running.

Schema (``Trace.to_dict()``; ``to_json`` writes exactly this)::

    {"schema": "poetrylab.trace/1",
     "meta": {...free-form, JSON-able...},
     "deferreds": [DeferredInfo, ...],      # in the order they came into scope
     "events": [Event, ...]}                # in the order they happened (by "seq")

``DeferredInfo`` -- one Deferred:
    ``id`` (int, 1, 2, ... in order of first sight), ``label`` (``"d1"`` unless named),
    ``kind`` (``Deferred``, ``DeferredList``, ``gatherResults``, ``race``,
    ``inlineCallbacks``, ``coroutine``), ``origin`` (how it came into scope: ``created`` in
    the traced block, ``watched``, ``inner`` -- returned by a stage of ``parent``,
    ``member`` of the list or race ``parent``, ``awaited`` by the coroutine ``parent``,
    ``chained`` by ``parent``'s ``chainDeferred``), ``made_by`` (``Deferred()``,
    ``succeed()``, ``fail()``, ``maybeDeferred(f)``...), ``parent`` (id or null),
    ``canceller`` (its name or null), ``coroutine`` (the generator or coroutine function
    driving it, or null), ``members`` (ids, for lists and races), ``options``
    (``fireOnOneCallback``, ``fireOnOneErrback``, ``consumeErrors`` for lists), ``stages``
    (in chain order, traced ones only), ``untraced`` (true when stages added before it was
    traced were still to run: they come before ``stages``, unseen), ``thread``, ``time``,
    ``seq`` (of its ``created`` event).

``Stage`` -- one (callback, errback) pair of the chain:
    ``id`` (stable, in order added; events refer to it), ``callback`` and ``errback``
    (names), ``callback_implicit`` / ``errback_implicit`` (true for the pass-through Twisted
    supplies: ``addCallback(f)`` has an implicit pass-through errback and ``addErrback(f)``
    an implicit pass-through callback), ``role`` (``user``; or Twisted's plumbing:
    ``timeout`` from ``addTimeout``, ``list`` for a DeferredList's or race's hook on a
    member, ``gather`` for gatherResults' unwrapping, ``inline`` for an inlineCallbacks
    resumption, ``chain`` for ``chainDeferred``; or ``runtime``, the notebook runtime's
    stage that hands the result to the cell, which the views draw as that hand-over and
    not as a stage), ``added_seq``.

``Event`` -- one thing that happened, with ``seq`` (global order), ``time`` (seconds since
the tracer started, when the event was recorded: a stage is recorded when it returns, so
events it caused come first in ``seq``), ``thread`` (name), ``deferred`` (id) and
``kind``; the other fields are null unless the kind uses them:

==================  ====================================================================
kind                fields used
==================  ====================================================================
``created``         ``detail``: the origin (see above)
``stage_added``     ``stage``
``fired``           ``outcome``: ``callback``, ``errback``, ``cancel`` (fired by
                    ``cancel()``), ``already`` (found fired, or fired at once by
                    ``succeed()``, ``fail()``, ``maybeDeferred``), ``untraced`` (the
                    result came out of stages added before tracing); ``value``: the
                    result going into the first traced stage; ``detail``: a note
``fire_rejected``   firing an already-fired Deferred: ``outcome`` (method), ``value``,
                    ``detail``: ``AlreadyCalledError``
``fire_ignored``    a late result swallowed because the Deferred was cancelled before
``stage_ran``       ``stage``, ``side`` (``callback``/``errback``), ``value`` (what it got),
                    ``outcome`` (``returned``, ``raised`` or ``passed`` for an implicit
                    pass-through), ``result`` (what it returned or raised), ``other`` (the
                    inner Deferred when it returned one), ``duration`` (seconds)
``paused``          the chain waits on the inner Deferred ``other``
``resumed``         the chain goes on with ``value``, the result of ``other``
``adopted``         a stage returned ``other`` already fired; its result ``value`` is used
``cancel``          ``cancel()`` was called; ``outcome``: ``user``, ``deferred`` (by
                    ``other``) or ``timeout``; ``detail``: ``pending``, ``fired`` (no
                    effect) or ``waiting`` (forwarded to the inner Deferred ``other``)
``canceller``       the canceller ``detail`` was called
``timeout_set``     ``addTimeout``: ``detail`` = the timeout in seconds
``member_result``   on a list or race: member ``other`` in position ``slot`` gave ``value``;
                    ``outcome`` ``success`` or ``failure``
``step``            one step of a generator/coroutine driving ``deferred``: ``side``
                    ``send`` or ``throw`` (how ``value`` came back into it), ``outcome``
                    ``yielded``, ``returned`` or ``raised`` and ``result`` what came out;
                    ``other``: the Deferred it now waits on
==================  ====================================================================

``Value`` -- a summary of one value: ``kind`` (``value``, ``failure`` or ``deferred``),
``type`` (type name; the exception type for a failure), ``text`` (a bounded ``repr``; the
exception message for a failure) and ``deferred`` (id, for a Deferred).

Everything here is plain data and not thread-safe to mutate; the tracer builds a fresh
:class:`Trace` each time it is asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "Value", "Stage", "DeferredInfo", "Event", "Final", "Trace", "Ref"]

SCHEMA = "poetrylab.trace/1"

Ref = int | str
"""A Deferred in a trace, named by its id (``1``) or its label (``"d1"``)."""

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class Value:
    """A value seen in a chain, summarised: never the object itself."""

    kind: str
    type: str
    text: str
    deferred: int | None = None

    @property
    def is_failure(self) -> bool:
        """True when this is a Failure."""
        return self.kind == "failure"

    def describe(self, label_of: dict[int, str] | None = None) -> str:
        """A short deterministic text: ``3``, ``Failure(ValueError: boom)``, ``d2``.

        Memory addresses in reprs are masked so the text is the same on every run.
        """
        if self.kind == "failure":
            inner = f"{self.type}: {self.text}" if self.text else self.type
            return f"Failure({inner})"
        if self.kind == "deferred":
            if self.deferred is not None and label_of and self.deferred in label_of:
                return label_of[self.deferred]
            return "a Deferred" if self.deferred is None else f"d{self.deferred}"
        return _ADDRESS.sub("0x…", self.text)


@dataclass(frozen=True)
class Stage:
    """One (callback, errback) pair in a chain."""

    id: int
    callback: str
    errback: str
    callback_implicit: bool = False
    errback_implicit: bool = False
    role: str = "user"
    added_seq: int = 0

    def name(self, side: str) -> str:
        """The name on ``side`` (``"callback"`` or ``"errback"``)."""
        return self.callback if side == "callback" else self.errback

    def implicit(self, side: str) -> bool:
        """True when ``side`` is Twisted's implicit pass-through."""
        return self.callback_implicit if side == "callback" else self.errback_implicit


@dataclass
class DeferredInfo:
    """One Deferred: what it is, where it came from, and its chain (stages in order)."""

    id: int
    label: str
    kind: str = "Deferred"
    origin: str = "created"
    made_by: str = "Deferred()"
    parent: int | None = None
    canceller: str | None = None
    coroutine: str | None = None
    members: list[int] = field(default_factory=list)
    options: dict[str, bool] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    untraced: bool = False
    thread: str = ""
    time: float = 0.0
    seq: int = 0

    def stage(self, stage_id: int) -> Stage:
        """The stage with this id. Raises KeyError if there is none."""
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(f"{self.label} has no stage {stage_id}")

    def row_of(self, stage_id: int) -> int:
        """The stage's position in the chain (0 for the first)."""
        for row, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return row
        raise KeyError(f"{self.label} has no stage {stage_id}")

    @property
    def title(self) -> str:
        """``d1 = Deferred()``, ``d3 = DeferredList([d1, d2])``, ``d4 = get_poem()``..."""
        return f"{self.label} = {self.made_by}"


@dataclass(slots=True)
class Event:
    """One thing that happened to one Deferred (see the module docstring for each kind)."""

    seq: int
    time: float
    thread: str
    deferred: int
    kind: str
    stage: int | None = None
    side: str | None = None
    value: Value | None = None
    result: Value | None = None
    outcome: str | None = None
    other: int | None = None
    slot: int | None = None
    detail: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Final:
    """Where a Deferred ended up when the trace was taken.

    ``state`` is ``unfired``, ``result`` (``value`` holds it), ``waiting`` (on ``other``)
    or ``handed`` (its result went on to the Deferred ``other`` that was waiting on it).
    ``to_notebook`` is true when the notebook runtime took ``value`` to hand it to the
    cell (``runtime.call``, ``wait``, ``resolve``): ``value`` is what the chain produced,
    not the ``None`` the runtime's own stage leaves behind.
    """

    state: str
    value: Value | None = None
    other: int | None = None
    to_notebook: bool = False


@dataclass
class Trace:
    """A recorded trace: the Deferreds seen and the events, in order.

    In a notebook a trace draws itself as the two-column diagram (SVG). ``text()`` gives a
    deterministic rendering for terminals and tests, ``timeline()`` the events against
    time, ``step_through()`` a replay widget, ``save(path)`` a PNG or SVG file and
    ``to_json()`` the data.
    """

    deferreds: list[DeferredInfo] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # -- looking things up -------------------------------------------------------------
    def deferred(self, ref: Ref) -> DeferredInfo:
        """The Deferred with this id or label. Raises KeyError if the trace has none."""
        for info in self.deferreds:
            if info.id == ref or info.label == ref:
                return info
        raise KeyError(f"no Deferred {ref!r} in this trace")

    @property
    def labels(self) -> dict[int, str]:
        """Map each Deferred's id to its label."""
        return {info.id: info.label for info in self.deferreds}

    def events_for(self, ref: Ref) -> list[Event]:
        """The events of one Deferred, in order."""
        did = self.deferred(ref).id
        return [e for e in self.events if e.deferred == did]

    def path(self, ref: Ref | None = None) -> list[tuple[str, str, str]]:
        """The stages that ran on one Deferred, as ``(side, name, outcome)`` in order.

        ``ref`` defaults to the first Deferred in the trace. ``side`` is ``callback`` or
        ``errback``; ``outcome`` is ``returned``, ``raised`` or ``passed`` (an implicit
        pass-through).
        The notebook runtime's hand-over is not a stage of the chain and is left out.
        """
        info = self.deferred(ref) if ref is not None else self.deferreds[0]
        stages = {stage.id: stage for stage in info.stages}
        out = []
        for e in self.events_for(info.id):
            if e.kind == "stage_ran" and e.stage is not None and e.side is not None:
                stage = stages[e.stage]
                if stage.role != "runtime":
                    out.append((e.side, stage.name(e.side), e.outcome or ""))
        return out

    def final(self, ref: Ref) -> Final:
        """Where the Deferred ended up: its result, or what it waits on (see :class:`Final`)."""
        info = self.deferred(ref)
        did = info.id
        runtime = {stage.id for stage in info.stages if stage.role == "runtime"}
        state = Final("unfired")
        for e in self.events:
            if e.deferred != did:
                if e.kind in ("resumed", "adopted") and e.other == did:
                    state = Final("handed", e.value, e.deferred)
                continue
            if e.kind == "fired":
                state = Final("result", e.value)
            elif e.kind == "stage_ran" and e.stage in runtime:
                state = Final("result", e.value, to_notebook=True)
            elif e.kind == "stage_ran" and e.result is not None:
                state = Final("result", e.result)
            elif e.kind == "paused":
                state = Final("waiting", None, e.other)
            elif e.kind in ("resumed", "adopted"):
                state = Final("result", e.value)
        return state

    def until(self, seq: int) -> Trace:
        """This trace as it stood just after event ``seq``: later events and stages dropped."""
        deferreds = []
        for info in self.deferreds:
            if info.seq > seq:
                continue
            stages = [s for s in info.stages if s.added_seq <= seq]
            deferreds.append(replace(info, stages=stages, members=list(info.members)))
        events = [e for e in self.events if e.seq <= seq]
        return Trace(deferreds, events, dict(self.meta))

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    # -- plain data --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-able dicts and lists (the schema in the module docstring)."""
        return {
            "schema": SCHEMA,
            "meta": dict(self.meta),
            "deferreds": [asdict(info) for info in self.deferreds],
            "events": [asdict(e) for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """Rebuild a trace from :meth:`to_dict` output. Raises ValueError on another schema."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} trace: schema is {data.get('schema')!r}")
        deferreds = []
        for raw in data["deferreds"]:
            raw = dict(raw)
            raw["stages"] = [Stage(**s) for s in raw.get("stages", [])]
            deferreds.append(DeferredInfo(**raw))
        events = []
        for raw in data["events"]:
            raw = dict(raw)
            for key in ("value", "result"):
                if raw.get(key) is not None:
                    raw[key] = Value(**raw[key])
            events.append(Event(**raw))
        return cls(deferreds, events, dict(data.get("meta", {})))

    def to_json(self, indent: int | None = 1) -> str:
        """The trace as a JSON document (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Trace:
        """Load a trace written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # -- views (each imports its renderer when first used) -----------------------------
    def text(self, view: str = "chains", threads: bool = False) -> str:
        """A deterministic text rendering (no times, no addresses); see :mod:`.render_text`.

        ``view="chains"`` lists each Deferred's story in turn; ``view="events"`` lists every
        event in the order it happened. ``threads=True`` adds the thread of each event.
        """
        from .render_text import render_text

        return render_text(self, view=view, threads=threads)

    def diagram(self, ref: Ref | None = None, **options: Any) -> Any:
        """The two-column callback/errback diagram, as a Drawing (see :mod:`.diagram`).

        A Drawing shows itself as SVG in a notebook; ``.figure`` is the matplotlib Figure,
        ``.png()``/``.svg()`` the bytes/text. Options: ``upto``, ``highlight``, ``title``.
        """
        from .diagram import chain_figure

        return chain_figure(self, ref, **options)

    def timeline(self, by: str = "deferred", **options: Any) -> Any:
        """Events against time as a Drawing, one lane per Deferred (``by="thread"``: thread)."""
        from .timeline import timeline_figure

        return timeline_figure(self, by=by, **options)

    def save(self, path: str | Path, view: str = "diagram", **options: Any) -> Path:
        """Write the diagram (or ``view="timeline"``) to ``path``; ``.png`` or ``.svg``."""
        drawing = self.timeline(**options) if view == "timeline" else self.diagram(**options)
        return drawing.save(path)

    def step_through(self, ref: Ref | None = None) -> Any:
        """An ipywidgets control replaying the trace event by event (see :mod:`.widget`)."""
        from .widget import stepper

        return stepper(self, ref)

    def _repr_svg_(self) -> str:
        return str(self.diagram().svg())

    def __repr__(self) -> str:
        return f"<Trace: {len(self.deferreds)} Deferreds, {len(self.events)} events>"
