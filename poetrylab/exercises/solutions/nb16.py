"""Model solutions (and wrong answers the checks must catch) for notebook 16."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from poetrylab.clients.deferred import PoetryProtocol
from poetrylab.download import Address, Download
from poetrylab.exercises import Answers

# -- exercise 1: a pacing test -------------------------------------------------------------

POEM = b"abcdefghijklmnopqrstuvwxy"  # 25 bytes: chunks of 10, 10 and 5


def connect(make_factory: Callable[..., Any]) -> tuple[Clock, StringTransport, Any]:
    clock = Clock()
    factory = make_factory(POEM, clock, delay=1.0, num_bytes=10)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return clock, transport, protocol


def closing(transport: StringTransport) -> bool:
    """Whether the server has asked to close the connection."""
    return bool(transport.disconnecting)


def test_pacing(make_factory: Callable[..., Any]) -> None:
    """Every rule of the slow server, with time moved by hand."""
    clock, transport, _ = connect(make_factory)
    assert transport.value() == POEM[:10], "first chunk at once"
    clock.advance(0.9)
    assert transport.value() == POEM[:10], "nothing more before delay"
    clock.advance(0.1)
    assert transport.value() == POEM[:20], "second chunk after delay"
    assert not closing(transport), "still open before the last chunk"
    clock.advance(1.0)
    assert transport.value() == POEM, "last chunk after another delay"
    assert closing(transport), "closed after the last chunk"
    assert clock.getDelayedCalls() == [], "nothing left to do"

    clock, transport, protocol = connect(make_factory)
    protocol.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == [], "a client that leaves cancels the next chunk"


def test_first_chunk_only(make_factory: Callable[..., Any]) -> None:
    """Wrong: checks one rule and lets most bugs through."""
    _, transport, _ = connect(make_factory)
    assert transport.value() == POEM[:10]


def test_nothing(make_factory: Callable[..., Any]) -> None:
    """Wrong: builds a server and checks nothing."""
    make_factory(POEM, Clock(), delay=1.0, num_bytes=10)


def test_wrong_expectation(make_factory: Callable[..., Any]) -> None:
    """Wrong: expects the whole poem at once, so it fails on the correct server."""
    _, transport, _ = connect(make_factory)
    assert transport.value() == POEM


# -- exercise 2: a trial test case for the Deferred client ----------------------------


class PoetryProtocolTests(unittest.SynchronousTestCase):
    """What the Deferred client's protocol promises, tested without a socket."""

    protocol_class = PoetryProtocol

    def setUp(self) -> None:
        self.download = Download(Address("127.0.0.1", 10000))
        self.protocol = self.protocol_class(self.download)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)  # type: ignore[no-untyped-call]

    def test_poem_in_chunks_fires_with_whole_download(self) -> None:
        self.protocol.dataReceived(b"Hope is the thing ")
        self.protocol.dataReceived(b"with feathers")
        self.protocol.connectionLost(Failure(ConnectionDone()))
        download = self.successResultOf(self.protocol.finished)
        self.assertEqual(download.text, "Hope is the thing with feathers")  # type: ignore[no-untyped-call]

    def test_lost_connection_errbacks(self) -> None:
        self.protocol.dataReceived(b"Hope is")
        self.protocol.connectionLost(Failure(ConnectionLost()))
        self.failureResultOf(self.protocol.finished, ConnectionLost)  # type: ignore[no-untyped-call]

    def test_cancel_aborts_the_connection(self) -> None:
        self.protocol.finished.cancel()
        self.failureResultOf(self.protocol.finished, CancelledError)  # type: ignore[no-untyped-call]
        # abortConnection was called:
        self.assertTrue(self.transport.disconnected)  # type: ignore[no-untyped-call]


class OnlyHappyPath(unittest.SynchronousTestCase):
    """Wrong: tests only a poem arriving in one piece."""

    protocol_class = PoetryProtocol

    def test_poem_fires_with_download(self) -> None:
        protocol = self.protocol_class(Download(Address("127.0.0.1", 10000)))
        protocol.makeConnection(StringTransport())  # type: ignore[no-untyped-call]
        protocol.dataReceived(b"Hope")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(protocol.finished).text, "Hope")  # type: ignore[no-untyped-call]


class TestsSomethingElse(PoetryProtocolTests):
    """Wrong: tests another class than the one it is given."""

    protocol_class = object  # type: ignore[assignment]  # the bug: not the class under test


class AsyncCase(unittest.TestCase):
    """Wrong: trial's asynchronous TestCase would run the reactor the runtime already runs."""

    protocol_class = PoetryProtocol

    def test_nothing(self) -> None:
        pass


SOLUTIONS = {
    "check_pacing_test": Answers(
        solution=test_pacing,
        wrong=[test_first_chunk_only, test_nothing, test_wrong_expectation, POEM],
    ),
    "check_client_tests": Answers(
        solution=PoetryProtocolTests,
        wrong=[OnlyHappyPath, TestsSomethingElse, AsyncCase, PoetryProtocol],
    ),
}
