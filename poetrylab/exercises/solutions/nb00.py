"""Model solutions (and wrong answers the checks must catch) for notebook 00."""

from __future__ import annotations

import math

from poetrylab import runtime
from poetrylab.clients import deferred
from poetrylab.download import Download
from poetrylab.exercises import Answers

# -- exercise 1: serve a poem and download it -------------------------------------------


def fetch_poem(name: str) -> Download:
    """Serve the poem on a fast server, download it with the Deferred client."""
    reactor = runtime.start().reactor
    server = runtime.serve("fast", name)
    [download] = runtime.call(deferred.get_poems, reactor, [server.address])
    return download


def fetch_slowly(name: str) -> Download:
    """Wrong: a slow server."""
    reactor = runtime.start().reactor
    server = runtime.serve("slow", name, delay=0.001, num_bytes=1000)
    [download] = runtime.call(deferred.get_poems, reactor, [server.address])
    return download


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


def every_chunk_waits(size: int, num_bytes: int, delay: float) -> float:
    """Wrong: forgets that the first chunk goes out at once."""
    return math.ceil(size / num_bytes) * delay


def bytes_not_chunks(size: int, num_bytes: int, delay: float) -> float:
    """Wrong: a partly filled last chunk is still a chunk."""
    return (size // num_bytes - 1) * delay


SOLUTIONS = {
    "check_fetch_poem": Answers(
        solution=fetch_poem, wrong=[fetch_slowly, always_the_raven, forgets_to_return, "tyger"]
    ),
    "check_predict_seconds": Answers(
        solution=predict_seconds, wrong=[every_chunk_waits, bytes_not_chunks, 3.5]
    ),
}
