"""One record shared by every client: what arrived from one server, and when.

Every client model (notebooks 01-03 and 08) fills a :class:`Download` per server: when it
started, when it connected, each chunk's arrival time and size, the bytes themselves, and
the error if it failed. The benchmark (notebook 17) and the timeline plots are built on
this record alone, so all models can be compared on the same terms.

Times are seconds from ``time.perf_counter`` unless a client is given another clock (tests
pass a ``task.Clock``'s ``seconds``). On Linux ``perf_counter`` is the system-wide
monotonic clock, so times taken in different processes on one machine line up.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Address", "Chunk", "Download", "parse_address", "DownloadError", "now"]

now: Callable[[], float] = time.perf_counter


class Address(NamedTuple):
    """A server's host and port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)$")


def parse_address(
    text: str | Address | tuple[str, int], default_host: str = "127.0.0.1"
) -> Address:
    """Parse ``HOST:PORT``, ``[V6]:PORT`` or a bare ``PORT`` into an :class:`Address`.

    Raises ValueError with the accepted forms when the text is none of them.
    """
    if isinstance(text, tuple):
        return Address(str(text[0]), int(text[1]))
    text = text.strip()
    if text.isdigit():
        host, port = default_host, int(text)
    else:
        match = _ADDRESS.match(text)
        if not match:
            raise ValueError(f"{text!r} is not an address: write HOST:PORT (or just PORT)")
        host = match["v6"] or match["host"] or default_host
        port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"port {port} in {text!r} is out of range (1-65535)")
    return Address(host, port)


class DownloadError(Exception):
    """A download failed; ``download`` holds what arrived before it did."""

    def __init__(self, download: Download):
        super().__init__(f"{download.address}: {download.error}")
        self.download = download


@dataclass(frozen=True)
class Chunk:
    """``size`` bytes arrived at time ``t``."""

    t: float
    size: int


@dataclass
class Download:
    """What one client got from one server: timings, chunks, bytes, and the error if any.

    Not thread-safe: one client fills it from one thread, then hands it on.
    """

    address: Address
    client: str = ""
    task: int = 0
    started: float | None = None
    connected: float | None = None
    finished: float | None = None
    chunks: list[Chunk] = field(default_factory=list)
    error: str | None = None
    _data: bytearray = field(default_factory=bytearray, repr=False)

    def start(self, t: float | None = None) -> None:
        """Mark the moment the client began on this server."""
        self.started = now() if t is None else t

    def connect(self, t: float | None = None) -> None:
        """Mark the moment the connection was made."""
        self.connected = now() if t is None else t

    def receive(self, data: bytes, t: float | None = None) -> None:
        """Record that ``data`` arrived (at ``t``, or now)."""
        if data:
            self.chunks.append(Chunk(now() if t is None else t, len(data)))
            self._data += data

    def finish(self, error: str | None = None, t: float | None = None) -> None:
        """Mark the download over; ``error`` is a one-line reason when it failed.

        Only the first call counts, so a timeout racing a late close cannot overwrite it.
        """
        if self.finished is None:
            self.finished = now() if t is None else t
            self.error = error

    @property
    def ok(self) -> bool:
        """True once finished without an error."""
        return self.finished is not None and self.error is None

    @property
    def data(self) -> bytes:
        """The bytes received so far."""
        return bytes(self._data)

    @property
    def text(self) -> str:
        """The poem as text (UTF-8; a broken character shows as U+FFFD)."""
        return self._data.decode("utf-8", errors="replace")

    @property
    def nbytes(self) -> int:
        """How many bytes arrived."""
        return len(self._data)

    @property
    def elapsed(self) -> float | None:
        """Seconds from start to finish, or None while it runs."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def summary(self) -> str:
        """One line for a report: bytes, server, seconds, or the error."""
        if self.error:
            return f"task {self.task}: FAILED {self.address}: {self.error}"
        elapsed = self.elapsed
        secs = f"{elapsed:.3f} s" if elapsed is not None else "unfinished"
        return f"task {self.task}: {self.nbytes} bytes from {self.address} in {secs}"

    def to_dict(self, origin: float = 0.0, include_data: bool = False) -> dict[str, Any]:
        """Plain data for JSON: times relative to ``origin``, chunks as ``[t, size]`` pairs."""

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - origin, 6)

        out: dict[str, Any] = {
            "address": str(self.address),
            "client": self.client,
            "task": self.task,
            "started": rel(self.started),
            "connected": rel(self.connected),
            "finished": rel(self.finished),
            "bytes": self.nbytes,
            "error": self.error,
            "chunks": [[rel(c.t), c.size] for c in self.chunks],
        }
        if include_data:
            out["text"] = self.text
        return out


def describe_error(exc: BaseException | None) -> str:
    """A one-line, human reason for a socket or Twisted failure (no traceback).

    ``None`` (a Failure that lost its exception) reads "unknown error".
    """
    if exc is None:
        return "unknown error"
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    friendly = {
        "ConnectionRefusedError": "connection refused (is a server listening there?)",
        "ConnectionResetError": "connection reset by the server",
        "ConnectionLost": "connection lost before the poem was complete",
        "TimeoutError": "timed out",
        "socket.timeout": "timed out",
    }
    if name in friendly:
        return friendly[name]
    return f"{name}: {text}" if text else name
