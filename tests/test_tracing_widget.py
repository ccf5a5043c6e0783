"""The step-through widget replays a trace event by event."""

from __future__ import annotations

from poetrylab.tracing import simulate
from poetrylab.tracing.widget import Stepper


def test_the_buttons_move_through_every_event() -> None:
    t = simulate("double, raise ValueError, recover")
    stepper = t.step_through()
    assert isinstance(stepper, Stepper)
    assert stepper.index == 0 and stepper.buttons["prev"].disabled
    first_picture = stepper.picture.value
    stepper.buttons["next"].click()
    assert stepper.index == 1
    assert stepper.picture.value != first_picture
    stepper.buttons["last"].click()
    assert stepper.index == len(t.events) - 1 and stepper.buttons["next"].disabled
    assert "recover" in stepper.caption.value
    stepper.buttons["prev"].click()
    assert stepper.index == len(t.events) - 2
    stepper.buttons["first"].click()
    assert stepper.index == 0
    assert "step 1 /" in stepper.caption.value


def test_going_out_of_range_is_clamped_and_the_timeline_view_works() -> None:
    t = simulate("double")
    stepper = Stepper(t, view="timeline")
    stepper.go(999)
    assert stepper.current is t.events[-1]
    stepper.go(-5)
    assert stepper.index == 0
    assert "<svg" in stepper.picture.value


def test_every_frame_of_a_trace_with_plumbing_draws() -> None:
    from typing import Any

    from twisted.internet.defer import Deferred, race

    from poetrylab.tracing import trace

    def hand_over(result: Any) -> None:
        return None

    hand_over.__module__ = "poetrylab.runtime._waits"
    members: list[Deferred[str]] = [Deferred(), Deferred()]
    for d in members:
        d.addCallback(str.strip)  # added before tracing
    with trace() as t:
        for d in members:
            t.watch(d)
        first = race(members)
        first.addBoth(hand_over)
        members[0].callback(" Hope ")
    stepper = t.step_through(t.id_of(first))
    for i in range(len(stepper.events)):
        stepper.go(i)
        assert "<svg" in stepper.picture.value
    assert "handed to the notebook: (0, 'Hope')" in stepper._lines
