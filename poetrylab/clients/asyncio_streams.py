"""The asyncio client: the standard library's event loop and streams, Twisted's modern peer.

Notebook 08 (``async def``). ``asyncio.open_connection`` gives a reader and a writer (a
transport and protocol underneath, as in Twisted); ``await reader.read()`` suspends this
coroutine until data or EOF arrives, and ``asyncio.gather`` runs every download at once.
``asyncio.timeout`` cancels whatever the download is waiting on when time is up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from poetrylab.clients._common import CHUNK_SIZE, AddressLike, downloads_for
from poetrylab.download import Download, describe_error, parse_address

__all__ = ["NAME", "download_poem", "get_poems", "get_poems_async", "get_poetry"]

NAME = "asyncio"


async def download_poem(download: Download, timeout: float = 10.0) -> Download:
    """Fill ``download`` from its address; return it, failed or not (never raises OSError).

    A refused, reset or timed-out (``timeout`` seconds for connect and transfer together)
    connection is recorded in ``download.error``; the connection is closed in every case.
    """
    download.start()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*download.address)
            download.connect()
            try:
                while data := await reader.read(CHUNK_SIZE):
                    download.receive(data)
            finally:
                writer.close()
    except OSError as exc:  # TimeoutError is an OSError too
        download.finish(describe_error(exc))
    else:
        download.finish()
    return download


async def get_poetry(address: AddressLike, timeout: float = 10.0, *, task: int = 0) -> Download:
    """Download one poem; return the Download, failed or not."""
    return await download_poem(Download(parse_address(address), client=NAME, task=task), timeout)


async def get_poems_async(
    addresses: Iterable[AddressLike], timeout: float = 10.0
) -> list[Download]:
    """Download from every address at once; return the Downloads in order (never raises OSError)."""
    downloads = downloads_for(addresses, NAME)
    return list(await asyncio.gather(*(download_poem(d, timeout) for d in downloads)))


def get_poems(addresses: Iterable[AddressLike], timeout: float = 10.0) -> list[Download]:
    """Run :func:`get_poems_async` in a new event loop (``asyncio.run``) and return its result.

    Blocks for up to about ``timeout`` seconds. Raises RuntimeError when an event loop
    is already running in this thread (as in a notebook): ``await get_poems_async(...)``
    there instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(get_poems_async(addresses, timeout))
    raise RuntimeError(
        "an asyncio event loop is already running in this thread (a notebook?): "
        "use `await get_poems_async(addresses)` instead of get_poems()"
    )
