"""A class on one JupyterHub (deploy/jupyterhub): four learners run notebook 00 at once.

The first tests load the course's hub configuration and check what it promises an
instructor (the course's environment, notebook 00 first, the per-learner copy, culling,
the timeout scale, no news pop-up) without starting anything.

The others start a real JupyterHub on 127.0.0.1 with that configuration
(DummyAuthenticator, SimpleLocalProcessSpawner, the idle culler...) through
deploy/jupyterhub/rehearse.py, which changes only what it must: ports, folders, a service
token, kernels over Unix sockets (with TCP, jupyter_client picks a free port and the
kernel binds it later, and on a busy machine another process sometimes takes it in
between: "Address already in use"). Four learners are created through the REST API and
their servers started together; each learner's notebook 00 is read from their own copy
and run in a kernel of their own server through the hub's proxy (jupyter_server's REST
API and kernel websocket), all four at once, and every output is checked as nbval checks
it (notebooks/conftest.py and sanitize.cfg). A fifth learner logs in in Chromium, when it
is installed. Then the hub is stopped, and no process it started may be left, nor any
port it listened on.

They are skipped, saying why, where configurable-http-proxy cannot run (.ci/run installs
it with npm where npm is available) or JupyterHub is not installed (the `hub` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from poetrylab.cli import LAB_CONFIG_DIR

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"
NOTEBOOK = "00-welcome.ipynb"
LEARNERS = [f"learner-{n}" for n in range(1, 5)]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"

needs_jupyterhub = pytest.mark.skipif(
    importlib.util.find_spec("jupyterhub") is None,
    reason="JupyterHub is not installed: the hub extra (pip install -e '.[hub]', or make install)",
)


def _load_rehearse() -> ModuleType:
    """deploy/jupyterhub/rehearse.py, the class rehearsal these tests drive the hub with."""
    spec = importlib.util.spec_from_file_location("rehearse", CONFIG.with_name("rehearse.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rehearse"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rehearse = _load_rehearse()


# --- The configuration, loaded as JupyterHub loads it ------------------------------------


def _load_config(hub_dir: Path) -> Any:
    """The course's hub configuration, as JupyterHub's loader reads it."""
    from traitlets.config.loader import PyFileConfigLoader

    env = {"POETRYLAB_HUB_DIR": str(hub_dir)}
    with _environment(env):
        return PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _spawner(home: Path, name: str = "ada") -> Any:
    """A trial spawner for learner ``name`` whose home is ``home`` (never started)."""
    from types import SimpleNamespace

    from jupyterhub.spawner import SimpleLocalProcessSpawner

    return SimpleLocalProcessSpawner(home_dir=str(home), user=SimpleNamespace(name=name))


@needs_jupyterhub
def test_learners_servers_run_from_the_course_environment_and_open_notebook_00(
    tmp_path: Path,
) -> None:
    config = _load_config(tmp_path)
    [command] = config.Spawner.cmd
    assert Path(command) == Path(sys.executable).parent / "jupyterhub-singleuser"
    assert os.access(command, os.X_OK), f"{command} cannot be run"
    assert config.Spawner.default_url == f"/lab/tree/poetrylab-course/{NOTEBOOK}"
    assert config.JupyterHub.authenticator_class == "dummy"
    assert config.JupyterHub.spawner_class == "simple"
    assert config.JupyterHub.db_url == f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    assert ("--allow-root" in config.Spawner.args) == (os.geteuid() == 0)


@needs_jupyterhub
def test_kernels_are_culled_idle_servers_too_and_spawns_are_bounded(tmp_path: Path) -> None:
    config = _load_config(tmp_path)
    args = dict(a.split("=", 1) for a in config.Spawner.args if "=" in a)
    assert int(args["--MappingKernelManager.cull_idle_timeout"]) == 1200
    assert args["--MappingKernelManager.cull_connected"] == "True"
    assert args["--LabApp.news_url"] == "None"
    [culler] = config.JupyterHub.services
    assert culler["command"][:3] == [sys.executable, "-m", "jupyterhub_idle_culler"]
    assert importlib.util.find_spec("jupyterhub_idle_culler"), "the hub extra is not installed"
    [role] = config.JupyterHub.load_roles
    assert role["services"] == ["idle-culler"] and "delete:servers" in role["scopes"]
    assert config.JupyterHub.concurrent_spawn_limit > 0
    assert config.Spawner.http_timeout >= 60 and config.Spawner.start_timeout >= 60
    assert config.Spawner.mem_limit and config.Spawner.cpu_limit


@needs_jupyterhub
def test_learners_kernels_get_the_timeout_scale_and_jupyterlab_without_news(
    tmp_path: Path,
) -> None:
    from poetrylab.runtime._waits import TIMEOUT_SCALE_VARIABLE

    environment = _load_config(tmp_path).Spawner.environment
    assert float(environment[TIMEOUT_SCALE_VARIABLE]) > 1
    assert environment["JUPYTER_CONFIG_PATH"] == str(LAB_CONFIG_DIR)
    page = json.loads((LAB_CONFIG_DIR / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"][ANNOUNCEMENTS] is True


@needs_jupyterhub
def test_each_learner_gets_the_course_once_and_keeps_their_own_edits(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "data").mkdir(parents=True)
    for name in ["00-welcome.ipynb", "01-three-models.ipynb", "conftest.py", "sanitize.cfg"]:
        (course / name).write_text(name)
    (course / "data" / "sweep.json").write_text("{}")
    home = tmp_path / "home"
    with _environment({"POETRYLAB_COURSE": str(course)}):
        hook = _load_config(tmp_path).Spawner.pre_spawn_hook
    hook(_spawner(home))
    mine = home / "poetrylab-course"
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*") if p.is_file()) == [
        "00-welcome.ipynb", "01-three-models.ipynb", "data/sweep.json",
    ]  # fmt: skip
    (mine / "00-welcome.ipynb").write_text("my answers")
    (mine / "01-three-models.ipynb").unlink()
    (course / "02-reactor.ipynb").write_text("new this week")
    hook(_spawner(home))
    assert (mine / "00-welcome.ipynb").read_text() == "my answers"
    assert (mine / "01-three-models.ipynb").read_text() == "01-three-models.ipynb"
    assert (mine / "02-reactor.ipynb").read_text() == "new this week"


# --- A real hub, four learners -----------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> Iterator[Any]:
    """A trial hub on loopback with the course's configuration (deploy/jupyterhub).

    Stopping it fails the last test using it when any process it started is left
    running (they are killed) or any port it listened on still answers.
    """
    if importlib.util.find_spec("jupyterhub") is None:
        pytest.skip("JupyterHub is not installed: the hub extra (pip install -e '.[hub]')")
    if (problem := rehearse.proxy_problem()) is not None:
        pytest.skip(problem)
    with rehearse.trial_hub() as started:
        yield started


@pytest.mark.timeout(300)
def test_four_learners_run_notebook_00_at_once_through_the_hub(hub: Any) -> None:
    started = time.monotonic()
    [runs] = asyncio.run(rehearse.a_class_runs(hub, LEARNERS, NOTEBOOK))
    problems = [p for run in runs for p in run.problems]
    assert not problems, "\n".join(problems)
    for run in runs:
        assert (hub.folder / "homes" / run.name / "poetrylab-course" / NOTEBOOK).is_file()
        assert run.default_timeout == "30.0", f"{run.name}'s waits: {run.default_timeout} s"
        assert run.kernel_cpu_seconds > 0 and run.kernel_uss > 0 and run.server_uss > 0
    print(
        f"\nhub test: four learners, servers ready in "
        f"{', '.join(f'{r.spawn_seconds:.1f}' for r in runs)} s, ran notebook 00 in "
        f"{', '.join(f'{r.wall_seconds:.1f}' for r in runs)} s; "
        f"{time.monotonic() - started:.1f} s in all (load average {os.getloadavg()[0]:.1f})"
    )


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
@pytest.mark.timeout(240)
def test_a_learner_logs_in_and_jupyterlab_opens_notebook_00_without_asking_about_news(
    hub: Any,
) -> None:
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM_FLAGS  # pytest puts tests/ on sys.path

    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{hub.url}/hub/login", timeout=60_000)
            page.fill("input[name=username]", "learner-5")
            page.fill("input[name=password]", "any password: DummyAuthenticator")
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url(f"**/user/learner-5/lab/tree/poetrylab-course/{NOTEBOOK}*",
                              timeout=150_000)  # fmt: skip
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
            page.wait_for_function("() => window.jupyterapp", timeout=60_000)
            page.evaluate("async () => { await window.jupyterapp.restored; }")
            loaded = page.evaluate(f"() => window.jupyterapp.hasPlugin({ANNOUNCEMENTS!r})")
            asked = page.get_by_text("official Jupyter news").count()
            title = page.locator(".jp-NotebookPanel .jp-RenderedHTMLCommon h1").first.inner_text()
            page.screenshot(path=str(shots / "hub-00-welcome.png"))
        finally:
            browser.close()
    hub.remember_descendants()
    assert "Welcome" in title, title
    assert not loaded, "JupyterLab's announcements plugin is loaded: it asks about news"
    assert not asked, "JupyterLab asked about Jupyter news"
