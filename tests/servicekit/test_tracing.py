"""Tracing's pieces: off by default, server spans, propagation into the curl
header lines, client spans, log fields, a quiet exporter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from beers import create_app
from beers.models import db
from servicekit import logs
from servicekit.errors import ServiceUnavailable
from servicekit.tracing import (
    OncePerInterval,
    Tracing,
    _host_and_port,
    install_tracing,
    service_resource,
    tracing_enabled,
)
from servicekit.upstream import CircuitBreaker, HttpUsersClient, Timeouts
from tests.databases import fresh_app
from tests.fakes import FakeUsersClient
from tests.servicekit.conftest import FakeUpstream

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
USER = {"id": 7, "username": "ivan", "is_admin": False}
OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell does not decide these tests."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def untraced_app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "beers", tmp_path, users_client=FakeUsersClient()) as app:
        yield app


@pytest.fixture
def traced(untraced_app: APIFlask, exporter: InMemorySpanExporter) -> Tracing:
    tracing = install_tracing(untraced_app, "beers", "1.0.0", exporter=lambda: exporter)
    assert tracing is not None

    @untraced_app.get("/test/log/<word>")
    @untraced_app.doc(hide=True)
    def log_a_line(word: str) -> dict[str, str]:
        logging.getLogger("tests.tracing").warning("a line about %s", word)
        return {"word": word}

    @untraced_app.get("/test/fail")
    @untraced_app.doc(hide=True)
    def fail() -> dict[str, str]:
        raise RuntimeError("broken on purpose")

    return tracing


@pytest.fixture
def client(untraced_app: APIFlask, traced: Tracing) -> FlaskClient:
    return untraced_app.test_client()


def finished(tracing: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert tracing.provider is not None
    assert tracing.provider.force_flush(5000)
    return list(exporter.get_finished_spans())


# on or off


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"},
            False,
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"},
            True,
        ),
    ],
)
def test_tracing_is_on_only_with_an_endpoint_and_the_sdk_not_disabled(
    environ: dict[str, str], enabled: bool
) -> None:
    assert tracing_enabled(environ) is enabled


def test_off_by_default_nothing_is_installed(untraced_app: APIFlask) -> None:
    assert "tracing" not in untraced_app.extensions
    hooks = untraced_app.before_request_funcs[None] + untraced_app.teardown_request_funcs[None]
    assert not any(hook.__module__ == "servicekit.tracing" for hook in hooks)
    response = untraced_app.test_client().get("/api/beers/", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200


def test_off_the_clients_send_no_traceparent(upstream: FakeUpstream) -> None:
    upstream.body = USER
    client = HttpUsersClient(upstream.url, timeouts=Timeouts(connect=0.5, read=0.5))
    client.user_for_token("t0k")
    assert "traceparent" not in {name.lower() for name in upstream.requests[0].headers}
    client.close()


def test_on_from_the_environment_the_app_is_traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    with fresh_app(create_app, db, "beers", tmp_path, users_client=FakeUsersClient()) as app:
        tracing = app.extensions["tracing"]
        assert isinstance(tracing, Tracing)
        assert tracing.provider is None  # made on the first traced request, in its process


def test_the_service_is_named_after_itself_unless_otel_service_name_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert service_resource("orders", "1.0.0").attributes["service.name"] == "orders"
    assert service_resource("orders", "1.0.0").attributes["service.version"] == "1.0.0"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-orders")
    assert service_resource("orders", "1.0.0").attributes["service.name"] == "shop-orders"


# server spans


def test_a_request_with_a_traceparent_continues_its_trace(
    client: FlaskClient, traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    response = client.get(
        "/api/beers/NOPE",
        headers={"traceparent": TRACEPARENT, "tracestate": "shop=1", "User-Agent": "probe/1"},
    )
    assert response.status_code == 404
    [span] = finished(traced, exporter)
    assert span.name == "GET /api/beers/<sku>"
    assert span.kind is SpanKind.SERVER
    assert format_trace_id(span.context.trace_id) == TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert format_span_id(span.parent.span_id) == PARENT_ID
    assert span.context.trace_state.get("shop") == "1"
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/api/beers/<sku>"
    assert attributes["http.response.status_code"] == 404
    assert attributes["url.path"] == "/api/beers/NOPE"
    assert attributes["server.address"] == "localhost"
    assert attributes["client.address"] == "127.0.0.1"
    assert attributes["user_agent.original"] == "probe/1"
    assert span.status.status_code is StatusCode.UNSET  # a 4xx is the client's, not ours
    assert span.resource.attributes["service.name"] == "beers"


def test_a_request_without_a_traceparent_starts_a_trace(
    client: FlaskClient, traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    client.get("/api/beers/?limit=1")
    client.get("/api/beers?limit=1")
    spans = finished(traced, exporter)
    assert [span.name for span in spans] == ["GET /api/beers/"] * 2
    assert all(span.parent is None for span in spans)
    assert spans[0].context.trace_id != spans[1].context.trace_id
    assert "limit" not in str(spans[0].attributes)  # never the query


def test_an_unknown_path_is_named_by_its_method_alone(
    client: FlaskClient, traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    client.get("/no/such/thing")
    [span] = finished(traced, exporter)
    assert span.name == "GET"
    assert "http.route" not in (span.attributes or {})


def test_a_failing_request_is_marked_as_an_error(
    client: FlaskClient, traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    assert client.get("/test/fail").status_code == 500
    [span] = finished(traced, exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["http.response.status_code"] == 500
    assert dict(span.attributes or {})["error.type"] == "500"


# log lines


def log_output(client: FlaskClient, log_format: str) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs._RequestContextFilter("beers"))
    handler.setFormatter(logs._formatter(log_format))
    logger = logging.getLogger("tests.tracing")
    logger.addHandler(handler)
    try:
        client.get("/test/log/hops", headers={"traceparent": TRACEPARENT})
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_every_text_log_line_of_a_traced_request_names_its_trace_and_span(
    client: FlaskClient, traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    inside, outside = log_output(client, "text").splitlines()
    [span] = finished(traced, exporter)
    span_id = format_span_id(span.context.span_id)
    assert f" trace_id={TRACE_ID} span_id={span_id}] a line about hops" in inside
    assert outside.endswith("[-] outside any request")


def test_every_json_log_line_of_a_traced_request_has_trace_and_span_fields(
    client: FlaskClient, traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    inside, outside = (json.loads(line) for line in log_output(client, "json").splitlines())
    [span] = finished(traced, exporter)
    assert inside["trace_id"] == TRACE_ID
    assert inside["span_id"] == format_span_id(span.context.span_id)
    assert inside["message"] == "a line about hops"
    assert "trace_fields" not in inside
    assert "trace_id" not in outside and "trace_fields" not in outside


# client spans and propagation into curl's header lines


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    return Tracing("orders", "1.0.0", exporter=lambda: exporter)


def traced_client(
    url: str, tracing: Tracing, breaker: CircuitBreaker | None = None
) -> HttpUsersClient:
    timeouts = Timeouts(connect=0.5, read=0.5)
    return HttpUsersClient(url, timeouts=timeouts, trace=tracing.client_span, breaker=breaker)


def test_a_call_carries_its_client_span_in_a_traceparent_header_line(
    upstream: FakeUpstream, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    upstream.body = USER
    client = traced_client(upstream.url, tracing)
    with tracing.tracer.start_as_current_span("GET /api/orders/current") as server:
        client.user_for_token("t0k")
    client.close()
    client_span, server_span = finished(tracing, exporter)
    sent = upstream.requests[0].headers["traceparent"]
    trace_id = format_trace_id(server.get_span_context().trace_id)
    version, sent_trace_id, parent_id, flags = sent.split("-")
    assert (version, sent_trace_id) == ("00", trace_id)
    assert parent_id == format_span_id(client_span.context.span_id)
    assert int(flags, 16) & 1  # sampled
    assert client_span.parent is not None
    assert client_span.parent.span_id == server_span.context.span_id
    assert client_span.kind is SpanKind.CLIENT
    assert client_span.name == "GET users.me"
    attributes = dict(client_span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.full"] == f"{upstream.url}/api/users/me"
    assert attributes["server.port"] == int(upstream.url.rsplit(":", 1)[1])


def test_a_retried_call_shows_its_retry_on_its_span(
    upstream: FakeUpstream, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    upstream.body, upstream.hang_up = USER, 1
    client = traced_client(upstream.url, tracing)
    client.user_for_token("t0k")
    client.close()
    [span] = finished(tracing, exporter)
    assert [event.name for event in span.events] == ["retry"]
    assert span.status.status_code is StatusCode.UNSET


def test_a_5xx_answer_marks_the_client_span_as_an_error(
    upstream: FakeUpstream, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    upstream.status = 502
    client = traced_client(upstream.url, tracing)
    with pytest.raises(ServiceUnavailable):
        client.user_for_token("t0k")
    client.close()
    [span] = finished(tracing, exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["http.response.status_code"] == 502


def test_a_breaker_refusal_shows_on_the_client_span(
    dead_url: str, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    client = traced_client(dead_url, tracing, breaker=CircuitBreaker(failures=1))
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            client.user_for_token("t0k")
    client.close()
    failed, refused = finished(tracing, exporter)
    assert [event.name for event in failed.events] == ["retry", "exception"]
    assert refused.status.status_code is StatusCode.ERROR
    [exception] = refused.events
    assert "taken for down" in str((exception.attributes or {})["exception.message"])


# a collector that is down


def test_the_exporters_complaints_are_let_through_once_per_interval() -> None:
    once = OncePerInterval(interval=60)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "Failed to export", None, None)
    assert [once.filter(record) for _ in range(3)] == [True, False, False]
    assert OncePerInterval(interval=0).filter(record)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.org:8080", ("example.org", 8080)),
        ("example.org", ("example.org", 80)),
        ("[::1]:5001", ("::1", 5001)),
        ("[::1]", ("::1", 80)),
    ],
)
def test_server_address_and_port_come_from_the_host(host: str, expected: tuple[str, int]) -> None:
    assert _host_and_port(host, 80) == expected
