"""The runtime with the real reactor: its own thread, loopback sockets, fresh processes.

What must hold from a process's very start is tested in child processes, so that each
starts from nothing: ``-W error``, Twisted's logging and ``warnings``, a Deferred that
nobody handled, what the first cell imports, an idle runtime's threads and timers, and
what happens when the interpreter exits.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from poetrylab import runtime
from poetrylab.corpus import load_poem
from poetrylab.testing import read_to_eof


def run_python(code: str, *flags: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def socket_bound_to(port: int) -> Iterator[socket.socket]:
    """Bind ``port`` on loopback: raises "address in use" while someone still listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
        yield probe


def test_start_reports_the_reactor_running_in_its_own_daemon_thread(reactor: Any) -> None:
    info = runtime.start()
    assert info is runtime.start()
    assert info.reactor is reactor and reactor.running
    assert info.thread_name == "ReactorThread"
    assert info.reactor_name == type(reactor).__name__
    [thread] = [t for t in threading.enumerate() if t.name == "ReactorThread"]
    assert thread.daemon


def test_an_idle_runtime_has_one_thread_and_no_timer_that_would_wake_it() -> None:
    result = run_python(
        """
        import threading
        before = {t.name for t in threading.enumerate()}
        from poetrylab import runtime
        reactor = runtime.start().reactor
        server = runtime.serve("slow", "furuike")
        runtime.call(lambda: None)
        server.stop()
        print(sorted({t.name for t in threading.enumerate()} - before))
        print(runtime.call(reactor.getDelayedCalls))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['ReactorThread']", "[]"], (
        "an idle runtime must add only the reactor thread, with no timer pending: "
        "anything else wakes the kernel while nobody uses it\n" + result.stdout
    )


def test_children_spawned_through_the_reactor_are_all_reaped_then_nothing_ticks() -> None:
    result = run_python(
        """
        import time
        from twisted.internet import protocol
        from twisted.internet.defer import Deferred
        from poetrylab import runtime
        reactor = runtime.start().reactor

        class Child(protocol.ProcessProtocol):
            def __init__(self):
                self.ended = Deferred()

            def processEnded(self, reason):
                self.ended.callback(reason.value.exitCode)

        def spawn():
            child = Child()
            reactor.spawnProcess(child, "/bin/true", ["true"], env={})
            return child.ended

        print(sum(runtime.call(spawn, timeout=10) == 0 for _ in range(60)))
        deadline = time.monotonic() + 10  # the reaping timer stops once no child is left
        while runtime.call(reactor.getDelayedCalls) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(runtime.call(reactor.getDelayedCalls))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["60", "[]"], result.stdout


def test_the_first_cell_imports_neither_plots_nor_the_tracer_nor_widgets() -> None:
    result = run_python(
        """
        import sys
        from poetrylab import runtime
        reactor = runtime.start().reactor
        heavy = ("matplotlib", "ipywidgets", "numpy", "PIL", "crochet", "poetrylab.tracing")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_leaving_the_interpreter_stops_the_reactor_and_its_servers_at_once() -> None:
    result = run_python(
        """
        from poetrylab import runtime
        reactor = runtime.start().reactor
        server = runtime.serve("slow", "furuike")
        runtime.call(reactor.addSystemEventTrigger, "after", "shutdown", print, "stopped")
        print(server.port)
        """
    )
    assert result.returncode == 0, result.stderr
    port, said = result.stdout.split()
    assert said == "stopped", "the reactor's shutdown triggers did not run at exit"
    with socket_bound_to(int(port)):
        pass  # the port is free again


def test_waits_work_under_w_error_and_warnings_stay_pythons() -> None:
    result = run_python(
        """
        import asyncio, warnings
        original = warnings.showwarning
        from poetrylab import runtime
        from twisted.internet import task
        reactor = runtime.start().reactor
        assert warnings.showwarning is original, warnings.showwarning
        for _ in range(200):
            assert runtime.call(lambda: 1) == 1
        assert runtime.call(task.deferLater, reactor, 0.01, lambda: "later") == "later"
        assert asyncio.run(runtime.resolve(task.deferLater, reactor, 0.01, lambda: 2)) == 2
        assert runtime.call(lambda: 4) == 4
        try:
            warnings.warn("still an error", UserWarning)
        except UserWarning:
            print("warnings still raise")
        print("ok")
        """,
        "-W", "error",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["warnings", "still", "raise", "ok"]
    assert "Traceback" not in result.stderr


def test_a_deferred_error_nobody_handled_is_reported_plainly_on_stderr() -> None:
    result = run_python(
        """
        import gc
        from poetrylab import runtime
        from twisted.internet import task
        reactor = runtime.start().reactor
        def refuse():
            raise ConnectionRefusedError("nobody is listening")
        runtime.call(lambda: task.deferLater(reactor, 0.01, refuse) and None)
        runtime.call(task.deferLater, reactor, 0.02, lambda: None)  # after refuse has run
        gc.collect()  # the failed Deferred sits in a cycle: collecting it logs the error
        """
    )
    assert result.returncode == 0, result.stderr
    assert "Unhandled error in a Deferred" in result.stderr
    assert "ConnectionRefusedError: nobody is listening" in result.stderr
    assert "in refuse" in result.stderr
    assert "Add an errback" in result.stderr


def test_twisted_log_goes_to_stdlib_logging_as_well() -> None:
    result = run_python(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="LOGGED %(name)s %(message)s")
        from poetrylab import runtime
        runtime.start()
        from twisted.logger import Logger
        runtime.call(lambda: Logger(namespace="poetry").info("a line from {who}", who="twisted"))
        """
    )
    assert "LOGGED twisted a line from twisted" in result.stderr


def test_a_served_poem_arrives_over_loopback_and_stop_frees_the_port(reactor: Any) -> None:
    server = runtime.serve("slow", "tyger", delay=0.001, num_bytes=100, name="test-tyger")
    try:
        assert read_to_eof(server.address) == load_poem("tyger").data
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        read_to_eof(server.address, timeout=2)


def test_serving_again_under_a_name_on_a_fixed_port_does_not_fail_with_address_in_use(
    reactor: Any,
) -> None:
    first = runtime.serve("fast", "furuike", name="fixed")
    port = first.port
    first_again = runtime.serve("fast", "furuike", name="fixed", port=port)
    try:
        assert not first.running and first_again.port == port
        assert read_to_eof(first_again.address) == load_poem("furuike").data
    finally:
        first_again.stop()


def test_every_cli_server_kind_can_be_served_and_stopped(reactor: Any) -> None:
    upstream = runtime.serve("fast", "tyger", name="upstream")
    handles = [
        runtime.serve(kind, name=f"kind-{kind}", **options)
        for kind, options in [
            ("slow", {}), ("fast", {}), ("blocking", {}), ("transform", {}), ("tagged", {}),
            ("xmlrpc", {}), ("proxy", {"upstream": str(upstream.address)}),
        ]
    ]  # fmt: skip
    try:
        assert {h.kind for h in handles} >= {"slow", "blocking", "xmlrpc", "proxy"}
        assert read_to_eof(handles[-1].address) == load_poem("tyger").data  # via the proxy
    finally:
        for handle in [*handles, upstream]:
            handle.stop()
    assert not set(runtime.servers()) & {*handles, upstream}


def test_many_calls_and_server_cycles_leave_no_threads_or_descriptors_behind(
    reactor: Any,
) -> None:
    runtime.serve("blocking", "furuike", name="warm").stop()
    runtime.serve("fast", "furuike", name="warm").stop()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(2000):
        runtime.call(int)
    for i in range(150):
        runtime.serve(("slow", "fast", "blocking")[i % 3], "furuike", name="cycled").stop()
    for i in range(30):
        last = runtime.serve(("slow", "fast", "blocking")[i % 3], "furuike", name="replaced")
    assert [s.name for s in runtime.servers()].count("replaced") == 1
    last.stop()
    assert (threading.active_count(), open_fds()) == (threads, fds)
