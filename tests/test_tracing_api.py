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


def test_each_layer_uses_only_the_layers_listed_before_it() -> None:
    import ast
    import re
    from pathlib import Path

    package = Path(tracing.__file__).parent
    order = re.findall(r"^- ``([a-z_]+)``", tracing.__doc__ or "", re.M)
    listed = [name for line in (tracing.__doc__ or "").splitlines() for name in
              re.findall(r"``([a-z_]+)``", line) if line.startswith("- ")]  # fmt: skip
    assert order and set(listed) == {p.stem for p in package.glob("*.py")} - {"__init__"}
    rank = {name: i for i, name in enumerate(listed)}
    for module in listed:
        tree = ast.parse((package / f"{module}.py").read_text())
        used = {
            node.module.lstrip(".").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }
        used |= {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
            for alias in node.names
        }
        later = sorted(name for name in used if rank.get(name, -1) >= rank[module])
        assert later == [], f"{module} imports {later}, listed after it"
