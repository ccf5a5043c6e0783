"""The runtime in real IPython kernels, driven through nbclient as nbval and JupyterLab
drive them: re-run cells, interrupt waits, top-level ``await``, ``-W error``, shutdown.

Three kernels in all: one shared by most tests, one started with ``-W error`` semantics,
one shut down to see its ports freed.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

START = "from poetrylab import runtime\nreactor = runtime.start().reactor"

Run = Callable[..., list[dict[str, Any]]]


class Kernel:
    """One kernel and a growing notebook: ``run(source)`` executes a new cell,
    ``rerun(cell)`` executes that cell again; both return its outputs."""

    def __init__(self, client: NotebookClient) -> None:
        self.client = client
        self.nb = client.nb

    def add(self, source: str) -> Any:
        cell = new_code_cell(source)
        self.nb.cells.append(cell)
        return cell

    def rerun(self, cell: Any) -> list[dict[str, Any]]:
        cell.outputs = []
        self.client.execute_cell(cell, self.nb.cells.index(cell))
        return cell.outputs

    def run(self, source: str) -> list[dict[str, Any]]:
        return self.rerun(self.add(source))

    def text(self, source: str) -> str:
        """Run a cell; return everything it showed, errors included, as one string."""
        return render(self.run(source))


def render(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for out in outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}\n")
        else:
            parts.append(out.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)


def kernel_session(**kernel_options: Any) -> Iterator[Kernel]:
    """A kernel for the test's cells; shut down when the generator is exhausted."""
    client = NotebookClient(new_notebook(), timeout=15, kernel_name="python3", allow_errors=True)
    with client.setup_kernel(**kernel_options):
        yield Kernel(client)


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    for session in kernel_session():
        session.run(START)
        yield session


def interrupt_later(kernel: Kernel, seconds: float) -> threading.Timer:
    """Send the kernel SIGINT after ``seconds``, as the notebook's interrupt button does."""
    pid = kernel.client.km.provisioner.pid
    timer = threading.Timer(seconds, os.kill, (pid, signal.SIGINT))
    timer.start()
    return timer


def test_a_server_cell_run_five_times_leaves_exactly_one_listener(kernel: Kernel) -> None:
    cell = kernel.add("server = runtime.serve('fast', 'furuike')\nprint(server.port)")
    ports = [int(render(kernel.rerun(cell))) for _ in range(5)]
    assert kernel.text("print(len(runtime.servers()), server.port)").split() == [
        "1", str(ports[-1])
    ]  # fmt: skip
    for port in ports[:-1]:
        if port != ports[-1]:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with socket.create_connection(("127.0.0.1", ports[-1]), timeout=2):
        pass


def test_an_interrupted_wait_cancels_its_deferred(kernel: Kernel) -> None:
    timer = interrupt_later(kernel, 1.0)
    started = time.monotonic()
    shown = kernel.text(
        "from twisted.internet.defer import Deferred\n"
        "never = Deferred()\n"
        "runtime.wait(never, timeout=30, what='a poem that never comes')"
    )
    timer.cancel()
    assert time.monotonic() - started < 10
    assert "KeyboardInterrupt: interrupted while waiting for a poem that never comes" in shown
    assert kernel.text("print(never.called)") == "True\n"


def test_an_interrupted_top_level_await_cancels_its_deferred(kernel: Kernel) -> None:
    timer = interrupt_later(kernel, 1.0)
    started = time.monotonic()
    shown = kernel.text(
        "from twisted.internet.defer import Deferred\n"
        "never = Deferred()\n"
        "await runtime.resolve(never, timeout=30)"
    )
    timer.cancel()
    assert time.monotonic() - started < 10
    assert "CancelledError: interrupted while waiting for a Deferred" in shown
    assert kernel.text("print(never.called)") == "True\n"


def test_top_level_await_returns_values_and_raises_the_failures_exception(kernel: Kernel) -> None:
    assert kernel.text(
        "from twisted.internet import task\n"
        "await runtime.resolve(task.deferLater, reactor, 0.05, lambda: 'a value')"
    ) == "'a value'\n"
    assert kernel.text(
        "from twisted.internet.defer import fail\n"
        "await runtime.resolve(fail(ZeroDivisionError('from a Failure')))"
    ) == "ZeroDivisionError: from a Failure\n"
    assert kernel.text(
        "import asyncio\n"
        "from twisted.internet.defer import Deferred\n"
        "slow = Deferred()\n"
        "try:\n"
        "    await asyncio.wait_for(runtime.resolve(slow, timeout=None), 0.1)\n"
        "except TimeoutError:\n"
        "    print('asyncio gave up')\n"
        "await asyncio.sleep(0.1)\n"
        "print(slow.called)"
    ) == "asyncio gave up\nTrue\n"


def test_what_the_reactor_prints_and_unhandled_errors_show_in_the_running_cell(
    kernel: Kernel,
) -> None:
    shown = kernel.text(
        "import time\n"
        "runtime.call(reactor.callLater, 0.05, print, 'printed by the reactor thread')\n"
        "def refuse():\n"
        "    raise ConnectionRefusedError('nobody listens')\n"
        "runtime.call(lambda: task.deferLater(reactor, 0.05, refuse) and None)\n"
        "time.sleep(0.5)"
    )
    assert "printed by the reactor thread" in shown
    assert "Unhandled error in a Deferred" in shown
    assert "ConnectionRefusedError: nobody listens" in shown


def test_a_wait_under_w_error_still_works() -> None:
    for session in kernel_session(env=dict(os.environ, PYTHONWARNINGS="error")):
        shown = session.text(
            "import sys, warnings\n"
            "print(sys.warnoptions)\n" + START + "\n"
            "import crochet\n"
            "print(crochet.wait_for(5)(lambda: 'raw crochet')())\n"
            "warnings.simplefilter('error')  # now ahead of every filter the runtime added\n"
            "from twisted.internet import task\n"
            "print(runtime.call(task.deferLater, reactor, 0.05, lambda: 'still works'))\n"
            "print(runtime.call(lambda: 'and again'))"
        )
        assert shown == "['error']\nraw crochet\nstill works\nand again\n"
        assert session.text(
            "await runtime.resolve(task.deferLater, reactor, 0.05, lambda: 'awaited')"
        ) == "'awaited'\n"


def test_kernel_shutdown_completes_within_two_seconds_and_frees_ports() -> None:
    sessions = kernel_session()
    session = next(sessions)
    session.run(START)
    ports = [
        int(session.text(f"print(runtime.serve('{kind}', 'furuike').port)"))
        for kind in ("slow", "blocking")
    ]
    started = time.monotonic()
    with pytest.raises(StopIteration):
        next(sessions)  # leaves setup_kernel(): shuts the kernel down
    assert time.monotonic() - started < 2.0
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # raises "address in use" if still held
