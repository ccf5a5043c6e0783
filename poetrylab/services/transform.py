"""The transformation service: a little RPC over netstrings, with guarded dispatch.

Notebook 06. A client connects and sends one netstring ``NAME.POEM``; the server replies
with one netstring holding the transformed poem and closes. An unknown name, a failed
or too slow transform, or a malformed or oversized request closes that connection
without a reply (and is logged); everyone else goes on being served. A client that
has not sent its whole request within ``idle_timeout`` seconds is dropped, one that
half-closes after its request (``nc -N``) still gets the reply, and the reply is
written no faster than the client reads it (a client that takes none of it for
``send_timeout`` seconds is dropped).

Three layers, each replaceable on its own:

* :class:`TransformRegistry` — the only names the wire can reach. A name from the wire
  is looked up in this table and nowhere else: no ``getattr``, nothing private.
  :func:`default_registry` builds one with the built-in transforms; a learner adds one
  with ``registry.register("shout", str.upper)``.
* :class:`TransformService` — the logic: look the name up, run the transform (plain
  function, Deferred-returning function, or in a thread), check the result, enforce a
  time limit. It knows nothing about sockets.
* :class:`TransformProtocol` / :class:`TransformFactory` — the netstring wire protocol.

The client side is :func:`transform_poem` (returns a Deferred), which the
``poetrylab transform NAME --server HOST:PORT [FILE]`` command (:mod:`poetrylab.cli`) runs
with ``task.react``.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from zope.interface import implementer

from poetrylab._connections import BACKLOG, SendingMixin, peer_of
from poetrylab.clients._common import client_endpoint
from poetrylab.download import Address, parse_address

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
    from twisted.protocols.basic import NetstringReceiver as _TwistedNetstringReceiver
    from twisted.python.threadpool import ThreadPool

    from poetrylab._typing import (
        ListeningPort,
        ReactorThreadPool,
        ReactorTime,
        TCPTransport,
        TimeTCPReactor,
    )

if TYPE_CHECKING:

    class NetstringReceiver(_TwistedNetstringReceiver):
        """Twisted's NetstringReceiver as the type checker should see it here: connected
        over TCP, and with the annotations Twisted leaves out. (At run time the name is
        Twisted's own class; this keeps typing noise out of the protocols that notebook
        06 prints.)"""

        transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None

        def sendString(self, string: bytes) -> None: ...

        def dataReceived(self, data: bytes) -> None: ...

else:
    from twisted.protocols.basic import NetstringReceiver

__all__ = [
    "BadRequestError",
    "DEFAULT_MAX_REQUEST",
    "NoReplyError",
    "Refrain",
    "Transform",
    "TransformError",
    "TransformFactory",
    "TransformProtocol",
    "TransformRegistry",
    "TransformService",
    "UninspiredError",
    "UnknownTransformError",
    "count_syllables",
    "cummingsify",
    "default_registry",
    "listen_transform",
    "parse_request",
    "scan",
    "spoonerize",
    "transform_poem",
    "upside_down",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST = 256 * 1024
"""Largest request (name, dot and poem, in bytes) the server accepts."""

DEFAULT_TIMEOUT = 5.0
"""Seconds a transform may take before the server gives up on it."""

DEFAULT_IDLE_TIMEOUT = 30.0
"""Seconds a client may stay connected without completing its request."""

DEFAULT_SEND_TIMEOUT = 10.0
"""Seconds a client may take none of its reply before it is dropped."""

MAX_REPLY = 16 * 1024 * 1024
"""Largest reply the client accepts."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class TransformError(Exception):
    """A transform could not do its job (a domain error, not a bug)."""


class UninspiredError(TransformError):
    """The muse did not come: the ``refrain`` transform fails this way, some of the time."""


class UnknownTransformError(LookupError):
    """No transform is registered under that name."""


class BadRequestError(ValueError):
    """A request that is not ``NAME.POEM`` with a well-formed name and a UTF-8 poem."""


class NoReplyError(ConnectionError):
    """The server closed the connection without replying."""


# ---------------------------------------------------------------------------------------
# The registry: the only names the wire can reach.


@dataclass(frozen=True)
class Transform:
    """One registered transform: its name, the function, a one-line summary.

    ``function(poem: str)`` returns the new poem, or a Deferred that fires with it.
    ``threaded`` transforms run in the reactor's thread pool, so a slow one does not
    stall the server (it still counts against the service's time limit).
    """

    name: str
    function: Callable[[str], Any]
    summary: str = ""
    threaded: bool = False


class TransformRegistry:
    """The table of callable transforms, by name: the guard in "guarded dispatch".

    Names are lower-case ASCII letters, digits and ``_``, starting with a letter, at most
    32 characters: nothing private (``_x``) or dunder (``__class__``) can even be
    registered, let alone called. Registering a name again replaces the old transform,
    so a notebook cell can be re-run. Not thread-safe: change it in one thread.
    """

    def __init__(self) -> None:
        self._transforms: dict[str, Transform] = {}

    def register(
        self,
        name: str,
        function: Callable[[str], Any] | None = None,
        *,
        summary: str | None = None,
        threaded: bool = False,
    ) -> Any:
        """Register ``function`` under ``name`` and return it; or, without ``function``,
        return a decorator that does.

        Raises ValueError for a name outside the allowed form, TypeError when the
        function is not callable.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} cannot be a transform name: use lower-case letters, digits and _, "
                "starting with a letter (at most 32 characters)"
            )
        if function is None:
            return lambda f: self.register(name, f, summary=summary, threaded=threaded)
        if not callable(function):
            raise TypeError(f"transform {name!r} must be callable, not {type(function).__name__}")
        if summary is None:
            doc = (getattr(function, "__doc__", None) or "").strip()
            summary = doc.splitlines()[0] if doc else ""
        self._transforms[name] = Transform(name, function, summary, threaded)
        return function

    def unregister(self, name: str) -> None:
        """Remove ``name``; raises UnknownTransformError when it is not registered."""
        self.lookup(name)
        del self._transforms[name]

    def lookup(self, name: str) -> Transform:
        """Return the transform registered as ``name``; raise UnknownTransformError if none."""
        try:
            return self._transforms[name]
        except (KeyError, TypeError):
            raise UnknownTransformError(f"no transform called {name!r}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._transforms)

    def __contains__(self, name: object) -> bool:
        return name in self._transforms

    def __iter__(self) -> Iterator[Transform]:
        return iter([self._transforms[n] for n in self.names()])

    def __len__(self) -> int:
        return len(self._transforms)

    def __repr__(self) -> str:
        return f"TransformRegistry({', '.join(self.names())})"


# ---------------------------------------------------------------------------------------
# The built-in transforms: plain functions of a str.


def _keep_final_newline(poem: str, text: str) -> str:
    return text + "\n" if poem.endswith("\n") and not text.endswith("\n") else text


def cummingsify(poem: str) -> str:
    """Lower-case every letter, as e. e. cummings might."""
    return poem.lower()


def upside_down(poem: str) -> str:
    """The same lines in reverse order: the last line comes first."""
    return _keep_final_newline(poem, "\n".join(reversed(poem.splitlines())))


_WORD = re.compile(r"[A-Za-z]+")
_ONSET = re.compile(r"[^aeiouyAEIOUY]+(?=[aeiouyAEIOUY])")


def _respell(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def spoonerize(poem: str) -> str:
    """Swap the opening consonants of the first two neighbouring words that both have
    some, on every line ("weak and weary" stays, "midnight dreary" becomes "dridnight
    meary")."""

    def line_swapped(line: str) -> str:
        words = list(_WORD.finditer(line))
        for first, second in zip(words, words[1:], strict=False):
            onset_a = _ONSET.match(first[0])
            onset_b = _ONSET.match(second[0])
            if onset_a and onset_b and onset_a[0].lower() != onset_b[0].lower():
                a, b = first[0].lower(), second[0].lower()
                new_a = _respell(onset_b[0].lower() + a[onset_a.end() :], first[0])
                new_b = _respell(onset_a[0].lower() + b[onset_b.end() :], second[0])
                return (
                    line[: first.start()] + new_a + line[first.end() : second.start()]
                    + new_b + line[second.end():]
                )  # fmt: skip
        return line

    return _keep_final_newline(poem, "\n".join(line_swapped(line) for line in poem.splitlines()))


def count_syllables(word: str) -> int:
    """A rough English syllable count: groups of vowels, minus a silent final e or -ed."""
    w = word.lower()
    n = len(re.findall(r"[aeiouy]+", w))
    if n > 1 and (
        (w.endswith("e") and not re.search(r"([^aeiouy]le|ee|ye)$", w))
        or (w.endswith("ed") and not w.endswith(("ted", "ded")))
    ):
        n -= 1
    return max(n, 1) if any(c.isalpha() for c in w) else 0


def scan(poem: str) -> str:
    """Append each line's syllable count, in brackets, as a reader marking the metre."""

    def marked(line: str) -> str:
        if not line.strip():
            return line
        n = sum(count_syllables(w) for w in _WORD.findall(line))
        return f"{line.rstrip()}  [{n}]"

    return _keep_final_newline(poem, "\n".join(marked(line) for line in poem.splitlines()))


class Refrain:
    """Repeat one of the poem's lines at the end, as a refrain, when the muse obliges.

    Some of the time (``failure_rate``, drawn from a ``random.Random(seed)``) she does not,
    and the call raises :class:`UninspiredError`: a domain error, so the errback path
    has something real to show. The same seed gives the same run of successes and
    failures. Not thread-safe.
    """

    def __init__(self, seed: int = 0, failure_rate: float = 1 / 3) -> None:
        self.failure_rate = failure_rate
        self._rng = random.Random(seed)

    def __call__(self, poem: str) -> str:
        if self._rng.random() < self.failure_rate:
            raise UninspiredError("the muse did not come: no refrain this time (try again)")
        lines = [line.strip() for line in poem.splitlines() if line.strip()]
        if not lines:
            raise UninspiredError("an empty poem has nothing to repeat")
        chosen = self._rng.choice(lines)
        return poem.rstrip("\n") + "\n\n    " + chosen + "\n"


def default_registry(seed: int = 0) -> TransformRegistry:
    """A new registry holding the built-in transforms (``refrain`` seeded with ``seed``).

    cummingsify, upside_down, spoonerize, scan, and refrain (which fails, seeded, about
    one time in three with :class:`UninspiredError`).
    """
    registry = TransformRegistry()
    registry.register("cummingsify", cummingsify)
    registry.register("upside_down", upside_down)
    registry.register("spoonerize", spoonerize)
    registry.register("scan", scan)
    registry.register(
        "refrain", Refrain(seed),
        summary="repeat one line at the end; fails about 1 time in 3 (the muse is fickle)",
    )  # fmt: skip
    return registry


# ---------------------------------------------------------------------------------------
# The service: the logic, apart from any protocol.


class TransformService:
    """Run registered transforms by name, each within a time limit.

    :meth:`transform` always returns a Deferred, whatever kind of function the transform
    is: its result (checked to be a ``str``), or a Failure —
    :class:`UnknownTransformError`, the transform's own exception,
    ``defer.TimeoutError`` after ``timeout`` seconds, TypeError for a non-text result.
    Cancelling the Deferred cancels the transform if it returned a Deferred; a threaded
    transform finishes in its thread and its result is dropped. ``reactor`` gives the
    time limit's timer; a threaded transform also needs its thread pool (the real
    reactor has one), unless ``threadpool`` is given. Call it in the reactor thread.
    """

    def __init__(
        self,
        reactor: ReactorTime,
        registry: TransformRegistry | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        threadpool: ThreadPool | None = None,
    ) -> None:
        self.reactor = reactor
        self.registry = registry if registry is not None else default_registry()
        self.timeout = timeout
        self._threadpool = threadpool

    def names(self) -> list[str]:
        """The names a client may call."""
        return self.registry.names()

    def transform(self, name: str, poem: str) -> Deferred[str]:
        """Transform ``poem`` with the transform registered as ``name``; see the class doc."""
        try:
            entry = self.registry.lookup(name)
        except UnknownTransformError:
            return fail()
        d: Deferred[Any]
        if entry.threaded:
            pool = self._threadpool or cast("ReactorThreadPool", self.reactor).getThreadPool()
            threads = cast("IReactorFromThreads", self.reactor)
            d = deferToThreadPool(threads, pool, entry.function, poem)
        else:
            d = maybeDeferred(entry.function, poem)
        text = d.addCallback(_checked_text, name)
        if self.timeout is not None and not text.called:
            text.addTimeout(self.timeout, cast("IReactorTime", self.reactor))
        return text


def _checked_text(result: object, name: str) -> str:
    if not isinstance(result, str):
        raise TypeError(f"transform {name!r} returned {type(result).__name__}, not str")
    return result


# ---------------------------------------------------------------------------------------
# The wire protocol.


def parse_request(request: bytes) -> tuple[str, str]:
    """Split a request ``NAME.POEM`` into the name and the poem (text).

    Raises :class:`BadRequestError` when there is no dot, the name is not a possible
    transform name, or the poem is not UTF-8. Whether the name is *registered* is the
    service's business, not the parser's.
    """
    name_bytes, dot, poem_bytes = request.partition(b".")
    if not dot:
        raise BadRequestError("no '.' between the transform name and the poem")
    try:
        name = name_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequestError("the transform name is not ASCII") from None
    if not _NAME.fullmatch(name):
        raise BadRequestError(f"{name[:40]!r} is not a transform name")
    try:
        poem = poem_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the poem is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return name, poem


@implementer(IHalfCloseableProtocol)
class TransformProtocol(NetstringReceiver, SendingMixin):
    """Serve one request: read a netstring ``NAME.POEM``, reply with one netstring, close.

    Anything that goes wrong — a malformed or oversized netstring, a bad name, an unknown
    or failing or too slow transform, a client that has not sent its whole request
    within ``idle_timeout`` seconds — closes this connection without a reply and logs
    one line naming the client. A second request on the same connection is ignored.
    When the client hangs up first, the transform is cancelled; when it only half-closes
    after its request (``nc -N``), the reply still comes. The reply is written no faster
    than the client reads it, and a client that takes none of it for ``send_timeout``
    seconds is dropped.
    """

    factory: TransformFactory

    def __init__(self) -> None:
        self._pending: Deferred[str] | None = None
        self._answered = False
        self._replying = False

    def connectionMade(self) -> None:
        self.clock = self.factory.reactor
        self.MAX_LENGTH = self.factory.max_request
        self.setTimeout(self.factory.idle_timeout)

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        if self.brokenPeer and not self._answered:
            self._answered = True
            self.setTimeout(None)
            log.warning(
                "%s: malformed netstring or request over %d bytes; closed without a reply",
                peer_of(self.transport), self.MAX_LENGTH,
            )  # fmt: skip

    def timeoutConnection(self) -> None:
        self._answered = True
        if self._replying:
            super().timeoutConnection()  # took none of the reply
            return
        log.warning(
            "%s: no complete request within %s s; closed", peer_of(self.transport), self.timeOut
        )
        self.transport.abortConnection()

    def stringReceived(self, string: bytes) -> None:
        if self._answered:
            return  # one request per connection
        self._answered = True
        self.setTimeout(None)
        try:
            name, poem = parse_request(string)
        except BadRequestError as exc:
            log.warning("%s: bad request: %s; closed without a reply", peer_of(self.transport), exc)
            self.transport.loseConnection()
            return
        log.debug("%s: %s of %d characters", peer_of(self.transport), name, len(poem))
        self._pending = d = self.factory.service.transform(name, poem)
        d.addCallbacks(self._reply, self._refuse, errbackArgs=(name,))

    def _reply(self, poem: str) -> None:
        self._pending = None
        if self.transport.disconnecting:
            return
        self._replying = True
        data = poem.encode("utf-8")
        self.send_and_close(b"%d:%s," % (len(data), data), self.factory.send_timeout)  # a netstring

    def _refuse(self, failure: Failure, name: str) -> None:
        self._pending = None
        peer, problem = peer_of(self.transport), failure.value
        if isinstance(problem, CancelledError):
            log.info("%s: client left during %s; transform cancelled", peer, name)
        elif isinstance(problem, UnknownTransformError | TransformError):
            log.warning("%s: %s: %s; closed without a reply", peer, name, problem)
        elif isinstance(problem, defer.TimeoutError):
            log.warning(
                "%s: %s took longer than %s s; closed without a reply",
                peer, name, self.factory.service.timeout,
            )  # fmt: skip
        else:
            log.error(
                "%s: transform %s raised %s: %s; closed without a reply",
                peer, name, type(problem).__name__, problem,
            )  # fmt: skip
        self.transport.loseConnection()

    # IHalfCloseableProtocol: the client will send nothing more.

    def readConnectionLost(self) -> None:
        if not self._answered:
            self._answered = True
            self.setTimeout(None)
            log.warning(
                "%s: closed its side before its request was complete; closed",
                peer_of(self.transport),
            )  # fmt: skip
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()


class TransformFactory(ServerFactory[TransformProtocol]):
    """Build a :class:`TransformProtocol` per connection, all sharing one ``service``.

    ``max_request`` bounds a request (at least 2 bytes, or ValueError), ``idle_timeout``
    the seconds a client may take to send it, ``send_timeout`` the seconds it may take
    none of the reply. The timers run on the service's reactor.
    """

    protocol = TransformProtocol
    noisy = False

    def __init__(
        self,
        service: TransformService,
        max_request: int = DEFAULT_MAX_REQUEST,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        if max_request < 2:
            raise ValueError(f"max_request must be at least 2 bytes, not {max_request}")
        self.service = service
        self.reactor = service.reactor
        self.max_request = max_request
        self.idle_timeout = idle_timeout
        self.send_timeout = send_timeout


def listen_transform(
    reactor: TimeTCPReactor,
    port: int = 0,
    interface: str = "127.0.0.1",
    *,
    service: TransformService | None = None,
    registry: TransformRegistry | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_request: int = DEFAULT_MAX_REQUEST,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
) -> ListeningPort:
    """Listen for transform requests; return the listening port.

    Pass a ``service``, or a ``registry`` (default: :func:`default_registry`) and a
    per-transform ``timeout`` to build one. Call it in the reactor thread; raises
    ``CannotListenError`` when the port is taken.
    """
    if service is None:
        service = TransformService(reactor, registry, timeout)
    factory = TransformFactory(service, max_request, idle_timeout, send_timeout)
    listening = reactor.listenTCP(port, factory, backlog=BACKLOG, interface=interface)
    return cast("ListeningPort", listening)


# ---------------------------------------------------------------------------------------
# The client.


class TransformClientProtocol(NetstringReceiver):
    """Send one request, fire ``reply`` with the answer (text), or fail it with
    :class:`NoReplyError` when the server closes without one. Cancelling ``reply``
    aborts the connection."""

    MAX_LENGTH = MAX_REPLY

    def __init__(self, name: str, poem: str) -> None:
        self.request = name.encode("ascii") + b"." + poem.encode("utf-8")
        self.name = name
        self.reply: Deferred[str] = Deferred(lambda _: self.transport.abortConnection())

    def connectionMade(self) -> None:
        self.sendString(self.request)

    def stringReceived(self, string: bytes) -> None:
        if not self.reply.called:
            self.reply.callback(string.decode("utf-8", errors="replace"))
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.reply.called:
            self.reply.errback(
                NoReplyError(
                    f"the server closed the connection without a reply to {self.name!r}: "
                    "an unknown transform, a failed transform, or a request it refused"
                )
            )


def transform_poem(
    reactor: TimeTCPReactor,
    address: Address | tuple[str, int] | str,
    name: str,
    poem: str,
    timeout: float = 10.0,
) -> Deferred[str]:
    """Ask the transformation server at ``address`` to apply ``name`` to ``poem``.

    Returns a Deferred that fires with the new poem, or fails with
    :class:`NoReplyError` (the server refused), ``ConnectionRefusedError`` and friends,
    or ``defer.TimeoutError`` after ``timeout`` seconds (the connection is then
    aborted). Raises ValueError at once for a name the protocol cannot carry. Call it in
    the reactor thread.
    """
    if not name or "." in name or not name.isascii():
        raise ValueError(f"{name!r} cannot be sent as a transform name (ASCII, no '.')")
    endpoint = client_endpoint(reactor, parse_address(address), timeout)
    protocol = TransformClientProtocol(name, poem)
    connecting: Deferred[Any] = connectProtocol(endpoint, protocol)
    connecting.addCallback(lambda _: protocol.reply)
    # A fresh Deferred that fires with the poem or the failure itself (not first with the
    # connected protocol), so a traced chain shows what the caller gets; cancelling it
    # cancels the connection attempt or the exchange.
    reply: Deferred[str] = Deferred(lambda _: connecting.cancel())
    connecting.chainDeferred(reply)
    reply.addTimeout(timeout, cast("IReactorTime", reactor))
    return reply
