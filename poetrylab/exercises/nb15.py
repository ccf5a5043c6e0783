"""Checks for notebook 15 (debugging asynchronous code).

- :func:`check_longest_line` -- find and fix the bugs in a callback chain: a callback that
  returns None, and an errback that recovers from everything. The check runs the
  learner's chain under the tracer, and when it goes wrong says what the trace shows:
  which stage handed None on, which error the errback swallowed.
- :func:`check_logged_fetch` -- ``fetch_and_log(fetch, name, log)``: log each download's
  outcome with its context (the poem's name as a field), the failure with its Failure,
  while three downloads are in flight at once; the chain's result is left as it was.

The checks need no reactor: their ``fetch`` returns Deferreds they fire by hand, in an
order of their choosing, and the log goes to a ``Logger`` of the check's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel, LogPublisher, formatEvent
from twisted.python.failure import Failure

from poetrylab.exercises._deferreds import (
    HandFetch,
    Outcome,
    deferred_from,
    describe,
    outcome_of,
)
from poetrylab.exercises._feedback import clip, short
from poetrylab.exercises._registry import NotYet, exercise, function
from poetrylab.tracing import Trace, trace

if TYPE_CHECKING:
    from twisted.logger import ILogObserver

__all__ = ["POEMS", "PoemFetch", "check_logged_fetch", "check_longest_line"]

POEMS = {
    "tyger": "Tyger Tyger, burning bright,\nIn the forests of the night;\n"
    "What immortal hand or eye,\nCould frame thy fearful symmetry?\n",
    "hope": '"Hope" is the thing with feathers -\nThat perches in the soul -\n'
    "And sings the tune without the words -\nAnd never stops - at all -\n",
}
"""The poems the checks' downloads deliver (each has one longest line)."""

GARBLED = ValueError("the download was garbled")
"""What a download that is not a missing poem fails with: a bug, which must not be hidden."""


_EXPECTED = "a Deferred that fires when the poem is in"
_HINT = "return the Deferred that fetch(name) gave you, with your stages added to it"


class PoemFetch(HandFetch):
    """The checks' download function, bringing :data:`POEMS`: Deferreds fired by hand."""

    POEMS = POEMS


def _longest(name: str) -> str:
    return max(POEMS[name].splitlines(), key=len)


def _run_traced(
    longest_line: Callable[..., object], name: str, error: Exception | None = None
) -> tuple[Outcome, Trace]:
    """Run ``longest_line(fetch, name)`` under the tracer, deliver the download; return
    how the chain ended and the trace of it."""
    fetch = PoemFetch()
    call = f"longest_line(fetch, {name!r})"
    with trace() as t:
        d = deferred_from(call, longest_line, fetch, name, expected=_EXPECTED, hint=_HINT)
        if d.called:
            raise NotYet(
                f"{call} finished before its download arrived",
                expected="it waits for the Deferred that fetch(name) returns",
                got=f"it ended with {outcome_of(d)}",
                hint="add your stages to fetch(name)'s Deferred and return it",
            )
        if name not in fetch.waiting:
            raise NotYet(
                f"{call} did not download {name!r}",
                expected=f"fetch({name!r}) called once",
                got="fetch called for " + (", ".join(map(repr, fetch.calls)) or "nothing"),
                hint="start with d = fetch(name)",
            )
        fetch.deliver(name, error)
    return outcome_of(d), t.snapshot()


def _lost_value(run: Trace) -> str | None:
    """What the trace shows of the first callback that handed None on: ``stage 1's
    callback by_length got [...] and returned None``; None when no callback did."""
    labels = {info.id: info.label for info in run.deferreds}
    for event in run.events:
        if event.kind != "stage_ran" or event.side != "callback" or event.outcome != "returned":
            continue
        got, gave = event.value, event.result
        if gave is None or gave.kind != "value" or gave.text != "None":
            continue
        if got is not None and got.kind == "value" and got.text == "None":
            continue  # it passed a None on: not where the value was lost
        info = run.deferred(event.deferred)
        stage = info.stage(event.stage or 0)
        row = info.row_of(stage.id)
        value = got.describe(labels) if got is not None else "?"
        return f"stage {row}'s callback {stage.callback} got {clip(value, 40)} and returned None"
    return None


def _swallowed(run: Trace) -> str | None:
    """The first errback that recovered from something other than KeyError:
    ``missing recovered from TypeError: ...``; None when none did."""
    for event in run.events:
        if event.kind != "stage_ran" or event.side != "errback" or event.outcome != "returned":
            continue
        got, gave = event.value, event.result
        if got is None or not got.is_failure or got.type == "KeyError":
            continue
        if gave is not None and gave.is_failure:
            continue  # it logged and passed the Failure on: nothing swallowed
        stage = run.deferred(event.deferred).stage(event.stage or 0)
        return f"the errback {stage.errback} recovered from {clip(got.label(), 70)}"
    return None


@exercise("15", function("longest_line(fetch, name)"), title="find the bugs with the tracer")
def check_longest_line(longest_line: Callable[..., object]) -> str:
    """``longest_line(fetch, name)``: the poem's longest line, ``'(no such poem)'`` for a
    missing one (KeyError), and any other failure passed on."""
    outcome, run = _run_traced(longest_line, "tyger")
    want = _longest("tyger")
    if not outcome.is_value(want):
        swallowed, lost = _swallowed(run), _lost_value(run)
        got = str(outcome)
        if swallowed is not None:
            got += f": {swallowed}, not from a missing poem"
        raise NotYet(
            "the tyger is there, but its longest line did not come out",
            expected=repr(want),
            got=got,
            hint=f"the trace shows where it went wrong: {lost}; a callback must return "
            "what the next stage needs"
            if lost is not None and swallowed is None
            else "trace it (with trace() as t: longest_line(fetch, 'tyger'), then t) to see "
            "where it began; and let the errback handle a missing poem only: "
            "failure.trap(KeyError)",
        )
    outcome, run = _run_traced(longest_line, "nightingale")
    if not outcome.is_value("(no such poem)"):
        raise NotYet(
            "a missing poem (KeyError) did not become '(no such poem)'",
            expected="'(no such poem)'",
            got=str(outcome),
            hint="an errback that traps KeyError and returns '(no such poem)'",
        )
    outcome, run = _run_traced(longest_line, "hope", GARBLED)
    if not outcome.failed_with(ValueError):
        swallowed = _swallowed(run)
        raise NotYet(
            "a garbled download (ValueError, a bug) was hidden",
            expected="Failure(ValueError: the download was garbled) at the end of the chain",
            got=f"{outcome}" + (f": {swallowed}" if swallowed else ""),
            hint="failure.trap(KeyError) handles a missing poem and passes anything else on",
        )
    return "every stage hands its value on, and only a missing poem is recovered from."


def _log_field(event: dict[str, Any], key: str) -> object:
    return event.get(key, "(no such field)")


def _fields(event: dict[str, Any]) -> str:
    names = [key for key in event if not key.startswith("log_") and key != "isError"]
    return ", ".join(sorted(names)) or "none"


_SHARED_HINT = (
    "three downloads are in flight at once: each callback and errback must get its own "
    "download's name (an argument added with it, d.addCallback(f, log, name)), not a "
    "variable they all share"
)


def _judge_poem_events(events: list[dict[str, Any]], name: str) -> None:
    lines = len(POEMS[name].splitlines())
    if not events:
        raise NotYet(
            f"nothing was logged when {name}'s poem arrived",
            expected=f"an event with the fields name={name!r} and lines={lines}",
            got="no event",
            hint="log from a callback added to fetch(name)'s Deferred",
        )
    named = [e for e in events if "name" in e]
    if not named:
        raise NotYet(
            f"the event logged when {name}'s poem arrived does not say which poem",
            expected=f"a field name={name!r} in the event",
            got=f"fields: {_fields(events[0])}",
            hint="pass the name to the callback (d.addCallback(got_poem, log, name)) and give "
            "it to the log call as a field: log.info('{name}: ...', name=name, ...)",
        )
    mine = [e for e in named if e["name"] == name]
    if not mine:
        raise NotYet(
            f"the event logged when {name}'s poem arrived names another poem",
            expected=f"name={name!r}",
            got=f"name={short(named[0]['name'])}",
            hint=_SHARED_HINT,
        )
    event = mine[0]
    if _log_field(event, "lines") != lines:
        raise NotYet(
            f"the event about {name} does not give its number of lines as the field 'lines'",
            expected=f"lines={lines}",
            got=f"lines={short(_log_field(event, 'lines'))}",
            hint="log.info('{name}: {lines} lines', name=name, lines=len(poem.splitlines()))",
        )
    _judge_text(event, name)


def _judge_text(event: dict[str, Any], name: str) -> None:
    text = formatEvent(event)
    if name not in text:
        raise NotYet(
            f"the message about {name} does not name it",
            expected=f"a message that says {name!r}, made from the field: {{name}} in the format",
            got=short(text, 60),
            hint="put {name} in the format string: log.info('{name}: ...', name=name)",
        )


def _judge_failure_events(events: list[dict[str, Any]], name: str) -> None:
    failures = [e for e in events if isinstance(e.get("log_failure"), Failure)]
    if not failures:
        raise NotYet(
            f"the missing {name} was not logged with its Failure",
            expected="an event that carries the Failure (log.failure(...)), so its "
            "traceback is kept",
            got=f"{len(events)} event(s) without one" if events else "no event",
            hint="in an errback: log.failure('{name}: download failed', failure, name=name)",
        )
    event = failures[0]
    level = event.get("log_level")
    if level not in (LogLevel.warn, LogLevel.error, LogLevel.critical):
        raise NotYet(
            f"the failed download of {name} was logged below warn",
            expected="a warn, error or critical event (log.failure logs at critical)",
            got=f"level {getattr(level, 'name', short(level))}",
            hint="log.failure(...) or log.failure(..., level=LogLevel.error)",
        )
    if "name" not in event:
        raise NotYet(
            "the failure's event does not say which download failed",
            expected=f"a field name={name!r} in the event",
            got=f"fields: {_fields(event)}",
            hint="pass the name to the errback too (d.addErrback(failed, log, name)) and to "
            "log.failure as a field: log.failure('{name}: ...', failure, name=name)",
        )
    if event["name"] != name:
        raise NotYet(
            "the failure's event names another download",
            expected=f"name={name!r}",
            got=f"name={short(event['name'])}",
            hint=_SHARED_HINT,
        )
    _judge_text(event, name)


@exercise("15", function("fetch_and_log(fetch, name, log)"), title="log with context")
def check_logged_fetch(fetch_and_log: Callable[..., object]) -> str:
    """Three downloads at once through ``fetch_and_log``; each event must name its poem."""
    fetch = PoemFetch()
    events: list[dict[str, Any]] = []
    observer = cast(
        "ILogObserver", events.append
    )  # a function is a log observer; mypy cannot see it
    log = Logger(namespace="poetry.check", observer=LogPublisher(observer))
    names = ["tyger", "nightingale", "hope"]
    started: dict[str, Deferred[Any]] = {}
    try:
        for name in names:
            call = f"fetch_and_log(fetch, {name!r}, log)"
            started[name] = deferred_from(
                call, fetch_and_log, fetch, name, log, expected=_EXPECTED, hint=_HINT
            )
        return _judge_logged_fetch(fetch, events, started)
    finally:
        for d in started.values():
            d.addErrback(lambda _: None)  # whatever the verdict, nothing is left unhandled


def _judge_logged_fetch(
    fetch: PoemFetch, events: list[dict[str, Any]], started: dict[str, Deferred[Any]]
) -> str:
    names = list(started)
    if sorted(fetch.calls) != sorted(names):
        raise NotYet(
            "fetch_and_log did not start each download once",
            expected="fetch called for tyger, nightingale and hope",
            got="fetch called for " + (", ".join(map(repr, fetch.calls)) or "nothing"),
            hint="start with d = fetch(name)",
        )
    for name in ["hope", "nightingale", "tyger"]:  # the last one started arrives first
        before = len(events)
        fetch.deliver(name)
        arrived = events[before:]
        if name == "nightingale":
            _judge_failure_events(arrived, name)
        else:
            _judge_poem_events(arrived, name)
    results = {name: outcome_of(d) for name, d in started.items()}
    for name in ("tyger", "hope"):
        if not results[name].is_value(POEMS[name]):
            raise NotYet(
                f"fetch_and_log's Deferred for {name} did not fire with the poem",
                expected=f"{short(POEMS[name], 40)}: logging changes nothing",
                got=str(results[name]),
                hint="a callback that logs returns what it got: return poem",
            )
    if not results["nightingale"].failed_with(KeyError):
        raise NotYet(
            "the missing poem's Failure did not go on after it was logged",
            expected="Failure(KeyError: 'nightingale'): logging it handles nothing",
            got=describe(results["nightingale"].result)
            if results["nightingale"].kind != "unfired"
            else str(results["nightingale"]),
            hint="an errback that only logs returns the failure, so the caller still sees it",
        )
    return "three downloads in flight, and every event says which poem it is about."
