"""The runtime in real IPython kernels, driven through nbclient as nbval and JupyterLab
drive them: re-run cells, interrupt waits, top-level ``await``, ``-W error``, shutdown,
and the blocked reactor (the mistake notebook 02 teaches): what the learner is told, and
that no listener is left behind.

Four kernels in all: one shared by most tests, one started with ``-W error`` semantics,
one whose reactor the tests block, one shut down to see its ports freed.

Nothing here waits on the clock. A cell that must be interrupted starts a watcher
(:data:`WATCHERS`) that sends the kernel Ctrl-C once it sees the cell waiting; what the
reactor did is asked of the reactor (a call handed over after a cancellation runs after
it); a blocked reactor is blocked on a lock, released by a later cell or by a watcher once
the cell has been told what blocks it, not for a number of seconds that a busy machine
may use up.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

START = "from poetrylab import runtime\nreactor = runtime.start().reactor"

# Run in each kernel after START: watchers that act as soon as what they wait for is seen,
# never after a guessed delay. when(*conditions, then=action) runs action() from a thread
# once every condition holds; interrupt_when(*conditions) sends this kernel SIGINT then
# (what the notebook's interrupt button sends). Conditions: cell_waits(), the cell is
# blocked in the runtime's wait for the reactor; await_armed(), a top-level await has taken
# Ctrl-C over; reactor_runs(text), the reactor thread is busy running what the watchdog
# describes as ``text``; warned.is_set, the watchdog's warning was written (cleared by the
# test first). After 10 s (short of nbclient's 15 s for a cell) the action runs anyway, so
# the cell ends, and ``never_seen`` says which conditions never held.
WATCHERS = """
import os as _os, signal as _signal, sys as _sys, threading as _threading, time as _time
from poetrylab.runtime import _waits, _watchdog

def _main_thread_in(code):
    frame = _sys._current_frames().get(_threading.main_thread().ident)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False

def cell_waits():
    return _main_thread_in(_waits.Waits._wait_for.__code__)

def await_armed():
    handler = _signal.getsignal(_signal.SIGINT)
    return getattr(handler, '__func__', None) is _waits._SigintWatch._interrupted

reactor_thread = runtime.call(_threading.get_ident)

def reactor_runs(text):
    def reactor_runs():
        frame = _sys._current_frames().get(reactor_thread)
        blocker = frame and _watchdog.describe_frame(frame, None, lambda filename: None)
        return blocker is not None and blocker.running == text
    return reactor_runs

warned = _threading.Event()

class _NotingWarnings:  # the cell's stderr, passed through
    def __init__(self, stream):
        self._stream = stream
    def write(self, text):
        if 'has not answered' in text:
            warned.set()
        return self._stream.write(text)
    def __getattr__(self, name):
        return getattr(self._stream, name)

_sys.stderr = _NotingWarnings(_sys.stderr)

never_seen = []

def when(*conditions, then):
    def watch():
        deadline = _time.monotonic() + 10
        while not all(condition() for condition in conditions):
            if _time.monotonic() > deadline:
                never_seen.append([getattr(c, '__name__', repr(c)) for c in conditions])
                break
            _time.sleep(0.002)
        then()
    _threading.Thread(target=watch, name='watcher', daemon=True).start()

def interrupt_when(*conditions):
    when(*conditions, then=lambda: _os.kill(_os.getpid(), _signal.SIGINT))
"""

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
        assert session.text(START + "\n" + WATCHERS) == ""
        yield session
        assert session.text("print(never_seen)") == "[]\n", "a watcher gave up waiting"


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
    shown = kernel.text(
        "from twisted.internet.defer import Deferred\n"
        "never = Deferred()\n"
        "interrupt_when(cell_waits)\n"
        "runtime.wait(never, timeout=30, what='a poem that never comes')"
    )
    assert "KeyboardInterrupt: interrupted while waiting for a poem that never comes" in shown, (
        shown + kernel.text("print(never_seen)")
    )
    # The cancellation was handed to the reactor first, so this call runs after it.
    assert kernel.text("print(runtime.call(lambda: never.called))") == "True\n"


def test_an_interrupted_top_level_await_cancels_its_deferred(kernel: Kernel) -> None:
    shown = kernel.text(
        "from twisted.internet.defer import Deferred\n"
        "never = Deferred()\n"
        "interrupt_when(await_armed)\n"
        "await runtime.resolve(never, timeout=30)"
    )
    assert "CancelledError: interrupted while waiting for a Deferred" in shown, (
        shown + kernel.text("print(never_seen)")
    )
    assert kernel.text("print(runtime.call(lambda: never.called))") == "True\n"


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
        "print(runtime.call(lambda: slow.called))  # runs after the cancellation handed over"
    ) == "asyncio gave up\nTrue\n"


def test_what_the_reactor_prints_and_unhandled_errors_show_in_the_running_cell(
    kernel: Kernel,
) -> None:
    shown = kernel.text(
        "import threading\n"
        "from twisted.internet import task\n"
        "runtime.call(reactor.callLater, 0.05, print, 'printed by the reactor thread')\n"
        "def refuse():\n"
        "    raise ConnectionRefusedError('nobody listens')\n"
        "runtime.call(lambda: task.deferLater(reactor, 0.05, refuse) and None)\n"
        "after_both = threading.Event()  # a timer due later runs after both\n"
        "runtime.call(reactor.callLater, 0.1, after_both.set)\n"
        "assert after_both.wait(10), 'the reactor ran no timer for 10 s'"
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


def test_a_kernel_asked_to_shut_down_exits_by_itself_and_frees_ports() -> None:
    sessions = kernel_session()
    session = next(sessions)
    session.run(START)
    ports = [
        int(session.text(f"print(runtime.serve('{kind}', 'furuike').port)"))
        for kind in ("slow", "blocking")
    ]
    manager = session.client.km
    # jupyter_client terminates a kernel still running half this long after the request
    # (SIGTERM), then kills it: the kernel must have exited by itself long before.
    manager.shutdown_wait_time = 20.0
    process = manager.provisioner.process
    with pytest.raises(StopIteration):
        next(sessions)  # leaves setup_kernel(): asks the kernel to shut down
    assert process.returncode == 0, (
        f"the kernel did not exit by itself when asked (status {process.returncode}): "
        "jupyter_client had to terminate it, so something kept it from exiting"
    )
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
        "import threading\n"
        "from twisted.internet import task\n"
        "from twisted.internet.defer import Deferred\n"
        "next_cell_runs, printed = threading.Event(), threading.Event()\n"
        "async def later():\n"
        "    while not next_cell_runs.is_set():  # the coroutine's own timers, polling\n"
        "        await task.deferLater(reactor, 0.01, lambda: None)\n"
        "    print('printed by a coroutine of an earlier cell')\n"
        "    printed.set()\n"
        "runtime.call(lambda: Deferred.fromCoroutine(later()) and None)"
    ) == ""
    shown = kernel.text("next_cell_runs.set()\nassert printed.wait(10), 'nothing printed'")
    assert shown == "printed by a coroutine of an earlier cell\n"


@pytest.fixture(scope="module")
def blockable() -> Iterator[Kernel]:
    """A kernel of its own for the tests that block its reactor thread."""
    for session in kernel_session():
        assert session.text(START + "\n" + WATCHERS) == ""
        yield session
        assert session.text("print(never_seen)") == "[]\n", "a watcher gave up waiting"


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

    # The reactor blocks on a lock the cell holds (a C call, as time.sleep is) until a later
    # cell lets it go: blocked for as long as the test needs, however busy the machine.
    blockable.run("import threading\ngate = threading.Lock()\ngate.acquire()")
    timed_out = error_of(blockable.run("# block\nruntime.call(gate.acquire, True, 60, timeout=1)"))
    n = cell_number(blockable)
    assert timed_out["ename"] == "WaitTimeoutError"
    assert timed_out["evalue"].startswith(
        f"gave up waiting for lock.acquire() after 1 s; the reactor thread is still running it "
        f"(lock.acquire(True, 60), from In[{n}], line 2)"
    )
    assert "poetrylab" not in timed_out["text"], "the traceback shows the runtime's frames"
    assert f"In[{n}], line 2" in timed_out["text"]
    assert len(timed_out["text"].splitlines()) <= 8

    pending = error_of(blockable.run("runtime.stop_all(timeout=0.5)"))
    assert pending["ename"] == "StopPendingError"
    assert f"busy (running lock.acquire(True, 60), from In[{n}], line 2)" in pending["evalue"]
    assert "slow server 'slow'" in pending["evalue"]
    assert blockable.text("print([s.state for s in runtime.servers()])") == "['stopping']\n"
    with socket.create_connection(("127.0.0.1", first_port), timeout=2):
        pass  # not forgotten: still listening, as the message says

    # Rerun the serve cell: it waits for the old server to stop, which happens once the
    # reactor is free; the watcher frees it once the cell has said what blocks it.
    blockable.run("warned.clear()\nwhen(cell_waits, warned.is_set, then=gate.release)")
    rerun = render(blockable.rerun(serve_cell)).splitlines()
    assert rerun[0].startswith("⚠ The reactor thread has not answered for over 1 s: it is busy"), (
        rerun + [blockable.text("print(never_seen)")]
    )
    second_port = int(rerun[-1])
    assert second_port != first_port and listening(pid) == 1, "two listeners side by side"
    assert blockable.text("print(runtime.stop_all())") == "['slow']\n"
    assert listening(pid) == 0


def test_the_watchdog_names_the_call_and_the_cell_line_blocking_the_reactor(
    blockable: Kernel,
) -> None:
    blockable.run(
        "gate = threading.Lock()\n"
        "gate.acquire()\n"
        "warned.clear()\n"
        "when(cell_waits, warned.is_set, then=gate.release)  # once the cell has been told"
    )
    shown = blockable.text("# block\nruntime.call(gate.acquire, True, 60)\nprint('done')")
    n = cell_number(blockable)
    assert shown == (
        "⚠ The reactor thread has not answered for over 1 s: it is busy running "
        f"lock.acquire(True, 60), from In[{n}], line 2. Until that returns nothing else runs "
        "in the reactor (no server answers, no timer fires, no download moves). A function run in "
        "the reactor thread must return quickly: give blocking work to a thread "
        "(deferToThread).\ndone\n"
    )


def test_an_interrupt_on_a_blocked_reactor_claims_no_cancellation_and_hides_internals(
    blockable: Kernel,
) -> None:
    timer = "lock.acquire(True, 60) (a reactor.callLater timer)"
    outputs = blockable.run(
        "from twisted.internet.defer import Deferred\n"
        "gate = threading.Lock()\n"
        "gate.acquire()  # the reactor's timer waits on it until the next cell\n"
        "reactor.callLater(0, gate.acquire, True, 60)\n"
        f"interrupt_when(cell_waits, reactor_runs({timer!r}))\n"
        "runtime.wait(Deferred(), timeout=30, what='a poem that never comes')"
    )
    interrupted = error_of(outputs)
    assert interrupted["ename"] == "KeyboardInterrupt"
    assert interrupted["evalue"] == (
        "interrupted while waiting for a poem that never comes; the reactor thread is busy "
        f"running {timer}, so a poem that never comes will be cancelled as soon as it is free"
    ), blockable.text("print(never_seen)")
    assert "poetrylab" not in interrupted["text"]
    after = blockable.text("gate.release()\nprint(runtime.call(lambda: 'free again', timeout=10))")
    assert after.endswith("free again\n")  # told first that a timer still blocks it, or not
    assert after == "free again\n" or timer in after
