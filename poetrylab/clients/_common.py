"""What every client model shares: the address forms they accept, one record per server,
and the endpoint the endpoint-based clients (and the services that connect onwards) use.

The Deferred client of notebooks 04-05 (and through it the ``inline`` and ``coroutine``
clients of notebook 08) connects through :func:`client_endpoint`; notebook 17 measures
why it looks up host names only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint

from poetrylab._typing import TimeTCPReactor
from poetrylab.download import Address, Download, parse_address

__all__ = ["CHUNK_SIZE", "AddressLike", "client_endpoint", "downloads_for", "when_all_done"]

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


def client_endpoint(
    reactor: TimeTCPReactor, address: Address, timeout: float
) -> IStreamClientEndpoint:
    """A TCP client endpoint for ``address``; ``timeout`` bounds the connection attempt.

    A host name gets Twisted's :class:`~twisted.internet.endpoints.HostnameEndpoint`: it
    looks the name up, then tries every address it resolves to, IPv6 and IPv4, and keeps
    the first that connects. An IP address needs no lookup, so it goes straight to
    ``TCP4ClientEndpoint`` or ``TCP6ClientEndpoint``, as asyncio's ``open_connection``
    does. The reason is measured: HostnameEndpoint looks up even ``127.0.0.1``, with
    ``getaddrinfo`` in the reactor's thread pool, and at 5,000 connections that tripled the
    Deferred client's CPU time (3.3-3.9 s instead of 1.0-1.2 s; notebook 17).
    Raises nothing itself: a bad name fails the Deferred that ``connect`` returns.
    """
    host, port = address
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    return HostnameEndpoint(reactor, host, port, timeout=timeout)
