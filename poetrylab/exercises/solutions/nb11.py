"""Model solutions (and wrong answers the checks must catch) for notebook 11."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import threads
from twisted.internet.defer import Deferred, gatherResults, succeed

from poetrylab.exercises import Answers

Fingerprint = Callable[[bytes], str]
Report = Callable[[int, int], object]

# -- exercise 1: fingerprints in the thread pool -------------------------------------------


def fingerprint_all(poems: Sequence[bytes], fingerprint: Fingerprint) -> Deferred[list[str]]:
    """One thread of the reactor's pool per poem (as many at once as the pool allows)."""
    return gatherResults([threads.deferToThread(fingerprint, poem) for poem in poems])


def one_thread_for_all(poems: Sequence[bytes], fingerprint: Fingerprint) -> Deferred[list[str]]:
    """Also right: one thread fingerprints them all, one after another (slower, but the
    reactor is free all along)."""
    return threads.deferToThread(lambda: [fingerprint(poem) for poem in poems])


def blocks(poems: Sequence[bytes], fingerprint: Fingerprint) -> Deferred[list[str]]:
    """Wrong (the starter): every fingerprint computes in the reactor thread."""
    return succeed([fingerprint(poem) for poem in poems])


def calls_before_handing_over(
    poems: Sequence[bytes], fingerprint: Fingerprint
) -> Deferred[list[str]]:
    """Wrong: fingerprint(poem) runs here, and its result is handed to the thread."""
    return gatherResults([threads.deferToThread(fingerprint(poem)) for poem in poems])  # type: ignore[arg-type]  # the mistake


def joins_its_threads(poems: Sequence[bytes], fingerprint: Fingerprint) -> Deferred[list[str]]:
    """Wrong: the work is in threads, but the reactor thread waits for them."""
    results: list[str] = [""] * len(poems)

    def work(i: int, poem: bytes) -> None:
        results[i] = fingerprint(poem)

    workers = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate(poems)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return succeed(results)


def fires_from_its_thread(poems: Sequence[bytes], fingerprint: Fingerprint) -> Deferred[list[str]]:
    """Wrong: a thread of its own fires the Deferred, so the callbacks run in that thread."""
    d: Deferred[list[str]] = Deferred()

    def work() -> None:
        d.callback([fingerprint(poem) for poem in poems])

    threading.Thread(target=work).start()
    return d


def forgets_the_results(poems: Sequence[bytes], fingerprint: Fingerprint) -> None:
    """Wrong: callInThread runs them in threads, but nobody gets their results."""
    from twisted.internet import reactor

    for poem in poems:
        reactor.callInThread(fingerprint, poem)  # type: ignore[attr-defined]  # the global reactor


def only_the_first(poems: Sequence[bytes], fingerprint: Fingerprint) -> Deferred[str]:
    """Wrong: fingerprints one poem."""
    return threads.deferToThread(fingerprint, poems[0])


# -- exercise 2: progress from a worker thread ---------------------------------------------


def count_words(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Count in the worker; have the reactor thread call report after each line."""
    words = 0
    for done, line in enumerate(lines, start=1):
        words += len(line.split())
        reactor.callFromThread(report, done, words)
    return words


def waits_for_each_report(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Also right: blockingCallFromThread runs report in the reactor thread and waits for
    it (slower: the worker waits for the reactor after every line)."""
    words = 0
    for done, line in enumerate(lines, start=1):
        words += len(line.split())
        threads.blockingCallFromThread(reactor, report, done, words)
    return words


def reports_from_the_worker(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Wrong (the starter): report runs in the worker thread."""
    words = 0
    for done, line in enumerate(lines, start=1):
        words += len(line.split())
        report(done, words)
    return words


def schedules_with_call_later(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Wrong: callLater is not thread-safe (and does not wake the reactor up)."""
    words = 0
    for done, line in enumerate(lines, start=1):
        words += len(line.split())
        reactor.callLater(0, report, done, words)
    return words


def calls_report_inside(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Wrong: report(done, words) runs in the worker, and callFromThread gets its None."""
    words = 0
    for done, line in enumerate(lines, start=1):
        words += len(line.split())
        reactor.callFromThread(report(done, words))
    return words


def reports_once_at_the_end(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Wrong: one report, after the last line."""
    words = sum(len(line.split()) for line in lines)
    reactor.callFromThread(report, len(lines), words)
    return words


def counts_characters(reactor: Any, lines: Sequence[str], report: Report) -> int:
    """Wrong: counts characters, not words."""
    total = 0
    for done, line in enumerate(lines, start=1):
        total += len(line)
        reactor.callFromThread(report, done, total)
    return total


SOLUTIONS = {
    "check_fingerprint_all": Answers(
        solution=fingerprint_all,
        wrong=[
            blocks,
            calls_before_handing_over,
            joins_its_threads,
            fires_from_its_thread,
            forgets_the_results,
            only_the_first,
        ],
        also_right=[one_thread_for_all],
    ),
    "check_count_words": Answers(
        solution=count_words,
        wrong=[
            reports_from_the_worker,
            schedules_with_call_later,
            calls_report_inside,
            reports_once_at_the_end,
            counts_characters,
        ],
        also_right=[waits_for_each_report],
    ),
}
