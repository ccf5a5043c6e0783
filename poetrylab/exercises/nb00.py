"""Checks for notebook 00 (welcome).

* :func:`check_fetch_poem` — the learner's ``fetch_poem(name)``: serve a poem on a fast
  server through the notebook runtime, download it with the Deferred client, and return
  the Download. Run for two poems; the servers it started are stopped afterwards.
* :func:`check_predict_seconds` — the learner's ``predict_seconds(size, num_bytes,
  delay)``: how long a slow server takes to send a poem.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from poetrylab import runtime
from poetrylab.clients import MODELS
from poetrylab.corpus import list_poems, load_poem
from poetrylab.download import Download
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner, is_number
from poetrylab.exercises._registry import NotYet, exercise, function
from poetrylab.servers import poem_duration

__all__ = ["PACING_CASES", "check_fetch_poem", "check_predict_seconds"]

_POEMS = ("tyger", "furuike")
_THE_DEFERRED_CLIENT = "runtime.call(deferred.get_poems, reactor, [server.address])"


def _which_poem(data: bytes) -> str:
    name = next((n for n in list_poems() if load_poem(n).data == data), None)
    return repr(name) if name else f"{len(data)} bytes that are no poem of the corpus"


def _client_hint(client: str) -> str:
    model = MODELS.get(client)
    if model is None:
        return f"let the Deferred client make the Download: {_THE_DEFERRED_CLIENT}"
    return (
        f"the {client} client works like this: {model.summary}. The exercise asks for the "
        f"Deferred client, which the reactor drives: {_THE_DEFERRED_CLIENT}"
    )


def _check_one_poem(fetch_poem: Callable[[str], object], poem: str) -> None:
    """Raise NotYet if ``fetch_poem(poem)`` went wrong."""
    call = f"fetch_poem({poem!r})"
    download = call_learner(call, fetch_poem, poem)
    if isinstance(download, list | tuple) and [type(d) for d in download] == [Download]:
        raise NotYet(
            f"{call} returned a list holding the Download",
            expected="the Download itself",
            got="a list of one Download",
            hint="[download] = runtime.call(...) takes the one Download out of the list: "
            "return download",
        )
    if not isinstance(download, Download):
        raise NotYet(
            f"{call} should return a Download",
            expected="a Download",
            got=short(download),
            hint=f"{_THE_DEFERRED_CLIENT} returns a list with one Download: return that Download.",
        )
    if download.client != "deferred":
        made_by = f"the {download.client} client" if download.client else "your own code"
        raise NotYet(
            f"{call} downloaded with {made_by}, not with the Deferred client",
            expected="a Download made by the Deferred client",
            got=f"a Download made by {made_by}",
            hint=_client_hint(download.client),
        )
    kind = {s.address: s.kind for s in runtime.servers()}.get(download.address)
    if kind is None:
        raise NotYet(
            f"{call} downloaded from a server the runtime did not start",
            expected="a server started in fetch_poem with runtime.serve",
            got="a server the check cannot find among runtime.servers()",
            hint='start the server inside fetch_poem: runtime.serve("fast", name)',
        )
    if kind != "fast":
        raise NotYet(
            f"{call} used a {kind} server",
            expected="a fast server",
            got=f"a {kind} server",
            hint='runtime.serve("fast", name) sends the whole poem at once.',
        )
    if not download.ok:
        raise NotYet(
            f"the download in {call} failed",
            expected="a download that finished without an error",
            got=download.error or "a download that never finished",
            hint="download from the server you just started, and wait for it (runtime.call "
            "waits for the Deferred).",
        )
    if download.data != load_poem(poem).data:
        raise NotYet(
            f"{call} brought back the wrong poem",
            expected=repr(poem),
            got=_which_poem(download.data),
            hint="serve the poem called `name`, not a fixed one.",
        )


@exercise("00", function("fetch_poem(name)"), title="serve and fetch")
def check_fetch_poem(fetch_poem: Callable[[str], object]) -> str:
    """Call ``fetch_poem("tyger")`` and ``fetch_poem("furuike")``: each must serve the poem
    on a fast server started with the runtime, download it with the Deferred client, and
    return the Download. Stops the servers it started, whatever the verdict."""
    runtime.start()
    before = set(runtime.servers())
    try:
        for poem in _POEMS:
            _check_one_poem(fetch_poem, poem)
    finally:
        for server in set(runtime.servers()) - before:  # the servers fetch_poem started
            server.stop()
    return (
        "each poem was served by a fast server of its own and came back whole, "
        "through the Deferred client."
    )


PACING_CASES = [(77, 10, 0.5), (100, 10, 0.1), (5, 10, 1.0), (3710, 100, 0.01), (1, 1, 2.0)]
"""``(size, num_bytes, delay)`` cases :func:`check_predict_seconds` tries."""


@exercise("00", function("predict_seconds(size, num_bytes, delay)"), title="how long will it take?")
def check_predict_seconds(predict_seconds: Callable[[int, int, float], object]) -> str:
    """``predict_seconds(size, num_bytes, delay)`` must say how long a slow server takes."""
    for size, num_bytes, delay in PACING_CASES:
        call = f"predict_seconds({size}, {num_bytes}, {delay})"
        needed = poem_duration(size, num_bytes, delay)
        said = call_learner(call, predict_seconds, size, num_bytes, delay)
        if said is None:
            raise NotYet(
                f"{call} returned None",
                expected=f"{needed:g} seconds",
                got="None",
                hint="did you forget `return`?",
            )
        if not is_number(said) or not math.isclose(float(said), needed, abs_tol=1e-9):
            raise NotYet(
                f"{call} is not right",
                expected=f"{needed:g} seconds",
                got=short(said),
                hint="the first chunk goes out the moment the client connects; every later "
                "chunk waits `delay` seconds first. How many chunks are there? "
                "(math.ceil helps)",
            )
    return "one chunk at once, then one pause before each of the others."
