"""The tagged backend and the multiplexing client without sockets (Clock, StringTransport)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from poetrylab.services.tagged import (
    BackendError,
    BackendLostError,
    BackendUnavailableError,
    BadLineError,
    PoetryBackend,
    TaggedBackendFactory,
    TaggedClient,
    TaggedClientProtocol,
    format_reply,
    format_request,
    parse_reply,
    parse_request,
)

POEMS = {"tyger": "Tyger Tyger,\nburning bright\n", "hope": "Hope is the thing\n"}


def backend(clock: Clock | None = None, **kwargs: Any) -> PoetryBackend:
    return PoetryBackend(clock or Clock(), poems=POEMS, **kwargs)


def serve(factory: TaggedBackendFactory) -> tuple[Any, StringTransport]:
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 2))
    proto.makeConnection(transport)
    return proto, transport


def replies(transport: StringTransport) -> list[tuple[str, Any, BackendError | None]]:
    return [parse_reply(line) for line in transport.value().splitlines()]


# --- lines ------------------------------------------------------------------------------


def test_a_poem_with_newlines_travels_on_one_line_and_comes_back_intact() -> None:
    text = 'line one\nline "two"\r\n\ttabbed, ünïcode\n'
    request = format_request("7", "transform", ["cummingsify", text])
    assert b"\n" not in request and request.isascii()
    assert parse_request(request) == ("7", "transform", ["cummingsify", text])
    reply = format_reply("7", text)
    assert b"\n" not in reply
    assert parse_reply(reply) == ("7", text, None)


def test_error_replies_carry_a_code_and_a_message() -> None:
    line = format_reply("x:1", error=BackendError("not-found", "no poem"))
    tag, result, error = parse_reply(line)
    assert (tag, result) == ("x:1", None)
    assert (error.code, error.message) == ("not-found", "no poem")


@pytest.mark.parametrize(
    ("line", "tag"),
    [
        (b"", None), (b"   ", None), (b"\xff\xfe add [1,2]", None), (b"{bad} add [1,2]", None),
        (b"7", "7"), (b"7 ADD [1]", "7"), (b"7 add [1, 2", "7"), (b"7 add {\"a\": 1}", "7"),
        (b"7 add [NaN, 1]", "7"), (b"7 add " + b"[" * 100000, "7"), (b"7 add \xff", "7"),
    ],
)  # fmt: skip
def test_parse_request_says_whether_the_tag_of_a_bad_line_could_be_read(
    line: bytes, tag: str | None
) -> None:
    with pytest.raises(BadLineError) as info:
        parse_request(line)
    assert info.value.tag == tag


def test_a_request_without_arguments_needs_no_json() -> None:
    assert parse_request(b"a-1 list_poems") == ("a-1", "list_poems", [])


# --- the backend service ----------------------------------------------------------------


def run(backend: PoetryBackend, verb: str, *args: Any) -> Any:
    results: list[Any] = []
    backend.handle(verb, list(args)).addBoth(results.append)
    assert results, "answered at once (no delay configured)"
    result = results[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def test_backend_verbs_add_list_fetch_and_transform() -> None:
    b = backend()
    assert run(b, "add", 2, 3) == 5
    assert run(b, "add", 0.5, 2) == 2.5
    assert run(b, "list_poems") == ["hope", "tyger"]
    assert run(b, "poem", "hope") == "Hope is the thing\n"
    assert run(b, "transform", "cummingsify", "HOPE") == "hope"


@pytest.mark.parametrize(
    ("verb", "args", "code"),
    [
        ("delete", [], "unknown-verb"),
        ("__init__", [], "unknown-verb"),
        ("add", [1], "bad-arguments"),
        ("add", [True, 1], "bad-arguments"),
        ("add", ["1", 1], "bad-arguments"),
        ("add", [1e308, 1e308], "bad-arguments"),
        ("poem", ["/etc/passwd"], "not-found"),
        ("poem", ["../poems/tyger"], "not-found"),
        ("poem", [3], "bad-arguments"),
        ("transform", ["nosuch", "x"], "not-found"),
        ("transform", ["__class__", "x"], "not-found"),
    ],
)
def test_backend_errors_say_what_was_wrong(verb: str, args: list[Any], code: str) -> None:
    with pytest.raises(BackendError) as info:
        run(backend(), verb, *args)
    assert info.value.code == code
    assert info.value.message


def test_a_failing_transform_is_a_transform_failed_error() -> None:
    b = backend(seed=0)
    codes = set()
    for _ in range(12):
        try:
            run(b, "transform", "refrain", "a\nb\n")
        except BackendError as exc:
            codes.add(exc.code)
    assert codes == {"transform-failed"}


def test_backend_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError):
        backend(delay=-1)


# --- the backend protocol ---------------------------------------------------------------


def test_replies_come_back_out_of_order_each_with_its_own_tag() -> None:
    clock = Clock()
    factory = TaggedBackendFactory(backend(clock, delay=0.01, jitter=1.0, seed=3))
    proto, transport = serve(factory)
    for i in range(20):
        proto.dataReceived(format_request(f"t{i}", "add", [i, 1000]) + b"\n")
    assert transport.value() == b"", "nothing before the delay"
    clock.pump([0.05] * 30)
    got = replies(transport)
    assert sorted(tag for tag, _, _ in got) == sorted(f"t{i}" for i in range(20))
    assert all(result == int(tag[1:]) + 1000 for tag, result, _ in got)
    assert [tag for tag, _, _ in got] != [f"t{i}" for i in range(20)], "jitter reorders replies"


def test_crlf_and_blank_lines_are_accepted() -> None:
    proto, transport = serve(TaggedBackendFactory(backend()))
    proto.dataReceived(b"\r\n\n1 add [1,1]\r\n")
    assert replies(transport) == [("1", 2, None)]


def test_a_bad_line_with_a_readable_tag_gets_a_tagged_error_and_the_connection_goes_on() -> None:
    proto, transport = serve(TaggedBackendFactory(backend()))
    proto.dataReceived(b"9 add [1, oops]\n10 add [1,2]\n")
    (tag1, _, error), (tag2, result, _) = replies(transport)
    assert (tag1, error.code) == ("9", "bad-arguments")
    assert (tag2, result) == ("10", 3)
    assert not transport.disconnecting


def test_a_line_without_a_readable_tag_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proto, transport = serve(TaggedBackendFactory(backend()))
    with caplog.at_level(logging.WARNING, logger="poetrylab.services.tagged"):
        proto.dataReceived(b"\x00\xff garbage\n{} add [1,2]\n2 add [2,2]\n")
    assert replies(transport) == [("2", 4, None)]
    assert sum("no readable tag" in r.getMessage() for r in caplog.records) == 2


def test_an_oversized_line_gets_a_tagged_error_and_the_connection_closes() -> None:
    factory = TaggedBackendFactory(backend(), max_line=100)
    proto, transport = serve(factory)
    proto.dataReceived(b"big poem " + b"x" * 200)
    ((tag, _, error),) = replies(transport)
    assert (tag, error.code) == ("big", "too-long")
    assert transport.disconnecting


def test_too_many_requests_in_flight_get_busy_errors() -> None:
    clock = Clock()
    factory = TaggedBackendFactory(backend(clock, delay=1.0), max_in_flight=2)
    proto, transport = serve(factory)
    proto.dataReceived(b"1 list_poems\n2 list_poems\n3 list_poems\n")
    assert [(t, e.code) for t, _, e in replies(transport)] == [("3", "busy")]


def test_a_client_hanging_up_cancels_its_requests_in_flight() -> None:
    clock = Clock()
    proto, transport = serve(TaggedBackendFactory(backend(clock, delay=1.0)))
    proto.dataReceived(b"1 list_poems\n2 add [1,2]\n")
    assert len(clock.getDelayedCalls()) == 3  # two requests at work, and the idle timer
    proto.connectionLost(Failure(ConnectionLost()))
    assert clock.getDelayedCalls() == []
    clock.advance(2)
    assert transport.value() == b""


def test_the_backend_stops_reading_requests_while_its_replies_are_not_read() -> None:
    factory = TaggedBackendFactory(backend())
    proto, transport = serve(factory)
    assert transport.producer is proto and transport.streaming, "a push producer"
    proto.dataReceived(b"1 add [1,1]\n")
    proto.pauseProducing()  # the transport's buffer is full: the client is not reading
    assert transport.producerState == "paused", "and it stops reading from the socket"
    proto.dataReceived(b"2 add [2,2]\n3 add [3,3]\n")  # already read before the pause
    assert [t for t, _, _ in replies(transport)] == ["1"], "no work while paused"
    assert factory.backend.handled == 1
    proto.resumeProducing()  # the client read: the buffer has drained
    assert transport.producerState == "producing"
    assert [(t, v) for t, v, _ in replies(transport)] == [("1", 2), ("2", 4), ("3", 6)]


def test_requests_followed_by_a_half_close_are_all_answered_then_the_connection_closes() -> None:
    clock = Clock()
    proto, transport = serve(TaggedBackendFactory(backend(clock, delay=0.5)))
    assert IHalfCloseableProtocol.providedBy(proto)
    proto.dataReceived(b'1 add [1,2]\n2 poem ["hope"]')  # the last line has no newline
    proto.readConnectionLost()  # what `nc -N` does after its input
    assert not transport.disconnecting, "requests are still in flight"
    clock.advance(0.5)
    assert [(t, v) for t, v, _ in replies(transport)] == [("1", 3), ("2", POEMS["hope"])]
    assert transport.disconnecting, "closed once the last reply went out"


def test_a_half_close_with_nothing_in_flight_closes_at_once() -> None:
    proto, transport = serve(TaggedBackendFactory(backend()))
    proto.readConnectionLost()
    assert transport.disconnecting and transport.value() == b""


def test_an_idle_connection_is_closed_but_not_while_a_request_is_in_flight() -> None:
    clock = Clock()
    factory = TaggedBackendFactory(backend(clock, delay=40.0), idle_timeout=30.0)
    proto, transport = serve(factory)
    proto.dataReceived(b"1 list_poems\n")
    clock.advance(30.0)
    assert not aborted(transport), "the backend is still working for this client"
    clock.advance(10.0)  # the reply goes out
    assert [t for t, _, _ in replies(transport)] == ["1"]
    clock.advance(29.5)
    assert not aborted(transport)
    clock.advance(0.5)
    assert aborted(transport), "idle for 30 s with nothing in flight"
    proto.connectionLost(Failure(ConnectionLost()))
    assert clock.getDelayedCalls() == []


def test_every_error_reply_is_logged_in_one_line_naming_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proto, _ = serve(TaggedBackendFactory(backend(), max_in_flight=0))
    with caplog.at_level(logging.INFO, logger="poetrylab.services.tagged"):
        proto.dataReceived(b"a nope\nb poem [1]\nc list_poems\n\xff\n")
    messages = [r.getMessage() for r in caplog.records]
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.INFO] * 3 + [logging.WARNING], "answers at INFO, a drop at WARNING"
    assert len(messages) == 4
    assert all(m.startswith("127.0.0.1:2: ") and "\n" not in m for m in messages)
    assert "tag a: " in messages[0] and "tag c: busy" in messages[2]
    assert "no readable tag" in messages[3]


def aborted(transport: StringTransport) -> bool:
    """True once abortConnection was called (StringTransport then sets ``disconnected``)."""
    return bool(getattr(transport, "disconnected", False))


# --- the multiplexing client protocol ---------------------------------------------------


def client() -> tuple[TaggedClientProtocol, StringTransport]:
    proto = TaggedClientProtocol()
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def test_client_matches_out_of_order_replies_to_their_requests() -> None:
    proto, transport = client()
    results: dict[str, list[Any]] = {}
    for name in ("a", "b", "c"):
        results[name] = []
        proto.request("poem", name).addBoth(results[name].append)
    tags = [parse_request(line)[0] for line in transport.value().splitlines()]
    assert len(set(tags)) == 3
    proto.dataReceived(format_reply(tags[2], "C") + b"\n" + format_reply(tags[0], "A") + b"\n")
    assert results["a"] == ["A"] and results["c"] == ["C"] and results["b"] == []
    proto.dataReceived(format_reply(tags[1], error=BackendError("not-found", "no b")) + b"\n")
    assert results["b"][0].check(BackendError)
    assert proto.in_flight == 0


def test_a_cancelled_request_forgets_its_tag_and_ignores_the_late_reply() -> None:
    proto, transport = client()
    d = proto.request("list_poems")
    d.addErrback(lambda f: f.trap(CancelledError))
    tag = parse_request(transport.value().strip())[0]
    d.cancel()
    assert proto.in_flight == 0
    proto.dataReceived(format_reply(tag, []) + b"\n")  # no error


def test_losing_the_connection_fails_every_request_in_flight() -> None:
    proto, _ = client()
    results = [[], []]
    for r in results:
        proto.request("list_poems").addBoth(r.append)
    proto.connectionLost(Failure(ConnectionLost()))
    assert all(r[0].check(BackendLostError) for r in results)
    failed: list[Failure] = []
    proto.request("list_poems").addErrback(failed.append)
    assert failed[0].check(BackendLostError)


def test_client_refuses_a_request_line_the_backend_would_refuse() -> None:
    proto = TaggedClientProtocol(max_request=50)
    transport = StringTransport()
    proto.makeConnection(transport)
    failed: list[Failure] = []
    proto.request("transform", "scan", "x" * 100).addErrback(failed.append)
    assert failed[0].value.code == "too-long"
    assert transport.value() == b""


# --- the cached connection --------------------------------------------------------------


class FakeEndpoint:
    """connect() returns a Deferred the test completes (or fails) by hand."""

    def __init__(self) -> None:
        self.attempts: list[tuple[Any, Deferred[Any]]] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.attempts.append((factory, d))
        return d

    def complete(self, index: int = -1) -> tuple[Any, StringTransport]:
        factory, d = self.attempts[index]
        proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport()
        proto.makeConnection(transport)
        d.callback(proto)
        return proto, transport


def answer_all(proto: Any, transport: StringTransport) -> None:
    for line in transport.value().splitlines():
        tag, verb, args = parse_request(line)
        proto.dataReceived(format_reply(tag, [verb, *args]) + b"\n")
    transport.clear()


def test_concurrent_first_calls_share_one_connection_attempt() -> None:
    endpoint = FakeEndpoint()
    tc = TaggedClient(Clock(), "127.0.0.1:9", endpoint=endpoint)
    results = [[] for _ in range(5)]
    for i, r in enumerate(results):
        tc.call("add", i, i).addBoth(r.append)
    assert len(endpoint.attempts) == 1 and tc.connects == 1
    proto, transport = endpoint.complete()
    assert len(transport.value().splitlines()) == 5, "all five sent on the one connection"
    answer_all(proto, transport)
    assert results == [[["add", i, i]] for i in range(5)]
    later: list[Any] = []
    tc.call("list_poems").addBoth(later.append)
    assert len(endpoint.attempts) == 1, "the connection is cached"
    answer_all(proto, transport)
    assert later == [["list_poems"]]


def test_a_lost_connection_fails_calls_in_flight_and_the_next_call_reconnects() -> None:
    endpoint = FakeEndpoint()
    tc = TaggedClient(Clock(), "127.0.0.1:9", endpoint=endpoint)
    in_flight: list[Any] = []
    tc.call("list_poems").addBoth(in_flight.append)
    proto, transport = endpoint.complete()
    proto.connectionLost(Failure(ConnectionLost()))
    assert in_flight[0].check(BackendLostError)
    assert not tc.connected
    again: list[Any] = []
    tc.call("list_poems").addBoth(again.append)
    assert len(endpoint.attempts) == 2
    proto2, transport2 = endpoint.complete()
    answer_all(proto2, transport2)
    assert again == [["list_poems"]]


def test_a_failed_connection_attempt_fails_its_callers_and_the_next_call_retries() -> None:
    endpoint = FakeEndpoint()
    tc = TaggedClient(Clock(), "127.0.0.1:9", endpoint=endpoint)
    results = [[], []]
    for r in results:
        tc.call("list_poems").addBoth(r.append)
    endpoint.attempts[0][1].errback(ConnectionRefusedError())
    assert all(r[0].check(BackendUnavailableError) for r in results)
    assert "cannot connect" in str(results[0][0].value)
    tc.call("list_poems")
    assert len(endpoint.attempts) == 2


def test_each_call_times_out_and_a_late_reply_is_ignored() -> None:
    clock = Clock()
    endpoint = FakeEndpoint()
    tc = TaggedClient(clock, "127.0.0.1:9", timeout=2.0, endpoint=endpoint)
    results: list[Any] = []
    tc.call("poem", "tyger").addBoth(results.append)
    proto, transport = endpoint.complete()
    clock.advance(2.0)
    assert results[0].check(TimeoutError)
    assert "no reply to poem within 2 s" in str(results[0].value)
    assert proto.in_flight == 0
    answer_all(proto, transport)  # the late reply: ignored, no error


def test_a_call_waiting_for_the_connection_also_times_out() -> None:
    clock = Clock()
    endpoint = FakeEndpoint()
    tc = TaggedClient(clock, "127.0.0.1:9", timeout=1.0, endpoint=endpoint)
    results: list[Any] = []
    tc.call("list_poems").addBoth(results.append)
    clock.advance(1.0)
    assert results[0].check(TimeoutError)


def test_disconnect_closes_the_cached_connection() -> None:
    endpoint = FakeEndpoint()
    tc = TaggedClient(Clock(), "127.0.0.1:9", endpoint=endpoint)
    tc.call("list_poems")
    _, transport = endpoint.complete()
    tc.disconnect()
    assert transport.disconnecting and not tc.connected


def test_request_json_is_compact_ascii() -> None:
    line = format_request("1", "poem", ["ü"])
    assert json.loads(line.split(b" ", 2)[2]) == ["ü"] and line.isascii()
