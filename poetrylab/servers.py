"""Poetry servers: the slow, fast and blocking ones every lesson talks to.

The poetry protocol is the simplest there is: connect, and the server writes the poem
(UTF-8) and closes. A *slow* server writes ``num_bytes`` every ``delay`` seconds, so
downloads take long enough to watch; netcat is a valid client.

* :class:`SlowPoetryProtocol` / :func:`listen_slow` — Twisted, paced with ``callLater``,
  any number of clients at once (notebooks 00, 02, 03, 16).
* :class:`FastPoetryProtocol` / :func:`listen_fast` — Twisted, the whole poem as fast as
  the client takes it.
* :class:`BlockingPoetryServer` — plain sockets, one client at a time: the server that
  shows why blocking code does not scale (notebook 01).

What a hostile or broken client can do to them, and what they do about it: a client
that sends anything is ignored (the poem comes anyway); one that half-closes its side
after connecting (``nc -N``) still gets the whole poem; one that stops reading costs at
most the transport's buffer (the Twisted servers stop producing while it is full) and is
dropped once the server has waited ``send_timeout`` seconds to send it more.

Every Twisted server takes its ``reactor``; nothing here imports the global one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING, cast

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from poetrylab._connections import BACKLOG, SendingMixin, peer_of

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from poetrylab._typing import ListeningPort, ReactorTCP, ReactorTime, TCPTransport

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_NUM_BYTES",
    "DEFAULT_SEND_TIMEOUT",
    "BlockingPoetryServer",
    "FastPoetryProtocol",
    "PoetryFactory",
    "SlowPoetryProtocol",
    "check_pacing",
    "listen_fast",
    "listen_slow",
    "poem_duration",
]

log = logging.getLogger(__name__)

DEFAULT_DELAY = 0.1
"""Seconds between two chunks of a slow server."""

DEFAULT_NUM_BYTES = 10
"""Bytes per chunk of a slow server."""

DEFAULT_SEND_TIMEOUT = 10.0
"""Seconds a client may go without taking any of the poem before it is dropped."""


def check_pacing(delay: float, num_bytes: int) -> None:
    """Raise ValueError, saying what is allowed, unless ``delay`` ≥ 0 and ``num_bytes`` ≥ 1."""
    if not delay >= 0 or math.isinf(delay):
        raise ValueError(f"delay must be a finite number of seconds >= 0, not {delay}")
    if num_bytes < 1:
        raise ValueError(f"num_bytes must be at least 1, not {num_bytes}")


def _check_send_timeout(send_timeout: float | None) -> None:
    if send_timeout is not None and (not send_timeout > 0 or math.isinf(send_timeout)):
        raise ValueError(f"send_timeout must be a finite number of seconds > 0, not {send_timeout}")


def poem_duration(size: int, num_bytes: int, delay: float) -> float:
    """Seconds a slow server takes to send ``size`` bytes: one chunk now, the rest paced."""
    chunks = max(1, math.ceil(size / num_bytes))
    return (chunks - 1) * delay


@implementer(IPushProducer, IHalfCloseableProtocol)
class SlowPoetryProtocol(Protocol, SendingMixin):
    """Write the poem ``num_bytes`` at a time, one chunk every ``delay`` seconds, then close.

    The first chunk goes out as soon as the client connects. When the client hangs up
    early, the pending ``callLater`` is cancelled so nothing is written to a dead
    connection.

    The protocol is also a *producer* for its own transport: when the client stops
    reading and the transport's buffer fills up, the transport calls
    :meth:`pauseProducing` and the pacing stops; :meth:`resumeProducing` starts it again
    once the buffer has drained. A client paused for ``send_timeout`` seconds is dropped;
    one that closes its sending side (``nc -N``) still gets the whole poem.
    """

    factory: PoetryFactory
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def __init__(self) -> None:
        self._offset = 0
        self._pending: IDelayedCall | None = None
        self._paused = False

    def connectionMade(self) -> None:
        self.clock = self.factory.reactor
        self.factory.connections += 1
        self.transport.registerProducer(self, True)
        self._send_next()

    def _send_next(self) -> None:
        self._pending = None
        poem, n = self.factory.poem, self.factory.num_bytes
        chunk = poem[self._offset : self._offset + n]
        self._offset += len(chunk)
        if chunk:
            self.transport.write(chunk)
        last = self._offset >= len(poem)
        self.chunk_sent(len(chunk), last)
        if last:
            self.transport.unregisterProducer()
            self.transport.loseConnection()
        elif not self._paused:
            self._pending = self.clock.callLater(self.factory.delay, self._send_next)

    def chunk_sent(self, size: int, last: bool) -> None:
        """Called after each chunk is written (``last`` for the poem's end); does nothing.

        A hook for subclasses: the benchmark's classic pacing measures each chunk's
        lateness here without touching how the poem is sent.
        """

    # IPushProducer: the transport's buffer is full, or has drained, or the end has come.

    def pauseProducing(self) -> None:
        self._paused = True
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.setTimeout(self.factory.send_timeout)

    def resumeProducing(self) -> None:
        self._paused = False
        self.setTimeout(None)
        if self._pending is None and self._offset < len(self.factory.poem):
            self._pending = self.clock.callLater(self.factory.delay, self._send_next)

    def stopProducing(self) -> None:
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
            log.info(
                "%s: left after %d of %d bytes",
                peer_of(self.transport), self._offset, len(self.factory.poem),
            )  # fmt: skip
        self._pending = None
        self.factory.connections -= 1


@implementer(IHalfCloseableProtocol)
class FastPoetryProtocol(Protocol, SendingMixin):
    """Write the whole poem as fast as the client takes it, and close.

    :func:`~poetrylab._connections.send_all` writes it with Twisted's ``FileSender``, a
    chunk each time the transport's buffer has drained (a *pull* producer), so a client
    that reads slowly costs one chunk of memory, not a copy of the poem; one that takes
    nothing for ``send_timeout`` seconds is dropped.
    """

    factory: PoetryFactory
    transport: TCPTransport  # type: ignore[assignment]  # Twisted: ITransport | None; ours is TCP

    def connectionMade(self) -> None:
        self.clock = self.factory.reactor
        self.factory.connections += 1
        self.send_and_close(self.factory.poem, self.factory.send_timeout)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self.factory.connections -= 1


class PoetryFactory(ServerFactory):
    """Serve one poem with the slow protocol, or the fast one when ``delay`` is None.

    ``connections`` counts the clients being served right now. ``reactor`` is whatever
    gives the time and timers: the real reactor, or a ``task.Clock`` in a test.
    ``send_timeout`` is how long a client may go without taking any of the poem.
    Raises ValueError for a negative or infinite ``delay``, ``num_bytes`` below 1, or a
    ``send_timeout`` that is not a finite number above 0.
    """

    noisy = False  # no "Starting factory" log line for every listener

    def __init__(
        self,
        poem: bytes,
        reactor: ReactorTime,
        delay: float | None = DEFAULT_DELAY,
        num_bytes: int = DEFAULT_NUM_BYTES,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        if delay is not None:
            check_pacing(delay, num_bytes)
        _check_send_timeout(send_timeout)
        self.poem = poem
        self.reactor = reactor
        self.delay = delay if delay is not None else 0.0
        self.num_bytes = num_bytes
        self.send_timeout = send_timeout
        kind: type[Protocol] = FastPoetryProtocol if delay is None else SlowPoetryProtocol
        self.protocol = kind
        self.connections = 0


def _listen(
    reactor: ReactorTCP, factory: PoetryFactory, port: int, interface: str
) -> ListeningPort:
    listening = reactor.listenTCP(port, factory, backlog=BACKLOG, interface=interface)
    return cast("ListeningPort", listening)


def listen_slow(
    reactor: ReactorTCP,
    poem: bytes,
    port: int = 0,
    interface: str = "127.0.0.1",
    delay: float = DEFAULT_DELAY,
    num_bytes: int = DEFAULT_NUM_BYTES,
    send_timeout: float = DEFAULT_SEND_TIMEOUT,
) -> ListeningPort:
    """Listen for poetry clients with the slow server; return the listening port.

    ``reactor`` must also give the time and timers (the real reactor does). Call it in
    the reactor thread. Raises ``CannotListenError`` when the port is taken, ValueError
    for bad pacing (see :class:`PoetryFactory`).
    """
    factory = PoetryFactory(
        poem, cast("ReactorTime", reactor), delay=delay, num_bytes=num_bytes,
        send_timeout=send_timeout,
    )  # fmt: skip
    return _listen(reactor, factory, port, interface)


def listen_fast(
    reactor: ReactorTCP,
    poem: bytes,
    port: int = 0,
    interface: str = "127.0.0.1",
    send_timeout: float = DEFAULT_SEND_TIMEOUT,
) -> ListeningPort:
    """Listen with the fast server (whole poem at once); return the listening port.

    Call it in the reactor thread. Raises ``CannotListenError`` when the port is taken.
    """
    factory = PoetryFactory(
        poem, cast("ReactorTime", reactor), delay=None, send_timeout=send_timeout
    )
    return _listen(reactor, factory, port, interface)


class _StoppingError(Exception):
    """Raised inside the blocking server when :meth:`BlockingPoetryServer.stop` was called."""


class BlockingPoetryServer:
    """A poetry server made of plain blocking code: one client at a time, by design.

    While it waits between chunks for one client, every other client waits in the
    listen backlog: that is the lesson. Two things are not part of the lesson and are
    guarded: every chunk must be taken by the client within ``send_timeout`` seconds
    (or the client is dropped and the next one served), and :meth:`stop` (or a signal
    handler calling :meth:`request_stop`) ends the server at once, whatever the client
    is doing. Every wait is a ``select`` on the client's socket and on a wake-up socket
    that :meth:`request_stop` writes to, so nothing can sit in a ``sendall`` that a
    signal does not end.

    ``serve_forever()`` runs it in the calling thread; ``start()`` runs it in a daemon
    thread; ``stop()`` (thread-safe) makes either return promptly and closes the socket.
    The port is bound as soon as the object is built, so ``host`` and ``port`` are known
    before serving starts; a port that cannot be bound raises OSError.
    """

    def __init__(
        self,
        poem: bytes,
        port: int = 0,
        interface: str = "127.0.0.1",
        delay: float = DEFAULT_DELAY,
        num_bytes: int = DEFAULT_NUM_BYTES,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        check_pacing(delay, num_bytes)
        _check_send_timeout(send_timeout)
        self.poem = poem
        self.delay = delay
        self.num_bytes = num_bytes
        self.send_timeout = send_timeout
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((interface, port))
        except OSError:
            self._sock.close()
            raise
        self._bound = self._sock.getsockname()
        self._sock.listen(BACKLOG)
        self._sock.setblocking(False)  # a client gone before accept() must not block it
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._serving = False
        self.served = 0

    @property
    def host(self) -> str:
        """The address the server is bound to (still known after it stopped)."""
        return str(self._bound[0])

    @property
    def port(self) -> int:
        """The port the server is bound to (still known after it stopped)."""
        return int(self._bound[1])

    def serve_forever(self) -> None:
        """Accept and serve clients one at a time until :meth:`stop` is called."""
        self._serving = True
        try:
            with selectors.DefaultSelector() as self._selector:
                self._selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    if not self._wait_for(self._sock, selectors.EVENT_READ, None):
                        break
                    try:
                        conn, peer = self._sock.accept()
                    except OSError:  # the client left before we got to it
                        continue
                    with conn:
                        self._serve_one(conn, f"{peer[0]}:{peer[1]}")
        except _StoppingError:
            pass
        finally:
            self._serving = False
            self._close()

    def _wait_for(self, sock: socket.socket, event: int, timeout: float | None) -> bool:
        """Wait until ``sock`` is ready for ``event``; False on timeout.

        Raises :class:`_StoppingError` as soon as :meth:`request_stop` has been called.
        """
        self._selector.register(sock, event)
        try:
            ready = {key.fileobj for key, _ in self._selector.select(timeout)}
        finally:
            self._selector.unregister(sock)
        if self._wake_r in ready or self._stopping.is_set():
            raise _StoppingError
        return bool(ready)

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, the blocking way, unless :meth:`request_stop` wakes us."""
        if self._selector.select(seconds) or self._stopping.is_set():
            raise _StoppingError

    def _send(self, conn: socket.socket, chunk: bytes) -> None:
        """Send ``chunk``; raise TimeoutError if the client takes none of it in time."""
        view = memoryview(chunk)
        while view:
            if not self._wait_for(conn, selectors.EVENT_WRITE, self.send_timeout):
                raise TimeoutError(f"took nothing for {self.send_timeout} s")
            view = view[conn.send(view) :]

    def _serve_one(self, conn: socket.socket, peer: str) -> None:
        conn.setblocking(False)
        sent = 0
        try:
            while sent < len(self.poem):
                # The lesson: the whole server stops here; nobody else is served.
                if sent:
                    self._pause(self.delay)
                chunk = self.poem[sent : sent + self.num_bytes]
                self._send(conn, chunk)
                sent += len(chunk)
            self.served += 1
            _discard_input(conn)
        except TimeoutError as exc:
            log.warning("%s: %s after %d bytes; connection dropped", peer, exc, sent)
        except OSError as exc:
            log.info("%s: left after %d of %d bytes: %s", peer, sent, len(self.poem), exc)

    def start(self) -> BlockingPoetryServer:
        """Serve in a daemon thread; return self."""
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"blocking-poetry-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; wait up to ``timeout`` s for the thread.

        Thread-safe, and safe to call more than once. Raises TimeoutError if the serving
        thread has not ended within ``timeout`` seconds.
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
        """Ask :meth:`serve_forever` to return at once; it closes the socket on its way out.

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


def _discard_input(conn: socket.socket, limit: int = 1 << 20) -> None:
    """Read and drop what the client sent, so closing does not reset the connection.

    Closing a socket with unread input sends a reset, which can destroy the end of the
    poem before the client has read it. Reads only what is there already (at most
    ``limit`` bytes); never waits.
    """
    deadline = time.monotonic() + 0.1
    taken = 0
    with contextlib.suppress(OSError):
        while taken < limit and time.monotonic() < deadline:
            data = conn.recv(65536)
            if not data:
                return
            taken += len(data)
