"""The server kinds, with their options: the one table that ``poetrylab serve`` and
``runtime.serve`` both read (notebooks 00-07, 13 and 14 start servers through it).

A kind is a name (``slow``, ``blocking``, ``fast``, ``transform``, ``proxy``, ``tagged``,
``xmlrpc``), a one-line summary and its options. An option has a name (the keyword of
``runtime.serve`` and, with dashes, the flag of ``poetrylab serve``: ``num_bytes`` is
``--num-bytes``), a type that reads it from the command line and checks it from Python,
a default and a help line. The command line (:mod:`poetrylab.cli`) builds its parser from
this table; the notebook runtime validates keyword arguments against it; neither goes
through the other::

    kind = kinds.lookup("slow")
    values = kind.values(["raven"], {"delay": 0.05})   # checked, defaults filled in
    ports = kind.start(reactor, values)                # in the reactor thread

Importing this module imports nothing from Twisted: a kind's defaults and its start
function are imported from the module that implements it, the first time they are
needed, so ``poetrylab --help`` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poetrylab._typing import ListeningPort, TimeTCPReactor
    from poetrylab.download import Address
    from poetrylab.servers import BlockingPoetryServer

    Listener = ListeningPort | BlockingPoetryServer

__all__ = [
    "KINDS",
    "Count",
    "HostPort",
    "Option",
    "Seconds",
    "ServerKind",
    "Text",
    "UnknownKindError",
    "lookup",
]

MAX_SECONDS = 1_000_000.0
"""The longest time any option accepts (about 11.5 days): more overflows a timer or a select."""

MAX_COUNT = 1 << 30
"""The largest byte count any option accepts (1 GiB)."""


class UnknownKindError(ValueError):
    """There is no server kind by that name; the message lists the kinds there are."""


# ---------------------------------------------------------------------------------------
# Option types: each reads a value from the command line (``from_text``) and checks one
# given from Python (``check``), raising ValueError that says what it accepts.


@dataclass(frozen=True)
class Seconds:
    """A finite number of seconds, at least ``minimum`` (above it if ``above``), at most
    :data:`MAX_SECONDS`. ``zero`` says what 0 means, when 0 is allowed and special."""

    minimum: float = 0.0
    above: bool = False
    zero: str = ""

    def describe(self) -> str:
        bound = f"> {self.minimum:g}" if self.above else f">= {self.minimum:g}"
        zero = f"; 0 means {self.zero}" if self.zero else ""
        return f"a number of seconds {bound}{zero}"

    def from_text(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be {self.describe()}, not {text!r}") from None
        return self._checked(value, text)

    def check(self, value: object) -> float:
        if isinstance(value, str):
            return self.from_text(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        return self._checked(float(value), repr(value))

    def _checked(self, value: float, shown: str) -> float:
        too_low = value <= self.minimum if self.above else value < self.minimum
        if not math.isfinite(value) or too_low or value > MAX_SECONDS:
            limit = f"at most {MAX_SECONDS:,.0f}" if value > MAX_SECONDS else self.describe()
            raise ValueError(f"must be {limit}, not {shown}")
        return value


@dataclass(frozen=True)
class Count:
    """A whole number from ``minimum`` to ``maximum``; ``what`` names it in messages."""

    minimum: int = 0
    maximum: int = MAX_COUNT
    what: str = "a whole number"

    def describe(self) -> str:
        return f"{self.what} from {self.minimum:,} to {self.maximum:,}"

    def from_text(self, text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"must be {self.describe()}, not {text!r}") from None
        return self._checked(value, text)

    def check(self, value: object) -> int:
        if isinstance(value, str):
            return self.from_text(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be {self.describe()}, not {value!r}")
        return self._checked(value, repr(value))

    def _checked(self, value: int, shown: str) -> int:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"must be {self.describe()}, not {shown}")
        return value


@dataclass(frozen=True)
class Text:
    """Any non-empty text without a NUL (a poem name or path, an interface address)."""

    what: str = "text"

    def from_text(self, text: str) -> str:
        return self.check(text)

    def check(self, value: object) -> str:
        if not isinstance(value, str) or not value or "\0" in value:
            raise ValueError(f"must be {self.what}, not {value!r}")
        return value


@dataclass(frozen=True)
class HostPort:
    """``HOST:PORT`` (or just ``PORT``, on 127.0.0.1) of a server to connect to."""

    def from_text(self, text: str) -> Address:
        from poetrylab.download import parse_address

        return parse_address(text)

    def check(self, value: object) -> Address:
        from poetrylab.download import Address, parse_address

        if isinstance(value, str | Address):
            return parse_address(value)
        if isinstance(value, tuple) and len(value) == 2:
            return parse_address((str(value[0]), Count(1, 65535, "a port").check(value[1])))
        raise ValueError(f"must be HOST:PORT, not {value!r}")


OptionType = Seconds | Count | Text | HostPort


@dataclass(frozen=True)
class Option:
    """One option of a server kind.

    ``name`` is the keyword (``num_bytes``); :attr:`flag` is the command line's
    (``--num-bytes``). A ``positional`` option is given first, without a flag (the POEM).
    A ``required`` one has no default. ``default`` is used when the option is not given
    (or given as None).
    """

    name: str
    type: OptionType
    default: object
    help: str
    positional: bool = False
    required: bool = False
    metavar: str | None = None

    @property
    def flag(self) -> str:
        """The command-line spelling: ``--num-bytes``, or ``POEM`` for a positional."""
        if self.positional:
            return self.metavar or self.name.upper()
        return "--" + self.name.replace("_", "-")


def _port() -> Option:
    return Option(
        "port", Count(0, 65535, "a port number"), 0,
        "port to listen on (0, the default, picks a free one)",
    )  # fmt: skip


def _iface() -> Option:
    return Option(
        "iface", Text("an address to bind"), "127.0.0.1",
        "address to bind (default 127.0.0.1, loopback only)", metavar="ADDR",
    )  # fmt: skip


def _poem() -> Option:
    return Option(
        "poem", Text("a poem name or a file path"), "raven",
        "a corpus name (see `poetrylab poems`) or a file path (default raven)",
        positional=True, metavar="POEM",
    )  # fmt: skip


def _seconds(name: str, default: float, help: str, **bounds: Any) -> Option:
    return Option(name, Seconds(**bounds), default, f"{help} (default {default:g})", metavar="S")


def _bytes(name: str, default: int, help: str, minimum: int = 1) -> Option:
    kind = Count(minimum, MAX_COUNT, "a number of bytes")
    return Option(name, kind, default, f"{help} (default {default:,})", metavar="N")


def _seed(help: str, name: str = "seed") -> Option:
    return Option(name, Count(0, 2**63 - 1, "a seed"), 0, f"{help} (default 0)", metavar="N")


def _pacing(servers: Any) -> list[Option]:
    return [
        _seconds("delay", servers.DEFAULT_DELAY, "seconds between chunks"),
        _bytes("num_bytes", servers.DEFAULT_NUM_BYTES, "bytes per chunk"),
    ]


def _send_timeout(default: float) -> Option:
    return _seconds(
        "send_timeout", default, "seconds a client may take nothing before it is dropped",
        above=True,
    )  # fmt: skip


def _idle_timeout(default: float, what: str) -> Option:
    return _seconds("idle_timeout", default, what, above=True)


# ---------------------------------------------------------------------------------------
# The kinds: their options (defaults read from the module that implements each one), and
# how each one starts.


def _slow_options() -> list[Option]:
    from poetrylab import servers

    return [_poem(), *_pacing(servers), _send_timeout(servers.DEFAULT_SEND_TIMEOUT)]


def _fast_options() -> list[Option]:
    from poetrylab import servers

    return [_poem(), _send_timeout(servers.DEFAULT_SEND_TIMEOUT)]


def _transform_options() -> list[Option]:
    from poetrylab.services import transform

    return [
        _seconds("timeout", transform.DEFAULT_TIMEOUT, "seconds a transform may take",
                 zero="no limit"),
        _bytes("max_bytes", transform.DEFAULT_MAX_REQUEST, "largest request accepted", 2),
        _seed("seed of the transforms that use chance (refrain)"),
        _idle_timeout(transform.DEFAULT_IDLE_TIMEOUT,
                      "seconds a client may take to send its whole request"),
        _send_timeout(transform.DEFAULT_SEND_TIMEOUT),
    ]  # fmt: skip


def _proxy_options() -> list[Option]:
    from poetrylab.services import proxy

    return [
        Option("upstream", HostPort(), None, "the poetry server to fetch from",
               required=True, metavar="HOST:PORT"),
        _seconds("ttl", proxy.DEFAULT_TTL, "seconds a fetched poem stays cached"),
        _seconds("timeout", proxy.DEFAULT_UPSTREAM_TIMEOUT,
                 "seconds one upstream fetch may take", above=True),
        _bytes("max_bytes", proxy.DEFAULT_MAX_POEM,
               "largest poem accepted from upstream (a longer one is refused)"),
        _send_timeout(proxy.DEFAULT_SEND_TIMEOUT),
    ]  # fmt: skip


def _backend_options(prefix: str = "") -> list[Option]:
    # PoetryBackend's own defaults: no delay, no jitter, seed 0.
    return [
        _seconds(f"{prefix}delay", 0.0, "seconds every request takes"),
        _seconds(f"{prefix}jitter", 0.0,
                 "up to this many more seconds, at random, so replies overtake each other"),
        _seed("seed of the jitter and of the refrain transform", f"{prefix}seed"),
    ]  # fmt: skip


def _tagged_options() -> list[Option]:
    from poetrylab.services import tagged

    return [
        *_backend_options(),
        _idle_timeout(tagged.DEFAULT_IDLE_TIMEOUT,
                      "seconds a connection may stay open with nothing to do"),
    ]  # fmt: skip


def _xmlrpc_options() -> list[Option]:
    from poetrylab.services import xmlrpc_gateway

    return [
        Option("backend", HostPort(), None,
               "the tagged backend to forward to; without it, one is started in this "
               "process and both listeners are printed, the XML-RPC one first",
               metavar="HOST:PORT"),
        _seconds("timeout", xmlrpc_gateway.DEFAULT_CALL_TIMEOUT, "seconds a call may take",
                 above=True),
        _idle_timeout(xmlrpc_gateway.DEFAULT_IDLE_TIMEOUT,
                      "seconds a connection may wait for its next complete request"),
        _bytes("max_bytes", xmlrpc_gateway.DEFAULT_MAX_BODY, "largest request body accepted",
               100),
        *_backend_options("backend_"),
    ]  # fmt: skip


def _start_slow(reactor: TimeTCPReactor, values: Mapping[str, Any]) -> list[Listener]:
    from poetrylab.corpus import load_poem
    from poetrylab.servers import listen_slow

    poem = load_poem(values["poem"]).data
    return [
        listen_slow(reactor, poem, values["port"], values["iface"], values["delay"],
                    values["num_bytes"], values["send_timeout"])
    ]  # fmt: skip


def _start_fast(reactor: TimeTCPReactor, values: Mapping[str, Any]) -> list[Listener]:
    from poetrylab.corpus import load_poem
    from poetrylab.servers import listen_fast

    poem = load_poem(values["poem"]).data
    return [listen_fast(reactor, poem, values["port"], values["iface"], values["send_timeout"])]


def _start_blocking(reactor: object, values: Mapping[str, Any]) -> list[Listener]:
    from twisted.internet.error import CannotListenError

    from poetrylab.corpus import load_poem
    from poetrylab.servers import BlockingPoetryServer

    poem = load_poem(values["poem"]).data
    try:
        server = BlockingPoetryServer(
            poem, values["port"], values["iface"], values["delay"], values["num_bytes"],
            values["send_timeout"],
        )  # fmt: skip
    except OSError as exc:
        raise CannotListenError(values["iface"], values["port"], exc) from None
    return [server]


def _start_transform(reactor: TimeTCPReactor, values: Mapping[str, Any]) -> list[Listener]:
    from poetrylab.services import transform

    service = transform.TransformService(
        reactor, transform.default_registry(values["seed"]), values["timeout"] or None
    )
    return [
        transform.listen_transform(
            reactor, values["port"], values["iface"], service=service,
            max_request=values["max_bytes"], idle_timeout=values["idle_timeout"],
            send_timeout=values["send_timeout"],
        )
    ]  # fmt: skip


def _start_proxy(reactor: TimeTCPReactor, values: Mapping[str, Any]) -> list[Listener]:
    from poetrylab.services import proxy

    return [
        proxy.listen_proxy(
            reactor, values["upstream"], values["port"], values["iface"], ttl=values["ttl"],
            timeout=values["timeout"], max_bytes=values["max_bytes"],
            send_timeout=values["send_timeout"],
        )
    ]  # fmt: skip


def _start_tagged(reactor: TimeTCPReactor, values: Mapping[str, Any]) -> list[Listener]:
    from poetrylab.services import tagged

    backend = tagged.PoetryBackend(
        reactor, delay=values["delay"], jitter=values["jitter"], seed=values["seed"]
    )
    return [
        tagged.listen_tagged(
            reactor, values["port"], values["iface"], backend=backend,
            idle_timeout=values["idle_timeout"],
        )
    ]  # fmt: skip


def _start_xmlrpc(reactor: TimeTCPReactor, values: Mapping[str, Any]) -> list[Listener]:
    from poetrylab.services import tagged, xmlrpc_gateway

    def gateway(backend: Address | tuple[str, int]) -> ListeningPort:
        return xmlrpc_gateway.listen_xmlrpc(
            reactor, backend, values["port"], values["iface"], timeout=values["timeout"],
            max_body=values["max_bytes"], idle_timeout=values["idle_timeout"],
        )  # fmt: skip

    if values["backend"] is not None:
        return [gateway(values["backend"])]
    backend = tagged.PoetryBackend(
        reactor, delay=values["backend_delay"], jitter=values["backend_jitter"],
        seed=values["backend_seed"],
    )  # fmt: skip
    backend_port = tagged.listen_tagged(reactor, 0, values["iface"], backend=backend)
    address = backend_port.getHost()
    try:
        gateway_port = gateway((address.host, address.port))
    except BaseException:
        backend_port.stopListening()
        raise
    return [gateway_port, backend_port]


class ServerKind:
    """One kind of server: its ``name``, ``summary``, :attr:`options` and how it starts.

    ``needs_reactor`` is False for the blocking server, which runs in a thread of its
    own (its start returns a :class:`~poetrylab.servers.BlockingPoetryServer`, bound but
    not yet serving). The first use of :attr:`options` or :meth:`start` imports the
    module that implements the kind.
    """

    def __init__(
        self,
        name: str,
        summary: str,
        options: Callable[[], list[Option]],
        start: Callable[[Any, Mapping[str, Any]], list[Listener]],
        needs_reactor: bool = True,
    ) -> None:
        self.name = name
        self.summary = summary
        self.needs_reactor = needs_reactor
        self._options = options
        self._start = start

    @cached_property
    def options(self) -> tuple[Option, ...]:
        """Every option: ``port`` and ``iface`` (every kind has them), then the kind's own."""
        return (_port(), _iface(), *self._options())

    def keywords(self) -> list[str]:
        """The names ``runtime.serve`` accepts as keywords, sorted (positionals excluded)."""
        return sorted(o.name for o in self.options if not o.positional)

    def values(
        self, args: Sequence[object] = (), options: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        """Check ``args`` (the positional options, in order) and ``options`` (by name);
        return every option's value, defaults filled in.

        A value may be given as Python (``delay=0.05``) or as command-line text
        (``delay="0.05"``); None means "not given". A positional option may be named
        too (``poem="raven"``). Raises TypeError for an option the
        kind does not have or too many positional arguments, ValueError (naming the flag
        and saying what it accepts) for a bad value or a missing required option.
        """
        positional = [o for o in self.options if o.positional]
        if len(args) > len(positional):
            names = ", ".join(o.flag for o in positional) or "nothing"
            raise TypeError(
                f"serve({self.name!r}) takes {len(positional)} positional argument(s) "
                f"({names}), not {len(args)}"
            )
        given: dict[str, object] = {o.name: a for o, a in zip(positional, args, strict=False)}
        by_name = {o.name: o for o in self.options}
        for name, value in (options or {}).items():
            if name not in by_name:
                raise TypeError(
                    f"serve({self.name!r}) has no option {name!r}; "
                    f"it takes: {', '.join(self.keywords())}"
                )
            if name in given:
                raise TypeError(f"serve({self.name!r}) got {name!r} twice")
            given[name] = value
        values: dict[str, Any] = {}
        for option in self.options:
            value = given.get(option.name)
            if value is None:
                if option.required:
                    raise ValueError(
                        f"serve({self.name!r}): the argument {option.flag} is required"
                    )
                values[option.name] = option.default
                continue
            try:
                values[option.name] = option.type.check(value)
            except ValueError as exc:
                raise ValueError(f"serve({self.name!r}): argument {option.flag}: {exc}") from None
        return values

    def start(self, reactor: Any, values: Mapping[str, Any]) -> list[Listener]:
        """Start listening with ``values`` (from :meth:`values`); return what listens.

        Twisted kinds return their listening ports (the XML-RPC gateway's first, then
        its own backend's when it started one) and must be called in the reactor thread;
        the blocking kind returns its bound server (``reactor`` is not used). Raises
        ``twisted.internet.error.CannotListenError`` when the address cannot be bound,
        ``poetrylab.corpus.UnknownPoemError`` for an unknown poem.
        """
        return self._start(reactor, values)

    def __repr__(self) -> str:
        return f"<ServerKind {self.name}>"


KINDS: dict[str, ServerKind] = {
    kind.name: kind
    for kind in [
        ServerKind("slow", "Twisted server that sends a poem slowly (callLater)",
                   _slow_options, _start_slow),
        ServerKind("blocking", "plain-socket server, one client at a time",
                   _slow_options, _start_blocking, needs_reactor=False),
        ServerKind("fast", "Twisted server that sends the whole poem at once",
                   _fast_options, _start_fast),
        ServerKind("transform",
                   "netstring transformation server (NAME.POEM in, transformed poem out)",
                   _transform_options, _start_transform),
        ServerKind("proxy", "caching poetry proxy in front of --upstream",
                   _proxy_options, _start_proxy),
        ServerKind("tagged", "line backend: tagged requests, many in flight, replies out of order",
                   _tagged_options, _start_tagged),
        ServerKind("xmlrpc", "XML-RPC gateway (/RPC2) to a tagged backend over one connection",
                   _xmlrpc_options, _start_xmlrpc),
    ]
}  # fmt: skip
"""Every server kind, by name, in the order ``poetrylab serve --help`` lists them."""


def lookup(name: str) -> ServerKind:
    """The kind called ``name``; raises :class:`UnknownKindError` listing the kinds."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UnknownKindError(
            f"no server kind {name!r}: choose one of {', '.join(KINDS)}"
        ) from None
