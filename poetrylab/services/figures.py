"""Pictures for the services notebooks (06, 07, 13): a netstring's parts, outcomes, spans.

Green is success (a callback ran), red is failure (an errback ran), as in every Deferred
diagram of the course, and never colour alone: each picture also says it in words
(a count, "failed" after a bar). Fonts are large enough for a projector. Each function
returns a :class:`~poetrylab.pictures.Picture` (a PNG, and text saying what it shows, with
no timings in it so a stored notebook output stays the same); its matplotlib figure is
``.figure``. Draw in the main thread, not in the reactor's.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from poetrylab.pictures import Picture
from poetrylab.tracing._style import COLORS

__all__ = ["Span", "draw_netstring", "draw_outcomes", "draw_spans"]

GREEN, RED, GREY = COLORS["callback"], COLORS["errback"], COLORS["passthru"]
BLUE, INK = COLORS["step"], COLORS["ink"]


_DPI = 80
"""Display pixels per inch: the figures are drawn at slide size, in inches."""
_WIDTH = 12.0
"""Every figure's width in inches: 960 display pixels, which JupyterLab shows unscaled on a
1280-pixel screen and a 16:9 slide holds; the smallest font (13 points) is 14 pixels."""


@contextmanager
def _style() -> Iterator[None]:
    # A literal at the call: its keys are typed as rcParams' names by every matplotlib
    # since 3.10 (a module-level dict would need matplotlib 3.11's RcKeyType).
    with mpl.rc_context({
        "font.size": 16,
        "axes.titlesize": 19,
        "axes.titleweight": "bold",
        "axes.labelsize": 16,
        "xtick.labelsize": 14,
        "ytick.labelsize": 14,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.fonttype": "none",
    }):  # fmt: skip
        yield


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wrap(title: str, width: int = 70) -> str:
    """A title whose every line fits the figure's width at the title's font size."""
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def draw_netstring(
    frame: bytes, title: str = "One request: a netstring around NAME.POEM"
) -> Picture:
    """Draw the parts of a transform request: the length, ``:``, the name, ``.``, the poem,
    ``,``. Raises ValueError when ``frame`` is not one well-formed netstring."""
    length, colon, rest = frame.partition(b":")
    if not (length.isdigit() and colon and rest.endswith(b",")):
        raise ValueError(f"{frame[:30]!r} is not a netstring (LENGTH:DATA,)")
    payload = rest[:-1]
    if int(length) != len(payload):
        raise ValueError(f"the netstring announces {int(length)} bytes but holds {len(payload)}")
    name, dot, poem = payload.partition(b".")
    parts = [
        (length.decode(), GREY, "length:\nbytes that follow"),
        (":", GREY, ""),
        (name.decode("ascii", "replace"), BLUE, "transform\nname"),
        (dot.decode(), GREY, ""),
        (_clip(poem.decode("utf-8", "replace").replace("\n", "⏎"), 30), GREEN, "the poem\n(UTF-8)"),
        (",", GREY, "end"),
    ]
    widths = [max(1.0, len(text) * 0.62 + 0.6) for text, _, _ in parts]
    with _style():
        fig = Figure(figsize=(_WIDTH, 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = 0.0
        for i, ((text, colour, label), width) in enumerate(zip(parts, widths, strict=True)):
            ax.add_patch(
                Rectangle(
                    (x, 0), width, 1, facecolor=colour, alpha=0.15, edgecolor=colour, linewidth=2
                )
            )
            ax.text(
                x + width / 2,
                0.5,
                text,
                ha="center",
                va="center",
                family="monospace",
                fontsize=17,
                color=INK,
            )
            if label:  # the first label starts under its box: centred, it would leave the figure
                ax.text(
                    x if i == 0 else x + width / 2, -0.25, label, ha="left" if i == 0 else "center",
                    va="top", fontsize=14, color=colour,
                )  # fmt: skip
            x += width
        ax.set_xlim(-0.2, x + 0.2)
        ax.set_ylim(-0.95, 1.1)
        ax.set_axis_off()
        ax.set_title(f"{title}: {len(payload)} bytes of payload")
    words = "; ".join(
        f"{text!r} ({label.replace(chr(10), ' ')})" if label else repr(text)
        for text, _, label in parts
    )
    return Picture(fig, f"{title}: {len(payload)} bytes of payload\n{words}", dpi=_DPI)


def draw_outcomes(
    outcomes: Sequence[bool],
    title: str,
    success: str = "callback: the new poem",
    failure: str = "errback: refused",
    per_row: int = 10,
) -> Picture:
    """One square per call, numbered in order: green and ✓ when it succeeded, red and ✗
    when not."""
    rows = max(1, math.ceil(len(outcomes) / per_row))
    with _style():
        fig = Figure(figsize=(_WIDTH, 1.3 + 1.1 * rows), layout="constrained")
        ax = fig.add_subplot()
        for i, ok in enumerate(outcomes):
            row, col = divmod(i, per_row)
            colour = GREEN if ok else RED
            ax.add_patch(Rectangle((col, -row), 0.9, 0.9, facecolor=colour, alpha=0.85))
            ax.text(
                col + 0.45,
                -row + 0.45,
                f"{i + 1}\n{'✓' if ok else '✗'}",  # the mark says it without colour
                ha="center",
                va="center",
                color="white",
                fontsize=15,
                fontweight="bold",
                linespacing=1.1,
            )
        ax.set_xlim(-0.1, per_row)
        ax.set_ylim(-rows + 0.8, 1.0)
        ax.set_aspect("equal")
        ax.set_axis_off()
        good = sum(outcomes)
        counts = f"{good} × {success}, {len(outcomes) - good} × {failure}"
        ax.set_title(f"{_wrap(title)}\n{counts}")
    calls = " ".join(f"{i}:{'ok' if ok else 'failed'}" for i, ok in enumerate(outcomes, 1))
    return Picture(fig, f"{title}\n{counts}\n{calls}", dpi=_DPI)


class Span(NamedTuple):
    """One request or download: a label, when it started and ended, whether it succeeded,
    and a note written after the bar."""

    label: str
    start: float
    end: float
    ok: bool = True
    note: str = ""


def draw_spans(
    spans: Sequence[Span],
    title: str,
    xlabel: str = "seconds since the first start",
    groups: Sequence[tuple[str, int]] = (),
) -> Picture:
    """One horizontal bar per span (green ok; red, hatched and marked "failed" when it
    failed), top to bottom in the given order.

    ``groups`` names consecutive runs of spans, ``(caption, count)``: each caption gets a
    row of its own above its spans.
    """
    if not spans:
        raise ValueError("nothing to draw")
    origin = min(s.start for s in spans)
    captions: dict[int, str] = {}
    first = 0
    for caption, count in groups:
        captions[first] = caption
        first += count
    rows: list[Span | str] = []
    for i, span in enumerate(spans):
        if i in captions:
            rows.append(captions[i])
        rows.append(span)
    with _style():
        fig = Figure(figsize=(_WIDTH, 1.5 + 0.45 * len(rows)), layout="constrained")
        ax = fig.add_subplot()
        labels = []
        for y, row in enumerate(rows):
            if isinstance(row, str):
                labels.append(row)
                continue
            labels.append(row.label)
            start, end = row.start - origin, row.end - origin
            colour = GREEN if row.ok else RED
            ax.barh(
                y, max(end - start, 0.002), left=start, height=0.6, color=colour, alpha=0.85,
                hatch="" if row.ok else "//", edgecolor="white",
            )  # fmt: skip
            note = row.note if row.ok else f"failed{': ' + row.note if row.note else ''}"
            if note:
                ax.text(end, y, f"  {note}", va="center", ha="left", fontsize=13, color=INK)
        ax.set_yticks(range(len(rows)), labels)
        for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
            if isinstance(row, str):
                tick.set_fontweight("bold")
                tick.set_color(GREY)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
        longest = max(s.end for s in spans) - origin
        ax.set_xlim(0, longest * 1.35 + 0.01)
        # at the figure's left edge, not the axes': the row labels leave the title less room
        fig.suptitle(_wrap(title), x=0.01, ha="left", fontsize=19, fontweight="bold")
    described = [title, f"x: {xlabel}"]
    for row in rows:
        if isinstance(row, str):
            described.append(f"{row}:")
        else:
            note = f" ({row.note})" if row.note else ""
            described.append(f"  {row.label}: {'ok' if row.ok else 'failed'}{note}")
    return Picture(fig, "\n".join(described), dpi=_DPI)
