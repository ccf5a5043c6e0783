"""What a notebook shows of a trace: a PNG at twice its display size, and as text/plain the
trace's own words; the painted picture holds every word of the layout, inside it; the
timeline and the widget keep the same conventions; colour-blind learners lose nothing."""

from __future__ import annotations

import base64
import re
import warnings
from typing import Any

import pytest
from matplotlib.colors import to_rgb
from matplotlib.text import Text
from twisted.internet.defer import Deferred

from poetrylab.pictures import Picture, png_size
from poetrylab.tracing import Trace, simulate, trace
from poetrylab.tracing._style import COLORS, DISPLAY_WIDTH, safe_text
from poetrylab.tracing.examples import EXAMPLES
from poetrylab.tracing.render_text import SHORT_LINES
from poetrylab.tracing.views import Views

ADDRESS = re.compile(r"0x[0-9a-f]{4,}")


@pytest.fixture(scope="module")
def examples() -> dict[str, Trace]:
    return {name: make() for name, make in EXAMPLES.items()}


def bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    data, meta = obj._repr_mimebundle_()
    return data, meta


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_trace_shows_as_a_png_at_twice_its_size_with_its_text(
    examples: dict[str, Trace], name: str
) -> None:
    t = examples[name]
    data, meta = bundle(t)
    assert set(data) == {"image/png", "text/plain"}  # no SVG, never an object repr
    width, height = png_size(base64.b64decode(data["image/png"]))
    shown = meta["image/png"]
    assert (width, height) == (2 * shown["width"], 2 * shown["height"])
    assert shown["width"] <= DISPLAY_WIDTH
    assert data["text/plain"] == t.text()
    assert not ADDRESS.search(data["text/plain"])


def test_a_tracer_shows_the_same_as_its_trace() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        d.callback(1)
    assert isinstance(t, Views)
    assert bundle(t)[0]["text/plain"] == bundle(t.snapshot())[0]["text/plain"] == t.text()


def test_the_text_is_the_same_on_every_run() -> None:
    first = bundle(EXAMPLES["coroutine_failing_await"]())[0]["text/plain"]
    assert bundle(EXAMPLES["coroutine_failing_await"]())[0]["text/plain"] == first


def test_a_long_trace_shows_a_faithful_short_form_of_its_text() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        for _ in range(60):
            d.addCallback(lambda x: x + 1)
        d.callback(0)
    shown = bundle(t)[0]["text/plain"].splitlines()
    assert len(shown) <= SHORT_LINES + 1
    assert shown[0] == "d1 = Deferred()"
    assert "  fired: callback(0)" in shown
    assert "  stage 0 callback lambda: got 0, returned 1" in shown
    assert any(line.strip().startswith("… and 58 more like this") for line in shown)
    assert "  stage 59 callback lambda: got 59, returned 60" in shown
    assert "  result: 60" in shown
    assert shown[-1] == "(60 'stage added' lines left out; print(t.text()) shows every line)"


def test_the_diagram_of_one_deferred_tells_only_its_story(examples: dict[str, Trace]) -> None:
    t = examples["deferred_list"]
    text = bundle(t.diagram("d1"))[0]["text/plain"]
    assert text.startswith("d1 = Deferred()") and "d2 = " not in text


def test_the_painted_picture_holds_every_word_of_its_layout_inside_it(
    examples: dict[str, Trace],
) -> None:
    for name in ("raise_and_recover", "deferred_list", "cancel_waiting_outer", "inline_callbacks"):
        picture = examples[name].diagram()
        figure = picture.figure
        drawn = {safe_text(t.get_text()) for t in figure.findobj(Text) if t.get_text()}
        assert {safe_text(text) for text in picture.layout.texts()} <= drawn, name
        renderer = figure.canvas.get_renderer()
        for text in figure.findobj(Text):
            if text.get_text():
                box = text.get_window_extent(renderer)
                assert box.x0 >= 0 and box.x1 <= figure.bbox.width + 0.5, (name, text.get_text())
                assert box.y0 >= 0 and box.y1 <= figure.bbox.height + 0.5, (name, text.get_text())


def test_save_writes_png_and_svg_and_refuses_other_suffixes(tmp_path: Any) -> None:
    t = simulate("double")
    png = t.save(tmp_path / "chain.png").read_bytes()
    assert png_size(png)[0] == 2 * t.diagram().size[0]
    assert "<svg" in t.save(tmp_path / "chain.svg").read_text()
    assert "<svg" in t.save(tmp_path / "line.svg", view="timeline").read_text()
    with pytest.raises(ValueError):
        t.save(tmp_path / "chain.gif")
    with pytest.raises(ValueError):
        t.save(tmp_path / "chain.png", view="pie")


def test_the_timeline_is_a_picture_with_words(examples: dict[str, Trace]) -> None:
    t = examples["inline_callbacks"]
    for by in ("deferred", "thread"):
        picture = t.timeline(by=by)
        assert isinstance(picture, Picture)
        data, meta = bundle(picture)
        assert set(data) == {"image/png", "text/plain"}
        assert data["text/plain"].startswith("Timeline: what happened when, one lane per")
        assert t.text().splitlines()[0] in data["text/plain"]
    with pytest.raises(ValueError):
        t.timeline(by="colour")


def test_japanese_text_draws_without_missing_glyph_warnings() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        t.label(d, "古池")
        d.addCallback(lambda poem: poem.splitlines()[0])
        d.callback("古池や蛙飛び込む水の音\nfuruike ya")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning
        picture = t.diagram()
        picture.png()
        t.timeline().png()
    assert any("\\u53e4\\u6c60" in text for text in picture.layout.texts())  # 古池, escaped


def test_safe_text_escapes_only_what_the_font_cannot_draw() -> None:
    assert safe_text("plain ascii") == "plain ascii"
    assert safe_text("Über allen Gipfeln → ✓ ✗ ‖ ⋮ ◷") == "Über allen Gipfeln → ✓ ✗ ‖ ⋮ ◷"
    assert safe_text("古池や") == "\\u53e4\\u6c60\\u3084"
    assert safe_text("emoji 🌸") == "emoji \\U0001f338"


# -- colour-vision deficiency ------------------------------------------------------------------
# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB
CVD = {
    "protanopia": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
}


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def seen_as(color: str, deficiency: str) -> tuple[float, float, float]:
    rgb = [_linear(c) for c in to_rgb(color)]
    m = CVD[deficiency]
    return tuple(min(1.0, max(0.0, sum(m[i][j] * rgb[j] for j in range(3)))) for i in range(3))  # type: ignore[return-value]


def luminance(rgb: tuple[float, float, float]) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def contrast(a: str, b: str, deficiency: str) -> float:
    la, lb = luminance(seen_as(a, deficiency)), luminance(seen_as(b, deficiency))
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


@pytest.mark.parametrize("deficiency", sorted(CVD))
def test_ran_and_did_not_run_stay_apart_for_colour_blind_learners(deficiency: str) -> None:
    for side in ("callback", "errback"):
        # a filled cell against a pale one: apart by lightness, whatever the hue
        assert contrast(COLORS[side], COLORS[side + "_pale"], deficiency) > 3.0
        # white words on a filled cell stay readable
        assert contrast(COLORS[side], "#ffffff", deficiency) > 4.5


def test_where_green_and_red_look_alike_position_and_words_tell_them_apart() -> None:
    # under deuteranopia the two fills are close in lightness: so the picture never relies
    # on them alone (the layout tests check columns, headers and the ✗ on Failures)
    assert contrast(COLORS["callback"], COLORS["errback"], "deuteranopia") < 1.6
    drawn = simulate("raise KeyError, recover", fire="callback(1)").diagram().layout
    headers = {label.text for label in drawn.labels if label.kind == "header"}
    assert headers == {"callbacks ↓", "↓ errbacks"}
    assert any(a.label.startswith("✗ KeyError") for a in drawn.arrows)
