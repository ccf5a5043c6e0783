"""The runtime in real IPython kernels, driven through nbclient as nbval and JupyterLab
drive them: re-run cells, interrupt waits, top-level ``await``, ``-W error``, shutdown,
and the blocked reactor (the mistake notebook 02 teaches): what the learner is told, and
that no listener is left behind.

Four kernels in all: one shared by most tests, one started with ``-W error`` semantics,
one whose reactor the tests block, one shut down to see its ports freed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager
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


def load_bench() -> Any:
    """scripts/bench_runtime.py, for its count of a process's listening sockets."""
    path = Path(__file__).parent.parent / "scripts" / "bench_runtime.py"
    spec = importlib.util.spec_from_file_location("bench_runtime", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_of(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The one error output, its traceback as plain text (ANSI colours removed)."""
    [error] = [out for out in outputs if out["output_type"] == "error"]
    return dict(error, text=ANSI.sub("", "\n".join(error["traceback"])))


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
    """A kernel for the test's cells; shut down when the generator is exhausted.

    It talks over Unix sockets (IPC) in a directory of its own: with TCP, jupyter_client
    picks free ports and the kernel binds them later, and on a busy machine another
    process sometimes takes one in between ("Address already in use").
    """
    with tempfile.TemporaryDirectory(prefix="poetrylab-kernel-") as sockets:
        manager = AsyncKernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
        )
        client = NotebookClient(
            new_notebook(), km=manager, timeout=15, kernel_name="python3", allow_errors=True
        )
        with client.setup_kernel(cleanup_kc=True, **kernel_options):  # ours to shut down
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
            "warnings.simplefilter('error')  # ahead of any filter anyone added\n"
            "from twisted.internet import task\n"
            "print(runtime.call(task.deferLater, reactor, 0.05, lambda: 'still works'))\n"
            "print(runtime.call(lambda: 'and again'))"
        )
        assert shown == "['error']\nstill works\nand again\n"
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


def test_the_reactor_thread_is_the_one_thread_the_runtime_adds_and_it_has_no_timers(
    kernel: Kernel,
) -> None:
    shown = kernel.text(
        "import threading\n"
        "print(sorted(t.name for t in threading.enumerate() if 'eactor' in t.name"
        " or 'atchdog' in t.name))\n"
        "print(runtime.call(reactor.getDelayedCalls))"
    )
    assert shown == "['ReactorThread']\n[]\n"


def test_work_handed_over_sees_the_cells_context_variables(kernel: Kernel) -> None:
    assert kernel.text(
        "import contextvars\n"
        "tracer = contextvars.ContextVar('tracer')\n"
        "tracer.set('active in this cell')\n"
        "print(runtime.call(tracer.get))\n"
        "async def coroutine():\n"
        "    return tracer.get()\n"
        "print(runtime.wait(coroutine()))"
    ) == "active in this cell\nactive in this cell\n"


def test_a_coroutine_started_by_an_earlier_cell_prints_into_the_running_cell(
    kernel: Kernel,
) -> None:
    assert kernel.text(
        "from twisted.internet import task\n"
        "from twisted.internet.defer import Deferred\n"
        "async def later():\n"
        "    await task.deferLater(reactor, 0.3, lambda: None)\n"
        "    print('printed by a coroutine of an earlier cell')\n"
        "runtime.call(lambda: Deferred.fromCoroutine(later()) and None)"
    ) == ""
    shown = kernel.text("import time\ntime.sleep(1.0)")
    assert shown == "printed by a coroutine of an earlier cell\n"


@pytest.fixture(scope="module")
def blockable() -> Iterator[Kernel]:
    """A kernel of its own for the tests that block its reactor thread."""
    for session in kernel_session():
        session.run(START)
        yield session


def cell_number(kernel: Kernel) -> int:
    """The ``In[n]`` number of the cell run last."""
    return int(kernel.nb.cells[-1].execution_count)


def test_the_blocked_reactor_sequence_leaves_no_listener_and_tells_what_blocks(
    blockable: Kernel,
) -> None:
    pid = blockable.client.km.provisioner.pid
    bench = load_bench()
    kernels_own = bench.listening_sockets(pid)  # the kernel's ZMQ channels

    def listening(pid: int) -> int:
        return int(bench.listening_sockets(pid)) - kernels_own

    serve_cell = blockable.add("server = runtime.serve('slow', 'raven')\nprint(server.port)")
    first_port = int(render(blockable.rerun(serve_cell)))
    assert listening(pid) == 1

    timed_out = error_of(blockable.run("import time\nruntime.call(time.sleep, 3, timeout=1)"))
    n = cell_number(blockable)
    assert timed_out["ename"] == "WaitTimeoutError"
    assert timed_out["evalue"].startswith(
        f"gave up waiting for time.sleep() after 1 s; the reactor thread is still running it "
        f"(time.sleep(3), from In[{n}], line 2)"
    )
    assert "poetrylab" not in timed_out["text"], "the traceback shows the runtime's frames"
    assert f"In[{n}], line 2" in timed_out["text"]
    assert len(timed_out["text"].splitlines()) <= 8

    pending = error_of(blockable.run("runtime.stop_all(timeout=0.5)"))
    assert pending["ename"] == "StopPendingError"
    assert f"busy (running time.sleep(3), from In[{n}], line 2)" in pending["evalue"]
    assert "slow server 'slow'" in pending["evalue"]
    assert blockable.text("print([s.state for s in runtime.servers()])") == "['stopping']\n"
    with socket.create_connection(("127.0.0.1", first_port), timeout=2):
        pass  # not forgotten: still listening, as the message says

    rerun = render(blockable.rerun(serve_cell)).splitlines()  # waits for the old one to stop
    assert rerun[0].startswith("⚠ The reactor thread has not answered for over 1 s: it is busy")
    second_port = int(rerun[-1])
    assert second_port != first_port and listening(pid) == 1, "two listeners side by side"
    assert blockable.text("print(runtime.stop_all())") == "['slow']\n"
    assert listening(pid) == 0


def test_the_watchdog_names_the_call_and_the_cell_line_blocking_the_reactor(
    blockable: Kernel,
) -> None:
    shown = blockable.text("import time\nruntime.call(time.sleep, 2.5)\nprint('done')")
    n = cell_number(blockable)
    assert shown == (
        "⚠ The reactor thread has not answered for over 1 s: it is busy running "
        f"time.sleep(2.5), from In[{n}], line 2. Until that returns nothing else runs in the "
        "reactor (no server answers, no timer fires, no download moves). A function run in "
        "the reactor thread must return quickly: give blocking work to a thread "
        "(deferToThread).\ndone\n"
    )


def test_an_interrupt_on_a_blocked_reactor_claims_no_cancellation_and_hides_internals(
    blockable: Kernel,
) -> None:
    timer = interrupt_later(blockable, 1.0)
    outputs = blockable.run(
        "from twisted.internet.defer import Deferred\n"
        "import time\n"
        "reactor.callLater(0, time.sleep, 3)\n"
        "runtime.wait(Deferred(), timeout=30, what='a poem that never comes')"
    )
    timer.cancel()
    interrupted = error_of(outputs)
    assert interrupted["ename"] == "KeyboardInterrupt"
    assert interrupted["evalue"] == (
        "interrupted while waiting for a poem that never comes; the reactor thread is busy "
        "running time.sleep(3) (a reactor.callLater timer), so a poem that never comes will "
        "be cancelled as soon as it is free"
    )
    assert "poetrylab" not in interrupted["text"]
    after = blockable.text("print(runtime.call(lambda: 'free again', timeout=10))")
    assert after.endswith("free again\n")  # told first that a timer still blocks it, or not
    assert after == "free again\n" or "time.sleep(3) (a reactor.callLater timer)" in after
