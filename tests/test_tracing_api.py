"""The tracing package exports a small, deliberate API, each name once."""

from __future__ import annotations

import sys

import poetrylab.tracing as tracing


def test_every_public_name_is_exported_once_and_exists() -> None:
    assert len(tracing.__all__) == len(set(tracing.__all__))
    for name in tracing.__all__:
        assert getattr(tracing, name) is not None


def test_importing_the_tracer_does_not_import_ipywidgets_or_the_reactor() -> None:
    import subprocess

    code = (
        "import sys, poetrylab.tracing; "
        "print('ipywidgets' in sys.modules, 'twisted.internet.reactor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
