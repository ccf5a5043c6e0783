"""The poetry servers: the Twisted ones on task.Clock and StringTransport (exact pacing,
flow control, timeouts, half-close; no real time), the blocking one on loopback sockets."""

from __future__ import annotations

import select
import socket
from typing import Any

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from poetrylab.servers import BlockingPoetryServer, PoetryFactory, poem_duration
from poetrylab.testing import drain, read_to_eof

POEM = b"0123456789" * 3 + b"tail"  # 34 bytes


def aborted(transport: StringTransport) -> bool:
    """True once abortConnection was called: StringTransport then sets ``disconnected``
    (whatever its docstring says about ``aborted``); loseConnection does not."""
    return bool(getattr(transport, "disconnected", False))


def _connect(factory: PoetryFactory) -> tuple[Any, StringTransport]:
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return proto, transport


def test_slow_server_sends_exactly_num_bytes_per_delay_tick() -> None:
    clock = Clock()
    factory = PoetryFactory(POEM, clock, delay=0.5, num_bytes=10)
    _, transport = _connect(factory)
    sizes = [len(transport.value())]
    for _ in range(3):
        transport.clear()
        clock.advance(0.49)
        assert transport.value() == b"", "wrote before the delay was up"
        clock.advance(0.01)
        sizes.append(len(transport.value()))
    assert sizes == [10, 10, 10, 4]
    assert transport.disconnecting
    assert clock.getDelayedCalls() == []


def test_slow_server_sends_the_whole_poem_in_order() -> None:
    clock = Clock()
    factory = PoetryFactory(POEM, clock, delay=1.0, num_bytes=7)
    _, transport = _connect(factory)
    clock.pump([1.0] * 10)
    assert transport.value() == POEM


def test_client_hangup_cancels_pending_write() -> None:
    clock = Clock()
    factory = PoetryFactory(POEM, clock, delay=1.0, num_bytes=10)
    proto, transport = _connect(factory)
    assert factory.connections == 1
    assert len(clock.getDelayedCalls()) == 1
    proto.connectionLost(None)
    assert clock.getDelayedCalls() == []
    assert factory.connections == 0
    clock.advance(5)
    assert transport.value() == POEM[:10]


def test_fast_server_writes_everything_and_closes() -> None:
    factory = PoetryFactory(POEM, Clock(), delay=None)
    _, transport = _connect(factory)
    assert drain(transport) == POEM
    assert transport.disconnecting


@pytest.mark.parametrize(("delay", "num_bytes"), [(-0.1, 10), (0.1, 0), (float("nan"), 3)])
def test_bad_pacing_is_refused_with_a_reason(delay: float, num_bytes: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        PoetryFactory(POEM, Clock(), delay=delay, num_bytes=num_bytes)


def test_poem_duration_counts_paced_chunks() -> None:
    assert poem_duration(34, 10, 0.5) == pytest.approx(1.5)
    assert poem_duration(10, 10, 0.5) == 0.0


# --- what a client that does not read, or half-closes, gets -------------------------------


def test_slow_server_stops_pacing_while_the_transport_is_full_and_resumes_when_drained() -> None:
    clock = Clock()
    proto, transport = _connect(PoetryFactory(POEM, clock, delay=1.0, num_bytes=10))
    assert transport.producer is proto and transport.streaming, "a push producer"
    proto.pauseProducing()  # what the transport does when its buffer is full
    clock.advance(5)
    assert transport.value() == POEM[:10], "nothing written while the client does not read"
    proto.resumeProducing()
    clock.advance(1)
    assert transport.value() == POEM[:20]
    clock.pump([1.0] * 5)
    assert transport.value() == POEM and transport.disconnecting
    assert transport.producer is None, "unregistered before closing, so the close can finish"


def test_slow_server_drops_a_client_that_stays_paused_for_the_send_timeout() -> None:
    clock = Clock()
    factory = PoetryFactory(POEM, clock, delay=1.0, num_bytes=10, send_timeout=3.0)
    proto, transport = _connect(factory)
    proto.pauseProducing()
    clock.advance(2.75)  # times in binary fractions: exact on the clock
    assert not aborted(transport)
    proto.resumeProducing()  # it took something: the timer starts again next time
    proto.pauseProducing()
    clock.advance(2.75)
    assert not aborted(transport)
    clock.advance(0.25)
    assert aborted(transport)
    proto.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == [] and factory.connections == 0


def test_slow_server_sends_the_whole_poem_to_a_client_that_half_closed() -> None:
    clock = Clock()
    proto, transport = _connect(PoetryFactory(POEM, clock, delay=1.0, num_bytes=10))
    assert IHalfCloseableProtocol.providedBy(proto)
    proto.readConnectionLost()  # `nc -N`: the client has nothing more to say
    clock.pump([1.0] * 4)
    assert transport.value() == POEM and transport.disconnecting and not aborted(transport)


def test_fast_server_writes_only_as_the_client_takes_it_and_drops_a_stalled_one() -> None:
    clock = Clock()
    poem = bytes(range(256)) * 400  # 100 KiB: several chunks
    factory = PoetryFactory(poem, clock, delay=None, send_timeout=5.0)  # times: exact binary
    proto, transport = _connect(factory)
    assert transport.producer is not None and not transport.streaming, "a pull producer"
    transport.producer.resumeProducing()  # what a real transport does when registering it
    first = len(transport.value())
    assert 0 < first < len(poem), "one chunk at first, not a copy of the whole poem"
    clock.advance(4.75)
    transport.producer.resumeProducing()  # the client took that chunk
    assert len(transport.value()) == 2 * first
    clock.advance(4.75)
    assert not aborted(transport), "the timer restarted when the client took a chunk"
    clock.advance(0.25)
    assert aborted(transport)
    proto.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == [] and factory.connections == 0


def test_fast_server_sends_everything_to_a_client_that_half_closed() -> None:
    clock = Clock()
    proto, transport = _connect(PoetryFactory(POEM, clock, delay=None))
    proto.readConnectionLost()
    assert drain(transport) == POEM and transport.disconnecting
    assert clock.getDelayedCalls() == [], "no timer left once everything was taken"


@pytest.mark.parametrize("send_timeout", [0.0, -1.0, float("inf"), float("nan")])
def test_a_send_timeout_that_is_not_a_finite_positive_number_is_refused(
    send_timeout: float,
) -> None:
    with pytest.raises(ValueError, match="send_timeout must be"):
        PoetryFactory(POEM, Clock(), send_timeout=send_timeout)
    with pytest.raises(ValueError, match="send_timeout must be"):
        BlockingPoetryServer(POEM, send_timeout=send_timeout)


# --- the blocking server: one client at a time, but never stuck -----------------------------


def _stuck_client(port: int) -> socket.socket:
    """A client that connects, shrinks its receive buffer and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def _wait_readable(sock: socket.socket, timeout: float = 10.0) -> None:
    ready, _, _ = select.select([sock], [], [], timeout)
    assert ready, f"the server sent nothing within {timeout} s"


BIG = b"x" * (8 * 1024 * 1024)  # far more than the socket buffers hold


def test_blocking_server_drops_a_client_that_stops_reading_and_serves_the_next() -> None:
    with BlockingPoetryServer(BIG, delay=0.0, num_bytes=65536, send_timeout=0.5) as server:
        with _stuck_client(server.port) as stuck:
            _wait_readable(stuck)
            # The next client waits in the backlog (the lesson), then gets the whole poem.
            assert read_to_eof(("127.0.0.1", server.port), timeout=30) == BIG
        assert server.served == 1, "the stuck client was dropped, not counted as served"


def test_blocking_server_stops_at_once_while_a_client_is_stuck_in_a_send() -> None:
    # One chunk bigger than every socket buffer: once the client sees its first byte, the
    # server is inside the send of that chunk, and stays there while the client reads nothing.
    server = BlockingPoetryServer(BIG, delay=0.0, num_bytes=len(BIG), send_timeout=600.0)
    server.start()
    with _stuck_client(server.port) as stuck:
        _wait_readable(stuck)
        server.stop(timeout=5.0)  # raises TimeoutError if the serving thread is stuck
    with socket.socket() as probe:
        assert probe.connect_ex((server.host, server.port)) != 0, "the port is closed"


def test_blocking_server_reads_what_the_client_sent_so_closing_does_not_reset_it() -> None:
    with (
        BlockingPoetryServer(POEM, delay=0.0, num_bytes=7) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(b"hello, server\n" * 100)  # netcat users type things
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    assert bytes(data) == POEM
