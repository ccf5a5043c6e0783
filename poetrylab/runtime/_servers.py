"""Servers started from notebook cells: handles, a registry, and the kinds one can serve.

A cell that starts a server and is run again must not leak the first listener or fail
with "address in use". Every server lives in a :class:`ServerRegistry` under a key: an
explicit ``name``, or else the cell it was started from and its place in that cell
(first server, second...). Starting a server under a key that is taken stops the old
one first; the first server a cell starts when it is run again also stops what that
cell started the previous time.

The runtime never forgets a server it has not stopped. Stopping asks the reactor thread
to close the ports and waits (a server that needs no reactor, ``blocking``, is stopped
by the caller's thread); when the reactor thread is busy (a cell blocked it, the
mistake notebook 02 shows) the server stays listed as ``stopping``, its ports close as
soon as the reactor is free, and :class:`StopPendingError` says so. A cell run again
starts its new server only once the old one has stopped, so two never listen side by
side; a server whose start is given up on never starts if its turn had not come, and is
closed the moment it listens if it was already starting.

Kinds come from two places. Every kind in :mod:`poetrylab.kinds` (slow, fast,
blocking, transform, proxy, tagged, xmlrpc: the kinds of ``poetrylab serve``) can be
served with its options as keyword arguments, the same names as the command line's:
``serve("slow", "raven", delay=0.05)``. Other kinds are added with
``register(kind, start)``; one-off servers written in a cell use ``listen(start)``.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from twisted.internet.defer import CancelledError, Deferred, DeferredList, maybeDeferred, succeed

from poetrylab._typing import RuntimeReactor
from poetrylab.download import Address
from poetrylab.runtime._waits import TIMEOUT_SCALE, WaitTimeoutError

if TYPE_CHECKING:
    from poetrylab.runtime._cells import Cell, NoCells
    from poetrylab.runtime._waits import Waits
    from poetrylab.runtime._watchdog import Blocker

__all__ = ["STOP_TIMEOUT", "ServerHandle", "ServerRegistry", "StopPendingError"]

Starter = Callable[..., Any]
"""``start(reactor, ...)``: runs in the reactor thread, returns what is listening."""

STOP_TIMEOUT = 10.0 * TIMEOUT_SCALE
"""Seconds a stop waits for the ports to close by default (times POETRYLAB_TIMEOUT_SCALE)."""

State = Literal["running", "stopping", "stopped"]


class _Port(Protocol):
    """What ``reactor.listenTCP`` returns (``IListeningPort``), as far as we use it."""

    def getHost(self) -> Any: ...

    def stopListening(self) -> Deferred[None] | None: ...


class _PlainServer(Protocol):
    """A server that runs without the reactor (``BlockingPoetryServer``)."""

    host: str
    port: int

    def stop(self) -> None: ...


class _TwistedListener:
    """An ``IListeningPort``: stopped with ``stopListening`` in the reactor thread."""

    def __init__(self, port: _Port) -> None:
        self.port = port
        host = port.getHost()
        self.address = Address(str(host.host), int(host.port))

    def stop_in_reactor(self) -> Deferred[None] | None:
        return self.port.stopListening()


class _ThreadListener:
    """A reactor-less server (``host``, ``port``, ``serve_forever``, ``stop``) in its own thread."""

    def __init__(self, server: _PlainServer, name: str) -> None:
        self.server = server
        self.address = Address(server.host, server.port)
        self.thread: threading.Thread | None = None
        serve_forever = getattr(server, "serve_forever", None)
        if callable(serve_forever):
            self.thread = threading.Thread(
                target=serve_forever, name=f"poetrylab-{name}", daemon=True
            )
            self.thread.start()

    def stop_in_reactor(self) -> None:
        self.stop_here()

    def stop_here(self) -> None:
        """Stop the server and wait for its thread (any thread; it needs no reactor)."""
        self.server.stop()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(STOP_TIMEOUT)


_Listener = _TwistedListener | _ThreadListener


def _listeners(result: object, name: str) -> list[_Listener]:
    if isinstance(result, list | tuple):
        return [one for item in result for one in _listeners(item, name)]
    if hasattr(result, "getHost") and hasattr(result, "stopListening"):
        return [_TwistedListener(cast(_Port, result))]
    if all(hasattr(result, attr) for attr in ("host", "port", "stop")):
        return [_ThreadListener(cast(_PlainServer, result), name)]
    raise TypeError(
        f"a server's start function returned {result!r}: expected an IListeningPort "
        "(what reactor.listenTCP returns), a list of them, or an object with host, port "
        "and stop()"
    )


class StopPendingError(WaitTimeoutError):
    """Servers could not be stopped in time: the reactor thread did not get to them.

    They are not forgotten: ``servers`` lists them, ``runtime.servers()`` still shows
    them (``stopping``), and their ports close as soon as the reactor thread is free.
    ``blocker`` says what kept it busy, when known.
    """

    def __init__(
        self, servers: list[ServerHandle], blocker: Blocker | None, doing: str = ""
    ) -> None:
        self.servers = servers
        named = "; ".join(str(handle) for handle in servers)
        count = "1 server" if len(servers) == 1 else f"{len(servers)} servers"
        why = (
            f"the reactor thread is busy (running {blocker})" if blocker is not None
            else "the reactor thread has not got to it yet"
        )  # fmt: skip
        head = f"{doing}: " if doing else ""
        super().__init__(
            f"{head}{count} could not be stopped yet, because {why}: {named}. They stop as "
            "soon as the reactor thread is free (runtime.servers() lists them until then); "
            "run runtime.stop_all() again to wait for them",
            blocker,
        )


class ServerHandle:
    """A server started from a cell: its ``name``, ``kind`` and address, and ``stop()``.

    ``address`` (also ``host`` and ``port``) is the first listener's; ``addresses`` has
    them all. ``state`` is ``running``, ``stopping`` (asked to stop; its ports are not
    closed yet) or ``stopped``. Thread-safe.
    """

    def __init__(
        self,
        registry: ServerRegistry,
        key: str,
        name: str,
        kind: str,
        listeners: list[_Listener],
        detail: str = "",
        cell: Cell | None = None,
    ) -> None:
        self._registry = registry
        self._key = key
        self._cell = cell
        self._listeners = listeners
        self._state: State = "running"  # changed under the registry's lock
        self._closing: Deferred[None] | None = None  # reactor thread only
        self._waiters: list[Deferred[None]] = []  # reactor thread only
        self.name = name
        self.kind = kind
        self.detail = detail

    @property
    def addresses(self) -> list[Address]:
        """Every address this server listens on."""
        return [listener.address for listener in self._listeners]

    @property
    def address(self) -> Address:
        """The (first) address clients connect to."""
        return self._listeners[0].address

    @property
    def host(self) -> str:
        return self.address.host

    @property
    def port(self) -> int:
        return self.address.port

    @property
    def state(self) -> State:
        """``running``, ``stopping`` (asked to stop, ports not closed yet) or ``stopped``."""
        return self._state

    @property
    def running(self) -> bool:
        """True until its ports are closed (a server still ``stopping`` is running)."""
        return self._state != "stopped"

    def stop(self, *, timeout: float | None = STOP_TIMEOUT) -> None:
        """Stop listening and free the port; idempotent and thread-safe.

        Waits (up to ``timeout`` seconds, None: for ever) until the ports are closed,
        except in the reactor thread, where it starts closing them and returns. Raises
        :class:`StopPendingError` when the reactor thread does not get to it in time:
        the server then stays listed and stops as soon as the reactor is free.
        Connections already open finish on their own.
        """
        self._registry.stop_handles([self], timeout=timeout)

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        state = "" if self._state == "running" else f" [{self._state}]"
        return f"{self.kind} server {self.name!r} on {self.address}{detail}{state}"

    def __repr__(self) -> str:
        return f"<ServerHandle {self}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


@dataclass
class _Starting:
    """A server being started: where it will be registered, unless its wait gave up."""

    key: str
    name: str | None
    kind: str
    detail: str
    cell: Cell | None
    abandoned: bool = False  # changed under the registry's lock


class ServerRegistry:
    """Every server started through the runtime, by key; thread-safe.

    ``waits`` hands work to the reactor thread (running ``reactor``) and waits for it;
    ``cells.current()`` names the caller's cell (or None).
    """

    def __init__(
        self,
        reactor: RuntimeReactor,
        waits: Waits,
        cells: NoCells,
        kinds: dict[str, Starter] | None = None,
    ) -> None:
        self._reactor = reactor
        self._waits = waits
        self._call = waits.call
        self._in_reactor_thread = waits.in_reactor_thread
        self._cells = cells
        self._lock = threading.Lock()
        self._handles: dict[str, ServerHandle] = {}
        self._kinds: dict[str, Starter] = kinds if kinds is not None else {}
        self._ordinal: dict[str, tuple[str, int]] = {}
        self._anonymous = itertools.count(1)

    # -- kinds ----------------------------------------------------------------------

    def kinds(self) -> list[str]:
        """Every kind :meth:`serve` knows: registered ones and :data:`poetrylab.kinds.KINDS`."""
        from poetrylab.kinds import KINDS

        return sorted(set(self._kinds) | set(KINDS))

    def serve(
        self,
        kind: str,
        *args: Any,
        name: str | None = None,
        port: int = 0,
        iface: str = "127.0.0.1",
        **options: Any,
    ) -> ServerHandle:
        """Start a server of ``kind`` (see the module docstring); return its handle."""
        start = self._kinds.get(kind)
        if start is not None:
            starter: Starter = lambda reactor: start(  # noqa: E731
                reactor, *args, port=port, iface=iface, **options
            )
            detail = ", ".join(str(a) for a in args)
        else:
            starter, detail = self._kind_starter(kind, args, dict(options, port=port, iface=iface))
        return self.open(kind, starter, name=name, detail=detail)

    def _kind_starter(
        self, kind: str, args: tuple[Any, ...], options: dict[str, Any]
    ) -> tuple[Starter, str]:
        from poetrylab.kinds import KINDS

        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"no server kind {kind!r}: choose one of {', '.join(self.kinds())}")
        values = spec.values(args, options)  # checked here, in the cell's thread
        return (lambda reactor: spec.start(reactor, values)), ", ".join(str(a) for a in args)

    def open(
        self, kind: str, start: Starter, *, name: str | None = None, detail: str = ""
    ) -> ServerHandle:
        """Run ``start(reactor)`` in the reactor thread and register what listens.

        The servers this one replaces (the same ``name``, or what this cell started on
        its previous run) are stopped first; when they cannot be stopped in time
        (the reactor thread is busy) this raises :class:`StopPendingError` and starts
        nothing, so a new listener never runs beside an old one. The new server is
        registered in the reactor thread as soon as it listens; if the wait for it gives
        up first, it is closed as soon as it starts, never left running unlisted.
        """
        __tracebackhide__ = True
        cell = self._cells.current()
        key, replaced = self._claim(cell, name)
        self.stop_handles(replaced, doing=f"cannot start the {kind} server yet")
        starting = _Starting(key, name, kind, detail, cell)
        try:
            handle: ServerHandle = self._call(
                self._start_in_reactor, start, starting, what=f"starting the {kind} server"
            )
        except BaseException:
            with self._lock:
                starting.abandoned = True
            raise
        return handle

    def _start_in_reactor(self, start: Starter, starting: _Starting) -> Deferred[ServerHandle]:
        """Reactor thread: start the server; register it once it listens."""
        return maybeDeferred(start, self._reactor).addCallback(self._register, starting)

    def _register(self, result: object, starting: _Starting) -> ServerHandle:
        """Reactor thread: the server listens; register it, unless nobody waits any more."""
        try:
            listeners = _listeners(result, starting.name or starting.kind)
        except TypeError:
            _stop_all_of(_listeners_or_empty(result))
            raise
        with self._lock:
            if not starting.abandoned:
                shown = starting.name or self._free_name(starting.kind)
                handle = ServerHandle(
                    self, starting.key, shown, starting.kind, listeners, starting.detail,
                    starting.cell,
                )  # fmt: skip
                self._handles[starting.key] = handle
                return handle
        _stop_all_of(listeners)
        raise CancelledError(f"the {starting.kind} server started after its wait gave up")

    def _claim(self, cell: Cell | None, name: str | None) -> tuple[str, list[ServerHandle]]:
        """The key for a new server, and the servers it replaces (still registered)."""
        with self._lock:
            replaced: list[ServerHandle] = []
            if name is not None:
                key = f"name:{name}"
            elif cell is not None and cell.key is not None:
                msg_id, count = self._ordinal.get(cell.key, ("", 0))
                if msg_id != cell.msg_id:  # this cell's first server in this run
                    count = 0
                    replaced = [
                        h for k, h in self._handles.items()
                        if k.startswith(f"cell:{cell.key}#")
                        and h._cell is not None and h._cell.msg_id != cell.msg_id
                    ]  # fmt: skip
                count += 1
                self._ordinal[cell.key] = (cell.msg_id, count)
                key = f"cell:{cell.key}#{count}"
            else:
                key = f"anonymous:{next(self._anonymous)}"
            old = self._handles.get(key)
            if old is not None and old not in replaced:
                replaced.append(old)
            return key, replaced

    def _free_name(self, kind: str) -> str:
        taken = {h.name for h in self._handles.values()}
        for n in itertools.count(1):
            candidate = kind if n == 1 else f"{kind}-{n}"
            if candidate not in taken:
                return candidate
        raise AssertionError("unreachable")

    # -- stopping -------------------------------------------------------------------

    def handles(self) -> list[ServerHandle]:
        """The servers not stopped yet (running or stopping), oldest first."""
        with self._lock:
            return list(self._handles.values())

    def stop_handles(
        self,
        handles: Iterable[ServerHandle],
        timeout: float | None = STOP_TIMEOUT,
        doing: str = "",
    ) -> None:
        """Stop these servers and wait until their ports are closed. Thread-safe.

        Servers that need no reactor (``blocking``) are stopped in this thread. The
        others are closed by the reactor thread; the request stays queued there if the
        wait gives up, so they stop as soon as the reactor is free, and until then they
        stay registered (``stopping``). Raises :class:`StopPendingError`, saying
        ``doing`` first, when they are not all closed within ``timeout`` seconds. In the
        reactor thread it starts closing them and returns.
        """
        __tracebackhide__ = True
        with self._lock:
            pending = [h for h in handles if h._state != "stopped"]
            for handle in pending:
                if handle._state == "running":
                    handle._state = "stopping"
        if not pending:
            return
        if self._in_reactor_thread():
            for handle in pending:
                self._close_in_reactor(handle, plain_too=True)
            return
        for handle in pending:
            for listener in handle._listeners:
                if isinstance(listener, _ThreadListener):
                    listener.stop_here()
            if not any(isinstance(li, _TwistedListener) for li in handle._listeners):
                self._forget(handle)
        pending = [h for h in pending if h._state != "stopped"]
        if not pending:
            return
        named = ", ".join(repr(h.name) for h in pending)
        try:
            self._waits.call_uncancellable(
                self._close_all_in_reactor, pending, timeout=timeout,
                what=f"the server{'s' if len(pending) > 1 else ''} {named} to stop",
            )  # fmt: skip
        except WaitTimeoutError as error:
            still = [h for h in pending if h._state != "stopped"]
            if still:
                raise StopPendingError(still, error.blocker, doing) from None

    def _close_all_in_reactor(self, handles: list[ServerHandle]) -> Deferred[Any]:
        """Reactor thread: close every handle's ports; fires when all are closed."""
        closing = [self._close_in_reactor(handle) for handle in handles]
        return DeferredList(closing, consumeErrors=True)

    def _close_in_reactor(self, handle: ServerHandle, plain_too: bool = False) -> Deferred[None]:
        """Reactor thread: close ``handle``'s ports (once); fires when they are closed.

        Servers without a reactor are stopped here too when ``plain_too`` (at shutdown,
        or when the reactor thread itself asked); otherwise their caller stopped them.
        """
        if handle._state == "stopped":
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        handle._waiters.append(waiter)  # before closing: closing may finish at once
        if handle._closing is None:
            listeners = [
                li for li in handle._listeners if plain_too or isinstance(li, _TwistedListener)
            ]
            handle._closing = _stop_all_of(listeners)
            handle._closing.addBoth(lambda _: self._forget(handle))
        return waiter

    def _forget(self, handle: ServerHandle) -> None:
        """The ports are closed: the handle is stopped and leaves the registry."""
        with self._lock:
            handle._state = "stopped"
            if self._handles.get(handle._key) is handle:
                del self._handles[handle._key]
        if self._in_reactor_thread():
            self._fire_waiters(handle)

    @staticmethod
    def _fire_waiters(handle: ServerHandle) -> None:
        waiters, handle._waiters = handle._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def stop_cells(self, keys: list[str]) -> list[str]:
        """Stop the servers started (without a name) by the cells ``keys``; return names.

        Called as a cell starts, so it never raises: a stop still pending is said in one
        line on standard error (the server stops when the reactor is free).
        """
        wanted = set(keys)
        with self._lock:
            doomed = [
                h for k, h in self._handles.items()
                if k.startswith("cell:") and h._cell is not None and h._cell.key in wanted
            ]  # fmt: skip
        try:
            self.stop_handles(doomed, doing="stopping the servers of deleted cells")
        except StopPendingError as error:
            print(f"poetrylab: {error}", file=sys.stderr)
        return [h.name for h in doomed]

    def stop_all(self, timeout: float | None = STOP_TIMEOUT) -> list[str]:
        """Stop every server, also those still stopping; return their names. Thread-safe.

        Raises :class:`StopPendingError` when the reactor thread cannot close them within
        ``timeout`` seconds (they stop as soon as it is free, and stay listed until then).
        """
        __tracebackhide__ = True
        handles = self.handles()
        self.stop_handles(handles, timeout=timeout, doing="runtime.stop_all()")
        return [h.name for h in handles]

    def stop_all_in_reactor(self) -> Deferred[Any]:
        """Stop every server from the reactor thread (at shutdown); fires when all are closed."""
        handles = self.handles()
        with self._lock:
            for handle in handles:
                if handle._state == "running":
                    handle._state = "stopping"
        closing = [self._close_in_reactor(handle, plain_too=True) for handle in handles]
        return DeferredList(closing, consumeErrors=True)


def _stop_all_of(listeners: Iterable[_Listener]) -> Deferred[Any]:
    """Stop every listener (reactor thread); fires when all have closed."""
    stopping = [maybeDeferred(listener.stop_in_reactor) for listener in listeners]
    return DeferredList(stopping, consumeErrors=True)


def _listeners_or_empty(result: object) -> list[_Listener]:
    items = result if isinstance(result, list | tuple) else [result]
    return [_TwistedListener(cast(_Port, i)) for i in items if hasattr(i, "stopListening")]
