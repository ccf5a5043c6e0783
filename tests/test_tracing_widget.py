"""The step-through widget replays a trace event by event, and shows something useful
where widgets cannot run: the whole diagram and the numbered steps."""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet.defer import Deferred, race

from poetrylab.pictures import png_size
from poetrylab.tracing import simulate, trace
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


def test_each_frame_outlines_what_its_event_did() -> None:
    t = simulate("double, raise ValueError, recover")
    stepper = t.step_through()
    ran = [i for i, e in enumerate(stepper.events) if e.kind == "stage_ran"]
    stepper.go(ran[1])
    drawn = stepper._draw(stepper.current.seq).layout  # type: ignore[union-attr]
    lit = [b for b in drawn.boxes if b.keys & drawn.highlight and b.kind == "cell"]
    assert [(b.stage, b.side) for b in lit] == [(1, "callback")]


def test_where_widgets_cannot_run_it_shows_the_diagram_and_the_steps() -> None:
    t = simulate("double, recover")
    data, meta = t.step_through()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    width, height = png_size(base64.b64decode(data["image/png"]))
    assert (width // 2, height // 2) == (meta["image/png"]["width"], meta["image/png"]["height"])
    lines = data["text/plain"].splitlines()
    assert lines[0] == f"Step through {len(t.events)} events (buttons: first, prev, next, last):"
    assert lines[1] == "  1. d1: d1 = Deferred()"
    assert lines[-1] == f"{len(t.events):>3}. d1: stage 1 callback (passthru): 2 passes on"


def test_going_out_of_range_is_clamped_and_the_timeline_view_works() -> None:
    t = simulate("double")
    stepper = Stepper(t, view="timeline")
    stepper.go(999)
    assert stepper.current is t.events[-1]
    stepper.go(-5)
    assert stepper.index == 0
    assert png_size(bytes(stepper.picture.value))[0] > 0


def test_every_frame_of_a_trace_with_plumbing_draws() -> None:
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
        assert png_size(bytes(stepper.picture.value))[0] > 0
    assert "handed to the notebook: (0, 'Hope')" in stepper.lines
