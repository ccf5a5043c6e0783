"""What every poetrylab server does with its connections, in one place.

The servers of notebooks 00-03 (:mod:`poetrylab.servers`) and the services of 06, 07
and 13 (:mod:`poetrylab.services`) share three small things: the listen backlog, how a
log line names the client (``127.0.0.1:50312``), and :class:`ClockedTimeoutMixin`,
Twisted's ``TimeoutMixin`` timed by the protocol's own reactor, which is how each of them
drops a client that stops reading or never sends its request, and :func:`send_all`,
which writes a whole poem or reply no faster than the client reads it.

Importing this module imports Twisted's protocol helpers but no reactor.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.protocols.basic import FileSender
from twisted.protocols.policies import TimeoutMixin

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from poetrylab._typing import ReactorTime, TCPTransport

__all__ = ["BACKLOG", "ClockedTimeoutMixin", "SendingMixin", "peer_of", "send_all"]

log = logging.getLogger(__name__)

BACKLOG = 1024
"""Connections the kernel may queue for ``accept`` (Twisted's default is 50).

With 50, a hundred clients connecting at once (``poetrylab get`` with 100 addresses,
the benchmark) overflow the queue and the last ones wait a second for TCP to retry.
"""


def peer_of(transport: Any) -> str:
    """``HOST:PORT`` of the client at the other end of ``transport``, or ``?``."""
    try:
        peer = transport.getPeer()
        return f"{peer.host}:{peer.port}"
    except Exception:  # a test transport without a peer, or a connection already gone
        return "?"


class ClockedTimeoutMixin(TimeoutMixin):
    """Twisted's ``TimeoutMixin``, timed by ``self.clock`` instead of the global reactor.

    Set ``clock`` (the factory's reactor, or a ``task.Clock`` in a test) before the
    first ``setTimeout``; then ``setTimeout(seconds)`` arms the timer, ``setTimeout(None)``
    disarms it, ``resetTimeout()`` starts it again, and ``timeoutConnection()`` runs when
    it expires. Not thread-safe: use it in the reactor thread.
    """

    clock: ReactorTime

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        return self.clock.callLater(period, func)

    # TimeoutMixin's own methods carry no annotations: these say what they take.

    def setTimeout(self, period: float | None) -> float | None:
        previous: float | None = super().setTimeout(period)  # type: ignore[no-untyped-call]
        return previous

    def resetTimeout(self) -> None:
        super().resetTimeout()  # type: ignore[no-untyped-call]


class _ReportingFileSender(FileSender):
    """Twisted's FileSender, calling ``progressed()`` each time the client took a chunk."""

    def __init__(self, progressed: Callable[[], object]) -> None:
        self._progressed = progressed

    def resumeProducing(self) -> None:
        self._progressed()
        super().resumeProducing()  # type: ignore[no-untyped-call]  # Twisted: unannotated


def send_all(
    transport: TCPTransport, data: bytes, progressed: Callable[[], object]
) -> Deferred[None]:
    """Write ``data`` to ``transport`` a chunk at a time, as fast as the client takes it.

    Twisted's ``FileSender`` (a *pull* producer) writes the next 16 KiB chunk each time
    the transport's buffer has drained, so a client that reads slowly costs one chunk of
    memory, not a copy of ``data``. ``progressed()`` is called whenever the client has
    taken a chunk (reset a timeout there). Returns a Deferred that fires with None once
    the transport has taken everything, or fails if the connection goes first.
    """
    sender = _ReportingFileSender(progressed)
    sent: Deferred[bytes] = sender.beginFileTransfer(io.BytesIO(data), transport)  # type: ignore[no-untyped-call]  # Twisted: unannotated
    return sent.addCallback(lambda _: None)


class SendingMixin(ClockedTimeoutMixin):
    """What a server protocol that sends a poem (or a reply) and closes has in common.

    :meth:`send_and_close` writes the bytes with :func:`send_all` and closes once the
    transport has taken them all; a client that takes nothing for ``send_timeout``
    seconds is dropped (:meth:`timeoutConnection`, one log line naming it). A client
    that closes its sending side (``nc -N``) still gets everything: the protocol is
    half-closeable (declare ``IHalfCloseableProtocol`` with ``@implementer``), and
    :meth:`readConnectionLost` does nothing. Set ``clock`` before sending. Not
    thread-safe: use it in the reactor thread.
    """

    transport: TCPTransport

    def send_and_close(self, data: bytes, send_timeout: float | None) -> None:
        self.setTimeout(send_timeout)
        sent = send_all(self.transport, data, self.resetTimeout)
        sent.addCallbacks(self._all_sent, lambda _: None)  # the errback: the client left

    def _all_sent(self, _: None) -> None:
        self.setTimeout(None)
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        log.warning(
            "%s: took nothing for %s s; connection dropped", peer_of(self.transport), self.timeOut
        )
        self.transport.abortConnection()

    def readConnectionLost(self) -> None:
        """The client will send nothing more; it still gets everything."""

    def writeConnectionLost(self) -> None:
        self.transport.abortConnection()
