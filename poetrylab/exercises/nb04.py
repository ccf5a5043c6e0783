"""Checks for notebook 04 (Deferreds): every check fires real Deferreds under the tracer.

- :func:`check_path` -- predict which side of each stage runs (compared with ``simulate``).
- :func:`check_recover_missing` -- an errback that recovers from ``KeyError`` and nothing else.
- :func:`check_same_stage` -- ``addCallbacks(cb, eb)`` against ``addCallback(cb)`` then
  ``addErrback(eb)``: where does the errback run?
- :func:`check_fire_once` -- a waiter whose Deferred fires once, whoever calls first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import AlreadyCalledError, Deferred
from twisted.python.failure import Failure

from poetrylab.exercises import Feedback, exercise, failed, passed, run_learner_code
from poetrylab.tracing import simulate, trace

__all__ = [
    "PATH_CHAIN",
    "PATH_FIRE",
    "POEMS",
    "check_fire_once",
    "check_path",
    "check_recover_missing",
    "check_same_stage",
    "judge_path",
    "look_up",
    "parse",
    "report",
    "sides_of",
]

PATH_CHAIN = "add 1, recover 0, raise ValueError, double, recover 10, add 1, double"
"""The chain of the prediction exercise, in ``simulate``'s little language."""

PATH_FIRE = "callback(1)"
"""How the prediction exercise's chain is fired."""

POEMS = {"tyger": "Tyger Tyger, burning bright,", "hope": '"Hope" is the thing with feathers -'}
"""The tiny library :func:`look_up` reads from."""

_WORDS = {"c": "callback", "cb": "callback", "callback": "callback"}
_WORDS |= {"e": "errback", "eb": "errback", "errback": "errback"}


def sides_of(prediction: str | list[str]) -> list[str]:
    """``"c e c"`` (or ``["callback", "errback", ...]``) as full side names.

    Raises ValueError naming the first word that is neither a callback nor an errback.
    """
    words = prediction.replace(",", " ").split() if isinstance(prediction, str) else prediction
    sides = []
    for word in words:
        side = _WORDS.get(str(word).strip().lower())
        if side is None:
            raise ValueError(f"{word!r} is neither c (callback) nor e (errback)")
        sides.append(side)
    return sides


def _consume(d: Deferred[Any]) -> None:
    """Handle whatever ``d`` ends with, untraced, so nothing is logged as unhandled."""
    d.addErrback(lambda failure: None)


def judge_path(
    name: str,
    prediction: str,
    actual: list[str],
    *,
    chain: str,
    example: str,
    parse_hint: str = "",
    count_hint: str,
    success: str,
    miss_hint: Callable[[int], str],
) -> Feedback:
    """Compare a predicted path (``"c e ..."``) with the ``actual`` sides, stage by stage.

    ``chain`` names the chain in the count message, ``example`` shows a well-formed
    prediction, and ``miss_hint(row)`` explains the first stage predicted wrong.
    """
    try:
        predicted = sides_of(prediction)
    except ValueError as exc:
        return failed(
            name,
            "the prediction could not be read",
            expected=example,
            got=str(exc),
            hint=parse_hint,
        )
    if len(predicted) != len(actual):
        return failed(
            name,
            f"{chain} has {len(actual)} stages, your prediction names {len(predicted)}",
            expected=f"{len(actual)} letters",
            got=f"{len(predicted)} letters",
            hint=count_hint,
        )
    if predicted == actual:
        return passed(name, success)
    right = sum(p == a for p, a in zip(predicted, actual, strict=True))
    row = next(i for i, (p, a) in enumerate(zip(predicted, actual, strict=True)) if p != a)
    return failed(
        name,
        f"{right} of {len(actual)} stages right; the first miss is stage {row}",
        expected=f"stage {row} runs its {actual[row]}",
        got=f"you said {predicted[row]}",
        hint=miss_hint(row),
    )


@exercise("04")
def check_path(prediction: str) -> Feedback:
    """Compare a predicted path (``"c e ..."``, one side per stage) with what really ran."""
    actual = [side for side, _, _ in simulate(PATH_CHAIN, fire=PATH_FIRE).path()]
    return judge_path(
        "predict the path",
        prediction,
        actual,
        chain="the chain",
        example='one letter per stage, e.g. "c c e c c e c"',
        parse_hint="write c for a callback and e for an errback, separated by spaces",
        count_hint="every stage runs exactly one side: its callback or its errback",
        success=f"all {len(actual)} stages right: you can read a chain.",
        miss_hint=lambda row: (
            f"what leaves {'the firing' if row == 0 else f'stage {row}'}: a value or a "
            "Failure? A value goes to the next callback, a Failure to the next errback, "
            "whatever the stage was added with"
        ),
    )


def look_up(name: str) -> str:
    """The first line of the poem ``name``; KeyError if there is none, ValueError for ''."""
    if not name:
        raise ValueError("a poem needs a name")
    return POEMS[name]


def _run_lookup(errback: Callable[[Failure], Any], name: str) -> tuple[Any, Any]:
    """Fire ``look_up -> errback -> upper`` with ``name``; return (trace, final result)."""
    with trace() as t:
        d: Deferred[Any] = Deferred()
        d.addCallback(look_up)
        d.addErrback(errback)
        d.addCallback(lambda line: str(line).upper())
        d.callback(name)
    final = t.snapshot().final(t.id_of(d))
    _consume(d)
    return t, final


@exercise("04")
def check_recover_missing(errback: Callable[[Failure], Any]) -> Feedback:
    """The errback must turn a KeyError into a value, and let any other Failure go on."""
    name = "recover from a missing poem"
    if not callable(errback):
        return failed(
            name,
            "pass the errback function itself",
            expected="a function taking one argument, the Failure",
            got=repr(errback),
            hint="write nb04.check_recover_missing(recover_missing), without calling it",
        )
    ok, outcome = run_learner_code(_run_lookup, errback, "tyger")
    if not ok:
        return failed(name, "the chain could not be run", got=outcome)
    _, final = outcome
    if final.value is None or final.value.is_failure:
        return failed(
            name,
            "a poem that exists no longer comes through",
            expected="'TYGER TYGER, BURNING BRIGHT,'",
            got=final.value.describe() if final.value is not None else "nothing",
            hint="an errback only runs on a Failure: nothing here should have failed",
        )
    _, final = _run_lookup(errback, "nightingale")
    if final.value is None or final.value.is_failure:
        got = final.value.describe() if final.value is not None else "nothing"
        return failed(
            name,
            "a missing poem (KeyError) still ends the chain with a Failure",
            expected="the errback returns a stand-in such as '(no such poem)'",
            got=got,
            hint="returning a value from an errback recovers: the callbacks go on with it",
        )
    _, final = _run_lookup(errback, "")
    if final.value is None or not final.value.is_failure:
        got = final.value.describe() if final.value is not None else "nothing"
        return failed(
            name,
            "a ValueError (a bug, not a missing poem) was swallowed",
            expected="Failure(ValueError: a poem needs a name) at the end of the chain",
            got=f"the chain went on with {got}",
            hint="failure.trap(KeyError) re-raises anything that is not a KeyError",
        )
    if final.value.type != "ValueError":
        return failed(
            name,
            "a ValueError came out as something else",
            expected="Failure(ValueError: a poem needs a name)",
            got=final.value.describe(),
            hint="let the Failure you do not handle go on unchanged: trap re-raises it",
        )
    return passed(name, "KeyError recovered, ValueError passed on, poems untouched.")


def parse(poem: str) -> list[str]:
    """A callback that fails: the poem has no title line."""
    raise ValueError("no title line")


def report(failure: Failure) -> str:
    """An errback that recovers from anything."""
    return "reported: " + failure.getErrorMessage()


def _report_ran(together: bool, fire_errback: bool) -> bool:
    with trace() as t:
        d: Deferred[Any] = Deferred()
        if together:
            d.addCallbacks(parse, report)
        else:
            d.addCallback(parse)
            d.addErrback(report)
        if fire_errback:
            d.errback(ConnectionRefusedError("server down"))
        else:
            d.callback("Tyger Tyger, burning bright,")
    ran = any(name == "report" and side == "errback" for side, name, _ in t.path(d))
    _consume(d)
    return ran


def _which(ran_a: bool, ran_b: bool) -> str:
    return {(True, True): "both", (True, False): "A", (False, True): "B"}.get(
        (ran_a, ran_b), "neither"
    )


@exercise("04")
def check_same_stage(answers: dict[str, str]) -> Feedback:
    """Answers ``{"parse raises": ..., "fired with errback": ...}``: "A", "B", "both", "neither"."""
    name = "one stage or two"
    questions = ["parse raises", "fired with errback"]
    choices = {"a": "A", "b": "B", "both": "both", "neither": "neither"}
    if not isinstance(answers, dict) or set(answers) != set(questions):
        return failed(
            name,
            "the answers could not be read",
            expected='{"parse raises": ..., "fired with errback": ...}',
            got=repr(answers),
            hint='answer each question with "A", "B", "both" or "neither"',
        )
    for question in questions:
        answer = choices.get(str(answers[question]).strip().lower())
        truth = _which(
            _report_ran(True, question == "fired with errback"),
            _report_ran(False, question == "fired with errback"),
        )
        if answer is None:
            return failed(
                name,
                f"{answers[question]!r} is not one of the choices",
                expected='"A", "B", "both" or "neither"',
                got=repr(answers[question]),
            )
        if answer != truth:
            hint = (
                "a stage runs one side only: in A, parse and report share a stage, so a "
                "Failure raised by parse goes to the stage after it"
                if question == "parse raises"
                else "a Failure from the firing reaches the first errback in either chain"
            )
            return failed(
                name,
                f"not quite for '{question}'",
                expected=f"report runs in: {truth}",
                got=f"you said {answer}",
                hint=hint,
            )
    return passed(name, "addCallbacks(cb, eb) is one stage; cb's errors go past eb.")


def _record_firing(d: Deferred[Any]) -> list[str]:
    """A list that gets ``"callback"`` or ``"errback"`` each time ``d``'s chain reaches here."""
    fired: list[str] = []
    d.addCallbacks(lambda _: fired.append("callback"), lambda _: fired.append("errback"))
    return fired


@exercise("04")
def check_fire_once(waiter_class: type) -> Feedback:
    """The waiter's ``deferred`` fires once: the first of ``poem_arrived``/``gave_up`` wins."""
    name = "fire once"
    scenarios = [
        ("the poem arrives, then the timer gives up", ["poem", "timeout"], "callback"),
        ("the timer gives up, then the poem arrives late", ["timeout", "poem"], "errback"),
        ("only the poem arrives", ["poem"], "callback"),
    ]
    for story, calls, first in scenarios:
        ok, waiter = run_learner_code(waiter_class)
        if not ok:
            return failed(name, "the class could not be built", got=waiter)
        d = getattr(waiter, "deferred", None)
        if not isinstance(d, Deferred):
            return failed(
                name,
                "a new waiter has no Deferred",
                expected="self.deferred = Deferred() in __init__",
                got=repr(d),
            )
        fired = _record_firing(d)
        for call in calls:
            if call == "poem":
                ok, got = run_learner_code(waiter.poem_arrived, "Tyger Tyger, burning bright,")
            else:
                ok, got = run_learner_code(waiter.gave_up, TimeoutError("no poem in 5 s"))
            if not ok:
                already = AlreadyCalledError.__name__ in got
                return failed(
                    name,
                    f"{story}: the second call raised",
                    expected="the late call is ignored quietly",
                    got=got,
                    hint=(
                        "a Deferred fires once: take it out of self.deferred before firing "
                        "(d, self.deferred = self.deferred, None) and fire only if d is not None"
                        if already
                        else "read the error: the late call should do nothing at all"
                    ),
                )
        if fired != [first]:
            return failed(
                name,
                f"{story}: the Deferred did not fire as the first call said",
                expected=f"one {first}",
                got=", ".join(fired) or "it never fired",
                hint="the first call fires the Deferred; any call after that does nothing",
            )
    return passed(name, "the first call fires the Deferred, the late one is ignored.")
