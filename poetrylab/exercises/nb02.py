"""Checks for notebook 02 (the reactor).

* :func:`check_countdown` — the learner's ``countdown(clock, n, said)``: timers with
  ``callLater`` (run on a ``task.Clock``: no real time passes).
* :func:`check_one_at_a_time` — the learner's ``one_at_a_time(reactor, items, work)``:
  long work split into one item per turn of the reactor, so the reactor keeps serving
  (run on :class:`TurnByTurnReactor`, whose turns the check counts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from poetrylab.exercises._feedback import (
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
    short,
)

__all__ = ["TurnByTurnReactor", "check_countdown", "check_one_at_a_time"]


def _said_at(n: int) -> list[list[Any]]:
    """What ``said`` holds after 0, 1, ..., n seconds."""
    numbers = list(range(n, 0, -1))
    return [numbers[: t + 1] for t in range(n)] + [[*numbers, "liftoff!"]]


@exercise("02")
def check_countdown(countdown: Any) -> Feedback:
    """``countdown(clock, n, said)`` appends n, n-1, ..., 1 to ``said`` one second apart (the
    first at once), then "liftoff!" a second after the 1; it schedules, it never sleeps."""
    name = "check_countdown"
    if not callable(countdown):
        return failed(
            name,
            "pass your function itself",
            expected="countdown",
            got=short(countdown),
            hint="def countdown(clock, n, said): ...",
        )
    for n in (3, 1):
        clock, said = Clock(), []
        started = time.monotonic()
        ok, error = run_learner_code(countdown, clock, n, said)
        if not ok:
            return failed(name, f"countdown(clock, {n}, said) raised an error", got=error)
        if time.monotonic() - started > 0.5:
            return failed(
                name,
                "countdown took real time to return: it must not sleep",
                hint="schedule each step with clock.callLater(1, ...) and return.",
            )
        for second, want in enumerate(_said_at(n)):
            if said != want:
                return failed(
                    name,
                    f"with n={n}, `said` is wrong after {second} s",
                    expected=repr(want),
                    got=repr(said),
                    hint="append n straight away; schedule the next step with "
                    "clock.callLater(1, ...); after the 1 comes 'liftoff!'.",
                )
            ok, error = run_learner_code(clock.advance, 1)
            if not ok:
                return failed(
                    name, f"a timer of countdown(clock, {n}, said) raised an error", got=error
                )
        run_learner_code(clock.advance, 10)
        if said != _said_at(n)[-1] or clock.getDelayedCalls():
            return failed(
                name,
                f"with n={n}, the countdown goes on after 'liftoff!'",
                expected=repr(_said_at(n)[-1]),
                got=repr(said),
                hint="schedule nothing more once 'liftoff!' is said.",
            )
    return passed(name, "3, 2, 1, liftoff! at 0, 1, 2 and 3 seconds, every step from a timer.")


class TurnByTurnReactor:
    """A stand-in for the reactor that runs one *turn* at a time.

    As in the real reactor, ``callLater(0, f)`` during a turn runs ``f`` in the next turn;
    :meth:`turn` runs the calls that were due when it began. Time never moves.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append((f, args))

    def turn(self) -> None:
        due, self.calls = self.calls, []
        for f, args in due:
            f(*args)


_ITEMS = ["Tyger", "tyger", "burning", "bright"]


@exercise("02")
def check_one_at_a_time(one_at_a_time: Any) -> Feedback:
    """``one_at_a_time(reactor, items, work)`` calls ``work(item)`` for one item per turn of
    the reactor and returns a Deferred that fires with how many items it did."""
    name = "check_one_at_a_time"
    if not callable(one_at_a_time):
        return failed(
            name,
            "pass your function itself",
            expected="one_at_a_time",
            got=short(one_at_a_time),
            hint="def one_at_a_time(reactor, items, work): ...",
        )
    reactor, done = TurnByTurnReactor(), []
    ok, d = run_learner_code(one_at_a_time, reactor, list(_ITEMS), done.append)
    if not ok:
        return failed(name, "one_at_a_time raised an error", got=d)
    if not isinstance(d, Deferred):
        return failed(
            name,
            "one_at_a_time should return a Deferred",
            expected="a Deferred",
            got=short(d),
            hint="create finished = Deferred(), return it, fire it at the end.",
        )
    if len(done) > 1:
        return failed(
            name,
            "several items were processed before one_at_a_time returned",
            expected="at most 1",
            got=str(len(done)),
            hint="meanwhile the reactor could do nothing else: process one item, then "
            "reactor.callLater(0, ...) to process the next one in the next turn.",
        )
    for turn in range(1, 2 * len(_ITEMS) + 2):
        before = len(done)
        ok, error = run_learner_code(reactor.turn)
        if not ok:
            return failed(name, f"turn {turn} of the reactor raised an error", got=error)
        if len(done) - before > 1:
            return failed(
                name,
                f"turn {turn} processed several items",
                expected="1 item per turn",
                got=str(len(done) - before),
                hint="after each item, give the reactor back: reactor.callLater(0, ...).",
            )
        if d.called:
            break
    if not d.called:
        return failed(
            name,
            "the Deferred never fired",
            got=f"items processed: {done}",
            hint="call finished.callback(count) once the last item is done.",
        )
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    if isinstance(outcome[0], Failure):
        return failed(name, "the Deferred failed", got=outcome[0].getErrorMessage())
    if done != _ITEMS:
        return failed(
            name,
            "work() should see every item once, in order",
            expected=repr(_ITEMS),
            got=repr(done),
        )
    if outcome[0] != len(_ITEMS):
        return failed(
            name,
            "the Deferred should fire with the number of items",
            expected=str(len(_ITEMS)),
            got=short(outcome[0]),
        )
    return passed(
        name, "one item per turn: between any two, the reactor was free to serve everyone else."
    )
