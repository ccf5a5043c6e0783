"""The tracer's fast path records exactly what its general path records, and costs the
traced program nothing but time.

The usual stage (``addCallback(f)`` or ``addErrback(f)`` with a plain function, one tracer
recording) is recorded by a fast path (``_patches._fast_adder`` and ``StageRunner``): the
same chain recorded by it and by the general path (forced by a second tracer) must give
the same stages and events. And the fast path must change nothing the program can see:
the warning Twisted gives about a stage returning its own Deferred, which objects stay
alive, how Twisted's own attribute storage on a traced Deferred looks.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import subprocess
import sys
import threading
import warnings
import weakref
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import Deferred, gatherResults, race
from twisted.python.failure import Failure

from poetrylab.tracing import Tracer, _patches, _twisted, trace
from poetrylab.tracing.model import Event, TraceData


def double(x: int) -> int:
    return x * 2


def boom(x: Any) -> Any:
    raise ValueError(f"boom {x}")


def recover(f: Failure) -> str:
    return "recovered"


def keep_failure(f: Failure) -> Failure:
    return f


def a_chain() -> Deferred[Any]:
    """Every case the fast path takes: callbacks and errbacks that run, that pass through,
    that raise, that recover; values kept as they are (small ints, floats, bools, short
    strings) and values summarised (a long string, a list, None, a big int)."""
    d: Deferred[Any] = Deferred()
    d.addCallback(double)
    d.addErrback(recover)  # a value passes the errback side
    d.addCallback(lambda x: 2**70)  # a big int: summarised
    d.addCallback(lambda x: [x, None, 0.5, True])
    d.addCallback(lambda x: "a line of more than eighty characters " * 3)
    d.addCallback(boom)
    d.addCallback(double)  # a Failure passes the callback side
    d.addErrback(keep_failure)
    d.addErrback(recover)
    d.addCallback(lambda x: None)
    d.addCallback(lambda x: 1.5)
    d.callback(21)
    return d


def the_record(data: TraceData, did: int) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """The stages and the events of one Deferred, without seq, time and duration (the
    event of each stage's run keeps its order)."""
    info = data.deferred(did)
    stages = [tuple(s)[:6] for s in info.stages]
    events = [
        (e.kind, e.stage, e.side, e.value, e.result, e.outcome, e.other, e.slot, e.detail)
        for e in data.events_for(did)
    ]
    return stages, events


def test_the_fast_path_records_what_the_general_path_records() -> None:
    with Tracer() as alone:
        fast = a_chain()
    with Tracer() as first, Tracer():  # two tracers: every stage takes the general path
        general = a_chain()
    assert alone.id_of(fast) == first.id_of(general) == 1
    assert the_record(alone.snapshot(), 1) == the_record(first.snapshot(), 1)
    assert [s for s, _, _ in alone.path(fast)] == [
        "callback",
        "callback",
        "callback",
        "callback",
        "callback",
        "callback",
        "errback",
        "errback",
        "errback",
        "callback",
        "callback",
    ]
    final = alone.final(fast).value
    assert final is not None and final.text == "1.5"


def test_the_fast_path_builds_typed_records_in_order() -> None:
    with Tracer() as t:
        d = a_chain()
    data = t.snapshot()
    assert all(type(e) is Event for e in data.events)
    seqs = [e.seq for e in data.events]
    assert seqs == sorted(set(seqs))
    ran = [e for e in data.events if e.kind == "stage_ran"]
    assert all(e.thread == "MainThread" and e.time >= 0 for e in ran)
    assert all(e.duration is not None and e.duration >= 0 for e in ran)
    added = [e for e in data.events if e.kind == "stage_added"]
    info = data.deferred(t.id_of(d))
    assert [e.seq for e in added] == [s.added_seq for s in info.stages]
    assert [e.stage for e in added] == [s.id for s in info.stages] == list(range(11))
    assert all(e.time <= r.time for e in added for r in ran)


def test_the_fast_path_times_each_stage_with_the_tracers_clock() -> None:
    ticks = itertools.count()
    with Tracer(clock=lambda: float(next(ticks))) as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addErrback(recover)
        d.addCallback(boom)
        d.callback(1)
    events = t.snapshot().events
    times = [e.time for e in events]
    assert times == sorted(set(times))  # every event read the clock once, in order
    ran = {e.stage: e for e in events if e.kind == "stage_ran"}
    # a stage's time is when it ended; its duration the clock's ticks while it ran
    assert [ran[s].duration for s in (0, 1, 2)] == [1.0, 0.0, 1.0]
    assert [ran[s].outcome for s in (0, 1, 2)] == ["returned", "passed", "raised"]
    assert ran[0].time == times[times.index(ran[0].time) - 1] + 2  # its start, its end


def test_a_stage_returning_its_own_deferred_is_named_in_twisteds_warning() -> None:
    def itself(x: Any) -> Deferred[Any]:
        return d

    for traced in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with trace() as t:
                if not traced:
                    t.stop()
                d: Deferred[Any] = Deferred()
                d.addCallback(itself)
                d.callback(1)
        (warning,) = [w for w in caught if "attached to" in str(w.message)]
        assert warning.filename == __file__
        assert warning.lineno == itself.__code__.co_firstlineno + 1
    assert t.final(d).state == "waiting" and t.final(d).other == t.id_of(d)


def test_the_runner_holds_no_function_after_the_warning() -> None:
    def run() -> weakref.ref[Any]:
        d: Deferred[Any] = Deferred()

        def itself(x: Any) -> Deferred[Any]:
            return d

        d.addCallback(itself)
        d.callback(1)
        return weakref.ref(itself)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with trace() as t:
            gone = run()
            gc.collect()
            assert gone() is None  # while still recording
    with pytest.raises(AttributeError):
        getattr(_patches.RUN_CALLBACK, "__code__")  # noqa: B009  # the offender is gone
    assert t.snapshot().events[-1].kind == "paused"


def test_a_function_whose_module_cannot_be_looked_up_runs_and_is_noted() -> None:
    def odd(x: int) -> int:
        return x + 1

    odd.__module__ = ["not", "hashable"]  # type: ignore[assignment]
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(odd)
        d.callback(1)
    assert d.result == 2
    notes = t.snapshot().notes
    assert any(n.startswith("not traced here: a stage added (TypeError") for n in notes)


def test_a_stopped_tracer_leaves_its_stages_running_and_records_nothing() -> None:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(double)
        d.addErrback(recover)
    count = len(t.snapshot().events)
    d.callback(2)
    assert d.result == 4
    assert len(t.snapshot().events) == count


_COMPACT_STORAGE = """
import gc
from twisted.internet.defer import Deferred
from poetrylab.tracing import trace

def dicts_in(d):
    return sum(type(r) is dict for r in gc.get_referents(d))

def story(d):
    d.addCallback(lambda x: x * 2)
    d.addCallback(lambda x: Deferred())  # waits on an inner Deferred
    d.callback(1)
    return d

plain = story(Deferred())
with trace() as t:
    traced = story(Deferred())
    t.watch(plain)
    t.snapshot()
assert t.id_of(traced) == 1
print(dicts_in(traced), dicts_in(plain), dicts_in(Deferred()))
"""


def test_tracing_keeps_twisteds_compact_attribute_storage() -> None:
    """Reading a Deferred's ``__dict__`` turns its attributes into a real dict, and every
    later attribute Twisted reads or sets on it costs more: the tracer never does.

    Run in a fresh interpreter: whether a class's instances share one table of attribute
    names is the interpreter's state, which any earlier test may have changed."""
    done = subprocess.run(
        [sys.executable, "-c", _COMPACT_STORAGE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    traced, plain, fresh = map(int, done.stdout.split())
    assert traced == plain == fresh


def test_plumbing_is_told_by_its_module() -> None:
    """Every Twisted function the tracer names specially is defined in one of
    ``plumbing_modules()``: the fast path leaves functions of those to the general path."""
    clock = task.Clock()
    timed: Deferred[Any] = Deferred()
    timed.addTimeout(1, clock)
    member: Deferred[Any] = Deferred()
    race([member, Deferred()])
    gathered: Deferred[Any] = gatherResults([Deferred()])
    waiting: Deferred[Any] = Deferred()

    @defer.inlineCallbacks
    def gen():  # type: ignore[no-untyped-def]
        yield waiting

    driven = gen()
    found: list[Any] = [
        timed._callbacks[0][0][0],
        timed._callbacks[1][0][0],
        *member._callbacks[0][0][0:1],
        member._callbacks[0][1][0],
        gathered._callbacks[0][0][0],
        waiting._callbacks[0][0][0],
    ]
    codes = _twisted.plumbing_codes()
    for fn in found:
        assert fn.__module__ in _twisted.plumbing_modules()
        assert id(fn.__code__) in codes or fn is waiting._callbacks[0][0][0]
    driven.cancel()
    driven.addErrback(lambda f: None)
    timed.cancel()
    timed.addErrback(lambda f: None)


def test_a_fast_recording_step_that_fails_is_noted_and_the_program_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("record broke")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing of the tracer's may warn either
        with trace() as t:
            d: Deferred[Any] = Deferred()
            d.addCallback(double)  # recorded by the fast path
            monkeypatch.setattr(_patches, "_new", broken)
            d.addCallback(double)  # the fast path fails: the general path records it
            d.callback(1)  # the first stage's run cannot be recorded
            monkeypatch.undo()
    assert d.result == 4
    notes = t.snapshot().notes
    assert any(n.startswith("not traced here: a stage added (RuntimeError: record") for n in notes)
    assert any(n.startswith("not traced here: a stage that returned (RuntimeError") for n in notes)
    assert t.path(d) == [("callback", "double", "returned")]  # the second, recorded in full


def test_a_thread_keeps_the_name_the_tracer_first_saw_it_by() -> None:
    """One thread is one lane of the timeline: renamed while traced, it keeps its name."""
    me = threading.current_thread()
    before = me.name
    try:
        with trace() as t:
            d: Deferred[Any] = Deferred()
            d.addCallback(double)
            me.name = "renamed"
            d.addErrback(recover)
            d.callback(1)
    finally:
        me.name = before
    assert {e.thread for e in t.snapshot().events} == {before}


def test_a_stage_goes_in_as_twisteds_own_add_both_puts_it() -> None:
    def plus(x: int, y: int) -> int:
        return x + y

    theirs: Deferred[int] = Deferred()
    theirs.addBoth(plus, 1)
    ours: Deferred[int] = Deferred()
    assert _twisted.add_both(ours, plus, (1,)) is ours
    assert ours._callbacks == theirs._callbacks
    fired: Deferred[int] = Deferred()
    fired.callback(1)
    _twisted.add_both(fired, plus, (1,))  # a fired Deferred runs it at once
    assert fired.result == 2


def test_without_the_add_both_probe_the_tracer_records_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Tracer() as probed:
        a_chain()
    probe = _twisted.PROBES["addBoth"]
    monkeypatch.setattr(_twisted, "_ADD_BOTH", None)
    monkeypatch.setitem(
        _twisted.PROBES, "addBoth", dataclasses.replace(probe, ok=False, problem="moved")
    )
    with Tracer() as fallback:
        a_chain()
    assert the_record(fallback.snapshot(), 1) == the_record(probed.snapshot(), 1)
    assert _twisted.problems() == []  # only slower: nothing goes unseen, nothing to say


def test_a_value_handed_from_stage_to_stage_is_summarised_not_kept() -> None:
    class Payload:
        pass

    made: list[weakref.ref[Payload]] = []

    def make(_: Any) -> Payload:
        payload = Payload()
        made.append(weakref.ref(payload))
        return payload

    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(make)
        d.addCallback(lambda p: 7)  # gets the Payload: its event must hold a summary
        d.addCallback(lambda n: n * 6)  # gets the very int the stage before returned
        d.callback(None)
        gc.collect()
        assert made[0]() is None  # while still recording
    got = [e.value for e in t.snapshot().events if e.kind == "stage_ran"]
    assert [(v.type, v.kind) for v in got if v is not None] == [
        ("NoneType", "value"),
        ("Payload", "value"),
        ("int", "value"),
    ]
    assert got[2] is not None and got[2].describe() == "7"
    assert d.result == 42
