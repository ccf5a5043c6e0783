"""The trace as plain data: what really happened to some Deferreds (notebooks 04, 05, 08, 09).

A :class:`TraceData` is what :class:`~poetrylab.tracing.Tracer` records. It holds no live
objects: every value is summarised the moment it is seen (a :class:`Value`), so a trace
keeps no user object alive, can be saved as JSON, loaded later and drawn again without
Twisted running. This module imports nothing that draws: the views (text, diagram,
timeline, step-through, live) are functions over this data, and
:class:`poetrylab.tracing.Trace` is this data with those views attached.

Schema (``TraceData.to_dict()``; ``to_json`` writes exactly this)::

    {"schema": "poetrylab.trace/2",
     "meta": {...free-form, JSON-able...},
     "deferreds": [DeferredInfo, ...],      # in the order they came into scope
     "events": [Event, ...]}                # in the order they happened (by "seq")

Version 1 traces load too (version 2 added the kinds ``held`` and ``released``, a
Deferred waiting on itself, ``Value.cut`` and ``meta["notes"]``).

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
``paused``          the chain waits on the inner Deferred ``other``; when ``other`` is the
                    Deferred itself (a stage returned the Deferred it belongs to), it
                    waits on itself and can never go on (``detail``: ``itself``)
``resumed``         the chain goes on with ``value``, the result of ``other``
``adopted``         a stage returned ``other`` already fired; its result ``value`` is used
``held``            someone called ``pause()``: no stage runs until as many ``unpause()``
                    calls; ``slot`` is how many pauses are now in force
``released``        ``unpause()`` was called; ``slot``: pauses still in force
``cancel``          ``cancel()`` was called; ``outcome``: ``user``, ``deferred`` (by
                    ``other``) or ``timeout``; ``detail``: ``pending``, ``fired`` (no
                    effect) or ``waiting`` (forwarded to the inner Deferred ``other``)
``canceller``       the canceller ``detail`` was called; ``outcome`` ``raised`` and
                    ``result`` when it raised
``timeout_set``     ``addTimeout``: ``detail`` = the timeout in seconds
``member_result``   on a list or race: member ``other`` in position ``slot`` gave ``value``;
                    ``outcome`` ``success`` or ``failure``
``step``            one step of a generator/coroutine driving ``deferred``: ``side``
                    ``send`` or ``throw`` (how ``value`` came back into it), ``outcome``
                    ``yielded``, ``returned`` or ``raised`` and ``result`` what came out;
                    ``other``: the Deferred it now waits on
==================  ====================================================================

What the tracer could not see is not an event: it is a sentence in ``meta["notes"]``.

``Value`` -- a summary of one value: ``kind`` (``value``, ``failure`` or ``deferred``),
``type`` (type name; the exception type for a failure), ``text`` (a bounded ``repr``; the
exception message for a failure), ``deferred`` (id, for a Deferred) and ``cut`` (true
when ``text`` is a shortened form of a longer repr or message: the middle was left out).

Everything here is plain data, not thread-safe to mutate; the tracer builds a fresh
:class:`TraceData` each time it is asked, sharing the (never mutated) events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = [
    "SCHEMA",
    "DeferredInfo",
    "Event",
    "Final",
    "Ref",
    "Stage",
    "TraceData",
    "Value",
]

SCHEMA = "poetrylab.trace/2"
_READS = (SCHEMA, "poetrylab.trace/1")

Ref = int | str
"""A Deferred in a trace, named by its id (``1``) or its label (``"d1"``)."""

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_T = TypeVar("_T", bound="TraceData")


@dataclass(slots=True, unsafe_hash=True)
class Value:
    """A value seen in a chain, summarised: never the object itself. Treat as immutable."""

    kind: str
    type: str
    text: str
    deferred: int | None = None
    cut: bool = False

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
            return f"Failure({_ADDRESS.sub('0x…', inner)})"
        if self.kind == "deferred":
            if self.deferred is not None and label_of and self.deferred in label_of:
                return label_of[self.deferred]
            return "a Deferred" if self.deferred is None else f"d{self.deferred}"
        return _ADDRESS.sub("0x…", self.text)

    def label(self, label_of: dict[int, str] | None = None) -> str:
        """Like :meth:`describe`, but a Failure is just ``ValueError: boom``."""
        text = self.describe(label_of)
        return text[len("Failure(") : -1] if self.kind == "failure" else text


class Stage(tuple):  # type: ignore[type-arg]  # a typed record, stored as a tuple
    """One (callback, errback) pair in a chain. Immutable.

    Fields, in order: ``id``, ``callback``, ``errback``, ``callback_implicit``,
    ``errback_implicit``, ``role``, ``added_seq`` (see the module docstring). A tuple
    underneath, like :class:`Event`, since a long chain has thousands.
    """

    __slots__ = ()
    __match_args__ = (
        "id",
        "callback",
        "errback",
        "callback_implicit",
        "errback_implicit",
        "role",
        "added_seq",
    )

    def __new__(
        cls,
        id: int,
        callback: str,
        errback: str,
        callback_implicit: bool = False,
        errback_implicit: bool = False,
        role: str = "user",
        added_seq: int = 0,
    ) -> Stage:
        return tuple.__new__(
            cls, (id, callback, errback, callback_implicit, errback_implicit, role, added_seq)
        )

    if TYPE_CHECKING:  # what each field holds, for type checkers
        id: int
        callback: str
        errback: str
        callback_implicit: bool
        errback_implicit: bool
        role: str
        added_seq: int
    else:  # fast field access: a C getter for each
        id = property(itemgetter(0), doc="Stable, in the order stages were added.")
        callback = property(itemgetter(1), doc="The callback's name.")
        errback = property(itemgetter(2), doc="The errback's name.")
        callback_implicit = property(itemgetter(3), doc="True for Twisted's pass-through.")
        errback_implicit = property(itemgetter(4), doc="True for Twisted's pass-through.")
        role = property(itemgetter(5), doc="``user``, or the plumbing it is (module docstring).")
        added_seq = property(itemgetter(6), doc="The seq of its ``stage_added`` event.")

    def name(self, side: str) -> str:
        """The name on ``side`` (``"callback"`` or ``"errback"``)."""
        return self.callback if side == "callback" else self.errback

    def implicit(self, side: str) -> bool:
        """True when ``side`` is Twisted's implicit pass-through."""
        return self.callback_implicit if side == "callback" else self.errback_implicit

    def renamed(self, callback: str, errback: str) -> Stage:
        """The same stage with other names."""
        return Stage(self.id, callback, errback, *tuple.__getitem__(self, slice(3, 7)))

    def to_dict(self) -> dict[str, Any]:
        """The stage as a JSON-able dict."""
        return dict(zip(Stage.__match_args__, self, strict=True))

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v!r}" for k, v in zip(Stage.__match_args__, self, strict=True))
        return f"Stage({parts})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Stage, tuple(self))


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
        """The stage's position in the chain (0 for the first). Raises KeyError."""
        for row, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return row
        raise KeyError(f"{self.label} has no stage {stage_id}")

    @property
    def title(self) -> str:
        """``d1 = Deferred()``, ``d3 = DeferredList([d1, d2])``, ``d4 = get_poem()``..."""
        return f"{self.label} = {self.made_by}"

    def to_dict(self) -> dict[str, Any]:
        """The Deferred as a JSON-able dict (its stages as dicts)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["stages"] = [stage.to_dict() for stage in self.stages]
        out["members"] = list(self.members)
        out["options"] = dict(self.options)
        return out

    @property
    def is_list(self) -> bool:
        """True for a DeferredList, a gatherResults or a race: it has members."""
        return self.kind in ("DeferredList", "gatherResults", "race")


def _as_value(raw: object) -> Value | None:
    """A summary, from what the tracer kept: a summary already, or one of the plain
    values it keeps as they are (an int of at most 15 digits, a float, a bool, a str of at
    most 78 characters), whose ``repr`` is its summary."""
    if raw is None or isinstance(raw, Value):
        return raw
    return Value("value", type(raw).__name__, repr(raw))


class Event(tuple):  # type: ignore[type-arg]  # a typed record, stored as a tuple
    """One thing that happened to one Deferred (see the module docstring for each kind).

    Fields, in order: ``seq``, ``time``, ``thread``, ``deferred``, ``kind``, ``stage``,
    ``side``, ``value``, ``result``, ``outcome``, ``other``, ``slot``, ``detail``,
    ``duration``. Immutable. It is a tuple underneath because a trace of a long chain
    holds tens of thousands of them: a tuple is the cheapest typed record Python has.
    ``value`` and ``result`` are :class:`Value` summaries (the tracer may have kept a
    plain int or short str until now; reading the field gives its summary).
    """

    __slots__ = ()
    __match_args__ = (
        "seq",
        "time",
        "thread",
        "deferred",
        "kind",
        "stage",
        "side",
        "value",
        "result",
        "outcome",
        "other",
        "slot",
        "detail",
        "duration",
    )

    def __new__(
        cls,
        seq: int,
        time: float,
        thread: str,
        deferred: int,
        kind: str,
        stage: int | None = None,
        side: str | None = None,
        value: Value | None = None,
        result: Value | None = None,
        outcome: str | None = None,
        other: int | None = None,
        slot: int | None = None,
        detail: str | None = None,
        duration: float | None = None,
    ) -> Event:
        return tuple.__new__(
            cls,
            (
                seq,
                time,
                thread,
                deferred,
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
            ),
        )

    if TYPE_CHECKING:  # what each field holds, for type checkers
        seq: int
        time: float
        thread: str
        deferred: int
        kind: str
        stage: int | None
        side: str | None
        outcome: str | None
        other: int | None
        slot: int | None
        detail: str | None
        duration: float | None
    else:  # fast field access: a C getter for each
        seq = property(itemgetter(0), doc="Global order: events are numbered as they happen.")
        time = property(itemgetter(1), doc="Seconds since the tracer started.")
        thread = property(itemgetter(2), doc="The name of the thread it happened in.")
        deferred = property(itemgetter(3), doc="The id of the Deferred it happened to.")
        kind = property(itemgetter(4), doc="What happened (see the module docstring).")
        stage = property(itemgetter(5))
        side = property(itemgetter(6))
        outcome = property(itemgetter(9))
        other = property(itemgetter(10))
        slot = property(itemgetter(11))
        detail = property(itemgetter(12))
        duration = property(itemgetter(13))

    @property
    def value(self) -> Value | None:
        """The value the event is about (what a stage got, what a Deferred fired with)."""
        return _as_value(tuple.__getitem__(self, 7))

    @property
    def result(self) -> Value | None:
        """What a stage returned or raised, or what came out of a generator step."""
        return _as_value(tuple.__getitem__(self, 8))

    def fields(self) -> tuple[Any, ...]:
        """All fields, in order, with ``value`` and ``result`` as summaries."""
        raw = tuple(self)
        return (*raw[:7], self.value, self.result, *raw[9:])

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-able dict (summaries as dicts)."""
        out = dict(zip(Event.__match_args__, self.fields(), strict=True))
        for key in ("value", "result"):
            if out[key] is not None:
                out[key] = asdict(out[key])
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.fields() == other.fields()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{name}={value!r}"
            for name, value in zip(Event.__match_args__, self.fields(), strict=True)
            if value is not None or name in ("seq", "time", "thread", "deferred", "kind")
        )
        return f"Event({parts})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Event, tuple(self))


@dataclass(frozen=True)
class Final:
    """Where a Deferred ended up when the trace was taken.

    ``state`` is ``unfired``; ``result`` (``value`` holds it); ``waiting`` (on ``other``,
    which is the Deferred itself when it waits on itself); ``handed`` (its result went on
    to the Deferred ``other`` that was waiting on it); or ``held`` (it has ``value`` but
    someone's ``pause()`` keeps its next stages from running). ``to_notebook`` is true
    when the notebook runtime took ``value`` to hand it to the cell (``runtime.call``,
    ``wait``, ``resolve``): ``value`` is what the chain produced, not the ``None`` the
    runtime's own stage leaves behind. ``held`` is also true of an unfired Deferred that
    has been paused.
    """

    state: str
    value: Value | None = None
    other: int | None = None
    to_notebook: bool = False
    held: bool = False

    @property
    def failed(self) -> bool:
        """True when the value is a Failure."""
        return self.value is not None and self.value.is_failure


@dataclass
class TraceData:
    """A recorded trace: the Deferreds seen and the events, in order. Plain data.

    ``meta`` is free-form: ``notes`` lists what the tracer could not see (probes that do
    not work with this Twisted), ``prediction`` what a learner predicted (``simulate``).
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

    def has(self, ref: Ref) -> bool:
        """True when the trace has a Deferred with this id or label."""
        return any(info.id == ref or info.label == ref for info in self.deferreds)

    @property
    def labels(self) -> dict[int, str]:
        """Map each Deferred's id to its label."""
        return {info.id: info.label for info in self.deferreds}

    @property
    def notes(self) -> list[str]:
        """What the tracer could not see while recording (empty when it saw everything)."""
        return list(self.meta.get("notes", []))

    def events_for(self, ref: Ref) -> list[Event]:
        """The events of one Deferred, in order."""
        did = self.deferred(ref).id
        return [e for e in self.events if e.deferred == did]

    def path(self, ref: Ref | None = None) -> list[tuple[str, str, str]]:
        """The stages that ran on one Deferred, as ``(side, name, outcome)`` in order.

        ``ref`` defaults to the first Deferred in the trace. ``side`` is ``callback`` or
        ``errback``; ``outcome`` is ``returned``, ``raised`` or ``passed`` (an implicit
        pass-through). The notebook runtime's hand-over is not a stage of the chain and
        is left out. Raises KeyError for an unknown ``ref``, IndexError for an empty trace.
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
        held = 0
        for e in self.events:
            if e.deferred != did:
                if e.kind in ("resumed", "adopted") and e.other == did:
                    state = Final("handed", e.value, e.deferred)
                continue
            kind = e.kind
            if kind == "fired":
                state = Final("result", e.value)
            elif kind == "stage_ran" and e.stage in runtime:
                state = Final("result", e.value, to_notebook=True)
            elif kind == "stage_ran" and e.result is not None and e.result.kind != "deferred":
                state = Final("result", e.result)
            elif kind == "paused":
                state = Final("waiting", None, e.other)
            elif kind in ("resumed", "adopted"):
                state = Final("result", e.value)
            elif kind in ("held", "released"):
                held = e.slot or 0
        if held:
            if state.state == "result":
                return Final("held", state.value, None, state.to_notebook, True)
            return replace(state, held=True)
        return state

    def until(self: _T, seq: int) -> _T:
        """This trace as it stood just after event ``seq``: later events and stages dropped."""
        deferreds = []
        for info in self.deferreds:
            if info.seq > seq:
                continue
            stages = [s for s in info.stages if s.added_seq <= seq]
            deferreds.append(replace(info, stages=stages, members=list(info.members)))
        events = [e for e in self.events if e.seq <= seq]
        return type(self)(deferreds, events, dict(self.meta))

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
            "deferreds": [info.to_dict() for info in self.deferreds],
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls: type[_T], data: dict[str, Any]) -> _T:
        """Rebuild a trace from :meth:`to_dict` output (version 1 or 2).

        Raises ValueError on another schema.
        """
        if data.get("schema") not in _READS:
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
    def from_json(cls: type[_T], text: str) -> _T:
        """Load a trace written by :meth:`to_json`. Raises ValueError on another schema."""
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return f"<Trace: {len(self.deferreds)} Deferreds, {len(self.events)} events>"
