"""Model solutions (and wrong answers the checks must catch) for notebook 00."""

from __future__ import annotations

import math
from fractions import Fraction

from poetrylab import runtime
from poetrylab.clients import blocking, deferred, fetch
from poetrylab.download import Download
from poetrylab.exercises import Answers

# -- exercise 1: serve a poem and download it -------------------------------------------


def fetch_poem(name: str) -> Download:
    """Serve the poem on a fast server, download it with the Deferred client."""
    reactor = runtime.start().reactor
    server = runtime.serve("fast", name)
    downloads: list[Download] = runtime.call(deferred.get_poems, reactor, [server.address])
    [download] = downloads
    return download


def fetch_with_the_helper(name: str) -> Download:
    """Also right: fetch() runs the Deferred client on the runtime's reactor."""
    [download] = fetch("deferred", [runtime.serve("fast", name).address])
    return download


def fetch_slowly(name: str) -> Download:
    """Wrong: a slow server."""
    reactor = runtime.start().reactor
    server = runtime.serve("slow", name, delay=0.001, num_bytes=1000)
    downloads: list[Download] = runtime.call(deferred.get_poems, reactor, [server.address])
    return downloads[0]


def fetch_blocking(name: str) -> Download:
    """Wrong: the blocking client, although the exercise asks for the Deferred one."""
    server = runtime.serve("fast", name)
    [download] = blocking.get_poems([server.address])
    return download


def returns_the_list(name: str) -> list[Download]:
    """Wrong: the list of one Download, not the Download."""
    reactor = runtime.start().reactor
    server = runtime.serve("fast", name)
    downloads: list[Download] = runtime.call(deferred.get_poems, reactor, [server.address])
    return downloads


def always_the_raven(name: str) -> Download:
    """Wrong: serves the same poem whatever it is asked."""
    return fetch_poem("raven")


def forgets_to_return(name: str) -> None:
    """Wrong: downloads, returns nothing."""
    fetch_poem(name)


# -- exercise 2: how long a slow server takes -------------------------------------------


def predict_seconds(size: int, num_bytes: int, delay: float) -> float:
    """One chunk at once, then a pause before each of the others."""
    return (math.ceil(size / num_bytes) - 1) * delay


def exactly(size: int, num_bytes: int, delay: float) -> Fraction:
    """Also right: an exact Fraction is a number too."""
    return (Fraction(-(-size // num_bytes)) - 1) * Fraction(str(delay))


def every_chunk_waits(size: int, num_bytes: int, delay: float) -> float:
    """Wrong: forgets that the first chunk goes out at once."""
    return math.ceil(size / num_bytes) * delay


def bytes_not_chunks(size: int, num_bytes: int, delay: float) -> float:
    """Wrong: a partly filled last chunk is still a chunk."""
    return (size // num_bytes - 1) * delay


SOLUTIONS = {
    "check_fetch_poem": Answers(
        solution=fetch_poem,
        wrong=[
            fetch_slowly,
            fetch_blocking,
            returns_the_list,
            always_the_raven,
            forgets_to_return,
            "tyger",
        ],
        also_right=[fetch_with_the_helper],
    ),
    "check_predict_seconds": Answers(
        solution=predict_seconds,
        wrong=[every_chunk_waits, bytes_not_chunks, 3.5],
        also_right=[exactly],
    ),
}
