"""Model answers for notebook 07 (the caching proxy), with wrong answers to catch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from poetrylab.exercises import Answers

if TYPE_CHECKING:
    from poetrylab._typing import TCPTransport

Fetch = Callable[[str], Deferred[str]]


class PoemCache:
    """succeed() on a hit; on a miss, fetch and store the poem (successes only)."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.poems: dict[str, str] = {}

    def get_poem(self, name: str) -> Deferred[str]:
        if name in self.poems:
            return succeed(self.poems[name])

        def store(poem: str) -> str:
            self.poems[name] = poem
            return poem

        return self.fetch(name).addCallback(store)


class CachesTheDeferred(PoemCache):
    """Wrong: a hit hands out the first caller's Deferred, whose result that caller's
    callbacks have already used up."""

    def __init__(self, fetch: Fetch) -> None:
        super().__init__(fetch)
        self.deferreds: dict[str, Deferred[str]] = {}

    def get_poem(self, name: str) -> Deferred[str]:
        if name not in self.deferreds:
            self.deferreds[name] = self.fetch(name)
        return self.deferreds[name]


class ForgetsToFireTheHit(PoemCache):
    """Wrong: a hit is a new Deferred that nothing ever fires."""

    def get_poem(self, name: str) -> Deferred[str]:
        if name in self.poems:
            poem = self.poems[name]
            return Deferred[str]().addCallback(lambda _: poem)
        return super().get_poem(name)


class CachesAfterTheFact(PoemCache):
    """Also right: the hit is an already-fired Deferred, made by hand."""

    def get_poem(self, name: str) -> Deferred[str]:
        if name in self.poems:
            hit: Deferred[str] = Deferred()
            hit.callback(self.poems[name])
            return hit
        return super().get_poem(name)


class NoCache(PoemCache):
    """Wrong: fetches every time."""

    def get_poem(self, name: str) -> Deferred[str]:
        return self.fetch(name)


class CachesFailures(PoemCache):
    """Wrong: addBoth stores the Failure as if it were the poem."""

    def get_poem(self, name: str) -> Deferred[str]:
        if name in self.poems:
            return succeed(self.poems[name])

        def store(result: Any) -> Any:
            self.poems[name] = result
            return result

        return self.fetch(name).addBoth(store)


class PlainHit(PoemCache):
    """Wrong: a hit returns the bare poem, so callers must handle two kinds of result."""

    def get_poem(self, name: str) -> Any:
        if name in self.poems:
            return self.poems[name]
        return super().get_poem(name)


class ProxyProtocol(Protocol):
    """The notebook's starter with connectionLost written."""

    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def connectionMade(self) -> None:
        service = cast(Any, self.factory).service  # the proxy factory's poem service
        self.pending: Deferred[bytes] | None = maybeDeferred(service.get_poem)
        self.pending.addCallbacks(self.send_poem, self.give_up)

    def send_poem(self, poem: bytes) -> None:
        self.pending = None
        self.transport.write(poem)
        self.transport.loseConnection()

    def give_up(self, failure: Failure) -> None:
        self.pending = None
        if not failure.check(CancelledError):
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.pending is not None:
            self.pending.cancel()


class NeverCancels(ProxyProtocol):
    """Wrong (the starter): the fetch goes on for nobody."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        pass


class CancelsBlindly(ProxyProtocol):
    """Wrong: after the poem was sent, pending is None and this raises."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.pending.cancel()  # type: ignore[union-attr]  # the bug: pending may be None


SOLUTIONS = {
    "check_poem_cache": Answers(
        solution=PoemCache,
        wrong=[NoCache, CachesTheDeferred, ForgetsToFireTheHit, CachesFailures, PlainHit],
        also_right=[CachesAfterTheFact],
    ),
    "check_proxy_protocol": Answers(
        solution=ProxyProtocol, wrong=[NeverCancels, CancelsBlindly, Protocol]
    ),
}
