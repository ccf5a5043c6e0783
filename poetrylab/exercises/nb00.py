"""Checks for notebook 00 (welcome).

* :func:`check_fetch_poem` — the learner's ``fetch_poem(name)``: serve a poem on a fast
  server through the notebook runtime, download it, and return the Download.
* :func:`check_predict_seconds` — the learner's ``predict_seconds(size, num_bytes,
  delay)``: how long a slow server takes to send a poem.
"""

from __future__ import annotations

import math
from typing import Any

from poetrylab import runtime
from poetrylab.corpus import list_poems, load_poem
from poetrylab.download import Download
from poetrylab.exercises._feedback import (
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
    short,
)
from poetrylab.servers import poem_duration

__all__ = ["PACING_CASES", "check_fetch_poem", "check_predict_seconds"]

_POEMS = ("tyger", "furuike")


def _which_poem(data: bytes) -> str:
    name = next((n for n in list_poems() if load_poem(n).data == data), None)
    return repr(name) if name else f"{len(data)} bytes that are no poem of the corpus"


def _check_one_poem(name: str, fetch_poem: Any, poem: str) -> Feedback | None:
    """Feedback if ``fetch_poem(poem)`` went wrong, None if it was right."""
    ok, download = run_learner_code(fetch_poem, poem)
    call = f"fetch_poem({poem!r})"
    if not ok:
        return failed(
            name,
            f"{call} raised an error",
            got=download,
            hint="run it in a cell of its own to see the whole error.",
        )
    if not isinstance(download, Download):
        return failed(
            name,
            f"{call} should return a Download",
            expected="a Download",
            got=short(download),
            hint="runtime.call(deferred.get_poems, reactor, [server.address]) returns a "
            "list with one Download: return that Download.",
        )
    kinds = {s.address: s.kind for s in runtime.servers()}
    kind = kinds.get(download.address)
    if kind is None:
        return failed(
            name,
            f"{call} downloaded from a server the runtime did not start",
            hint='start the server inside fetch_poem: runtime.serve("fast", name)',
        )
    if kind != "fast":
        return failed(
            name,
            f"{call} used a {kind} server",
            expected="a fast server",
            got=f"a {kind} server",
            hint='runtime.serve("fast", name) sends the whole poem at once.',
        )
    if not download.ok:
        return failed(
            name,
            f"the download in {call} failed",
            got=download.error or "",
            hint="download from the server you just started.",
        )
    if download.data != load_poem(poem).data:
        return failed(
            name,
            f"{call} brought back the wrong poem",
            expected=repr(poem),
            got=_which_poem(download.data),
            hint="serve the poem called `name`, not a fixed one.",
        )
    return None


@exercise("00")
def check_fetch_poem(fetch_poem: Any) -> Feedback:
    """Call ``fetch_poem("tyger")`` and ``fetch_poem("furuike")``: each must serve the poem
    on a fast server started with the runtime, download it, and return the Download."""
    name = "check_fetch_poem"
    if not callable(fetch_poem):
        return failed(
            name,
            "pass your function itself",
            expected="fetch_poem",
            got=short(fetch_poem),
            hint="def fetch_poem(name): ...",
        )
    runtime.start()
    before = set(runtime.servers())
    try:
        for poem in _POEMS:
            verdict = _check_one_poem(name, fetch_poem, poem)
            if verdict is not None:
                return verdict
    finally:
        for server in set(runtime.servers()) - before:  # the servers fetch_poem started
            server.stop()
    return passed(name, "each poem was served by a fast server of its own and arrived whole.")


PACING_CASES = [(77, 10, 0.5), (100, 10, 0.1), (5, 10, 1.0), (3710, 100, 0.01), (1, 1, 2.0)]
"""``(size, num_bytes, delay)`` cases :func:`check_predict_seconds` tries."""


@exercise("00")
def check_predict_seconds(predict_seconds: Any) -> Feedback:
    """``predict_seconds(size, num_bytes, delay)`` must say how long a slow server takes."""
    name = "check_predict_seconds"
    if not callable(predict_seconds):
        return failed(
            name,
            "pass your function itself",
            expected="predict_seconds",
            got=short(predict_seconds),
            hint="def predict_seconds(size, num_bytes, delay): ...",
        )
    for size, num_bytes, delay in PACING_CASES:
        call = f"predict_seconds({size}, {num_bytes}, {delay})"
        needed = poem_duration(size, num_bytes, delay)
        ok, said = run_learner_code(predict_seconds, size, num_bytes, delay)
        if not ok:
            return failed(name, f"{call} raised an error", expected=f"{needed:g}", got=said)
        if said is None:
            return failed(
                name,
                f"{call} returned None",
                expected=f"{needed:g}",
                got="None",
                hint="did you forget `return`?",
            )
        if not isinstance(said, int | float) or not math.isclose(said, needed, abs_tol=1e-9):
            return failed(
                name,
                f"{call} is not right",
                expected=f"{needed:g} seconds",
                got=short(said),
                hint="the first chunk goes out the moment the client connects; every later "
                "chunk waits `delay` seconds first. How many chunks are there? "
                "(math.ceil helps)",
            )
    return passed(name, "one chunk at once, then one pause before each of the others.")
