"""Plumbing is drawn as plumbing: the runtime's hand-over, stages added before tracing,
race() and its cancels, Deferreds fired at once by succeed/fail/maybeDeferred.

Each test runs real Deferreds fired by hand (the runtime test uses the reactor thread,
through the session's ``in_reactor`` fixture) and checks the trace, the text and the
labels the diagram draws.
"""

from __future__ import annotations

import threading
from typing import Any

from matplotlib.text import Text
from twisted.internet.defer import (
    Deferred,
    fail,
    maybeDeferred,
    race,
    succeed,
)

from poetrylab.tracing import Tracer, trace


def drawn_text(drawing: Any) -> list[str]:
    """Every label the diagram draws, as drawn (checked against the painted figure)."""
    texts = drawing.layout.texts()
    painted = {t.get_text() for t in drawing.figure.findobj(Text) if t.get_text()}
    assert set(texts) <= painted
    return texts


def hand_over(result: Any) -> None:
    """Stands in for the runtime's stage: takes the result, leaves None behind."""
    return None


hand_over.__module__ = "poetrylab.runtime._waits"  # what makes a stage the runtime's


def first_line(text: str) -> str:
    return text.splitlines()[0]


# -- 1. the runtime's own stage ------------------------------------------------------------
def test_a_runtime_stage_is_plumbing_and_the_result_is_what_the_chain_produced() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(first_line)
        d.addCallback(str.upper)
        d.addBoth(hand_over)
        d.callback("Tyger Tyger\nburning bright")
    trace_ = t.snapshot()
    info = trace_.deferred(1)
    assert [s.role for s in info.stages] == ["user", "user", "runtime"]
    assert t.path(d) == [
        ("callback", "first_line", "returned"),
        ("callback", "str.upper", "returned"),
    ]
    final = trace_.final(1)
    assert final.to_notebook and final.value is not None
    assert final.value.text == "'TYGER TYGER'"
    text = t.text()
    assert "handed to the notebook: 'TYGER TYGER'" in text
    assert text.splitlines()[-1] == "  result: 'TYGER TYGER' (handed to the notebook)"
    labels = drawn_text(t.diagram())
    assert "hand_over" not in " ".join(labels)
    assert "result None" not in labels
    assert "result 'TYGER TYGER'" in labels
    assert "↳ handed to the notebook" in labels
    assert t.diagram().title == "d1: callback('Tyger Tyger\\nburning bright') → 'TYGER TYGER'"


def test_a_failure_handed_to_the_runtime_is_not_called_recovered() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(first_line)
        d.addBoth(hand_over)
        d.callback("")
    labels = drawn_text(t.diagram())
    assert not any("recovered" in label for label in labels)
    assert any(label.startswith("failed: ✗ IndexError") for label in labels)
    assert "↳ handed to the notebook, raised in the cell" in labels
    assert t.snapshot().final(1).value.is_failure  # type: ignore[union-attr]


def test_runtime_call_adds_a_stage_the_trace_shows_as_the_hand_over(in_reactor: Any) -> None:
    with trace(all_threads=True) as t:

        def fetch() -> Deferred[str]:
            d: Deferred[str] = Deferred()
            t.watch(d, "poem")
            d.addCallback(first_line)
            from twisted.internet import reactor

            reactor.callLater(0, d.callback, "Hope is the thing\nwith feathers")  # type: ignore[attr-defined]
            return d

        assert in_reactor(fetch) == "Hope is the thing"
    trace_ = t.snapshot()
    info = trace_.deferred("poem")
    assert [s.role for s in info.stages] == ["user", "runtime"]
    assert trace_.path("poem") == [("callback", "first_line", "returned")]
    assert trace_.final("poem").value.text == "'Hope is the thing'"  # type: ignore[union-attr]
    assert trace_.final("poem").to_notebook


# -- 2. stages added before tracing ----------------------------------------------------------
class Protocol:
    """Like a client's protocol: connected first, the poem comes later."""

    def __init__(self) -> None:
        self.finished: Deferred[str] = Deferred()


def test_a_watched_deferred_with_earlier_stages_records_what_came_out_of_them() -> None:
    now = [0.0]
    connecting: Deferred[Any] = Deferred()
    connecting.addCallback(lambda protocol: protocol.finished)  # added before tracing
    protocol = Protocol()
    with Tracer(clock=lambda: now[0]) as t:
        t.watch(connecting, "get_poem")
        connecting.addCallback(first_line)
        now[0] = 1.0
        connecting.callback(protocol)  # connected: nothing the traced part sees yet
        assert [e.kind for e in t.snapshot().events if e.kind == "fired"] == []
        now[0] = 3.0
        protocol.finished.callback("Tyger Tyger\nburning bright")
    trace_ = t.snapshot()
    assert trace_.deferred("get_poem").untraced
    # the earlier stage returned the protocol's Deferred: the chain waited on it, unseen
    assert [e.kind for e in trace_.events_for("get_poem") if e.kind in ("paused", "resumed")] == [
        "paused",
        "resumed",
    ]
    fired = [e for e in trace_.events_for("get_poem") if e.kind == "fired"]
    assert len(fired) == 1
    assert fired[0].outcome == "untraced"
    assert fired[0].value is not None and fired[0].value.text == "'Tyger Tyger\\nburning bright'"
    assert fired[0].time == 3.0  # when the poem came, not when the connection was made
    ran = next(e for e in trace_.events if e.kind == "stage_ran")
    assert ran.value == fired[0].value
    assert "earlier stages (not traced) passed on 'Tyger Tyger\\nburning bright'" in t.text()
    labels = drawn_text(t.diagram())
    assert "(earlier stages not traced)" in labels or any(
        label.startswith("(earlier stages not traced)") for label in labels
    )
    assert any(label.startswith("'Tyger Tyger") for label in labels)  # into first_line
    assert not any("Protocol" in label for label in labels)


def test_earlier_stages_that_fail_hand_their_failure_to_the_traced_errback() -> None:
    d: Deferred[Any] = Deferred()
    d.addCallback(lambda _: 1 / 0)
    with trace() as t:
        t.watch(d)
        d.addErrback(lambda f: "recovered")
        d.callback("x")
    fired = [e for e in t.snapshot().events if e.kind == "fired"]
    assert [(e.outcome, e.value.type) for e in fired] == [  # type: ignore[union-attr]
        ("untraced", "ZeroDivisionError")
    ]
    assert t.path(d) == [("errback", "lambda", "returned")]


def test_a_deferred_paused_in_earlier_stages_when_watched_counts_as_untraced() -> None:
    inner: Deferred[str] = Deferred()
    outer: Deferred[Any] = Deferred()
    outer.addCallback(lambda _: inner)
    outer.callback("go")  # now paused on inner, in a stage the tracer never saw
    with trace() as t:
        t.watch(outer, "outer")
        outer.addCallback(str.upper)
        inner.callback("late")
    trace_ = t.snapshot()
    assert trace_.deferred("outer").untraced
    assert [(e.outcome, e.value.text) for e in trace_.events if e.kind == "fired"] == [  # type: ignore[union-attr]
        ("untraced", "'late'")
    ]
    assert trace_.final("outer").value.text == "'LATE'"  # type: ignore[union-attr]


def test_a_watched_deferred_with_nothing_left_to_run_is_already_fired_as_before() -> None:
    d: Deferred[Any] = Deferred()
    d.addCallback(str.upper)
    d.callback("x")
    with trace() as t:
        t.watch(d)
        d.addCallback(len)
    trace_ = t.snapshot()
    assert not trace_.deferred(1).untraced
    fired = next(e for e in trace_.events if e.kind == "fired")
    assert (fired.outcome, fired.value.text) == ("already", "'X'")  # type: ignore[union-attr]


# -- 5. succeed, fail and maybeDeferred tell the same story ------------------------------
def test_succeed_fail_and_maybe_deferred_are_all_already_fired() -> None:
    with trace() as t:
        ok = succeed("x")
        ok.addCallback(str.upper)
        bad = fail(KeyError("k"))
        bad.addErrback(lambda f: None)
        raised = maybeDeferred(lambda: 1 / 0)
        raised.addErrback(lambda f: None)
    fired = [e for e in t.snapshot().events if e.kind == "fired"]
    assert [(e.outcome, e.detail) for e in fired] == [
        ("already", "fired at once by succeed()"),
        ("already", "fired at once by fail()"),
        ("already", "fired at once by maybeDeferred()"),
    ]
    labels = drawn_text(t.diagram())
    assert "already fired: callback('x')" in labels
    assert "already fired: errback(KeyError: 'k')" in labels
    assert any(label.startswith("already fired: errback(ZeroDiv") for label in labels)
    assert not any(label.startswith("errback(") for label in labels)


# -- 5. race() -----------------------------------------------------------------------------
def test_race_is_linked_to_its_members_and_the_winner_cancels_the_others() -> None:
    with trace() as t:
        members: list[Deferred[str]] = [Deferred(lambda d: None) for _ in range(3)]
        for d, name in zip(members, ["steady", "quick", "slow"], strict=True):
            t.label(d, name)
        first = race(members)
        t.label(first, "first")
        members[1].callback("Hope")
    trace_ = t.snapshot()
    info = trace_.deferred("first")
    assert info.kind == "race"
    assert info.made_by == "race([steady, quick, slow])"
    assert [trace_.labels[m] for m in info.members] == ["steady", "quick", "slow"]
    gave = [(e.slot, e.outcome) for e in trace_.events_for("first") if e.kind == "member_result"]
    assert gave == [(1, "success"), (0, "failure"), (2, "failure")]
    cancels = [e for e in trace_.events if e.kind == "cancel"]
    assert [(trace_.labels[e.deferred], e.outcome, e.other) for e in cancels] == [
        ("steady", "deferred", info.id),
        ("slow", "deferred", info.id),
    ]
    assert "  cancel() called by first" in t.text().splitlines()
    assert trace_.final("first").value.text == "(1, 'Hope')"  # type: ignore[union-attr]
    drawing = t.diagram("first")
    assert drawing.title == "first: race of 3 → (1, 'Hope')"
    assert drawn_text(drawing).count("⇡ cancelled by first") == 2


def test_cancelling_a_race_cancels_every_member_by_the_race() -> None:
    with trace() as t:
        members: list[Deferred[str]] = [Deferred(), Deferred()]
        either = race(members)
        either.addErrback(lambda f: "gave up")  # every member failed: a FailureGroup
        either.cancel()
    trace_ = t.snapshot()
    race_id = t.id_of(either)
    by = [(e.deferred, e.outcome, e.other) for e in trace_.events if e.kind == "cancel"]
    assert by == [
        (race_id, "user", None),
        (t.id_of(members[0]), "deferred", race_id),
        (t.id_of(members[1]), "deferred", race_id),
    ]
    assert either.result == "gave up"


def test_a_race_made_in_another_thread_is_traced_because_its_members_are() -> None:
    a: Deferred[int] = Deferred()
    b: Deferred[int] = Deferred()
    made: list[Deferred[Any]] = []
    with trace() as t:
        t.watch(a, "a")
        t.watch(b, "b")
        worker = threading.Thread(target=lambda: made.append(race([a, b])))
        worker.start()
        worker.join(timeout=10)
        b.callback(2)
    info = t.snapshot().deferred(t.id_of(made[0]))
    assert (info.kind, info.made_by) == ("race", "race([a, b])")
    assert made[0].result == (1, 2)
