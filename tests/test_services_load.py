"""The gateway under load, with the stdlib client from many threads, and a backend that dies.

Both servers run as `poetrylab serve` subprocesses, so this process only runs the clients.
"""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from poetrylab.corpus import list_poems, load_poem
from poetrylab.testing import ServerProcess

POEMS = {name: load_poem(name).text for name in list_poems()}


@pytest.fixture
def backend() -> Iterator[ServerProcess]:
    with ServerProcess("tagged", "--jitter", "0.05", "--seed", "6") as server:
        yield server


def gateway_for(backend: ServerProcess, *extra: str) -> ServerProcess:
    return ServerProcess("xmlrpc", "--backend", str(backend.address), *extra)


def one_call(url: str, i: int) -> tuple[Any, Any]:
    """Call one method chosen by ``i``; return (expected, got) — got may be a Fault."""
    with xmlrpc.client.ServerProxy(url) as server:
        try:
            kind = i % 3
            if kind == 0:
                return i * 3 + 7, server.add(i * 3, 7)
            if kind == 1:
                text = f"Poem NUMBER {i}\nSecond LINE {i}\n"
                return text.lower(), server.transform("cummingsify", text)
            name = sorted(POEMS)[i % len(POEMS)]
            return POEMS[name], server.poem(name)
        except xmlrpc.client.Fault as fault:
            return None, fault


def test_500_concurrent_calls_from_threads_each_get_their_own_reply(backend: ServerProcess) -> None:
    with gateway_for(backend) as gateway:
        url = f"http://{gateway.address}/RPC2"
        start = threading.Barrier(500, timeout=30)

        def call(i: int) -> tuple[Any, Any]:
            start.wait()  # all 500 in flight together
            return one_call(url, i)

        began = time.monotonic()
        with ThreadPoolExecutor(500) as pool:
            results = list(pool.map(call, range(500)))
        elapsed = time.monotonic() - began
        mismatched = [(i, r) for i, r in enumerate(results) if r[0] != r[1]]
        assert not mismatched, mismatched[:3]
        assert elapsed < 20
        assert gateway.stop() == 0
        assert gateway.stderr_text().count("connecting to the backend") == 1, "one connection"


def test_killing_the_backend_fails_calls_in_flight_cleanly_and_a_restart_serves_the_next() -> None:
    slow = ServerProcess("tagged", "--delay", "2.0")
    port = str(slow.address.port)
    with slow, gateway_for(slow, "--timeout", "10") as gateway:
        url = f"http://{gateway.address}/RPC2"
        with ThreadPoolExecutor(40) as pool:
            in_flight = [pool.submit(one_call, url, i) for i in range(40)]
            time.sleep(0.5)  # all 40 now wait on the backend's 2 s delay
            began = time.monotonic()
            slow.kill()
            outcomes = [f.result(10) for f in in_flight]
            failed_after = time.monotonic() - began
        faults = [got for _, got in outcomes if isinstance(got, xmlrpc.client.Fault)]
        assert len(faults) == 40, "every call in flight failed"
        assert {f.faultCode for f in faults} == {502}
        assert all("lost the connection" in f.faultString for f in faults), faults[0]
        assert failed_after < 1.5, "failed as soon as the connection went, not at a timeout"

        _, got = one_call(url, 3)
        assert isinstance(got, xmlrpc.client.Fault) and got.faultCode == 502, "still down"
        assert "cannot connect" in got.faultString

        with ServerProcess("tagged", "--port", port, "--jitter", "0.01"):
            results = [one_call(url, i) for i in range(6)]
            assert all(expected == got for expected, got in results), results
        assert gateway.stop() == 0
