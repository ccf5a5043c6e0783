"""The tracer: records what really happens to Deferreds, from a live run (notebooks 04-09).

``with trace() as t:`` records every Deferred created in the block -- in this thread, and
in whatever thread runs work the block handed over with its ``contextvars`` context (the
notebook runtime does that: ``runtime.call``, ``wait``, ``resolve``, servers and clients
started from the cell) -- and every Deferred linked to one of those: returned by one of
its stages (the chain pauses on it), a member of a traced DeferredList or ``race()``,
awaited by a traced ``inlineCallbacks`` generator or coroutine, or the target of
``chainDeferred``. :meth:`Tracer.watch` adds any other Deferred.

For each, the trace says which side of every stage ran and what it got and gave back,
pauses on inner Deferreds (and a Deferred waiting on itself), ``pause()``/``unpause()``
by a caller, cancellations and who caused them, timeouts, the members of lists, and each
step of a generator or coroutine (see :mod:`.model` for every kind of event). Stages added
before a Deferred was traced are not seen; the value coming out of them is.

How: while a tracer records, Deferred's public methods are replaced by recording versions
(:mod:`._patches`), reaching Twisted's private names only through :mod:`._twisted`.
Recording never changes what the traced code does: same results, same warnings, the same
unhandled-error reports at the same moments (the tracer holds neither Deferreds nor values,
only summaries), and no exception or warning of the tracer's own ever reaches the program
-- what it cannot see is written into the trace instead. ``Deferred.callbacks``
(deprecated since Twisted 25.5) is never read. One thing does differ: a traceback printed
from inside a traced chain shows one frame of the tracer's between Twisted's and yours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import Token
from types import TracebackType
from typing import Any

from twisted.internet.defer import Deferred

from . import _patches, _twisted
from ._record import Rec, Recorder
from .model import Final, Ref
from .views import Trace, Views

__all__ = ["Tracer", "is_patched", "trace"]


def is_patched() -> bool:
    """True while any tracer is recording (Deferred's methods are the recording versions)."""
    return _patches.is_installed()


class Tracer(Recorder, Views):
    """Records the flow of Deferreds while it is active (see the module docstring).

    Use it as a context manager (``with Tracer() as t:`` or ``with trace() as t:``), or
    call :meth:`start` and :meth:`stop`. While and after recording it shows what it has
    seen: in a notebook as the diagram; :meth:`snapshot` returns the
    :class:`~.views.Trace`, and the views (``text``, ``diagram``, ``timeline``,
    ``step_through``, ``save``) accept a live Deferred wherever a Trace takes an id or a
    label. A Tracer records once: starting it again raises RuntimeError.

    ``clock`` gives the timestamps (seconds; default ``time.perf_counter``).
    ``all_threads=True`` traces Deferreds created in any thread and any context.
    ``live=True`` draws the diagram while the block runs and redraws it as Deferreds fire
    (see :mod:`.live`); the block then ends with the ordinary diagram on display.
    Recording is thread-safe; ``start`` and ``stop`` may be called from any thread, not
    concurrently with each other.
    """

    def __init__(
        self,
        *deferreds: Deferred[Any],
        all_threads: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        live: bool = False,
    ) -> None:
        super().__init__(clock)
        self.all_threads = all_threads
        self.live = live
        self._owner = 0
        self._started = False
        self._final: Trace | None = None
        self._token: Token[tuple[Recorder, ...]] | None = None
        self._pending_watch = list(deferreds)
        self._view: Any = None
        self.live_view: Any = None
        """The :class:`~.live.LiveView` of a ``live=True`` tracer (None otherwise)."""

    # -- lifetime ----------------------------------------------------------------------
    def start(self) -> Tracer:
        """Start recording, in this context and this thread. Returns self.

        Raises RuntimeError if this tracer has already been started.
        """
        if self._started:
            raise RuntimeError("a Tracer records once; make a new one")
        self._started = True
        self._owner = threading.get_ident()
        self._t0 = self._clock()
        self._recording = True
        self._token = _patches.active_here(self)
        _patches.install(self)
        for d in self._pending_watch:
            self.watch(d)
        self._pending_watch = []
        if self.live:
            from .live import LiveView

            self._view = self.live_view = LiveView(self).start()
        return self

    def stop(self) -> None:
        """Stop recording. Stopping twice is harmless.

        When this was the last recording tracer, every patched attribute is restored to
        the original object. Wrappers already placed in live chains stay there, doing
        nothing but calling what they wrap. A live view ends as the final diagram.
        """
        if not self._recording:
            return
        self.note_all_fired()
        _patches.uninstall(self)
        _patches.inactive_here(self, self._token)
        self._token = None
        self._recording = False
        self._final = self._build()
        if self._view is not None:
            view, self._view = self._view, None
            view.finish()

    def __enter__(self) -> Tracer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def recording(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._recording

    # -- choosing what to trace --------------------------------------------------------
    def watch(self, d: Deferred[Any], label: str | None = None) -> Deferred[Any]:
        """Trace ``d`` from now on (any thread may fire it); returns ``d``.

        Stages added to ``d`` before this call are not seen. If some are still to run, the
        views show one "earlier stages not traced" row, and what comes out of them is
        recorded as ``d``'s firing (outcome ``untraced``) when the first traced stage gets
        it (or, if none does, when the trace is next asked for). Otherwise, if ``d`` has
        already fired, its current result is recorded as ``fired`` with outcome
        ``already``. Before :meth:`start` the Deferred is remembered and watched when
        recording starts. Raises RuntimeError once the tracer has stopped.
        """
        if not self._started:
            self._pending_watch.append(d)
            return d
        if not self._recording:
            raise RuntimeError("this tracer has stopped; watch() needs a recording tracer")
        kind = "DeferredList" if isinstance(d, _twisted.DEFERRED_LIST) else "Deferred"
        rec = self.register(d, origin="watched", kind=kind, made_by=f"{type(d).__name__}(…)")
        if label is not None:
            self.label(d, label)
        self.note_fired(d, rec)
        return d

    def label(self, d: Deferred[Any], name: str) -> None:
        """Name a traced Deferred in every view (instead of ``d1``, ``d2``...).

        Raises KeyError if ``d`` is not traced.
        """
        rec = self._rec_of(d)
        with self._lock:
            rec.label = name
            if self._final is not None:
                self._final = self._build()

    def id_of(self, d: Deferred[Any]) -> int:
        """The id of a traced Deferred in the trace. Raises KeyError if it is not traced."""
        return self._rec_of(d).did

    def _rec_of(self, d: Deferred[Any]) -> Rec:
        rec = self.rec_for(d)
        if rec is None or self.alive(rec) is not d:
            raise KeyError(f"{d!r} is not traced by this tracer")
        return rec

    # -- results -----------------------------------------------------------------------
    def snapshot(self) -> Trace:
        """The trace recorded so far, as plain data with its views.

        Once the tracer has stopped the trace is final: every call returns the same
        :class:`~.views.Trace` (a new one after :meth:`label`). While recording, each
        call returns the trace so far (the same object until something more happens).
        """
        if self._final is not None:
            return self._final
        if self._recording:
            self.note_all_fired()
        return self._build()

    def _build(self) -> Trace:
        meta = {"all_threads": self.all_threads, "recording": self._recording}
        trace = self.build(Trace, meta)
        assert isinstance(trace, Trace)
        return trace

    def path(self, ref: Ref | Deferred[Any] | None = None) -> list[tuple[str, str, str]]:
        """``(side, name, outcome)`` of each stage that ran; see :meth:`Trace.path`."""
        return self.snapshot().path(self._view_ref(ref))

    def final(self, ref: Ref | Deferred[Any]) -> Final:
        """Where a Deferred ended up; see :meth:`Trace.final`."""
        found = self._view_ref(ref)
        if found is None:
            raise KeyError("final() needs a Deferred, an id or a label")
        return self.snapshot().final(found)

    def to_json(self, indent: int | None = 1) -> str:
        """The trace as JSON; see :meth:`Trace.to_json`."""
        return self.snapshot().to_json(indent=indent)

    def _view_trace(self) -> Trace:
        return self.snapshot()

    def _view_ref(self, ref: Any) -> Ref | None:
        if isinstance(ref, Deferred):
            return self.id_of(ref)
        return ref  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        state = "recording" if self._recording else ("stopped" if self._started else "idle")
        return f"<Tracer {state}: {len(self._recs)} Deferreds, {len(self._events)} events>"


def trace(
    *deferreds: Deferred[Any],
    all_threads: bool = False,
    clock: Callable[[], float] = time.perf_counter,
    live: bool = False,
) -> Tracer:
    """A new :class:`Tracer` to use in a ``with`` block; ``deferreds`` are watched too.

    ``with trace() as t:`` records every Deferred built in the block (and those linked to
    them); after the block ``t`` shows the diagram in a notebook, ``t.text()`` the text.
    ``with trace(live=True) as t:`` shows the diagram during the block, redrawn as
    Deferreds fire (see :mod:`.live`).
    """
    return Tracer(*deferreds, all_threads=all_threads, clock=clock, live=live)
