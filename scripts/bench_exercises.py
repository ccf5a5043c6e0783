"""How long every exercise check takes: on each notebook's starter, on the model solution
and the other right answers, and on each registered wrong answer.

    .venv/bin/python scripts/bench_exercises.py            # a table, slowest first
    .venv/bin/python scripts/bench_exercises.py --top 10

A notebook runs its checks on the starters when it is executed, and a learner waits for
each verdict: a check must answer a starter or a right answer within a second. A wrong
answer may take longer only where the check has to wait for something that never
happens (a Deferred nobody fires), and never longer than its own timeout allows.
Exits 1, naming the checks, when one is over its budget. Measures wall-clock time on
this machine: say the load average when you quote it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = {"starter": 1.0, "right": 1.0, "wrong": 3.5}
"""Seconds a check may take, by the kind of answer."""


def _measure(check: object, answer: object) -> float:
    started = time.perf_counter()
    check(answer)  # type: ignore[operator]
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=15, help="rows to show (default 15)")
    args = parser.parse_args(argv)

    from poetrylab import runtime

    runtime.start()
    sys.path.insert(0, str(ROOT / "tests"))
    cells = importlib.import_module("test_exercise_cells")  # reads the notebooks' starters
    from poetrylab.exercises import EXERCISES

    rows: list[tuple[float, str, str, str]] = []
    for key in cells.CHECKS:
        reg = EXERCISES[key]
        _, namespace = cells._starter(key)
        rows.append((_measure(reg.check, namespace[reg.answer.name]), "starter", key, ""))
        number, name = key.split(".")
        answers = importlib.import_module(f"poetrylab.exercises.solutions.{number}").SOLUTIONS[name]
        for kind, group in (
            ("right", [answers.solution, *answers.also_right]),
            ("wrong", answers.wrong),
        ):
            for answer in group:
                label = getattr(answer, "__name__", type(answer).__name__)
                rows.append((_measure(reg.check, answer), kind, key, label))
    rows.sort(reverse=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(rows)} verdicts in {sum(r[0] for r in rows):.1f} s (load average {load})")
    print(f"{'seconds':>8}  {'answer':7}  check")
    for seconds, kind, key, label in rows[: args.top]:
        print(f"{seconds:8.3f}  {kind:7}  {key} {label}")
    starters = [r for r in rows if r[1] == "starter"]
    print(f"starters: {sum(r[0] for r in starters):.2f} s for {len(starters)} checks")
    over = [r for r in rows if r[0] > BUDGETS[r[1]]]
    for seconds, kind, key, label in over:
        print(
            f"OVER BUDGET ({BUDGETS[kind]:g} s): {key} {label} on a {kind} answer: {seconds:.2f} s"
        )
    runtime.stop_all()
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
