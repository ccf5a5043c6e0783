"""Notebook 12's checks run the learner's code on an asyncio reactor of their own: that
reactor really runs asyncio code and Twisted code on one loop, in one thread, is never
installed as the process's reactor, and leaves no thread, loop or descriptor behind."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from twisted.internet.defer import Deferred

from poetrylab.exercises import nb12
from poetrylab.exercises.solutions import nb12 as solutions


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_checks_reactor_runs_asyncio_and_twisted_on_one_loop_in_one_thread() -> None:
    seen: dict[str, Any] = {}

    def look() -> Deferred[str]:
        seen["thread"] = threading.current_thread().name
        seen["loop"] = asyncio.get_running_loop()

        async def asyncio_side() -> str:
            seen["task loop"] = asyncio.get_running_loop()
            await asyncio.sleep(0)
            return "from asyncio"

        return Deferred.fromFuture(asyncio.get_running_loop().create_task(asyncio_side()))

    with nb12._Reactor() as checks:
        outcome = checks.call(look)
        assert outcome.is_value("from asyncio"), str(outcome)
        assert seen["loop"] is checks.loop and seen["task loop"] is checks.loop
        assert seen["thread"] == "nb12-check-asyncio-reactor"
    assert checks.loop.is_closed()


def test_the_checks_reactor_is_never_the_process_reactor(reactor: Any) -> None:
    from twisted.internet import reactor as installed

    with nb12._Reactor() as checks:
        assert installed is reactor
        assert checks.reactor is not installed
    assert installed is reactor and installed.running


def test_the_process_reactor_stays_twisteds_io_thread(in_reactor: Any) -> None:
    """Running, a reactor registers its thread as Twisted's I/O thread (a process global):
    the check's must not take that over, or the process reactor is no longer recognised
    in its own thread (fetch() and blockingCallFromThread then deadlock it instead of
    refusing to run there)."""
    from twisted.python.threadable import isInIOThread

    assert in_reactor(isInIOThread), "the process reactor's thread is not the I/O thread"
    with nb12._Reactor():
        assert in_reactor(isInIOThread), "the check's reactor took the I/O thread over"
    assert in_reactor(isInIOThread), "the check's reactor left its own thread as the I/O thread"


def test_a_check_leaves_no_thread_loop_or_descriptor_behind(reactor: Any) -> None:
    nb12.check_first_lines(solutions.first_lines)  # the servers' first start opens what stays
    threads, descriptors = threading.active_count(), _descriptors()
    for lines in (solutions.first_lines, solutions.another_loop, solutions.awaits_the_deferred):
        nb12.check_first_lines(lines)
    for convert in (solutions.as_deferred, solutions.bridged_without_cancel):
        nb12.check_as_deferred(convert)
    assert threading.active_count() == threads
    assert not [t for t in threading.enumerate() if t.name.startswith("nb12-check")]
    assert _descriptors() == descriptors


def test_a_task_left_waiting_is_cancelled_when_the_check_ends() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()

    with nb12._Reactor() as checks:
        outcome = checks.call(lambda: checks.loop.create_task(forever()) and None)
        assert outcome.kind == "value"
    assert cancelled.is_set()
