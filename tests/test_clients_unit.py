"""Client models on fakes: MemoryReactorClock, StringTransport and Clock. No real time.

The Twisted models are driven by hand: the fake reactor records the connection attempt,
the test plays the server (builds the protocol, delivers chunks, closes or fails the
connection) and advances the clock for timeouts. The reactor model and the registry are
checked here too; real servers on loopback are in test_clients_integration.py.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    UserError,
)
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from poetrylab.clients import (
    MODELS,
    ClientModel,
    asyncio_streams,
    deferred,
    fetch,
    protocol,
    reactor_reader,
)
from poetrylab.download import Address, Download, DownloadError

ADDRESS = Address("127.0.0.1", 10000)
TWISTED_FAKEABLE = ["protocol", "deferred", "inline", "coroutine"]
REFUSED = "connection refused (is a server listening there?)"


def result_of(d: Deferred[Any]) -> Any:
    """The result a Deferred has already fired with (fails the test if it has not)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def failure_of(d: Deferred[Any]) -> Failure:
    """The Failure a Deferred has already failed with (fails the test otherwise)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results and isinstance(results[0], Failure), f"expected a failure, got {results}"
    return results[0]


def assert_not_fired(d: Deferred[Any]) -> None:
    assert not d.called, f"fired too early with {d.result}"


def start(model: str, reactor: MemoryReactorClock, addresses: list[Any], timeout: float) -> Any:
    return MODELS[model].load().get_poems(reactor, addresses, timeout)


def play_server(reactor: MemoryReactorClock, attempt: int = 0) -> tuple[Any, StringTransport]:
    """Accept connection attempt number ``attempt``: return the client protocol and transport."""
    host, port, factory, _, _ = reactor.tcpClients[attempt]
    client = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport


def refuse(reactor: MemoryReactorClock, attempt: int = 0) -> None:
    factory = reactor.tcpClients[attempt][2]
    factory.clientConnectionFailed(reactor.connectors[attempt], Failure(ConnectionRefusedError()))


# --- Twisted models on MemoryReactorClock -------------------------------------------------


@pytest.mark.parametrize("model", TWISTED_FAKEABLE)
def test_twisted_model_records_chunks_in_order_and_finishes_on_clean_close(model: str) -> None:
    reactor = MemoryReactorClock()
    d = start(model, reactor, [ADDRESS], 5.0)
    client, _ = play_server(reactor)
    for chunk in (b"Tyger ", b"Tyger, ", b"burning bright"):
        client.dataReceived(chunk)
    assert_not_fired(d)
    client.connectionLost(Failure(ConnectionDone()))
    [download] = result_of(d)
    assert download.ok
    assert download.data == b"Tyger Tyger, burning bright"
    assert [c.size for c in download.chunks] == [6, 7, 14]
    assert download.client == model and download.task == 1
    assert download.started <= download.connected <= download.chunks[0].t <= download.finished
    assert reactor.getDelayedCalls() == []


@pytest.mark.parametrize("model", TWISTED_FAKEABLE)
def test_twisted_model_times_out_while_connected_aborts_and_leaves_no_delayed_call(
    model: str,
) -> None:
    reactor = MemoryReactorClock()
    d = start(model, reactor, [ADDRESS], 2.0)
    client, transport = play_server(reactor)
    client.dataReceived(b"half a po")
    reactor.advance(1.99)
    assert_not_fired(d)
    assert not transport.disconnected
    reactor.advance(0.01)
    assert transport.disconnected, "the connection was not aborted"
    client.connectionLost(Failure(ConnectionAborted()))  # what the real transport does next
    [download] = result_of(d)
    assert download.error == "timed out"
    assert download.data == b"half a po"
    assert reactor.getDelayedCalls() == []


@pytest.mark.parametrize("model", TWISTED_FAKEABLE)
def test_twisted_model_times_out_while_connecting_and_stops_the_attempt(model: str) -> None:
    reactor = MemoryReactorClock()
    d = start(model, reactor, [ADDRESS], 2.0)
    reactor.advance(2.0)
    connector = reactor.connectors[0]
    assert connector.stoppedConnecting
    # A real connector reports the stopped attempt as a failure; the fake one does not.
    reactor.tcpClients[0][2].clientConnectionFailed(connector, Failure(UserError()))
    [download] = result_of(d)
    assert download.error == "timed out"
    assert download.connected is None
    assert reactor.getDelayedCalls() == []


@pytest.mark.parametrize("model", TWISTED_FAKEABLE)
def test_twisted_model_records_refused_connection_and_the_other_download_goes_on(
    model: str,
) -> None:
    reactor = MemoryReactorClock()
    d = start(model, reactor, [ADDRESS, ("127.0.0.1", 10001)], 5.0)
    refuse(reactor, 0)
    assert_not_fired(d)
    client, _ = play_server(reactor, 1)
    client.dataReceived(b"poem")
    client.connectionLost(Failure(ConnectionDone()))
    refused, good = result_of(d)
    assert refused.error == REFUSED and refused.finished is not None
    assert good.ok and good.data == b"poem" and good.task == 2
    assert reactor.getDelayedCalls() == []


@pytest.mark.parametrize("model", TWISTED_FAKEABLE)
def test_twisted_model_records_connection_lost_midway_as_failure(model: str) -> None:
    reactor = MemoryReactorClock()
    d = start(model, reactor, [ADDRESS], 5.0)
    client, _ = play_server(reactor)
    client.dataReceived(b"Once upon")
    client.connectionLost(Failure(ConnectionLost()))
    [download] = result_of(d)
    assert not download.ok
    assert download.error == "connection lost before the poem was complete"
    assert download.data == b"Once upon"


@pytest.mark.parametrize("model", [m for m in MODELS if MODELS[m].kind == "twisted"])
def test_twisted_model_with_no_addresses_fires_at_once_with_an_empty_list(model: str) -> None:
    assert result_of(start(model, MemoryReactorClock(), [], 5.0)) == []


def test_deferred_get_poetry_errbacks_with_download_error_carrying_the_download() -> None:
    reactor = MemoryReactorClock()
    d = deferred.get_poetry(reactor, "127.0.0.1:10000", timeout=5.0, task=3)
    refuse(reactor)
    failure = failure_of(d)
    assert failure.check(DownloadError)
    assert failure.value.download.error == REFUSED
    assert failure.value.download.task == 3
    assert reactor.getDelayedCalls() == []


def test_deferred_get_poetry_fires_with_the_download_on_clean_close() -> None:
    reactor = MemoryReactorClock()
    d = deferred.get_poetry(reactor, ADDRESS, timeout=5.0)
    client, _ = play_server(reactor)
    client.dataReceived("Über allen Gipfeln".encode())
    client.connectionLost(Failure(ConnectionDone()))
    download = result_of(d)
    assert isinstance(download, Download)
    assert download.text == "Über allen Gipfeln"


def test_protocol_factory_calls_exactly_one_of_callback_and_errback() -> None:
    reactor = MemoryReactorClock()
    called: list[tuple[str, Download]] = []
    protocol.get_poetry(
        reactor,
        ADDRESS,
        callback=lambda d: called.append(("callback", d)),
        errback=lambda d: called.append(("errback", d)),
        timeout=5.0,
    )
    client, _ = play_server(reactor)
    client.dataReceived(b"verse")
    client.connectionLost(Failure(ConnectionDone()))
    client.connectionLost(Failure(ConnectionLost()))  # a second report changes nothing
    assert [(name, d.data) for name, d in called] == [("callback", b"verse")]


# --- the reactor model: a real socket, a fake reactor -------------------------------------


@pytest.fixture
def listener() -> Any:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5.0)
        yield server


def test_reactor_model_reads_chunks_in_order_then_finishes_at_eof(listener: socket.socket) -> None:
    reactor = MemoryReactorClock()
    done: list[Download] = []
    poetry = reactor_reader.get_poetry(reactor, listener.getsockname(), done.append, timeout=5.0)
    assert reactor.getWriters() == [poetry], "waits for the connect to finish, without blocking"
    conn, _ = listener.accept()
    with conn:
        poetry.doWrite()  # loopback: the connect is over once the server has accepted
        assert reactor.getReaders() == [poetry] and reactor.getWriters() == []
        for chunk in (b"Hope is ", b"the thing"):
            conn.sendall(chunk)
            poetry.doRead()
    poetry.doRead()  # EOF
    [download] = done
    assert download.ok and download.data == b"Hope is the thing"
    assert [c.size for c in download.chunks] == [8, 9]
    assert reactor.getReaders() == [] and reactor.getDelayedCalls() == []
    assert poetry.sock.fileno() == -1, "the socket was not closed"


def test_reactor_model_timeout_closes_the_socket_and_stops_watching_it(
    listener: socket.socket,
) -> None:
    reactor = MemoryReactorClock()
    done: list[Download] = []
    poetry = reactor_reader.get_poetry(reactor, listener.getsockname(), done.append, timeout=1.0)
    reactor.advance(1.0)
    [download] = done
    assert download.error == "timed out"
    assert reactor.getWriters() == [] and reactor.getReaders() == []
    assert reactor.getDelayedCalls() == []
    assert poetry.sock.fileno() == -1
    poetry.connectionLost(Failure(ConnectionLost()))  # late reports are ignored
    assert len(done) == 1


def test_reactor_model_reports_a_refused_connect_from_the_socket_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    reactor = MemoryReactorClock()
    done: list[Download] = []
    poetry = reactor_reader.get_poetry(reactor, ("127.0.0.1", port), done.append)
    # epoll reports a failed connect as a hang-up: the reactor calls connectionLost.
    poetry.connectionLost(Failure(ConnectionLost()))
    [download] = done
    assert download.error == REFUSED
    assert reactor.getDelayedCalls() == []


# --- the registry and fetch ---------------------------------------------------------------


def test_models_are_the_nine_cli_names_in_course_order() -> None:
    assert list(MODELS) == [
        "blocking", "threaded", "select", "reactor", "protocol",
        "deferred", "inline", "coroutine", "asyncio",
    ]  # fmt: skip


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_module_exists_says_its_notebook_and_has_get_poems(model: str) -> None:
    spec = MODELS[model]
    assert isinstance(spec, ClientModel) and spec.name == model
    assert spec.kind in {"sync", "twisted", "asyncio"}
    module = importlib.import_module(spec.module)
    assert model == module.NAME
    assert "Notebook" in (module.__doc__ or ""), "the docstring must name its notebook"
    assert callable(module.get_poems)
    assert spec.summary and "\n" not in spec.summary


def test_no_client_module_imports_the_global_reactor() -> None:
    for spec in MODELS.values():
        source = importlib.import_module(spec.module).__loader__.get_source(spec.module)
        assert "from twisted.internet import reactor" not in source, spec.module
    init = importlib.import_module("poetrylab.clients")
    top_level = init.__loader__.get_source("poetrylab.clients").split("\ndef ")[0]
    assert "import reactor" not in top_level


def test_fetch_rejects_an_unknown_model_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="blocking, threaded, select, reactor") as info:
        fetch("telepathy", [ADDRESS])
    assert "telepathy" in str(info.value)


def test_fetch_rejects_a_malformed_address_before_connecting() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        fetch("blocking", ["nowhere"])


@pytest.mark.parametrize("model", [m for m in MODELS if MODELS[m].kind != "twisted"])
def test_sync_and_asyncio_models_with_no_addresses_return_an_empty_list(model: str) -> None:
    assert MODELS[model].load().get_poems([], 1.0) == []


def test_asyncio_sync_wrapper_inside_a_running_loop_says_to_await_instead() -> None:
    async def inside_a_notebook() -> None:
        asyncio_streams.get_poems([ADDRESS])

    with pytest.raises(RuntimeError, match=r"await get_poems_async"):
        asyncio.run(inside_a_notebook())


# --- the endpoint: a lookup only for a name -----------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind"),
    [("127.0.0.1", "TCP4ClientEndpoint"), ("::1", "TCP6ClientEndpoint"),
     ("localhost", "HostnameEndpoint"), ("poems.example", "HostnameEndpoint")],
)
def test_client_endpoint_looks_up_names_only(host: str, kind: str) -> None:
    from poetrylab.clients._common import client_endpoint

    endpoint = client_endpoint(MemoryReactorClock(), Address(host, 10000), 3.0)
    assert type(endpoint).__name__ == kind


def test_an_ip_address_connects_at_once_with_the_timeout_and_no_thread() -> None:
    """HostnameEndpoint would first look 127.0.0.1 up in the reactor's thread pool."""
    reactor = MemoryReactorClock()
    deferred.get_poetry(reactor, "127.0.0.1:10000", timeout=7.0)
    [(host, port, _, timeout, _)] = reactor.tcpClients
    assert (host, port, timeout) == ("127.0.0.1", 10000, 7.0)


# --- threads run out: a measured limit, not a crash ---------------------------------------


def test_threaded_model_records_the_downloads_left_without_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from poetrylab.bench.client_run import limit_reached
    from poetrylab.clients import threaded

    real_start = threading.Thread.start
    started: list[str] = []

    def start_two_then_refuse(self: threading.Thread) -> None:
        if self.name.startswith("poetry-") and len(started) >= 2:
            raise RuntimeError("can't start new thread")
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start_two_then_refuse)
    with socket.create_server(("127.0.0.1", 0)) as dead:
        port = dead.getsockname()[1]
    downloads = threaded.get_poems([("127.0.0.1", port)] * 5, timeout=2.0)
    assert [d.error == REFUSED for d in downloads[:2]] == [True, True]
    for d in downloads[2:]:
        assert d.error is not None and d.error.startswith(threaded.NO_THREAD)
        assert "(2 threads were running): can't start new thread" in d.error
        assert d.started is not None and d.finished is not None
    assert limit_reached(downloads) == (
        "3 of 5 downloads could not even start (2 did): "
        f"{threaded.NO_THREAD} (2 threads were running): can't start new thread"
    )
    assert limit_reached(downloads[:2]) is None, "a refused server is not a limit"
