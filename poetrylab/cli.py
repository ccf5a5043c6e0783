"""The ``poetrylab`` command: serve poems, download them, benchmark, list the corpus, open the lab.

The command-line contract is stable (DESIGN.md); tests nobody here wrote rely on it:

* ``poetrylab serve KIND [--port P] [--iface ADDR] [options]`` prints one line
  ``listening on HOST:PORT`` per listener (flushed), serves until SIGINT/SIGTERM, exits 0.
  The kinds and their options come from :mod:`poetrylab.kinds`, the table the notebook
  runtime reads too: this module only turns it into argparse options.
* ``poetrylab get [--client MODEL] HOST:PORT...`` prints each poem and a report; exits 1
  with a one-line reason per failed server on stderr when any download failed.
* ``poetrylab transform NAME --server HOST:PORT [FILE]`` (notebook 06), ``poetrylab poems``,
  ``poetrylab bench ...``, ``poetrylab lab [jupyter args]``.

Bad arguments (a port out of range, a negative delay, an unknown poem, a port in use)
give one line on stderr and exit status 2, never a traceback: every number is checked by
its argparse ``type`` as it is read.

Start-up: importing this module imports only the standard library (``argparse`` and a
few more). ``poetrylab --help`` imports nothing else, no Twisted and no other module of
ours; each subcommand imports what it needs when it runs, and builds only its own
options (``poetrylab serve slow`` reads the options of ``slow`` alone). Every command
that runs a reactor begins Twisted's log first (:mod:`poetrylab._logging`); being the
process's entry point, it is where Twisted's global reactor is imported.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from poetrylab._typing import ListeningPort, RuntimeReactor
    from poetrylab.download import Address
    from poetrylab.kinds import Option, ServerKind

__all__ = ["COMMANDS", "main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage dump), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _checked(read: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type`` from a reader that raises ValueError saying what it accepts."""

    def convert(text: str) -> object:
        try:
            return read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


@dataclass(frozen=True)
class Command:
    """One subcommand: its summary, how to add its options, how to run it.

    ``configure(parser, argv)`` adds the options (``argv`` is what follows the command's
    name, so ``serve`` can build the options of the one kind named there);
    ``run(args)`` returns the exit status. ``intermixed`` parses options and positionals
    in any order (``transform NAME --server H:P FILE``); ``parser`` holds extra
    arguments for the subcommand's ArgumentParser.
    """

    summary: str
    configure: Callable[[argparse.ArgumentParser, Sequence[str]], None]
    run: Callable[[argparse.Namespace], int]
    intermixed: bool = False
    parser: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# serve


def _add_option(parser: argparse.ArgumentParser, option: Option) -> None:
    kwargs: dict[str, Any] = {
        "type": _checked(option.type.from_text),
        "help": option.help,
        "metavar": option.metavar,
    }
    if option.positional:
        parser.add_argument(option.name, nargs="?", default=option.default, **kwargs)
    elif option.required:
        parser.add_argument(option.flag, dest=option.name, required=True, **kwargs)
    else:
        parser.add_argument(option.flag, dest=option.name, default=option.default, **kwargs)


def _configure_serve(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    from poetrylab.kinds import KINDS

    chosen = next((a for a in argv if not a.startswith("-")), None)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    kinds.required = True
    for name, kind in KINDS.items():
        p = kinds.add_parser(name, help=kind.summary, description=kind.summary)
        if name == chosen:  # only its options: reading them imports its module
            for option in kind.options:
                _add_option(p, option)
            p.add_argument("-v", "--verbose", action="store_true", help="log every connection")


def cannot_listen(iface: str, port: int, error: object) -> str:
    """One line saying why binding ``iface:port`` failed, with what to do when it is taken."""
    import errno

    if getattr(error, "errno", None) == errno.EADDRINUSE:
        reason = "address already in use (pick another --port, or 0 for a free one)"
    else:
        reason = getattr(error, "strerror", None) or str(error)
    return f"cannot listen on {iface}:{port}: {reason}"


def _run_serve(args: argparse.Namespace) -> int:
    from poetrylab._logging import begin_cli_logging

    begin_cli_logging(args.verbose)
    from twisted.internet.defer import gatherResults
    from twisted.internet.error import CannotListenError

    from poetrylab.download import Address
    from poetrylab.kinds import lookup

    kind = lookup(args.kind)
    values = kind.values((), {o.name: getattr(args, o.name) for o in kind.options})
    if not kind.needs_reactor:
        return _serve_blocking(kind, values)

    from twisted.internet import reactor

    try:
        listeners = kind.start(reactor, values)
    except CannotListenError as exc:
        raise UsageError(cannot_listen(exc.interface or "*", exc.port, exc.socketError))

    def announce() -> None:
        # Only once running: by then reactor.run() has installed its SIGINT/SIGTERM handlers,
        # so a signal sent the moment this line is read stops the server cleanly (exit 0).
        for listener in listeners:
            host = cast("ListeningPort", listener).getHost()
            print(f"listening on {Address(host.host, host.port)}", flush=True)

    def stop_listening() -> Deferred[Any]:
        # Before Twisted closes every connection at once: a kind that holds a connection
        # of its own (the gateway's to its backend) closes it on purpose, quietly.
        stopping = [cast("ListeningPort", listener).stopListening() for listener in listeners]
        return gatherResults([d for d in stopping if d is not None], consumeErrors=True)

    reactor.callWhenRunning(announce)
    reactor.addSystemEventTrigger("before", "shutdown", stop_listening)
    # A process started in the background by a shell without job control inherits SIGINT
    # ignored, and Twisted then leaves SIGINT alone; the contract is that SIGINT stops a
    # server, whoever started it, so restore Python's handler for Twisted to replace.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reactor.run()
    return 0


def _serve_blocking(kind: ServerKind, values: Mapping[str, Any]) -> int:
    from twisted.internet.error import CannotListenError

    from poetrylab.download import Address
    from poetrylab.servers import BlockingPoetryServer

    try:
        [server] = kind.start(None, values)
    except CannotListenError as exc:
        raise UsageError(cannot_listen(exc.interface or "*", exc.port, exc.socketError))
    assert isinstance(server, BlockingPoetryServer)

    def stop(signum: int, frame: object) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {Address(server.host, server.port)}", flush=True)
    server.serve_forever()
    return 0


# ---------------------------------------------------------------------------------------
# get


def _positive_seconds(text: str) -> float:
    from poetrylab.kinds import Seconds

    return Seconds(above=True).from_text(text)


def _address(text: str) -> Address:
    from poetrylab.download import parse_address

    return parse_address(text)


def _configure_get(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    from poetrylab.clients import MODELS

    parser.add_argument(
        "--client",
        default="deferred",
        choices=sorted(MODELS),
        metavar="MODEL",
        help=f"client model: {', '.join(MODELS)} (default: deferred)",
    )
    parser.add_argument(
        "--timeout",
        type=_checked(_positive_seconds),
        default=30.0,
        help="seconds allowed per poem (default 30)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only the report, not the poems"
    )
    parser.add_argument(
        "addresses", nargs="+", type=_checked(_address), metavar="HOST:PORT",
        help="servers to download from",
    )  # fmt: skip


def _run_get(args: argparse.Namespace) -> int:
    from poetrylab._logging import begin_cli_logging

    begin_cli_logging()
    from poetrylab.clients import fetch

    try:
        downloads = fetch(args.client, args.addresses, timeout=args.timeout)
    except RuntimeError as exc:  # the one-shot reactor stopped early (Ctrl-C while downloading)
        print(f"poetrylab get: error: {exc}", file=sys.stderr)
        return 1
    out = sys.stdout
    if not args.quiet:
        for d in downloads:
            if d.ok:
                text = d.text
                out.write(text if text.endswith("\n") else text + "\n")
    out.write("".join(f"{d.summary()}\n" for d in downloads if d.ok))
    out.flush()
    failed = [d for d in downloads if not d.ok]
    for d in failed:
        print(f"poetrylab get: {d.address}: {d.error}", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------
# transform (the client of notebook 06)


def _transform_name(text: str) -> str:
    if not text or "." in text or not text.isascii() or not text.isprintable():
        raise ValueError(f"{text!r} cannot be sent as a transform name (ASCII, no '.')")
    return text


def _configure_transform(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    parser.add_argument(
        "name", metavar="NAME", type=_checked(_transform_name),
        help="the transform to apply (built in: cummingsify, refrain, scan, spoonerize, "
             "upside_down)",
    )  # fmt: skip
    parser.add_argument(
        "file", metavar="FILE", nargs="?", default="-",
        help="the poem to send (default: read standard input)",
    )  # fmt: skip
    parser.add_argument(
        "--server", required=True, metavar="HOST:PORT", type=_checked(_address),
        help="the transformation server (see `poetrylab serve transform`)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=_checked(_positive_seconds), default=10.0,
        help="seconds to wait (default 10)",
    )  # fmt: skip


def _run_transform(args: argparse.Namespace) -> int:
    """Send the poem, print the transformed poem; exit 1 with a one-line reason on failure."""
    if args.file == "-":
        poem = sys.stdin.read()
    else:
        try:
            poem = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {args.file}: {exc}")
    from poetrylab._logging import begin_cli_logging

    begin_cli_logging()
    from twisted.internet.task import react

    try:
        react(_transform_main, (args.server, args.name, poem, args.timeout))
    except SystemExit as done:  # react() always ends with sys.exit(status)
        return done.code if isinstance(done.code, int) else 1


def _transform_main(
    reactor: RuntimeReactor, address: Address, name: str, poem: str, timeout: float
) -> Deferred[None]:
    """What ``task.react`` runs: ask, print the reply; fail with ``SystemExit(status)``."""
    from twisted.internet import defer, error

    from poetrylab.services.transform import transform_poem

    d = transform_poem(reactor, address, name, poem, timeout)
    # Ctrl-C or SIGTERM stops the reactor: cancel, so react() hears how it ended.
    reactor.addSystemEventTrigger("before", "shutdown", d.cancel)

    def printed(result: str) -> None:
        sys.stdout.write(result if result.endswith("\n") else result + "\n")
        sys.stdout.flush()

    def failed(failure: Any) -> NoReturn:
        problem = failure.value
        if isinstance(problem, defer.CancelledError):
            print("poetrylab transform: interrupted", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED)
        reason = str(problem) or type(problem).__name__
        if isinstance(problem, defer.TimeoutError | error.TimeoutError):
            reason = f"no reply from {address} within {timeout:g} s"
        print(f"poetrylab transform: {address}: {reason}", file=sys.stderr)
        raise SystemExit(1)

    return d.addCallbacks(printed, failed)


# ---------------------------------------------------------------------------------------
# poems, bench, lab


def _configure_nothing(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    pass


def _run_poems(args: argparse.Namespace) -> int:
    from poetrylab.corpus import list_poems, load_poem

    names = list_poems()
    width = max(len(n) for n in names)
    for name in names:
        poem = load_poem(name)
        print(f"{name:<{width}}  {len(poem):>5} bytes  {poem.title}")
    return 0


def _configure_bench(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    from poetrylab.bench.cli import configure_parser

    configure_parser(parser)


def _run_bench(args: argparse.Namespace) -> int:
    from poetrylab.bench.cli import run

    return run(args)


def _configure_lab(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    parser.add_argument("jupyter_args", nargs="*", help="passed on to JupyterLab")


LAB_HELP = """\
usage: poetrylab lab [JUPYTERLAB OPTIONS]

Start JupyterLab for the course: the notebooks/ folder of this checkout, opened on
00-welcome.ipynb, with JupyterLab's news pop-up and update check turned off. Every
option is JupyterLab's own and is passed on to it unchanged; one you give replaces the
course's default for it:

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

# JupyterLab 4 asks "Would you like to get notified about official Jupyter news?" whatever
# news_url says: its announcements plugin asks while the learner's fetchNews setting is
# unset, and only JupyterLab's page configuration turns that plugin off. This Jupyter
# configuration directory holds that page configuration (labconfig/page_config.json);
# `poetrylab lab` and the classroom hub (deploy/jupyterhub) put it on JUPYTER_CONFIG_PATH,
# Binder's postBuild copies it.
LAB_CONFIG_DIR = Path(__file__).resolve().parent / "_jupyter"


def lab_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` whose JUPYTER_CONFIG_PATH also names LAB_CONFIG_DIR.

    The course's directory comes after any the environment names already, so theirs win
    where both set the same thing (and the learner's own ~/.jupyter wins over both).
    """
    paths = [p for p in environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    if str(LAB_CONFIG_DIR) not in paths:
        paths.append(str(LAB_CONFIG_DIR))
    return {**environ, "JUPYTER_CONFIG_PATH": os.pathsep.join(paths)}


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
    defaults = list(LAB_DEFAULTS)
    if notebooks.is_dir():
        defaults += [
            f"--ServerApp.root_dir={notebooks}",
            "--LabApp.default_url=/lab/tree/00-welcome.ipynb",
        ]
    if os.geteuid() == 0:  # CI machines and containers run as root; Jupyter refuses it otherwise
        defaults.append("--allow-root")
    os.execve(
        sys.executable,
        [*argv, *_unless_given(defaults, jupyter_args), *jupyter_args],
        lab_environment(os.environ),
    )


# Options that set the same thing as a course default under another name.
_ALIASES = {"--ServerApp.root_dir": {"--notebook-dir", "--ServerApp.notebook_dir"}}


def _unless_given(defaults: list[str], jupyter_args: list[str]) -> list[str]:
    """The course defaults whose option the learner did not give (JupyterLab refuses twice)."""
    given = {arg.split("=", 1)[0] for arg in jupyter_args if arg.startswith("--")}
    return [
        option
        for option in defaults
        if not ({option.split("=", 1)[0]} | _ALIASES.get(option.split("=", 1)[0], set())) & given
    ]


COMMANDS: dict[str, Command] = {
    "serve": Command("run a poetry server until Ctrl-C / SIGTERM", _configure_serve, _run_serve),
    "get": Command("download poems from one or more servers", _configure_get, _run_get),
    "poems": Command("list the poem corpus", _configure_nothing, _run_poems),
    # Every argument of `poetrylab lab`, --port and --help included, is JupyterLab's: a
    # prefix character nobody types leaves this parser no options of its own to match.
    "lab": Command(
        "start JupyterLab on the course notebooks", _configure_lab, _run_lab,
        parser={"add_help": False, "prefix_chars": "\0"},
    ),
    "transform": Command(
        "send a poem to a transformation server", _configure_transform, _run_transform,
        intermixed=True,
    ),
    "bench": Command(
        "compare blocking, threaded and asynchronous clients against N slow servers",
        _configure_bench, _run_bench,
    ),
}  # fmt: skip
"""Every subcommand, in the order ``poetrylab --help`` lists them."""


def _commands_parser() -> _Parser:
    """The top-level parser: it lists the commands; each one parses its own arguments."""
    parser = _Parser(
        prog="poetrylab",
        description="Serve and download poems with Twisted and friends (the poetrylab course).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.summary, add_help=False)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line (without the program name); exit 2 with one line if it is bad.

    Only the named command's parser is built, and only its modules are imported.
    """
    if not argv or argv[0] not in COMMANDS:
        _commands_parser().parse_args(argv)  # prints help, or one line and exits 2
        raise AssertionError("unreachable: a command name is required")
    name, rest = argv[0], list(argv[1:])
    command = COMMANDS[name]
    parser = _Parser(prog=f"poetrylab {name}", description=command.summary, **dict(command.parser))
    command.configure(parser, rest)
    parse = parser.parse_intermixed_args if command.intermixed else parser.parse_args
    args = parse(rest)
    args.command = name
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``poetrylab`` command; return its exit status."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print(f"poetrylab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not isinstance(exc, _usage_errors()):
            raise
        print(f"poetrylab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _usage_errors() -> tuple[type[Exception], ...]:
    """What is the user's mistake (one line, status 2) rather than a bug (a traceback).

    An unknown poem is one, but only a command that imported the corpus can raise it:
    the corpus is not imported just to name its exception (``poetrylab get`` never needs it).
    """
    corpus = sys.modules.get("poetrylab.corpus")
    unknown_poem = (corpus.UnknownPoemError,) if corpus is not None else ()
    return (UsageError, ValueError, *unknown_poem)


if __name__ == "__main__":
    sys.exit(main())
