"""Benchmark the Deferred tracer: what tracing costs, how fast a trace draws, and that
tracing off leaves nothing behind.

    .venv/bin/python scripts/bench_tracing.py [--stages 10000] [--repeat 7]

Prints a table and exits non-zero when a target is missed:

- (a) a chain of 10,000 callbacks, built and fired, traced vs untraced: at most 5x;
- (b) drawing a 200-event trace (diagram and timeline, SVG): under 1 s each;
- (c) after a trace, every patched attribute of Deferred / DeferredList / defer is the
  very same object as before, and the untraced chain runs as fast as before tracing.

Timings are the best of ``--repeat`` runs (the least disturbed by other processes).
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


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


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
    """A realistic 200-odd-event trace: lists, inner Deferreds, failures, recoveries."""
    with Tracer() as t:
        for round_ in range(4):
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
            for i, d in enumerate(members):
                d.callback(round_ + i)
            inner.callback([1, 2, 3])
    return t.snapshot()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    before = snapshot()
    untraced = best_of(args.repeat, lambda: chain(args.stages))
    traced = best_of(args.repeat, lambda: traced_chain(args.stages))
    after = snapshot()
    untraced_after = best_of(args.repeat, lambda: chain(args.stages))
    changed = sorted(
        f"{owner}.{name}"
        for owner, name in before
        if before[owner, name] != after.get((owner, name))
    )
    changed += sorted(f"{owner}.{name}" for owner, name in after if (owner, name) not in before)

    trace = two_hundred_events()
    trace.diagram().svg()  # warm up fonts and caches once
    draw = best_of(3, lambda: trace.diagram().svg())
    line = best_of(3, lambda: trace.timeline().svg())
    ratio = traced / untraced
    drift = untraced_after / untraced

    rows = [
        (f"(a) {args.stages:,} callbacks, untraced", f"{untraced * 1e3:8.1f} ms", ""),
        (
            f"(a) {args.stages:,} callbacks, traced",
            f"{traced * 1e3:8.1f} ms",
            f"{ratio:.2f}x  (target <= 5x)",
        ),
        (
            f"(b) diagram of {len(trace.events)} events (SVG)",
            f"{draw * 1e3:8.1f} ms",
            "target < 1000 ms",
        ),
        (
            f"(b) timeline of {len(trace.events)} events (SVG)",
            f"{line * 1e3:8.1f} ms",
            "target < 1000 ms",
        ),
        (
            "(c) attributes changed after tracing",
            f"{len(changed):8d}",
            ", ".join(changed) or "none",
        ),
        (
            "(c) untraced chain after tracing",
            f"{untraced_after * 1e3:8.1f} ms",
            f"{drift:.2f}x the untraced run before",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>11}  note")
    print("-" * (width + 40))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>11}  {note}")
    ok = ratio <= 5 and draw < 1 and line < 1 and not changed and drift < 1.5
    print("\nall targets met" if ok else "\nTARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
