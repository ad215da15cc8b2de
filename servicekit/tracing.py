"""Traces across the services with OpenTelemetry: a server span per request, a
client span per call to another service, their ids on every log line. Off, with
nothing installed, unless an OTLP endpoint is set; the SDK reads the rest of
OTEL_* itself (README: Environment)."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from apiflask import APIFlask
from flask import Response, request
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_span_id, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .logs import TRACE_IDS_KEY
from .observability import METHODS

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Where a request's server span and the context it made current are kept: in its WSGI environ.
SPAN_KEY = "servicekit.span"
CONTEXT_TOKEN_KEY = "servicekit.trace_context"
# W3C Trace Context alone (traceparent, tracestate), whatever OTEL_PROPAGATORS says.
PROPAGATOR = TraceContextTextMapPropagator()
# A stopping worker waits at most this long for its last spans to leave.
FLUSH_AT_EXIT_MILLIS = 2000
# The loggers that would otherwise complain on every failed export (or dropped
# span) while the collector is down.
EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
)
COMPLAINT_INTERVAL = 60.0  # seconds between two log lines of one export logger


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Whether these variables turn tracing on: an OTLP endpoint set, the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class OncePerInterval(logging.Filter):
    """Lets one record through per `interval` seconds; the rest are dropped."""

    def __init__(self, interval: float = COMPLAINT_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._next = 0.0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self.interval
            return True


def quiet_the_exporter() -> None:
    """A collector that is down costs a log line a minute per logger, not one an export."""
    for name in EXPORT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(each, OncePerInterval) for each in logger.filters):
            logger.addFilter(OncePerInterval())


def service_resource(service: str, version: str) -> Resource:
    """Who the spans come from: OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES'
    service.name) when set, else the service's own name."""
    resource = Resource.create({SERVICE_VERSION: version})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    return resource


class Tracing:
    """One service's tracer. Its provider, and with it the exporter's thread, is
    made on first use in the process that uses it (a forked worker makes its own)."""

    def __init__(
        self,
        service: str,
        version: str,
        exporter: Callable[[], SpanExporter] = OTLPSpanExporter,
    ) -> None:
        self.service, self.version = service, version
        self._exporter = exporter
        self._tracer: trace.Tracer | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.provider: TracerProvider | None = None

    @property
    def tracer(self) -> trace.Tracer:
        tracer = self._tracer
        if tracer is None or self._pid != os.getpid():
            with self._lock:
                if self._tracer is None or self._pid != os.getpid():
                    self._tracer = self._start()
                    self._pid = os.getpid()
                tracer = self._tracer
        return tracer

    def _start(self) -> trace.Tracer:
        quiet_the_exporter()
        # OTEL_TRACES_SAMPLER and its argument are read here, by the SDK.
        provider = TracerProvider(
            resource=service_resource(self.service, self.version), shutdown_on_exit=False
        )
        provider.add_span_processor(BatchSpanProcessor(self._exporter()))
        # Not the SDK's own shutdown at exit: with the collector down it waits
        # for the export's retries; a stopping worker gives its spans a moment.
        atexit.register(provider.force_flush, FLUSH_AT_EXIT_MILLIS)
        self.provider = provider
        return provider.get_tracer("servicekit", self.version)

    def start_server_span(self) -> None:
        """The request's server span, child of the caller's `traceparent` if it
        sent one, made current; its ids kept for the log lines."""
        served = request._get_current_object()  # type: ignore[attr-defined]
        environ = served.environ
        parent = PROPAGATOR.extract(environ, getter=ENVIRON_GETTER)  # type: ignore[arg-type]
        rule = served.url_rule
        method = served.method if served.method in METHODS else "_OTHER"
        name = served.method if method != "_OTHER" else "HTTP"
        if rule is not None:
            name = f"{name} {rule.rule}"
        attributes = _server_attributes(environ)
        attributes["http.request.method"] = method
        if rule is not None:
            attributes["http.route"] = rule.rule
        span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        environ[SPAN_KEY] = span
        environ[CONTEXT_TOKEN_KEY] = otel_context.attach(trace.set_span_in_context(span, parent))
        ids = span.get_span_context()
        environ[TRACE_IDS_KEY] = (format_trace_id(ids.trace_id), format_span_id(ids.span_id))

    @contextmanager
    def client_span(self, service: str, endpoint: str, method: str, url: str) -> Iterator[CallSpan]:
        """A span for one call to another service (servicekit.upstream's CallTracer):
        its retry an event, a refusal or failure its exception and status ERROR."""
        scheme, _, rest = url.partition("://")
        address, port = _host_and_port(rest.split("/", 1)[0], 443 if scheme == "https" else 80)
        with self.tracer.start_as_current_span(
            f"{method} {service}.{endpoint}",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": url.split("?", 1)[0],
                "server.address": address,
                "server.port": port,
                "peer.service": service,
            },
        ) as span:
            yield CallSpan(span)


class CallSpan:
    """The client span of one call, as servicekit.upstream sees it."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def header_lines(self) -> list[str]:
        """`traceparent` (and `tracestate`) header lines naming this span as the parent."""
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier, context=trace.set_span_in_context(self.span))
        return [f"{name}: {value}" for name, value in carrier.items()]

    def retrying(self) -> None:
        self.span.add_event("retry", {"reason": "no connection, or reset before any answer"})

    def answered(self, status: int) -> None:
        _record_status(self.span, status)


class _EnvironGetter:
    """Reads propagation headers from a WSGI environ."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


ENVIRON_GETTER = _EnvironGetter()


def install_tracing(
    app: APIFlask,
    service: str,
    version: str,
    environ: Mapping[str, str] = os.environ,
    exporter: Callable[[], SpanExporter] | None = None,
) -> Tracing | None:
    """A server span around every request of `app`, when the environment turns
    tracing on (or an exporter is given); else nothing, and None."""
    if exporter is None:
        if not tracing_enabled(environ):
            return None
        exporter = OTLPSpanExporter
    tracing = Tracing(service, version, exporter)
    app.extensions["tracing"] = tracing
    # First of all: a hook before it that answers would leave the request untraced.
    app.before_request_funcs.setdefault(None, []).insert(0, tracing.start_server_span)
    app.after_request(record_status)
    app.teardown_request(end_server_span)
    return tracing


def record_status(response: Response) -> Response:
    """The answer's status on the request's server span; a 5xx is an error."""
    span: Span | None = request.environ.get(SPAN_KEY)
    if span is not None:
        _record_status(span, response.status_code)
        if response.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
    return response


def _record_status(span: Span, status: int) -> None:
    """An answer's status on a span, and a 5xx as its error type."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_attribute("error.type", str(status))


def end_server_span(error: BaseException | None) -> None:
    """The request's server span ended (with the exception that ended the
    request, if one did) and its context left."""
    environ = request.environ
    span: Span | None = environ.pop(SPAN_KEY, None)
    if span is None:
        return
    if error is not None:
        span.record_exception(error)
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    otel_context.detach(environ.pop(CONTEXT_TOKEN_KEY))
    span.end()


def _server_attributes(environ: Mapping[str, Any]) -> dict[str, Any]:
    """The HTTP semantic conventions' attributes of a request, from its environ."""
    scheme = environ.get("wsgi.url_scheme", "http")
    address, port = _host_and_port(
        environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
        int(environ.get("SERVER_PORT") or (443 if scheme == "https" else 80)),
    )
    attributes: dict[str, Any] = {
        "url.path": environ.get("PATH_INFO", ""),  # never the query: it may hold a token
        "url.scheme": scheme,
        "server.address": address,
        "server.port": port,
        "network.protocol.version": environ.get("SERVER_PROTOCOL", "").partition("/")[2],
    }
    if environ.get("REMOTE_ADDR"):
        attributes["client.address"] = environ["REMOTE_ADDR"]
    if environ.get("HTTP_USER_AGENT"):
        attributes["user_agent.original"] = environ["HTTP_USER_AGENT"]
    return attributes


def _host_and_port(host: str, default_port: int) -> tuple[str, int]:
    """`example.org:8080` → ("example.org", 8080); `[::1]` → ("::1", default_port)."""
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
        return name.strip("[]"), int(port)
    return host.strip("[]"), default_port
