"""The Deferred client: ``get_poetry`` returns a Deferred instead of taking callbacks.

Notebooks 04 and 05 (Deferreds); the benchmark's ``twisted`` client (notebook 17). The
Protocol is the one from notebook 03, minus the factory's hand-made callback and
errback: the outcome now travels down a Deferred's chain, where anyone holding it can
add steps. ``addTimeout`` cancels the chain when the time is up, and cancelling reaches
whatever the chain is waiting on: the connection attempt, or the connection itself.

It is also lean, measured at 10,000 connections (notebook 17): the endpoint for an IP
address needs no name lookup (:func:`~poetrylab.clients._common.client_endpoint`), and
the one-connection factory is a class of its own that does not log. Twisted's
``connectProtocol`` would build a new factory *class* for every call, and a factory that
logs writes "Starting factory" and "Stopping factory" for every connection: together
they cost this client a tenth of its CPU time at 10,000 connections.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn, cast

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IProtocol, IReactorTime
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from poetrylab._typing import TCPTransport, TimeTCPReactor
from poetrylab.clients._common import AddressLike, client_endpoint, downloads_for
from poetrylab.download import Download, DownloadError, describe_error, parse_address

__all__ = [
    "NAME",
    "PoetryFactory",
    "PoetryProtocol",
    "download_poem",
    "get_poems",
    "get_poetry",
]

NAME = "deferred"


class PoetryProtocol(Protocol):
    """Record every chunk; fire ``finished`` with the Download when the server closes.

    ``finished`` errbacks if the connection ends any other way. Cancelling it aborts the
    connection.
    """

    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; set once connected

    def __init__(self, download: Download) -> None:
        self.download = download
        self.finished: Deferred[Download] = Deferred(lambda _: self.transport.abortConnection())

    def connectionMade(self) -> None:
        self.download.connect()

    def dataReceived(self, data: bytes) -> None:
        self.download.receive(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.finished.called:  # cancelled (timed out) already
            return
        if isinstance(reason.value, ConnectionDone):  # the server closed: poem complete
            self.finished.callback(self.download)
        else:
            self.finished.errback(reason)


class PoetryFactory(Factory):
    """Hand the endpoint the one :class:`PoetryProtocol` of one download.

    ``noisy = False``: a factory normally logs when it starts and stops, and with one
    factory per connection that is two log events per download.
    """

    noisy = False

    def __init__(self, protocol: PoetryProtocol) -> None:
        self.poetry = protocol

    def buildProtocol(self, addr: IAddress | None) -> PoetryProtocol:
        return self.poetry


def download_poem(
    reactor: TimeTCPReactor, download: Download, timeout: float = 10.0
) -> Deferred[Download]:
    """Fill ``download`` from its address; return a Deferred that fires with it.

    The Deferred errbacks with :class:`DownloadError` (its ``download`` says what came
    and why it failed) when the connection is refused, reset or not over within
    ``timeout`` seconds. Call it in the reactor thread.
    """
    endpoint = client_endpoint(reactor, download.address, timeout)
    protocol = PoetryProtocol(download)

    def connected(_: IProtocol) -> Deferred[Download]:
        return protocol.finished  # now wait for the poem

    def poem_arrived(download: Download) -> Download:
        download.finish()
        return download

    def download_failed(failure: Failure) -> NoReturn:
        download.finish(error=describe_error(failure.value))
        raise DownloadError(download) from failure.value

    def timed_out(result: object, timeout: float) -> NoReturn:
        # Cancelling mid-connect fails with ConnectingCancelledError: say what happened.
        raise TimeoutError(f"no complete poem within {timeout} s")

    download.start()
    d = endpoint.connect(PoetryFactory(protocol)).addCallback(connected)
    # (cast: Twisted annotates the clock as the zope interface; it is the same reactor)
    d.addTimeout(timeout, cast(IReactorTime, reactor), onTimeoutCancel=timed_out)
    return d.addCallbacks(poem_arrived, download_failed)


def get_poetry(
    reactor: TimeTCPReactor, address: AddressLike, timeout: float = 10.0, task: int = 0
) -> Deferred[Download]:
    """Download one poem; the Deferred fires with the Download or fails with DownloadError."""
    download = Download(parse_address(address), client=NAME, task=task)
    return download_poem(reactor, download, timeout)


def get_poems(
    reactor: TimeTCPReactor, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> Deferred[list[Download]]:
    """Download from every address at once; the Deferred fires with the Downloads in order.

    It never errbacks: each failure is recorded in its Download. Call it in the reactor
    thread.
    """

    def failed_download(failure: Failure) -> Download:
        failure.trap(DownloadError)
        return cast(DownloadError, failure.value).download  # its .error says what went wrong

    attempts = [
        download_poem(reactor, download, timeout).addErrback(failed_download)
        for download in downloads_for(addresses, NAME)
    ]
    return gatherResults(attempts)
