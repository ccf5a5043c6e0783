"""Feedback objects, the exercise registry, and a safe way to run a learner's code."""

from __future__ import annotations

import functools
import html
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXERCISES",
    "Answers",
    "Feedback",
    "exercise",
    "failed",
    "not_a_subclass",
    "passed",
    "run_learner_code",
    "short",
]


@dataclass(frozen=True)
class Feedback:
    """The answer to a check: passed or not, with what was expected, what happened, a hint.

    Shows itself as a coloured box in a notebook and as plain text in a terminal; it is
    truthy when the check passed. Its text never holds timings, ports or object ids, so
    stored notebook outputs stay stable.
    """

    passed: bool
    exercise: str
    message: str
    expected: str = ""
    got: str = ""
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = "✅ Well done" if self.passed else "❌ Not yet"
        lines = [f"{head} — {self.exercise}: {self.message}"]
        if not self.passed:
            if self.expected:
                lines.append(f"   expected: {self.expected}")
            if self.got:
                lines.append(f"   got:      {self.got}")
            if self.hint:
                lines.append(f"   hint:     {self.hint}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, bg = ("#1b5e20", "#e8f5e9") if self.passed else ("#b71c1c", "#ffebee")
        rows = "".join(
            f"<div><b>{label}</b> {html.escape(text)}</div>"
            for label, text in (
                ("expected:", self.expected),
                ("got:", self.got),
                ("hint:", self.hint),
            )
            if text and not self.passed
        )
        head = "✅ Well done" if self.passed else "❌ Not yet"
        return (
            f'<div style="border-left:6px solid {colour};background:{bg};padding:8px 12px;'
            f'font-size:1.1em;color:#212121"><div><b>{head} — {html.escape(self.exercise)}:</b> '
            f"{html.escape(self.message)}</div>{rows}</div>"
        )


def passed(exercise: str, message: str) -> Feedback:
    """A passing :class:`Feedback`."""
    return Feedback(True, exercise, message)


def failed(
    exercise: str, message: str, expected: str = "", got: str = "", hint: str = ""
) -> Feedback:
    """A failing :class:`Feedback`: say what was expected, what happened, and a hint."""
    return Feedback(False, exercise, message, expected, got, hint)


@dataclass(frozen=True)
class Answers:
    """A model solution and wrong answers that its check must catch (for the tests)."""

    solution: Any
    wrong: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Registered:
    """A check, the notebook it belongs to, and its name."""

    notebook: str
    name: str
    check: Callable[..., Feedback]


EXERCISES: dict[str, Registered] = {}


def exercise(notebook: str) -> Callable[[Callable[..., Feedback]], Callable[..., Feedback]]:
    """Register a check function for notebook ``NN``; the check must return a Feedback."""

    def register(check: Callable[..., Feedback]) -> Callable[..., Feedback]:
        key = f"nb{notebook}.{check.__name__}"

        @functools.wraps(check)
        def safe(*args: Any, **kwargs: Any) -> Feedback:
            try:
                return check(*args, **kwargs)
            except Exception as exc:  # the check itself tripped over the answer's shape
                return failed(
                    check.__name__,
                    "your answer could not be checked",
                    got=_one_line(exc),
                    hint="read the exercise text again: what kind of object should you pass?",
                )

        EXERCISES[key] = Registered(notebook, check.__name__, safe)
        return safe

    return register


def _one_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def run_learner_code(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Call the learner's ``fn``; return ``(True, result)`` or ``(False, 'Error: message')``.

    Never raises for an ``Exception`` from the learner's code (KeyboardInterrupt still
    interrupts), so a check can turn any mistake into friendly feedback.
    """
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:
        return False, _one_line(exc)


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for the ``got:`` line of feedback."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def not_a_subclass(exercise: str, answer: Any, base: type, hint: str) -> Feedback | None:
    """Feedback when ``answer`` is not a subclass of ``base`` (the class itself); else None."""
    if isinstance(answer, type) and issubclass(answer, base):
        return None
    return failed(
        exercise,
        f"pass your {base.__name__} subclass itself (the class, not an instance)",
        expected=f"a subclass of {base.__module__}.{base.__qualname__}",
        got=short(answer),
        hint=hint,
    )
