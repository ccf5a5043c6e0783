"""Model solutions (and wrong answers the checks must catch) for notebook 02."""

from __future__ import annotations

import time
from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall

from poetrylab._typing import ReactorTime
from poetrylab.exercises import Answers

# -- exercise 1: a countdown made of timers ---------------------------------------------


def countdown(clock: ReactorTime, n: int, said: list[object]) -> None:
    """Say n now; schedule the rest of the countdown one second later."""
    said.append(n)
    if n > 1:
        clock.callLater(1, countdown, clock, n - 1, said)
    else:
        clock.callLater(1, said.append, "liftoff!")


def sleepy_countdown(clock: ReactorTime, n: int, said: list[object]) -> None:
    """Wrong: sleeps in the reactor instead of scheduling."""
    for number in range(n, 0, -1):
        said.append(number)
        time.sleep(0.3)
    said.append("liftoff!")


def all_at_once(clock: ReactorTime, n: int, said: list[object]) -> None:
    """Wrong: every timer set for one second from now."""
    for number in range(n, 0, -1):
        clock.callLater(1, said.append, number)
    clock.callLater(1, said.append, "liftoff!")


def no_liftoff(clock: ReactorTime, n: int, said: list[object]) -> None:
    """Wrong: forgets the liftoff."""
    said.append(n)
    if n > 1:
        clock.callLater(1, no_liftoff, clock, n - 1, said)


def keeps_ticking(clock: ReactorTime, n: int, said: list[object]) -> None:
    """Wrong: says liftoff at the right time, but leaves a timer ticking long after it."""
    countdown(clock, n, said)
    clock.callLater(30, said.clear)


# -- exercise 2: one item per turn of the reactor ---------------------------------------


def one_at_a_time(
    reactor: ReactorTime, items: list[object], work: Callable[[object], object]
) -> Deferred[int]:
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


def one_at_a_time_iterating(
    reactor: ReactorTime, items: list[object], work: Callable[[object], object]
) -> Deferred[int]:
    """Also right: an iterator remembers where we are, and 0.0 is no delay."""
    finished: Deferred[int] = Deferred()
    todo = iter(items)
    done = 0

    def step() -> None:
        nonlocal done
        for item in todo:  # one item, then give the reactor back
            work(item)
            done += 1
            reactor.callLater(0.0, step)
            return
        finished.callback(done)

    step()
    return finished


class _Unhurried:
    """A reactor whose every timer waits 0.1 s longer than asked."""

    def __init__(self, reactor: ReactorTime) -> None:
        self.reactor = reactor

    def callLater(self, delay: float, f: Callable[..., object], *args: object) -> IDelayedCall:
        return self.reactor.callLater(delay + 0.1, f, *args)

    def seconds(self) -> float:
        return self.reactor.seconds()


def waits_between_items(
    reactor: ReactorTime, items: list[object], work: Callable[[object], object]
) -> Deferred[int]:
    """Wrong: one item per turn, but the reactor is told to wait 0.1 s between them
    (the model answer with callLater(0.1, ...))."""
    return one_at_a_time(_Unhurried(reactor), items, work)


def all_in_one_go(
    reactor: ReactorTime, items: list[object], work: Callable[[object], object]
) -> Deferred[int]:
    """Wrong: the loop holds the reactor until every item is done."""
    for item in items:
        work(item)
    return succeed(len(items))


def never_fires(
    reactor: ReactorTime, items: list[object], work: Callable[[object], object]
) -> Deferred[int]:
    """Wrong: schedules the items but never says it has finished."""
    for i, item in enumerate(items):
        reactor.callLater(i, work, item)
    return Deferred()


SOLUTIONS = {
    "check_countdown": Answers(
        solution=countdown, wrong=[sleepy_countdown, all_at_once, no_liftoff, keeps_ticking]
    ),
    "check_one_at_a_time": Answers(
        solution=one_at_a_time,
        wrong=[all_in_one_go, never_fires, waits_between_items, None],
        also_right=[one_at_a_time_iterating],
    ),
}
