"""Poetry servers: the slow, fast and blocking ones every lesson talks to.

The poetry protocol is the simplest there is: connect, and the server writes the poem
(UTF-8) and closes. A *slow* server writes ``num_bytes`` every ``delay`` seconds, so
downloads take long enough to watch; netcat is a valid client.

* :class:`SlowPoetryProtocol` / :func:`listen_slow` — Twisted, paced with ``callLater``,
  any number of clients at once (notebooks 00, 02, 03).
* :class:`FastPoetryProtocol` / :func:`listen_fast` — Twisted, the whole poem at once.
* :class:`BlockingPoetryServer` — plain sockets and ``time.sleep``, one client at a time:
  the server that shows why blocking code does not scale (notebook 01).

Every Twisted server takes its ``reactor``; nothing here imports the global one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
from typing import Any

from twisted.internet import interfaces
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.python.failure import Failure

__all__ = [
    "BlockingPoetryServer",
    "FastPoetryProtocol",
    "PoetryFactory",
    "SlowPoetryProtocol",
    "listen_fast",
    "listen_slow",
    "poem_duration",
]

log = logging.getLogger(__name__)

DEFAULT_DELAY = 0.1
DEFAULT_NUM_BYTES = 10


def check_pacing(delay: float, num_bytes: int) -> None:
    """Raise ValueError, saying what is allowed, unless ``delay`` ≥ 0 and ``num_bytes`` ≥ 1."""
    if not delay >= 0 or math.isinf(delay):
        raise ValueError(f"delay must be a finite number of seconds >= 0, not {delay}")
    if num_bytes < 1:
        raise ValueError(f"num_bytes must be at least 1, not {num_bytes}")


def poem_duration(size: int, num_bytes: int, delay: float) -> float:
    """Seconds a slow server takes to send ``size`` bytes: one chunk now, the rest paced."""
    chunks = max(1, math.ceil(size / num_bytes))
    return (chunks - 1) * delay


class SlowPoetryProtocol(Protocol):
    """Write the poem ``num_bytes`` at a time, one chunk every ``delay`` seconds, then close.

    The first chunk goes out as soon as the client connects. When the client hangs up
    early, the pending ``callLater`` is cancelled so nothing is written to a dead
    connection.
    """

    factory: PoetryFactory

    def __init__(self) -> None:
        self._offset = 0
        self._pending: interfaces.IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.factory.connections += 1
        self._send_next()

    def _send_next(self) -> None:
        self._pending = None
        poem, n = self.factory.poem, self.factory.num_bytes
        chunk = poem[self._offset : self._offset + n]
        self._offset += len(chunk)
        if chunk:
            self.transport.write(chunk)
        if self._offset >= len(poem):
            self.transport.loseConnection()
        else:
            self._pending = self.factory.reactor.callLater(self.factory.delay, self._send_next)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
            log.info("client left after %d of %d bytes", self._offset, len(self.factory.poem))
        self._pending = None
        self.factory.connections -= 1


class FastPoetryProtocol(Protocol):
    """Write the whole poem at once and close."""

    factory: PoetryFactory

    def connectionMade(self) -> None:
        self.factory.connections += 1
        self.transport.write(self.factory.poem)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.factory.connections -= 1


class PoetryFactory(ServerFactory):
    """Serve one poem with the slow protocol, or the fast one when ``delay`` is None.

    ``connections`` counts the clients being served right now.
    """

    def __init__(
        self,
        poem: bytes,
        reactor: Any,
        delay: float | None = DEFAULT_DELAY,
        num_bytes: int = DEFAULT_NUM_BYTES,
    ) -> None:
        if delay is not None:
            check_pacing(delay, num_bytes)
        self.poem = poem
        self.reactor = reactor
        self.delay = delay if delay is not None else 0.0
        self.num_bytes = num_bytes
        self.protocol = SlowPoetryProtocol if delay is not None else FastPoetryProtocol
        self.connections = 0


def listen_slow(
    reactor: Any,
    poem: bytes,
    port: int = 0,
    interface: str = "127.0.0.1",
    delay: float = DEFAULT_DELAY,
    num_bytes: int = DEFAULT_NUM_BYTES,
) -> interfaces.IListeningPort:
    """Listen for poetry clients with the slow server; return the listening port.

    Call it in the reactor thread. Raises ``CannotListenError`` when the port is taken.
    """
    factory = PoetryFactory(poem, reactor, delay=delay, num_bytes=num_bytes)
    return reactor.listenTCP(port, factory, interface=interface)


def listen_fast(
    reactor: Any, poem: bytes, port: int = 0, interface: str = "127.0.0.1"
) -> interfaces.IListeningPort:
    """Listen with the fast server (whole poem at once); return the listening port."""
    return reactor.listenTCP(port, PoetryFactory(poem, reactor, delay=None), interface=interface)


class BlockingPoetryServer:
    """A poetry server made of plain blocking sockets: one client at a time, by design.

    While it sleeps between chunks for one client, every other client waits in the
    listen backlog. ``serve_forever()`` runs it in the calling thread; ``start()`` runs it
    in a daemon thread; ``stop()`` (thread-safe) makes either return promptly and closes
    the socket. The port is bound as soon as the object is built, so ``address`` is
    known before serving starts.
    """

    def __init__(
        self,
        poem: bytes,
        port: int = 0,
        interface: str = "127.0.0.1",
        delay: float = DEFAULT_DELAY,
        num_bytes: int = DEFAULT_NUM_BYTES,
    ) -> None:
        check_pacing(delay, num_bytes)
        self.poem = poem
        self.delay = delay
        self.num_bytes = num_bytes
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((interface, port))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen(128)
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._serving = False
        self.served = 0

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return self._sock.getsockname()[0]

    @property
    def port(self) -> int:
        """The port the server is bound to."""
        return self._sock.getsockname()[1]

    def serve_forever(self) -> None:
        """Accept and serve clients one at a time until :meth:`stop` is called."""
        self._serving = True
        with selectors.DefaultSelector() as sel:
            sel.register(self._sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            try:
                while not self._stopping.is_set():
                    ready = {key.fileobj for key, _ in sel.select()}
                    if self._wake_r in ready or self._stopping.is_set():
                        break
                    try:
                        conn, peer = self._sock.accept()
                    except OSError:
                        continue
                    with conn:
                        self._serve_one(conn, peer)
            finally:
                self._serving = False
                self._close()

    def _serve_one(self, conn: socket.socket, peer: Any) -> None:
        conn.settimeout(None)
        sent = 0
        try:
            while sent < len(self.poem) and not self._stopping.is_set():
                # The lesson: the whole server stops here; nobody else is served.
                if sent and self._stopping.wait(self.delay):
                    break
                chunk = self.poem[sent : sent + self.num_bytes]
                conn.sendall(chunk)
                sent += len(chunk)
            self.served += 1
        except OSError as exc:
            log.info("client %s left after %d bytes: %s", peer, sent, exc)

    def start(self) -> BlockingPoetryServer:
        """Serve in a daemon thread; return self."""
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"blocking-poetry-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; wait up to ``timeout`` s for the thread.

        Thread-safe, and safe to call from a signal handler or more than once.
        """
        self.request_stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(
                    f"blocking server on port {self.port} did not stop within {timeout} s"
                )
        if not self._serving:
            self._close()

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return soon; it closes the socket on its way out.

        Never blocks and never closes anything, so it is safe in a signal handler that
        interrupts ``serve_forever`` in the same thread.
        """
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _close(self) -> None:
        for s in (self._sock, self._wake_r, self._wake_w):
            s.close()

    def __enter__(self) -> BlockingPoetryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
