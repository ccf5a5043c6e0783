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

An upstream failure (refused, reset mid-poem, timed out) closes the client's connection
without sending a byte. One limit of the poetry protocol itself: a server that closes its
connection cleanly half-way through looks exactly like a short poem, so only a broken
connection (reset, abort, timeout) counts as dying mid-poem.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import interfaces
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.python.failure import Failure

from poetrylab.clients.deferred import get_poetry
from poetrylab.download import Address, Download, parse_address
from poetrylab.services._sharing import SharedOutcome

__all__ = [
    "DEFAULT_TTL",
    "PoetryProxyFactory",
    "PoetryProxyProtocol",
    "ProxyService",
    "listen_proxy",
]

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0
"""Seconds a fetched poem stays in the cache."""

DEFAULT_UPSTREAM_TIMEOUT = 30.0
"""Seconds one upstream fetch may take."""


class ProxyService:
    """Fetch the poem from ``upstream`` at most once per ``ttl`` seconds; cache it.

    ``fetch(reactor, address, timeout)`` (default: the Deferred client of notebooks
    04-05) returns a Deferred that fires with the poem's bytes, or with a Download
    holding them. Counters ``hits``, ``misses`` and ``fetches`` say what happened.
    Not thread-safe: call it in the reactor thread.
    """

    def __init__(
        self,
        reactor: Any,
        upstream: Address | tuple[str, int] | str,
        ttl: float = DEFAULT_TTL,
        timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
        fetch: Callable[[Any, Address, float], Deferred[Any]] | None = None,
    ) -> None:
        if not ttl >= 0:
            raise ValueError(f"ttl must be a number of seconds >= 0, not {ttl}")
        if not timeout > 0:
            raise ValueError(f"timeout must be greater than 0, not {timeout}")
        self.reactor = reactor
        self.upstream = parse_address(upstream)
        self.ttl = ttl
        self.timeout = timeout
        self._fetch_upstream = fetch or get_poetry
        self._poem: bytes | None = None
        self._expires = 0.0
        self._in_flight: SharedOutcome[bytes] | None = None
        self.hits = 0
        self.misses = 0
        self.fetches = 0

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
        is cancelled when no caller is left. Fails with the upstream's error (a
        ``DownloadError`` from the default fetch) when the fetch fails.
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
        log.info("fetching the poem from %s", self.upstream)
        d = maybeDeferred(self._fetch_upstream, self.reactor, self.upstream, self.timeout)
        d.addCallback(_poem_bytes)
        d.addCallbacks(self._store, self._fetch_failed)
        d.addBoth(self._fetch_over)
        return d

    def _store(self, poem: bytes) -> bytes:
        self._poem = poem
        self._expires = self.reactor.seconds() + self.ttl
        log.info("cached %d bytes from %s for %s s", len(poem), self.upstream, self.ttl)
        return poem

    def _fetch_failed(self, failure: Failure) -> Failure:
        abandoned = self._in_flight is not None and self._in_flight.waiting == 0
        if abandoned or failure.check(CancelledError):
            log.info("fetch from %s cancelled: nobody is waiting for it", self.upstream)
        else:
            log.warning("fetch from %s failed: %s; nothing cached", self.upstream, failure.value)
        return failure

    def _fetch_over(self, result: Any) -> Any:
        self._in_flight = None
        return result


def _poem_bytes(result: Any) -> bytes:
    if isinstance(result, Download):
        return result.data
    if isinstance(result, str):
        return result.encode("utf-8")
    return bytes(result)


class PoetryProxyProtocol(Protocol):
    """Send the poem from ``factory.service.get_poem()`` and close.

    The service may return bytes or a Deferred (``maybeDeferred`` makes them the same).
    On failure the connection closes without a byte. If the client leaves first, the
    Deferred is cancelled.
    """

    factory: PoetryProxyFactory

    def __init__(self) -> None:
        self._pending: Deferred[bytes] | None = None

    def connectionMade(self) -> None:
        d = maybeDeferred(self.factory.service.get_poem)
        if not d.called:
            self._pending = d
        d.addCallbacks(self._send_poem, self._give_up)

    def _send_poem(self, poem: bytes) -> None:
        self._pending = None
        self.transport.write(poem)
        self.transport.loseConnection()

    def _give_up(self, failure: Failure) -> None:
        self._pending = None
        if not failure.check(CancelledError):
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            log.info("client left before the poem arrived; it stops waiting")
            pending.cancel()


class PoetryProxyFactory(ServerFactory):
    """Build a :class:`PoetryProxyProtocol` per client, all sharing one ``service``."""

    protocol = PoetryProxyProtocol

    def __init__(self, service: Any) -> None:
        self.service = service


def listen_proxy(
    reactor: Any,
    upstream: Address | tuple[str, int] | str,
    port: int = 0,
    interface: str = "127.0.0.1",
    ttl: float = DEFAULT_TTL,
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT,
) -> interfaces.IListeningPort:
    """Listen as a caching proxy for the poetry server at ``upstream``; return the port.

    The :class:`ProxyService` is ``port.factory.service``. Call it in the reactor thread.
    """
    service = ProxyService(reactor, upstream, ttl=ttl, timeout=timeout)
    return reactor.listenTCP(port, PoetryProxyFactory(service), interface=interface)


def configure_serve_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``poetrylab serve proxy``."""
    parser.add_argument(
        "--upstream", required=True, metavar="HOST:PORT", help="the poetry server to fetch from"
    )
    parser.add_argument(
        "--ttl",
        type=float,
        default=DEFAULT_TTL,
        help=f"seconds a fetched poem stays cached (default {DEFAULT_TTL:g})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_UPSTREAM_TIMEOUT,
        help=f"seconds one upstream fetch may take (default {DEFAULT_UPSTREAM_TIMEOUT:g})",
    )


def start_serving(reactor: Any, args: argparse.Namespace) -> list[Any]:
    """Start the caching proxy; return its listening port."""
    upstream = parse_address(args.upstream)
    return [listen_proxy(reactor, upstream, args.port, args.iface, args.ttl, args.timeout)]
