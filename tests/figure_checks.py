"""What a learner on a projector would see wrong in a picture, found without looking.

JupyterLab on a 1280x800 screen gives an output about 1000 pixels wide (less with the
file browser open): a wider picture is scaled down, and its fonts with it. So every
figure of the course is drawn for at most :data:`MAX_WIDTH` display pixels, with no text
under :data:`MIN_FONT_PX` pixels on screen. :func:`layout_problems` draws a
:class:`~poetrylab.pictures.Picture` as it will be shown and lists what breaks that: too
wide, a font too small, a text that leaves the figure (cut off), two texts drawn over each
other. Only texts matplotlib really draws count (a tick label outside the axes' view is
never drawn). Imported by the test modules beside it (``from figure_checks import
layout_problems``): pytest puts ``tests/`` on the path, as for ``waiting.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from poetrylab.pictures import Picture

MAX_WIDTH = 960
"""Display pixels: fits JupyterLab's output area on a 1280-pixel screen, and a 16:9 slide."""
MIN_FONT_PX = 13
"""The smallest text, in display pixels, that still reads on a projector."""
_SLACK = 1.0  # pixels: anti-aliasing may put a glyph's edge half a pixel out


@contextmanager
def _recording_drawn_texts(into: list[tuple[Text, Bbox]]) -> Iterator[None]:
    draw = Text.draw

    def recording(self: Text, renderer: RendererAgg, *args: Any, **kwargs: Any) -> None:
        draw(self, renderer, *args, **kwargs)
        if self.get_visible() and self.get_text().strip():
            into.append((self, self.get_window_extent(renderer)))

    Text.draw = recording  # type: ignore[method-assign]  # restored below; tests are single-threaded
    try:
        yield
    finally:
        Text.draw = draw  # type: ignore[method-assign]


def drawn_texts(picture: Picture) -> list[tuple[Text, Bbox]]:
    """Every non-empty text drawn when ``picture`` is shown, with its box in display pixels."""
    figure = picture.figure
    figure.set_dpi(picture.dpi)
    drawn: list[tuple[Text, Bbox]] = []
    with _recording_drawn_texts(drawn):
        FigureCanvasAgg(figure).draw()
    return drawn


def layout_problems(
    picture: Picture, max_width: int = MAX_WIDTH, min_font_px: float = MIN_FONT_PX
) -> list[str]:
    """What is wrong with ``picture`` on a learner's screen, one line each ([] if nothing).

    Too wide (display width over ``max_width``); a text under ``min_font_px`` pixels; a
    text reaching outside the figure; two texts whose boxes overlap.
    """
    found = []
    width, height = picture.size
    if width > max_width:
        found.append(f"{width} px wide: over {max_width}, so JupyterLab scales it down")
    drawn = drawn_texts(picture)
    edge = picture.figure.bbox
    for text, box in drawn:
        shown = text.get_text().replace("\n", " ")[:40]
        px = text.get_fontsize() * picture.dpi / 72
        if px < min_font_px:
            found.append(f"{shown!r} at {px:.1f} px: under {min_font_px} px on screen")
        if (box.x0 < -_SLACK or box.y0 < -_SLACK or box.x1 > edge.x1 + _SLACK
                or box.y1 > edge.y1 + _SLACK):  # fmt: skip
            found.append(f"{shown!r} is cut: it reaches outside the {width}x{height} figure")
    for (a, box_a), (b, box_b) in itertools.combinations(drawn, 2):
        across = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        up = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if across > 2 and up > 2:
            found.append(
                f"{a.get_text()[:30]!r} and {b.get_text()[:30]!r} are drawn over each other"
            )
    return found
