"""The ideal times a benchmark run is judged against (notebooks 01 and 17).

Every slow server needs a fixed time to send its poem: the first chunk at once, then one
chunk every ``delay`` seconds. A client cannot beat that, only add to it:

* a client that works on one server after another (``blocking``) needs at least the
  **sum** of the servers' times;
* a client that works on every server at once (threads, ``select``, Twisted, asyncio)
  needs at least the **slowest** server's time.

The same two ideals, as throughput (poems delivered per second): one server at a time
delivers one poem per server-time whatever N is, a flat line; all at once delivers N
poems per server-time, a line that grows with N until something else (the CPU, memory,
a thread or file limit) stops it.

``efficiency = ideal / measured`` says how close a run came: 1.0 is ideal, 0.95 means the
client added 5 % on top of what the servers made it wait.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "SEQUENTIAL_CLIENTS",
    "efficiency",
    "ideal_concurrent",
    "ideal_for",
    "ideal_poems_per_s",
    "ideal_sequential",
    "server_times",
]

SEQUENTIAL_CLIENTS = frozenset({"blocking"})
"""Client names (bench names or model names) that visit one server after another."""


def server_times(size: int, num_bytes: int, delay: float, n_servers: int) -> list[float]:
    """Seconds each of ``n_servers`` identical servers needs to send a ``size``-byte poem."""
    from poetrylab.servers import poem_duration  # here: importing servers imports Twisted

    if n_servers < 0:
        raise ValueError(f"n_servers must be >= 0, not {n_servers}")
    return [poem_duration(size, num_bytes, delay)] * n_servers


def ideal_sequential(times: Sequence[float]) -> float:
    """The least time a one-server-at-a-time client can take: the sum of the servers' times."""
    return float(sum(times))


def ideal_concurrent(times: Sequence[float]) -> float:
    """The least time an all-at-once client can take: the slowest server's time (0 if none)."""
    return float(max(times, default=0.0))


def ideal_for(client: str, times: Sequence[float]) -> float:
    """The ideal time for ``client``: the sum for a sequential client, else the slowest."""
    if client in SEQUENTIAL_CLIENTS:
        return ideal_sequential(times)
    return ideal_concurrent(times)


def efficiency(ideal: float, measured: float) -> float | None:
    """``ideal / measured`` (1.0 is ideal), or None when nothing was measured."""
    if measured <= 0:
        return None
    return ideal / measured


def ideal_poems_per_s(client: str, n_servers: int, server_time: float) -> float | None:
    """The most poems per second ``client`` can deliver from ``n_servers`` servers.

    A sequential client: one poem per ``server_time`` (flat in N); a concurrent one:
    ``n_servers`` per ``server_time``. None when ``server_time`` is 0 (no limit at all).
    """
    if server_time <= 0:
        return None
    if client in SEQUENTIAL_CLIENTS:
        return 1 / server_time
    return n_servers / server_time
