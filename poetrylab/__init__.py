"""poetrylab: learn asynchronous programming with Twisted, live, in Jupyter.

How the package is laid out, and which notebook teaches each part:

    corpus       the public-domain poems every server serves              (00)
    download     Download: the one record every client fills (chunk times) (01, 13)
    servers      slow (callLater), fast and blocking poetry servers       (00-03)
    clients/     one client per model: blocking, threaded, select,
                 reactor, protocol, deferred, inline, coroutine, asyncio  (01-03, 08)
    service      the poetry server as a twistd service / .tac application (11)
    cli          the `poetrylab` command (serve, get, poems, bench, lab)

Layers: corpus and download depend on nothing here; servers and clients on them; the
CLI and the notebook runtime sit on top. Only the notebook runtime knows crochet's
global reactor: everything else takes a ``reactor`` argument.
"""

from poetrylab.corpus import Poem, UnknownPoemError, list_poems, load_poem
from poetrylab.download import Address, Chunk, Download, DownloadError, parse_address

__version__ = "0.1.0"

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
