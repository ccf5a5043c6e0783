"""Servers started from notebook cells: handles, a registry, and the kinds one can serve.

A cell that starts a server and is run again must not leak the first listener or fail
with "address in use". Every server lives in a :class:`ServerRegistry` under a key: an
explicit ``name``, or else the cell it was started from and its place in that cell
(first server, second...). Starting a server under a key that is taken stops the old
one first; the first server a cell starts when it is run again also stops what that
cell started the previous time.

Kinds come from two places. Every kind of ``poetrylab serve`` (``cli.SERVE_KINDS``:
slow, fast, blocking, and any kind added there later) can be served with its command-
line options as keyword arguments: ``serve("slow", "raven", delay=0.05)``. Other kinds
are added with ``register(kind, start)``; one-off servers written in a cell use
``listen(start)``.
"""

from __future__ import annotations

import argparse
import itertools
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred

from poetrylab.download import Address

__all__ = ["ServerHandle", "ServerRegistry"]

Starter = Callable[..., Any]
"""``start(reactor, ...)``: runs in the reactor thread, returns what is listening."""

_STOP_TIMEOUT = 10.0


class _TwistedListener:
    """An ``IListeningPort``: stopped with ``stopListening`` in the reactor thread."""

    def __init__(self, port: Any) -> None:
        self.port = port
        host = port.getHost()
        self.address = Address(host.host, host.port)

    def stop_in_reactor(self) -> Any:
        return self.port.stopListening()


class _ThreadListener:
    """A reactor-less server (``host``, ``port``, ``serve_forever``, ``stop``) in its own thread."""

    def __init__(self, server: Any, name: str) -> None:
        self.server = server
        self.address = Address(server.host, server.port)
        self.thread: threading.Thread | None = None
        if hasattr(server, "serve_forever"):
            self.thread = threading.Thread(
                target=server.serve_forever, name=f"poetrylab-{name}", daemon=True
            )
            self.thread.start()

    def stop_in_reactor(self) -> None:
        self.stop_here()

    def stop_here(self) -> None:
        self.server.stop()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(_STOP_TIMEOUT)


def _listeners(result: Any, name: str) -> list[Any]:
    if isinstance(result, list | tuple):
        return [one for item in result for one in _listeners(item, name)]
    if hasattr(result, "getHost") and hasattr(result, "stopListening"):
        return [_TwistedListener(result)]
    if all(hasattr(result, attr) for attr in ("host", "port", "stop")):
        return [_ThreadListener(result, name)]
    raise TypeError(
        f"a server's start function returned {result!r}: expected an IListeningPort "
        "(what reactor.listenTCP returns), a list of them, or an object with host, port "
        "and stop()"
    )


class ServerHandle:
    """A server started from a cell: its ``name``, ``kind`` and address, and ``stop()``.

    ``address`` (also ``host`` and ``port``) is the first listener's; ``addresses`` has
    them all. Thread-safe.
    """

    def __init__(
        self,
        registry: ServerRegistry,
        key: str,
        name: str,
        kind: str,
        listeners: list[Any],
        detail: str = "",
        cell: Any = None,
    ) -> None:
        self._registry = registry
        self._key = key
        self._cell = cell
        self._listeners = listeners
        self._stopped = threading.Event()
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
    def running(self) -> bool:
        """True until :meth:`stop` has been called."""
        return not self._stopped.is_set()

    def stop(self) -> None:
        """Stop listening and free the port; idempotent and thread-safe.

        Waits (up to 10 s) until the ports are closed, except in the reactor thread,
        where it starts closing them and returns. Connections already open finish on
        their own.
        """
        self._registry._stop(self)

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        state = "" if self.running else " [stopped]"
        return f"{self.kind} server {self.name!r} on {self.address}{detail}{state}"

    def __repr__(self) -> str:
        return f"<ServerHandle {self}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


class _ArgumentError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


class ServerRegistry:
    """Every server started through the runtime, by key; thread-safe.

    ``call(fn, *args, what=...)`` runs ``fn`` in the reactor thread and waits;
    ``in_reactor_thread()`` says whether we are there; ``cells.current()`` names the
    caller's cell (or None).
    """

    def __init__(
        self,
        reactor: Any,
        call: Callable[..., Any],
        in_reactor_thread: Callable[[], bool],
        cells: Any,
        kinds: dict[str, Starter] | None = None,
    ) -> None:
        self._reactor = reactor
        self._call = call
        self._in_reactor_thread = in_reactor_thread
        self._cells = cells
        self._lock = threading.Lock()
        self._handles: dict[str, ServerHandle] = {}
        self._kinds: dict[str, Starter] = kinds if kinds is not None else {}
        self._ordinal: dict[str, tuple[str, int]] = {}
        self._anonymous = itertools.count(1)

    # -- kinds ----------------------------------------------------------------------

    def kinds(self) -> list[str]:
        """Every kind :meth:`serve` knows: registered ones and the CLI's."""
        from poetrylab.cli import SERVE_KINDS

        return sorted(set(self._kinds) | set(SERVE_KINDS))

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
            starter, detail = self._cli_starter(kind, args, dict(options, port=port, iface=iface))
        return self.open(kind, starter, name=name, detail=detail)

    def _cli_starter(
        self, kind: str, args: tuple[Any, ...], options: dict[str, Any]
    ) -> tuple[Starter, str]:
        from poetrylab.cli import SERVE_KINDS, configure_serve_kind

        spec = SERVE_KINDS.get(kind)
        if spec is None:
            raise ValueError(f"no server kind {kind!r}: choose one of {', '.join(self.kinds())}")
        parser = _Parser(prog=f"serve({kind!r})", add_help=False)
        configure_serve_kind(parser, kind)
        argv = [str(a) for a in args]
        by_dest = {a.dest: a for a in parser._actions if a.option_strings}
        for key, value in options.items():
            action = by_dest.get(key)
            if action is None:
                known = ", ".join(sorted(d for d in by_dest if d != "help"))
                raise TypeError(f"serve({kind!r}) has no option {key!r}; it takes: {known}")
            flag = max(action.option_strings, key=len)
            if action.nargs == 0:
                if value:
                    argv.append(flag)
            elif value is not None:
                argv += [flag, str(value)]
        try:
            namespace = parser.parse_args(argv)
        except _ArgumentError as exc:
            raise ValueError(f"serve({kind!r}): {exc}") from None
        start = spec.load(spec.start)
        return (lambda reactor: start(reactor, namespace)), ", ".join(str(a) for a in args)

    def open(
        self, kind: str, start: Starter, *, name: str | None = None, detail: str = ""
    ) -> ServerHandle:
        """Run ``start(reactor)`` in the reactor thread and register what listens."""
        cell = self._cells.current()
        key, replaced = self._claim(cell, name)
        for old in replaced:
            self._stop(old)
        result = self._call(start, self._reactor, what=f"starting the {kind} server")
        with self._lock:
            shown = name or self._free_name(kind)
        try:
            listeners = _listeners(result, shown)
        except TypeError:
            self._call(_stop_all_of, _listeners_or_empty(result))
            raise
        handle = ServerHandle(self, key, shown, kind, listeners, detail, cell)
        with self._lock:
            self._handles[key] = handle
        return handle

    def _claim(self, cell: Any, name: str | None) -> tuple[str, list[ServerHandle]]:
        """The key for a new server, and the servers it replaces."""
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
                        if k.startswith(f"cell:{cell.key}#") and h._cell.msg_id != cell.msg_id
                    ]  # fmt: skip
                count += 1
                self._ordinal[cell.key] = (cell.msg_id, count)
                key = f"cell:{cell.key}#{count}"
            else:
                key = f"anonymous:{next(self._anonymous)}"
            old = self._handles.get(key)
            if old is not None and old not in replaced:
                replaced.append(old)
            for handle in replaced:
                self._handles.pop(handle._key, None)
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
        """The servers running now, oldest first."""
        with self._lock:
            return list(self._handles.values())

    def _stop(self, handle: ServerHandle) -> None:
        with self._lock:
            if handle._stopped.is_set():
                return
            handle._stopped.set()
            if self._handles.get(handle._key) is handle:
                del self._handles[handle._key]
        twisted = [li for li in handle._listeners if isinstance(li, _TwistedListener)]
        others = [li for li in handle._listeners if not isinstance(li, _TwistedListener)]
        if self._in_reactor_thread():
            _stop_all_of(handle._listeners)
            return
        if twisted:
            self._call(
                _stop_all_of, twisted, timeout=_STOP_TIMEOUT,
                what=f"the {handle.kind} server {handle.name!r} to stop",
            )  # fmt: skip
        for listener in others:
            listener.stop_here()

    def stop_cells(self, keys: list[str]) -> list[str]:
        """Stop the servers started (without a name) by the cells ``keys``; return names."""
        wanted = set(keys)
        with self._lock:
            doomed = [
                h for k, h in self._handles.items()
                if k.startswith("cell:") and h._cell is not None and h._cell.key in wanted
            ]  # fmt: skip
        for handle in doomed:
            self._stop(handle)
        return [h.name for h in doomed]

    def stop_all(self) -> list[str]:
        """Stop every server; return their names. Thread-safe."""
        handles = self.handles()
        for handle in handles:
            self._stop(handle)
        return [h.name for h in handles]

    def stop_all_in_reactor(self) -> Deferred[Any]:
        """Stop every server from the reactor thread (at shutdown); fires when all are closed."""
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        listeners = []
        for handle in handles:
            handle._stopped.set()
            listeners += handle._listeners
        return _stop_all_of(listeners)


def _stop_all_of(listeners: list[Any]) -> Deferred[Any]:
    """Stop every listener (reactor thread); fires when all have closed."""
    stopping = [maybeDeferred(listener.stop_in_reactor) for listener in listeners]
    return DeferredList(stopping, consumeErrors=True)


def _listeners_or_empty(result: Any) -> list[Any]:
    items = result if isinstance(result, list | tuple) else [result]
    return [_TwistedListener(i) for i in items if hasattr(i, "stopListening")]
