"""Checks for notebook 13 (XML-RPC over a multiplexed backend).

* :func:`check_parse_reply` — the learner's ``parse_reply(line)``: a tagged reply line as
  ``(tag, status, value)``, the JSON payload decoded.
* :func:`check_multiplexer` — the learner's ``lineReceived`` for a multiplexing client:
  twenty requests in flight on one connection to a backend whose replies come back out
  of order; each Deferred must fire with its own reply, errors as errbacks.
* :func:`check_rendezvous` — the learner's XML-RPC resource whose ``ask`` hands back a
  Deferred and puts the question on a queue; code in another thread answers it later.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import xmlrpc.client
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.python.failure import Failure

from poetrylab import runtime
from poetrylab.exercises._feedback import (
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
    short,
)
from poetrylab.services import quiet_logs, tagged

__all__ = ["REPLIES", "check_multiplexer", "check_parse_reply", "check_rendezvous"]

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


@exercise("13")
def check_parse_reply(parse_reply: Any) -> Feedback:
    """``parse_reply(line)`` -> ``(tag, status, value)`` for every line of :data:`REPLIES`."""
    name = "parse a tagged reply"
    for line, expected in REPLIES:
        ok, got = run_learner_code(parse_reply, line)
        if not ok:
            return failed(
                name,
                f"parse_reply({line!r}) raised",
                got=got,
                hint="line.split(b' ', 2) gives tag, status and the rest, whatever the "
                "payload holds; json.loads reads the rest",
            )
        if not (isinstance(got, tuple | list) and tuple(got) == expected):
            hint = "decode the tag and status to str, and json.loads the payload"
            if isinstance(got, tuple | list) and len(got) != 3:
                hint = "split at the first two spaces only: the payload may contain spaces"
            return failed(
                name,
                f"parse_reply({line!r}) is not right",
                expected=short(expected, 70),
                got=short(got, 70),
                hint=hint,
            )
    return passed(name, "tag, status and payload, whatever the payload holds.")


def _backend() -> Any:
    reactor = runtime.start().reactor
    return runtime.call(
        lambda: tagged.listen_tagged(reactor, delay=0.01, jitter=0.15, seed=10),
        what="starting a tagged backend",
    )


@exercise("13")
def check_multiplexer(protocol_class: Any) -> Feedback:
    """Twenty ``add`` requests and one failing ``poem`` in flight on one connection."""
    with quiet_logs(logging.CRITICAL):
        return _check_multiplexer(protocol_class)


def _check_multiplexer(protocol_class: Any) -> Feedback:
    name = "one connection, many requests"
    reactor = runtime.start().reactor
    port = _backend()
    host = port.getHost()
    ok, proto = run_learner_code(protocol_class)
    if not ok:
        return failed(name, "creating your protocol raised", got=proto)
    try:
        endpoint = TCP4ClientEndpoint(reactor, host.host, host.port, timeout=5)
        runtime.call(connectProtocol, endpoint, proto, what="connecting")
        outcomes: dict[str, Any] = {}

        def fire_all() -> Deferred[Any]:
            calls = []
            for i in range(20):
                d = proto.request("add", i, 100)
                d.addBoth(lambda result, i=i: outcomes.__setitem__(f"add {i}", result))
                calls.append(d)
            bad = proto.request("poem", "nosuch")
            bad.addBoth(lambda result: outcomes.__setitem__("bad", result))
            calls.append(bad)
            return DeferredList(calls, consumeErrors=True)

        # Every reply is back within 0.2 s: give it 3. Unanswered calls are counted below.
        with contextlib.suppress(Exception):
            runtime.call(fire_all, timeout=3, what="twenty-one requests in flight")
        keys = [f"add {i}" for i in range(20)] + ["bad"]
        unanswered = [k for k in keys if k not in outcomes or _cancelled(outcomes[k])]
        if unanswered:
            return failed(
                name,
                "not every request got an answer",
                expected="all 21 Deferreds fire (20 callbacks, 1 errback)",
                got=f"{21 - len(unanswered)} of 21 fired within 3 s",
                hint="lineReceived must pop the Deferred for the reply's tag and fire it",
            )
        for i in range(20):
            got = outcomes.get(f"add {i}")
            if isinstance(got, Failure):
                return failed(
                    name,
                    f"add({i}, 100) failed",
                    got=got.getErrorMessage()[:100],
                    hint="an 'ok' reply fires the Deferred's callback",
                )
            if got != i + 100:
                return failed(
                    name,
                    f"add({i}, 100) got someone else's reply",
                    expected=str(i + 100),
                    got=short(got, 70),
                    hint="replies come back in any order: look the Deferred up by the reply's "
                    "tag, not by arrival order",
                )
        bad = outcomes.get("bad")
        if not isinstance(bad, Failure):
            return failed(
                name,
                "an error reply should fail the Deferred",
                expected="poem('nosuch') errbacks",
                got=f"it fired with {short(bad, 70)}",
                hint="for status 'error', call d.errback(SomeError(message))",
            )
        left = getattr(proto, "pending", {})
        if left:
            return failed(
                name,
                "answered requests are still pending",
                expected="self.pending empty",
                got=f"{len(left)} tags left",
                hint="pop the tag from self.pending when its reply arrives",
            )
    finally:
        transport = getattr(proto, "transport", None)
        if transport is not None:
            runtime.call(transport.loseConnection, what="closing")
        runtime.call(port.stopListening, what="stopping the backend")
    return passed(name, "twenty replies out of order, each to its own Deferred.")


@exercise("13")
def check_rendezvous(resource_class: Any) -> Feedback:
    """``resource_class(questions)``: ``ask(q)`` returns a Deferred someone fires later."""
    name = "meet halfway"
    from twisted.web import resource, server

    questions: queue.Queue[Any] = queue.Queue()
    ok, oracle = run_learner_code(resource_class, questions)
    if not ok:
        return failed(
            name,
            "creating your resource raised",
            got=oracle,
            hint="__init__(self, questions): call XMLRPC.__init__(self) and keep the queue",
        )
    reactor = runtime.start().reactor
    root = resource.Resource()
    root.putChild(b"RPC2", oracle)
    port = runtime.call(
        lambda: reactor.listenTCP(0, server.Site(root, reactor=reactor), interface="127.0.0.1"),
        what="serving your resource",
    )
    url = f"http://127.0.0.1:{port.getHost().port}/RPC2"
    answers: list[Any] = []

    def client() -> None:
        try:
            with xmlrpc.client.ServerProxy(url) as proxy:
                answers.append(proxy.ask("why is the sky blue?"))
        except Exception as exc:
            answers.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        question, d = _next_question(questions, thread)
        if d is None:
            return failed(
                name,
                "nothing arrived on the queue",
                expected="(question, deferred) put on the queue by ask",
                got=f"the client got {short(answers[0], 70) if answers else 'nothing'}",
                hint="in xmlrpc_ask: d = Deferred(); self.questions.put((question, d)); return d",
            )
        if not isinstance(d, Deferred) or question != "why is the sky blue?":
            return failed(
                name, "the queue should hold (question, Deferred)", got=short((question, d), 70)
            )
        if answers:
            return failed(
                name,
                "the client was answered before anyone fired the Deferred",
                got=short(answers[0], 70),
                hint="return the Deferred itself, unfired",
            )
        reactor.callFromThread(d.callback, "Rayleigh scattering")
        thread.join(5)
    finally:
        runtime.call(port.stopListening, what="stopping")
    if answers != ["Rayleigh scattering"]:
        return failed(
            name,
            "the client did not get the answer fired later",
            expected="'Rayleigh scattering'",
            got=short(answers, 70),
        )
    return passed(name, "the handler waited without blocking anyone, and the answer came later.")


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


def _cancelled(outcome: Any) -> bool:
    return isinstance(outcome, Failure) and outcome.check(CancelledError) is not None
