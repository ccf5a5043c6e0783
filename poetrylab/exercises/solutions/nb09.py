"""Model answers for notebook 09 (many Deferreds, cancellation, timeouts), with wrong ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, gatherResults
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
    gathered.addCallback(lambda poems: dict(zip(names, poems, strict=True)))
    return gathered


def fetch_all_starter(fetch: Fetch, names: list[str]) -> Deferred[Any]:
    """Wrong (the notebook's starter): a list, and a missing poem fails everything."""
    return gatherResults([fetch(name) for name in names])


def fetch_all_hides_errors(fetch: Fetch, names: list[str]) -> Deferred[Any]:
    """Wrong: every failure becomes None, the garbled download too."""
    downloads = [fetch(name).addErrback(lambda _: None) for name in names]
    gathered = gatherResults(downloads)
    gathered.addCallback(lambda poems: dict(zip(names, poems, strict=True)))
    return gathered


async def fetch_all_one_by_one(fetch: Fetch, names: list[str]) -> dict[str, str | None]:
    """Wrong: one download after another."""
    poems: dict[str, str | None] = {}
    for name in names:
        try:
            poems[name] = await fetch(name)
        except KeyError:
            poems[name] = None
    return poems


def fetch_with_deadline(fetch: Fetch, name: str, seconds: float, clock: Any) -> Deferred[str]:
    """The poem, or '(too slow)' once ``seconds`` have passed (the download is cancelled)."""

    def too_slow(failure: Failure) -> str:
        failure.trap(defer.TimeoutError)
        return "(too slow)"

    d = fetch(name)
    d.addTimeout(seconds, clock)
    d.addErrback(too_slow)
    return d


def deadline_starter(fetch: Fetch, name: str, seconds: float, clock: Any) -> Deferred[str]:
    """Wrong (the notebook's starter): no deadline at all."""
    return fetch(name)


def deadline_builtin_timeout(fetch: Fetch, name: str, seconds: float, clock: Any) -> Any:
    """Wrong: traps Python's built-in TimeoutError, which addTimeout does not raise."""
    d = fetch(name)
    d.addTimeout(seconds, clock)
    d.addErrback(lambda failure: failure.trap(TimeoutError) and "(too slow)")
    return d


def deadline_hand_cancel(fetch: Fetch, name: str, seconds: float, clock: Any) -> Any:
    """Wrong: cancels by hand, but a cancelled download is not turned into '(too slow)'."""
    d = fetch(name)
    clock.callLater(seconds, d.cancel)
    return d


def deadline_recovers_all(fetch: Fetch, name: str, seconds: float, clock: Any) -> Any:
    """Wrong: a missing poem is reported as too slow."""
    d = fetch(name)
    d.addTimeout(seconds, clock)
    d.addErrback(lambda failure: "(too slow)")
    return d


SOLUTIONS = {
    "check_list_results": Answers(
        solution={
            "DeferredList": [(True, "Tyger"), (False, "KeyError"), (True, "Hope")],
            "fireOnOneCallback": ("Hope", 2),
            "gatherResults": "FirstError",
        },
        wrong=[
            {
                "DeferredList": [(False, "KeyError"), (True, "Hope"), (True, "Tyger")],
                "fireOnOneCallback": ("Hope", 2),
                "gatherResults": "FirstError",
            },
            {
                "DeferredList": [(True, "Tyger"), (False, KeyError), (True, "Hope")],
                "fireOnOneCallback": ("KeyError", 1),
                "gatherResults": "FirstError",
            },
            {
                "DeferredList": [(True, "Tyger"), (False, "KeyError"), (True, "Hope")],
                "fireOnOneCallback": ("Hope", 2),
                "gatherResults": ["Tyger", None, "Hope"],
            },
            {"DeferredList": []},
        ],
    ),
    "check_fetch_all": Answers(
        solution=fetch_all,
        wrong=[fetch_all_starter, fetch_all_hides_errors, fetch_all_one_by_one],
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
