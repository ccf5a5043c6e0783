"""What a notebook shows around a prediction exercise is true, and gives nothing away.

Notebooks 05 and 08 write the chain or function a learner predicts in a cell, where the
lesson belongs; their checks judge against a copy in ``poetrylab.exercises``. Run from the
notebook's own cell, each gives exactly what the check's copy gives. And no stored output
of notebooks 04, 05, 08, 09 and 15 spells the answer to one of their predictions: the
"see what really ran" cells store the message that asks for an answer first.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from poetrylab.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.name[:2]: p for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")}
MINE = ["04", "05", "08", "09", "15"]
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _cells(number: str) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(NOTEBOOKS[number].read_text())["cells"]
    return cells


def _defined_in_notebook(number: str, name: str) -> Any:
    """``name`` as the notebook defines it: the imports, functions and classes of its code
    cells, run in order up to the cell that defines ``name`` (nothing else runs)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for cell in _cells(number):
        if cell["cell_type"] != "code":
            continue
        source = TransformerManager().transform_cell("".join(cell["source"]))
        tree = ast.parse(source)
        nodes = [node for node in tree.body if isinstance(node, _KEEP)]
        for node in nodes:
            code = compile(ast.Module(body=[node], type_ignores=[]), "<cell>", "exec")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                exec(code, namespace)
        if name in namespace:
            return namespace[name]
    raise AssertionError(f"{NOTEBOOKS[number].name} defines no {name}")


def test_notebook_05s_inner_chain_runs_as_the_checks_copy() -> None:
    from poetrylab.exercises import nb05

    mine = _defined_in_notebook("05", "inner_fails")()
    assert mine.text() == nb05.inner_fails().text()
    assert mine.path("outer") == nb05.inner_fails().path("outer")


def test_notebook_05s_order_demo_logs_as_the_checks_copy() -> None:
    from poetrylab.exercises import nb05

    assert _defined_in_notebook("05", "order_demo")() == nb05.order_demo()


def test_notebook_08s_run_order_demo_logs_as_the_checks_copy() -> None:
    from poetrylab.exercises import nb08

    assert _defined_in_notebook("08", "run_order_demo")() == nb08.run_order_demo()


def _answers() -> list[tuple[str, str]]:
    """(notebook, solution) for every prediction in these notebooks written as a sequence
    of at least three words (``"c c e e"``, ``"A B C"``); a one-word answer such as
    ``"both"`` is too common to look for."""
    found = []
    for number in MINE:
        importlib.import_module(f"poetrylab.exercises.nb{number}")
        solutions = importlib.import_module(f"poetrylab.exercises.solutions.nb{number}")
        for reg in EXERCISES.values():
            if reg.notebook != number or reg.answer.kind != "value":
                continue
            solution = solutions.SOLUTIONS[reg.name].solution
            if isinstance(solution, str) and len(solution.split()) >= 3:
                found.append((number, solution))
    return found


def _spelled_anywhere(solution: str) -> re.Pattern[str]:
    """The answer's words in order, with any separators or none, as a whole."""
    words = [re.escape(w) for w in solution.split()]
    return re.compile(r"(?<![^\W_])" + r"[\W_]*".join(words) + r"(?![^\W_])", re.I)


def _stored_text(output: dict[str, Any]) -> str:
    if output.get("output_type") == "stream":
        return "".join(output["text"])
    return "".join(output.get("data", {}).get("text/plain", ""))


@pytest.mark.parametrize(("number", "solution"), _answers())
def test_no_stored_output_spells_a_predictions_answer(number: str, solution: str) -> None:
    pattern = _spelled_anywhere(solution)
    for index, cell in enumerate(_cells(number)):
        for output in cell.get("outputs", []):
            text = _stored_text(output)
            assert not pattern.search(text), (
                f"{NOTEBOOKS[number].name} cell {index} stores the answer {solution!r}: "
                f"{pattern.search(text)[0]!r}"  # type: ignore[index]
            )


@pytest.mark.parametrize("number", ["04", "05", "08"])
def test_the_see_what_ran_cells_store_the_request_for_an_answer_and_no_picture(
    number: str,
) -> None:
    reveals = [c for c in _cells(number) if "answered = False" in "".join(c["source"])]
    assert reveals, f"{NOTEBOOKS[number].name} has no cell that waits for an answer"
    for cell in reveals:
        outputs = cell.get("outputs", [])
        assert all("image/png" not in o.get("data", {}) for o in outputs)
        assert "Check your prediction first" in "".join(map(_stored_text, outputs))


def test_the_pattern_finds_an_answer_however_it_is_spaced() -> None:
    pattern = _spelled_anywhere("C C E")
    for text in ("it went C C E: right", "cce", "c, c, e", "[c→c→e]"):
        assert pattern.search(text), text
    for text in ("succeed", "acce", "C C", "c c a"):
        assert not pattern.search(text), text
