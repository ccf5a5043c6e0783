"""Colours, type sizes and text measuring shared by the tracer's pictures (notebooks 04-09).

Pictures are part of the product: green for callbacks and success, red for errbacks and
failures (the classic Deferred diagrams' colours), grey for Twisted's implicit
pass-throughs, purple for cancellation, blue for generator and coroutine steps. Colour is
never the only carrier of meaning: columns, shapes, line styles and words say the same
(see :mod:`.layout`), and the colours differ in lightness as well as hue, so they stay
apart for colour-blind learners too.

Sizes are in display pixels: a picture is laid out at :data:`DISPLAY_WIDTH` pixels at
most, which fits a JupyterLab notebook on a 1280×800 screen (file browser open) and
fills a 16:9 slide; it is rendered at twice that for high-DPI screens and projectors.

Labels carry learners' data (a Japanese poem, an emoji in a name), and the bundled font
has no glyph for much of it: matplotlib would draw empty boxes and warn on stderr.
:func:`safe_text` checks each character against the fonts' own character maps and writes
any the fonts cannot draw as an escape (``\\u53e4``). If a font covering CJK is installed
(:data:`FALLBACK_FAMILIES`), it is used as a fallback after DejaVu Sans instead.
Measuring and fitting text (:func:`text_width`, :func:`fit`) uses the same fonts, so a
label fitted here fits when painted.
"""

from __future__ import annotations

import functools
import re

from matplotlib import font_manager
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font
from matplotlib.textpath import TextToPath

__all__ = [
    "COLORS",
    "DISPLAY_WIDTH",
    "ELLIPSIS",
    "FALLBACK_FAMILIES",
    "PX",
    "SLIDE_HEIGHT",
    "fit",
    "font_family",
    "safe_text",
    "text_width",
    "wrap",
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
    "held": "#e65100",
    "highlight": "#ffb300",
    "ink": "#212121",
    "muted": "#616161",
    "box": "#fafafa",
    "box_edge": "#9e9e9e",
    "lane": "#455a64",
}
"""The palette, by role. Other modules (the services' figures) use it too."""

DISPLAY_WIDTH = 900
"""The widest a picture is laid out, in display pixels."""

SLIDE_HEIGHT = DISPLAY_WIDTH * 9 // 16
"""The height of a 16:9 slide as wide as :data:`DISPLAY_WIDTH`: a one-slide picture's limit."""

PX = {"title": 17, "note": 13, "box_title": 14, "cell": 13, "label": 12, "legend": 12}
"""Type sizes in display pixels."""

ELLIPSIS = "…"

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


_TEXT = TextToPath()


@functools.cache
def _props(px: float, bold: bool, italic: bool) -> FontProperties:
    return FontProperties(
        family=list(font_family()),
        size=px * 0.72,  # points at the figures' 100 dpi
        weight="bold" if bold else "normal",
        style="italic" if italic else "normal",
    )


@functools.lru_cache(maxsize=8192)
def text_width(text: str, px: float, bold: bool = False, italic: bool = False) -> float:
    """How wide ``text`` is drawn at ``px`` display pixels, in display pixels."""
    if not text:
        return 0.0
    drawn = safe_text(text, bold, italic)
    width, _, _ = _TEXT.get_text_width_height_descent(drawn, _props(px, bold, italic), ismath=False)
    return float(width) / 0.72


def fit(text: str, width: float, px: float, bold: bool = False, italic: bool = False) -> str:
    """``text`` as drawn (escaped where the font lacks a glyph), shortened to ``width``
    display pixels by leaving out its middle: ``'Tyger Tyger, b…of the night;'``.

    The cut is never made inside an escape, and the result ends as the text ends, so a
    value's closing quote or bracket stays visible. Returns ``"…"`` when nothing else fits.
    """
    drawn = safe_text(text, bold, italic)
    if text_width(drawn, px, bold, italic) <= width:
        return drawn
    units = _UNIT.findall(drawn)
    keep = len(units) - 1
    while keep > 0:
        left = (keep + 1) // 2
        right = keep - left
        candidate = "".join(units[:left]) + ELLIPSIS + "".join(units[len(units) - right :])
        if right == 0:
            candidate = "".join(units[:left]) + ELLIPSIS
        if text_width(candidate, px, bold, italic) <= width:
            return candidate
        keep -= 1 if keep < 16 else max(1, keep // 8)
    return ELLIPSIS


_UNIT = re.compile(r"\\u[0-9a-f]{4}|\\U[0-9a-f]{8}|.", re.S)
"""One drawn character: an escape written by :func:`safe_text` counts as one."""


def wrap(text: str, width: float, px: float, lines: int = 3, bold: bool = False) -> list[str]:
    """``text`` broken at spaces into at most ``lines`` lines of at most ``width`` pixels;
    a word too long for a line, or what does not fit in the last line, is shortened
    (:func:`fit`)."""
    words = text.split(" ")
    out: list[str] = []
    for word in words:
        if out and text_width(out[-1] + " " + word, px, bold) <= width:
            out[-1] += " " + word
        elif len(out) < lines:
            out.append(word)
        else:
            out[-1] += " " + word
    return [fit(line, width, px, bold) for line in out]
