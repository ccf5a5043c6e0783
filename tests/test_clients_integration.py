"""Every client model against real servers on loopback: whole poems, byte for byte.

Servers listen on 127.0.0.1 with port 0. The Twisted servers and the Twisted client
models run in the reactor thread that the ``reactor`` fixture (the runtime) keeps going;
sync and asyncio models run in the test's own thread, as they would in a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.internet.protocol import Factory, Protocol
from waiting import within

from poetrylab.clients import MODELS, fetch
from poetrylab.corpus import list_poems, load_poem
from poetrylab.download import Address, Download
from poetrylab.servers import BlockingPoetryServer, listen_fast, listen_slow

POEMS = {name: load_poem(name).data for name in list_poems()}
SERVER_KINDS = ["slow", "fast", "blocking"]
SLOW = {"delay": 0.001, "num_bytes": 256}
REFUSED = "connection refused (is a server listening there?)"


@pytest.fixture(scope="module")
def servers(reactor: Any, in_reactor: Callable[..., Any]) -> Iterator[dict[str, list[Address]]]:
    """One server per poem and kind, addresses listed in corpus order."""
    slow = [in_reactor(listen_slow, reactor, poem, **SLOW) for poem in POEMS.values()]
    fast = [in_reactor(listen_fast, reactor, poem) for poem in POEMS.values()]
    blocking = [BlockingPoetryServer(poem, **SLOW).start() for poem in POEMS.values()]
    yield {
        "slow": [Address("127.0.0.1", p.getHost().port) for p in slow],
        "fast": [Address("127.0.0.1", p.getHost().port) for p in fast],
        "blocking": [Address("127.0.0.1", s.port) for s in blocking],
    }
    for port in slow + fast:
        in_reactor(port.stopListening)
    for server in blocking:
        server.stop()


@pytest.fixture(scope="module")
def get_poems(reactor: Any, in_reactor: Callable[..., Any]) -> Callable[..., list[Download]]:
    """Call a model's own ``get_poems``: Twisted ones in the reactor thread, others here."""

    def call(model: str, addresses: list[Any], timeout: float = 10.0) -> list[Download]:
        spec = MODELS[model]
        module = spec.load()
        if spec.kind == "twisted":
            return in_reactor(module.get_poems, reactor, addresses, timeout, timeout=timeout + 5)
        return module.get_poems(addresses, timeout)

    return call


def refused_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("model", list(MODELS))
def test_model_downloads_every_poem_in_the_corpus_byte_for_byte(
    model: str, kind: str, servers: dict[str, list[Address]], get_poems: Callable[..., Any]
) -> None:
    downloads = get_poems(model, servers[kind])
    assert [d.task for d in downloads] == list(range(1, len(POEMS) + 1))
    for download, (name, poem) in zip(downloads, POEMS.items(), strict=True):
        assert download.ok, (name, download.error)
        assert download.data == poem, name
        assert download.client == model
        assert sum(c.size for c in download.chunks) == len(poem)
        times = [c.t for c in download.chunks]
        assert times == sorted(times)
        assert download.started <= download.connected <= times[0] <= download.finished


@pytest.mark.parametrize("model", list(MODELS))
def test_refused_port_fails_alone_while_the_other_server_succeeds(
    model: str, servers: dict[str, list[Address]], get_poems: Callable[..., Any]
) -> None:
    good = servers["fast"][0]
    dead, ok = get_poems(model, [("127.0.0.1", refused_port()), good], timeout=5.0)
    assert dead.error == REFUSED
    assert dead.finished is not None and dead.data == b""
    assert ok.ok and ok.data == POEMS[list_poems()[0]]


@pytest.mark.parametrize("model", list(MODELS))
def test_server_that_never_writes_times_out_within_the_timeout_and_is_hung_up_on(
    model: str, get_poems: Callable[..., Any]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts
        # Given up by 5 s: ten times the 0.5 s asked for, half the clients' default (10 s).
        [download] = within(
            5.0, f"{model} against a silent server, with a 0.5 s timeout",
            lambda: get_poems(model, [silent.getsockname()], timeout=0.5),
        )  # fmt: skip
        assert download.error == "timed out"
        assert download.connected is not None, "the kernel accepted it: connect succeeded"
        assert download.elapsed >= 0.45, "it gave up before its timeout"
        silent.settimeout(5.0)
        conn, _ = silent.accept()
        with conn:
            conn.settimeout(5.0)
            with contextlib.suppress(ConnectionResetError):  # aborted: hung up as well
                assert conn.recv(10) == b"", "the client left the connection open"


class _Reset(Protocol):
    def connectionMade(self) -> None:
        self.transport.abortConnection()


@pytest.mark.parametrize("model", list(MODELS))
def test_connection_reset_by_the_server_is_a_failure(
    model: str,
    reactor: Any,
    in_reactor: Callable[..., Any],
    servers: dict[str, list[Address]],
    get_poems: Callable[..., Any],
) -> None:
    port = in_reactor(reactor.listenTCP, 0, Factory.forProtocol(_Reset), interface="127.0.0.1")
    try:
        reset, ok = get_poems(
            model, [("127.0.0.1", port.getHost().port), servers["fast"][1]], timeout=5.0
        )
    finally:
        in_reactor(port.stopListening)
    assert not reset.ok
    assert "reset" in reset.error or "lost" in reset.error.lower(), reset.error
    assert ok.ok


@pytest.fixture(scope="module")
def slow_pair(reactor: Any, in_reactor: Callable[..., Any]) -> Iterator[list[Address]]:
    """Two servers that each take about 15 ms to send the raven."""
    ports = [
        in_reactor(listen_slow, reactor, POEMS["raven"], delay=0.005, num_bytes=1000)
        for _ in range(2)
    ]
    yield [Address("127.0.0.1", p.getHost().port) for p in ports]
    for port in ports:
        in_reactor(port.stopListening)


def test_blocking_model_connects_to_each_server_only_when_its_turn_comes(
    slow_pair: list[Address], get_poems: Callable[..., Any]
) -> None:
    first, second = get_poems("blocking", slow_pair)
    assert first.ok and second.ok
    assert second.started >= first.finished
    assert second.connected >= first.finished
    assert len(first.chunks) >= 2, "a slow server's poem arrives in pieces"


@pytest.mark.parametrize("model", [m for m in MODELS if m != "blocking"])
def test_concurrent_model_starts_every_download_before_any_finishes(
    model: str, slow_pair: list[Address], get_poems: Callable[..., Any]
) -> None:
    downloads = get_poems(model, slow_pair)
    assert all(d.ok for d in downloads)
    assert max(d.started for d in downloads) < min(d.finished for d in downloads)


@pytest.mark.parametrize("model", [m for m in MODELS if MODELS[m].kind == "sync"])
def test_sync_model_stamps_times_from_the_given_clock(
    model: str, servers: dict[str, list[Address]]
) -> None:
    ticks = itertools.count(1000)
    [download] = MODELS[model].load().get_poems(servers["fast"][:1], clock=lambda: next(ticks))
    stamps = [download.started, download.connected, *(c.t for c in download.chunks)]
    assert all(isinstance(t, int) and t >= 1000 for t in [*stamps, download.finished])
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("model", list(MODELS))
def test_fetch_runs_every_model_from_this_thread_with_any_address_form(
    model: str, reactor: Any, servers: dict[str, list[Address]]
) -> None:
    a, b, c = servers["fast"][:3]
    downloads = fetch(model, [str(a), (b.host, b.port), c], timeout=5.0, reactor=reactor)
    assert [d.data for d in downloads] == list(POEMS.values())[:3]
    assert all(d.client == model for d in downloads)


@pytest.mark.parametrize("model", ["deferred", "inline", "coroutine"])
def test_endpoint_clients_look_up_a_host_name(
    model: str, servers: dict[str, list[Address]], get_poems: Callable[..., Any]
) -> None:
    """``localhost`` goes through HostnameEndpoint (a lookup, then a connection)."""
    fast = servers["fast"][0]
    [download] = get_poems(model, [("localhost", fast.port)], timeout=5.0)
    assert download.ok and download.data == POEMS[list_poems()[0]]


def test_the_deferred_client_logs_nothing_per_connection(
    servers: dict[str, list[Address]], get_poems: Callable[..., Any]
) -> None:
    """A noisy factory logs "Starting factory" and "Stopping factory" for every download:
    at 10,000 connections those events cost more CPU than the poems (notebook 17)."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        downloads = get_poems("deferred", servers["fast"][:3])
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert all(d.ok for d in downloads)
    factory_events = [e for e in events if "factory" in str(e.get("log_format", "")).lower()]
    assert factory_events == []


def test_fetch_asyncio_inside_a_running_event_loop_runs_in_a_worker_thread(
    servers: dict[str, list[Address]],
) -> None:
    async def notebook_cell() -> list[Download]:
        return fetch("asyncio", servers["fast"][:1], timeout=5.0)

    [download] = asyncio.run(notebook_cell())
    assert download.ok


def test_fetch_in_the_reactor_thread_refuses_rather_than_deadlock(
    reactor: Any, in_reactor: Callable[..., Any], servers: dict[str, list[Address]]
) -> None:
    with pytest.raises(RuntimeError, match="reactor thread"):
        in_reactor(fetch, "deferred", servers["fast"][:1], 5.0, reactor)


def test_fetch_without_a_running_reactor_runs_it_once_then_says_it_cannot_restart() -> None:
    script = textwrap.dedent(
        """
        from poetrylab.clients import fetch
        from poetrylab.servers import BlockingPoetryServer

        with BlockingPoetryServer(b"a one-shot poem", delay=0.001, num_bytes=4) as server:
            [download] = fetch("coroutine", [("127.0.0.1", server.port)], timeout=5.0)
            print(download.summary())
            assert download.data == b"a one-shot poem", download
            try:
                fetch("protocol", [("127.0.0.1", server.port)], timeout=5.0)
            except RuntimeError as exc:
                print("second:", exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("task 1: 15 bytes from 127.0.0.1:")
    assert second.startswith("second: the Twisted reactor has already run")
