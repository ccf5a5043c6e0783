"""Model solutions (and wrong answers the checks must catch) for notebook 01."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

from poetrylab.clients.blocking import download_poem
from poetrylab.download import Address, Download
from poetrylab.exercises import Answers

# -- exercise 1: the least time each model needs -------------------------------------------


def total_time(model: str, seconds: list[float]) -> float:
    """One after another: the sum; all at once (threads or one event loop): the longest."""
    if model == "synchronous":
        return sum(seconds)
    return max(seconds, default=0.0)


def total_time_in_fractions(model: str, seconds: list[float]) -> Fraction:
    """Also right: exact arithmetic is a number too."""
    exact = [Fraction(s) for s in seconds]
    return sum(exact, Fraction(0)) if model == "synchronous" else max(exact, default=Fraction(0))


def always_sum(model: str, seconds: list[float]) -> float:
    """Wrong: as if every model waited for one task after another."""
    return sum(seconds)


def async_is_sequential(model: str, seconds: list[float]) -> float:
    """Wrong: one thread, so it must be one after another? No: it waits on all at once."""
    return max(seconds, default=0.0) if model == "threaded" else sum(seconds)


def empty_list_breaks(model: str, seconds: list[float]) -> float:
    """Wrong: max() of no tasks raises."""
    return sum(seconds) if model == "synchronous" else max(seconds)


# -- exercise 2: a pool of two threads ------------------------------------------------------


def _downloads(addresses: list[Address]) -> list[Download]:
    return [Download(a, client="pool", task=i) for i, a in enumerate(addresses, 1)]


def pool_client(addresses: list[Address]) -> list[Download]:
    """Two worker threads share the downloads; map() waits for all of them."""
    downloads = _downloads(addresses)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(download_poem, downloads))
    return downloads


def pool_client_submit(addresses: list[Address]) -> list[Download]:
    """Also right: submit each download, then wait for every future."""
    downloads = _downloads(addresses)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(download_poem, d) for d in downloads]
    for future in futures:
        future.result()
    return downloads


def one_after_another(addresses: list[Address]) -> list[Download]:
    """Wrong: the synchronous model."""
    downloads = _downloads(addresses)
    for download in downloads:
        download_poem(download)
    return downloads


def thread_per_server(addresses: list[Address]) -> list[Download]:
    """Wrong: all four at once."""
    downloads = _downloads(addresses)
    threads = [threading.Thread(target=download_poem, args=(d,)) for d in downloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return downloads


def forgets_to_wait(addresses: list[Address]) -> list[Download]:
    """Wrong: returns while the pool is still working."""
    downloads = _downloads(addresses)
    pool = ThreadPoolExecutor(max_workers=2)
    for download in downloads:
        pool.submit(download_poem, download)
    pool.shutdown(wait=False)
    return downloads


SOLUTIONS = {
    "check_total_time": Answers(
        solution=total_time,
        wrong=[always_sum, async_is_sequential, empty_list_breaks, 42],
        also_right=[total_time_in_fractions],
    ),
    "check_pool_client": Answers(
        solution=pool_client,
        wrong=[one_after_another, thread_per_server, forgets_to_wait, "pool_client"],
        also_right=[pool_client_submit],
    ),
}
