"""The poetry server as a Twisted *service*: for ``twistd`` and ``.tac`` files (notebook 14).

``twistd -n poetry --port 10000 raven`` finds this module through the plugin in
``twisted/plugins/poetrylab_plugin.py``, parses :class:`Options` and calls
:func:`makeService`. A ``.tac`` file calls :func:`make_application` instead (see
``examples/poetry.tac``). Both build the same ``MultiService``.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service, strports
from twisted.python import usage

from poetrylab.corpus import UnknownPoemError, load_poem
from poetrylab.servers import DEFAULT_DELAY, DEFAULT_NUM_BYTES, PoetryFactory, check_pacing

__all__ = ["Options", "makeService", "make_application", "make_poetry_service"]


class Options(usage.Options):
    """Command-line options of ``twistd poetry``."""

    synopsis = "[options] POEM"
    longdesc = "Serve POEM (a poetrylab corpus name or a file path) over the poetry protocol."
    optParameters = [
        ["port", "p", 10000, "Port to listen on.", int],
        ["iface", "i", "127.0.0.1", "Interface to bind (default loopback)."],
        ["delay", "d", DEFAULT_DELAY, "Seconds between chunks.", float],
        ["num-bytes", "n", DEFAULT_NUM_BYTES, "Bytes per chunk.", int],
    ]
    optFlags = [["fast", "f", "Send the whole poem at once instead of slowly."]]

    def parseArgs(self, poem: str) -> None:
        self["poem"] = poem

    def postOptions(self) -> None:
        try:
            check_pacing(self["delay"], self["num-bytes"])
            self["poem-bytes"] = load_poem(self["poem"]).data
        except (ValueError, UnknownPoemError) as exc:
            raise usage.UsageError(str(exc))


def make_poetry_service(
    poem: bytes,
    port: int = 10000,
    iface: str = "127.0.0.1",
    delay: float | None = DEFAULT_DELAY,
    num_bytes: int = DEFAULT_NUM_BYTES,
    reactor: Any = None,
) -> service.MultiService:
    """Build a ``MultiService`` that serves ``poem`` on ``iface:port`` when started.

    ``delay=None`` serves fast (whole poem at once). Nothing listens until the service
    starts (``startService``, done by ``twistd`` or by the application's parent).
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    top = service.MultiService()
    factory = PoetryFactory(poem, reactor, delay=delay, num_bytes=num_bytes)
    interface = iface.replace(":", "\\:")
    listener = strports.service(f"tcp:{port}:interface={interface}", factory, reactor=reactor)
    listener.setName("poetry-listener")
    listener.setServiceParent(top)
    return top


def makeService(options: Options) -> service.MultiService:
    """The hook ``twistd`` calls with parsed :class:`Options` (Twisted's name, hence camelCase)."""
    return make_poetry_service(
        options["poem-bytes"],
        port=options["port"],
        iface=options["iface"],
        delay=None if options["fast"] else options["delay"],
        num_bytes=options["num-bytes"],
    )


def make_application(
    poem: str = "raven",
    port: int = 10000,
    iface: str = "127.0.0.1",
    delay: float | None = DEFAULT_DELAY,
    num_bytes: int = DEFAULT_NUM_BYTES,
) -> service.Application:
    """Build the ``application`` object a ``.tac`` file must define, serving a corpus poem."""
    application = service.Application("poetrylab poetry server")
    make_poetry_service(load_poem(poem).data, port, iface, delay, num_bytes).setServiceParent(
        application
    )
    return application
