"""Model answers for notebook 12 (Twisted meets asyncio), with wrong answers to catch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, gatherResults

from poetrylab.exercises import Answers

Fetch = Callable[[Any], Deferred[str]]


def as_deferred(coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """asyncio runs the coroutine (a task on its loop); Twisted sees the task as a Deferred."""
    return Deferred.fromFuture(loop.create_task(coroutine))


def as_deferred_ensure_future(
    coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop
) -> Any:
    """Also right: asyncio.ensure_future makes the same task."""
    return Deferred.fromFuture(asyncio.ensure_future(coroutine, loop=loop))


def driven_by_twisted(coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Wrong (the starter): Twisted drives the coroutine, and it awaits asyncio Futures."""
    return Deferred.fromCoroutine(coroutine)


def ensure_deferred(coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Wrong: the same mistake under its older name."""
    return ensureDeferred(coroutine)


def future_of_a_coroutine(
    coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop
) -> Any:
    """Wrong: a coroutine is not a Future yet."""
    return Deferred.fromFuture(coroutine)  # type: ignore[arg-type]  # the bug


def the_task_itself(coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Wrong: an asyncio Task is not a Deferred."""
    return loop.create_task(coroutine)


def bridged_by_hand(coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Wrong: a hand-made bridge with no canceller, and an error in the task is lost (the
    done-callback raises, asyncio logs it, the Deferred never fires)."""
    d: Deferred[Any] = Deferred()
    task = loop.create_task(coroutine)
    task.add_done_callback(lambda done: d.callback(done.result()))
    return d


def bridged_without_cancel(
    coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop
) -> Any:
    """Wrong: results and errors reach the Deferred, but cancelling it leaves the task."""
    d: Deferred[Any] = Deferred()
    task = loop.create_task(coroutine)

    def done(finished: asyncio.Task[Any]) -> None:
        if finished.cancelled():
            d.cancel()
        elif finished.exception() is not None:
            d.errback(finished.exception())
        else:
            d.callback(finished.result())

    task.add_done_callback(done)
    return d


async def first_lines(fetch: Fetch, addresses: list[Any]) -> list[str]:
    """Every download's Deferred as a Future of the running loop, awaited together."""
    loop = asyncio.get_running_loop()
    poems = await asyncio.gather(*(fetch(address).asFuture(loop) for address in addresses))
    return [poem.splitlines()[0] for poem in poems]


async def first_lines_one_deferred(fetch: Fetch, addresses: list[Any]) -> list[str]:
    """Also right: gather on Twisted's side, then one Future for the lot."""
    loop = asyncio.get_running_loop()
    poems = await gatherResults([fetch(address) for address in addresses]).asFuture(loop)
    return [poem.splitlines()[0] for poem in poems]


async def awaits_the_deferred(fetch: Fetch, addresses: list[Any]) -> list[str]:
    """Wrong (the starter): an asyncio task cannot await a Deferred."""
    return [(await fetch(address)).splitlines()[0] for address in addresses]


async def one_at_a_time(fetch: Fetch, addresses: list[Any]) -> list[str]:
    """Wrong: right Futures, but each download waits for the one before it."""
    loop = asyncio.get_running_loop()
    lines = []
    for address in addresses:
        poem = await fetch(address).asFuture(loop)
        lines.append(poem.splitlines()[0])
    return lines


async def another_loop(fetch: Fetch, addresses: list[Any]) -> list[str]:
    """Wrong: Futures of a new loop, which nothing runs."""
    elsewhere = asyncio.new_event_loop()
    try:
        poems = await asyncio.gather(*(fetch(a).asFuture(elsewhere) for a in addresses))
    finally:
        elsewhere.close()
    return [poem.splitlines()[0] for poem in poems]


async def as_they_finish(fetch: Fetch, addresses: list[Any]) -> list[str]:
    """Wrong: all at once, but in the order the downloads finished."""
    loop = asyncio.get_running_loop()
    futures = [fetch(address).asFuture(loop) for address in addresses]
    return [(await next_done).splitlines()[0] for next_done in asyncio.as_completed(futures)]


SOLUTIONS = {
    "check_as_deferred": Answers(
        solution=as_deferred,
        wrong=[
            driven_by_twisted,
            ensure_deferred,
            future_of_a_coroutine,
            the_task_itself,
            bridged_by_hand,
            bridged_without_cancel,
        ],
        also_right=[as_deferred_ensure_future],
    ),
    "check_first_lines": Answers(
        solution=first_lines,
        wrong=[awaits_the_deferred, one_at_a_time, another_loop, as_they_finish],
        also_right=[first_lines_one_deferred],
    ),
}
