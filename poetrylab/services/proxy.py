"""The caching poetry proxy: sync-or-async results, shared fetches, cancellation.

Notebook 07. A client connects to the proxy as to any poetry server and gets the poem,
then the connection closes. The proxy answers from its cache when it can and fetches the
poem from the upstream server when it must:

* :class:`ProxyService` — the logic. :meth:`~ProxyService.get_poem` returns an
  already-fired Deferred (``succeed``) on a cache hit and a pending one on a miss.
  Every miss that arrives while a fetch is under way shares that one fetch; a cache entry
  lives ``ttl`` seconds; a failed fetch caches nothing.
* :class:`PoetryProxyProtocol` — wraps ``service.get_poem()`` in ``maybeDeferred``, so it
  works with a service that returns plain bytes just as well, writes the poem and
  closes. When its client hangs up first it cancels its Deferred; when nobody else
  waits for that fetch, the upstream connection is cancelled too.
* :func:`fetch_poem` — how the proxy reads from upstream. Not the Deferred client of
  notebooks 04-05 (which records every chunk's arrival for the plots and takes a poem of
  any size): a proxy must bound what it reads, so this one keeps only the bytes, and
  gives up on a poem over ``max_bytes`` or slower than ``timeout`` seconds.

An upstream failure (refused, reset mid-poem, too long, too slow) closes the client's
connection without sending a byte. One limit of the poetry protocol itself: a server
that closes its connection cleanly half-way through looks exactly like a short poem, so
only a broken connection (reset, abort, timeout) counts as dying mid-poem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol, ServerFactory, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from poetrylab._connections import BACKLOG, SendingMixin, peer_of
from poetrylab.download import Address, Download, parse_address
from poetrylab.services._sharing import SharedOutcome

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from poetrylab._typing import ListeningPort, ReactorTime, TCPTransport, TimeTCPReactor

__all__ = [
    "DEFAULT_MAX_POEM",
    "DEFAULT_SEND_TIMEOUT",
    "DEFAULT_TTL",
    "DEFAULT_UPSTREAM_TIMEOUT",
    "PoemTooLargeError",
    "PoetryProxyFactory",
    "PoetryProxyProtocol",
    "ProxyService",
    "fetch_poem",
    "listen_proxy",
]

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0
"""Seconds a fetched poem stays in the cache."""

DEFAULT_UPSTREAM_TIMEOUT = 30.0
"""Seconds one upstream fetch may take."""

DEFAULT_MAX_POEM = 8 * 1024 * 1024
"""Largest poem, in bytes, the proxy accepts from upstream."""

DEFAULT_SEND_TIMEOUT = 10.0
"""Seconds a client may go without taking any of the poem before it is dropped."""

Fetch = Callable[[Any, Address, float], "Deferred[Any]"]
"""``fetch(reactor, address, timeout)``: a Deferred firing with the poem (or a Download)."""


class PoemTooLargeError(ValueError):
    """The upstream server sent more than the proxy accepts."""


class _UpstreamProtocol(Protocol):
    """Collect the poem; fire ``finished`` with its bytes when the server closes cleanly.

    More than ``max_bytes`` aborts the connection and fails ``finished`` with
    :class:`PoemTooLargeError`; any other end fails it with the reason. Cancelling
    ``finished`` aborts the connection.
    """

    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0
        self.finished: Deferred[bytes] = Deferred(lambda _: self.transport.abortConnection())

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self._size += len(data)
        if self._size > self.max_bytes:
            self._chunks.clear()
            self.finished.errback(
                PoemTooLargeError(f"upstream sent more than {self.max_bytes:,} bytes")
            )
            self.transport.abortConnection()
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:
            return
        if isinstance(reason.value, ConnectionDone):  # closed cleanly: the whole poem
            self.finished.callback(b"".join(self._chunks))
        else:
            self.finished.errback(reason)
        self._chunks = []


def fetch_poem(
    reactor: TimeTCPReactor,
    address: Address,
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_POEM,
) -> Deferred[bytes]:
    """Download the poem at ``address``; return a Deferred that fires with its bytes.

    It fails with ``ConnectionRefusedError`` and friends, :class:`PoemTooLargeError`
    after ``max_bytes`` bytes, or ``defer.TimeoutError`` when the poem is not complete
    within ``timeout`` seconds (the connection is then aborted). Cancelling it cancels
    the connection attempt or aborts the connection. Call it in the reactor thread.
    """
    endpoint = HostnameEndpoint(reactor, address.host, address.port, timeout=timeout)
    factory = Factory.forProtocol(lambda: _UpstreamProtocol(max_bytes))
    factory.noisy = False  # one "Starting factory" log line per fetch would say nothing
    connecting = endpoint.connect(factory)
    poem: Deferred[bytes] = connecting.addCallback(
        lambda protocol: cast(_UpstreamProtocol, protocol).finished
    )
    poem.addTimeout(timeout, cast("IReactorTime", reactor))
    return poem


class ProxyService:
    """Fetch the poem from ``upstream`` at most once per ``ttl`` seconds; cache it.

    ``fetch(reactor, address, timeout)`` (default: :func:`fetch_poem`, refusing a poem
    over ``max_bytes``) returns a Deferred that fires with the poem's bytes, or with a
    Download holding them. Counters ``hits``, ``misses`` and ``fetches`` say what
    happened. Raises ValueError for a negative ``ttl`` or a ``timeout`` that is not above
    0. Not thread-safe: call it in the reactor thread.
    """

    def __init__(
        self,
        reactor: ReactorTime,
        upstream: Address | tuple[str, int] | str,
        ttl: float = DEFAULT_TTL,
        timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
        fetch: Fetch | None = None,
        max_bytes: int = DEFAULT_MAX_POEM,
    ) -> None:
        if not ttl >= 0:
            raise ValueError(f"ttl must be a number of seconds >= 0, not {ttl}")
        if not timeout > 0:
            raise ValueError(f"timeout must be greater than 0, not {timeout}")
        self.reactor = reactor
        self.upstream = parse_address(upstream)
        self.ttl = ttl
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._fetch_upstream: Fetch = fetch or self._fetch_capped
        self._poem: bytes | None = None
        self._expires = 0.0
        self._in_flight: SharedOutcome[bytes] | None = None
        self.hits = 0
        self.misses = 0
        self.fetches = 0

    def _fetch_capped(self, reactor: Any, address: Address, timeout: float) -> Deferred[bytes]:
        return fetch_poem(reactor, address, timeout, self.max_bytes)

    @property
    def cached(self) -> bytes | None:
        """The cached poem, or None when there is none or it has expired."""
        if self._poem is not None and self.reactor.seconds() < self._expires:
            return self._poem
        return None

    @property
    def waiting(self) -> int:
        """How many callers wait for the fetch under way (0 when none is)."""
        return self._in_flight.waiting if self._in_flight is not None else 0

    def clear(self) -> None:
        """Forget the cached poem (a fetch under way carries on)."""
        self._poem = None

    def get_poem(self) -> Deferred[bytes]:
        """Return a Deferred that fires with the poem's bytes.

        A cache hit returns an already-fired Deferred. A miss waits for the fetch under way
        or starts one. Cancelling the returned Deferred stops waiting; the fetch itself
        is cancelled when no caller is left. Fails with the upstream's error (from the
        default fetch: a connection error, :class:`PoemTooLargeError`, or
        ``defer.TimeoutError``) when the fetch fails.
        """
        poem = self.cached
        if poem is not None:
            self.hits += 1
            log.debug("cache hit: %d bytes", len(poem))
            return succeed(poem)
        self.misses += 1
        if self._in_flight is not None:
            return self._in_flight.wait()
        shared = SharedOutcome(self._start_fetch())
        waiter = shared.wait()
        if not shared.done:  # a fetch that failed at once is not "under way"
            self._in_flight = shared
        return waiter

    def _start_fetch(self) -> Deferred[bytes]:
        self.fetches += 1
        log.debug("fetching the poem from %s", self.upstream)
        d = maybeDeferred(self._fetch_upstream, self.reactor, self.upstream, self.timeout)
        d.addCallback(self._poem_bytes)
        d.addCallbacks(self._store, self._fetch_failed)
        d.addBoth(self._fetch_over)
        return d

    def _poem_bytes(self, result: Any) -> bytes:
        if isinstance(result, Download):
            poem = result.data
        elif isinstance(result, str):
            poem = result.encode("utf-8")
        else:
            poem = bytes(result)
        if len(poem) > self.max_bytes:
            raise PoemTooLargeError(f"upstream sent more than {self.max_bytes:,} bytes")
        return poem

    def _store(self, poem: bytes) -> bytes:
        self._poem = poem
        self._expires = self.reactor.seconds() + self.ttl
        log.debug("cached %d bytes from %s for %s s", len(poem), self.upstream, self.ttl)
        return poem

    def _fetch_failed(self, failure: Failure) -> Failure:
        abandoned = self._in_flight is not None and self._in_flight.waiting == 0
        if abandoned or isinstance(failure.value, CancelledError):
            log.info("fetch from %s cancelled: nobody is waiting for it", self.upstream)
        else:
            log.warning(
                "fetch from %s failed: %s; nothing cached",
                self.upstream, failure.getErrorMessage() or type(failure.value).__name__,
            )  # fmt: skip
        return failure

    def _fetch_over(self, result: Any) -> Any:
        self._in_flight = None
        return result


@implementer(IHalfCloseableProtocol)
class PoetryProxyProtocol(Protocol, SendingMixin):
    """Send the poem from ``factory.service.get_poem()`` and close.

    The service may return bytes or a Deferred (``maybeDeferred`` makes them the same).
    On failure the connection closes without a byte. If the client leaves first, the
    Deferred is cancelled. A client that closes its sending side is taken as gone
    while the poem is still being fetched (TCP cannot tell the two apart, and a fetch
    for nobody is what notebook 07 cancels), and gets the whole poem once it is being
    sent. One that takes none of the poem for ``factory.send_timeout`` seconds is
    dropped.
    """

    factory: PoetryProxyFactory
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def __init__(self) -> None:
        self._pending: Deferred[bytes] | None = None

    def connectionMade(self) -> None:
        if self.factory.reactor is not None:
            self.clock = self.factory.reactor
        d = maybeDeferred(self.factory.service.get_poem)
        if not d.called:
            self._pending = d
        d.addCallbacks(self._send_poem, self._give_up)

    def _send_poem(self, poem: bytes) -> None:
        self._pending = None
        self.send_and_close(poem, self.factory.send_timeout)

    def _give_up(self, failure: Failure) -> None:
        self._pending = None
        if not isinstance(failure.value, CancelledError):
            self.transport.loseConnection()

    def readConnectionLost(self) -> None:
        """The client closed its sending side. Once the poem is on its way, that is
        ``nc -N`` and it gets the rest; before, it cannot be told from a client that
        left, and it is taken as one (the fetch is cancelled for it, notebook 07)."""
        if self._pending is not None:
            self._stop_waiting("closed its side before the poem arrived")
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self._stop_waiting("left before the poem arrived")

    def _stop_waiting(self, why: str) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            log.info("%s: %s; it stops waiting", peer_of(self.transport), why)
            pending.cancel()


class PoetryProxyFactory(ServerFactory[PoetryProxyProtocol]):
    """Build a :class:`PoetryProxyProtocol` per client, all sharing one ``service``.

    ``service`` is anything with ``get_poem()`` returning bytes or a Deferred. The
    timer that drops a client which stops reading (after ``send_timeout`` seconds) runs
    on ``reactor``, by default the service's own ``reactor``; with neither, there is no
    such timer.
    """

    protocol = PoetryProxyProtocol
    noisy = False

    def __init__(
        self,
        service: Any,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        reactor: ReactorTime | None = None,
    ) -> None:
        self.service = service
        self.reactor: ReactorTime | None = reactor or getattr(service, "reactor", None)
        self.send_timeout = send_timeout if self.reactor is not None else None


def listen_proxy(
    reactor: TimeTCPReactor,
    upstream: Address | tuple[str, int] | str,
    port: int = 0,
    interface: str = "127.0.0.1",
    ttl: float = DEFAULT_TTL,
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_POEM,
    send_timeout: float = DEFAULT_SEND_TIMEOUT,
) -> ListeningPort:
    """Listen as a caching proxy for the poetry server at ``upstream``; return the port.

    The :class:`ProxyService` is ``port.factory.service``. Call it in the reactor thread.
    Raises ``CannotListenError`` when the port is taken, ValueError for a bad ``ttl`` or
    ``timeout``.
    """
    service = ProxyService(reactor, upstream, ttl=ttl, timeout=timeout, max_bytes=max_bytes)
    factory = PoetryProxyFactory(service, send_timeout=send_timeout, reactor=reactor)
    listening = reactor.listenTCP(port, factory, backlog=BACKLOG, interface=interface)
    return cast("ListeningPort", listening)
