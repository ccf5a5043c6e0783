"""Model solutions (and wrong answers the checks must catch) for notebook 10."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from twisted.internet import task
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredSemaphore,
    gatherResults,
    succeed,
)

from poetrylab.exercises import Answers

Fetch = Callable[[Any], Deferred[str]]

# -- exercise 1: at most per_server downloads at once at each server ------------------------


def fetch_all_polite(fetch: Fetch, addresses: list[Any], per_server: int) -> Deferred[list[str]]:
    """One DeferredSemaphore per server: each lets per_server downloads through at a time."""
    limits: dict[Any, DeferredSemaphore] = {}
    downloads = []
    for address in addresses:
        if address not in limits:
            limits[address] = DeferredSemaphore(per_server)
        downloads.append(limits[address].run(fetch, address))
    return gatherResults(downloads)


def polite_by_hand(fetch: Fetch, addresses: list[Any], per_server: int) -> Deferred[list[str]]:
    """Also right: acquire and release by hand, releasing whether the download worked or not."""
    limits = {address: DeferredSemaphore(per_server) for address in addresses}

    def download(limit: DeferredSemaphore, address: Any) -> Deferred[str]:
        def release(result: object) -> object:
            limit.release()
            return result

        return fetch(address).addBoth(release)

    return gatherResults(
        [limits[address].acquire().addCallback(download, address) for address in addresses]
    )


def one_limit_for_all(fetch: Fetch, addresses: list[Any], per_server: int) -> Deferred[list[str]]:
    """Wrong (the notebook's starter): one limit for every server, so the others wait."""
    limit = DeferredSemaphore(per_server)
    return gatherResults([limit.run(fetch, address) for address in addresses])


def a_bigger_limit_for_all(
    fetch: Fetch, addresses: list[Any], per_server: int
) -> Deferred[list[str]]:
    """Wrong: per_server times the number of servers in all, which can all go to one."""
    limit = DeferredSemaphore(per_server * len(set(addresses)))
    return gatherResults([limit.run(fetch, address) for address in addresses])


def no_limit(fetch: Fetch, addresses: list[Any], per_server: int) -> Deferred[list[str]]:
    """Wrong: every download at once."""
    return gatherResults([fetch(address) for address in addresses])


def in_the_order_they_finished(
    fetch: Fetch, addresses: list[Any], per_server: int
) -> Deferred[list[str]]:
    """Wrong: polite, but the poems are listed as they arrive."""
    poems: list[str] = []
    limits = {address: DeferredSemaphore(per_server) for address in addresses}
    downloads = [
        limits[address].run(fetch, address).addCallback(poems.append) for address in addresses
    ]
    return gatherResults(downloads).addCallback(lambda _: poems)


def never_released(fetch: Fetch, addresses: list[Any], per_server: int) -> Deferred[list[str]]:
    """Wrong: acquires a token per download and never gives it back."""
    limits = {address: DeferredSemaphore(per_server) for address in addresses}

    def download(token: DeferredSemaphore, address: Any) -> Deferred[str]:
        return fetch(address)  # and the token is never released

    return gatherResults(
        [limits[address].acquire().addCallback(download, address) for address in addresses]
    )


def fetches_the_positions(
    fetch: Fetch, addresses: list[Any], per_server: int
) -> Deferred[list[str]]:
    """Wrong: hands fetch each address's position instead of the address."""
    limits = {address: DeferredSemaphore(per_server) for address in addresses}
    return gatherResults([limits[address].run(fetch, i) for i, address in enumerate(addresses)])


# -- exercise 2: a crawler on a stream of names ---------------------------------------------


def crawl(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str | None]]:
    """n workers over ONE generator: each takes the next name when its download is over."""
    poems: list[str | None] = []

    def keep(poem: str, index: int) -> None:
        poems[index] = poem

    def downloads() -> Iterator[Deferred[None]]:
        for name in names:
            poems.append(None)  # this name's place, filled when its poem arrives
            yield fetch(name).addCallback(keep, len(poems) - 1)

    work = downloads()
    cooperator = task.Cooperator()
    workers = [cooperator.coiterate(work) for _ in range(n)]
    return gatherResults(workers).addCallback(lambda _: poems)


def crawl_with_coiterate(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str]]:
    """Also right: the global cooperator (task.coiterate), each poem kept by its position."""
    found: dict[int, str] = {}

    def keep(poem: str, index: int) -> None:
        found[index] = poem

    def downloads() -> Iterator[Deferred[None]]:
        for index, name in enumerate(names):
            yield fetch(name).addCallback(keep, index)

    work = downloads()
    workers = DeferredList([task.coiterate(work) for _ in range(n)], fireOnOneErrback=True)
    return workers.addCallback(lambda _: [found[i] for i in sorted(found)])


def crawl_by_hand(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str]]:
    """Also right: n workers written by hand; each takes the next name when it is free."""
    stream = iter(names)
    found: dict[int, str] = {}
    taken = 0

    def keep(poem: str, index: int) -> None:
        found[index] = poem

    def worker(_: object = None) -> Deferred[None]:
        nonlocal taken
        name = next(stream, None)
        if name is None:
            return succeed(None)
        index, taken = taken, taken + 1
        return fetch(name).addCallback(keep, index).addCallback(worker)

    workers = [worker() for _ in range(n)]
    return gatherResults(workers).addCallback(lambda _: [found[i] for i in sorted(found)])


def crawl_with_a_semaphore(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str]]:
    """Wrong (the notebook's starter): right limit, but it reads the whole stream at once."""
    limit = DeferredSemaphore(n)
    return gatherResults([limit.run(fetch, name) for name in names])


def one_worker(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str | None]]:
    """Wrong: one worker, whatever n is: one download at a time."""
    return crawl(fetch, names, 1)


def every_worker_its_own_list(
    fetch: Fetch, names: Iterable[str], n: int
) -> Deferred[list[str | None]]:
    """Wrong: reads the stream into a list, then each worker takes from it."""
    return crawl(fetch, list(names), n)


def crawl_as_they_finish(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str]]:
    """Wrong: lazy and limited, but the poems are listed in the order they arrived."""
    poems: list[str] = []
    work = (fetch(name).addCallback(poems.append) for name in names)
    cooperator = task.Cooperator()
    workers = [cooperator.coiterate(work) for _ in range(n)]
    return gatherResults(workers).addCallback(lambda _: poems)


def reads_one_ahead(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str | None]]:
    """Wrong: each worker takes the next name as soon as its download starts."""
    poems: list[str | None] = []

    def keep(poem: str, index: int) -> None:
        poems[index] = poem

    def downloads() -> Iterator[Deferred[None]]:
        stream = iter(names)
        name = next(stream, None)
        while name is not None:
            poems.append(None)
            download = fetch(name).addCallback(keep, len(poems) - 1)
            name = next(stream, None)  # read ahead, before this download is over
            yield download

    work = downloads()
    cooperator = task.Cooperator()
    return gatherResults([cooperator.coiterate(work) for _ in range(n)]).addCallback(
        lambda _: poems
    )


def twice_the_workers(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str | None]]:
    """Wrong: 2n workers, so 2n downloads in flight."""
    return crawl(fetch, names, 2 * n)


def stops_early(fetch: Fetch, names: Iterable[str], n: int) -> Deferred[list[str | None]]:
    """Wrong: crawls only the first few names of the stream."""
    return crawl(fetch, itertools.islice(names, 2 * n), n)


SOLUTIONS = {
    "check_polite": Answers(
        solution=fetch_all_polite,
        wrong=[
            one_limit_for_all,
            a_bigger_limit_for_all,
            no_limit,
            in_the_order_they_finished,
            never_released,
            fetches_the_positions,
            None,
        ],
        also_right=[polite_by_hand],
    ),
    "check_crawl": Answers(
        solution=crawl,
        wrong=[
            crawl_with_a_semaphore,
            one_worker,
            every_worker_its_own_list,
            crawl_as_they_finish,
            reads_one_ahead,
            twice_the_workers,
            stops_early,
        ],
        also_right=[crawl_with_coiterate, crawl_by_hand],
    ),
}
