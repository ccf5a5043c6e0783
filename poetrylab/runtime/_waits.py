"""Waiting for the reactor from another thread: blocking calls and an asyncio bridge.

A notebook cell runs in the kernel's main thread and the reactor in another (notebooks
00 and 02), so every hand-over crosses threads. Each piece of work becomes an
:class:`_Op`. The calling thread copies its context variables (``contextvars``) and
hands the reactor the function to run *in that copy*, so the function (and a coroutine
passed in, turned into a Deferred there) sees the cell's context variables: a tracer
active in the cell traces what the cell handed over. The reactor thread runs the
function and *settles* the op with its value or its exception. The waiting side is a
lock (blocking :meth:`Waits.call`) or an asyncio future woken with
``loop.call_soon_threadsafe`` (:meth:`Waits.resolve`); ``Deferred.asFuture`` is not used
because it completes the future from the reactor thread, which asyncio does not allow for
a loop running in another thread.

A wait that is over at once costs a lock and nothing more. One that lasts waits in
slices, and between slices the waiting thread does two things, only then: it runs the
live views' hooks (``poetrylab._ticks``) when any are registered, and it asks the
watchdog (``_watchdog``) whether the reactor thread still answers, reporting in the cell
what blocks it when it does not. No thread and no timer runs while nobody waits.

Giving up (a timeout, Ctrl-C, an asyncio cancellation) asks the reactor thread to cancel
the Deferred, so the work stops and its sockets close, and the message says what really
happened: cancelled; or not yet, because the reactor thread is busy (and with what).
Waiting consumes the Deferred's result, as ``await`` inside Twisted does: afterwards it
holds ``None``. The runtime's frames are hidden from IPython's tracebacks: an exception
of the learner's code, raised again in the cell, skips them (``__tracebackhide__``), and
the runtime's own timeouts and interrupts render through IPython's ``_render_traceback_``
hook as the learner's frames and the one-line message only.

Default timeouts are :data:`DEFAULT_TIMEOUT` seconds, multiplied by the environment
variable ``POETRYLAB_TIMEOUT_SCALE`` when it is set (a loaded classroom hub sets it to
2 or 3 so that nothing gives up merely because the machine is busy).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
import sys
import threading
import time
from _thread import allocate_lock
from collections.abc import Callable, Coroutine, Mapping
from inspect import iscoroutine
from types import FrameType, TracebackType
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from poetrylab import _ticks
from poetrylab._typing import ReactorThreads
from poetrylab.runtime._cells import NoCells, explained, learner_traceback
from poetrylab.runtime._watchdog import (
    Blocker,
    Running,
    Watchdog,
    describe,
    describe_call,
    short,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "TIMEOUT_SCALE",
    "TIMEOUT_SCALE_VARIABLE",
    "WaitTimeoutError",
    "Waits",
    "describe",
    "describe_call",
    "timeout_scale",
]

TIMEOUT_SCALE_VARIABLE = "POETRYLAB_TIMEOUT_SCALE"
"""The environment variable that multiplies every default timeout (e.g. 3 on a busy hub)."""


def timeout_scale(environ: Mapping[str, str] = os.environ) -> float:
    """The factor ``POETRYLAB_TIMEOUT_SCALE`` sets (1 when unset).

    A value that is not a positive, finite number is reported in one line on standard
    error and ignored (1 is used), so a typo in a hub's configuration never breaks a
    notebook.
    """
    raw = environ.get(TIMEOUT_SCALE_VARIABLE, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = -1.0
    if not (0 < scale < float("inf")):
        print(
            f"poetrylab: {TIMEOUT_SCALE_VARIABLE}={raw!r} is not a positive number of "
            "times to multiply the default timeouts by; using 1",
            file=sys.stderr,
        )
        return 1.0
    return scale


TIMEOUT_SCALE = timeout_scale()
"""The factor every default timeout is multiplied by (from ``POETRYLAB_TIMEOUT_SCALE``)."""

DEFAULT_TIMEOUT = 10.0 * TIMEOUT_SCALE
"""Seconds every wait allows unless told otherwise (10, times ``POETRYLAB_TIMEOUT_SCALE``)."""

_CANCEL_GRACE = 0.5
"""Seconds a wait that gave up gives the reactor to carry out the cancellation."""

_ARM_AFTER = 0.05
"""Seconds an await runs before it takes over Ctrl-C (most are over long before)."""

_WATCH_AFTER = 0.25
"""Seconds a wait lasts before it starts checking on the reactor thread."""

_WATCH_EVERY = 0.25
"""Seconds between two checks on the reactor thread while a wait goes on."""

_PACKAGE = __name__.rpartition(".")[0]
_UNSET: Any = object()


class WaitTimeoutError(TimeoutError):
    """A wait ran out of time; the message says whether its work was cancelled.

    ``blocker`` says what kept the reactor thread busy, when that is why (else None).
    In IPython its traceback shows the learner's frames and the message only.
    """

    def __init__(self, message: str, blocker: Blocker | None = None) -> None:
        super().__init__(message)
        self.blocker = blocker

    def _render_traceback_(self) -> list[str]:
        return learner_traceback(self)


def _origin() -> tuple[str, int] | None:
    """Where the caller outside the runtime package is: (file name, line)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(_PACKAGE):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


class _Op:
    """One piece of work handed to the reactor thread; settled once, from that thread."""

    __slots__ = (
        "_what", "abandoned", "args", "blocker", "cancel_ran", "cancellable", "context",
        "deferred", "done", "error", "error_tb", "kwargs", "origin", "reason", "subject",
        "value",
    )  # fmt: skip

    def __init__(
        self,
        what: str | None,
        subject: object,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        cancellable: bool = True,
    ) -> None:
        self._what = what
        self.subject = subject
        self.args = args
        self.kwargs: Mapping[str, Any] = kwargs or {}
        self.cancellable = cancellable
        self.origin: tuple[str, int] | None = None
        self.context: contextvars.Context | None = None
        self.deferred: Deferred[Any] | None = None
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.error_tb: TracebackType | None = None
        self.abandoned = False
        self.cancel_ran = False
        self.reason: str | None = None
        self.blocker: Blocker | None = None

    @property
    def what(self) -> str:
        """What is waited for, in words (worked out only when a message needs it)."""
        return self._what or describe(self.subject)

    def settle(self, value: Any, error: BaseException | None, tb: TracebackType | None) -> None:
        """Record the outcome (reactor thread); the first one counts."""
        if not self.done:
            self.value, self.error, self.error_tb = value, error, tb
            self.done = True
            self.notify()

    def notify(self) -> None:
        raise NotImplementedError

    def settled(self) -> bool:
        """True once the outcome is in (it may arrive from the reactor thread at any time)."""
        return self.done

    def cancelled(self) -> bool:
        """True when the outcome is the cancellation's ``CancelledError``."""
        return isinstance(self.error, CancelledError)


class _BlockingOp(_Op):
    __slots__ = ("lock",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = allocate_lock()
        self.lock.acquire()

    def notify(self) -> None:
        self.lock.release()


class _AwaitedOp(_Op):
    __slots__ = ("armed", "deadline", "future", "interrupted", "loop", "started", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.started = loop.time()
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.armed = False
        self.interrupted = False

    def notify(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.wake)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return

    def wake(self) -> None:
        """End the current await (loop thread): a result arrived, time is up, or Ctrl-C."""
        if not self.future.done():
            self.future.set_result(None)

    def interrupt(self) -> None:
        """Ctrl-C (called from a signal handler, so only ``call_soon_threadsafe``)."""
        self.interrupted = True
        self.notify()


class _SigintWatch:
    """While ops are awaited in the main thread, Ctrl-C interrupts them.

    ipykernel 7 cancels a top-level ``await`` on an interrupt with a bare
    ``CancelledError``; older versions let the cell go on until what it awaits is over
    (ipython/ipykernel#881), which for a Deferred that never fires is for ever. So while
    any op is awaited in the main thread, our SIGINT handler interrupts them all (so the
    message can say what was interrupted and what became of it), then calls the handler
    it replaced. Main thread only (Python runs signal handlers there).
    """

    def __init__(self) -> None:
        self._ops: set[_AwaitedOp] = set()
        self._replaced: Any = None

    def add(self, op: _AwaitedOp) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if not self._ops:
            try:
                self._replaced = signal.signal(signal.SIGINT, self._interrupted)
            except (ValueError, OSError):  # no signals here (embedded interpreter)
                return
        self._ops.add(op)

    def discard(self, op: _AwaitedOp) -> None:
        if op not in self._ops:
            return
        self._ops.discard(op)
        if not self._ops:
            if signal.getsignal(signal.SIGINT) == self._interrupted:
                signal.signal(signal.SIGINT, self._replaced)
            self._replaced = None

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        for op in list(self._ops):
            op.interrupt()
        replaced = self._replaced
        if callable(replaced) and replaced is not signal.default_int_handler:
            replaced(signum, frame)


class Waits:
    """Hand work to the reactor thread and wait for it: blocking, or awaited.

    ``reactor`` is running in the thread whose ident is ``reactor_thread``; ``cells``
    is told about every hand-over (``used()``), routes the reactor's output
    (``adopt_output()``) and names cells in messages (``label()``). All methods are
    thread-safe.
    """

    def __init__(
        self,
        reactor: ReactorThreads,
        reactor_thread: int,
        cells: NoCells | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reactor = reactor
        self._reactor_thread = reactor_thread
        self._cells = cells if cells is not None else NoCells()
        self._clock = clock
        self._pending: set[_Op] = set()
        self._running: _Op | None = None  # the op whose function runs in the reactor now
        self._sigint = _SigintWatch()
        self.watchdog = Watchdog(
            reactor, reactor_thread, self._running_now, self._cells.label, clock
        )

    # -- the caller's side --------------------------------------------------------------

    def in_reactor_thread(self) -> bool:
        """True when called from the reactor's own thread."""
        return threading.get_ident() == self._reactor_thread

    def _refuse_reactor_thread(self, name: str) -> None:
        if self.in_reactor_thread():
            raise RuntimeError(
                f"runtime.{name}() waits for the reactor, so it cannot run in the reactor "
                "thread (it would wait for itself forever): return the Deferred instead"
            )

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in the reactor thread and wait for its result.

        ``fn`` runs in a copy of the caller's context variables. A Deferred or coroutine
        result is waited for too. Returns the value; raises the function's (or the
        Failure's) exception; raises :class:`WaitTimeoutError` after ``timeout`` seconds
        (None: no limit) and ``KeyboardInterrupt`` on Ctrl-C, both after asking the
        reactor to cancel the Deferred (the message says whether it could). Raises
        RuntimeError in the reactor thread.
        """
        __tracebackhide__ = True
        self._refuse_reactor_thread("call")
        op = _BlockingOp(what, fn, args, kwargs)
        self._submit(op, fn, args, kwargs)
        return self._block(op, timeout)

    def call_uncancellable(
        self,
        fn: Callable[..., Any],
        *args: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
    ) -> Any:
        """Like :meth:`call`, but giving up does not cancel: ``fn`` runs, and its Deferred
        completes, whenever the reactor thread gets to it (stopping a server must
        happen even when nobody waits for it any more)."""
        __tracebackhide__ = True
        self._refuse_reactor_thread("call")
        op = _BlockingOp(what, fn, args, None, cancellable=False)
        self._submit(op, fn, args, {})
        return self._block(op, timeout)

    def wait(
        self,
        waitable: Deferred[Any] | Coroutine[Any, Any, Any],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
    ) -> Any:
        """Wait for a Deferred (or run a coroutine in the reactor) and return its result.

        Same outcomes as :meth:`call`. Raises TypeError for anything else.
        """
        __tracebackhide__ = True
        if not (isinstance(waitable, Deferred) or iscoroutine(waitable)):
            raise TypeError(
                f"wait() takes a Deferred or a coroutine, not {type(waitable).__name__}: "
                "to run a function in the reactor thread, use runtime.call(fn, *args)"
            )
        self._refuse_reactor_thread("wait")
        op = _BlockingOp(what, waitable)
        self._submit(op, _identity, (waitable,), {})
        return self._block(op, timeout)

    async def resolve(
        self,
        awaited: Any,
        *args: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        what: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Await a Deferred, a coroutine, or ``fn(*args)`` run in the reactor thread.

        For top-level ``await`` in a notebook, or any asyncio code in another thread than
        the reactor's. Returns the value or raises the Failure's exception; raises
        :class:`WaitTimeoutError` after ``timeout`` seconds. Cancelling the awaiting task
        (``asyncio.wait_for``, ``task.cancel()``) cancels the Deferred, and so does Ctrl-C
        (a kernel interrupt) in the main thread, which raises ``asyncio.CancelledError``.
        """
        __tracebackhide__ = True
        self._refuse_reactor_thread("resolve")
        fn: Callable[..., Any]
        if isinstance(awaited, Deferred) or iscoroutine(awaited):
            if args or kwargs:
                raise TypeError("resolve() takes arguments only when it is given a function")
            fn, args = _identity, (awaited,)
        elif callable(awaited):
            fn = awaited
        else:
            kind = type(awaited).__name__
            raise TypeError(f"resolve() takes a Deferred, a coroutine or a function, not {kind}")
        loop = asyncio.get_running_loop()
        op = _AwaitedOp(loop, what, awaited, args if fn is awaited else (), kwargs)
        op.deadline = None if timeout is None else op.started + timeout
        first = op.started + _ARM_AFTER
        op.timer = loop.call_at(first if op.deadline is None else min(first, op.deadline),
                                self._watch_await, op)  # fmt: skip
        self._submit(op, fn, args, kwargs)
        try:
            await op.future
        except asyncio.CancelledError:
            # ipykernel cancels the cell's task on Ctrl-C too, after our handler ran: then
            # it is the interrupt, explained below; any other cancellation is passed on.
            if not op.interrupted:
                self.cancel(op)
                self._sigint.discard(op)
                raise
        finally:
            op.timer.cancel()
        try:
            if op.interrupted or not op.done:
                head = (
                    f"interrupted while waiting for {op.what}" if op.interrupted
                    else f"gave up waiting for {op.what} after {timeout:g} s"
                )  # fmt: skip
                self.cancel(op)
                try:
                    await self._linger_awaited(op)
                except asyncio.CancelledError:
                    if not op.interrupted:
                        raise
                message = self._gave_up(op, head, timed_out=not op.interrupted)
                if op.interrupted:
                    raise explained(asyncio.CancelledError(message))
                raise self._timeout_error(op, message)
        finally:
            self._sigint.discard(op)
        if op.error is not None:
            raise op.error.with_traceback(op.error_tb)
        return op.value

    def _watch_await(self, op: _AwaitedOp) -> None:
        """Loop thread, while an await lasts: Ctrl-C, live views, the watchdog, time."""
        if op.future.done():
            return
        if not op.armed:
            op.armed = True
            self._sigint.add(op)
        loop = op.loop
        now = loop.time()
        if op.deadline is not None and now >= op.deadline:
            op.wake()
            return
        ticking = _ticks.active()
        if ticking:
            _ticks.tick()
        if now - op.started >= _WATCH_AFTER:
            self._check_reactor(op)
            later = now + (_ticks.INTERVAL if ticking else _WATCH_EVERY)
        else:
            later = min(now + _ticks.INTERVAL, op.started + _WATCH_AFTER) if ticking else (
                op.started + _WATCH_AFTER
            )
        if op.deadline is not None:
            later = min(later, op.deadline)
        op.timer = loop.call_at(later, self._watch_await, op)

    async def _linger_awaited(self, op: _AwaitedOp) -> None:
        """Give the reactor a moment to carry out the cancellation (or a second Ctrl-C)."""
        if op.done:
            return
        op.future = op.loop.create_future()
        if op.settled():  # the reactor thread settled it meanwhile
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(op.future, _CANCEL_GRACE)

    def _block(self, op: _BlockingOp, timeout: float | None) -> Any:
        __tracebackhide__ = True
        try:
            arrived = self._wait_for(op, timeout)
        except KeyboardInterrupt:
            self.cancel(op)
            self._linger(op)
            message = self._gave_up(op, f"interrupted while waiting for {op.what}")
            raise explained(KeyboardInterrupt(message)) from None
        if not arrived:
            self.cancel(op)
            self._linger(op)
            message = self._gave_up(
                op, f"gave up waiting for {op.what} after {timeout:g} s", timed_out=True
            )
            raise self._timeout_error(op, message)
        if op.error is not None:
            raise op.error.with_traceback(op.error_tb)
        return op.value

    def _wait_for(self, op: _BlockingOp, timeout: float | None) -> bool:
        """Wait until ``op`` settles (True) or ``timeout`` runs out (False), in slices."""
        __tracebackhide__ = True
        lock = op.lock
        start = self._clock()
        ticking = _ticks.active()
        first = min(_ticks.INTERVAL, _WATCH_AFTER) if ticking else _WATCH_AFTER
        if timeout is not None and timeout <= first:
            return lock.acquire(True, max(timeout, 0.0))
        if lock.acquire(True, first):
            return True
        deadline = None if timeout is None else start + timeout
        while True:
            ticking = _ticks.active()
            if ticking:
                _ticks.tick()
            self._check_reactor(op)
            now = self._clock()
            step = _ticks.INTERVAL if ticking else _WATCH_EVERY
            if deadline is not None:
                if now >= deadline:
                    return lock.acquire(False)
                step = min(step, deadline - now)
            if lock.acquire(True, step):
                return True

    def _check_reactor(self, op: _Op) -> None:
        """A wait lasts: is the reactor thread answering? If not, say why, once per wait."""
        blocker = self.watchdog.check(describe=op.blocker is None)
        if blocker is not None:
            op.blocker = blocker
            sys.stderr.write(blocker.report())
            sys.stderr.flush()

    def _linger(self, op: _BlockingOp) -> None:
        """Give the reactor a moment to carry out the cancellation (a second Ctrl-C ends it)."""
        if not op.cancellable:
            return
        try:
            if op.lock.acquire(True, _CANCEL_GRACE):
                op.lock.release()
        except KeyboardInterrupt:
            pass

    def _gave_up(self, op: _Op, head: str, *, timed_out: bool = False) -> str:
        """The message for a wait that gave up: what became of the work, truthfully."""
        what = op.what
        if op.done:
            if not timed_out:
                if op.cancelled() or op.cancel_ran:
                    return f"{head}; it has been cancelled"
                return f"{head}; it had finished before it could be cancelled"
            late = ""
            if op.error is None:  # a canceller may fire with a value (stopService does)
                late = f"; when cancelled it fired with {short(op.value)}"
            return f"{head}, and cancelled it{late} (to wait longer, pass timeout=SECONDS)"
        if op.cancel_ran:
            return f"{head}; asked to cancel, it has not finished yet"
        blocker = op.blocker or self.watchdog.blocker()
        op.blocker = blocker
        if not op.cancellable:
            busy = f" (it is busy running {blocker})" if blocker else ""
            return f"{head}; it will still happen as soon as the reactor thread is free{busy}"
        if blocker is not None and self._running is op:
            return (
                f"{head}; the reactor thread is still running it ({blocker}). A function "
                "running in the reactor thread cannot be stopped from outside: it goes on "
                "until it returns, and blocks the reactor until then"
            )
        started = op.deferred is not None or isinstance(op.subject, Deferred)
        fate = "be cancelled as soon as" if started else "not run at all: it was waiting until"
        if blocker is not None:
            return f"{head}; the reactor thread is busy running {blocker}, so {what} will " + (
                f"{fate} it is free"
            )
        return f"{head}; the reactor thread has not answered yet, so {what} will {fate} it does"

    def _timeout_error(self, op: _Op, message: str) -> WaitTimeoutError:
        error = WaitTimeoutError(message, op.blocker)
        if op.error is not None and not op.cancelled():
            error.__cause__ = op.error  # what the canceller produced
        error.__suppress_context__ = True
        return error

    def cancel(self, op: _Op, reason: str | None = None) -> None:
        """Give up on ``op``: it will not start, or its Deferred is cancelled. Thread-safe.

        Does nothing for an uncancellable op. The waiter, if still waiting, gets
        ``CancelledError`` naming ``reason``.
        """
        if not op.cancellable:
            return
        if reason is not None and op.reason is None:
            op.reason = reason
        op.abandoned = True
        context = op.context.copy() if op.context is not None else contextvars.Context()
        self._reactor.callFromThread(context.run, self._cancel_in_reactor, op)

    def cancel_pending(self, reason: str) -> int:
        """Cancel every op still in flight; return how many there were. Thread-safe."""
        pending = list(self._pending)
        for op in pending:
            self.cancel(op, reason)
        return len(pending)

    def fail_pending(self, why: str) -> None:
        """Settle every op still in flight with a RuntimeError (reactor thread, at shutdown)."""
        for op in list(self._pending):
            self._settle(op, None, RuntimeError(f"{why}: {op.what} will never finish"))

    # -- the reactor's side -------------------------------------------------------------

    def _submit(
        self, op: _Op, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        self._cells.used()
        op.origin = _origin()
        op.context = context = contextvars.copy_context()
        self._pending.add(op)
        self._reactor.callFromThread(context.run, self._run, op, fn, args, kwargs)

    def _run(
        self, op: _Op, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Reactor thread, in the caller's copied context: run the function, hand back."""
        __tracebackhide__ = True
        if op.abandoned and not isinstance(op.subject, Deferred):
            # Given up before its turn came: it never runs (a Deferred waited for is
            # handed over anyway, so that the cancellation queued behind reaches it).
            if iscoroutine(op.subject):
                op.subject.close()
            why = f"by {op.reason}" if op.reason else "before it started"
            self._settle(op, None, CancelledError(f"{op.what} was cancelled {why}"))
            return
        self._cells.adopt_output()
        self._running = op
        try:
            result = fn(*args, **kwargs)
            if iscoroutine(result):
                result = Deferred.fromCoroutine(result)
        except BaseException as error:  # handed to the waiting thread, raised there
            self._settle(op, None, error, error.__traceback__)
            return
        finally:
            self._running = None
        if isinstance(result, Deferred):
            op.deferred = result
            result.addBoth(self._fired, op)
        else:
            self._settle(op, result)

    def _fired(self, result: object, op: _Op) -> None:
        """The hand-over stage: take the Deferred's result to the waiting thread.

        Returns None: waiting consumes the result (and a Failure counts as handled).
        """
        if isinstance(result, Failure):
            error = result.value
            if isinstance(error, CancelledError) and op.reason is not None:
                error = CancelledError(f"{op.what} was cancelled by {op.reason}")
                self._settle(op, None, error)
            else:
                self._settle(op, None, error, result.tb)
        else:
            self._settle(op, result)

    def _settle(
        self,
        op: _Op,
        value: object,
        error: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self._pending.discard(op)
        op.settle(value, error, tb)

    def _cancel_in_reactor(self, op: _Op) -> None:
        if op.deferred is not None and not op.done:
            op.cancel_ran = True  # before cancel(): a canceller may settle the op at once
            op.deferred.cancel()

    def _running_now(self) -> Running | None:
        """What handed-over function the reactor thread runs now (for the watchdog)."""
        op = self._running
        if op is None:
            return None
        return Running(describe_call(op.subject, op.args, op.kwargs), self.where(op.origin))

    def where(self, origin: tuple[str, int] | None) -> str | None:
        """``In[8], line 2`` (or ``script.py, line 2``) for a (file name, line) pair."""
        if origin is None:
            return None
        filename, line = origin
        return f"{self._cells.label(filename) or os.path.basename(filename)}, line {line}"


def _identity(thing: object) -> object:
    return thing
