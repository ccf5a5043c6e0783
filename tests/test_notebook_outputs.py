"""Stored notebook outputs show everywhere and outlive library releases.

A notebook from a fresh clone is untrusted: JupyterLab, GitHub and nbviewer show its
stored PNG but not a stored SVG, and a reader without images sees only text/plain. So for
every stored output of every notebook: a figure is never SVG alone; every PNG is drawn at
twice its display size, which its metadata gives; and nothing stored embeds a library
version (the installed ones are read from importlib.metadata), a PNG ``Software`` text
chunk, a memory address, a widget's random model id, a path of this machine, or a
default repr where the picture's own text belongs (``<Figure size``, ``<Tracer``...).

The last test fails for every notebook not yet re-executed with ``poetrylab.pictures``
(`make notebooks`); the others test the checks themselves, on notebooks made here, and
that nbval compares a figure's text but never its drawing (notebooks/conftest.py).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import nbformat
import pytest
from matplotlib.figure import Figure

from poetrylab.pictures import Picture, png_size

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
# Libraries whose version could leak into an output: the course's subject and everything
# that draws, runs or shows a notebook.
WATCHED = [
    "twisted", "crochet", "matplotlib", "numpy", "pillow", "ipywidgets", "ipykernel",
    "ipython", "jupyterlab", "jupyter_server", "jupyter_client", "nbformat", "pyzmq",
    "tornado",
]  # fmt: skip
DEFAULT_REPRS = ("<Figure size", "<Tracer", "<Drawing", "<ShownFigure", "<Picture")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
IMAGES = ("image/png", "image/jpeg")


def _versions() -> dict[str, str]:
    found = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in WATCHED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


VERSIONS = _versions()
VERSION_PATTERNS = {
    name: re.compile(rf"(?<![\d.]){re.escape(v)}(?!\d|\.\d)") for name, v in VERSIONS.items()
}
MACHINE_PATHS = (str(ROOT), "site-packages", str(Path.home()) + "/")


def output_problems(nb: dict[str, Any]) -> list[str]:
    """Everything wrong with the stored outputs of notebook ``nb``, one line each."""
    problems = []
    for c, cell in enumerate(nb.get("cells", [])):
        for o, output in enumerate(cell.get("outputs", [])):
            problems += [f"cell {c} output {o}: {p}" for p in _problems_of(output)]
    return problems


def _problems_of(output: dict[str, Any]) -> list[str]:
    data = output.get("data", {})
    found = []
    if "image/svg+xml" in data and "image/png" not in data:
        found.append("an SVG-only figure (invisible untrusted and on GitHub): add a PNG")
    if "image/png" in data:
        found += _png_problems(data["image/png"], output.get("metadata", {}).get("image/png"))
    if WIDGET_VIEW in data:
        found.append("a widget's random model id is stored")
    text = json.dumps(
        {k: v for k, v in output.items() if k != "data"}
        | {"data": {k: v for k, v in data.items() if k not in IMAGES}},
        ensure_ascii=False,
    )
    for name, pattern in VERSION_PATTERNS.items():
        if match := pattern.search(text):
            found.append(f"{name}'s version {match[0]} in {_around(text, match.start())!r}")
    if "Matplotlib v" in text:
        found.append("'Matplotlib v...' (an SVG's generator comment)")
    if match := re.search(r"0x[0-9a-fA-F]{6,}", text):
        found.append(f"a memory address in {_around(text, match.start())!r}")
    for shown in DEFAULT_REPRS:
        if shown in text:
            found.append(f"a default repr {_around(text, text.index(shown))!r}")
    for path in MACHINE_PATHS:
        if path in text:
            found.append(f"a path of this machine in {_around(text, text.index(path))!r}")
    return found


def _png_problems(encoded: str, metadata: dict[str, Any] | None) -> list[str]:
    png = base64.b64decode(encoded)
    found = []
    if re.search(rb"(tEXt|zTXt|iTXt)Software\0", png):
        found.append("a PNG 'Software' text chunk (names the library and its version)")
    if not metadata or "width" not in metadata or "height" not in metadata:
        found.append("a PNG without its display width/height in the output metadata")
    else:
        width, height = png_size(png)
        if abs(width - 2 * metadata["width"]) > 1 or abs(height - 2 * metadata["height"]) > 1:
            found.append(
                f"a PNG of {width}x{height} px shown at {metadata['width']}x"
                f"{metadata['height']}: not drawn at 2x for high-DPI screens"
            )
    return found


def _around(text: str, at: int) -> str:
    return text[max(0, at - 30) : at + 50]


# --- the checks, tested on notebooks made here ------------------------------------------------


def _picture_output() -> nbformat.NotebookNode:
    figure = Figure(figsize=(3, 2))
    figure.add_subplot().set_title("three downloads, one thread")
    data, metadata = Picture(figure)._repr_mimebundle_()
    return nbformat.v4.new_output("display_data", data=data, metadata=metadata)


def _clean_notebook() -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("t")
    cell.outputs = [
        _picture_output(),
        nbformat.v4.new_output("stream", name="stdout", text="listening on 127.0.0.1:4321\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "3710"}, execution_count=1),
    ]
    nb.cells = [cell]
    return json.loads(nbformat.writes(nb))


def _matplotlib_png() -> str:
    """A 100x100 PNG as matplotlib writes it by default: with a 'Software' text chunk."""
    buffer = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode()


def _first_output(nb: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = nb["cells"][0]["outputs"][0]
    return output


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], object]:
    return lambda nb: _first_output(nb)["data"].__setitem__(key, value)


SPOILERS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "svg only": (
        lambda nb: _first_output(nb).__setitem__(
            "data", {"image/svg+xml": "<svg/>", "text/plain": "a trace"}
        ),
        "SVG-only",
    ),
    "png without size": (lambda nb: _first_output(nb).__setitem__("metadata", {}), "width/height"),
    "png at 1x": (
        lambda nb: _first_output(nb)["metadata"]["image/png"].update(width=2000, height=2000),
        "not drawn at 2x",
    ),
    "png software chunk": (
        lambda nb: (
            _set("image/png", _matplotlib_png())(nb),
            _first_output(nb)["metadata"]["image/png"].update(width=50, height=50),
        ),
        "'Software'",
    ),
    "widget model id": (_set(WIDGET_VIEW, {"model_id": "5e1a", "version_major": 2}), "model id"),
    "matplotlib version": (
        _set("text/plain", f"drawn by matplotlib {VERSIONS['matplotlib']}."),
        "matplotlib's version",
    ),
    "svg generator": (_set("image/svg+xml", "<!-- Created with Matplotlib v0.0 -->"), "Matplotlib"),
    "memory address": (_set("text/plain", "<Deferred at 0x7f3a2c1b9e50>"), "memory address"),
    "tracer repr": (_set("text/plain", "<Tracer stopped: 1 Deferreds, 4 events>"), "default repr"),
    "figure repr": (_set("text/plain", "<Figure size 640x480 with 1 Axes>"), "default repr"),
    "checkout path": (_set("text/plain", f"{ROOT}/poetrylab/cli.py"), "path of this machine"),
}


def test_a_notebook_of_pictures_and_plain_text_has_no_problem() -> None:
    assert output_problems(_clean_notebook()) == []


@pytest.mark.parametrize("spoil", sorted(SPOILERS))
def test_each_kind_of_problem_is_found_and_named(spoil: str) -> None:
    nb = _clean_notebook()
    change, named = SPOILERS[spoil]
    change(nb)
    problems = output_problems(nb)
    assert len(problems) == 1 and named in problems[0], problems


def _execute_notebooks_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", ROOT / "scripts" / "execute_notebooks.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_execute_notebooks_strips_widget_ids_and_png_text_and_keeps_the_pixels() -> None:
    script = _execute_notebooks_script()
    nb = _clean_notebook()
    _set(WIDGET_VIEW, {"model_id": "5e1a", "version_major": 2})(nb)
    png = _matplotlib_png()
    _set("image/png", png)(nb)
    _first_output(nb)["metadata"]["image/png"] = {"width": 50, "height": 50}
    widget_only = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "x"}})
    nb["cells"][0]["outputs"].append(json.loads(json.dumps(widget_only)))
    node = nbformat.from_dict(copy.deepcopy(nb))
    script.strip_volatile(node)
    assert output_problems({"cells": [{"outputs": node.cells[0].outputs[:3]}]}) == []
    stripped = base64.b64decode(_first_output(node)["data"]["image/png"])
    assert png_size(stripped) == png_size(base64.b64decode(png)) == (100, 100)
    assert b"IDAT" in stripped and stripped.endswith(base64.b64decode(png)[-12:]), "IEND kept"
    # A widget with nothing else to show keeps its view: removing it would leave nothing.
    assert WIDGET_VIEW in node.cells[0].outputs[3]["data"]


# --- nbval compares what a picture says, never how it is drawn ------------------------------


def _nbval(tmp_path: Path, notebooks: dict[str, dict[str, Any]]) -> str:
    """Run nbval (with the course's conftest and sanitizers) on stored notebooks, once;
    return its report, every cell's outcome listed (``PASSED name.ipynb::Cell 0``)."""
    (tmp_path / "conftest.py").write_text((ROOT / "notebooks" / "conftest.py").read_text())
    for name, stored in notebooks.items():
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(stored))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "notebooks" / "sanitize.cfg"),
         "--rootdir", str(tmp_path), *(f"{name}.ipynb" for name in notebooks)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.stdout


DRAW = (
    "from matplotlib.figure import Figure\n"
    "from poetrylab.pictures import Picture\n"
    "figure = Figure(figsize=(3, 2))\n"
    "figure.add_subplot().set_title('three downloads, one thread')\n"
    "Picture(figure, svg=True)"
)


def _stored_drawing() -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(DRAW)]
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    # Over Unix sockets, as nbval's kernels (notebooks/conftest.py): TCP ports picked free
    # may be taken by another process before the kernel binds them.
    with tempfile.TemporaryDirectory(prefix="poetrylab-kernel-") as sockets:
        manager = AsyncKernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
        )
        NotebookClient(nb, km=manager, timeout=60, kernel_name="python3").execute(cleanup_kc=True)
    return json.loads(nbformat.writes(nb))


def test_nbval_ignores_how_a_figure_is_drawn_but_compares_what_it_says(tmp_path: Path) -> None:
    stored = _stored_drawing()
    data = stored["cells"][0]["outputs"][0]["data"]
    assert {"image/png", "image/svg+xml", "text/plain"} <= set(data)
    # Another matplotlib, another font: other PNG and SVG bytes, the same meaning.
    data["image/png"] = _matplotlib_png()
    svg = "".join(data["image/svg+xml"])  # stored as a list of lines
    data["image/svg+xml"] = svg.replace("<svg", "<svg data-font='other'")
    redrawn = copy.deepcopy(stored)
    # A figure that says something else fails.
    data["text/plain"] = "".join(data["text/plain"]).replace("three", "four")
    report = _nbval(tmp_path, {"redrawn": redrawn, "says_other": stored})
    assert "PASSED redrawn.ipynb::Cell 0" in report, report[-3000:]
    assert "FAILED says_other.ipynb::Cell 0" in report, report[-3000:]
    assert "four downloads" in report, report[-3000:]


# --- the course ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_show_everywhere_and_embed_nothing_volatile(path: Path) -> None:
    problems = output_problems(json.loads(path.read_text(encoding="utf-8")))
    assert not problems, (
        f"{path.name}: {len(problems)} stored outputs to fix (re-execute with "
        "`make notebooks` once its figures are poetrylab.pictures.Picture):\n  "
        + "\n  ".join(problems[:12])
    )
