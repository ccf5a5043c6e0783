"""Replay a trace event by event in the notebook (notebooks 04, 05, 08, 09).

:func:`stepper` returns an ipywidgets control: first / previous / next / last buttons, a
line saying what the current event was, and the diagram (or timeline) drawn as the trace
stood at that event, with what the event did outlined in gold. Pictures are drawn on demand
and kept, so stepping back is instant. This module imports ipywidgets; nothing else in
:mod:`poetrylab.tracing` does, so the tracer works without it.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from .model import Ref, Trace
from .render_text import describe, step_numbers

__all__ = ["Stepper", "stepper"]


class Stepper(widgets.VBox):
    """The replay control. ``index`` is the current event's position; ``go(i)`` moves.

    Drawing happens in the thread that moves the control (the kernel's main thread).
    """

    def __init__(self, trace: Trace, ref: Ref | None = None, view: str = "diagram") -> None:
        if view not in ("diagram", "timeline"):
            raise ValueError(f"view must be 'diagram' or 'timeline', not {view!r}")
        self.trace = trace
        self.ref = ref
        self.view = view
        self.events = list(trace.events)
        self.index = 0
        self._pictures: dict[int, str] = {}
        steps = step_numbers(trace)
        self._lines = [describe(trace, e, steps.get(e.seq)) for e in self.events]
        self.buttons = {
            name: widgets.Button(description=label, tooltip=name, layout={"width": "7em"})
            for name, label in (
                ("first", "⏮ first"),
                ("prev", "◀ prev"),
                ("next", "next ▶"),
                ("last", "last ⏭"),
            )
        }
        self.buttons["first"].on_click(lambda _: self.go(0))
        self.buttons["prev"].on_click(lambda _: self.go(self.index - 1))
        self.buttons["next"].on_click(lambda _: self.go(self.index + 1))
        self.buttons["last"].on_click(lambda _: self.go(len(self.events) - 1))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        bar = widgets.HBox([*self.buttons.values(), self.caption])
        super().__init__([bar, self.picture])
        self.go(0)

    def go(self, index: int) -> None:
        """Show event ``index`` (clamped to the trace)."""
        if not self.events:
            self.caption.value = "<b>nothing was traced</b>"
            return
        self.index = max(0, min(index, len(self.events) - 1))
        event = self.events[self.index]
        label = self.trace.labels.get(event.deferred, "?")
        line = html.escape(self._lines[self.index])
        self.caption.value = (
            f"<span style='font-size:16px'><b>step {self.index + 1} / {len(self.events)}</b>"
            f" &nbsp; <b>{html.escape(label)}</b> {line}"
            f" &nbsp; <span style='color:#757575'>[{html.escape(event.thread)}]</span></span>"
        )
        self.picture.value = self._picture(event.seq)
        self.buttons["first"].disabled = self.buttons["prev"].disabled = self.index == 0
        last = self.index == len(self.events) - 1
        self.buttons["next"].disabled = self.buttons["last"].disabled = last

    @property
    def current(self) -> Any:
        """The event shown now (None for an empty trace)."""
        return self.events[self.index] if self.events else None

    def _picture(self, seq: int) -> str:
        if seq not in self._pictures:
            if self.view == "timeline":
                drawing = self.trace.timeline(upto=seq, highlight=seq)
            else:
                drawing = self.trace.diagram(self.ref, upto=seq, highlight=seq)
            self._pictures[seq] = (
                "<div style='max-width:100%;overflow:auto'>" + drawing.svg() + "</div>"
            )
        return self._pictures[seq]


def stepper(trace: Trace, ref: Ref | None = None, view: str = "diagram") -> Stepper:
    """A :class:`Stepper` replaying ``trace`` (only Deferred ``ref``'s diagram if given)."""
    return Stepper(trace, ref, view)
