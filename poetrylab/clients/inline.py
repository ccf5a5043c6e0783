"""The ``inlineCallbacks`` client: a generator that reads like blocking code, but is not.

Notebook 08 (``inlineCallbacks``, generators, ``async def``). Each ``yield`` hands a
Deferred to Twisted and suspends the generator; Twisted resumes it with the result, or
throws the failure in at the ``yield`` so a plain ``try``/``except`` handles it. The
download itself is the Deferred one from notebook 04; what is new is who drives it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

from twisted.internet.defer import Deferred, inlineCallbacks

from poetrylab._typing import TimeTCPReactor
from poetrylab.clients._common import AddressLike
from poetrylab.clients.deferred import download_poem
from poetrylab.download import Download, DownloadError, parse_address

__all__ = ["NAME", "get_poems", "get_poetry"]

NAME = "inline"


@inlineCallbacks
def get_poetry(
    reactor: TimeTCPReactor, address: AddressLike, timeout: float = 10.0, task: int = 0
) -> Generator[Deferred[Download], Download, Download]:
    """Download one poem; the Deferred fires with the Download, failed or not (never errbacks)."""
    download = Download(parse_address(address), client=NAME, task=task)
    try:
        result: Download = yield download_poem(reactor, download, timeout)
    except DownloadError as failed:
        result = failed.download  # its .error says what went wrong
    return result


@inlineCallbacks
def get_poems(
    reactor: TimeTCPReactor, addresses: Iterable[AddressLike], timeout: float = 10.0
) -> Generator[Deferred[Download], Download, list[Download]]:
    """Download from every address at once; the Deferred fires with the Downloads in order.

    Every download is started before the first ``yield``, so they all run together;
    the loop then waits for each in turn. It never errbacks. Call it in the reactor thread.
    """
    attempts = [
        get_poetry(reactor, address, timeout, task)
        for task, address in enumerate(addresses, start=1)
    ]
    downloads = []
    for attempt in attempts:
        download = yield attempt
        downloads.append(download)
    return downloads
