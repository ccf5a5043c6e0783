"""Checks for notebook 13 (XML-RPC over a multiplexed backend).

* :func:`check_parse_reply` — the learner's ``parse_reply(line)``: a tagged reply line as
  ``(tag, status, value)``, the JSON payload decoded.
* :func:`check_multiplexer` — the learner's ``lineReceived`` for a multiplexing client:
  twenty requests in flight on one connection to a backend whose replies come back out
  of order; each Deferred must fire with its own reply, errors as errbacks.
* :func:`check_rendezvous` — the learner's XML-RPC resource whose ``ask`` hands back a
  Deferred and puts the question on a queue; code in another thread answers it later.

The servers they start (``nb13-check-...``) are stopped before they return.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import warnings
import xmlrpc.client
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, DeferredList, race
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from poetrylab import runtime
from poetrylab._typing import ReactorTime
from poetrylab.download import Address
from poetrylab.exercises._feedback import one_line, short
from poetrylab.exercises._learner import call_learner, imported
from poetrylab.exercises._registry import NotYet, exercise, function, subclass
from poetrylab.services import quiet_logs, tagged

with warnings.catch_warnings():  # its unused client subclasses the deprecated HTTPClient
    warnings.simplefilter("ignore", DeprecationWarning)
    from twisted.web.xmlrpc import XMLRPC

__all__ = ["REPLIES", "XMLRPC", "check_multiplexer", "check_parse_reply", "check_rendezvous"]

REPLIES: list[tuple[bytes, tuple[str, str, Any]]] = [
    (b"7 ok 5", ("7", "ok", 5)),
    (b'a-1 ok "Tyger Tyger,\\nburning bright"', ("a-1", "ok", "Tyger Tyger,\nburning bright")),
    (b'12 ok ["hope", "tyger"]', ("12", "ok", ["hope", "tyger"])),
    (b'3 ok "two words"', ("3", "ok", "two words")),
    (
        b'9 error {"code": "not-found", "message": "no poem called \'x\'"}',
        ("9", "error", {"code": "not-found", "message": "no poem called 'x'"}),
    ),
]
"""Reply lines and what ``parse_reply`` should make of them."""


@exercise("13", function("parse_reply(line)"), title="read a reply line")
def check_parse_reply(parse_reply: Callable[[bytes], object]) -> str:
    """``parse_reply(line)`` -> ``(tag, status, value)`` for every line of :data:`REPLIES`."""
    for line, expected in REPLIES:
        got = call_learner(
            f"parse_reply({line!r})", parse_reply, line,
            hint="line.split(b' ', 2) gives tag, status and the rest, whatever the payload "
            "holds; json.loads reads the rest",
        )  # fmt: skip
        if isinstance(got, tuple | list) and tuple(got) == expected:
            continue
        hint = "decode the tag and status to str, and json.loads the payload"
        if isinstance(got, tuple | list) and len(got) != 3:
            hint = "split at the first two spaces only: the payload may contain spaces"
        raise NotYet(
            f"parse_reply({line!r}) is not right",
            expected=short(expected, 70),
            got=short(got, 70),
            hint=hint,
        )
    return "tag, status and payload, whatever the payload holds."


_REQUESTS = 21  # twenty adds and one poem that does not exist: one reply line each
_WAIT = 3.0  # every reply is back within 0.2 s


class _Watching(ProtocolWrapper):
    """Wraps the learner's protocol: notes the first exception its ``lineReceived`` raises
    (the connection then drops, as it would anywhere), and fires :attr:`all_lines` once
    every reply line has been handed to it, or the connection is gone. Reactor thread
    only."""

    def __init__(self, reactor: ReactorTime, protocol: Protocol) -> None:
        factory: WrappingFactory[Any] = WrappingFactory(ClientFactory())
        super().__init__(factory, protocol)
        self.reactor = reactor
        self.error: str | None = None
        self.lines = 0
        self.all_lines: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        try:
            super().dataReceived(data)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        except Exception as exc:
            self.error = self.error or one_line(exc)
            raise
        self.lines += data.count(b"\n")
        if self.lines >= _REQUESTS:
            self.reactor.callLater(0, self._arrived)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)  # type: ignore[no-untyped-call]  # Twisted: unannotated
        self.reactor.callLater(0, self._arrived)  # no more replies will come

    def _arrived(self) -> None:
        if not self.all_lines.called:
            self.all_lines.callback(None)


def _exchange(
    reactor: Any,
    watching: _Watching,
    request: Callable[..., Deferred[object]],
    address: Address,
    outcomes: dict[str, object],
) -> Deferred[object]:
    """Reactor thread: connect, send every request at once with ``request`` (the learner's
    protocol's), and fire when every request has its answer or every reply line has
    arrived (or the connection is gone), whichever comes first."""
    endpoint = TCP4ClientEndpoint(reactor, address.host, address.port, timeout=5)

    def keep(key: str) -> Callable[[object], None]:
        def kept(result: object) -> None:
            outcomes[key] = result

        return kept

    def send_all(_: object) -> Deferred[object]:
        calls = [request("add", i, 100).addBoth(keep(f"add {i}")) for i in range(_REQUESTS - 1)]
        calls.append(request("poem", "nosuch").addBoth(keep("bad")))
        contenders: list[Deferred[Any]] = [DeferredList(calls), watching.all_lines]
        return race(contenders).addErrback(lambda _: None)

    connected: Deferred[object] = connectProtocol(endpoint, watching)
    return connected.addCallback(send_all)


def _unanswered(outcome: object) -> bool:
    return outcome is None or (
        isinstance(outcome, Failure) and isinstance(outcome.value, CancelledError)
    )


@exercise("13", subclass(LineReceiver, "MyMultiplexer()"), title="finish the multiplexer")
def check_multiplexer(protocol_class: Callable[[], LineReceiver]) -> str:
    """Twenty ``add`` requests and one failing ``poem`` in flight on one connection."""
    protocol = call_learner("MyMultiplexer()", protocol_class)
    request = getattr(protocol, "request", None)
    if not callable(request):
        raise NotYet(
            "your protocol has no request method",
            expected="a subclass of the notebook's Multiplexer, which has request()",
            got="a LineReceiver without request()",
            hint="class MyMultiplexer(Multiplexer): ... and write only lineReceived",
        )
    reactor = runtime.start().reactor
    outcomes: dict[str, object] = {}
    with quiet_logs(logging.CRITICAL):
        backend = runtime.listen(
            lambda reactor: tagged.listen_tagged(reactor, delay=0.01, jitter=0.15, seed=10),
            name="nb13-check-backend",
        )
        watching = _Watching(reactor, protocol)
        try:
            with contextlib.suppress(Exception):  # what did not arrive is counted below
                runtime.call(
                    _exchange, reactor, watching, request, backend.address, outcomes,
                    timeout=_WAIT, what="twenty-one requests in flight",
                )  # fmt: skip
        finally:
            runtime.call(watching.loseConnection, what="closing")
            backend.stop()
    _judge_replies(watching, outcomes)
    left = getattr(protocol, "pending", None)
    if left:
        raise NotYet(
            "answered requests are still pending",
            expected="self.pending empty once every reply is in",
            got=f"{len(left)} tags left in self.pending",
            hint="pop the tag from self.pending when its reply arrives",
        )
    return "twenty replies out of order, each to its own Deferred."


def _judge_replies(watching: _Watching, outcomes: dict[str, object]) -> None:
    keys = [f"add {i}" for i in range(_REQUESTS - 1)] + ["bad"]
    unanswered = [k for k in keys if _unanswered(outcomes.get(k))]
    if watching.error is not None:
        raise NotYet(
            "your lineReceived raised an error, and Twisted dropped the connection",
            expected="lineReceived fires the Deferred for each reply, without raising",
            got=watching.error,
            hint="try your lineReceived on one reply line in a cell, e.g. b'1 ok 101'",
        )
    if unanswered:
        raise NotYet(
            "not every request got an answer",
            expected=f"all {_REQUESTS} Deferreds fire ({_REQUESTS - 1} callbacks, 1 errback)",
            got=f"{_REQUESTS - len(unanswered)} of {_REQUESTS} fired, though every reply "
            "line arrived"
            if watching.lines >= _REQUESTS
            else f"{_REQUESTS - len(unanswered)} of {_REQUESTS} fired",
            hint="lineReceived must pop the Deferred for the reply's tag and fire it",
        )
    for i in range(_REQUESTS - 1):
        got = outcomes[f"add {i}"]
        if isinstance(got, Failure):
            raise NotYet(
                f"add({i}, 100) failed",
                expected=str(i + 100),
                got=short(got.getErrorMessage(), 100),
                hint="an 'ok' reply fires the Deferred's callback",
            )
        if got != i + 100:
            raise NotYet(
                f"add({i}, 100) got someone else's reply",
                expected=str(i + 100),
                got=short(got, 70),
                hint="replies come back in any order: look the Deferred up by the reply's "
                "tag, not by arrival order",
            )
    bad = outcomes["bad"]
    if not isinstance(bad, Failure):
        raise NotYet(
            "an error reply should fail the Deferred",
            expected="poem('nosuch') errbacks",
            got=f"it fired with {short(bad, 70)}",
            hint="for status 'error', call d.errback(SomeError(message))",
        )


def _next_question(questions: queue.Queue[Any], client: threading.Thread) -> Any:
    """The first (question, Deferred) put on the queue, or (None, None) once the client
    has finished without one (or after 5 s)."""
    for _ in range(100):
        try:
            return questions.get(timeout=0.05)
        except queue.Empty:
            if not client.is_alive():
                break
    return None, None


@exercise("13", subclass(XMLRPC, "Oracle(questions)"), title="an oracle that answers later")
def check_rendezvous(resource_class: Callable[[queue.Queue[Any]], Resource]) -> str:
    """``resource_class(questions)``: ``ask(q)`` returns a Deferred someone fires later."""
    server = imported("twisted.web.server")
    questions: queue.Queue[Any] = queue.Queue()
    oracle = call_learner(
        "Oracle(questions)", resource_class, questions,
        hint="__init__(self, questions): call super().__init__() and keep the queue",
    )  # fmt: skip
    reactor = runtime.start().reactor
    root = Resource()
    root.putChild(b"RPC2", oracle)
    site = runtime.listen(
        lambda reactor: reactor.listenTCP(
            0, server.Site(root, reactor=reactor), interface="127.0.0.1"
        ),
        name="nb13-check-oracle",
    )
    url = f"http://{site.address}/RPC2"
    answers: list[object] = []

    def client() -> None:
        try:
            with xmlrpc.client.ServerProxy(url) as proxy:
                answers.append(proxy.ask("why is the sky blue?"))
        except Exception as exc:
            answers.append(one_line(exc))

    thread = threading.Thread(target=client, daemon=True, name="nb13-check-asker")
    thread.start()
    try:
        question, d = _next_question(questions, thread)
        if d is None:
            raise NotYet(
                "nothing arrived on the queue",
                expected="(question, deferred) put on the queue by ask",
                got=f"the client got {short(answers[0], 70) if answers else 'nothing'}",
                hint="ask should answer with a Deferred nobody has fired yet, and leave it on "
                "self.questions beside the question, for whoever answers to fire",
            )
        if not isinstance(d, Deferred) or question != "why is the sky blue?":
            raise NotYet(
                "the queue should hold (question, Deferred)",
                expected="('why is the sky blue?', a Deferred)",
                got=short((question, d), 70),
            )
        if answers:
            raise NotYet(
                "the client was answered before anyone fired the Deferred",
                expected="no answer until the Deferred fires",
                got=f"the client got {short(answers[0], 70)}",
                hint="return the Deferred itself, unfired",
            )
        reactor.callFromThread(d.callback, "Rayleigh scattering")
        thread.join(5)
    finally:
        site.stop()
    if answers != ["Rayleigh scattering"]:
        raise NotYet(
            "the client did not get the answer fired later",
            expected="'Rayleigh scattering'",
            got=short(answers, 70) if answers else "no answer within 5 s",
        )
    return "the handler waited without blocking anyone, and the answer came later."
