"""The services on real loopback sockets: in-process servers and `poetrylab` subprocesses."""

from __future__ import annotations

import functools
import http.client
import json
import logging
import select
import signal
import socket
import struct
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Protocol
from waiting import eventually

from poetrylab.corpus import list_poems, load_poem
from poetrylab.download import Address
from poetrylab.servers import PoetryFactory
from poetrylab.services import proxy, tagged, transform, xmlrpc_gateway
from poetrylab.testing import ServerProcess, read_to_eof, run_cli

RAVEN = load_poem("raven")


def address_of(port: Any) -> Address:
    host = port.getHost()
    return Address(host.host, host.port)


def netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


def ask(address: Address, request: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes and read until the server closes: a netcat client."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(request)
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
        return bytes(data)


@pytest.fixture
def listen(in_reactor: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Start a listener in the reactor thread; stop every one at the end of the test."""
    ports: list[Any] = []

    def start(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # partial: in_reactor would take a `timeout` keyword as its own
        port = in_reactor(functools.partial(fn, *args, **kwargs))
        ports.append(port)
        return port

    yield start
    for port in reversed(ports):
        in_reactor(port.stopListening)  # a gateway also closes its backend connection


def ask_line(address: Address, line: bytes, timeout: float = 10.0) -> bytes:
    """Send one line to a line server and read one line back."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(line)
        with sock.makefile("rb") as reader:
            return reader.readline()


# --- transform --------------------------------------------------------------------------


def test_transform_server_replies_to_a_netcat_style_client(reactor: Any, listen: Any) -> None:
    port = listen(transform.listen_transform, reactor)
    reply = ask(address_of(port), netstring(b"cummingsify." + RAVEN.data))
    assert reply == netstring(RAVEN.text.lower().encode())


def test_transform_client_returns_a_deferred_that_fires_with_the_poem(
    reactor: Any, listen: Any, in_reactor: Any
) -> None:
    port = listen(transform.listen_transform, reactor)
    got = in_reactor(transform.transform_poem, reactor, address_of(port), "upside_down", "a\nb\n")
    assert got == "b\na\n"
    with pytest.raises(transform.NoReplyError):
        in_reactor(transform.transform_poem, reactor, address_of(port), "nosuch", "a\nb\n")


def test_a_slow_threaded_transform_times_out_while_other_clients_are_served(
    reactor: Any, listen: Any, in_reactor: Any
) -> None:
    pondering, release = threading.Event(), threading.Event()

    def ponder(poem: str) -> str:
        pondering.set()
        return poem if release.wait(30) else ""  # blocks its thread until the test lets go

    registry = transform.default_registry()
    registry.register("ponder", ponder, threaded=True)
    port = listen(transform.listen_transform, reactor, registry=registry, timeout=0.5)
    try:
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(ask, address_of(port), netstring(b"ponder.hmm"))
            assert pondering.wait(10), "the slow transform never started"
            assert ask(address_of(port), netstring(b"cummingsify.FAST")) == netstring(b"fast")
            assert slow.result(5) == b"", "cut off after the timeout, without a reply"
    finally:
        release.set()


def test_transform_server_logs_a_refused_request(
    reactor: Any, listen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = listen(transform.listen_transform, reactor)
    with caplog.at_level("WARNING", logger="poetrylab.services.transform"):
        assert ask(address_of(port), netstring(b"__class__.x")) == b""
        eventually(lambda: any("bad request" in r.getMessage() for r in caplog.records),
                   "the 'bad request' log line")  # fmt: skip


# --- proxy ------------------------------------------------------------------------------


class CountingPoetryFactory(PoetryFactory):
    made = 0

    def buildProtocol(self, addr: Any) -> Any:
        self.made += 1
        return super().buildProtocol(addr)


class DiesMidPoem(Protocol):
    """Sends half the poem, then resets the connection (RST), as a crashing server would."""

    def connectionMade(self) -> None:
        self.transport.write(RAVEN.data[: len(RAVEN.data) // 2])
        self.transport.getHandle().setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.factory.reactor.callLater(0.05, self.transport.abortConnection)


def listen_upstream(reactor: Any, factory: Any) -> Any:
    return reactor.listenTCP(0, factory, interface="127.0.0.1")


def test_proxy_serves_the_poem_then_answers_from_the_cache(reactor: Any, listen: Any) -> None:
    upstream = CountingPoetryFactory(RAVEN.data, reactor, delay=0.001, num_bytes=1024)
    up = listen(listen_upstream, reactor, upstream)
    port = listen(proxy.listen_proxy, reactor, address_of(up))
    assert read_to_eof(address_of(port)) == RAVEN.data
    assert read_to_eof(address_of(port)) == RAVEN.data
    assert upstream.made == 1
    assert port.factory.service.hits == 1


def test_concurrent_proxy_clients_share_one_upstream_fetch(reactor: Any, listen: Any) -> None:
    upstream = CountingPoetryFactory(RAVEN.data, reactor, delay=0.02, num_bytes=512)
    up = listen(listen_upstream, reactor, upstream)
    port = listen(proxy.listen_proxy, reactor, address_of(up))
    with ThreadPoolExecutor(8) as pool:
        poems = list(pool.map(lambda _: read_to_eof(address_of(port)), range(8)))
    assert poems == [RAVEN.data] * 8
    assert upstream.made == 1


def test_upstream_dying_mid_poem_closes_the_client_and_caches_nothing(
    reactor: Any, listen: Any
) -> None:
    from twisted.internet.protocol import ServerFactory

    dying = ServerFactory.forProtocol(DiesMidPoem)
    dying.reactor = reactor
    up = listen(listen_upstream, reactor, dying)
    port = listen(proxy.listen_proxy, reactor, address_of(up))
    assert read_to_eof(address_of(port)) == b"", "closed without a byte"
    assert port.factory.service.cached is None
    assert read_to_eof(address_of(port)) == b"", "and the next client is not served half a poem"
    assert port.factory.service.fetches == 2


def test_a_client_leaving_mid_fetch_cancels_the_upstream_download(
    reactor: Any, listen: Any
) -> None:
    upstream = CountingPoetryFactory(RAVEN.data, reactor, delay=0.05, num_bytes=10)
    up = listen(listen_upstream, reactor, upstream)
    port = listen(proxy.listen_proxy, reactor, address_of(up))
    with socket.create_connection(address_of(port)):
        eventually(lambda: upstream.connections == 1, "the proxy's upstream connection")
    # The whole poem takes 18.5 s to send: closed well before, it was cancelled.
    eventually(lambda: upstream.connections == 0, "the upstream fetch's cancellation")
    assert port.factory.service.cached is None
    assert upstream.made == 1


# --- tagged backend and gateway ---------------------------------------------------------


def test_tagged_backend_answers_netcat_with_tagged_lines(reactor: Any, listen: Any) -> None:
    port = listen(tagged.listen_tagged, reactor)
    with socket.create_connection(address_of(port), timeout=5) as sock:
        sock.sendall(b'a add [2, 3]\nb poem ["tyger"]\nc list_poems\n')
        reader = sock.makefile("rb")
        lines = {line.split(b" ", 1)[0]: line for line in (reader.readline() for _ in range(3))}
    assert lines[b"a"] == b"a ok 5\n"
    assert json.loads(lines[b"b"].split(b" ", 2)[2]) == load_poem("tyger").text
    assert json.loads(lines[b"c"].split(b" ", 2)[2]) == list_poems()


def test_multiplexed_client_gets_out_of_order_replies_over_one_connection(
    reactor: Any, listen: Any, in_reactor: Any
) -> None:
    port = listen(tagged.listen_tagged, reactor, delay=0.01, jitter=0.1, seed=1)
    client = tagged.TaggedClient(reactor, address_of(port))
    finished: list[int] = []

    def fire_all() -> Deferred[Any]:
        calls = []
        for i in range(30):
            d = client.call("add", i, 0)
            d.addCallback(lambda result: finished.append(result) or result)
            calls.append(d)
        return gatherResults(calls)

    assert in_reactor(fire_all) == list(range(30)), "each reply matched its request"
    assert finished != sorted(finished), "replies arrived out of order"
    assert port.factory.connections_made == 1
    in_reactor(client.disconnect)


def xmlrpc_proxy(port: Any) -> xmlrpc.client.ServerProxy:
    host = port.getHost()
    return xmlrpc.client.ServerProxy(f"http://{host.host}:{host.port}/RPC2")


def test_gateway_answers_the_stdlib_client_over_one_backend_connection(
    reactor: Any, listen: Any
) -> None:
    backend = listen(tagged.listen_tagged, reactor, jitter=0.05)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend))

    def call(i: int) -> tuple[int, Any, Any]:
        with xmlrpc_proxy(gateway) as server:
            return i, server.add(i, 1), server.transform("cummingsify", f"LINE {i}\nNEXT")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(call, range(40)))
    assert results == [(i, i + 1, f"line {i}\nnext") for i in range(40)]
    assert backend.factory.connections_made == 1, "ONE cached, persistent connection"
    with xmlrpc_proxy(gateway) as server:
        assert server.list_poems() == list_poems()
        assert server.poem("hope") == load_poem("hope").text
        with pytest.raises(xmlrpc.client.Fault) as info:
            server.poem("nosuch")
    assert info.value.faultCode == 404 and "no poem called 'nosuch'" in info.value.faultString
    assert gateway.factory.gateway.backend.connects == 1


def test_a_gateway_that_stops_listening_closes_its_backend_connection_quietly(
    reactor: Any, listen: Any, in_reactor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = listen(tagged.listen_tagged, reactor)
    gateway = in_reactor(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend))
    client = gateway.factory.gateway.backend
    with xmlrpc_proxy(gateway) as server:
        assert server.add(1, 1) == 2
    assert client.connected
    with caplog.at_level(logging.INFO):
        in_reactor(gateway.stopListening)
        eventually(lambda: not client.connected, "the stopped gateway closing its backend")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_gateway_faults_while_the_backend_is_down_and_recovers_when_it_is_back(
    reactor: Any, listen: Any, in_reactor: Any
) -> None:
    backend = in_reactor(tagged.listen_tagged, reactor)
    where = address_of(backend)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, where)
    with xmlrpc_proxy(gateway) as server:
        assert server.add(1, 1) == 2
        in_reactor(backend.stopListening)
        in_reactor(gateway.factory.gateway.backend.disconnect)
        eventually(lambda: not gateway.factory.gateway.backend.connected,
                   "the gateway seeing its backend gone")  # fmt: skip
        with pytest.raises(xmlrpc.client.Fault) as info:
            server.add(1, 2)
        assert info.value.faultCode == 502 and "cannot connect" in info.value.faultString
        listen(tagged.listen_tagged, reactor, where.port)
        assert server.add(1, 3) == 4


def test_gateway_call_timeout_is_a_fault(reactor: Any, listen: Any) -> None:
    backend = listen(tagged.listen_tagged, reactor, delay=2.0)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend), timeout=0.2)
    with xmlrpc_proxy(gateway) as server, pytest.raises(xmlrpc.client.Fault) as info:
        server.list_poems()
    assert info.value.faultCode == 504 and "within 0.2 s" in info.value.faultString


def test_gateway_drops_a_connection_whose_body_is_too_large(reactor: Any, listen: Any) -> None:
    backend = listen(tagged.listen_tagged, reactor)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend), max_body=1000)
    refused = (xmlrpc.client.ProtocolError, ConnectionError, OSError)
    with xmlrpc_proxy(gateway) as server, pytest.raises(refused):
        server.transform("scan", "x" * 5000)
    with xmlrpc_proxy(gateway) as server:
        assert server.add(2, 2) == 4


# --- the command line -------------------------------------------------------------------


def test_cli_transform_reads_stdin_or_a_file_and_reports_a_refusal() -> None:
    with ServerProcess("transform") as server:
        address = str(server.address)
        ok = run_cli(["transform", "cummingsify", "--server", address], input="LOUD\nPoem\n")
        assert (ok.returncode, ok.stdout) == (0, "loud\npoem\n")
        from_file = run_cli(["transform", "upside_down", "--server", address, str(RAVEN.path)])
        assert from_file.returncode == 0
        assert from_file.stdout.splitlines()[-1] == RAVEN.text.splitlines()[0]
        refused = run_cli(["transform", "nosuch", "--server", address], input="x")
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and "without a reply" in refused.stderr
        assert server.stop(signal.SIGTERM) == 0
        assert "nosuch" in server.stderr_text()


def test_cli_transform_to_a_dead_server_is_a_one_line_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    result = run_cli(["transform", "scan", "--server", f"127.0.0.1:{dead}"], input="x")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_cli_serve_tagged_and_proxy_in_front_of_a_fast_server() -> None:
    with ServerProcess("fast", "tyger") as poetry, \
         ServerProcess("proxy", "--upstream", str(poetry.address), "--ttl", "30") as proxied, \
         ServerProcess("tagged", "--jitter", "0.01") as backend:  # fmt: skip
        assert read_to_eof(proxied.address) == load_poem("tyger").data
        assert read_to_eof(proxied.address) == load_poem("tyger").data
        assert ask_line(backend.address, b"x add [40, 2]\n") == b"x ok 42\n"
        assert proxied.stop() == 0 and backend.stop() == 0


def test_cli_serve_xmlrpc_prints_the_xmlrpc_listener_first_then_its_own_backend() -> None:
    with ServerProcess("xmlrpc", "--backend-jitter", "0.01", listeners=2) as server:
        rpc_address, backend = server.addresses
        assert server.stdout_lines == [f"listening on {rpc_address}", f"listening on {backend}"]
        with xmlrpc.client.ServerProxy(f"http://{server.address}/RPC2") as rpc:
            assert rpc.add(2, 3) == 5
        assert ask_line(backend, b"t add [1, 1]\n") == b"t ok 2\n"
        assert server.stop(signal.SIGTERM) == 0
        # Stopped on purpose: the gateway closes its own backend connection quietly.
        stderr = server.stderr_text()
        assert "lost the connection" not in stderr and "WARNING" not in stderr, stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "proxy"], "--upstream"),
        (["serve", "proxy", "--upstream", "nowhere"], "not an address"),
        (["serve", "tagged", "--delay", "-1"], "argument --delay: must be"),
        (["serve", "transform", "--max-bytes", "1"], "--max-bytes"),
        (["transform", "scan"], "--server"),
    ],
)
def test_bad_service_options_are_one_line_with_status_two(args: list[str], says: str) -> None:
    result = run_cli(args, timeout=30)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


# --- hostile clients on loopback ----------------------------------------------------------


class RecordingTaggedFactory(tagged.TaggedBackendFactory):
    """Keeps the protocols it builds, so a test can look at a connection's state."""

    def buildProtocol(self, addr: Any) -> Any:
        proto = super().buildProtocol(addr)
        self.built = [*getattr(self, "built", []), proto]
        return proto


def test_tagged_backend_stops_reading_a_client_that_reads_none_of_its_replies(
    reactor: Any, listen: Any, in_reactor: Any
) -> None:
    factory = RecordingTaggedFactory(tagged.PoetryBackend(reactor))
    port = listen(lambda: reactor.listenTCP(0, factory, interface="127.0.0.1"))
    sent = 20_000
    with socket.create_connection(address_of(port), timeout=30) as sock:
        requests = b"".join(b'%d poem ["raven"]\n' % i for i in range(sent))
        writer = threading.Thread(target=sock.sendall, args=(requests,), daemon=True)
        writer.start()
        eventually(lambda: bool(getattr(factory, "built", [])) and factory.built[0].paused,
                   "the backend pausing the connection that reads nothing")  # fmt: skip
        handled = factory.backend.handled
        assert handled < sent, "it stopped reading before all 20,000 were handled"
        # Reading the replies lets it go on: every request is answered, in the end.
        reader = sock.makefile("rb")
        tags = {int(reader.readline().split(b" ", 1)[0]) for _ in range(sent)}
        writer.join(10)
    assert tags == set(range(sent))


def test_gateway_refuses_a_doctype_and_logs_every_fault_naming_the_client(
    reactor: Any, listen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = listen(tagged.listen_tagged, reactor)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend))
    body = b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa">]><methodCall/>'
    with caplog.at_level(logging.INFO, logger="poetrylab.services.xmlrpc_gateway"):
        status, reply, client = _raw_post(address_of(gateway), body)
        assert status == 200 and b"<fault>" in reply and b"DOCTYPE" in reply
        with xmlrpc_proxy(gateway) as server, pytest.raises(xmlrpc.client.Fault):
            server.nosuch()
        eventually(lambda: len(faults(caplog)) >= 2, "two faults logged")
    doctype, unknown = faults(caplog)[:2]
    assert doctype.startswith(f"127.0.0.1:{client}: Fault 8002: ") and "DOCTYPE" in doctype
    assert unknown.startswith("127.0.0.1:") and "Fault 8001: no method 'nosuch'" in unknown


def faults(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if ": Fault " in r.getMessage()]


def _raw_post(address: Address, body: bytes) -> tuple[int, bytes, int]:
    """POST ``body`` to /RPC2 over a fresh connection; (status, body, client port)."""
    conn = http.client.HTTPConnection(address.host, address.port, timeout=10)
    try:
        conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
        client_port = conn.sock.getsockname()[1]
        response = conn.getresponse()
        return response.status, response.read(), client_port
    finally:
        conn.close()


def test_gateway_closes_a_connection_that_trickles_its_request_past_the_deadline(
    reactor: Any, listen: Any
) -> None:
    backend = listen(tagged.listen_tagged, reactor)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend), idle_timeout=1.0)
    with socket.create_connection(address_of(gateway), timeout=15) as sock:
        closed_while_trickling = False
        for byte in b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n":  # never done
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_while_trickling = True
                break
            if select.select([sock], [], [], 0.2)[0]:  # a byte every 0.2 s: ~9 s in all
                closed_while_trickling = sock.recv(100) == b""
                break
    assert closed_while_trickling, "each byte must not restart the 1 s deadline"


def test_cli_blocking_server_ends_on_sigterm_while_a_client_is_stuck(tmp_path: Any) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"all work and no play\n" * 400_000)  # 8 MB: more than socket buffers
    # One chunk bigger than every socket buffer: once the client sees its first byte, the
    # server is inside the send of that chunk, and stays there while the client reads nothing.
    chunk = str(big.stat().st_size)
    with ServerProcess(
        "blocking", str(big), "--delay", "0", "--num-bytes", chunk, "--send-timeout", "600"
    ) as server:
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(server.address)
        try:
            assert select.select([stuck], [], [], 10)[0], "the server started sending"
            assert server.stop(signal.SIGTERM, timeout=5) == 0
        finally:
            stuck.close()


def test_a_client_leaving_mid_call_is_one_quiet_line_and_the_backend_call_is_dropped(
    reactor: Any, listen: Any, caplog: pytest.LogCaptureFixture
) -> None:
    backend = listen(tagged.listen_tagged, reactor, delay=0.5)
    gateway = listen(xmlrpc_gateway.listen_xmlrpc, reactor, address_of(backend))
    client = gateway.factory.gateway.backend
    body = xmlrpc.client.dumps(("raven",), "poem").encode()
    with caplog.at_level(logging.DEBUG):
        with socket.create_connection(address_of(gateway), timeout=10) as sock:
            sock.sendall(
                b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            eventually(lambda: client.in_flight == 1, "the call reaching the backend")
        eventually(lambda: client.in_flight == 0, "the call being forgotten once its client left")
    left = [r for r in caplog.records if "left during poem" in r.getMessage()]
    assert [(r.levelno, r.name) for r in left] == [(logging.INFO, xmlrpc_gateway.log.name)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no traceback"
