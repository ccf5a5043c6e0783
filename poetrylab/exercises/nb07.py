"""Checks for notebook 07 (the caching proxy).

* :func:`check_poem_cache` — the learner's ``PoemCache(fetch)``: ``get_poem(name)`` returns
  an already-fired Deferred (``succeed``) on a hit, fetches once on a miss, and caches
  nothing when the fetch fails.
* :func:`check_proxy_protocol` — the learner's proxy protocol: it cancels the pending
  fetch when its client hangs up, and still serves poems, from a synchronous service too.

Both use hand-fired Deferreds and ``StringTransport``: no sockets, no waiting.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from poetrylab.exercises._feedback import (
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
    short,
)

__all__ = ["check_poem_cache", "check_proxy_protocol"]

POEM = "Tyger Tyger, burning bright,\n"


class _Upstream:
    """A fetch function whose Deferreds the check fires by hand."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.pending: list[Deferred[str]] = []

    def __call__(self, name: str) -> Deferred[str]:
        self.calls.append(name)
        d: Deferred[str] = Deferred()
        self.pending.append(d)
        return d


def _outcome(d: Deferred[Any]) -> list[Any]:
    results: list[Any] = []
    d.addBoth(results.append)
    return results


@exercise("07")
def check_poem_cache(cache_class: Any) -> Feedback:
    """A hit is ``succeed(poem)``; a miss fetches once; a failure is not cached."""
    name = "poem cache"
    upstream = _Upstream()
    ok, cache = run_learner_code(cache_class, upstream)
    if not ok:
        return failed(
            name,
            "PoemCache(fetch) raised",
            got=cache,
            hint="__init__ takes the fetch function and keeps it",
        )
    ok, first = run_learner_code(cache.get_poem, "tyger")
    if not ok or not isinstance(first, Deferred):
        return failed(
            name,
            "on a miss, get_poem should return the fetch's Deferred",
            expected="a Deferred",
            got=first if not ok else short(first),
            hint="d = self.fetch(name); add a callback that stores the poem; return d",
        )
    if upstream.calls != ["tyger"]:
        return failed(
            name,
            "a miss should call fetch(name) once",
            expected="fetch('tyger') called once",
            got=f"fetch calls: {upstream.calls}",
        )
    result = _outcome(first)
    upstream.pending[0].callback(POEM)
    if result != [POEM]:
        return failed(
            name,
            "the first caller did not get the poem",
            expected=short(POEM),
            got=short(result[0] if result else "nothing yet"),
            hint="the callback that stores the poem must also return it",
        )
    ok, second = run_learner_code(cache.get_poem, "tyger")
    if not ok or not isinstance(second, Deferred):
        return failed(
            name,
            "on a hit, get_poem should return a Deferred too",
            expected="succeed(poem): a Deferred that has already fired",
            got=second if not ok else short(second),
            hint="callers then handle hits and misses the same way: return succeed(poem)",
        )
    if len(upstream.calls) != 1:
        return failed(
            name,
            "the second request for the same poem fetched it again",
            expected="no second fetch",
            got=f"fetch calls: {upstream.calls}",
            hint="store the poem in a callback on the fetch's Deferred",
        )
    if not second.called or _outcome(second) != [POEM]:
        return failed(
            name,
            "a hit should be an already-fired Deferred holding the poem",
            expected="second.called is True",
            got=f"second.called is {second.called}",
        )
    ok, third = run_learner_code(cache.get_poem, "hope")
    if not ok or not isinstance(third, Deferred):
        return failed(name, "a miss for another poem did not return a Deferred", got=short(third))
    failure_seen = _outcome(third)
    upstream.pending[-1].errback(ConnectionRefusedError())
    if not (failure_seen and isinstance(failure_seen[0], Failure)):
        return failed(
            name,
            "when the fetch fails, the caller should get the Failure",
            expected="a Failure (ConnectionRefusedError)",
            got=short(failure_seen[0] if failure_seen else "nothing"),
            hint="addCallback only: a storing errback would turn the failure into a 'poem'",
        )
    ok, fourth = run_learner_code(cache.get_poem, "hope")
    if isinstance(fourth, Deferred):
        fourth.addErrback(lambda f: None)  # a cached Failure must not be left unhandled
    if not ok or not isinstance(fourth, Deferred) or upstream.calls[-2:] != ["hope", "hope"]:
        return failed(
            name,
            "after a failed fetch, the next request should fetch again",
            expected="fetch('hope') called a second time",
            got=f"fetch calls: {upstream.calls}",
            hint="cache only successes: addCallback, not addBoth",
        )
    return passed(name, "hits come back at once, misses fetch once, failures are not kept.")


class _Factory:
    def __init__(self, service: Any) -> None:
        self.service = service


class _SlowService:
    def __init__(self) -> None:
        self.cancelled = 0

    def get_poem(self) -> Deferred[bytes]:
        def cancel(d: Deferred[bytes]) -> None:
            self.cancelled += 1

        return Deferred(cancel)


class _CachedService:
    def get_poem(self) -> Deferred[bytes]:
        return succeed(POEM.encode())


class _SyncService:
    def get_poem(self) -> bytes:
        return POEM.encode()


def _connect(protocol_class: Any, service: Any) -> tuple[bool, Any, StringTransport]:
    transport = StringTransport()
    ok, proto = run_learner_code(protocol_class)
    if not ok:
        return False, proto, transport
    proto.factory = _Factory(service)
    ok, error = run_learner_code(proto.makeConnection, transport)
    return ok, (proto if ok else error), transport


@exercise("07")
def check_proxy_protocol(protocol_class: Any) -> Feedback:
    """Serve poems (Deferred or plain bytes); cancel the fetch when the client leaves."""
    name = "cancel when the client leaves"
    for service, what in ((_CachedService(), "a cached poem"), (_SyncService(), "plain bytes")):
        ok, proto, transport = _connect(protocol_class, service)
        if not ok:
            return failed(
                name,
                f"serving {what} raised",
                got=proto,
                hint="keep connectionMade as given: maybeDeferred(get_poem)",
            )
        if transport.value() != POEM.encode() or not transport.disconnecting:
            return failed(
                name,
                f"serving {what}: the poem was not written (or not closed)",
                expected=short(POEM.encode()),
                got=short(transport.value()),
            )
        ok, error = run_learner_code(proto.connectionLost, Failure(ConnectionDone()))
        if not ok:
            return failed(
                name,
                "connectionLost raised after the poem had been sent",
                got=error,
                hint="once the poem is sent there is nothing to cancel: check for None first",
            )
    slow = _SlowService()
    ok, proto, transport = _connect(protocol_class, slow)
    if not ok:
        return failed(name, "connecting raised", got=proto)
    ok, error = run_learner_code(proto.connectionLost, Failure(ConnectionDone()))
    if not ok:
        return failed(name, "connectionLost raised while the fetch was pending", got=error)
    if slow.cancelled != 1:
        return failed(
            name,
            "the client left, but the fetch was not cancelled",
            expected="the pending Deferred's cancel() called once",
            got=f"cancel() called {slow.cancelled} times",
            hint="in connectionLost: if self.pending is not None, call self.pending.cancel()",
        )
    return passed(name, "a client that leaves no longer keeps an upstream fetch alive.")
