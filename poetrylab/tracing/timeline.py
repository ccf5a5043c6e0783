"""Events against time: one lane per Deferred (or per thread) (notebooks 05, 08, 09).

Where the two-column diagram shows *which path* a result took, the timeline shows *when*
things happened and *where* (which thread): each Deferred is a lane, each event a marker
(a triangle when it fired, hollow if with a Failure; a square for each callback that ran,
a downward triangle for each errback, a hollow grey square for a pass-through or the
notebook runtime's hand-over; a diamond for a DeferredList member's result, a blue dot for
a generator step, a purple cross for cancel()), and a grey bar while a chain was paused on
an inner Deferred, with dashed lines to the lane it waited on. Shapes and fills differ
wherever colours do, so the picture reads without colour too.

The x axis is milliseconds since the tracer started; when the whole trace took less than
:data:`ORDER_BELOW` seconds (typical for Deferreds fired by hand or by a ``task.Clock``)
it shows the order of events instead, which is what there is to see.
"""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from poetrylab.pictures import Picture

from ._style import COLORS, PX, font_family, safe_text
from .model import Event, TraceData
from .render_text import short_text

__all__ = ["timeline_figure", "ORDER_BELOW"]

ORDER_BELOW = 0.005

_MARKERS: dict[str, tuple[str, float]] = {
    "created": ("o", 9),
    "fired": (">", 16),
    "stage_ran": ("s", 12),
    "member_result": ("D", 11),
    "step": ("o", 12),
    "cancel": ("X", 15),
    "timeout_set": ("|", 18),
    "fire_rejected": ("x", 14),
    "fire_ignored": ("x", 14),
    "canceller": ("P", 13),
}


def _color(e: Event, plumbing: frozenset[tuple[int, int]] = frozenset()) -> str:
    if e.kind == "stage_ran":
        if e.outcome == "passed" or (e.deferred, e.stage) in plumbing:
            return COLORS["passthru"]
        return COLORS[e.side or "callback"]
    if e.kind in ("fired", "member_result"):
        return (
            COLORS["errback"]
            if e.value is not None and e.value.is_failure
            else (COLORS["callback"])
        )
    if e.kind in ("cancel", "timeout_set", "canceller"):
        return COLORS["cancel"]
    if e.kind == "step":
        return COLORS["step"]
    if e.kind in ("fire_rejected", "fire_ignored"):
        return COLORS["errback"]
    return COLORS["box_edge"]


_PT = {name: px * 0.72 for name, px in PX.items()}  # type sizes in points, at 100 dpi


def timeline_figure(
    trace: TraceData,
    by: str = "deferred",
    x: str = "auto",
    upto: int | None = None,
    highlight: int | None = None,
    title: str | None = None,
) -> Picture:
    """Draw the timeline of ``trace``: lanes ``by="deferred"`` or ``by="thread"``.

    ``x`` is ``"time"``, ``"order"`` or ``"auto"`` (see the module docstring). ``upto``
    and ``highlight`` work as for the diagram. Returns a :class:`~poetrylab.pictures.Picture`
    (text/plain: the title, the axis and the trace's own text, short form). Raises
    ValueError for an unknown ``by`` or ``x``. Draw in one thread (the kernel's main one).
    """
    if by not in ("deferred", "thread"):
        raise ValueError(f"by must be 'deferred' or 'thread', not {by!r}")
    if x not in ("auto", "time", "order"):
        raise ValueError(f"x must be 'auto', 'time' or 'order', not {x!r}")
    if upto is not None:
        trace = trace.until(upto)
    events = [e for e in trace.events if e.kind in _MARKERS or e.kind in ("paused", "resumed")]
    span = max((e.time for e in events), default=0.0) - min((e.time for e in events), default=0.0)
    use_time = x == "time" or (x == "auto" and span >= ORDER_BELOW)
    position = {e.seq: (e.time * 1000.0 if use_time else float(i)) for i, e in enumerate(events)}

    lanes: list[Any]
    if by == "deferred":
        lanes = [info.id for info in trace.deferreds]
        names = [f"{info.label} {info.made_by}" for info in trace.deferreds]

        def lane_of(e: Event) -> Any:
            return e.deferred
    else:
        lanes = list(dict.fromkeys(e.thread for e in trace.events))
        names = list(lanes)

        def lane_of(e: Event) -> Any:
            return e.thread

    row = {lane: i for i, lane in enumerate(lanes)}
    plumbing = frozenset(
        (info.id, stage.id)
        for info in trace.deferreds
        for stage in info.stages
        if stage.role == "runtime"
    )
    height = min(2.2 + 0.42 * max(len(lanes), 1), 30.0)
    figure = Figure(figsize=(9.0, height), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0.24, 1.35 / height, 0.73, 1 - 2.0 / height))

    for i in range(len(lanes)):
        ax.axhline(i, color="#eeeeee", lw=10, zorder=0)

    # pauses: a bar from paused to resumed (or from a yield to the next step), dashed
    # links to the lane it waited on
    resumed_at = {(e.deferred, e.other): e for e in events if e.kind == "resumed"}
    steps = [e for e in events if e.kind == "step"]
    for i, e in enumerate(steps):
        if e.outcome == "yielded":
            after = next((s for s in steps[i + 1 :] if s.deferred == e.deferred), None)
            if after is not None:
                resumed_at[(e.deferred, e.other)] = after
    end = max(position.values(), default=0.0)
    for e in events:
        waits = e.kind == "paused" or (e.kind == "step" and e.outcome == "yielded")
        if not waits or lane_of(e) not in row:
            continue
        back = resumed_at.get((e.deferred, e.other))
        x0 = position[e.seq]
        x1 = position[back.seq] if back is not None else end
        y = row[lane_of(e)]
        ax.plot(
            [x0, x1],
            [y, y],
            color=COLORS["passthru"],
            lw=7,
            alpha=0.45,
            zorder=1,
            solid_capstyle="butt",
        )
        if by == "deferred" and e.other in row:
            ax.plot([x0, x0], [y, row[e.other]], color=COLORS["ink"], lw=1.5, ls="--", zorder=1)
            if back is not None:
                ax.plot([x1, x1], [row[e.other], y], color=COLORS["ink"], lw=1.5, ls="--", zorder=1)

    for e in events:
        if e.kind not in _MARKERS or lane_of(e) not in row:
            continue
        marker, size = _MARKERS[e.kind]
        px, py = position[e.seq], row[lane_of(e)]
        if e.seq == highlight:
            ax.plot(px, py, "o", ms=size + 14, color=COLORS["highlight"], zorder=2)
        color = _color(e, plumbing)
        if e.kind == "stage_ran" and e.side == "errback":
            marker = "v"  # a different shape, not just another colour
        hollow = (
            e.kind == "created"
            or (e.kind in ("fired", "member_result") and e.value is not None and e.value.is_failure)
            or (e.kind == "stage_ran" and e.outcome == "passed")
        )
        face = "white" if hollow else color
        ax.plot(px, py, marker, ms=size, mfc=face, mec=color, mew=2, zorder=3)

    names = [safe_text(n) for n in names]
    ax.set_yticks(range(len(lanes)), [n if len(n) <= 26 else n[:12] + "…" + n[-12:] for n in names])
    for tick in ax.get_yticklabels() + ax.get_xticklabels():
        tick.set_fontfamily(list(font_family()))
    ax.tick_params(axis="y", labelsize=_PT["label"], length=0)
    ax.tick_params(axis="x", labelsize=_PT["label"])
    ax.set_ylim(max(len(lanes), 1) - 0.5, -0.5)
    if use_time:
        ax.set_xlabel("milliseconds since the tracer started", fontsize=_PT["label"])
    else:
        ax.set_xlabel(
            "order of events (they all happened within a few milliseconds)", fontsize=_PT["label"]
        )
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    lane_word = "Deferred" if by == "deferred" else "thread"
    head = title or f"Timeline: what happened when, one lane per {lane_word}"
    figure.text(
        0.02,
        1 - 0.3 / height,
        safe_text(head, bold=True),
        fontfamily=list(font_family()),
        fontsize=_PT["title"],
        fontweight="bold",
        color=COLORS["ink"],
        va="center",
    )
    _legend(figure, height)
    axis = "milliseconds since the tracer started" if use_time else "order of events"
    words = f"{head} (x: {axis})\n{short_text(trace)}"
    return Picture(figure, words)


def _legend(figure: Any, height: float) -> None:
    items = [
        (">", COLORS["callback"], "fired", False),
        (">", COLORS["errback"], "fired with a Failure", True),
        ("s", COLORS["callback"], "callback ran", False),
        ("v", COLORS["errback"], "errback ran", False),
        ("s", COLORS["passthru"], "pass-through", True),
        ("D", COLORS["callback"], "member result", False),
        ("o", COLORS["step"], "generator step", False),
        ("X", COLORS["cancel"], "cancel()", False),
    ]
    handles = [
        Line2D(
            [],
            [],
            marker=marker,
            color=color,
            mfc="white" if hollow else color,
            mew=2,
            ls="none",
            ms=11,
        )
        for marker, color, _, hollow in items
    ]
    handles.append(Line2D([], [], color=COLORS["passthru"], lw=7, alpha=0.45))
    texts = [text for _, _, text, _ in items] + ["paused"]
    figure.legend(
        handles,
        texts,
        loc="lower center",
        ncol=4,
        fontsize=_PT["label"],
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.2,
    )
