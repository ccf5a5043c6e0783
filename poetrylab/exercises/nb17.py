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
from typing import Any

from poetrylab.exercises._feedback import (
    Feedback,
    exercise,
    failed,
    passed,
    run_learner_code,
    short,
)

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


@exercise("17")
def check_efficiency(efficiency: Any) -> Feedback:
    """Call ``efficiency(run)`` on four run records; compare with ideal_s / elapsed_s."""
    name = "check_efficiency"
    if not callable(efficiency):
        return failed(name, "pass your function itself", expected="efficiency",
                      got=short(efficiency), hint="def efficiency(run): ...")  # fmt: skip
    for run, want in _EFFICIENCY_CASES:
        shown = f"ideal_s={run['ideal_s']}, elapsed_s={run['elapsed_s']}"
        ok, got = run_learner_code(efficiency, dict(run))
        if not ok:
            hint = ("a failed run has elapsed_s None: return None for it instead of dividing."
                    if run["elapsed_s"] is None else "read the error message.")
            return failed(name, f"efficiency raised an error for a run with {shown}",
                          expected=short(want), got=got, hint=hint)  # fmt: skip
        if want is None:
            if got is not None:
                return failed(name, f"a failed run ({shown}) has no efficiency",
                              expected="None", got=short(got),
                              hint="check run['elapsed_s'] is None first.")  # fmt: skip
            continue
        if not isinstance(got, int | float) or not math.isclose(got, want, rel_tol=1e-9):
            inverted = isinstance(got, int | float) and got and math.isclose(got, 1 / want)
            hint = ("upside down: the ideal goes on top, so 1.0 is perfect and a slower run "
                    "scores less." if inverted else "divide the ideal time by the measured one.")
            return failed(name, f"wrong efficiency for a run with {shown}",
                          expected=f"{want:.4f}", got=short(got), hint=hint)  # fmt: skip
    return passed(name, "ideal / measured: 1.0 means the client added nothing to the servers' "
                        "time, and a failed run has no efficiency at all.")  # fmt: skip


@exercise("17")
def check_first_below(first_below: Any) -> Feedback:
    """Call ``first_below(results, client, level)`` on :func:`example_results`."""
    name = "check_first_below"
    if not callable(first_below):
        return failed(name, "pass your function itself", expected="first_below",
                      got=short(first_below), hint="def first_below(results, client, level=0.95):")
    cases = [("threaded", 0.95, 100), ("twisted", 0.95, None), ("threaded", 0.7, 1000),
             ("blocking", 0.95, None), ("asyncio", 0.95, None)]  # fmt: skip
    for client, level, want in cases:
        call = f"first_below(results, {client!r}, {level})"
        ok, got = run_learner_code(first_below, example_results(), client, level)
        if not ok:
            return failed(name, f"{call} raised an error", expected=short(want), got=got,
                          hint="a failed run has elapsed_s None: leave it out before taking "
                               "the median; a client with no runs at all gives None.")
        if got != want:
            if got == 10 and client == "threaded":
                hint = ("one slow repeat at N=10 is noise: take the median efficiency over the "
                        "repeats at each N, then compare it with the level.")
            elif want is None:
                hint = "when no N falls below the level, return None."
            else:
                hint = ("look at the N values in increasing order (runs are not sorted), "
                        "and return the first whose median efficiency is below the level.")
            return failed(name, f"{call} is not right", expected=short(want), got=short(got),
                          hint=hint)
    return passed(name, "medians over repeats, N in order, failed runs left out: the point "
                        "where a client stops keeping up, read from the data.")
