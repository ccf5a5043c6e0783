"""See a Deferred think: record its callback/errback flow from a live run, and draw it.

Layers, each using only those listed before it (so the model imports nothing that draws,
and only one module touches Twisted's private names):

- ``_twisted``    every touch of Twisted's private API, each a checked probe
- ``model``       the trace as plain data (TraceData, DeferredInfo, Stage, Event, Value), JSON
- ``_values``     bounded summaries of values (the tracer keeps no user object)
- ``render_text`` a deterministic text rendering, for terminals, tests and nbval
- ``_style``      colours, type sizes and text measuring for the pictures
- ``layout``      the diagram's boxes, arrows, sides and sizes, computed as plain data
- ``paint``       the layout painted with matplotlib: a PNG for notebooks, SVG on request
- ``timeline``    events against time, one lane per Deferred or thread
- ``widget``      an ipywidgets control replaying a trace step by step
- ``views``       every view of a trace and the one display wrapper; ``Trace``
- ``live``        a diagram redrawn while the traced block runs
- ``_record``, ``_patches``, ``capture``  the Tracer that records live Deferreds
- ``simulate``    build a chain from a short description, run it, return its trace
- ``examples``    canonical flows run under the tracer

Notebooks 04 (Deferreds), 05 (inner Deferreds), 08 (inlineCallbacks, coroutines) and
09 (DeferredList, cancellation, timeouts) are built on it::

    from poetrylab.tracing import trace
    with trace() as t:
        d = Deferred()
        d.addCallback(double)
        d.addErrback(recover)
        d.callback(3)
    t                # the diagram (and, as text/plain, the same story in words)
    print(t.text())  # the story as text
"""

from __future__ import annotations

from .capture import Tracer, is_patched, trace
from .model import DeferredInfo, Event, Final, Stage, Value
from .simulate import simulate
from .views import Trace

__all__ = [
    "trace",
    "Tracer",
    "simulate",
    "Trace",
    "DeferredInfo",
    "Stage",
    "Event",
    "Final",
    "Value",
    "is_patched",
]
