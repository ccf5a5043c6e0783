"""Replay a trace event by event in the notebook (notebooks 04, 05, 08, 09).

:func:`stepper` returns an ipywidgets control: first / previous / next / last buttons, a
line saying what the current event was, and the diagram (or timeline) drawn as the trace
stood at that event, with what the event did outlined in gold. Pictures are drawn on demand
(in the kernel's main thread, when a button is clicked) and kept, so stepping back is
instant.

Where widgets cannot run -- an untrusted notebook, GitHub, nbviewer, a static HTML export
-- the control shows what it can: its display carries, beside the widget view, the whole
diagram as a PNG and, as ``text/plain``, the numbered list of its steps. nbval compares
that text, which is deterministic. This module imports ipywidgets; nothing else in
:mod:`poetrylab.tracing` does, so the tracer works without it.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]  # ipywidgets ships no types

from .model import Event, Ref, TraceData
from .render_text import describe, fold_lines, step_numbers

__all__ = ["Stepper", "stepper"]


class Stepper(widgets.VBox):  # type: ignore[misc]  # VBox is untyped (Any) to mypy
    """The replay control. ``index`` is the current event's position; ``go(i)`` moves.

    Drawing happens in the thread that moves the control (the kernel's main thread).
    Raises ValueError for a ``view`` other than ``"diagram"`` or ``"timeline"``.
    """

    def __init__(self, trace: TraceData, ref: Ref | None = None, view: str = "diagram") -> None:
        if view not in ("diagram", "timeline"):
            raise ValueError(f"view must be 'diagram' or 'timeline', not {view!r}")
        self.trace = trace
        self.ref = ref
        self.view = view
        self.events: list[Event] = list(trace.events)
        self.index = 0
        self._pictures: dict[int, bytes] = {}
        steps = step_numbers(trace)
        self.lines = [describe(trace, e, steps.get(e.seq)) for e in self.events]
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
        self.picture = widgets.Image(format="png")
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
        line = html.escape(self.lines[self.index])
        self.caption.value = (
            f"<span style='font-size:15px'><b>step {self.index + 1} / {len(self.events)}</b>"
            f" &nbsp; <b>{html.escape(label)}</b> {line}"
            f" &nbsp; <span style='color:#616161'>[{html.escape(event.thread)}]</span></span>"
        )
        png, width = self._picture(event.seq)
        self.picture.value = png
        self.picture.layout.width = f"{width}px"
        self.buttons["first"].disabled = self.buttons["prev"].disabled = self.index == 0
        last = self.index == len(self.events) - 1
        self.buttons["next"].disabled = self.buttons["last"].disabled = last

    @property
    def current(self) -> Event | None:
        """The event shown now (None for an empty trace)."""
        return self.events[self.index] if self.events else None

    def _draw(self, seq: int | None) -> Any:
        if self.view == "timeline":
            from .timeline import timeline_figure

            return timeline_figure(self.trace, upto=seq, highlight=seq)
        from .paint import draw_diagram

        return draw_diagram(self.trace, self.ref, upto=seq, highlight=seq)

    def _picture(self, seq: int) -> tuple[bytes, int]:
        if seq not in self._pictures:
            self._pictures[seq] = self._draw(seq).png()
        from poetrylab.pictures import png_size

        png = self._pictures[seq]
        return png, png_size(png)[0] // 2

    def text(self) -> str:
        """The steps, numbered, as the ``text/plain`` shown where widgets cannot run."""
        labels = self.trace.labels
        lines = [
            f"{i + 1:>3}. {labels.get(e.deferred, '?')}: {line}"
            for i, (e, line) in enumerate(zip(self.events, self.lines, strict=True))
        ]
        head = f"Step through {len(self.events)} events (buttons: first, prev, next, last):"
        return "\n".join([head, *fold_lines(lines)])

    def _repr_mimebundle_(
        self, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]] | dict[str, Any]:
        """The widget view, and for places where widgets cannot run, the whole diagram
        (PNG) and the numbered steps (text/plain)."""
        shown = super()._repr_mimebundle_(**kwargs)
        data, meta = shown if isinstance(shown, tuple) else (shown, {})
        whole = self._draw(None)
        picture_data, picture_meta = whole._repr_mimebundle_()
        data = {**data, "image/png": picture_data["image/png"], "text/plain": self.text()}
        meta = {**meta, "image/png": picture_meta["image/png"]}
        return data, meta


def stepper(trace: TraceData, ref: Ref | None = None, view: str = "diagram") -> Stepper:
    """A :class:`Stepper` replaying ``trace`` (only Deferred ``ref``'s diagram if given)."""
    return Stepper(trace, ref, view)
