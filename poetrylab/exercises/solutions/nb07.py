"""Model answers for notebook 07 (the caching proxy), with wrong answers to catch."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from poetrylab.exercises import Answers


class PoemCache:
    """succeed() on a hit; on a miss, fetch and store the poem (successes only)."""

    def __init__(self, fetch: Any) -> None:
        self.fetch = fetch
        self.poems: dict[str, str] = {}

    def get_poem(self, name: str) -> Deferred[str]:
        if name in self.poems:
            return succeed(self.poems[name])

        def store(poem: str) -> str:
            self.poems[name] = poem
            return poem

        return self.fetch(name).addCallback(store)


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

    def connectionMade(self) -> None:
        self.pending: Deferred[bytes] | None = maybeDeferred(self.factory.service.get_poem)
        self.pending.addCallbacks(self.send_poem, self.give_up)

    def send_poem(self, poem: bytes) -> None:
        self.pending = None
        self.transport.write(poem)
        self.transport.loseConnection()

    def give_up(self, failure: Failure) -> None:
        self.pending = None
        if not failure.check(CancelledError):
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self.pending is not None:
            self.pending.cancel()


class NeverCancels(ProxyProtocol):
    """Wrong (the starter): the fetch goes on for nobody."""

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        pass


class CancelsBlindly(ProxyProtocol):
    """Wrong: after the poem was sent, pending is None and this raises."""

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.pending.cancel()  # type: ignore[union-attr]


SOLUTIONS = {
    "check_poem_cache": Answers(solution=PoemCache, wrong=[NoCache, CachesFailures, PlainHit]),
    "check_proxy_protocol": Answers(
        solution=ProxyProtocol, wrong=[NeverCancels, CancelsBlindly, Protocol]
    ),
}
