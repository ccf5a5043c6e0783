"""Exercises that check themselves: one module per notebook (``nb00`` ... ``nb17``).

A learner completes a function or class in a notebook cell and calls the notebook's
check on it, e.g. ``nb04.check_recover_missing(recover_missing)``. The check runs the
learner's code (against real Deferreds, a ``task.Clock`` or real servers on loopback)
and returns a :class:`Feedback`: "Well done", or "Not yet" with what was expected, what
happened instead and a hint. A check never raises because the learner's code did.

The shape of an exercise (follow it for a new notebook's ``nbNN.py``)
----------------------------------------------------------------------
One source says what the learner hands in: the :class:`Answer` given to
:func:`exercise`. It names the thing the starter cell defines and its shape, and
``tests/test_exercise_cells.py`` holds the notebook to it::

    from poetrylab.exercises._deferreds import expect_deferred, outcome_of
    from poetrylab.exercises._learner import call_learner
    from poetrylab.exercises._registry import NotYet, exercise, function

    @exercise("10", function("limited(fetch, names, n)"), title="at most n at once")
    def check_limited(limited: Callable[..., object]) -> str:
        fetch = SlowFetch()
        d = expect_deferred(
            call_learner("limited(fetch, names, 2)", limited, fetch, NAMES, 2),
            "limited should return a Deferred",
            hint="return the Deferred that fires when the last poem is in",
        )
        if fetch.most_at_once > 2:
            raise NotYet(f"{fetch.most_at_once} downloads ran at once",
                         expected="at most 2 at once", got=f"{fetch.most_at_once} at once",
                         hint="a DeferredSemaphore(2) lets two through at a time")
        ...
        return "never more than two at once, and every poem came back."

* The answer's shape: :func:`function`, :func:`async_function`, :func:`subclass`
  (``subclass(Protocol, "LineCollector()")``: the check builds it with no arguments) or
  :func:`value` (a prediction, a dict of answers). A misshapen answer (not callable, a
  ``def`` for an ``async def``, an instance for a class, too few parameters) is refused
  before the check runs, with the same feedback in every notebook.
* The body raises :class:`NotYet` for the first thing that is not right, with
  ``expected`` and ``got`` that differ and explain, and a ``hint`` that is true on every
  Twisted the project supports; it returns the sentence that says why the answer is
  right. The learner's code runs through :func:`~poetrylab.exercises._learner.call_learner`
  (a verdict when it raises); Deferreds are read with
  :func:`~poetrylab.exercises._deferreds.outcome_of`; predictions are read with
  :mod:`~poetrylab.exercises._predictions`, which accepts any reasonable spelling.
* Every wait has a timeout; a check answers a starter or a right answer within a second
  (``scripts/bench_exercises.py`` measures every one); the servers it starts are
  stopped before it returns. A verdict holds no port, timing or
  memory address, and gives no whole answer away: the notebook stores the verdict on the
  unfinished starter.
* Importing ``nbNN`` never imports the global reactor (a program that imports a check
  may want to install another reactor first): a check starts the notebook runtime when
  it runs. Notebook 12's checks also run an asyncio reactor of their own, never
  installed (see :mod:`~poetrylab.exercises.nb12`).

In ``solutions/nbNN.py``, ``SOLUTIONS`` maps each check's name to :class:`Answers`: the
model solution (for the tests, and for the learner who is stuck), wrong answers (at
least one of them of the right shape, so the check's body is tried), and ``also_right``:
other fair ways to write it (another spelling, another Twisted building block), which
the check must not refuse. The tests run every check against all of them, and run every
notebook's starter through its check: the verdict must be "Not yet", give no whole
answer away, and be the one the notebook has stored.

The starter cell of exercise ``check_x`` defines the answer's name and ends with
``check_x(name)`` (or ``nbNN.check_x(name)``); a later cell that builds on a solved
exercise starts with ``if check_x(name):``.
"""

from poetrylab.exercises._feedback import Feedback
from poetrylab.exercises._registry import (
    EXERCISES,
    Answer,
    Answers,
    NotYet,
    Registered,
    async_function,
    exercise,
    function,
    subclass,
    value,
)

__all__ = [
    "EXERCISES",
    "Answer",
    "Answers",
    "Feedback",
    "NotYet",
    "Registered",
    "async_function",
    "exercise",
    "function",
    "subclass",
    "value",
]
