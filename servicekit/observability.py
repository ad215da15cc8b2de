"""What every request gets: an id (the caller's X-Request-ID, or a new one), an
access log line, a count in the metrics and the headers every answer has; and
/metrics itself."""

from __future__ import annotations

import logging
import os
import re
import time

from apiflask import APIFlask
from flask import Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from .front import POLICY
from .logs import REQUEST_ID_KEY, escaped
from .metrics import Metrics

REQUEST_ID_HEADER = "X-Request-ID"
# The methods /metrics counts by name; any other is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The docs page: Swagger UI from this service's own files (checked in headless
# Chromium: it renders in full without inline styles or scripts).
DOCS_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
# Where a request's start time is kept: in its WSGI environ, beside its id.
STARTED_KEY = "servicekit.started"
# Set on a request counted in flight, so that only those are counted out.
IN_FLIGHT_KEY = "servicekit.in_flight"
# A client's id is echoed only when it is short and plain: it ends up in logs.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
access_log = logging.getLogger("servicekit.access")
# Polled by machines (readiness checks, Prometheus): their access lines are DEBUG.
PROBE_ENDPOINTS = frozenset({"health.health", "health.ready", "metrics_endpoint"})


def new_request_id() -> str:
    """A request id of our own: 32 hex digits."""
    return os.urandom(16).hex()


def install_request_tracking(app: APIFlask, metrics: Metrics, service: str) -> None:
    """Give each request an id, echo it, log the request and count it, and give
    every answer the headers every answer has.

    The hooks run on every request: each reads the request object once (every
    access through Flask's `request` proxy is a context lookup).
    """

    in_flight, worker = metrics.in_flight, metrics.worker
    logs_every_request = app.config["ACCESS_LOG"]

    @app.before_request
    def start_request() -> None:
        environ = request.environ
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        acceptable = incoming and _ACCEPTABLE_REQUEST_ID.fullmatch(incoming)
        environ[REQUEST_ID_KEY] = incoming if acceptable else new_request_id()
        environ[STARTED_KEY] = time.perf_counter()
        environ[IN_FLIGHT_KEY] = True
        in_flight.inc()

    @app.teardown_request
    def end_request(error: BaseException | None) -> None:
        environ = request.environ
        if environ.pop(IN_FLIGHT_KEY, False):
            in_flight.dec()
            worker.sample_now_and_then(time.monotonic())

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
        # A line for every request at INFO (ACCESS_LOG=false: none), a 5xx's at
        # WARNING; probes and scrapes that went well at DEBUG, or they would
        # bury the requests of people under the polling of machines.
        if status >= 500:
            level = logging.WARNING
        elif rule is not None and rule.endpoint in PROBE_ENDPOINTS:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if logs_every_request and access_log.isEnabledFor(level):
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
                    "route": rule.rule if rule else None,
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
