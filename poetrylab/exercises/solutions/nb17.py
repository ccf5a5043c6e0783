"""Model solutions (and wrong answers the checks must catch) for notebook 17."""

from __future__ import annotations

import statistics
from typing import Any

from poetrylab.exercises import Answers

# -- exercise 1: efficiency of one run ------------------------------------------------------


def efficiency(run: dict[str, Any]) -> float | None:
    """Ideal over measured; a run that failed has no elapsed time and no efficiency."""
    if run["elapsed_s"] is None:
        return None
    return float(run["ideal_s"] / run["elapsed_s"])


def upside_down(run: dict[str, Any]) -> float | None:
    """Wrong: measured over ideal (bigger is worse)."""
    return None if run["elapsed_s"] is None else run["elapsed_s"] / run["ideal_s"]


def forgets_failures(run: dict[str, Any]) -> float:
    """Wrong: divides by None for a failed run."""
    return float(run["ideal_s"] / run["elapsed_s"])


def zero_for_failures(run: dict[str, Any]) -> float:
    """Wrong: a failed run is not a run with efficiency 0."""
    return 0.0 if run["elapsed_s"] is None else run["ideal_s"] / run["elapsed_s"]


# -- exercise 2: where a client stops keeping up ------------------------------------------


def _efficiencies(results: dict[str, Any], client: str) -> dict[int, list[float]]:
    by_n: dict[int, list[float]] = {}
    for run in results["runs"]:
        if run["client"] == client and run["elapsed_s"] is not None:
            by_n.setdefault(run["n_servers"], []).append(run["ideal_s"] / run["elapsed_s"])
    return by_n


def first_below(results: dict[str, Any], client: str, level: float = 0.95) -> int | None:
    """The smallest N whose median efficiency (failed runs left out) is below ``level``."""
    by_n = _efficiencies(results, client)
    for n in sorted(by_n):
        if statistics.median(by_n[n]) < level:
            return n
    return None


def any_run_below(results: dict[str, Any], client: str, level: float = 0.95) -> int | None:
    """Wrong: one slow repeat is enough (noise taken for a trend)."""
    by_n = _efficiencies(results, client)
    return next((n for n in sorted(by_n) if min(by_n[n]) < level), None)


def unsorted(results: dict[str, Any], client: str, level: float = 0.95) -> int | None:
    """Wrong: the first N met in the file, not the smallest."""
    by_n = _efficiencies(results, client)
    return next((n for n in by_n if statistics.median(by_n[n]) < level), None)


def mean_not_median(results: dict[str, Any], client: str, level: float = 0.95) -> int | None:
    """Wrong: the mean lets one slow repeat drag an N below the level."""
    by_n = _efficiencies(results, client)
    return next((n for n in sorted(by_n) if statistics.mean(by_n[n]) < level), None)


def keeps_failures(results: dict[str, Any], client: str, level: float = 0.95) -> int | None:
    """Wrong: divides by the elapsed time of failed runs too."""
    by_n: dict[int, list[float]] = {}
    for run in results["runs"]:
        if run["client"] == client:
            by_n.setdefault(run["n_servers"], []).append(run["ideal_s"] / run["elapsed_s"])
    return next((n for n in sorted(by_n) if statistics.median(by_n[n]) < level), None)


SOLUTIONS = {
    "check_efficiency": Answers(
        solution=efficiency, wrong=[upside_down, forgets_failures, zero_for_failures, 0.95]
    ),
    "check_first_below": Answers(
        solution=first_below,
        wrong=[any_run_below, unsorted, mean_not_median, keeps_failures, 100],
    ),
}
