"""Checks for notebook 12 (Twisted meets asyncio).

* :func:`check_as_deferred` — the learner's ``as_deferred(coroutine, loop)``: an asyncio
  coroutine run by asyncio's loop, seen from Twisted as a Deferred. It must fire with
  the coroutine's result (a download over asyncio streams), fail with its exception,
  and, when the Deferred is cancelled, cancel the asyncio task.
* :func:`check_first_lines` — the learner's ``async def first_lines(fetch, addresses)``,
  run as an asyncio task: ``fetch(address)`` returns a Deferred (the Twisted client), and
  the coroutine must await those Deferreds as Futures of its loop, all downloads at once,
  and return the poems' first lines in the order of the addresses.

Both need asyncio code and Twisted code on ONE event loop, which is what Twisted's
asyncio reactor gives. The notebook's own reactor (the runtime's, in a thread) is not
that reactor, and a process installs only one. So each check runs the learner's code on
an :class:`~twisted.internet.asyncioreactor.AsyncioSelectorReactor` of its own, built on
a new asyncio loop and run in a thread of its own for the length of the check; it is
never installed as the global reactor, and it is stopped and its loop closed before the
check returns. The poetry servers are the notebook runtime's (``nb12-check-...``),
stopped before the check returns too.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.defer import Deferred
from twisted.python import threadable
from twisted.python.failure import Failure

from poetrylab import runtime
from poetrylab.clients import asyncio_streams
from poetrylab.clients.deferred import get_poetry
from poetrylab.corpus import load_poem
from poetrylab.download import Address, Download
from poetrylab.exercises._deferreds import Outcome, describe
from poetrylab.exercises._feedback import one_line, short
from poetrylab.exercises._learner import RUN_IT_ALONE
from poetrylab.exercises._registry import NotYet, async_function, exercise, function

__all__ = ["SERVERS", "check_as_deferred", "check_first_lines"]

SERVERS: dict[str, tuple[float, int]] = {
    "hope": (0.02, 100),  # 376 bytes in 4 chunks: 60 ms
    "nachtlied": (0.01, 50),  # 143 bytes in 3 chunks: 20 ms
    "furuike": (0.01, 100),  # 77 bytes in 1 chunk: at once
}
"""The check's servers: poem name -> (delay, num_bytes). The slowest comes first, so the
poems finish in another order than they were asked for."""

_PATIENCE = 2.5  # seconds for the learner's Deferred or task (every case needs < 0.2 s)
_DOWNLOAD = 5.0  # the timeout of one download


class _Reactor:
    """Twisted's asyncio reactor on a new asyncio loop, run in a thread of its own.

    A context manager: entering starts the thread and waits (with a timeout) until the
    reactor runs; leaving cancels the asyncio tasks still pending, stops the reactor and
    closes the loop. Never installed as the global reactor. :meth:`call` is the only
    method to use from another thread.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.reactor = AsyncioSelectorReactor(self.loop)
        # A reactor that starts running registers its thread as Twisted's I/O thread, a
        # process global (twisted.python.threadable): this one must leave that to the
        # process reactor (the runtime's), or isInIOThread() turns false in the runtime's
        # thread, and fetch() or blockingCallFromThread called there deadlock the
        # notebook's reactor instead of refusing to run. Twisted's own flag for a reactor
        # that is not the process's I/O reactor (and __exit__ puts the global back, should
        # a Twisted without the flag have let this reactor take it).
        self.reactor._registerAsIOThread = False
        self._io_thread = threadable.ioThread
        self._running = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="nb12-check-asyncio-reactor", daemon=True
        )

    def _run(self) -> None:
        self.reactor.callWhenRunning(self._running.set)
        self.reactor.run(installSignalHandlers=False)

    def __enter__(self) -> _Reactor:
        self._io_thread = threadable.ioThread
        self._thread.start()
        if not self._running.wait(5.0):
            raise RuntimeError("the check's asyncio reactor did not start within 5 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.call(self._cancel_tasks, patience=1.0)
        self.reactor.callFromThread(self.reactor.stop)
        self._thread.join(5.0)
        if threadable.ioThread == self._thread.ident:
            threadable.ioThread = self._io_thread
        if self._thread.is_alive():
            return  # the learner's code blocks the loop: leave it (a daemon thread)
        self.loop.close()
        # The reactor's self-pipe (its waker, an IReadDescriptor) outlives the loop it was
        # added to; connectionLost closes its two descriptors, as a reactor's shutdown would
        # if it could ever be run again.
        waker = getattr(self.reactor, "waker", None)
        if waker is not None:
            waker.connectionLost(None)

    def _cancel_tasks(self) -> Deferred[list[Any]]:
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        gathered: asyncio.Future[list[Any]] = asyncio.gather(*pending, return_exceptions=True)
        return Deferred.fromFuture(gathered)

    def call(self, fn: Callable[..., object], *args: Any, patience: float = _PATIENCE) -> Outcome:
        """Run ``fn(*args)`` in the reactor's thread; wait for the Deferred it returns.

        Returns the :class:`Outcome`: a value, a Failure (also when ``fn`` raised), or
        "unfired" after ``patience`` seconds (the Deferred is then left as it is).
        """
        box: queue.Queue[Outcome] = queue.Queue()

        def keep(result: object) -> None:
            failed = isinstance(result, Failure)
            box.put(Outcome("failure" if failed else "value", result))

        def start() -> None:
            try:
                result = fn(*args)
            except Exception:
                keep(Failure())
                return
            if isinstance(result, Deferred):
                result.addBoth(keep)
            else:
                keep(result)

        self.reactor.callFromThread(start)
        try:
            return box.get(timeout=patience)
        except queue.Empty:
            return Outcome("unfired")


def _serve() -> tuple[list[runtime.ServerHandle], dict[str, Address]]:
    """Start the check's servers (in the notebook runtime); return them and each poem's
    address."""
    runtime.start()
    servers = [
        runtime.serve("slow", poem, delay=delay, num_bytes=num_bytes, name=f"nb12-check-{poem}")
        for poem, (delay, num_bytes) in SERVERS.items()
    ]
    return servers, {poem: s.address for poem, s in zip(SERVERS, servers, strict=True)}


def _stop(servers: Sequence[runtime.ServerHandle]) -> None:
    for server in servers:
        server.stop()


def _first_line(name: str) -> str:
    return load_poem(name).text.splitlines()[0]


def _bad_yield(failure: Failure) -> bool:
    return isinstance(failure.value, RuntimeError) and "bad yield" in str(failure.value)


def _await_outside_asyncio(failure: Failure) -> bool:
    # What asyncio says when something other than its own loop drives the coroutine:
    # Twisted sends the Future it awaited straight back, or no task or loop is running.
    said = str(failure.value)
    return isinstance(failure.value, RuntimeError) and any(
        words in said
        for words in ("await wasn't used with future", "no running event loop", "inside a task")
    )


def _other_loop(failure: Failure) -> bool:
    return isinstance(failure.value, ValueError | RuntimeError) and (
        "different loop" in str(failure.value)
    )


def _error(failure: Failure) -> str:
    """A Failure in a verdict's words: never a memory address."""
    if _bad_yield(failure):
        return "RuntimeError: Task got bad yield: a Deferred"
    if _other_loop(failure):
        return f"{type(failure.value).__name__}: a Future attached to a different loop"
    return one_line(failure.value) if failure.value is not None else describe(failure)


# -- exercise 1: an asyncio coroutine, seen from Twisted as a Deferred ----------------------


async def _stream_text(address: Address) -> str:
    """asyncio code: a poem over asyncio streams (the notebook's stream client)."""
    download: Download = await asyncio_streams.get_poetry(address, _DOWNLOAD)
    if not download.ok:
        raise ConnectionError(download.error)
    return download.text


async def _missing(name: str) -> str:
    """asyncio code that fails, after awaiting asyncio once."""
    await asyncio.sleep(0)
    raise KeyError(name)


class _Forever:
    """An asyncio coroutine that waits for ever; notes when asyncio cancels it."""

    def __init__(self) -> None:
        self.cancelled: Deferred[None] = Deferred()  # fires when the coroutine is cancelled
        self.started = False

    async def wait(self) -> str:
        self.started = True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.callback(None)
            raise
        return "never"


def _convert(
    as_deferred: Callable[..., object], coroutine: Coroutine[Any, Any, Any], loop: object
) -> Deferred[object]:
    """Reactor thread: ``as_deferred(coroutine, loop)``, which must be a Deferred."""
    try:
        made = as_deferred(coroutine, loop)
    except Exception:
        coroutine.close()  # run by nobody: no "never awaited" warning later
        raise
    if isinstance(made, Deferred):
        return made
    if isinstance(made, asyncio.Future):
        made.cancel()  # the task closes the coroutine
        raise NotYet(
            "as_deferred returned an asyncio Future, not a Deferred",
            expected="a Deferred: Twisted code adds callbacks to it",
            got="an asyncio Task or Future",
            hint="Deferred.fromFuture(...) turns a Future into a Deferred",
        )
    coroutine.close()
    raise NotYet(
        "as_deferred should return a Deferred",
        expected="a Deferred that fires with the coroutine's result",
        got=describe(made),
        hint="make the coroutine an asyncio task on loop, then a Deferred of that task",
    )


def _judge_conversion(what: str, outcome: Outcome, expected: str) -> None:
    if isinstance(outcome.result, Failure) and isinstance(outcome.result.value, NotYet):
        raise outcome.result.value
    if outcome.kind == "failure" and _await_outside_asyncio(outcome.result):
        raise NotYet(
            f"for {what}, Twisted drove the asyncio coroutine itself, and asyncio's code "
            "in it failed: it runs only as a task of asyncio's loop",
            expected=expected,
            got=_error(outcome.result),
            hint="fromCoroutine and ensureDeferred run a coroutine with Twisted, which waits "
            "only on Deferreds: let loop run it as an asyncio task (a Future), then take "
            "the door from Futures to Deferreds",
        )
    if outcome.kind == "failure" and isinstance(outcome.result.value, TypeError | AttributeError):
        raise NotYet(
            f"for {what}, making the Deferred raised an error",
            expected=expected,
            got=_error(outcome.result),
            hint="a coroutine is not yet a Future: fromFuture needs loop.create_task(coroutine)",
        )


@exercise("12", function("as_deferred(coroutine, loop)"), title="asyncio work as a Deferred")
def check_as_deferred(as_deferred: Callable[..., object]) -> str:
    """A stream download, a failure and a cancellation, each through ``as_deferred``."""
    servers, addresses = _serve()
    try:
        with _Reactor() as asyncio_reactor:
            loop = asyncio_reactor.loop
            what = "a download over asyncio streams"
            expected = f"a Deferred that fires with the poem (Hope, {len(load_poem('hope'))} bytes)"
            outcome = asyncio_reactor.call(
                _convert, as_deferred, _stream_text(addresses["hope"]), loop
            )
            _judge_conversion(what, outcome, expected)
            if outcome.kind == "unfired":
                raise NotYet(
                    f"for {what}, the Deferred never fired",
                    expected=expected,
                    got=f"nothing after {_PATIENCE:g} s",
                    hint="does anything fire your Deferred when the task is done? "
                    "Deferred.fromFuture(task) does",
                )
            if not outcome.is_value(load_poem("hope").text):
                raise NotYet(
                    f"for {what}, the Deferred fired with something else",
                    expected=expected,
                    got=str(outcome),
                    hint="the Deferred should fire with what the coroutine returned",
                )
            outcome = asyncio_reactor.call(_convert, as_deferred, _missing("nightingale"), loop)
            _judge_conversion("a coroutine that raises", outcome, "a Failure(KeyError)")
            if not outcome.failed_with(KeyError):
                raise NotYet(
                    "when the coroutine raises KeyError, the Deferred should fail with it",
                    expected="Failure(KeyError: 'nightingale')",
                    got=f"nothing after {_PATIENCE:g} s"
                    if outcome.kind == "unfired"
                    else str(outcome),
                    hint="an exception in the task must reach the Deferred's errbacks: "
                    "Deferred.fromFuture(task) passes it on",
                )
            _judge_cancel(asyncio_reactor, as_deferred)
    finally:
        _stop(servers)
    return (
        "asyncio ran the coroutine, and Twisted saw a Deferred: its result, its error, "
        "and a cancel that reached the task."
    )


def _judge_cancel(asyncio_reactor: _Reactor, as_deferred: Callable[..., object]) -> None:
    forever = _Forever()
    made: list[Deferred[object]] = []

    def start() -> Deferred[None]:
        d = _convert(as_deferred, forever.wait(), asyncio_reactor.loop)
        made.append(d)
        d.addErrback(lambda _: None)  # cancelled: the failure is expected, and handled here
        # Cancel once the coroutine has started waiting: on the next turns of the loop.
        asyncio_reactor.reactor.callLater(0.01, d.cancel)
        return forever.cancelled

    outcome = asyncio_reactor.call(start, patience=1.0)
    if isinstance(outcome.result, Failure) and isinstance(outcome.result.value, NotYet):
        raise outcome.result.value
    if outcome.kind != "value":
        raise NotYet(
            "cancelling the Deferred left the asyncio task running",
            expected="d.cancel() cancels the task (the coroutine gets CancelledError)",
            got="the coroutine was never cancelled"
            if forever.started
            else "the coroutine never even started",
            hint="Deferred.fromFuture(task) cancels the task when the Deferred is cancelled",
        )


# -- exercise 2: asyncio code awaiting Deferreds ---------------------------------------------


class _Fetcher:
    """The ``fetch`` the check hands over: the Twisted client, counting downloads in flight
    (from the call until its Deferred fires). Reactor thread only."""

    def __init__(self, reactor: AsyncioSelectorReactor, addresses: dict[str, Address]) -> None:
        self.reactor = reactor
        self.known = set(addresses.values())
        self.in_flight = 0
        self.peak = 0
        self.strays: list[object] = []
        self.made: list[Deferred[str]] = []

    def settle(self) -> None:
        """Cancel the downloads still running, and handle whatever each chain ends with
        (the learner's callbacks may fail, e.g. completing a Future of a closed loop), so
        no "Unhandled error in Deferred" is reported later in some cell."""
        for d in self.made:
            d.addErrback(lambda _: None)
            if not d.called:
                d.cancel()

    def __call__(self, address: object) -> Deferred[str]:
        if address not in self.known:
            self.strays.append(address)
            d: Deferred[str] = Deferred()
            d.errback(ValueError(f"fetch was called with {short(address)}, not an address"))
            return d
        assert isinstance(address, Address)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

        def text_of(download: Download) -> str:
            self.in_flight -= 1
            return download.text

        def failed(failure: Failure) -> Failure:
            self.in_flight -= 1
            return failure

        text: Deferred[str] = get_poetry(self.reactor, address, _DOWNLOAD).addCallbacks(
            text_of, failed
        )
        self.made.append(text)
        return text


def _as_task(
    first_lines: Callable[..., Any], fetch: _Fetcher, addresses: list[Address], loop: Any
) -> Deferred[object]:
    """Reactor thread: run ``first_lines(fetch, addresses)`` as an asyncio task."""
    return Deferred.fromFuture(loop.create_task(first_lines(fetch, addresses)))


_ORDER = ["hope", "nachtlied", "furuike"]


@exercise(
    "12", async_function("first_lines(fetch, addresses)"), title="asyncio code awaiting Deferreds"
)
def check_first_lines(first_lines: Callable[..., Any]) -> str:
    """Run ``first_lines(fetch, addresses)`` as an asyncio task on the asyncio reactor."""
    servers, addresses = _serve()
    try:
        with _Reactor() as asyncio_reactor:
            fetch = _Fetcher(asyncio_reactor.reactor, addresses)
            ordered = [addresses[name] for name in _ORDER]
            outcome = asyncio_reactor.call(
                _as_task, first_lines, fetch, ordered, asyncio_reactor.loop
            )
            asyncio_reactor.call(fetch.settle)
    finally:
        _stop(servers)
    expected = [_first_line(name) for name in _ORDER]
    _judge_first_lines(outcome, fetch, expected)
    if fetch.peak < len(ordered):
        raise NotYet(
            "the downloads ran one after another",
            expected=f"all {len(ordered)} downloads in flight at once",
            got=f"at most {fetch.peak} at once",
            hint="start every download first, then await them together: asyncio.gather(...) "
            "of the Futures",
        )
    return "asyncio awaited Twisted's Deferreds as Futures of its own loop, all at once."


def _judge_first_lines(outcome: Outcome, fetch: _Fetcher, expected: list[str]) -> None:
    if fetch.strays:
        raise NotYet(
            "fetch was called with something that is not one of the addresses",
            expected="fetch(address) for each address",
            got=f"fetch({short(fetch.strays[0])})",
            hint="hand fetch each address itself",
        )
    if outcome.kind == "unfired":
        raise NotYet(
            "first_lines did not finish",
            expected=f"the first lines within {_PATIENCE:g} s (the downloads take 0.1 s)",
            got=f"still waiting after {_PATIENCE:g} s",
            hint="await the Futures; a Future of another loop is never completed here",
        )
    if outcome.kind == "failure":
        failure: Failure = outcome.result
        if _bad_yield(failure):
            raise NotYet(
                "asyncio cannot await a Deferred: the task got a Deferred where it takes "
                "only asyncio Futures",
                expected="await on a Future of this loop",
                got=_error(failure),
                hint="first make each Deferred a Future of the loop that runs this coroutine, "
                "asyncio.get_running_loop(): the door from Deferreds to Futures",
            )
        if _other_loop(failure):
            raise NotYet(
                "a Future of another event loop was awaited",
                expected="Futures of the loop that runs first_lines",
                got=_error(failure),
                hint="asFuture(asyncio.get_running_loop()): the loop running this coroutine",
            )
        raise NotYet(
            "first_lines raised an error",
            expected="the first lines of the poems",
            got=_error(failure),
            hint=RUN_IT_ALONE,
        )
    got = outcome.result
    if not isinstance(got, list | tuple) or list(got) != expected:
        hint = "the first line of each poem, in the order of the addresses"
        if isinstance(got, list | tuple) and sorted(map(str, got)) == sorted(expected):
            hint = (
                "the poems finish in another order than they were asked for: "
                "asyncio.gather keeps the order of its arguments"
            )
        raise NotYet(
            "first_lines returned something else",
            expected=short(expected, 90),
            got=short(got, 90),
            hint=hint,
        )
