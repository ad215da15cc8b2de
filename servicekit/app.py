"""The part of every service's app factory that is the same in all three."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from apiflask import APIFlask
from flask import Flask, Response
from flask.sessions import SessionInterface
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import URL

from .apidocs import SPEC_PATH, configure_api_docs
from .config import BaseConfig, UpstreamConfig, load_config
from .cors import allow_browsers
from .db import (
    database_answers,
    end_session,
    engine_options,
    first_line,
    tune_sqlite,
    unavailability_errors,
)
from .errors import DatabaseUnavailable
from .health import health_blueprint
from .intake import read_request_first
from .logs import configure_logging, current_request_id
from .metrics import Metrics
from .observability import install_request_tracking
from .output import OrjsonProvider
from .problem_json import register_error_handlers, render_problem
from .tracing import install_tracing
from .upstream import CircuitBreaker, HttpUsersClient, ServiceClient, Timeouts, UsersClient

VERSION = "1.0.0"
log = logging.getLogger(__name__)

Client = TypeVar("Client", bound=ServiceClient)


def create_service_app(
    import_name: str,
    *,
    service: str,
    description: str,
    config: type[BaseConfig],
    db: SQLAlchemy,
    test_config: Mapping[str, Any] | None,
    users_client: UsersClient | None = None,
) -> APIFlask:
    """An APIFlask app with config, database, errors, request ids, metrics, health and
    docs; a service that calls others gets `users_client` (by default over HTTP)."""
    app = APIFlask(
        import_name,
        title=f"shop: {service}",
        version=VERSION,
        spec_path=SPEC_PATH,
        docs_path=None,  # our own page (servicekit.apidocs): nothing inline, for its CSP
    )
    # `/api/beers` and `/api/beers/` are one resource: no redirect for any method.
    app.url_map.strict_slashes = False
    # `//api/beers/1` names nothing: a 404 where it is, not a redirect.
    app.url_map.merge_slashes = False
    load_config(app, config, f"{service}.db", test_config)
    configure_api_docs(app, service, description)
    app.json = OrjsonProvider(app)
    app.session_interface = NoSessions()

    configure_logging(service, app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    register_error_handlers(app)
    allow_browsers(app)
    metrics = Metrics()
    app.extensions["metrics"] = metrics
    install_request_tracking(app, metrics, service)
    install_tracing(app, service, VERSION)  # nothing at all unless OTEL_* turns it on
    app.before_request(read_request_first)

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config["SQLALCHEMY_DATABASE_URI"])
    db.init_app(app)
    with app.app_context():
        tune_sqlite(db.engine)
        metrics.watch_pool(db.engine)
        unavailable = unavailability_errors(db.engine)
        answer_503_while_the_database_is_down(app, service, unavailable, db.engine.url)
    # Before flask-sqlalchemy's own teardown (teardowns run last added first).
    app.teardown_appcontext(lambda error: end_session(db.session, unavailable))
    app.register_blueprint(health_blueprint(lambda: database_answers(db.engine)))
    app.wsgi_app = CollectionsWithoutSlash(app)  # type: ignore[method-assign]
    if issubclass(config, UpstreamConfig):  # each asks users about tokens (servicekit.auth)
        app.extensions["users_client"] = users_client or upstream_client(
            app, HttpUsersClient, "USERS_URL"
        )
    return app


class NoSessions(SessionInterface):
    """No service keeps cookie sessions: Flask's would build a signer per request."""

    def open_session(self, app: Flask, request: Any) -> None:
        return None

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None


class CollectionsWithoutSlash:
    """WSGI middleware: `/api/beers` is `/api/beers/` for every method, with no
    redirect (a route rule alone would only match it for the rule's methods)."""

    def __init__(self, app: APIFlask) -> None:
        self.app = app
        self.wsgi_app = app.wsgi_app
        self._collections: frozenset[str] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._collections is None:  # the routes are all known by the first request
            self._collections = frozenset(
                rule.rule.rstrip("/")
                for rule in self.app.url_map.iter_rules()
                if rule.rule.endswith("/") and rule.rule != "/"
            )
        if environ.get("PATH_INFO") in self._collections:
            environ["PATH_INFO"] += "/"
        return self.wsgi_app(environ, start_response)


def answer_503_while_the_database_is_down(
    app: APIFlask, service: str, errors: tuple[type[Exception], ...], url: URL
) -> None:
    """503 with Retry-After, one log line and no traceback per failed request;
    the pool makes new connections once the database is back."""

    def unavailable(error: Exception) -> Response:
        log.warning("the %s database is unavailable: %s", service, first_line(error, url))
        return render_problem(DatabaseUnavailable(service))

    for error in errors:
        app.register_error_handler(error, unavailable)


def no_content() -> Response:
    """204: no body (and so, by the request tracking, no content type)."""
    return Response(status=204)


def upstream_client(app: APIFlask, client_class: type[Client], url_setting: str) -> Client:
    """A client for another service, configured from app.config and tied to its metrics."""
    metrics: Metrics = app.extensions["metrics"]
    return client_class(
        app.config[url_setting],
        timeouts=Timeouts(
            connect=app.config["UPSTREAM_CONNECT_TIMEOUT"], read=app.config["UPSTREAM_READ_TIMEOUT"]
        ),
        request_id=current_request_id,
        observe=metrics.observe_upstream,
        trace=tracing.client_span if (tracing := app.extensions.get("tracing")) else None,
        breaker=CircuitBreaker(
            app.config["UPSTREAM_BREAKER_FAILURES"],
            app.config["UPSTREAM_BREAKER_SECONDS"],
            on_change=metrics.breaker_observer(client_class.service),
        ),
    )
