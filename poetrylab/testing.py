"""Helpers for testing code that talks to poetry servers: yours, in notebook 16, and ours.

:class:`ServerProcess` runs ``poetrylab serve ...`` in a child process and waits for its
``listening on HOST:PORT`` lines, so a test (or a benchmark, or the attack script) talks
to a real server in another process, exactly as a learner with netcat would.
:func:`read_to_eof` is that netcat; :func:`run_cli` runs any other ``poetrylab`` command
to completion. :func:`drain` is for tests without sockets: it plays the part of a
transport whose client reads everything, for a server that writes through a producer.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from poetrylab.download import Address, parse_address

if TYPE_CHECKING:
    from twisted.internet.testing import StringTransport

__all__ = ["ServerProcess", "ServerStartError", "drain", "read_to_eof", "run_cli"]

_LISTENING = re.compile(r"^listening on (\S+)$")


class ServerStartError(RuntimeError):
    """The server process exited or stayed silent instead of saying it was listening."""


class ServerProcess:
    """A ``poetrylab serve KIND ARGS...`` child process, started and ready on return.

    ``addresses`` holds one :class:`Address` per ``listening on`` line (``address`` is the
    first). :meth:`stop` sends SIGINT (or another signal) and returns the exit status.
    Everything the server writes is read as it comes (by a thread per stream), so a
    server that logs a lot never stalls on a full pipe; :meth:`stderr_text` returns it.
    Use it as a context manager so the process never outlives the test. Raises
    :class:`ServerStartError` when the server exits or stays silent for ``timeout``
    seconds instead of listening.
    """

    def __init__(
        self,
        kind: str,
        *args: str,
        listeners: int = 1,
        timeout: float = 20.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = [sys.executable, "-m", "poetrylab", "serve", kind, *args]
        child_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
        )
        self.pid = self.process.pid
        self.addresses: list[Address] = []
        self.stdout_lines: list[str] = []
        self._stderr = bytearray()
        self._readers = [threading.Thread(target=self._drain_stderr, daemon=True)]
        self._readers[0].start()
        try:
            self._wait_listening(listeners, timeout)
        except BaseException:
            self.kill()
            raise
        self._readers.append(threading.Thread(target=self._drain_stdout, daemon=True))
        self._readers[-1].start()

    @property
    def address(self) -> Address:
        """The first listener's address."""
        return self.addresses[0]

    def _wait_listening(self, listeners: int, timeout: float) -> None:
        # Read the raw pipe, not a buffered text stream: a buffered readline() may swallow
        # several lines at once, and select() would then wait for data already read.
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        pending = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while len(self.addresses) < listeners:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise ServerStartError(
                        f"{' '.join(self.argv[2:])} did not say 'listening on' within {timeout} s"
                    )
                chunk = os.read(fd, 65536)
                if not chunk:
                    status = self.process.wait()
                    self._readers[0].join(5)
                    raise ServerStartError(
                        f"{' '.join(self.argv[2:])} exited with status {status}: "
                        f"{self.stderr_text().strip()}"
                    )
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", errors="replace")
                    self.stdout_lines.append(line)
                    match = _LISTENING.match(line.strip())
                    if match:
                        self.addresses.append(parse_address(match[1]))

    def _drain_stdout(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(lambda: os.read(fd, 65536), b""):
                self.stdout_lines.extend(raw.decode("utf-8", "replace").splitlines())

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(lambda: os.read(fd, 65536), b""):
                self._stderr += raw

    def rss_kib(self) -> int:
        """The server's resident memory now, in KiB (Linux: from /proc); 0 once it has exited."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def open_fds(self) -> int:
        """How many file descriptors the server has open now (Linux); 0 once it has exited."""
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Send ``sig``, wait up to ``timeout`` s, and return the exit status.

        Raises TimeoutError (after killing it) if the process ignored the signal.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"{' '.join(self.argv[2:])} ignored signal {sig} for {timeout} s")

    def kill(self) -> None:
        """Kill the process at once (cleanup after a failure) and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            if reader is not threading.current_thread():
                reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def stderr_text(self) -> str:
        """Everything the process has written to stderr so far (all of it after :meth:`stop`)."""
        if self.process.poll() is not None:
            self._readers[0].join(5)
        return bytes(self._stderr).decode("utf-8", errors="replace")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(TimeoutError):
                self.stop()
        self.kill()


def read_to_eof(
    address: Address | tuple[str, int], timeout: float = 10.0, chunk: int = 65536
) -> bytes:
    """Read everything a server sends until it closes, as netcat would.

    Raises TimeoutError (``socket.timeout``) when the server is silent for longer than
    the time left of ``timeout`` seconds, and ConnectionError when it refuses or resets.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((address[0], address[1]), timeout=timeout) as sock:
        data = bytearray()
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            got = sock.recv(chunk)
            if not got:
                return bytes(data)
            data += got


def run_cli(
    args: Sequence[str], timeout: float = 60.0, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``poetrylab ARGS`` to completion and return the completed process (text mode).

    Raises ``subprocess.TimeoutExpired`` (after killing it) when it runs over ``timeout``.
    """
    return subprocess.run(
        [sys.executable, "-m", "poetrylab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def drain(transport: StringTransport, limit: int = 100_000) -> bytes:
    """Let a *pull* producer registered on ``transport`` write all it has; return the bytes.

    A real transport asks its pull producer (``registerProducer(p, False)``, such as the
    fast server's ``FileSender``) for more each time its buffer has drained;
    ``StringTransport`` never does. This calls ``resumeProducing()`` until the producer
    unregisters itself, as a client reading everything would make the transport do, and
    returns ``transport.value()``. A streaming producer (``registerProducer(p, True)``)
    is left alone. Raises RuntimeError if the producer is still registered after
    ``limit`` calls.
    """
    for _ in range(limit):
        producer = transport.producer
        if producer is None or transport.streaming:
            written: bytes = transport.value()
            return written
        producer.resumeProducing()
    raise RuntimeError(f"the producer was still writing after {limit} calls")
