"""Model answers for notebook 13 (XML-RPC over a multiplexed backend), with wrong answers."""

from __future__ import annotations

import json
import queue
from typing import Any

from twisted.internet.defer import Deferred
from twisted.protocols.basic import LineReceiver

from poetrylab.exercises import Answers
from poetrylab.exercises.nb13 import XMLRPC


def parse_reply(line: bytes) -> tuple[str, str, Any]:
    """Tag and status are the first two words; the rest is JSON, spaces and all."""
    tag, status, payload = line.split(b" ", 2)
    return tag.decode(), status.decode(), json.loads(payload)


def parse_split_everywhere(line: bytes) -> tuple[Any, ...]:
    """Wrong: splits the payload too."""
    return tuple(part.decode() for part in line.split())


def parse_without_json(line: bytes) -> tuple[str, str, Any]:
    """Wrong: leaves the payload as text."""
    tag, status, payload = line.decode().split(" ", 2)
    return tag, status, payload


class BackendError(Exception):
    """An error reply."""


class Multiplexer(LineReceiver):
    """The notebook's starter with lineReceived written."""

    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.pending: dict[str, Deferred[Any]] = {}
        self.next_tag = 0

    def request(self, verb: str, *args: Any) -> Deferred[Any]:
        self.next_tag += 1
        tag = str(self.next_tag)
        self.pending[tag] = d = Deferred[Any]()
        self.sendLine(f"{tag} {verb} {json.dumps(list(args))}".encode())  # type: ignore[no-untyped-call]  # Twisted: unannotated
        return d

    def lineReceived(self, line: bytes) -> None:
        tag, status, payload = line.decode().split(" ", 2)
        d = self.pending.pop(tag, None)
        if d is None:
            return
        value = json.loads(payload)
        if status == "ok":
            d.callback(value)
        else:
            d.errback(BackendError(value["message"]))


class FirstComeFirstServed(Multiplexer):
    """Wrong: fires the oldest request, whatever the reply's tag."""

    def lineReceived(self, line: bytes) -> None:
        tag, status, payload = line.decode().split(" ", 2)
        oldest = next(iter(self.pending))
        self.pending.pop(oldest).callback(json.loads(payload))


class ErrorsAsResults(Multiplexer):
    """Wrong: an error reply fires the callback with the error object."""

    def lineReceived(self, line: bytes) -> None:
        tag, status, payload = line.decode().split(" ", 2)
        self.pending.pop(tag).callback(json.loads(payload))


class ParsesTheTagAsNumber(Multiplexer):
    """Wrong: looks the tag up as a number, but the keys are str: KeyError in lineReceived."""

    def lineReceived(self, line: bytes) -> None:
        tag, status, payload = line.decode().split(" ", 2)
        self.pending.pop(int(tag)).callback(json.loads(payload))  # type: ignore[call-overload]  # the bug


class Oracle(XMLRPC):
    """ask() hands back a Deferred; whoever takes the question from the queue fires it."""

    def __init__(self, questions: queue.Queue[Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted: unannotated
        self.questions = questions

    def xmlrpc_ask(self, question: str) -> Deferred[str]:
        d: Deferred[str] = Deferred()
        self.questions.put((question, d))
        return d


class KnowItAll(Oracle):
    """Wrong: answers at once, so nobody else ever gets the question."""

    def xmlrpc_ask(self, question: str) -> str:  # type: ignore[override]  # the bug
        return "I don't know"


SOLUTIONS = {
    "check_parse_reply": Answers(
        solution=parse_reply, wrong=[parse_split_everywhere, parse_without_json, bytes.split]
    ),
    "check_multiplexer": Answers(
        solution=Multiplexer,
        wrong=[FirstComeFirstServed, ErrorsAsResults, ParsesTheTagAsNumber, LineReceiver],
    ),
    "check_rendezvous": Answers(solution=Oracle, wrong=[KnowItAll, XMLRPC]),
}
