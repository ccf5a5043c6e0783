"""The tracer in a real IPython kernel, driven through nbclient as nbval and JupyterLab
drive it: a live trace redraws while Deferreds fire in the reactor thread and the cell
waits, ends as the ordinary diagram, and work the cell hands to the reactor is traced
without watch().

One kernel for the module (started with the notebook runtime).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from poetrylab.pictures import png_size
from poetrylab.tracing.live import LIVE_TEXT

START = "from poetrylab import runtime\nreactor = runtime.start().reactor"


class Kernel:
    """One kernel and a growing notebook: ``run(source)`` executes a new cell and returns
    its outputs (display updates already applied, as JupyterLab shows them)."""

    def __init__(self, client: NotebookClient) -> None:
        self.client = client
        self.nb = client.nb

    def run(self, source: str) -> list[dict[str, Any]]:
        cell = new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return list(cell.outputs)


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with tempfile.TemporaryDirectory(prefix="poetrylab-kernel-") as sockets:
        manager = AsyncKernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
        )
        client = NotebookClient(
            new_notebook(), km=manager, timeout=30, kernel_name="python3", allow_errors=True
        )
        with client.setup_kernel(cleanup_kc=True):  # nbclient closes what it was handed
            session = Kernel(client)
            outputs = session.run(START)
            assert not [o for o in outputs if o["output_type"] == "error"], outputs
            yield session


def errors(outputs: list[dict[str, Any]]) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]


def printed(outputs: list[dict[str, Any]]) -> str:
    return "".join(o["text"] for o in outputs if o["output_type"] == "stream")


def pictures(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in outputs if o["output_type"] in ("display_data", "execute_result")]


# Deferreds fired in the reactor thread, one after another, while the cell waits: a slow
# chain pauses on an inner Deferred and goes on.
SLOW_CHAIN = """
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
import time

def slow(value, seconds):
    d = Deferred()
    reactor.callLater(seconds, d.callback, value)
    return d

def after_a_redraw(value, view):
    # fires once the live view has redrawn the paused chain (at most 10 s)
    d = Deferred()
    deadline = time.monotonic() + 10
    def check():
        if (view is None or view.redraws >= 1) or time.monotonic() > deadline:
            poll.stop()
            d.callback(value)
    poll = LoopingCall(check)
    poll.start(0.05)
    return d

def fetch(view=None):
    d = slow("Tyger Tyger, burning bright", 0.2)
    d.addCallback(lambda poem: after_a_redraw(poem.upper(), view))
    d.addCallback(len)
    return d
"""

LIVE_WITH_MANUAL_TICKS = """
from poetrylab import _ticks
from poetrylab.tracing import trace
import threading, time

with trace(live=True) as t:
    done = threading.Event()
    def start():
        d = fetch(t.live_view)
        d.addBoth(lambda result: done.set() or result)
        return None
    runtime.call(start)
    deadline = time.monotonic() + 10
    while not done.is_set():  # wait on what happened, ticking as the runtime's waits do
        assert time.monotonic() < deadline, "the slow chain did not finish within 10 s"
        _ticks.tick()
        done.wait(_ticks.INTERVAL)
print("redraws", t.live_view.redraws)
"""


def test_a_live_trace_redraws_while_the_reactor_fires_and_ends_as_the_diagram(
    kernel: Kernel,
) -> None:
    assert errors(kernel.run(SLOW_CHAIN)) == []
    outputs = kernel.run(LIVE_WITH_MANUAL_TICKS)
    assert errors(outputs) == []
    redraws = int(printed(outputs).split()[-1])
    assert redraws >= 2  # at least one redraw of the paused chain, then the final picture
    live_output, shown = pictures(outputs)
    # The live output ends as its words alone (the same words in every frame, so a replay
    # that ignores display updates compares equal); the final diagram is an output of its own.
    assert live_output["data"] == {"text/plain": LIVE_TEXT}
    assert shown["output_type"] == "display_data" and "transient" not in shown
    data, meta = shown["data"], shown["metadata"]
    width, height = png_size(base64.b64decode(data["image/png"]))
    assert (width // 2, height // 2) == (meta["image/png"]["width"], meta["image/png"]["height"])
    final = kernel.run("print(t.text())")
    assert data["text/plain"] == printed(final).rstrip("\n")
    assert "paused: waiting on d2" in data["text/plain"]
    assert "  result: 27" in data["text/plain"].splitlines()  # where d1 ended


def test_work_the_cell_hands_to_the_reactor_is_traced_without_watch(kernel: Kernel) -> None:
    outputs = kernel.run(
        "with trace() as t:\n"
        "    print(runtime.call(fetch))\n"
        "print(t.path(1))\n"
        "t"
    )
    assert errors(outputs) == []
    lines = printed(outputs).splitlines()
    assert lines[0] == "27"
    assert lines[1] == "[('callback', 'lambda', 'returned'), ('callback', 'len', 'returned')]"
    (shown,) = pictures(outputs)
    assert shown["data"]["text/plain"].startswith("d1 = Deferred()")
    assert "handed to the notebook: 27" in shown["data"]["text/plain"]


def test_a_live_trace_ticks_through_the_runtimes_own_waits(kernel: Kernel) -> None:
    outputs = kernel.run(
        "with trace(live=True) as t:\n"
        "    runtime.call(fetch, t.live_view)\n"
        "print('redraws', t.live_view.redraws)"
    )
    assert errors(outputs) == []
    assert int(printed(outputs).split()[-1]) >= 2
    live_output, shown = pictures(outputs)
    assert live_output["data"] == {"text/plain": LIVE_TEXT}
    assert "  result: 27 (handed to the notebook)" in shown["data"]["text/plain"].splitlines()
