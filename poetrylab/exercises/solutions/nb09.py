"""Model answers for notebook 09 (many Deferreds, cancellation, timeouts), with wrong ones."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from poetrylab.exercises import Answers

Fetch = Callable[[str], Deferred[str]]


def fetch_all(fetch: Fetch, names: list[str]) -> Deferred[dict[str, str | None]]:
    """Every download at once; a missing poem becomes None; other failures fail the whole."""

    def missing(failure: Failure) -> None:
        failure.trap(KeyError)
        return None

    downloads = [fetch(name).addErrback(missing) for name in names]
    gathered = gatherResults(downloads, consumeErrors=True)
    return gathered.addCallback(lambda poems: dict(zip(names, poems, strict=True)))


async def fetch_all_awaiting(fetch: Fetch, names: list[str]) -> dict[str, str | None]:
    """Also right: start them all, then await each one in an async def."""
    downloads = [fetch(name) for name in names]  # all started before the first await
    poems: dict[str, str | None] = {}
    for name, download in zip(names, downloads, strict=True):
        try:
            poems[name] = await download
        except KeyError:
            poems[name] = None
    return poems


def fetch_all_starter(fetch: Fetch, names: list[str]) -> Deferred[list[str]]:
    """Wrong (the notebook's starter): a list, and a missing poem fails everything."""
    return gatherResults([fetch(name) for name in names])


def fetch_all_hides_errors(fetch: Fetch, names: list[str]) -> Deferred[dict[str, str | None]]:
    """Wrong: every failure becomes None, the garbled download too."""
    downloads = [fetch(name).addErrback(lambda _: None) for name in names]
    gathered = gatherResults(downloads)
    return gathered.addCallback(lambda poems: dict(zip(names, poems, strict=True)))


async def fetch_all_one_by_one(fetch: Fetch, names: list[str]) -> dict[str, str | None]:
    """Wrong: one download after another."""
    poems: dict[str, str | None] = {}
    for name in names:
        try:
            poems[name] = await fetch(name)
        except KeyError:
            poems[name] = None
    return poems


def fetch_with_deadline(fetch: Fetch, name: str, seconds: float, clock: Clock) -> Deferred[str]:
    """The poem, or '(too slow)' once ``seconds`` have passed (the download is cancelled)."""

    def too_slow(failure: Failure) -> str:
        failure.trap(defer.TimeoutError)
        return "(too slow)"

    d = fetch(name)
    d.addTimeout(seconds, clock)
    return d.addErrback(too_slow)


def deadline_starter(fetch: Fetch, name: str, seconds: float, clock: Clock) -> Deferred[str]:
    """Wrong (the notebook's starter): no deadline at all."""
    return fetch(name)


def deadline_builtin_timeout(
    fetch: Fetch, name: str, seconds: float, clock: Clock
) -> Deferred[str]:
    """Wrong: traps Python's built-in TimeoutError, which addTimeout does not raise."""
    d = fetch(name)
    d.addTimeout(seconds, clock)
    d.addErrback(lambda failure: failure.trap(TimeoutError) and "(too slow)")
    return d


def deadline_hand_cancel(fetch: Fetch, name: str, seconds: float, clock: Clock) -> Deferred[str]:
    """Wrong: cancels by hand, but a cancelled download is not turned into '(too slow)'."""
    d = fetch(name)
    clock.callLater(seconds, d.cancel)
    return d


def deadline_recovers_all(fetch: Fetch, name: str, seconds: float, clock: Clock) -> Deferred[str]:
    """Wrong: a missing poem is reported as too slow."""
    d = fetch(name)
    d.addTimeout(seconds, clock)
    d.addErrback(lambda failure: "(too slow)")
    return d


SOLUTIONS = {
    "check_fetch_all": Answers(
        solution=fetch_all,
        wrong=[fetch_all_starter, fetch_all_hides_errors, fetch_all_one_by_one],
        also_right=[fetch_all_awaiting],
    ),
    "check_deadline": Answers(
        solution=fetch_with_deadline,
        wrong=[
            deadline_starter,
            deadline_builtin_timeout,
            deadline_hand_cancel,
            deadline_recovers_all,
        ],
    ),
}
