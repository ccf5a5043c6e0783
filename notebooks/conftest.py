"""How nbval compares the course's notebooks: by what the outputs mean, never by drawing bytes.

``make test`` runs every notebook under nbval (strict): each cell is run in a fresh
kernel and its new outputs are compared with the stored ones, after the sanitizers in
``sanitize.cfg`` have masked what legitimately changes (ports, addresses, timings).

Pictures are never compared. A figure's bytes change with a matplotlib release, a
different system font or anti-aliasing, while what the figure shows does not. Every
figure the course draws is a ``poetrylab.pictures.Picture``: a PNG (for the eye) plus a
``text/plain`` saying what the picture shows (the trace's own text, or the figure's
titles, axis labels and legend). nbval compares that text, so a picture that shows
something else still turns the test red.

nbval already leaves out ``image/png``, ``image/jpeg`` and the random model id of a
widget (``application/vnd.jupyter.widget-view+json``). This file adds ``image/svg+xml``:
an SVG is text, so nbval would otherwise compare it byte for byte, glyph outlines and
all. tests/test_notebook_outputs.py checks that no stored SVG is ever the only
representation of a figure.
"""

from __future__ import annotations

import pytest
from nbval.plugin import IPyNbFile  # type: ignore[import-untyped]  # nbval ships no types

# Output keys nbval must not compare, on top of its own list.
NOT_COMPARED = ("image/png", "image/jpeg", "image/svg+xml")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add NOT_COMPARED to the skip list of every notebook nbval collected."""
    notebooks = {item.parent for item in items if isinstance(item.parent, IPyNbFile)}
    for notebook in notebooks:
        skip = getattr(notebook, "skip_compare", None)
        if not isinstance(skip, tuple):
            raise pytest.UsageError(
                "nbval no longer keeps its skip list in IPyNbFile.skip_compare; "
                "update notebooks/conftest.py so pictures stay out of the comparison"
            )
        notebook.skip_compare = skip + tuple(k for k in NOT_COMPARED if k not in skip)
