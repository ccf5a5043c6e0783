"""The tracer's record, checked against what Twisted really did, scenario by scenario.

Each scenario builds and fires real Deferreds (by hand, or on a ``task.Clock``; one uses
a thread). It runs twice:

* **untraced**, watched from outside with ``sys.settrace``: every call Twisted makes to a
  stage -- the scenario's own callbacks and errbacks, and Twisted's implicit
  ``passthru``/``_failthru`` -- is seen as it happens, with the Deferred it runs on (the
  ``current`` of ``Deferred._runCallbacks``), the side Twisted chose, what it got, and
  whether it returned or raised (an ``exception`` event as its frame's last); calls to
  ``pause``, ``unpause`` and ``cancel``, and every resumption of a generator or coroutine
  frame are counted; and at the end each Deferred's real state is read off the object;
* **traced**, under ``trace()``.

Then: the tracer's ``stage_ran`` events must be exactly the stages that ran (same order of
return, same Deferred, side, name, value in, outcome, value out), its ``final()`` of each
Deferred the real end state, its pause/cancel events and generator steps the real ones;
and tracing must not have changed anything the program can see: results, the scenario's
own observations, warnings (message, category, file and line), unhandled errors logged,
and which Deferreds are still alive after the scenario.

The ground truth uses the tracer's value summaries only to print values the same way
(``_values.summarize``); what happened is read from Twisted's own frames and objects.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    fail,
    gatherResults,
    maybeDeferred,
    race,
    succeed,
)
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from poetrylab.tracing import trace
from poetrylab.tracing._values import summarize, summarize_exception

HERE = __file__
TWISTED_PASS = {defer.passthru.__code__: "passthru", defer._failthru.__code__: "passthru"}
RUN_CALLBACKS = Deferred._runCallbacks.__code__
PAUSE, UNPAUSE, CANCEL = (
    Deferred.pause.__code__,
    Deferred.unpause.__code__,
    Deferred.cancel.__code__,
)
DL_CANCEL = DeferredList.cancel.__code__
INLINE = defer._inlineCallbacks.__code__
THROW = Failure.throwExceptionIntoGenerator.__code__
TWISTED = defer.__file__.rsplit("/internet/", 1)[0]


@dataclass
class Env:
    """What a scenario gets: a clock, a place to note what its callbacks saw."""

    clock: task.Clock = field(default_factory=task.Clock)
    seen: list[Any] = field(default_factory=list)


Scenario = Callable[[Env], dict[str, Deferred[Any]]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def text(value: Any) -> str:
    return summarize(value).describe()


# -- the ground truth: watching an untraced run --------------------------------------------
@dataclass
class Truth:
    runs: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    pauses: dict[str, list[str]] = field(default_factory=dict)
    generator_steps: dict[str, int] = field(default_factory=dict)


class Watcher:
    """``sys.settrace`` watching Twisted run the stages of an untraced scenario."""

    c_pending: list[Any] | None

    def __init__(self, generator_codes: set[Any]) -> None:
        self.truth = Truth()
        self.names: dict[int, str] = {}
        self.generators = generator_codes
        self.pending: dict[int, list[Any]] = {}
        self.c_pending: list[Any] | None = None
        self.calls: list[tuple[int, str]] = []

    def name_of(self, d: object) -> str:
        return self.names.get(id(d), "?")

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        """C callables as stages (``str``, ``list.append``): ``c_return`` or
        ``c_exception`` says how they ended."""
        if event not in ("c_call", "c_return", "c_exception") or frame.f_code is not RUN_CALLBACKS:
            return
        if event == "c_call":
            item = frame.f_locals.get("item")
            current = frame.f_locals.get("current")
            if item is None or current is None:
                return
            got = current.result
            side = "errback" if isinstance(got, Failure) else "callback"
            fn = item[1][0] if side == "errback" else item[0][0]
            if fn is not arg:
                return
            self.c_pending = [id(current), side, _fn_name(fn), text(got), None, None]
        elif getattr(self, "c_pending", None) is not None:
            record = self.c_pending
            self.c_pending = None
            if event == "c_return":
                # a profiler is not told what a C function returned: not checked ("*")
                record[4], record[5] = "returned", "*"
            else:
                record[4] = "raised"
                exc = sys.exc_info()[1]
                record[5] = summarize_exception(exc).describe() if exc else "?"
            self.truth.runs.append(record)  # type: ignore[arg-type]

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        code = frame.f_code
        caller = frame.f_back
        if code in (PAUSE, UNPAUSE, CANCEL, DL_CANCEL):
            if code is PAUSE and caller is not None and caller.f_code is RUN_CALLBACKS:
                return None  # Twisted chaining on an inner Deferred: not a caller's pause
            what = {PAUSE: "pause", UNPAUSE: "unpause"}.get(code, "cancel")
            self.calls.append((id(frame.f_locals["self"]), what))
            return None
        if code in self.generators:
            # a step Twisted drives: resumed by _inlineCallbacks (send) or by a Failure
            # thrown in (throwExceptionIntoGenerator); not a coroutine awaited natively
            if caller is not None and caller.f_code in (INLINE, THROW):
                name = code.co_name
                self.truth.generator_steps[name] = self.truth.generator_steps.get(name, 0) + 1
            return None
        if caller is None or caller.f_code is not RUN_CALLBACKS:
            return None
        if code.co_filename != HERE and code not in TWISTED_PASS:
            return None
        current = caller.f_locals["current"]
        item = caller.f_locals["item"]
        got = current.result
        side = "errback" if isinstance(got, Failure) else "callback"
        fn = item[1][0] if side == "errback" else item[0][0]
        if code in TWISTED_PASS:
            other = item[0][0] if side == "errback" else item[1][0]
            if getattr(getattr(other, "__code__", None), "co_filename", "").startswith(TWISTED):
                return None  # the pass-through beside one of Twisted's own stages
        name = TWISTED_PASS.get(code) or _fn_name(fn)
        record: list[Any] = [id(current), side, name, text(got), None, None]
        key = id(frame)
        self.pending[key] = record
        last: list[str] = ["call"]

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "exception":
                last[0] = "exception"
                record[5] = summarize_exception(arg[1]).describe()
            elif event == "line":
                last[0] = "line"
            elif event == "return":
                if code in TWISTED_PASS:
                    record[4], record[5] = "passed", text(arg)
                elif last[0] == "exception":
                    record[4] = "raised"
                else:
                    record[4], record[5] = "returned", text(arg)
                self.truth.runs.append(tuple(record))  # type: ignore[arg-type]
            return local

        return local


def _fn_name(fn: Any) -> str:
    if isinstance(fn, functools.partial):
        return _fn_name(fn.func) + "(…)"
    name = getattr(fn, "__qualname__", "?")
    name = name.rsplit("<locals>.", 1)[-1]
    return "lambda" if name.endswith("<lambda>") else name


@contextmanager
def observed() -> Iterator[tuple[list[tuple[str, str, str, int]], list[str]]]:
    """Warnings (category, message, file, line) and unhandled errors logged, while inside."""
    logged: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is not None:
            logged.append(f"{event.get('log_format', '')}: {failure.type.__name__}")

    globalLogPublisher.addObserver(observer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got: list[tuple[str, str, str, int]] = []
        try:
            yield got, logged
        finally:
            gc.collect()
            got.extend((w.category.__name__, str(w.message), w.filename, w.lineno) for w in caught)
            globalLogPublisher.removeObserver(observer)


def real_state(d: Deferred[Any], names: dict[int, str]) -> tuple[str, str]:
    """Where a Deferred really ended up, read off the object."""
    if not d.called:
        return ("unfired", "")
    result = d.result
    if isinstance(result, Deferred):
        return ("waiting", names.get(id(result), "?"))
    if d.paused:
        return ("held", text(result))
    return ("result", text(result))


@dataclass
class Run:
    results: dict[str, tuple[bool, str, int]]
    seen: list[str]
    warned: list[tuple[str, str, str, int]]
    logged: list[str]
    alive: list[str]
    states: dict[str, tuple[str, str]]
    truth: Truth | None = None
    tracer: Any = None
    ids: dict[str, int] = field(default_factory=dict)


def generator_codes(fn: Scenario) -> set[Any]:
    return {
        const
        for const in fn.__code__.co_consts
        if hasattr(const, "co_flags") and const.co_flags & (0x20 | 0x80 | 0x100)
    }


def run(fn: Scenario, traced: bool) -> Run:
    env = Env()
    watcher = Watcher(generator_codes(fn))
    tracer = None
    with observed() as (warned, logged):
        if traced:
            with trace() as tracer:
                named = fn(env)
        else:
            threading.settrace(watcher)
            sys.settrace(watcher)
            sys.setprofile(watcher.profile)
            try:
                watcher.names = {}
                named = _run_named(fn, env, watcher)
            finally:
                sys.setprofile(None)
                sys.settrace(None)
                threading.settrace(None)  # type: ignore[arg-type]
        names = {id(d): name for name, d in named.items()}
        results = {
            name: (d.called, text(getattr(d, "result", None)), d.paused)
            for name, d in named.items()
        }
        states = {name: real_state(d, names) for name, d in named.items()}
        ids = {name: tracer.id_of(d) for name, d in named.items()} if tracer is not None else {}
        refs = {name: weakref.ref(d) for name, d in named.items()}
        for d in named.values():
            d.addErrback(lambda f: None)  # nothing left unhandled by the check itself
        del named, d
    gc.collect()
    alive = sorted(name for name, ref in refs.items() if ref() is not None)
    return Run(
        results,
        [text(x) for x in env.seen],
        warned,
        logged,
        alive,
        states,
        watcher.truth if not traced else None,
        tracer,
        ids,
    )


def _run_named(fn: Scenario, env: Env, watcher: Watcher) -> dict[str, Deferred[Any]]:
    """Run the scenario; name its Deferreds in the watcher as soon as they exist."""
    real_init = Deferred.__init__.__code__
    creations: list[Deferred[Any]] = []

    def spot(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code is real_init:
            creations.append(frame.f_locals["self"])
        return watcher(frame, event, arg)

    sys.settrace(spot)
    threading.settrace(spot)
    named = fn(env)
    names = {id(d): name for name, d in named.items()}
    watcher.names.update(names)
    for key, what in watcher.calls:
        watcher.truth.pauses.setdefault(names.get(key, "?"), []).append(what)
    # runs were recorded by the Deferred's id (alive: the scenario returned it): name them
    watcher.truth.runs = [
        (names.get(r[0], "?"), *r[1:])
        for r in watcher.truth.runs  # type: ignore[misc]
    ]
    return named


# -- comparing ------------------------------------------------------------------------------
def traced_runs(r: Run) -> list[tuple[str, str, str, str, str, str]]:
    t = r.tracer.snapshot()
    names = {v: k for k, v in r.ids.items()}
    out = []
    for e in t.events:
        if e.kind != "stage_ran":
            continue
        info = t.deferred(e.deferred)
        stage = info.stage(e.stage)
        name = stage.name(e.side)
        if stage.role != "user":
            continue
        outcome = e.outcome or ""
        result = e.result.describe(t.labels) if e.result is not None and outcome != "raised" else ""
        if outcome == "raised" and e.result is not None:
            result = e.result.describe()
        if e.result is not None and e.result.kind == "deferred":
            result = "a Deferred"
        out.append(
            (
                names.get(e.deferred, "?"),
                e.side or "",
                name,
                e.value.describe(t.labels)
                if e.value is not None and e.value.kind != "deferred"
                else "a Deferred",
                outcome,
                result,
            )
        )
    return out


def truth_runs(
    r: Run, names: dict[int, str] | None = None
) -> list[tuple[str, str, str, str, str, str]]:
    assert r.truth is not None
    out = []
    for d_name, side, name, got, outcome, result in r.truth.runs:
        if result is not None and result.startswith("<") and "Deferred" in result:
            result = "a Deferred"
        if got.startswith("<") and "Deferred" in got:
            got = "a Deferred"
        out.append((d_name, side, name, got, outcome or "", result or ""))
    return out


def _mask_unnamed(runs: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Deferreds the scenario did not name are compared by what ran on them only."""
    return [("?",) + tuple(r[1:]) if r[0] == "?" else r for r in runs]


def _unchecked(
    traced: list[tuple[str, ...]], truth: list[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """The traced runs with the results the ground truth could not see blanked out."""
    out = []
    for i, r in enumerate(traced):
        if i < len(truth) and truth[i][5] == "*" and r[:5] == truth[i][:5]:
            r = (*r[:5], "*")
        out.append(r)
    return out


# -- the scenarios ------------------------------------------------------------------------------
def _boom(x: Any) -> Any:
    raise ValueError(f"boom {x}")


@scenario
def plain_success(env: Env) -> dict[str, Deferred[Any]]:
    def double(x: int) -> int:
        return x * 2

    def recover(f: Failure) -> str:
        return "recovered"

    def as_text(x: Any) -> str:
        return str(x)

    d: Deferred[Any] = Deferred()
    d.addCallback(double)
    d.addErrback(recover)
    d.addCallback(as_text)
    d.callback(3)
    return {"d": d}


@scenario
def a_builtin_method_as_callback(env: Env) -> dict[str, Deferred[Any]]:
    d: Deferred[Any] = Deferred()
    d.addCallback(env.seen.append)
    d.addBoth(env.seen.append)
    d.callback("x")
    return {"d": d}


@scenario
def raise_then_recover(env: Env) -> dict[str, Deferred[Any]]:
    def add(x: int) -> int:
        return x + 1

    def recover(f: Failure) -> int:
        env.seen.append(f.type.__name__)
        return 0

    d: Deferred[Any] = Deferred()
    d.addCallback(add)
    d.addCallback(_boom)
    d.addCallback(add)
    d.addErrback(recover)
    d.addCallback(add)
    d.callback(1)
    return {"d": d}


@scenario
def errback_first(env: Env) -> dict[str, Deferred[Any]]:
    def trap_key(f: Failure) -> str:
        f.trap(KeyError)
        return "key"

    def last(f: Failure) -> str:
        return "last " + f.type.__name__

    d: Deferred[Any] = Deferred()
    d.addErrback(trap_key)
    d.addErrback(last)
    d.errback(ValueError("v"))
    return {"d": d}


@scenario
def errback_with_no_argument_in_except(env: Env) -> dict[str, Deferred[Any]]:
    def name(f: Failure) -> str:
        return f.type.__name__

    d: Deferred[Any] = Deferred()
    d.addErrback(name)
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        d.errback()
    return {"d": d}


@scenario
def errback_with_a_failure_and_a_class(env: Env) -> dict[str, Deferred[Any]]:
    def name(f: Failure) -> str:
        return f.type.__name__

    a: Deferred[Any] = Deferred()
    a.addErrback(name)
    a.errback(Failure(KeyError("k")))
    b: Deferred[Any] = Deferred()
    b.addErrback(name)
    b.errback(RuntimeError("r"))
    return {"a": a, "b": b}


@scenario
def callback_returning_a_failure(env: Env) -> dict[str, Deferred[Any]]:
    def to_failure(x: Any) -> Failure:
        return Failure(KeyError(x))

    def recover(f: Failure) -> str:
        return "ok"

    d: Deferred[Any] = Deferred()
    d.addCallback(to_failure)
    d.addErrback(recover)
    d.callback("poem")
    return {"d": d}


@scenario
def callbacks_with_arguments(env: Env) -> dict[str, Deferred[Any]]:
    def join(x: str, sep: str, end: str = "") -> str:
        return sep.join([x, x]) + end

    def on_both(result: Any, tag: str) -> str:
        return f"{tag}:{result}"

    def fails(f: Failure, why: str) -> str:
        return why

    d: Deferred[Any] = Deferred()
    d.addCallback(join, "-", end="!")
    d.addBoth(on_both, "both")
    d.addCallbacks(join, fails, callbackArgs=("+",), errbackArgs=("never",))
    d.callback("a")
    return {"d": d}


@scenario
def add_both_on_failure(env: Env) -> dict[str, Deferred[Any]]:
    def either(result: Any) -> str:
        return "failure" if isinstance(result, Failure) else "value"

    d: Deferred[Any] = Deferred()
    d.addCallback(_boom)
    d.addBoth(either)
    d.callback(1)
    return {"d": d}


@scenario
def addcallbacks_pairs(env: Env) -> dict[str, Deferred[Any]]:
    def ok(x: Any) -> Any:
        raise KeyError(x)

    def bad(f: Failure) -> str:
        return "bad"

    def ok2(x: Any) -> str:
        return f"ok2 {x}"

    def bad2(f: Failure) -> str:
        return "never"

    d: Deferred[Any] = Deferred()
    d.addCallbacks(ok, bad)
    d.addCallbacks(ok2, bad2)
    d.callback(1)
    return {"d": d}


@scenario
def firing_twice(env: Env) -> dict[str, Deferred[Any]]:
    def show(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.addCallback(show)
    d.callback(1)
    try:
        d.callback(2)
    except defer.AlreadyCalledError:
        env.seen.append("AlreadyCalledError")
    return {"d": d}


@scenario
def callbacks_added_after_firing(env: Env) -> dict[str, Deferred[Any]]:
    def late(x: int) -> int:
        return x + 10

    d: Deferred[Any] = Deferred()
    d.callback(1)
    d.addCallback(late)
    d.addCallback(late)
    return {"d": d}


@scenario
def succeed_fail_and_maybe_deferred(env: Env) -> dict[str, Deferred[Any]]:
    def three() -> int:
        return 3

    def broken() -> int:
        return 1 // 0

    def named(x: Any) -> Any:
        return x

    def swallow(f: Failure) -> str:
        return f.type.__name__

    ok = succeed("x")
    ok.addCallback(named)
    bad = fail(KeyError("k"))
    bad.addErrback(swallow)
    value = maybeDeferred(three)
    value.addCallback(named)
    error = maybeDeferred(broken)
    error.addErrback(swallow)
    return {"ok": ok, "bad": bad, "value": value, "error": error}


@scenario
def maybe_deferred_of_a_deferred_and_a_failure(env: Env) -> dict[str, Deferred[Any]]:
    inner: Deferred[Any] = Deferred()

    def give_inner() -> Deferred[Any]:
        return inner

    def give_failure() -> Failure:
        return Failure(IndexError("i"))

    def named(x: Any) -> Any:
        return x

    def swallow(f: Failure) -> str:
        return f.type.__name__

    same = maybeDeferred(give_inner)
    same.addCallback(named)
    failed = maybeDeferred(give_failure)
    failed.addErrback(swallow)
    inner.callback(5)
    return {"same": same, "failed": failed}


@scenario
def maybe_deferred_of_a_coroutine(env: Env) -> dict[str, Deferred[Any]]:
    async def answer() -> int:
        return 42

    def named(x: Any) -> Any:
        return x

    d = maybeDeferred(answer)
    d.addCallback(named)
    return {"d": d}


@scenario
def inner_unfired_pauses_then_resumes(env: Env) -> dict[str, Deferred[Any]]:
    inner: Deferred[Any] = Deferred()

    def fetch(x: Any) -> Deferred[Any]:
        return inner

    def double(x: int) -> int:
        return x * 2

    outer: Deferred[Any] = Deferred()
    outer.addCallback(fetch)
    outer.addCallback(double)
    inner.addCallback(double)
    outer.callback("go")
    inner.callback(5)
    return {"outer": outer, "inner": inner}


@scenario
def inner_already_fired_is_taken_at_once(env: Env) -> dict[str, Deferred[Any]]:
    def fetch(x: Any) -> Deferred[Any]:
        return succeed(4)

    def double(x: int) -> int:
        return x * 2

    outer: Deferred[Any] = Deferred()
    outer.addCallback(fetch)
    outer.addCallback(double)
    outer.callback(None)
    return {"outer": outer}


@scenario
def inner_fails_and_outer_recovers(env: Env) -> dict[str, Deferred[Any]]:
    inner: Deferred[Any] = Deferred()

    def fetch(x: Any) -> Deferred[Any]:
        return inner

    def recover(f: Failure) -> str:
        return "fallback"

    outer: Deferred[Any] = Deferred()
    outer.addCallback(fetch)
    outer.addErrback(recover)
    outer.callback(1)
    inner.errback(ConnectionError("lost"))
    return {"outer": outer, "inner": inner}


@scenario
def inner_of_inner(env: Env) -> dict[str, Deferred[Any]]:
    deepest: Deferred[Any] = Deferred()
    middle: Deferred[Any] = Deferred()

    def to_middle(x: Any) -> Deferred[Any]:
        return middle

    def to_deepest(x: Any) -> Deferred[Any]:
        return deepest

    def finish(x: Any) -> str:
        return f"done {x}"

    outer: Deferred[Any] = Deferred()
    outer.addCallback(to_middle)
    outer.addCallback(finish)
    middle.addCallback(to_deepest)
    outer.callback(0)
    middle.callback(1)
    deepest.callback(2)
    return {"outer": outer, "middle": middle, "deepest": deepest}


@scenario
def one_inner_shared_by_two_outers(env: Env) -> dict[str, Deferred[Any]]:
    shared: Deferred[Any] = Deferred()

    def wait_shared(x: Any) -> Deferred[Any]:
        return shared

    def after(x: Any) -> str:
        return f"after {x!r}"

    first: Deferred[Any] = Deferred()
    second: Deferred[Any] = Deferred()
    for d in (first, second):
        d.addCallback(wait_shared)
        d.addCallback(after)
    first.callback(1)
    second.callback(2)
    shared.callback("poem")
    return {"first": first, "second": second, "shared": shared}


@scenario
def inner_gets_callbacks_after_handing_on(env: Env) -> dict[str, Deferred[Any]]:
    inner: Deferred[Any] = Deferred()

    def wait(x: Any) -> Deferred[Any]:
        return inner

    def later(x: Any) -> str:
        return f"later saw {x!r}"

    outer: Deferred[Any] = Deferred()
    outer.addCallback(wait)
    outer.callback(0)
    inner.callback("value")
    inner.addCallback(later)
    return {"outer": outer, "inner": inner}


@scenario
def a_stage_returns_its_own_deferred(env: Env) -> dict[str, Deferred[Any]]:
    d: Deferred[Any] = Deferred()

    def itself(x: Any) -> Deferred[Any]:
        return d

    def never(x: Any) -> str:
        return "never"

    d.addCallback(itself)
    d.addCallback(never)
    d.callback(1)
    return {"d": d}


@scenario
def pause_before_firing(env: Env) -> dict[str, Deferred[Any]]:
    def show(x: Any) -> Any:
        env.seen.append(x)
        return x

    d: Deferred[Any] = Deferred()
    d.addCallback(show)
    d.pause()
    d.callback(1)
    return {"d": d}


@scenario
def pause_then_unpause(env: Env) -> dict[str, Deferred[Any]]:
    def show(x: Any) -> Any:
        env.seen.append(x)
        return x

    d: Deferred[Any] = Deferred()
    d.addCallback(show)
    d.pause()
    d.callback(1)
    d.unpause()
    d.addCallback(show)
    return {"d": d}


@scenario
def pause_twice_unpause_once(env: Env) -> dict[str, Deferred[Any]]:
    def show(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.pause()
    d.pause()
    d.addCallback(show)
    d.callback(1)
    d.unpause()
    return {"d": d}


@scenario
def pause_from_inside_a_callback(env: Env) -> dict[str, Deferred[Any]]:
    d: Deferred[Any] = Deferred()

    def hold(x: Any) -> Any:
        d.pause()
        return x + 1

    def after(x: Any) -> Any:
        return x * 10

    d.addCallback(hold)
    d.addCallback(after)
    d.callback(1)
    return {"d": d}


@scenario
def unpause_before_firing(env: Env) -> dict[str, Deferred[Any]]:
    def show(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.pause()
    d.unpause()
    d.addCallback(show)
    d.callback(2)
    return {"d": d}


@scenario
def deferred_list_plain(env: Env) -> dict[str, Deferred[Any]]:
    def count(results: list[Any]) -> int:
        return len(results)

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    dl = DeferredList([a, b])
    dl.addCallback(count)
    b.callback("b")
    a.callback("a")
    return {"a": a, "b": b, "dl": dl}


@scenario
def deferred_list_consume_errors(env: Env) -> dict[str, Deferred[Any]]:
    def oks(results: list[Any]) -> list[bool]:
        return [ok for ok, _ in results]

    def after(x: Any) -> Any:
        env.seen.append(x)
        return x

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    b.addCallback(_boom)
    dl = DeferredList([a, b], consumeErrors=True)
    dl.addCallback(oks)
    b.addBoth(after)
    a.callback(1)
    b.callback(2)
    return {"a": a, "b": b, "dl": dl}


@scenario
def deferred_list_member_failure_not_consumed(env: Env) -> dict[str, Deferred[Any]]:
    def oks(results: list[Any]) -> list[bool]:
        return [ok for ok, _ in results]

    def handle(f: Failure) -> str:
        return "handled " + f.type.__name__

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    dl = DeferredList([a, b])
    dl.addCallback(oks)
    b.addErrback(handle)
    a.errback(KeyError("a"))
    a.addErrback(handle)
    b.errback(KeyError("b"))
    return {"a": a, "b": b, "dl": dl}


@scenario
def deferred_list_fire_on_one_callback(env: Env) -> dict[str, Deferred[Any]]:
    def winner(result: Any) -> Any:
        return result

    slow: Deferred[Any] = Deferred()
    fast: Deferred[Any] = Deferred()
    dl = DeferredList([slow, fast], fireOnOneCallback=True)
    dl.addCallback(winner)
    fast.callback("fast")
    slow.callback("slow")
    return {"slow": slow, "fast": fast, "dl": dl}


@scenario
def deferred_list_fire_on_one_errback(env: Env) -> dict[str, Deferred[Any]]:
    def first_error(f: Failure) -> str:
        return f.value.subFailure.type.__name__

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    dl = DeferredList([a, b], fireOnOneErrback=True, consumeErrors=True)
    dl.addErrback(first_error)
    a.callback(1)
    b.errback(OSError("disk"))
    return {"a": a, "b": b, "dl": dl}


@scenario
def deferred_list_empty(env: Env) -> dict[str, Deferred[Any]]:
    def count(results: list[Any]) -> int:
        return len(results)

    dl = DeferredList([])
    dl.addCallback(count)
    return {"dl": dl}


@scenario
def deferred_list_of_fired_members(env: Env) -> dict[str, Deferred[Any]]:
    def count(results: list[Any]) -> int:
        return len(results)

    a = succeed(1)
    b = succeed(2)
    dl = DeferredList([a, b])
    dl.addCallback(count)
    return {"a": a, "b": b, "dl": dl}


@scenario
def member_callback_added_after_the_list(env: Env) -> dict[str, Deferred[Any]]:
    def total(results: list[Any]) -> int:
        return sum(value for _, value in results)

    def later(x: Any) -> Any:
        env.seen.append(("later", x))
        return x

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    dl = DeferredList([a, b])
    dl.addCallback(total)
    a.addCallback(later)
    a.callback(1)
    b.callback(2)
    return {"a": a, "b": b, "dl": dl}


@scenario
def deferred_list_cancelled(env: Env) -> dict[str, Deferred[Any]]:
    def outcome(results: list[Any]) -> list[str]:
        return [type(value).__name__ for _, value in results]

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    dl = DeferredList([a, b], consumeErrors=True)
    dl.addCallback(outcome)
    dl.cancel()
    return {"a": a, "b": b, "dl": dl}


@scenario
def gather_results_success(env: Env) -> dict[str, Deferred[Any]]:
    def join(values: list[Any]) -> str:
        return "+".join(map(str, values))

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    g = gatherResults([a, b])
    g.addCallback(join)
    b.callback(2)
    a.callback(1)
    return {"a": a, "b": b, "g": g}


@scenario
def gather_results_failure_consumed(env: Env) -> dict[str, Deferred[Any]]:
    def which(f: Failure) -> str:
        return f"member {f.value.index}"

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    g = gatherResults([a, b], consumeErrors=True)
    g.addErrback(which)
    a.callback(1)
    b.errback(ValueError("b"))
    return {"a": a, "b": b, "g": g}


@scenario
def gather_results_failure_not_consumed(env: Env) -> dict[str, Deferred[Any]]:
    def which(f: Failure) -> str:
        return f"member {f.value.index}"

    def handle(f: Failure) -> None:
        return None

    a: Deferred[Any] = Deferred()
    g = gatherResults([a])
    g.addErrback(which)
    a.errback(ValueError("a"))
    a.addErrback(handle)
    return {"a": a, "g": g}


@scenario
def gather_inside_a_deferred_list(env: Env) -> dict[str, Deferred[Any]]:
    def count(results: list[Any]) -> int:
        return len(results)

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    c: Deferred[Any] = Deferred()
    g = gatherResults([a, b])
    dl = DeferredList([g, c])
    dl.addCallback(count)
    a.callback(1)
    c.callback(3)
    b.callback(2)
    return {"a": a, "b": b, "c": c, "g": g, "dl": dl}


@scenario
def nested_deferred_lists(env: Env) -> dict[str, Deferred[Any]]:
    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    inner = DeferredList([a])
    outer = DeferredList([inner, b])
    a.callback("a")
    b.callback("b")
    return {"a": a, "b": b, "inner": inner, "outer": outer}


@scenario
def race_first_success_cancels_the_rest(env: Env) -> dict[str, Deferred[Any]]:
    def stopped(d: Deferred[Any]) -> None:
        env.seen.append("canceller")

    def won(result: Any) -> Any:
        return result[1]

    a: Deferred[Any] = Deferred(stopped)
    b: Deferred[Any] = Deferred(stopped)
    c: Deferred[Any] = Deferred(stopped)
    r = race([a, b, c])
    r.addCallback(won)
    b.callback("quick")
    return {"a": a, "b": b, "c": c, "r": r}


@scenario
def race_all_fail(env: Env) -> dict[str, Deferred[Any]]:
    def gave_up(f: Failure) -> str:
        return f"{len(f.value.failures)} failed"

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    r = race([a, b])
    r.addErrback(gave_up)
    a.errback(KeyError("a"))
    b.errback(KeyError("b"))
    return {"a": a, "b": b, "r": r}


@scenario
def race_cancelled(env: Env) -> dict[str, Deferred[Any]]:
    def gave_up(f: Failure) -> str:
        return "gave up"

    a: Deferred[Any] = Deferred()
    b: Deferred[Any] = Deferred()
    r = race([a, b])
    r.addErrback(gave_up)
    r.cancel()
    return {"a": a, "b": b, "r": r}


@scenario
def cancel_without_canceller_then_late_result(env: Env) -> dict[str, Deferred[Any]]:
    def name(f: Failure) -> str:
        return f.type.__name__

    d: Deferred[Any] = Deferred()
    d.addErrback(name)
    d.cancel()
    d.callback("late")
    return {"d": d}


@scenario
def cancel_with_canceller_that_fires(env: Env) -> dict[str, Deferred[Any]]:
    def stop(d: Deferred[Any]) -> None:
        d.callback("stopped")

    def upper(x: str) -> str:
        return x.upper()

    d: Deferred[Any] = Deferred(stop)
    d.addCallback(upper)
    d.cancel()
    return {"d": d}


@scenario
def cancel_with_canceller_that_does_not_fire(env: Env) -> dict[str, Deferred[Any]]:
    def stop(d: Deferred[Any]) -> None:
        env.seen.append("stop called")

    def name(f: Failure) -> str:
        return f.type.__name__

    d: Deferred[Any] = Deferred(stop)
    d.addErrback(name)
    d.cancel()
    return {"d": d}


@scenario
def canceller_that_raises(env: Env) -> dict[str, Deferred[Any]]:
    def bad_stop(d: Deferred[Any]) -> None:
        raise RuntimeError("canceller broke")

    def name(f: Failure) -> str:
        return f.type.__name__

    d: Deferred[Any] = Deferred(bad_stop)
    d.addErrback(name)
    try:
        d.cancel()
    except RuntimeError as e:
        env.seen.append(str(e))
    return {"d": d}


@scenario
def cancel_after_firing_does_nothing(env: Env) -> dict[str, Deferred[Any]]:
    def keep(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.addCallback(keep)
    d.callback(1)
    d.cancel()
    return {"d": d}


@scenario
def cancel_a_waiting_outer_goes_to_the_inner(env: Env) -> dict[str, Deferred[Any]]:
    def stop_inner(d: Deferred[Any]) -> None:
        env.seen.append("inner stopped")

    inner: Deferred[Any] = Deferred(stop_inner)

    def wait(x: Any) -> Deferred[Any]:
        return inner

    def cancelled(f: Failure) -> str:
        f.trap(CancelledError)
        return "cancelled"

    outer: Deferred[Any] = Deferred()
    outer.addCallback(wait)
    outer.addErrback(cancelled)
    outer.callback(None)
    outer.cancel()
    return {"outer": outer, "inner": inner}


@scenario
def timeout_fires(env: Env) -> dict[str, Deferred[Any]]:
    def too_slow(f: Failure) -> str:
        f.trap(defer.TimeoutError)
        return "too slow"

    d: Deferred[Any] = Deferred()
    d.addTimeout(2, env.clock)
    d.addErrback(too_slow)
    env.clock.advance(1)
    env.clock.advance(1)
    return {"d": d}


@scenario
def timeout_not_reached(env: Env) -> dict[str, Deferred[Any]]:
    def keep(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.addTimeout(5, env.clock)
    d.addCallback(keep)
    env.clock.advance(1)
    d.callback("in time")
    env.clock.advance(10)
    return {"d": d}


@scenario
def timeout_with_own_on_timeout(env: Env) -> dict[str, Deferred[Any]]:
    def on_timeout(result: Any, timeout: float) -> str:
        return f"gave up after {timeout}"

    def keep(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.addTimeout(3, env.clock, onTimeoutCancel=on_timeout)
    d.addCallback(keep)
    env.clock.advance(3)
    return {"d": d}


@scenario
def timeout_with_a_canceller(env: Env) -> dict[str, Deferred[Any]]:
    def stop(d: Deferred[Any]) -> None:
        env.seen.append("stopped")

    def too_slow(f: Failure) -> str:
        return f.type.__name__

    d: Deferred[Any] = Deferred(stop)
    d.addTimeout(1, env.clock)
    d.addErrback(too_slow)
    env.clock.advance(1)
    return {"d": d}


@scenario
def chain_deferred(env: Env) -> dict[str, Deferred[Any]]:
    def double(x: int) -> int:
        return x * 2

    source: Deferred[Any] = Deferred()
    target: Deferred[Any] = Deferred()
    target.addCallback(double)
    source.chainDeferred(target)
    source.callback(4)
    return {"source": source, "target": target}


@scenario
def chain_deferred_failure(env: Env) -> dict[str, Deferred[Any]]:
    def handle(f: Failure) -> str:
        return "handled"

    source: Deferred[Any] = Deferred()
    target: Deferred[Any] = Deferred()
    target.addErrback(handle)
    source.chainDeferred(target)
    source.errback(KeyError("k"))
    source.addErrback(handle)
    return {"source": source, "target": target}


@scenario
def inline_callbacks_return(env: Env) -> dict[str, Deferred[Any]]:
    waits: list[Deferred[Any]] = []

    def later() -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        waits.append(d)
        return d

    @defer.inlineCallbacks
    def add_two():  # type: ignore[no-untyped-def]
        x = yield later()
        y = yield later()
        return x + y

    def double(x: int) -> int:
        return x * 2

    result = add_two()
    result.addCallback(double)
    waits[0].callback(1)
    waits[1].callback(2)
    return {"result": result, "first": waits[0], "second": waits[1]}


@scenario
def inline_callbacks_return_value(env: Env) -> dict[str, Deferred[Any]]:
    @defer.inlineCallbacks
    def classic():  # type: ignore[no-untyped-def]
        x = yield succeed(20)
        defer.returnValue(x + 1)

    result = classic()
    return {"result": result}


@scenario
def inline_callbacks_return_value_from_a_helper(env: Env) -> dict[str, Deferred[Any]]:
    def helper(x: int) -> None:
        defer.returnValue(x * 3)

    @defer.inlineCallbacks
    def misuse():  # type: ignore[no-untyped-def]
        x = yield succeed(2)
        helper(x)

    result = misuse()
    return {"result": result}


@scenario
def inline_callbacks_yields_plain_values_and_fired_deferreds(env: Env) -> dict[str, Deferred[Any]]:
    @defer.inlineCallbacks
    def mixed():  # type: ignore[no-untyped-def]
        a = yield 1
        b = yield succeed(2)
        c = yield fail(KeyError("c")) if a < 0 else succeed(3)
        return a + b + c

    result = mixed()
    return {"result": result}


@scenario
def inline_callbacks_catches_a_failure(env: Env) -> dict[str, Deferred[Any]]:
    pending: Deferred[Any] = Deferred()

    @defer.inlineCallbacks
    def careful():  # type: ignore[no-untyped-def]
        try:
            yield pending
        except KeyError:
            return "caught"
        return "not reached"

    result = careful()
    pending.errback(KeyError("poem"))
    return {"result": result, "pending": pending}


@scenario
def inline_callbacks_raises(env: Env) -> dict[str, Deferred[Any]]:
    @defer.inlineCallbacks
    def broken():  # type: ignore[no-untyped-def]
        yield succeed(1)
        raise RuntimeError("inside")

    def name(f: Failure) -> str:
        return f.type.__name__

    result = broken()
    result.addErrback(name)
    return {"result": result}


@scenario
def inline_callbacks_cancelled(env: Env) -> dict[str, Deferred[Any]]:
    waiting: Deferred[Any] = Deferred()

    @defer.inlineCallbacks
    def forever():  # type: ignore[no-untyped-def]
        yield waiting

    def name(f: Failure) -> str:
        return f.type.__name__

    result = forever()
    result.addErrback(name)
    result.cancel()
    return {"result": result, "waiting": waiting}


@scenario
def inline_callbacks_nested(env: Env) -> dict[str, Deferred[Any]]:
    pending: Deferred[Any] = Deferred()

    @defer.inlineCallbacks
    def inner():  # type: ignore[no-untyped-def]
        x = yield pending
        return x * 2

    @defer.inlineCallbacks
    def outer():  # type: ignore[no-untyped-def]
        y = yield inner()
        return y + 1

    result = outer()
    pending.callback(5)
    return {"result": result, "pending": pending}


@scenario
def coroutine_from_coroutine(env: Env) -> dict[str, Deferred[Any]]:
    waits: list[Deferred[Any]] = []

    def later() -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        waits.append(d)
        return d

    async def fetch_two() -> int:
        x = await later()
        y = await later()
        return x + y

    def recover(f: Failure) -> str:
        return "recovered"

    result = Deferred.fromCoroutine(fetch_two())
    result.addErrback(recover)
    waits[0].callback(1)
    waits[1].errback(ConnectionError("gone"))
    return {"result": result, "first": waits[0], "second": waits[1]}


@scenario
def coroutine_ensure_deferred_awaiting_fired(env: Env) -> dict[str, Deferred[Any]]:
    async def quick() -> int:
        a = await succeed(1)
        b = await succeed(2)
        return a + b

    result = defer.ensureDeferred(quick())
    return {"result": result}


@scenario
def coroutine_awaits_a_coroutine(env: Env) -> dict[str, Deferred[Any]]:
    pending: Deferred[Any] = Deferred()

    async def inner() -> int:
        return await pending + 1

    async def outer() -> int:
        return await inner() * 10

    result = Deferred.fromCoroutine(outer())
    pending.callback(4)
    return {"result": result, "pending": pending}


@scenario
def coroutine_cancelled(env: Env) -> dict[str, Deferred[Any]]:
    waiting: Deferred[Any] = Deferred()

    async def forever() -> Any:
        return await waiting

    def name(f: Failure) -> str:
        return f.type.__name__

    result = Deferred.fromCoroutine(forever())
    result.addErrback(name)
    result.cancel()
    return {"result": result, "waiting": waiting}


@scenario
def unhandled_error_is_logged_when_collected(env: Env) -> dict[str, Deferred[Any]]:
    def keep(x: Any) -> Any:
        return x

    d: Deferred[Any] = Deferred()
    d.addCallback(_boom)
    d.callback(1)
    lost: Deferred[Any] = Deferred()
    lost.addCallback(keep)
    lost.errback(KeyError("nobody handles me"))
    del lost
    gc.collect()
    return {"d": d}


@scenario
def fired_in_another_thread(env: Env) -> dict[str, Deferred[Any]]:
    def double(x: int) -> int:
        return x * 2

    d: Deferred[Any] = Deferred()
    d.addCallback(double)
    worker = threading.Thread(target=d.callback, args=(21,))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the firing thread did not finish in 10 s"
    return {"d": d}


@scenario
def long_chain(env: Env) -> dict[str, Deferred[Any]]:
    def inc(x: int) -> int:
        return x + 1

    d: Deferred[Any] = Deferred()
    for _ in range(200):
        d.addCallback(inc)
    d.callback(0)
    return {"d": d}


@scenario
def values_of_every_kind(env: Env) -> dict[str, Deferred[Any]]:
    class Poem:
        def __repr__(self) -> str:
            return "<Poem tyger>"

    def to_list(x: Any) -> Any:
        return [x, x]

    def to_object(x: Any) -> Any:
        return Poem()

    def to_none(x: Any) -> None:
        return None

    def to_float(x: Any) -> float:
        return -0.0

    def to_bytes(x: Any) -> bytes:
        return b"\x00poem" * 100

    d: Deferred[Any] = Deferred()
    for fn in (to_list, to_object, to_none, to_float, to_bytes):
        d.addCallback(fn)
    d.callback("x" * 500)
    return {"d": d}


@scenario
def a_bound_method_and_a_partial(env: Env) -> dict[str, Deferred[Any]]:
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def add(self, x: int) -> int:
            self.n += x
            return self.n

    def scale(factor: int, x: int) -> int:
        return factor * x

    counter = Counter()
    d: Deferred[Any] = Deferred()
    d.addCallback(counter.add)
    d.addCallback(functools.partial(scale, 3))
    d.callback(2)
    return {"d": d}


@scenario
def deferred_subclass(env: Env) -> dict[str, Deferred[Any]]:
    class Special(Deferred[Any]):
        pass

    def double(x: int) -> int:
        return x * 2

    d = Special()
    d.addCallback(double)
    d.callback(3)
    return {"d": d}


@scenario
def errback_then_callbacks_added_later(env: Env) -> dict[str, Deferred[Any]]:
    def recover(f: Failure) -> str:
        return "ok"

    def shout(x: str) -> str:
        return x.upper()

    d: Deferred[Any] = Deferred()
    d.errback(KeyError("early"))
    d.addErrback(recover)
    d.addCallback(shout)
    return {"d": d}


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 60, len(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_record_is_what_twisted_did_and_tracing_changes_nothing(name: str) -> None:
    fn = SCENARIOS[name]
    truth = run(fn, traced=False)
    traced = run(fn, traced=True)
    # tracing changes nothing the program can see
    assert traced.results == truth.results
    assert traced.seen == truth.seen
    assert traced.warned == truth.warned
    assert traced.logged == truth.logged
    assert traced.alive == truth.alive
    # every stage that ran, in the order they returned, with what they got and gave
    expected = _mask_unnamed(truth_runs(truth))
    assert _unchecked(_mask_unnamed(traced_runs(traced)), expected) == expected
    # where each Deferred ended up
    t = traced.tracer.snapshot()
    names = {v: k for k, v in traced.ids.items()}
    for dname, (state, value) in truth.states.items():
        final = t.final(traced.ids[dname])
        if state == "waiting":
            assert final.state == "waiting", dname
            assert names.get(final.other or -1, "?") == value or value == "?", dname
        elif state == "held":
            assert (final.state, final.held) == ("held", True), dname
            assert final.value is not None and final.value.describe() == value, dname
        elif state == "unfired":
            assert final.state == "unfired", dname
        elif final.state == "handed":
            assert value == "None", dname  # its result went to the chain that waited on it
        else:
            assert final.state == "result", (dname, final)
            assert final.value is not None and final.value.describe() == value, dname
    # pause(), unpause() and cancel() as called on the named Deferreds
    assert truth.truth is not None
    kinds = {"held": "pause", "released": "unpause", "cancel": "cancel"}
    for dname, did in traced.ids.items():
        seen = [kinds[e.kind] for e in t.events_for(did) if e.kind in kinds]
        assert seen == truth.truth.pauses.get(dname, []), dname
    # each resumption of a generator or coroutine is one step
    steps: dict[str, int] = {}
    for info in t.deferreds:
        if info.coroutine:
            count = sum(1 for e in t.events_for(info.id) if e.kind == "step")
            key = info.coroutine.removesuffix("()").rsplit(".", 1)[-1]
            steps[key] = steps.get(key, 0) + count
    assert steps == truth.truth.generator_steps
