"""The services notebooks' pictures: they draw what they are given and refuse nonsense."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from figure_checks import layout_problems

from poetrylab.services import quiet_logs
from poetrylab.services.figures import Span, draw_netstring, draw_outcomes, draw_spans


def test_netstring_picture_labels_every_part_of_a_request() -> None:
    picture = draw_netstring(b"17:cummingsify.Tyger,")
    fig = picture.figure
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:1] == ["17"] and "cummingsify" in texts and "Tyger" in texts
    assert "17 bytes of payload" in fig.axes[0].get_title()
    assert picture.text.splitlines()[1] == (
        "'17' (length: bytes that follow); ':'; 'cummingsify' (transform name); '.'; "
        "'Tyger' (the poem (UTF-8)); ',' (end)"
    )
    with pytest.raises(ValueError, match="not a netstring"):
        draw_netstring(b"cummingsify.Tyger")
    with pytest.raises(ValueError, match="announces 16 bytes but holds 17"):
        draw_netstring(b"16:cummingsify.Tyger,")


def test_outcomes_picture_counts_successes_and_failures_and_marks_each_without_colour() -> None:
    picture = draw_outcomes([True, False, True], "three calls")
    fig = picture.figure
    assert "2 × callback" in fig.axes[0].get_title()
    assert "1 × errback" in fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[0].texts] == ["1\n✓", "2\n✗", "3\n✓"]
    assert picture.text.splitlines()[-1] == "1:ok 2:failed 3:ok"


def test_spans_picture_has_a_row_per_span_and_per_group_caption() -> None:
    spans = [Span("a", 1.0, 2.0), Span("b", 1.5, 1.6, ok=False, note="late")]
    picture = draw_spans(spans, "two", groups=[("first", 1), ("second", 1)])
    labels = [t.get_text() for t in picture.figure.axes[0].get_yticklabels()]
    assert labels == ["first", "a", "second", "b"]
    assert picture.text.splitlines()[2:] == ["first:", "  a: ok", "second:", "  b: failed (late)"]
    notes = [t.get_text() for t in picture.figure.axes[0].texts]
    assert notes == ["  failed: late"], "a failed bar says so in words, not only in red"
    data, metadata = picture._repr_mimebundle_()
    assert data["image/png"] and metadata["image/png"]["width"] > 0
    assert not any(c.isdigit() for c in picture.text), "no timings: the stored text must not vary"
    with pytest.raises(ValueError):
        draw_spans([], "nothing")


POEM = "Tyger Tyger, BURNING bright,\nIn the forests of the night;\nWhat immortal hand or eye"
SCREEN: dict[str, Any] = {
    "netstring, notebook 06": lambda: draw_netstring(_netstring(b"cummingsify." + POEM.encode())),
    "netstring of a long name": lambda: draw_netstring(
        _netstring(b"a-transform-with-a-long-name." + POEM.encode())),
    "30 outcomes, notebook 06": lambda: draw_outcomes(
        [i % 4 != 1 for i in range(30)], "30 requests for a refrain, one after another"),
    "spans in groups, notebook 07": lambda: draw_spans(
        [Span(f"client {i}", 0.0, 0.29, note="waited for the one fetch") for i in range(1, 6)]
        + [Span(f"client {i}", 0.29, 0.292, note="from the cache") for i in range(1, 6)],
        "Five misses share one upstream fetch; five hits come back at once",
        groups=[("cold cache", 5), ("warm cache", 5)]),
    "spans with a title too long for one line": lambda: draw_spans(
        [Span(f"tag {i}: add({i}, 100)", 0.001 * i, 0.05 + 0.03 * (i % 5), i != 3,
              f"= {100 + i}, reply #{i + 1}") for i in range(8)],
        "Eight requests in flight on one connection; replies in the order they finish, "
        "some of them refused"),
}  # fmt: skip


def _netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


@pytest.mark.parametrize("name", sorted(SCREEN))
def test_every_picture_fits_a_learners_screen_in_fonts_a_projector_shows(name: str) -> None:
    """At most 960 px wide, no text under 13 px, nothing cut off or drawn over another text;
    a title too long for one line is wrapped, not cut."""
    assert layout_problems(SCREEN[name]()) == []


def test_quiet_logs_hides_warnings_and_restores_the_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("poetrylab.services.transform")
    with caplog.at_level(logging.INFO), quiet_logs():
        logger.warning("hidden")
    with caplog.at_level(logging.INFO):
        logger.warning("shown")
    assert [r.getMessage() for r in caplog.records] == ["shown"]
