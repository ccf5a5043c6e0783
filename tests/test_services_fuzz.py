"""Random bytes, truncated and oversized frames thrown at the transform, tagged and XML-RPC
servers (hypothesis): each survives, and goes on serving other clients correctly.

The protocol-level properties run many examples against StringTransport; the live ones
run fewer against real servers on loopback.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import socket
import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from poetrylab.services import tagged, transform, xmlrpc_gateway
from poetrylab.services.tagged import (
    BadLineError,
    PoetryBackend,
    TaggedBackendFactory,
    TaggedClientProtocol,
    parse_reply,
)
from poetrylab.services.transform import TransformFactory, TransformService, default_registry

NAMES = default_registry().names()
# Failures are replayable: hypothesis keeps each failing example in .hypothesis/ and
# replays it first on the next run, and print_blob prints a @reproduce_failure line to
# paste when the failure happened elsewhere (in CI). Every strategy below is bounded, and
# only draws values its own encoder (json, xmlrpc.client) accepts.
FAST = settings(max_examples=200, deadline=None, print_blob=True)
LIVE = settings(
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# XML-RPC's <int> is 32-bit: xmlrpc.client.dumps raises OverflowError beyond it.
XMLRPC_INT = st.integers(min_value=-(2**31), max_value=2**31 - 1)


def netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


def parse_netstring(data: bytes) -> bytes:
    length, _, rest = data.partition(b":")
    assert length.isdigit() and rest[int(length) :] == b",", data[:40]
    return rest[: int(length)]


transform_frames = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=200).map(netstring),
    st.tuples(
        st.sampled_from([*NAMES, "nosuch", "__class__", "_x", "A"]), st.binary(max_size=100)
    ).map(lambda t: netstring(t[0].encode() + b"." + t[1])),
    st.binary(min_size=2, max_size=200).map(lambda b: netstring(b)[: len(b) // 2 + 1]),
    st.integers(min_value=10**4, max_value=10**15).map(lambda n: b"%d:" % n + b"x" * 20),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
tagged_lines = st.one_of(
    st.binary(max_size=120).filter(lambda b: b"\n" not in b),
    st.builds(
        lambda tag, verb, args: b"%s %s %s" % (tag, verb, json.dumps(args).encode()),
        st.from_regex(rb"\A[A-Za-z0-9_.:\-]{1,8}\Z"),
        st.sampled_from(
            [b"add", b"list_poems", b"poem", b"transform", b"nope", b"ADD", b"__init__"]
        ),
        st.lists(json_values, max_size=3),
    ),
    st.builds(
        lambda tag, junk: tag + b" " + junk,
        st.from_regex(rb"\A[a-z0-9]{1,6}\Z"),
        st.binary(max_size=60).filter(lambda b: b"\n" not in b),
    ),
)


# --- protocol-level properties ----------------------------------------------------------


@FAST
@given(data=transform_frames, split=st.integers(min_value=1, max_value=50))
def test_transform_protocol_never_raises_and_answers_at_most_one_valid_netstring(
    data: bytes, split: int
) -> None:
    factory = TransformFactory(TransformService(Clock(), default_registry()), max_request=300)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 2))
    proto.makeConnection(transport)
    for i in range(0, len(data), split):
        proto.dataReceived(data[i : i + split])
    out = transport.value()
    if out:
        name, _ = transform.parse_request(parse_netstring(data))
        assert name in NAMES
        parse_netstring(out)
        assert transport.disconnecting


@FAST
@given(lines=st.lists(tagged_lines, max_size=8))
def test_tagged_protocol_replies_only_with_well_formed_lines_to_readable_tags(
    lines: list[bytes],
) -> None:
    factory = TaggedBackendFactory(PoetryBackend(Clock(), poems={"p": "a poem\n"}), max_line=100)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 2))
    proto.makeConnection(transport)
    proto.dataReceived(b"".join(line + b"\n" for line in lines))
    readable = [tagged.readable_tag(line.rstrip(b"\r")) for line in lines]
    for out in transport.value().splitlines():
        tag, _, _ = parse_reply(out)
        assert tag in readable


@FAST
@given(data=st.binary(max_size=300))
def test_the_multiplexing_client_survives_any_reply_bytes(data: bytes) -> None:
    proto = TaggedClientProtocol()
    proto.makeConnection(StringTransport())
    results: list[Any] = []
    proto.request("list_poems").addBoth(results.append)
    proto.dataReceived(data)
    if results and not isinstance(results[0], list):
        assert hasattr(results[0], "check")  # an error reply: a Failure, never an exception


@FAST
@given(line=st.binary(max_size=200))
def test_parse_request_either_parses_or_raises_bad_line(line: bytes) -> None:
    try:
        tag, verb, args = tagged.parse_request(line)
    except BadLineError:
        return
    assert isinstance(args, list) and tag and verb


# --- live servers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(reactor: Any, in_reactor: Callable[..., Any]) -> Iterator[dict[str, tuple[str, int]]]:
    ports = {
        "transform": in_reactor(
            functools.partial(transform.listen_transform, reactor, max_request=2000)
        ),
        "tagged": in_reactor(functools.partial(tagged.listen_tagged, reactor, jitter=0.005)),
    }
    backend = ports["tagged"].getHost()
    ports["xmlrpc"] = in_reactor(
        functools.partial(
            xmlrpc_gateway.listen_xmlrpc, reactor, (backend.host, backend.port), max_body=20000
        )
    )
    yield {name: (p.getHost().host, p.getHost().port) for name, p in ports.items()}
    in_reactor(ports["xmlrpc"].factory.gateway.backend.disconnect)
    for port in ports.values():
        in_reactor(port.stopListening)


def send_and_leave(address: tuple[str, int], data: bytes) -> None:
    # The server may already have hung up on us: that is fine.
    with socket.create_connection(address, timeout=5) as sock, contextlib.suppress(OSError):
        sock.sendall(data)


def transform_ok(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(netstring(b"cummingsify.STILL HERE"))
        return b"".join(iter(lambda: sock.recv(4096), b""))


@LIVE
@given(data=transform_frames)
def test_live_transform_server_keeps_serving_others_after_any_bytes(
    live: dict[str, tuple[str, int]], data: bytes
) -> None:
    with socket.create_connection(live["transform"], timeout=5) as garbage:
        garbage.sendall(data)  # and keep it open while another client is served
        assert transform_ok(live["transform"]) == netstring(b"still here")


@LIVE
@given(lines=st.lists(tagged_lines, min_size=1, max_size=5), oversized=st.booleans())
def test_live_tagged_backend_keeps_serving_others_after_any_lines(
    live: dict[str, tuple[str, int]], lines: list[bytes], oversized: bool
) -> None:
    with socket.create_connection(live["tagged"], timeout=5) as good:
        payload = b"".join(line + b"\n" for line in lines)
        if oversized:
            payload += b"big add " + b"9" * (tagged.DEFAULT_MAX_LINE + 10)
        send_and_leave(live["tagged"], payload)
        good.sendall(b'ok-1 transform ["cummingsify", "A\\nB"]\n')
        with good.makefile("rb") as reader:
            assert reader.readline() == b'ok-1 ok "a\\nb"\n'


xml_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.tuples(
        st.sampled_from(
            [
                "add",
                "poem",
                "transform",
                "list_poems",
                "system.listMethods",
                "nope",
                "__init__",
                "system.__init__",
            ]
        ),
        st.lists(
            st.one_of(
                XMLRPC_INT,
                st.text(max_size=20),
                st.floats(allow_nan=False),
                st.booleans(),
                st.lists(XMLRPC_INT, max_size=2),
            ),
            max_size=3,
        ),
    ).map(lambda t: xmlrpc.client.dumps(tuple(t[1]), t[0]).encode()),
    st.just(xmlrpc.client.dumps((1,), methodresponse=True).encode()),
    st.just(b"<?xml version='1.0'?><methodCall><methodName>add</methodName>" + b"<params>" * 50),
)


@LIVE
@given(body=xml_bodies, truncate=st.booleans())
def test_live_xmlrpc_gateway_answers_any_body_with_a_response_or_a_fault_and_keeps_serving(
    live: dict[str, tuple[str, int]], body: bytes, truncate: bool
) -> None:
    host, port = live["xmlrpc"]
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        if truncate:  # announce more than we send, then hang up
            conn.putrequest("POST", "/RPC2")
            conn.putheader("Content-Length", str(len(body) + 100))
            conn.endheaders(body)
        else:
            conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
            response = conn.getresponse()
            assert response.status == 200
            reply = response.read()
            with contextlib.suppress(xmlrpc.client.Fault):
                xmlrpc.client.loads(reply)  # a well-formed response, or a Fault
    finally:
        conn.close()
    with xmlrpc.client.ServerProxy(f"http://{host}:{port}/RPC2") as server:
        assert server.add(20, 22) == 42


@LIVE
@given(data=st.binary(max_size=500))
def test_live_xmlrpc_gateway_survives_raw_garbage_on_its_http_port(
    live: dict[str, tuple[str, int]], data: bytes
) -> None:
    send_and_leave(live["xmlrpc"], data)
    host, port = live["xmlrpc"]
    with xmlrpc.client.ServerProxy(f"http://{host}:{port}/RPC2") as server:
        assert server.transform("cummingsify", "OK") == "ok"


def test_live_xmlrpc_gateway_drops_an_oversized_body_and_keeps_serving(
    live: dict[str, tuple[str, int]],
) -> None:
    host, port = live["xmlrpc"]
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        # The server may reset the connection while the headers are still going out, or
        # when the response is read: either way this client is refused, and only it.
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.putrequest("POST", "/RPC2")
            conn.putheader("Content-Length", str(10**9))
            conn.endheaders(b"<?xml")
            conn.getresponse()
    finally:
        conn.close()
    with xmlrpc.client.ServerProxy(f"http://{host}:{port}/RPC2") as server:
        assert server.list_poems()
