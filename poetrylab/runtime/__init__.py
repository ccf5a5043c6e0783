"""The notebook runtime: Twisted's reactor in a background thread, safe to use from cells.

Notebooks 00 and 02 introduce it, every notebook after them starts with it, and notebook
11 shows what happens when the reactor thread is blocked. A cell never calls
``reactor.run()``: :func:`start` runs the reactor in a background thread of its own, and
the functions below hand work to that thread and wait::

    from poetrylab import runtime
    reactor = runtime.start().reactor            # idempotent: re-run it freely
    server = runtime.serve("slow", "ecstasy")     # re-running the cell replaces it
    value = runtime.call(fn, reactor, ...)        # fn runs in the reactor thread
    value = runtime.wait(deferred_or_coroutine)   # block until it fires
    value = await runtime.resolve(deferred_or_coroutine_or_fn)   # top-level await
    runtime.stop_all()                            # stop every server, cancel every wait

Your function runs in the reactor thread with your cell's context variables: each call
copies the calling thread's ``contextvars`` context at the moment of the call and runs
the function (or turns the coroutine you pass into a Deferred) inside that copy, so a
tracer active in the cell sees the work the cell handed over.

Every wait has a timeout (:data:`DEFAULT_TIMEOUT`: 10 s, multiplied by the environment
variable ``POETRYLAB_TIMEOUT_SCALE`` when set, e.g. 3 on a busy classroom hub) and asks
the reactor to cancel the Deferred when it gives up, on a timeout, on Ctrl-C (the
kernel's interrupt) or when the awaiting asyncio task is cancelled; the message says
whether the cancellation has happened or, when the reactor thread is busy, that it will
happen as soon as the thread is free. While a wait lasts, the waiting thread checks that
the reactor thread still answers, and when it has not for over a second it says in the
cell what is blocking it (``time.sleep(13), from In[8], line 2``). No thread and no timer
runs for that while nobody waits, so an idle kernel is never woken by the runtime.

The runtime never forgets a server it has not stopped: a stop the busy reactor thread
cannot carry out yet raises :class:`StopPendingError`, keeps the server listed, and
completes as soon as the thread is free; a re-run cell never starts a listener beside
one that has not stopped. What the reactor thread prints shows up in the cell running
now (never under a completion or inspection request, where the notebook would drop it);
errors nobody handled are reported there, naming the cell that raised them. When the
kernel shuts down, every server is stopped and its port freed.

Why a thread of our own, not crochet (which the course used before): crochet's shutdown
watchdog and process reaper wake ten times a second each for the life of the kernel, and
it offers no public switch for them; owning the thread takes a few dozen lines
(``reactor.run(installSignalHandlers=False)``, an ``atexit`` stop, children reaped only
while there are any) and one dependency less.

Layout (one private module per concern; this module wires them together):

    _engine    the global reactor (no other runtime module imports it) and its thread
    _waits     blocking waits and the asyncio bridge; default timeouts
    _watchdog  is the reactor thread answering? what blocks it?
    _servers   server handles, the registry, the kinds one can serve
    _cells     ipykernel: which cell runs; the reactor's output follows it; short tracebacks
    _reports   Twisted's log shown as short reports in the right cell

:class:`Runtime` takes its engine and cells, so tests build one around a fake reactor;
the module-level functions are the bound methods of the one real runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from poetrylab._typing import RuntimeReactor
from poetrylab.runtime._cells import KernelCells, NoCells
from poetrylab.runtime._engine import EngineError, ReactorThread, Started
from poetrylab.runtime._reports import CellReports, begin_logging
from poetrylab.runtime._servers import (
    STOP_TIMEOUT,
    ServerHandle,
    ServerRegistry,
    Starter,
    StopPendingError,
)
from poetrylab.runtime._waits import (
    DEFAULT_TIMEOUT,
    TIMEOUT_SCALE_VARIABLE,
    Waits,
    WaitTimeoutError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "EngineError",
    "NotStartedError",
    "Runtime",
    "RuntimeInfo",
    "ServerHandle",
    "StopPendingError",
    "TIMEOUT_SCALE_VARIABLE",
    "WaitTimeoutError",
    "call",
    "listen",
    "register",
    "resolve",
    "serve",
    "servers",
    "start",
    "stop_all",
    "wait",
]


class Engine(Protocol):
    """What starts the reactor: :class:`~poetrylab.runtime._engine.ReactorThread`, or a fake."""

    def start(self) -> Started: ...


class _Printer(Protocol):
    """IPython's pretty printer, as far as ``_repr_pretty_`` uses it."""

    def text(self, text: str) -> None: ...


class NotStartedError(RuntimeError):
    """A runtime function was used before :func:`start`."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What :func:`start` reports: the reactor in use and the thread it runs in."""

    reactor: RuntimeReactor = field(repr=False)
    reactor_name: str
    thread_name: str

    def __str__(self) -> str:
        return (
            f"Twisted's {self.reactor_name} is running in the background thread "
            f"{self.thread_name!r}: cells hand it work, and never call reactor.run()."
        )

    def _repr_pretty_(self, printer: _Printer, cycle: bool) -> None:
        printer.text(str(self))


class Runtime:
    """A reactor running in a background thread, and everything cells need around it.

    ``engine.start()`` starts (once) and returns the reactor and its thread; ``cells``
    knows the notebook's cells (:class:`~poetrylab.runtime._cells.NoCells` outside a
    kernel); ``observe_log(observer)`` adds a Twisted log observer (by default to the
    global log, which it begins). Every method is thread-safe.
    """

    def __init__(
        self,
        engine: Engine | None = None,
        cells: NoCells | None = None,
        observe_log: Callable[[CellReports], None] = begin_logging,
    ) -> None:
        self._engine: Engine = engine if engine is not None else ReactorThread()
        self._cells = cells if cells is not None else KernelCells()
        self._observe_log = observe_log
        self._lock = threading.Lock()
        self._info: RuntimeInfo | None = None
        self._waits: Waits | None = None
        self._servers: ServerRegistry | None = None
        self._kinds: dict[str, Starter] = {}

    # -- starting ------------------------------------------------------------------------

    def start(self) -> RuntimeInfo:
        """Start the reactor in its background thread (once) and say which reactor it is.

        Idempotent and cheap: every notebook's first cell calls it, and re-running that
        cell changes nothing (it does not even wait for the reactor thread, so it works
        while that thread is blocked). Returns a :class:`RuntimeInfo` (``.reactor`` is
        the reactor to pass to servers and clients). Raises :class:`EngineError` when
        the reactor has stopped for good (after a shutdown): restart the kernel.
        """
        with self._lock:
            info = self._info
            if info is not None and info.reactor.running:
                return info
            started: Started = self._engine.start()
            reactor = started.reactor
            if self._waits is None:
                self._waits = Waits(reactor, started.thread_ident, self._cells)
                self._servers = ServerRegistry(reactor, self._waits, self._cells, self._kinds)
                self._observe_log(CellReports(self._cells))
                self._cells.install(reactor, self._servers.stop_cells)
                reactor.addSystemEventTrigger("before", "shutdown", self._shutting_down)
            self._info = RuntimeInfo(reactor, type(reactor).__name__, started.thread_name)
            return self._info

    def _shutting_down(self) -> Deferred[Any]:
        assert self._waits is not None and self._servers is not None
        self._waits.fail_pending("the reactor is shutting down")
        return self._servers.stop_all_in_reactor()

    def _need_waits(self) -> Waits:
        waits = self._waits
        if waits is None:
            raise NotStartedError("the poetrylab runtime is not started: run runtime.start() first")
        return waits

    def _need_servers(self) -> ServerRegistry:
        self._need_waits()
        assert self._servers is not None
        return self._servers

    # -- waiting -------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in the reactor thread; wait for and return its result.

        ``fn`` runs with your cell's context variables (a copy taken now). If it returns a
        Deferred (or is ``async def``), its result is waited for. Raises what ``fn``
        raised (or the Failure's exception); :class:`WaitTimeoutError` after ``timeout``
        seconds (None: wait for ever) and ``KeyboardInterrupt`` when the kernel is
        interrupted, in both cases after asking the reactor to cancel the Deferred (the
        message names ``what``, default the function's name, and says whether the
        cancellation happened). Thread-safe, from any thread but the reactor's: there
        it raises RuntimeError, as waiting would deadlock (return the Deferred
        instead). Pass the function's own ``timeout``/``what`` arguments positionally.
        """
        __tracebackhide__ = True
        return self._need_waits().call(fn, *args, timeout=timeout, what=what, **kwargs)

    def wait(
        self,
        waitable: Deferred[Any] | Coroutine[Any, Any, Any],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
    ) -> Any:
        """Wait for a Deferred, or run a coroutine in the reactor thread, and return its result.

        Outcomes as :func:`call`. The Deferred's result is consumed (it holds None
        afterwards), as ``await`` in Twisted does. Raises TypeError for anything that
        is neither a Deferred nor a coroutine. A coroutine is turned into a Deferred in
        the reactor thread, with your cell's context variables. Thread-safe, except in
        the reactor thread.
        """
        __tracebackhide__ = True
        return self._need_waits().wait(waitable, timeout=timeout, what=what)

    def resolve(
        self,
        awaited: Any,
        *args: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, Any]:
        """``await runtime.resolve(x)``: the asyncio way to wait for the reactor.

        ``x`` is a Deferred, a coroutine (run in the reactor thread), or a function
        called there with ``*args``/``**kwargs``, with the awaiting task's context
        variables. Awaiting it returns the value or raises
        the Failure's exception, without blocking the awaiting event loop (the kernel's,
        for top-level ``await``). Raises :class:`WaitTimeoutError` after ``timeout`` seconds;
        cancelling the awaiting task (``asyncio.wait_for``, ``task.cancel()``) cancels
        the Deferred. The loop is woken with ``call_soon_threadsafe``, so any event
        loop in any thread but the reactor's may await it.
        """
        __tracebackhide__ = True
        return self._need_waits().resolve(awaited, *args, timeout=timeout, what=what, **kwargs)

    # -- servers -------------------------------------------------------------------------

    def serve(
        self,
        kind: str,
        *args: Any,
        name: str | None = None,
        port: int = 0,
        iface: str = "127.0.0.1",
        **options: Any,
    ) -> ServerHandle:
        """Start a server of ``kind`` on ``iface:port`` (0: a free port); return its handle.

        ``kind`` is any ``poetrylab serve`` kind (slow, fast, blocking, ...) or one added
        with :func:`register`. Positional arguments and options are the command line's:
        ``serve("slow", "ecstasy", delay=0.05, num_bytes=20)``; a kind that takes a poem
        serves ``raven`` when none is given. The server is kept under ``name`` or, by
        default, under the cell that started it, so running the cell again replaces it
        (the port is freed first, so a fixed ``port`` can be reused; when the old server
        cannot be stopped in time because the reactor thread is busy, this raises
        :class:`StopPendingError` and starts nothing). Raises ValueError for an unknown
        kind or a bad option value, TypeError for an unknown option, and
        ``CannotListenError`` when the port is taken by someone else. Thread-safe, from
        any thread but the reactor's (it waits for the server to listen).
        """
        __tracebackhide__ = True
        return self._need_servers().serve(
            kind, *args, name=name, port=port, iface=iface, **options
        )

    def listen(
        self, start: Starter, *, name: str | None = None, kind: str = "custom"
    ) -> ServerHandle:
        """Start a server written in a cell: ``start(reactor)`` runs in the reactor thread.

        ``start`` returns what ``reactor.listenTCP`` returns (or a list of them, or an
        object with ``host``, ``port`` and ``stop()``). Registered and replaced exactly
        like :func:`serve`; returns the handle. Raises what ``start`` raised. ``start``
        runs with your cell's context variables. Thread-safe, from any thread but the
        reactor's.
        """
        __tracebackhide__ = True
        return self._need_servers().open(kind, start, name=name)

    def register(self, kind: str, start: Starter) -> None:
        """Add a server kind: ``serve(kind, *args, **options)`` will run
        ``start(reactor, *args, port=..., iface=..., **options)`` in the reactor thread.

        ``start`` returns what :func:`listen`'s does. A kind registered here is used
        before a ``poetrylab serve`` kind of the same name. May be called before
        :func:`start`; thread-safe.
        """
        if not callable(start):
            raise TypeError(f"register({kind!r}, start): start must be callable")
        with self._lock:
            self._kinds[kind] = start

    def servers(self) -> list[ServerHandle]:
        """The servers not stopped yet (started through this runtime), oldest first.

        A server asked to stop whose ports are not closed yet (the reactor thread is
        busy) is listed too, its ``state`` ``stopping``. Returns a new list of
        :class:`ServerHandle`; empty before :func:`start`. Thread-safe.
        """
        servers = self._servers
        return servers.handles() if servers is not None else []

    def stop_all(self, *, timeout: float | None = STOP_TIMEOUT) -> list[str]:
        """Reset a demo: stop every server and cancel every wait still in flight.

        Waits up to ``timeout`` seconds (10 unless told, times POETRYLAB_TIMEOUT_SCALE)
        for the ports to close and returns the names of the servers stopped. When the
        reactor thread is busy and cannot close them in time, raises
        :class:`StopPendingError` naming them and what blocks the reactor: they stay
        listed, stop as soon as the thread is free, and the next ``stop_all()`` waits
        for them. Connections already open finish on their own. Safe to call before
        :func:`start` (it does nothing), repeatedly, and from any thread (in the reactor
        thread it starts closing ports and returns).
        """
        __tracebackhide__ = True
        if self._waits is None or self._servers is None:
            return []
        self._waits.cancel_pending("runtime.stop_all()")
        return self._servers.stop_all(timeout=timeout)


_runtime = Runtime()

start = _runtime.start
call = _runtime.call
wait = _runtime.wait
resolve = _runtime.resolve
serve = _runtime.serve
listen = _runtime.listen
register = _runtime.register
servers = _runtime.servers
stop_all = _runtime.stop_all
