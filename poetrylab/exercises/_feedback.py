"""What a check answers: a :class:`Feedback`, shown as a box in a notebook and as text
in a terminal. Every notebook's exercises end with one (see :mod:`poetrylab.exercises`).

A verdict must outlive the machine it was made on: its text is stored in the notebooks
and compared by nbval, so it never holds a timing, a port or a memory address
(:func:`short` strips addresses), and its marks are characters every common font draws.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FAILED_MARK", "PASSED_MARK", "Feedback", "clip", "one_line", "short"]

# U+221A and U+00D7: in Latin-1 or in WGL4, so DejaVu Sans, Liberation Sans and Arial all
# draw them (the emoji marks showed as empty boxes in a browser without an emoji font).
# The words beside them ("Well done", "Not yet") carry the meaning; colour only repeats it.
PASSED_MARK = "√"
FAILED_MARK = "×"


@dataclass(frozen=True)
class Feedback:
    """A check's verdict: passed or not, with what was expected, what happened, and a hint.

    Truthy when the check passed, so a later cell can say ``if check_x(answer): ...``.
    Shows itself as a box in a notebook (``_repr_html_``) and as plain text elsewhere
    (``str``/``repr``, which is what a notebook stores as ``text/plain``); the
    expected/got/hint lines appear only when the check did not pass.
    """

    passed: bool
    exercise: str
    message: str
    expected: str = ""
    got: str = ""
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    @property
    def head(self) -> str:
        """The verdict in a mark and words: ``"√ Well done"`` or ``"× Not yet"``."""
        return f"{PASSED_MARK} Well done" if self.passed else f"{FAILED_MARK} Not yet"

    def details(self) -> list[tuple[str, str]]:
        """The ``(label, text)`` lines under the head: none for a pass, else the non-empty
        ones of expected, got and hint."""
        if self.passed:
            return []
        lines = [("expected:", self.expected), ("got:", self.got), ("hint:", self.hint)]
        return [(label, text) for label, text in lines if text]

    def __str__(self) -> str:
        lines = [f"{self.head} — {self.exercise}: {self.message}"]
        lines += [f"   {label:<9} {text}" for label, text in self.details()]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, background = ("#1b5e20", "#e8f5e9") if self.passed else ("#b71c1c", "#ffebee")
        rows = "".join(
            f"<div><b>{label}</b> {html.escape(text)}</div>" for label, text in self.details()
        )
        return (
            f'<div style="border-left:6px solid {colour};background:{background};'
            f'padding:8px 12px;font-size:1.1em;color:#212121">'
            f'<div><b style="color:{colour}">{self.head}</b> <b>— '
            f"{html.escape(self.exercise)}:</b> {html.escape(self.message)}</div>{rows}</div>"
        )


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` without memory addresses, cut to ``limit`` characters with "…"."""
    text = _ADDRESS.sub("", repr(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[len(cut)] != " " and " " in cut:  # the cut falls inside a word: drop that word
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"


def one_line(exc: BaseException) -> str:
    """``"ValueError: the message"``, clipped to one line: the exception's class name
    (without its module, which may move between library versions) and its message."""
    message = str(exc)
    return clip(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
