"""Checks for notebook 07 (the caching proxy).

* :func:`check_poem_cache` — the learner's ``PoemCache(fetch)``: ``get_poem(name)`` returns
  an already-fired Deferred (``succeed``) on a hit, fetches once on a miss, and caches
  nothing when the fetch fails.
* :func:`check_proxy_protocol` — the learner's proxy protocol: it cancels the pending
  fetch when its client hangs up, and still serves poems, from a synchronous service too.

Both use hand-fired Deferreds and ``StringTransport``: no sockets, no waiting.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from poetrylab.exercises._deferreds import describe, expect_deferred, outcome_of
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet, exercise, subclass

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


def _get_poem(cache: object, name: str) -> object:
    get_poem = getattr(cache, "get_poem", None)
    if not callable(get_poem):
        raise NotYet(
            "your cache has no method get_poem",
            expected="def get_poem(self, name): ... in PoemCache",
            got=f"get_poem = {short(get_poem)}",
        )
    return call_learner(f"get_poem({name!r})", get_poem, name)


@exercise("07", subclass(object, "PoemCache(fetch)"), title="a cache of many poems")
def check_poem_cache(cache_class: Callable[[_Upstream], object]) -> str:
    """A hit is ``succeed(poem)``; a miss fetches once; a failure is not cached."""
    upstream = _Upstream()
    keep_it = "__init__ takes the fetch function and keeps it"
    cache = call_learner("PoemCache(fetch)", cache_class, upstream, hint=keep_it)
    first = expect_deferred(
        _get_poem(cache, "tyger"),
        "on a miss, get_poem should return the fetch's Deferred",
        expected="a Deferred",
        hint="d = self.fetch(name); add a callback that stores the poem; return d",
    )
    if upstream.calls != ["tyger"]:
        raise NotYet(
            "a miss should call fetch(name) once",
            expected="fetch('tyger') called once",
            got=f"fetch calls: {upstream.calls}",
        )
    # The first caller's own callback uses the poem up, as callers' last callbacks do.
    arrived: list[object] = []
    first.addBoth(arrived.append)
    upstream.pending[0].callback(POEM)
    if arrived != [POEM]:
        raise NotYet(
            "the first caller did not get the poem",
            expected=short(POEM),
            got=describe(arrived[0]) if arrived else "nothing yet",
            hint="the callback that stores the poem must also return it",
        )
    second = expect_deferred(
        _get_poem(cache, "tyger"),
        "on a hit, get_poem should return a Deferred too",
        expected="succeed(poem): a Deferred that has already fired",
        hint="callers then handle hits and misses the same way: return succeed(poem)",
    )
    if len(upstream.calls) != 1:
        raise NotYet(
            "the second request for the same poem fetched it again",
            expected="no second fetch",
            got=f"fetch calls: {upstream.calls}",
            hint="store the poem in a callback on the fetch's Deferred",
        )
    if second is first:
        raise NotYet(
            "a hit handed back the Deferred the first caller got",
            expected="a new Deferred that has already fired with the poem: succeed(poem)",
            got="the first caller's Deferred, whose result that caller's callbacks have "
            "already used up (it now holds None)",
            hint="a Deferred's result passes through every callback added to it, the first "
            "caller's too: keep the poem itself in the cache, and return succeed(poem).",
        )
    if not second.called:
        outcome_of(second)  # nothing more will fire it
        raise NotYet(
            "a hit should be a Deferred that has already fired",
            expected="second.called is True: succeed(poem)",
            got="second.called is False: the Deferred has not fired yet",
            hint="succeed(poem) makes a Deferred that has fired already: callbacks added to "
            "it run at once.",
        )
    hit = outcome_of(second)
    if not hit.is_value(POEM):
        raise NotYet(
            "a hit should be a Deferred already fired with the poem",
            expected=f"a Deferred fired with {short(POEM)}",
            got=f"a Deferred fired with {hit}"
            + (
                ": did the cache keep a Deferred whose result was used up?"
                if hit.is_value(None)
                else ""
            ),
            hint="keep the poem itself in the cache (the callback's argument), not a Deferred",
        )
    third = expect_deferred(
        _get_poem(cache, "hope"),
        "a miss for another poem did not return a Deferred",
        expected="a Deferred",
    )
    upstream.pending[-1].errback(ConnectionRefusedError())
    failed = outcome_of(third)
    if not failed.failed_with(ConnectionRefusedError):
        raise NotYet(
            "when the fetch fails, the caller should get the Failure",
            expected="a Failure (ConnectionRefusedError)",
            got=str(failed),
            hint="addCallback only: a storing errback would turn the failure into a 'poem'",
        )
    fourth = _get_poem(cache, "hope")
    if isinstance(fourth, Deferred):
        outcome_of(fourth)  # a cached Failure must not be left unhandled
    if upstream.calls[-2:] != ["hope", "hope"]:
        raise NotYet(
            "after a failed fetch, the next request should fetch again",
            expected="fetch('hope') called a second time",
            got=f"fetch calls: {upstream.calls}",
            hint="cache only successes: addCallback, not addBoth",
        )
    return "hits come back at once, misses fetch once, failures are not kept."


class _SlowService:
    """A service whose fetch never answers; it counts cancellations."""

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


class _ServiceFactory(ServerFactory):
    def __init__(self, service: object) -> None:
        self.service = service


def _connect(
    protocol_class: Callable[[], Protocol], service: object, what: str
) -> tuple[Protocol, StringTransport]:
    protocol = call_learner(f"building your protocol for {what}", protocol_class)
    protocol.factory = _ServiceFactory(service)
    transport = StringTransport()
    call_learner(
        f"serving {what}", protocol.makeConnection, transport,
        hint="keep connectionMade as given: maybeDeferred(get_poem)",
    )  # fmt: skip
    return protocol, transport


@exercise(
    "07", subclass(Protocol, "CancellingProxyProtocol()"), title="cancel when the client leaves"
)
def check_proxy_protocol(protocol_class: Callable[[], Protocol]) -> str:
    """Serve poems (Deferred or plain bytes); cancel the fetch when the client leaves."""
    for service, what in ((_CachedService(), "a cached poem"), (_SyncService(), "plain bytes")):
        protocol, transport = _connect(protocol_class, service, what)
        if transport.value() != POEM.encode() or not transport.disconnecting:
            raise NotYet(
                f"serving {what}: the poem was not written, or the connection not closed",
                expected=f"{short(POEM.encode())}, then the connection closed",
                got=short(transport.value())
                + ("" if transport.disconnecting else ", and the connection left open"),
                hint="keep send_poem as given: it writes the poem and closes",
            )
        call_learner(
            "connectionLost after the poem had been sent",
            protocol.connectionLost, Failure(ConnectionDone()),
            hint="once the poem is sent there is nothing to cancel: check for None first",
        )  # fmt: skip
    slow = _SlowService()
    protocol, _ = _connect(protocol_class, slow, "a service that never answers")
    call_learner(
        "connectionLost while the fetch was pending",
        protocol.connectionLost, Failure(ConnectionDone()),
    )  # fmt: skip
    if slow.cancelled != 1:
        raise NotYet(
            "the client left, but the fetch was not cancelled",
            expected="the pending Deferred's cancel() called once",
            got=f"cancel() called {slow.cancelled} times",
            hint="connectionLost is where the protocol hears that its client left: cancel "
            "what it still waits for, if anything (once the poem is sent, pending is None)",
        )
    return "a client that leaves no longer keeps an upstream fetch alive."
