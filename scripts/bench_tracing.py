"""Benchmark the Deferred tracer: what tracing costs, how fast a trace draws, and that
tracing off leaves nothing behind.

    .venv/bin/python scripts/bench_tracing.py [--stages 10000] [--repeat 7]

Prints a table and exits non-zero when a target is missed:

- (a) a chain of 10,000 callbacks, built and fired, traced vs untraced: at most 5x
  (building the plain-data Trace afterwards is timed separately);
- (b) drawing a 200-event trace (diagram and timeline, SVG): under 1 s each;
- (c) after a trace, every attribute of Deferred / DeferredList / twisted.internet.defer
  is the very same object as before, and the untraced chain costs what it did before.

Costs are CPU seconds of this process (``time.process_time``), best of ``--repeat`` runs,
so other work on a shared machine does not distort them; wall-clock times are shown too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred, DeferredList

from poetrylab.tracing import Trace, Tracer


def increment(x: int) -> int:
    return x + 1


def chain(stages: int) -> Deferred[int]:
    d: Deferred[int] = Deferred()
    for _ in range(stages):
        d.addCallback(increment)
    d.callback(0)
    return d


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, float]:
    """The least CPU time and the least wall time of ``repeat`` runs, in seconds."""
    cpu = wall = float("inf")
    for _ in range(repeat):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        run()
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start_wall)
    return cpu, wall


def traced_chain(stages: int) -> None:
    with Tracer():
        chain(stages)


def snapshot() -> dict[tuple[str, str], int]:
    """The identity of every attribute the tracer may patch."""
    out = {}
    for owner, name in (
        [(Deferred, n) for n in vars(Deferred)]
        + [(DeferredList, n) for n in vars(DeferredList)]
        + [(defer, n) for n in vars(defer)]
    ):
        out[(getattr(owner, "__name__", "?"), name)] = id(vars(owner)[name])
    return out


def two_hundred_events() -> Trace:
    """Exactly 200 events of the usual kinds: chains that fail and recover, a pause on an
    inner Deferred, DeferredLists meeting, an inlineCallbacks generator."""

    @defer.inlineCallbacks
    def fetch(d: Deferred[int]):  # type: ignore[no-untyped-def]
        value = yield d
        return value * 2

    with Tracer() as t:
        while len(t.snapshot().events) < 200:
            members = []
            for i in range(3):
                d: Deferred[Any] = Deferred()
                d.addCallback(increment)
                if i == 1:
                    d.addCallback(lambda x: 1 / 0)
                    d.addErrback(lambda f: -1)
                members.append(d)
            joined = DeferredList(members, consumeErrors=True)
            joined.addCallback(lambda results: [r for _, r in results])
            inner: Deferred[Any] = Deferred()
            joined.addCallback(lambda _, inner=inner: inner)
            joined.addCallback(len)
            waiting: Deferred[int] = Deferred()
            fetched = fetch(waiting)
            fetched.addCallback(increment)
            for i, d in enumerate(members):
                d.callback(i)
            inner.callback([1, 2, 3])
            waiting.callback(20)
    whole = t.snapshot()
    return whole.until(whole.events[199].seq)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    before = snapshot()
    # alternate the two, so a busy moment on the machine hits both alike
    untraced = untraced_wall = traced = traced_wall = float("inf")
    for _ in range(args.repeat):
        cpu, wall = best_of(1, lambda: chain(args.stages))
        untraced, untraced_wall = min(untraced, cpu), min(untraced_wall, wall)
        cpu, wall = best_of(1, lambda: traced_chain(args.stages))
        traced, traced_wall = min(traced, cpu), min(traced_wall, wall)
    after = snapshot()
    again, again_wall = best_of(args.repeat, lambda: chain(args.stages))
    changed = sorted(
        f"{owner}.{name}"
        for owner, name in before
        if before[owner, name] != after.get((owner, name))
    )
    changed += sorted(f"{owner}.{name}" for owner, name in after if (owner, name) not in before)

    recorded = Tracer()
    with recorded:
        chain(args.stages)
    build, build_wall = best_of(1, recorded.snapshot)

    trace = two_hundred_events()
    trace.diagram().svg()  # load fonts and caches once, as a notebook's first picture does
    draw, draw_wall = best_of(3, lambda: trace.diagram().svg())
    line, line_wall = best_of(3, lambda: trace.timeline().svg())
    ratio = traced / untraced
    drift = again / untraced

    def ms(cpu: float, wall: float) -> str:
        return f"{cpu * 1e3:8.1f} ms  {wall * 1e3:8.1f} ms"

    n = f"{args.stages:,}"
    events = len(trace.events)
    rows = [
        (f"(a) {n} callbacks, untraced", ms(untraced, untraced_wall), ""),
        (f"(a) {n} callbacks, traced", ms(traced, traced_wall), f"{ratio:.2f}x  (target <= 5x)"),
        (
            f"(a) then building its Trace ({2 * args.stages + 2:,} events)",
            ms(build, build_wall),
            "once, when first shown",
        ),
        (f"(b) diagram of {events} events, SVG", ms(draw, draw_wall), "target < 1000 ms"),
        (f"(b) timeline of {events} events, SVG", ms(line, line_wall), "target < 1000 ms"),
        ("(c) attributes changed by tracing", f"{len(changed):8d}", ", ".join(changed) or "none"),
        ("(c) untraced chain after tracing", ms(again, again_wall), f"{drift:.2f}x before"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'CPU':>11}  {'wall':>11}  note")
    print("-" * (width + 50))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>24}  {note}")
    ok = ratio <= 5 and max(draw, draw_wall) < 1 and max(line, line_wall) < 1 and not changed
    ok = ok and drift < 1.5
    print("\nall targets met" if ok else "\nTARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
