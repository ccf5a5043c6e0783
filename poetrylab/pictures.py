"""Pictures that show wherever a notebook is opened: a PNG for the eye, words for the record.

Every figure the course draws (Deferred diagrams, timelines, benchmark plots, service
figures) reaches the notebook as a :class:`Picture`. Displayed, it gives Jupyter two
things:

* ``image/png``, rendered at twice its display size so it stays sharp on high-DPI
  screens and projectors, with the display size in the output's metadata. A PNG shows
  in an untrusted notebook (a fresh clone), on GitHub and nbviewer and in a static HTML
  export; stored SVG does not (JupyterLab will not render it until the notebook is
  trusted). The PNG carries no library version: matplotlib's ``Software`` tag is dropped.
* ``text/plain``, the picture's meaning in words: what the trace's text says, or a
  figure's titles, axis labels and legend. This is what a reader without images learns,
  and what nbval compares, so a new matplotlib release or another system font changes
  no stored output that is checked (nbval never compares PNG bytes).

An SVG copy is added only when asked for (``svg=True``), and never alone.

A Picture is built from a matplotlib :class:`~matplotlib.figure.Figure` made without
pyplot (so it is safe in any thread and leaves nothing for the inline backend to show
twice). The figure stays available as :attr:`Picture.figure` for anyone who wants to
draw more on it before it is shown. Rendering happens when the picture is displayed or
saved, in the thread that asks (in a notebook, the kernel's main thread).
"""

from __future__ import annotations

import base64
import io
import struct
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

__all__ = ["SCALE", "Picture", "describe", "png_size"]

SCALE = 2.0
"""How many PNG pixels per display pixel: 2 is sharp on high-DPI screens and projectors."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(png: bytes) -> tuple[int, int]:
    """The (width, height) in pixels of a PNG, read from its header.

    Raises ValueError when ``png`` is not a PNG.
    """
    if len(png) < 24 or not png.startswith(_PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def describe(figure: Figure) -> str:
    """A figure's meaning in words, from the text drawn on it.

    One line for the figure's own title (if any), then one line per axes that has
    anything to say: its title, its axis labels and its legend entries, in that order.
    Only text drawn on the figure is used, so the description is as stable as the
    figure's labels; put measured numbers in labels only when they are stable too.
    """
    lines = []
    suptitle = getattr(figure, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        lines.append(_one_line(suptitle.get_text()))
    for ax in figure.axes:
        parts = []
        titles = [ax.get_title(loc) for loc in ("left", "center", "right")]
        title = " ".join(_one_line(t) for t in titles if t)
        if title:
            parts.append(title)
        if ax.get_xlabel():
            parts.append(f"x: {_one_line(ax.get_xlabel())}")
        if ax.get_ylabel():
            parts.append(f"y: {_one_line(ax.get_ylabel())}")
        legend = ax.get_legend()
        if legend is not None:
            entries = [_one_line(t.get_text()) for t in legend.get_texts() if t.get_text()]
            if entries:
                parts.append("legend: " + ", ".join(entries))
        if parts:
            lines.append("; ".join(parts))
    return "\n".join(lines) if lines else "(a figure with no title or labels)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Picture:
    """A matplotlib figure that shows itself as a sharp PNG and says what it shows.

    ``text`` is the picture's meaning in words (``text/plain`` in the notebook, compared
    by nbval); when omitted it is :func:`describe` of the figure at display time.
    ``scale`` is PNG pixels per display pixel; ``dpi`` the display pixels per inch of the
    figure (its size in inches times ``dpi`` is its size on screen). ``svg=True`` adds a
    vector copy beside the PNG.

    Not thread-safe: draw and display a Picture from one thread at a time.
    """

    def __init__(
        self,
        figure: Figure,
        text: str | None = None,
        *,
        scale: float = SCALE,
        dpi: float = 100.0,
        svg: bool = False,
    ) -> None:
        if scale <= 0 or dpi <= 0:
            raise ValueError("scale and dpi must be positive")
        self.figure = figure
        self._text = text
        self.scale = scale
        self.dpi = dpi
        self.with_svg = svg

    @property
    def text(self) -> str:
        """What the picture shows, in words."""
        return self._text if self._text is not None else describe(self.figure)

    @property
    def size(self) -> tuple[int, int]:
        """The display size in pixels (width, height), as the PNG will be shown."""
        width, height = png_size(self.png())
        return round(width / self.scale), round(height / self.scale)

    def png(self, dpi: float | None = None) -> bytes:
        """The PNG bytes, rendered at ``dpi`` (default: display dpi times ``scale``).

        The PNG's metadata names no software or version, so the same drawing gives the
        same header on any machine.
        """
        buffer = io.BytesIO()
        self.figure.savefig(
            buffer,
            format="png",
            dpi=dpi if dpi is not None else self.dpi * self.scale,
            metadata={"Software": None},
        )
        return buffer.getvalue()

    def svg(self) -> str:
        """An SVG copy: no matplotlib version, date or random id in it.

        Element ids are hashed with a fixed salt, so the same drawing gives the same text.
        """
        buffer = io.StringIO()
        with mpl.rc_context({"svg.hashsalt": "poetrylab"}):
            self.figure.savefig(
                buffer, format="svg", metadata={"Creator": None, "Date": None, "Format": None}
            )
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the picture to ``path``: ``.png`` (at display dpi times scale) or ``.svg``.

        Creates the directory if needed; returns the path. Raises ValueError for any
        other suffix.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".svg"):
            raise ValueError(f"save as .png or .svg, not {path.suffix or 'no suffix'!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".png":
            path.write_bytes(self.png())
        else:
            path.write_text(self.svg(), encoding="utf-8")
        return path

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        png = self.png()
        width, height = png_size(png)
        data: dict[str, Any] = {
            "image/png": base64.b64encode(png).decode("ascii"),
            "text/plain": self.text,
        }
        metadata: dict[str, Any] = {
            "image/png": {"width": round(width / self.scale), "height": round(height / self.scale)}
        }
        if self.with_svg:
            data["image/svg+xml"] = self.svg()
        return data, metadata

    def __repr__(self) -> str:
        first = self.text.splitlines()[0] if self.text else ""
        return f"<Picture: {first}>"
