"""Poetry clients, one module per model of concurrency, from blocking sockets to asyncio.

Each module is short and meant to be read: the notebooks show it. They share one
record, :class:`~poetrylab.download.Download`, and one calling convention:

    sync     get_poems(addresses, timeout=10.0, *, clock=None) -> list[Download]
    twisted  get_poems(reactor, addresses, timeout=10.0) -> Deferred[list[Download]]
    asyncio  await get_poems_async(addresses, timeout=10.0) -> list[Download]

``addresses`` are :class:`~poetrylab.download.Address` objects, ``(host, port)`` pairs or
``"HOST:PORT"`` strings. A download that fails (refused, reset, timed out) is recorded
in its Download; the others go on, and ``get_poems`` itself does not fail.
:data:`MODELS` names every model (the ``poetrylab get --client`` choices) and
:func:`fetch` runs any of them from synchronous code: the CLI, a script or a notebook.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, cast

from poetrylab._typing import RuntimeReactor
from poetrylab.clients._common import AddressLike
from poetrylab.download import Address, Download, parse_address

__all__ = ["MODELS", "ClientModel", "fetch"]


@dataclass(frozen=True)
class ClientModel:
    """One client model: its name, how it runs, the module that implements it, one line."""

    name: str
    kind: Literal["sync", "twisted", "asyncio"]
    module: str
    summary: str

    def load(self) -> ModuleType:
        """Import and return the module (``get_poems`` is in it)."""
        return importlib.import_module(self.module)


MODELS: dict[str, ClientModel] = {
    model.name: model
    for model in [
        ClientModel(
            "blocking", "sync", "poetrylab.clients.blocking",
            "one server after another, blocking sockets (notebook 01)",
        ),
        ClientModel(
            "threaded", "sync", "poetrylab.clients.threaded",
            "one thread per server, blocking sockets (notebook 01)",
        ),
        ClientModel(
            "select", "sync", "poetrylab.clients.select_loop",
            "non-blocking sockets in one select loop, by hand (notebook 02)",
        ),
        ClientModel(
            "reactor", "twisted", "poetrylab.clients.reactor_reader",
            "our own socket handed to the reactor with addReader (notebook 02)",
        ),
        ClientModel(
            "protocol", "twisted", "poetrylab.clients.protocol",
            "Protocol and ClientFactory, callback and errback by hand (notebook 03)",
        ),
        ClientModel(
            "deferred", "twisted", "poetrylab.clients.deferred",
            "get_poetry returns a Deferred; addTimeout cancels it (notebooks 04-05)",
        ),
        ClientModel(
            "inline", "twisted", "poetrylab.clients.inline",
            "an @inlineCallbacks generator yielding Deferreds (notebook 08)",
        ),
        ClientModel(
            "coroutine", "twisted", "poetrylab.clients.coroutine",
            "async def coroutines awaiting Deferreds, driven by Twisted (notebook 08)",
        ),
        ClientModel(
            "asyncio", "asyncio", "poetrylab.clients.asyncio_streams",
            "asyncio streams on the standard library's event loop (notebook 12)",
        ),
    ]
}  # fmt: skip

_GRACE = 5.0
"""Seconds past the per-download timeout before fetch() gives up on a whole call."""


def fetch(
    model: str,
    addresses: Iterable[AddressLike],
    timeout: float = 10.0,
    reactor: RuntimeReactor | None = None,
) -> list[Download]:
    """Download from every address with the client ``model``; return the Downloads in order.

    A blocking call, for the CLI, scripts and notebook cells. Sync models run in this
    thread; the asyncio model runs in a worker thread if an event loop is already
    running in this one. Twisted models run on ``reactor`` (default: the global one):

    * running in another thread (as the notebook runtime runs it): the download runs there
      and this thread waits, at most ``timeout`` plus a few seconds;
    * not running at all (the one-shot CLI): the reactor runs in this thread until the
      downloads are over, then stops. A reactor cannot be restarted, so this works
      once per process; a second call raises RuntimeError.

    Raises ValueError for an unknown model or a malformed address, and RuntimeError
    when called in the reactor's own thread, where waiting would deadlock.
    """
    if model not in MODELS:
        raise ValueError(f"unknown client model {model!r}: choose one of {', '.join(MODELS)}")
    spec = MODELS[model]
    targets = [parse_address(address) for address in addresses]
    get_poems: Callable[..., Any] = spec.load().get_poems
    if spec.kind == "sync":
        return cast(list[Download], get_poems(targets, timeout))
    if spec.kind == "asyncio":
        if not _asyncio_loop_running():
            return cast(list[Download], get_poems(targets, timeout))
        pool = ThreadPoolExecutor(1, thread_name_prefix="poetrylab-asyncio")
        try:
            result = pool.submit(get_poems, targets, timeout).result(timeout + _GRACE)
            return cast(list[Download], result)
        finally:
            pool.shutdown(wait=False)  # on a timeout, do not wait for the stuck thread
    return _fetch_twisted(get_poems, targets, timeout, reactor)


def _asyncio_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _fetch_twisted(
    get_poems: Callable[..., Any],
    targets: list[Address],
    timeout: float,
    reactor: RuntimeReactor | None,
) -> list[Download]:
    from twisted.internet.defer import Deferred, maybeDeferred
    from twisted.internet.error import ReactorNotRestartable
    from twisted.internet.interfaces import IReactorFromThreads, IReactorTime  # noqa: F401
    from twisted.internet.threads import blockingCallFromThread
    from twisted.python.failure import Failure
    from twisted.python.threadable import isInIOThread

    if reactor is None:
        # The outermost entry point for a script or the CLI: the global reactor.
        from twisted.internet import reactor as global_reactor

        reactor = cast(RuntimeReactor, global_reactor)

    # Twisted's annotations name zope interfaces, which mypy cannot match with our
    # Protocols (poetrylab._typing): the same object, seen as the interface.
    clock = cast("IReactorTime", reactor)

    def start() -> Deferred[list[Download]]:
        # The guard: even if a download never reports, the call ends in time.
        d: Deferred[list[Download]] = maybeDeferred(get_poems, reactor, targets, timeout)
        return d.addTimeout(timeout + _GRACE, clock)

    if reactor.running:
        if isInIOThread():
            raise RuntimeError(
                "fetch() waits for the downloads, so it cannot run in the reactor thread: "
                "call the model's get_poems(reactor, addresses) and use its Deferred"
            )
        threads = cast("IReactorFromThreads", reactor)
        return cast(list[Download], blockingCallFromThread(threads, start))  # type: ignore[arg-type]  # Twisted types the callable as returning Never

    # Not task.react: react() runs the reactor and then ends the process with sys.exit,
    # while fetch() is a library call that returns the Downloads to its caller (the CLI
    # prints them, the benchmark's client process measures them, a script goes on). So
    # the reactor is run here directly, once, and stopped when the downloads are over.
    outcome: list[list[Download] | Failure] = []

    def run() -> None:
        # Stop on the next turn, so clean-ups already scheduled (aborts) run first.
        start().addBoth(outcome.append).addBoth(lambda _: reactor.callLater(0, reactor.stop))

    reactor.callWhenRunning(run)
    try:
        reactor.run()
    except ReactorNotRestartable:
        raise RuntimeError(
            "the Twisted reactor has already run and stopped in this process and cannot "
            "restart; run it in a background thread instead (as the notebook runtime does)"
        )
    if not outcome:
        raise RuntimeError("the reactor stopped before the downloads were over (interrupted?)")
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result
