"""Work a traced cell hands to another thread with its context is traced without watch():
the tracer keeps "which tracers are active here" in a ContextVar, and the notebook runtime
runs what a cell hands to the reactor thread in a copy of the cell's context."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from poetrylab.tracing import trace
from poetrylab.tracing._patches import ACTIVE


def in_thread(fn: Callable[[], Any], context: contextvars.Context | None = None) -> Any:
    """Run ``fn`` in a new thread (in ``context`` if given); wait for it (10 s at most)."""
    out: list[Any] = []
    worker = threading.Thread(
        target=lambda: out.append(context.run(fn) if context is not None else fn())
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the worker thread did not finish within 10 s"
    return out[0]


def work() -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.addCallback(str.upper)
    d.callback("hope")
    return d


def test_deferreds_made_in_a_thread_running_the_blocks_context_are_traced() -> None:
    with trace() as t:
        d = in_thread(work, contextvars.copy_context())
    assert t.path(d) == [("callback", "str.upper", "returned")]
    assert t.snapshot().deferred(1).thread != "MainThread"


def test_without_the_context_another_thread_is_not_traced() -> None:
    with trace() as t:
        in_thread(work)
    assert t.snapshot().deferreds == []


def test_generator_steps_run_in_that_context_are_traced_too() -> None:
    pending: Deferred[Any] = Deferred()

    @defer.inlineCallbacks
    def gen():  # type: ignore[no-untyped-def]
        x = yield pending
        return x + 1

    with trace() as t:
        result = in_thread(gen, contextvars.copy_context())
        pending.callback(1)
    assert result.result == 2
    assert [e.kind for e in t.snapshot().events_for(1) if e.kind == "step"] == ["step", "step"]


def test_the_context_forgets_the_tracer_when_the_block_ends() -> None:
    with trace() as t:
        assert t in ACTIVE.get()
        inside = contextvars.copy_context()
    assert t not in ACTIVE.get()
    in_thread(work, inside)  # a context copied inside: the tracer has stopped anyway
    assert t.snapshot().deferreds == []


def test_a_tracer_started_and_stopped_in_different_contexts_leaves_none_behind() -> None:
    t = trace()
    contextvars.copy_context().run(t.start)
    t.stop()
    assert t not in ACTIVE.get()
