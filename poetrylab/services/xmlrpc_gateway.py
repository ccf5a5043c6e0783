"""The XML-RPC gateway: ``twisted.web.xmlrpc`` in front of the tagged line backend.

Notebook 13. ``POST /RPC2`` with the methods ``add(a, b)``, ``list_poems()``,
``poem(name)``, ``transform(name, text)`` and introspection (``system.listMethods``,
``system.methodHelp``, ``system.methodSignature``). The stdlib ``xmlrpc.client`` is the
reference client::

    >>> ServerProxy("http://127.0.0.1:PORT/RPC2").add(2, 3)
    5

:class:`PoetryGateway` is a ``twisted.web.xmlrpc.XMLRPC`` resource, written the way
notebook 13 teaches: each method is an ``xmlrpc_*`` method (``xmlrpc_add`` answers
``add``), taking the HTTP request first (``@withRequest``) so that it can stop waiting
when the client leaves; ``addIntrospection`` adds the ``system`` sub-handler, whose
``methodHelp`` and ``methodSignature`` read each method's docstring and ``signature``.
Every call is forwarded to the tagged backend (:mod:`poetrylab.services.tagged`) over
ONE cached, persistent connection, multiplexed by tag, and each XML-RPC response is
written the moment the backend's line with that call's tag arrives: the method returns
the Deferred from :meth:`TaggedClient.call <poetrylab.services.tagged.TaggedClient.call>`
and ``twisted.web.xmlrpc`` writes the answer when it fires. No polling, no ``callLater``.

Errors are Faults with a clear message; the codes follow HTTP's where one fits
(:class:`FaultCode`), and every Fault the gateway sends is logged in one line naming
the client. What it refuses, and how:

* a request body that declares a ``<!DOCTYPE`` (entities in it can expand a small body
  into hundreds of megabytes): a Fault, before any XML is expanded;
* a body over ``max_body`` bytes: the connection is dropped;
* a connection that has not sent a complete request within ``idle_timeout`` seconds
  (waiting between requests, or sending one byte at a time): closed;
* a client that leaves in the middle of a call: one quiet log line, and the backend
  call is cancelled.

``poetrylab serve xmlrpc`` (:mod:`poetrylab.kinds`) starts the gateway, with
its own backend unless ``--backend HOST:PORT`` names one already running.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import warnings
import xmlrpc.client as xmlrpclib
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, cast
from xml.parsers import expat
from xmlrpc.client import MAXINT, MININT, Fault

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from poetrylab._connections import BACKLOG, peer_of
from poetrylab.download import Address, parse_address
from poetrylab.services import tagged
from poetrylab.services.tagged import (
    BackendError,
    BackendLostError,
    BackendUnavailableError,
    TaggedClient,
)

with warnings.catch_warnings():
    # twisted.web.xmlrpc's own client (Proxy, which we do not use) subclasses the deprecated
    # HTTPClient, so importing the module warns; under `-W error` that would be fatal.
    warnings.filterwarnings("ignore", r".*HTTPClient was deprecated", DeprecationWarning)
    from twisted.web.xmlrpc import XMLRPC, NoSuchFunction, addIntrospection, withRequest

if TYPE_CHECKING:
    from poetrylab._typing import ListeningPort, TimeTCPReactor

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "FaultCode",
    "PoetryGateway",
    "gateway_site",
    "listen_xmlrpc",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
"""Largest XML-RPC request body accepted, in bytes."""

DEFAULT_CALL_TIMEOUT = 10.0
"""Seconds a call may wait for the backend before it becomes a Fault."""

DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds a connection may take to send its next complete request."""


class FaultCode(IntEnum):
    """The gateway's fault codes; Twisted's own are 8001 (no such method) and 8002
    (a body that is not XML-RPC, or XML the gateway refuses)."""

    BAD_ARGUMENTS = 400
    NOT_FOUND = 404
    TOO_LARGE = 413
    TRANSFORM_FAILED = 422
    BACKEND_ERROR = 500
    BACKEND_UNAVAILABLE = 502
    BACKEND_BUSY = 503
    TIMEOUT = 504
    NO_SUCH_METHOD = XMLRPC.NOT_FOUND
    REFUSED_XML = XMLRPC.FAILURE


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


def _number(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{what} must be a number (int or double), not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"{what} must be a finite number")


def _string(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a string, not {type(value).__name__}")


class _DoctypeFoundError(Exception):
    pass


class _PrologOverError(Exception):
    pass


def declares_doctype(body: bytes) -> bool:
    """True when the XML document ``body`` declares a ``<!DOCTYPE``.

    Reads only the prolog, with the same parser (expat) that ``xmlrpc.client`` uses, so
    it sees the document as the XML-RPC parser would, whatever its encoding: it stops at
    the DOCTYPE's first byte, before any entity is declared or expanded, or at the root
    element, after which no DOCTYPE may come. A body that is not XML returns False
    (``xmlrpc.client`` then refuses it with its own message).
    """

    def doctype(*_: object) -> None:
        raise _DoctypeFoundError

    def element(*_: object) -> None:
        raise _PrologOverError

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = element
    try:
        parser.Parse(body, True)
    except _DoctypeFoundError:
        return True
    except (_PrologOverError, expat.ExpatError):
        return False
    return False


def _checking_arguments(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an ``xmlrpc_*`` method so a wrong number of arguments is a clear Fault.

    Twisted would call the method anyway, and the TypeError would become a bare
    ``Fault 8002: error`` plus a traceback in the log. The wrapper keeps the method's
    docstring, ``signature`` and ``withRequest`` (``functools.wraps`` copies them), which
    is what introspection and Twisted read.
    """
    with_request = getattr(method, "withRequest", False)
    params = list(inspect.signature(method).parameters)[1 if with_request else 0 :]

    @functools.wraps(method)
    def call(*args: Any) -> Any:
        given = len(args) - (1 if with_request else 0)
        if given != len(params):
            plural = "s" if len(params) != 1 else ""
            raise _bad(
                f"{name}({', '.join(params)}) takes {len(params)} argument{plural}, not {given}"
            )
        return method(*args)

    return call


class PoetryGateway(XMLRPC):
    """The XML-RPC resource: four ``xmlrpc_*`` methods forwarded to ``backend``.

    ``backend`` is a :class:`~poetrylab.services.tagged.TaggedClient` (or anything with
    its ``call(verb, *args)`` returning a Deferred). Mount the gateway at ``/RPC2`` (see
    :func:`gateway_site`). Only ``xmlrpc_*`` methods and the ``system`` introspection
    can be called, which is Twisted's own rule; ``calls`` counts forwarded calls. Use it
    in the reactor thread.
    """

    def __init__(self, backend: TaggedClient) -> None:
        super().__init__(allowNone=False, useDateTime=False)
        self.backend = backend
        self.calls = 0
        addIntrospection(self)

    def render_POST(self, request: server.Request) -> Any:
        """Refuse a body that declares a DOCTYPE; hand everything else to Twisted."""
        assert request.content is not None
        request.content.seek(0, 0)
        if declares_doctype(request.content.read()):
            fault = Fault(
                int(FaultCode.REFUSED_XML),
                "the request declares a <!DOCTYPE>: refused (its entities could expand "
                "without bound); send plain XML-RPC",
            )
            request.setHeader(b"content-type", b"text/xml; charset=utf-8")
            return xmlrpclib.dumps(fault, methodresponse=True).encode("utf-8")
        return super().render_POST(request)

    def lookupProcedure(self, procedurePath: object) -> Callable[..., Any]:
        """Find the method the wire names, as Twisted does (``xmlrpc_NAME``, or a
        ``system.*`` introspection method), with a clearer Fault when there is none."""
        if not isinstance(procedurePath, str):
            raise NoSuchFunction(int(FaultCode.NO_SUCH_METHOD), "the request names no method")
        try:
            method: Callable[..., Any] = super().lookupProcedure(procedurePath)
        except NoSuchFunction:
            methods = ", ".join(self.listProcedures())
            raise NoSuchFunction(
                int(FaultCode.NO_SUCH_METHOD),
                f"no method {procedurePath[:60]!r}: the methods are {methods} and "
                "system.listMethods",
            ) from None
        if self.separator in procedurePath:
            return method  # introspection: Twisted's own methods
        return _checking_arguments(procedurePath, method)

    def listProcedures(self) -> list[str]:
        """The method names, without ``system.*`` (introspection adds those)."""
        return sorted(super().listProcedures())

    @withRequest
    def xmlrpc_add(self, request: server.Request, a: object, b: object) -> Deferred[Any]:
        """add(a, b): the sum of two numbers, computed by the backend."""
        _number(a, "a")
        _number(b, "b")
        return self._forward(request, "add", a, b).addCallback(_fits_xmlrpc)

    # What system.methodSignature answers: [return type, argument types...] per form.
    xmlrpc_add.signature = [["int", "int", "int"], ["double", "double", "double"]]

    @withRequest
    def xmlrpc_list_poems(self, request: server.Request) -> Deferred[Any]:
        """list_poems(): the names of the poems the backend serves."""
        return self._forward(request, "list_poems")

    xmlrpc_list_poems.signature = [["array"]]

    @withRequest
    def xmlrpc_poem(self, request: server.Request, name: object) -> Deferred[Any]:
        """poem(name): the text of the poem called name (see list_poems)."""
        _string(name, "name")
        return self._forward(request, "poem", name)

    xmlrpc_poem.signature = [["string", "string"]]

    @withRequest
    def xmlrpc_transform(
        self, request: server.Request, name: object, text: object
    ) -> Deferred[Any]:
        """transform(name, text): text transformed by the named transform (cummingsify,
        upside_down, spoonerize, scan, refrain)."""
        _string(name, "name")
        _string(text, "text")
        return self._forward(request, "transform", name, text)

    xmlrpc_transform.signature = [["string", "string", "string"]]

    def _forward(self, request: server.Request, verb: str, *args: object) -> Deferred[Any]:
        self.calls += 1
        d = self.backend.call(verb, *args)
        # The HTTP client went away: stop waiting for the backend's reply.
        waiting = [True]
        request.notifyFinish().addErrback(_client_left, request, verb, d, waiting)
        return d.addBoth(_answered, waiting).addErrback(_as_fault, verb)


def _answered(result: object, waiting: list[bool]) -> object:
    waiting[0] = False
    return result


def _client_left(
    failure: Failure, request: server.Request, verb: str, call: Deferred[Any], waiting: list[bool]
) -> None:
    # Not `call.called`: a call that has connected is "called" already, while it waits
    # for the reply on an inner Deferred. Cancelling reaches that one.
    if waiting[0]:
        log.info("%s: left during %s; the backend call is cancelled", _client(request), verb)
        call.cancel()


def _client(request: http.Request) -> str:
    try:
        address = request.getClientAddress()
        return f"{address.host}:{address.port}"
    except Exception:  # a request without a connection (a test's DummyRequest, say)
        return "?"


def _fits_xmlrpc(value: object) -> object:
    if isinstance(value, int) and not MININT <= value <= MAXINT:
        raise _bad(f"the sum {value} does not fit XML-RPC's 32-bit int: send doubles")
    return value


def _as_fault(failure: Failure, verb: str) -> object:
    problem = failure.value
    if isinstance(problem, Fault):
        return failure
    if isinstance(problem, CancelledError):
        # The client left (see _client_left): nobody will read this, and Twisted would
        # log any Failure here as CRITICAL with a traceback.
        return Fault(int(FaultCode.TIMEOUT), f"{verb}: cancelled, the client left")
    if isinstance(problem, BackendError):
        code = _FAULT_FOR_BACKEND_CODE.get(problem.code, FaultCode.BACKEND_ERROR)
        return Fault(int(code), f"{verb}: {problem.message}")
    if isinstance(problem, BackendLostError | BackendUnavailableError):
        return Fault(
            int(FaultCode.BACKEND_UNAVAILABLE), f"{verb}: {problem} (the next call reconnects)"
        )
    if isinstance(problem, DeferredTimeoutError):
        return Fault(int(FaultCode.TIMEOUT), f"{verb}: {problem}")
    log.error("%s failed: %s", verb, failure.getTraceback())
    return Fault(int(FaultCode.BACKEND_ERROR), f"{verb}: {type(problem).__name__} in the gateway")


class _GatewayRequest(server.Request):
    """A request that drops its connection when the body grows past ``max_body`` bytes
    (a WARNING), and logs the Fault it answers with, if any, in one line naming the client
    (at INFO: a Fault is an answer the protocol defines)."""

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

    def write(self, data: bytes) -> None:
        if b"<fault>" in data[:200]:
            try:
                xmlrpclib.loads(data)
            except Fault as fault:
                log.info(  # an answer the protocol defines: see tagged._send_error
                    "%s: Fault %s: %s", _client(self), fault.faultCode, fault.faultString[:200]
                )
            except Exception:  # not a response we can read back: nothing to log
                pass
        super().write(data)

    def _refuse(self, size: int) -> None:
        self._refused = True
        log.warning(
            "%s: request body of %d bytes is over %d; connection dropped",
            _client(self), size, self.max_body,
        )  # fmt: skip
        if self.channel is not None and self.channel.transport is not None:
            cast("Any", self.channel.transport).abortConnection()


class _GatewayChannel(http.HTTPChannel):
    """Twisted's HTTP connection, with a deadline instead of an idle timer.

    The timer (``timeOut``, the site's ``idle_timeout``) is Twisted's, with one change:
    it is *not* restarted by every byte that arrives, so it bounds the time to send a
    whole request, not the gap between bytes (a client sending one byte at a time is
    cut off too). Twisted stops it while a request is being answered and starts it
    again for the next one. A client that closes its side (FIN) is taken as gone, as
    Twisted (and nginx) do: HTTP clients do not half-close, and a call for nobody is
    cancelled.
    """

    def resetTimeout(self) -> None:
        """Do not restart the deadline on each chunk of data (see the class doc)."""

    def timeoutConnection(self) -> None:
        log.info(
            "%s: no complete request within %s s; connection closed",
            peer_of(self.transport), self.timeOut,
        )  # fmt: skip
        super().timeoutConnection()


class _GatewaySite(server.Site):
    """A Site that logs each request at DEBUG, not as an access-log line at INFO.

    When it stops listening, it closes its connection to the backend: a gateway that is
    gone holds nothing open, and a server stopped on purpose warns of no lost backend.
    """

    protocol = _GatewayChannel  # type: ignore[assignment]  # plain HTTP/1.1: no HTTP/2 wrapper

    def log(self, request: http.Request) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s",
                _client(request), request.method.decode("ascii", "replace"), request.code,
            )  # fmt: skip

    def stopFactory(self) -> None:
        backend = getattr(getattr(self, "gateway", None), "backend", None)
        disconnect = getattr(backend, "disconnect", None)
        if disconnect is not None:
            disconnect()
        super().stopFactory()


def gateway_site(
    reactor: TimeTCPReactor,
    gateway: PoetryGateway,
    max_body: int = DEFAULT_MAX_BODY,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> server.Site:
    """A Site serving ``gateway`` at ``/RPC2``; the gateway is ``site.gateway``.

    A body over ``max_body`` bytes drops its connection; a connection without a
    complete request for ``idle_timeout`` seconds is closed (see the module doc).
    """
    root = resource.Resource()
    root.putChild(b"RPC2", gateway)
    request_type = type("GatewayRequest", (_GatewayRequest,), {"max_body": max_body})
    site = _GatewaySite(root, requestFactory=request_type, reactor=reactor, timeout=idle_timeout)
    site.gateway = gateway  # type: ignore[attr-defined]  # for tests and notebook 13
    return site


def listen_xmlrpc(
    reactor: TimeTCPReactor,
    backend: Address | tuple[str, int] | str,
    port: int = 0,
    interface: str = "127.0.0.1",
    timeout: float | None = DEFAULT_CALL_TIMEOUT,
    max_body: int = DEFAULT_MAX_BODY,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> ListeningPort:
    """Listen as the XML-RPC gateway to the tagged backend at ``backend``; return the port.

    The gateway is ``port.factory.gateway``; its backend client is
    ``port.factory.gateway.backend``. Nothing connects until the first call. Call it in
    the reactor thread; raises ``CannotListenError`` when the port is taken.
    """
    client = TaggedClient(reactor, parse_address(backend), timeout=timeout)
    site = gateway_site(reactor, PoetryGateway(client), max_body, idle_timeout)
    listening = reactor.listenTCP(port, site, backlog=BACKLOG, interface=interface)
    return cast("ListeningPort", listening)
