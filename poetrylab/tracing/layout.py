"""The two-column diagram laid out as plain data: every box, arrow and label, placed.

:func:`layout` turns a trace into a :class:`Layout` -- boxes (a Deferred's frame, the cells
of its stages, the pills where it fired and where it ended, generator steps...), arrows
(the path a result took, pauses on inner Deferreds and resumptions, members feeding a
list, cancels) and labels, each with its position and size in display pixels and what it
stands for (which Deferred, which stage, which side, which event). Nothing here draws:
:mod:`.paint` paints a layout with matplotlib, and tests ask a layout "which box, which
side, which arrow, in what order" without reading a pixel. Notebooks 04, 05, 08 and 09
show these diagrams.

How a trace is laid out:

* Each Deferred is a frame: its callbacks in the left column, its errbacks in the right
  one, one row per stage, Twisted's implicit pass-throughs as dashed cells. Cells that ran
  are filled; the path of the result runs from the pill where it fired, stage by stage,
  to the pill where it ended, crossing columns where a callback raised or an errback
  recovered, each arrow labelled with the value it carried (a Failure's label starts
  with ``✗``). Columns, fill, words and the ``✗`` carry the meaning, not colour alone.
* An inner Deferred a stage returned is drawn inside, right after that stage, with the
  pause into it and the resumption out of it; one shared by two chains is drawn once and
  the other chain names where. A generator or coroutine shows its steps, each awaited
  Deferred nested after the step that waited on it; runs of steps alike fold into one
  line ("× 60", ``unfold=True`` shows them all). A list (DeferredList, gatherResults,
  race) draws its members as lanes, wrapped into rows when they do not fit side by side,
  feeding the pill where it fired; a member's stages that came after it gave its result
  to the list are drawn after that point.
* Chains longer than :data:`MAX_ROWS` stages show their first and last stages around an
  elided middle; values too long for their place leave out their middle (``…``); the
  legend lists every kind of mark the picture uses, and says so when text was shortened.
* Blocks that came into being earlier stand first (left to right, wrapped into rows no
  wider than :data:`~._style.DISPLAY_WIDTH`); a side panel holds what to look at and the
  legend when there is room beside them, else they go above and below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ._style import DISPLAY_WIDTH, ELLIPSIS, PX, fit, text_width, wrap
from .model import DeferredInfo, Event, Final, Ref, TraceData, Value
from .render_text import describe, final_line, step_numbers

__all__ = [
    "MAX_ROWS",
    "Arrow",
    "Box",
    "Label",
    "Layout",
    "headline",
    "layout",
]

# -- metrics (display pixels) -------------------------------------------------------------
MARGIN = 12.0
PAD = 10.0
TITLE_H = 22.0
NOTE_H = 18.0
HEAD_H = 18.0
CELL_H = 26.0
PILL_H = 26.0
ROW_GAP = 18.0
GUTTER = 92.0
MIN_CELL = 104.0
MAX_CELL = 176.0
INDENT = 16.0
NEST_GAP = 20.0
STEP_H = 26.0
STEP_GAP = 16.0
CANCEL_W = 24.0
LANE_MIN = 92.0
LANE_MAX = 168.0
AWAITED_MAX = 2 * MIN_CELL + GUTTER - INDENT - 2 * PAD
LANE_GAP = 12.0
JOIN_GAP = 34.0
BUS_GAP = 14.0
BLOCK_GAP = 16.0
PANEL_W = 400.0
PANEL_MIN = 200.0
MAX_ROWS = 14
"""Chains with more stages show their first and last :data:`KEEP_ROWS` around the rest."""
KEEP_ROWS = 6
FOLD_AT = 4
"""Runs of at least this many generator steps alike fold into one line."""

LEGEND = {
    "callback": "callback ran (left column)",
    "errback": "errback ran (right column)",
    "idle": "did not run",
    "passthru": "Twisted's pass-through",
    "plumbing": "Twisted's own stage (italic)",
    "failure": "a Failure (its exception)",
    "waits": "waits on an inner Deferred",
    "resumed": "result from another Deferred",
    "step": "generator / coroutine step",
    "fold": "steps folded (× n)",
    "member": "member gives its result",
    "cancel": "cancel() (purple, up the chain)",
    "held": "paused by pause()",
    "untraced": "stages not traced",
    "elided": "text or stages left out",
}
"""What each mark means, in the order the legend lists them."""


# -- the layout's parts -------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """A rectangle: ``kind`` is ``frame`` (a Deferred), ``cell`` (one side of a stage),
    ``fire`` (where it fired), ``result`` (where it ended), ``gave`` (a list member's
    result, given to the list), ``handoff`` (where an inner Deferred handed its result on),
    ``step``, ``fold``, ``stub`` (an inner Deferred drawn elsewhere), ``elided`` (stages
    left out). ``style`` says how it is painted (``callback``, ``errback``, ``passthru``,
    ``failure``, ``success``, ``muted``, ``step``, ``held``, ``untraced``, ``box``)."""

    kind: str
    x: float
    y: float
    w: float
    h: float
    deferred: int | None = None
    stage: int | None = None
    side: str | None = None
    ran: bool = False
    text: str = ""
    style: str = "box"
    italic: bool = False
    bold: bool = False
    dashed: bool = False
    keys: frozenset[int] = frozenset()
    px: float = PX["cell"]

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def contains(self, other: Box) -> bool:
        """True when ``other`` lies wholly inside this box."""
        return (
            self.x <= other.x + 0.01
            and self.y <= other.y + 0.01
            and other.right <= self.right + 0.01
            and other.bottom <= self.bottom + 0.01
        )

    def overlaps(self, other: Box) -> bool:
        """True when the two boxes share some area."""
        return (
            self.x < other.right - 0.5
            and other.x < self.right - 0.5
            and self.y < other.bottom - 0.5
            and other.y < self.bottom - 0.5
        )

    def moved(self, dx: float, dy: float) -> Box:
        return replace(self, x=self.x + dx, y=self.y + dy)


@dataclass(frozen=True)
class Arrow:
    """A line with a head at its last point: ``kind`` is ``path`` (the result going on to
    the next stage), ``cross`` (the same, changing column), ``wait`` (a chain pausing on an
    inner Deferred), ``resume`` (the inner's result coming back), ``self`` (a chain waiting
    on itself), ``member`` (a list member's result going to the list), ``cancel``,
    ``step`` (a generator going on), ``await`` (a generator waiting on a Deferred).
    ``style``: ``success``, ``failure``, ``plain``, ``cancel``, ``step``."""

    kind: str
    points: tuple[tuple[float, float], ...]
    deferred: int
    label: str = ""
    label_at: tuple[float, float] | None = None
    align: str = "left"
    style: str = "success"
    dashed: bool = False
    seq: int | None = None
    keys: frozenset[int] = frozenset()

    @property
    def start(self) -> tuple[float, float]:
        return self.points[0]

    @property
    def end(self) -> tuple[float, float]:
        return self.points[-1]

    def moved(self, dx: float, dy: float) -> Arrow:
        at = None if self.label_at is None else (self.label_at[0] + dx, self.label_at[1] + dy)
        points = tuple((x + dx, y + dy) for x, y in self.points)
        return replace(self, points=points, label_at=at)


@dataclass(frozen=True)
class Label:
    """Text: ``kind`` is ``title``, ``note`` (what to look at), ``block`` (a Deferred's
    name), ``header`` (``callbacks`` / ``errbacks``), ``stage`` (a row's number), ``info``
    (a note inside a block), ``legend``. ``y`` is the middle of the line."""

    kind: str
    x: float
    y: float
    text: str
    px: float
    align: str = "left"
    style: str = "ink"
    bold: bool = False
    italic: bool = False
    rotation: float = 0.0
    deferred: int | None = None
    keys: frozenset[int] = frozenset()

    @property
    def width(self) -> float:
        return text_width(self.text, self.px, self.bold, self.italic)

    def extent(self) -> Box:
        """The box the text covers (upright text only)."""
        w = self.width
        x = {"left": self.x, "center": self.x - w / 2, "right": self.x - w}[self.align]
        return Box("text", x, self.y - self.px * 0.6, w, self.px * 1.2)

    def moved(self, dx: float, dy: float) -> Label:
        return replace(self, x=self.x + dx, y=self.y + dy)


@dataclass
class Layout:
    """A whole picture, laid out: its size in display pixels and everything on it."""

    width: float
    height: float
    title: str
    notes: list[str]
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)
    highlight: frozenset[int] = frozenset()
    unfold: bool = False

    def boxes_of(
        self,
        kind: str | None = None,
        deferred: int | None = None,
        stage: int | None = None,
        side: str | None = None,
    ) -> list[Box]:
        """The boxes matching every criterion given."""
        return [
            b
            for b in self.boxes
            if (kind is None or b.kind == kind)
            and (deferred is None or b.deferred == deferred)
            and (stage is None or b.stage == stage)
            and (side is None or b.side == side)
        ]

    def arrows_of(self, kind: str | None = None, deferred: int | None = None) -> list[Arrow]:
        """The arrows matching every criterion given, in the order they were laid out."""
        return [
            a
            for a in self.arrows
            if (kind is None or a.kind == kind) and (deferred is None or a.deferred == deferred)
        ]

    def frame(self, deferred: int) -> Box:
        """The frame of Deferred ``deferred`` (a lane's, for a list member). KeyError if
        it is not drawn."""
        for b in self.boxes:
            if b.kind == "frame" and b.deferred == deferred:
                return b
        raise KeyError(f"Deferred {deferred} is not drawn")

    def cell(self, deferred: int, stage: int, side: str) -> Box:
        """One side of one stage. KeyError if it is not drawn."""
        found = self.boxes_of("cell", deferred, stage, side)
        if not found:
            raise KeyError(f"no {side} cell for stage {stage} of Deferred {deferred}")
        return found[0]

    def texts(self) -> list[str]:
        """Every piece of text on the picture."""
        out = [label.text for label in self.labels]
        out += [b.text for b in self.boxes if b.text]
        out += [a.label for a in self.arrows if a.label]
        return out


@dataclass
class _Part:
    """A block laid out at (0, 0), to be moved into place by whoever holds it."""

    did: int
    w: float
    h: float
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    out: tuple[float, float] = (0.0, 0.0)  # where its result leaves (bottom of a pill)
    out_span: tuple[float, float] | None = None  # that pill's left and right
    exit: list[tuple[float, float]] | None = None  # a route out when out is mid-block
    used: set[str] = field(default_factory=set)

    def add(self, other: _Part, dx: float, dy: float) -> None:
        self.boxes += [b.moved(dx, dy) for b in other.boxes]
        self.arrows += [a.moved(dx, dy) for a in other.arrows]
        self.labels += [label.moved(dx, dy) for label in other.labels]
        self.used |= other.used


# -- which Deferred is drawn inside which ---------------------------------------------------
@dataclass
class _Context:
    trace: TraceData
    labels: dict[int, str]
    owner: dict[int, int]
    inner_at: dict[int, dict[int, list[int]]]  # owner -> stage id -> inner ids
    awaited_at: dict[int, dict[int, int]]  # owner -> step seq -> awaited id
    steps: dict[int, int]
    events: dict[int, list[Event]]
    unfold: bool
    handoffs: dict[int, list[Event]]  # inner id -> resumed/adopted events taking its result


def _context(trace: TraceData, only: int | None, unfold: bool) -> _Context:
    owner: dict[int, int] = {}
    inner_at: dict[int, dict[int, list[int]]] = {}
    awaited_at: dict[int, dict[int, int]] = {}
    known = {info.id for info in trace.deferreds}
    events: dict[int, list[Event]] = {info.id: [] for info in trace.deferreds}
    handoffs: dict[int, list[Event]] = {}

    def claim(child: int | None, parent: int) -> bool:
        if child is None or child not in known or child in owner or child == parent:
            return False
        walk: int | None = parent
        while walk is not None:
            if walk == child:
                return False
            walk = owner.get(walk)
        owner[child] = parent
        return True

    last_stage: dict[int, int] = {}
    for e in trace.events:
        events.setdefault(e.deferred, []).append(e)
        if e.kind == "stage_ran" and e.stage is not None:
            last_stage[e.deferred] = e.stage
        elif e.kind in ("paused", "adopted") and e.deferred in last_stage:
            if e.other is not None and claim(e.other, e.deferred):
                at = inner_at.setdefault(e.deferred, {})
                at.setdefault(last_stage[e.deferred], []).append(e.other)
        elif e.kind == "step" and e.outcome == "yielded" and e.other is not None:
            if claim(e.other, e.deferred):
                awaited_at.setdefault(e.deferred, {})[e.seq] = e.other
        elif e.kind == "created":
            for member in trace.deferred(e.deferred).members:
                claim(member, e.deferred)
        if e.kind in ("resumed", "adopted") and e.other is not None:
            handoffs.setdefault(e.other, []).append(e)
    for info in trace.deferreds:
        for member in info.members:
            claim(member, info.id)
    if only is not None and only in owner:
        del owner[only]
    return _Context(
        trace,
        trace.labels,
        owner,
        inner_at,
        awaited_at,
        step_numbers(trace),
        events,
        unfold,
        handoffs,
    )


# -- words --------------------------------------------------------------------------------
def _value_text(value: Value | None, labels: dict[int, str]) -> str:
    """A value as labels show it: a Failure as ``✗ ValueError: boom``."""
    if value is None:
        return ""
    if value.is_failure:
        return "✗ " + value.label(labels)
    return value.label(labels)


def _is_failure(value: Value | None) -> bool:
    return value is not None and value.is_failure


def _side_of(value: Value | None) -> str:
    return "errback" if _is_failure(value) else "callback"


def _style_of(value: Value | None) -> str:
    return "failure" if _is_failure(value) else "success"


def _fire_text(info: DeferredInfo, fired: Event, labels: dict[int, str]) -> str:
    inside = fired.value.label(labels) if fired.value is not None else "?"
    how = fired.outcome or "callback"
    failed = _is_failure(fired.value)
    if how == "already":
        if fired.value is not None and fired.value.kind == "deferred":
            return f"already fired, waiting on {inside}"
        return f"already fired: {'errback' if failed else 'callback'}({inside})"
    if how == "cancel":
        return f"cancel() → {_value_text(fired.value, labels)}"
    if how == "untraced":
        return f"(earlier stages not traced) → {inside}"
    if info.is_list:
        return f"fires: {'✗ ' if failed else ''}{inside}"
    return f"{how}({inside})"


_VALUE_AFTER = (
    "already fired: callback(",
    "already fired: errback(",
    "callback(",
    "errback(",
    "cancel() → ",
    "result ",
    "unhandled ",
    "failed: ",
    "fires: ",
    "resumed: ",
    "took ",
    "got ",
)


def _value_start(text: str) -> int:
    """Where the value starts in a label: after ``callback(``, ``result ``, ``[1] ``...
    (0 when the label does not start with one of those)."""
    for mark in _VALUE_AFTER:
        if text.startswith(mark):
            return len(mark)
    if text.startswith("[") and "] " in text[:8]:
        return text.index("] ") + 2
    return 0


# -- titles -------------------------------------------------------------------------------
def headline(trace: TraceData, ref: Ref | None = None) -> tuple[str, list[str]]:
    """``(title, notes)``: what the diagram of ``ref`` (or of the whole trace) shows, and
    what to look at in it."""
    labels = trace.labels
    ctx = _context(trace, None, False)
    if ref is None:
        roots = [i for i in trace.deferreds if i.id not in ctx.owner]
        if len(roots) != 1:
            title = f"{len(trace.deferreds)} Deferreds: follow each arrow from firing to result"
            if not trace.deferreds:
                title = "Nothing was traced"
            notes = [f"{info.label}: {final_line(trace, info.id)}" for info in roots[:6]]
            if len(roots) > 6:
                notes.append(f"… and {len(roots) - 6} more")
            return title, notes
        ref = roots[0].id
    info = trace.deferred(ref)
    events = ctx.events.get(info.id, [])
    stages = {stage.id: stage for stage in info.stages}
    rows = {stage.id: row for row, stage in enumerate(info.stages)}
    if info.is_list:
        end = final_line(trace, info.id).removeprefix("result: ")
        title = f"{info.label}: {info.kind} of {len(info.members)} → {end}"
        gave = [
            f"[{e.slot}] {_value_text(e.value, labels)}"
            for e in events
            if e.kind == "member_result"
        ]
        more = [] if len(gave) <= 6 else [f"… and {len(gave) - 6} more"]
        return title, (
            ["members gave, in order: " + " · ".join(gave[:6])]
            if gave
            else ["no member has given a result yet"]
        ) + more
    fired = next((e for e in events if e.kind == "fired"), None)
    start = "not fired" if fired is None else (fired.value.label(labels) if fired.value else "?")
    start = fit(start, DISPLAY_WIDTH * 0.4, PX["title"], True)
    if fired is not None and fired.outcome == "untraced":
        start = f"earlier stages → {start}"
    elif fired is not None and fired.outcome == "cancel":
        start = "cancel()"
    elif fired is not None and _is_failure(fired.value):
        start = f"errback({start})"
    elif fired is not None:
        start = f"callback({start})"
    steps = [e for e in events if e.kind == "step"]
    if steps:
        start = f"{info.made_by} in {len(steps)} steps"
    final = trace.final(info.id)
    end = final_line(trace, info.id).removeprefix("result: ")
    if final.to_notebook and final.value is not None:
        end = final.value.describe(labels)
    title = f"{info.label}: {start} → {end}"
    said: list[str] = []
    for e in events:
        if e.kind == "stage_ran":
            stage = stages.get(e.stage or 0)
            if stage is None or stage.role == "runtime" or e.value is None or e.result is None:
                continue
            name = stage.name(e.side or "callback")
            row = rows[stage.id]
            if not e.value.is_failure and e.result.is_failure:
                verb = "raised" if e.outcome == "raised" else "returned a Failure"
                said.append(f"stage {row}: {name} {verb} → errbacks")
            elif e.value.is_failure and not e.result.is_failure and e.result.kind != "deferred":
                said.append(f"stage {row}: {name} recovered → callbacks")
        elif e.kind == "paused":
            if e.other == e.deferred:
                said.append("a stage returned its own Deferred: it waits on itself forever")
            else:
                said.append(f"paused on {labels.get(e.other or 0, '?')}")
        elif e.kind == "resumed":
            said.append(f"resumed with {_value_text(e.value, labels)}")
        elif e.kind == "held":
            said.append("pause() called: nothing runs until unpause()")
        elif e.kind == "released" and not e.slot:
            said.append("unpause(): the chain goes on")
        elif e.kind == "cancel":
            said.append("timed out" if e.outcome == "timeout" else "cancelled")
    if not said:
        sides = {e.side for e in events if e.kind == "stage_ran"}
        if sides == {"callback"}:
            said.append("straight down the callbacks")
        elif sides == {"errback"}:
            said.append("straight down the errbacks")
    return title, said


# -- one Deferred ---------------------------------------------------------------------------
class _BlockBuilder:
    """Lays out one Deferred (and, recursively, those drawn inside it) at (0, 0)."""

    def __init__(
        self, ctx: _Context, did: int, lane_of: int | None = None, nested: bool = False
    ) -> None:
        self.ctx = ctx
        self.did = did
        self.info = ctx.trace.deferred(did)
        self.lane_of = lane_of  # the list (or generator) this is a compact lane of, if any
        self.nested = nested  # drawn inside another block: the columns are already named
        self.events = ctx.events.get(did, [])
        self.runs = [e for e in self.events if e.kind == "stage_ran"]
        self.fired = next((e for e in self.events if e.kind == "fired"), None)
        self.labels = ctx.labels
        self.part = _Part(did, 0.0, 0.0)
        self.stages = [s for s in self.info.stages if s.role != "runtime"]
        self._wide_start: tuple[float, float, float] | None = None  # (x0, bottom, x1)
        self._edges: tuple[float, float] | None = None  # the block's content, left to right
        self._label_floor: float | None = None  # a path's label goes below this (a frame)
        self._cell_w = MAX_CELL  # the block's cell width, once known

    # sizes ---------------------------------------------------------------------------
    def cell_width(self) -> float:
        widest = MIN_CELL
        for stage in self.stages:
            for side in ("callback", "errback"):
                if not stage.implicit(side):
                    widest = max(widest, text_width(stage.name(side), PX["cell"], True) + 16)
        return min(widest, MAX_CELL)

    # the whole block ----------------------------------------------------------------------
    def build(self) -> _Part:
        if self.lane_of is not None:
            return self._lane()
        ctx = self.ctx
        info = self.info
        part = self.part
        cell_w = self.cell_width()
        cols_w = 2 * cell_w + GUTTER
        steps = [e for e in self.events if e.kind == "step"]
        # children first: their widths decide ours
        hidden = self._hidden()
        inner = {
            sid: [_BlockBuilder(ctx, child, nested=True).build() for child in children]
            for sid, children in ctx.inner_at.get(self.did, {}).items()
            if sid not in hidden  # a stage left out takes what it waited on with it
        }
        members = [m for m in info.members if ctx.owner.get(m) == self.did]
        content_w = cols_w
        for children in inner.values():
            for child in children:
                content_w = max(content_w, INDENT + child.w)
        step_parts = self._step_parts(steps)
        for step, awaited in step_parts:
            if awaited is not None:
                content_w = max(content_w, INDENT + awaited.w)
            if isinstance(step, Event):  # room for what the step says, up to half the display
                said = describe(ctx.trace, step, ctx.steps.get(step.seq))
                content_w = max(
                    content_w, min(text_width(said, PX["cell"]) + 24, DISPLAY_WIDTH / 2)
                )
        lanes = self._lanes(members) if members else []
        if lanes:
            content_w = max(content_w, self._lanes_width(lanes, content_w))
        cancels = [e for e in self.events if e.kind == "cancel"]
        extra = CANCEL_W * len(cancels)
        width = content_w + 2 * PAD + extra
        left = PAD
        col_x = {"callback": left, "errback": left + cell_w + GUTTER}
        y = PAD
        # title
        title = info.title
        parent = self.labels.get(info.parent or 0, "?")
        # Longest first; the title (what the Deferred is) keeps its room and the note takes
        # the longest form that fits whole beside it, or none (the arrows still say it).
        origins = {
            "watched": ["watched"],
            "inner": [f"returned by a stage of {parent}", "returned by a stage"],
            "awaited": [f"awaited by {parent}", "awaited"],
            "chained": [f"chained from {parent}", "chained"],
        }.get(info.origin, [])
        room = content_w - text_width(title, PX["box_title"], bold=True) - 12
        origin = next(
            (o for o in origins if text_width(o, PX["label"], italic=True) <= room), ""
        )
        title_w = content_w - (text_width(origin, PX["label"], italic=True) + 12 if origin else 0)
        part.labels.append(
            Label(
                "block",
                left,
                y + TITLE_H / 2,
                fit(title, max(title_w, 60), PX["box_title"], True),
                PX["box_title"],
                bold=True,
                deferred=self.did,
                keys=frozenset(e.seq for e in self.events if e.kind == "created"),
            )
        )
        if origin:
            part.labels.append(
                Label(
                    "info",
                    left + content_w,
                    y + TITLE_H / 2,
                    origin,
                    PX["label"],
                    align="right",
                    style="muted",
                    italic=True,
                    deferred=self.did,
                )
            )
        y += TITLE_H
        # notes at the top: timeouts, cancellers, pause()/unpause()
        for e in self.events:
            text = self._top_note(e)
            if text:
                style = "held" if e.kind in ("held", "released") else "cancel"
                if e.kind == "canceller" and e.outcome == "raised":
                    style = "failure"
                part.labels.append(
                    Label(
                        "info",
                        left,
                        y + NOTE_H / 2,
                        fit(text, content_w, PX["label"]),
                        PX["label"],
                        style=style,
                        deferred=self.did,
                        keys=frozenset({e.seq}),
                    )
                )
                if e.kind in ("held", "released"):
                    part.used.add("held")
                y += NOTE_H
        # members, as lanes
        join_from: list[tuple[list[tuple[float, float]], Event | None]] = []
        if lanes:
            y += 4
            y, join_from = self._place_lanes(lanes, left, y, content_w)
            y += JOIN_GAP
        # generator / coroutine steps
        anchor: tuple[float, float] | None = None
        for step, waited in step_parts:
            if anchor is not None:
                part.arrows.append(
                    Arrow(
                        "step",
                        (anchor, (left + content_w / 2, y)),
                        self.did,
                        style="step",
                        seq=step.seq if isinstance(step, Event) else None,
                        keys=_keys_of(step),
                    )
                )
            box = self._step_box(step, left, y, content_w)
            part.boxes.append(box)
            anchor = (left + content_w / 2, y + STEP_H)
            y += STEP_H + STEP_GAP
            if waited is not None:
                part.add(waited, left + INDENT, y)
                target = (min(max(anchor[0], left + INDENT + 30), left + INDENT + waited.w - 30), y)
                part.arrows.append(
                    Arrow(
                        "await",
                        (anchor, target),
                        self.did,
                        style="step",
                        dashed=True,
                        keys=_keys_of(step),
                    )
                )
                anchor = (left + INDENT + waited.out[0], y + waited.out[1])
                y += waited.h + STEP_GAP
        # headers and the firing
        # a list's or a generator's result comes down into the firing from above: the
        # column names go below it, clear of that arrow
        beside = info.is_list or bool(steps)
        if self.stages and not beside and not self.nested:
            self._headers(col_x, cell_w, y)
            y += HEAD_H
        fire_box = self._fire_box(col_x, cell_w, cols_w, content_w, left, y, lanes)
        part.boxes.append(fire_box)
        if anchor is not None and steps:
            part.arrows.append(
                Arrow(
                    "step",
                    (anchor, (fire_box.center[0], fire_box.y)),
                    self.did,
                    style="step",
                    keys=frozenset({self.fired.seq}) if self.fired else frozenset(),
                )
            )
        for route, given in join_from:
            self._member_arrow(route, given, fire_box, lanes)
        y = fire_box.bottom + ROW_GAP
        if beside and self.stages and not self.nested:
            self._headers(col_x, cell_w, y - 6, beside=True)
            y += HEAD_H - 6
            fired = self.fired
            if (fired is None and fire_box.style == "untraced") or (
                fired is not None and fired.outcome in ("untraced", "cancel")
            ):  # the arrow out of the firing says what it carried: below the names
                self._label_floor = y
                y += ROW_GAP
        # handoff before any stage ran (an inner that handed its result on, then went on)
        cells: dict[tuple[int, str], Box] = {}
        handoffs = self._handoffs()
        handoff_boxes: dict[int, Box] = {}
        if None in handoffs:
            for e in handoffs[None]:
                box = self._handoff_box(e, col_x, cell_w, y)
                part.boxes.append(box)
                handoff_boxes[e.seq] = box
                y = box.bottom + ROW_GAP
        # the stages
        rows = self._rows()
        inner_parts: dict[int, tuple[_Part, float, float]] = {}
        stubs = self._stubs(inner)
        stub_at: dict[int, float] = {}
        for row in rows:
            if isinstance(row, int):
                box = Box(
                    "elided",
                    left,
                    y,
                    cols_w,
                    CELL_H,
                    self.did,
                    text=fit(self._elided_text(row, hidden), cols_w - 8, PX["cell"], italic=True),
                    style="muted",
                    italic=True,
                )
                part.boxes.append(box)
                part.used.add("elided")
                y += CELL_H + ROW_GAP
                continue
            for side in ("callback", "errback"):
                box = self._cell(row, side, col_x[side], y, cell_w)
                part.boxes.append(box)
                cells[(row.id, side)] = box
            part.labels.append(
                Label(
                    "stage",
                    left + cell_w + GUTTER / 2,
                    y + CELL_H / 2,
                    f"stage {info.row_of(row.id)}",
                    PX["label"],
                    align="center",
                    style="muted",
                    deferred=self.did,
                )
            )
            y += CELL_H
            children = inner.get(row.id, [])
            for child in children:
                y += NEST_GAP
                part.add(child, left + INDENT, y)
                part.boxes.append(Box("nest", left + INDENT, y, child.w, child.h, child.did))
                inner_parts[child.did] = (child, left + INDENT, y)
                y += child.h
            for e in stubs.get(row.id, []):
                y += NEST_GAP - 6
                stub_at[e.seq] = y
                y += PILL_H
            y += NEST_GAP if children or stubs.get(row.id) else ROW_GAP
            for e in handoffs.get(row.id, []):
                box = self._handoff_box(e, col_x, cell_w, y)
                part.boxes.append(box)
                handoff_boxes[e.seq] = box
                y = box.bottom + ROW_GAP
        # the result
        final = self._final()
        result_box = self._result_box(final, col_x, cell_w, cols_w, left, y)
        part.boxes.append(result_box)
        part.out = (result_box.center[0], result_box.bottom)
        part.out_span = (result_box.x, result_box.right)
        y = result_box.bottom
        if final.to_notebook:
            text = "↳ handed to the notebook" + (", raised in the cell" if final.failed else "")
            note_x = result_box.x + 4
            if note_x + text_width(text, PX["label"], italic=True) > left + content_w:
                note_x = left  # under a failure in the right column: keep it in the block
            part.labels.append(
                Label(
                    "info",
                    note_x,
                    y + NOTE_H / 2 + 2,
                    text,
                    PX["label"],
                    style="muted",
                    italic=True,
                    deferred=self.did,
                )
            )
            y += NOTE_H
        for e in self.events:
            if e.kind in ("fire_rejected", "fire_ignored"):
                said = "✗ " + describe(ctx.trace, e)
                for line in wrap(said, content_w, PX["label"], 2):
                    part.labels.append(
                        Label(
                            "info",
                            left,
                            y + NOTE_H / 2 + 2,
                            line,
                            PX["label"],
                            style="failure",
                            deferred=self.did,
                            keys=frozenset({e.seq}),
                        )
                    )
                    y += NOTE_H
        y += PAD
        height = y
        part.w, part.h = width, height
        part.boxes.insert(0, Box("frame", 0, 0, width, height, self.did, style="box"))
        # the path, then the cancels
        self._edges = (left, left + content_w)
        self._cell_w = cell_w
        self._path(cells, fire_box, result_box, final, inner_parts, handoff_boxes, cell_w, stub_at)
        for i, e in enumerate(cancels):
            self._cancel_arrow(e, width - CANCEL_W * (i + 0.5), height)
        return part

    # pieces -------------------------------------------------------------------------------
    def _top_note(self, e: Event) -> str:
        if e.kind == "timeout_set":
            return f"◷ addTimeout: cancel after {e.detail} unless fired first"
        if e.kind == "canceller":
            return describe(self.ctx.trace, e)
        if e.kind == "held":
            return "‖ " + describe(self.ctx.trace, e)
        if e.kind == "released":
            return "▶ " + describe(self.ctx.trace, e)
        return ""

    def _headers(
        self, col_x: dict[str, float], cell_w: float, y: float, beside: bool = False
    ) -> None:
        """Name the columns; ``beside`` puts the names clear of the columns' middles, where
        an arrow comes down from a pill as wide as the block."""
        left = col_x["callback"] + (cell_w / 2 + 8 if beside else 2)
        right = col_x["errback"] + (cell_w / 2 - 8 if beside else cell_w - 2)
        self.part.labels.append(
            Label(
                "header",
                left,
                y + HEAD_H / 2,
                "callbacks ↓",
                PX["label"],
                style="callback",
                bold=True,
                deferred=self.did,
            )
        )
        self.part.labels.append(
            Label(
                "header",
                right,
                y + HEAD_H / 2,
                "↓ errbacks",
                PX["label"],
                align="right",
                style="errback",
                bold=True,
                deferred=self.did,
            )
        )

    def _fire_box(
        self,
        col_x: dict[str, float],
        cell_w: float,
        cols_w: float,
        content_w: float,
        left: float,
        y: float,
        lanes: list[_Part],
    ) -> Box:
        fired = self.fired
        keys = frozenset({fired.seq}) if fired else frozenset()
        if self.info.untraced and (fired is None or fired.outcome == "untraced"):
            self.part.used.add("untraced")
            text = "(earlier stages not traced)"
            return Box(
                "fire",
                left,
                y,
                cols_w,
                PILL_H,
                self.did,
                text=fit(text, cols_w - 12, PX["cell"]),
                style="untraced",
                italic=True,
                dashed=True,
                keys=keys,
            )
        if fired is None:
            x = left + (cols_w - cell_w) / 2
            if lanes:
                x, w = left, content_w
            else:
                w = cell_w
            return Box(
                "fire",
                x,
                y,
                w,
                PILL_H,
                self.did,
                text="not fired yet",
                style="muted",
                italic=True,
                dashed=True,
                keys=keys,
            )
        text = _fire_text(self.info, fired, self.labels)
        span = (left, content_w) if lanes else None
        return self._pill("fire", text, fired.value, col_x, cell_w, cols_w, y, keys, span)

    def _pill(
        self,
        kind: str,
        text: str,
        value: Value | None,
        col_x: dict[str, float],
        cell_w: float,
        cols_w: float,
        y: float,
        keys: frozenset[int],
        span: tuple[float, float] | None = None,
    ) -> Box:
        """A pill holding a value, in the column its value belongs to (a Failure's on the
        right), as wide as its words need up to both columns; ``span`` (x, width) forces
        its place."""
        side = _side_of(value)
        w = min(max(text_width(text, PX["cell"], True) + 20, cell_w), cols_w)
        x = col_x[side] if side == "callback" else col_x[side] + cell_w - w
        if span is not None:
            x, w = span
        return Box(
            kind,
            x,
            y,
            w,
            PILL_H,
            self.did,
            side=side,
            text=self._fitted(text, w - 12, PX["cell"], True),
            style=_style_of(value),
            bold=True,
            keys=keys,
        )

    def _fitted(self, text: str, width: float, px: float, bold: bool = False) -> str:
        """``text`` fitted to ``width``: when it is too long, the middle of its value
        (what stands between the first ``(`` or space and the end) is left out, so the
        words around it stay whole: ``callback('Tyger…bright')``."""
        out = fit(text, width, px, bold)
        if out == text or out == fit(text, 1e9, px, bold):
            return out
        self.part.used.add("elided")
        cut = _value_start(text)
        if cut > 0:
            head = text[:cut]
            close = ")" if text.endswith(")") and "(" in head else ""
            inside = text[cut : len(text) - len(close)]
            room = width - text_width(head + close, px, bold)
            if room > 30:
                return fit(head, 1e9, px, bold) + fit(inside, room, px, bold) + close
        return out

    def _elided_text(self, count: int, hidden: set[int]) -> str:
        waited = sum(
            len(children)
            for sid, children in self.ctx.inner_at.get(self.did, {}).items()
            if sid in hidden
        )
        more = f", {waited} inner Deferreds" if waited else ""
        return f"… {count:,} more stages{more} …"

    def _hidden(self) -> set[int]:
        """The ids of the stages left out of a long chain's middle."""
        shown = {row.id for row in self._rows() if not isinstance(row, int)}
        return {stage.id for stage in self.stages} - shown

    def _rows(self) -> list[Any]:
        stages = self.stages
        if len(stages) > MAX_ROWS:
            hidden = len(stages) - 2 * KEEP_ROWS
            return [*stages[:KEEP_ROWS], hidden, *stages[-KEEP_ROWS:]]
        return list(stages)

    def _cell(self, stage: Any, side: str, x: float, y: float, w: float) -> Box:
        ran_events = [e for e in self.runs if e.stage == stage.id and e.side == side]
        ran = bool(ran_events)
        keys = frozenset({stage.added_seq, *(e.seq for e in ran_events)})
        if stage.implicit(side):
            self.part.used.add("passthru")
            return Box(
                "cell",
                x,
                y,
                w,
                CELL_H,
                self.did,
                stage.id,
                side,
                ran,
                "pass-through",
                style="passthru",
                italic=True,
                dashed=True,
                keys=keys,
            )
        plumbing = stage.role != "user"
        if plumbing:
            self.part.used.add("plumbing")
        self.part.used.add(side if ran else "idle")
        text = self._fitted(stage.name(side), w - 12, PX["cell"], ran)
        return Box(
            "cell",
            x,
            y,
            w,
            CELL_H,
            self.did,
            stage.id,
            side,
            ran,
            text,
            style=side,
            italic=plumbing,
            bold=ran,
            keys=keys,
        )

    def _final(self) -> Final:
        return self.ctx.trace.final(self.did)

    def _result_box(
        self,
        final: Final,
        col_x: dict[str, float],
        cell_w: float,
        cols_w: float,
        left: float,
        y: float,
    ) -> Box:
        labels = self.labels
        value_text = _value_text(final.value, labels)
        keys: frozenset[int] = frozenset()
        if final.state in ("result", "handed", "held"):
            side = _side_of(final.value)
            x = col_x[side]
            w = cell_w
            if final.state == "held":
                self.part.used.add("held")
                text = f"‖ paused by pause(): holds {value_text}"
                w = cols_w
                x = left
                return Box(
                    "result",
                    x,
                    y,
                    w,
                    PILL_H,
                    self.did,
                    side=side,
                    text=self._fitted(text, w - 12, PX["cell"], True),
                    style="held",
                    bold=True,
                    dashed=True,
                    keys=keys,
                )
            if final.state == "handed":
                text = f"{value_text} → {labels.get(final.other or 0, '?')}"
            elif final.failed:
                lead = "failed: " if final.to_notebook else "unhandled "
                text = lead + value_text
            else:
                text = "result " + value_text
            return self._pill("result", text, final.value, col_x, cell_w, cols_w, y, keys)
        if final.state == "waiting":
            if final.other == self.did:
                text = "⟲ waits on itself forever"
                return Box(
                    "result",
                    left,
                    y,
                    cols_w,
                    PILL_H,
                    self.did,
                    text=text,
                    style="failure",
                    bold=True,
                    dashed=True,
                )
            text = f"waiting on {labels.get(final.other or 0, '?')}"
        else:
            text = "not fired" + (" (paused by pause())" if final.held else "")
            if final.held:
                self.part.used.add("held")
        w = min(max(text_width(text, PX["cell"], italic=True) + 20, cell_w), cols_w)
        x = left + (cols_w - w) / 2
        return Box(
            "result",
            x,
            y,
            w,
            PILL_H,
            self.did,
            text=self._fitted(text, w - 12, PX["cell"]),
            style="muted",
            italic=True,
            dashed=True,
        )

    def _handoffs(self) -> dict[int | None, list[Event]]:
        """Hand-offs of this Deferred's result to chains that waited on it, placed after
        the last stage that ran before each: only those after which more stages ran
        (the last hand-off shows at the result pill)."""
        taken = self.ctx.handoffs.get(self.did, [])
        out: dict[int | None, list[Event]] = {}
        for e in taken:
            later = any(r.seq > e.seq for r in self.runs)
            if not later and e is taken[-1]:
                continue
            before = [r for r in self.runs if r.seq < e.seq]
            out.setdefault(before[-1].stage if before else None, []).append(e)
        return out

    def _handoff_box(self, e: Event, col_x: dict[str, float], cell_w: float, y: float) -> Box:
        side = _side_of(e.value)
        text = f"{_value_text(e.value, self.labels)} → {self.labels.get(e.deferred, '?')}"
        return Box(
            "handoff",
            col_x[side],
            y,
            cell_w,
            PILL_H,
            self.did,
            side=side,
            text=self._fitted(text, cell_w - 12, PX["cell"]),
            style=_style_of(e.value),
            keys=frozenset({e.seq}),
        )

    # the path ---------------------------------------------------------------------------
    def _path(
        self,
        cells: dict[tuple[int, str], Box],
        fire_box: Box,
        result_box: Box,
        final: Final,
        inner_parts: dict[int, tuple[_Part, float, float]],
        handoff_boxes: dict[int, Box],
        cell_w: float,
        stub_at: dict[int, float],
    ) -> None:
        part = self.part
        labels = self.labels
        fired = self.fired
        anchor: tuple[float, float] | None = None
        if fired is not None or fire_box.style == "untraced":
            anchor = (fire_box.center[0], fire_box.bottom)
            if fire_box.w > cell_w + GUTTER:  # a pill as wide as the block
                self._wide_start = (fire_box.x, fire_box.bottom, fire_box.right)
        label_value: Value | None = None
        label_text: str | None = None
        label_kind = "path"
        label_seq: int | None = None
        dashed = False
        from_fire = fired is not None and fired.outcome not in ("untraced", "cancel")
        story = list(self.events)
        # the hand-offs of this Deferred's result, in order with its own events
        handed = [e for e in self.ctx.handoffs.get(self.did, []) if e.seq in handoff_boxes]
        story = sorted([*story, *handed], key=lambda e: e.seq)
        elided = any(isinstance(r, int) for r in self._rows())
        hidden = self._hidden()
        in_hidden = False  # the result is in the left-out middle of a long chain
        for e in story:
            if e.kind == "stage_ran" and e.deferred == self.did and e.stage is not None:
                in_hidden = e.stage in hidden
            elif in_hidden and e.kind in ("paused", "adopted", "resumed"):
                continue  # what a left-out stage waited on is left out with it
            if e.seq in handoff_boxes and e.deferred != self.did:
                box = handoff_boxes[e.seq]
                if anchor is not None:
                    self._path_arrow(
                        anchor,
                        box,
                        _value_text(e.value, labels) if not from_fire else None,
                        e.value,
                        e.seq,
                        dashed,
                    )
                anchor = (box.center[0], box.bottom)
                from_fire = False
                continue
            if e.kind == "stage_ran" and e.stage is not None and e.side is not None:
                target = cells.get((e.stage, e.side))
                if target is None:
                    dashed = dashed or elided
                    continue
                if anchor is not None:
                    text = label_text
                    if text is None and not from_fire:
                        text = _value_text(e.value, labels)
                    self._path_arrow(
                        anchor,
                        target,
                        text,
                        label_value or e.value,
                        label_seq if label_seq is not None else e.seq,
                        dashed,
                        extra_keys={e.seq},
                        kind=label_kind,
                    )
                anchor = (target.center[0], target.bottom)
                label_value, label_text, label_seq, dashed, label_kind = (
                    None,
                    None,
                    None,
                    False,
                    "path",
                )
                from_fire = False
            elif e.kind == "paused" and anchor is not None:
                if e.other == self.did:
                    self._self_arrow(anchor, e)
                    anchor = None
                    continue
                got = inner_parts.get(e.other or 0)
                name = labels.get(e.other or 0, "?")
                part.used.add("waits")
                if got is not None:
                    anchor = self._wait_arrow(anchor, got, f"paused: waits on {name}", e)
                else:
                    # drawn elsewhere (shared, or not traced here): say where, in a stub
                    where = self._drawn_in(e.other)
                    said = f"waits on {name}{where}"
                    stub_w = min(
                        text_width(said, PX["label"], italic=True) + 20, cell_w + GUTTER - 8
                    )
                    stub = Box(
                        "stub",
                        anchor[0] - cell_w / 2,
                        stub_at.get(e.seq, anchor[1] + 8),
                        stub_w,
                        PILL_H,
                        self.did,
                        text=fit(said, stub_w - 10, PX["label"], italic=True),
                        style="muted",
                        italic=True,
                        dashed=True,
                        keys=frozenset({e.seq}),
                        px=PX["label"],
                    )
                    part.boxes.append(stub)
                    part.arrows.append(
                        Arrow(
                            "wait",
                            (anchor, (anchor[0], stub.y)),
                            self.did,
                            style="plain",
                            dashed=True,
                            seq=e.seq,
                            keys=frozenset({e.seq}),
                        )
                    )
                    anchor = (anchor[0], stub.bottom)
            elif e.kind == "adopted" and anchor is not None:
                got = inner_parts.get(e.other or 0)
                if got is not None:
                    said = f"returned {labels.get(e.other or 0, '?')}, already fired"
                    anchor = self._wait_arrow(anchor, got, said, e)
                label_text = "took " + _value_text(e.value, labels)
                label_value = e.value
                label_seq = e.seq
                label_kind = "resume"
                dashed = True
                part.used.add("resumed")
            elif e.kind == "resumed":
                label_text = "resumed: " + _value_text(e.value, labels)
                label_value = e.value
                label_seq = e.seq
                label_kind = "resume"
                dashed = True
                part.used.add("resumed")
        if anchor is None:
            return
        if final.state in ("result", "handed", "held"):
            self._path_arrow(
                anchor,
                result_box,
                label_text,
                label_value or final.value,
                label_seq,
                dashed,
                kind=label_kind,
            )

    def _wait_arrow(
        self,
        anchor: tuple[float, float],
        got: tuple[_Part, float, float],
        text: str,
        e: Event,
    ) -> tuple[float, float]:
        """The arrow from a stage into the inner Deferred it returned (drawn inside);
        returns where the path goes on from: that Deferred's way out."""
        child, cx, cy = got
        tx = min(max(anchor[0], cx + 30), cx + child.w - 30)
        # the words right of the arrow, or left of it if they fit only there
        left, right = self._edges or (PAD, anchor[0] + 1.5 * MAX_CELL)
        width = text_width(text, PX["label"])
        at, align = (anchor[0] + 8, (anchor[1] + cy) / 2), "left"
        if at[0] + width > right and min(anchor[0], tx) - 8 - width >= left:
            at, align = (min(anchor[0], tx) - 8, at[1]), "right"
        elif at[0] + width > right:
            text = self._fitted(text, right - at[0], PX["label"])
        self.part.arrows.append(
            Arrow(
                "wait",
                (anchor, (tx, cy)),
                self.did,
                text,
                at,
                align,
                style="plain",
                dashed=True,
                seq=e.seq,
                keys=frozenset({e.seq}),
            )
        )
        self.part.used.add("waits")
        out = (cx + child.out[0], cy + child.out[1])
        if child.out_span is not None:  # on from that pill: straight down if under it
            self._wide_start = (cx + child.out_span[0], out[1], cx + child.out_span[1])
        self._label_floor = cy + child.h
        return out

    def _stubs(self, inner: dict[int, list[_Part]]) -> dict[int, list[Event]]:
        """The pauses on Deferreds drawn elsewhere, by the stage after which they came: a
        stub saying where takes their place."""
        out: dict[int, list[Event]] = {}
        last: int | None = None
        hidden = self._hidden()
        for e in self.events:
            if e.kind == "stage_ran":
                last = e.stage
            elif e.kind == "paused" and e.other != self.did and last is not None:
                if last in hidden:
                    continue
                drawn_here = any(child.did == e.other for child in inner.get(last, []))
                if not drawn_here:
                    out.setdefault(last, []).append(e)
        return out

    def _drawn_in(self, did: int | None) -> str:
        owner = self.ctx.owner.get(did or 0)
        if owner is None or owner == self.did:
            return ""
        return f" (inside {self.labels.get(owner, '?')})"

    def _path_arrow(
        self,
        start: tuple[float, float],
        target: Box,
        text: str | None,
        value: Value | None,
        seq: int | None,
        dashed: bool,
        extra_keys: Iterable[int] = (),
        kind: str = "path",
    ) -> None:
        sx, sy = start
        tx, ty = target.center[0], target.y
        if self._wide_start is not None and sy == self._wide_start[1]:
            # out of a wide pill: straight down into the target if it is under the pill
            x0, _, x1 = self._wide_start
            lo, hi = max(x0, target.x) + 12, min(x1, target.right) - 12
            if x0 <= tx <= x1:
                sx = tx
            elif lo <= hi:
                sx = tx = (lo + hi) / 2
        style = _style_of(value)
        if _is_failure(value):
            self.part.used.add("failure")
        crossing = abs(tx - sx) > target.w / 2 + 1
        points: tuple[tuple[float, float], ...]
        if crossing:
            # from the source's inner bottom corner to the target's inner top corner: the
            # arrow crosses the gutter in the gap between rows, clear of the stage numbers
            going_right = tx > sx
            half = target.w / 2
            from_half = min(half, self._cell_w / 2)  # the source: a cell, or a pill as wide
            sx += from_half if going_right else -from_half
            sy -= 5
            # into the target's near top corner, or (a target reaching under the source)
            # at least half a gutter on: the arrow always leans the way it goes
            if going_right:
                tx = min(max(target.x, sx + GUTTER / 2), target.right - 12)
            else:
                tx = max(min(target.right, sx - GUTTER / 2), target.x + 12)
            ty += 5
            points = ((sx, sy), (tx, ty))
        else:
            points = ((sx, sy), (sx, ty))
        keys = frozenset({*(k for k in (seq,) if k is not None), *extra_keys})
        label_at = None
        align = "left"
        floor, self._label_floor = self._label_floor, None
        if text:
            if crossing:
                room = abs(tx - sx) + 2 * target.w - 24
                mid = (max(sy, floor or sy) + ty) / 2
                pitch = CELL_H + ROW_GAP
                rows_apart = round(abs(ty - sy) / pitch)
                if floor is None and rows_apart % 2 == 0:
                    mid -= pitch / 2  # the middle is a row of cells: use the gap above
                label_at = ((sx + tx) / 2, mid)
                align = "center"
            else:
                # beside the arrow, in the gap between rows (below the frame of an inner
                # Deferred the path comes out of), within the block
                mid = (max(sy, floor or sy) + ty) / 2
                left, right = self._edges or (PAD, sx + 1.5 * MAX_CELL + GUTTER)
                if target.side == "errback" or (target.side is None and sx > target.right):
                    room = max(60.0, sx - 8 - left)
                    label_at = (sx - 8, mid)
                    align = "right"
                else:
                    room = max(60.0, min(1.5 * MAX_CELL + GUTTER - 16, right - sx - 8))
                    label_at = (sx + 8, mid)
            text = self._fitted(text, room, PX["label"])
        self.part.arrows.append(
            Arrow(
                "cross" if crossing else kind,
                points,
                self.did,
                text or "",
                label_at,
                align,
                style,
                dashed,
                seq,
                keys,
            )
        )

    def _self_arrow(self, anchor: tuple[float, float], e: Event) -> None:
        """A chain waiting on itself: from the stage back up to its own title."""
        x, y = anchor
        right = x + 40
        points = (
            (x, y),
            (x, y + 10),
            (right, y + 10),
            (right, TITLE_H + PAD + 4),
            (x + 10, TITLE_H + PAD + 4),
        )
        self.part.arrows.append(
            Arrow(
                "self",
                points,
                self.did,
                "returned itself: waits forever",
                (right + 6, y - 10),
                style="failure",
                dashed=True,
                seq=e.seq,
                keys=frozenset({e.seq}),
            )
        )
        self.part.used.add("waits")

    def _cancel_arrow(self, e: Event, x: float, height: float) -> None:
        who = {"timeout": "timeout: cancel()", "user": "cancel()"}.get(
            e.outcome or "", f"cancel() from {self.labels.get(e.other or 0, '?')}"
        )
        top, bottom = TITLE_H + PAD, height - PAD
        who = fit(who, height - 2 * PAD - 4, PX["label"])
        self.part.arrows.append(
            Arrow(
                "cancel",
                ((x, bottom), (x, top)),
                self.did,
                who,
                (x - 10, (top + bottom) / 2),
                "center",
                "cancel",
                True,
                e.seq,
                frozenset({e.seq}),
            )
        )
        self.part.used.add("cancel")

    # generators and coroutines ----------------------------------------------------------
    def _step_parts(self, steps: list[Event]) -> list[tuple[Any, _Part | None]]:
        """Each step with the Deferred it then waited on (laid out); runs of steps alike
        folded into a :class:`_Fold` unless unfolding."""
        awaited = self.ctx.awaited_at.get(self.did, {})
        items = [(e, awaited.get(e.seq)) for e in steps]
        if not self.ctx.unfold:
            items = _fold(items, self.ctx)
        out: list[tuple[Any, _Part | None]] = []
        for step, child in items:
            built = None
            if child is not None:
                lane = None if self._complex(child) else self.did
                built = _BlockBuilder(self.ctx, child, lane, nested=True).build()
            out.append((step, built))
        return out

    def _complex(self, did: int) -> bool:
        """True when Deferred ``did`` needs a whole block, not a compact lane: it is a
        list, it drives a generator, or it waited on an inner Deferred."""
        info = self.ctx.trace.deferred(did)
        return (
            info.is_list
            or any(e.kind == "step" for e in self.ctx.events.get(did, []))
            or did in self.ctx.inner_at
        )

    def _step_box(self, step: Any, left: float, y: float, width: float) -> Box:
        if isinstance(step, _Fold):
            self.part.used.add("fold")
            text = f"⋮ {step.count - 2:,} more steps like these (× {step.count:,} in all)"
            return Box(
                "fold",
                left,
                y,
                width,
                STEP_H,
                self.did,
                text=fit(text, width - 12, PX["cell"]),
                style="step",
                italic=True,
                dashed=True,
                keys=frozenset(step.seqs),
            )
        self.part.used.add("step")
        text = describe(self.ctx.trace, step, self.ctx.steps.get(step.seq))
        return Box(
            "step",
            left,
            y,
            width,
            STEP_H,
            self.did,
            text=self._fitted(text, width - 12, PX["cell"]),
            style="step",
            keys=frozenset({step.seq}),
        )

    # lists ------------------------------------------------------------------------------
    def _lanes(self, members: list[int]) -> list[_Part]:
        out = []
        for m in members:
            if self._complex(m):
                out.append(_BlockBuilder(self.ctx, m, nested=True).build())
            elif self._plain_member(m):
                out.append(self._chip(m))
            else:
                out.append(_BlockBuilder(self.ctx, m, self.did, nested=True).build())
        return out

    def _plain_member(self, m: int) -> bool:
        """True for a member that only fired and gave that very value to the list."""
        events = self.ctx.events.get(m, [])
        if any(e.kind in ("cancel", "fire_rejected", "fire_ignored", "held") for e in events):
            return False
        ran = [e for e in events if e.kind == "stage_ran"]
        info = self.ctx.trace.deferred(m)
        roles = {s.id: s.role for s in info.stages}
        if any(roles.get(e.stage or 0) != "list" for e in ran):
            return False
        fired = next((e for e in events if e.kind == "fired"), None)
        given = self._given(m)
        if fired is None and given is None:
            return not ran and not info.untraced  # not fired yet, nothing ran
        return fired is not None and given is not None and fired.value == given.value

    def _given(self, m: int) -> Event | None:
        """What member ``m`` gave this list (None if nothing yet)."""
        for e in self.ctx.events.get(self.did, []):
            if e.kind == "member_result" and e.other == m:
                return e
        return None

    def _chip(self, m: int) -> _Part:
        """A member that fired and gave its value to the list, as one pill: ``d5: [4] 4``;
        one that has not fired yet: ``d5: not fired``."""
        given = self._given(m)
        name = self.labels.get(m, "?")
        if given is None:
            text, keys = f"{name}: not fired", frozenset[int]()
            kind, side, style = "result", None, "muted"
        else:
            fired = next(e for e in self.ctx.events.get(m, []) if e.kind == "fired")
            text = f"{name}: [{given.slot}] {_value_text(given.value, self.labels)}"
            keys = frozenset({given.seq, fired.seq})
            kind, side, style = "gave", _side_of(given.value), _style_of(given.value)
        w = min(max(text_width(text, PX["label"], True) + 18, 72.0), LANE_MAX)
        part = _Part(m, w, PILL_H)
        part.boxes.append(
            Box(
                kind,
                0,
                0,
                w,
                PILL_H,
                m,
                side=side,
                text=fit(text, w - 10, PX["label"], True),
                style=style,
                bold=given is not None,
                italic=given is None,
                dashed=given is None,
                keys=keys,
                px=PX["label"],
            )
        )
        part.boxes.insert(0, Box("frame", 0, 0, w, PILL_H, m, style="chip"))
        part.out = (w / 2, PILL_H)
        if ELLIPSIS in part.boxes[-1].text:
            part.used.add("elided")
        if given is not None and given.value is not None and given.value.is_failure:
            part.used.add("failure")
        return part

    def _lanes_width(self, lanes: list[_Part], at_least: float) -> float:
        limit = max(at_least, DISPLAY_WIDTH - 2 * MARGIN - 2 * PAD - 40)
        widest = max(part.w for part in lanes)
        total = sum(part.w for part in lanes) + LANE_GAP * (len(lanes) - 1)
        if total <= limit:
            return total
        per_row = max(1, int((limit + LANE_GAP) // (widest + LANE_GAP)))
        return max(widest, per_row * (widest + LANE_GAP) - LANE_GAP)

    def _place_lanes(
        self, lanes: list[_Part], left: float, top: float, width: float
    ) -> tuple[float, list[tuple[list[tuple[float, float]], Event | None]]]:
        """Lay the lanes out in rows no wider than ``width``; returns the y below them and,
        per member, the route its result takes towards the list's firing."""
        part = self.part
        part.used.add("member")
        rows: list[list[_Part]] = [[]]
        x = 0.0
        for lane in lanes:
            if rows[-1] and x + lane.w > width + 0.5:
                rows.append([])
                x = 0.0
            rows[-1].append(lane)
            x += lane.w + LANE_GAP
        given = {e.other: e for e in self.events if e.kind == "member_result"}
        routes: list[tuple[list[tuple[float, float]], Event | None]] = []
        y = top
        many = len(rows) > 1
        trunk_x = left + width - 2
        for row in rows:
            x = left
            tallest = max(lane.h for lane in row)
            for lane in row:
                part.add(lane, x, y)
                ox, oy = x + lane.out[0], y + lane.out[1]
                route = [(ox, oy)]
                if lane.exit:
                    route = [(x + px, y + py) for px, py in lane.exit]
                if many:
                    bus_y = y + tallest + BUS_GAP / 2
                    route += [(route[-1][0], bus_y), (trunk_x, bus_y)]
                routes.append((route, given.get(lane.did)))
                x += lane.w + LANE_GAP
            y += tallest + (BUS_GAP if many else 0)
        if many:
            for i, (route, e) in enumerate(routes):
                routes[i] = (route, e)
        return y, routes

    def _member_arrow(
        self,
        route: list[tuple[float, float]],
        given: Event | None,
        fire_box: Box,
        lanes: list[_Part],
    ) -> None:
        end_x = min(max(route[-1][0], fire_box.x + 16), fire_box.right - 16)
        points = [*route, (end_x, fire_box.y)]
        if len(route) == 1:
            points = [route[0], (end_x, fire_box.y)]
        else:
            points = [*route, (route[-1][0], fire_box.y)]
        style = _style_of(given.value if given else None)
        keys = frozenset({given.seq}) if given else frozenset()
        self.part.arrows.append(
            Arrow(
                "member",
                tuple(points),
                given.other if given and given.other else self.did,
                style=style if given else "plain",
                dashed=given is None,
                seq=given.seq if given else None,
                keys=keys,
            )
        )

    def _lane(self) -> _Part:
        """A list member drawn compactly: its name, the stages that ran (the side that
        ran), the point where it gave its result to the list, and what ran after."""
        part = self.part
        info = self.info
        list_did = self.lane_of
        given = next(
            (
                e
                for e in self.ctx.events.get(list_did or 0, [])
                if e.kind == "member_result" and e.other == self.did
            ),
            None,
        )
        hook = next(
            (
                s
                for s in self.info.stages
                if s.role == "list"
                and given is not None
                and self.labels.get(list_did or 0, "?") in s.callback
            ),
            None,
        )
        ran_ids = {e.stage for e in self.runs}
        stages = [s for s in self.stages if s.id in ran_ids and s.role != "list"]
        # awaited by a generator: its result goes into the generator at the resume stage
        resume = next((s for s in reversed(stages) if s.role == "inline"), None)
        widest = max(
            [text_width(info.label, PX["box_title"], True) + 8]
            + [text_width(s.name(self._ran_side(s)), PX["cell"], True) + 16 for s in stages]
        )
        # awaited by a generator, a lane may be as wide as the steps above it
        most = LANE_MAX if self.ctx.trace.deferred(list_did or 0).is_list else AWAITED_MAX
        if self.fired is not None:
            fire_text = _fire_text(info, self.fired, self.labels)
            widest = max(widest, min(text_width(fire_text, PX["label"], True) + 16, most))
        gave_text = ""
        if given is not None:
            gave_text = f"[{given.slot}] {_value_text(given.value, self.labels)}"
            widest = max(widest, min(text_width(gave_text, PX["label"], True) + 16, most))
        w = min(max(widest, LANE_MIN), most)
        y = PAD
        part.labels.append(
            Label(
                "block",
                PAD,
                y + TITLE_H / 2,
                fit(info.label, w, PX["box_title"], True),
                PX["box_title"],
                bold=True,
                deferred=self.did,
                keys=frozenset(e.seq for e in self.events if e.kind == "created"),
            )
        )
        y += TITLE_H
        for e in self.events:
            if e.kind == "cancel":
                who = {"timeout": "timed out", "user": "cancel() called"}.get(
                    e.outcome or "", f"cancelled by {self.labels.get(e.other or 0, '?')}"
                )
                part.labels.append(
                    Label(
                        "info",
                        PAD,
                        y + NOTE_H / 2,
                        fit("⇡ " + who, w, PX["label"]),
                        PX["label"],
                        style="cancel",
                        deferred=self.did,
                        keys=frozenset({e.seq}),
                    )
                )
                part.used.add("cancel")
                y += NOTE_H
        fired = self.fired
        before = [s for s in stages if hook is None or s.added_seq < hook.added_seq]
        after = [s for s in stages if s not in before]
        anchor: tuple[float, float] | None = None
        if fired is not None or self.info.untraced:
            if self.info.untraced and (fired is None or fired.outcome == "untraced"):
                text, style = "(untraced stages)", "untraced"
                part.used.add("untraced")
            else:
                assert fired is not None
                text = _fire_text(info, fired, self.labels)
                style = _style_of(fired.value)
            box = Box(
                "fire",
                PAD,
                y,
                w,
                PILL_H,
                self.did,
                side=_side_of(fired.value if fired else None),
                text=self._fitted(text, w - 10, PX["label"], True),
                style=style,
                bold=True,
                italic=style == "untraced",
                dashed=style == "untraced",
                keys=frozenset({fired.seq}) if fired else frozenset(),
                px=PX["label"],
            )
            part.boxes.append(box)
            anchor = (box.center[0], box.bottom)
            y = box.bottom + ROW_GAP
        cells: dict[int, Box] = {}
        for s in before:
            box = self._lane_cell(s, y, w)
            part.boxes.append(box)
            cells[s.id] = box
            y = box.bottom + ROW_GAP
        gave_box = None
        if given is not None:
            gave_box = Box(
                "gave",
                PAD,
                y,
                w,
                PILL_H,
                self.did,
                side=_side_of(given.value),
                text=self._fitted(gave_text, w - 10, PX["label"], True),
                style=_style_of(given.value),
                bold=True,
                keys=frozenset({given.seq}),
                px=PX["label"],
            )
            part.boxes.append(gave_box)
            y = gave_box.bottom + ROW_GAP
        for s in after:
            box = self._lane_cell(s, y, w)
            part.boxes.append(box)
            cells[s.id] = box
            y = box.bottom + ROW_GAP
        end_box = None
        sent = resume is not None and resume is stages[-1] and list_did is not None
        if (after or given is None) and not sent:
            final = self._final()
            text = (
                "not fired" if final.state == "unfired" else _value_text(final.value, self.labels)
            )
            if final.state == "waiting":
                text = f"waiting on {self.labels.get(final.other or 0, '?')}"
            end_box = Box(
                "result",
                PAD,
                y,
                w,
                PILL_H,
                self.did,
                side=_side_of(final.value),
                text=self._fitted(text, w - 10, PX["label"]),
                style=_style_of(final.value) if final.state in ("result", "handed") else "muted",
                italic=final.state not in ("result", "handed"),
                dashed=final.state not in ("result", "handed"),
                px=PX["label"],
            )
            part.boxes.append(end_box)
            y = end_box.bottom
        else:
            y -= ROW_GAP
        y += PAD
        width = w + 2 * PAD
        part.w, part.h = width, y
        part.boxes.insert(0, Box("frame", 0, 0, width, y, self.did, style="lane"))
        # the path through the lane, in the order things happened
        for e in self.events:
            if e.kind == "stage_ran" and e.stage in cells:
                target = cells[e.stage]
                if (
                    anchor is not None
                    and gave_box is not None
                    and anchor[1] <= gave_box.y < target.y
                ):
                    anchor = (gave_box.center[0], gave_box.bottom)
                if anchor is not None:
                    self._path_arrow(anchor, target, None, e.value, e.seq, False, kind="path")
                anchor = (target.center[0], target.bottom)
        if gave_box is not None:
            if anchor is not None and anchor[1] <= gave_box.y:
                self._path_arrow(
                    anchor,
                    gave_box,
                    None,
                    given.value if given else None,
                    given.seq if given else None,
                    False,
                )
            part.out = (gave_box.center[0], gave_box.bottom)
            if after:
                # the result leaves for the list at this point, before the later stages
                part.exit = [
                    (gave_box.right, gave_box.center[1]),
                    (width - 3, gave_box.center[1]),
                    (width - 3, y),
                ]
        elif end_box is not None:
            if anchor is not None and anchor[1] <= end_box.y:
                self._path_arrow(anchor, end_box, None, None, None, False)
            part.out = (end_box.center[0], end_box.bottom)
        elif anchor is not None:
            part.out = anchor  # the resume stage: the result went into the generator
        if after and end_box is not None and gave_box is not None:
            last = cells[after[-1].id]
            self._path_arrow((last.center[0], last.bottom), end_box, None, None, None, False)
        return part

    def _ran_side(self, stage: Any) -> str:
        ran = next((e for e in self.runs if e.stage == stage.id), None)
        return ran.side if ran is not None and ran.side else "callback"

    def _lane_cell(self, stage: Any, y: float, w: float) -> Box:
        side = self._ran_side(stage)
        ran_events = [e for e in self.runs if e.stage == stage.id]
        keys = frozenset({stage.added_seq, *(e.seq for e in ran_events)})
        if stage.implicit(side):
            self.part.used.add("passthru")
            return Box(
                "cell",
                PAD,
                y,
                w,
                CELL_H,
                self.did,
                stage.id,
                side,
                True,
                "pass-through",
                style="passthru",
                italic=True,
                dashed=True,
                keys=keys,
            )
        self.part.used.add(side)
        if stage.role != "user":
            self.part.used.add("plumbing")
        return Box(
            "cell",
            PAD,
            y,
            w,
            CELL_H,
            self.did,
            stage.id,
            side,
            True,
            self._fitted(stage.name(side), w - 10, PX["cell"], True),
            style=side,
            bold=True,
            italic=stage.role != "user",
            keys=keys,
        )


@dataclass(frozen=True)
class _Fold:
    """Steps folded into one line: ``count`` steps alike, the events in ``seqs``."""

    count: int
    seqs: tuple[int, ...]


def _signature(ctx: _Context, step: Event, child: int | None) -> tuple[Any, ...]:
    """What makes two generator steps alike: how they went, and how what they awaited went."""
    shape: tuple[Any, ...] = ()
    if child is not None:
        shape = tuple(
            (e.kind, e.side, e.outcome)
            for e in ctx.events.get(child, [])
            if e.kind in ("stage_ran", "fired", "paused", "resumed")
        )
        shape += (ctx.trace.final(child).state,)
    return (step.side, step.outcome, child is not None, shape)


def _fold(items: list[tuple[Event, int | None]], ctx: _Context) -> list[tuple[Any, int | None]]:
    out: list[tuple[Any, int | None]] = []
    i = 0
    signatures = [_signature(ctx, step, child) for step, child in items]
    while i < len(items):
        j = i
        while j + 1 < len(items) and signatures[j + 1] == signatures[i]:
            j += 1
        run = j - i + 1
        if run >= FOLD_AT:
            seqs: list[int] = []
            for step, child in items[i + 1 : j]:
                seqs.append(step.seq)
                if child is not None:
                    seqs.extend(e.seq for e in ctx.events.get(child, []))
            out.append(items[i])
            out.append((_Fold(run, tuple(seqs)), None))
            out.append(items[j])
        else:
            out.extend(items[i : j + 1])
        i = j + 1
    return out


def _keys_of(step: Any) -> frozenset[int]:
    if isinstance(step, _Fold):
        return frozenset(step.seqs)
    return frozenset({step.seq})


# -- the whole picture ----------------------------------------------------------------------
def layout(
    trace: TraceData,
    ref: Ref | None = None,
    highlight: Iterable[int] = (),
    title: str | None = None,
    unfold: bool = False,
) -> Layout:
    """Lay out the diagram of ``trace`` (of Deferred ``ref`` and what is drawn inside it,
    if given). ``highlight``: event seqs whose marks are outlined (the step-through's
    current event). ``title`` replaces the headline. Raises KeyError for an unknown ref."""
    only = trace.deferred(ref).id if ref is not None else None
    ctx = _context(trace, only, unfold)
    if only is not None:
        roots = [only]
    else:
        roots = [info.id for info in trace.deferreds if info.id not in ctx.owner]
    head, notes = headline(trace, only)
    if title is not None:
        head, notes = title, []
    guess = trace.meta.get("prediction")
    if isinstance(guess, dict) and title is None:
        said = " ".join(side[0].upper() for side in guess.get("predicted", []))
        went = " ".join(side[0].upper() for side in guess.get("actual", []))
        verdict = "right ✓" if guess.get("correct") else "not quite ✗"
        notes.insert(0, f"you predicted {said}, it went {went}: {verdict}")
    notes += [f"({note})" for note in trace.notes]
    parts = [_BlockBuilder(ctx, did).build() for did in roots]
    used: set[str] = set()
    for p in parts:
        used |= p.used
    legend = [key for key in LEGEND if key in used]
    # place the blocks in rows
    usable = DISPLAY_WIDTH - 2 * MARGIN
    rows: list[list[_Part]] = [[]]
    x = 0.0
    for p in parts:
        if rows[-1] and x + p.w > usable + 0.5:
            rows.append([])
            x = 0.0
        rows[-1].append(p)
        x += p.w + BLOCK_GAP
    blocks_w = max(
        (sum(p.w for p in row) + BLOCK_GAP * (len(row) - 1) for row in rows if row), default=0.0
    )
    panel = blocks_w + BLOCK_GAP + PANEL_MIN <= usable
    wanted = max(
        [text_width(LEGEND[key], PX["legend"]) + 50 for key in legend]
        + [text_width(note, PX["note"]) + 24 for note in notes]
        + [PANEL_MIN]
    )
    panel_w = min(PANEL_W, usable - blocks_w - BLOCK_GAP, wanted) if panel else 0.0
    content = max(blocks_w + (BLOCK_GAP + panel_w if panel else 0.0), 360.0)
    # room for the whole headline when the display has it
    content = min(max(content, text_width(head, PX["title"], True) + 4), usable)
    width = float(math.ceil(content + 2 * MARGIN))
    out = Layout(
        width, 0.0, head, notes, legend=legend, highlight=frozenset(highlight), unfold=unfold
    )
    y = MARGIN
    title_w = width - 2 * MARGIN
    out.labels.append(
        Label("title", MARGIN, y + 12, _fit_title(head, title_w), PX["title"], bold=True)
    )
    y += 30
    note_lines: list[str] = []
    for note in notes:
        lines = wrap(note, (panel_w - 22) if panel else title_w - 14, PX["note"], 3)
        note_lines += ["• " + lines[0], *("  " + line for line in lines[1:])]
    if not panel:
        for line in note_lines:
            out.labels.append(Label("note", MARGIN, y + 8, line, PX["note"], style="muted"))
            y += 19
        y += 4 if note_lines else 0
    top = y
    by = top
    for row in rows:
        bx = MARGIN
        tallest = 0.0
        for p in row:
            out.boxes += [b.moved(bx, by) for b in p.boxes]
            out.arrows += [a.moved(bx, by) for a in p.arrows]
            out.labels += [label.moved(bx, by) for label in p.labels]
            bx += p.w + BLOCK_GAP
            tallest = max(tallest, p.h)
        by += tallest + BLOCK_GAP
    if not parts:
        out.labels.append(
            Label("info", MARGIN, y + 12, "nothing traced", PX["cell"], style="muted", italic=True)
        )
        by = y + 30
    bottom = by - BLOCK_GAP if parts else by
    if panel:
        px = MARGIN + blocks_w + BLOCK_GAP
        py = top
        for line in note_lines:
            out.labels.append(Label("note", px, py + 8, line, PX["note"], style="muted"))
            py += 19
        py += 10 if note_lines else 0
        py = _legend(out, legend, px, py, panel_w, vertical=True)
        bottom = max(bottom, py)
    else:
        bottom = _legend(out, legend, MARGIN, bottom + 10, width - 2 * MARGIN, vertical=False)
    out.height = float(math.ceil(bottom + MARGIN))
    return out


def _fit_title(head: str, width: float) -> str:
    """The headline fitted to ``width``: ``start → end`` keeps its arrow and its end (what
    the chain ended with is the point), leaving out the middle of the start first."""
    px = PX["title"]
    if text_width(head, px, True) <= width or " → " not in head:
        return fit(head, width, px, True)
    start, end = head.split(" → ", 1)
    end = fit(end, width / 2, px, True)
    room = width - text_width(" → " + end, px, True)
    return fit(start, max(room, 40.0), px, True) + " → " + end


def _legend(
    out: Layout, keys: list[str], x: float, y: float, width: float, vertical: bool
) -> float:
    """Place the legend's items; returns the y below them."""
    sw, sh, gap = 28.0, 14.0, 6.0
    cx = x
    for key in keys:
        text = LEGEND[key]
        item_w = sw + gap + text_width(text, PX["legend"]) + 16
        if not vertical and cx > x and cx + item_w > x + width:
            cx = x
            y += 20
        out.boxes.append(Box("legend", cx, y + 3, sw, sh, style=key))
        out.labels.append(Label("legend", cx + sw + gap, y + 3 + sh / 2, text, PX["legend"]))
        if vertical:
            y += 20
        else:
            cx += item_w
    return y + (0 if vertical else 20)


def iter_text_boxes(out: Layout) -> Iterator[tuple[str, Box]]:
    """Every upright label's text and the box it covers (for overlap checks)."""
    for label in out.labels:
        if label.rotation == 0:
            yield label.text, label.extent()
    for arrow in out.arrows:
        if arrow.label and arrow.label_at is not None and arrow.kind != "cancel":
            at = Label(
                "arrow", arrow.label_at[0], arrow.label_at[1], arrow.label, PX["label"], arrow.align
            )
            yield arrow.label, at.extent()
