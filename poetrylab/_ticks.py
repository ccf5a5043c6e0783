"""Work a waiting thread does while it waits: how live views redraw during a blocking wait.

A notebook cell that waits for the reactor (``runtime.call``, ``runtime.wait``, ``await
runtime.resolve``) holds the kernel's main thread, the only thread allowed to draw. A
live view (the tracer's, notebook 05 and on) still wants to redraw while the Deferreds
it watches fire in the reactor thread. So the runtime's waits call :func:`tick` in the
waiting thread, a few times a second, for as long as any hook is registered; each hook
then redraws (or does nothing if nothing changed).

This module knows neither the runtime nor the tracer: the tracer registers hooks, the
runtime calls :func:`tick`, and neither imports the other. A hook must be quick and must
not block; an exception from a hook is reported once on standard error and the hook is
removed, so a broken view never breaks a wait.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

__all__ = ["INTERVAL", "active", "add", "tick"]

INTERVAL = 0.1
"""Seconds between ticks while a wait is in progress and hooks are registered."""

_lock = threading.Lock()
_hooks: list[Callable[[], None]] = []


def add(hook: Callable[[], None]) -> Callable[[], None]:
    """Register ``hook`` to run on every tick; returns a function that removes it."""
    with _lock:
        _hooks.append(hook)

    def remove() -> None:
        with _lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def active() -> bool:
    """True when some hook is registered (waits then tick; otherwise they need not)."""
    with _lock:
        return bool(_hooks)


def tick() -> None:
    """Run every registered hook once, in the calling thread (the one that waits).

    A hook that raises is removed and reported in one line on standard error.
    """
    with _lock:
        hooks = list(_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception as exc:  # a broken view must never break the wait
            with _lock:
                if hook in _hooks:
                    _hooks.remove(hook)
            print(f"poetrylab: a live view stopped updating: {exc!r}", file=sys.stderr)
