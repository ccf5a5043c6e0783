"""The gateway under load, with the stdlib client from many threads, and a backend that dies.

The servers run as `poetrylab serve` subprocesses, so this process only runs the clients
(and, to watch calls arrive, a silent stand-in backend). Nothing here waits on the clock:
each step waits, with a timeout, for state it can observe.
"""

from __future__ import annotations

import contextlib
import socket
import threading
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

        with ThreadPoolExecutor(500) as pool:
            results = list(pool.map(call, range(500)))
        mismatched = [(i, r) for i, r in enumerate(results) if r[0] != r[1]]
        assert not mismatched, mismatched[:3]
        assert gateway.stop() == 0
        assert gateway.stderr_text().count("connecting to the backend") == 1, "one connection"


class SilentBackend:
    """A stand-in tagged backend that reads requests and never answers.

    It counts the request lines that reach it, so a test can wait until N calls are
    really in flight instead of sleeping, then :meth:`kill` drops every connection and
    stops listening, as a backend process that dies would.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.requests = 0
        self._connections: list[socket.socket] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed by kill()
            while True:
                connection, _ = self.listener.accept()
                with self._changed:
                    self._connections.append(connection)
                threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := connection.recv(65536):
                with self._changed:
                    self.requests += data.count(b"\n")
                    self._changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.requests >= count, timeout):
                raise AssertionError(
                    f"only {self.requests} of {count} calls reached the backend in {timeout} s"
                )

    def kill(self) -> None:
        # shutdown() first: close() alone would leave the thread blocked in accept()
        # holding the socket open, still taking connections.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._changed:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()


def test_killing_the_backend_fails_calls_in_flight_cleanly_and_a_restart_serves_the_next() -> None:
    backend = SilentBackend()
    port = str(backend.port)
    gateway = ServerProcess("xmlrpc", "--backend", f"127.0.0.1:{port}", "--timeout", "30")
    try:
        with gateway:
            url = f"http://{gateway.address}/RPC2"
            with ThreadPoolExecutor(40) as pool:
                in_flight = [pool.submit(one_call, url, i) for i in range(40)]
                backend.wait_for_requests(40)  # all 40 forwarded, none answered
                backend.kill()
                outcomes = [f.result(30) for f in in_flight]
            faults = [got for _, got in outcomes if isinstance(got, xmlrpc.client.Fault)]
            assert len(faults) == 40, "every call in flight failed"
            # 502 "lost the connection", not 504: they failed when the connection went,
            # not when the 30 s timeout ran out.
            assert {f.faultCode for f in faults} == {502}
            assert all("lost the connection" in f.faultString for f in faults), faults[0]

            _, got = one_call(url, 3)
            assert isinstance(got, xmlrpc.client.Fault) and got.faultCode == 502, "still down"
            assert "cannot connect" in got.faultString

            with ServerProcess("tagged", "--port", port, "--jitter", "0.01"):
                results = [one_call(url, i) for i in range(6)]
                assert all(expected == got for expected, got in results), results
            assert gateway.stop() == 0
    finally:
        backend.kill()
