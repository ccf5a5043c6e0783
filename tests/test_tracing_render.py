"""Every view renders, deterministic where it should be, and changes with the path."""

from __future__ import annotations

import re
import time
import warnings
from typing import Any

import pytest
from matplotlib.text import Text
from twisted.internet.defer import Deferred, DeferredList, gatherResults, race

from poetrylab.tracing import Trace, simulate, trace
from poetrylab.tracing._style import COLORS, safe_text
from poetrylab.tracing.diagram import _Canvas, _fits, _legend
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
    assert _text_outside_figure(t.diagram()) == []
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


def _text_outside_figure(drawing: Any) -> list[str]:
    """Labels that do not lie wholly inside the picture."""
    figure = drawing.figure
    renderer = figure.canvas.get_renderer()
    width, height = figure.bbox.width, figure.bbox.height
    out = []
    for text in figure.findobj(Text):
        if not text.get_text() or not text.get_visible():
            continue
        box = text.get_window_extent(renderer)
        if box.x0 < 0 or box.y0 < 0 or box.x1 > width + 0.5 or box.y1 > height + 0.5:
            out.append(text.get_text())
    return out


def test_japanese_text_draws_without_missing_glyph_warnings() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        t.label(d, "古池")
        d.addCallback(lambda poem: poem.splitlines()[0])
        d.addCallback(str.upper)
        d.callback("古池や蛙飛び込む水の音\nfuruike ya")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning
        assert t.diagram().png().startswith(PNG)
        assert t.timeline().png().startswith(PNG)
        assert "<svg" in t.diagram().svg()
    labels = [x.get_text() for x in t.diagram().figure.findobj(Text)]
    assert any("\\u53e4\\u6c60" in label for label in labels)  # 古池, escaped


def test_safe_text_escapes_only_what_the_font_cannot_draw() -> None:
    assert safe_text("plain ascii") == "plain ascii"
    assert safe_text("Wandrers Nachtlied: Über allen Gipfeln → ✓") == (
        "Wandrers Nachtlied: Über allen Gipfeln → ✓"
    )
    assert safe_text("古池や") == "\\u53e4\\u6c60\\u3084"
    assert safe_text("emoji 🌸") == "emoji \\U0001f338"


def test_a_fallback_font_that_covers_a_character_is_used_instead_of_an_escape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from poetrylab.tracing import _style

    def charmap(family: str) -> set[int]:
        path = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
        return set(FT2Font(path).get_charmap())

    only_stix = sorted(charmap("STIXGeneral") - charmap("DejaVu Sans"))
    assert only_stix, "STIXGeneral (bundled with matplotlib) covers a few extra characters"
    char = chr(only_stix[0])
    monkeypatch.setattr(_style, "FALLBACK_FAMILIES", ("No Such Font", "STIXGeneral"))
    _style.font_family.cache_clear()
    _style._coverage.cache_clear()
    try:
        assert _style.font_family() == ("DejaVu Sans", "STIXGeneral")
        assert safe_text(char) == char
    finally:
        monkeypatch.undo()
        _style.font_family.cache_clear()
        _style._coverage.cache_clear()
    assert safe_text(char) != char


def test_fitting_a_label_never_cuts_an_escape_in_half() -> None:
    fitted = _fits("result '古池や蛙飛び込む水の音'", 2.6, 15, True)
    assert fitted.startswith("result '\\u53e4")
    assert fitted.endswith("…")
    assert re.search(r"\\u[0-9a-f]{0,3}…$", fitted) is None


@pytest.mark.parametrize("kind", ["DeferredList", "gatherResults", "race"])
def test_every_label_of_a_list_diagram_is_inside_the_picture(kind: str) -> None:
    with trace() as t:
        members: list[Deferred[str]] = [Deferred() for _ in range(3)]
        if kind == "DeferredList":
            joined: Deferred[Any] = DeferredList(members, consumeErrors=True)
        elif kind == "gatherResults":
            joined = gatherResults(members, consumeErrors=True)
        else:
            joined = race(members)
        joined.addBoth(lambda result: None)
        for d in members:
            d.callback("Hope is the thing with feathers that perches in the soul")
    drawing = t.diagram(t.id_of(joined))
    assert _text_outside_figure(drawing) == []


def test_a_long_subtitle_wraps_instead_of_being_cut() -> None:
    t = simulate(
        "add 1, recover 0, raise ValueError, double, recover 10, add 1, double",
        fire="callback(1)",
        predict="c c c c c c c",
    )
    drawing = t.diagram()
    labels = [x.get_text() for x in drawing.figure.findobj(Text)]
    assert "you predicted C C C C C C C, it went C C C E E C C: not quite ✗" in labels
    assert any(label.endswith("stage 4: recover 10 recovered → callbacks") for label in labels)
    assert not any(label.endswith("…") for label in labels if "stage 2:" in label)
    assert _text_outside_figure(drawing) == []


def test_the_legend_did_not_run_swatch_is_a_cell_of_each_column_not_a_pill() -> None:
    cv = _Canvas()
    _legend(cv, 0.0, 0.0)
    boxes = [op for op in cv.ops if op.kind == "box"]
    texts = [op.args[2] for op in cv.ops if op.kind == "text"]
    assert texts == ["callback ran", "errback ran", "did not run", "pass-through"]
    assert all(op.style["radius"] < 0.08 for op in boxes)  # pills are 0.25, cells 0.08
    faces = [op.style["face"] for op in boxes]
    assert COLORS["callback_pale"] in faces and COLORS["errback_pale"] in faces
    assert len(boxes) == 5
