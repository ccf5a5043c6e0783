"""The ``poetrylab`` command: serve poems, download them, benchmark, list the corpus, open the lab.

The command-line contract is stable (DESIGN.md); tests nobody here wrote rely on it:

* ``poetrylab serve KIND [--port P] [--iface ADDR] [options]`` prints one line
  ``listening on HOST:PORT`` per listener (flushed), serves until SIGINT/SIGTERM, exits 0.
* ``poetrylab get [--client MODEL] HOST:PORT...`` prints each poem and a report; exits 1
  with a one-line reason per failed server on stderr when any download failed.
* ``poetrylab poems``, ``poetrylab bench ...``, ``poetrylab lab [jupyter args]``.

Bad arguments (an unknown poem, a port in use, a negative delay) give one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from poetrylab.corpus import UnknownPoemError, list_poems, load_poem
from poetrylab.download import Address, parse_address

__all__ = ["main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class ServeKind:
    """A server kind for ``poetrylab serve``: a module with two functions.

    ``configure(parser)`` adds the kind's options; ``start(reactor, args)`` starts
    listening and returns the listening ports (or, for reactor-less servers, objects
    with ``host``/``port`` and ``serve_forever``/``stop``).
    """

    summary: str
    module: str
    configure: str = "configure_serve_parser"
    start: str = "start_serving"

    def load(self, name: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), name)


SERVE_KINDS: dict[str, ServeKind] = {
    "slow": ServeKind("Twisted server that sends a poem slowly (callLater)", "poetrylab.cli_serve"),
    "blocking": ServeKind(
        "plain-socket server, one client at a time",
        "poetrylab.cli_serve",
        configure="configure_blocking",
        start="start_blocking",
    ),
    "fast": ServeKind(
        "Twisted server that sends the whole poem at once",
        "poetrylab.cli_serve",
        configure="configure_fast",
        start="start_fast",
    ),
    "transform": ServeKind(
        "netstring transformation server (NAME.POEM in, transformed poem out)",
        "poetrylab.services.transform",
    ),
    "proxy": ServeKind("caching poetry proxy in front of --upstream", "poetrylab.services.proxy"),
    "tagged": ServeKind(
        "line backend: tagged requests, many in flight, replies out of order",
        "poetrylab.services.tagged",
    ),
    "xmlrpc": ServeKind(
        "XML-RPC gateway (/RPC2) to a tagged backend over one connection",
        "poetrylab.services.xmlrpc_gateway",
    ),
}

# Subcommands that live in their own modules: name -> (module, summary).
# Each module has configure_parser(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "transform": ("poetrylab.services.transform", "send a poem to a transformation server"),
    "bench": (
        "poetrylab.bench.cli",
        "compare blocking, threaded and asynchronous clients against N slow servers",
    ),
}


def configure_serve_kind(parser: argparse.ArgumentParser, kind: str) -> None:
    """Add the options of ``poetrylab serve KIND``: the ones every kind has, then its own.

    The notebook runtime builds the same parser, so ``runtime.serve(kind, **options)``
    takes exactly the command line's options.
    """
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to listen on (0, the default, picks a free one)",
    )
    parser.add_argument(
        "--iface",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1, loopback only)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    spec = SERVE_KINDS[kind]
    spec.load(spec.configure)(parser)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser (every subcommand, every serve kind)."""
    parser = _Parser(
        prog="poetrylab",
        description="Serve and download poems with Twisted and friends (the poetrylab course).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    serve = sub.add_parser("serve", help="run a poetry server until Ctrl-C / SIGTERM")
    kinds = serve.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    kinds.required = True
    for name, kind in SERVE_KINDS.items():
        p = kinds.add_parser(name, help=kind.summary, description=kind.summary)
        configure_serve_kind(p, name)
        p.set_defaults(serve_kind=name)

    get = sub.add_parser("get", help="download poems from one or more servers")
    from poetrylab.clients import MODELS

    get.add_argument(
        "--client",
        default="deferred",
        choices=sorted(MODELS),
        metavar="MODEL",
        help=f"client model: {', '.join(MODELS)} (default: deferred)",
    )
    get.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="seconds allowed per poem (default 30)",
    )
    get.add_argument(
        "-q", "--quiet", action="store_true", help="print only the report, not the poems"
    )
    get.add_argument("addresses", nargs="+", metavar="HOST:PORT", help="servers to download from")

    sub.add_parser("poems", help="list the poem corpus")

    # Every argument of `poetrylab lab`, --port and --help included, is JupyterLab's: a
    # prefix character nobody types leaves this parser no options of its own to match.
    lab = sub.add_parser(
        "lab", help="start JupyterLab on the course notebooks", add_help=False, prefix_chars="\0"
    )
    lab.add_argument("jupyter_args", nargs="*", help="passed on to JupyterLab")

    for name, (module, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        importlib.import_module(module).configure_parser(p)
    return parser


def _run_serve(args: argparse.Namespace) -> int:
    from poetrylab._logging import configure_cli_logging

    configure_cli_logging(args.verbose)
    kind = SERVE_KINDS[args.serve_kind]
    if args.serve_kind == "blocking":
        return _run_blocking(kind, args)

    from twisted.internet import reactor
    from twisted.internet.error import CannotListenError

    from poetrylab.cli_serve import cannot_listen

    try:
        ports = kind.load(kind.start)(reactor, args)
    except CannotListenError as exc:
        raise UsageError(cannot_listen(exc.interface or "*", exc.port, exc.socketError))

    def announce() -> None:
        # Only once running: by then reactor.run() has installed its SIGINT/SIGTERM handlers,
        # so a signal sent the moment this line is read stops the server cleanly (exit 0).
        for port in ports:
            host = port.getHost()
            print(f"listening on {Address(host.host, host.port)}", flush=True)

    reactor.callWhenRunning(announce)
    reactor.run()
    return 0


def _run_blocking(kind: ServeKind, args: argparse.Namespace) -> int:
    server = kind.load(kind.start)(None, args)

    def stop(signum: int, frame: object) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {Address(server.host, server.port)}", flush=True)
    server.serve_forever()
    return 0


def _run_get(args: argparse.Namespace) -> int:
    from poetrylab.clients import fetch

    try:
        addresses = [parse_address(a) for a in args.addresses]
    except ValueError as exc:
        raise UsageError(str(exc))
    try:
        downloads = fetch(args.client, addresses, timeout=args.timeout)
    except RuntimeError as exc:  # the one-shot reactor stopped early (Ctrl-C while downloading)
        print(f"poetrylab get: error: {exc}", file=sys.stderr)
        return 1
    for d in downloads:
        if d.ok and not args.quiet:
            text = d.text
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    for d in downloads:
        if d.ok:
            print(d.summary())
    sys.stdout.flush()
    failed = [d for d in downloads if not d.ok]
    for d in failed:
        print(f"poetrylab get: {d.address}: {d.error}", file=sys.stderr)
    return 1 if failed else 0


def _run_poems(args: argparse.Namespace) -> int:
    width = max(len(n) for n in list_poems())
    for name in list_poems():
        poem = load_poem(name)
        print(f"{name:<{width}}  {len(poem):>5} bytes  {poem.title}")
    return 0


LAB_HELP = """\
usage: poetrylab lab [JUPYTERLAB OPTIONS]

Start JupyterLab for the course: the notebooks/ folder of this checkout, opened on
00-welcome.ipynb, with JupyterLab's news pop-up and update check turned off. Every
option is JupyterLab's own and is passed on to it unchanged, after the course's
defaults, so yours win:

  poetrylab lab --port 8899            serve on port 8899
  poetrylab lab --no-browser           do not open a browser
  poetrylab lab --ServerApp.ip=0.0.0.0 listen on every interface (a classroom server)

JupyterLab's own options follow.
"""

# The course's JupyterLab settings: no "get Jupyter news?" pop-up and no update check
# (both would reach the internet from a classroom), given before the learner's options.
LAB_DEFAULTS = [
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]


def _run_lab(args: argparse.Namespace) -> NoReturn:
    """Replace this process with JupyterLab (see LAB_HELP); never returns."""
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    jupyter_args = list(args.jupyter_args)
    if jupyter_args[:1] == ["--"]:
        del jupyter_args[0]
    argv = [sys.executable, "-m", "jupyterlab"]
    if {"-h", "--help", "--help-all"} & set(jupyter_args):
        print(LAB_HELP, flush=True)
        os.execv(sys.executable, [*argv, *jupyter_args])
    argv += LAB_DEFAULTS
    if notebooks.is_dir():
        argv += [
            f"--ServerApp.root_dir={notebooks}",
            "--LabApp.default_url=/lab/tree/00-welcome.ipynb",
        ]
    if os.geteuid() == 0:  # CI machines and containers run as root; Jupyter refuses it otherwise
        argv.append("--allow-root")
    os.execv(sys.executable, [*argv, *jupyter_args])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``poetrylab`` command; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runners: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": _run_serve,
        "get": _run_get,
        "poems": _run_poems,
        "lab": _run_lab,
    }
    try:
        if args.command in runners:
            return runners[args.command](args)
        return importlib.import_module(COMMANDS[args.command][0]).run(args)
    except (UsageError, UnknownPoemError, ValueError) as exc:
        print(f"poetrylab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"poetrylab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
