"""Painting a laid-out diagram with matplotlib, and the picture a notebook shows.

:func:`paint` draws a :class:`~.layout.Layout` -- nothing is decided here, every position
and every word comes from the layout -- onto a matplotlib Figure made without pyplot (so
it is safe in any thread that owns it; the notebooks draw in the kernel's main thread).
:func:`draw_diagram` lays out and paints a trace and returns a :class:`Diagram`: a
:class:`poetrylab.pictures.Picture` (a PNG at twice its display size, and as
``text/plain`` the trace's own text, or a faithful short form of a long one) that also
holds its layout. Notebooks 04, 05, 08 and 09 show these pictures.
"""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from poetrylab.pictures import Picture

from ._style import COLORS, font_family, safe_text
from .layout import LEGEND, Arrow, Box, Label, Layout, layout
from .model import Ref, TraceData
from .render_text import short_text

__all__ = ["Diagram", "draw_diagram", "paint"]

DPI = 100.0
"""Display pixels per inch of the figures: a layout's pixel is one display pixel."""

_ARROW_COLOR = {
    "success": COLORS["callback"],
    "failure": COLORS["errback"],
    "plain": COLORS["ink"],
    "cancel": COLORS["cancel"],
    "step": COLORS["step"],
}
_TEXT_COLOR = {
    "ink": COLORS["ink"],
    "muted": COLORS["muted"],
    "callback": COLORS["callback_text"],
    "errback": COLORS["errback_text"],
    "success": COLORS["callback_text"],
    "failure": COLORS["errback_text"],
    "cancel": COLORS["cancel"],
    "held": COLORS["held"],
    "step": COLORS["step"],
}


class Diagram(Picture):
    """A diagram ready to show: a :class:`~poetrylab.pictures.Picture` with its layout.

    ``layout`` is the :class:`~.layout.Layout` it was painted from (``.boxes``,
    ``.arrows``, ``.labels``: what is where), ``title`` its headline.
    """

    def __init__(self, figure: Figure, text: str, drawn: Layout) -> None:
        super().__init__(figure, text, dpi=DPI)
        self.layout = drawn
        self.title = drawn.title

    def __repr__(self) -> str:
        return f"<Diagram {self.title!r} {self.layout.width:.0f}x{self.layout.height:.0f} px>"


def draw_diagram(
    trace: TraceData,
    ref: Ref | None = None,
    upto: int | None = None,
    highlight: int | None = None,
    title: str | None = None,
    unfold: bool = False,
) -> Diagram:
    """Lay out and paint the diagram of ``trace`` (of Deferred ``ref`` only, if given).

    ``upto`` draws the trace as it stood just after event ``upto``; ``highlight``
    outlines in gold what event ``highlight`` did; ``title`` replaces the headline;
    ``unfold`` draws every generator step instead of folding runs of steps alike.
    Raises KeyError for an unknown ``ref``. Not thread-safe: draw in one thread.
    """
    whole = trace
    if upto is not None:
        trace = trace.until(upto)
    if ref is not None and upto is not None and not trace.has(ref):
        # a step-through frame from before ``ref`` was made: say so, on an empty picture
        name = whole.deferred(ref).label
        drawn = layout(type(trace)([], [], dict(trace.meta)), title=f"{name}: not made yet")
        return Diagram(paint(drawn), f"{name}: not made yet", drawn)
    keys = () if highlight is None else (highlight,)
    drawn = layout(trace, ref, highlight=keys, title=title, unfold=unfold)
    only = None
    if ref is not None:
        root = trace.deferred(ref).id
        only = {b.deferred for b in drawn.boxes if b.kind == "frame" and b.deferred is not None}
        only.add(root)
    return Diagram(paint(drawn), short_text(trace, only=only), drawn)


def paint(drawn: Layout) -> Figure:
    """Paint ``drawn`` onto a new Figure (one display pixel per layout unit)."""
    figure = Figure(figsize=(drawn.width / DPI, drawn.height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, drawn.width)
    ax.set_ylim(drawn.height, 0)
    ax.set_axis_off()
    lit = drawn.highlight
    family = list(font_family())
    for box in drawn.boxes:
        _box(ax, box, bool(box.keys & lit), family)
    for arrow in drawn.arrows:
        _arrow(ax, arrow, bool(arrow.keys & lit), family)
    for label in drawn.labels:
        _label(ax, label, bool(label.keys & lit), family)
    return figure


def _text(
    ax: Any,
    x: float,
    y: float,
    text: str,
    px: float,
    family: list[str],
    color: str,
    align: str = "center",
    bold: bool = False,
    italic: bool = False,
    rotation: float = 0.0,
    bbox: dict[str, Any] | None = None,
    z: float = 6,
) -> None:
    ax.text(
        x,
        y,
        safe_text(text, bold, italic),
        fontsize=px * 0.72,
        fontfamily=family,
        color=color,
        ha=align,
        va="center",
        fontweight="bold" if bold else "normal",
        fontstyle="italic" if italic else "normal",
        rotation=rotation,
        bbox=bbox,
        zorder=z,
    )


def _face_edge_text(box: Box) -> tuple[str, str, str]:
    """(face, edge, text colour) of a box, by its kind and style."""
    style = box.style
    if box.kind == "cell":
        if style == "passthru":
            return (
                (COLORS["passthru"], COLORS["passthru"], "white")
                if box.ran
                else (COLORS["passthru_pale"], COLORS["passthru"], COLORS["passthru"])
            )
        if box.ran:
            return COLORS[style], COLORS[style], "white"
        return COLORS[style + "_pale"], COLORS[style], COLORS[style + "_text"]
    if box.kind == "frame":
        if style == "chip":
            return "none", "none", COLORS["ink"]
        if style == "lane":
            return "white", COLORS["lane"], COLORS["ink"]
        return COLORS["box"], COLORS["box_edge"], COLORS["ink"]
    if style in ("success", "callback"):
        face = COLORS["callback_pale"] if box.kind in ("result", "gave") else "white"
        return face, COLORS["callback"], COLORS["callback_text"]
    if style in ("failure", "errback"):
        face = COLORS["errback_pale"] if box.kind in ("result", "gave") else "white"
        return face, COLORS["errback"], COLORS["errback_text"]
    if style in ("step",):
        return COLORS["step_pale"], COLORS["step"], COLORS["step"]
    if style == "held":
        return "white", COLORS["held"], COLORS["held"]
    if style == "untraced":
        return COLORS["passthru_pale"], COLORS["passthru"], COLORS["passthru"]
    return "white", COLORS["box_edge"], COLORS["muted"]


def _box(ax: Any, box: Box, lit: bool, family: list[str]) -> None:
    if box.kind in ("nest",) or box.style == "chip":
        return
    if box.kind == "legend":
        _swatch(ax, box, family)
        return
    if box.kind == "elided":
        _text(ax, *box.center, box.text, 13, family, COLORS["muted"], italic=True)
        return
    face, edge, ink = _face_edge_text(box)
    pill = box.kind in ("fire", "result", "gave", "handoff", "stub")
    radius = 11.0 if pill else (6.0 if box.kind in ("frame", "step", "fold") else 2.5)
    z = 0 if box.kind == "frame" else 2
    if lit:
        ax.add_patch(
            FancyBboxPatch(
                (box.x - 4, box.y - 4),
                box.w + 8,
                box.h + 8,
                boxstyle=f"round,pad=0,rounding_size={radius + 3}",
                fc=COLORS["highlight"],
                ec=COLORS["highlight"],
                lw=1,
                zorder=z - 0.5,
            )
        )
    lw = 1.2 if box.kind == "frame" else (2.2 if pill else 1.6)
    ax.add_patch(
        FancyBboxPatch(
            (box.x, box.y),
            box.w,
            box.h,
            boxstyle=f"round,pad=0,rounding_size={radius}",
            fc=face,
            ec=edge,
            lw=lw,
            ls="--" if box.dashed else "-",
            zorder=z,
        )
    )
    if box.text:
        _text(ax, *box.center, box.text, box.px, family, ink, bold=box.bold, italic=box.italic)


def _rounded(
    ax: Any,
    x: float,
    y: float,
    w: float,
    h: float,
    face: str,
    edge: str,
    radius: float = 2.0,
    dashed: bool = False,
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle=f"round,pad=0,rounding_size={radius}",
            fc=face,
            ec=edge,
            lw=1.5,
            ls="--" if dashed else "-",
        )
    )


_SWATCH_ARROWS = {
    "waits": (COLORS["ink"], True),
    "resumed": (COLORS["callback"], True),
    "member": (COLORS["lane"], False),
    "cancel": (COLORS["cancel"], True),
}
_SWATCH_MARKS = {
    "plumbing": ("abc", COLORS["muted"], False, True),
    "failure": ("✗", COLORS["errback_text"], True, False),
    "elided": ("…", COLORS["muted"], True, False),
}


def _swatch(ax: Any, box: Box, family: list[str]) -> None:
    """The legend's mark for ``box.style`` (a LEGEND key), shaped like what it explains."""
    key = box.style
    x, y, w, h = box.x, box.y, box.w, box.h
    mid = y + h / 2
    if key in ("callback", "errback"):
        _rounded(ax, x, y, w, h, COLORS[key], COLORS[key])
    elif key == "idle":
        half = (w - 3) / 2
        for i, side in enumerate(("callback", "errback")):
            _rounded(ax, x + i * (half + 3), y, half, h, COLORS[side + "_pale"], COLORS[side])
    elif key in ("passthru", "untraced"):
        _rounded(ax, x, y, w, h, COLORS["passthru_pale"], COLORS["passthru"],
                 6 if key == "untraced" else 2, dashed=True)  # fmt: skip
    elif key in ("step", "fold"):
        _rounded(ax, x, y, w, h, COLORS["step_pale"], COLORS["step"], 3, key == "fold")
        if key == "fold":
            _text(ax, x + w / 2, mid, "×n", 10, family, COLORS["step"])
    elif key == "held":
        _rounded(ax, x, y, w, h, "white", COLORS["held"], 6, dashed=True)
        _text(ax, x + w / 2, mid, "‖", 11, family, COLORS["held"], bold=True)
    elif key in _SWATCH_MARKS:
        mark, color, bold, italic = _SWATCH_MARKS[key]
        _text(ax, x + w / 2, mid, mark, 13, family, color, bold=bold, italic=italic)
    elif key in _SWATCH_ARROWS:
        color, dashed = _SWATCH_ARROWS[key]
        ends = (
            ((x, mid), (x + w, mid))
            if key != "cancel"
            else ((x + w / 2, y + h), (x + w / 2, y - 2))
        )
        ax.add_patch(
            FancyArrowPatch(
                *ends,
                arrowstyle="-|>",
                mutation_scale=10,
                lw=1.8,
                color=color,
                ls="--" if dashed else "-",
            )  # fmt: skip
        )
    else:  # pragma: no cover - every LEGEND key has a swatch above
        raise KeyError(f"no swatch for {key!r} (known: {', '.join(LEGEND)})")


def _arrow(ax: Any, arrow: Arrow, lit: bool, family: list[str]) -> None:
    color = _ARROW_COLOR[arrow.style]
    path = MplPath(list(arrow.points))
    lw = 2.2 if arrow.kind not in ("member",) else 1.8
    if lit:
        ax.add_patch(
            FancyArrowPatch(
                path=path,
                arrowstyle="-",
                lw=lw + 6,
                color=COLORS["highlight"],
                alpha=0.85,
                zorder=3.5,
            )
        )
    ax.add_patch(
        FancyArrowPatch(
            path=path,
            arrowstyle="-|>",
            mutation_scale=13,
            lw=lw,
            color=color,
            ls="--" if arrow.dashed else "-",
            zorder=4,
        )
    )
    if arrow.label and arrow.label_at is not None:
        bbox: dict[str, Any] | None = {
            "boxstyle": "round,pad=0.15",
            "fc": "white",
            "ec": "none",
            "alpha": 0.95,
        }
        if lit and bbox is not None:
            bbox.update(ec=COLORS["highlight"], lw=2, alpha=1)
        rotation = 90.0 if arrow.kind == "cancel" else 0.0
        if rotation:
            bbox = None if not lit else bbox  # beside its arrow: nothing to hide
        _text(
            ax,
            arrow.label_at[0],
            arrow.label_at[1],
            arrow.label,
            12,
            family,
            color if arrow.style != "success" else COLORS["callback_text"],
            align=arrow.align,
            rotation=rotation,
            bbox=bbox,
        )


def _label(ax: Any, label: Label, lit: bool, family: list[str]) -> None:
    bbox = None
    if lit:
        bbox = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": COLORS["highlight"], "lw": 2}
    _text(
        ax,
        label.x,
        label.y,
        label.text,
        label.px,
        family,
        _TEXT_COLOR.get(label.style, COLORS["ink"]),
        align=label.align,
        bold=label.bold,
        italic=label.italic,
        rotation=label.rotation,
        bbox=bbox,
    )
