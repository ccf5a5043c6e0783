"""Model answers for notebook 08 (inlineCallbacks and coroutines), with wrong answers to catch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults

from poetrylab.exercises import Answers


async def shout_poem(fetch: Callable[[str], Deferred[str]], name: str) -> str:
    """The chain fetch -> upper -> trap KeyError, as a coroutine."""
    try:
        poem = await fetch(name)
        return poem.upper()
    except KeyError:
        return "(no such poem)"


async def shout_poem_starter(fetch: Callable[[str], Deferred[str]], name: str) -> str:
    """Wrong (the notebook's starter): a missing poem ends in a Failure."""
    poem = await fetch(name)
    return poem.upper()


async def shout_poem_catches_all(fetch: Callable[[str], Deferred[str]], name: str) -> str:
    """Wrong: a bare except hides the ValueError too."""
    try:
        poem = await fetch(name)
        return poem.upper()
    except Exception:
        return "(no such poem)"


def shout_poem_not_async(fetch: Callable[[str], Deferred[str]], name: str) -> Any:
    """Wrong: not a coroutine function (a plain chain)."""
    return fetch(name).addCallback(str.upper)


async def fetch_both(fetch: Callable[[str], Deferred[str]], first: str, second: str) -> list[str]:
    """Start both downloads, then wait for each."""
    a = fetch(first)
    b = fetch(second)
    return [await a, await b]


async def fetch_both_gathered(
    fetch: Callable[[str], Deferred[str]], first: str, second: str
) -> list[str]:
    """Also right: gatherResults waits for both."""
    return await gatherResults([fetch(first), fetch(second)])


def fetch_both_not_async(
    fetch: Callable[[str], Deferred[str]], first: str, second: str
) -> Deferred[list[str]]:
    """Wrong: right as a Deferred, but the exercise asks for an async def."""
    return gatherResults([fetch(first), fetch(second)])


async def fetch_one_by_one(
    fetch: Callable[[str], Deferred[str]], first: str, second: str
) -> list[str]:
    """Wrong (the notebook's starter): the second download starts after the first ends."""
    a = await fetch(first)
    b = await fetch(second)
    return [a, b]


async def fetch_both_in_arrival_order(
    fetch: Callable[[str], Deferred[str]], first: str, second: str
) -> list[str]:
    """Wrong: results in the order they arrived."""
    poems: list[str] = []
    a = fetch(first).addCallback(poems.append)
    b = fetch(second).addCallback(poems.append)
    await a
    await b
    return poems


SOLUTIONS = {
    "check_run_order": Answers(
        solution="M1 W1 W2 M2 W3 M3",
        wrong=["M1 M2 W1 W2 W3 M3", "M1 W1 M2 W2 W3 M3", "M1 W1 W2 M2 M3 W3", "M1", "M1 X1"],
        also_right=["M1W1W2M2W3M3", "m1, w1, w2, m2, w3, m3", "M1 → W1 → W2 → M2 → W3 → M3"],
    ),
    "check_shout_poem": Answers(
        solution=shout_poem,
        wrong=[shout_poem_starter, shout_poem_catches_all, shout_poem_not_async],
    ),
    "check_fetch_both": Answers(
        solution=fetch_both,
        wrong=[fetch_one_by_one, fetch_both_in_arrival_order, fetch_both_not_async],
        also_right=[fetch_both_gathered],
    ),
}
