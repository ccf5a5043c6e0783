"""Shared fixtures: a reactor running in a background thread (via crochet) for integration
tests on loopback, and the corpus."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture(scope="session")
def reactor() -> Any:
    """The global reactor, running in crochet's background thread for the whole session."""
    warnings.filterwarnings("ignore", message=r"isSet\(\) is deprecated", category=DeprecationWarning)
    import crochet

    saved = warnings.showwarning
    crochet.setup()
    # crochet routes warnings through Twisted's log; keep pytest's own handling.
    warnings.showwarning = saved
    from twisted.internet import reactor as global_reactor

    return global_reactor


@pytest.fixture(scope="session")
def in_reactor(reactor: Any) -> Callable[..., Any]:
    """Call ``fn(*args)`` in the reactor thread, wait up to ``timeout`` s for its result.

    If ``fn`` returns a Deferred, its result is returned (or its exception raised).
    """
    import crochet

    def call(fn: Callable[..., Any], *args: Any, timeout: float = 15.0, **kwargs: Any) -> Any:
        return crochet.run_in_reactor(fn)(*args, **kwargs).wait(timeout)

    return call
