"""Where a benchmark run's time and CPU go: connecting, the chunks, finishing (notebook 17).

A run's elapsed time splits into three phases that add up to it:

* **connecting**: from the client's start until its last connection is made. A slow
  server starts its timetable when it accepts, so no poem can end before its connection
  plus one server's time: a client that takes long to open 10,000 connections pays
  for it at the end.
* **transfer**: from there until the last chunk arrives. Ideally one server's time; what
  it adds is chunks handled late (the client busy elsewhere, or the server late).
* **finishing**: from the last chunk until the client returned: noticing each close,
  closing sockets, collecting the results.

Each chunk's *lag* is how long after it was due it arrived: the server sends chunk *k*
of a connection ``k * delay`` after accepting it, so a chunk that ends at byte *b* was
due at ``connected + (b - 1) // num_bytes * delay``. The client's CPU time is split at
the same boundaries from samples of the process's CPU clock taken while it ran
(:func:`cpu_between`), so the harness can say, per model, what a connection and what a
chunk cost.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import cast

from poetrylab.bench.results import Phases
from poetrylab.download import Download

__all__ = ["CpuSample", "Windows", "cpu_between", "phase_windows", "phases_of", "with_cpu"]

CpuSample = tuple[float, float]
"""``(t, cpu)``: at time ``t`` (``time.perf_counter``) the process had used ``cpu`` seconds."""


Windows = dict[str, list[tuple[float, float]]]
"""Phase name (``connect``, ``transfer``, ``finish``) -> the time windows it covered,
in seconds from the client's start."""


def phase_windows(
    downloads: Sequence[Download], start: float, elapsed: float, sequential: bool = False
) -> Windows:
    """The windows of time each phase covered, relative to ``start``.

    A concurrent client's phases follow each other once: until the last connection,
    until the last chunk, until the end. A sequential client (``sequential``) goes
    through them once per server, so each phase is the sum of one window per download,
    and the gaps between downloads count as finishing.
    """
    if not sequential:
        connected = [d.connected for d in downloads if d.connected is not None]
        b1 = min(max(connected, default=start) - start, elapsed)
        arrivals = [d.chunks[-1].t for d in downloads if d.chunks]
        b2 = min(max(max(arrivals, default=start) - start, b1), elapsed)
        return {"connect": [(0.0, b1)], "transfer": [(b1, b2)], "finish": [(b2, elapsed)]}
    windows: Windows = {"connect": [], "transfer": [], "finish": []}
    cursor = 0.0
    for d in downloads:
        if d.started is None or d.finished is None:
            continue
        began, ended = d.started - start, d.finished - start
        made = (d.connected - start) if d.connected is not None else ended
        last = (d.chunks[-1].t - start) if d.chunks else made
        windows["finish"].append((cursor, max(cursor, began)))  # the gap before it
        windows["connect"].append((began, made))
        windows["transfer"].append((made, max(made, last)))
        windows["finish"].append((max(made, last), ended))
        cursor = ended
    windows["finish"].append((cursor, max(cursor, elapsed)))
    return windows


def _total(windows: list[tuple[float, float]]) -> float:
    return sum(max(0.0, b - a) for a, b in windows)


def phases_of(
    downloads: Sequence[Download],
    start: float,
    elapsed: float,
    delay: float | None = None,
    num_bytes: int | None = None,
    sequential: bool = False,
) -> Phases:
    """The time phases of a run whose downloads began at ``start`` and took ``elapsed``.

    ``delay`` and ``num_bytes`` (the servers' pacing) are needed for the chunk lags,
    which are None without them or when no chunk arrived; ``sequential`` is True for a
    client that visits one server after another (see :func:`phase_windows`). CPU fields
    are None: add them with :func:`with_cpu`.
    """
    windows = phase_windows(downloads, start, elapsed, sequential)
    waits = [d.connected - d.started for d in downloads
             if d.connected is not None and d.started is not None]  # fmt: skip
    lags: list[float] = []
    chunks = 0
    in_transfer = 0
    for d in downloads:
        chunks += len(d.chunks)
        in_transfer += sum(any(a < c.t - start <= b for a, b in windows["transfer"])
                           for c in d.chunks)  # fmt: skip
        if delay is None or not num_bytes or d.connected is None:
            continue
        received = 0
        for chunk in d.chunks:
            received += chunk.size
            due = d.connected + (received - 1) // num_bytes * delay
            lags.append(chunk.t - due)
    return Phases(
        connect_s=_total(windows["connect"]),
        transfer_s=_total(windows["transfer"]),
        finish_s=_total(windows["finish"]),
        connect_mean_ms=1000 * sum(waits) / len(waits) if waits else 0.0,
        chunk_lag_mean_ms=1000 * sum(lags) / len(lags) if lags else None,
        chunk_lag_max_ms=1000 * max(lags) if lags else None,
        chunks=chunks,
        transfer_chunks=in_transfer,
        cpu_connect_s=None,
        cpu_transfer_s=None,
        cpu_finish_s=None,
        peak_threads=None,
    )


def cpu_between(samples: Sequence[CpuSample], t0: float, t1: float) -> float | None:
    """CPU seconds used between ``t0`` and ``t1``, interpolated from ``samples``.

    ``samples`` are in time order. Returns None when they do not cover both moments
    (nobody sampled, or the process ended before a sample was taken).
    """
    if len(samples) < 2 or t0 < samples[0][0] or t1 > samples[-1][0]:
        return None
    return max(0.0, _cpu_at(samples, t1) - _cpu_at(samples, t0))


def _cpu_at(samples: Sequence[CpuSample], t: float) -> float:
    times = [s[0] for s in samples]
    i = bisect.bisect_left(times, t)
    if i == 0:
        return samples[0][1]
    if i >= len(samples):
        return samples[-1][1]
    (ta, ca), (tb, cb) = samples[i - 1], samples[i]
    return ca if tb == ta else ca + (cb - ca) * (t - ta) / (tb - ta)


def with_cpu(
    phases: Phases,
    windows: Windows,
    samples: Sequence[CpuSample],
    start: float,
    peak_threads: int | None,
) -> Phases:
    """``phases`` with the CPU split filled in: CPU used in each phase's ``windows``
    (relative to ``start``), from ``samples``; a phase is None if a window is not covered.
    """

    def cpu(name: str) -> float | None:
        parts = [cpu_between(samples, start + a, start + b) for a, b in windows[name] if b > a]
        return None if any(p is None for p in parts) else sum(p or 0.0 for p in parts)

    return cast(Phases, {**phases, "cpu_connect_s": cpu("connect"),
                         "cpu_transfer_s": cpu("transfer"), "cpu_finish_s": cpu("finish"),
                         "peak_threads": peak_threads})  # fmt: skip
