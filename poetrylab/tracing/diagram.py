"""The two-column diagram of Deferred chains, drawn from a trace (notebooks 04, 05, 08, 09).

Each Deferred is a box: its callbacks in a green column on the left, its errbacks in a red
column on the right, one row per stage, Twisted's implicit pass-throughs in grey. Cells
that ran are filled; the path the result took is drawn as arrows from the firing at the
top to the result at the bottom, crossing columns where a callback raised or an errback
recovered, each labelled with the value or Failure it carried. An inner Deferred a stage
returned is drawn as a nested box between that stage and the next, with the pause and the
resumption as arrows into and out of it. A DeferredList or gatherResults draws its
members as lanes whose arrows meet at its firing; an ``inlineCallbacks`` generator or a
coroutine shows its steps, each awaited Deferred nested after the step that waited on it;
``cancel()`` is a purple arrow going up the box it cancelled.

Plumbing that is not the learner's is drawn as plumbing: stages added before a Deferred
was traced are one grey dashed row, "earlier stages not traced", with the value that came
out of them on the arrow to the first traced stage; the notebook runtime's own stage (the
one ``runtime.call``, ``wait`` and ``resolve`` add to take the result) is not drawn as a
stage -- the result pill shows what the chain produced, marked "handed to the notebook".
Every label goes through :func:`~._style.safe_text`, so characters the font lacks (a
Japanese poem) are written as escapes instead of empty boxes and warnings.

Geometry is in inches (one data unit is one inch, y grows downwards) so fonts stay large
whatever the size of the trace: a projector shows 14 pt and up. Chains longer than
:data:`MAX_ROWS` stages show their beginning and end around an elided middle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextToPath

from ._style import (
    COLORS,
    FONT,
    Drawing,
    figure_svg,
    font_family,
    new_figure,
    safe_text,
    save_figure,
)
from ._style import as_figure as _as_figure
from .model import DeferredInfo, Event, Final, Ref, Trace, Value
from .render_text import describe, final_line, step_numbers

__all__ = ["chain_figure", "figure_svg", "save_figure", "headline", "MAX_ROWS"]

CELL_W = 2.8
CELL_H = 0.58
GUTTER = 3.1
ROW_GAP = 0.7
PAD = 0.3
INDENT = 0.6
TITLE_H = 0.62
NOTE_H = 0.4
HEAD_H = 0.45
PILL_H = 0.52
STEP_H = 0.58
STEP_GAP = 0.45
NEST_GAP = 0.5
CANCEL_W = 0.5
LANE_W = 2.7
LANE_GAP = 0.35
JOIN_GAP = 1.3
COLS_W = 2 * CELL_W + GUTTER
MAX_ROWS = 40
KEEP_ROWS = 15
MAX_ROW_WIDTH = 19.0
_LISTS = ("DeferredList", "gatherResults", "race")
SUB_LINE = 0.34
TITLE_VALUE = 30
MAX_SUB_LINES = 3
UNTRACED = "earlier stages not traced"
TO_NOTEBOOK = "↳ handed to the notebook"


_TEXT = TextToPath()
_PARTIAL_ESCAPE = re.compile(r"\\(u[0-9a-f]{0,3}|U[0-9a-f]{0,7})?$")
_FONTS: dict[tuple[int, bool], FontProperties] = {}


def _text_width(text: str, size: int, bold: bool = False) -> float:
    """The width of ``text`` in inches at ``size`` points."""
    prop = _FONTS.get((size, bold))
    if prop is None:
        prop = _FONTS[(size, bold)] = FontProperties(
            family=list(font_family()), size=size, weight="bold" if bold else "normal"
        )
    width, _, _ = _TEXT.get_text_width_height_descent(safe_text(text, bold), prop, ismath=False)
    return float(width) / 72.0


def _fits(text: str, width: float, size: int, bold: bool = False) -> str:
    """``text``, cut with an ellipsis so that it fits in ``width`` inches.

    Characters the font lacks are escaped first (see :func:`~._style.safe_text`), so the
    cut is made in what will be drawn, and never inside an escape.
    """
    text = safe_text(text, bold)
    full = _text_width(text, size, bold)
    if full <= width:
        return text
    keep = max(1, int(len(text) * width / full))
    while keep > 1 and _text_width(text[:keep] + "…", size, bold) > width:
        keep -= 1
    cut = _PARTIAL_ESCAPE.sub("", text[:keep])
    return (cut or text[:keep]) + "…"


def _wrap(
    parts: list[str], width: float, size: int, lines: int = MAX_SUB_LINES, joint: str = " · "
) -> list[str]:
    """``parts`` joined with ``joint`` into at most ``lines`` lines that fit ``width`` inches.

    A part never splits; whatever does not fit in the last line is cut with an ellipsis.
    """
    out: list[str] = []
    for part in parts:
        if out and _text_width(out[-1] + joint + part, size) <= width:
            out[-1] += joint + part
        elif len(out) < lines:
            out.append(part)
        else:
            out[-1] += joint + part
            break
    return [_fits(line, width, size) for line in out]


def _value_label(value: Value | None, labels: dict[int, str]) -> str:
    if value is None:
        return ""
    text = value.describe(labels)
    if value.is_failure:
        return text[len("Failure(") : -1]
    return text


def _value_color(value: Value | None) -> str:
    return (
        COLORS["errback_text"]
        if value is not None and value.is_failure
        else (COLORS["callback_text"])
    )


# -- a list of drawing operations, drawn at the end -----------------------------------
@dataclass
class _Op:
    kind: str
    args: tuple[Any, ...]
    style: dict[str, Any]
    keys: frozenset[Any] = frozenset()


@dataclass
class _Canvas:
    ops: list[_Op] = field(default_factory=list)

    def box(
        self, x: float, y: float, w: float, h: float, keys: Iterable[Any] = (), **style: Any
    ) -> None:
        self.ops.append(_Op("box", (x, y, w, h), style, frozenset(keys)))

    def text(self, x: float, y: float, s: str, keys: Iterable[Any] = (), **style: Any) -> None:
        self.ops.append(_Op("text", (x, y, s), style, frozenset(keys)))

    def arrow(
        self, x1: float, y1: float, x2: float, y2: float, keys: Iterable[Any] = (), **style: Any
    ) -> None:
        self.ops.append(_Op("arrow", ((x1, y1), (x2, y2)), style, frozenset(keys)))

    def route(
        self, points: list[tuple[float, float]], keys: Iterable[Any] = (), **style: Any
    ) -> None:
        """An arrow along a polyline (last point gets the head)."""
        self.ops.append(_Op("arrow", tuple(points), style, frozenset(keys)))


# -- which Deferred is drawn inside which ---------------------------------------------
@dataclass
class _Context:
    trace: Trace
    labels: dict[int, str]
    owner: dict[int, int]
    inner_at: dict[int, dict[int, list[int]]]  # owner -> stage id -> inner ids
    awaited_at: dict[int, dict[int, int]]  # owner -> step seq -> awaited id
    steps: dict[int, int]


def _ownership(trace: Trace, only: int | None) -> _Context:
    owner: dict[int, int] = {}
    inner_at: dict[int, dict[int, list[int]]] = {}
    awaited_at: dict[int, dict[int, int]] = {}
    known = {info.id for info in trace.deferreds}

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
        if e.kind == "stage_ran" and e.stage is not None:
            last_stage[e.deferred] = e.stage
        elif e.kind in ("paused", "adopted") and e.deferred in last_stage:
            if claim(e.other, e.deferred):
                at = inner_at.setdefault(e.deferred, {})
                at.setdefault(last_stage[e.deferred], []).append(e.other)  # type: ignore[arg-type]
        elif e.kind == "step" and e.outcome == "yielded" and e.other is not None:
            if claim(e.other, e.deferred):
                awaited_at.setdefault(e.deferred, {})[e.seq] = e.other
        elif e.kind == "created":
            info = trace.deferred(e.deferred)
            for member in info.members:
                claim(member, info.id)
    for info in trace.deferreds:
        for member in info.members:
            claim(member, info.id)
    steps = step_numbers(trace)
    if only is not None and only in owner:
        del owner[only]
    return _Context(trace, trace.labels, owner, inner_at, awaited_at, steps)


# -- one Deferred's box --------------------------------------------------------------
class _Block:
    """Lays out one Deferred (and, recursively, the Deferreds drawn inside it)."""

    def __init__(self, ctx: _Context, did: int, lane: bool = False) -> None:
        self.ctx = ctx
        self.info: DeferredInfo = ctx.trace.deferred(did)
        self.lane = lane
        self.events = ctx.trace.events_for(did)
        self.did = did
        self.runs = [e for e in self.events if e.kind == "stage_ran"]
        self.fired = next((e for e in self.events if e.kind == "fired"), None)
        self.steps = [e for e in self.events if e.kind == "step"]
        self.cancels = [e for e in self.events if e.kind == "cancel"]
        self.top_notes = [e for e in self.events if e.kind in ("timeout_set", "canceller")]
        self.bottom_notes = [e for e in self.events if e.kind in ("fire_rejected", "fire_ignored")]
        self.inner = {
            sid: [_Block(ctx, child) for child in children]
            for sid, children in ctx.inner_at.get(did, {}).items()
        }
        self.awaited = {
            seq: _Block(ctx, child) for seq, child in ctx.awaited_at.get(did, {}).items()
        }
        self.members = [
            _Block(ctx, m, lane=True) for m in self.info.members if ctx.owner.get(m) == did
        ]
        self.member_results = [e for e in self.events if e.kind == "member_result"]
        # the notebook runtime's hand-over is shown on the result pill, not as a stage
        stages = [s for s in self.info.stages if s.role != "runtime"]
        if lane:
            ran = {e.stage for e in self.runs}
            stages = [s for s in stages if s.id in ran and s.role != "list"]
        self.rows: list[Any] = list(stages)
        if len(stages) > MAX_ROWS:
            hidden = len(stages) - 2 * KEEP_ROWS
            self.rows = [*stages[:KEEP_ROWS], hidden, *stages[-KEEP_ROWS:]]
        self.size: tuple[float, float] | None = None
        self.result_anchor = (0.0, 0.0)
        self.out_anchor = (0.0, 0.0)
        # the moment the Deferred waiting on this one took its result
        self.handoff = next(
            (e for e in ctx.trace.events if e.kind in ("resumed", "adopted") and e.other == did),
            None,
        )
        self.late = self.handoff is not None and any(r.seq > self.handoff.seq for r in self.runs)
        before = [r for r in self.runs if self.handoff is not None and r.seq < self.handoff.seq]
        self.handoff_after = before[-1].stage if before else None
        self.x = self.y = 0.0

    # sizes ---------------------------------------------------------------------------
    def measure(self) -> tuple[float, float]:
        if self.size is None:
            self.size = self.place(None, 0.0, 0.0)
        return self.size

    def inner_width(self) -> float:
        if self.lane:
            return LANE_W
        width = COLS_W
        for children in self.inner.values():
            for child in children:
                width = max(width, INDENT + child.measure()[0])
        for child in self.awaited.values():
            width = max(width, INDENT + child.measure()[0])
        if self.members:
            lanes = sum(m.measure()[0] for m in self.members) + LANE_GAP * (len(self.members) - 1)
            # the last lane's label sits right of its arrow: room for it, not off the edge
            last = self.members[-1]
            results = {e.other: e for e in self.member_results}
            label = self._join_label(len(self.members) - 1, results.get(last.did))
            if label:
                arrow_x = lanes - last.measure()[0] + PAD + LANE_W / 2
                needed = arrow_x + 0.12 + _text_width(label, FONT["label"]) + 0.1
                lanes = max(lanes, needed)
            width = max(width, lanes)
        return width

    def _join_label(self, i: int, result: Event | None) -> str:
        """The label on member ``i``'s arrow to the list's firing, fitted to a lane."""
        if result is None:
            return ""
        text = f"[{i}] " + _value_label(result.value, self.ctx.labels)
        return _fits(text, LANE_W - 0.2, FONT["label"])

    # layout and drawing ------------------------------------------------------------------
    def place(self, cv: _Canvas | None, x: float, y: float) -> tuple[float, float]:
        """Lay the block out at (x, y); draw into ``cv`` unless it is None. Returns w, h."""
        ctx = self.ctx
        labels = ctx.labels
        self.x, self.y = x, y
        first_op = len(cv.ops) if cv is not None else 0
        content_w = self.inner_width()
        extra = CANCEL_W * len(self.cancels) if self.cancels else 0.0
        width = content_w + 2 * PAD + extra
        left = x + PAD
        cell_w = LANE_W if self.lane else CELL_W
        col_x = {"callback": left, "errback": left + CELL_W + GUTTER}
        if self.lane:
            col_x = {"callback": left, "errback": left}
        cy = y + 0.12
        title = self.info.label if self.lane else self.info.title
        if not self.lane and self.info.origin == "watched":
            title += "   (watched)"
        if cv is not None:
            cv.text(
                left,
                cy + TITLE_H / 2,
                _fits(title, content_w, FONT["box_title"], True),
                keys=[("title", self.did)],
                size=FONT["box_title"],
                weight="bold",
                ha="left",
                color=COLORS["ink"],
            )
        cy += TITLE_H
        for note in self.top_notes if not self.lane else []:
            if cv is not None:
                cv.text(
                    left,
                    cy + NOTE_H / 2,
                    describe(ctx.trace, note),
                    keys=[("note", note.seq)],
                    size=FONT["note"],
                    ha="left",
                    color=COLORS["cancel"],
                )
            cy += NOTE_H

        anchor: tuple[float, float] | None = None
        pending: list[tuple[float, float, Any]] = []  # arrows waiting for the fire node

        # members as lanes --------------------------------------------------------------
        if self.members:
            lx = left
            top = cy + 0.1
            tallest = 0.0
            for member in self.members:
                mw, mh = member.measure()
                member.place(cv, lx, top)
                tallest = max(tallest, mh)
                lx += mw + LANE_GAP
            cy = top + tallest + JOIN_GAP
            results = {e.other: e for e in self.member_results}
            for i, member in enumerate(self.members):
                pending.append(
                    (*member.result_anchor, (i, len(self.members), results.get(member.did)))
                )

        # generator / coroutine steps -----------------------------------------------------
        for step in self.steps:
            if anchor is not None and cv is not None:
                cv.arrow(
                    *anchor,
                    left + COLS_W / 2,
                    cy,
                    keys=[("arrow", step.seq)],
                    color=COLORS["step"],
                    lw=2.5,
                )
            cy += 0.1 if anchor is None else 0.0
            if cv is not None:
                text = describe(ctx.trace, step, ctx.steps.get(step.seq))
                cv.box(
                    left,
                    cy,
                    COLS_W,
                    STEP_H,
                    keys=[("step", step.seq)],
                    face=COLORS["step_pale"],
                    edge=COLORS["step"],
                    lw=2,
                )
                cv.text(
                    left + COLS_W / 2,
                    cy + STEP_H / 2,
                    _fits(text, COLS_W - 0.2, FONT["cell"]),
                    keys=[("step", step.seq)],
                    size=FONT["cell"],
                    color=COLORS["step"],
                )
            anchor = (left + COLS_W / 2, cy + STEP_H)
            cy += STEP_H + STEP_GAP
            child = self.awaited.get(step.seq)
            if child is not None:
                cw, ch = child.measure()
                child.place(cv, left + INDENT, cy)
                if cv is not None:
                    tx = min(max(anchor[0], left + INDENT + 0.4), left + INDENT + cw - 0.4)
                    cv.arrow(
                        *anchor,
                        tx,
                        cy,
                        keys=[("arrow", step.seq)],
                        color=COLORS["step"],
                        lw=2.5,
                        ls="--",
                    )
                anchor = child.out_anchor
                cy += ch + STEP_GAP

        # column headers and the firing -----------------------------------------------------
        rows = self.rows
        is_list = self.info.kind in _LISTS
        headers = not self.lane and bool(rows or self.fired)
        if headers and not is_list:
            self._headers(cv, col_x, cy)
            cy += HEAD_H
        fired = self.fired
        fire_side = "errback" if fired and fired.value and fired.value.is_failure else "callback"
        fire_x = col_x[fire_side] if fired else left + (0 if self.lane else (COLS_W - CELL_W) / 2)
        pill_x, pill_w = fire_x, cell_w
        if self.info.untraced and not self.lane:
            # one row for the stages before tracing, across both columns: the value that
            # came out of them goes down whichever column it belongs to
            pill_x, pill_w = left, COLS_W
        elif not self.lane and fired:
            wanted = _text_width(self._fire_text(fired), FONT["cell"], True) + 0.4
            pill_w = (
                CELL_W + GUTTER - 0.4
                if is_list
                else min(max(wanted, CELL_W), CELL_W + GUTTER - 0.4)
            )
            pill_x = fire_x if fire_side == "callback" else fire_x + CELL_W - pill_w
        if self.members and fired:
            # the lanes meet on a pill as wide as they are, so their arrows come straight down
            pill_x, pill_w = left, max(pill_w, content_w)
        if cv is not None:
            self._fire_node(cv, pill_x, cy, pill_w, fired)
        fire_top = (fire_x + cell_w / 2, cy)
        if anchor is not None and cv is not None:
            cv.arrow(*anchor, *fire_top, keys=[("fire", self.did)], color=COLORS["step"], lw=2.5)
        for ax_, ay_, info in pending:
            if cv is None:
                continue
            i, n, result = info
            tx = min(max(ax_, pill_x + 0.4), pill_x + pill_w - 0.4)
            if not fired:
                tx = pill_x + pill_w * (i + 1) / (n + 1)
            color = _value_color(result.value if result else None)
            keys = [("arrow", result.seq)] if result else []
            cv.arrow(ax_, ay_, tx, cy, keys=keys, color=color, lw=3)
            if result is not None:
                mx, my = (ax_ + tx) / 2, (ay_ + cy) / 2
                cv.text(
                    mx + 0.12,
                    my,
                    self._join_label(i, result),
                    keys=keys,
                    size=FONT["label"],
                    color=color,
                    ha="left",
                    bbox=True,
                )
        anchor = (fire_x + cell_w / 2, cy + PILL_H) if fired else None
        cy += PILL_H + ROW_GAP
        if headers and is_list and rows:
            cy -= ROW_GAP / 2
            self._headers(cv, col_x, cy)
            cy += HEAD_H
        handoff_at: tuple[float, float] | None = None
        if self.late and self.handoff_after is None:
            handoff_at = self._handoff_node(cv, col_x, cy, cell_w)
            cy += PILL_H + ROW_GAP

        # the stages ------------------------------------------------------------------------
        cells: dict[tuple[int, str], tuple[float, float]] = {}
        inner_place: dict[int, list[_Block]] = {}
        elided_at: tuple[float, float] | None = None
        for row in rows:
            if isinstance(row, int):
                if cv is not None:
                    cv.text(
                        left + (cell_w if self.lane else COLS_W) / 2,
                        cy + CELL_H / 2,
                        f"… {row:,} more stages …",
                        size=FONT["cell"],
                        color=COLORS["muted"],
                        style="italic",
                    )
                elided_at = (left + (cell_w if self.lane else COLS_W) / 2, cy)
                cy += CELL_H + ROW_GAP
                continue
            sides = ("callback", "errback")
            if self.lane:
                ran = next((e for e in self.runs if e.stage == row.id), None)
                sides = (ran.side,) if ran and ran.side else ("callback",)
            for side in sides:
                cells[(row.id, side)] = (col_x[side], cy)
                if cv is not None:
                    self._cell(cv, col_x[side], cy, cell_w, row, side)
            if cv is not None and not self.lane:
                cv.text(
                    left + CELL_W + GUTTER / 2,
                    cy + CELL_H / 2,
                    f"stage {self.info.row_of(row.id)}",
                    size=FONT["label"],
                    color=COLORS["box_edge"],
                )
            cy += CELL_H
            for child in self.inner.get(row.id, []):
                cy += NEST_GAP
                cw, ch = child.measure()
                child.place(cv, left + INDENT, cy)
                inner_place.setdefault(row.id, []).append(child)
                cy += ch
            cy += ROW_GAP if not self.inner.get(row.id) else NEST_GAP
            if self.late and self.handoff_after == row.id:
                handoff_at = self._handoff_node(cv, col_x, cy, cell_w)
                cy += PILL_H + ROW_GAP

        # the result -------------------------------------------------------------------------
        final = ctx.trace.final(self.did)
        if self.lane:
            gave = next(
                (e for e in ctx.trace.events if e.kind == "member_result" and e.other == self.did),
                None,
            )
            if gave is not None:
                final = Final("gave", gave.value)
        res_side = "errback" if final.value is not None and final.value.is_failure else "callback"
        res_x = (
            col_x[res_side]
            if final.state in ("result", "handed", "gave")
            else (left + (0 if self.lane else (COLS_W - CELL_W) / 2))
        )
        if cv is not None:
            text = "not fired" if final.state == "unfired" else final_line(ctx.trace, self.did)
            self._result_node(cv, res_x, cy, cell_w, text, final.state, final.value, final)
        result_top = (res_x + cell_w / 2, cy)
        self.result_anchor = (res_x + cell_w / 2, cy + PILL_H)
        self.out_anchor = self.result_anchor
        if handoff_at is not None:
            self.out_anchor = (handoff_at[0], handoff_at[1] + PILL_H)
        cy += PILL_H
        if final.to_notebook:
            if cv is not None:
                failed = final.value is not None and final.value.is_failure
                cv.text(
                    res_x + cell_w - 0.1 if failed else res_x + 0.1,
                    cy + NOTE_H / 2 + 0.05,
                    TO_NOTEBOOK + (", raised in the cell" if failed else ""),
                    size=FONT["note"],
                    ha="right" if failed else "left",
                    style="italic",
                    color=COLORS["passthru"],
                )
            cy += NOTE_H
        for note in self.bottom_notes:
            said = describe(ctx.trace, note)
            if self.lane:  # a lane is narrow: the gist
                said = {
                    "fire_ignored": "late result dropped",
                    "fire_rejected": "fired again: AlreadyCalledError",
                }.get(note.kind, said)
            for line in _wrap(("✗ " + said).split(" "), content_w, FONT["note"], 2, " "):
                if cv is not None:
                    cv.text(
                        left,
                        cy + NOTE_H / 2 + 0.05,
                        line,
                        keys=[("note", note.seq)],
                        size=FONT["note"],
                        ha="left",
                        color=COLORS["errback_text"],
                    )
                cy += NOTE_H
        cy += PAD
        height = cy - y

        if cv is None:
            return width, height
        cv.box(x, y, width, height, face=COLORS["box"], edge=COLORS["box_edge"], lw=1.5, z=0)
        cv.ops.insert(first_op, cv.ops.pop())

        # the path: arrows from the firing, stage to stage, to the result --------------------
        label_next: str | None = None
        label_value: Value | None = None
        label_seq: int | None = None
        dashed = False
        story = self.events
        # the fire pill already shows the value, except when cancel() fired it
        from_fire = (
            fired is not None
            and fired.outcome != "untraced"
            and (fired.outcome != "cancel" or is_list)
        )
        detour_from: list[tuple[float, float]] = []
        if handoff_at is not None and self.handoff is not None:
            story = sorted([*self.events, self.handoff], key=lambda e: e.seq)
        for e in story:
            if e is self.handoff and handoff_at is not None:
                if anchor is not None:
                    end = (handoff_at[0] - cell_w / 2, handoff_at[1])
                    side = "errback" if e.value and e.value.is_failure else "callback"
                    self._path_arrow(
                        cv, anchor, end, side, cell_w, None, e.value, keys=[("arrow", e.seq)]
                    )
                anchor = (handoff_at[0], handoff_at[1] + PILL_H)
                from_fire = False
                continue
            if e.kind == "stage_ran" and e.stage is not None and e.side is not None:
                target = cells.get((e.stage, e.side))
                if target is None:  # an elided stage: the next arrow jumps over the gap
                    dashed = dashed or elided_at is not None
                    continue
                if detour_from and anchor is not None:
                    # out of a Deferred that handed its result on mid-chain: go round its box
                    cv.route(
                        [*detour_from, (anchor[0], target[1])],
                        keys=[("arrow", e.seq)],
                        color=_value_color(label_value),
                        lw=3.2,
                        ls="--",
                    )
                    cv.text(
                        anchor[0] + 0.12,
                        (anchor[1] + target[1]) / 2,
                        label_next or "",
                        keys=[("arrow", e.seq)],
                        size=FONT["label"],
                        color=_value_color(label_value),
                        ha="left",
                        bbox=True,
                    )
                    detour_from = []
                elif anchor is not None:
                    text = label_next
                    if text is None and not from_fire:
                        text = _value_label(e.value, labels)
                    value = label_value or e.value
                    self._path_arrow(
                        cv,
                        anchor,
                        target,
                        e.side,
                        cell_w,
                        text,
                        value,
                        keys=[("arrow", e.seq), ("arrow", label_seq)],
                        dashed=dashed,
                    )
                anchor = (target[0] + cell_w / 2, target[1] + CELL_H)
                label_next, label_value, dashed, label_seq = None, None, False, None
                from_fire = False
            elif e.kind in ("paused", "adopted") and anchor is not None:
                child = self._child(e.other)
                name = labels.get(e.other or 0, "?")
                if child is not None:
                    cw = child.measure()[0]
                    tx = min(max(anchor[0], child.x + 0.4), child.x + cw - 0.4)
                    word = "paused: waits on" if e.kind == "paused" else "returned"
                    self._plain_arrow(
                        cv, anchor, (tx, child.y), f"{word} {name}", keys=[("arrow", e.seq)]
                    )
                    anchor = child.out_anchor
                    if child.late:
                        detour = child.x - INDENT / 2
                        bottom = child.y + child.measure()[1]
                        exit_y = anchor[1] - PILL_H / 2
                        exit_x = anchor[0] - cell_w / 2
                        detour_from = [(exit_x, exit_y), (detour, exit_y)]
                        anchor = (detour, bottom)
                else:
                    cv.text(
                        anchor[0] + cell_w / 2 + 0.15,
                        anchor[1] + 0.05,
                        f"waits on {name}",
                        keys=[("arrow", e.seq)],
                        size=FONT["label"],
                        ha="left",
                        va="top",
                        color=COLORS["muted"],
                    )
                if e.kind == "adopted":
                    label_next = "took " + _value_label(e.value, labels)
                    label_value = e.value
                    dashed = True
            elif e.kind == "resumed":
                label_next = "resumed: " + _value_label(e.value, labels)
                label_value = e.value
                label_seq = e.seq
                dashed = True
        pending = self._next_pending()
        side = "errback" if final.value is not None and final.value.is_failure else "callback"
        if pending is not None and (pending, side) not in cells:
            pending = None
        if anchor is not None and final.state == "result" and pending is not None:
            # caught mid-flight (a step-through frame): the value is on its way to this stage
            text = label_next or (None if from_fire else _value_label(final.value, labels))
            self._path_arrow(
                cv,
                anchor,
                cells[(pending, side)],
                side,
                cell_w,
                text,
                label_value or final.value,
                keys=[("arrow", label_seq)],
                dashed=dashed,
            )
        elif anchor is not None and final.state in ("result", "handed", "gave"):
            self._path_arrow(
                cv,
                anchor,
                (result_top[0] - cell_w / 2, result_top[1]),
                res_side,
                cell_w,
                label_next,
                label_value or final.value,
                keys=[("arrow", label_seq)],
                dashed=dashed,
            )

        # cancellation: arrows going up the chain ----------------------------------------------
        for i, e in enumerate(self.cancels):
            cx = x + width - CANCEL_W * (i + 0.5)
            bottom, top = y + height - PAD, y + TITLE_H + 0.1
            cv.arrow(
                cx, bottom, cx, top, keys=[("arrow", e.seq)], color=COLORS["cancel"], lw=3, ls="--"
            )
            who = {"timeout": "timeout: cancel()", "user": "cancel()"}.get(
                e.outcome or "", f"cancel() from {labels.get(e.other or 0, '?')}"
            )
            cv.text(
                cx - 0.2,
                (bottom + top) / 2,
                who,
                keys=[("arrow", e.seq)],
                size=FONT["label"],
                color=COLORS["cancel"],
                rotation=90,
                bbox=True,
            )
        return width, height

    def _fire_text(self, fired: Event) -> str:
        inside = _value_label(fired.value, self.ctx.labels)
        how = fired.outcome or "callback"
        if how == "already":
            if fired.value is not None and fired.value.kind == "deferred":
                return f"already fired, waiting on {inside}"
            method = "errback" if fired.value is not None and fired.value.is_failure else "callback"
            return f"already fired: {method}({inside})"
        if how == "cancel":
            method = (fired.detail or "errback").split()[0].rstrip(",")
            return "cancel() → errback" if method == "errback" else f"cancel() → {method}({inside})"
        if self.info.kind in _LISTS:
            return f"fires: {inside}"
        return f"{how}({inside})"

    def _headers(self, cv: _Canvas | None, col_x: dict[str, float], y: float) -> None:
        if cv is None:
            return
        cv.text(
            col_x["callback"] + 0.05,
            y + HEAD_H / 2,
            "callbacks",
            size=FONT["label"],
            weight="bold",
            color=COLORS["callback"],
            ha="left",
        )
        cv.text(
            col_x["errback"] + CELL_W - 0.05,
            y + HEAD_H / 2,
            "errbacks",
            size=FONT["label"],
            weight="bold",
            color=COLORS["errback"],
            ha="right",
        )

    def _handoff_node(
        self, cv: _Canvas | None, col_x: dict[str, float], y: float, w: float
    ) -> tuple[float, float]:
        """The pill where the waiting Deferred took this one's result, mid-chain."""
        e = self.handoff
        assert e is not None
        value = e.value
        failed = value is not None and value.is_failure
        x = col_x["errback" if failed else "callback"]
        if cv is not None:
            color = COLORS["errback"] if failed else COLORS["callback"]
            text = (
                f"{_value_label(value, self.ctx.labels)} → {self.ctx.labels.get(e.deferred, '?')}"
            )
            cv.box(
                x,
                y,
                w,
                PILL_H,
                keys=[("arrow", e.seq)],
                face="white",
                edge=color,
                lw=2.5,
                radius=0.25,
            )
            cv.text(
                x + w / 2,
                y + PILL_H / 2,
                _fits("handed " + text, w - 0.2, FONT["cell"]),
                keys=[("arrow", e.seq)],
                size=FONT["cell"],
                color=color,
            )
        return (x + w / 2, y)

    def _next_pending(self) -> int | None:
        """The stage after the last that ran, if it has not run yet (mid-flight frames)."""
        if self.lane or not self.fired:
            return None
        ran = {e.stage for e in self.runs}
        stages = [row for row in self.rows if not isinstance(row, int)]
        last = max((i for i, row in enumerate(stages) if row.id in ran), default=-1)
        if last + 1 < len(stages) and stages[last + 1].id not in ran:
            return int(stages[last + 1].id)
        return None

    def _child(self, did: int | None) -> _Block | None:
        for children in self.inner.values():
            for child in children:
                if child.did == did:
                    return child
        return None

    # pieces ----------------------------------------------------------------------------
    def _fire_node(self, cv: _Canvas, x: float, y: float, w: float, fired: Event | None) -> None:
        if self.info.untraced:
            # plumbing the tracer never saw: grey, dashed, in italics, like a pass-through
            cv.box(
                x,
                y,
                w,
                PILL_H,
                keys=[("fire", self.did)],
                face=COLORS["passthru_pale"],
                edge=COLORS["passthru"],
                lw=2,
                ls="--",
                radius=0.08,
            )
            cv.text(
                x + w / 2,
                y + PILL_H / 2,
                _fits("(untraced stages)" if self.lane else f"({UNTRACED})", w - 0.2, FONT["cell"]),
                keys=[("fire", self.did)],
                size=FONT["cell"],
                color=COLORS["passthru"],
                style="italic",
            )
            return
        if fired is None:
            cv.box(
                x,
                y,
                w,
                PILL_H,
                keys=[("fire", self.did)],
                face="white",
                edge=COLORS["box_edge"],
                lw=2,
                ls="--",
                radius=0.25,
            )
            cv.text(
                x + w / 2,
                y + PILL_H / 2,
                "not fired yet",
                keys=[("fire", self.did)],
                size=FONT["cell"],
                color=COLORS["muted"],
                style="italic",
            )
            return
        value = fired.value
        failed = value is not None and value.is_failure
        text = self._fire_text(fired)
        color = COLORS["errback"] if failed else COLORS["callback"]
        cv.box(
            x, y, w, PILL_H, keys=[("fire", self.did)], face="white", edge=color, lw=3, radius=0.25
        )
        cv.text(
            x + w / 2,
            y + PILL_H / 2,
            _fits(text, w - 0.2, FONT["cell"], True),
            keys=[("fire", self.did)],
            size=FONT["cell"],
            weight="bold",
            color=color,
        )

    def _result_node(
        self,
        cv: _Canvas,
        x: float,
        y: float,
        w: float,
        text: str,
        state: str,
        value: Value | None,
        final: Final | None = None,
    ) -> None:
        if state in ("result", "handed", "gave"):
            failed = value is not None and value.is_failure
            color = COLORS["errback"] if failed else COLORS["callback"]
            if state == "gave":
                text = "gave " + _value_label(value, self.ctx.labels)
            elif state == "handed":
                text = f"to {text.split(' to ')[-1]}: {_value_label(value, self.ctx.labels)}"
            else:
                text = _value_label(value, self.ctx.labels)
                # a Failure the runtime took is raised in the cell: handled, not lost
                taken = final is not None and final.to_notebook
                lead = ("failed: " if taken else "unhandled ") if failed else "result "
                text = lead + text
            cv.box(
                x,
                y,
                w,
                PILL_H,
                face=COLORS["errback_pale" if failed else "callback_pale"],
                edge=color,
                lw=2.5,
                radius=0.25,
            )
            cv.text(
                x + w / 2,
                y + PILL_H / 2,
                _fits(text, w - 0.2, FONT["cell"], True),
                size=FONT["cell"],
                color=color,
                weight="bold",
            )
        else:
            cv.box(
                x, y, w, PILL_H, face="white", edge=COLORS["box_edge"], lw=2, ls="--", radius=0.25
            )
            cv.text(
                x + w / 2,
                y + PILL_H / 2,
                _fits(text, w - 0.2, FONT["cell"]),
                size=FONT["cell"],
                color=COLORS["muted"],
                style="italic",
            )

    def _cell(self, cv: _Canvas, x: float, y: float, w: float, stage: Any, side: str) -> None:
        ran = any(e.stage == stage.id and e.side == side for e in self.runs)
        implicit = stage.implicit(side)
        name = stage.name(side)
        keys = [("cell", self.did, stage.id, side)]
        if implicit:
            face = COLORS["passthru"] if ran else COLORS["passthru_pale"]
            cv.box(x, y, w, CELL_H, keys=keys, face=face, edge=COLORS["passthru"], lw=1.5, ls="--")
            cv.text(
                x + w / 2,
                y + CELL_H / 2,
                "pass-through",
                keys=keys,
                size=FONT["cell"],
                style="italic",
                color="white" if ran else COLORS["passthru"],
            )
            return
        face = COLORS[side] if ran else COLORS[side + "_pale"]
        cv.box(x, y, w, CELL_H, keys=keys, face=face, edge=COLORS[side], lw=2)
        # Twisted's own plumbing (addTimeout, DeferredList, inlineCallbacks) in italics
        cv.text(
            x + w / 2,
            y + CELL_H / 2,
            _fits(name, w - 0.2, FONT["cell"], ran),
            keys=keys,
            size=FONT["cell"],
            weight="bold" if ran else "normal",
            style="normal" if stage.role == "user" else "italic",
            color="white" if ran else COLORS[side + "_text"],
        )

    def _path_arrow(
        self,
        cv: _Canvas,
        start: tuple[float, float],
        cell: tuple[float, float],
        side: str,
        w: float,
        text: str | None,
        value: Value | None,
        keys: list[Any],
        dashed: bool = False,
    ) -> None:
        tx, ty = cell[0] + w / 2, cell[1]
        sx, sy = start
        color = _value_color(value)
        crossing = abs(tx - sx) > w / 2
        if crossing:
            # leave from the cell's inner edge and arrive at the target's inner edge
            going_right = tx > sx
            sx = sx + (w / 2 if going_right else -w / 2)
            sy = sy - CELL_H / 2
            tx = tx - (w / 2 if going_right else -w / 2)
            ty = ty + CELL_H / 2
        cv.arrow(sx, sy, tx, ty, keys=keys, color=color, lw=3.2, ls="--" if dashed else "-")
        if not text:
            return
        room = GUTTER - 0.25 if crossing else GUTTER - 0.4
        if self.lane:
            room = self.x + LANE_W + 2 * PAD - (sx + 0.12) - 0.1
        text = _fits(text, room, FONT["label"])
        if crossing:
            x, ha = (sx + tx) / 2, "center"
        elif self.lane:
            x, ha = sx + 0.12, "left"
        elif side == "callback":
            x, ha = sx + 0.15, "left"
        else:
            x, ha = sx - 0.15, "right"
        cv.text(
            x, (sy + ty) / 2, text, keys=keys, size=FONT["label"], color=color, ha=ha, bbox=True
        )

    def _plain_arrow(
        self,
        cv: _Canvas,
        start: tuple[float, float],
        end: tuple[float, float],
        text: str,
        keys: list[Any],
    ) -> None:
        cv.arrow(*start, *end, keys=keys, color=COLORS["ink"], lw=2.5, ls="--")
        cv.text(
            start[0] + 0.12,
            (start[1] + end[1]) / 2,
            text,
            keys=keys,
            size=FONT["label"],
            color=COLORS["ink"],
            ha="left",
            bbox=True,
        )


# -- titles ------------------------------------------------------------------------------
def headline(trace: Trace, ref: Ref | None = None) -> tuple[str, str]:
    """``(title, subtitle)`` saying what to look at in the diagram of ``ref``."""
    labels = trace.labels
    if ref is None:
        roots = [i for i in trace.deferreds if i.id not in _ownership(trace, None).owner]
        if len(roots) != 1:
            return (
                f"{len(trace.deferreds)} Deferreds: follow each arrow from firing to result",
                "green: a callback ran · red: an errback ran · grey: Twisted's pass-through",
            )
        ref = roots[0].id
    info = trace.deferred(ref)
    events = trace.events_for(info.id)
    stages = {stage.id: stage for stage in info.stages}
    rows = {stage.id: row for row, stage in enumerate(info.stages)}
    if info.kind in _LISTS:
        final = final_line(trace, info.id).removeprefix("result: ")
        title = f"{info.label}: {info.kind} of {len(info.members)} → {final}"
        gave = [
            f"[{e.slot}] {_value_label(e.value, labels)}"
            for e in events
            if e.kind == "member_result"
        ]
        return title, "the lanes meet: " + (" · ".join(gave) if gave else "nothing yet")
    fired = next((e for e in events if e.kind == "fired"), None)
    start = "not fired" if fired is None else _value_label(fired.value, labels)
    # a long first value would push the result, the point of the title, off the picture
    start = start if len(start) <= TITLE_VALUE else start[: TITLE_VALUE - 1] + "…"
    if fired is not None and fired.outcome == "untraced":
        start = f"earlier stages → {start}"
    elif fired is not None and fired.outcome == "cancel":
        start = "cancel()"
    elif fired is not None and fired.value is not None and fired.value.is_failure:
        start = f"errback({start})"
    elif fired is not None:
        start = f"callback({start})"
    steps = [e for e in events if e.kind == "step"]
    if steps:
        start = f"{info.made_by} in {len(steps)} steps"
    final = trace.final(info.id)
    end = final_line(trace, info.id).removeprefix("result: ")
    if final.to_notebook:  # the result pill says so; the title says what it was
        end = _value_label(final.value, labels) if final.value is not None else end
        end = f"Failure({end})" if final.value is not None and final.value.is_failure else end
    title = f"{info.label}: {start} → {end}"
    notes = []
    ran = [e for e in events if e.kind == "stage_ran" and stages[e.stage or 0].role != "runtime"]
    for e in events:
        if e.kind == "stage_ran" and stages[e.stage or 0].role == "runtime":
            continue  # the runtime taking the result is not a turn the chain took
        if e.kind == "stage_ran" and e.value is not None and e.result is not None:
            stage = stages[e.stage or 0]
            row = rows[stage.id]
            name = stage.name(e.side or "callback")
            was_failure = e.value.is_failure
            now_failure = e.result.is_failure
            if not was_failure and now_failure:
                verb = "raised" if e.outcome == "raised" else "returned a Failure"
                notes.append(f"stage {row}: {name} {verb} → errbacks")
            elif was_failure and not now_failure and e.result.kind != "deferred":
                notes.append(f"stage {row}: {name} recovered → callbacks")
        elif e.kind == "paused":
            notes.append(f"paused on {labels.get(e.other or 0, '?')}")
        elif e.kind == "resumed":
            notes.append(f"resumed with {_value_label(e.value, labels)}")
        elif e.kind == "cancel":
            notes.append("timed out" if e.outcome == "timeout" else "cancelled")
    if not notes:
        sides = {e.side for e in ran}
        if sides == {"callback"}:
            notes.append("straight down the callbacks")
        elif sides == {"errback"}:
            notes.append("straight down the errbacks")
    return title, " · ".join(notes)


# -- drawing ------------------------------------------------------------------------------
def _draw(cv: _Canvas, width: float, height: float, highlight: frozenset[Any]) -> Any:
    figure = new_figure(width, height)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    for op in cv.ops:
        lit = bool(op.keys & highlight)
        style = op.style
        z = style.get("z", 2)
        if op.kind == "box":
            x, y, w, h = op.args
            radius = style.get("radius", 0.08)
            if lit:
                ax.add_patch(
                    FancyBboxPatch(
                        (x - 0.06, y - 0.06),
                        w + 0.12,
                        h + 0.12,
                        boxstyle=f"round,pad=0,rounding_size={radius + 0.05}",
                        fc=COLORS["highlight"],
                        ec=COLORS["highlight"],
                        lw=2,
                        zorder=z - 0.5,
                    )
                )
            ax.add_patch(
                FancyBboxPatch(
                    (x, y),
                    w,
                    h,
                    boxstyle=f"round,pad=0,rounding_size={radius}",
                    fc=style.get("face", "white"),
                    ec=style.get("edge", "black"),
                    lw=style.get("lw", 1.5),
                    ls=style.get("ls", "-"),
                    zorder=z,
                )
            )
        elif op.kind == "text":
            x, y, s = op.args
            s = safe_text(s, style.get("weight") == "bold", style.get("style") == "italic")
            bbox = None
            if style.get("bbox"):
                bbox = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.92}
                if lit:
                    bbox.update(ec=COLORS["highlight"], lw=3, alpha=1)
            ax.text(
                x,
                y,
                s,
                fontsize=style.get("size", 14),
                fontfamily=list(font_family()),
                color=style.get("color", "black"),
                ha=style.get("ha", "center"),
                va=style.get("va", "center"),
                fontweight=style.get("weight", "normal"),
                fontstyle=style.get("style", "normal"),
                rotation=style.get("rotation", 0),
                bbox=bbox,
                zorder=style.get("z", 6),
            )
        elif op.kind == "arrow":
            path = MplPath(list(op.args))
            lw = style.get("lw", 3)
            if lit:
                ax.add_patch(
                    FancyArrowPatch(
                        path=path,
                        arrowstyle="-",
                        mutation_scale=30,
                        lw=lw + 7,
                        color=COLORS["highlight"],
                        zorder=3.5,
                        alpha=0.85,
                    )
                )
            head = "-|>" if style.get("head", True) else "-"
            ax.add_patch(
                FancyArrowPatch(
                    path=path,
                    arrowstyle=head,
                    mutation_scale=24,
                    lw=lw,
                    color=style.get("color", "black"),
                    ls=style.get("ls", "-"),
                    zorder=4,
                )
            )
    return figure


def _highlight_keys(trace: Trace, seq: int | None) -> frozenset[Any]:
    if seq is None:
        return frozenset()
    event = next((e for e in trace.events if e.seq == seq), None)
    if event is None:
        return frozenset()
    keys: set[Any] = {("arrow", seq), ("note", seq), ("step", seq)}
    if event.kind == "stage_ran":
        keys.add(("cell", event.deferred, event.stage, event.side))
    elif event.kind == "stage_added":
        keys.add(("cell", event.deferred, event.stage, "callback"))
        keys.add(("cell", event.deferred, event.stage, "errback"))
    elif event.kind in ("fired", "fire_rejected", "fire_ignored"):
        keys.add(("fire", event.deferred))
    elif event.kind in ("created", "member_result", "cancel", "canceller", "timeout_set"):
        keys.add(("title", event.deferred))
    return frozenset(keys)


def _legend(cv: _Canvas, x: float, y: float) -> None:
    """Swatches shaped like the cells they explain (square-cornered, not the round pills
    of the firing and the result); "did not run" shows a pale cell of each column."""
    w, h, r = 0.7, 0.34, 0.03
    items = [
        ([("callback", "callback")], "-", "callback ran"),
        ([("errback", "errback")], "-", "errback ran"),
        ([("callback_pale", "callback"), ("errback_pale", "errback")], "-", "did not run"),
        ([("passthru_pale", "passthru")], "--", "pass-through"),
    ]
    for cells, ls, text in items:
        part = (w - 0.06 * (len(cells) - 1)) / len(cells)
        for i, (face, edge) in enumerate(cells):
            cv.box(
                x + i * (part + 0.06),
                y,
                part,
                h,
                face=COLORS[face],
                edge=COLORS[edge],
                lw=2,
                ls=ls,
                radius=r,
            )
        cv.text(x + w + 0.12, y + h / 2, text, size=FONT["label"], ha="left", color=COLORS["ink"])
        x += w + 0.12 + _text_width(text, FONT["label"]) + 0.45


def chain_figure(
    trace: Trace,
    ref: Ref | None = None,
    upto: int | None = None,
    highlight: int | None = None,
    title: str | None = None,
) -> Drawing:
    """Draw the two-column diagram of ``trace`` (or of the Deferred ``ref`` only).

    ``upto`` draws the trace as it stood just after event ``upto``; ``highlight`` outlines
    in gold what event ``highlight`` did. ``title`` replaces the headline. Returns a
    :class:`~poetrylab.tracing._style.Drawing` (SVG in a notebook, ``.figure`` for the
    matplotlib Figure). Not thread-safe: draw in one thread (the main one).
    """
    whole = trace
    if upto is not None:
        trace = trace.until(upto)
    # a step-through frame from before ``ref`` was made: say so, on an empty picture
    later = (
        ref is not None
        and upto is not None
        and not any(info.id == ref or info.label == ref for info in trace.deferreds)
    )
    only = trace.deferred(ref).id if ref is not None and not later else None
    ctx = _ownership(trace, only)
    if later:
        roots = []
    elif only is not None:
        roots = [only]
    else:
        roots = [info.id for info in trace.deferreds if info.id not in ctx.owner]
    head, sub = headline(trace, only)
    if later:
        head, sub = f"{whole.deferred(ref).label}: not made yet", ""  # type: ignore[arg-type]
    if title is not None:
        head, sub = title, ""
    parts = [part for part in sub.split(" · ") if part]
    guess = trace.meta.get("prediction")
    if isinstance(guess, dict) and title is None:
        said = " ".join(side[0].upper() for side in guess.get("predicted", []))
        went = " ".join(side[0].upper() for side in guess.get("actual", []))
        verdict = "right ✓" if guess.get("correct") else "not quite ✗"
        parts.insert(0, f"you predicted {said}, it went {went}: {verdict}")
    blocks = [_Block(ctx, did) for did in roots]
    cv = _Canvas()
    margin = 0.35
    # roots left to right, wrapping before the picture gets too wide to project
    x, y, row_h, width = margin, 0.0, 0.0, 0.0
    spots = []
    for block in blocks:
        bw, bh = block.measure()
        if x > margin and x + bw > MAX_ROW_WIDTH:
            x, y = margin, y + row_h + 0.5
            row_h = 0.0
        spots.append((x, y))
        x += bw + 0.5
        row_h = max(row_h, bh)
        width = max(width, x - 0.5 + margin)
    if not blocks:
        width, row_h = 8.0, 1.0
    width = max(width, 9.0)
    # the subtitle wraps (a part never splits) instead of running off the picture
    lines = _wrap(parts, width - 2 * margin, FONT["subtitle"])
    top = margin + 0.8 + (0.45 + SUB_LINE * (len(lines) - 1) if lines else 0.0)
    for block, (bx, by) in zip(blocks, spots, strict=True):
        block.place(cv, bx, top + by)
    if not blocks:
        cv.text(
            margin,
            top + 0.4,
            "nothing yet" if later else "nothing traced",
            size=FONT["cell"],
            ha="left",
            color=COLORS["muted"],
            style="italic",
        )
    height = top + y + row_h + 0.35 + 0.5 + margin
    cv.text(
        margin,
        margin + 0.3,
        _fits(head, width - 2 * margin, FONT["title"], True),
        size=FONT["title"],
        weight="bold",
        ha="left",
        color=COLORS["ink"],
    )
    for i, line in enumerate(lines):
        cv.text(
            margin,
            margin + 0.8 + SUB_LINE * i,
            line,
            size=FONT["subtitle"],
            ha="left",
            color=COLORS["muted"],
        )
    _legend(cv, margin, height - margin - 0.45)
    figure = _draw(cv, width, height, _highlight_keys(trace, highlight))
    return Drawing(figure, head)


def save(picture: Any, path: str | Path) -> Path:
    """Write a Drawing (or Figure) to ``path`` (``.png`` or ``.svg``)."""
    return save_figure(_as_figure(picture), path)
