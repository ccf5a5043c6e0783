"""What every client model shares: the address forms they accept and one record per server."""

from __future__ import annotations

from collections.abc import Iterable

from poetrylab.download import Address, Download, parse_address

__all__ = ["AddressLike", "CHUNK_SIZE", "downloads_for"]

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
