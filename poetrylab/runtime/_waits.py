"""Waiting for the reactor from another thread: blocking calls and an asyncio bridge.

A notebook cell runs in the kernel's main thread and the reactor in another, so every
hand-over crosses threads. Each piece of work becomes an :class:`_Op`: the reactor thread
runs the function, turns a coroutine into a Deferred, and *settles* the op with the
result or the Failure. The waiting side is either a lock (blocking :meth:`Waits.call`) or
an asyncio future woken with ``loop.call_soon_threadsafe`` (:meth:`Waits.resolve`).
``Deferred.asFuture`` is not used: it completes the future from the reactor thread,
which asyncio does not allow for a loop running in another thread.

Giving up (a timeout, Ctrl-C, an asyncio cancellation) always cancels the Deferred, in
the reactor thread, so the work stops and its sockets close. Waiting consumes the
Deferred's result, as ``await`` inside Twisted does: afterwards it holds ``None``.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from _thread import allocate_lock
from collections.abc import Callable
from inspect import iscoroutine
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

__all__ = ["DEFAULT_TIMEOUT", "WaitTimeoutError", "Waits", "describe"]

DEFAULT_TIMEOUT = 10.0
"""Seconds every wait allows unless told otherwise: nothing in a notebook hangs."""

_CANCEL_GRACE = 1.0
"""Seconds a blocking wait gives a cancelled Deferred to fire before it returns anyway."""

_ARM_AFTER = 0.05
"""Seconds an await runs before it takes over Ctrl-C (most are over long before)."""

_UNSET: Any = object()


class WaitTimeoutError(TimeoutError):
    """A wait ran out of time; the Deferred it waited for has been cancelled."""


def describe(thing: Any) -> str:
    """A short name for what is being waited for, for error messages: ``get_poetry()``."""
    if isinstance(thing, Deferred):
        return "a Deferred"
    func = getattr(thing, "func", None)  # functools.partial
    target = func if func is not None and callable(thing) else thing
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return f"{name}()" if name else repr(thing)


def _start(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``fn`` and turn a coroutine into a Deferred."""
    result = fn(*args, **kwargs)
    if iscoroutine(result):
        result = Deferred.fromCoroutine(result)
    return result


def _identity(thing: Any) -> Any:
    return thing


class _Op:
    """One piece of work handed to the reactor thread; settled once, from that thread."""

    __slots__ = ("_what", "abandoned", "deferred", "outcome", "reason", "subject")

    def __init__(self, what: str | None, subject: Any) -> None:
        self._what = what
        self.subject = subject
        self.deferred: Deferred[Any] | None = None
        self.outcome: Any = _UNSET
        self.abandoned = False
        self.reason: str | None = None

    @property
    def what(self) -> str:
        """What is waited for, in words (worked out only when a message needs it)."""
        return self._what or describe(self.subject)

    def settle(self, result: Any) -> None:
        """Record the result (reactor thread)."""
        if self.outcome is _UNSET:
            self.outcome = result
            self.notify()

    def notify(self) -> None:
        raise NotImplementedError

    def unwrap(self) -> Any:
        """Return the value, or raise the Failure's exception (with its traceback)."""
        outcome = self.outcome
        if isinstance(outcome, Failure):
            if self.reason is not None and outcome.check(CancelledError):
                raise CancelledError(f"{self.what} was cancelled by {self.reason}") from None
            outcome.raiseException()
        return outcome

    def gave_up(self, timeout: float | None) -> Any:
        """After a timeout: always raise :class:`WaitTimeoutError`.

        A canceller may fire the Deferred with a value (``MultiService.stopService`` does);
        that value came from giving up, not from the work finishing in time, so it is
        named in the message rather than returned as if nothing went wrong.
        """
        outcome = self.outcome
        late = ""
        if outcome is not _UNSET and not isinstance(outcome, Failure):
            late = f"; when cancelled it fired with {describe(outcome)}"
        error = WaitTimeoutError(
            f"gave up waiting for {self.what} after {timeout:g} s, and cancelled it{late} "
            "(to wait longer, pass timeout=SECONDS)"
        )
        if isinstance(outcome, Failure) and not outcome.check(CancelledError):
            raise error from outcome.value
        raise error from None

    def interrupted_message(self) -> str:
        return f"interrupted while waiting for {self.what}; it has been cancelled"


class _BlockingOp(_Op):
    __slots__ = ("lock",)

    def __init__(self, what: str | None, subject: Any) -> None:
        super().__init__(what, subject)
        self.lock = allocate_lock()
        self.lock.acquire()

    def notify(self) -> None:
        self.lock.release()


class _AwaitedOp(_Op):
    __slots__ = ("armed", "deadline", "future", "interrupted", "loop", "timer")

    def __init__(
        self, what: str | None, subject: Any, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(what, subject)
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
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
        """End the await (loop thread): a result arrived, time is up, or Ctrl-C."""
        if not self.future.done():
            self.future.set_result(None)

    def interrupt(self) -> None:
        """Ctrl-C (called from a signal handler, so only ``call_soon_threadsafe``)."""
        self.interrupted = True
        self.notify()


class _SigintWatch:
    """While ops are awaited in the main thread, Ctrl-C interrupts them.

    ipykernel does not stop a top-level ``await`` when the kernel is interrupted: the
    cell goes on until what it awaits is over (ipython/ipykernel#881), which for a
    Deferred that never fires is for ever. So while any op is awaited in the main
    thread, our SIGINT handler interrupts them all, then calls the handler it replaced.
    Main thread only (Python runs signal handlers there).
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

    def _interrupted(self, signum: int, frame: Any) -> None:
        for op in list(self._ops):
            op.interrupt()
        replaced = self._replaced
        if callable(replaced) and replaced is not signal.default_int_handler:
            replaced(signum, frame)


class Waits:
    """Hand work to the reactor thread and wait for it: blocking, or awaited.

    ``reactor`` is running in the thread ``reactor_thread``; ``noticed()`` is called in
    the caller's thread for every piece of work handed over. All methods are thread-safe.
    """

    def __init__(
        self, reactor: Any, reactor_thread: int, noticed: Callable[[], None] = lambda: None
    ) -> None:
        self._reactor = reactor
        self._reactor_thread = reactor_thread
        self._noticed = noticed
        self._pending: set[_Op] = set()
        self._sigint = _SigintWatch()

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

        A Deferred or coroutine result is waited for too. Returns the value; raises the
        function's (or the Failure's) exception; raises :class:`WaitTimeoutError` after
        ``timeout`` seconds (None: no limit) and ``KeyboardInterrupt`` on Ctrl-C, both
        after cancelling the Deferred. Raises RuntimeError in the reactor thread.
        """
        self._refuse_reactor_thread("call")
        op = _BlockingOp(what, fn)
        self._submit(op, fn, args, kwargs)
        return self._block(op, timeout)

    def wait(
        self, waitable: Any, *, timeout: float | None = DEFAULT_TIMEOUT, what: str | None = None
    ) -> Any:
        """Wait for a Deferred (or run a coroutine in the reactor) and return its result.

        Same outcomes as :meth:`call`. Raises TypeError for anything else.
        """
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
        self._refuse_reactor_thread("resolve")
        if isinstance(awaited, Deferred) or iscoroutine(awaited):
            if args or kwargs:
                raise TypeError("resolve() takes arguments only when it is given a function")
            fn, fn_args = _identity, (awaited,)
        elif callable(awaited):
            fn, fn_args = awaited, args
        else:
            kind = type(awaited).__name__
            raise TypeError(f"resolve() takes a Deferred, a coroutine or a function, not {kind}")
        loop = asyncio.get_running_loop()
        op = _AwaitedOp(what, awaited, loop)
        now = loop.time()
        op.deadline = None if timeout is None else now + timeout
        first = now + _ARM_AFTER if op.deadline is None else min(now + _ARM_AFTER, op.deadline)
        op.timer = loop.call_at(first, self._tick, op)
        self._submit(op, fn, fn_args, kwargs)
        try:
            await op.future
        except asyncio.CancelledError:
            self.cancel(op)
            raise
        finally:
            op.timer.cancel()
            self._sigint.discard(op)
        if op.interrupted:
            self.cancel(op)
            raise asyncio.CancelledError(op.interrupted_message())
        if op.outcome is _UNSET:  # time is up
            self.cancel(op)
            return op.gave_up(timeout)
        return op.unwrap()

    def _tick(self, op: _AwaitedOp) -> None:
        """Loop thread: a still-running await takes over Ctrl-C, or its time is up."""
        if op.future.done():
            return
        if not op.armed:
            op.armed = True
            self._sigint.add(op)
        if op.deadline is not None and op.loop.time() >= op.deadline:
            op.wake()
        elif op.deadline is not None:
            op.timer = op.loop.call_at(op.deadline, self._tick, op)

    def _block(self, op: _BlockingOp, timeout: float | None) -> Any:
        try:
            arrived = op.lock.acquire(True, -1 if timeout is None else timeout)
        except KeyboardInterrupt:
            self._cancel_and_linger(op)
            raise KeyboardInterrupt(op.interrupted_message()) from None
        if not arrived:
            self._cancel_and_linger(op)
            return op.gave_up(timeout)
        return op.unwrap()

    def _cancel_and_linger(self, op: _BlockingOp) -> None:
        """Cancel, then give the Deferred a moment to fire (its errback closes sockets)."""
        self.cancel(op)
        try:
            if op.lock.acquire(True, _CANCEL_GRACE):
                op.lock.release()
        except KeyboardInterrupt:
            pass

    def cancel(self, op: _Op, reason: str | None = None) -> None:
        """Give up on ``op``: it will not start, or its Deferred is cancelled. Thread-safe.

        The waiter, if still waiting, gets ``CancelledError`` naming ``reason``.
        """
        if reason is not None and op.reason is None:
            op.reason = reason
        op.abandoned = True
        self._reactor.callFromThread(self._cancel_in_reactor, op)

    def cancel_pending(self, reason: str) -> int:
        """Cancel every op still in flight; return how many there were. Thread-safe."""
        pending = list(self._pending)
        for op in pending:
            self.cancel(op, reason)
        return len(pending)

    def fail_pending(self, why: str) -> None:
        """Settle every op still in flight with a RuntimeError (reactor thread, at shutdown)."""
        for op in list(self._pending):
            self._settle(op, Failure(RuntimeError(f"{why}: {op.what} will never finish")))

    # -- the reactor's side -------------------------------------------------------------

    def _submit(
        self, op: _Op, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._noticed()
        self._pending.add(op)
        self._reactor.callFromThread(self._run, op, fn, args, kwargs)

    def _run(
        self, op: _Op, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if op.abandoned:
            self._settle(op, Failure(CancelledError(f"{op.what} was cancelled before it started")))
            return
        try:
            result = _start(fn, args, kwargs)
        except BaseException:
            self._settle(op, Failure())
            return
        if isinstance(result, Deferred):
            op.deferred = result
            result.addBoth(self._fired, op)
        else:
            self._settle(op, result)

    def _fired(self, result: Any, op: _Op) -> None:
        self._settle(op, result)  # returns None: waiting consumes the result

    def _settle(self, op: _Op, result: Any) -> None:
        self._pending.discard(op)
        op.settle(result)

    @staticmethod
    def _cancel_in_reactor(op: _Op) -> None:
        if op.deferred is not None and op.outcome is _UNSET:
            op.deferred.cancel()
