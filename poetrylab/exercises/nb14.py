"""Checks for notebook 14 (services, twistd and plugins; logging).

* :func:`check_listener_service` — a ``Service`` that listens when started and closes its
  port when stopped, run inside a ``MultiService`` the way ``twistd`` would run it, and
  fetched from over loopback.
* :func:`check_structured_log` — a server Protocol that logs one structured event per
  client with ``twisted.logger``; the check watches the global log publisher (it adds an
  observer and removes it again: it never begins or redirects logging).
"""

from __future__ import annotations

import time
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from poetrylab import runtime
from poetrylab.corpus import load_poem
from poetrylab.exercises._feedback import Feedback, exercise, failed, not_a_subclass, passed, short
from poetrylab.testing import read_to_eof

__all__ = ["check_listener_service", "check_structured_log"]

_PATIENCE = 3.0  # closing a port takes one turn of the reactor, not seconds


# -- exercise 1: a service with a lifecycle -----------------------------------------------


def _start_in_parent(reactor: Any, service_class: Any, poem: bytes) -> tuple[Any, Any]:
    """Reactor thread: build the service, give it a MultiService parent, start the parent."""
    top = MultiService()
    service = service_class(poem, reactor)
    service.setServiceParent(top)
    top.startService()
    return top, service


def _stop_parent(reactor: Any, top: MultiService, service: Any) -> Deferred[Any]:
    """Reactor thread: stop the parent (which stops the child).

    Fires with ``(finished, returned)``: whether the parent finished stopping within
    :data:`_PATIENCE` seconds, and what the child's stopService returned. A parent stuck
    on a Deferred nobody fires is left alone, not cancelled: cancelling would fire it.
    """
    returned: list[Any] = []
    stop_child = service.stopService

    def stop_and_note() -> Any:
        result = stop_child()
        returned.append(result)
        return result

    service.stopService = stop_and_note
    outcome: Deferred[Any] = Deferred()

    def settle(finished: bool) -> None:
        if not outcome.called:
            # In a tuple: a Deferred handed to callback() would be chained, not handed over.
            outcome.callback((finished, returned[0] if returned else None))

    timer = reactor.callLater(_PATIENCE, settle, False)
    top.stopService().addBoth(lambda _: (timer.active() and timer.cancel(), settle(True)))
    return outcome


def _close_if_open(service: Any) -> Any:
    """Reactor thread: close the port a wrong answer left open (a check must not leak it)."""
    listening = getattr(service, "listening", None)
    if (
        listening is not None
        and getattr(listening, "connected", False)
        and not getattr(listening, "disconnecting", False)
    ):
        return listening.stopListening()
    return None


def _is_refused(host: str, port: int) -> bool:
    try:
        read_to_eof((host, port), timeout=2.0)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


@exercise("14")
def check_listener_service(service_class: Any) -> Feedback:
    """Start ``service_class(poem, reactor)`` under a MultiService, fetch the poem, stop it.

    The service must listen on a free loopback port when started (keeping what
    ``listenTCP`` returned as ``self.listening``), serve the poem whole to each client,
    and close the port when stopped, returning the Deferred that says it is closed.
    """
    name = "check_listener_service"
    wrong_kind = not_a_subclass(
        name,
        service_class,
        Service,
        hint="class PoemService(Service): ...  then check_listener_service(PoemService)",
    )
    if wrong_kind is not None:
        return wrong_kind
    poem = load_poem("hope").data
    reactor = runtime.start().reactor
    top, service = runtime.call(_start_in_parent, reactor, service_class, poem)
    try:
        if not service.running:
            return failed(
                name,
                "after its parent started, your service does not say it is running",
                expected="service.running == True",
                got=f"service.running == {bool(service.running)}",
                hint="call super().startService() first thing in startService: it sets running.",
            )
        listening = getattr(service, "listening", None)
        if listening is None or not hasattr(listening, "getHost"):
            return failed(
                name,
                "your service has no listening port called self.listening",
                expected="self.listening = reactor.listenTCP(0, factory, interface='127.0.0.1')",
                got=f"listening = {short(listening, 70)}",
                hint="listen in startService (not in __init__) and keep what listenTCP returns.",
            )
        address = listening.getHost()
        try:
            data = read_to_eof((address.host, address.port), timeout=3.0)
        except OSError as exc:
            return failed(
                name,
                "could not download from your service's port",
                expected=f"the poem ({len(poem)} bytes)",
                got=f"{type(exc).__name__}: {exc}",
                hint="does your factory's protocol write factory.poem and then loseConnection()?",
            )
        if data != poem:
            return failed(
                name,
                "your service did not send the poem",
                expected=f"{len(poem)} bytes, starting {poem[:20]!r}",
                got=f"{len(data)} bytes, starting {data[:20]!r}",
                hint="write the whole poem in connectionMade, then loseConnection().",
            )
        finished, returned = runtime.call(_stop_parent, reactor, top, service)
        if not finished:
            return failed(
                name,
                "stopping took for ever: the Deferred from stopService never fired",
                expected="return self.listening.stopListening()",
                got=f"a Deferred still waiting after {_PATIENCE:g} s",
                hint="return the Deferred that stopListening gives you; it fires once "
                "the port is closed.",
            )
        if not isinstance(returned, Deferred):
            return failed(
                name,
                "stopService did not return a Deferred",
                expected="return self.listening.stopListening()",
                got=f"stopService returned {short(returned, 70)}",
                hint="closing a port takes a turn of the reactor: return the Deferred "
                "stopListening gives you, so twistd (or the parent) waits until it is closed.",
            )
        if service.running:
            return failed(
                name,
                "after stopService, your service still says it is running",
                expected="service.running == False",
                got="service.running == True",
                hint="call super().stopService() in stopService: it clears running.",
            )
        if not _is_refused(address.host, address.port):
            return failed(
                name,
                "after stopping, your service's port still accepts connections",
                expected="connection refused",
                got="the port still answered",
                hint="stopService must call self.listening.stopListening().",
            )
    finally:
        runtime.call(_close_if_open, service)
    return passed(
        name,
        "started by its parent, served the whole poem, stopped by its parent, and its "
        "port was closed once the Deferred fired.",
    )


# -- exercise 2: structured logging ----------------------------------------------------


def _listen_with(reactor: Any, protocol_class: Any, poem: bytes) -> Any:
    factory = ServerFactory.forProtocol(protocol_class)
    factory.poem = poem  # type: ignore[attr-defined]
    return reactor.listenTCP(0, factory, interface="127.0.0.1")


def _from_learner(event: dict[str, Any], protocol_class: type) -> bool:
    source = event.get("log_source")
    if isinstance(source, protocol_class):
        return True
    namespace = str(event.get("log_namespace", ""))
    module = protocol_class.__module__
    return namespace == module or namespace.startswith(module + ".")


@exercise("14")
def check_structured_log(protocol_class: Any) -> Feedback:
    """Serve two clients with ``protocol_class`` and look at what it logged.

    The check's factory has ``poem``; the protocol must send it whole, close, and log one
    ``info`` event per client carrying the field ``nbytes`` (the number of bytes sent),
    with ``{nbytes}`` in its format string.
    """
    name = "check_structured_log"
    wrong_kind = not_a_subclass(
        name,
        protocol_class,
        Protocol,
        hint="class LoggedPoetry(Protocol): ...  then check_structured_log(LoggedPoetry)",
    )
    if wrong_kind is not None:
        return wrong_kind
    poem = load_poem("hope").data
    runtime.start()
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if _from_learner(event, protocol_class):
            events.append(event)

    server = runtime.listen(
        lambda reactor: _listen_with(reactor, protocol_class, poem), name="nb14-check-log"
    )
    globalLogPublisher.addObserver(observe)
    try:
        received = [read_to_eof(server.address, timeout=3.0) for _ in range(2)]
        deadline = time.monotonic() + 1.0
        while len(events) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # connectionLost may log a moment after the client saw EOF
    except OSError as exc:
        return failed(
            name,
            "could not download from your protocol",
            expected="the poem, then the connection closed",
            got=f"{type(exc).__name__}: {exc}",
            hint="write self.factory.poem in connectionMade, then loseConnection().",
        )
    finally:
        globalLogPublisher.removeObserver(observe)
        server.stop()
    if any(data != poem for data in received):
        return failed(
            name,
            "the clients did not get the poem",
            expected=f"{len(poem)} bytes",
            got=", ".join(f"{len(data)} bytes" for data in received),
            hint="write self.factory.poem in connectionMade, then loseConnection().",
        )
    if not events:
        return failed(
            name,
            "nothing was logged",
            expected="one event per client, from a twisted.logger.Logger",
            got="no events",
            hint="add log = Logger() to your class and call self.log.info(...). "
            "print() and the logging module do not reach Twisted's log observers.",
        )
    if len(events) != 2:
        return failed(
            name,
            "expected one event per client",
            expected="2 events for 2 clients",
            got=f"{len(events)} events: " + "; ".join(short(formatEvent(e), 40) for e in events),
            hint="log once per connection, e.g. in connectionMade or connectionLost.",
        )
    event = events[0]
    if "nbytes" not in event:
        return failed(
            name,
            "your event has no field nbytes",
            expected='self.log.info("sent {nbytes} bytes", nbytes=...)',
            got=f"format {short(event.get('log_format'), 70)}, fields: "
            + (", ".join(sorted(k for k in event if not k.startswith("log_"))) or "none"),
            hint="pass values as keyword arguments, not in an f-string: observers can then "
            "read event['nbytes'] without parsing text.",
        )
    if event["nbytes"] != len(poem):
        return failed(
            name,
            "nbytes is not the number of bytes sent",
            expected=f"nbytes={len(poem)}",
            got=f"nbytes={short(event['nbytes'], 70)}",
            hint="len(self.factory.poem) is what you sent.",
        )
    if "{nbytes}" not in str(event.get("log_format", "")):
        return failed(
            name,
            "the message does not mention {nbytes}",
            expected='a format string such as "sent {nbytes} bytes"',
            got=short(event.get("log_format"), 70),
            hint="name the field in braces in the format: formatEvent fills it in later.",
        )
    if event.get("log_level") != LogLevel.info:
        level = event.get("log_level")
        return failed(
            name,
            "wrong level",
            expected="info (a client served is routine news)",
            got=getattr(level, "name", short(level, 70)),
            hint="use self.log.info(...): most logs filter debug out, and warn or error "
            "are for trouble.",
        )
    return passed(
        name,
        f"two clients, two info events, each carrying nbytes={len(poem)} as a field "
        "that any observer can read without parsing text.",
    )
