"""Checks for notebook 14 (services, twistd and plugins; logging).

* :func:`check_listener_service` — a ``Service`` that listens on loopback when started and
  closes its port when stopped, run inside a ``MultiService`` the way ``twistd`` would
  run it, and fetched from over loopback.
* :func:`check_structured_log` — a server Protocol that logs one structured event per
  client with ``twisted.logger``; the check watches the global log publisher (it adds an
  observer and removes it again: it never begins or redirects logging).
"""

from __future__ import annotations

import string
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import LogEvent, LogLevel, formatEvent, globalLogPublisher

from poetrylab import runtime
from poetrylab._typing import ReactorTime
from poetrylab.corpus import load_poem
from poetrylab.download import Address
from poetrylab.exercises._feedback import short
from poetrylab.exercises._learner import call_learner
from poetrylab.exercises._registry import NotYet, exercise, subclass
from poetrylab.testing import read_to_eof

if TYPE_CHECKING:
    from twisted.logger import ILogObserver

__all__ = ["check_listener_service", "check_structured_log"]

_PATIENCE = 3.0  # closing a port takes one turn of the reactor, not seconds
_LOOPBACK = "127.0.0.1"


# -- exercise 1: a service with a lifecycle -----------------------------------------------


def _start_in_parent(
    reactor: object, service_class: Callable[[bytes, object], Service], poem: bytes
) -> tuple[MultiService, Service]:
    """Reactor thread: build the service, give it a MultiService parent, start the parent."""
    top = MultiService()
    service = call_learner("PoemService(poem, reactor)", service_class, poem, reactor)
    call_learner("setServiceParent", service.setServiceParent, top)
    call_learner("starting the parent, which starts your service", top.startService)
    return top, service


def _stop_parent(reactor: ReactorTime, top: MultiService, service: Service) -> Deferred[Any]:
    """Reactor thread: stop the parent (which stops the child).

    Fires with ``(finished, returned)``: whether the parent finished stopping within
    :data:`_PATIENCE` seconds, and what the child's stopService returned. A parent stuck
    on a Deferred nobody fires is left alone, not cancelled: cancelling would fire it.
    """
    returned: list[object] = []
    stop_child = cast(Callable[[], object], service.stopService)

    def stop_and_note() -> object:
        result = stop_child()
        returned.append(result)
        return result

    service.stopService = stop_and_note  # type: ignore[method-assign]  # watch what it returns
    outcome: Deferred[tuple[bool, object]] = Deferred()

    def settle(finished: bool) -> None:
        if not outcome.called:
            # In a tuple: a Deferred handed to callback() would be chained, not handed over.
            outcome.callback((finished, returned[0] if returned else None))

    timer = reactor.callLater(_PATIENCE, settle, False)

    def stopped(_: object) -> None:
        if timer.active():
            timer.cancel()
        settle(True)

    stopping: Deferred[object] = maybeDeferred(top.stopService)
    stopping.addBoth(stopped)
    return outcome


def _close_if_open(service: object) -> object:
    """Reactor thread: close the port a wrong answer left open (a check must not leak it)."""
    listening = getattr(service, "listening", None)
    if (
        listening is not None
        and getattr(listening, "connected", False)
        and not getattr(listening, "disconnecting", False)
    ):
        return listening.stopListening()
    return None


def _is_refused(address: Address) -> bool:
    try:
        read_to_eof(address, timeout=2.0)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


@exercise("14", subclass(Service, "PoemService(poem, reactor)"), title="a service with a lifecycle")
def check_listener_service(service_class: Callable[[bytes, object], Service]) -> str:
    """Start ``service_class(poem, reactor)`` under a MultiService, fetch the poem, stop it.

    The service must listen on a free loopback port when started (keeping what
    ``listenTCP`` returned as ``self.listening``), serve the poem whole to each client,
    and close the port when stopped, returning the Deferred that says it is closed.
    """
    poem = load_poem("hope").data
    reactor = runtime.start().reactor
    top, service = runtime.call(_start_in_parent, reactor, service_class, poem)
    try:
        address = _check_started(service, poem)
        finished, returned = runtime.call(_stop_parent, reactor, top, service)
        if not finished:
            raise NotYet(
                "stopping took for ever: the Deferred from stopService never fired",
                expected="return self.listening.stopListening()",
                got=f"a Deferred still waiting after {_PATIENCE:g} s",
                hint="return the Deferred that stopListening gives you; it fires once "
                "the port is closed.",
            )
        if not isinstance(returned, Deferred):
            raise NotYet(
                "stopService did not return a Deferred",
                expected="return self.listening.stopListening()",
                got=f"stopService returned {short(returned, 70)}",
                hint="closing a port takes a turn of the reactor: return the Deferred "
                "stopListening gives you, so twistd (or the parent) waits until it is closed.",
            )
        if IService(service).running:
            raise NotYet(
                "after stopService, your service still says it is running",
                expected="service.running == False",
                got="service.running == True",
                hint="call super().stopService() in stopService: it clears running.",
            )
        if not _is_refused(address):
            raise NotYet(
                "after stopping, your service's port still accepts connections",
                expected="connection refused",
                got="the port still answered",
                hint="stopService must call self.listening.stopListening().",
            )
    finally:
        runtime.call(_close_if_open, service)
    return (
        "started by its parent, served the whole poem on loopback, stopped by its parent, "
        "and its port was closed once the Deferred fired."
    )


def _check_started(service: Service, poem: bytes) -> Address:
    """Where the started service listens; NotYet unless it says it runs, listens on
    loopback and serves the poem there."""
    if not service.running:
        raise NotYet(
            "after its parent started, your service does not say it is running",
            expected="service.running == True",
            got=f"service.running == {bool(service.running)}",
            hint="call super().startService() first thing in startService: it sets running.",
        )
    listening = getattr(service, "listening", None)
    if listening is None or not hasattr(listening, "getHost"):
        raise NotYet(
            "your service has no listening port called self.listening",
            expected="self.listening = reactor.listenTCP(0, factory, interface='127.0.0.1')",
            got=f"listening = {short(listening, 70)}",
            hint="listen in startService (not in __init__) and keep what listenTCP returns.",
        )
    host = listening.getHost().host
    if host != _LOOPBACK:
        raise NotYet(
            "your service listens on every network interface, not on loopback only",
            expected=f"listening on {_LOOPBACK}: reachable from this machine only",
            got=f"listening on {host}: reachable from the whole network",
            hint="pass interface='127.0.0.1' to listenTCP; a course server has no business "
            "being reachable from other machines.",
        )
    address = Address(host, listening.getHost().port)
    try:
        data = read_to_eof(address, timeout=3.0)
    except OSError as exc:
        raise NotYet(
            "could not download from your service's port",
            expected=f"the poem ({len(poem)} bytes)",
            got=f"{type(exc).__name__}: {exc}",
            hint="does your factory's protocol write factory.poem and then loseConnection()?",
        ) from None
    if data != poem:
        raise NotYet(
            "your service did not send the poem",
            expected=f"{len(poem)} bytes, starting {poem[:20]!r}",
            got=f"{len(data)} bytes, starting {data[:20]!r}",
            hint="write the whole poem in connectionMade, then loseConnection().",
        )
    return address


# -- exercise 2: structured logging ----------------------------------------------------


def _listen_with(reactor: Any, protocol_class: Callable[[], Protocol], poem: bytes) -> Any:
    factory = ServerFactory.forProtocol(protocol_class)
    factory.poem = poem  # type: ignore[attr-defined]  # the starter's protocol reads factory.poem
    return reactor.listenTCP(0, factory, interface=_LOOPBACK)


def _from_learner(event: LogEvent, protocol_class: type) -> bool:
    source = event.get("log_source")
    if isinstance(source, protocol_class):
        return True
    namespace = str(event.get("log_namespace", ""))
    module = protocol_class.__module__
    return namespace == module or namespace.startswith(module + ".")


def _fields_in(log_format: object) -> set[str]:
    """The field names a format string fills in: ``{nbytes}``, ``{nbytes:,}``, ``{nbytes!r}``."""
    try:
        return {
            name.split(".")[0].split("[")[0]
            for _, name, _, _ in string.Formatter().parse(str(log_format))
            if name
        }
    except ValueError:  # an unbalanced brace: no field at all
        return set()


@exercise("14", subclass(Protocol, "LoggedPoetry()"), title="a structured log event")
def check_structured_log(protocol_class: type[Protocol]) -> str:
    """Serve two clients with ``protocol_class`` and look at what it logged.

    The check's factory has ``poem``; the protocol must send it whole, close, and log one
    ``info`` event per client carrying the field ``nbytes`` (the number of bytes sent),
    with ``{nbytes}`` in its format string (any format spec will do: ``{nbytes:,}``).
    """
    poem = load_poem("hope").data
    runtime.start()
    events: list[LogEvent] = []
    two = threading.Event()

    def observe(event: LogEvent) -> None:
        if _from_learner(event, protocol_class):
            events.append(event)
            if len(events) >= 2:
                two.set()

    server = runtime.listen(
        lambda reactor: _listen_with(reactor, protocol_class, poem), name="nb14-check-log"
    )
    observer = cast("ILogObserver", observe)  # a function is a log observer; mypy cannot see it
    globalLogPublisher.addObserver(observer)
    try:
        received = [read_to_eof(server.address, timeout=3.0) for _ in range(2)]
        two.wait(0.5)  # connectionLost may log a moment after the client saw EOF
    except OSError as exc:
        raise NotYet(
            "could not download from your protocol",
            expected="the poem, then the connection closed",
            got=f"{type(exc).__name__}: {exc}",
            hint="write self.factory.poem in connectionMade, then loseConnection().",
        ) from None
    finally:
        globalLogPublisher.removeObserver(observer)
        server.stop()
    if any(data != poem for data in received):
        raise NotYet(
            "the clients did not get the poem",
            expected=f"{len(poem)} bytes",
            got=", ".join(f"{len(data)} bytes" for data in received),
            hint="write self.factory.poem in connectionMade, then loseConnection().",
        )
    _judge_events(events, len(poem))
    return (
        f"two clients, two info events, each carrying nbytes={len(poem)} as a field "
        "that any observer can read without parsing text."
    )


def _judge_events(events: list[LogEvent], nbytes: int) -> None:
    if not events:
        raise NotYet(
            "nothing was logged",
            expected="one event per client, from a twisted.logger.Logger",
            got="no events",
            hint="add log = Logger() to your class and call self.log.info(...). "
            "print() and the logging module do not reach Twisted's log observers.",
        )
    if len(events) != 2:
        raise NotYet(
            "expected one event per client",
            expected="2 events for 2 clients",
            got=f"{len(events)} events: " + "; ".join(short(formatEvent(e), 40) for e in events),
            hint="log once per connection, e.g. in connectionMade or connectionLost.",
        )
    event = events[0]
    if "nbytes" not in event:
        fields = sorted(k for k in event if not k.startswith("log_"))
        raise NotYet(
            "your event has no field nbytes",
            expected='self.log.info("sent {nbytes} bytes", nbytes=...)',
            got=f"format {short(event.get('log_format'), 70)}, fields: "
            + (", ".join(fields) or "none"),
            hint="pass values as keyword arguments, not in an f-string: observers can then "
            "read event['nbytes'] without parsing text.",
        )
    if event["nbytes"] != nbytes:
        raise NotYet(
            "nbytes is not the number of bytes sent",
            expected=f"nbytes={nbytes}",
            got=f"nbytes={short(event['nbytes'], 70)}",
            hint="len(self.factory.poem) is what you sent.",
        )
    if "nbytes" not in _fields_in(event.get("log_format", "")):
        raise NotYet(
            "the message does not mention {nbytes}",
            expected='a format string such as "sent {nbytes} bytes"',
            got=f"the format {short(event.get('log_format'), 70)}",
            hint="name the field in braces in the format: formatEvent fills it in later.",
        )
    if event.get("log_level") != LogLevel.info:
        level = event.get("log_level")
        raise NotYet(
            "wrong level",
            expected="info (a client served is routine news)",
            got=getattr(level, "name", short(level, 70)),
            hint="use self.log.info(...): most logs filter debug out, and warn or error "
            "are for trouble.",
        )
