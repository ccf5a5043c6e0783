"""Model answers for notebook 15 (debugging asynchronous code), with wrong answers to catch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from poetrylab.exercises import Answers

Fetch = Callable[[str], Deferred[str]]


# -- check_longest_line ----------------------------------------------------------------


def by_length(lines: list[str]) -> list[str]:
    """The lines, shortest first: a new list, returned for the next stage."""
    return sorted(lines, key=len)


def longest(lines: list[str]) -> str:
    return lines[-1]


def missing(failure: Failure) -> str:
    """A missing poem becomes a stand-in; anything else goes on (trap raises it again)."""
    failure.trap(KeyError)
    return "(no such poem)"


def longest_line(fetch: Fetch, name: str) -> Deferred[Any]:
    """The two bugs fixed: by_length returns its list, missing traps KeyError only."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(str.splitlines)
    d.addCallback(by_length)
    d.addCallback(longest)
    d.addErrback(missing)
    return d


def sorts_in_place(lines: list[str]) -> list[str]:
    lines.sort(key=len)
    return lines


def longest_line_in_place(fetch: Fetch, name: str) -> Deferred[Any]:
    """Also right: sort in place, then return the list."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(str.splitlines)
    d.addCallback(sorts_in_place)
    d.addCallback(longest)
    d.addErrback(missing)
    return d


async def longest_line_async(fetch: Fetch, name: str) -> str:
    """Also right: the same as a coroutine."""
    try:
        poem = await fetch(name)
    except KeyError:
        return "(no such poem)"
    return max(poem.splitlines(), key=len)


def by_length_starter(lines: list[str]) -> None:
    lines.sort(key=len)  # sorts in place, and returns None


def missing_starter(failure: Failure) -> str:
    return "(no such poem)"  # any failure at all


def longest_line_starter(fetch: Fetch, name: str) -> Deferred[Any]:
    """Wrong (the notebook's starter): by_length returns None, missing swallows everything."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(str.splitlines)
    d.addCallback(by_length_starter)
    d.addCallback(longest)
    d.addErrback(missing_starter)
    return d


def longest_line_still_loses(fetch: Fetch, name: str) -> Deferred[Any]:
    """Wrong: the errback is fixed, by_length still returns None."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(str.splitlines)
    d.addCallback(by_length_starter)
    d.addCallback(longest)
    d.addErrback(missing)
    return d


def longest_line_still_swallows(fetch: Fetch, name: str) -> Deferred[Any]:
    """Wrong: by_length is fixed, the errback still hides every error."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(str.splitlines)
    d.addCallback(by_length)
    d.addCallback(longest)
    d.addErrback(missing_starter)
    return d


def longest_line_callbacks(fetch: Fetch, name: str) -> Deferred[Any]:
    """Wrong: addCallbacks(longest, missing) puts missing beside longest, where it never
    sees what longest raises; and by_length still returns None."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(str.splitlines)
    d.addCallback(by_length_starter)
    d.addCallbacks(longest, missing)
    return d


def longest_line_first(fetch: Fetch, name: str) -> Deferred[Any]:
    """Wrong: the first line, not the longest."""
    d = fetch(name)
    d.addCallback(lambda poem: poem.splitlines()[0])
    d.addErrback(missing)
    return d


def longest_line_no_wait(fetch: Fetch, name: str) -> Deferred[Any]:
    """Wrong: does not wait for the download."""
    fetch(name)
    d: Deferred[Any] = Deferred()
    d.callback("(no such poem)")
    return d


# -- check_logged_fetch ----------------------------------------------------------------


def got_poem(poem: str, log: Logger, name: str) -> str:
    log.info("{name}: {lines} lines", name=name, lines=len(poem.splitlines()))
    return poem


def failed(failure: Failure, log: Logger, name: str) -> Failure:
    log.failure("{name}: download failed", failure, name=name)
    return failure  # logged, not handled: the caller still sees it


def fetch_and_log(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Each callback gets its own download's name, and gives it to the log as a field."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(got_poem, log, name)
    d.addErrback(failed, log, name)
    return d


def fetch_and_log_closures(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Also right: closures, one pair per call, each holding its own name."""

    def arrived(poem: str) -> str:
        log.info("poem {name!r} arrived: {lines} lines", name=name, lines=len(poem.splitlines()))
        return poem

    def lost(failure: Failure) -> Failure:
        log.failure("could not download {name}", failure, name=name)
        return failure

    return fetch(name).addCallbacks(arrived, lost)


async def fetch_and_log_async(fetch: Fetch, name: str, log: Logger) -> str:
    """Also right: a coroutine; the name is a local variable of each call."""
    try:
        poem = await fetch(name)
    except KeyError:
        log.failure("{name}: download failed", name=name)  # the Failure being handled
        raise
    log.info("{name}: {lines} lines", name=name, lines=len(poem.splitlines()))
    return poem


def got_poem_starter(poem: str, log: Logger) -> str:
    log.info("got a poem of {lines} lines", lines=len(poem.splitlines()))
    return poem


def failed_starter(failure: Failure, log: Logger) -> Failure:
    log.failure("a download failed", failure)
    return failure


def fetch_and_log_starter(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong (the notebook's starter): no event says which poem it is about."""
    d: Deferred[Any] = fetch(name)
    d.addCallback(got_poem_starter, log)
    d.addErrback(failed_starter, log)
    return d


_current = {"name": ""}  # one value shared by every download in flight


def got_poem_shared(poem: str, log: Logger) -> str:
    log.info("{name}: {lines} lines", name=_current["name"], lines=len(poem.splitlines()))
    return poem


def failed_shared(failure: Failure, log: Logger) -> Failure:
    log.failure("{name}: download failed", failure, name=_current["name"])
    return failure


def fetch_and_log_shared(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong: the name kept in one shared place is the last download's by the time a
    callback runs."""
    _current["name"] = name
    d: Deferred[Any] = fetch(name)
    d.addCallback(got_poem_shared, log)
    d.addErrback(failed_shared, log)
    return d


def fetch_and_log_fstring(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong: the name is baked into the text; no field carries it."""

    def arrived(poem: str) -> str:
        log.info(f"{name}: {len(poem.splitlines())} lines")
        return poem

    def lost(failure: Failure) -> Failure:
        log.failure(f"{name}: download failed", failure)
        return failure

    return fetch(name).addCallbacks(arrived, lost)


def fetch_and_log_swallows(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong: the failure is logged, and then swallowed."""

    def lost(failure: Failure) -> None:
        log.failure("{name}: download failed", failure, name=name)

    d: Deferred[Any] = fetch(name)
    d.addCallback(got_poem, log, name)
    d.addErrback(lost)
    return d


def fetch_and_log_no_failure(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong: the failure is logged as text, without the Failure and its traceback."""

    def lost(failure: Failure) -> Failure:
        log.error("{name}: download failed: {why}", name=name, why=failure.getErrorMessage())
        return failure

    d: Deferred[Any] = fetch(name)
    d.addCallback(got_poem, log, name)
    d.addErrback(lost)
    return d


def fetch_and_log_forgets_poem(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong: the logging callback forgets to return the poem."""

    def arrived(poem: str) -> None:
        log.info("{name}: {lines} lines", name=name, lines=len(poem.splitlines()))

    d: Deferred[Any] = fetch(name)
    d.addCallback(arrived)
    d.addErrback(failed, log, name)
    return d


def fetch_and_log_name_not_in_text(fetch: Fetch, name: str, log: Logger) -> Deferred[Any]:
    """Wrong: the name is a field, but the message a person reads does not say it."""

    def arrived(poem: str) -> str:
        log.info("a poem of {lines} lines", name=name, lines=len(poem.splitlines()))
        return poem

    d: Deferred[Any] = fetch(name)
    d.addCallback(arrived)
    d.addErrback(failed, log, name)
    return d


SOLUTIONS = {
    "check_longest_line": Answers(
        solution=longest_line,
        wrong=[
            longest_line_starter,
            longest_line_still_loses,
            longest_line_still_swallows,
            longest_line_callbacks,
            longest_line_first,
            longest_line_no_wait,
        ],
        also_right=[longest_line_in_place, longest_line_async],
    ),
    "check_logged_fetch": Answers(
        solution=fetch_and_log,
        wrong=[
            fetch_and_log_starter,
            fetch_and_log_shared,
            fetch_and_log_fstring,
            fetch_and_log_swallows,
            fetch_and_log_no_failure,
            fetch_and_log_forgets_poem,
            fetch_and_log_name_not_in_text,
        ],
        also_right=[fetch_and_log_closures, fetch_and_log_async],
    ),
}
