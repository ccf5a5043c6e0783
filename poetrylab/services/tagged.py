"""The tagged line backend, and the client that multiplexes many requests on one connection.

Notebook 13. Each request line carries a tag; the reply line carries the same tag, so a
client can have many requests in flight on one connection and match the replies, which
may come back in any order (``jitter`` makes that visible). Wire format, one line each
way, ending in ``\\n`` (``\\r\\n`` accepted), so netcat is a valid client::

    request   TAG VERB [JSON-ARRAY]      7 add [1, 2]          9 poem ["tyger"]
    reply     TAG ok JSON                7 ok 3
              TAG error JSON-OBJECT      9 error {"code": "not-found", "message": "..."}

A TAG is 1-64 letters, digits or ``_.:-``. JSON is written ASCII-only, so a poem's
newlines travel as the two characters ``\\n`` and a payload never breaks a line. Verbs:
``add a b``, ``list_poems``, ``poem NAME``, ``transform NAME TEXT``. A bad line whose tag
can be read gets a tagged error reply; one whose tag cannot be read is logged and
dropped; a line longer than ``max_line`` gets a tagged error if it can and then the
connection is closed, since the rest of such a line cannot be told from a new one.

* :class:`PoetryBackend` — the service: the verbs, by an explicit table.
* :class:`TaggedLineProtocol` / :class:`TaggedBackendFactory` — the server side.
* :class:`TaggedClientProtocol` — ``request(verb, *args)`` returns a Deferred that fires
  the moment the line with its tag arrives.
* :class:`TaggedClient` — one cached, persistent connection: concurrent first calls
  share one connection attempt, a lost connection fails the calls in flight and the
  next call reconnects, every call has a timeout.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import defer, interfaces
from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred, succeed
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.internet.task import deferLater
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from poetrylab._connections import BACKLOG, ClockedTimeoutMixin, peer_of
from poetrylab.clients._common import client_endpoint
from poetrylab.download import Address, parse_address
from poetrylab.services._sharing import SharedOutcome
from poetrylab.services.transform import (
    TransformError,
    TransformService,
    UnknownTransformError,
    default_registry,
)

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint

    from poetrylab._typing import ListeningPort, ReactorTime, TCPTransport, TimeTCPReactor

__all__ = [
    "BackendError",
    "BackendLostError",
    "BackendUnavailableError",
    "BadLineError",
    "PoetryBackend",
    "TaggedBackendFactory",
    "TaggedClient",
    "TaggedClientProtocol",
    "TaggedLineProtocol",
    "format_reply",
    "format_request",
    "listen_tagged",
    "parse_reply",
    "parse_request",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE = 256 * 1024
"""Longest request line the backend accepts (and the client will send), in bytes."""

DEFAULT_MAX_REPLY = 16 * 1024 * 1024
"""Longest reply line the client accepts."""

DEFAULT_MAX_IN_FLIGHT = 1000
"""Most requests one connection may have in flight before it gets ``busy`` errors."""

DEFAULT_IDLE_TIMEOUT = 300.0
"""Seconds a backend connection may stay open with nothing in flight and no traffic."""

DEFAULT_CALL_TIMEOUT = 10.0
"""Seconds :meth:`TaggedClient.call` waits for a reply."""

DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds :class:`TaggedClient` waits for its connection."""

# Error codes carried in ``TAG error {"code": ..., "message": ...}``.
BAD_REQUEST = "bad-request"
UNKNOWN_VERB = "unknown-verb"
BAD_ARGUMENTS = "bad-arguments"
NOT_FOUND = "not-found"
TRANSFORM_FAILED = "transform-failed"
TIMEOUT = "timeout"
BUSY = "busy"
TOO_LONG = "too-long"
INTERNAL = "internal"

_TAG = re.compile(rb"[A-Za-z0-9_.:\-]{1,64}")
_VERB = re.compile(rb"[a-z][a-z_]{0,31}")


class BackendError(Exception):
    """The backend answered a request with an error: ``code`` (see the module) and text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"BackendError({self.code!r}, {self.message!r})"


class BadLineError(ValueError):
    """A line that does not parse. ``tag`` is the tag when it could be read, else None."""

    def __init__(self, message: str, tag: str | None = None, code: str = BAD_REQUEST) -> None:
        super().__init__(message)
        self.tag = tag
        self.code = code


class BackendUnavailableError(ConnectionError):
    """The client could not connect to the backend."""


class BackendLostError(ConnectionError):
    """The connection to the backend was lost while a request waited for its reply."""


# ---------------------------------------------------------------------------------------
# Lines on the wire: pure functions, easy to test.


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode(
        "ascii"
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number here")


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON: {str(exc)[:80]}") from None


def readable_tag(line: bytes) -> str | None:
    """The line's tag if its first word is a well-formed tag, else None."""
    first = line.split(b" ", 1)[0]
    return first.decode("ascii") if _TAG.fullmatch(first) else None


def format_request(tag: str, verb: str, args: tuple[Any, ...] | list[Any] = ()) -> bytes:
    """One request line (without the delimiter). Raises ValueError for a bad tag or verb,
    or arguments JSON cannot carry."""
    if not _TAG.fullmatch(tag.encode("ascii", "replace")) or not _VERB.fullmatch(
        verb.encode("ascii", "replace")
    ):
        raise ValueError(f"bad tag {tag!r} or verb {verb!r}")
    try:
        payload = _json(list(args))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"arguments of {verb} cannot be sent: {exc}") from None
    return b"%s %s %s" % (tag.encode("ascii"), verb.encode("ascii"), payload)


def parse_request(line: bytes) -> tuple[str, str, list[Any]]:
    """Split a request line into ``(tag, verb, args)``.

    Raises :class:`BadLineError`, with ``tag`` set when the tag could be read.
    """
    parts = line.split(b" ", 2)
    tag = readable_tag(line)
    if tag is None:
        raise BadLineError("the line does not start with a tag")
    if len(parts) < 2 or not _VERB.fullmatch(parts[1]):
        raise BadLineError("expected: TAG VERB [JSON-ARRAY]", tag)
    verb = parts[1].decode("ascii")
    if len(parts) == 2 or not parts[2].strip():
        return tag, verb, []
    try:
        args = _load_json(parts[2])
    except ValueError as exc:
        raise BadLineError(f"arguments are {exc}", tag, BAD_ARGUMENTS) from None
    if not isinstance(args, list):
        raise BadLineError("arguments must be a JSON array", tag, BAD_ARGUMENTS)
    return tag, verb, args


def format_reply(tag: str, result: Any = None, error: BackendError | None = None) -> bytes:
    """One reply line: ``TAG ok JSON`` or, given ``error``, ``TAG error {code, message}``."""
    if error is not None:
        return b"%s error %s" % (
            tag.encode("ascii"),
            _json({"code": error.code, "message": error.message}),
        )
    return b"%s ok %s" % (tag.encode("ascii"), _json(result))


def parse_reply(line: bytes) -> tuple[str, Any, BackendError | None]:
    """Split a reply line into ``(tag, result, error)``; ``error`` is None for ``ok``.

    Raises :class:`BadLineError` when the line is not a reply.
    """
    parts = line.split(b" ", 2)
    tag = readable_tag(line)
    if tag is None or len(parts) != 3 or parts[1] not in (b"ok", b"error"):
        raise BadLineError("expected: TAG ok|error JSON", tag)
    try:
        payload = _load_json(parts[2])
    except ValueError as exc:
        raise BadLineError(f"payload is {exc}", tag) from None
    if parts[1] == b"ok":
        return tag, payload, None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return tag, None, BackendError(str(payload.get("code", INTERNAL)), payload["message"])
    return tag, None, BackendError(INTERNAL, f"unreadable error payload: {str(payload)[:80]}")


def _no_delay(transport: object) -> None:
    # Many small lines in flight on one connection: without TCP_NODELAY, Nagle's algorithm
    # holds each line back until the previous one is acknowledged (up to ~40 ms).
    if interfaces.ITCPTransport.providedBy(transport):
        transport.setTcpNoDelay(True)


# ---------------------------------------------------------------------------------------
# The backend: the service, then the protocol.


def _number(value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BackendError(BAD_ARGUMENTS, f"{what} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BackendError(BAD_ARGUMENTS, f"{what} must be a finite number")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BackendError(BAD_ARGUMENTS, f"{what} must be a string, not {type(value).__name__}")
    return value


class PoetryBackend:
    """What the tagged backend can do, by verb: an explicit table, nothing else.

    ``poems`` maps names to texts (default: the whole corpus, read once; a name is never
    taken as a path). ``transforms`` runs the ``transform`` verb (default: the built-in
    transforms). Each request waits ``delay`` plus a random ``0..jitter`` seconds (from
    ``random.Random(seed)``) before it is answered, to stand in for real work and to
    make replies overtake each other.

    :meth:`handle` returns a Deferred; it fails with :class:`BackendError` for anything
    the caller got wrong or the work could not do. Call it in the reactor thread.
    """

    def __init__(
        self,
        reactor: ReactorTime,
        poems: Mapping[str, str] | None = None,
        transforms: TransformService | None = None,
        delay: float = 0.0,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        for what, value in (("delay", delay), ("jitter", jitter)):
            if not value >= 0 or math.isinf(value):
                raise ValueError(f"{what} must be a finite number of seconds >= 0, not {value}")
        if poems is None:
            from poetrylab.corpus import list_poems, load_poem

            poems = {name: load_poem(name).text for name in list_poems()}
        self.reactor = reactor
        self.poems = dict(poems)
        self.transforms = transforms or TransformService(reactor, default_registry(seed))
        self.delay = delay
        self.jitter = jitter
        self._rng = random.Random(seed)
        self.verbs: dict[str, tuple[Callable[..., Any], int]] = {
            "add": (self.add, 2),
            "list_poems": (self.list_poems, 0),
            "poem": (self.poem, 1),
            "transform": (self.transform, 2),
        }
        self.handled = 0

    def handle(self, verb: str, args: list[Any]) -> Deferred[Any]:
        """Run ``verb`` with ``args`` after the configured delay; return a Deferred."""
        entry = self.verbs.get(verb)
        if entry is None:
            return fail(
                BackendError(UNKNOWN_VERB, f"no verb {verb!r}: use one of {', '.join(self.verbs)}")
            )
        function, arity = entry
        if len(args) != arity:
            return fail(
                BackendError(BAD_ARGUMENTS, f"{verb} takes {arity} argument(s), not {len(args)}")
            )
        self.handled += 1
        wait = self.delay + (self._rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if wait > 0:
            return deferLater(cast("IReactorTime", self.reactor), wait, function, *args)
        return maybeDeferred(function, *args)

    def add(self, a: Any, b: Any) -> float | int:
        """The sum of two numbers."""
        total = _number(a, "a") + _number(b, "b")
        if isinstance(total, float) and not math.isfinite(total):
            raise BackendError(BAD_ARGUMENTS, "the sum is too large")
        return total

    def list_poems(self) -> list[str]:
        """The names of the poems, sorted."""
        return sorted(self.poems)

    def poem(self, name: Any) -> str:
        """The text of the poem called ``name``."""
        name = _text(name, "the poem name")
        try:
            return self.poems[name]
        except KeyError:
            raise BackendError(NOT_FOUND, f"no poem called {name[:60]!r}; see list_poems") from None

    def transform(self, name: Any, text: Any) -> Deferred[str]:
        """``text`` transformed by the transform called ``name``."""
        d = self.transforms.transform(_text(name, "the transform name"), _text(text, "the text"))
        return d.addErrback(_transform_error, name)


def _transform_error(failure: Failure, name: str) -> Failure:
    problem = failure.value
    if isinstance(problem, CancelledError | BackendError):
        return failure
    if isinstance(problem, UnknownTransformError):
        raise BackendError(NOT_FOUND, f"no transform called {name[:60]!r}")
    if isinstance(problem, defer.TimeoutError):
        raise BackendError(TIMEOUT, f"transform {name!r} took too long")
    if isinstance(problem, TransformError):
        raise BackendError(TRANSFORM_FAILED, f"transform {name!r} failed: {problem}")
    log.error("transform %r raised %s: %s", name, type(problem).__name__, problem)
    raise BackendError(TRANSFORM_FAILED, f"transform {name!r} raised {type(problem).__name__}")


@implementer(IHalfCloseableProtocol)
class TaggedLineProtocol(LineReceiver, ClockedTimeoutMixin):
    """Serve tagged requests on one connection, many at a time, replying as each finishes.

    When the client hangs up, the requests still in flight are cancelled. When it only
    half-closes (``nc -N``: its last request, then end of input), every request in
    flight is still answered, and then the connection is closed.

    Flow control: the protocol is a producer for its own transport. When the client
    does not read its replies and the transport's buffer fills up, the transport calls
    ``pauseProducing`` and the protocol stops reading requests (``LineReceiver`` pauses
    the transport's reading too) until the buffer has drained; so a client that sends
    thousands of requests and reads nothing costs a buffer, not a reply per request.
    A connection with nothing in flight, and nothing received or taken for
    ``factory.idle_timeout`` seconds, is closed. Every error reply, and every line that
    gets none, is logged in one line naming the client.
    """

    delimiter = b"\n"
    factory: TaggedBackendFactory
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def __init__(self) -> None:
        self._in_flight: set[Deferred[Any]] = set()
        self._open = False
        self._input_closed = False

    def connectionMade(self) -> None:
        self.MAX_LENGTH = self.factory.max_line
        self.clock = self.factory.backend.reactor
        self._open = True
        _no_delay(self.transport)
        self.factory.connections_made += 1
        self.factory.open_connections += 1
        self.transport.registerProducer(self, True)
        self.setTimeout(self.factory.idle_timeout)
        log.debug("%s: connected", peer_of(self.transport))

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        super().dataReceived(data)  # type: ignore[no-untyped-call]  # Twisted: unannotated

    def lineReceived(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            return
        try:
            tag, verb, args = parse_request(line)
        except BadLineError as exc:
            if exc.tag is None:
                log.warning(
                    "%s: dropped a line with no readable tag: %r",
                    peer_of(self.transport), line[:60],
                )  # fmt: skip
            else:
                self._send_error(exc.tag, BackendError(exc.code, str(exc)))
            return
        if len(self._in_flight) >= self.factory.max_in_flight:
            message = f"{len(self._in_flight)} requests already in flight on this connection"
            self._send_error(tag, BackendError(BUSY, message))
            return
        d = self.factory.backend.handle(verb, args)
        self._in_flight.add(d)
        d.addBoth(self._finished, d)
        d.addCallbacks(self._reply, self._reply_error, callbackArgs=(tag,), errbackArgs=(tag,))

    def _finished(self, result: object, d: Deferred[Any]) -> object:
        self._in_flight.discard(d)
        return result

    def _reply(self, result: object, tag: str) -> None:
        try:
            line = format_reply(tag, result)
        except (TypeError, ValueError) as exc:
            self._send_error(tag, BackendError(INTERNAL, f"result cannot be sent: {exc}"))
        else:
            self._send(line)
        self._close_if_done()

    def _reply_error(self, failure: Failure, tag: str) -> None:
        if isinstance(failure.value, CancelledError):
            return
        if isinstance(failure.value, BackendError):
            error = failure.value
        else:
            log.error("tag %s failed: %s", tag, failure.getTraceback())
            error = BackendError(INTERNAL, f"{type(failure.value).__name__} in the backend")
        self._send_error(tag, error)
        self._close_if_done()

    def _send_error(self, tag: str, error: BackendError) -> None:
        # INFO: an error reply is an answer the protocol defines (like an HTTP 404 in an
        # access log), not trouble for the server. WARNING is for what it had to cut short.
        log.info("%s: tag %s: %s: %s", peer_of(self.transport), tag, error.code, error.message)
        self._send(format_reply(tag, error=error))

    def _send(self, line: bytes) -> None:
        if self._open:
            self.resetTimeout()  # a reply is traffic too: idle counts from the last one
            self.sendLine(line)  # type: ignore[no-untyped-call]  # Twisted: unannotated

    def lineLengthExceeded(self, line: bytes) -> None:
        tag = readable_tag(line)
        message = f"line longer than {self.MAX_LENGTH} bytes; closing the connection"
        if tag is not None:
            self._send_error(tag, BackendError(TOO_LONG, message))
        else:
            log.warning("%s: a %s", peer_of(self.transport), message)
        self.transport.loseConnection()

    # Flow control (IPushProducer, through LineReceiver) and the idle timer.

    def resumeProducing(self) -> None:
        self.resetTimeout()
        super().resumeProducing()  # type: ignore[no-untyped-call]  # Twisted: unannotated

    def timeoutConnection(self) -> None:
        if self._in_flight:  # not idle: the backend is working for this client
            self.setTimeout(self.timeOut)  # (the timer has fired: resetTimeout is too late)
            return
        log.info("%s: idle for %s s; connection closed", peer_of(self.transport), self.timeOut)
        self.transport.abortConnection()

    # IHalfCloseableProtocol: the client has sent its last request.

    def readConnectionLost(self) -> None:
        self._input_closed = True
        rest = self.clearLineBuffer()  # type: ignore[no-untyped-call]  # Twisted: unannotated
        for line in rest.split(self.delimiter):  # the last line may lack its newline
            if len(line) > self.MAX_LENGTH:
                self.lineLengthExceeded(line)
                return
            self.lineReceived(line)
        self._close_if_done()

    def writeConnectionLost(self) -> None:
        self.transport.abortConnection()

    def _close_if_done(self) -> None:
        if self._input_closed and not self._in_flight and self._open:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self._open = False
        self.factory.open_connections -= 1
        in_flight, self._in_flight = list(self._in_flight), set()
        if in_flight:
            log.info(
                "%s: left with %d requests in flight; cancelled",
                peer_of(self.transport), len(in_flight),
            )  # fmt: skip
        for d in in_flight:
            d.cancel()


class TaggedBackendFactory(ServerFactory[TaggedLineProtocol]):
    """Build a :class:`TaggedLineProtocol` per connection, all sharing one ``backend``.

    ``max_line`` bounds a request line, ``max_in_flight`` the requests one connection
    may have in flight (more get ``busy`` errors), ``idle_timeout`` how long a
    connection may do nothing. ``connections_made`` counts connections ever made,
    ``open_connections`` the ones open now.
    """

    protocol = TaggedLineProtocol
    noisy = False

    def __init__(
        self,
        backend: PoetryBackend,
        max_line: int = DEFAULT_MAX_LINE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.backend = backend
        self.max_line = max_line
        self.max_in_flight = max_in_flight
        self.idle_timeout = idle_timeout
        self.connections_made = 0
        self.open_connections = 0


def listen_tagged(
    reactor: TimeTCPReactor,
    port: int = 0,
    interface: str = "127.0.0.1",
    *,
    backend: PoetryBackend | None = None,
    delay: float = 0.0,
    jitter: float = 0.0,
    seed: int = 0,
    max_line: int = DEFAULT_MAX_LINE,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
) -> ListeningPort:
    """Listen as the tagged line backend; return the listening port.

    Pass a ``backend``, or ``delay``/``jitter``/``seed`` to build one over the corpus.
    The factory (``port.factory``) counts connections. Call it in the reactor thread;
    raises ``CannotListenError`` when the port is taken.
    """
    if backend is None:
        backend = PoetryBackend(reactor, delay=delay, jitter=jitter, seed=seed)
    factory = TaggedBackendFactory(backend, max_line=max_line, idle_timeout=idle_timeout)
    listening = reactor.listenTCP(port, factory, backlog=BACKLOG, interface=interface)
    return cast("ListeningPort", listening)


# ---------------------------------------------------------------------------------------
# The client side: one connection, many requests in flight.


class TaggedClientProtocol(LineReceiver):
    """Send tagged requests; fire each one's Deferred when the line with its tag arrives.

    ``request(verb, *args)`` returns a Deferred: it fires with the reply's value, fails
    with :class:`BackendError` for an error reply, or with :class:`BackendLostError`
    when the connection goes first. Cancelling it forgets the tag (a late reply is then
    ignored). ``lost`` fires (with None) when the connection has gone. Not thread-safe.
    """

    delimiter = b"\n"
    MAX_LENGTH = DEFAULT_MAX_REPLY
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def __init__(self, max_request: int = DEFAULT_MAX_LINE) -> None:
        self.max_request = max_request
        self.lost: Deferred[None] = Deferred()
        self._pending: dict[str, Deferred[Any]] = {}
        self._next_tag = 0
        self._open = False

    @property
    def is_open(self) -> bool:
        """True while the connection can carry requests."""
        return self._open and not self.transport.disconnecting

    @property
    def in_flight(self) -> int:
        """How many requests wait for their reply."""
        return len(self._pending)

    def connectionMade(self) -> None:
        self._open = True
        _no_delay(self.transport)

    def request(self, verb: str, *args: Any) -> Deferred[Any]:
        """Send ``TAG verb [args]``; return a Deferred for the reply (see the class doc)."""
        if not self.is_open:
            return fail(BackendLostError("the connection to the backend is closed"))
        tag = str(self._next_tag)
        self._next_tag += 1
        try:
            line = format_request(tag, verb, args)
        except ValueError as exc:
            return fail(BackendError(BAD_ARGUMENTS, str(exc)))
        if len(line) > self.max_request:
            return fail(
                BackendError(
                    TOO_LONG, f"the request is {len(line)} bytes; the limit is {self.max_request}"
                )
            )

        def forget(_: Deferred[Any]) -> None:
            self._pending.pop(tag, None)

        d: Deferred[Any] = Deferred(forget)
        self._pending[tag] = d
        self.sendLine(line)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        return d

    def lineReceived(self, line: bytes) -> None:
        try:
            tag, result, error = parse_reply(line.rstrip(b"\r"))
        except BadLineError as exc:
            log.warning("unreadable reply from the backend (%s): %r", exc, line[:80])
            return
        d = self._pending.pop(tag, None)
        if d is None:
            log.debug("reply for tag %s, which nobody waits for any more", tag)
        elif error is not None:
            d.errback(error)
        else:
            d.callback(result)

    def lineLengthExceeded(self, line: bytes) -> None:
        log.error("the backend sent a line over %d bytes; closing the connection", self.MAX_LENGTH)
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._open = False
        pending, self._pending = self._pending, {}
        for tag, d in pending.items():
            d.errback(
                BackendLostError(
                    f"lost the connection to the backend before the reply to tag {tag} "
                    f"({reason.getErrorMessage()})"
                )
            )
        self.lost.callback(None)


class TaggedClient:
    """Calls to a tagged backend over ONE cached, persistent connection.

    :meth:`call` connects on first use; calls that arrive while connecting wait for that
    same attempt; later calls reuse the open connection, each with its own tag. When the
    connection is lost, the calls in flight fail with :class:`BackendLostError` and the
    next call connects again. A failed connection attempt fails its waiting calls with
    :class:`BackendUnavailableError`. ``connects`` counts connection attempts.
    Not thread-safe: use it in the reactor thread.
    """

    def __init__(
        self,
        reactor: TimeTCPReactor,
        address: Address | tuple[str, int] | str,
        timeout: float | None = DEFAULT_CALL_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        endpoint: IStreamClientEndpoint | None = None,
    ) -> None:
        self.reactor = reactor
        self.address = parse_address(address)
        self.timeout = timeout
        self._endpoint = endpoint or client_endpoint(reactor, self.address, connect_timeout)
        self._protocol: TaggedClientProtocol | None = None
        self._connecting: SharedOutcome[TaggedClientProtocol] | None = None
        self.connects = 0

    @property
    def connected(self) -> bool:
        """True while the cached connection is open."""
        return self._protocol is not None and self._protocol.is_open

    @property
    def in_flight(self) -> int:
        """How many calls wait for their reply on the open connection (0 without one)."""
        return self._protocol.in_flight if self._protocol is not None else 0

    def connection(self) -> Deferred[TaggedClientProtocol]:
        """A Deferred firing with the open connection's protocol, connecting if need be."""
        if self._protocol is not None and self._protocol.is_open:
            return succeed(self._protocol)
        if self._connecting is not None:
            return self._connecting.wait()
        self.connects += 1
        log.info("connecting to the backend at %s", self.address)
        d: Deferred[TaggedClientProtocol]
        d = connectProtocol(self._endpoint, TaggedClientProtocol())
        d.addCallbacks(self._connected, self._connect_failed)
        shared = SharedOutcome(d)
        waiter = shared.wait()
        if not shared.done:
            self._connecting = shared
        return waiter

    def _connected(self, protocol: TaggedClientProtocol) -> TaggedClientProtocol:
        self._connecting = None
        self._protocol = protocol
        protocol.lost.addCallback(self._forget, protocol)
        return protocol

    def _connect_failed(self, failure: Failure) -> Failure:
        self._connecting = None
        if isinstance(failure.value, CancelledError):
            return failure
        log.warning(
            "cannot connect to the backend at %s: %s", self.address, failure.getErrorMessage()
        )
        raise BackendUnavailableError(
            f"cannot connect to the backend at {self.address}: {failure.getErrorMessage()}"
        )

    def _forget(self, _: None, protocol: TaggedClientProtocol) -> None:
        if self._protocol is protocol:
            log.warning("lost the connection to the backend at %s", self.address)
            self._protocol = None

    def call(self, verb: str, *args: Any, timeout: float | None = None) -> Deferred[Any]:
        """Send ``verb args`` to the backend; return a Deferred for the reply's value.

        Fails with :class:`BackendError` (an error reply), :class:`BackendLostError`,
        :class:`BackendUnavailableError`, or ``defer.TimeoutError`` after ``timeout``
        seconds (default: the client's), which also forgets the request.
        """
        limit = self.timeout if timeout is None else timeout
        d = self.connection()
        d.addCallback(lambda protocol: protocol.request(verb, *args))
        if limit:

            def timed_out(result: object, seconds: float) -> Any:
                raise defer.TimeoutError(f"no reply to {verb} within {seconds:g} s")

            d.addTimeout(limit, cast("IReactorTime", self.reactor), onTimeoutCancel=timed_out)
        return d

    def disconnect(self) -> None:
        """Close the connection (calls in flight fail) or stop connecting."""
        if self._connecting is not None:
            connecting, self._connecting = self._connecting, None
            connecting.cancel()
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.loseConnection()
