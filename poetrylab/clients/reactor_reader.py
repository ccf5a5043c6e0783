"""The reactor client: our own socket handed to Twisted's reactor with ``addReader``.

Notebook 02 (the reactor) replaces the hand-written ``select`` loop with Twisted's: the
reactor waits on every file descriptor and calls back ``doWrite`` when our connect
attempt is over and ``doRead`` when data (or EOF) arrives. This is everything a Protocol
and a Transport will later do for us (notebook 03), written out by hand. Nothing here
blocks the reactor: the socket is non-blocking from the start.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReadDescriptor, IWriteDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

from poetrylab._typing import ReactorFDSet, ReactorTime
from poetrylab.clients._common import CHUNK_SIZE, AddressLike, downloads_for, when_all_done
from poetrylab.clients.select_loop import connect_error, start_connect
from poetrylab.download import Download, describe_error, parse_address

__all__ = ["NAME", "FDReactor", "PoetrySocket", "get_poems", "get_poetry"]

NAME = "reactor"


class FDReactor(ReactorTime, ReactorFDSet, Protocol):
    """What this client needs of a reactor: timers, and watching file descriptors."""


@implementer(IReadDescriptor, IWriteDescriptor)
class PoetrySocket:
    """One download, driven by the reactor: connect, read until EOF, then call ``on_done``.

    ``on_done(download)`` is called exactly once, in the reactor thread, when the poem is
    complete or the download failed (``download.error`` says why). After ``timeout``
    seconds the download is given up and the socket closed.
    """

    def __init__(
        self,
        reactor: FDReactor,
        download: Download,
        on_done: Callable[[Download], object],
        timeout: float = 10.0,
    ) -> None:
        self.reactor = reactor
        self.download = download
        self.on_done = on_done
        self.sock: socket.socket | None = None
        self.timeout_call = reactor.callLater(timeout, self.stop, TimeoutError("timed out"))
        download.start()
        try:
            self.sock = start_connect(download.address)
        except OSError as exc:
            self.stop(exc)
        else:
            reactor.addWriter(self)  # writable means the connect attempt is over

    # The reactor calls these (IReadDescriptor, IWriteDescriptor).

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock else -1

    def logPrefix(self) -> str:
        return f"poetry-{self.download.task}"

    def doWrite(self) -> None:
        assert self.sock is not None  # the reactor watches us only once the socket exists
        self.reactor.removeWriter(self)
        if error := connect_error(self.sock):
            self.stop(error)
        else:
            self.download.connect()
            self.reactor.addReader(self)

    def doRead(self) -> None:
        assert self.sock is not None  # the reactor watches us only once the socket exists
        try:
            data = self.sock.recv(CHUNK_SIZE)
        except BlockingIOError:  # woken up with nothing to read after all
            return
        except OSError as exc:  # e.g. reset by the server
            self.stop(exc)
            return
        if data:
            self.download.receive(data)
        else:  # EOF: the server closed, the poem is complete
            self.stop()

    def connectionLost(self, reason: Failure) -> None:
        if self.download.finished is not None:  # we stopped first
            return
        # The reactor saw the socket hang up (or is shutting down). Before we connected,
        # that is how epoll reports a failed connect: ask the socket for the reason.
        if self.download.connected is None and self.sock is not None:
            self.stop(connect_error(self.sock) or reason.value)
        elif isinstance(reason.value, ConnectionDone):
            self.stop()
        else:
            self.stop(reason.value)

    # Ours.

    def stop(self, error: BaseException | None = None) -> None:
        """Stop watching and close the socket; record ``error`` (or success); call ``on_done``.

        Safe to call more than once: only the first call counts.
        """
        if self.download.finished is not None:
            return
        if self.timeout_call.active():
            self.timeout_call.cancel()
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.reactor.removeWriter(self)
            self.sock.close()
        self.download.finish(describe_error(error) if error else None)
        self.on_done(self.download)


def get_poetry(
    reactor: FDReactor,
    address: AddressLike,
    on_done: Callable[[Download], object],
    timeout: float = 10.0,
    task: int = 0,
) -> PoetrySocket:
    """Start downloading one poem; ``on_done(download)`` is called when it is over.

    Call it in the reactor thread.
    """
    download = Download(parse_address(address), client=NAME, task=task)
    return PoetrySocket(reactor, download, on_done, timeout)


def get_poems(
    reactor: FDReactor, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> Deferred[list[Download]]:
    """Download from every address at once; the Deferred fires with the Downloads in order.

    It never errbacks: each failure is recorded in its Download. Call it in the reactor
    thread.
    """
    return when_all_done(
        downloads_for(addresses, NAME),
        lambda download, one_done: PoetrySocket(reactor, download, one_done, timeout),
    )
