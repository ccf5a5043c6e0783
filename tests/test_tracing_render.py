"""Every view renders, deterministic where it should be, and changes with the path."""

from __future__ import annotations

import time
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from poetrylab.tracing import Trace, simulate, trace
from poetrylab.tracing.examples import EXAMPLES

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def examples() -> dict[str, Trace]:
    return {name: make() for name, make in EXAMPLES.items()}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_draws_a_diagram_and_a_timeline(
    examples: dict[str, Trace], name: str
) -> None:
    t = examples[name]
    assert t.diagram().png().startswith(PNG)
    assert t.timeline().png().startswith(PNG)
    assert t.timeline(by="thread").png().startswith(PNG)
    assert "<svg" in t._repr_svg_()


def test_the_diagram_changes_when_the_path_changes() -> None:
    ok = simulate("double, recover", fire="callback")
    failed = simulate("double, recover", fire="errback")
    assert ok.path() != failed.path()
    assert ok.diagram().png() != failed.diagram().png()
    assert ok.timeline().png() != failed.timeline().png()


def test_the_same_trace_gives_the_same_svg() -> None:
    t = simulate("return 1, raise ValueError, recover")
    assert t.diagram().svg() == t.diagram().svg()
    assert "Date" not in t.diagram().svg()


def test_highlighting_a_step_changes_the_picture(examples: dict[str, Trace]) -> None:
    t = examples["raise_and_recover"]
    ran = [e for e in t.events if e.kind == "stage_ran"]
    plain = t.diagram(upto=ran[1].seq).png()
    lit = t.diagram(upto=ran[1].seq, highlight=ran[1].seq).png()
    assert plain != lit
    assert t.timeline(highlight=ran[1].seq).png() != t.timeline().png()


def test_a_single_deferred_can_be_drawn_alone(examples: dict[str, Trace]) -> None:
    t = examples["deferred_list"]
    assert t.diagram("d1").png() != t.diagram().png()


def test_save_writes_png_and_svg_and_refuses_other_suffixes(tmp_path: Any) -> None:
    t = simulate("double")
    assert t.save(tmp_path / "chain.png").read_bytes().startswith(PNG)
    assert "<svg" in t.save(tmp_path / "chain.svg").read_text()
    assert "<svg" in t.save(tmp_path / "line.svg", view="timeline").read_text()
    with pytest.raises(ValueError):
        t.save(tmp_path / "chain.gif")


def test_a_long_chain_is_drawn_with_its_middle_elided_and_quickly() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        for _ in range(500):
            d.addCallback(lambda x: x + 1)
        d.callback(0)
    start = time.process_time()
    figure = t.diagram().figure
    assert figure.get_size_inches()[1] < 60
    assert t.diagram().png().startswith(PNG)
    assert time.process_time() - start < 10


def test_an_empty_trace_still_draws() -> None:
    with trace() as t:
        pass
    assert t.diagram().png().startswith(PNG)
    assert t.timeline().png().startswith(PNG)
    assert t.text() == ""


def test_text_views(examples: dict[str, Trace]) -> None:
    t = examples["inner_deferred"]
    assert t.text().splitlines()[0] == "d1 = Deferred()"
    events = t.text(view="events").splitlines()
    assert len(events) == len(t.events)
    assert all(line.startswith(("d1  ", "d2  ")) for line in events)
    assert t.text(threads=True).splitlines()[1].startswith("  [MainThread] ")
    with pytest.raises(ValueError):
        t.text(view="nope")


def test_text_is_the_same_on_every_run() -> None:
    assert (
        EXAMPLES["coroutine_failing_await"]().text() == EXAMPLES["coroutine_failing_await"]().text()
    )
