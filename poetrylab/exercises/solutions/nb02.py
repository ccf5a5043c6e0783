"""Model solutions (and wrong answers the checks must catch) for notebook 02."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

from poetrylab.exercises import Answers

# -- exercise 1: a countdown made of timers ---------------------------------------------


def countdown(clock: Any, n: int, said: list[Any]) -> None:
    """Say n now; schedule the rest of the countdown one second later."""
    said.append(n)
    if n > 1:
        clock.callLater(1, countdown, clock, n - 1, said)
    else:
        clock.callLater(1, said.append, "liftoff!")


def sleepy_countdown(clock: Any, n: int, said: list[Any]) -> None:
    """Wrong: sleeps in the reactor instead of scheduling."""
    for number in range(n, 0, -1):
        said.append(number)
        time.sleep(0.3)
    said.append("liftoff!")


def all_at_once(clock: Any, n: int, said: list[Any]) -> None:
    """Wrong: every timer set for one second from now."""
    for number in range(n, 0, -1):
        clock.callLater(1, said.append, number)
    clock.callLater(1, said.append, "liftoff!")


def no_liftoff(clock: Any, n: int, said: list[Any]) -> None:
    """Wrong: forgets the liftoff."""
    said.append(n)
    if n > 1:
        clock.callLater(1, no_liftoff, clock, n - 1, said)


# -- exercise 2: one item per turn of the reactor ---------------------------------------


def one_at_a_time(reactor: Any, items: list[Any], work: Callable[[Any], Any]) -> Deferred[int]:
    """Do one item, then give the reactor back until the next turn."""
    finished: Deferred[int] = Deferred()
    todo = list(items)

    def step(count: int) -> None:
        if not todo:
            finished.callback(count)
            return
        work(todo.pop(0))
        reactor.callLater(0, step, count + 1)

    step(0)
    return finished


def all_in_one_go(reactor: Any, items: list[Any], work: Callable[[Any], Any]) -> Deferred[int]:
    """Wrong: the loop holds the reactor until every item is done."""
    for item in items:
        work(item)
    return succeed(len(items))


def never_fires(reactor: Any, items: list[Any], work: Callable[[Any], Any]) -> Deferred[int]:
    """Wrong: schedules the items but never says it has finished."""
    for i, item in enumerate(items):
        reactor.callLater(i, work, item)
    return Deferred()


SOLUTIONS = {
    "check_countdown": Answers(
        solution=countdown, wrong=[sleepy_countdown, all_at_once, no_liftoff]
    ),
    "check_one_at_a_time": Answers(
        solution=one_at_a_time, wrong=[all_in_one_go, never_fires, None]
    ),
}
