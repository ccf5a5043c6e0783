"""What every client model shares: the address forms they accept and one record per server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint

from poetrylab.download import Address, Download, parse_address

__all__ = ["AddressLike", "CHUNK_SIZE", "downloads_for", "tcp_endpoint", "when_all_done"]

AddressLike = Address | tuple[str, int] | str
"""An :class:`Address`, a ``(host, port)`` pair or a ``"HOST:PORT"`` string."""

CHUNK_SIZE = 4096
"""The most bytes one read asks for; a slow server sends far fewer at a time."""


def downloads_for(addresses: Iterable[AddressLike], client: str) -> list[Download]:
    """One empty :class:`Download` per address, numbered from 1 in order, labelled ``client``.

    Raises ValueError for an address that cannot be parsed, before anything connects.
    """
    return [
        Download(parse_address(address), client=client, task=task)
        for task, address in enumerate(addresses, start=1)
    ]


def when_all_done(
    downloads: list[Download], start: Callable[[Download, Callable[[Download], None]], Any]
) -> Deferred[list[Download]]:
    """Start every download with ``start(download, one_done)``; fire when all called back.

    This is how callback-style code (before Deferreds) knows that *everything* is over:
    count the completions. The Deferred fires with ``downloads`` in order and never
    errbacks: each failure is recorded in its Download. Call it in the reactor thread.
    """
    if not downloads:
        return succeed([])
    all_done: Deferred[list[Download]] = Deferred()
    waiting = len(downloads)

    def one_done(download: Download) -> None:
        nonlocal waiting
        waiting -= 1
        if waiting == 0:
            all_done.callback(downloads)

    for download in downloads:
        start(download, one_done)
    return all_done


def tcp_endpoint(
    reactor: Any, address: Address, timeout: float
) -> TCP4ClientEndpoint | TCP6ClientEndpoint:
    """A TCP client endpoint for ``address``: IPv6 for a ``::``-style host, else IPv4.

    ``timeout`` bounds the connection attempt. Used by every endpoint-based client here
    and by the services that connect onwards (transform client, tagged backend client).
    """
    host, port = address
    endpoint_type = TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint
    return endpoint_type(reactor, host, port, timeout=timeout)
