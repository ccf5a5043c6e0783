"""The threaded client: the blocking code, run in one thread per server.

Notebook 01 (three models of work). Each thread blocks on its own socket, so the
downloads overlap and the total time is about the slowest one; the price is a thread
per connection, and the operating system deciding who runs when. Threads run out: when
the operating system refuses one more (its thread limit, or memory for the stack), the
downloads left without a thread fail with that reason and the others go on, so a
benchmark at 10,000 servers (notebook 17) reports the limit it measured instead of
crashing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from poetrylab.clients._common import AddressLike, downloads_for
from poetrylab.clients.blocking import download_poem
from poetrylab.download import Download

__all__ = ["NAME", "NO_THREAD", "get_poems"]

NAME = "threaded"

NO_THREAD = "no thread for this download"
"""How the error of a download that could not get a thread begins."""

_JOIN_GRACE = 2.0
"""Seconds past the timeout to wait for a thread that should already have given up."""


def get_poems(
    addresses: Iterable[AddressLike],
    timeout: float = 10.0,
    *,
    clock: Callable[[], float] | None = None,
) -> list[Download]:
    """Download from every address at once, one thread each; return the Downloads in order.

    Blocks until every thread is done (at most about ``timeout`` seconds). Each Download
    is filled by its own thread only, and read here only after that thread has ended.
    When no more threads can be started, every download still without one is finished
    with an error that starts ``"no thread for this download"`` and says why.
    """
    downloads = downloads_for(addresses, NAME)
    threads = [
        threading.Thread(
            target=download_poem,
            args=(download, timeout),
            kwargs={"clock": clock},
            name=f"poetry-{download.task}-{download.address}",
            daemon=True,  # a stuck thread must not keep the interpreter alive
        )
        for download in downloads
    ]
    started = 0
    for thread in threads:
        try:
            thread.start()
        except RuntimeError as exc:  # "can't start new thread": a limit, measured here
            now = (clock or time.perf_counter)()
            for left in downloads[started:]:
                left.start(now)
                left.finish(f"{NO_THREAD} ({started:,} threads were running): {exc}", now)
            break
        started += 1
    deadline = time.monotonic() + timeout + _JOIN_GRACE
    for thread, download in zip(threads[:started], downloads, strict=False):
        thread.join(max(deadline - time.monotonic(), 0.0))
        if thread.is_alive():
            download.finish(error=f"thread {thread.name} did not stop within {timeout} s")
    return downloads
