"""The record is true where the old tracer lied, and tracing changes nothing the program
sees: the states Twisted has (paused by a caller, waiting on itself), returnValue, callables
that misbehave when asked their name, classmethods, memory, and the tracer's own failures.
"""

from __future__ import annotations

import gc
import tracemalloc
import warnings
import weakref
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from poetrylab.tracing import trace
from poetrylab.tracing._record import Recorder


def warned_while(fn: Any) -> list[tuple[str, str, str, int]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [(w.category.__name__, str(w.message), w.filename, w.lineno) for w in caught]


# -- a callback that returns the Deferred it belongs to -----------------------------------------
def chain_on_itself() -> Deferred[Any]:
    d: Deferred[Any] = Deferred()

    def itself(x: Any) -> Deferred[Any]:
        return d

    d.addCallback(itself)
    d.addCallback(str)
    d.callback(1)
    return d


def test_a_chain_waiting_on_itself_is_recorded_as_such() -> None:
    with warnings.catch_warnings(), trace() as t:
        warnings.simplefilter("ignore")  # the warning is tested below
        d = chain_on_itself()
    info = t.snapshot().deferred(1)
    final = t.final(d)
    assert (final.state, final.other) == ("waiting", info.id)
    assert "paused: waiting on itself, so it can never go on (Twisted warns)" in t.text()
    assert "stage 0 callback itself: got 1, returned d1 (itself!)" in t.text()
    assert "waiting on itself: it can never go on" in t.text()
    assert t.path(d) == [("callback", "itself", "returned")]  # str never runs
    drawn = t.diagram().layout
    assert [a.kind for a in drawn.arrows_of("self")] == ["self"]
    assert drawn.boxes_of("result")[0].text == "⟲ waits on itself forever"


def test_when_twisteds_warning_raises_the_chain_goes_on_and_the_record_says_so() -> None:
    with warnings.catch_warnings(), trace() as t:
        warnings.simplefilter("error")  # as under pytest -W error: Twisted's warning raises
        d = chain_on_itself()
    assert "paused" not in [e.kind for e in t.snapshot().events]
    assert t.path(d)[-1] == ("errback", "passthru", "passed")
    assert t.final(d).value.type == "DeprecationWarning"  # type: ignore[union-attr]
    d.addErrback(lambda f: None)


def test_twisteds_warning_about_it_is_the_same_as_untraced() -> None:
    plain = warned_while(chain_on_itself)

    def traced() -> None:
        with trace():
            chain_on_itself()

    assert plain and warned_while(traced) == plain
    assert plain[0][2] == __file__  # it names the learner's code, not the tracer's


# -- pause() and unpause() by a caller ------------------------------------------------------------
def test_a_deferred_paused_by_its_caller_holds_its_result_and_runs_nothing() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        d.pause()
        d.callback(1)
    final = t.final(d)
    assert (final.state, final.held, final.value.describe()) == ("held", True, "1")  # type: ignore[union-attr]
    assert t.path(d) == []
    assert "pause() called: no stage runs until unpause()" in t.text()
    assert t.text().splitlines()[-1] == "  holds 1, paused by pause(): waiting for unpause()"
    result = t.diagram().layout.boxes_of("result")[0]
    assert result.style == "held" and result.text.startswith("‖ paused by pause()")
    assert "held" in t.diagram().layout.legend


def test_unpause_lets_the_stages_run() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        d.pause()
        d.callback(1)
        d.unpause()
    assert t.final(d).state == "result" and not t.final(d).held
    assert [e.kind for e in t.snapshot().events if e.kind in ("held", "released", "stage_ran")] == [
        "held",
        "released",
        "stage_ran",
    ]


def test_twisteds_own_pause_on_an_inner_deferred_is_not_a_callers() -> None:
    with trace() as t:
        inner: Deferred[Any] = Deferred()
        outer: Deferred[Any] = Deferred()
        outer.addCallback(lambda _: inner)
        outer.callback(None)
    assert [e.kind for e in t.snapshot().events if e.kind in ("held", "paused")] == ["paused"]


# -- returnValue ---------------------------------------------------------------------------------
def classic() -> Deferred[Any]:
    @defer.inlineCallbacks
    def gen():  # type: ignore[no-untyped-def]
        x = yield defer.succeed(1)
        defer.returnValue(x + 1)

    return gen()  # type: ignore[no-any-return]


def test_return_value_gets_no_false_warning_under_the_tracer() -> None:
    plain = warned_while(classic)

    def traced() -> None:
        with trace() as t:
            assert classic().result == 2
        assert "got 1 → returned 2" in t.text()

    assert warned_while(traced) == plain
    assert not any("causing" in w[1] for w in plain)  # only returnValue's own deprecation


def test_return_value_from_a_helper_warns_exactly_as_untraced() -> None:
    def helper(x: int) -> None:
        defer.returnValue(x)

    @defer.inlineCallbacks
    def misuse():  # type: ignore[no-untyped-def]
        yield defer.succeed(1)
        helper(3)

    plain = warned_while(misuse)

    def traced() -> None:
        with trace():
            assert misuse().result == 3

    assert warned_while(traced) == plain
    assert any("returnValue() in 'helper' causing 'misuse' to exit" in w[1] for w in plain)


# -- naming callables ------------------------------------------------------------------------------
class Sulky:
    """A callable that raises anything at all when asked for an attribute it lacks."""

    def __call__(self, x: Any) -> Any:
        return x

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} for you")


class Poem:
    @classmethod
    def tag(cls, x: Any) -> str:
        return f"<{x}>"

    @staticmethod
    def shout(x: str) -> str:
        return x.upper()

    def line(self, x: str) -> str:
        return x


def test_a_callable_whose_getattr_raises_is_added_and_named_by_its_type() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(Sulky())
        d.addBoth(Sulky())
        d.callback(1)
    assert d.result == 1
    assert t.path(d) == [("callback", "Sulky", "returned"), ("callback", "Sulky", "returned")]


def test_methods_are_named_by_their_class() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(Poem.tag)
        d.addCallback(Poem.shout)
        d.addCallback(Poem().line)
        d.addCallback(str.strip)
        d.callback("x")
    assert [name for _, name, _ in t.path(d)] == [
        "Poem.tag",
        "Poem.shout",
        "Poem.line",
        "str.strip",
    ]


# -- the tracer keeps nothing of the program's ----------------------------------------------------
def big_chain(count: int, size: int) -> Deferred[Any]:
    d: Deferred[Any] = Deferred()
    for i in range(count):
        d.addCallback(lambda _, i=i: str(i) * size)
    d.addCallback(len)
    d.callback(None)
    return d


def peak_of(fn: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_chain_of_big_values_costs_at_most_twice_the_memory_traced() -> None:
    untraced = peak_of(lambda: big_chain(20, 500_000))

    def traced() -> None:
        with trace() as t:
            big_chain(20, 500_000)
        t.snapshot()

    assert peak_of(traced) < 2 * untraced


def test_no_value_of_the_program_is_kept_alive_by_the_trace() -> None:
    class Payload:
        pass

    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(lambda p: "seen " + type(p).__name__)
        payload = Payload()
        alive = weakref.ref(payload)
        d.callback(payload)
        del payload
        gc.collect()
        assert alive() is None  # while still recording
    assert "Payload" in t.text()


def test_a_traced_deferred_is_not_kept_alive_by_the_tracer() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(str)
        alive = weakref.ref(d)
        del d
        gc.collect()
        assert alive() is None
    assert t.snapshot().deferred(1).stages


# -- the tracer's own failures never reach the program --------------------------------------------
def test_a_recording_step_that_fails_is_noted_and_the_program_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Recorder, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recorder broke")

    monkeypatch.setattr(Recorder, "ran", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing of the tracer's may warn either
        with trace() as t:
            d: Deferred[Any] = Deferred()
            d.addCallbacks(lambda x: x + 1, lambda f: 0)
            d.addErrback(lambda f: f)
            d.callback(1)
    assert d.result == 2
    assert any(
        note.startswith("not traced here: a stage that returned (RuntimeError: recorder broke)")
        for note in t.snapshot().notes
    )


def test_summaries_of_hostile_values_never_raise() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    class FailingError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(lambda _: Hostile())
        d.addCallback(lambda _: Failure(FailingError()))
        d.addErrback(lambda f: None)
        d.callback(1)
    text = t.text()
    assert "<Hostile instance at 0x…>" in text  # the address masked
    assert "Failure(FailingError: (str() raised))" in text


def test_naming_a_callback_runs_none_of_its_code() -> None:
    asked: list[str] = []

    class Refrain:
        """A callable object whose attribute hooks would run the program's code."""

        def __call__(self, poem: str) -> str:
            return poem.upper()

        def __getattr__(self, name: str) -> Any:
            asked.append(name)
            raise AttributeError(name)

    class Loud(Refrain):
        def __getattribute__(self, name: str) -> Any:
            if name != "__class__":
                asked.append(name)
            return object.__getattribute__(self, name)

    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(Refrain())
        d.addCallback(Loud())
        d.callback("tyger")
    assert d.result == "TYGER"
    names = [stage.callback for stage in t.snapshot().deferred(1).stages]
    assert names == ["Refrain", "Loud"]
    assert [name for name in asked if name != "__call__"] == []
