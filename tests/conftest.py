"""Shared fixtures: the global reactor running in a background thread, started by the
notebook runtime (in a thread of its own), for integration tests on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def reactor() -> Any:
    """The global reactor, running in its background thread for the whole session."""
    from poetrylab import runtime

    return runtime.start().reactor


@pytest.fixture(scope="session")
def in_reactor(reactor: Any) -> Callable[..., Any]:
    """Call ``fn(*args, **kwargs)`` in the reactor thread, wait up to ``timeout`` s for its result.

    If ``fn`` returns a Deferred (or a coroutine), its result is returned (or its exception
    raised). A timeout raises ``poetrylab.runtime.WaitTimeoutError`` (a TimeoutError) after
    cancelling the Deferred.
    """
    from poetrylab import runtime

    def call(fn: Callable[..., Any], *args: Any, timeout: float = 15.0, **kwargs: Any) -> Any:
        return runtime.call(fn, *args, timeout=timeout, **kwargs)

    return call
