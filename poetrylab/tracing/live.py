"""A diagram that redraws itself while the traced block runs (notebook 05 and on).

``with trace(live=True) as t:`` shows the diagram as soon as the block starts and redraws
it as Deferreds fire -- typically in the reactor thread, while the cell waits in
``runtime.call``, ``runtime.wait`` or ``await runtime.resolve`` -- so a learner watches a
slow download's chain pause on its inner Deferred and go on. When the block ends the
picture becomes the ordinary diagram, the same one ``t`` would show.

Drawing happens only in the thread that started the view (the kernel's main thread),
never in the reactor's: the runtime's waits call :func:`poetrylab._ticks.tick` in the
waiting thread a few times a second while a view is registered, and :meth:`LiveView.tick`
redraws then, at most every :data:`EVERY` seconds and only when something new happened.
A block in which nothing waits (Deferreds fired by hand) simply ends with the final
picture. The picture reaches the notebook through an IPython display handle
(``display(..., display_id=True)``, then ``update``); outside IPython there is nothing to
update and the view does nothing.

What a stored notebook keeps, and nbval compares: the live frames all carry the same
words, :data:`LIVE_TEXT` (their pictures change, their words cannot: a checker replaying
the notebook sees only the first frame, since it does not apply display updates). When the
block ends the live output shrinks to those words alone and the final diagram is shown as
an output of its own, with the trace's text, so the result is stored, shown and compared
like any other diagram.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from poetrylab import _ticks

__all__ = ["EVERY", "LIVE_TEXT", "LiveFrame", "LiveView", "ipython_display"]

EVERY = 0.5
"""The shortest time between two redraws, in seconds (a redraw takes a tenth of that)."""

LIVE_TEXT = "(live view: redrawn while the traced block ran; the final diagram follows)"
"""The words every live frame carries, the same in every frame (see the module docstring)."""


class LiveFrame:
    """One frame of a live view: the diagram's picture (if any) with :data:`LIVE_TEXT`."""

    def __init__(self, picture: Any = None) -> None:
        self.picture = picture

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.picture is None:
            return {"text/plain": LIVE_TEXT}, {}
        data, metadata = self.picture._repr_mimebundle_(include, exclude)
        return {**data, "text/plain": LIVE_TEXT}, metadata


def ipython_display(picture: Any) -> Any:
    """Show ``picture`` in the running IPython kernel and return its display handle, or
    None outside IPython (then a live view has nowhere to draw)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return display(picture, display_id=True)  # type: ignore[no-untyped-call]  # IPython


class Recording(Protocol):
    """What a live view needs of a tracer: how much it has recorded, and its diagram."""

    @property
    def event_count(self) -> int: ...

    def diagram(self, ref: Any = None, **options: Any) -> Any: ...


class LiveView:
    """Shows ``tracer``'s diagram and redraws it on ticks while it records.

    ``display`` shows a picture and returns a handle with ``update(picture)`` (default:
    :func:`ipython_display`); ``clock`` gives seconds for the throttle. Not thread-safe:
    start, tick and finish it from one thread (ticks from other threads are ignored).
    """

    def __init__(
        self,
        tracer: Recording,
        display: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = EVERY,
    ) -> None:
        self.tracer = tracer
        self._display = display if display is not None else ipython_display
        self._clock = clock
        self.every = every
        self._handle: Any = None
        self._remove: Callable[[], None] | None = None
        self._thread = 0
        self._shown = -1
        self._last = 0.0
        self.redraws = 0

    def start(self) -> LiveView:
        """Show the diagram as it stands and start redrawing on ticks. Returns self."""
        self._thread = threading.get_ident()
        self._handle = self._display(self._picture())
        self._last = self._clock()
        if self._handle is not None:
            self._remove = _ticks.add(self.tick)
        return self

    def _size(self) -> int:
        return self.tracer.event_count

    def _picture(self) -> LiveFrame:
        self._shown = self._size()
        return LiveFrame(self.tracer.diagram())

    def tick(self) -> None:
        """Redraw if something happened since the last picture and :attr:`every` seconds
        have passed; only in the thread that started the view."""
        if threading.get_ident() != self._thread or self._handle is None:
            return
        if self._size() == self._shown or self._clock() - self._last < self.every:
            return
        self._handle.update(self._picture())
        self._last = self._clock()
        self.redraws += 1

    def finish(self) -> None:
        """Stop redrawing: the live output keeps only its words, and the final diagram is
        shown below it as an output of its own."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        if self._handle is not None:
            self._handle.update(LiveFrame())
            self._display(self.tracer.diagram())
            self.redraws += 1
