"""Every exercise check passes its model solution and the other right answers, and catches
every registered wrong answer with a verdict that explains; the pieces checks share
(feedback, answer shapes, prediction reading, running learner code) do what they say."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poetrylab.exercises as exercises
from poetrylab.exercises import EXERCISES, Answers, Feedback, NotYet
from poetrylab.exercises._feedback import FAILED_MARK, PASSED_MARK, clip, one_line, short
from poetrylab.exercises._learner import call_learner, is_number, refers_to
from poetrylab.exercises._predictions import judge_order, sides_of
from poetrylab.exercises._registry import (
    CHECK_TRIPPED,
    async_function,
    function,
    kind_of,
    subclass,
    value,
)


def _load_all() -> dict[str, Answers]:
    answers: dict[str, Answers] = {}
    for info in pkgutil.iter_modules(exercises.__path__):
        if info.name.startswith("nb"):
            importlib.import_module(f"poetrylab.exercises.{info.name}")
            solutions = importlib.import_module(f"poetrylab.exercises.solutions.{info.name}")
            for name, ans in solutions.SOLUTIONS.items():
                answers[f"{info.name}.{name}"] = ans
    return answers


ANSWERS = _load_all()

# What a stored verdict must never hold: a port, a memory address, a module path of a
# private module, a duration.
_UNSTABLE = re.compile(r"127\.0\.0\.1:\d|0x[0-9a-f]{6,}|\._\w+\.|\d(\.\d+)? ?(ms|µs)\b")


def _assert_explains(key: str, answer: object, feedback: Feedback) -> None:
    assert isinstance(feedback, Feedback)
    assert not feedback.passed, f"{key} accepted a wrong answer: {answer!r}"
    assert feedback.message and feedback.message != CHECK_TRIPPED, f"{key}: {feedback}"
    assert feedback.got or feedback.hint, f"{key} gave bare feedback: {feedback}"
    if feedback.expected and feedback.got:
        assert feedback.expected != feedback.got, f"{key} says nothing: {feedback}"
    assert not _UNSTABLE.search(str(feedback)), f"{key}: unstable text in {feedback}"


def test_every_check_has_a_solution_and_a_wrong_answer_of_the_right_shape() -> None:
    assert EXERCISES, "no exercises registered"
    missing = sorted(set(EXERCISES) - set(ANSWERS))
    assert not missing, f"checks without model answers: {missing}"
    for key, ans in ANSWERS.items():
        reg = EXERCISES[key]
        shaped = [w for w in ans.wrong if reg.answer.misfit(w, reg.name) is None]
        assert shaped, f"{key}: no wrong answer gets past the shape gate into the check"


def test_every_notebook_module_has_at_least_two_exercises() -> None:
    per_notebook: dict[str, int] = {}
    for reg in EXERCISES.values():
        per_notebook[reg.notebook] = per_notebook.get(reg.notebook, 0) + 1
    assert all(n >= 2 for n in per_notebook.values()), per_notebook


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_check_passes_the_model_solution_and_the_other_right_answers(
    key: str, reactor: object
) -> None:
    for right in [ANSWERS[key].solution, *ANSWERS[key].also_right]:
        feedback = EXERCISES[key].check(right)
        assert isinstance(feedback, Feedback)
        assert feedback.passed, f"{key} refused {right!r}: {feedback}"
        assert str(feedback).startswith(f"{PASSED_MARK} Well done — ")


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_check_catches_every_wrong_answer_with_a_verdict_that_explains(
    key: str, reactor: object
) -> None:
    for wrong in ANSWERS[key].wrong:
        _assert_explains(key, wrong, EXERCISES[key].check(wrong))


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_the_model_solution_has_the_signature_the_check_declares(key: str) -> None:
    reg, solution = EXERCISES[key], ANSWERS[key].solution
    if reg.answer.signature is None or not callable(solution):
        return
    theirs = [(p.name, p.kind, p.default) for p in inspect.signature(solution).parameters.values()]
    declared = [(p.name, p.kind, p.default) for p in reg.answer.signature.parameters.values()]
    assert theirs == declared, f"{key}: {inspect.signature(solution)} vs {reg.answer.signature}"


def test_a_check_that_trips_says_so_and_does_not_raise() -> None:
    from poetrylab.exercises import exercise

    @exercise("99", function("f(x)"), title="a broken check")
    def check_broken(f: object) -> str:
        raise RuntimeError("a bug in the check")

    try:
        feedback = check_broken(lambda x: x)
    finally:
        EXERCISES.pop("nb99.check_broken")
    assert not feedback.passed
    assert feedback.message == CHECK_TRIPPED
    assert feedback.got == "RuntimeError: a bug in the check"


# -- feedback --------------------------------------------------------------------------


def test_feedback_says_its_verdict_in_words_and_marks_and_shows_details_only_when_not_yet():
    good = Feedback(True, "ex", "fine", expected="a", got="b", hint="c")
    bad = Feedback(False, "ex", "not <quite>", expected="a", got="b", hint="c")
    assert str(good) == f"{PASSED_MARK} Well done — ex: fine"
    assert str(bad).splitlines() == [
        f"{FAILED_MARK} Not yet — ex: not <quite>",
        "   expected: a",
        "   got:      b",
        "   hint:     c",
    ]
    assert bool(good) and not bool(bad)
    assert "Well done" in good._repr_html_() and "expected:" not in good._repr_html_()
    assert "not &lt;quite&gt;" in bad._repr_html_() and "<b>got:</b> b" in bad._repr_html_()


def _font_characters(path: Path) -> set[int]:
    from fontTools.ttLib import TTFont

    with TTFont(path) as font:
        return set(font.getBestCmap())


def test_the_marks_are_drawn_by_common_fonts_not_only_emoji_fonts() -> None:
    import matplotlib

    texts = [PASSED_MARK, FAILED_MARK, "—", "…"]
    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    fonts = [dejavu] + [
        p
        for p in [Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")]
        if p.exists()
    ]
    for font in fonts:
        drawn = _font_characters(font)
        missing = [ch for text in texts for ch in text if ord(ch) not in drawn]
        assert not missing, f"{font.name} cannot draw {missing}"
    # Latin-1, or WGL4 (Arial's and Liberation Sans's common set): √ — … only.
    assert all(ord(ch) < 256 or ch in "√—…" for text in texts for ch in text)


def test_every_literal_of_the_exercises_is_drawn_by_common_fonts() -> None:
    allowed_beyond_latin1 = set("√—…→·×")
    root = Path(exercises.__file__).parent
    for path in root.rglob("*.py"):
        for ch in set(path.read_text()):
            assert ord(ch) < 256 or ch in allowed_beyond_latin1, f"{path.name}: {ch!r}"


def test_short_cuts_and_strips_memory_addresses() -> None:
    assert short("a" * 100) == "'" + "a" * 58 + "…"

    def f() -> None: ...

    assert short(f, 200) == f"<function {f.__qualname__}>"
    assert short(object()) == "<object object>"


def test_clip_and_one_line_keep_an_error_to_one_readable_line() -> None:
    assert clip("a  b\nc") == "a b c"
    assert clip("word " * 40, 20) == "word word word word…"
    assert one_line(ValueError("no\nway")) == "ValueError: no way"
    assert one_line(KeyError()) == "KeyError"


# -- answer shapes --------------------------------------------------------------------


def test_a_function_answer_may_name_its_parameters_as_it_likes_but_not_drop_them() -> None:
    answer = function("first_below(results, client, level=0.95)")
    assert answer.misfit(lambda r, c, lvl: None, "check") is None
    assert answer.misfit(lambda r, c, lvl=1, *more: None, "check") is None
    misfit = answer.misfit(lambda r, c: None, "check_first_below")
    assert misfit is not None
    assert misfit.expected == "first_below(results, client, level=0.95)"
    assert misfit.got == "<lambda>(r, c)"


def test_star_args_and_keywords_must_be_accepted_when_the_check_passes_them() -> None:
    answer = function("call_as_deferred(f, *args, **kwargs)")
    assert answer.misfit(lambda f, *a, **k: None, "check") is None
    assert answer.misfit(lambda f, *a: None, "check") is not None


def test_a_function_answer_refuses_a_value_a_class_and_a_call_result() -> None:
    answer = function("fetch_poem(name)")
    for wrong, got in [(None, "None"), ("tyger", "str 'tyger'"), (int, "the class int")]:
        misfit = answer.misfit(wrong, "check_fetch_poem")
        assert misfit is not None and misfit.got == got
        assert misfit.expected == "def fetch_poem(name): ..."
        assert "check_fetch_poem(fetch_poem)" in misfit.hint


def test_an_async_answer_refuses_a_plain_function() -> None:
    answer = async_function("shout_poem(fetch, name)")

    async def shout_poem(fetch: object, name: str) -> None: ...

    def plain(fetch: object, name: str) -> None: ...

    assert answer.misfit(shout_poem, "check") is None
    misfit = answer.misfit(plain, "check")
    assert misfit is not None and "not async def" in misfit.got


def test_a_class_answer_explains_an_instance_and_accepts_the_class() -> None:
    from twisted.internet.protocol import Protocol

    answer = subclass(Protocol, "LineCollector()")
    assert answer.misfit(Protocol, "check") is None
    misfit = answer.misfit(Protocol(), "check_line_collector")
    assert misfit is not None
    assert misfit.message == "pass the class itself, not an instance of it"
    assert misfit.expected == "a subclass of Protocol, such as LineCollector"

    class NeedsArguments(Protocol):
        def __init__(self, poem: bytes) -> None: ...

    assert answer.misfit(NeedsArguments, "check") is not None


def test_a_value_answer_names_the_type_it_wants() -> None:
    answer = value("prediction", (str, list, tuple), '"c c e c"')
    assert answer.misfit("c e", "check") is None
    misfit = answer.misfit(42, "check")
    assert misfit is not None
    assert misfit.message == "prediction should be a str or a list or a tuple"
    assert misfit.got == "int 42"


def test_kind_of_names_things_without_addresses() -> None:
    class Waiter: ...

    assert kind_of(Waiter()) == "an instance of Waiter"
    assert kind_of(Waiter) == "the class Waiter"
    assert kind_of([1, 2]) == "list [1, 2]"


# -- reading predictions -----------------------------------------------------------------

_SPELLINGS = {
    "callback": ["c", "C", "cb", "callback", "Callback"],
    "errback": ["e", "E", "eb", "errback"],
}


@settings(max_examples=200, deadline=None)
@given(
    sides=st.lists(st.sampled_from(["callback", "errback"]), min_size=1, max_size=8),
    data=st.data(),
)
def test_a_path_is_read_whatever_the_spelling(sides: list[str], data: st.DataObject) -> None:
    words = [data.draw(st.sampled_from(_SPELLINGS[side])) for side in sides]
    separators = [data.draw(st.sampled_from([" ", ", ", ",", " -> ", " → ", "; "])) for _ in words]
    text = "".join(w + s for w, s in zip(words, separators, strict=True))
    assert sides_of(text) == sides
    assert sides_of(words) == sides


@pytest.mark.parametrize("glued", ["ccceecc", "CCCEECC", "cccEEcc"])
def test_a_path_may_be_written_without_separators(glued: str) -> None:
    assert sides_of(glued) == ["callback"] * 3 + ["errback"] * 2 + ["callback"] * 2


def test_an_unreadable_path_names_the_word_it_could_not_read() -> None:
    with pytest.raises(NotYet) as caught:
        sides_of("c c x c")
    assert caught.value.got == "'x' in 'c c x c'"


@settings(max_examples=100, deadline=None)
@given(order=st.permutations(["M1", "M2", "M3", "W1", "W2", "W3"]))
def test_an_order_verdict_names_a_pair_the_truth_puts_the_other_way(order: list[str]) -> None:
    actual = ["M1", "W1", "W2", "M2", "W3", "M3"]
    if order == actual:
        assert judge_order(" ".join(order), actual, success="yes", hint=lambda p: "") == "yes"
        return
    with pytest.raises(NotYet) as caught:
        judge_order("".join(order).lower(), actual, success="yes", hint=lambda p: "h")
    late, early = re.fullmatch(r"(\w+) is logged before (\w+)", caught.value.expected).groups()
    assert actual.index(late) < actual.index(early) and order.index(early) < order.index(late)


# -- running learner code ----------------------------------------------------------------


def test_call_learner_turns_an_exception_into_a_verdict_and_passes_keywords_on() -> None:
    assert call_learner("f", lambda *a, **k: (a, k), 1, reverse=True) == ((1,), {"reverse": True})
    with pytest.raises(NotYet) as caught:
        call_learner("int('x')", int, "x", hint="numbers only")
    assert caught.value.message == "int('x') raised an error"
    assert caught.value.got.startswith("ValueError: invalid literal")
    assert caught.value.hint == "numbers only"


def test_refers_to_sees_a_function_used_by_name_alias_attribute_or_closure() -> None:
    from twisted.internet import defer
    from twisted.internet.defer import succeed

    md = defer.maybeDeferred

    def by_attribute(f: object) -> object:
        return defer.maybeDeferred(f)  # type: ignore[call-overload]

    def by_alias(f: object) -> object:
        return md(f)  # type: ignore[call-overload]

    def inside_a_lambda(f: object) -> object:
        return (lambda: md(f))()  # type: ignore[call-overload]

    def honest(f: object) -> object:
        return succeed(f)

    target = defer.maybeDeferred
    assert refers_to(by_attribute, target, "maybeDeferred")
    assert refers_to(by_alias, target, "maybeDeferred")
    assert refers_to(inside_a_lambda, target, "maybeDeferred")
    assert not refers_to(honest, target, "maybeDeferred")


def test_is_number_takes_any_real_but_no_bool() -> None:
    from fractions import Fraction

    assert all(is_number(x) for x in (1, 2.5, Fraction(1, 3)))
    assert not any(is_number(x) for x in (True, "1", None, 1j))


def test_importing_the_exercises_imports_no_reactor() -> None:
    """Notebook 12 installs the asyncio reactor after importing its exercises: an exercise
    module that imported the global reactor would install the default one first."""
    names = sorted(
        f"poetrylab.exercises.{m.name}, poetrylab.exercises.solutions.{m.name}"
        for m in pkgutil.iter_modules(exercises.__path__)
        if m.name.startswith("nb")
    )
    code = (
        f"import sys, {', '.join(names)}\n"
        "print(sorted(m for m in ('twisted.internet.reactor', 'crochet') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# -- the verdicts the issues asked for, pinned -------------------------------------------

PINNED = [
    ("nb00.check_fetch_poem", "fetch_blocking", "not with the Deferred client"),
    ("nb02.check_countdown", "keeps_ticking", "goes on after 'liftoff!'"),
    ("nb02.check_one_at_a_time", "waits_between_items", "told to wait between items"),
    ("nb03.check_line_collector", "KeepsTheNewline", "without its newline"),
    ("nb05.check_as_deferred", "uses_maybe_deferred_renamed", "uses maybeDeferred"),
    ("nb05.check_as_deferred", "forgets_deferreds", "it was wrapped, not returned"),
    ("nb07.check_poem_cache", "CachesTheDeferred", "the Deferred the first caller got"),
    ("nb07.check_poem_cache", "ForgetsToFireTheHit", "has not fired yet"),
    ("nb13.check_multiplexer", "ParsesTheTagAsNumber", "lineReceived raised an error"),
    ("nb14.check_listener_service", "ListensEverywhere", "not on loopback only"),
]


@pytest.mark.parametrize(("key", "wrong", "says"), PINNED, ids=[f"{k}-{w}" for k, w, _ in PINNED])
def test_these_wrong_answers_get_the_verdict_that_names_their_mistake(
    key: str, wrong: str, says: str, reactor: object
) -> None:
    module = importlib.import_module(f"poetrylab.exercises.solutions.{key.split('.')[0]}")
    feedback = EXERCISES[key].check(getattr(module, wrong))
    _assert_explains(key, wrong, feedback)
    assert says in str(feedback), str(feedback)


# -- what the hints say of Twisted is true on the Twisted installed ----------------------


def test_succeed_hands_a_deferred_on_as_a_result_as_the_nb05_hint_says() -> None:
    from twisted.internet.defer import Deferred, succeed

    from poetrylab.exercises.nb05 import _SUCCEED_HINT

    pending: Deferred[str] = Deferred()
    seen: list[object] = []
    succeed(pending).addCallback(seen.append)
    assert seen == [pending] and "hands the Deferred itself on" in _SUCCEED_HINT
    pending.callback("done")


def test_add_timeout_fails_with_defers_own_timeout_error_as_the_nb09_hints_say() -> None:
    import builtins

    from twisted.internet import defer, task

    clock = task.Clock()
    cancelled: list[object] = []
    d: defer.Deferred[str] = defer.Deferred(cancelled.append)
    d.addTimeout(2, clock)
    failures: list[object] = []
    d.addErrback(failures.append)
    clock.advance(2)
    assert cancelled == [d]
    assert not issubclass(defer.TimeoutError, builtins.TimeoutError)
    assert failures and failures[0].check(defer.TimeoutError)  # type: ignore[attr-defined]


def test_string_transport_marks_an_aborted_connection_as_the_nb16_hint_says() -> None:
    from twisted.internet.testing import StringTransport

    transport = StringTransport()
    transport.abortConnection()
    assert transport.disconnected


def test_trap_reraises_what_it_does_not_name_as_the_nb04_hint_says() -> None:
    from twisted.python.failure import Failure

    try:
        raise ValueError("a poem needs a name")
    except ValueError:
        failure = Failure()
    with pytest.raises(BaseException) as caught:
        failure.trap(KeyError)
    raised = caught.value
    assert raised is failure or isinstance(raised, ValueError)
