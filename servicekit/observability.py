"""Request ids, the access log, and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from apiflask import APIFlask
from flask import Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .logs import REQUEST_ID_KEY, escaped

REQUEST_ID_HEADER = "X-Request-ID"
# The methods /metrics counts by name; any other is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
POLICY = "default-src 'none'; frame-ancestors 'none'"
# The docs page: Swagger UI from this service's own files (checked in headless
# Chromium: it renders in full without inline styles or scripts).
DOCS_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
# Where a request's start time is kept: in its WSGI environ, beside its id.
STARTED_KEY = "servicekit.started"
# A client's id is echoed only when it is short and plain: it ends up in logs.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
access_log = logging.getLogger("servicekit.access")


class Metrics:
    """The counters and histograms every service exposes on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "Requests served, by endpoint and status.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request, by endpoint and status.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "upstream_requests_total",
            "Calls to other services, by outcome (status code, timeout or error).",
            ["service", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "upstream_request_duration_seconds",
            "Time spent waiting for other services.",
            ["service", "endpoint"],
            registry=self.registry,
        )

        # Label lookups validate and lock every time: each set of labels is
        # looked up once and its children kept (a few dozen sets in all).
        self._served: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._called: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe_request(self, method: str, endpoint: str, status: str, seconds: float) -> None:
        labels = (method, endpoint, status)
        children = self._served.get(labels)
        if children is None:
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._served[labels] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_upstream(self, service: str, endpoint: str, outcome: str, seconds: float) -> None:
        labels = (service, endpoint, outcome)
        children = self._called.get(labels)
        if children is None:
            latency = self.upstream_latency.labels(service, endpoint)
            children = (self.upstream_calls.labels(*labels), latency)
            self._called[labels] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """Prometheus text; merged across worker processes when they share a directory."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)


def new_request_id() -> str:
    return os.urandom(16).hex()


def install_request_tracking(app: APIFlask, metrics: Metrics, service: str) -> None:
    """Give each request an id, echo it, log the request and count it, and give
    every answer the headers every answer has.

    The hooks run on every request: each reads the request object once (every
    access through Flask's `request` proxy is a context lookup).
    """

    @app.before_request
    def start_request() -> None:
        environ = request.environ
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        acceptable = incoming and _ACCEPTABLE_REQUEST_ID.fullmatch(incoming)
        environ[REQUEST_ID_KEY] = incoming if acceptable else new_request_id()
        environ[STARTED_KEY] = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        served = request._get_current_object()  # type: ignore[attr-defined]
        environ = served.environ
        request_id = environ.get(REQUEST_ID_KEY) or new_request_id()
        elapsed = time.perf_counter() - environ.get(STARTED_KEY, time.perf_counter())
        rule = served.url_rule
        status = response.status_code
        method = served.method if served.method in METHODS else "other"
        metrics.observe_request(method, rule.rule if rule else "unmatched", str(status), elapsed)
        # Every request at DEBUG; at INFO (the default) those that failed.
        level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.WARNING
        if access_log.isEnabledFor(level):
            # Escaped in both formats, so that a path cannot forge log lines.
            method, path = escaped(served.method), escaped(served.path)
            duration_ms = round(elapsed * 1000, 1)
            access_log.log(
                level,
                "%s %s %s %.1fms",
                method,
                path,  # never the query: it may hold a token
                status,
                duration_ms,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )
        headers = response.headers
        is_docs_page = rule is not None and rule.endpoint == "health.docs"
        # Added, not set: nothing else sets them, and adding skips a search.
        headers.extend(
            [
                (REQUEST_ID_HEADER, request_id),
                ("Server", service),  # the service, never the server software
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", DOCS_PAGE_POLICY if is_docs_page else POLICY),
            ]
        )
        if status == 204 or (served.method == "OPTIONS" and status < 400):
            headers.pop("Content-Type", None)  # no body, so no type (a problem has one)
        return response

    @app.get("/metrics")
    @app.doc(hide=True)
    def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
