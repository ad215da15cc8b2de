"""Traces over real HTTP: the three services pointed at an OTLP/HTTP receiver of
the test's own, one add to an order seen as one trace across all three; and a
collector that is down costs no request.

These services are the module's own, traced; the rest of the suite's stay untraced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage
from opentelemetry.proto.trace.v1.trace_pb2 import Status as StatusMessage

from .api_client import PASSWORD, ShopApi, bearer, unique
from .services import (
    ADMIN_PASSWORD,
    Service,
    create_admin,
    free_port,
    launch,
    service_environment,
    wait_for,
)

pytestmark = pytest.mark.e2e
WORKERS = 2
# Spans leave a worker a tenth of a second after they end, not five seconds.
FAST_EXPORT: dict[str, str | int | float] = {"OTEL_BSP_SCHEDULE_DELAY": 100}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    status: int


class OtlpReceiver:
    """An OTLP/HTTP collector in a thread: takes ExportTraceServiceRequests on
    POST /v1/traces, keeps their spans, answers as a collector does."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                exported = ExportTraceServiceRequest()
                exported.ParseFromString(body)
                receiver.keep(exported)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keep(self, exported: ExportTraceServiceRequest) -> None:
        for resource_spans in exported.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self.lock:
                        self.spans.append(_received(resource["service.name"], span))

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


def _received(service: str, span: SpanMessage) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        name=span.name,
        kind=span.kind,
        attributes={a.key: _value(a.value) for a in span.attributes},
        status=span.status.code,
    )


@dataclass
class TracedShop:
    receiver: OtlpReceiver
    services: dict[str, Service]
    api: ShopApi
    admin_token: str


@pytest.fixture(scope="module")
def traced_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedShop]:
    receiver = OtlpReceiver()
    directory = tmp_path_factory.mktemp("traced")
    ports = {name: free_port() for name in ("users", "beers", "orders")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    settings: dict[str, str | int | float] = {
        "USERS_URL": urls["users"],
        "BEERS_URL": urls["beers"],
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        **FAST_EXPORT,
    }
    envs = {name: service_environment(name, directory, **settings) for name in ports}
    admin = unique("admin")
    create_admin(admin, envs["users"])
    services: dict[str, Service] = {}
    try:
        for name, port in ports.items():
            services[name] = launch(name, port, envs[name], directory, WORKERS)
        for service in services.values():
            service.wait_until_ready()
        api = ShopApi(urls["users"], urls["beers"], urls["orders"])
        yield TracedShop(receiver, services, api, api.token_for(admin, ADMIN_PASSWORD))
    finally:
        for service in services.values():
            service.stop()
        receiver.stop()


def spans_of(receiver: OtlpReceiver, trace_id: str, count: int) -> list[ReceivedSpan]:
    """The trace's spans, once `count` have come (each worker sends its own batches)."""
    assert wait_for(lambda: len(receiver.trace(trace_id)) >= count, 30), receiver.trace(trace_id)
    return receiver.trace(trace_id)


def the_one(spans: list[ReceivedSpan], service: str, name: str) -> ReceivedSpan:
    [found] = [span for span in spans if (span.service, span.name) == (service, name)]
    return found


SERVER, CLIENT = SpanMessage.SPAN_KIND_SERVER, SpanMessage.SPAN_KIND_CLIENT


def test_an_add_to_an_order_is_one_trace_across_the_three_services(
    traced_shop: TracedShop,
) -> None:
    api = traced_shop.api
    sku = api.new_beer(traced_shop.admin_token)
    customer = api.new_customer()

    response = api.add_to_order(customer.token, sku, 2)
    assert response.status_code == 200, response.text

    orders_request_id = response.headers["X-Request-ID"]
    orders = traced_shop.services["orders"]
    # The access line of the add names its trace: find the trace by it.
    assert wait_for(lambda: orders_request_id in orders.output(), 10)
    [access_line] = [
        line
        for line in orders.output().splitlines()
        if orders_request_id in line and "PUT /api/orders/current 200" in line
    ]
    trace_id = access_line.split("trace_id=")[1].split()[0]

    spans = spans_of(traced_shop.receiver, trace_id, count=5)
    add = the_one(spans, "orders", "PUT /api/orders/current")
    asks_users = the_one(spans, "orders", "GET users.me")
    asks_beers = the_one(spans, "orders", "GET beers.get_beer")
    users = the_one(spans, "users", "GET /api/users/me")
    beers = the_one(spans, "beers", "GET /api/beers/<sku>")

    assert add.parent_id == ""  # no traceparent came: the add started the trace
    assert (asks_users.parent_id, asks_beers.parent_id) == (add.span_id, add.span_id)
    assert users.parent_id == asks_users.span_id
    assert beers.parent_id == asks_beers.span_id
    assert [span.kind for span in (add, users, beers)] == [SERVER] * 3
    assert [span.kind for span in (asks_users, asks_beers)] == [CLIENT] * 2
    assert add.attributes["http.route"] == "/api/orders/current"
    assert add.attributes["http.request.method"] == "PUT"
    assert beers.attributes["http.route"] == "/api/beers/<sku>"
    assert beers.attributes["url.path"] == f"/api/beers/{sku}"
    for span in (add, asks_users, asks_beers, users, beers):
        assert span.attributes["http.response.status_code"] == 200, span
        assert span.status != StatusMessage.STATUS_CODE_ERROR, span
    assert f"span_id={add.span_id}] PUT /api/orders/current 200" in access_line


def test_a_request_with_a_traceparent_joins_the_callers_trace(traced_shop: TracedShop) -> None:
    api = traced_shop.api
    customer = api.new_customer()
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    response = requests.get(
        f"{api.orders_url}/api/orders/current",
        headers={**bearer(customer.token), "traceparent": f"00-{trace_id}-{parent_id}-01"},
        timeout=10,
    )
    assert response.status_code == 200

    spans = spans_of(traced_shop.receiver, trace_id, count=3)
    current = the_one(spans, "orders", "GET /api/orders/current")
    assert current.parent_id == parent_id
    assert the_one(spans, "users", "GET /api/users/me").trace_id == trace_id


def test_an_unknown_sku_is_a_404_on_the_spans_not_an_error(traced_shop: TracedShop) -> None:
    api = traced_shop.api
    customer = api.new_customer()
    trace_id = "1bf7651916cd43dd8448eb211c80319c"
    response = requests.put(
        f"{api.orders_url}/api/orders/current",
        json={"sku": "999999"},
        headers={**bearer(customer.token), "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
        timeout=10,
    )
    assert response.status_code == 404

    spans = spans_of(traced_shop.receiver, trace_id, count=5)
    for span in (
        the_one(spans, "orders", "PUT /api/orders/current"),
        the_one(spans, "beers", "GET /api/beers/<sku>"),
    ):
        assert span.attributes["http.response.status_code"] == 404
        assert span.status != StatusMessage.STATUS_CODE_ERROR


def test_a_collector_that_is_down_costs_no_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    directory = tmp_path_factory.mktemp("untraceable")
    dead_collector = f"http://127.0.0.1:{free_port()}"
    env = service_environment(
        "users",
        directory,
        OTEL_EXPORTER_OTLP_ENDPOINT=dead_collector,
        OTEL_EXPORTER_OTLP_TIMEOUT=0.5,  # each export gives up at once: a complaint each
        **FAST_EXPORT,
    )
    users = launch("users", free_port(), env, directory, workers=1)
    try:
        users.wait_until_ready()
        api = ShopApi(users.url, "", "")
        username = unique("ivan")
        assert api.register(username).status_code == 201
        token = api.token_for(username, PASSWORD)
        deadline = time.monotonic() + 3  # exports fail and are retried meanwhile
        answered = 0
        while time.monotonic() < deadline or answered < 20:
            assert api.me(token).status_code == 200
            answered += 1
            if answered >= 500:
                break
        assert wait_for(lambda: "opentelemetry" in users.output(), 30), users.output()[-3000:]
    finally:
        users.stop()
    complaints = [line for line in users.output().splitlines() if "opentelemetry" in line]
    # A line a minute from each of the exporter's loggers, not one an export.
    assert 1 <= len(complaints) <= 4, "\n".join(complaints)


def test_the_shells_opentelemetry_settings_reach_no_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint in the developer's shell would trace every service the suite
    starts; only a test's own settings turn tracing on."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "the-shells")

    untraced = service_environment("users", tmp_path)
    traced = service_environment("users", tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://x:1")

    assert not [name for name in untraced if name.startswith("OTEL_")]
    assert traced["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://x:1"
    assert "OTEL_SERVICE_NAME" not in traced
