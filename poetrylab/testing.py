"""Helpers for testing code that talks to poetry servers: yours, in notebook 16, and ours.

:class:`ServerProcess` runs ``poetrylab serve ...`` in a child process and waits for its
``listening on HOST:PORT`` lines, so a test (or a benchmark) talks to a real server in
another process, exactly as a learner with netcat would.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from poetrylab.download import Address, parse_address

__all__ = ["ServerProcess", "ServerStartError", "read_to_eof"]

_LISTENING = re.compile(r"^listening on (\S+)$")


class ServerStartError(RuntimeError):
    """The server process exited or stayed silent instead of saying it was listening."""


class ServerProcess:
    """A ``poetrylab serve KIND ARGS...`` child process, started and ready on return.

    ``addresses`` holds one :class:`Address` per ``listening on`` line (``address`` is the
    first). :meth:`stop` sends SIGINT (or another signal) and returns the exit status.
    Use it as a context manager so the process never outlives the test.
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
        self.addresses: list[Address] = []
        self.stdout_lines: list[str] = []
        try:
            self._wait_listening(listeners, timeout)
        except BaseException:
            self.kill()
            raise

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

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Send ``sig``, wait up to ``timeout`` s, and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"{' '.join(self.argv[2:])} ignored signal {sig} for {timeout} s")

    def kill(self) -> None:
        """Kill the process at once (cleanup after a failure)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def stderr_text(self) -> str:
        """Everything the process wrote to stderr (call after :meth:`stop`)."""
        stream = self.process.stderr
        if stream is None or stream.closed:
            return ""
        return stream.read().decode("utf-8", errors="replace")

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
    """Read everything a server sends until it closes, as netcat would; raise on timeout."""
    import socket

    deadline = time.monotonic() + timeout
    with socket.create_connection(tuple(address), timeout=timeout) as sock:
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
    """Run ``poetrylab ARGS`` to completion and return the completed process (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "poetrylab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
