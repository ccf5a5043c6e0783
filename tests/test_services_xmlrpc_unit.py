"""The XML-RPC gateway's dispatch and error mapping, with a fake backend client."""

from __future__ import annotations

import io
import logging
import xmlrpc.client
from typing import Any
from xmlrpc.client import Fault

import pytest
from twisted.internet.defer import Deferred, TimeoutError, fail, succeed
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from poetrylab._logging import route_twisted_log_to_stdlib
from poetrylab.services.tagged import BackendError, BackendLostError, BackendUnavailableError
from poetrylab.services.xmlrpc_gateway import FaultCode, PoetryGateway, declares_doctype


class FakeBackend:
    """Records calls; answers with whatever ``answer`` returns."""

    def __init__(self, answer: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answer = answer or (lambda verb, *args: succeed([verb, *args]))

    def call(self, verb: str, *args: Any) -> Deferred[Any]:
        self.calls.append((verb, *args))
        return self.answer(verb, *args)


def invoke(gateway: PoetryGateway, method: str, *args: Any) -> Any:
    """Call ``method`` as twisted.web.xmlrpc would; return the result or the Fault."""
    procedure = gateway.lookupProcedure(method)
    request = DummyRequest([b"RPC2"])
    try:
        if getattr(procedure, "withRequest", False):
            d = procedure(request, *args)
        else:
            d = procedure(*args)
    except Fault as fault:
        return fault
    results: list[Any] = []
    if isinstance(d, Deferred):
        d.addBoth(results.append)
        result = results[0]
    else:
        result = d
    if isinstance(result, Failure):
        return result.value
    return result


@pytest.mark.parametrize(
    "name",
    [
        "__init__",
        "_forward",
        "backend",
        "render_POST",
        "lookupProcedure",
        "xmlrpc_add",
        "add.__class__",
        "system.__init__",
        "system._xmlrpc_parent",
        "",
        None,
    ],
)
def test_only_the_four_methods_and_introspection_are_reachable(name: Any) -> None:
    with pytest.raises(Fault) as info:
        PoetryGateway(FakeBackend()).lookupProcedure(name)
    assert info.value.faultCode == PoetryGateway.NOT_FOUND


def test_introspection_lists_exactly_the_public_methods() -> None:
    gateway = PoetryGateway(FakeBackend())
    methods = invoke(gateway, "system.listMethods")
    assert methods == [
        "add",
        "list_poems",
        "poem",
        "transform",
        "system.listMethods",
        "system.methodHelp",
        "system.methodSignature",
    ]
    assert "sum of two numbers" in invoke(gateway, "system.methodHelp", "add")
    assert invoke(gateway, "system.methodSignature", "poem") == [["string", "string"]]


def test_each_method_is_forwarded_with_its_arguments() -> None:
    backend = FakeBackend()
    gateway = PoetryGateway(backend)
    assert invoke(gateway, "add", 1, 2) == ["add", 1, 2]
    invoke(gateway, "list_poems")
    invoke(gateway, "poem", "tyger")
    invoke(gateway, "transform", "scan", "text")
    assert backend.calls == [
        ("add", 1, 2),
        ("list_poems",),
        ("poem", "tyger"),
        ("transform", "scan", "text"),
    ]


@pytest.mark.parametrize(
    ("method", "args", "message"),
    [
        ("add", (1,), "add(a, b) takes 2 arguments, not 1"),
        ("list_poems", (1,), "list_poems() takes 0 arguments, not 1"),
        ("poem", (), "poem(name) takes 1 argument, not 0"),
        ("add", ("1", 2), "a must be a number"),
        ("add", (1, True), "b must be a number"),
        ("add", (1, float("inf")), "finite"),
        ("poem", (3,), "name must be a string"),
        ("transform", ("scan", ["list"]), "text must be a string"),
    ],
)
def test_bad_arguments_are_faults_with_a_clear_message_and_nothing_is_forwarded(
    method: str, args: tuple[Any, ...], message: str
) -> None:
    backend = FakeBackend()
    fault = invoke(PoetryGateway(backend), method, *args)
    assert isinstance(fault, Fault) and fault.faultCode == FaultCode.BAD_ARGUMENTS
    assert message in fault.faultString
    assert backend.calls == []


def test_an_int_sum_beyond_xmlrpc_int_range_is_a_fault() -> None:
    backend = FakeBackend(lambda verb, a, b: succeed(a + b))
    fault = invoke(PoetryGateway(backend), "add", 2**31 - 1, 1)
    assert fault.faultCode == FaultCode.BAD_ARGUMENTS and "32-bit" in fault.faultString
    assert invoke(PoetryGateway(backend), "add", 2.0**31, 1.0) == 2.0**31 + 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BackendError("not-found", "no poem called 'x'"), FaultCode.NOT_FOUND),
        (BackendError("transform-failed", "the muse did not come"), FaultCode.TRANSFORM_FAILED),
        (BackendError("busy", "too many"), FaultCode.BACKEND_BUSY),
        (BackendError("something-new", "?"), FaultCode.BACKEND_ERROR),
        (BackendLostError("lost the connection"), FaultCode.BACKEND_UNAVAILABLE),
        (BackendUnavailableError("cannot connect"), FaultCode.BACKEND_UNAVAILABLE),
        (TimeoutError("no reply to poem within 2 s"), FaultCode.TIMEOUT),
        (RuntimeError("bug"), FaultCode.BACKEND_ERROR),
    ],
)
def test_backend_failures_become_faults_naming_the_method(error: Exception, code: int) -> None:
    fault = invoke(PoetryGateway(FakeBackend(lambda *a: fail(error))), "poem", "x")
    assert isinstance(fault, Fault) and fault.faultCode == code
    assert fault.faultString.startswith("poem: ")
    assert isinstance(fault.faultCode, int) and type(fault.faultCode) is int


def test_the_http_client_leaving_cancels_the_backend_call() -> None:
    cancelled: list[bool] = []
    gateway = PoetryGateway(FakeBackend(lambda *a: Deferred(lambda d: cancelled.append(True))))
    request = DummyRequest([b"RPC2"])
    d = gateway.lookupProcedure("poem")(request, "tyger")
    d.addErrback(lambda f: None)
    request.processingFailed(Failure(ConnectionError("client went away")))
    assert cancelled == [True]


# --- hostile XML ---------------------------------------------------------------------------

CALL = "<?xml version='1.0'?><methodCall><methodName>add</methodName><params/></methodCall>"
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "' + "x" * 10_000 + '">]>'
    "<methodCall><methodName>poem</methodName><params><param><value><string>"
    + "&a;" * 9_000
    + "</string></value></param></params></methodCall>"
)


@pytest.mark.parametrize(
    "body",
    [
        LAUGHS.encode(),
        b'<!DOCTYPE methodCall SYSTEM "file:///etc/passwd"><methodCall/>',
        b"\n  <!-- a comment first -->\n<!DOCTYPE x><methodCall/>",
        LAUGHS.encode("utf-16"),  # the same attack in another encoding, with its BOM
        ('<?xml version="1.0" encoding="latin-1"?><!DOCTYPE x><m/>').encode("latin-1"),
    ],
    ids=["entity-expansion", "external-entity", "after-a-comment", "utf-16", "latin-1"],
)
def test_a_doctype_is_found_before_anything_is_expanded(body: bytes) -> None:
    assert declares_doctype(body)


@pytest.mark.parametrize(
    "body",
    [CALL.encode(), b"<methodCall><!-- <!DOCTYPE x> --></methodCall>", b"not xml at all", b""],
    ids=["plain-call", "doctype-in-a-comment", "not-xml", "empty"],
)
def test_plain_xml_and_non_xml_declare_no_doctype(body: bytes) -> None:
    assert not declares_doctype(body)


def _post(gateway: PoetryGateway, body: bytes) -> tuple[Any, bytes]:
    request = DummyRequest([b"RPC2"])
    request.method = b"POST"
    request.content = io.BytesIO(body)
    return gateway.render_POST(request), body


def test_a_request_with_a_doctype_is_refused_with_a_fault_and_nothing_is_forwarded() -> None:
    backend = FakeBackend()
    response, _ = _post(PoetryGateway(backend), LAUGHS.encode())
    assert isinstance(response, bytes), "answered at once, without expanding anything"
    with pytest.raises(Fault) as info:
        xmlrpc.client.loads(response)
    assert info.value.faultCode == FaultCode.REFUSED_XML == 8002
    assert "DOCTYPE" in info.value.faultString
    assert backend.calls == []


def test_the_http_client_leaving_is_one_quiet_line_not_a_critical_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route_twisted_log_to_stdlib()  # so caplog would see Twisted's "CRITICAL" line too
    backend = FakeBackend(lambda *a: Deferred())
    gateway = PoetryGateway(backend)
    request = DummyRequest([b"RPC2"])
    request.method = b"POST"
    request.content = io.BytesIO(xmlrpc.client.dumps(("tyger",), "poem").encode())
    with caplog.at_level(logging.DEBUG):
        gateway.render_POST(request)
        request.processingFailed(Failure(ConnectionError("client went away")))
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "poetrylab.services.xmlrpc_gateway",
            logging.INFO,
            "?: left during poem; the backend call is cancelled",
        )
    ]
