"""A small progress bar for ``poetrylab bench`` (notebook 17 shows the command).

On a terminal it redraws one line; anywhere else (a log, a notebook's captured output)
it prints one line per finished run, so nothing is lost.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["ProgressBar"]


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressBar:
    """Report a sweep's progress on ``stream``; call it as ``run_bench``'s progress hook.

    Not thread-safe (the harness calls it from one thread).
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()

    def __call__(self, done: int, total: int, run: Any, record: dict[str, Any] | None) -> None:
        label = f"{run.client} N={run.n_servers} repeat {run.repeat + 1}"
        spent = time.monotonic() - self._start
        eta = spent / done * (total - done) if done else None
        if self.tty:
            filled = round(self.width * done / total) if total else self.width
            bar = "#" * filled + "." * (self.width - filled)
            tail = f"  about {_clock(eta)} left" if eta is not None else ""
            self.stream.write(f"\r[{bar}] {done}/{total} {label:<28}{tail}   ")
            if done == total and record is not None:
                self.stream.write("\n")
        elif record is not None:
            elapsed = record.get("elapsed_s")
            outcome = (
                f"{elapsed:.3f} s (ideal {record['ideal_s']:.3f} s)"
                if elapsed is not None else f"FAILED: {record.get('error')}"
            )
            self.stream.write(f"[{done}/{total}] {label}: {outcome}\n")
        self.stream.flush()
