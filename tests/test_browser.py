"""End to end in a real browser: `poetrylab lab` serves notebook 00, headless Chromium runs it.

Runs when Debian's ``chromium`` is installed (``.ci/run`` installs it) and is skipped,
saying why, when it is not. The notebook runs in a temporary copy of ``notebooks/`` so the
lab's autosave never touches the stored outputs. A screenshot is saved to
``build/browser/00-welcome.png``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    # The kernel's Unix sockets are made beside its connection file, in the runtime folder:
    # a short one, as a socket's path holds at most 107 bytes.
    runtime_dir = Path(tempfile.mkdtemp(prefix="lab-rt-"))
    env = dict(
        os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(runtime_dir)
    )
    log = (root / "lab.log").open("w")  # closed when the lab stops
    # The course's own command (no news pop-up over the page), with the notebooks copied.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "poetrylab",
            "lab",
            "--no-browser",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root / 'notebooks'}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.port_retries=50",
            # Kernels over Unix sockets: TCP ports picked free may be taken before the
            # kernel binds them ("Address already in use") on a busy machine.
            "--KernelManager.transport=ipc",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    # The port may be taken by the time Jupyter binds (others use loopback too), so it may
    # retry another: its runtime file says which port it really got.
    info_file = runtime_dir / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + 60
    while True:
        try:
            port = json.loads(info_file.read_text())["port"]
            base = f"http://127.0.0.1:{port}"
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).close()
            break
        except (OSError, ValueError, KeyError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                log.close()
                shutil.rmtree(runtime_dir, ignore_errors=True)
                pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.25)
    yield f"{base}/lab/tree/00-welcome.ipynb?reset&token={token}"
    proc.terminate()
    proc.wait(20)
    log.close()
    shutil.rmtree(runtime_dir, ignore_errors=True)


def _scroll_to_output(page: Any, text: str) -> None:
    """Scroll the open notebook to the first code cell whose outputs contain ``text``.

    Through JupyterLab's own notebook (``scrollToItem``): with its windowing on, a cell
    out of view is not laid out at all, and the browser cannot scroll to it.
    """
    index = page.evaluate(
        """async (text) => {
            const notebook = window.jupyterapp.shell.currentWidget.content;
            const index = notebook.widgets.findIndex(cell => cell.model.type === "code"
                && JSON.stringify(cell.model.outputs.toJSON()).includes(text));
            if (index >= 0) { await notebook.scrollToItem(index, "center"); }
            return index;
        }""",
        text,
    )
    assert index >= 0, f"no output holds {text!r}"


def test_notebook_00_runs_in_chromium_and_shows_the_poem_and_a_figure(lab: str) -> None:
    from playwright.sync_api import sync_playwright

    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab, timeout=60_000)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                timeout=60_000,
            )
            # The stored outputs go first, so what shows next is what this run made.
            page.evaluate(
                "() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')"
            )
            page.wait_for_function(
                "() => !document.querySelector('.jp-NotebookPanel .jp-OutputArea-output')",
                timeout=30_000,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # JupyterLab may hide the cells scrolled out of view (its notebook windowing,
            # the default in 4.2): wait for the outputs to exist, then bring them into view.
            poem = page.locator(".jp-OutputArea-output", has_text="Once upon a midnight dreary")
            poem.first.wait_for(state="attached", timeout=90_000)
            figure = page.locator(".jp-OutputArea-output img, .jp-OutputArea-output svg")
            figure.first.wait_for(state="attached", timeout=90_000)
            _scroll_to_output(page, "Once upon a midnight dreary")
            poem.first.wait_for(state="visible", timeout=30_000)
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            )
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            # Asked (if ever) as soon as the lab is restored, long before the figure shows.
            news_asked = page.get_by_text("official Jupyter news").count()
            page.screenshot(path=str(shots / "00-welcome.png"), full_page=False)
            _scroll_to_output(page, "image/png")
            figure.first.wait_for(state="visible", timeout=30_000)
            page.screenshot(path=str(shots / "00-welcome-figure.png"), full_page=False)
        finally:
            browser.close()
    assert not tracebacks, tracebacks
    assert not news_asked, "JupyterLab asked about Jupyter news over the course"
    print(f"browser test: notebook 00 ran in Chromium in {time.monotonic() - started:.1f} s")
