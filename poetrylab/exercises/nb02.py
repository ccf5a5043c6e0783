"""Checks for notebook 02 (the reactor).

* :func:`check_countdown` — the learner's ``countdown(clock, n, said)``: timers with
  ``callLater`` (run on a ``task.Clock``: no real time passes).
* :func:`check_one_at_a_time` — the learner's ``one_at_a_time(reactor, items, work)``:
  long work split into one item per turn of the reactor, so the reactor keeps serving
  (run on :class:`TurnByTurnReactor`, whose turns the check counts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.base import DelayedCall
from twisted.internet.task import Clock

from poetrylab.exercises._deferreds import expect_deferred, outcome_of
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet, exercise, function

__all__ = ["TurnByTurnReactor", "check_countdown", "check_one_at_a_time"]


def _said_at(n: int) -> list[list[object]]:
    """What ``said`` holds after 0, 1, ..., n seconds."""
    numbers: list[object] = list(range(n, 0, -1))
    return [numbers[: t + 1] for t in range(n)] + [[*numbers, "liftoff!"]]


@exercise("02", function("countdown(clock, n, said)"), title="a countdown made of timers")
def check_countdown(countdown: Callable[[Clock, int, list[object]], object]) -> str:
    """``countdown(clock, n, said)`` appends n, n-1, ..., 1 to ``said`` one second apart (the
    first at once), then "liftoff!" a second after the 1; it schedules, it never sleeps."""
    for n in (3, 1):
        clock, said = Clock(), list[object]()
        started = time.monotonic()
        call_learner(f"countdown(clock, {n}, said)", countdown, clock, n, said)
        if time.monotonic() - started > 0.5:
            raise NotYet(
                "countdown took real time to return: it must not sleep",
                expected="countdown returns at once, having scheduled its steps",
                got="it took more than half a second to return",
                hint="schedule each step with clock.callLater(1, ...) and return.",
            )
        for second, want in enumerate(_said_at(n)):
            if said != want:
                raise NotYet(
                    f"with n={n}, `said` is wrong after {second} s",
                    expected=repr(want),
                    got=repr(said),
                    hint="append n straight away; schedule the next step with "
                    "clock.callLater(1, ...); after the 1 comes 'liftoff!'.",
                )
            call_learner(f"a timer of countdown(clock, {n}, said)", clock.advance, 1)
        call_learner(f"a timer of countdown(clock, {n}, said)", clock.advance, 10)
        if said != _said_at(n)[-1] or clock.getDelayedCalls():
            still = len(clock.getDelayedCalls())
            raise NotYet(
                f"with n={n}, the countdown goes on after 'liftoff!'",
                expected=f"{_said_at(n)[-1]!r}, and nothing left scheduled",
                got=f"{said!r}, and {still} call{'' if still == 1 else 's'} still scheduled",
                hint="schedule nothing more once 'liftoff!' is said.",
            )
    return "3, 2, 1, liftoff! at 0, 1, 2 and 3 seconds, every step from a timer."


class TurnByTurnReactor:
    """A stand-in for the reactor that runs one *turn* at a time.

    As in the real reactor, ``callLater(0, f)`` during a turn runs ``f`` in the next turn;
    :meth:`turn` runs the calls that were due when it began (whatever delay they asked
    for: its time never moves, and ``delays`` keeps what was asked). ``callLater``
    returns a real ``DelayedCall``, which can be cancelled. Not thread-safe, like a reactor.
    """

    def __init__(self) -> None:
        self.calls: list[DelayedCall] = []
        self.delays: list[float] = []

    def seconds(self) -> float:
        return 0.0

    def callLater(
        self, delay: float, f: Callable[..., object], /, *args: Any, **kwargs: Any
    ) -> DelayedCall:
        self.delays.append(delay)
        call = DelayedCall(delay, f, args, kwargs, self._forget, _no_reset, seconds=self.seconds)
        self.calls.append(call)
        return call

    def _forget(self, call: DelayedCall) -> None:
        if call in self.calls:
            self.calls.remove(call)

    def turn(self) -> None:
        """Run every call that was scheduled (and not cancelled) before this turn began."""
        due, self.calls = self.calls, []
        for call in due:
            if call.active():
                call.called = 1
                call.func(*call.args, **call.kw)


def _no_reset(call: DelayedCall) -> None:
    """TurnByTurnReactor has no clock for a reset or a delay to move."""


_ITEMS = ["Tyger", "tyger", "burning", "bright"]


@exercise("02", function("one_at_a_time(reactor, items, work)"), title="one item per turn")
def check_one_at_a_time(
    one_at_a_time: Callable[[TurnByTurnReactor, list[str], Callable[[str], None]], object],
) -> str:
    """``one_at_a_time(reactor, items, work)`` calls ``work(item)`` for one item per turn of
    the reactor (asking for no delay between them) and returns a Deferred that fires with
    how many items it did."""
    reactor = TurnByTurnReactor()
    done: list[str] = []
    threads: set[int] = set()

    def work(item: str) -> None:
        threads.add(threading.get_ident())
        done.append(item)

    call = "one_at_a_time(reactor, items, work)"
    d = expect_deferred(
        call_learner(call, one_at_a_time, reactor, list(_ITEMS), work),
        "one_at_a_time should return a Deferred",
        expected="a Deferred",
        hint="create finished = Deferred(), return it, fire it at the end.",
    )
    if len(done) > 1:
        raise NotYet(
            "several items were processed before one_at_a_time returned",
            expected="at most 1 item before it returns",
            got=f"{len(done)} items",
            hint="meanwhile the reactor could do nothing else: process one item, then "
            "reactor.callLater(0, ...) to process the next one in the next turn.",
        )
    for turn in range(1, 2 * len(_ITEMS) + 2):
        before = len(done)
        call_learner(f"turn {turn} of the reactor", reactor.turn)
        if len(done) - before > 1:
            raise NotYet(
                f"turn {turn} processed several items",
                expected="1 item per turn",
                got=f"{len(done) - before} items in one turn",
                hint="after each item, give the reactor back: reactor.callLater(0, ...).",
            )
        if d.called:
            break
    if threads - {threading.get_ident()}:
        raise NotYet(
            "work ran in another thread",
            expected="every item done by the reactor you were given, in its thread",
            got="items done in a thread of their own",
            hint="use the `reactor` argument: reactor.callLater(0, ...), not threads or the "
            "global reactor.",
        )
    if any(delay > 0 for delay in reactor.delays):
        longest = max(reactor.delays)
        raise NotYet(
            "the reactor was told to wait between items",
            expected="reactor.callLater(0, ...): the next item on the very next turn",
            got=f"reactor.callLater({longest:g}, ...)",
            hint="a delay leaves the reactor idle for nothing: with 1,000 items, "
            f"{longest:g} s each adds up to {1000 * longest:g} s of waiting.",
        )
    if not d.called:
        raise NotYet(
            "the Deferred never fired",
            expected=f"it fires with {len(_ITEMS)} after the last item",
            got=f"it had not fired after {turn} turns; items processed: {done}",
            hint="call finished.callback(count) once the last item is done.",
        )
    outcome = outcome_of(d)
    if outcome.kind == "failure":
        raise NotYet(
            "the Deferred failed",
            expected=f"it fires with {len(_ITEMS)}",
            got=str(outcome),
            hint="the error happened in one of the turns: run one_at_a_time on a short list "
            "in a cell of its own to see it.",
        )
    if done != _ITEMS:
        raise NotYet(
            "work() should see every item once, in order",
            expected=repr(_ITEMS),
            got=repr(done),
        )
    if not outcome.is_value(len(_ITEMS)):
        raise NotYet(
            "the Deferred should fire with the number of items",
            expected=str(len(_ITEMS)),
            got=str(outcome),
            hint="count the items as you go, and pass the count to finished.callback.",
        )
    return "one item per turn: between any two, the reactor was free to serve everyone else."
