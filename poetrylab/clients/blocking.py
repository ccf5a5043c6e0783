"""The blocking client: one server after another, each socket read until the poem ends.

Notebook 01 (three models of work) starts here. Each connection is opened only when its
turn comes, and while one poem trickles in the program can do nothing else, so the total
time is the sum of every download's time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable

from poetrylab.clients._common import CHUNK_SIZE, AddressLike, downloads_for
from poetrylab.download import Download, describe_error, parse_address

__all__ = ["NAME", "download_poem", "get_poems", "get_poetry"]

NAME = "blocking"


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def download_poem(
    download: Download, timeout: float = 10.0, *, clock: Callable[[], float] | None = None
) -> Download:
    """Connect to ``download.address`` and read the poem into ``download``; return it.

    Blocks the calling thread for up to ``timeout`` seconds (connect and transfer
    together). Never raises for a network problem: a refused, reset or timed-out
    connection is recorded in ``download.error``. Times come from ``clock`` (default
    ``time.perf_counter``).
    """
    now = clock or time.perf_counter
    deadline = time.monotonic() + timeout
    download.start(now())
    try:
        with socket.create_connection(download.address, timeout=timeout) as sock:
            download.connect(now())
            while True:
                sock.settimeout(_time_left(deadline))
                data = sock.recv(CHUNK_SIZE)
                if not data:  # the server closed: the poem is complete
                    break
                download.receive(data, now())
    except OSError as exc:  # TimeoutError is an OSError too
        download.finish(describe_error(exc), now())
    else:
        download.finish(t=now())
    return download


def get_poetry(
    address: AddressLike,
    timeout: float = 10.0,
    *,
    task: int = 0,
    clock: Callable[[], float] | None = None,
) -> Download:
    """Download one poem from ``address``, blocking until it is complete, failed or timed out."""
    download = Download(parse_address(address), client=NAME, task=task)
    return download_poem(download, timeout, clock=clock)


def get_poems(
    addresses: Iterable[AddressLike],
    timeout: float = 10.0,
    *,
    clock: Callable[[], float] | None = None,
) -> list[Download]:
    """Download from each address in turn; return one Download per address, in order.

    ``timeout`` applies to each download separately, so the whole call can take up to
    ``len(addresses) * timeout`` seconds.
    """
    downloads = downloads_for(addresses, NAME)
    for download in downloads:
        download_poem(download, timeout, clock=clock)
    return downloads
