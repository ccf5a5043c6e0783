"""Model solutions (and wrong answers the checks must catch) for notebook 03."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IConnector
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from poetrylab.exercises import Answers

# -- exercise 1: lines from a stream ------------------------------------------------------


class LineCollector(Protocol):
    """Keep the unfinished tail in a byte buffer; decode only complete lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        self.lines += [line.decode("utf-8") for line in complete]


class SplitEachChunk(Protocol):
    """Wrong: treats every chunk as if it held whole lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def dataReceived(self, data: bytes) -> None:
        self.lines += data.decode("utf-8", errors="replace").splitlines()


class DecodeEachChunk(Protocol):
    """Wrong: buffers text, but decodes each chunk alone (cuts characters in half)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buffer = ""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data.decode("utf-8", errors="replace")
        *complete, self.buffer = self.buffer.split("\n")
        self.lines += complete


class LinesFromTwisted(LineOnlyReceiver):
    """Also right: Twisted's own line splitter, told that lines end with a bare newline."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line.decode("utf-8"))


class KeepsTheNewline(LineCollector):
    """Wrong: every line keeps its newline."""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        self.lines += [line.decode("utf-8") + "\n" for line in complete]


class KeepsBytes(LineCollector):
    """Wrong: forgets to decode."""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        self.lines += complete  # type: ignore[arg-type]


# -- exercise 2: callback and errback by hand ------------------------------------------


class ByteCounter(Protocol):
    def connectionMade(self) -> None:
        self.nbytes = 0

    def dataReceived(self, data: bytes) -> None:
        self.nbytes += len(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        factory = cast(ByteCountFactory, self.factory)
        if reason.check(ConnectionDone):
            factory.callback(self.nbytes)
        else:
            factory.errback(reason)


class ByteCountFactory(ClientFactory):
    protocol = ByteCounter

    def __init__(
        self, callback: Callable[[int], object], errback: Callable[[Failure], object]
    ) -> None:
        self.callback = callback
        self.errback = errback

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.errback(reason)


class IgnoresTheReason(ByteCounter):
    """Wrong: every end of the connection counts as success."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        cast(ByteCountFactory, self.factory).callback(self.nbytes)


class IgnoresTheReasonFactory(ByteCountFactory):
    protocol = IgnoresTheReason


class NoConnectionFailedFactory(ClientFactory):
    """Wrong: a refused connection is never reported."""

    protocol = ByteCounter

    def __init__(
        self, callback: Callable[[int], object], errback: Callable[[Failure], object]
    ) -> None:
        self.callback = callback
        self.errback = errback


SOLUTIONS = {
    "check_line_collector": Answers(
        solution=LineCollector,
        wrong=[SplitEachChunk, DecodeEachChunk, KeepsTheNewline, KeepsBytes, "lines"],
        also_right=[LinesFromTwisted],
    ),
    "check_callback_factory": Answers(
        solution=ByteCountFactory,
        wrong=[IgnoresTheReasonFactory, NoConnectionFailedFactory, ByteCounter],
    ),
}
