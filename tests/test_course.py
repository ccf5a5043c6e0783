"""The course reads as one: eighteen notebooks in the order of DESIGN.md's course map, each
opening with what you will learn and closing with a summary, a link to the next and a word on
giving the kernel back (after a last code cell that stops every server), every link
resolving, every code cell executed with its output stored, and at least two exercises each."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from poetrylab.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


COURSE = [
    "00-welcome",
    "01-three-models",
    "02-reactor",
    "03-protocols",
    "04-deferreds",
    "05-deferreds-all-the-way-down",
    "06-transform",
    "07-proxy",
    "08-inline-callbacks-and-coroutines",
    "09-many-deferreds",
    "10-limiting-concurrency",
    "11-threads",
    "12-asyncio",
    "13-xmlrpc",
    "14-services",
    "15-debugging",
    "16-testing",
    "17-benchmark",
]


def test_the_notebooks_are_the_course_map_in_order() -> None:
    assert [p.stem for p in NOTEBOOKS] == COURSE


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_title_and_what_you_will_learn(path: Path) -> None:
    first = _cells(path)[0]
    assert first["cell_type"] == "markdown"
    assert re.match(rf"# {path.name[:2]} · \S", _text(first)), _text(first)[:80]
    assert "What you will learn" in _text(first)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_closes_with_summary_and_next(path: Path) -> None:
    markdown = "\n".join(_text(c) for c in _cells(path)[-4:] if c["cell_type"] == "markdown")
    assert re.search(r"^#+ *Summary", markdown, re.M), f"{path.name}: no Summary near the end"
    index = NOTEBOOKS.index(path)
    if index + 1 < len(NOTEBOOKS):
        assert re.search(r"^#+ *Next", markdown, re.M), f"{path.name}: no Next near the end"
        assert f"({NOTEBOOKS[index + 1].name})" in markdown, (
            f"{path.name}: Next should link to {NOTEBOOKS[index + 1].name}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_by_stopping_its_servers_and_giving_the_kernel_back(path: Path) -> None:
    # On a shared hub every open notebook holds a kernel: the last words say how to stop it.
    cells = _cells(path)
    code = [_text(c) for c in cells if c["cell_type"] == "code" and _text(c).strip()]
    assert "runtime.stop_all()" in code[-1], f"{path.name}: the last code cell should stop_all()"
    last = cells[-1]
    assert last["cell_type"] == "markdown" and "Shut Down Kernel" in _text(last), (
        f"{path.name}: the last cell should say how to shut the kernel down"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_link_to_a_notebook_or_file_resolves(path: Path) -> None:
    for cell in _cells(path):
        if cell["cell_type"] != "markdown":
            continue
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", _text(cell)):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_executed_with_outputs_stored(path: Path) -> None:
    code = [c for c in _cells(path) if c["cell_type"] == "code" and _text(c).strip()]
    assert code
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} were never executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_at_least_two_self_checking_exercises(path: Path) -> None:
    number = path.name[:2]
    importlib.import_module(f"poetrylab.exercises.nb{number}")
    registered = {r.name for r in EXERCISES.values() if r.notebook == number}
    code = "\n".join(_text(c) for c in _cells(path) if c["cell_type"] == "code")
    called = {name for name in registered if re.search(rf"\b{name}\(", code)}
    assert len(registered) >= 2, f"poetrylab.exercises.nb{number} has {sorted(registered)}"
    assert called == registered, f"{path.name} never calls {sorted(registered - called)}"


def test_the_readme_course_map_names_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README's course map misses {path.name}"


def test_the_welcome_notebook_links_every_other_notebook() -> None:
    markdown = "\n".join(_text(c) for c in _cells(NOTEBOOKS[0]) if c["cell_type"] == "markdown")
    for path in NOTEBOOKS[1:]:
        assert f"]({path.name})" in markdown, f"00's course table does not link {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_nbval_marker_is_one_nbval_recognises(path: Path) -> None:
    # nbval reads a marker only when the comment is the marker alone: "# NBVAL_IGNORE_OUTPUT
    # (why)" is silently not a marker, and the cell is compared after all.
    from nbval.plugin import comment_markers

    for index, cell in enumerate(_cells(path)):
        for line in _text(cell).splitlines():
            comment = line.strip().lstrip("#").strip()
            if line.strip().startswith("#") and comment.startswith("NBVAL_"):
                assert comment in comment_markers, (
                    f"{path.name} cell {index}: {line.strip()!r} is not an nbval marker "
                    "(put the reason on the next line)"
                )
