"""``poetrylab serve slow|fast|blocking``: the options and start-up of the poetry servers."""

from __future__ import annotations

import argparse
import errno
from typing import Any

from poetrylab.corpus import load_poem
from poetrylab.servers import (
    DEFAULT_DELAY,
    DEFAULT_NUM_BYTES,
    BlockingPoetryServer,
    check_pacing,
    listen_fast,
    listen_slow,
)

DEFAULT_POEM = "raven"


def cannot_listen(iface: str, port: int, error: object) -> str:
    """One line saying why binding ``iface:port`` failed, with what to do when it is taken."""
    if getattr(error, "errno", None) == errno.EADDRINUSE:
        reason = "address already in use (pick another --port, or 0 for a free one)"
    else:
        reason = getattr(error, "strerror", None) or str(error)
    return f"cannot listen on {iface}:{port}: {reason}"


def _add_poem(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "poem",
        metavar="POEM",
        nargs="?",
        default=DEFAULT_POEM,
        help=f"a corpus name (see `poetrylab poems`) or a file path (default {DEFAULT_POEM})",
    )


def _add_pacing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--delay",
        type=float,
        default=DEFAULT_DELAY,
        help=f"seconds between chunks (default {DEFAULT_DELAY})",
    )
    parser.add_argument(
        "--num-bytes",
        type=int,
        default=DEFAULT_NUM_BYTES,
        help=f"bytes per chunk (default {DEFAULT_NUM_BYTES})",
    )


def configure_serve_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``serve slow``."""
    _add_poem(parser)
    _add_pacing(parser)


def configure_fast(parser: argparse.ArgumentParser) -> None:
    """Options of ``serve fast``."""
    _add_poem(parser)


def configure_blocking(parser: argparse.ArgumentParser) -> None:
    """Options of ``serve blocking``."""
    configure_serve_parser(parser)


def start_serving(reactor: Any, args: argparse.Namespace) -> list[Any]:
    """Start the slow Twisted server; return its listening port."""
    check_pacing(args.delay, args.num_bytes)
    poem = load_poem(args.poem)
    return [listen_slow(reactor, poem.data, args.port, args.iface, args.delay, args.num_bytes)]


def start_fast(reactor: Any, args: argparse.Namespace) -> list[Any]:
    """Start the fast Twisted server; return its listening port."""
    return [listen_fast(reactor, load_poem(args.poem).data, args.port, args.iface)]


def start_blocking(reactor: Any, args: argparse.Namespace) -> BlockingPoetryServer:
    """Bind the blocking server (serving starts with ``serve_forever``)."""
    check_pacing(args.delay, args.num_bytes)
    poem = load_poem(args.poem)
    try:
        return BlockingPoetryServer(poem.data, args.port, args.iface, args.delay, args.num_bytes)
    except OSError as exc:
        raise ValueError(cannot_listen(args.iface, args.port, exc))
