"""Traced Deferreds fired in other threads, and the crochet reactor thread."""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet.defer import Deferred

from poetrylab.tracing import trace


def test_deferreds_fired_in_the_reactor_thread_are_recorded_with_its_name(
    in_reactor: Any,
) -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(lambda x: x * 2)
        in_reactor(d.callback, 21)
    assert d.result == 42
    threads = {e.kind: e.thread for e in t.snapshot().events}
    assert threads["created"] == "MainThread"
    assert threads["fired"] != "MainThread"
    assert threads["stage_ran"] == threads["fired"]
    assert t.path(d) == [("callback", "lambda", "returned")]


def make() -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    d.addCallback(str)
    d.callback(1)
    return d


def test_work_a_traced_block_hands_to_the_reactor_thread_is_traced(in_reactor: Any) -> None:
    # the runtime runs what a cell hands over in a copy of the cell's context
    with trace() as t:
        d = in_reactor(make)
    assert [i.made_by for i in t.snapshot().deferreds][:1] == ["Deferred()"]
    assert t.snapshot().deferred(1).thread != "MainThread"
    assert d == "1"


def test_other_work_in_the_reactor_thread_needs_all_threads(reactor: Any) -> None:
    def made_in_the_reactor() -> list[Deferred[Any]]:
        made: list[Deferred[Any]] = []
        done = threading.Event()

        def run() -> None:
            made.append(make())
            done.set()

        reactor.callFromThread(run)  # runs in the reactor's own context, not the block's
        assert done.wait(10), "the reactor thread did not run the call within 10 s"
        return made

    with trace() as mine:
        made_in_the_reactor()
    with trace(all_threads=True) as everyone:
        made_in_the_reactor()
    assert mine.snapshot().deferreds == []
    assert [i.made_by for i in everyone.snapshot().deferreds][:1] == ["Deferred()"]


def test_many_threads_firing_at_once_lose_no_events() -> None:
    count = 8
    stages = 50
    start = threading.Barrier(count)
    with trace() as t:
        deferreds = []
        for _ in range(count):
            d: Deferred[int] = Deferred()
            for _ in range(stages):
                d.addCallback(lambda x: x + 1)
            deferreds.append(d)

        def fire(d: Deferred[int]) -> None:
            start.wait(timeout=10)
            d.callback(0)

        threads = [threading.Thread(target=fire, args=(d,)) for d in deferreds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert [d.result for d in deferreds] == [stages] * count
    events = t.snapshot().events
    assert sorted(e.seq for e in events) == list(range(len(events)))
    runs = [e for e in events if e.kind == "stage_ran"]
    assert len(runs) == count * stages
    assert len({e.thread for e in runs}) == count
    for d in deferreds:
        assert len(t.path(d)) == stages
