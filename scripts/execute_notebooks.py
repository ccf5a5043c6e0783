"""Execute notebooks in place, each in a fresh kernel, and store their outputs.

    .venv/bin/python scripts/execute_notebooks.py                   # every notebook
    .venv/bin/python scripts/execute_notebooks.py notebooks/02-reactor.ipynb

Each notebook runs top to bottom with nbclient in a new ``python3`` kernel, from the
``notebooks/`` directory, exactly as nbval will run it. A cell that raises stops the run
and nothing is written (tag a cell ``raises-exception`` when the error is the lesson).
What changes on every run without meaning anything is stripped, so diffs show only
real changes and stored outputs outlive library releases: per-cell execution timings,
widget state and the Python patch version in the metadata; a widget's random model id
(``application/vnd.jupyter.widget-view+json``) from any output that also carries a
picture or text, which is what a reader without a live kernel sees anyway; and the text
chunks of every stored PNG (matplotlib writes its name and version there). Prints each
notebook's time.
"""

from __future__ import annotations

import argparse
import base64
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 120


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


def png_without_text(png: bytes) -> bytes:
    """The same PNG without its text chunks (software name, version, dates).

    Every PNG chunk carries its own length and checksum, so dropping whole chunks leaves
    a valid image with the same pixels. Returns ``png`` unchanged if it is not a PNG.
    """
    if not png.startswith(PNG_SIGNATURE):
        return png
    kept, at = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while at + 8 <= len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        end = at + 12 + length  # length, type, data, CRC
        if png[at + 4 : at + 8] not in PNG_TEXT_CHUNKS:
            kept.append(png[at:end])
        at = end
    return b"".join(kept)


def strip_volatile(nb: nbformat.NotebookNode) -> None:
    """Remove what changes on every run, or with a library release, without meaning anything."""
    nb.metadata.pop("widgets", None)
    language = nb.metadata.get("language_info", {})
    language.pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
                output.get("metadata", {}).pop(WIDGET_VIEW, None)
            if "image/png" in data:
                png = base64.b64decode(data["image/png"])
                data["image/png"] = base64.b64encode(png_without_text(png)).decode("ascii")


def execute(path: Path) -> float:
    """Run ``path`` in a fresh kernel and write it back with its outputs; return seconds."""
    nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # nbformat is untyped
    # The kernel talks over Unix sockets, as nbval's do (notebooks/conftest.py): TCP ports
    # picked free may be taken by another process before the kernel binds them.
    with tempfile.TemporaryDirectory(prefix="poetrylab-kernel-") as sockets:
        manager = AsyncKernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
        )
        client = NotebookClient(
            nb, km=manager, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )  # fmt: skip
        started = time.monotonic()
        client.execute()
        elapsed = time.monotonic() - started
    strip_volatile(nb)
    nbformat.validate(nb)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]  # nbformat is untyped
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if not paths:
        print("no notebooks to execute", file=sys.stderr)
        return 1
    for path in paths:
        try:
            elapsed = execute(path)
        except CellExecutionError as exc:
            print(f"{path}: a cell failed; nothing written\n{exc}", file=sys.stderr)
            return 1
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
