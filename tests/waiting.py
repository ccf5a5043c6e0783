"""Waiting in tests on what can be observed, never on the clock.

A test that sleeps "long enough" for something to happen fails on a busy machine and
wastes time on an idle one; a test that asserts how long something took measures the
machine. These helpers wait for the state the test needs, each with a timeout that only
bounds a hang, and fail saying what did not happen:

* :func:`eventually` polls a condition until it holds;
* :func:`within` runs a call that must return, and fails if it hangs;
* :func:`when` does something (send Ctrl-C, free a blocked thread) from another thread as
  soon as a condition holds, instead of after a guessed delay.

Imported by the test modules beside it (``from waiting import eventually``): pytest puts
this directory on ``sys.path``, as it does for ``test_runtime_unit``'s shared fakes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import TypeVar

import pytest

T = TypeVar("T")


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)


def within(seconds: float, what: str, fn: Callable[[], T]) -> T:
    """Run ``fn()`` in a worker thread and return its result (or raise its exception).

    Fails saying ``what`` hangs when it has not returned after ``seconds``: the bound on a
    hang is this wait's timeout, never an assertion on the time something took. The
    worker thread is gone when this returns (unless ``fn`` hangs).
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="within")
    future = pool.submit(fn)
    if not wait_futures([future], timeout=seconds).done:
        pool.shutdown(wait=False)
        pytest.fail(f"{what} had not returned after {seconds} s: it hangs")
    pool.shutdown(wait=True)
    return future.result()


@contextlib.contextmanager
def when(
    condition: Callable[[], bool], action: Callable[[], object], what: str, timeout: float = 10.0
) -> Iterator[None]:
    """Run ``action()`` from a thread as soon as ``condition()`` holds, while the block runs.

    Leaving the block fails, saying ``what`` never happened, when the condition did not
    hold within ``timeout`` seconds (chained to the block's own error, if it raised one).
    The thread is gone when the block is left.
    """
    done, stop = threading.Event(), threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set() and time.monotonic() < deadline:
            if condition():
                action()
                done.set()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, name=f"when {what}", daemon=True)
    watcher.start()
    try:
        yield
    except BaseException as error:
        if not done.is_set():
            raise AssertionError(f"{what} never happened within {timeout} s") from error
        raise
    finally:
        stop.set()
        watcher.join(timeout + 1)
    assert done.is_set(), f"{what} never happened within {timeout} s"
