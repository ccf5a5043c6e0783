"""Checks for notebook 03 (transports, protocols, factories).

Both checks run the learner's class against real servers on loopback, started through
the notebook runtime under names of their own (``nb03-check-...``) and stopped again
before the check returns:

* :func:`check_line_collector` — a Protocol that turns a stream of chunks into lines,
  fed by a slow server whose chunks split lines and UTF-8 characters in two.
* :func:`check_callback_factory` — a ClientFactory that reports the outcome by calling
  ``callback(nbytes)`` or ``errback(reason)`` by hand, tried on a good server, a closed
  port, and a server that hangs up in the middle of the poem.

Each connection goes through Twisted's ``WrappingFactory``, which tells the check when
it ended without changing the learner's classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConnector
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

from poetrylab import runtime
from poetrylab._typing import ReactorTime, TimeTCPReactor
from poetrylab.corpus import load_poem
from poetrylab.exercises._feedback import short
from poetrylab.exercises._registry import NotYet, exercise, subclass
from poetrylab.servers import listen_slow

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from poetrylab._typing import TCPTransport

__all__ = ["check_callback_factory", "check_line_collector", "split_poem"]

_WAIT = 5.0  # a whole download
_PATIENCE = 2.0  # a refused or broken connection is reported within milliseconds
_GRACE = 0.2  # after the first outcome, how long we watch for a second one


def split_poem() -> bytes:
    """The text the line-collector check serves: German and Japanese, so UTF-8 has
    two- and three-byte characters that 7-byte chunks cut in half."""
    return load_poem("nachtlied").data + b"\n" + load_poem("furuike").data


class _Watched(WrappingFactory):
    """The learner's factory, wrapped: :attr:`ended` fires with this object ``grace``
    seconds after the connection ended or failed to open, or after ``patience`` seconds
    with :attr:`timed_out` set. Reactor thread only."""

    def __init__(
        self, reactor: ReactorTime, factory: ClientFactory, patience: float, grace: float
    ) -> None:
        super().__init__(factory)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        self.reactor = reactor
        self.grace = grace
        self.learners_protocol: object = None
        self.refused: Failure | None = None
        self.timed_out = False
        self.ended: Deferred[_Watched] = Deferred()
        # IReactorTime is a zope interface, which mypy cannot match; ReactorTime mirrors it.
        clock = cast("IReactorTime", reactor)
        self.ended.addTimeout(patience, clock, onTimeoutCancel=self._gave_up)

    def registerProtocol(self, p: ProtocolWrapper) -> None:
        super().registerProtocol(p)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        self.learners_protocol = p.wrappedProtocol

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        self.reactor.callLater(self.grace, self._settle)  # after the learner's connectionLost

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self.refused = reason
        try:
            super().clientConnectionFailed(connector, reason)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        finally:
            self.reactor.callLater(self.grace, self._settle)

    def _settle(self) -> None:
        if not self.ended.called:
            self.ended.callback(self)

    def _gave_up(self, result: object, timeout: float) -> _Watched:
        self.timed_out = True
        return self


def _watch(
    reactor: TimeTCPReactor, factory: ClientFactory, port: int, patience: float, grace: float
) -> Deferred[_Watched]:
    """Reactor thread: connect ``factory`` to ``port`` on loopback, watched."""
    watched = _Watched(reactor, factory, patience, grace)
    # A WrappingFactory is a ClientFactory[ProtocolWrapper]: fine for connectTCP, though
    # ReactorTCP's annotation asks for the default parameter.
    reactor.connectTCP("127.0.0.1", port, cast(ClientFactory, watched), timeout=patience)
    return watched.ended


# -- exercise 1: lines from a stream ------------------------------------------------------


@exercise("03", subclass(Protocol, "LineCollector()"), title="whole lines from any chunks")
def check_line_collector(protocol_class: type[Protocol]) -> str:
    """Download from a slow server with ``protocol_class``; compare its ``lines`` with the poem's.

    The class must be a Protocol subclass whose instances keep ``lines``: every complete
    line received, decoded from UTF-8, without its newline.
    """
    poem = split_poem()
    expected = poem.decode("utf-8").split("\n")[:-1]  # the poem ends with a newline
    reactor = runtime.start().reactor
    server = runtime.listen(
        lambda reactor: listen_slow(reactor, poem, delay=0.003, num_bytes=7),
        name="nb03-check-lines",
    )
    try:
        factory = ClientFactory.forProtocol(protocol_class)
        watched = runtime.call(_watch, reactor, factory, server.port, _WAIT, 0.0)
    finally:
        server.stop()
    if watched.refused is not None or watched.learners_protocol is None:
        reason = watched.refused.getErrorMessage() if watched.refused else "no protocol"
        raise NotYet(
            "the check could not connect to its own server",
            expected="a connection to the check's slow server",
            got=reason,
            hint="run the check again; if it keeps failing, restart the kernel.",
        )
    if watched.timed_out:
        raise NotYet(
            "the download did not finish",
            expected="connectionLost after the server closed",
            got=f"no end within {_WAIT:g} s",
            hint="did dataReceived raise? An exception there makes Twisted drop the connection.",
        )
    lines = getattr(watched.learners_protocol, "lines", None)
    if not isinstance(lines, list):
        raise NotYet(
            "your protocol has no list called lines",
            expected="self.lines: a list of str, one per complete line",
            got=f"lines = {short(lines)}",
            hint="create self.lines = [] in __init__ (or connectionMade) and append to it.",
        )
    if lines == expected:
        return (
            f"all {len(expected)} lines arrived whole, although the server sent "
            f"{len(poem)} bytes 7 at a time, cutting lines and characters in two."
        )
    _judge_lines(expected, lines)
    raise NotYet(  # the lines agree as far as they go
        f"expected {len(expected)} lines, got {len(lines)}",
        expected=f"{len(expected)} lines, the last one {short(expected[-1])}",
        got=f"{len(lines)} lines" + (f", the last one {short(lines[-1])}" if lines else ""),
        hint="keep only complete lines (text followed by a newline), without the newline.",
    )


def _judge_lines(expected: list[str], lines: list[object]) -> None:
    """Raise NotYet for the first line that differs from the poem's."""
    if any(isinstance(line, bytes) for line in lines):
        raise NotYet(
            "your lines are bytes, not text",
            expected=short(expected[0]),
            got=short(lines[0]),
            hint="decode each complete line with .decode('utf-8') before you keep it.",
        )
    for i, (want, got) in enumerate(zip(expected, lines, strict=False), start=1):
        if want == got:
            continue
        text = str(got)
        if text.rstrip("\r\n") == want:
            hint = "keep each line without its newline: split on b'\\n' and the '\\n' is gone."
        elif "\ufffd" in text:
            hint = (
                "a chunk can end in the middle of a UTF-8 character: keep the bytes in a "
                "buffer and decode only complete lines."
            )
        else:
            hint = (
                "a chunk can end in the middle of a line: keep the unfinished tail in a "
                "buffer, and add the next chunk to it before you split."
            )
        raise NotYet(
            f"line {i} is not what the server sent",
            expected=short(want),
            got=short(got),
            hint=hint,
        )


# -- exercise 2: callback and errback by hand ------------------------------------------


class _HangUpHalfway(Protocol):
    """A broken server: half the poem, then it aborts the connection."""

    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def connectionMade(self) -> None:
        factory = cast(_HangUpFactory, self.factory)
        self.transport.write(factory.poem[: len(factory.poem) // 2])
        factory.reactor.callLater(0.05, self.transport.abortConnection)


class _HangUpFactory(ServerFactory):
    protocol = _HangUpHalfway

    def __init__(self, reactor: ReactorTime, poem: bytes) -> None:
        self.reactor = reactor
        self.poem = poem


Call = tuple[str, object]


def _try_factory(
    reactor: TimeTCPReactor, factory_class: Callable[..., ClientFactory], port: int
) -> Deferred[list[Call]]:
    """Reactor thread: connect to ``port`` on loopback with ``factory_class(callback,
    errback)``; fire with the calls made, a little after the connection has ended (or
    failed to open, or after :data:`_PATIENCE` seconds)."""
    calls: list[Call] = []

    def record(kind: str) -> Callable[..., None]:
        def called(value: object = None, *more: object) -> None:
            calls.append((kind, value))

        return called

    factory = factory_class(record("callback"), record("errback"))
    return _watch(reactor, factory, port, _PATIENCE, _GRACE).addCallback(lambda _: calls)


@exercise(
    "03", subclass(ClientFactory, "ByteCountFactory(callback, errback)"),
    title="callback and errback, by hand",
)  # fmt: skip
def check_callback_factory(factory_class: Callable[..., ClientFactory]) -> str:
    """Try ``factory_class(callback, errback)`` on a good server, a closed port and a server
    that hangs up halfway; exactly one of the two must be called, once, with the right value.
    """
    poem = load_poem("hope").data
    reactor = runtime.start().reactor
    nobody = runtime.listen(
        lambda reactor: reactor.listenTCP(0, ServerFactory(), interface="127.0.0.1"),
        name="nb03-check-closed",
    )
    good = runtime.listen(
        lambda reactor: listen_slow(reactor, poem, delay=0.002, num_bytes=40),
        name="nb03-check-good",
    )
    broken = runtime.listen(
        lambda reactor: reactor.listenTCP(0, _HangUpFactory(reactor, poem), interface="127.0.0.1"),
        name="nb03-check-broken",
    )
    # Closed only now: a port freed before the other two listened could be handed to one
    # of them by the operating system (it happened), and then somebody would listen there.
    closed = nobody.port
    nobody.stop()
    try:
        cases: list[tuple[str, int, str, object]] = [
            ("a working server", good.port, "callback", len(poem)),
            ("a port where nobody listens", closed, "errback", "ConnectionRefusedError"),
            ("a server that hangs up halfway", broken.port, "errback", "ConnectionLost"),
        ]
        results = [
            runtime.call(_try_factory, reactor, factory_class, port, timeout=_PATIENCE + 3)
            for _, port, *_ in cases
        ]
    finally:
        good.stop()
        broken.stop()
    for (case, _, want_kind, want_value), calls in zip(cases, results, strict=True):
        _judge(case, want_kind, want_value, calls)
    return (
        f"callback({len(poem)}) for the whole poem, errback(Failure) for a refused "
        "connection and for a connection lost halfway; each exactly once."
    )


def _judge(case: str, want_kind: str, want_value: object, calls: list[Call]) -> None:
    """Raise NotYet unless ``calls`` is exactly one call of ``want_kind`` with the right value."""
    want = f"{want_kind}({want_value if want_kind == 'callback' else 'a Failure'})"
    if not calls:
        raise NotYet(
            f"with {case}, neither callback nor errback was called",
            expected=want,
            got="no call at all",
            hint="a connection that never opens is reported to the factory's "
            "clientConnectionFailed(connector, reason), not to the protocol."
            if "nobody" in case
            else "the protocol's connectionLost(reason) is where you learn the connection "
            "is over: call the factory's callback or errback from there.",
        )
    if len(calls) > 1:
        raise NotYet(
            f"with {case}, more than one outcome was reported",
            expected=f"exactly one call: {want}",
            got=", then ".join(kind for kind, _ in calls),
            hint="report once: after calling the callback or the errback, call neither again.",
        )
    kind, value = calls[0]
    if kind != want_kind:
        raise NotYet(
            f"with {case}, the wrong one was called",
            expected=want,
            got=f"{kind}({short(value)})",
            hint="connectionLost is called however the connection ends: look at the reason. "
            "reason.check(ConnectionDone) is true only when the server closed cleanly."
            if want_kind == "errback"
            else "a clean close (ConnectionDone) means the poem is complete: call the callback.",
        )
    if want_kind == "callback":
        if value != want_value:
            raise NotYet(
                f"with {case}, the callback got the wrong value",
                expected=want,
                got=f"callback({short(value)})",
                hint="count the bytes of every chunk: len(data) in dataReceived, added up.",
            )
        return
    if not isinstance(value, Failure):
        raise NotYet(
            f"with {case}, the errback did not get a Failure",
            expected=want,
            got=f"errback({short(value)})",
            hint="pass on the reason Twisted gave you: it is a Failure wrapping the exception.",
        )
    if type(value.value).__name__ != want_value:
        raise NotYet(
            f"with {case}, the errback got an unexpected Failure",
            expected=f"a Failure of {want_value}",
            got=f"a Failure of {type(value.value).__name__}",
            hint="pass on the reason Twisted gave you, unchanged.",
        )
