"""The XML-RPC gateway: ``twisted.web.xmlrpc`` in front of the tagged line backend.

Notebook 13. ``POST /RPC2`` with the methods ``add(a, b)``, ``list_poems()``,
``poem(name)``, ``transform(name, text)`` and introspection (``system.listMethods``,
``system.methodHelp``, ``system.methodSignature``). The stdlib ``xmlrpc.client`` is the
reference client::

    >>> ServerProxy("http://127.0.0.1:PORT/RPC2").add(2, 3)
    5

Every call is forwarded to the tagged backend (:mod:`poetrylab.services.tagged`) over
ONE cached, persistent connection, multiplexed by tag, and each XML-RPC response is
written the moment the backend's line with that call's tag arrives: the method returns
the Deferred from :meth:`TaggedClient.call <poetrylab.services.tagged.TaggedClient.call>`
and ``twisted.web.xmlrpc`` writes the answer when it fires. No polling, no ``callLater``.

Errors are Faults with a clear message; the codes follow HTTP's where one fits
(:class:`FaultCode`). Only the four methods and ``system.*`` can be called: the method
name from the wire is looked up in an explicit table. A request body over
``max_body`` bytes drops the connection.

``poetrylab serve xmlrpc --backend HOST:PORT`` forwards to a backend already running.
Without ``--backend`` it starts a tagged backend in the same process, on a free port of
the same interface, and prints two ``listening on`` lines: the XML-RPC one first (so
``--port`` and the first line always mean the gateway), then the backend's.
"""

from __future__ import annotations

import argparse
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any
from xmlrpc.client import MAXINT, MININT, Fault

from twisted.internet import defer, interfaces
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.web import resource, server

from poetrylab.download import Address, parse_address
from poetrylab.services import tagged
from poetrylab.services.tagged import (
    BackendError,
    BackendLostError,
    BackendUnavailableError,
    TaggedClient,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "FaultCode",
    "PoetryGateway",
    "gateway_site",
    "listen_xmlrpc",
]

with warnings.catch_warnings():
    # twisted.web.xmlrpc's own client (Proxy, which we do not use) subclasses the deprecated
    # HTTPClient, so importing the module warns; under `-W error` that would be fatal.
    warnings.filterwarnings("ignore", r".*HTTPClient was deprecated", DeprecationWarning)
    from twisted.web.xmlrpc import XMLRPC, NoSuchFunction, addIntrospection

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest XML-RPC request body accepted, in bytes."""

DEFAULT_CALL_TIMEOUT = 10.0
"""Seconds a call may wait for the backend before it becomes a Fault."""


class FaultCode(IntEnum):
    """The gateway's fault codes (Twisted's own: 8001 no such method, 8002 bad XML)."""

    BAD_ARGUMENTS = 400
    NOT_FOUND = 404
    TOO_LARGE = 413
    TRANSFORM_FAILED = 422
    BACKEND_ERROR = 500
    BACKEND_UNAVAILABLE = 502
    BACKEND_BUSY = 503
    TIMEOUT = 504


_FAULT_FOR_BACKEND_CODE = {
    tagged.BAD_REQUEST: FaultCode.BAD_ARGUMENTS,
    tagged.UNKNOWN_VERB: FaultCode.BAD_ARGUMENTS,
    tagged.BAD_ARGUMENTS: FaultCode.BAD_ARGUMENTS,
    tagged.NOT_FOUND: FaultCode.NOT_FOUND,
    tagged.TOO_LONG: FaultCode.TOO_LARGE,
    tagged.TRANSFORM_FAILED: FaultCode.TRANSFORM_FAILED,
    tagged.TIMEOUT: FaultCode.TIMEOUT,
    tagged.BUSY: FaultCode.BACKEND_BUSY,
}


def _bad(message: str) -> Fault:
    return Fault(int(FaultCode.BAD_ARGUMENTS), message)


def _number(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{what} must be a number (int or double), not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"{what} must be a finite number")


def _string(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a string, not {type(value).__name__}")


@dataclass
class _Procedure:
    """One XML-RPC method: checks its argument count, forwards, cancels if the caller leaves.

    ``help`` and ``signature`` are what ``system.methodHelp`` / ``methodSignature`` report.
    """

    name: str
    params: tuple[str, ...]
    function: Callable[..., Deferred[Any]]
    help: str
    signature: list[list[str]] = field(default_factory=list)
    withRequest: bool = True  # twisted.web.xmlrpc passes the HTTP request first

    def __call__(self, request: Any, *args: Any) -> Deferred[Any]:
        if len(args) != len(self.params):
            raise _bad(
                f"{self.name}({', '.join(self.params)}) takes {len(self.params)} "
                f"argument{'s' if len(self.params) != 1 else ''}, not {len(args)}"
            )
        d = self.function(*args)
        # The HTTP client went away: stop waiting for the backend's reply.
        request.notifyFinish().addErrback(lambda _: d.cancel())
        return d


class PoetryGateway(XMLRPC):
    """The XML-RPC resource: four methods forwarded to ``backend`` (a TaggedClient).

    Mount it at ``/RPC2`` (see :func:`gateway_site`). Use it in the reactor thread.
    """

    def __init__(self, backend: TaggedClient) -> None:
        super().__init__(allowNone=False, useDateTime=False)
        self.backend = backend
        self.calls = 0
        self.procedures: dict[str, _Procedure] = {
            p.name: p
            for p in [
                _Procedure("add", ("a", "b"), self.add,
                           "add(a, b): the sum of two numbers, computed by the backend.",
                           [["int", "int", "int"], ["double", "double", "double"]]),
                _Procedure("list_poems", (), self.list_poems,
                           "list_poems(): the names of the poems the backend serves.",
                           [["array"]]),
                _Procedure("poem", ("name",), self.poem,
                           "poem(name): the text of the poem called name (see list_poems).",
                           [["string", "string"]]),
                _Procedure("transform", ("name", "text"), self.transform,
                           "transform(name, text): text transformed by the named transform "
                           "(cummingsify, upside_down, spoonerize, scan, refrain).",
                           [["string", "string", "string"]]),
            ]
        }  # fmt: skip
        addIntrospection(self)

    def lookupProcedure(self, procedurePath: Any) -> Any:
        """Find a method by the name from the wire: only in the table, or ``system.*``."""
        if not isinstance(procedurePath, str):
            raise NoSuchFunction(self.NOT_FOUND, "the request names no method")
        if self.separator in procedurePath:
            return super().lookupProcedure(procedurePath)  # system.* introspection
        try:
            return self.procedures[procedurePath]
        except KeyError:
            raise NoSuchFunction(
                self.NOT_FOUND,
                f"no method {procedurePath[:60]!r}: the methods are "
                f"{', '.join(self.procedures)} and system.listMethods",
            ) from None

    def listProcedures(self) -> list[str]:
        return list(self.procedures)

    def add(self, a: Any, b: Any) -> Deferred[Any]:
        """Forward ``add``; the sum must fit XML-RPC's 32-bit int if it is an int."""
        _number(a, "a")
        _number(b, "b")
        return self._forward("add", a, b).addCallback(_fits_xmlrpc)

    def list_poems(self) -> Deferred[Any]:
        """Forward ``list_poems``."""
        return self._forward("list_poems")

    def poem(self, name: Any) -> Deferred[Any]:
        """Forward ``poem``."""
        _string(name, "name")
        return self._forward("poem", name)

    def transform(self, name: Any, text: Any) -> Deferred[Any]:
        """Forward ``transform``."""
        _string(name, "name")
        _string(text, "text")
        return self._forward("transform", name, text)

    def _forward(self, verb: str, *args: Any) -> Deferred[Any]:
        self.calls += 1
        return self.backend.call(verb, *args).addErrback(_as_fault, verb)


def _fits_xmlrpc(value: Any) -> Any:
    if isinstance(value, int) and not MININT <= value <= MAXINT:
        raise _bad(f"the sum {value} does not fit XML-RPC's 32-bit int: send doubles")
    return value


def _as_fault(failure: Failure, verb: str) -> Any:
    if failure.check(Fault, CancelledError):
        return failure
    if failure.check(BackendError):
        error = failure.value
        code = _FAULT_FOR_BACKEND_CODE.get(error.code, FaultCode.BACKEND_ERROR)
        return Fault(int(code), f"{verb}: {error.message}")
    if failure.check(BackendLostError, BackendUnavailableError):
        return Fault(
            int(FaultCode.BACKEND_UNAVAILABLE),
            f"{verb}: {failure.value} (the next call reconnects)",
        )
    if failure.check(defer.TimeoutError):
        return Fault(int(FaultCode.TIMEOUT), f"{verb}: {failure.value}")
    log.error("%s failed: %s", verb, failure.getTraceback())
    return Fault(
        int(FaultCode.BACKEND_ERROR), f"{verb}: {type(failure.value).__name__} in the gateway"
    )


class _LimitedRequest(server.Request):
    """A request that drops its connection when the body grows past ``max_body``."""

    max_body = DEFAULT_MAX_BODY
    _body_bytes = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self._refuse(length)
        super().gotLength(0 if self._refused else length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_bytes += len(data)
        if self._body_bytes > self.max_body:
            self._refuse(self._body_bytes)
            return
        super().handleContentChunk(data)

    def _refuse(self, size: int) -> None:
        self._refused = True
        peer = self.getClientAddress()
        log.warning(
            "%s: request body of %d bytes is over %d; connection dropped",
            getattr(peer, "host", "?"),
            size,
            self.max_body,
        )
        self.channel.transport.abortConnection()


class _QuietSite(server.Site):
    """A Site that logs each request at DEBUG, not as an access-log line at INFO."""

    def log(self, request: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s",
                request.getClientAddress().host,
                request.method.decode("ascii", "replace"),
                request.code,
            )


def gateway_site(
    reactor: Any, gateway: PoetryGateway, max_body: int = DEFAULT_MAX_BODY
) -> server.Site:
    """A Site serving ``gateway`` at ``/RPC2``; the gateway is ``site.gateway``."""
    root = resource.Resource()
    root.putChild(b"RPC2", gateway)
    request_type = type("LimitedRequest", (_LimitedRequest,), {"max_body": max_body})
    site = _QuietSite(root, requestFactory=request_type, reactor=reactor)
    site.gateway = gateway  # type: ignore[attr-defined]
    return site


def listen_xmlrpc(
    reactor: Any,
    backend: Address | tuple[str, int] | str,
    port: int = 0,
    interface: str = "127.0.0.1",
    timeout: float | None = DEFAULT_CALL_TIMEOUT,
    max_body: int = DEFAULT_MAX_BODY,
) -> interfaces.IListeningPort:
    """Listen as the XML-RPC gateway to the tagged backend at ``backend``; return the port.

    The gateway is ``port.factory.gateway``; its backend client is
    ``port.factory.gateway.backend``. Nothing connects until the first call. Call it in
    the reactor thread.
    """
    client = TaggedClient(reactor, parse_address(backend), timeout=timeout)
    site = gateway_site(reactor, PoetryGateway(client), max_body)
    return reactor.listenTCP(port, site, interface=interface, backlog=1024)


def configure_serve_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``poetrylab serve xmlrpc``."""
    parser.add_argument(
        "--backend", metavar="HOST:PORT",
        help="the tagged backend to forward to; without it, one is started in this process "
             "and both listeners are printed, the XML-RPC one first",
    )  # fmt: skip
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_CALL_TIMEOUT,
        help=f"seconds a call may take (default {DEFAULT_CALL_TIMEOUT:g})",
    )
    tagged.add_backend_options(parser, prefix="backend-")


def start_serving(reactor: Any, args: argparse.Namespace) -> list[Any]:
    """Start the gateway (and, without ``--backend``, a backend); return the ports,
    XML-RPC first."""
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be greater than 0, not {args.timeout}")
    if args.backend:
        return [
            listen_xmlrpc(reactor, parse_address(args.backend), args.port, args.iface, args.timeout)
        ]
    backend = tagged.PoetryBackend(
        reactor, delay=args.backend_delay, jitter=args.backend_jitter, seed=args.backend_seed
    )
    backend_port = tagged.listen_tagged(reactor, 0, args.iface, backend=backend)
    address = backend_port.getHost()
    try:
        gateway_port = listen_xmlrpc(
            reactor, (address.host, address.port), args.port, args.iface, args.timeout
        )
    except BaseException:
        backend_port.stopListening()
        raise
    return [gateway_port, backend_port]
