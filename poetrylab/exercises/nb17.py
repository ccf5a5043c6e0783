"""Checks for notebook 17 (the benchmark).

* :func:`check_efficiency` — the learner's ``efficiency(run)``: ideal time / measured time
  for one run record of ``poetrylab bench``, or None for a run that failed.
* :func:`check_first_below` — the learner's ``first_below(results, client, level)``: the
  smallest N at which the client's median efficiency over its repeats falls below
  ``level`` (None if it never does).

Both run the learner's function on small made-up results shaped like the real ones, so
no measuring happens and the verdict never depends on the machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner, is_number
from poetrylab.exercises._registry import NotYet, exercise, function

__all__ = ["check_efficiency", "check_first_below", "example_results"]


def _run(client: str, n: int, repeat: int, elapsed: float | None, ideal: float) -> dict[str, Any]:
    return {
        "client": client, "n_servers": n, "repeat": repeat, "elapsed_s": elapsed,
        "ideal_s": ideal, "errors": 0 if elapsed is not None else None,
        "error": None if elapsed is not None else "client process failed: can't start new thread",
    }  # fmt: skip


def example_results() -> dict[str, Any]:
    """Made-up results for the checks: 2 s per server, three repeats per client and N.

    The threaded client's median efficiency falls below 0.95 at N = 100, though one of
    its repeats there was fast and one at N = 10 was slow; it failed once at N = 1,000.
    The twisted client stays above 0.95 throughout; runs are not in N order.
    """
    runs = []
    threaded = {1: (2.01, 2.02, 2.01), 1000: (3.1, 3.0, None), 10: (2.3, 2.05, 2.04),
                100: (2.2, 2.15, 2.02)}  # fmt: skip
    for n, times in threaded.items():
        runs += [_run("threaded", n, i, t, 2.0) for i, t in enumerate(times)]
    for n in (1000, 1, 100, 10):
        runs += [_run("twisted", n, i, 2.0 + 0.01 * i + n / 20000, 2.0) for i in range(3)]
    runs += [_run("blocking", n, i, 2.0 * n * 1.01, 2.0 * n) for n in (1, 10) for i in range(3)]
    return {"parameters": {"server_time_s": 2.0}, "runs": runs}


_EFFICIENCY_CASES = [
    (_run("twisted", 10, 0, 2.0, 2.0), 1.0),
    (_run("twisted", 10, 0, 2.5, 2.0), 0.8),
    (_run("blocking", 10, 0, 21.0, 20.0), 20.0 / 21.0),
    (_run("threaded", 1000, 0, None, 2.0), None),
]


@exercise("17", function("efficiency(run)"), title="efficiency of one run")
def check_efficiency(efficiency: Callable[[dict[str, Any]], object]) -> str:
    """Call ``efficiency(run)`` on four run records; compare with ideal_s / elapsed_s."""
    for run, want in _EFFICIENCY_CASES:
        shown = f"ideal_s={run['ideal_s']}, elapsed_s={run['elapsed_s']}"
        got = call_learner(
            f"efficiency for a run with {shown}", efficiency, dict(run),
            hint="a failed run has elapsed_s None: return None for it instead of dividing."
            if run["elapsed_s"] is None
            else "read the error message.",
        )  # fmt: skip
        if want is None:
            if got is not None:
                raise NotYet(
                    f"a failed run ({shown}) has no efficiency",
                    expected="None",
                    got=short(got),
                    hint="check run['elapsed_s'] is None first.",
                )
            continue
        if not is_number(got) or not math.isclose(float(got), want, rel_tol=1e-9):
            inverted = is_number(got) and got != 0 and math.isclose(float(got), 1 / want)
            raise NotYet(
                f"wrong efficiency for a run with {shown}",
                expected=f"{want:.4f}",
                got=short(got),
                hint="upside down: the ideal goes on top, so 1.0 is perfect and a slower run "
                "scores less."
                if inverted
                else "divide the ideal time by the measured one.",
            )
    return (
        "ideal / measured: 1.0 means the client added nothing to the servers' time, and a "
        "failed run has no efficiency at all."
    )


_FIRST_BELOW_CASES: list[tuple[str, float, int | None]] = [
    ("threaded", 0.95, 100),
    ("twisted", 0.95, None),
    ("threaded", 0.7, 1000),
    ("blocking", 0.95, None),
    ("asyncio", 0.95, None),
]


@exercise(
    "17", function("first_below(results, client, level=0.95)"),
    title="where does a client stop keeping up?",
)  # fmt: skip
def check_first_below(first_below: Callable[[dict[str, Any], str, float], object]) -> str:
    """Call ``first_below(results, client, level)`` on :func:`example_results`."""
    for client, level, want in _FIRST_BELOW_CASES:
        call = f"first_below(results, {client!r}, {level})"
        got = call_learner(
            call, first_below, example_results(), client, level,
            hint="a failed run has elapsed_s None: leave it out before taking the median; "
            "a client with no runs at all gives None.",
        )  # fmt: skip
        if got == want:
            continue
        if got == 10 and client == "threaded":
            hint = (
                "one slow repeat at N=10 is noise: take the median efficiency over the "
                "repeats at each N, then compare it with the level."
            )
        elif want is None:
            hint = "when no N falls below the level, return None."
        else:
            hint = (
                "look at the N values in increasing order (runs are not sorted), and return "
                "the first whose median efficiency is below the level."
            )
        raise NotYet(f"{call} is not right", expected=short(want), got=short(got), hint=hint)
    return (
        "medians over repeats, N in order, failed runs left out: the point where a client "
        "stops keeping up, read from the data."
    )
