"""Notebook 15's checks say what the trace and the log really show.

The longest-line check reads the learner's chain off the tracer: its verdicts name the
stage that handed on None and the error an errback swallowed. The logging check's words
about Twisted's logger are true (``log.failure`` logs at critical, with the Failure). No
verdict, right or wrong, leaves a Deferred failing unhandled behind it.
"""

from __future__ import annotations

import gc
from typing import Any, cast

import pytest
from twisted.logger import ILogObserver, Logger, LogLevel, LogPublisher, globalLogPublisher

from poetrylab.exercises import nb15
from poetrylab.exercises.solutions import nb15 as answers


def test_each_poem_has_one_longest_line() -> None:
    for poem in nb15.POEMS.values():
        lengths = sorted(map(len, poem.splitlines()))
        assert lengths[-1] > lengths[-2]


def test_a_callback_that_returns_none_is_named_by_its_stage() -> None:
    verdict = nb15.check_longest_line(answers.longest_line_still_loses)
    assert "stage 1's callback by_length_starter got ['Tyger Tyger" in verdict.hint
    assert "returned None" in verdict.hint


def test_an_errback_that_swallows_a_bug_is_named_with_the_error() -> None:
    verdict = nb15.check_longest_line(answers.longest_line_starter)
    assert "the errback missing_starter recovered from TypeError" in verdict.got
    verdict = nb15.check_longest_line(answers.longest_line_still_swallows)
    assert "recovered from ValueError: the download was garbled" in verdict.got


def test_a_shared_name_is_told_apart_from_a_missing_field() -> None:
    shared = nb15.check_logged_fetch(answers.fetch_and_log_shared)
    assert shared.message == "the failure's event names another download"
    assert "not a variable they all share" in shared.hint
    starter = nb15.check_logged_fetch(answers.fetch_and_log_starter)
    assert "does not say which poem" in starter.message and starter.got == "fields: lines"


def test_log_failure_logs_the_failure_at_critical_as_the_verdicts_say() -> None:
    events: list[dict[str, Any]] = []
    log = Logger(observer=LogPublisher(cast(ILogObserver, events.append)))
    try:
        raise KeyError("nightingale")
    except KeyError:
        log.failure("{name}: download failed", name="nightingale")
    [event] = events
    assert event["log_level"] == LogLevel.critical
    assert event["log_failure"].check(KeyError)
    assert event["name"] == "nightingale"


@pytest.mark.parametrize(
    ("check", "key"),
    [
        (nb15.check_longest_line, "check_longest_line"),
        (nb15.check_logged_fetch, "check_logged_fetch"),
    ],
)
def test_no_verdict_leaves_an_unhandled_error_behind(check: Any, key: str) -> None:
    reported: list[dict[str, Any]] = []

    def observer(event: dict[str, Any]) -> None:
        if "Unhandled error in Deferred" in str(event.get("log_format")):
            reported.append(event)

    gc.collect()
    globalLogPublisher.addObserver(cast(ILogObserver, observer))
    try:
        given = answers.SOLUTIONS[key]
        for answer in [given.solution, *given.also_right, *given.wrong]:
            check(answer)
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(cast(ILogObserver, observer))
    assert not reported, f"{len(reported)} Deferred(s) left failing unhandled"
