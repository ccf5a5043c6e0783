"""Exercises that check themselves: one module per notebook (``nb02``, ``nb04`` ...).

A learner writes code in a cell and calls the notebook's check, e.g.
``nb04.check_recover(my_errback)``. Every check runs the learner's code (against real
Deferreds or servers where that fits) and returns a :class:`Feedback`: what was expected,
what happened, and a hint — never a bare ``assert``. Checks never raise because the
learner's code did; they report it.

Model solutions live apart, in ``poetrylab.exercises.solutions.nbNN`` (out of the
learner's way), each beside at least one wrong answer. ``tests/test_exercises.py`` runs
every registered check against its solution (must pass) and its wrong answers (must be
caught).

To add an exercise: write ``check_x(answer) -> Feedback`` in ``nbNN.py`` decorated with
``@exercise("NN")``, and in ``solutions/nbNN.py`` a ``SOLUTIONS`` dict mapping
``"check_x"`` to ``Answers(solution=..., wrong=[...])``.
"""

from poetrylab.exercises._feedback import (
    EXERCISES,
    Answers,
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
)

__all__ = ["EXERCISES", "Answers", "Feedback", "exercise", "failed", "passed", "run_learner_code"]
