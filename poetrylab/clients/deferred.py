"""The Deferred client: ``get_poetry`` returns a Deferred instead of taking callbacks.

Notebooks 04 and 05 (Deferreds). The Protocol is the one from notebook 03, minus the
factory's hand-made callback and errback: the outcome now travels down a Deferred's
chain, where anyone holding it can add steps. ``addTimeout`` cancels the chain when the
time is up, and cancelling reaches whatever the chain is waiting on: the connection
attempt, or the connection itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from poetrylab.clients._common import AddressLike, client_endpoint, downloads_for
from poetrylab.download import Download, DownloadError, describe_error, parse_address

__all__ = ["NAME", "PoetryProtocol", "download_poem", "get_poems", "get_poetry"]

NAME = "deferred"


class PoetryProtocol(Protocol):
    """Record every chunk; fire ``finished`` with the Download when the server closes.

    ``finished`` errbacks if the connection ends any other way. Cancelling it aborts the
    connection.
    """

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
        if reason.check(ConnectionDone):  # the server closed cleanly: poem complete
            self.finished.callback(self.download)
        else:
            self.finished.errback(reason)


def download_poem(reactor: Any, download: Download, timeout: float = 10.0) -> Deferred[Download]:
    """Fill ``download`` from its address; return a Deferred that fires with it.

    The Deferred errbacks with :class:`DownloadError` (its ``download`` says what came
    and why it failed) when the connection is refused, reset or not over within
    ``timeout`` seconds. Call it in the reactor thread.
    """
    endpoint = client_endpoint(reactor, download.address, timeout)

    def poem_arrived(download: Download) -> Download:
        download.finish()
        return download

    def download_failed(failure: Failure) -> NoReturn:
        download.finish(error=describe_error(failure.value))
        raise DownloadError(download) from failure.value

    def timed_out(result: object, timeout: float) -> Failure:
        # Cancelling mid-connect fails with ConnectingCancelledError: say what happened.
        return Failure(TimeoutError(f"no complete poem within {timeout} s"))

    download.start()
    d = connectProtocol(endpoint, PoetryProtocol(download))
    d.addCallback(lambda protocol: protocol.finished)  # connected: now wait for the poem
    d.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
    d.addCallbacks(poem_arrived, download_failed)
    return d


def get_poetry(
    reactor: Any, address: AddressLike, timeout: float = 10.0, task: int = 0
) -> Deferred[Download]:
    """Download one poem; the Deferred fires with the Download or fails with DownloadError."""
    download = Download(parse_address(address), client=NAME, task=task)
    return download_poem(reactor, download, timeout)


def get_poems(
    reactor: Any, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> Deferred[list[Download]]:
    """Download from every address at once; the Deferred fires with the Downloads in order.

    It never errbacks: each failure is recorded in its Download. Call it in the reactor
    thread.
    """

    def failed_download(failure: Failure) -> Download:
        failure.trap(DownloadError)
        return failure.value.download

    attempts = [
        download_poem(reactor, download, timeout).addErrback(failed_download)
        for download in downloads_for(addresses, NAME)
    ]
    return gatherResults(attempts)
