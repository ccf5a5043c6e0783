"""Unit tests of the notebook runtime, on a fake reactor: a thread that runs what is handed
to it in order, and a ``task.Clock`` that jumps to the next timed call whenever the thread
is idle. No sockets; the only real time spent is in the few tests of timeouts (50 ms).

Nothing here synchronises on the clock. What the reactor has done is asked of the reactor
itself (a call handed over after a cancellation runs after it: the reactor runs what it is
handed in order); Ctrl-C is sent once the main thread is seen waiting
(:func:`interrupt_when`); a wait that must give up runs under :func:`waiting.within`, whose
timeout bounds a hang. The conditions and :func:`interrupt_when` are shared with
``test_runtime_watch_unit``; the general helpers are in ``waiting.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet import task
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock
from waiting import when, within

from poetrylab.runtime import Runtime, WaitTimeoutError
from poetrylab.runtime._cells import Cell, NoCells
from poetrylab.runtime._engine import Started
from poetrylab.runtime._waits import Waits, _SigintWatch, describe

SHORT = 0.05


def main_thread_in(function: Callable[..., Any]) -> Callable[[], bool]:
    """A condition: the main thread is running ``function`` now (it is on its stack)."""
    code = function.__code__

    def running() -> bool:
        frame = sys._current_frames().get(threading.main_thread().ident or 0)
        while frame is not None:
            if frame.f_code is code:
                return True
            frame = frame.f_back
        return False

    running.__name__ = f"main_thread_in_{function.__name__}"
    return running


# The main thread is blocked in a runtime wait for the reactor (where Ctrl-C lands).
main_thread_waits = main_thread_in(Waits._wait_for)
# The main thread gives an interrupted wait its grace, for the cancellation to happen.
main_thread_lingers = main_thread_in(Waits._linger)


def await_armed() -> bool:
    """A condition: an awaiting ``resolve`` has taken Ctrl-C over (its SIGINT handler is in)."""
    handler = signal.getsignal(signal.SIGINT)
    return getattr(handler, "__func__", None) is _SigintWatch._interrupted


@contextlib.contextmanager
def interrupt_when(condition: Callable[[], bool], what: str) -> Iterator[None]:
    """Ctrl-C (SIGINT to this process, as the kernel's interrupt button sends it) as soon as
    ``condition()`` holds, e.g. :func:`main_thread_waits`.

    Meanwhile Python's own handler takes SIGINT (it raises KeyboardInterrupt), as in a
    kernel running a cell, even when this process was started with SIGINT ignored (a
    shell's background job, as CI may run the suite); the handler before is put back.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with when(condition, lambda: os.kill(os.getpid(), signal.SIGINT), what):
            yield
    finally:
        signal.signal(signal.SIGINT, before)


class ThreadedFakeReactor(MemoryReactorClock):
    """``callFromThread`` runs calls in this reactor's own thread, in order; when nothing
    is queued, the clock jumps to the next timed call (time passes only when idle)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = True
        self.triggers: list[tuple[str, str, Callable[..., Any]]] = []
        self.errors: list[BaseException] = []
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="FakeReactor", daemon=True)
        self.thread.start()

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._calls.put((f, args, kwargs))

    def addSystemEventTrigger(self, phase: str, event: str, f: Callable[..., Any], *a: Any) -> None:
        self.triggers.append((phase, event, f))

    def _loop(self) -> None:
        while True:
            try:
                item = self._calls.get(timeout=0.005)
            except queue.Empty:
                pending = self.getDelayedCalls()
                if pending:
                    self.advance(max(0.0, min(c.getTime() for c in pending) - self.seconds()))
                continue
            if item is None:
                return
            f, args, kwargs = item
            try:
                f(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - recorded for the test to see
                self.errors.append(exc)

    def stop_thread(self) -> None:
        self._calls.put(None)
        self.thread.join(5)


class FakeEngine:
    def __init__(self, reactor: ThreadedFakeReactor) -> None:
        self.reactor = reactor
        self.starts = 0

    def start(self) -> Started:
        self.starts += 1
        return Started(self.reactor, self.reactor.thread.ident or 0, self.reactor.thread.name)


class FakeCells(NoCells):
    """A notebook whose running cell the test chooses."""

    def __init__(self) -> None:
        self.cell: Cell | None = None
        self.uses = 0

    def current(self) -> Cell | None:
        return self.cell

    def used(self) -> None:
        self.uses += 1

    def run(self, key: str, run_id: str) -> None:
        self.cell = Cell(key=key, msg_id=run_id)


@pytest.fixture
def fake_reactor() -> Iterator[ThreadedFakeReactor]:
    reactor = ThreadedFakeReactor()
    yield reactor
    reactor.stop_thread()
    assert not reactor.errors, reactor.errors


@pytest.fixture
def cells() -> FakeCells:
    return FakeCells()


@pytest.fixture
def rt(fake_reactor: ThreadedFakeReactor, cells: FakeCells) -> Runtime:
    runtime = Runtime(FakeEngine(fake_reactor), cells, observe_log=lambda observer: None)
    runtime.start()
    return runtime


def in_reactor_thread(reactor: ThreadedFakeReactor) -> bool:
    return threading.current_thread() is reactor.thread


# -- starting -----------------------------------------------------------------------------


def test_start_is_idempotent_and_reports_the_reactor_and_its_thread(
    fake_reactor: ThreadedFakeReactor,
) -> None:
    engine = FakeEngine(fake_reactor)
    runtime = Runtime(engine, FakeCells(), observe_log=lambda observer: None)
    first = runtime.start()
    assert runtime.start() is first
    assert engine.starts == 1
    assert first.reactor is fake_reactor
    assert (first.reactor_name, first.thread_name) == ("ThreadedFakeReactor", "FakeReactor")
    assert "never call reactor.run()" in str(first)
    assert [(phase, event) for phase, event, _ in fake_reactor.triggers] == [("before", "shutdown")]


def test_every_function_says_to_start_first_when_the_runtime_is_not_started() -> None:
    runtime = Runtime(engine=object(), cells=FakeCells())
    for attempt in (
        lambda: runtime.call(print),
        lambda: runtime.wait(Deferred()),
        lambda: runtime.resolve(Deferred()),
        lambda: runtime.serve("slow"),
        lambda: runtime.listen(print),
    ):
        with pytest.raises(RuntimeError, match=r"run runtime.start\(\) first"):
            attempt()
    assert runtime.servers() == []
    assert runtime.stop_all() == []


# -- blocking waits -----------------------------------------------------------------------


def test_call_runs_the_function_in_the_reactor_thread_and_returns_its_value(
    rt: Runtime, fake_reactor: ThreadedFakeReactor, cells: FakeCells
) -> None:
    assert rt.call(in_reactor_thread, fake_reactor) is True
    assert rt.call(lambda a, b=0: a + b, 2, b=3) == 5
    assert cells.uses == 2


def test_call_waits_for_the_deferred_the_function_returns(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    assert rt.call(task.deferLater, fake_reactor, 30.0, lambda: "later") == "later"


def test_call_runs_an_async_function_and_returns_what_it_returns(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    async def poem() -> str:
        first = await task.deferLater(fake_reactor, 1.0, lambda: "Tyger")
        return first + " Tyger"

    assert rt.call(poem) == "Tyger Tyger"
    assert rt.wait(poem()) == "Tyger Tyger"


def test_call_raises_the_functions_exception_in_the_caller(rt: Runtime) -> None:
    def broken() -> None:
        raise ValueError("no poem today")

    with pytest.raises(ValueError, match="no poem today"):
        rt.call(broken)


def test_wait_raises_the_exception_a_deferred_failed_with(rt: Runtime) -> None:
    with pytest.raises(KeyError, match="raven"):
        rt.wait(fail(KeyError("raven")))


def test_waiting_consumes_the_deferreds_result_as_await_does(rt: Runtime) -> None:
    d = succeed("poem")
    assert rt.wait(d) == "poem"
    assert d.result is None
    failed = fail(ValueError("handled by the wait"))
    with pytest.raises(ValueError):
        rt.wait(failed)
    assert failed.result is None  # nothing left to be reported as unhandled


def test_a_wait_that_times_out_cancels_the_deferred_and_says_what_it_waited_for(
    rt: Runtime,
) -> None:
    d: Deferred[str] = Deferred()

    def wait() -> None:
        rt.wait(d, timeout=SHORT, what="the poem from 127.0.0.1:1")

    with pytest.raises(WaitTimeoutError, match=r"the poem from 127.0.0.1:1 after 0.05 s") as info:
        # 5 s: far beyond the 0.05 s asked for, and short of the default timeout (10 s)
        within(5.0, "a wait with a 0.05 s timeout", wait)
    assert d.called, "the Deferred was not cancelled"
    assert isinstance(info.value, TimeoutError)
    assert "timeout=SECONDS" in str(info.value)


def test_a_timed_out_call_names_the_function_by_default(rt: Runtime) -> None:
    def get_poetry() -> Deferred[str]:
        return Deferred()

    with pytest.raises(WaitTimeoutError, match=r"get_poetry\(\) after"):
        rt.call(get_poetry, timeout=SHORT)


def test_a_timed_out_wait_chains_the_error_the_canceller_produced(rt: Runtime) -> None:
    d: Deferred[str] = Deferred(lambda d: d.errback(ConnectionAbortedError("aborted")))
    with pytest.raises(WaitTimeoutError) as info:
        rt.wait(d, timeout=SHORT)
    assert isinstance(info.value.__cause__, ConnectionAbortedError)


def test_a_value_the_canceller_fires_with_is_named_in_the_timeout_not_returned(
    rt: Runtime,
) -> None:
    d: Deferred[str] = Deferred(lambda d: d.callback("stopped early"))
    with pytest.raises(WaitTimeoutError, match="when cancelled it fired with 'stopped early'"):
        rt.wait(d, timeout=SHORT)
    with pytest.raises(WaitTimeoutError, match="gave up waiting"):
        asyncio.run(rt.resolve(Deferred(lambda d: d.callback(42)), timeout=SHORT))


def test_ctrl_c_during_a_blocking_wait_cancels_the_deferred_and_raises_keyboard_interrupt(
    rt: Runtime,
) -> None:
    d: Deferred[str] = Deferred()
    cancelled = threading.Event()
    d.addErrback(lambda f: cancelled.set() if f.check(CancelledError) else f)
    with (
        interrupt_when(main_thread_waits, "the wait for the slow poem"),
        pytest.raises(KeyboardInterrupt, match="interrupted while waiting for the slow poem"),
    ):
        rt.wait(d, timeout=10, what="the slow poem")
    assert cancelled.wait(10), "the Deferred was not cancelled"


def test_waiting_in_the_reactor_thread_is_refused_instead_of_deadlocking(rt: Runtime) -> None:
    with pytest.raises(RuntimeError, match="cannot run in the reactor thread"):
        rt.call(rt.call, lambda: 1)


def test_wait_rejects_what_is_neither_a_deferred_nor_a_coroutine(rt: Runtime) -> None:
    with pytest.raises(TypeError, match=r"use runtime.call\(fn, \*args\)"):
        rt.wait(lambda: 1)


def test_describe_names_functions_partials_coroutines_and_deferreds() -> None:
    def get_poetry() -> None: ...

    async def fetch() -> None: ...

    coroutine = fetch()
    assert describe(get_poetry).endswith("<locals>.get_poetry()")
    assert describe(functools.partial(print, 1)) == "print()"
    assert describe(coroutine).endswith("fetch()")
    assert describe(Deferred()) == "a Deferred"
    coroutine.close()


# -- awaiting -----------------------------------------------------------------------------


def run_async(coroutine: Any) -> Any:
    """Run on a fresh event loop in this (the main) thread, as a kernel cell does."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_resolve_returns_the_value_of_a_deferred_a_coroutine_or_a_function(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    async def poem() -> str:
        return await task.deferLater(fake_reactor, 5.0, lambda: "coroutine")

    async def main() -> list[Any]:
        return [
            await rt.resolve(succeed("fired")),
            await rt.resolve(poem()),
            await rt.resolve(task.deferLater, fake_reactor, 1.0, lambda: "function"),
            await rt.resolve(in_reactor_thread, fake_reactor),
        ]

    assert run_async(main()) == ["fired", "coroutine", "function", True]


def test_resolve_raises_the_exception_of_the_failure_with_its_traceback(rt: Runtime) -> None:
    def deep() -> None:
        raise LookupError("no such poem")

    async def main() -> None:
        await rt.resolve(deep)

    with pytest.raises(LookupError, match="no such poem") as info:
        run_async(main())
    assert any(entry.name == "deep" for entry in info.traceback)


def test_the_event_loop_keeps_running_while_a_resolve_waits(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    ticks = []
    d: Deferred[str] = Deferred()

    async def ticker() -> None:
        while True:
            ticks.append(1)
            if len(ticks) == 5:  # only a loop that runs while resolve waits gets here
                fake_reactor.callFromThread(d.callback, "done")
            await asyncio.sleep(0.005)

    async def main() -> str:
        ticking = asyncio.ensure_future(ticker())
        try:
            return await rt.resolve(d, timeout=10)
        finally:
            ticking.cancel()

    assert run_async(main()) == "done"
    assert len(ticks) >= 5


def test_cancelling_the_awaiting_task_cancels_the_deferred(rt: Runtime) -> None:
    d: Deferred[str] = Deferred()

    async def main() -> None:
        await asyncio.wait_for(rt.resolve(d, timeout=None), SHORT)

    with pytest.raises(TimeoutError):
        run_async(main())
    # The cancellation was handed to the reactor before the await gave up, so a call
    # handed over now runs after it.
    assert rt.call(lambda: d.called), "the Deferred was not cancelled"


def test_resolve_times_out_cancels_and_names_what_it_awaited(rt: Runtime) -> None:
    d: Deferred[str] = Deferred()

    async def main() -> None:
        await rt.resolve(d, timeout=SHORT, what="the tyger")

    with pytest.raises(WaitTimeoutError, match="the tyger after 0.05 s"):
        run_async(main())
    assert rt.call(lambda: d.called), "the Deferred was not cancelled"


def test_ctrl_c_during_an_await_cancels_the_deferred_and_the_await(rt: Runtime) -> None:
    d: Deferred[str] = Deferred()

    async def main() -> None:
        await rt.resolve(d, timeout=10, what="the endless poem")

    with interrupt_when(await_armed, "the await taking Ctrl-C over"):
        before = signal.getsignal(signal.SIGINT)
        with pytest.raises(asyncio.CancelledError, match="interrupted while waiting for the endl"):
            run_async(main())
        assert signal.getsignal(signal.SIGINT) is before, "the SIGINT handler was not put back"
    assert rt.call(lambda: d.called), "the Deferred was not cancelled"


def test_resolve_works_from_an_event_loop_in_another_thread(rt: Runtime) -> None:
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(rt.resolve(succeed(7)))))
    thread.start()
    thread.join(5)
    assert results == [7]


def test_resolve_rejects_arguments_without_a_function(rt: Runtime) -> None:
    async def main() -> None:
        await rt.resolve(succeed(1), 2)

    with pytest.raises(TypeError, match="only when it is given a function"):
        run_async(main())


def test_stop_all_cancels_awaits_still_in_flight(rt: Runtime) -> None:
    d: Deferred[str] = Deferred()

    async def main() -> None:
        waiting = asyncio.ensure_future(rt.resolve(d, timeout=5))
        await asyncio.sleep(SHORT)
        rt.stop_all()
        await waiting

    with pytest.raises(CancelledError, match=r"a Deferred was cancelled by runtime.stop_all\(\)"):
        run_async(main())
    assert d.called


# -- servers ------------------------------------------------------------------------------


class FakePort:
    """What ``listenTCP`` returns, enough for the registry."""

    instances = 0

    def __init__(self, port: int) -> None:
        self.number = port
        self.stopped = 0
        FakePort.instances += 1

    def getHost(self) -> Any:
        from twisted.internet.address import IPv4Address

        return IPv4Address("TCP", "127.0.0.1", self.number)

    def stopListening(self) -> Deferred[None]:
        self.stopped += 1
        return succeed(None)


def start_port(number: int) -> Callable[[Any], FakePort]:
    return lambda reactor: FakePort(number)


def test_listen_registers_the_server_under_the_kind_with_its_address(rt: Runtime) -> None:
    handle = rt.listen(start_port(4000), kind="echo")
    assert (handle.name, handle.kind, handle.port) == ("echo", "echo", 4000)
    assert str(handle.address) == "127.0.0.1:4000"
    assert rt.servers() == [handle]
    assert str(handle) == "echo server 'echo' on 127.0.0.1:4000"


def test_rerunning_a_cell_replaces_its_server_instead_of_leaking_it(
    rt: Runtime, cells: FakeCells
) -> None:
    handles = []
    for run in range(5):
        cells.run("cell-A", f"run-{run}")
        handles.append(rt.listen(start_port(4000 + run)))
    assert rt.servers() == [handles[-1]]
    assert [h.running for h in handles] == [False] * 4 + [True]
    assert handles[-1].name == "custom", "a replaced server's name is reused"


def test_a_cell_that_starts_two_servers_keeps_both_and_reruns_replace_both(
    rt: Runtime, cells: FakeCells
) -> None:
    cells.run("cell-A", "run-1")
    first = [rt.listen(start_port(4001)), rt.listen(start_port(4002))]
    assert [h.name for h in first] == ["custom", "custom-2"]
    cells.run("cell-A", "run-2")
    second = rt.listen(start_port(4003))
    assert rt.servers() == [second]
    assert not any(h.running for h in first)


def test_servers_of_other_cells_are_left_alone(rt: Runtime, cells: FakeCells) -> None:
    cells.run("cell-A", "run-1")
    a = rt.listen(start_port(4001))
    cells.run("cell-B", "run-2")
    b = rt.listen(start_port(4002))
    assert rt.servers() == [a, b]


def test_an_explicit_name_replaces_the_server_of_that_name_from_any_cell(
    rt: Runtime, cells: FakeCells
) -> None:
    cells.run("cell-A", "run-1")
    old = rt.listen(start_port(4001), name="main")
    cells.run("cell-B", "run-2")
    new = rt.listen(start_port(4002), name="main")
    assert rt.servers() == [new]
    assert not old.running


def test_outside_a_notebook_every_server_is_kept(rt: Runtime) -> None:
    handles = [rt.listen(start_port(4000 + i)) for i in range(3)]
    assert rt.servers() == handles
    assert [h.name for h in handles] == ["custom", "custom-2", "custom-3"]


def test_stop_closes_the_port_once_and_forgets_the_server(rt: Runtime) -> None:
    port = FakePort(4000)
    handle = rt.listen(lambda reactor: port)
    handle.stop()
    handle.stop()
    assert port.stopped == 1
    assert rt.servers() == []
    assert "[stopped]" in str(handle)


def test_stop_all_stops_every_server_and_names_them(rt: Runtime) -> None:
    ports = [FakePort(4000 + i) for i in range(3)]
    for i, port in enumerate(ports):
        rt.listen(lambda reactor, port=port: port, name=f"s{i}")
    assert rt.stop_all() == ["s0", "s1", "s2"]
    assert [p.stopped for p in ports] == [1, 1, 1]
    assert rt.servers() == []


def test_reactor_shutdown_stops_every_server(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    ports = [FakePort(4000 + i) for i in range(2)]
    for port in ports:
        rt.listen(lambda reactor, port=port: port)
    [(_, _, shutting_down)] = fake_reactor.triggers
    done = threading.Event()
    fake_reactor.callFromThread(lambda: (shutting_down(), done.set()))
    assert done.wait(5)
    assert [p.stopped for p in ports] == [1, 1]
    assert rt.servers() == []


def test_a_server_without_a_reactor_is_served_in_a_thread_and_stop_joins_it(rt: Runtime) -> None:
    class Plain:
        host, port = "127.0.0.1", 4500

        def __init__(self) -> None:
            self.stopping = threading.Event()

        def serve_forever(self) -> None:
            self.stopping.wait(10)

        def stop(self) -> None:
            self.stopping.set()

    handle = rt.listen(lambda reactor: Plain(), kind="plain")
    [listener] = handle._listeners
    assert listener.thread.is_alive()
    handle.stop()
    assert not listener.thread.is_alive()


def test_a_start_function_returning_something_else_is_a_type_error(rt: Runtime) -> None:
    with pytest.raises(TypeError, match="expected an IListeningPort"):
        rt.listen(lambda reactor: 42)
    assert rt.servers() == []


def test_serve_passes_the_command_line_options_to_the_cli_kind(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    handle = rt.serve("slow", "tyger", delay=0.25, num_bytes=7, port=4321)
    port, factory, _, interface = fake_reactor.tcpServers[-1]
    assert (port, interface) == (4321, "127.0.0.1")
    assert (factory.delay, factory.num_bytes) == (0.25, 7)
    assert factory.poem.startswith(b"Tyger Tyger")
    assert (handle.kind, handle.detail) == ("slow", "tyger")


def test_serve_defaults_to_the_raven_for_kinds_that_take_a_poem(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    rt.serve("fast")
    factory = fake_reactor.tcpServers[-1][1]
    assert b"Once upon a midnight dreary" in factory.poem


def test_serve_explains_unknown_kinds_options_and_bad_values(rt: Runtime) -> None:
    with pytest.raises(ValueError, match="no server kind 'poet'.*slow"):
        rt.serve("poet")
    with pytest.raises(TypeError, match="no option 'delay'; it takes: iface, port"):
        rt.serve("fast", delay=1)
    with pytest.raises(ValueError, match="serve\\('slow'\\): argument --num-bytes"):
        rt.serve("slow", num_bytes="many")
    assert rt.servers() == []


def test_a_registered_kind_gets_the_reactor_arguments_and_options(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    seen = []

    def start_echo(reactor: Any, greeting: str, *, port: int, iface: str, loud: bool) -> FakePort:
        seen.append((reactor, greeting, port, iface, loud, in_reactor_thread(fake_reactor)))
        return FakePort(port or 4999)

    rt.register("echo", start_echo)
    handle = rt.serve("echo", "hello", loud=True)
    assert seen == [(fake_reactor, "hello", 0, "127.0.0.1", True, True)]
    assert (handle.kind, handle.port) == ("echo", 4999)


def test_servers_of_deleted_cells_are_stopped_and_named_ones_kept(
    rt: Runtime, cells: FakeCells
) -> None:
    cells.run("cell-A", "run-1")
    anonymous = rt.listen(start_port(4001))
    named = rt.listen(start_port(4002), name="kept")
    assert rt._servers is not None
    assert rt._servers.stop_cells(["cell-A", "cell-Z"]) == ["custom"]
    assert not anonymous.running and named.running


def test_every_public_name_of_the_runtime_is_exported_once_and_documented() -> None:
    import poetrylab.runtime as runtime

    names = runtime.__all__
    assert names == sorted(names) and len(names) == len(set(names))
    for name in names:
        assert getattr(runtime, name).__doc__, f"runtime.{name} has no docstring"
