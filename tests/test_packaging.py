"""An installed wheel carries the corpus and the twistd plugin, not only the editable tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("poetrylab-*.whl"))


def test_wheel_contains_every_poem_and_the_plugin(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for poem in (ROOT / "poems").glob("*.txt"):
        assert f"poetrylab/poems/{poem.name}" in names
    assert "twisted/plugins/poetrylab_plugin.py" in names
    assert not any(n in names for n in ("twisted/__init__.py", "twisted/plugins/__init__.py"))


def test_corpus_loads_from_an_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import poetrylab; "
        "from poetrylab.corpus import load_poem, corpus_dir; "
        "assert str(corpus_dir()).startswith(sys.argv[1]), corpus_dir(); "
        "print(len(load_poem('raven')))"
    )
    # -S: no site-packages, so the editable checkout cannot be what answers.
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(target)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3710"
