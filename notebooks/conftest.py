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

import os
import shutil
import tempfile
import uuid
from typing import Any

import nbval.kernel  # type: ignore[import-untyped]  # nbval ships no types
import pytest
from jupyter_client.manager import KernelManager
from nbval.plugin import IPyNbFile  # type: ignore[import-untyped]

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


# Kernels talk to nbval over Unix sockets (IPC), each in a folder of this run's own. Over
# TCP, jupyter_client picks free ports and the kernel binds them a moment later; on a busy
# machine another process sometimes takes one in between and the notebook fails with
# "Address already in use", through no fault of its own. nbval has no option for this, and
# its kernel manager reads no configuration, so the class it starts kernels with is
# replaced by one whose transport is IPC (jupyter_client's own "ipc" transport).
_sockets: list[str] = []


class _UnixSocketKernelManager(KernelManager):
    """jupyter_client's KernelManager, over Unix sockets in this run's folder."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", os.path.join(_sockets[0], f"kernel-{uuid.uuid4().hex[:12]}"))
        super().__init__(**kwargs)


def pytest_configure(config: pytest.Config) -> None:
    """Make nbval start its kernels with :class:`_UnixSocketKernelManager`."""
    if getattr(nbval.kernel, "KernelManager", None) is not KernelManager:
        raise pytest.UsageError(
            "nbval no longer starts kernels with nbval.kernel.KernelManager; update "
            "notebooks/conftest.py so that its kernels keep talking over Unix sockets"
        )
    _sockets.append(tempfile.mkdtemp(prefix="nbval-kernels-"))
    nbval.kernel.KernelManager = _UnixSocketKernelManager


def pytest_unconfigure(config: pytest.Config) -> None:
    nbval.kernel.KernelManager = KernelManager
    for folder in _sockets:
        shutil.rmtree(folder, ignore_errors=True)
    _sockets.clear()
