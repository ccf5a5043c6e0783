"""Checks for notebook 01 (three models of work).

* :func:`check_total_time` — the learner's ``total_time(model, seconds)``: the least time
  each model needs for tasks that take ``seconds`` each (the sum, or the slowest).
* :func:`check_pool_client` — the learner's ``pool_client(addresses)``: every poem, with
  at most two downloads at a time. Run against four slow servers on loopback, started
  through the notebook runtime under names of their own (``nb01-check-...``) and stopped
  before the check returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from poetrylab import runtime
from poetrylab.corpus import load_poem
from poetrylab.download import Download
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner, is_number
from poetrylab.exercises._registry import NotYet, exercise, function
from poetrylab.servers import listen_slow

__all__ = ["POOL_SERVERS", "check_pool_client", "check_total_time", "most_at_once"]

_CASES: list[tuple[str, list[float], float]] = [
    ("synchronous", [2.0, 3.0, 1.0, 4.0], 10.0),
    ("threaded", [2.0, 3.0, 1.0, 4.0], 4.0),
    ("asynchronous", [2.0, 3.0, 1.0, 4.0], 4.0),
    ("synchronous", [0.5], 0.5),
    ("asynchronous", [0.5, 0.5, 0.5], 0.5),
    ("synchronous", [], 0.0),
    ("asynchronous", [], 0.0),
]

POOL_SERVERS = 4
"""How many servers :func:`check_pool_client` starts."""

_POEM, _DELAY, _NUM_BYTES = "hope", 0.03, 40


@exercise("01", function("total_time(model, seconds)"), title="how long, at best?")
def check_total_time(total_time: Callable[[str, list[float]], object]) -> str:
    """Call ``total_time(model, seconds)`` on several task lists; compare with the ideal.

    ``model`` is ``"synchronous"``, ``"threaded"`` or ``"asynchronous"``; ``seconds`` a
    list of how long each task waits. The answer is the least total time the model needs.
    """
    for model, seconds, want in _CASES:
        call = f"total_time({model!r}, {seconds})"
        hint = (
            "with no tasks at all, there is nothing to wait for: the answer is 0. "
            "max() of an empty list needs default=0."
            if not seconds
            else "read the error: what does your function do with this model?"
        )
        got = call_learner(call, total_time, model, list(seconds), hint=hint)
        if not is_number(got) or not math.isclose(float(got), want, abs_tol=1e-9):
            if model == "synchronous":
                hint = "one task after another: each waits its whole time, so the times add up."
            else:
                hint = (
                    "all tasks wait at the same time, so the total is the longest wait, not "
                    f"the sum: the {model} model overlaps the waiting."
                )
            raise NotYet(f"{call} is not right", expected=f"{want:g}", got=short(got), hint=hint)
    return (
        "the synchronous model needs the sum of the waits, the threaded and asynchronous "
        "models only the longest one."
    )


def most_at_once(downloads: Sequence[Download]) -> int:
    """The most downloads that were under way at the same moment (0 if none started)."""
    events: list[tuple[float, int]] = []
    for d in downloads:
        start = d.started if d.started is not None else (d.chunks[0].t if d.chunks else None)
        end = d.finished if d.finished is not None else (d.chunks[-1].t if d.chunks else None)
        if start is not None and end is not None:
            events += [(start, 1), (end, -1)]
    busy = peak = 0
    for _, change in sorted(events):  # on a tie, -1 sorts first: an end before a start
        busy += change
        peak = max(peak, busy)
    return peak


@exercise("01", function("pool_client(addresses)"), title="a pool of two threads")
def check_pool_client(pool_client: Callable[[list[object]], object]) -> str:
    """Run ``pool_client(addresses)`` against four slow servers; every poem must arrive,
    with at most two downloads at a time, and two at a time at some point."""
    poem = load_poem(_POEM).data
    runtime.start()
    servers = []
    try:
        for i in range(POOL_SERVERS):
            servers.append(runtime.listen(
                lambda reactor: listen_slow(reactor, poem, delay=_DELAY, num_bytes=_NUM_BYTES),
                name=f"nb01-check-pool-{i + 1}",
            ))  # fmt: skip
        addresses: list[object] = [server.address for server in servers]
        downloads = call_learner("your pool_client", pool_client, addresses)
    finally:
        for server in servers:
            server.stop()
    if not isinstance(downloads, list | tuple) or not all(
        isinstance(d, Download) for d in downloads
    ):
        raise NotYet(
            "pool_client should return the list of Downloads",
            expected=f"a list of {POOL_SERVERS} Download objects",
            got=short(downloads),
            hint="make one Download per address, fill them, and return the list.",
        )
    if len(downloads) != POOL_SERVERS:
        raise NotYet(
            "one Download per server, please",
            expected=f"{POOL_SERVERS} Downloads",
            got=f"{len(downloads)} Downloads",
        )
    if any(d.data != poem for d in downloads):
        raise NotYet(
            "not every poem arrived whole",
            expected=f"{len(poem)} bytes from each server",
            got=", ".join(f"{d.nbytes} bytes" for d in downloads),
            hint="every Download must be passed to get_poem_blocking; did every task run "
            "before pool_client returned? (leave the `with ThreadPoolExecutor` block first)",
        )
    peak = most_at_once(downloads)
    if peak > 2:
        raise NotYet(
            f"{peak} downloads ran at the same time",
            expected="at most 2 at a time",
            got=f"{peak} at a time",
            hint="a pool with max_workers=2 runs two at a time; starting a Thread per "
            "server runs them all at once.",
        )
    if peak < 2:
        raise NotYet(
            "the downloads ran one after another",
            expected="2 at a time",
            got="1 at a time (the synchronous model)",
            hint="hand every download to the pool first (pool.map or pool.submit), and wait "
            "for the results only afterwards.",
        )
    return (
        f"all {POOL_SERVERS} poems, two at a time: about half the synchronous client's "
        "time, and twice the slowest server's."
    )
