"""Notebook 11's checks (threads and the reactor) name each mistake by what it does wrong:
which thread ran what, whether the reactor waited, which method a worker called; and the
pieces they stand on (the watched reactor, the stack probe) do what they say."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from poetrylab.exercises import EXERCISES, nb11
from poetrylab.exercises.solutions import nb11 as solutions

PINNED = [
    ("check_fingerprint_all", "blocks", "fingerprint ran in the reactor thread"),
    ("check_fingerprint_all", "calls_before_handing_over", "3 of 3 calls in the reactor thread"),
    ("check_fingerprint_all", "joins_its_threads", "waited inside fingerprint_all"),
    ("check_fingerprint_all", "fires_from_its_thread", "fired in a worker thread"),
    ("check_fingerprint_all", "forgets_the_results", "should return a Deferred"),
    ("check_fingerprint_all", "only_the_first", "in order"),
    ("check_count_words", "reports_from_the_worker", "14 of 14 reports in the worker thread"),
    ("check_count_words", "schedules_with_call_later", "reactor.callLater from its worker"),
    ("check_count_words", "calls_report_inside", "None is not callable"),
    ("check_count_words", "reports_once_at_the_end", "1 report"),
    ("check_count_words", "counts_characters", "114 words in 14 lines"),
]


@pytest.mark.parametrize(("check", "wrong", "says"), PINNED, ids=[w for _, w, _ in PINNED])
def test_each_wrong_answer_gets_the_verdict_that_names_its_mistake(
    check: str, wrong: str, says: str, reactor: object
) -> None:
    feedback = EXERCISES[f"nb11.{check}"].check(getattr(solutions, wrong))
    assert not feedback.passed
    assert says in str(feedback), str(feedback)


def test_a_fingerprint_all_that_never_fires_is_told_so(reactor: object) -> None:
    from twisted.internet.defer import Deferred

    def never(poems: Any, fingerprint: Any) -> Deferred[list[str]]:
        return Deferred()

    feedback = nb11.check_fingerprint_all(never)
    assert not feedback.passed and "never fired" in str(feedback), str(feedback)


def test_the_watched_reactor_runs_other_methods_in_the_reactor_thread_only() -> None:
    calls: list[str] = []

    class Reactor:
        def callFromThread(self, f: Any, *args: Any) -> None:
            calls.append("callFromThread")
            f(*args)

        def callLater(self, delay: float, f: Any, *args: Any) -> str:
            calls.append("callLater")
            return "a timer"

        running = True

    here = threading.get_ident()
    watched = nb11._WatchedReactor(Reactor(), reactor_thread=here)
    assert watched.callLater(0, print) == "a timer"  # in "the reactor thread": passed on
    assert watched.running is True  # a plain attribute is handed out as it is
    from_elsewhere: list[object] = []

    def worker() -> None:
        from_elsewhere.append(watched.callLater(0, print))
        watched.callFromThread(from_elsewhere.append, "called")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert from_elsewhere == [None, "called"]  # callLater refused, callFromThread passed on
    assert watched.misused == ["callLater"]
    assert calls == ["callLater", "callFromThread"]


def test_the_stack_probe_sees_a_thread_waiting_inside_a_function() -> None:
    inside, release = threading.Event(), threading.Event()

    def waits() -> None:
        inside.set()
        release.wait(5)

    thread = threading.Thread(target=waits)
    thread.start()
    try:
        assert inside.wait(5)
        assert thread.ident is not None
        assert nb11._running_in(thread.ident, nb11._codes_of(waits))
        assert not nb11._running_in(
            thread.ident, nb11._codes_of(test_a_fingerprint_all_that_never_fires_is_told_so)
        )
    finally:
        release.set()
        thread.join(5)


def test_the_codes_of_a_function_include_the_lambdas_written_inside_it() -> None:
    def outer() -> object:
        return lambda: 1

    inner = outer()
    assert inner.__code__ in nb11._codes_of(outer)  # type: ignore[attr-defined]
