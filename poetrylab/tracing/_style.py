"""Colours, fonts and the :class:`Drawing` wrapper shared by the diagram and the timeline.

Pictures are part of the product: green for callbacks and success, red for errbacks and
failures (the classic Deferred diagrams' colours), grey for Twisted's implicit
pass-throughs, purple for cancellation, blue for generator/coroutine steps, large fonts
for a projector. Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas
directly, never with pyplot's global state, so drawing is safe in any thread that owns the
figure (draw in the main thread, not in the reactor thread).

Labels carry learners' data (a Japanese poem, an emoji in a name), and the bundled font
has no glyph for much of it: matplotlib would draw empty boxes and warn on stderr.
:func:`safe_text` checks each character against the fonts' own character maps and writes
any the fonts cannot draw as an escape (``\\u53e4``). If a font covering CJK is installed
(:data:`FALLBACK_FAMILIES`), it is used as a fallback after DejaVu Sans instead.
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

__all__ = [
    "COLORS",
    "FONT",
    "Drawing",
    "save_figure",
    "figure_svg",
    "figure_png",
    "new_figure",
    "font_family",
    "safe_text",
]

COLORS = {
    "callback": "#2e7d32",
    "callback_pale": "#e8f5e9",
    "callback_text": "#1b5e20",
    "errback": "#c62828",
    "errback_pale": "#ffebee",
    "errback_text": "#b71c1c",
    "passthru": "#757575",
    "passthru_pale": "#f5f5f5",
    "cancel": "#6a1b9a",
    "step": "#1565c0",
    "step_pale": "#e3f2fd",
    "highlight": "#ffb300",
    "ink": "#212121",
    "muted": "#616161",
    "box": "#fafafa",
    "box_edge": "#9e9e9e",
    "lane": "#455a64",
}

FONT = {"title": 19, "subtitle": 15, "box_title": 16, "cell": 15, "label": 14, "note": 14}

FALLBACK_FAMILIES = (
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "Source Han Sans JP",
    "IPAexGothic",
    "IPAGothic",
    "TakaoGothic",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
"""Fonts tried, in order, for characters DejaVu Sans lacks (the first one installed wins)."""

_RC = {"svg.hashsalt": "poetrylab", "svg.fonttype": "path"}
_KEEP = frozenset("\n")


@functools.cache
def font_family() -> tuple[str, ...]:
    """The font family list every label is drawn with: DejaVu Sans, then a fallback if any."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    fallback = next((name for name in FALLBACK_FAMILIES if name in installed), None)
    return ("DejaVu Sans",) if fallback is None else ("DejaVu Sans", fallback)


@functools.cache
def _coverage(bold: bool, italic: bool) -> frozenset[int]:
    """The code points the font family can draw in this weight and style."""
    covered: set[int] = set()
    for family in font_family():
        props = font_manager.FontProperties(
            family=family,
            weight="bold" if bold else "normal",
            style="italic" if italic else "normal",
        )
        try:
            path = font_manager.findfont(props, fallback_to_default=False)
            covered.update(FT2Font(path).get_charmap())
        except (ValueError, OSError, RuntimeError):  # not installed or unreadable: skip it
            continue
    return frozenset(covered)


def safe_text(text: str, bold: bool = False, italic: bool = False) -> str:
    """``text`` with every character the fonts cannot draw written as an escape.

    ``古池`` becomes ``\\u53e4\\u6c60`` unless a fallback font covers it; nothing is ever
    dropped, so the label still says what the value was, and matplotlib has nothing to warn
    about. ASCII text is returned as it is.
    """
    if text.isascii():
        return text
    covered = _coverage(bold, italic)
    if all(ord(c) in covered or c in _KEEP for c in text):
        return text
    out = []
    for c in text:
        code = ord(c)
        if code in covered or c in _KEEP:
            out.append(c)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _rc() -> dict[str, Any]:
    return {**_RC, "font.family": list(font_family())}


def new_figure(width: float, height: float) -> Figure:
    """A Figure of ``width`` x ``height`` inches on an Agg canvas (no pyplot)."""
    with matplotlib.rc_context(_rc()):
        figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def figure_svg(figure: Figure) -> str:
    """The figure as SVG text, identical from run to run (no date, fixed ids)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_rc()):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return re.sub(r"^<\?xml[^>]*>\s*", "", text)


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_rc()):
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def save_figure(figure: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``figure`` to ``path`` as PNG or SVG (by its suffix). Returns the path.

    Raises ValueError for any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        path.write_text(figure_svg(figure), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(figure_png(figure, dpi=dpi))
    else:
        raise ValueError(f"save as .png or .svg, not {suffix or 'no suffix'!r}")
    return path


class Drawing:
    """A rendered picture: shows itself as SVG in a notebook; ``.figure`` is the Figure.

    ``svg()`` and ``png()`` return the bytes/text, ``save(path)`` writes a file.
    """

    def __init__(self, figure: Figure, title: str = "") -> None:
        self.figure = figure
        self.title = title

    def svg(self) -> str:
        """The picture as SVG text."""
        return figure_svg(self.figure)

    def png(self, dpi: int = 100) -> bytes:
        """The picture as PNG bytes."""
        return figure_png(self.figure, dpi=dpi)

    def save(self, path: str | Path, dpi: int = 120) -> Path:
        """Write the picture to a ``.png`` or ``.svg`` file; returns the path."""
        return save_figure(self.figure, path, dpi=dpi)

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        width, height = self.figure.get_size_inches()
        return f"<Drawing {self.title!r} {width:.1f}x{height:.1f} in>"


def as_figure(picture: Any) -> Figure:
    """The Figure inside a :class:`Drawing` (or the Figure itself)."""
    return picture.figure if isinstance(picture, Drawing) else picture
