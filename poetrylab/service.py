"""The poetry server as a Twisted *service*: for ``twistd`` and ``.tac`` files (notebook 14).

``twistd -n poetry --port 10000 raven`` finds this module through the plugin in
``twisted/plugins/poetrylab_plugin.py``, parses :class:`Options` and calls
:func:`makeService`. A ``.tac`` file calls :func:`make_application` instead (see
``examples/poetry.tac``). Both build the same ``MultiService`` with
:func:`make_poetry_service`, which takes its ``reactor`` like every server here; the two
entry points are the outermost code of a twistd process, so they are where the global
reactor is imported. twistd begins Twisted's log itself (its ``--logfile``), so the
server's events are written out, not kept in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.application import service, strports
from twisted.python import usage

from poetrylab._connections import BACKLOG
from poetrylab.corpus import UnknownPoemError, load_poem
from poetrylab.kinds import Count, Seconds
from poetrylab.servers import (
    DEFAULT_DELAY,
    DEFAULT_NUM_BYTES,
    DEFAULT_SEND_TIMEOUT,
    PoetryFactory,
    check_pacing,
)

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorCore

    from poetrylab._typing import TimeTCPReactor

__all__ = ["Options", "makeService", "make_application", "make_poetry_service"]


class Options(usage.Options):
    """Command-line options of ``twistd poetry``; a bad value is a usage error."""

    synopsis = "[options] POEM"
    longdesc = "Serve POEM (a poetrylab corpus name or a file path) over the poetry protocol."
    optParameters = [
        ["port", "p", "10000", "Port to listen on (0 picks a free one)."],
        ["iface", "i", "127.0.0.1", "Interface to bind (default loopback)."],
        ["delay", "d", str(DEFAULT_DELAY), "Seconds between chunks."],
        ["num-bytes", "n", str(DEFAULT_NUM_BYTES), "Bytes per chunk."],
        [
            "send-timeout", None, str(DEFAULT_SEND_TIMEOUT),
            "Seconds a client may take nothing before it is dropped.",
        ],
    ]  # fmt: skip
    optFlags = [["fast", "f", "Send the whole poem at once instead of slowly."]]

    def parseArgs(self, poem: str) -> None:  # type: ignore[override]  # Twisted's way: one argument per positional
        self["poem"] = poem

    def postOptions(self) -> None:
        # The same checks, and messages, as `poetrylab serve` (poetrylab.kinds).
        checks: list[tuple[str, Count | Seconds]] = [
            ("port", Count(0, 65535, "a port number")),
            ("delay", Seconds()),
            ("num-bytes", Count(1, what="a number of bytes")),
            ("send-timeout", Seconds(above=True)),
        ]
        try:
            for name, kind in checks:
                try:
                    self[name] = kind.check(str(self[name]))
                except ValueError as exc:
                    raise ValueError(f"--{name} {exc}") from None
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
    *,
    reactor: TimeTCPReactor,
    send_timeout: float = DEFAULT_SEND_TIMEOUT,
) -> service.MultiService:
    """Build a ``MultiService`` that serves ``poem`` on ``iface:port`` when started.

    ``delay=None`` serves fast (whole poem at once). Nothing listens until the service
    starts (``startService``, done by ``twistd`` or by the application's parent), on
    ``reactor``. Raises ValueError for bad pacing.
    """
    top = service.MultiService()
    factory = PoetryFactory(
        poem, reactor, delay=delay, num_bytes=num_bytes, send_timeout=send_timeout
    )
    interface = iface.replace(":", "\\:")
    description = f"tcp:{port}:interface={interface}:backlog={BACKLOG}"
    listener = strports.service(description, factory, reactor=cast("IReactorCore", reactor))
    listener.setName("poetry-listener")
    listener.setServiceParent(top)
    return top


def _global_reactor() -> TimeTCPReactor:
    from twisted.internet import reactor

    return cast("TimeTCPReactor", reactor)


def makeService(options: Options) -> service.MultiService:
    """The hook ``twistd`` calls with parsed :class:`Options` (Twisted's name, hence camelCase).

    twistd has installed and will run the global reactor: this entry point hands it on.
    """
    return make_poetry_service(
        options["poem-bytes"],
        port=options["port"],
        iface=options["iface"],
        delay=None if options["fast"] else options["delay"],
        num_bytes=options["num-bytes"],
        reactor=_global_reactor(),
        send_timeout=options["send-timeout"],
    )


def make_application(
    poem: str = "raven",
    port: int = 10000,
    iface: str = "127.0.0.1",
    delay: float | None = DEFAULT_DELAY,
    num_bytes: int = DEFAULT_NUM_BYTES,
) -> Any:
    """Build the ``application`` object a ``.tac`` file must define, serving a corpus poem.

    A ``.tac`` file is the outermost code of its twistd process, so this uses the global
    reactor. Raises UnknownPoemError for an unknown poem, ValueError for bad pacing.
    """
    application = service.Application("poetrylab poetry server")
    poetry = make_poetry_service(
        load_poem(poem).data, port, iface, delay, num_bytes, reactor=_global_reactor()
    )
    poetry.setServiceParent(application)
    return application
