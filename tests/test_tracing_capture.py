"""The tracer records exactly what real Deferreds did, in the canonical scenarios.

Each test runs a small chain on real Deferreds (fired by hand or by a ``task.Clock``;
no reactor, no sleeps) and asserts the recorded story, through the deterministic text
rendering or the structured data.
"""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import (
    AlreadyCalledError,
    CancelledError,
    Deferred,
    DeferredList,
    gatherResults,
    maybeDeferred,
    succeed,
)

from poetrylab.tracing import Tracer, trace
from poetrylab.tracing.examples import double, only_key_errors, recover, too_big


def story(text: str) -> str:
    return dedent(text).strip("\n")


def test_success_goes_straight_down_the_callbacks() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addErrback(recover)
        d.addCallback(str)
        d.callback(2)
    assert t.path(d) == [
        ("callback", "double", "returned"),
        ("callback", "passthru", "passed"),
        ("callback", "str", "returned"),
    ]
    assert t.text() == story("""
        d1 = Deferred()
          stage 0 added: double | (passthru)
          stage 1 added: (passthru) | recover
          stage 2 added: str | (passthru)
          fired: callback(2)
          stage 0 callback double: got 2, returned 4
          stage 1 callback (passthru): 4 passes on
          stage 2 callback str: got 4, returned '4'
          result: '4'
    """)


def test_a_raising_callback_crosses_to_the_errback_that_recovers() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addCallback(too_big)
        d.addErrback(recover)
        d.addCallback(str.upper)
        d.callback(3)
    assert t.text() == story("""
        d1 = Deferred()
          stage 0 added: double | (passthru)
          stage 1 added: too_big | (passthru)
          stage 2 added: (passthru) | recover
          stage 3 added: str.upper | (passthru)
          fired: callback(3)
          stage 0 callback double: got 3, returned 6
          stage 1 callback too_big: got 6, raised ValueError: 6 is too big
          stage 2 errback recover: got Failure(ValueError: 6 is too big), returned 'recovered'
          stage 3 callback str.upper: got 'recovered', returned 'RECOVERED'
          result: 'RECOVERED'
    """)
    runs = [e for e in t.snapshot().events if e.kind == "stage_ran"]
    assert runs[1].result is not None and runs[1].result.is_failure
    assert (runs[1].result.type, runs[1].result.text) == ("ValueError", "6 is too big")


def test_trap_lets_a_failure_it_does_not_match_pass_on() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(too_big)
        d.addErrback(only_key_errors)
        d.addErrback(recover)
        d.callback(7)
    assert t.path(d) == [
        ("callback", "too_big", "raised"),
        ("errback", "only_key_errors", "raised"),
        ("errback", "recover", "returned"),
    ]
    trapped = [e for e in t.snapshot().events if e.kind == "stage_ran"][1]
    assert trapped.value is not None and trapped.value.type == "ValueError"
    assert trapped.result is not None and trapped.result.type == "ValueError"


def test_implicit_pass_throughs_are_marked_and_recorded_when_they_run() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addErrback(recover)
        d.addCallbacks(double, recover)
        d.addBoth(str)
        d.errback(KeyError("k"))
    stages = t.snapshot().deferred(1).stages
    assert [(s.callback_implicit, s.errback_implicit) for s in stages] == [
        (False, True),
        (True, False),
        (False, False),
        (False, False),
    ]
    assert t.path(d) == [
        ("errback", "passthru", "passed"),
        ("errback", "recover", "returned"),
        ("callback", "double", "returned"),
        ("callback", "str", "returned"),
    ]


def test_firing_twice_records_the_rejected_second_firing() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        d.callback(1)
        with pytest.raises(AlreadyCalledError):
            d.callback(2)
    assert t.text() == story("""
        d1 = Deferred()
          stage 0 added: str | (passthru)
          fired: callback(1)
          stage 0 callback str: got 1, returned '1'
          callback(2) again: AlreadyCalledError
          result: '1'
    """)


def test_an_unfired_inner_deferred_pauses_the_outer_until_it_fires() -> None:
    with trace() as t:
        inner: Deferred[int] = Deferred()
        outer: Deferred[Any] = Deferred()
        outer.addCallback(lambda _: inner)
        outer.addCallback(double)
        inner.addCallback(double)
        outer.callback("go")
        inner.callback(5)
    t.label(inner, "inner")
    t.label(outer, "outer")
    assert t.text(view="events") == story("""
        inner  inner = Deferred()
        outer  outer = Deferred()
        outer  stage 0 added: lambda | (passthru)
        outer  stage 1 added: double | (passthru)
        inner  stage 0 added: double | (passthru)
        outer  fired: callback('go')
        outer  stage 0 callback lambda: got 'go', returned inner
        outer  paused: waiting on inner
        inner  fired: callback(5)
        inner  stage 0 callback double: got 5, returned 10
        outer  resumed with 10 from inner
        outer  stage 1 callback double: got 10, returned 20
    """)
    assert t.snapshot().final("inner").state == "handed"
    assert outer.result == 20


def test_an_already_fired_inner_deferred_gives_its_result_at_once() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(lambda _: succeed(4))
        d.addCallback(double)
        d.callback(None)
    kinds = [e.kind for e in t.snapshot().events_for(1)]
    assert "adopted" in kinds and "paused" not in kinds
    assert t.path(d)[-1] == ("callback", "double", "returned")
    assert d.result == 8


def test_callbacks_added_after_firing_run_at_once() -> None:
    with trace() as t:
        d = succeed(3)
        d.addCallback(double)
        later: Deferred[Any] = Deferred()
        later.callback(1)
        later.addCallback(double)
    assert t.text() == story("""
        d1 = succeed()
          already fired with 3 (fired at once by succeed())
          stage 0 added: double | (passthru)
          stage 0 callback double: got 3, returned 6
          result: 6
        d2 = Deferred()
          fired: callback(1)
          stage 0 added: double | (passthru)
          stage 0 callback double: got 1, returned 2
          result: 2
    """)


def test_maybe_deferred_on_a_value_an_exception_and_a_deferred() -> None:
    with trace() as t:
        value = maybeDeferred(lambda: 3)
        value.addCallback(double)
        error = maybeDeferred(lambda: 1 / 0)
        error.addErrback(recover)
        inner: Deferred[int] = Deferred()
        given = maybeDeferred(lambda: inner)
        given.addCallback(double)
        inner.callback(7)
    trace_ = t.snapshot()
    assert [i.made_by for i in trace_.deferreds] == [
        "maybeDeferred(lambda)",
        "maybeDeferred(lambda)",
        "Deferred()",
    ]
    assert given is inner
    assert t.path(value) == [("callback", "double", "returned")]
    assert t.path(error) == [("errback", "recover", "returned")]
    fired = [e for e in trace_.events if e.kind == "fired"]
    # a value and an exception are both "already fired" when maybeDeferred hands them over
    assert [(e.deferred, e.outcome) for e in fired] == [
        (1, "already"),
        (2, "already"),
        (3, "callback"),
    ]
    assert fired[1].value is not None and fired[1].value.type == "ZeroDivisionError"
    assert fired[1].detail == "fired at once by maybeDeferred()"


def test_deferred_list_with_consume_errors_records_each_member_contribution() -> None:
    with trace() as t:
        first: Deferred[int] = Deferred()
        second: Deferred[int] = Deferred()
        second.addCallback(too_big)
        both = DeferredList([first, second], consumeErrors=True)
        after: list[Any] = []
        second.addBoth(after.append)
        first.callback(1)
        second.callback(9)
    info = t.snapshot().deferred(3)
    assert info.kind == "DeferredList" and info.members == [1, 2]
    assert info.made_by == "DeferredList([d1, d2], consumeErrors=True)"
    gave = [
        (e.slot, e.outcome, e.value.describe())
        for e in t.snapshot().events_for(3)
        if e.kind == "member_result" and e.value
    ]
    assert gave == [(0, "success", "1"), (1, "failure", "Failure(ValueError: 9 is too big)")]
    assert after == [None]  # consumeErrors: later callbacks on the member see None
    assert t.path(second)[-2:] == [
        ("errback", "→ d3[1]", "returned"),
        ("callback", "list.append", "returned"),
    ]
    assert both.called


def test_deferred_list_fire_on_one_callback_fires_with_the_first_success() -> None:
    with trace() as t:
        slow: Deferred[str] = Deferred()
        fast: Deferred[str] = Deferred()
        DeferredList([slow, fast], fireOnOneCallback=True)
        fast.callback("fast")
        slow.callback("slow")
    assert t.text().splitlines()[-5:] == [
        "d3 = DeferredList([d1, d2], fireOnOneCallback=True)",
        "  member 1 (d2) gave 'fast'",
        "  fired: callback(('fast', 1))",
        "  member 0 (d1) gave 'slow'",
        "  result: ('fast', 1)",
    ]


def test_gather_results_fails_with_the_first_failure() -> None:
    with trace() as t:
        a: Deferred[int] = Deferred()
        b: Deferred[int] = Deferred()
        gathered = gatherResults([a, b], consumeErrors=True)
        gathered.addErrback(recover)
        a.callback(1)
        b.errback(ValueError("b broke"))
    info = t.snapshot().deferred(3)
    assert info.kind == "gatherResults"
    assert info.made_by == "gatherResults([d1, d2], consumeErrors=True)"
    assert [s.role for s in info.stages] == ["gather", "user"]
    fired = next(e for e in t.snapshot().events_for(3) if e.kind == "fired")
    assert fired.value is not None
    assert (fired.value.type, fired.value.text) == ("FirstError", "#1: ValueError: b broke")
    assert t.path(gathered) == [
        ("errback", "passthru", "passed"),
        ("errback", "recover", "returned"),
    ]


def test_cancel_without_a_canceller_errbacks_and_drops_the_late_result() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addErrback(lambda f: f.type.__name__)
        d.cancel()
        d.callback("late")
    assert t.text() == story("""
        d1 = Deferred()
          stage 0 added: (passthru) | lambda
          cancel() called
          fired by cancel(): errback(Failure(CancelledError))
          stage 0 errback lambda: got Failure(CancelledError), returned 'CancelledError'
          callback('late') ignored: it was cancelled, the late result is dropped
          result: 'CancelledError'
    """)


def test_cancel_with_a_canceller_records_that_the_canceller_fired_it() -> None:
    def stop(d: Deferred[Any]) -> None:
        d.callback("stopped")

    with trace() as t:
        d: Deferred[Any] = Deferred(stop)
        d.addCallback(str.upper)
        d.cancel()
    assert t.text() == story("""
        d1 = Deferred(stop)
          stage 0 added: str.upper | (passthru)
          cancel() called
          canceller stop called
          fired by cancel(): callback('stopped') from its canceller
          stage 0 callback str.upper: got 'stopped', returned 'STOPPED'
          result: 'STOPPED'
    """)
    assert t.snapshot().deferred(1).canceller == "stop"


def test_cancelling_an_outer_deferred_cancels_the_inner_it_waits_on() -> None:
    stopped: list[Any] = []
    with trace() as t:
        inner: Deferred[int] = Deferred(stopped.append)
        outer: Deferred[Any] = Deferred()
        outer.addCallback(lambda _: inner)
        outer.addErrback(lambda f: f.trap(CancelledError) and "cancelled")
        outer.callback(None)
        outer.cancel()
    assert stopped == [inner]
    cancels = [
        (e.deferred, e.outcome, e.other, e.detail)
        for e in t.snapshot().events
        if e.kind == "cancel"
    ]
    # outer (d2) is cancelled by the user while waiting; it cancels inner (d1)
    assert cancels == [(2, "user", None, "waiting"), (1, "deferred", 2, "pending")]
    assert t.path(outer) == [("callback", "lambda", "returned"), ("errback", "lambda", "returned")]
    assert outer.result == "cancelled"


def test_add_timeout_on_a_clock_records_the_timeout_and_the_cancel_it_causes() -> None:
    clock = task.Clock()
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addTimeout(5, clock)
        d.addErrback(lambda f: f.type.__name__)
        clock.advance(5)
    events = t.snapshot().events_for(1)
    assert [e.kind for e in events if e.kind not in ("stage_added", "stage_ran")] == [
        "created",
        "timeout_set",
        "cancel",
        "fired",
    ]
    assert next(e for e in events if e.kind == "cancel").outcome == "timeout"
    assert [s.role for s in t.snapshot().deferred(1).stages] == ["timeout", "timeout", "user"]
    assert t.path(d) == [
        ("errback", "to TimeoutError", "raised"),
        ("errback", "stop the timer", "returned"),
        ("errback", "lambda", "returned"),
    ]
    assert d.result == "TimeoutError"


def test_add_timeout_fired_in_time_stops_the_timer() -> None:
    clock = task.Clock()
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addTimeout(5, clock)
        clock.advance(1)
        d.callback("in time")
    assert clock.getDelayedCalls() == []
    assert [k for k, _, _ in [(s, n, o) for s, n, o in t.path(d)]] == ["callback", "callback"]
    assert "cancel" not in [e.kind for e in t.snapshot().events]


def test_inline_callbacks_generator_steps_record_each_yield_and_what_came_back() -> None:
    waiting: list[Deferred[int]] = []

    def later() -> Deferred[int]:
        d: Deferred[int] = Deferred()
        waiting.append(d)
        return d

    @defer.inlineCallbacks
    def add_two():  # type: ignore[no-untyped-def]
        x = yield later()
        y = yield later()
        return x + y

    with trace() as t:
        result = add_two()
        waiting[0].callback(1)
        waiting[1].callback(2)
    assert t.text().splitlines()[:6] == [
        "d1 = add_two()",
        "  started → yields d2",
        "  got 1 → yields d3",
        "  got 2 → returned 3",
        "  fired: callback(3)",
        "  result: 3",
    ]
    steps = [e for e in t.snapshot().events_for(1) if e.kind == "step"]
    assert [e.other for e in steps] == [2, 3, None]
    assert [s.role for s in t.snapshot().deferred(2).stages] == ["inline"]
    assert result.result == 3


def test_a_coroutine_whose_await_fails_records_the_exception_thrown_in() -> None:
    waiting: list[Deferred[int]] = []

    def later() -> Deferred[int]:
        d: Deferred[int] = Deferred()
        waiting.append(d)
        return d

    async def fetch_two() -> int:
        x = await later()
        y = await later()
        return x + y

    with trace() as t:
        result = defer.ensureDeferred(fetch_two())
        result.addErrback(recover)
        waiting[0].callback(1)
        waiting[1].errback(ConnectionError("server went away"))
    steps = [e for e in t.snapshot().events_for(1) if e.kind == "step"]
    assert [(e.side, e.outcome) for e in steps] == [
        ("send", "yielded"),
        ("send", "yielded"),
        ("throw", "raised"),
    ]
    assert steps[2].value is not None and steps[2].value.type == "ConnectionError"
    assert t.snapshot().deferred(1).kind == "coroutine"
    assert t.path(result) == [("errback", "recover", "returned")]
    assert "ConnectionError raised at the await, not caught" in t.text()


def test_cancelling_an_inline_callbacks_deferred_cancels_what_it_waits_on() -> None:
    waiting: Deferred[int] = Deferred()

    @defer.inlineCallbacks
    def wait_forever():  # type: ignore[no-untyped-def]
        yield waiting

    with trace() as t:
        d = wait_forever()
        d.addErrback(lambda f: f.type.__name__)
        d.cancel()
    cancels = [(e.deferred, e.outcome, e.other) for e in t.snapshot().events if e.kind == "cancel"]
    # the generator's Deferred (d1) is cancelled; it cancels what it waits on (d2)
    assert cancels == [(1, "user", None), (2, "deferred", 1)]
    assert t.snapshot().deferred(2).origin == "awaited"
    assert "canceller stop the generator called" in t.text()
    assert d.result == "CancelledError"


def test_watch_records_callbacks_added_afterwards_but_not_before() -> None:
    d: Deferred[int] = Deferred()
    d.addCallback(lambda x: x * 10)  # before: not seen
    with trace() as t:
        t.watch(d, label="given")
        d.addCallback(lambda x: x + 1)
        d.callback(1)
    info = t.snapshot().deferred("given")
    assert info.origin == "watched" and len(info.stages) == 1
    assert t.path(d) == [("callback", "lambda", "returned")]
    ran = next(e for e in t.snapshot().events if e.kind == "stage_ran")
    assert ran.value is not None and ran.value.text == "10"  # the unseen stage's result


def test_watching_an_already_fired_deferred_records_its_current_result() -> None:
    d = succeed("done")
    with trace(d) as t:
        pass
    fired = next(e for e in t.snapshot().events if e.kind == "fired")
    assert (fired.outcome, fired.value.text if fired.value else None) == ("already", "'done'")


def test_deferreds_made_before_the_block_are_not_traced_unless_linked() -> None:
    outside: Deferred[int] = Deferred()
    with trace() as t:
        outside.addCallback(double)
        inside: Deferred[Any] = Deferred()
        inside.addCallback(lambda _: outside)
        inside.callback(None)
        outside.callback(2)
    info = t.snapshot().deferred(2)
    assert (info.origin, info.parent) == ("inner", 1)
    assert t.path(outside) == []  # its stage was added before it was linked
    assert t.snapshot().final(1).value is not None


def test_chain_deferred_links_the_target() -> None:
    with trace() as t:
        source: Deferred[int] = Deferred()
        target: Deferred[int] = Deferred()
        source.chainDeferred(target)
        source.callback(4)
    stage = t.snapshot().deferred(1).stages[0]
    assert (stage.callback, stage.errback, stage.role) == ("d2.callback", "d2.errback", "chain")
    assert target.result == 4


def test_every_event_has_a_time_and_a_thread() -> None:
    ticks = iter(range(1000))
    with Tracer(clock=lambda: float(next(ticks))) as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.callback(1)
    events = t.snapshot().events
    assert all(e.thread == "MainThread" for e in events)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert all(e.time >= 0 for e in events)
    times = [e.time for e in events]
    assert times == sorted(times)
