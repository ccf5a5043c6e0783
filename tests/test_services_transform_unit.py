"""The transformation service without sockets: registry guard, service, protocol, client."""

from __future__ import annotations

import logging

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from poetrylab.services.transform import (
    BadRequestError,
    NoReplyError,
    Refrain,
    TransformClientProtocol,
    TransformFactory,
    TransformRegistry,
    TransformService,
    UninspiredError,
    UnknownTransformError,
    count_syllables,
    cummingsify,
    default_registry,
    parse_request,
    scan,
    spoonerize,
    transform_poem,
    upside_down,
)
from poetrylab.testing import drain


def netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


def serve(factory: TransformFactory) -> tuple[object, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5555))
    proto.makeConnection(transport)
    return proto, transport


def make_factory(
    registry: TransformRegistry | None = None,
    clock: Clock | None = None,
    timeout: float | None = 5.0,
    max_request: int = 1000,
) -> TransformFactory:
    service = TransformService(clock or Clock(), registry or default_registry(), timeout)
    return TransformFactory(service, max_request=max_request, idle_timeout=30.0)


# --- the registry is the only way in ------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["_private", "__class__", "__init__", "Upper", "a.b", "", "x" * 33, "é"]
)
def test_registry_refuses_names_that_could_reach_private_or_dunder_things(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be a transform name"):
        TransformRegistry().register(name, str.upper)


@pytest.mark.parametrize(
    "name",
    ["register", "lookup", "names", "_transforms", "__class__", "__dict__", "xform_cummingsify"],
)
def test_lookup_finds_only_registered_transforms_never_attributes(name: str) -> None:
    registry = default_registry()
    with pytest.raises(UnknownTransformError):
        registry.lookup(name)
    d = TransformService(Clock(), registry).transform(name, "poem")
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures[0].check(UnknownTransformError)


def test_a_learner_adds_a_transform_with_the_decorator_and_rerunning_replaces_it() -> None:
    registry = default_registry()

    @registry.register("shout")
    def shout(poem: str) -> str:
        """Upper-case every letter."""
        return poem.upper()

    assert "shout" in registry
    assert registry.lookup("shout").summary == "Upper-case every letter."
    registry.register("shout", lambda poem: poem + "!")
    assert registry.lookup("shout").function("hi") == "hi!"
    assert registry.names() == sorted(
        ["cummingsify", "refrain", "scan", "shout", "spoonerize", "upside_down"]
    )
    with pytest.raises(TypeError):
        registry.register("broken", "not callable")  # type: ignore[arg-type]


# --- the built-in transforms ------------------------------------------------------------


def test_cummingsify_lower_cases() -> None:
    assert cummingsify("Tyger TYGER, burning Bright\n") == "tyger tyger, burning bright\n"


def test_upside_down_reverses_the_lines_and_keeps_the_final_newline() -> None:
    assert upside_down("one\ntwo\nthree\n") == "three\ntwo\none\n"


def test_spoonerize_swaps_the_first_pair_of_consonant_onsets_per_line() -> None:
    assert spoonerize("Once upon a midnight dreary\n") == "Once upon a dridnight meary\n"
    assert spoonerize("Tyger Tyger, burning bright") == "Tyger Byger, turning bright"
    assert spoonerize("Well sung\n") == "Sell wung\n"
    assert spoonerize("a e i o\n") == "a e i o\n"


def test_scan_marks_each_line_with_its_syllable_count() -> None:
    assert scan("Tyger Tyger, burning bright,\n\nIn the forests of the night;\n") == (
        "Tyger Tyger, burning bright,  [7]\n\nIn the forests of the night;  [7]\n"
    )
    assert [count_syllables(w) for w in ["while", "table", "pondered", "wanted", "the"]] == [
        1,
        2,
        2,
        2,
        1,
    ]


def test_refrain_fails_some_of_the_time_with_a_domain_error_deterministically() -> None:
    def outcomes(seed: int) -> list[str]:
        muse = Refrain(seed)
        results = []
        for _ in range(12):
            try:
                results.append(muse("one\ntwo\n"))
            except UninspiredError:
                results.append("uninspired")
        return results

    first = outcomes(7)
    assert first == outcomes(7), "the same seed gives the same run"
    assert 1 <= first.count("uninspired") <= 9
    assert all(r == "uninspired" or r.startswith("one\ntwo\n\n    ") for r in first)


# --- the service ------------------------------------------------------------------------


def test_service_runs_sync_and_deferred_transforms_and_checks_the_result_is_text() -> None:
    registry = TransformRegistry()
    registry.register("sync", str.upper)
    registry.register("later", lambda poem: succeed(poem[::-1]))
    registry.register("number", lambda poem: 42)
    service = TransformService(Clock(), registry)
    results: list[object] = []
    for name in ("sync", "later", "number"):
        service.transform(name, "abc").addBoth(results.append)
    assert results[:2] == ["ABC", "cba"]
    assert isinstance(results[2], Failure) and results[2].check(TypeError)


def test_service_times_out_a_transform_that_never_finishes_and_cancels_it() -> None:
    clock = Clock()
    cancelled: list[bool] = []
    registry = TransformRegistry()
    registry.register("forever", lambda poem: Deferred(lambda d: cancelled.append(True)))
    results: list[object] = []
    TransformService(clock, registry, timeout=2.0).transform("forever", "x").addBoth(results.append)
    clock.advance(1.9)
    assert results == []
    clock.advance(0.2)
    assert cancelled == [True]
    assert isinstance(results[0], Failure) and results[0].check(TimeoutError)


# --- parsing ----------------------------------------------------------------------------


def test_parse_request_splits_at_the_first_dot_only() -> None:
    assert parse_request(b"scan.A line. Another.") == ("scan", "A line. Another.")
    assert parse_request("cummingsify.Über".encode()) == ("cummingsify", "Über")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"no dot here",
        b".poem",
        b"__class__.x",
        b"Upper.x",
        b"n\xffame.x",
        b"scan.\xff\xfe",
        b"a b.c",
    ],
)
def test_parse_request_refuses_malformed_requests(request_bytes: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_request(request_bytes)


# --- the protocol -----------------------------------------------------------------------


def test_protocol_replies_with_one_netstring_then_closes() -> None:
    proto, transport = serve(make_factory())
    proto.dataReceived(netstring(b"cummingsify.HELLO World"))
    assert drain(transport) == netstring(b"hello world")
    assert transport.disconnecting


def test_protocol_accepts_a_request_split_across_many_reads() -> None:
    proto, transport = serve(make_factory())
    for byte in netstring("upside_down.a\nb\nü".encode()):
        proto.dataReceived(bytes([byte]))
    assert drain(transport) == netstring("ü\nb\na".encode())


@pytest.mark.parametrize(
    "data",
    [
        netstring(b"nosuchthing.poem"),
        netstring(b"__class__.poem"),
        netstring(b"no dot at all"),
        b"5:hello world,",
        b"abc:def,",
        b"5:hello;",
        b"99999999999:x",
    ],
    ids=["unknown", "dunder", "no-dot", "wrong-length", "not-a-length", "no-comma", "oversized"],
)
def test_bad_requests_close_the_connection_without_a_reply_and_are_logged(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    proto, transport = serve(make_factory())
    with caplog.at_level(logging.WARNING, logger="poetrylab.services.transform"):
        proto.dataReceived(data)
    assert drain(transport) == b""
    assert transport.disconnecting
    assert caplog.records, "the refusal is logged"


def test_a_request_over_max_request_is_refused_before_it_is_all_read() -> None:
    proto, transport = serve(make_factory(max_request=100))
    proto.dataReceived(b"101:")
    assert transport.disconnecting and drain(transport) == b""


def test_a_transform_that_raises_is_contained_and_the_next_client_is_served() -> None:
    registry = default_registry()

    def explode(poem: str) -> str:
        raise RuntimeError("boom")

    registry.register("explode", explode)
    factory = make_factory(registry)
    proto, transport = serve(factory)
    proto.dataReceived(netstring(b"explode.poem"))
    assert drain(transport) == b"" and transport.disconnecting
    proto2, transport2 = serve(factory)
    proto2.dataReceived(netstring(b"cummingsify.OK"))
    assert drain(transport2) == netstring(b"ok")


def test_a_failing_domain_transform_closes_without_a_reply() -> None:
    registry = TransformRegistry()
    registry.register("refrain", Refrain(seed=0, failure_rate=1.0))
    proto, transport = serve(make_factory(registry))
    proto.dataReceived(netstring(b"refrain.a poem"))
    assert drain(transport) == b"" and transport.disconnecting


def test_a_transform_that_runs_too_long_is_cut_off_after_the_timeout() -> None:
    clock = Clock()
    registry = TransformRegistry()
    registry.register("slow", lambda poem: Deferred())
    proto, transport = serve(make_factory(registry, clock, timeout=3.0))
    proto.dataReceived(netstring(b"slow.poem"))
    assert not transport.disconnecting
    clock.advance(3.0)
    assert transport.disconnecting and drain(transport) == b""


def test_client_hanging_up_cancels_the_transform() -> None:
    cancelled: list[bool] = []
    registry = TransformRegistry()
    registry.register("slow", lambda poem: Deferred(lambda d: cancelled.append(True)))
    proto, transport = serve(make_factory(registry))
    proto.dataReceived(netstring(b"slow.poem"))
    proto.connectionLost(Failure(ConnectionDone()))
    assert cancelled == [True]


def test_only_the_first_request_on_a_connection_is_answered() -> None:
    proto, transport = serve(make_factory())
    proto.dataReceived(netstring(b"cummingsify.A") + netstring(b"cummingsify.B"))
    assert drain(transport) == netstring(b"a")


def test_a_silent_client_is_dropped_after_the_idle_timeout() -> None:
    clock = Clock()
    factory = make_factory(clock=clock)
    factory.idle_timeout = 10.0
    proto, transport = serve(factory)
    proto.dataReceived(b"5:he")
    clock.advance(10.0)
    assert drain(transport) == b""
    assert transport.disconnecting or getattr(transport, "disconnected", False)


def test_a_request_followed_by_a_half_close_still_gets_its_reply() -> None:
    proto, transport = serve(make_factory())
    assert IHalfCloseableProtocol.providedBy(proto)
    proto.dataReceived(netstring(b"cummingsify.NC -N"))
    proto.readConnectionLost()  # `nc -N`: the request, then end of input
    assert drain(transport) == netstring(b"nc -n") and transport.disconnecting


def test_a_half_close_before_the_request_is_complete_closes_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proto, transport = serve(make_factory())
    proto.dataReceived(b"20:cummingsify.")
    with caplog.at_level(logging.WARNING, logger="poetrylab.services.transform"):
        proto.readConnectionLost()
    assert transport.disconnecting and drain(transport) == b""
    [record] = caplog.records
    assert record.getMessage().startswith("127.0.0.1:5555: ") and "complete" in record.getMessage()


def test_a_client_that_takes_none_of_the_reply_is_dropped_after_the_send_timeout() -> None:
    clock = Clock()
    factory = make_factory(clock=clock, max_request=300_000)
    factory.send_timeout = 2.0
    proto, transport = serve(factory)
    proto.dataReceived(netstring(b"cummingsify." + b"X" * 200_000))
    transport.producer.resumeProducing()  # what a real transport does when registering it
    assert 0 < len(transport.value()) < 200_000, "the reply goes out a chunk at a time"
    clock.advance(1.75)
    transport.producer.resumeProducing()  # the client took a chunk
    clock.advance(1.75)
    assert not getattr(transport, "disconnected", False)
    clock.advance(0.25)
    assert getattr(transport, "disconnected", False), "aborted: it took nothing for 2 s"


def test_factory_refuses_a_silly_max_request() -> None:
    with pytest.raises(ValueError):
        TransformFactory(TransformService(Clock()), max_request=1)


# --- the client -------------------------------------------------------------------------


def test_client_protocol_sends_the_request_and_fires_with_the_reply() -> None:
    proto = TransformClientProtocol("cummingsify", "Über ALLES")
    transport = StringTransport()
    proto.makeConnection(transport)
    assert drain(transport) == netstring("cummingsify.Über ALLES".encode())
    results: list[str] = []
    proto.reply.addCallback(results.append)
    proto.dataReceived(netstring("über alles".encode()))
    assert results == ["über alles"]
    assert transport.disconnecting


def test_client_protocol_fails_with_no_reply_when_the_server_just_closes() -> None:
    proto = TransformClientProtocol("nosuch", "poem")
    proto.makeConnection(StringTransport())
    failures: list[Failure] = []
    proto.reply.addErrback(failures.append)
    proto.connectionLost(Failure(ConnectionDone()))
    assert failures[0].check(NoReplyError)
    assert "without a reply" in str(failures[0].value)


@pytest.mark.parametrize("name", ["a.b", "", "naïve"])
def test_transform_poem_refuses_names_the_protocol_cannot_carry(name: str) -> None:
    with pytest.raises(ValueError):
        transform_poem(Clock(), "127.0.0.1:1", name, "poem")
