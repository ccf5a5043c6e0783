"""Every exercise check passes its model solution and catches every registered wrong answer."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import poetrylab.exercises as exercises
from poetrylab.exercises import EXERCISES, Answers, Feedback


def _load_all() -> dict[str, Answers]:
    answers: dict[str, Answers] = {}
    for info in pkgutil.iter_modules(exercises.__path__):
        if info.name.startswith("nb"):
            importlib.import_module(f"poetrylab.exercises.{info.name}")
            sol = importlib.import_module(f"poetrylab.exercises.solutions.{info.name}")
            for name, ans in sol.SOLUTIONS.items():
                answers[f"{info.name}.{name}"] = ans
    return answers


ANSWERS = _load_all()


def test_every_check_has_a_solution_and_a_wrong_answer() -> None:
    assert EXERCISES, "no exercises registered"
    missing = sorted(set(EXERCISES) - set(ANSWERS))
    assert not missing, f"checks without model answers: {missing}"
    for key, ans in ANSWERS.items():
        assert ans.wrong, f"{key} has no wrong answer to catch"


def test_every_notebook_module_has_at_least_two_exercises() -> None:
    per_notebook: dict[str, int] = {}
    for reg in EXERCISES.values():
        per_notebook[reg.notebook] = per_notebook.get(reg.notebook, 0) + 1
    assert all(n >= 2 for n in per_notebook.values()), per_notebook


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_check_passes_the_model_solution(key: str, reactor: object) -> None:
    feedback = EXERCISES[key].check(ANSWERS[key].solution)
    assert isinstance(feedback, Feedback)
    assert feedback.passed, str(feedback)


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_check_catches_every_wrong_answer_with_specific_feedback(key: str, reactor: object) -> None:
    for wrong in ANSWERS[key].wrong:
        feedback = EXERCISES[key].check(wrong)
        assert isinstance(feedback, Feedback)
        assert not feedback.passed, f"{key} accepted a wrong answer: {wrong!r}"
        assert feedback.got or feedback.hint, f"{key} gave bare feedback: {feedback}"


def test_not_a_subclass_explains_an_instance_and_accepts_the_class() -> None:
    from twisted.internet.protocol import Protocol

    from poetrylab.exercises._feedback import not_a_subclass, short

    assert not_a_subclass("x", Protocol, Protocol, hint="h") is None
    feedback = not_a_subclass("x", Protocol(), Protocol, hint="pass the class")
    assert feedback is not None and not feedback.passed
    assert feedback.expected == "a subclass of twisted.internet.protocol.Protocol"
    assert feedback.hint == "pass the class"
    assert short("a" * 100) == "'" + "a" * 58 + "…"
