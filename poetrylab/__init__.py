"""poetrylab: learn asynchronous programming with Twisted, live, in Jupyter.

How the package is laid out, and which notebook teaches each part:

    corpus       the public-domain poems every server serves              (00)
    download     Download: the one record every client fills (chunk times) (01, 17)
    servers      slow (callLater), fast and blocking poetry servers       (00-03)
    clients/     one client per model: blocking, threaded, select,
                 reactor, protocol, deferred, inline, coroutine, asyncio  (01-03, 08)
    runtime/     the notebook runtime: the reactor's own thread, waits,
                 top-level await, servers started from cells              (00, 02 on)
    tracing/     records what really ran in Deferreds (and in what the cell
                 handed to the reactor); one-slide diagrams, live view,
                 timeline, step-through, simulator                        (04, 05, 08, 09)
    services/    transform (netstrings), caching proxy, tagged backend,
                 XML-RPC gateway                                          (06, 07, 13)
    service      the poetry server as a twistd service / .tac application (14)
    testing      ServerProcess and friends for your own tests             (16)
    bench/       blocking vs threaded vs asynchronous, measured           (01, 17)
    exercises/   the checks behind every notebook's exercises
    kinds        the server kinds and their options, one table for the
                 `poetrylab serve` command and for runtime.serve          (00-07, 13)
    cli          the `poetrylab` command (serve, get, poems, transform, bench, lab)

Layers: corpus and download depend on nothing here; servers, clients, services and
tracing on them; kinds on the servers and services; the CLI, the benchmark, the runtime
and the exercises sit on top. Only the entry points of processes import the global
reactor: the notebook runtime (which runs it in a thread of its own), the `poetrylab`
command, the twistd service and the benchmark's processes. Everything else takes a
``reactor`` argument.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poetrylab.corpus import Poem, UnknownPoemError, list_poems, load_poem
    from poetrylab.download import Address, Chunk, Download, DownloadError, parse_address

__version__ = "0.1.0"

# The names below are imported when first used (PEP 562), so that `import poetrylab.cli`
# (every `poetrylab` command starts with it) costs nothing it does not need.
_HOME = {
    **dict.fromkeys(["Poem", "UnknownPoemError", "list_poems", "load_poem"], "poetrylab.corpus"),
    **dict.fromkeys(
        ["Address", "Chunk", "Download", "DownloadError", "parse_address"], "poetrylab.download"
    ),
}


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module 'poetrylab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "Address",
    "Chunk",
    "Download",
    "DownloadError",
    "Poem",
    "UnknownPoemError",
    "list_poems",
    "load_poem",
    "parse_address",
]
