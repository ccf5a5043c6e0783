"""The sweep's progress, shown with tqdm (``poetrylab bench``, ``scripts/bench_clients.py``).

On a terminal tqdm redraws one bar, with the run in progress and the time left; in a
log (stderr not a terminal) a bar redrawn with carriage returns would be noise, so
there is no bar and each finished run gets one line instead, and nothing is lost. In a
notebook, ``SweepProgress(notebook=True)`` draws tqdm's notebook bar (a widget) instead.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Never, TextIO

from tqdm import tqdm

if TYPE_CHECKING:
    from poetrylab.bench.harness import PlannedRun
    from poetrylab.bench.results import RunRecord

__all__ = ["SweepProgress"]


def _outcome(record: RunRecord) -> str:
    if record["limit"]:
        return f"LIMIT: {record['limit']}"
    if record["elapsed_s"] is None:
        return f"FAILED: {record['error']}"
    ideal = record["ideal_s"]
    tail = f" (ideal {ideal:.3f} s)" if ideal is not None else ""
    failed = f", {record['errors']} downloads failed" if record["errors"] else ""
    return f"{record['elapsed_s']:.3f} s{tail}{failed}"


class SweepProgress:
    """A progress hook for :func:`~poetrylab.bench.harness.run_bench`, drawn by tqdm.

    Call it as ``progress(done, total, run, record)``; :meth:`close` (or leaving the
    ``with`` block) ends the bar. ``notebook=True`` draws tqdm's notebook widget (it
    needs ipywidgets, which the course installs). Not thread-safe (the harness calls it
    from one thread).
    """

    def __init__(self, stream: TextIO | None = None, *, notebook: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.notebook = notebook
        self.tty = notebook or bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: tqdm[Never] | None = None

    def __call__(
        self, done: int, total: int, run: PlannedRun, record: RunRecord | None
    ) -> None:
        label = f"{run.client} N={run.n_servers:,} repeat {run.repeat + 1}"
        bar = self._bar
        if bar is None:
            if self.notebook:
                from tqdm.notebook import tqdm as notebook_tqdm

                bar = self._bar = notebook_tqdm(total=total, unit="run", leave=True)
            else:
                bar = self._bar = tqdm(total=total, unit="run", file=self.stream,
                                       disable=not self.tty, dynamic_ncols=True, leave=True)
        if record is None:
            bar.set_description_str(label)
            return
        bar.update(done - bar.n)
        if not self.tty:
            self.stream.write(f"[{done}/{total}] {label}: {_outcome(record)}\n")
            self.stream.flush()
        elif record["limit"] or record["elapsed_s"] is None or record["errors"]:
            bar.write(f"{label}: {_outcome(record)}", file=self.stream)
        if done == total:
            self.close()

    def close(self) -> None:
        """End the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
