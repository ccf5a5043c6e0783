"""The trace is plain data: safe value summaries, a JSON round trip, queries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from poetrylab.tracing import Trace, trace
from poetrylab.tracing._values import MAX_TEXT, summarize, summarize_exception
from poetrylab.tracing.examples import EXAMPLES
from poetrylab.tracing.model import SCHEMA, Value


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class BrokenStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str either")


def test_a_value_whose_repr_raises_is_summarised_without_raising() -> None:
    value = summarize(BrokenRepr())
    assert (value.kind, value.type) == ("value", "BrokenRepr")
    assert "BrokenRepr" in value.text


def test_an_exception_whose_str_raises_is_summarised_without_raising() -> None:
    assert summarize_exception(BrokenStrError()) == Value(
        "failure", "BrokenStrError", "(str() raised)"
    )


def test_summaries_are_bounded_and_cut_in_the_middle_for_huge_values() -> None:
    for value in ("x" * 10_000, list(range(10_000)), 10**5000, {i: i for i in range(1000)}):
        summary = summarize(value)
        assert len(summary.text) <= MAX_TEXT and summary.cut, value.__class__
    poem = summarize("Tyger " * 100 + "the end")
    assert poem.text.startswith("'Tyger") and poem.text.endswith("the end'") and "…" in poem.text


def test_a_short_value_is_whole_and_not_cut() -> None:
    assert summarize("tyger") == Value("value", "str", "'tyger'")
    assert summarize(None).text == "None" and not summarize([1, 2]).cut


def test_a_summary_is_one_line_even_for_a_message_or_repr_on_several() -> None:
    class Grid:
        def __repr__(self) -> str:
            return "[[1, 2],\n [3, 4]]"

    assert summarize(Grid()).text == "[[1, 2],\\n [3, 4]]"
    failure = summarize(Failure(ValueError("line one\nline two\tend")))
    assert failure.text == "line one\\nline two\\tend"


def test_a_self_containing_list_is_summarised() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert summarize(loop).text.startswith("[1, [")


def test_a_failure_is_summarised_as_its_exception_type_and_message() -> None:
    assert summarize(Failure(KeyError("poem"))) == Value("failure", "KeyError", "'poem'")


def test_weird_values_flow_through_a_traced_chain() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(lambda _: BrokenRepr())
        d.addCallback(lambda _: None)
        d.callback(object())
    ran = [e for e in t.snapshot().events if e.kind == "stage_ran"]
    assert ran[0].result is not None and ran[0].result.type == "BrokenRepr"


def test_value_descriptions_mask_memory_addresses() -> None:
    value = Value("value", "object", "<object object at 0x7f12ab34cd56>")
    assert value.describe() == "<object object at 0x…>"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_survives_a_json_round_trip(name: str) -> None:
    original = EXAMPLES[name]()
    text = original.to_json()
    data = json.loads(text)
    assert data["schema"] == SCHEMA
    assert set(data) == {"schema", "meta", "deferreds", "events"}
    again = Trace.from_json(text)
    assert again == original
    assert again.text() == original.text()


def test_loading_another_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        Trace.from_dict({"schema": "something/else", "deferreds": [], "events": []})


def test_until_cuts_the_trace_at_an_event() -> None:
    whole = EXAMPLES["raise_and_recover"]()
    fired = next(e for e in whole.events if e.kind == "fired")
    early = whole.until(fired.seq)
    assert [e.seq for e in early.events] == [e.seq for e in whole.events if e.seq <= fired.seq]
    assert early.path() == []
    assert early.final(1).state == "result"


def test_lookups_by_id_and_label() -> None:
    whole = EXAMPLES["inner_deferred"]()
    assert whole.deferred(1) is whole.deferred("d1")
    with pytest.raises(KeyError):
        whole.deferred("nope")
    assert whole.final("d1").state == "handed"
    assert repr(whole) == f"<Trace: 2 Deferreds, {len(whole.events)} events>"
