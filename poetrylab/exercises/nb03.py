"""Checks for notebook 03 (transports, protocols, factories).

Both checks run the learner's class against real servers on loopback, started through
the notebook runtime under names of their own (``nb03-check-...``) and stopped again
before the check returns:

* :func:`check_line_collector` — a Protocol that turns a stream of chunks into lines,
  fed by a slow server whose chunks split lines and UTF-8 characters in two.
* :func:`check_callback_factory` — a ClientFactory that reports the outcome by calling
  ``callback(nbytes)`` or ``errback(reason)`` by hand, tried on a good server, a closed
  port, and a server that hangs up in the middle of the poem.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory, connectionDone
from twisted.python.failure import Failure

from poetrylab import runtime
from poetrylab.corpus import load_poem
from poetrylab.exercises._feedback import Feedback, exercise, failed, not_a_subclass, passed, short
from poetrylab.servers import listen_slow

__all__ = ["check_callback_factory", "check_line_collector", "split_poem"]

_WAIT = 5.0  # a whole download
_PATIENCE = 2.0  # a refused or broken connection is reported within milliseconds
_GRACE = 0.2  # after the first outcome, how long we watch for a second one


def split_poem() -> bytes:
    """The text the line-collector check serves: German and Japanese, so UTF-8 has
    two- and three-byte characters that 7-byte chunks cut in half."""
    return load_poem("nachtlied").data + b"\n" + load_poem("furuike").data


# -- exercise 1: lines from a stream ------------------------------------------------------


@exercise("03")
def check_line_collector(protocol_class: Any) -> Feedback:
    """Download from a slow server with ``protocol_class``; compare its ``lines`` with the poem's.

    The class must be a Protocol subclass whose instances keep ``lines``: every complete
    line received, decoded from UTF-8, without its newline.
    """
    name = "check_line_collector"
    wrong_kind = not_a_subclass(
        name,
        protocol_class,
        Protocol,
        hint="class LineCollector(Protocol): ...  then check_line_collector(LineCollector)",
    )
    if wrong_kind is not None:
        return wrong_kind
    poem = split_poem()
    expected = poem.decode("utf-8").split("\n")[:-1]  # the poem ends with a newline
    reactor = runtime.start().reactor
    server = runtime.listen(
        lambda reactor: listen_slow(reactor, poem, delay=0.003, num_bytes=7),
        name="nb03-check-lines",
    )
    try:
        outcome = runtime.call(_collect_lines, reactor, protocol_class, server.port)
    finally:
        server.stop()
    if isinstance(outcome, str):
        return failed(
            name,
            "the download did not finish",
            expected="connectionLost after the server closed",
            got=outcome,
            hint="did dataReceived raise? An exception there makes Twisted drop the connection.",
        )
    protocol = outcome
    lines = getattr(protocol, "lines", None)
    if not isinstance(lines, list):
        return failed(
            name,
            "your protocol has no list called lines",
            expected="self.lines: a list of str, one per complete line",
            got=f"lines = {short(lines)}",
            hint="create self.lines = [] in __init__ (or connectionMade) and append to it.",
        )
    if lines == expected:
        return passed(
            name,
            f"all {len(expected)} lines arrived whole, although the server sent "
            f"{len(poem)} bytes 7 at a time, cutting lines and characters in two.",
        )
    if any(isinstance(line, bytes) for line in lines):
        return failed(
            name,
            "your lines are bytes, not text",
            expected=short(expected[0]),
            got=short(lines[0]),
            hint="decode each complete line with .decode('utf-8') before you keep it.",
        )
    for i, (want, got) in enumerate(zip(expected, lines, strict=False), start=1):
        if want != got:
            broken = "\ufffd" in got
            return failed(
                name,
                f"line {i} is not what the server sent",
                expected=short(want),
                got=short(got),
                hint=(
                    "a chunk can end in the middle of a UTF-8 character: keep the bytes in "
                    "a buffer and decode only complete lines."
                    if broken
                    else "a chunk can end in the middle of a line: keep the unfinished tail "
                    "in a buffer, and add the next chunk to it before you split."
                ),
            )
    return failed(
        name,
        f"expected {len(expected)} lines, got {len(lines)}",
        expected=f"{len(expected)} lines, the last one {short(expected[-1])}",
        got=f"{len(lines)} lines" + (f", the extra one {short(lines[-1])}" if lines else ""),
        hint="keep only complete lines (text followed by a newline), without the newline.",
    )


def _collect_lines(reactor: Any, protocol_class: type[Protocol], port: int) -> Deferred[Any]:
    """Reactor thread: download with a watched subclass; fire with the protocol or why not."""
    done: Deferred[Any] = Deferred()

    class Watched(protocol_class):  # type: ignore[misc, valid-type]
        def connectionLost(self, reason: Failure = connectionDone) -> None:
            try:
                super().connectionLost(reason)
            finally:
                if not done.called:
                    done.callback(self)

    factory = ClientFactory.forProtocol(Watched)

    def failed_to_connect(connector: Any, reason: Failure) -> None:
        if not done.called:
            done.callback(f"could not connect: {reason.getErrorMessage()}")

    factory.clientConnectionFailed = failed_to_connect  # type: ignore[method-assign]
    reactor.connectTCP("127.0.0.1", port, factory, timeout=_WAIT)

    def give_up() -> None:
        if not done.called:
            done.callback(f"no end within {_WAIT} s")

    timer = reactor.callLater(_WAIT, give_up)
    done.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
    return done


# -- exercise 2: callback and errback by hand ------------------------------------------


class _HangUpHalfway(Protocol):
    """A broken server: half the poem, then it aborts the connection."""

    factory: ServerFactory

    def connectionMade(self) -> None:
        poem: bytes = self.factory.poem  # type: ignore[attr-defined]
        self.transport.write(poem[: len(poem) // 2])
        self.factory.reactor.callLater(0.05, self.transport.abortConnection)  # type: ignore[attr-defined]


def _listen_hang_up(reactor: Any, poem: bytes) -> Any:
    factory = ServerFactory.forProtocol(_HangUpHalfway)
    factory.poem = poem  # type: ignore[attr-defined]
    factory.reactor = reactor  # type: ignore[attr-defined]
    return reactor.listenTCP(0, factory, interface="127.0.0.1")


def _closed_port(reactor: Any) -> Deferred[int]:
    """Reactor thread: a port nobody listens on (bound, noted, closed)."""
    port = reactor.listenTCP(0, ServerFactory.forProtocol(Protocol), interface="127.0.0.1")
    number = port.getHost().port
    return port.stopListening().addCallback(lambda _: number)


def _try_factory(reactor: Any, factory_class: Any, port: int) -> Deferred[Any]:
    """Reactor thread: connect to ``port`` on loopback with ``factory_class(callback, errback)``;
    fire with the calls made, a little after the connection has ended (or failed to open)."""
    calls: list[tuple[str, Any]] = []
    done: Deferred[Any] = Deferred()

    def settle() -> None:
        if not done.called:
            done.callback(calls)

    def settle_soon() -> None:
        reactor.callLater(_GRACE, settle)

    def record(kind: str) -> Any:
        def called(value: Any = None, *more: Any) -> None:
            calls.append((kind, value))

        return called

    class Watched(factory_class):  # type: ignore[misc, valid-type]
        """The learner's factory, and we notice when the connection is over."""

        def buildProtocol(self, addr: Any) -> Any:
            protocol = super().buildProtocol(addr)
            if protocol is not None:
                lost = protocol.connectionLost

                def connection_lost(reason: Failure = connectionDone) -> None:
                    try:
                        lost(reason)
                    finally:
                        settle_soon()

                protocol.connectionLost = connection_lost
            return protocol

        def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
            try:
                super().clientConnectionFailed(connector, reason)
            finally:
                settle_soon()

    factory = Watched(record("callback"), record("errback"))
    reactor.connectTCP("127.0.0.1", port, factory, timeout=_PATIENCE)
    timer = reactor.callLater(_PATIENCE, settle)
    done.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
    return done


@exercise("03")
def check_callback_factory(factory_class: Any) -> Feedback:
    """Try ``factory_class(callback, errback)`` on a good server, a closed port and a server
    that hangs up halfway; exactly one of the two must be called, once, with the right value.
    """
    name = "check_callback_factory"
    wrong_kind = not_a_subclass(
        name,
        factory_class,
        ClientFactory,
        hint="class ByteCountFactory(ClientFactory): ...  then "
        "check_callback_factory(ByteCountFactory)",
    )
    if wrong_kind is not None:
        return wrong_kind
    try:
        factory_class(lambda *a: None, lambda *a: None)
    except Exception as exc:
        return failed(
            name,
            "your factory could not be built as factory_class(callback, errback)",
            expected="def __init__(self, callback, errback): ...",
            got=f"{type(exc).__name__}: {exc}",
            hint="store both functions on self; call exactly one of them later.",
        )
    poem = load_poem("hope").data
    reactor = runtime.start().reactor
    good = runtime.listen(
        lambda reactor: listen_slow(reactor, poem, delay=0.002, num_bytes=40),
        name="nb03-check-good",
    )
    broken = runtime.listen(
        lambda reactor: _listen_hang_up(reactor, poem), name="nb03-check-broken"
    )
    try:
        closed = runtime.call(_closed_port, reactor)
        cases = [
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
        verdict = _judge(name, case, want_kind, want_value, calls)
        if verdict is not None:
            return verdict
    return passed(
        name,
        f"callback({len(poem)}) for the whole poem, errback(Failure) for a refused "
        "connection and for a connection lost halfway; each exactly once.",
    )


def _judge(
    name: str, case: str, want_kind: str, want_value: Any, calls: list[tuple[str, Any]]
) -> Feedback | None:
    want = f"{want_kind}({want_value if want_kind == 'callback' else 'a Failure'})"
    if not calls:
        hint = (
            "a connection that never opens is reported to the factory's "
            "clientConnectionFailed(connector, reason), not to the protocol."
            if "nobody" in case
            else "the protocol's connectionLost(reason) is where you learn the connection "
            "is over: call the factory's callback or errback from there."
        )
        return failed(
            name, f"with {case}, neither callback nor errback was called", want, "nothing", hint
        )
    if len(calls) > 1:
        return failed(
            name,
            f"with {case}, more than one outcome was reported",
            f"exactly one call: {want}",
            ", then ".join(kind for kind, _ in calls),
            "report once: after calling the callback or the errback, call neither again.",
        )
    kind, value = calls[0]
    if kind != want_kind:
        hint = (
            "connectionLost is called however the connection ends: look at the reason. "
            "reason.check(ConnectionDone) is true only when the server closed cleanly."
            if want_kind == "errback"
            else "a clean close (ConnectionDone) means the poem is complete: call the callback."
        )
        return failed(
            name, f"with {case}, the wrong one was called", want, f"{kind}({short(value)})", hint
        )
    if want_kind == "callback":
        if value != want_value:
            return failed(
                name,
                f"with {case}, the callback got the wrong value",
                want,
                f"callback({short(value)})",
                "count the bytes of every chunk: len(data) in dataReceived, added up.",
            )
        return None
    if not isinstance(value, Failure):
        return failed(
            name,
            f"with {case}, the errback did not get a Failure",
            want,
            f"errback({short(value)})",
            "pass on the reason Twisted gave you: it is a Failure wrapping the exception.",
        )
    if type(value.value).__name__ != want_value:
        return failed(
            name,
            f"with {case}, the errback got an unexpected Failure",
            f"a Failure of {want_value}",
            f"a Failure of {type(value.value).__name__}",
            "pass on the reason Twisted gave you, unchanged.",
        )
    return None
