"""Unit tests of the runtime's notebook side: which cell runs, where the reactor's output
goes, and how Twisted's log is reported. A fake IPython shell stands in for the kernel."""

from __future__ import annotations

import io
import sys
import types
from typing import Any

import pytest
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from poetrylab.runtime._cells import KernelCells
from poetrylab.runtime._reports import CellReports, render_failure

CELL_FILE = "/tmp/ipykernel_1/123.py"


class FakeShell:
    """Just enough of IPython's shell in a kernel."""

    def __init__(self) -> None:
        self.execution_count = 1
        self.parent: dict[str, Any] = {}
        self.hooks: dict[str, list[Any]] = {}
        self.events = types.SimpleNamespace(
            register=lambda name, fn: self.hooks.setdefault(name, []).append(fn)
        )
        self.kernel = types.SimpleNamespace(get_parent=lambda: self.parent)
        self.compile = types.SimpleNamespace(
            format_code_name=lambda name: ("Cell", "In[7]") if name == CELL_FILE else None
        )

    def execute(self, code: str, msg_id: str, cell_id: str | None = None) -> None:
        """A new execute_request arrives and the cell starts."""
        self.parent = {
            "header": {"msg_id": msg_id, "msg_type": "execute_request"},
            "metadata": {"cellId": cell_id} if cell_id else {},
            "content": {"code": code},
        }
        for hook in self.hooks.get("pre_run_cell", []):
            hook(None)


class ImmediateReactor:
    def callFromThread(self, f: Any, *args: Any) -> None:
        f(*args)


class KernelStream(io.StringIO):
    """An ipykernel OutStream's thread-parent API, recording the parent per write."""

    def __init__(self) -> None:
        super().__init__()
        self.parent: dict[str, Any] = {}
        self.writes: list[tuple[str, str]] = []

    def set_thread_parent(self, parent: dict[str, Any]) -> None:
        self.parent = parent["header"]  # the same object, as ipykernel keeps it

    def write(self, text: str) -> int:
        self.writes.append((self.parent.get("msg_id", ""), text))
        return len(text)


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> FakeShell:
    shell = FakeShell()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    return shell


def test_outside_a_kernel_there_is_no_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    cells = KernelCells()
    cells.install(ImmediateReactor())
    assert cells.current() is None


def test_a_cell_is_keyed_by_jupyterlabs_cell_id_or_else_by_its_code(shell: FakeShell) -> None:
    cells = KernelCells()
    shell.execute("serve()", "run-1", cell_id="cell-abc")
    assert cells.current().key == "cell-abc"
    shell.execute("serve()", "run-2")
    by_code = cells.current()
    shell.execute("serve()", "run-3")
    again = cells.current()
    assert by_code.key == again.key and by_code.key.startswith("code-")
    assert (by_code.msg_id, again.msg_id) == ("run-2", "run-3")
    shell.execute("serve(port=1)", "run-4")
    assert cells.current().key != by_code.key


def test_the_reactors_output_follows_the_cell_being_run(
    shell: FakeShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = KernelStream(), KernelStream()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    shell.execute("start()", "run-1")
    cells = KernelCells()
    cells.install(ImmediateReactor())
    sys.stdout.write("first")
    shell.execute("other()", "run-2")
    sys.stdout.write("second")
    sys.stderr.write("error")
    assert out.writes == [("run-1", "first"), ("run-2", "second")]
    assert err.writes == [("run-2", "error")]


def test_locate_names_the_cell_whose_code_raised(shell: FakeShell) -> None:
    cells = KernelCells()
    cells.install(ImmediateReactor())
    shell.execution_count = 7
    shell.execute("boom()", "run-7")
    cell = cells.locate(["/lib/twisted/defer.py", CELL_FILE, "/lib/other.py"])
    assert cell is not None and cell.label == "In[7]" and cell.msg_id == "run-7"
    assert cells.locate(["/lib/twisted/defer.py"]) is None


def _failure() -> Failure:
    def refuse() -> None:
        raise ConnectionRefusedError("nobody listens")

    try:
        refuse()
    except ConnectionRefusedError:
        return Failure()
    raise AssertionError("unreachable")


def test_an_unhandled_deferred_error_is_rendered_short_with_where_and_what_to_do() -> None:
    event = {"log_namespace": "twisted.internet.defer", "log_level": LogLevel.critical}
    text = render_failure(event, _failure(), "In[3]")
    lines = text.splitlines()
    assert lines[0] == (
        "⚠ Unhandled error in a Deferred: nothing handled this failure "
        "(raised by code from In[3])"
    )
    assert lines[1] == "    ConnectionRefusedError: nobody listens"
    assert any("in refuse," in line for line in lines)
    assert "Add an errback" in lines[-1]


def test_with_setdebugging_the_report_says_where_the_deferred_was_made_and_fired() -> None:
    # What Twisted puts in the event when defer.setDebugging(True) was on: both stacks as
    # text, outermost first; the cell files are the kernel's, Twisted's own frames skipped.
    cell = "/tmp/ipykernel_42/1234.py"
    debug = (
        " C: Deferred was created:\n"
        f' C:  File "{cell}", line 7, in <module>\n'
        f' C:  File "{cell}", line 3, in get_poem\n'
        " I: First Invoker was:\n"
        ' I:  File "/venv/lib/twisted/internet/tcp.py", line 9, in doRead\n'
        f' I:  File "{cell}", line 5, in poem_finished\n'
        ' I:  File "/venv/lib/twisted/internet/defer.py", line 9, in callback\n'
    )
    event = {
        "log_namespace": "twisted.internet.defer",
        "log_level": LogLevel.critical,
        "debugInfo": debug,
    }
    lines = render_failure(event, _failure(), None).splitlines()
    created = [line for line in lines if line.startswith("    created ")]
    fired = [line for line in lines if line.startswith("    first fired ")]
    assert created == ["    created in get_poem, 1234.py, line 3"]
    assert fired == ["    first fired in poem_finished, 1234.py, line 5"]
    assert "Add an errback" in lines[-1]


def test_cell_reports_show_warnings_and_errors_and_skip_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    reports = CellReports(KernelCells())
    reports({"log_level": LogLevel.info, "log_format": "chatter"})
    reports({"log_level": LogLevel.critical, "log_format": "Unhandled error in Deferred:"})
    reports({"log_level": LogLevel.warn, "log_format": "port {port} is busy", "port": 80})
    reports({
        "log_level": LogLevel.critical, "log_format": "", "log_failure": _failure(),
        "log_namespace": "twisted.internet.defer",
    })  # fmt: skip
    shown = err.getvalue()
    assert "chatter" not in shown
    assert shown.startswith("Twisted warn: port 80 is busy\n⚠ Unhandled error in a Deferred")
    assert shown.count("Unhandled") == 1


def test_a_broken_log_event_never_breaks_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    reports = CellReports(KernelCells())
    reports({"log_level": LogLevel.error, "log_failure": object()})  # no exception escapes


def test_cells_that_jupyterlab_reports_deleted_are_passed_on_when_the_next_cell_starts(
    shell: FakeShell,
) -> None:
    deleted: list[list[str]] = []
    cells = KernelCells()
    cells.install(ImmediateReactor(), deleted.append)
    shell.execute("serve()", "run-1", cell_id="cell-a")
    shell.parent["metadata"]["deletedCells"] = ["cell-a"]
    for hook in shell.hooks["pre_run_cell"]:
        hook(None)
    assert deleted == [["cell-a"]]
