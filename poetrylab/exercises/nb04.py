"""Checks for notebook 04 (Deferreds): every check fires real Deferreds.

- :func:`check_path` -- predict which side of each stage runs (compared with what
  ``poetrylab.tracing.simulate`` really ran, the run the notebook draws).
- :func:`check_recover_missing` -- an errback that recovers from ``KeyError`` and nothing else.
- :func:`check_same_stage` -- ``addCallbacks(cb, eb)`` against ``addCallback(cb)`` then
  ``addErrback(eb)``: where does the errback run?
- :func:`check_fire_once` -- a waiter whose Deferred fires once, whoever calls first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import AlreadyCalledError, Deferred
from twisted.python.failure import Failure

from poetrylab.exercises._deferreds import Outcome, outcome_of
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner, run_learner_code
from poetrylab.exercises._predictions import judge_path
from poetrylab.exercises._registry import NotYet, exercise, function, subclass, value
from poetrylab.tracing import simulate

__all__ = [
    "PATH_CHAIN",
    "PATH_FIRE",
    "POEMS",
    "check_fire_once",
    "check_path",
    "check_recover_missing",
    "check_same_stage",
    "look_up",
    "parse",
    "report",
]

PATH_CHAIN = "add 1, recover 0, raise ValueError, double, recover 10, add 1, double"
"""The chain of the prediction exercise, in ``simulate``'s little language."""

PATH_FIRE = "callback(1)"
"""How the prediction exercise's chain is fired."""

POEMS = {"tyger": "Tyger Tyger, burning bright,", "hope": '"Hope" is the thing with feathers -'}
"""The tiny library :func:`look_up` reads from."""


@exercise("04", value("prediction", (str, list, tuple), '"c c e c"'), title="predict the path")
def check_path(prediction: object) -> str:
    """Compare a predicted path (``"c e ..."``, one side per stage) with what really ran."""
    actual = [side for side, _, _ in simulate(PATH_CHAIN, fire=PATH_FIRE).path()]
    return judge_path(
        prediction,
        actual,
        chain="the chain",
        count_hint="every stage runs exactly one side: its callback or its errback",
        success=f"all {len(actual)} stages right: you can read a chain.",
        miss_hint=lambda row: (
            f"what leaves {'the firing' if row == 0 else f'stage {row - 1}'}: a value or a "
            "Failure? A value goes to the next callback, a Failure to the next errback, "
            "whatever the stage was added with"
        ),
    )


def look_up(name: str) -> str:
    """The first line of the poem ``name``; KeyError if there is none, ValueError for ''."""
    if not name:
        raise ValueError("a poem needs a name")
    return POEMS[name]


def _run_lookup(errback: Callable[[Failure], object], name: str) -> Outcome:
    """Fire ``look_up -> errback -> upper`` with ``name``; return how the chain ended."""
    d: Deferred[str] = Deferred()
    d.addCallback(look_up)
    d.addErrback(errback)
    d.addCallback(lambda line: str(line).upper())
    d.callback(name)
    return outcome_of(d)


@exercise(
    "04", function("recover_missing(failure)"), title="recover from a missing poem, and only that"
)
def check_recover_missing(errback: Callable[[Failure], object]) -> str:
    """The errback must turn a KeyError into a value, and let any other Failure go on."""
    found = call_learner("the chain", _run_lookup, errback, "tyger")
    if found.kind != "value":
        raise NotYet(
            "a poem that exists no longer comes through",
            expected="'TYGER TYGER, BURNING BRIGHT,'",
            got=str(found),
            hint="an errback only runs on a Failure: nothing here should have failed",
        )
    missing = _run_lookup(errback, "nightingale")
    if missing.kind != "value":
        raise NotYet(
            "a missing poem (KeyError) still ends the chain with a Failure",
            expected="the errback returns a stand-in such as '(no such poem)'",
            got=f"the chain ended with {missing}",
            hint="returning a value from an errback recovers: the callbacks go on with it",
        )
    bug = _run_lookup(errback, "")
    if bug.kind == "value":
        raise NotYet(
            "a ValueError (a bug, not a missing poem) was swallowed",
            expected="Failure(ValueError: a poem needs a name) at the end of the chain",
            got=f"the chain went on with {bug}",
            hint="failure.trap(KeyError) re-raises anything that is not a KeyError",
        )
    if not bug.failed_with(ValueError):
        raise NotYet(
            "a ValueError came out as something else",
            expected="Failure(ValueError: a poem needs a name)",
            got=str(bug),
            hint="let the Failure you do not handle go on unchanged: trap re-raises it",
        )
    return "KeyError recovered, ValueError passed on, poems untouched."


def parse(poem: str) -> str:
    """A callback that fails: the poem has no title line."""
    raise ValueError("no title line")


def report(failure: Failure) -> str:
    """An errback that recovers from anything."""
    return "reported: " + failure.getErrorMessage()


def _report_ran(together: bool, fire_errback: bool) -> bool:
    """Whether ``report`` runs in chain A (``together``) or B, fired as told."""
    ran: list[Failure] = []

    def reporting(failure: Failure) -> str:
        ran.append(failure)
        return report(failure)

    d: Deferred[Any] = Deferred()
    if together:
        d.addCallbacks(parse, reporting)
    else:
        d.addCallback(parse)
        d.addErrback(reporting)
    if fire_errback:
        d.errback(ConnectionRefusedError("server down"))
    else:
        d.callback("Tyger Tyger, burning bright,")
    outcome_of(d)  # handles parse's Failure where nothing did
    return bool(ran)


_CHAINS = {"A": 1, "B": 1, "both": 2, "neither": 0}
"""Each choice, and in how many of the two chains it says report runs."""


def _choice(answer: object) -> str | None:
    """``"A"``, ``"B"``, ``"both"``, ``"neither"`` from any reasonable spelling, else None:
    ``"b"``, ``"B only"``, ``"A and B"``, ``"chain A"``, ``"none"``..."""
    filler = {"chain", "chains", "only", "in", "and", "nor"}
    words: set[str] = set(re.findall(r"[a-z]+", str(answer).lower())) - filler
    if words in ({"both"}, {"a", "b"}, {"ab"}):
        return "both"
    if words in ({"neither"}, {"none"}):
        return "neither"
    if words == {"a"}:
        return "A"
    if words == {"b"}:
        return "B"
    return None


_QUESTIONS = {
    "parse raises": False,  # fired with callback: parse runs, and raises
    "fired with errback": True,
}


@exercise(
    "04",
    value("answers", dict, '{"parse raises": "A", "fired with errback": "A"}'),
    title="where does report run?",
)
def check_same_stage(answers: dict[Any, Any]) -> str:
    """Answers ``{"parse raises": ..., "fired with errback": ...}``: "A", "B", "both", "neither"."""
    given = {str(key).strip().lower(): answer for key, answer in answers.items()}
    if set(given) != set(_QUESTIONS):
        raise NotYet(
            "the answers could not be read",
            expected='the keys "parse raises" and "fired with errback"',
            got="the keys " + ", ".join(repr(key) for key in answers) if answers else "no key",
            hint='answer each question with "A", "B", "both" or "neither"',
        )
    for question, fire_errback in _QUESTIONS.items():
        answer = _choice(given[question])
        if answer is None:
            raise NotYet(
                f"{short(given[question])} is not one of the choices",
                expected='"A", "B", "both" or "neither"',
                got=short(given[question]),
            )
        truth = {
            (True, True): "both", (True, False): "A", (False, True): "B", (False, False): "neither"
        }[(_report_ran(True, fire_errback), _report_ran(False, fire_errback))]  # fmt: skip
        if answer == truth:
            continue
        n = _CHAINS[truth]
        raise NotYet(
            f"not quite for '{question}'",
            expected="report runs in the other chain"
            if _CHAINS[answer] == n
            else f"report runs in {['neither', 'one', 'both'][n]} of the two chains",
            got=f"you said {answer}",
            hint="a stage runs one side only: in A, parse and report share a stage, so a "
            "Failure raised by parse goes to the stage after it"
            if question == "parse raises"
            else "a Failure from the firing reaches the first errback in either chain",
        )
    return "addCallbacks(cb, eb) is one stage; cb's errors go past eb."


def _record_firing(d: Deferred[Any]) -> list[str]:
    """A list that gets ``"callback"`` or ``"errback"`` each time ``d``'s chain reaches here."""
    fired: list[str] = []
    d.addCallbacks(lambda _: fired.append("callback"), lambda _: fired.append("errback"))
    return fired


_SCENARIOS = [
    ("the poem arrives, then the timer gives up", ["poem", "timeout"], "callback"),
    ("the timer gives up, then the poem arrives late", ["timeout", "poem"], "errback"),
    ("only the poem arrives", ["poem"], "callback"),
]


@exercise("04", subclass(object, "PoemWaiter()"), title="fire once, whoever calls first")
def check_fire_once(waiter_class: Callable[[], object]) -> str:
    """The waiter's ``deferred`` fires once: the first of ``poem_arrived``/``gave_up`` wins."""
    for story, calls, first in _SCENARIOS:
        waiter = call_learner("PoemWaiter()", waiter_class)
        d = getattr(waiter, "deferred", None)
        if not isinstance(d, Deferred):
            raise NotYet(
                "a new waiter has no Deferred",
                expected="self.deferred = Deferred() in __init__",
                got=f"self.deferred = {short(d)}",
            )
        fired = _record_firing(d)
        for call in calls:
            method_name, argument = (
                ("poem_arrived", "Tyger Tyger, burning bright,")
                if call == "poem"
                else ("gave_up", TimeoutError("no poem in 5 s"))
            )
            method = getattr(waiter, method_name, None)
            if not callable(method):
                raise NotYet(
                    f"your waiter has no method {method_name}",
                    expected=f"def {method_name}(self, ...) in the class",
                    got=f"{method_name} = {short(method)}",
                    hint="keep the starter's two methods, poem_arrived and gave_up",
                )
            ok, got = run_learner_code(method, argument)
            if not ok:
                already = AlreadyCalledError.__name__ in got
                raise NotYet(
                    f"{story}: the {'second' if call != calls[0] else 'first'} call raised",
                    expected="the late call is ignored quietly",
                    got=got,
                    hint="a Deferred fires once: take it out of self.deferred before firing "
                    "(d, self.deferred = self.deferred, None) and fire only if d is not None"
                    if already
                    else "read the error: the late call should do nothing at all",
                )
        if fired != [first]:
            raise NotYet(
                f"{story}: the Deferred did not fire as the first call said",
                expected=f"one {first}",
                got=", ".join(fired) or "it never fired",
                hint="the first call fires the Deferred; any call after that does nothing",
            )
    return "the first call fires the Deferred, the late one is ignored."
