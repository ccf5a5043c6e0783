"""The notebooks' exercise cells and their checks agree: one source says what each check
expects (its ``Answer``), and every notebook's starter cell is held to it.

For every registered check, its notebook has exactly one cell that calls it on a name
the cell defines; that name, its kind (function, ``async def``, class, value) and its
signature are the ones the check declares; run through the check, the starter gets a
"Not yet" verdict from the check's body (not from the shape gate, not from a bug in the
check); and the cell's stored output is that verdict, as nbval will compare it.

The starter runs in a namespace built from the notebook's earlier cells: their imports,
functions and classes (what a starter may use), not their other statements (no server
is started, nothing is plotted).
"""

from __future__ import annotations

import ast
import configparser
import importlib
import inspect
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from poetrylab.exercises import EXERCISES, Feedback, Registered
from poetrylab.exercises._feedback import FAILED_MARK
from poetrylab.exercises._registry import CHECK_TRIPPED

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))}
_IPYTHON = TransformerManager()
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _load_checks() -> list[str]:
    for number in NOTEBOOKS:
        try:
            importlib.import_module(f"poetrylab.exercises.nb{number}")
        except ModuleNotFoundError:  # a notebook whose exercises are not written yet
            continue
    return sorted(key for key, reg in EXERCISES.items() if reg.notebook in NOTEBOOKS)


CHECKS = _load_checks()


def _parse(source: str) -> ast.Module:
    python = _IPYTHON.transform_cell(source)  # %%magics and !commands become calls
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree: ast.Module = compile(python, "<cell>", "exec", flags=flags)
    return tree


@dataclass
class ExerciseCell:
    """A notebook cell that calls a check, as the tests need it."""

    index: int
    tree: ast.Module
    statement: int  # which top-level statement calls the check
    call: ast.Call
    outputs: list[dict[str, Any]]


def _check_call(node: ast.stmt, name: str) -> ast.Call | None:
    """The call ``check_x(...)`` or ``nbNN.check_x(...)`` that ``node`` is (or prints)."""
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return None
    call = node.value
    if isinstance(call.func, ast.Name) and call.func.id == "print" and call.args:
        inner = call.args[0]
        if not isinstance(inner, ast.Call):
            return None
        call = inner
    func = call.func
    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return call if called == name else None


def _cells(number: str) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(NOTEBOOKS[number].read_text())["cells"]
    return cells


def _exercise_cells(reg: Registered) -> list[ExerciseCell]:
    found = []
    for index, cell in enumerate(_cells(reg.notebook)):
        if cell["cell_type"] != "code":
            continue
        tree = _parse("".join(cell["source"]))
        for i, node in enumerate(tree.body):
            call = _check_call(node, reg.name)
            if call is not None:
                found.append(ExerciseCell(index, tree, i, call, cell.get("outputs", [])))
    return found


def _the_cell(key: str) -> ExerciseCell:
    reg = EXERCISES[key]
    cells = _exercise_cells(reg)
    assert len(cells) == 1, (
        f"{NOTEBOOKS[reg.notebook].name} should have exactly one cell that calls {reg.name} "
        f"as a statement (the exercise's starter cell); found {len(cells)}"
    )
    return cells[0]


def _namespace(number: str, before: int) -> dict[str, Any]:
    """What the notebook's cells before ``before`` import and define.

    A definition that needs more than that (a decorator that is an object a cell built)
    is left out; a starter that needs it fails with a NameError the test shows.
    """
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for cell in _cells(number)[:before]:
        if cell["cell_type"] != "code":
            continue
        for node in _parse("".join(cell["source"])).body:
            if isinstance(node, _KEEP):
                try:
                    _run([node], namespace)
                except NameError:
                    continue
    return namespace


def _run(nodes: list[ast.stmt], namespace: dict[str, Any]) -> None:
    code = compile(ast.Module(body=nodes, type_ignores=[]), "<notebook cell>", "exec")
    with warnings.catch_warnings():  # a notebook shows library warnings; it does not fail
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(code, namespace)


def _starter(key: str) -> tuple[ExerciseCell, dict[str, Any]]:
    """The exercise cell, and the namespace once its starter has run (up to the check)."""
    reg = EXERCISES[key]
    cell = _the_cell(key)
    namespace = _namespace(reg.notebook, cell.index)
    _run(cell.tree.body[: cell.statement], namespace)
    return cell, namespace


def _parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("key", CHECKS)
def test_the_starter_cell_calls_the_check_on_the_name_the_check_expects(key: str) -> None:
    reg = EXERCISES[key]
    cell = _the_cell(key)
    assert len(cell.call.args) == 1 and not cell.call.keywords, ast.unparse(cell.call)
    [argument] = cell.call.args
    assert isinstance(argument, ast.Name), ast.unparse(cell.call)
    assert argument.id == reg.answer.name, (
        f"{NOTEBOOKS[reg.notebook].name} calls {reg.name}({argument.id}); the check expects "
        f"{reg.answer.name} (its Answer in poetrylab/exercises/nb{reg.notebook}.py)"
    )
    defined = set()
    for node in cell.tree.body[: cell.statement]:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert argument.id in defined, f"the starter cell does not define {argument.id}"


@pytest.mark.parametrize("key", CHECKS)
def test_the_starter_has_the_shape_and_signature_the_check_declares(key: str) -> None:
    reg = EXERCISES[key]
    _, namespace = _starter(key)
    starter = namespace[reg.answer.name]
    assert reg.answer.misfit(starter, reg.name) is None, str(reg.answer.misfit(starter, reg.name))
    if reg.answer.kind == "async function":
        assert inspect.iscoroutinefunction(starter)
    if reg.answer.kind == "function":
        assert inspect.isfunction(starter) and not inspect.iscoroutinefunction(starter)
    if reg.answer.signature is not None:
        theirs = inspect.signature(starter)
        assert _parameters(theirs) == _parameters(reg.answer.signature), (
            f"the starter is {reg.answer.name}{theirs}; the check "
            f"declares {reg.answer.name}{reg.answer.signature}"
        )


def _verdict(key: str) -> Feedback:
    reg = EXERCISES[key]
    _, namespace = _starter(key)
    return reg.check(namespace[reg.answer.name])


@pytest.mark.parametrize("key", CHECKS)
def test_the_check_says_not_yet_to_the_starter(key: str, reactor: object) -> None:
    feedback = _verdict(key)
    assert not feedback.passed, f"the starter of {key} already passes: {feedback}"
    assert str(feedback).startswith(f"{FAILED_MARK} Not yet — ")
    assert feedback.message != CHECK_TRIPPED, str(feedback)
    assert feedback.expected != feedback.got, str(feedback)


def _spelled(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


@pytest.mark.parametrize("key", [k for k in CHECKS if EXERCISES[k].answer.kind == "value"])
def test_the_verdict_on_a_starter_prediction_does_not_give_the_answer_away(
    key: str, reactor: object
) -> None:
    """The notebook stores this verdict right under the exercise: it may say where the
    first miss is, not what the whole answer is."""
    number, name = key.split(".")
    module = importlib.import_module(f"poetrylab.exercises.solutions.{number}")
    solution = module.SOLUTIONS[name].solution
    verdict = str(_verdict(key))
    answers = list(solution.values()) if isinstance(solution, dict) else [solution]
    for answer in answers:
        if isinstance(answer, str) and len(_spelled(answer)) > 4:  # not a word like "both"
            assert _spelled(answer) not in _spelled(verdict), f"{key} gives away {answer!r}"
        if isinstance(answer, list | tuple) and len(answer) > 1:
            assert _spelled(repr(answer)) not in _spelled(verdict), f"{key} gives away {answer!r}"


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "notebooks" / "sanitize.cfg")
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


_SANITIZE = _sanitizers()


def _sanitized(text: str) -> str:
    for pattern, replacement in _SANITIZE:
        text = pattern.sub(replacement, text)
    return text


def _stored_text(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append("".join(output["text"]))
        elif "data" in output:
            parts.append("".join(output["data"].get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("key", CHECKS)
def test_the_stored_output_is_the_checks_verdict_on_the_starter(key: str, reactor: object) -> None:
    cell, _ = _starter(key)
    stored = _sanitized(_stored_text(cell.outputs))
    fresh = _sanitized(str(_verdict(key)))
    number = EXERCISES[key].notebook
    assert fresh in stored, (
        f"{NOTEBOOKS[number].name} cell {cell.index} stores another verdict than "
        f"{key} gives its starter now: re-execute the notebook "
        f"(scripts/execute_notebooks.py notebooks/{NOTEBOOKS[number].name}).\n"
        f"stored:\n{stored}\nnow:\n{fresh}"
    )
