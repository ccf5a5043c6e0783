"""Every probe into Twisted's private API works with the Twisted installed, each tested on
its own, and a probe that stops working degrades to "not traced here", said in the trace.

A Twisted release that moves one of these names fails its test here, by name.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    fail,
    gatherResults,
    maybeDeferred,
    race,
    succeed,
)

from poetrylab.tracing import _twisted, trace


@contextmanager
def frames_of(code: Any) -> Iterator[list[FrameType]]:
    """Every frame running ``code`` while inside (as Twisted's own code calls it)."""
    seen: list[FrameType] = []

    def spy(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code is code:
            seen.append(frame)
        return None

    sys.settrace(spy)
    try:
        yield seen
    finally:
        sys.settrace(None)


def callers_of(method: Callable[..., Any]) -> Iterator[list[FrameType]]:
    """The frames that called ``method`` (a Deferred method) while inside."""
    return frames_of(method.__code__)


def test_every_probe_works_with_the_installed_twisted() -> None:
    broken = {name: probe.problem for name, probe in _twisted.PROBES.items() if not probe.ok}
    assert broken == {}
    assert _twisted.problems() == []
    assert len(_twisted.PROBES) >= 10


def test_the_supported_range_includes_the_installed_twisted() -> None:
    low, high = _twisted.SUPPORTED
    assert low <= _twisted.twisted_version() <= high
    assert _twisted.version_problem() == ""


def test_a_twisted_outside_the_range_is_named_in_plain_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Version:
        major, minor = 27, 3

    monkeypatch.setattr(_twisted.twisted, "version", Version())
    problem = _twisted.version_problem()
    assert problem.startswith("Twisted 27.3 is outside the range the tracer was tested with (25.5")
    assert _twisted.problems()[0] == problem


def test_deferred_types_are_twisteds_own_test() -> None:
    class Mine(Deferred[Any]):
        pass

    assert _twisted.is_deferred(Deferred()) and _twisted.is_deferred(Mine())
    assert _twisted.is_deferred(DeferredList([]))
    assert not _twisted.is_deferred(object()) and not _twisted.is_deferred(Deferred)


def test_deferred_state_results_pending_stages_and_cancellers() -> None:
    def stop(d: Deferred[Any]) -> None:
        pass

    d: Deferred[Any] = Deferred(stop)
    assert _twisted.current_result(d) is _twisted.MISSING
    assert _twisted.canceller_of(d) is stop
    assert _twisted.stages_pending(d) is False
    d.addCallback(str)
    assert _twisted.stages_pending(d) is True
    d.pause()
    d.callback(1)
    assert _twisted.current_result(d) == 1 and _twisted.stages_pending(d) is True
    d.unpause()
    assert _twisted.current_result(d) == "1" and _twisted.stages_pending(d) is False
    assert _twisted.canceller_of(d) is None  # cleared once fired


def test_would_wait_on_is_twisteds_rule_for_returned_deferreds() -> None:
    assert _twisted.would_wait_on(Deferred())
    assert not _twisted.would_wait_on(succeed(1))
    paused = succeed(1)
    paused.pause()
    assert _twisted.would_wait_on(paused)
    waiting: Deferred[Any] = Deferred()
    waiting.addCallback(lambda _: Deferred())
    waiting.callback(None)
    assert _twisted.would_wait_on(waiting)


def test_a_deferred_lists_hook_on_a_member_names_the_list() -> None:
    member: Deferred[Any] = Deferred()
    dl = DeferredList([member])
    hook = member._callbacks[0][0][0]
    assert _twisted.list_of_hook(hook) is dl
    assert _twisted.list_of_hook(str) is None and _twisted.list_of_hook(member.callback) is None


def test_races_hooks_and_canceller_name_the_race() -> None:
    a: Deferred[Any] = Deferred()
    first = race([a, Deferred()])
    (succeeded, _, _), (failed, _, _) = a._callbacks[0]
    assert _twisted.race_of_hook(succeeded) == (first, "succeeded")
    assert _twisted.race_of_hook(failed) == (first, "failed")
    assert _twisted.race_of_hook(lambda x: x) is None
    assert _twisted.race_canceller(first._canceller)


def test_race_members_are_read_from_the_frame_that_makes_the_race() -> None:
    members = [Deferred(), Deferred()]
    with callers_of(Deferred.__init__) as frames:
        race(members)
    made = [f.f_back for f in frames if f.f_back is not None]
    found = [_twisted.race_members(f) for f in made]
    assert members in found
    assert _twisted.race_members(sys._getframe()) is None


def test_gathers_unwrapping_stage_is_recognised() -> None:
    g = gatherResults([Deferred()])
    assert _twisted.is_gather_unwrap(g._callbacks[0][0][0])
    assert not _twisted.is_gather_unwrap(len)


def test_add_timeouts_two_stages_and_its_cancel_are_recognised() -> None:
    clock = task.Clock()
    d: Deferred[Any] = Deferred()
    d.addTimeout(1, clock)
    convert, stop = d._callbacks[0][0][0], d._callbacks[1][0][0]
    assert (_twisted.timeout_part(convert), _twisted.timeout_part(stop)) == (
        "convert",
        "stop timer",
    )
    assert _twisted.timeout_part(str) is None
    with callers_of(Deferred.cancel) as frames:
        clock.advance(1)
    d.addErrback(lambda f: None)
    assert _twisted.cancel_cause(frames[0].f_back) == ("timeout", None)


def test_a_race_winner_cancelling_the_others_is_recognised() -> None:
    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred(lambda d: None)
    first = race([a, b])
    with callers_of(Deferred.cancel) as frames:
        a.callback("won")
    assert _twisted.cancel_cause(frames[0].f_back) == ("race", first)
    assert _twisted.cancel_cause(sys._getframe()) is None


def test_inline_callbacks_driver_and_its_stages_are_found() -> None:
    assert _twisted.inline_driver() == (defer, "_cancellableInlineCallbacks")
    waiting: Deferred[Any] = Deferred()

    @defer.inlineCallbacks
    def gen():  # type: ignore[no-untyped-def]
        yield waiting

    d = gen()
    resume = waiting._callbacks[0][0][0]
    assert _twisted.inline_part(resume) == "resume"
    assert _twisted.generator_of_resume(waiting._callbacks[0][0][1]) is not None
    assert _twisted.inline_canceller(d._canceller)
    d.cancel()
    d.addErrback(lambda f: None)
    assert _twisted.inline_part(str) is None


def test_succeed_fail_and_maybe_deferred_are_told_by_their_frames() -> None:
    def three() -> int:
        return 3

    with callers_of(Deferred.__init__) as frames:
        succeed(1)
        fail(KeyError("k")).addErrback(lambda f: None)
        maybeDeferred(three)
        Deferred()
    said = [_twisted.made_by(f.f_back) for f in frames]
    assert said == ["succeed()", "fail()", "maybeDeferred(three)", None]


def test_twisteds_own_pause_and_cancels_fallback_are_told_from_a_callers() -> None:
    inner: Deferred[Any] = Deferred()
    outer: Deferred[Any] = Deferred()
    outer.addCallback(lambda _: inner)
    with callers_of(Deferred.pause) as frames:
        outer.callback(None)
        outer.pause()
    assert [_twisted.is_chaining_pause(f.f_back) for f in frames] == [True, False]
    d: Deferred[Any] = Deferred()
    with callers_of(Deferred.errback) as frames:
        d.cancel()
    d.addErrback(lambda f: None)
    assert _twisted.fired_by_cancel_fallback(frames[0].f_back)
    inner.callback(1)


def returns_locally():  # type: ignore[no-untyped-def]
    yield
    defer.returnValue(1)


def helper() -> None:
    defer.returnValue(2)


def returns_from_a_helper():  # type: ignore[no-untyped-def]
    yield
    helper()


@pytest.mark.parametrize(
    ("gen", "warns"), [(returns_locally, False), (returns_from_a_helper, True)]
)
def test_return_value_is_checked_as_twisted_checks_it(gen: Any, warns: bool) -> None:
    g = gen()
    next(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            g.send(None)
        except BaseException as exc:
            assert _twisted.is_return_value(exc)
            tb = exc.__traceback__
    assert tb is not None
    check = _twisted.check_return_value(tb.tb_next)  # from the generator's own frame
    if not warns:
        assert check is None
        return
    assert check is not None
    assert check.message == (
        "returnValue() in 'helper' causing 'returns_from_a_helper' to exit: returnValue should"
        " only be invoked by functions decorated with inlineCallbacks"
    )
    assert (check.filename, check.lineno) == (__file__, helper.__code__.co_firstlineno + 1)


def test_a_probe_that_stops_working_degrades_to_not_traced_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = _twisted.PROBES["DeferredList hook"]
    monkeypatch.setitem(
        _twisted.PROBES,
        "DeferredList hook",
        _twisted.Probe(probe.name, probe.reaches, probe.serves, False, "moved"),
    )
    monkeypatch.setattr(_twisted, "_LIST_HOOK", None)
    with trace() as t:
        a: Deferred[Any] = Deferred()
        dl = DeferredList([a])
        a.callback(1)
    assert dl.result == [(True, 1)]  # the program is unchanged
    notes = t.snapshot().notes
    assert any(
        note.startswith("not traced here: DeferredList members and what each one gave")
        for note in notes
    )
    assert "(not traced here: DeferredList members" in t.text()
    assert any("not traced here" in text for text in t.diagram().layout.texts())
