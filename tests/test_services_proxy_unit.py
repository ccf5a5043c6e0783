"""The caching proxy without sockets: hits, shared misses, expiry, failures, cancellation."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from poetrylab.download import Address, Download
from poetrylab.services._sharing import SharedOutcome
from poetrylab.services.proxy import (
    PoemTooLargeError,
    PoetryProxyFactory,
    ProxyService,
    fetch_poem,
)
from poetrylab.testing import drain

POEM = b"Tyger Tyger, burning bright\n"


class FakeUpstream:
    """A fetch function whose Deferreds the test fires by hand; records cancellations."""

    def __init__(self) -> None:
        self.fetches: list[Deferred[Any]] = []
        self.cancelled = 0

    def __call__(self, reactor: Any, address: Address, timeout: float) -> Deferred[Any]:
        def cancel(d: Deferred[Any]) -> None:
            self.cancelled += 1

        d: Deferred[Any] = Deferred(cancel)
        self.fetches.append(d)
        return d


def make_service(ttl: float = 60.0) -> tuple[ProxyService, FakeUpstream, Clock]:
    clock = Clock()
    upstream = FakeUpstream()
    return ProxyService(clock, "127.0.0.1:9", ttl=ttl, fetch=upstream), upstream, clock


def outcome(d: Deferred[Any]) -> list[Any]:
    results: list[Any] = []
    d.addBoth(results.append)
    return results


def test_a_miss_fetches_and_a_hit_answers_at_once_from_the_cache() -> None:
    service, upstream, _ = make_service()
    first = outcome(service.get_poem())
    assert first == [] and len(upstream.fetches) == 1
    upstream.fetches[0].callback(POEM)
    assert first == [POEM]
    second = service.get_poem()
    assert second.called, "a hit is an already-fired Deferred (succeed)"
    assert outcome(second) == [POEM]
    assert (service.hits, service.misses, service.fetches) == (1, 1, 1)


def test_the_default_fetch_result_may_be_a_download() -> None:
    service, upstream, _ = make_service()
    got = outcome(service.get_poem())
    download = Download(Address("127.0.0.1", 9))
    download.receive(POEM)
    upstream.fetches[0].callback(download)
    assert got == [POEM]


def test_concurrent_misses_share_one_upstream_fetch() -> None:
    service, upstream, _ = make_service()
    waiters = [outcome(service.get_poem()) for _ in range(5)]
    assert len(upstream.fetches) == 1
    assert service.waiting == 5
    upstream.fetches[0].callback(POEM)
    assert waiters == [[POEM]] * 5
    assert service.waiting == 0


def test_a_cache_entry_expires_after_ttl_seconds() -> None:
    service, upstream, clock = make_service(ttl=10.0)
    service.get_poem()
    upstream.fetches[0].callback(POEM)
    clock.advance(9.9)
    assert service.get_poem().called
    clock.advance(0.1)
    assert service.cached is None
    pending = outcome(service.get_poem())
    assert len(upstream.fetches) == 2 and pending == []


def test_an_upstream_failure_fails_every_waiter_and_caches_nothing() -> None:
    service, upstream, _ = make_service()
    a, b = outcome(service.get_poem()), outcome(service.get_poem())
    upstream.fetches[0].errback(ConnectionResetError("upstream died mid-poem"))
    for got in (a, b):
        assert isinstance(got[0], Failure) and got[0].check(ConnectionResetError)
    assert service.cached is None
    service.get_poem()
    assert len(upstream.fetches) == 2, "the next client triggers a new fetch"


def test_one_waiter_leaving_does_not_cancel_the_fetch_others_wait_for() -> None:
    service, upstream, _ = make_service()
    leaving = service.get_poem()
    staying = outcome(service.get_poem())
    leaving.addErrback(lambda f: f.trap(CancelledError))
    leaving.cancel()
    assert upstream.cancelled == 0
    upstream.fetches[0].callback(POEM)
    assert staying == [POEM]


def test_the_last_waiter_leaving_cancels_the_upstream_fetch_and_caches_nothing() -> None:
    service, upstream, _ = make_service()
    waiters = [service.get_poem(), service.get_poem()]
    for d in waiters:
        d.addErrback(lambda f: f.trap(CancelledError))
        d.cancel()
    assert upstream.cancelled == 1
    assert service.cached is None
    service.get_poem()
    assert len(upstream.fetches) == 2


def test_a_fetch_that_fails_at_once_is_not_left_in_flight() -> None:
    def broken(reactor: Any, address: Address, timeout: float) -> Deferred[Any]:
        raise OSError("no route")

    service = ProxyService(Clock(), "127.0.0.1:9", fetch=broken)
    for _ in range(2):
        got = outcome(service.get_poem())
        assert got[0].check(OSError)
    assert service.fetches == 2


@pytest.mark.parametrize("ttl", [-1.0, float("nan")])
def test_a_negative_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError):
        ProxyService(Clock(), "127.0.0.1:9", ttl=ttl)


def test_shared_outcome_hands_a_late_waiter_the_stored_result() -> None:
    work: Deferred[int] = Deferred()
    shared = SharedOutcome(work)
    work.callback(3)
    assert shared.done and outcome(shared.wait()) == [3]


# --- the protocol -----------------------------------------------------------------------


def connect(service: Any) -> tuple[Any, StringTransport]:
    proto = PoetryProxyFactory(service).buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def test_protocol_writes_the_poem_and_closes_when_the_fetch_arrives() -> None:
    service, upstream, _ = make_service()
    _, transport = connect(service)
    assert drain(transport) == b""
    upstream.fetches[0].callback(POEM)
    assert drain(transport) == POEM and transport.disconnecting


def test_protocol_works_with_a_synchronous_service_through_maybe_deferred() -> None:
    class DictService:
        def get_poem(self) -> bytes:
            return POEM

    _, transport = connect(DictService())
    assert drain(transport) == POEM and transport.disconnecting


def test_upstream_failure_closes_the_client_without_a_byte_and_caches_nothing() -> None:
    service, upstream, _ = make_service()
    _, transport = connect(service)
    upstream.fetches[0].errback(ConnectionResetError("upstream died mid-poem"))
    assert drain(transport) == b"" and transport.disconnecting
    assert service.cached is None


def test_client_leaving_mid_fetch_cancels_the_upstream_fetch() -> None:
    service, upstream, _ = make_service()
    proto, _ = connect(service)
    proto.connectionLost(Failure(ConnectionDone()))
    assert upstream.cancelled == 1


def test_client_leaving_keeps_the_fetch_going_for_another_client() -> None:
    service, upstream, _ = make_service()
    leaving, _ = connect(service)
    _, staying = connect(service)
    leaving.connectionLost(Failure(ConnectionDone()))
    assert upstream.cancelled == 0
    upstream.fetches[0].callback(POEM)
    assert drain(staying) == POEM


def test_a_client_half_closing_while_the_poem_is_fetched_is_taken_as_gone() -> None:
    service, upstream, _ = make_service()
    proto, transport = connect(service)
    assert IHalfCloseableProtocol.providedBy(proto)
    proto.readConnectionLost()  # FIN before anything was sent: cannot be told from leaving
    assert upstream.cancelled == 1, "nobody else waits: the fetch is cancelled"
    assert transport.disconnecting and drain(transport) == b""


def test_a_client_half_closing_once_the_poem_is_on_its_way_gets_all_of_it() -> None:
    service, upstream, _ = make_service()
    proto, transport = connect(service)
    upstream.fetches[0].callback(POEM * 2000)  # 56 KB: more than one chunk
    proto.readConnectionLost()  # `nc -N` after the first chunk
    assert drain(transport) == POEM * 2000 and transport.disconnecting


def test_a_client_that_takes_none_of_the_poem_is_dropped_after_the_send_timeout() -> None:
    service, upstream, clock = make_service()
    proto = PoetryProxyFactory(service, send_timeout=4.0).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    upstream.fetches[0].callback(POEM * 2000)
    clock.advance(3.75)
    assert not getattr(transport, "disconnected", False)
    clock.advance(0.25)
    assert getattr(transport, "disconnected", False), "aborted after 4 s without progress"


# --- the upstream fetch: a size cap and a time cap ----------------------------------------


def _upstream_connection(reactor: MemoryReactorClock) -> tuple[Any, StringTransport]:
    """The protocol fetch_poem connected (through its endpoint), on a StringTransport."""
    host, port, factory, _, _ = reactor.tcpClients[-1]
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def test_fetch_poem_returns_the_bytes_when_upstream_closes_cleanly() -> None:
    reactor = MemoryReactorClock()
    got = outcome(fetch_poem(reactor, Address("127.0.0.1", 9), timeout=5, max_bytes=100))
    proto, _ = _upstream_connection(reactor)
    proto.dataReceived(b"Tyger ")
    proto.dataReceived(b"Tyger")
    proto.connectionLost(Failure(ConnectionDone()))
    assert got == [b"Tyger Tyger"]


def test_fetch_poem_gives_up_on_an_upstream_that_sends_more_than_max_bytes() -> None:
    reactor = MemoryReactorClock()
    got = outcome(fetch_poem(reactor, Address("127.0.0.1", 9), timeout=5, max_bytes=100))
    proto, transport = _upstream_connection(reactor)
    for _ in range(20):  # an upstream that streams without end
        proto.dataReceived(b"x" * 10)
    assert isinstance(got[0], Failure) and got[0].check(PoemTooLargeError)
    assert "100" in got[0].getErrorMessage()
    assert getattr(transport, "disconnected", False), "the upstream connection is aborted"


def test_fetch_poem_gives_up_on_an_upstream_slower_than_the_timeout() -> None:
    reactor = MemoryReactorClock()
    got = outcome(fetch_poem(reactor, Address("127.0.0.1", 9), timeout=5, max_bytes=100))
    proto, transport = _upstream_connection(reactor)
    proto.dataReceived(b"a trickle")
    reactor.advance(5)
    assert isinstance(got[0], Failure) and got[0].check(TimeoutError)
    assert getattr(transport, "disconnected", False)
    assert reactor.getDelayedCalls() == []


def test_the_service_refuses_a_poem_over_max_bytes_from_any_fetch() -> None:
    clock = Clock()
    upstream = FakeUpstream()
    service = ProxyService(clock, "127.0.0.1:9", fetch=upstream, max_bytes=10)
    got = outcome(service.get_poem())
    upstream.fetches[0].callback(b"x" * 11)
    assert got[0].check(PoemTooLargeError) and service.cached is None
