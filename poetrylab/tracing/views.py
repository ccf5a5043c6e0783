"""Every view of a trace, in one place, and the one way a trace shows itself in a notebook.

The views are functions over the plain data of :mod:`.model`, each in its own module and
imported only when first used (so importing the tracer loads no matplotlib and no
ipywidgets):

=================  =======================================  ============================
method             what it gives                            module
=================  =======================================  ============================
``text()``         the story as deterministic text          :mod:`.render_text`
``diagram(ref)``   the two-column callback/errback diagram  :mod:`.layout`, :mod:`.paint`
``timeline()``     events against time, one lane each       :mod:`.timeline`
``step_through()`` a widget replaying the events one by one :mod:`.widget`
``save(path)``     the diagram (or timeline) as PNG or SVG  (any picture view)
=================  =======================================  ============================

:class:`Views` carries those methods for both a recorded :class:`Trace` and a live
:class:`~.capture.Tracer` (adding a view is one method here). Displayed in a notebook,
either gives the diagram (:meth:`Views._repr_mimebundle_`): a PNG at twice its display
size, and as ``text/plain`` the trace's own text (or a faithful short form of a long
one), which is what nbval compares and what a reader without images learns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import Ref, TraceData

if TYPE_CHECKING:
    from poetrylab.pictures import Picture

    from .widget import Stepper

__all__ = ["Trace", "Views"]


class Views:
    """The views of a trace; a subclass says where the trace comes from."""

    def _view_trace(self) -> Trace:
        """The trace to draw (a Tracer: what it has recorded so far)."""
        raise NotImplementedError

    def _view_ref(self, ref: Any) -> Ref | None:
        """``ref`` as an id or label (a Tracer also accepts a live Deferred)."""
        return ref  # type: ignore[no-any-return]

    def text(self, view: str = "chains", threads: bool = False) -> str:
        """The story as deterministic text (no times, no addresses); see :mod:`.render_text`.

        ``view="chains"`` tells each Deferred's story in turn; ``view="events"`` lists
        every event in the order it happened. ``threads=True`` adds each event's thread.
        Raises ValueError for another view.
        """
        from .render_text import render_text

        return render_text(self._view_trace(), view=view, threads=threads)

    def diagram(self, ref: Any = None, **options: Any) -> Picture:
        """The two-column callback/errback diagram (of Deferred ``ref`` only, if given).

        Returns a :class:`~.paint.Diagram`, a :class:`poetrylab.pictures.Picture`
        (PNG and text in a notebook; ``.figure``, ``.png()``, ``.save(path)``) that also
        holds its ``.layout``. Options: ``upto`` (draw the trace as it stood after that
        event), ``highlight`` (outline what that event did), ``title``, ``unfold=True``
        (draw every repeated generator step). Raises KeyError for an unknown ``ref``.
        Draw in the kernel's main thread.
        """
        from .paint import draw_diagram

        return draw_diagram(self._view_trace(), self._view_ref(ref), **options)

    def timeline(self, by: str = "deferred", **options: Any) -> Picture:
        """Events against time as a Picture: one lane per Deferred (``by="thread"``: per
        thread). Options ``x`` (``"time"``, ``"order"``, ``"auto"``), ``upto``,
        ``highlight``, ``title``. Raises ValueError for an unknown ``by`` or ``x``."""
        from .timeline import timeline_figure

        return timeline_figure(self._view_trace(), by=by, **options)

    def step_through(self, ref: Any = None, view: str = "diagram") -> Stepper:
        """A widget replaying the events one by one (see :mod:`.widget`); shown where
        widgets cannot run, it is the whole diagram and a text summary instead."""
        from .widget import stepper

        return stepper(self._view_trace(), self._view_ref(ref), view)

    def save(self, path: str | Path, view: str = "diagram", **options: Any) -> Path:
        """Write the diagram (or ``view="timeline"``) to ``path``, a ``.png`` or ``.svg``.

        Returns the path. Raises ValueError for another suffix or view.
        """
        if view not in ("diagram", "timeline"):
            raise ValueError(f"view must be 'diagram' or 'timeline', not {view!r}")
        picture = self.timeline(**options) if view == "timeline" else self.diagram(**options)
        return picture.save(path)

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The one display wrapper: the diagram's PNG, and the trace's text as text/plain."""
        return self.diagram()._repr_mimebundle_(include, exclude)


class Trace(TraceData, Views):
    """A recorded trace (plain data, see :mod:`.model`) with its views.

    In a notebook it shows itself as the two-column diagram with its text; ``text()``,
    ``diagram()``, ``timeline()``, ``step_through()`` and ``save()`` give each view,
    ``path()``, ``final()`` and ``events_for()`` answer questions, ``to_json()`` saves it.
    """

    def _view_trace(self) -> Trace:
        return self
