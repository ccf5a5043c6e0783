"""The ``select`` client: every socket non-blocking, all served by one loop, by hand.

Notebook 02 (the reactor) writes this loop before meeting Twisted's. Every connection is
started up front; the loop asks the operating system which sockets are ready (writable:
a connect finished; readable: data or EOF arrived) and handles only those, so one thread
downloads every poem at once. This loop *is* a reactor, a very small one.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from typing import cast

from poetrylab.clients._common import CHUNK_SIZE, AddressLike, downloads_for
from poetrylab.download import Address, Download, describe_error

__all__ = ["NAME", "connect_error", "get_poems", "start_connect"]

NAME = "select"


def start_connect(address: Address) -> socket.socket:
    """Return a non-blocking socket whose connection to ``address`` is under way.

    The socket becomes writable when the attempt is over; then :func:`connect_error`
    says whether it worked. Raises OSError when the attempt fails at once. A host name
    (not an IP address) is looked up first, and that lookup blocks.
    """
    family, kind, proto, _, sockaddr = socket.getaddrinfo(*address, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    code = sock.connect_ex(sockaddr)
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        raise OSError(code, os.strerror(code))
    return sock


def connect_error(sock: socket.socket) -> OSError | None:
    """Once ``sock`` is writable: None if it connected, else why not (e.g. refused)."""
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return OSError(code, os.strerror(code)) if code else None  # errno picks the subclass


def get_poems(
    addresses: Iterable[AddressLike],
    timeout: float = 10.0,
    *,
    clock: Callable[[], float] | None = None,
) -> list[Download]:
    """Download from every address at once in one ``select`` loop; return the Downloads.

    Blocks the calling thread for at most about ``timeout`` seconds: every download
    starts together, so one deadline covers each one's connect and transfer.
    """
    now = clock or time.perf_counter
    downloads = downloads_for(addresses, NAME)
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:

        def stop(sock: socket.socket, download: Download, error: OSError | None) -> None:
            selector.unregister(sock)
            sock.close()
            download.finish(describe_error(error) if error else None, now())

        for download in downloads:
            download.start(now())
            try:
                sock = start_connect(download.address)
            except OSError as exc:
                download.finish(describe_error(exc), now())
            else:
                selector.register(sock, selectors.EVENT_WRITE, download)

        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, events in selector.select(left):
                sock, download = cast(socket.socket, key.fileobj), key.data
                if events & selectors.EVENT_WRITE:  # the connect attempt is over
                    if error := connect_error(sock):
                        stop(sock, download, error)
                    else:
                        download.connect(now())
                        selector.modify(sock, selectors.EVENT_READ, download)
                    continue
                try:
                    data = sock.recv(CHUNK_SIZE)
                except OSError as exc:  # e.g. reset by the server
                    stop(sock, download, exc)
                    continue
                if data:
                    download.receive(data, now())
                else:  # EOF: the server closed, the poem is complete
                    stop(sock, download, None)

        for key in list(selector.get_map().values()):  # still going at the deadline
            stop(cast(socket.socket, key.fileobj), key.data, TimeoutError("timed out"))
    return downloads
