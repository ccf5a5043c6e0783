"""The ``async def`` client: coroutines that ``await`` Deferreds, driven by Twisted.

Notebook 08 (``inlineCallbacks``, generators, ``async def``). The same shape as the
``inlineCallbacks`` client with the modern syntax: ``await`` a Deferred inside an
``async def``, and ``Deferred.fromCoroutine`` turns the coroutine back into a Deferred
that Twisted drives. No asyncio event loop is involved: the reactor is the loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.defer import Deferred, gatherResults

from poetrylab._typing import TimeTCPReactor
from poetrylab.clients._common import AddressLike
from poetrylab.clients.deferred import download_poem
from poetrylab.download import Download, DownloadError, parse_address

__all__ = ["NAME", "gather_poems", "get_poems", "get_poetry"]

NAME = "coroutine"


async def get_poetry(
    reactor: TimeTCPReactor, address: AddressLike, timeout: float = 10.0, task: int = 0
) -> Download:
    """Download one poem; return the Download, failed or not (it never raises DownloadError)."""
    download = Download(parse_address(address), client=NAME, task=task)
    try:
        result = await download_poem(reactor, download, timeout)
    except DownloadError as failed:
        result = failed.download  # its .error says what went wrong
    return result


async def gather_poems(
    reactor: TimeTCPReactor, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> list[Download]:
    """Download from every address at once; return the Downloads in order.

    Each download becomes a Deferred (``Deferred.fromCoroutine``) so they run together,
    and ``gatherResults`` waits for them all.
    """
    attempts = [
        Deferred.fromCoroutine(get_poetry(reactor, address, timeout, task))
        for task, address in enumerate(addresses, start=1)
    ]
    return await gatherResults(attempts)


def get_poems(
    reactor: TimeTCPReactor, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> Deferred[list[Download]]:
    """:func:`gather_poems` as a Deferred, which never errbacks. Call it in the reactor thread."""
    return Deferred.fromCoroutine(gather_poems(reactor, addresses, timeout))
