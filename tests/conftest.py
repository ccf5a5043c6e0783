"""Shared fixtures: the global reactor running in a background thread, started by the
notebook runtime (in a thread of its own), for integration tests on loopback; and the
heap of earlier modules frozen out of garbage collection while a module runs."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="module")
def _heap_frozen_for_the_module() -> Iterator[None]:
    """Objects that exist when a module starts (imports, earlier modules' leftovers) are
    left out of garbage collection until it ends (``gc.freeze``).

    Tests that check what is collected call ``gc.collect()`` often (a Deferred's
    unhandled error is logged when it is collected): a full collection walks every object
    of the session, hundreds of thousands by then, and the tracer's ground truth alone
    spent over a minute doing so. Frozen, a collection walks only what the module made;
    what it made is collected exactly as before.
    """
    gc.freeze()
    yield
    gc.unfreeze()


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
