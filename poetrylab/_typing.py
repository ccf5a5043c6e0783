"""The reactor types poetrylab's code asks for: just the methods it calls, as Protocols.

Twisted describes its reactors with zope interfaces (``IReactorTime``, ``IReactorTCP``,
...), which a type checker cannot match against a plain object without a plugin. These
``typing.Protocol`` classes name the same methods, so mypy checks every call, and any
object with those methods fits: the global reactor, ``task.Clock``,
``MemoryReactorClock`` in a test. Each says which Twisted interface it mirrors; combine
them the way the code needs (:class:`TimeTCPReactor` is the usual server's).

Nothing here runs: importing this module costs nothing and touches no reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IConnector, IDelayedCall, IListeningPort
from twisted.internet.protocol import ClientFactory, Factory

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.threadpool import ThreadPool

__all__ = [
    "ListeningPort",
    "ReactorCore",
    "ReactorFDSet",
    "ReactorTCP",
    "ReactorThreadPool",
    "ReactorThreads",
    "ReactorTime",
    "RuntimeReactor",
    "TCPTransport",
    "TimeTCPReactor",
]


class ReactorTime(Protocol):
    """What ``IReactorTime`` offers and we use: timers and the reactor's clock."""

    def callLater(
        self, delay: float, callable: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> IDelayedCall: ...

    def seconds(self) -> float: ...


class ReactorTCP(Protocol):
    """What ``IReactorTCP`` offers: listen on and connect to TCP ports."""

    def listenTCP(
        self, port: int, factory: Factory[Any], /, backlog: int = ..., interface: str = ...
    ) -> IListeningPort: ...

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: ClientFactory[Any],
        /,
        timeout: float = ...,
        bindAddress: tuple[str, int] | None = ...,
    ) -> IConnector: ...


class ReactorThreads(Protocol):
    """What ``IReactorFromThreads`` offers: hand a call to the reactor from another thread."""

    def callFromThread(
        self, callable: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> None: ...


class TimeTCPReactor(ReactorTime, ReactorTCP, Protocol):
    """A reactor with timers and TCP: what a poetry server or client needs."""


class ReactorThreadPool(Protocol):
    """What ``IReactorThreads`` offers and we use: the reactor's thread pool."""

    def getThreadPool(self) -> ThreadPool: ...


class ListeningPort(Protocol):
    """What ``IListeningPort`` offers: where it listens, and how to stop.

    ``getHost()`` returns an ``IPv4Address`` or ``IPv6Address`` (``host``, ``port``).
    """

    def getHost(self) -> Any: ...

    def stopListening(self) -> Deferred[None] | None: ...


class TCPTransport(Protocol):
    """What a TCP connection's transport offers and our protocols use.

    It mirrors ``ITCPTransport`` (write, close, abort, addresses) plus ``IConsumer``
    (register a producer, so the transport says when its buffer is full) and
    ``IPushProducer`` (stop and resume reading). ``disconnecting`` is True once
    ``loseConnection`` has been called. ``StringTransport`` fits it in tests.
    """

    disconnecting: bool

    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> Any: ...

    def getHost(self) -> Any: ...

    def registerProducer(self, producer: object, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...

    def stopProducing(self) -> None: ...


class ReactorCore(Protocol):
    """What ``IReactorCore`` offers and the notebook runtime uses: run, stop, triggers."""

    @property
    def running(self) -> bool: ...

    def run(self, installSignalHandlers: bool = ...) -> None: ...

    def stop(self) -> None: ...

    def callWhenRunning(
        self, callable: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any: ...

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[..., Any], /, *args: Any,
        **kwargs: Any,
    ) -> Any: ...


class RuntimeReactor(ReactorCore, ReactorThreads, ReactorTime, ReactorTCP, Protocol):
    """The reactor the notebook runtime runs in its thread: core, threads, time and TCP."""


class ReactorFDSet(Protocol):
    """What ``IReactorFDSet`` offers: watch a file descriptor for reading or writing."""

    def addReader(self, reader: Any) -> None: ...

    def addWriter(self, writer: Any) -> None: ...

    def removeReader(self, reader: Any) -> None: ...

    def removeWriter(self, writer: Any) -> None: ...
