"""The diagram's layout says what the picture shows: which box, which side, which arrow,
which lane, in what order -- so a wrong picture fails here, without reading a pixel.

Each test lays out a real trace (``poetrylab.tracing.layout.layout``) and asserts on the
plain data: cells by stage and side, arrows by kind and end points, frames containing
frames, labels that fit and do not overlap, a legend that lists every mark used.
"""

from __future__ import annotations

import itertools
from itertools import combinations
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import CancelledError, Deferred, DeferredList, gatherResults

from poetrylab.tracing import Trace, simulate, trace
from poetrylab.tracing._style import DISPLAY_WIDTH, PX, SLIDE_HEIGHT
from poetrylab.tracing.examples import EXAMPLES
from poetrylab.tracing.layout import GUTTER, LEGEND, Box, Label, Layout, iter_text_boxes, layout

SEVEN = "add 1, recover 0, raise ValueError, double, recover 10, add 1, double"


def arrow_into(drawn: Layout, box: Box) -> list[Any]:
    """The path arrows that end on ``box`` (its top, or its inner edge when crossing)."""
    out = []
    for a in drawn.arrows:
        if a.kind not in ("path", "cross", "resume"):
            continue
        x, y = a.end
        if box.x - 1 <= x <= box.right + 1 and box.y - 1 <= y <= box.bottom + 1:
            out.append(a)
    return out


def overlapping_text(drawn: Layout) -> list[tuple[str, str]]:
    boxes = list(iter_text_boxes(drawn))
    return [(a, b) for (a, box_a), (b, box_b) in combinations(boxes, 2) if box_a.overlaps(box_b)]


def outside(drawn: Layout) -> list[str]:
    picture = Box("picture", 0, 0, drawn.width, drawn.height)
    out = [b.kind for b in drawn.boxes if not picture.contains(b)]
    out += [text for text, box in iter_text_boxes(drawn) if not picture.contains(box)]
    return out


# -- the seven-stage chain of notebook 04 ------------------------------------------------------
@pytest.fixture(scope="module")
def seven() -> Trace:
    return simulate(SEVEN, fire="callback(1)", predict="c c c c c c c")


def test_the_seven_stage_chain_fits_one_16_9_slide(seven: Trace) -> None:
    drawn = layout(seven)
    assert drawn.width <= DISPLAY_WIDTH and drawn.height <= SLIDE_HEIGHT


def test_exactly_the_side_that_ran_is_lit_in_every_stage(seven: Trace) -> None:
    drawn = layout(seven)
    ran = {(e.stage, e.side) for e in seven.events if e.kind == "stage_ran"}
    for stage in seven.deferred(1).stages:
        for side in ("callback", "errback"):
            assert drawn.cell(1, stage.id, side).ran == ((stage.id, side) in ran), (stage, side)


def test_callbacks_are_on_the_left_and_errbacks_on_the_right(seven: Trace) -> None:
    drawn = layout(seven)
    for stage in seven.deferred(1).stages:
        left, right = drawn.cell(1, stage.id, "callback"), drawn.cell(1, stage.id, "errback")
        assert left.right < right.x and left.y == right.y
        assert (left.style, right.style) in (
            ("callback", "errback"),
            ("passthru", "errback"),
            ("callback", "passthru"),
        )
    headers = {label.text: label.x for label in drawn.labels if label.kind == "header"}
    assert headers["callbacks ↓"] < headers["↓ errbacks"]


def test_rows_go_down_in_chain_order(seven: Trace) -> None:
    drawn = layout(seven)
    ys = [drawn.cell(1, stage.id, "callback").y for stage in seven.deferred(1).stages]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


def test_every_cell_that_ran_has_one_arrow_into_it_and_the_path_crosses_where_it_changed(
    seven: Trace,
) -> None:
    drawn = layout(seven)
    for e in seven.events:
        if e.kind == "stage_ran":
            assert len(arrow_into(drawn, drawn.cell(1, e.stage, e.side))) == 1, e  # type: ignore[arg-type]
    crossings = [a for a in drawn.arrows_of("cross")]
    # stage 2 raised (callbacks → errbacks), stage 4 recovered (errbacks → callbacks)
    assert [(a.start[0] < a.end[0]) for a in crossings] == [True, False]
    assert crossings[0].label.startswith("✗ ValueError")
    assert crossings[1].label == "10"
    ends = [a.end[1] for a in drawn.arrows_of(deferred=1) if a.kind in ("path", "cross")]
    assert ends == sorted(ends)  # drawn top to bottom, in the order the result went


def test_the_result_and_the_firing_are_where_their_values_belong(seven: Trace) -> None:
    drawn = layout(seven)
    (fire,) = drawn.boxes_of("fire")
    (result,) = drawn.boxes_of("result")
    assert (fire.side, fire.text) == ("callback", "callback(1)")
    assert (result.side, result.text) == ("callback", "result 22")
    assert result.y > max(b.bottom for b in drawn.boxes_of("cell"))
    failing = simulate("raise KeyError", fire="callback(1)")
    (result,) = layout(failing).boxes_of("result")
    assert (result.side, result.style) == ("errback", "failure")
    assert result.text.startswith("unhandled ✗ KeyError")


def test_the_notes_say_what_to_look_at(seven: Trace) -> None:
    drawn = layout(seven)
    assert drawn.notes[0] == "you predicted C C C C C C C, it went C C C E E C C: not quite ✗"
    assert "stage 2: raise ValueError raised → errbacks" in drawn.notes
    assert "stage 4: recover 10 recovered → callbacks" in drawn.notes


# -- inner Deferreds -------------------------------------------------------------------------------
def test_an_inner_deferred_is_drawn_inside_right_after_the_stage_that_returned_it() -> None:
    t = EXAMPLES["inner_deferred"]()
    drawn = layout(t)
    outer, inner = drawn.frame(2), drawn.frame(1)
    assert outer.contains(inner)
    fetch = drawn.cell(2, 0, "callback")
    double = drawn.cell(2, 1, "callback")
    assert fetch.bottom < inner.y and inner.bottom < double.y
    (wait,) = drawn.arrows_of("wait", deferred=2)
    assert wait.label == "paused: waits on d1" and wait.start[1] == fetch.bottom
    (resume,) = drawn.arrows_of("resume", deferred=2)
    assert resume.label == "resumed: 'recovered'" and resume.end[1] == double.y


def test_an_inner_deferreds_title_is_whole_and_says_which_chain_returned_it() -> None:
    for name in ("first download", "the first download of the very long poem"):
        inner: Deferred[str] = Deferred()
        with trace() as t:
            outer: Deferred[int] = Deferred()
            t.label(outer, name)
            outer.addCallback(lambda _, inner=inner: inner)
            outer.callback(1)
            drawn = layout(t.snapshot(), t.id_of(outer))
            labels = [lb for lb in drawn.labels if lb.deferred == t.id_of(inner)]
        titles = [lb.text for lb in labels if lb.kind == "block"]
        notes = [lb.text for lb in labels if lb.kind == "info"]
        # the title is never cut to make room for the note; the note is whole or gone
        assert titles == ["d2 = Deferred()"]
        assert notes in ([f"returned by a stage of {name}"], ["returned by a stage"])
        inner.callback("tyger")


def test_one_inner_shared_by_two_chains_is_drawn_once_and_its_hand_offs_agree() -> None:
    with trace() as t:
        shared: Deferred[Any] = Deferred()
        first: Deferred[Any] = Deferred()
        second: Deferred[Any] = Deferred()
        for d in (first, second):
            d.addCallback(lambda _: shared)
            d.addCallback(repr)
        t.label(shared, "shared")
        t.label(first, "first")
        t.label(second, "second")
        first.callback(1)
        second.callback(2)
        shared.callback("poem")
    drawn = layout(t.snapshot())
    frames = [b for b in drawn.boxes_of("frame") if b.deferred == t.id_of(shared)]
    assert len(frames) == 1 and drawn.frame(t.id_of(first)).contains(frames[0])
    (stub,) = drawn.boxes_of("stub")
    assert stub.deferred == t.id_of(second) and stub.text == "waits on shared (inside first)"
    labels = [a.label for a in drawn.arrows_of("resume")]
    assert labels == ["resumed: 'poem'", "resumed: None"]  # Twisted hands None to the second
    assert overlapping_text(drawn) == []


def test_a_chain_waiting_on_itself_has_an_arrow_back_to_itself() -> None:
    import warnings

    with warnings.catch_warnings(), trace() as t:
        warnings.simplefilter("ignore")
        d: Deferred[Any] = Deferred()
        d.addCallback(lambda _: d)
        d.callback(1)
    drawn = layout(t.snapshot())
    (arrow,) = drawn.arrows_of("self")
    assert arrow.end[1] < drawn.cell(1, 0, "callback").y  # back up, to the top
    assert "waits forever" in arrow.label


# -- lists ----------------------------------------------------------------------------------------
def test_a_member_callback_added_after_the_list_is_drawn_after_what_it_gave() -> None:
    with trace() as t:
        a: Deferred[Any] = Deferred()
        b: Deferred[Any] = Deferred()
        a.addCallback(str.upper)
        dl = DeferredList([a, b])
        a.addCallback(len)  # after the list: it sees what the list's hook passed on
        a.callback("x")
        b.callback("y")
    drawn = layout(t.snapshot(), t.id_of(dl))
    aid = t.id_of(a)
    (gave,) = [g for g in drawn.boxes_of("gave") if g.deferred == aid]
    before = drawn.cell(aid, 0, "callback")
    later = [c for c in drawn.boxes_of("cell", deferred=aid) if c.text == "len"][0]
    assert before.bottom < gave.y < later.y
    (member,) = [m for m in drawn.arrows_of("member") if m.deferred == aid]
    assert member.start[1] == pytest.approx(gave.center[1])  # it leaves at the hand-over
    assert member.end[1] == drawn.boxes_of("fire", deferred=t.id_of(dl))[0].y


def test_a_gather_inside_a_deferred_list_stays_inside_its_lane() -> None:
    with trace() as t:
        a: Deferred[Any] = Deferred()
        b: Deferred[Any] = Deferred()
        c: Deferred[Any] = Deferred()
        g = gatherResults([a, b])
        a.addCallback(str)
        dl = DeferredList([g, c])
        for d in (a, b, c):
            d.callback(1)
    drawn = layout(t.snapshot())
    gather, lane_c = drawn.frame(t.id_of(g)), drawn.frame(t.id_of(c))
    assert drawn.frame(t.id_of(dl)).contains(gather)
    assert not gather.overlaps(lane_c)
    for member in (a, b):
        assert gather.contains(drawn.frame(t.id_of(member)))
    assert overlapping_text(drawn) == [] and outside(drawn) == []


def test_forty_members_wrap_into_rows_of_chips_no_wider_than_the_display() -> None:
    with trace() as t:
        members = [Deferred() for _ in range(40)]
        dl = DeferredList(members, consumeErrors=True)
        for i, m in enumerate(members):
            m.callback(i)
    drawn = layout(t.snapshot())
    assert drawn.width <= DISPLAY_WIDTH and drawn.height <= 2 * SLIDE_HEIGHT
    chips = [b for b in drawn.boxes_of("gave")]
    assert len(chips) == 40 and len({c.y for c in chips}) >= 3
    assert not any(a.overlaps(b) for a, b in combinations(chips, 2))
    assert [c.text.split(":")[0] for c in sorted(chips, key=lambda c: (c.y, c.x))] == [
        f"d{i}" for i in range(1, 41)
    ]  # in order, row by row
    assert len(drawn.arrows_of("member")) == 40
    assert drawn.frame(t.id_of(dl)).contains(drawn.boxes_of("fire")[0])


def test_a_race_names_who_cancelled_the_losers() -> None:
    drawn = layout(EXAMPLES["race_first"]())
    cancelled = [label for label in drawn.labels if label.text == "⇡ cancelled by d4"]
    assert len(cancelled) == 2
    assert "cancel" in drawn.legend


# -- generators and coroutines ------------------------------------------------------------------
def loop_of(n: int) -> Trace:
    pending: list[Deferred[Any]] = []

    def fetch() -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        pending.append(d)
        return d

    @defer.inlineCallbacks
    def loop():  # type: ignore[no-untyped-def]
        total = 0
        for _ in range(n):
            total += yield fetch()
        return total

    with trace() as t:
        loop()
        while pending:
            pending.pop(0).callback(1)
    return t.snapshot()


def test_sixty_steps_alike_fold_into_one_line_and_unfold_on_request() -> None:
    t = loop_of(60)
    drawn = layout(t)
    (fold,) = drawn.boxes_of("fold")
    assert "× 60 in all" in fold.text and "58 more steps" in fold.text
    assert len(drawn.boxes_of("step")) == 3  # the first, the last, and the return
    assert drawn.height <= 2 * SLIDE_HEIGHT and "fold" in drawn.legend
    unfolded = layout(t, unfold=True)
    assert len(unfolded.boxes_of("step")) == 61 and not unfolded.boxes_of("fold")


def test_each_awaited_deferred_is_nested_after_the_step_that_waited_on_it() -> None:
    t = EXAMPLES["inline_callbacks"]()
    drawn = layout(t)
    steps = drawn.boxes_of("step")
    awaited = [drawn.frame(2), drawn.frame(3)]
    assert steps[0].bottom < awaited[0].y < awaited[0].bottom < steps[1].y
    assert steps[1].bottom < awaited[1].y < awaited[1].bottom < steps[2].y
    assert all(drawn.frame(1).contains(f) for f in awaited)


# -- cancellation and timeouts ---------------------------------------------------------------------
def test_cancels_are_purple_arrows_going_up_the_box_they_cancelled() -> None:
    drawn = layout(EXAMPLES["cancel_waiting_outer"]())
    arrows = drawn.arrows_of("cancel")
    assert {a.deferred for a in arrows} == {1, 2}
    for a in arrows:
        assert a.end[1] < a.start[1] and a.style == "cancel"
        assert drawn.frame(a.deferred).contains(
            Box("arrow", a.start[0], a.end[1], 0, a.start[1] - a.end[1])
        )
    assert {a.label for a in arrows} == {"cancel()", "cancel() from d2"}


def test_a_timeout_is_named_at_the_top_and_its_stages_are_italic_plumbing() -> None:
    drawn = layout(EXAMPLES["timeout_on_clock"]())
    assert any(label.text.startswith("◷ addTimeout: cancel after 5 s") for label in drawn.labels)
    plumbing = [c for c in drawn.boxes_of("cell") if c.italic and not c.dashed]
    assert {c.text for c in plumbing} == {"to TimeoutError", "stop the timer"}
    assert "plumbing" in drawn.legend


# -- one slide, words, legend ---------------------------------------------------------------------
def test_several_small_chains_stand_side_by_side_in_the_order_they_were_made() -> None:
    ended: list[Deferred[Any]] = []
    with trace() as t:
        for name, error in (("missing", KeyError("k")), ("nameless", ValueError("v"))):
            d: Deferred[Any] = Deferred()
            t.label(d, name)
            d.addErrback(lambda f: f.trap(KeyError) and "(no such poem)")
            d.errback(error)
            ended.append(d)
    for d in ended:
        d.addErrback(lambda f: None)  # 'nameless' ends in a Failure: handled, after tracing
    drawn = layout(t.snapshot())
    first, second = drawn.frame(1), drawn.frame(2)
    assert first.y == second.y and first.right < second.x
    assert drawn.width <= DISPLAY_WIDTH and drawn.height <= SLIDE_HEIGHT


def test_a_long_value_leaves_out_its_middle_and_the_legend_says_so() -> None:
    poem = "Tyger Tyger burning bright in the forests of the night: what immortal hand or eye"
    t = simulate(f"return {poem!r}")
    drawn = layout(t)
    (result,) = drawn.boxes_of("result")
    assert "…" in result.text and result.text.startswith("result 'Tyger")
    assert result.text.endswith("'")  # the end stays visible
    assert "elided" in drawn.legend


def test_a_long_chain_shows_its_beginning_and_end_around_an_elided_middle() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        for _ in range(500):
            d.addCallback(lambda x: x + 1)
        d.callback(0)
    drawn = layout(t.snapshot())
    (gap,) = drawn.boxes_of("elided")
    assert gap.text == "… 488 more stages …"
    assert len(drawn.boxes_of("cell")) == 2 * 12 and drawn.height < 3 * SLIDE_HEIGHT


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_keeps_its_text_apart_and_inside_and_lists_every_mark(name: str) -> None:
    drawn = layout(EXAMPLES[name]())
    assert overlapping_text(drawn) == []
    assert outside(drawn) == []
    used = _marks(drawn)
    assert used <= set(drawn.legend), used - set(drawn.legend)
    assert set(drawn.legend) <= set(LEGEND)


def _marks(drawn: Layout) -> set[str]:
    """The legend keys the picture's marks call for, read from the layout."""
    used = set()
    for b in drawn.boxes:
        if b.kind == "cell":
            used.add("passthru" if b.style == "passthru" else (b.style if b.ran else "idle"))
            if b.italic and b.style != "passthru":
                used.add("plumbing")
        elif b.kind in ("step", "fold", "elided"):
            used.add(b.kind)
        elif b.style in ("held", "untraced"):
            used.add(b.style)
    for a in drawn.arrows:
        kind = {"cancel": "cancel", "wait": "waits", "resume": "resumed", "member": "member"}.get(
            a.kind
        )
        if kind:
            used.add(kind)
        if a.style == "failure":
            used.add("failure")
    return used


def test_meaning_never_rests_on_colour_alone() -> None:
    drawn = layout(simulate("raise KeyError: gone, recover 1", fire="callback(1)"))
    for a in drawn.arrows:
        if a.style == "failure" and a.label:
            assert a.label.startswith("✗"), a.label  # words mark a Failure
    for cell in drawn.boxes_of("cell"):
        column = drawn.cell(1, cell.stage, "callback") if cell.stage is not None else cell  # type: ignore[arg-type]
        # the side is also where the cell is: left column callbacks, right errbacks
        assert (cell.side == "callback") == (cell.x == column.x)
    assert any(label.text == "callbacks ↓" for label in drawn.labels)


def test_an_empty_trace_says_so() -> None:
    with trace() as t:
        pass
    drawn = layout(t.snapshot())
    assert drawn.title == "Nothing was traced"
    assert any(label.text == "nothing traced" for label in drawn.labels)


def test_a_step_through_frame_outlines_what_the_event_did(seven: Trace) -> None:
    ran = [e for e in seven.events if e.kind == "stage_ran"]
    drawn = layout(seven.until(ran[2].seq), highlight=[ran[2].seq])
    lit = [b for b in drawn.boxes if b.keys & drawn.highlight]
    assert [(b.kind, b.stage, b.side) for b in lit] == [("cell", ran[2].stage, ran[2].side)]
    lit_arrows = [a for a in drawn.arrows if a.keys & drawn.highlight]
    assert len(lit_arrows) == 1 and lit_arrows[0].end[1] == lit[0].y


def test_a_clock_timeout_and_a_cancel_of_an_inline_generator_lay_out() -> None:
    drawn = layout(generator_timed_out())
    assert overlapping_text(drawn) == [] and outside(drawn) == []
    assert drawn.arrows_of("cancel")


def deep_nesting(stages: int) -> Trace:
    with trace() as t:
        inners: list[Deferred[int]] = [Deferred() for _ in range(stages)]
        outer: Deferred[int] = Deferred()
        for inner in inners:
            inner.addCallback(lambda x: x + 1)
            outer.addCallback(lambda _, inner=inner: inner)
        outer.callback(0)
        for i, inner in enumerate(inners):
            inner.callback(i)
    return t.snapshot()


def overlapping_marks(drawn: Layout) -> list[tuple[str, str]]:
    """Pairs of marks that overlap without one holding the other."""
    marks = [b for b in drawn.boxes if b.kind not in ("frame", "nest", "legend", "text")]
    return [
        (f"{a.kind} {a.text!r}", f"{b.kind} {b.text!r}")
        for a, b in combinations(marks, 2)
        if a.overlaps(b)
    ]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_no_two_marks_overlap(name: str) -> None:
    assert overlapping_marks(layout(EXAMPLES[name]())) == []


def _crosses(p: tuple[float, float], q: tuple[float, float], box: Box) -> bool:
    """True when the segment p-q runs through the inside of ``box`` (clipped, not sampled)."""
    (x0, y0), (x1, y1) = p, q
    lo, hi = 0.0, 1.0
    for d, near, far in (
        (x1 - x0, box.x + 1 - x0, box.right - 1 - x0),
        (y1 - y0, box.y + 1 - y0, box.bottom - 1 - y0),
    ):
        if d == 0:
            if not near < 0 < far:
                return False
            continue
        a, b = sorted((near / d, far / d))
        lo, hi = max(lo, a), min(hi, b)
    return lo < hi


def untidy(drawn: Layout) -> list[str]:
    """What a reader would trip on: words astride a frame's edge or outside the block
    they belong to, and lines drawn through words (a crossing arrow's own label sits on
    its line, by design; every other label is clear of every line)."""
    frames = {b.deferred: b for b in drawn.boxes if b.kind == "frame"}
    edges = [b for b in drawn.boxes if b.kind in ("frame", "nest")]
    words: list[tuple[str, Box, int | None, Any]] = [
        (label.text, label.extent(), label.deferred, None)
        for label in drawn.labels
        if label.rotation == 0
    ]
    for a in drawn.arrows:
        if a.label and a.label_at is not None and a.kind != "cancel":
            at = Label("arrow", a.label_at[0], a.label_at[1], a.label, PX["label"], a.align)
            words.append((a.label, at.extent(), a.deferred, a))
    out = []
    for text, box, did, own in words:
        if did in frames and not frames[did].contains(box):
            out.append(f"{text!r} outside its block")
        out += [
            f"{text!r} astride {e.kind} {e.deferred}"
            for e in edges
            if e.overlaps(box) and not e.contains(box)
        ]
        for a in drawn.arrows:
            if a is own and a.kind == "cross":
                continue
            if any(_crosses(p, q, box) for p, q in itertools.pairwise(a.points)):
                out.append(f"{a.kind} arrow through {text!r}")
    out += [  # a crossing arrow leans clearly the way it goes (half a gutter at least)
        f"cross arrow {a.label!r} hardly crosses"
        for a in drawn.arrows_of("cross")
        if abs(a.end[0] - a.start[0]) < GUTTER / 2
    ]
    return out


POEM = "Tyger Tyger, burning bright,\nIn the forests of the night;\n" * 3


def resumed_with(fail: bool) -> Trace:
    """notebook 06's shape: a callback returns an inner Deferred, which fires later with a
    long value (or a Failure) that the outer chain hands on to the notebook's Deferred."""
    with trace() as t:
        call, inner, outer = Deferred(), Deferred(), Deferred()
        t.label(call, "call 1")
        outer.addCallback(lambda _: inner)
        outer.addCallbacks(call.callback, call.errback)
        call.addCallback(lambda poem: poem)
        call.addCallback(lambda poem: poem.splitlines()[0])
        call.addErrback(lambda f: "(no refrain this time)")
        outer.callback(object())
        if fail:
            inner.errback(ConnectionError("the server closed the connection without a reply"))
        else:
            inner.callback(POEM)
    return t.snapshot()


def generator_timed_out() -> Trace:
    clock = task.Clock()
    with trace() as t:
        waiting: Deferred[Any] = Deferred()

        @defer.inlineCallbacks
        def forever():  # type: ignore[no-untyped-def]
            yield waiting

        d = forever()
        d.addTimeout(1, clock)
        d.addErrback(lambda f: f.trap(defer.TimeoutError, CancelledError) and "gave up")
        clock.advance(1)
    return t.snapshot()


def forty_members() -> Trace:
    with trace() as t:
        members = [Deferred() for _ in range(40)]
        DeferredList(members, consumeErrors=True)
        for i, m in enumerate(members):
            (m.callback if i % 3 else m.errback)(i if i % 3 else ValueError(POEM))
    return t.snapshot()


def cancelled_then_handed_over() -> Trace:
    """notebook 15's shape: a Deferred nobody fired, cancelled when the runtime gave up,
    its Failure handed to the notebook from the right column."""

    def hand_over(result: Any) -> None:
        return None

    hand_over.__module__ = "poetrylab.runtime._waits"  # what makes a stage the runtime's
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str.upper)
        d.addBoth(hand_over)
        d.cancel()
    return t.snapshot()


SHAPES = {
    **{f"example {name}": make for name, make in EXAMPLES.items()},
    "cancelled, then handed to the notebook": cancelled_then_handed_over,
    "seven stages": lambda: simulate(SEVEN, fire="callback(1)"),
    "resumed with a long value": lambda: resumed_with(fail=False),
    "resumed with a Failure": lambda: resumed_with(fail=True),
    "a generator timed out": generator_timed_out,
    "forty members": forty_members,
    "sixty awaits": lambda: loop_of(60),
    "forty inner Deferreds": lambda: deep_nesting(40),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_words_stay_in_their_block_clear_of_edges_and_lines(name: str) -> None:
    assert untidy(layout(SHAPES[name]())) == []


def test_a_long_value_out_of_an_inner_deferred_goes_straight_down_cut_to_its_block() -> None:
    for fail in (False, True):
        t = resumed_with(fail)
        drawn = layout(t)
        (resume,) = drawn.arrows_of("resume")
        assert resume.start[0] == resume.end[0]  # straight down from the pill
        assert resume.label.startswith("resumed: ") and "…" in resume.label
        assert resume.label_at is not None
        x, y = resume.label_at
        words = Label("arrow", x, y, resume.label, PX["label"], resume.align).extent()
        assert drawn.frame(resume.deferred).contains(words)
        (pill,) = [b for b in drawn.boxes_of("result") if "→" in b.text]
        assert words.y >= drawn.frame(pill.deferred).bottom  # below the inner block


def test_a_long_chain_of_inner_deferreds_leaves_them_out_with_its_middle() -> None:
    drawn = layout(deep_nesting(40))
    (gap,) = drawn.boxes_of("elided")
    assert gap.text == "… 28 more stages, 28 inner Deferreds …"
    assert not drawn.boxes_of("stub")  # nothing drawn on top of the rows
    assert overlapping_marks(drawn) == [] and outside(drawn) == []
    shown = {b.deferred for b in drawn.boxes_of("frame")}
    assert len(shown) == 1 + 12  # the chain, and what its shown stages waited on
