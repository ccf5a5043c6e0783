"""Model solutions (and wrong answers the checks must catch) for notebook 14."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger

from poetrylab._typing import ReactorTCP
from poetrylab.exercises import Answers

if TYPE_CHECKING:
    from poetrylab._typing import ListeningPort, TCPTransport

# -- exercise 1: a service with a lifecycle -----------------------------------------------


class WholePoem(Protocol):
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def connectionMade(self) -> None:
        self.transport.write(cast(Any, self.factory).poem)  # the factory has a poem
        self.transport.loseConnection()


class PoemFactory(ServerFactory):
    protocol = WholePoem

    def __init__(self, poem: bytes) -> None:
        self.poem = poem


class PoemService(Service):
    """Listen while running; close the port when stopped."""

    def __init__(self, poem: bytes, reactor: ReactorTCP) -> None:
        self.poem = poem
        self.reactor = reactor
        self.listening: ListeningPort | None = None

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted: unannotated
        factory = PoemFactory(self.poem)
        self.listening = cast(
            "ListeningPort", self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        )

    def stopService(self) -> Deferred[None] | None:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted: unannotated
        assert self.listening is not None  # started before it is stopped
        return self.listening.stopListening()


class ForgetsToStopListening(PoemService):
    """Wrong: the port stays open after the service stopped."""

    def stopService(self) -> Deferred[None] | None:
        Service.stopService(self)
        return succeed(None)


class NeverFinishesStopping(PoemService):
    """Wrong: returns a Deferred that nothing will ever fire."""

    def stopService(self) -> Deferred[None] | None:
        Service.stopService(self)
        assert self.listening is not None
        self.listening.stopListening()
        return Deferred()


class DoesNotReturnTheDeferred(PoemService):
    """Wrong: nobody can wait for the port to close."""

    def stopService(self) -> None:
        super().stopService()


class ForgetsSuper(PoemService):
    """Wrong: never says it is running."""

    def startService(self) -> None:
        factory = PoemFactory(self.poem)
        self.listening = cast(
            "ListeningPort", self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        )


class ListensEverywhere(PoemService):
    """Wrong: listens on every network interface, where other machines can reach it."""

    def startService(self) -> None:
        Service.startService(self)
        self.listening = cast("ListeningPort", self.reactor.listenTCP(0, PoemFactory(self.poem)))


# -- exercise 2: structured logging ----------------------------------------------------


class LoggedPoetry(Protocol):
    """Send the poem, close, and log what was sent as a structured event."""

    log = Logger()
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def send_poem(self) -> bytes:
        """Write the factory's poem, close, and return it."""
        poem: bytes = cast(Any, self.factory).poem  # the check's factory has a poem
        self.transport.write(poem)
        self.transport.loseConnection()
        return poem

    def connectionMade(self) -> None:
        poem = self.send_poem()
        self.log.info("sent {nbytes} bytes", nbytes=len(poem))


class LogsWithThousands(LoggedPoetry):
    """Also right: a format spec in the braces is still the field nbytes."""

    def connectionMade(self) -> None:
        self.log.info("sent {nbytes:,} bytes", nbytes=len(self.send_poem()))


class FormatsTooEarly(LoggedPoetry):
    """Wrong: an f-string leaves no field for observers to read."""

    def connectionMade(self) -> None:
        self.log.info(f"sent {len(self.send_poem())} bytes")


class Prints(LoggedPoetry):
    """Wrong: print() is not a log event."""

    def connectionMade(self) -> None:
        print(f"sent {len(self.send_poem())} bytes")


class DebugInstead(LoggedPoetry):
    """Wrong: at debug level, a served client would be filtered out of most logs."""

    def connectionMade(self) -> None:
        self.log.debug("sent {nbytes} bytes", nbytes=len(self.send_poem()))


SOLUTIONS = {
    "check_listener_service": Answers(
        solution=PoemService,
        wrong=[
            ForgetsToStopListening,
            NeverFinishesStopping,
            DoesNotReturnTheDeferred,
            ForgetsSuper,
            ListensEverywhere,
            WholePoem,
        ],
    ),
    "check_structured_log": Answers(
        solution=LoggedPoetry,
        wrong=[FormatsTooEarly, Prints, DebugInstead, PoemService],
        also_right=[LogsWithThousands],
    ),
}
