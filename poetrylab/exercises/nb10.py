"""Checks for notebook 10 (limiting concurrency).

Both checks run the learner's function in the reactor thread against three real slow
servers on loopback, started through the notebook runtime under names of their own
(``nb10-check-...``) and stopped again before the check returns. Each server sends its
poem at its own pace, so downloads finish in another order than they started. The
``fetch`` a check hands over downloads with the Deferred client and fires with the
poem's text; it counts the downloads in flight (from the call until its Deferred fires),
in all and per server, and the check measures the most that were ever in flight at once:

* :func:`check_polite` — the learner's ``fetch_all_polite(fetch, addresses,
  per_server)``: every address downloaded, at most ``per_server`` at once from any one
  server, every server busy at once, the poems in the order of the addresses.
* :func:`check_crawl` — the learner's ``crawl(fetch, names, n)``: ``names`` is a stream
  (an iterator with no ``len``, read once); at most ``n`` downloads at once, a name
  taken only when a download is free to start, the poems in the order of the names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from poetrylab import runtime
from poetrylab._typing import TimeTCPReactor
from poetrylab.clients.deferred import get_poetry
from poetrylab.corpus import load_poem
from poetrylab.download import Address, Download
from poetrylab.exercises._deferreds import Outcome, expect_deferred
from poetrylab.exercises._feedback import one_line, short
from poetrylab.exercises._learner import RUN_IT_ALONE
from poetrylab.exercises._registry import NotYet, exercise, function

__all__ = ["SERVERS", "NameStream", "check_crawl", "check_polite"]

SERVERS: dict[str, tuple[float, int]] = {
    "hope": (0.015, 100),  # 376 bytes in 4 chunks: 45 ms
    "nachtlied": (0.01, 50),  # 143 bytes in 3 chunks: 20 ms
    "furuike": (0.01, 100),  # 77 bytes in 1 chunk: at once
}
"""The check's servers: poem name -> (delay, num_bytes). The slowest comes first."""

_R = TypeVar("_R")
_PATIENCE = 2.5  # seconds for the learner's Deferred to fire (every case needs < 0.2 s)
_WAIT = 5.0  # the reactor-side timeout of one download


class _Meter:
    """The check's ``fetch``, and what it saw: downloads in flight, in all and per server.

    Reactor thread only.
    """

    def __init__(self, reactor: TimeTCPReactor, addresses: dict[str, Address]) -> None:
        self.reactor = reactor
        self.addresses = addresses  # poem name -> its server's address
        self.poems = {a: name for name, a in addresses.items()}  # address -> poem name
        self.in_flight = 0
        self.peak = 0
        self.per_server: dict[str, int] = dict.fromkeys(addresses, 0)
        self.peak_per_server: dict[str, int] = dict.fromkeys(addresses, 0)
        self.calls = 0
        self.finished = 0
        self.strays: list[object] = []  # what fetch was called with that is no address

    def fetch_address(self, address: object) -> Deferred[str]:
        """Download from ``address`` (one of the check's servers); fire with the text."""
        name = self.poems.get(address) if isinstance(address, Address) else None
        if name is None:
            self.strays.append(address)
            return fail(ValueError(f"fetch was called with {short(address)}, not an address"))
        return self._fetch(name)

    def fetch_name(self, name: object) -> Deferred[str]:
        """Download the poem called ``name`` from the check's server for it."""
        if not isinstance(name, str) or name not in self.addresses:
            self.strays.append(name)
            return fail(KeyError(name))
        return self._fetch(name)

    def _fetch(self, name: str) -> Deferred[str]:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.per_server[name] += 1
        self.peak_per_server[name] = max(self.peak_per_server[name], self.per_server[name])

        def text_of(download: Download) -> str:
            return download.text

        def counted(result: _R) -> _R:
            self.in_flight -= 1
            self.per_server[name] -= 1
            self.finished += 1
            return result

        d = get_poetry(self.reactor, self.addresses[name], _WAIT)
        d.addBoth(counted)
        return d.addCallback(text_of)


class NameStream(Iterator[str]):
    """The names :func:`check_crawl` hands over: one at a time, like a crawler's stream of
    links. An iterator with no ``len()`` that can be read once; it counts how many names
    were taken and, at each, how many downloads had started and not finished. Reactor
    thread only."""

    def __init__(self, names: Sequence[str], meter: _Meter) -> None:
        self._names = list(names)
        self._meter = meter
        self.taken = 0
        self.most_ahead = 0  # names taken, minus downloads finished, at worst

    def __iter__(self) -> NameStream:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self._names):
            raise StopIteration
        name = self._names[self.taken]
        self.taken += 1
        self.most_ahead = max(self.most_ahead, self.taken - self._meter.finished)
        return name

    def __repr__(self) -> str:
        return "<a stream of names>"


@dataclass
class _Run:
    """What one run of the learner's function did (filled in the reactor thread)."""

    returned: object = None
    error: str = ""  # the learner's function raised this
    outcome: Outcome = field(default_factory=lambda: Outcome("unfired"))
    taken_at_return: int = 0


def _run(
    fn: Callable[..., object], args: tuple[Any, ...], stream: NameStream | None, meter: _Meter
) -> Deferred[_Run]:
    """Reactor thread: call ``fn(*args)``; fire with a :class:`_Run` once the Deferred it
    returned has fired, or after :data:`_PATIENCE` seconds (it is left as it is)."""
    run = _Run()
    done: Deferred[_Run] = Deferred()
    try:
        run.returned = fn(*args)
    except Exception as exc:
        run.error = one_line(exc)
        return succeed(run)
    run.taken_at_return = stream.taken if stream is not None else 0
    returned = run.returned
    if not isinstance(returned, Deferred):
        return succeed(run)

    def fired(result: object) -> None:  # the result is consumed: nothing is left unhandled
        if not done.called:
            failed = isinstance(result, Failure)
            run.outcome = Outcome("failure", result) if failed else Outcome("value", result)
            timer.cancel()
            done.callback(run)

    def gave_up() -> None:
        # Not cancelled: cancelling would fail the learner's waiting Deferreds, and those
        # nobody handles would be reported in some later cell, when they are collected.
        done.callback(run)  # still unfired

    timer = meter.reactor.callLater(_PATIENCE, gave_up)
    returned.addBoth(fired)
    return done


# -- the servers and the verdicts ----------------------------------------------------------


def _serve() -> tuple[TimeTCPReactor, list[runtime.ServerHandle], dict[str, Address]]:
    """Start the check's servers; return the reactor, the servers and each poem's address."""
    reactor = runtime.start().reactor
    servers = [
        runtime.serve("slow", poem, delay=delay, num_bytes=num_bytes, name=f"nb10-check-{poem}")
        for poem, (delay, num_bytes) in SERVERS.items()
    ]
    return reactor, servers, {poem: s.address for poem, s in zip(SERVERS, servers, strict=True)}


def _judge_outcome(call: str, run: _Run, hint_for_none: str) -> Any:
    """The value the learner's Deferred fired with; NotYet for anything else."""
    if run.error:
        raise NotYet(
            f"{call} raised an error",
            expected="a Deferred",
            got=run.error,
            hint=RUN_IT_ALONE,
        )
    expect_deferred(
        run.returned,
        f"{call} should return a Deferred",
        expected="a Deferred that fires with the poems",
        hint=hint_for_none,
    )
    if run.outcome.kind == "unfired":
        raise NotYet(
            f"the Deferred from {call} never fired",
            expected="it fires once the last poem is in",
            got=f"nothing after {_PATIENCE:g} s",
            hint="is a token of a DeferredSemaphore never released? sem.run(f, ...) releases "
            "it when f's Deferred fires; with acquire() you must call release() yourself, "
            "on success and on failure.",
        )
    if run.outcome.kind == "failure":
        raise NotYet(
            f"the Deferred from {call} failed",
            expected="it fires with the poems",
            got=str(run.outcome),
            hint="every download succeeds in this check: look for the error in your own "
            "callbacks (run your function in a cell of its own).",
        )
    return run.outcome.result


def _judge_strays(meter: _Meter, of: str) -> None:
    """Raise NotYet if fetch was called with something that is none of the ``of``."""
    if meter.strays:
        raise NotYet(
            f"fetch was called with something that is not one of the {of}",
            expected=f"fetch(x) for each x of the {of}",
            got=f"fetch({short(meter.strays[0])})",
            hint=f"hand fetch the {of} themselves, one at a time.",
        )


def _judge_poems(call: str, got: object, names: Sequence[str], of: str) -> None:
    """Raise NotYet unless ``got`` is the texts of the poems ``names``, in that order."""
    texts = {name: load_poem(name).text for name in SERVERS}
    expected = [texts[name] for name in names]
    if not isinstance(got, list | tuple):
        raise NotYet(
            f"{call} should fire with a list of poems",
            expected=f"a list of {len(names)} poems (str)",
            got=short(got),
            hint="gatherResults(...) fires with the list of its members' results, in order.",
        )
    names_of = {text: name for name, text in texts.items()}
    said = [names_of.get(item, short(item, 30)) if isinstance(item, str) else short(item, 30)
            for item in got]  # fmt: skip
    if len(got) != len(expected) or sorted(said) != sorted(names):
        raise NotYet(
            f"{call} fired with other poems than it was asked for",
            expected=f"{len(names)} poems: {', '.join(names)}",
            got=f"{len(got)}: {', '.join(map(str, said))}" if got else "an empty list",
            hint=f"one download per item of the {of}, and each poem once.",
        )
    if list(got) != expected:
        raise NotYet(
            f"the poems are not in the order of the {of}",
            expected=", ".join(names),
            got=", ".join(map(str, said)),
            hint="the poems finish in any order (each server has its own pace): put each "
            f"one in its place, in the order of the {of}, not in the order they finished.",
        )


# -- exercise 1: at most per_server at once at each server -----------------------------------

_POLITE_CASES: list[tuple[list[str], int]] = [
    (["hope"] * 4 + ["nachtlied"] * 4 + ["furuike"] * 4, 2),
    (["hope", "furuike", "hope", "furuike"], 1),
]


@exercise("10", function("fetch_all_polite(fetch, addresses, per_server)"),
          title="polite to every server")  # fmt: skip
def check_polite(fetch_all_polite: Callable[..., object]) -> str:
    """Run ``fetch_all_polite(fetch, addresses, per_server)`` twice on the check's three
    servers; measure the downloads in flight at each server and in all."""
    reactor, servers, addresses = _serve()
    try:
        for poems, per_server in _POLITE_CASES:
            meter = _Meter(reactor, addresses)
            call = f"fetch_all_polite(fetch, addresses, {per_server})"
            args = (meter.fetch_address, [addresses[poem] for poem in poems], per_server)
            run = runtime.call(_run, fetch_all_polite, args, None, meter, timeout=_PATIENCE + 5)
            _judge_strays(meter, "addresses")
            got = _judge_outcome(
                call, run, "gatherResults([...]) of the downloads is the Deferred to return."
            )
            _judge_polite(call, meter, poems, per_server)
            _judge_poems(call, got, poems, "addresses")
    finally:
        for server in servers:
            server.stop()
    return (
        "never more downloads at one server than it allows, every server busy at once, "
        "and the poems in the order of the addresses."
    )


def _judge_polite(call: str, meter: _Meter, poems: list[str], per_server: int) -> None:
    busiest = max(meter.peak_per_server, key=lambda name: meter.peak_per_server[name])
    most = meter.peak_per_server[busiest]
    if most > per_server:
        raise NotYet(
            f"with {call}, one server had {most} downloads at once",
            expected=f"at most {per_server} at once at each server",
            got=f"{most} at once at the {busiest!r} server",
            hint="one limit for all the servers does not stop them from piling up at one "
            "server: give every server a DeferredSemaphore(per_server) of its own (a dict "
            "keyed by address).",
        )
    servers = len(set(poems))
    if meter.peak < per_server * servers:
        raise NotYet(
            f"with {call}, never more than {meter.peak} download"
            f"{'' if meter.peak == 1 else 's'} at once in all",
            expected=f"{per_server} at each of the {servers} servers: {per_server * servers} "
            "at once",
            got=f"at most {meter.peak} at once",
            hint="the limit is per server: while one server is busy, the others may be "
            "downloaded from. One DeferredSemaphore for everything makes the others wait.",
        )


# -- exercise 2: a crawler that takes names from a stream -----------------------------------

_CRAWL_CASES: list[tuple[list[str], int]] = [
    (["hope", "nachtlied", "furuike"] * 4, 3),
    (["nachtlied", "hope", "furuike", "hope"], 1),
]


@exercise("10", function("crawl(fetch, names, n)"), title="a crawler on a stream of names")
def check_crawl(crawl: Callable[..., object]) -> str:
    """Run ``crawl(fetch, names, n)`` twice on a stream of names; measure the downloads in
    flight and how far ahead of the downloads the names were taken."""
    reactor, servers, addresses = _serve()
    try:
        for poems, n in _CRAWL_CASES:
            meter = _Meter(reactor, addresses)
            stream = NameStream(poems, meter)
            call = f"crawl(fetch, names, {n})"
            args = (meter.fetch_name, stream, n)
            run = runtime.call(_run, crawl, args, stream, meter, timeout=_PATIENCE + 5)
            _judge_taking(call, run, stream, len(poems), n)
            _judge_strays(meter, "names")
            got = _judge_outcome(
                call,
                run,
                "return the Deferred that fires when every worker is done, with the poems.",
            )
            _judge_crawl(call, meter, stream, len(poems), n)
            _judge_poems(call, got, poems, "names")
    finally:
        for server in servers:
            server.stop()
    return (
        "at most n downloads at once, each name taken only when a download could start "
        "(so a stream of a million names costs no more than n), and the poems in order."
    )


def _judge_taking(call: str, run: _Run, stream: NameStream, total: int, n: int) -> None:
    """Names must be taken lazily: no more than ``n`` when crawl returns."""
    if run.error and "len()" in run.error:
        raise NotYet(
            f"{call} raised an error",
            expected="names read one at a time",
            got=run.error,
            hint="names is a stream (an iterator): it has no len() and can be read only "
            "once. Take names with next(names) or a for loop.",
        )
    if run.taken_at_return > n:
        raise NotYet(
            f"{call} took {run.taken_at_return} names before it returned",
            expected=f"at most {n} taken as crawl returns: one per download that can start",
            got=f"{run.taken_at_return} of the {total} names taken at once",
            hint="a list (or a loop that calls sem.run for every name) reads the whole "
            "stream at once: with a million links, a million waiting Deferreds. Take the "
            "next name only when a download is over: n workers over one generator, with "
            "task.Cooperator().coiterate.",
        )


def _judge_crawl(call: str, meter: _Meter, stream: NameStream, total: int, n: int) -> None:
    if meter.peak > n:
        raise NotYet(
            f"{call} ran {meter.peak} downloads at once",
            expected=f"at most {n} at once",
            got=f"{meter.peak} at once",
            hint="each of the n workers must wait for its download before it takes the next "
            "name: yield the download's Deferred from the generator.",
        )
    if stream.most_ahead > n:
        raise NotYet(
            f"{call} took names before a download was free for them",
            expected=f"at most {n} names taken and not yet downloaded",
            got=f"{stream.most_ahead} at one moment",
            hint="take the next name only when one of the n downloads is over.",
        )
    if stream.taken < total:
        raise NotYet(
            f"{call} stopped before the end of the stream",
            expected=f"all {total} names taken",
            got=f"{stream.taken} taken",
            hint="keep going until the stream is exhausted (a for loop over names does it).",
        )
    if meter.peak < min(n, total):
        raise NotYet(
            f"{call} never ran more than {meter.peak} download"
            f"{'' if meter.peak == 1 else 's'} at once",
            expected=f"{n} at once",
            got=f"at most {meter.peak} at once",
            hint="start n workers over ONE shared generator: coiterate it n times.",
        )
