"""Slow and fast Twisted servers on task.Clock and StringTransport: exact pacing, no real time."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from poetrylab.servers import PoetryFactory, poem_duration
from poetrylab.testing import drain

POEM = b"0123456789" * 3 + b"tail"  # 34 bytes


def _connect(factory: PoetryFactory) -> tuple[object, StringTransport]:
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
