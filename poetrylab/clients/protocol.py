"""The Protocol client: Twisted's transports, a Protocol, a ClientFactory, and callbacks.

Notebook 03 (transports, protocols, factories). Twisted now owns the socket: the
transport connects and reads, our :class:`PoetryProtocol` only hears about events
(``connectionMade``, ``dataReceived``, ``connectionLost``), and the
:class:`PoetryClientFactory` reports the outcome by calling one of two functions we pass
in by hand, a callback or an errback. That pair is what a Deferred packages (notebook 04).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IConnector
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.python.failure import Failure

from poetrylab._typing import TCPTransport, TimeTCPReactor
from poetrylab.clients._common import AddressLike, downloads_for, when_all_done
from poetrylab.download import Download, describe_error, parse_address

__all__ = [
    "NAME",
    "PoetryClientFactory",
    "PoetryProtocol",
    "download_poem",
    "get_poems",
    "get_poetry",
]

NAME = "protocol"


class PoetryProtocol(Protocol):
    """Record every chunk as it arrives; tell the factory when the connection ends."""

    factory: PoetryClientFactory
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; set once connected

    def connectionMade(self) -> None:
        self.factory.download.connect()

    def dataReceived(self, data: bytes) -> None:
        self.factory.download.receive(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.connection_ended(reason)


class PoetryClientFactory(ClientFactory[PoetryProtocol]):
    """Make one :class:`PoetryProtocol` and report its download: ``callback(download)`` when
    the poem is complete, ``errback(download)`` when it failed (``download.error`` says why).

    Exactly one of the two is called, once. After ``timeout`` seconds, connected or not,
    the attempt is abandoned and the connection aborted.
    """

    protocol = PoetryProtocol

    def __init__(
        self,
        reactor: TimeTCPReactor,
        download: Download,
        callback: Callable[[Download], object],
        errback: Callable[[Download], object],
        timeout: float = 10.0,
    ) -> None:
        self.download = download
        self.callback = callback
        self.errback = errback
        self.connector: IConnector | None = None
        self.poetry: PoetryProtocol | None = None
        self.timed_out = False
        self.timeout_call = reactor.callLater(timeout, self.time_out)

    def startedConnecting(self, connector: IConnector) -> None:
        self.connector = connector
        self.download.start()

    def buildProtocol(self, addr: IAddress | None) -> PoetryProtocol | None:
        self.poetry = super().buildProtocol(addr)
        return self.poetry

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.connection_ended(reason)

    def time_out(self) -> None:
        """Give up: abort the connection, or stop trying to make one."""
        self.timed_out = True
        if self.poetry is not None and self.poetry.transport is not None:
            self.poetry.transport.abortConnection()  # connectionLost follows
        elif self.connector is not None:
            self.connector.stopConnecting()  # clientConnectionFailed follows

    def connection_ended(self, reason: Failure) -> None:
        """Record how it ended and call the callback or the errback (only the first time)."""
        if self.download.finished is not None:
            return
        if self.timeout_call.active():
            self.timeout_call.cancel()
        if self.timed_out:
            self.download.finish(error="timed out")
        elif isinstance(reason.value, ConnectionDone):  # the server closed: poem complete
            self.download.finish()
        else:
            self.download.finish(error=describe_error(reason.value))
        if self.download.error:
            self.errback(self.download)
        else:
            self.callback(self.download)


def download_poem(
    reactor: TimeTCPReactor,
    download: Download,
    callback: Callable[[Download], object],
    errback: Callable[[Download], object],
    timeout: float = 10.0,
) -> IConnector:
    """Start filling ``download`` from its address; later call ``callback`` or ``errback``.

    Call it in the reactor thread. Returns the connector.
    """
    factory = PoetryClientFactory(reactor, download, callback, errback, timeout)
    host, port = download.address
    return reactor.connectTCP(host, port, factory, timeout=timeout)


def get_poetry(
    reactor: TimeTCPReactor,
    address: AddressLike,
    callback: Callable[[Download], object],
    errback: Callable[[Download], object],
    timeout: float = 10.0,
    task: int = 0,
) -> IConnector:
    """Start downloading one poem; later call ``callback(download)`` or ``errback(download)``.

    Call it in the reactor thread. Returns the connector.
    """
    download = Download(parse_address(address), client=NAME, task=task)
    return download_poem(reactor, download, callback, errback, timeout)


def get_poems(
    reactor: TimeTCPReactor, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> Deferred[list[Download]]:
    """Download from every address at once; the Deferred fires with the Downloads in order.

    It never errbacks: each failure is recorded in its Download. Call it in the reactor
    thread.
    """
    return when_all_done(
        downloads_for(addresses, NAME),
        lambda download, one_done: download_poem(reactor, download, one_done, one_done, timeout),
    )
