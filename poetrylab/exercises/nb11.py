"""Checks for notebook 11 (threads and the reactor).

Both checks run the learner's code against the notebook runtime's reactor, with no
server, and judge *which thread* ran what, which does not depend on how busy the machine
is; one timing, the reactor's heartbeat, backs that up with a generous margin:

* :func:`check_fingerprint_all` — the learner's ``fingerprint_all(poems, fingerprint)``,
  called in the reactor thread with a heartbeat going (a ``LoopingCall`` every 20 ms).
  The check's ``fingerprint`` blocks for :data:`FINGERPRINT_SECONDS` and notes the thread
  that called it, and whether the reactor thread was meanwhile still inside the
  learner's function (waiting for it). Every call must run outside the reactor thread,
  the reactor must stay free, and the Deferred must fire in the reactor thread with the
  fingerprints in order.
* :func:`check_count_words` — the learner's ``count_words(reactor, lines, report)``, run
  in a worker thread with ``deferToThreadPool``. The ``reactor`` it gets passes
  ``callFromThread`` on and refuses (and notes) every other method called from a thread
  that is not the reactor's; ``report`` notes the thread it runs in. Every report must
  run in the reactor thread, one per line, in order, with the running word count.

The checks hand work to the reactor with ``callFromThread`` and wait for it themselves,
not with ``runtime.call``: an answer that blocks the reactor (the starter does) would make
the runtime's watchdog write a warning into the exercise cell, whose stored output must be
the verdict alone.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from poetrylab import runtime
from poetrylab._typing import ReactorThreadPool, ReactorThreads, ReactorTime
from poetrylab.corpus import load_poem
from poetrylab.exercises._deferreds import Outcome, expect_deferred
from poetrylab.exercises._feedback import one_line, short
from poetrylab.exercises._registry import NotYet, exercise, function

__all__ = [
    "FINGERPRINT_SECONDS",
    "POEMS",
    "check_count_words",
    "check_fingerprint_all",
    "fingerprint_of",
]

POEMS = ("furuike", "nachtlied", "hope")
"""The poems :func:`check_fingerprint_all` hands over (their bytes), in this order."""

FINGERPRINT_SECONDS = 0.25
"""How long the check's ``fingerprint`` blocks, like a real one computing."""

_BEAT = 0.02  # seconds between two heartbeats
_STOOD_STILL = 0.3  # a heartbeat pause this long means the reactor was blocked
_PATIENCE = 5.0  # seconds for the learner's work to finish (every right answer: < 1 s)
_LOOK_EVERY = 0.05  # seconds between two looks at what the reactor thread is doing
_WORDS_FROM = "sonnet18"

_T = TypeVar("_T")


def fingerprint_of(poem: bytes) -> str:
    """What the check's ``fingerprint`` returns for ``poem`` (a short SHA-256 in hex)."""
    return hashlib.sha256(poem).hexdigest()[:12]


def _in_reactor(reactor: ReactorThreads, fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)`` in the reactor thread and return what it returns (or raise what it
    raised); NotYet when the reactor thread has not run it within :data:`_PATIENCE` s."""
    box: list[tuple[bool, Any]] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:  # handed to the waiting thread, raised there
            box.append((False, exc))
        done.set()

    reactor.callFromThread(run)
    if not done.wait(_PATIENCE):
        raise NotYet(
            "the reactor thread did not get to the check",
            expected="the reactor thread free within a few seconds",
            got=f"still busy after {_PATIENCE:g} s",
            hint="is a function still blocking the reactor thread? Wait for it to return, "
            "then run the check again.",
        )
    ok, result = box[0]
    if not ok:
        raise result
    value: _T = result
    return value


class _Heartbeat:
    """A LoopingCall noting the time every :data:`_BEAT` s. Reactor thread only."""

    def __init__(self, reactor: ReactorTime) -> None:
        self.beats: list[float] = []
        self.loop = LoopingCall(lambda: self.beats.append(time.perf_counter()))
        self.loop.clock = reactor  # type: ignore[assignment]  # a zope interface; ours mirrors it

    def start(self) -> None:
        self.loop.start(_BEAT, now=True)

    def stop(self) -> float:
        """Stop beating; return the longest pause between two beats, in seconds."""
        if self.loop.running:
            self.loop.stop()
        self.beats.append(time.perf_counter())
        return max((b - a for a, b in pairwise(self.beats)), default=0.0)


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _codes_of(fn: object) -> frozenset[types.CodeType]:
    """The code of ``fn`` and of every function or lambda written inside it."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return frozenset(_code_objects(code)) if isinstance(code, types.CodeType) else frozenset()


def _running_in(thread: int, codes: frozenset[types.CodeType]) -> bool:
    """Whether the thread ``thread`` is running (or waiting inside) any of ``codes`` now."""
    frame = sys._current_frames().get(thread)
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


_NOT_THE_LEARNERS = tuple(
    {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(__file__))}
)


def _in_learner_code(thread: int, codes: frozenset[types.CodeType]) -> bool:
    """Whether ``thread`` is inside the learner's code now: one of ``codes``, or any code
    from a file outside Python, the installed libraries and poetrylab (a notebook cell)."""
    frame = sys._current_frames().get(thread)
    while frame is not None:
        code = frame.f_code
        name = code.co_filename
        if code in codes or not (name.startswith(_NOT_THE_LEARNERS) or name.startswith("<")):
            return True
        frame = frame.f_back
    return False


# -- exercise 1: fingerprints in the thread pool -------------------------------------------


@dataclass
class _Fingerprinting:
    """What one run of the learner's ``fingerprint_all`` did (filled in as it happens)."""

    reactor_thread: int
    learner: frozenset[types.CodeType]
    heart: _Heartbeat
    lock: threading.Lock = field(default_factory=threading.Lock)
    called_in: list[int] = field(default_factory=list)  # the thread of each fingerprint call
    reactor_waited: bool = False  # the reactor thread was inside the learner's code meanwhile
    error: str = ""
    returned: object = None
    outcome: Outcome = field(default_factory=lambda: Outcome("unfired"))
    fired_in: int | None = None
    settled: threading.Event = field(default_factory=threading.Event)

    def fingerprint(self, poem: bytes) -> str:
        """The check's fingerprint: blocks, and notes where it ran and what the reactor did."""
        thread = threading.get_ident()
        with self.lock:
            self.called_in.append(thread)
        time.sleep(FINGERPRINT_SECONDS / 2)
        if thread != self.reactor_thread and _running_in(self.reactor_thread, self.learner):
            self.reactor_waited = True
        time.sleep(FINGERPRINT_SECONDS / 2)
        return fingerprint_of(poem) if isinstance(poem, bytes) else short(poem, 20)

    def fired(self, result: object) -> None:
        """The learner's Deferred fired: note with what and in which thread (consumed)."""
        self.fired_in = threading.get_ident()
        failed = isinstance(result, Failure)
        self.outcome = Outcome("failure", result) if failed else Outcome("value", result)
        self.settled.set()


def _start_fingerprinting(
    reactor: ReactorTime, fingerprint_all: Callable[..., object], poems: list[bytes]
) -> _Fingerprinting:
    """Reactor thread: start the heartbeat, then call the learner's function."""
    heart = _Heartbeat(reactor)
    run = _Fingerprinting(threading.get_ident(), _codes_of(fingerprint_all), heart)
    heart.start()
    try:
        run.returned = fingerprint_all(poems, run.fingerprint)
    except Exception as exc:
        run.error = one_line(exc)
        run.settled.set()
        return run
    if isinstance(run.returned, Deferred):
        run.returned.addBoth(run.fired)
    else:
        run.settled.set()
    return run


@exercise(
    "11",
    function("fingerprint_all(poems, fingerprint)"),
    title="fingerprint every poem, off the reactor",
)
def check_fingerprint_all(fingerprint_all: Callable[..., object]) -> str:
    """Run ``fingerprint_all(poems, fingerprint)`` in the reactor thread with a heartbeat.

    Passes when every ``fingerprint`` call ran outside the reactor thread while the
    reactor thread was free (never seen inside the learner's code while the work went on,
    checked every :data:`_LOOK_EVERY` s, nor its heartbeat standing still for
    :data:`_STOOD_STILL` s with the reactor thread seen there), and the returned Deferred
    fired in the reactor thread with ``[fingerprint(p) for p in poems]``. Judged by what
    the reactor thread was doing, not by the clock alone, so a loaded machine gives the
    same verdict.
    """
    reactor = runtime.start().reactor
    poems = [load_poem(name).data for name in POEMS]
    run = _in_reactor(reactor, _start_fingerprinting, reactor, fingerprint_all, poems)
    # While the work goes on, look at what the reactor thread is doing: a learner's code
    # that blocks it is seen there, whatever the machine's load does to the heartbeat.
    seen_blocking = 0
    deadline = time.monotonic() + _PATIENCE
    while not run.settled.wait(_LOOK_EVERY) and time.monotonic() < deadline:
        seen_blocking += _in_learner_code(run.reactor_thread, run.learner)
    longest_pause = _in_reactor(reactor, run.heart.stop)
    call = "fingerprint_all(poems, fingerprint)"
    if run.error:
        raise NotYet(
            f"{call} raised an error",
            expected="a Deferred that fires with the fingerprints",
            got=run.error,
            hint="run it in a cell of its own to see the whole error",
        )
    in_reactor = run.called_in.count(run.reactor_thread)
    if in_reactor:
        raise NotYet(
            "fingerprint ran in the reactor thread: while it computed, nothing else ran",
            expected="every fingerprint(poem) in a thread of the reactor's pool",
            got=f"{in_reactor} of {len(run.called_in)} calls in the reactor thread",
            hint="hand fingerprint itself and its argument over: "
            "threads.deferToThread(fingerprint, poem) calls it in a thread. "
            "deferToThread(fingerprint(poem)) would call it here first.",
        )
    if run.reactor_waited:
        raise NotYet(
            "the reactor thread waited inside fingerprint_all while the threads worked",
            expected="fingerprint_all returns at once, with a Deferred",
            got="it returned only after the fingerprints were done",
            hint="do not wait for a thread (join, a queue, an Event) in the reactor thread: "
            "deferToThread gives you a Deferred that fires when the thread is done.",
        )
    # A late heartbeat alone may be the machine's load: it counts when the reactor thread
    # was also seen in the learner's code, or was seen there again and again.
    if seen_blocking >= 2 or (longest_pause >= _STOOD_STILL and seen_blocking):
        raise NotYet(
            "the reactor's heartbeat stood still while the poems were fingerprinted",
            expected=f"a beat every {_BEAT:g} s all along",
            got=f"no beat for over {_STOOD_STILL:g} s",
            hint="something in fingerprint_all or its callbacks blocks the reactor thread: "
            "only hand work to threads there, never wait for it.",
        )
    expect_deferred(
        run.returned,
        f"{call} should return a Deferred",
        expected="a Deferred that fires with the fingerprints",
        hint="reactor.callInThread gives no result back; threads.deferToThread "
        "returns a Deferred that fires with the function's result.",
    )
    if run.outcome.kind == "unfired":
        raise NotYet(
            f"the Deferred from {call} never fired",
            expected="it fires once every fingerprint is done",
            got=f"nothing after {_PATIENCE:g} s",
            hint="return the Deferred that deferToThread (or gatherResults over several "
            "of them) gives you.",
        )
    if run.fired_in != run.reactor_thread:
        raise NotYet(
            "your Deferred fired in a worker thread, so its callbacks ran there",
            expected="it fires in the reactor thread",
            got="it fired in another thread",
            hint="a worker must not fire a Deferred: deferToThread fires its Deferred in "
            "the reactor thread for you.",
        )
    expected = [fingerprint_of(poem) for poem in poems]
    got = run.outcome.result
    if run.outcome.kind == "failure" or got != expected:
        raise NotYet(
            f"{call} fired with something else than the fingerprints in order",
            expected=f"a list of {len(expected)} fingerprints, one per poem, in order",
            got=str(run.outcome),
            hint="gatherResults([...]) over one deferToThread per poem fires with their "
            "results in the order of the list.",
        )
    return (
        "every fingerprint ran in a thread of the pool while the reactor's heartbeat went "
        "on, and the fingerprints came back in order, in the reactor thread."
    )


# -- exercise 2: progress from a worker thread ---------------------------------------------


class _WatchedReactor:
    """The reactor handed to ``count_words``: ``callFromThread`` is passed on; any other
    method, called from a thread that is not the reactor's, is noted and not run (it is not
    thread-safe). Thread-safe itself."""

    def __init__(self, reactor: ReactorThreads, reactor_thread: int) -> None:
        self._reactor = reactor
        self._reactor_thread = reactor_thread
        self.misused: list[str] = []

    def callFromThread(self, f: Callable[..., object], *args: object, **kwargs: object) -> None:
        self._reactor.callFromThread(f, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._reactor, name)
        if not callable(attribute):
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._reactor_thread:
                self.misused.append(name)
                return None
            return attribute(*args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return "<the reactor>"


@dataclass
class _Counting:
    """What one run of the learner's ``count_words`` did."""

    reactor_thread: int
    reactor: _WatchedReactor
    reports: list[tuple[int, tuple[Any, ...]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: str = ""
    returned: object = None
    settled: threading.Event = field(default_factory=threading.Event)

    def report(self, *args: Any, **kwargs: Any) -> None:
        """The check's ``report``: notes its arguments and the thread it ran in."""
        with self.lock:
            self.reports.append((threading.get_ident(), args + tuple(kwargs.values())))

    def finished(self, outcome: tuple[bool, object]) -> None:
        """Reactor thread: the worker is done (after every report queued before it)."""
        ok, result = outcome
        if ok:
            self.returned = result
        else:
            self.error = str(result)
        self.settled.set()


def _call_in_worker(fn: Callable[..., object], *args: Any) -> tuple[bool, object]:
    try:
        return True, fn(*args)
    except Exception as exc:
        return False, one_line(exc)


def _start_counting(
    reactor: ReactorThreadPool, count_words: Callable[..., object], lines: list[str]
) -> _Counting:
    """Reactor thread: run the learner's ``count_words`` in a thread of the reactor's pool."""
    here = threading.get_ident()
    watched = _WatchedReactor(reactor, here)  # type: ignore[arg-type]  # the same reactor
    run = _Counting(here, watched)
    d: Deferred[tuple[bool, object]] = deferToThreadPool(
        reactor,  # type: ignore[arg-type]  # a zope interface; ours mirrors it
        reactor.getThreadPool(),
        _call_in_worker,
        count_words,
        watched,
        lines,
        run.report,
    )
    d.addCallback(run.finished)
    return run


@exercise(
    "11", function("count_words(reactor, lines, report)"), title="report progress from a worker"
)
def check_count_words(count_words: Callable[..., object]) -> str:
    """Run ``count_words(reactor, lines, report)`` in a worker thread of the reactor's pool.

    Passes when it returns the number of words in ``lines``, called nothing on the
    reactor from the worker but ``callFromThread``, and every ``report(done, words)`` ran
    in the reactor thread, once per line, in order, with the running word count.
    """
    reactor = runtime.start().reactor
    lines = load_poem(_WORDS_FROM).text.splitlines()
    run = _in_reactor(reactor, _start_counting, reactor, count_words, lines)
    if not run.settled.wait(_PATIENCE):
        raise NotYet(
            "count_words did not return",
            expected="it returns once every line is counted",
            got=f"still running after {_PATIENCE:g} s",
            hint="does it wait for something that never comes? In a worker, "
            "reactor.callFromThread(report, done, words) returns at once.",
        )
    _in_reactor(reactor, lambda: None)  # let anything queued before this run first
    call = "count_words(reactor, lines, report)"
    if run.error:
        raise NotYet(
            f"{call} raised an error",
            expected="the number of words, returned",
            got=run.error,
            hint="reactor.callFromThread takes the function and its arguments apart: "
            "reactor.callFromThread(report, done, words), not report(done, words) inside.",
        )
    if run.reactor.misused:
        name = run.reactor.misused[0]
        raise NotYet(
            f"count_words called reactor.{name} from its worker thread",
            expected="from a worker thread, only reactor.callFromThread",
            got=f"reactor.{name}(...), which is not thread-safe",
            hint=f"reactor.{name} may be called in the reactor thread only: from the "
            "worker, reactor.callFromThread(report, done, words) asks the reactor thread "
            "to call report.",
        )
    elsewhere = sum(1 for thread, _ in run.reports if thread != run.reactor_thread)
    if elsewhere:
        raise NotYet(
            "report ran in the worker thread, not in the reactor thread",
            expected="every report in the reactor thread",
            got=f"{elsewhere} of {len(run.reports)} reports in the worker thread",
            hint="a call in the worker runs in the worker: "
            "reactor.callFromThread(report, done, words) has the reactor thread call it.",
        )
    total = sum(len(line.split()) for line in lines)
    if run.returned != total:
        raise NotYet(
            "count_words returned another number than the words counted",
            expected=f"{total} words in {len(lines)} lines",
            got=short(run.returned),
            hint="add len(line.split()) for every line, and return the sum.",
        )
    expected: list[tuple[Any, ...]] = []
    words = 0
    for done, line in enumerate(lines, start=1):
        words += len(line.split())
        expected.append((done, words))
    reported = [args for _, args in run.reports]
    if len(reported) != len(expected):
        raise NotYet(
            "report was not called once per line",
            expected=f"{len(expected)} reports, one after each line",
            got=f"{len(reported)} report{'' if len(reported) == 1 else 's'}",
            hint="report after every line, inside the loop.",
        )
    for want, got in zip(expected, reported, strict=True):
        if tuple(got) != want:
            raise NotYet(
                "a report does not say how far the count has got",
                expected=f"report{want}: lines done, words so far",
                got=f"report{short(tuple(got), 40)}",
                hint="report(done, words) with the lines counted so far and the words in them.",
            )
    return (
        "the worker only counted, and every report ran in the reactor thread, one per "
        "line, in order, through reactor.callFromThread."
    )
