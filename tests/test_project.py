"""The project's own contracts: exports, environment.yml in step with pyproject.toml, corpus."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import poetrylab
from poetrylab.corpus import list_poems, load_poem

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_exactly_the_pyproject_dependencies() -> None:
    project = _pyproject()["project"]
    wanted = {r.strip() for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r.strip() for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, (
        f"only in pyproject: {sorted(wanted - listed)}; "
        f"only in environment.yml: {sorted(listed - wanted)}"
    )
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[-1] >= project["requires-python"].lstrip(">=")


def test_every_public_name_is_exported_once_and_importable() -> None:
    names = poetrylab.__all__
    assert len(names) == len(set(names)), "a name is exported twice"
    assert names == sorted(names), "keep __all__ sorted so additions are easy to review"
    for name in names:
        assert getattr(poetrylab, name) is not None


def test_corpus_has_five_public_domain_poems_one_large_one_not_ascii() -> None:
    names = list_poems()
    assert len(names) >= 5
    poems = [load_poem(n) for n in names]
    assert any(len(p) >= 3 * 1024 for p in poems)
    assert any(not p.data.isascii() for p in poems)
    readme = (ROOT / "poems" / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, f"poems/README.md does not credit {name}"


def test_the_package_corpus_is_the_repository_corpus() -> None:
    for name in list_poems():
        assert load_poem(name).data == (ROOT / "poems" / f"{name}.txt").read_bytes()


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_binder_files_install_the_package_and_open_on_notebook_00() -> None:
    post_build = ROOT / "postBuild"
    assert post_build.stat().st_mode & 0o111, "repo2docker runs postBuild only if executable"
    text = post_build.read_text()
    assert re.search(r"pip install --no-deps -e \.", text), "postBuild must install poetrylab"
    url = re.search(r'default_url = "/lab/tree/([^"]+)"', text)
    assert url and (ROOT / url[1]).is_file(), "postBuild must open an existing notebook"
    assert url[1] == "notebooks/00-welcome.ipynb"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    # repo2docker installs environment.yml before the repository is copied in.
    assert not any(r.startswith("-e") or r == "." for r in pip_section)
    assert not (ROOT / "binder").exists(), "a binder/ folder would make repo2docker ignore these"
