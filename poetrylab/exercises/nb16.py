"""Checks for notebook 16 (testing asynchronous code): the learner writes the tests.

A good test passes on correct code and fails on broken code. Each check runs the
learner's test against the real thing (it must pass) and against *mutants*, copies with
one bug each (each must make the test fail), and says which bugs got through:

* :func:`check_pacing_test` — a test function ``test(make_factory)`` for the slow
  server's pacing, run on :class:`poetrylab.servers.PoetryFactory` and on six broken
  servers. It must drive time with a ``task.Clock``.
* :func:`check_client_tests` — a trial ``SynchronousTestCase`` for the Deferred client's
  protocol (``poetrylab.clients.deferred.PoetryProtocol``, found through the class
  attribute ``protocol_class``), run on it and on four broken protocols.

Nothing here touches a real reactor, socket or clock: mutation testing is only quick
because the tests under test use fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from twisted.internet import interfaces
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial import unittest as trial_unittest
from twisted.trial.reporter import TestResult
from twisted.trial.runner import TestLoader

from poetrylab._typing import ReactorTime
from poetrylab.clients.deferred import PoetryProtocol
from poetrylab.download import Download
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import run_learner_code
from poetrylab.exercises._registry import NotYet, exercise, function, subclass
from poetrylab.servers import PoetryFactory

if TYPE_CHECKING:
    from poetrylab._typing import TCPTransport

__all__ = ["CLIENT_MUTANTS", "PACING_MUTANTS", "check_client_tests", "check_pacing_test"]


@dataclass(frozen=True)
class Mutant:
    """A copy of the code under test with one bug: what it does wrong, and the code."""

    bug: str
    code: Callable[..., object]


# -- exercise 1: a pacing test -------------------------------------------------------------


class _PacedPoetry(Protocol):
    """A slow poetry protocol with knobs, to build broken servers from."""

    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is set
    pace = 1.0  # multiplies the delay between chunks
    first_at_once = True
    whole_poem = False
    closes = True
    cancels_on_hang_up = True

    def __init__(self) -> None:
        self.offset = 0
        self.pending: interfaces.IDelayedCall | None = None

    @property
    def settings(self) -> _BrokenFactory:
        """The factory that built this protocol: its poem, reactor, delay and num_bytes."""
        return cast(_BrokenFactory, self.factory)

    def connectionMade(self) -> None:
        if self.first_at_once:
            self.send_next()
        else:
            self.pending = self.settings.reactor.callLater(self.settings.delay, self.send_next)

    def send_next(self) -> None:
        self.pending = None
        poem = self.settings.poem
        size = len(poem) if self.whole_poem else self.settings.num_bytes
        chunk = poem[self.offset : self.offset + size]
        self.offset += len(chunk)
        self.transport.write(chunk)
        if self.offset < len(poem):
            delay = self.settings.delay * self.pace
            self.pending = self.settings.reactor.callLater(delay, self.send_next)
        elif self.closes:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.cancels_on_hang_up and self.pending is not None and self.pending.active():
            self.pending.cancel()


class _BrokenFactory(ServerFactory):
    def __init__(
        self,
        protocol: type[_PacedPoetry],
        poem: bytes,
        reactor: ReactorTime,
        delay: float = 0.1,
        num_bytes: int = 10,
    ) -> None:
        self.protocol = protocol
        self.poem = poem
        self.reactor = reactor
        self.delay = delay
        self.num_bytes = num_bytes


def _broken(name: str, **knobs: object) -> Callable[..., ServerFactory]:
    protocol = type(name, (_PacedPoetry,), knobs)

    def make_factory(
        poem: bytes, reactor: ReactorTime, delay: float = 0.1, num_bytes: int = 10
    ) -> ServerFactory:
        return _BrokenFactory(protocol, poem, reactor, delay, num_bytes)

    return make_factory


PACING_MUTANTS = [
    Mutant("sends the whole poem at once", _broken("AllAtOnce", whole_poem=True)),
    Mutant("waits one delay before the first chunk", _broken("LateStart", first_at_once=False)),
    Mutant("sends a chunk every delay/2 seconds", _broken("Hasty", pace=0.5)),
    Mutant("sends a chunk every 2×delay seconds", _broken("Sluggish", pace=2.0)),
    Mutant("never closes the connection", _broken("NeverCloses", closes=False)),
    Mutant(
        "leaves its next chunk scheduled after the client hangs up",
        _broken("LeavesTimer", cancels_on_hang_up=False),
    ),
]


def _run_test_function(
    test: Callable[[Callable[..., object]], object], make_factory: Callable[..., object]
) -> str | None:
    """Run the learner's test on one factory maker; None if it passed, else why it failed."""
    ok, outcome = run_learner_code(test, make_factory)
    return None if ok else str(outcome)


@exercise("16", function("test_pacing(make_factory)"), title="pin down the slow server's pacing")
def check_pacing_test(test: Callable[[Callable[..., object]], object]) -> str:
    """Run ``test(make_factory)`` on the real slow server and on each broken one.

    ``make_factory(poem, clock, delay=..., num_bytes=...)`` returns a server factory. The
    test must pass on :class:`PoetryFactory`, fail (raise) on every mutant, and build its
    factories with a ``task.Clock`` (or ``MemoryReactorClock``).
    """
    reactors: list[object] = []

    def real(poem: bytes, reactor: ReactorTime, delay: float = 0.1, num_bytes: int = 10) -> object:
        reactors.append(reactor)
        return PoetryFactory(poem, reactor, delay=delay, num_bytes=num_bytes)

    started = time.perf_counter()
    problem = _run_test_function(test, real)
    took = time.perf_counter() - started
    if not reactors:
        raise NotYet(
            "your test never built a server",
            expected="factory = make_factory(poem, clock, delay=..., num_bytes=...)",
            got="make_factory was not called",
            hint="build the server with make_factory, so the check can swap in broken ones.",
        )
    if not all(isinstance(reactor, Clock) for reactor in reactors):
        raise NotYet(
            "your test gave the server a real reactor",
            expected="make_factory(poem, Clock(), ...)",
            got=f"make_factory(poem, {type(reactors[0]).__name__}(...), ...)",
            hint="with task.Clock you move time yourself (clock.advance): no waiting, no flakes.",
        )
    if problem is not None:
        raise NotYet(
            "your test fails on the correct slow server",
            expected="no exception from your test on PoetryFactory",
            got=problem,
            hint="the slow server writes num_bytes at once on connect, then num_bytes "
            "every delay seconds, and calls loseConnection right after the last chunk.",
        )
    if took > 1.0:
        raise NotYet(
            "your test took more than a second",
            expected="milliseconds: Clock time costs no real time",
            got="over a second",
            hint="do not sleep: clock.advance(seconds) moves the server's time at once.",
        )
    survivors = [m.bug for m in PACING_MUTANTS if _run_test_function(test, m.code) is None]
    caught = len(PACING_MUTANTS) - len(survivors)
    if survivors:
        raise NotYet(
            f"your test caught {caught} of {len(PACING_MUTANTS)} broken servers",
            expected="a failure on every broken server",
            got="it passed on a server that " + "; and on one that ".join(survivors),
            hint=_pacing_hint(survivors[0]),
        )
    return (
        f"your test passes on the real slow server and catches all {caught} broken ones, "
        "without a socket or a second of real time."
    )


def _pacing_hint(bug: str) -> str:
    hints = {
        "sends the whole poem at once": "right after makeConnection, check that exactly "
        "num_bytes bytes were written (transport.value()).",
        "waits one delay before the first chunk": "check what was written right after "
        "makeConnection, before any clock.advance.",
        "sends a chunk every delay/2 seconds": "advance the clock by a little less than "
        "delay and check that nothing new was written yet.",
        "sends a chunk every 2×delay seconds": "advance the clock by exactly delay and "
        "check that the next chunk was written.",
        "never closes the connection": "after the last chunk, transport.disconnecting "
        "should be True.",
        "leaves its next chunk scheduled after the client hangs up": "hang up early with "
        "protocol.connectionLost(Failure(ConnectionDone())), then check "
        "clock.getDelayedCalls() is empty.",
    }
    return hints[bug]


# -- exercise 2: a trial test case for the Deferred client ----------------------------


class _KeepsFirstChunkOnly(PoetryProtocol):
    def dataReceived(self, data: bytes) -> None:
        if not self.download.chunks:
            super().dataReceived(data)


class _SucceedsOnAnyClose(PoetryProtocol):
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(Failure(ConnectionDone()))


class _SilentOnLostConnection(PoetryProtocol):
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if reason.check(ConnectionDone):
            super().connectionLost(reason)


class _CancelKeepsConnection(PoetryProtocol):
    def __init__(self, download: Download) -> None:
        super().__init__(download)
        self.finished = Deferred()


CLIENT_MUTANTS = [
    Mutant("keeps only the first chunk", _KeepsFirstChunkOnly),
    Mutant("reports success when the connection is lost halfway", _SucceedsOnAnyClose),
    Mutant("never fires when the connection is lost halfway", _SilentOnLostConnection),
    Mutant("does not close the connection when finished is cancelled", _CancelKeepsConnection),
]


def _run_case(case: type, protocol_class: object) -> TestResult:
    """Run every test of ``case`` with ``protocol_class`` swapped in; return the result."""
    swapped = type(case.__name__, (case,), {"protocol_class": protocol_class})
    swapped.__module__ = case.__module__
    result = TestResult()
    TestLoader().loadClass(swapped).run(result)
    return result


def _first_problem(result: TestResult) -> str:
    for test, failure in [*result.failures, *result.errors]:
        method = getattr(test, "_testMethodName", str(test))
        message = failure.getErrorMessage() if isinstance(failure, Failure) else str(failure)
        first = message.strip().splitlines()[0] if message.strip() else ""
        return f"{method}: {first}" if first else method
    return "?"


@exercise(
    "16", subclass(trial_unittest.SynchronousTestCase, "PoetryProtocolTests"),
    title="a trial test case for the client's Protocol",
)  # fmt: skip
def check_client_tests(case: type[trial_unittest.SynchronousTestCase]) -> str:
    """Run the learner's ``SynchronousTestCase`` on the Deferred client's protocol and mutants.

    The class must use ``self.protocol_class`` (set to
    ``poetrylab.clients.deferred.PoetryProtocol``) to build the protocol under test.
    """
    if issubclass(case, trial_unittest.TestCase):
        raise NotYet(
            "use SynchronousTestCase in a notebook",
            expected="a subclass of SynchronousTestCase",
            got="a subclass of trial's asynchronous TestCase",
            hint="the asynchronous TestCase runs the reactor itself, and here the runtime runs "
            "it already; with StringTransport and successResultOf you need no reactor.",
        )
    tested = getattr(case, "protocol_class", None)
    if tested is not PoetryProtocol:
        raise NotYet(
            "your class must say which protocol it tests",
            expected="protocol_class = PoetryProtocol  (from poetrylab.clients.deferred)",
            got=f"protocol_class = {short(tested)}",
            hint="build the protocol with self.protocol_class(download), so the check can "
            "swap in broken ones.",
        )
    real = _run_case(case, PoetryProtocol)
    if real.testsRun == 0:
        raise NotYet(
            "your class has no tests",
            expected="at least one method whose name starts with test_",
            got="0 tests",
            hint="trial runs the methods named test_...",
        )
    if not real.wasSuccessful():
        raise NotYet(
            "your tests fail on the correct protocol",
            expected=f"all {real.testsRun} tests pass on PoetryProtocol",
            got=_first_problem(real),
            hint="finished fires with the Download when the server closes cleanly "
            "(ConnectionDone), errbacks with the reason otherwise, and cancelling it "
            "aborts the connection.",
        )
    survivors = [m.bug for m in CLIENT_MUTANTS if _run_case(case, m.code).wasSuccessful()]
    caught = len(CLIENT_MUTANTS) - len(survivors)
    if survivors:
        raise NotYet(
            f"your tests caught {caught} of {len(CLIENT_MUTANTS)} broken protocols",
            expected="at least one failing test on every broken protocol",
            got="all passed on a protocol that " + "; and on one that ".join(survivors),
            hint=_client_hint(survivors[0]),
        )
    return (
        f"{real.testsRun} tests pass on PoetryProtocol, and every one of the "
        f"{caught} broken protocols fails at least one of them."
    )


def _client_hint(bug: str) -> str:
    hints = {
        "keeps only the first chunk": "feed the poem in two or more dataReceived calls, "
        "then check the Download's text is all of it.",
        "reports success when the connection is lost halfway": "call connectionLost("
        "Failure(ConnectionLost())) and check self.failureResultOf(protocol.finished, "
        "ConnectionLost).",
        "never fires when the connection is lost halfway": "after connectionLost("
        "Failure(ConnectionLost())), failureResultOf fails if finished has not fired.",
        "does not close the connection when finished is cancelled": "call "
        "protocol.finished.cancel(), then check transport.disconnected (a StringTransport "
        "sets it when abortConnection is called).",
    }
    return hints[bug]
