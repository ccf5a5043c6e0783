"""Model solutions (and wrong answers the checks must catch) for notebook 14."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from poetrylab.exercises import Answers

# -- exercise 1: a service with a lifecycle -----------------------------------------------


class WholePoem(Protocol):
    def connectionMade(self) -> None:
        self.transport.write(self.factory.poem)
        self.transport.loseConnection()


class PoemService(Service):
    """Listen while running; close the port when stopped."""

    def __init__(self, poem: bytes, reactor: Any) -> None:
        self.poem = poem
        self.reactor = reactor
        self.listening: Any = None

    def startService(self) -> None:
        super().startService()
        factory = ServerFactory.forProtocol(WholePoem)
        factory.poem = self.poem
        self.listening = self.reactor.listenTCP(0, factory, interface="127.0.0.1")

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.listening.stopListening()


class ForgetsToStopListening(PoemService):
    """Wrong: the port stays open after the service stopped."""

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        return succeed(None)


class NeverFinishesStopping(PoemService):
    """Wrong: returns a Deferred that nothing will ever fire."""

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        self.listening.stopListening()
        return Deferred()


class DoesNotReturnTheDeferred(PoemService):
    """Wrong: nobody can wait for the port to close."""

    def stopService(self) -> None:  # type: ignore[override]
        super().stopService()


class ForgetsSuper(PoemService):
    """Wrong: never says it is running."""

    def startService(self) -> None:
        factory = ServerFactory.forProtocol(WholePoem)
        factory.poem = self.poem
        self.listening = self.reactor.listenTCP(0, factory, interface="127.0.0.1")


# -- exercise 2: structured logging ----------------------------------------------------


class LoggedPoetry(Protocol):
    """Send the poem, close, and log what was sent as a structured event."""

    log = Logger()

    def connectionMade(self) -> None:
        poem = self.factory.poem
        self.transport.write(poem)
        self.transport.loseConnection()
        self.log.info("sent {nbytes} bytes", nbytes=len(poem))


class FormatsTooEarly(LoggedPoetry):
    """Wrong: an f-string leaves no field for observers to read."""

    def connectionMade(self) -> None:
        poem = self.factory.poem
        self.transport.write(poem)
        self.transport.loseConnection()
        self.log.info(f"sent {len(poem)} bytes")


class Prints(LoggedPoetry):
    """Wrong: print() is not a log event."""

    def connectionMade(self) -> None:
        self.transport.write(self.factory.poem)
        self.transport.loseConnection()


class DebugInstead(LoggedPoetry):
    """Wrong: at debug level, a served client would be filtered out of most logs."""

    def connectionMade(self) -> None:
        poem = self.factory.poem
        self.transport.write(poem)
        self.transport.loseConnection()
        self.log.debug("sent {nbytes} bytes", nbytes=len(poem))


SOLUTIONS = {
    "check_listener_service": Answers(
        solution=PoemService,
        wrong=[
            ForgetsToStopListening,
            NeverFinishesStopping,
            DoesNotReturnTheDeferred,
            ForgetsSuper,
            WholePoem,
        ],
    ),
    "check_structured_log": Answers(
        solution=LoggedPoetry, wrong=[FormatsTooEarly, Prints, DebugInstead, PoemService]
    ),
}
