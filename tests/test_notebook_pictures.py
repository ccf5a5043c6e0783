"""Every stored picture of the course fits a learner's screen and stays sharp.

JupyterLab on a 1280x800 screen gives an output about 1000 pixels wide: a wider picture
is scaled down and its fonts shrink with it. So every PNG stored in a notebook is shown at
most 960 display pixels wide (``figure_checks.MAX_WIDTH``; the width in the output's
metadata is what JupyterLab, GitHub and the website show), and is drawn with twice as
many pixels each way, sharp on a high-DPI screen or a projector. The checks are tested
first, on notebooks made here; then every notebook of the course is held to them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from figure_checks import MAX_WIDTH
from matplotlib.figure import Figure

from poetrylab.pictures import Picture, png_size

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def stored_pictures(nb: dict[str, Any]) -> list[tuple[str, dict[str, Any], tuple[int, int]]]:
    """(where, the PNG's display metadata, its size in pixels) for every stored PNG."""
    found = []
    for c, cell in enumerate(nb.get("cells", [])):
        for o, output in enumerate(cell.get("outputs", [])):
            encoded = output.get("data", {}).get("image/png")
            if encoded is not None:
                shown = output.get("metadata", {}).get("image/png", {})
                found.append((f"cell {c} output {o}", shown, png_size(base64.b64decode(encoded))))
    return found


def size_problems(nb: dict[str, Any]) -> list[str]:
    """Every stored PNG too wide for a learner's screen or not drawn at 2x, one line each."""
    problems = []
    for where, shown, (width, height) in stored_pictures(nb):
        if "width" not in shown or "height" not in shown:
            problems.append(f"{where}: no display size (JupyterLab would show its {width} px)")
            continue
        if shown["width"] > MAX_WIDTH:
            problems.append(f"{where}: shown {shown['width']} px wide, over {MAX_WIDTH}: "
                            "draw it narrower (12 in at 80 dpi, 9.6 in at 100 dpi)")  # fmt: skip
        if (width, height) != (2 * shown["width"], 2 * shown["height"]):
            problems.append(f"{where}: {width}x{height} px shown at {shown['width']}x"
                            f"{shown['height']}: not twice its display size")  # fmt: skip
    return problems


def _notebook_of(*pictures: Picture) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("picture")
    for picture in pictures:
        data, metadata = picture._repr_mimebundle_()
        cell.outputs.append(nbformat.v4.new_output("display_data", data=data, metadata=metadata))
    nb.cells = [cell]
    stored: dict[str, Any] = json.loads(nbformat.writes(nb))
    return stored


def _picture(width_in: float, dpi: float = 80) -> Picture:
    figure = Figure(figsize=(width_in, width_in * 9 / 16))
    figure.add_subplot().set_title("three downloads, one thread")
    return Picture(figure, dpi=dpi)


def test_a_slide_sized_picture_at_2x_has_no_problem() -> None:
    nb = _notebook_of(_picture(12), _picture(9.6, dpi=100))
    assert [shown["width"] for _, shown, _ in stored_pictures(nb)] == [960, 960]
    assert size_problems(nb) == []


def test_a_picture_wider_than_a_learners_screen_is_named() -> None:
    problems = size_problems(_notebook_of(_picture(12), _picture(15)))
    assert problems == [
        "cell 0 output 1: shown 1200 px wide, over 960: draw it narrower (12 in at 80 dpi, "
        "9.6 in at 100 dpi)"
    ]


def test_a_picture_not_drawn_at_twice_its_display_size_is_named() -> None:
    nb = _notebook_of(_picture(6), _picture(6))
    nb["cells"][0]["outputs"][0]["metadata"]["image/png"] = {"width": 960, "height": 540}
    del nb["cells"][0]["outputs"][1]["metadata"]["image/png"]
    assert size_problems(nb) == [
        "cell 0 output 0: 960x540 px shown at 960x540: not twice its display size",
        "cell 0 output 1: no display size (JupyterLab would show its 960 px)",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_stored_picture_fits_a_learners_screen_at_twice_its_pixels(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = size_problems(nb)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)
