"""Notebook cells: which one is running, and where the reactor thread's output goes.

ipykernel tags every output message with the request that caused it (its *parent*).
Output written from another thread takes the most recent request of any kind, so a
poem printed by the reactor thread while the learner presses Tab (a completion request)
or hovers over a name (an inspection request) is tagged with that request, and the
notebook drops it. :class:`KernelCells` gives the reactor thread a parent of its own
that follows the *cell* being run: what the reactor prints goes to the cell running now,
or, between cells, to the last one that ran. Coroutines copy the reactor thread's
context when they start, and they follow along too, because they share the same header
object, which is only ever changed in the reactor thread.

When JupyterLab reports cells deleted, the runtime stops the servers they started.
Errors that nobody handled are reported by ``_reports``; :meth:`KernelCells.locate`
names the cell whose code raised them, and :meth:`KernelCells.sweep` (after each cell
that used the runtime) collects garbage so those reports come while the cell that
caused them is still running.

Work a cell hands to the reactor runs in a copy of the cell's context variables (see
``_waits``); :meth:`KernelCells.adopt_output` makes that copy write under the same
cell-following parent, so a coroutine started there keeps following the running cell
instead of writing to the cell that started it for ever. :meth:`KernelCells.label` maps a
cell's file name to ``In[n]`` for messages, and :func:`explained` makes an exception the
runtime raises show, in IPython, the learner's frames and its message only.

Outside a kernel (tests, scripts) :class:`KernelCells` finds no shell and does nothing.
"""

from __future__ import annotations

import gc
import hashlib
import re
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from poetrylab._typing import ReactorThreads

__all__ = ["Cell", "KernelCells", "NoCells", "cell_label", "explained", "learner_traceback"]

_IN = re.compile(r"In\[(\d+)\]")
_REMEMBERED = 500
_RUNTIME_PACKAGE = __name__.rpartition(".")[0]

E = TypeVar("E", bound=BaseException)

CellsDeleted = Callable[[list[str]], object]
"""``cells_deleted(keys)``: called with the keys of cells the notebook deleted."""

Message = dict[str, Any]
"""A Jupyter message (or its parent): JSON-like, as ipykernel hands it over."""


def _ignore(keys: list[str]) -> None:
    return None


@dataclass(frozen=True)
class Cell:
    """One execution of a notebook cell.

    ``key`` is the same every time the same cell runs (JupyterLab's ``cellId``, else a
    hash of the code); ``msg_id`` is this execution's request; ``count`` is ``In[n]``.
    """

    key: str | None
    msg_id: str
    count: int | None = None
    parent: Message = field(default_factory=dict, repr=False, compare=False)

    @property
    def label(self) -> str:
        """``In[7]``, or ``a cell`` when the number is unknown."""
        return f"In[{self.count}]" if self.count is not None else "a cell"


class NoCells:
    """No notebook: no cells, nothing to route (plain Python, tests, scripts)."""

    def install(self, reactor: ReactorThreads, cells_deleted: CellsDeleted = _ignore) -> None:
        """Nothing to hook."""

    def current(self) -> Cell | None:
        """The cell running now: never, here."""
        return None

    def used(self) -> None:
        """Note that the runtime was used by the cell running now."""

    def locate(self, filenames: Iterable[str]) -> Cell | None:
        """The cell whose code one of ``filenames`` is: none, here."""
        return None

    def label(self, filename: str) -> str | None:
        """``In[n]`` when ``filename`` holds a notebook cell's code: never, here."""
        return None

    def adopt_output(self) -> None:
        """Reactor thread, in a handed-over call's context: nothing to route, here."""


def _shell() -> Any:
    """IPython's shell when this process is a kernel, else None (IPython is untyped)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def cell_label(filename: str) -> str | None:
    """``In[n]`` when ``filename`` is the file IPython compiled a cell into, else None."""
    shell = _shell()
    if shell is None:
        return None
    try:
        named = shell.compile.format_code_name(filename)
    except Exception:  # an IPython without the name map: no labels
        return None
    if not named or not _IN.fullmatch(named[1]):
        return None
    return str(named[1])


def learner_traceback(error: BaseException) -> list[str]:
    """``error`` as IPython renders it, without the runtime's own frames.

    IPython calls an exception's ``_render_traceback_`` instead of formatting it (the
    hook ipyparallel uses); :func:`explained` points it here. The learner sees their
    cell's frames and the message, not the runtime's internals. Falls back to the whole
    traceback if IPython cannot render the shorter one, and to Python's own formatting
    outside IPython.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    full = error.__traceback__
    if shell is None:
        return traceback.format_exception(type(error), error, full)
    try:
        shown = _without_runtime_frames(full)
        return list(shell.InteractiveTB.structured_traceback(type(error), error, shown))
    except Exception:  # an IPython that cannot: show everything rather than nothing
        return list(shell.InteractiveTB.structured_traceback(type(error), error, full))


def explained(error: E) -> E:
    """Make IPython show ``error`` with the learner's frames only; returns ``error``."""
    setattr(error, "_render_traceback_", lambda: learner_traceback(error))  # noqa: B010
    return error


def _without_runtime_frames(tb: TracebackType | None) -> TracebackType | None:
    kept: list[TracebackType] = []
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if not (isinstance(module, str) and module.startswith(_RUNTIME_PACKAGE)):
            kept.append(tb)
        tb = tb.tb_next
    shown: TracebackType | None = None
    for entry in reversed(kept):
        shown = TracebackType(shown, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return shown


class KernelCells(NoCells):
    """The cells of the IPython kernel this process runs, if it is one. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: Cell | None = None
        self._by_count: OrderedDict[int, Message] = OrderedDict()
        self._installed = False
        self._reactor: ReactorThreads | None = None
        self._header: dict[str, Any] = {}  # changed only in the reactor thread
        self._parent: Message = {"header": self._header}
        self._used = False
        self._cells_deleted: CellsDeleted = _ignore

    def install(self, reactor: ReactorThreads, cells_deleted: CellsDeleted = _ignore) -> None:
        """Give the reactor thread its cell-following parent and hook cell events; once.

        ``cells_deleted(keys)`` is called (in the main thread, as the next cell starts)
        with the keys of cells the notebook says were deleted.
        """
        shell = _shell()
        with self._lock:
            if shell is None or self._installed:
                return
            self._installed = True
            self._reactor = reactor
            self._cells_deleted = cells_deleted
        reactor.callFromThread(self._adopt, dict(shell.kernel.get_parent().get("header") or {}))
        self._remember(shell)
        shell.events.register("pre_run_cell", self._cell_starting)
        shell.events.register("post_execute", self.sweep)

    def _adopt(self, header: dict[str, Any]) -> None:
        """In the reactor thread: write under ``self._header`` from now on."""
        self._follow(header)
        self.adopt_output()

    def adopt_output(self) -> None:
        """Write under the cell-following parent in the current context (reactor thread).

        Called in the reactor thread's own context once, and in the copied context of
        every call a cell hands over, before the call runs.
        """
        if not self._installed:
            return
        for stream in (sys.stdout, sys.stderr):
            set_parent = getattr(stream, "set_thread_parent", None)
            if set_parent is not None:
                set_parent(self._parent)

    def _follow(self, header: dict[str, Any]) -> None:
        """In the reactor thread: the cell whose request ``header`` is now runs."""
        if header:
            self._header.clear()
            self._header.update(header)

    def _cell_starting(self, info: object = None) -> None:
        shell = _shell()
        if shell is None or self._reactor is None:
            return
        header = self._remember(shell)
        self._reactor.callFromThread(self._follow, header)
        deleted = (shell.kernel.get_parent().get("metadata") or {}).get("deletedCells")
        if deleted:  # JupyterLab names the cells deleted since the last execution
            self._cells_deleted(list(deleted))

    def _remember(self, shell: Any) -> dict[str, Any]:
        parent: Message = shell.kernel.get_parent()
        with self._lock:
            self._by_count[shell.execution_count] = parent
            while len(self._by_count) > _REMEMBERED:
                self._by_count.popitem(last=False)
        return dict(parent.get("header") or {})

    def current(self) -> Cell | None:
        """The cell this kernel is running now, or None outside a kernel."""
        shell = _shell()
        if shell is None:
            return None
        parent: Message = shell.kernel.get_parent()
        header = parent.get("header") or {}
        msg_id = header.get("msg_id")
        if not msg_id:
            return None
        last = self._last
        if last is not None and last.msg_id == msg_id:
            return last
        cell = self._cell(parent, shell.execution_count)
        self._last = cell
        return cell

    @staticmethod
    def _cell(parent: Message, count: int | None) -> Cell:
        header = parent.get("header") or {}
        key = None
        if header.get("msg_type") == "execute_request":
            key = (parent.get("metadata") or {}).get("cellId")
            if not key:
                code = (parent.get("content") or {}).get("code", "")
                key = "code-" + hashlib.sha1(code.encode()).hexdigest()[:16]
        return Cell(key=key, msg_id=header.get("msg_id", ""), count=count, parent=parent)

    def used(self) -> None:
        """Note that the running cell used the runtime: :meth:`sweep` will run after it."""
        self._used = True

    def sweep(self) -> None:
        """After a cell that used the runtime: collect garbage now, so a failed Deferred
        that nothing handled is reported while its cell is still running (Deferreds often
        sit in reference cycles, which only the cyclic collector frees)."""
        if self._used:
            self._used = False
            gc.collect()

    def label(self, filename: str) -> str | None:
        """``In[n]`` when ``filename`` holds a notebook cell's code, else None."""
        return cell_label(filename)

    def locate(self, filenames: Iterable[str]) -> Cell | None:
        """The cell whose code one of ``filenames`` (innermost last) is, if any."""
        if _shell() is None:
            return None
        for filename in reversed(list(filenames)):
            label = cell_label(filename)
            match = _IN.fullmatch(label) if label else None
            if match:
                count = int(match[1])
                with self._lock:
                    parent = self._by_count.get(count, {})
                return self._cell(parent, count)
        return None
