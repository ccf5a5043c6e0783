"""How a check is declared: what it expects from the learner, and how its verdict is made.

A check is a function decorated with :func:`exercise`. The decorator takes an
:class:`Answer`, the one place that says what the learner hands in: its name in the
notebook's starter cell and its shape (a function with these parameters, an ``async
def``, a subclass of that class built with these arguments, a value of that type). From
it the decorator refuses a misshapen answer with the same precise feedback in every
notebook, and the tests compare it with the notebook's starter and with the model
solution. The check's body then raises :class:`NotYet` for the first thing that is not
right, or returns the sentence that says why the answer is right.

This module holds no check; ``nbNN.py`` do.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from poetrylab.exercises._feedback import Feedback, one_line, short

__all__ = [
    "CHECK_TRIPPED",
    "EXERCISES",
    "Answer",
    "Answers",
    "NotYet",
    "Registered",
    "async_function",
    "exercise",
    "function",
    "kind_of",
    "subclass",
    "value",
]

CHECK_TRIPPED = "the check itself tripped over your answer"
"""The message of a verdict that comes from a bug in a check, not from the answer."""


class NotYet(Exception):  # noqa: N818 - a verdict, not an error: it reads as the learner sees it
    """Raised in a check: the answer is not right yet.

    ``message`` says what went wrong in the learner's terms, ``expected`` and ``got`` what
    should have happened and what did (two different things: a verdict whose two lines
    read the same explains nothing), ``hint`` what to try.
    """

    def __init__(self, message: str, *, expected: str = "", got: str = "", hint: str = ""):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.got = got
        self.hint = hint

    def feedback(self, exercise: str) -> Feedback:
        """This verdict as the failing :class:`Feedback` of ``exercise``."""
        return Feedback(False, exercise, self.message, self.expected, self.got, self.hint)


Kind = Literal["function", "async function", "class", "value"]


@dataclass(frozen=True)
class Answer:
    """What a check expects from the learner: its name in the starter cell, and its shape.

    Build one with :func:`function`, :func:`async_function`, :func:`subclass` or
    :func:`value`. ``signature`` is how the check calls the function or builds the class
    (None: the check never does); ``of`` is the base class of a ``"class"`` answer and the
    accepted type(s) of a ``"value"``; ``example`` shows a value written out.
    """

    kind: Kind
    name: str
    signature: inspect.Signature | None = None
    of: type | tuple[type, ...] = object
    example: str = ""

    @property
    def starter(self) -> str:
        """How the starter cell writes it: ``def fetch_poem(name): ...`` and the like."""
        if self.kind == "function":
            return f"def {self.name}{self.signature}: ..."
        if self.kind == "async function":
            return f"async def {self.name}{self.signature}: ..."
        if self.kind == "class":
            bases = self.of if isinstance(self.of, tuple) else (self.of,)
            return f"class {self.name}({', '.join(b.__name__ for b in bases)}): ..."
        return f"{self.name} = {self.example}"

    def misfit(self, answer: object, check: str) -> NotYet | None:
        """Why ``answer``, handed to the check called ``check``, does not have this shape
        (a :class:`NotYet`), or None if it does.

        A learner's parameters may have other names than the starter's: only whether
        the check can call the function (or build the class) as it will matters.
        """
        if self.kind == "value":
            if isinstance(answer, self.of):
                return None
            return NotYet(
                f"{self.name} should be {_a(self.of)}",
                expected=f"{self.name} = {self.example}",
                got=kind_of(answer),
                hint=f"give {self.name} a value like the starter's, then run the cell again",
            )
        if self.kind == "class":
            return self._misfit_class(answer, check)
        if not callable(answer) or isinstance(answer, type):
            return NotYet(
                f"pass your function {self.name} itself",
                expected=self.starter,
                got=kind_of(answer),
                hint=f"{check}({self.name}) hands the check your function; "
                f"{check}({self.name}(...)) would hand it what the function returned",
            )
        if self.kind == "async function" and not inspect.iscoroutinefunction(answer):
            return NotYet(
                f"{self.name} is not an async def function",
                expected=self.starter,
                got=kind_of(answer),
                hint="write it with async def, and await each Deferred inside it",
            )
        return self._misfit_call(answer)

    def _misfit_class(self, answer: object, check: str) -> NotYet | None:
        bases = self.of if isinstance(self.of, tuple) else (self.of,)
        if isinstance(answer, type) and issubclass(answer, bases):
            return self._misfit_call(answer)
        base = bases[0]
        if base is object:  # any class will do
            what, expected = "class", f"the class {self.name} itself"
        else:
            what = f"{base.__name__} subclass"
            expected = f"a subclass of {base.__name__}, such as {self.name}"
        instance = base is not object and isinstance(answer, bases)
        return NotYet(
            "pass the class itself, not an instance of it"
            if instance
            else f"pass your {what} itself",
            expected=expected,
            got=f"an instance of {type(answer).__name__}" if instance else kind_of(answer),
            hint=f"{check}({self.name}) hands the check your class; "
            f"{check}({self.name}(...)) would hand it an instance",
        )

    def _misfit_call(self, answer: object) -> NotYet | None:
        if self.signature is None or not callable(answer):
            return None
        try:
            theirs = inspect.signature(answer)
        except (TypeError, ValueError):  # a builtin without a signature: let the check try
            return None
        args, kwargs = _probe(self.signature)
        try:
            theirs.bind(*args, **kwargs)
        except TypeError:
            name = getattr(answer, "__name__", self.name)
            built = "builds your class as" if self.kind == "class" else "calls it as"
            return NotYet(
                f"the check {built} {self.name}{_call_text(self.signature)}, and yours "
                "cannot be called that way",
                expected=f"{self.name}{self.signature}",
                got=f"{name}{theirs}",
                hint="keep the parameters of the starter cell",
            )
        return None


def _probe(signature: inspect.Signature) -> tuple[list[object], dict[str, object]]:
    """Arguments the check passes: one per positional parameter, one more for ``*args``,
    each keyword-only one, and one stray keyword for ``**kwargs``."""
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = None
        elif parameter.kind is parameter.VAR_KEYWORD:
            kwargs["any_keyword"] = None
        else:
            args.append(None)
    return args, kwargs


def _call_text(signature: inspect.Signature) -> str:
    """``(a, b, *args, **kwargs)`` without defaults: the way the check calls."""
    names = []
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            names.append(f"*{parameter.name}")
        elif parameter.kind is parameter.VAR_KEYWORD:
            names.append(f"**{parameter.name}")
        else:
            names.append(parameter.name)
    return f"({', '.join(names)})"


def _a(of: type | tuple[type, ...]) -> str:
    kinds = of if isinstance(of, tuple) else (of,)
    return " or ".join(f"a {kind.__name__}" for kind in kinds)


def kind_of(thing: object) -> str:
    """What ``thing`` is, in words and without a memory address: ``"None"``, ``"the class
    Oracle"``, ``"a plain function 'f' (def, not async def)"``, ``"str 'c e'"``..."""
    if thing is None:
        return "None"
    if isinstance(thing, type):
        return f"the class {thing.__name__}"
    if inspect.iscoroutinefunction(thing):
        return f"an async def function {getattr(thing, '__name__', '?')!r}"
    if inspect.isfunction(thing) or inspect.ismethod(thing):
        return f"a plain function {thing.__name__!r} (def, not async def)"
    if callable(thing):
        return f"a callable {type(thing).__name__}"
    text = short(thing)
    if text.startswith("<"):  # the default repr says no more than the class
        return f"an instance of {type(thing).__name__}"
    return f"{type(thing).__name__} {text}"


def _parse(text: str) -> tuple[str, inspect.Signature]:
    """``"first_below(results, client, level=0.95)"`` as a name and a Signature."""
    node = ast.parse(f"def {text}: ...").body[0]
    if not isinstance(node, ast.FunctionDef):  # pragma: no cover - the parse above makes one
        raise ValueError(f"not a signature: {text!r}")
    a = node.args
    parameter = inspect.Parameter
    parameters: list[inspect.Parameter] = []
    positional = [*a.posonlyargs, *a.args]
    defaults: list[Any] = [parameter.empty] * (len(positional) - len(a.defaults))
    defaults += [ast.literal_eval(d) for d in a.defaults]
    for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        only = i < len(a.posonlyargs)
        kind = parameter.POSITIONAL_ONLY if only else parameter.POSITIONAL_OR_KEYWORD
        parameters.append(parameter(arg.arg, kind, default=default))
    if a.vararg:
        parameters.append(parameter(a.vararg.arg, parameter.VAR_POSITIONAL))
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        default = parameter.empty if kw_default is None else ast.literal_eval(kw_default)
        parameters.append(parameter(arg.arg, parameter.KEYWORD_ONLY, default=default))
    if a.kwarg:
        parameters.append(parameter(a.kwarg.arg, parameter.VAR_KEYWORD))
    return node.name, inspect.Signature(parameters)


def function(signature: str) -> Answer:
    """A plain function, called as written: ``function("total_time(model, seconds)")``."""
    name, parsed = _parse(signature)
    return Answer("function", name, parsed)


def async_function(signature: str) -> Answer:
    """An ``async def`` function, called as written: ``async_function("f(fetch, name)")``."""
    name, parsed = _parse(signature)
    return Answer("async function", name, parsed)


def subclass(base: type | tuple[type, ...], built_as: str) -> Answer:
    """A subclass of ``base`` (or of one of the bases): ``subclass(Service,
    "PoemService(poem, reactor)")`` is built with two arguments; ``subclass(TestCase,
    "PoetryProtocolTests")``, without parentheses, is never built by the check."""
    if "(" not in built_as:
        return Answer("class", built_as, None, base)
    name, parsed = _parse(built_as)
    return Answer("class", name, parsed, base)


def value(name: str, of: type | tuple[type, ...], example: str) -> Answer:
    """A value held in ``name``, of type ``of``, written like ``example``."""
    return Answer("value", name, None, of, example)


@dataclass(frozen=True)
class Registered:
    """A registered check: its notebook (``"04"``), its name, the function learners call
    (it returns a :class:`Feedback`), what it expects, and the exercise's title."""

    notebook: str
    name: str
    check: Callable[[object], Feedback]
    answer: Answer
    title: str


EXERCISES: dict[str, Registered] = {}
"""Every check of every imported ``nbNN`` module, keyed ``"nb04.check_path"``."""

_T = TypeVar("_T")


def exercise(
    notebook: str, answer: Answer, *, title: str
) -> Callable[[Callable[[_T], str]], Callable[[object], Feedback]]:
    """Declare a check of notebook ``notebook`` (``"04"``) that expects ``answer``.

    The decorated function takes the learner's answer once its shape is right; it raises
    :class:`NotYet` for the first thing that is wrong, and returns the sentence that says
    why the answer is right. The function learners call returns a :class:`Feedback`
    titled ``title`` and never raises for an ``Exception``: a misshapen answer gets the
    shape's feedback, and an exception from the check itself becomes a verdict with the
    message :data:`CHECK_TRIPPED` (a bug in the check; the tests make sure no answer
    they know reaches it). ``KeyboardInterrupt`` still interrupts.
    """

    def register(check: Callable[[_T], str]) -> Callable[[object], Feedback]:
        @functools.wraps(check)
        def run(candidate: object) -> Feedback:
            try:
                misfit = answer.misfit(candidate, check.__name__)
                if misfit is not None:
                    raise misfit
                message = check(cast(_T, candidate))  # misfit() checked its shape
            except NotYet as not_yet:
                return not_yet.feedback(title)
            except Exception as exc:
                return Feedback(
                    False,
                    title,
                    CHECK_TRIPPED,
                    got=one_line(exc),
                    hint="read the exercise again; if your answer has the starter's shape, "
                    "this is a bug in the course: please report it",
                )
            return Feedback(True, title, message)

        EXERCISES[f"nb{notebook}.{check.__name__}"] = Registered(
            notebook, check.__name__, run, answer, title
        )
        return run

    return register


@dataclass(frozen=True)
class Answers:
    """A check's model solution (for the tests, and for a learner who is stuck), the wrong
    answers it must catch, and other right answers it must not refuse: the other ways a
    learner may fairly write it (another spelling, another Twisted building block)."""

    solution: object
    wrong: list[object] = field(default_factory=list)
    also_right: list[object] = field(default_factory=list)
