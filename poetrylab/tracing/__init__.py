"""See a Deferred think: record its callback/errback flow from a live run, and draw it.

Layout (each layer uses only the ones above it):

- ``model``       the trace as plain data (Trace, DeferredInfo, Stage, Event, Value), JSON
- ``capture``     the Tracer that records live Deferreds (patches Twisted while it runs)
- ``render_text`` a deterministic text rendering, for terminals, tests and nbval
- ``diagram``     the two-column callback/errback diagram (matplotlib, SVG/PNG)
- ``timeline``    events against time, one lane per Deferred or thread
- ``widget``      an ipywidgets control replaying a trace step by step
- ``simulate``    build a chain from a short description, run it, return its trace

Notebooks 04 (Deferreds), 05 (inner Deferreds), 08 (inlineCallbacks, coroutines) and
09 (DeferredList, cancellation, timeouts) are built on it::

    from poetrylab.tracing import trace
    with trace() as t:
        d = Deferred()
        d.addCallback(double)
        d.addErrback(recover)
        d.callback(3)
    t                # the diagram
    print(t.text())  # the same story as text
"""

from __future__ import annotations

from .capture import Tracer, is_patched, trace
from .model import DeferredInfo, Event, Stage, Trace, Value
from .simulate import simulate

__all__ = [
    "trace",
    "Tracer",
    "simulate",
    "Trace",
    "DeferredInfo",
    "Stage",
    "Event",
    "Value",
    "is_patched",
]
