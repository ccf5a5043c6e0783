"""Colours, fonts and the :class:`Drawing` wrapper shared by the diagram and the timeline.

Pictures are part of the product: green for callbacks and success, red for errbacks and
failures (the classic Deferred diagrams' colours), grey for Twisted's implicit
pass-throughs, purple for cancellation, blue for generator/coroutine steps, large fonts
for a projector. Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas
directly, never with pyplot's global state, so drawing is safe in any thread that owns the
figure (draw in the main thread, not in the reactor thread).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["COLORS", "FONT", "Drawing", "save_figure", "figure_svg", "figure_png", "new_figure"]

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

_RC = {"svg.hashsalt": "poetrylab", "svg.fonttype": "path", "font.family": "DejaVu Sans"}


def new_figure(width: float, height: float) -> Figure:
    """A Figure of ``width`` x ``height`` inches on an Agg canvas (no pyplot)."""
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def figure_svg(figure: Figure) -> str:
    """The figure as SVG text, identical from run to run (no date, fixed ids)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return re.sub(r"^<\?xml[^>]*>\s*", "", text)


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
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
