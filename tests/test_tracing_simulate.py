"""The simulator builds a real chain from a short description and checks predictions."""

from __future__ import annotations

import pytest

from poetrylab.tracing import simulate
from poetrylab.tracing.simulate import SimulationError, parse_chain


def test_the_issue_example_runs_and_its_path_is_exact() -> None:
    t = simulate("return 1, raise ValueError, recover, passthru", fire="callback")
    assert t.path() == [
        ("callback", "return 1", "returned"),
        ("callback", "raise ValueError", "raised"),
        ("errback", "recover", "returned"),
        ("callback", "passthru", "returned"),
    ]
    assert t.final(1).value is not None and t.final(1).value.text == "'recovered'"


def test_a_right_prediction_is_recorded_as_right() -> None:
    t = simulate("double, raise KeyError: gone, trap KeyError 0", predict="c c e")
    assert t.meta["prediction"] == {
        "predicted": ["callback", "callback", "errback"],
        "actual": ["callback", "callback", "errback"],
        "correct": True,
    }


def test_a_wrong_prediction_is_recorded_as_wrong() -> None:
    t = simulate("double, recover", fire="errback(KeyError: nope)", predict="callback, errback")
    assert t.meta["prediction"]["actual"] == ["errback", "errback"]
    assert t.meta["prediction"]["correct"] is False


def test_a_prediction_is_read_whatever_the_separators_as_the_checks_read_it() -> None:
    for spelled in ("c c e", "cce", "C,C,E", "c → c → e", ["c", "cb", "errback"]):
        t = simulate("double, raise KeyError: gone, trap KeyError 0", predict=spelled)
        assert t.meta["prediction"]["predicted"] == ["callback", "callback", "errback"], spelled


def test_errback_firing_forms() -> None:
    fired = [e for e in simulate("recover", fire="errback").events if e.kind == "fired"][0]
    assert fired.value is not None and fired.value.type == "ValueError"
    fired = [
        e
        for e in simulate("recover", fire="errback", value=KeyError("k")).events
        if e.kind == "fired"
    ][0]
    assert fired.value is not None and fired.value.type == "KeyError"
    fired = [e for e in simulate("double", fire="callback(21)").events if e.kind == "fired"][0]
    assert fired.value is not None and fired.value.text == "21"


def test_wait_pauses_the_chain_on_an_inner_deferred() -> None:
    t = simulate("wait 5, double")
    kinds = [e.kind for e in t.events_for(1)]
    assert kinds.index("paused") < kinds.index("resumed")
    assert t.final(1).value is not None and t.final(1).value.text == "10"


def test_sides_can_be_given_explicitly() -> None:
    t = simulate("eb: return 0, both: passthru, cb: add 2", fire="errback")
    assert t.path() == [
        ("errback", "return 0", "returned"),
        ("callback", "passthru", "returned"),
        ("callback", "add 2", "returned"),
    ]


def test_a_failure_left_at_the_end_stays_in_the_trace_and_is_not_raised() -> None:
    t = simulate("raise ValueError: no")
    assert t.final(1).value is not None and t.final(1).value.is_failure


@pytest.mark.parametrize(
    ("description", "fire", "predict", "message"),
    [
        ("", "callback", None, "no stages"),
        ("jump", "callback", None, "unknown action"),
        ("raise NotAnError", "callback", None, "not a built-in exception"),
        ("return [1", "callback", None, "not a Python literal"),
        ("double", "explode", None, "fire must be"),
        ("double", "callback", "c e", "prediction names 2"),
        ("double", "callback", "sideways", "predict each stage"),
    ],
)
def test_bad_input_is_refused_with_a_helpful_message(
    description: str, fire: str, predict: str | None, message: str
) -> None:
    with pytest.raises(SimulationError, match=message):
        simulate(description, fire=fire, predict=predict)


def test_parse_chain_gives_sides_and_named_callables() -> None:
    stages = parse_chain("return 1; recover 2\ntrap KeyError")
    assert [(side, fn.__name__) for side, fn in stages] == [
        ("callback", "return 1"),
        ("errback", "recover 2"),
        ("errback", "trap KeyError"),
    ]
