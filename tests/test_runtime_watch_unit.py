"""Unit tests of what the runtime does around a wait: the cell's context variables travel
with the work, live views tick only while someone waits and only when asked, the
watchdog names what blocks the reactor thread, a blocked reactor never makes the runtime
forget a server or claim a cancellation that has not happened, the engine owns its
thread, and the default timeouts follow ``POETRYLAB_TIMEOUT_SCALE``.

The fake reactor of ``test_runtime_unit`` runs handed-over calls in a thread of its own.
A test blocks it the way a learner would, with a function that does not return (here: it
waits on a lock the test holds), and frees it by releasing that lock. Nothing waits on the
clock: waits on observed state go through :func:`eventually`, which has a deadline and
says what it waited for, and Ctrl-C (or freeing the reactor) happens once the main thread
is seen where the test needs it (:func:`interrupt_when`, :func:`when`).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_runtime_unit import (  # the fakes, fixtures and waits the runtime's unit tests share
    FakeCells,
    FakePort,
    ThreadedFakeReactor,
    cells,
    fake_reactor,
    interrupt_when,
    main_thread_lingers,
    main_thread_waits,
    rt,
    run_async,
)
from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from waiting import eventually, when

from poetrylab import _ticks
from poetrylab.runtime import Runtime, StopPendingError, WaitTimeoutError
from poetrylab.runtime._engine import EngineError, ReactorThread
from poetrylab.runtime._waits import describe_call, timeout_scale
from poetrylab.runtime._watchdog import BUSY_AFTER, Running, Watchdog, describe_frame

__all__ = ["cells", "fake_reactor", "rt"]  # fixtures, used by name

SHORT = 0.05
CELL = contextvars.ContextVar[str]("CELL")


class Blocked:
    """Blocks the reactor thread from inside a handed-over call, until :meth:`free`."""

    def __init__(self, rt: Runtime) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.entered = threading.Event()
        self._rt = rt

    def hold(self) -> None:
        """Runs in the reactor thread: blocks it (a C call, like ``time.sleep``)."""
        self.entered.set()
        self.lock.acquire()
        self.lock.release()

    def start(self) -> None:
        """Hand :meth:`hold` over and let the wait for it give up at once."""
        with pytest.raises(WaitTimeoutError):
            self._rt.call(self.hold, timeout=SHORT)
        assert self.entered.wait(5), "the reactor thread never started the blocking call"

    def free(self) -> None:
        self.lock.release()


@pytest.fixture
def blocked(rt: Runtime) -> Iterator[Blocked]:
    block = Blocked(rt)
    yield block
    if block.lock.locked():
        block.free()


# -- context variables --------------------------------------------------------------------


def test_a_call_runs_in_a_copy_of_the_callers_context_taken_when_it_is_made(
    rt: Runtime,
) -> None:
    def seen() -> str:
        value = CELL.get("unset")
        CELL.set("changed in the reactor thread")
        return value

    CELL.set("In[1]")
    assert rt.call(seen) == "In[1]"
    CELL.set("In[2]")
    assert rt.call(seen) == "In[2]"
    assert CELL.get() == "In[2]", "the reactor's change leaked back into the caller"


def test_a_coroutine_passed_in_is_run_with_the_callers_context(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    async def poem() -> str:
        await task.deferLater(fake_reactor, 1.0, lambda: None)
        return CELL.get("unset")

    CELL.set("In[3]")
    coroutine = poem()  # made here, run in the reactor thread
    CELL.set("In[4]")
    assert rt.wait(coroutine) == "In[4]"
    assert rt.call(poem) == "In[4]"


def test_resolve_and_servers_hand_over_the_awaiting_context_too(rt: Runtime) -> None:
    seen = []

    def start(reactor: Any) -> FakePort:
        seen.append(CELL.get("unset"))
        return FakePort(4000)

    async def main() -> str:
        CELL.set("awaited")
        return await rt.resolve(lambda: CELL.get("unset"))

    assert run_async(main()) == "awaited"
    CELL.set("serving")
    rt.listen(start)
    assert seen == ["serving"]


# -- live views' ticks --------------------------------------------------------------------


def test_a_blocking_wait_ticks_live_views_in_the_waiting_thread_only_while_it_waits(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    d: Deferred[str] = Deferred()
    ticks: list[threading.Thread] = []

    def hook() -> None:
        ticks.append(threading.current_thread())
        if len(ticks) == 3:  # the view has redrawn three times: let the wait end
            fake_reactor.callFromThread(d.callback, "done")

    remove = _ticks.add(hook)
    try:
        assert rt.wait(d, timeout=10) == "done"
        after = len(ticks)
        assert rt.call(lambda: "quick") == "quick"
    finally:
        remove()
    assert after == 3 and len(ticks) == 3, "ticked after the wait, or too often"
    assert set(ticks) == {threading.current_thread()}


def test_an_awaited_resolve_ticks_on_the_event_loop(
    rt: Runtime, fake_reactor: ThreadedFakeReactor
) -> None:
    d: Deferred[str] = Deferred()
    ticks: list[bool] = []

    def hook() -> None:
        ticks.append(asyncio.get_running_loop() is not None)
        if len(ticks) == 2:
            fake_reactor.callFromThread(d.callback, "awaited")

    async def main() -> str:
        return await rt.resolve(d, timeout=10)

    remove = _ticks.add(hook)
    try:
        assert run_async(main()) == "awaited"
    finally:
        remove()
    assert ticks == [True, True]


def test_without_hooks_a_long_wait_never_ticks(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticked = []
    monkeypatch.setattr(_ticks, "tick", lambda: ticked.append(1))
    d: Deferred[str] = Deferred()
    threading.Timer(0.6, rt._need_waits()._reactor.callFromThread, (d.callback, "late")).start()
    assert rt.wait(d, timeout=10) == "late"
    assert ticked == []


# -- the watchdog -------------------------------------------------------------------------


class PingCatcher:
    """A reactor that keeps the pings handed to it; the test answers them, or not."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.calls.append((f, args))

    def answer(self) -> None:
        for f, args in self.calls:
            f(*args)
        self.calls.clear()


def stuck_here(entered: threading.Event, release: threading.Lock) -> None:
    entered.set()
    release.acquire()  # the line the watchdog must name


@pytest.fixture
def stuck_thread() -> Iterator[threading.Thread]:
    entered, release = threading.Event(), threading.Lock()
    release.acquire()
    thread = threading.Thread(target=stuck_here, args=(entered, release), daemon=True)
    thread.start()
    assert entered.wait(5)
    yield thread
    release.release()
    thread.join(5)


def test_the_watchdog_pings_once_and_names_the_call_and_line_once_the_ping_is_late(
    stuck_thread: threading.Thread,
) -> None:
    reactor, now = PingCatcher(), [100.0]
    assert stuck_thread.ident is not None
    here = __file__
    watchdog = Watchdog(
        reactor, stuck_thread.ident, label=lambda f: "In[8]" if f == here else None,
        clock=lambda: now[0],
    )  # fmt: skip
    assert watchdog.check() is None and len(reactor.calls) == 1, "no ping sent"
    now[0] += BUSY_AFTER
    assert watchdog.check() is None, "reported before the ping was late"
    assert len(reactor.calls) == 1, "a second ping while one is on its way"
    now[0] += 0.5
    blocker = watchdog.check()
    assert blocker is not None
    line = stuck_here.__code__.co_firstlineno + 2
    assert (blocker.running, blocker.where) == ("release.acquire()", f"In[8], line {line}")
    assert blocker.silent_for == pytest.approx(BUSY_AFTER + 0.5)
    assert "busy running release.acquire(), from In[8]" in blocker.report()
    assert watchdog.check(describe=False) is None
    reactor.answer()
    assert watchdog.check() is None and len(reactor.calls) == 1, "no new ping after the answer"


def test_a_reactor_waiting_for_its_sockets_is_idle_not_blocked() -> None:
    def frame(name: str, filename: str) -> Any:
        code = types.SimpleNamespace(co_name=name, co_filename=filename, co_qualname=name)
        return types.SimpleNamespace(f_code=code, f_globals={"__name__": "x"}, f_back=None)

    epoll = frame("doPoll", "/venv/twisted/internet/epollreactor.py")
    selector = frame("select", "/usr/lib/python3.11/selectors.py")
    for idle in (epoll, selector):
        assert describe_frame(idle, None, lambda f: None) is None


def test_a_handed_over_c_function_is_named_from_the_call_with_where_the_cell_made_it() -> None:
    runtime_frame = types.SimpleNamespace(
        f_code=types.SimpleNamespace(co_name="_run", co_filename="/x/_waits.py"),
        f_globals={"__name__": "poetrylab.runtime._waits"},
    )
    running = Running("time.sleep(13)", "In[8], line 2")
    blocker = describe_frame(runtime_frame, running, lambda f: None, 1.5)  # type: ignore[arg-type]
    assert blocker is not None and blocker.handed_over
    assert str(blocker) == "time.sleep(13), from In[8], line 2"
    assert describe_call(time.sleep, (13,), {}) == "time.sleep(13)"
    assert describe_call(print, ("x" * 40,), {"end": ""}) == f"print('{'x' * 22}…, end='')"


# -- a blocked reactor --------------------------------------------------------------------


def test_a_timeout_on_a_function_blocking_the_reactor_says_it_is_still_running(
    rt: Runtime, blocked: Blocked
) -> None:
    line = sys._getframe().f_lineno + 2  # where the cell (here: the test) handed it over
    with pytest.raises(WaitTimeoutError) as info:
        rt.call(blocked.hold, timeout=SHORT)
    message = str(info.value)
    assert "still running it (self.lock.acquire() (in Blocked.hold, test_runtime_watch" in message
    assert "cannot be stopped from outside" in message
    assert "cancelled it" not in message
    blocker = info.value.blocker
    assert blocker is not None and blocker.where == f"test_runtime_watch_unit.py, line {line}"


def test_a_timeout_while_something_else_blocks_the_reactor_promises_no_cancellation_yet(
    rt: Runtime, blocked: Blocked
) -> None:
    blocked.start()
    d: Deferred[str] = Deferred()
    with pytest.raises(WaitTimeoutError) as info:
        rt.wait(d, timeout=SHORT, what="the raven")
    message = str(info.value)
    assert message.startswith("gave up waiting for the raven after 0.05 s; the reactor thread")
    assert "busy running self.lock.acquire() (in Blocked.hold," in message
    assert "will be cancelled as soon as it is free" in message
    assert not d.called
    blocked.free()
    eventually(lambda: d.called, "the cancellation, once the reactor was free")


def test_ctrl_c_while_the_reactor_is_blocked_says_the_cancellation_is_still_to_come(
    rt: Runtime, blocked: Blocked
) -> None:
    blocked.start()
    d: Deferred[str] = Deferred()
    with (
        interrupt_when(main_thread_waits, "the wait for the slow poem"),
        pytest.raises(KeyboardInterrupt) as info,
    ):
        rt.wait(d, timeout=10, what="the slow poem")
    assert "has been cancelled" not in str(info.value)
    assert "the slow poem will be cancelled as soon as it is free" in str(info.value)
    blocked.free()
    eventually(lambda: d.called, "the cancellation, once the reactor was free")


def test_stop_all_on_a_blocked_reactor_keeps_the_server_and_stops_it_once_free(
    rt: Runtime, blocked: Blocked
) -> None:
    port = FakePort(4000)
    handle = rt.listen(lambda reactor: port, name="raven")
    blocked.start()
    with pytest.raises(StopPendingError) as info:
        rt.stop_all(timeout=SHORT)
    assert info.value.servers == [handle]
    assert "1 server could not be stopped yet, because the reactor thread is busy" in str(
        info.value
    )
    assert "(in Blocked.hold," in str(info.value)
    assert rt.servers() == [handle] and handle.state == "stopping" and port.stopped == 0
    with pytest.raises(StopPendingError):
        rt.stop_all(timeout=SHORT)  # again: still listed, still not forgotten
    blocked.free()
    eventually(lambda: handle.state == "stopped", "the stop, once the reactor was free")
    assert port.stopped == 1, "stopped twice, or never"
    assert rt.servers() == [] and rt.stop_all() == []


def test_a_second_stop_all_waits_for_the_stop_still_pending(
    rt: Runtime, blocked: Blocked
) -> None:
    handle = rt.listen(lambda reactor: FakePort(4000), name="raven")
    blocked.start()
    with pytest.raises(StopPendingError):
        rt.stop_all(timeout=SHORT)
    with when(main_thread_waits, blocked.free, "the second stop_all waiting"):
        assert rt.stop_all(timeout=10) == ["raven"]
    assert handle.state == "stopped"


def test_rerunning_a_server_cell_on_a_blocked_reactor_starts_nothing_beside_the_old_one(
    rt: Runtime, cells: FakeCells, blocked: Blocked
) -> None:
    starts = []

    def start(reactor: Any) -> FakePort:
        starts.append(1)
        return FakePort(4000 + len(starts))

    cells.run("cell-A", "run-1")
    old = rt.listen(start)
    blocked.start()
    cells.run("cell-A", "run-2")
    with (
        interrupt_when(main_thread_waits, "the rerun waiting for the old server's stop"),
        pytest.raises(KeyboardInterrupt, match="'custom' to stop; it will still happen"),
    ):
        rt.listen(start)
    assert rt.servers() == [old] and old.state == "stopping" and len(starts) == 1
    blocked.free()
    eventually(lambda: old.state == "stopped", "the old server's stop")
    cells.run("cell-A", "run-3")
    new = rt.listen(start)
    assert rt.servers() == [new] and len(starts) == 2


def test_a_server_start_given_up_before_its_turn_never_starts(
    rt: Runtime, blocked: Blocked
) -> None:
    starts = []
    blocked.start()
    with (
        interrupt_when(main_thread_waits, "the server start waiting for its turn"),
        pytest.raises(KeyboardInterrupt, match="starting the custom server will not run"),
    ):
        rt.listen(lambda reactor: starts.append(1) or FakePort(4000))
    blocked.free()
    assert rt.call(lambda: "the reactor is free") == "the reactor is free"
    assert starts == [] and rt.servers() == []


def test_a_server_start_that_finishes_during_the_grace_is_kept_and_said_so(rt: Runtime) -> None:
    go = threading.Event()

    def slow_start(reactor: Any) -> FakePort:
        go.wait(30)
        return FakePort(4000)

    with (
        interrupt_when(main_thread_waits, "the wait for the slow start"),
        # within the grace the interrupted wait allows the cancellation
        when(main_thread_lingers, go.set, "the interrupted wait's grace"),
        pytest.raises(KeyboardInterrupt, match="it had finished before it could be cancel"),
    ):
        rt.listen(slow_start, name="finished")
    assert [h.name for h in rt.servers()] == ["finished"], "a started server was forgotten"


def test_a_server_whose_start_finishes_late_is_stopped_at_once(rt: Runtime) -> None:
    port = FakePort(4000)
    go = threading.Event()

    def slow_start(reactor: Any) -> FakePort:
        go.wait(30)  # blocks the reactor thread while the cell gives up
        return port

    with (
        interrupt_when(main_thread_waits, "the wait for the slow start"),
        pytest.raises(KeyboardInterrupt, match="the reactor thread is still running it"),
    ):
        rt.listen(slow_start, name="late")
    go.set()  # after the wait has given up, grace included
    eventually(lambda: port.stopped == 1, "the late server's stop")
    assert rt.servers() == []


# -- the engine ---------------------------------------------------------------------------


class RunnableReactor(ThreadedFakeReactor):
    """A fake reactor with ``run()``/``stop()``: run blocks, in the caller's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_thread()  # run() will do the looping instead
        self.running = False
        self._stopped = threading.Event()
        self._ran = False
        self.when_running: list[Callable[[], Any]] = []
        self.installed_signal_handlers: bool | None = None

    def callWhenRunning(self, f: Callable[..., Any], *args: Any) -> None:
        self.when_running.append(f)

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._calls.put((f, args, kwargs))

    def run(self, installSignalHandlers: bool = True) -> None:
        if self._ran:
            raise RuntimeError("ReactorNotRestartable")
        self._ran, self.running = True, True
        self.installed_signal_handlers = installSignalHandlers
        for f in self.when_running:
            f()
        while not self._stopped.is_set():
            f, args, kwargs = self._calls.get()
            f(*args, **kwargs)
        self.running = False

    def stop(self) -> None:
        self._stopped.set()


def test_the_engine_runs_the_reactor_in_one_daemon_thread_and_stops_it_at_exit() -> None:
    reactor, exits = RunnableReactor(), []
    engine = ReactorThread(lambda: reactor, exits.append, thread_name="TestReactor")
    started = engine.start()
    assert engine.start() is started
    thread = next(t for t in threading.enumerate() if t.ident == started.thread_ident)
    assert (thread.name, thread.daemon) == ("TestReactor", True)
    assert reactor.running and reactor.installed_signal_handlers is False
    [at_exit] = exits
    at_exit()
    assert not thread.is_alive() and not reactor.running
    with pytest.raises(EngineError, match="restart the kernel"):
        engine.start()


def test_the_engine_explains_a_reactor_that_cannot_run() -> None:
    reactor = RunnableReactor()
    reactor._ran = True  # it ran and stopped before, outside the engine
    with pytest.raises(EngineError, match="could not start.*restart the kernel"):
        ReactorThread(lambda: reactor, lambda f: None).start()


def test_the_engine_adopts_a_reactor_already_running_in_another_thread() -> None:
    reactor = ThreadedFakeReactor()
    try:
        started = ReactorThread(lambda: reactor, lambda f: None).start()
        assert started.thread_ident == reactor.thread.ident
    finally:
        reactor.stop_thread()


# -- default timeouts ---------------------------------------------------------------------


def test_the_timeout_scale_comes_from_the_environment_and_ignores_nonsense(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert timeout_scale({}) == 1.0
    assert timeout_scale({"POETRYLAB_TIMEOUT_SCALE": " 2.5 "}) == 2.5
    for nonsense in ("0", "-1", "three", "inf", "nan"):
        assert timeout_scale({"POETRYLAB_TIMEOUT_SCALE": nonsense}) == 1.0
    assert capsys.readouterr().err.count("POETRYLAB_TIMEOUT_SCALE=") == 5


def test_a_hub_setting_the_scale_makes_every_default_wait_longer() -> None:
    code = (
        "import inspect\n"
        "from poetrylab import runtime\n"
        "from poetrylab.runtime import _servers\n"
        "print(runtime.DEFAULT_TIMEOUT, _servers.STOP_TIMEOUT,\n"
        "      inspect.signature(runtime.call).parameters['timeout'].default,\n"
        "      inspect.signature(runtime.stop_all).parameters['timeout'].default)"
    )
    env = dict(os.environ, POETRYLAB_TIMEOUT_SCALE="3")
    shown = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert shown.stdout.split() == ["30.0"] * 4, shown.stderr


def test_twisteds_has_logging_begun_probe_still_exists() -> None:
    """_reports reads ``globalLogBeginner._temporaryObserver`` (Twisted has no public way)."""
    code = (
        "from twisted.logger import globalLogBeginner as b\n"
        "print(b._temporaryObserver is not None)\n"
        "from poetrylab.runtime._reports import begin_logging\n"
        "begin_logging(lambda event: None)\n"
        "print(b._temporaryObserver is None)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["True", "True"], (
        "Twisted moved LogBeginner._temporaryObserver: poetrylab.runtime._reports must "
        "find another way to tell whether logging has begun\n" + shown.stderr
    )


def test_a_wait_that_is_over_at_once_needs_no_slices(rt: Runtime) -> None:
    waits = rt._need_waits()
    clock_reads = []
    waits._clock = lambda: clock_reads.append(1) or time.monotonic()  # type: ignore[method-assign]
    for _ in range(50):
        rt.call(lambda: None)
    assert rt.wait(succeed("at once")) == "at once"
    assert len(clock_reads) == 51, "a quick wait looked at the clock more than once"
