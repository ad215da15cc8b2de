"""The part of every service's app factory that is the same in all three."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from apiflask import APIFlask
from flask import Response
from flask_sqlalchemy import SQLAlchemy

from .config import BaseConfig, load_config
from .db import database_answers, tune_sqlite
from .errors import PROBLEM_JSON, register_error_handlers
from .health import SWAGGER_UI_SETTINGS, health_blueprint
from .observability import Metrics, configure_logging, current_request_id, install_request_tracking
from .schemas import PROBLEM_SCHEMA
from .upstream import ServiceClient, Timeouts

VERSION = "1.0.0"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Client = TypeVar("Client", bound=ServiceClient)


def create_service_app(
    import_name: str,
    *,
    service: str,
    description: str,
    config: type[BaseConfig],
    db: SQLAlchemy,
    test_config: Mapping[str, Any] | None,
) -> APIFlask:
    """An APIFlask app with config, database, errors, request ids, metrics, health and docs."""
    app = APIFlask(
        import_name,
        title=f"beers: {service}",
        version=VERSION,
        spec_path="/api/openapi.json",
        docs_path="/api/docs",
    )
    # `/api/beers` and `/api/beers/` are one resource: no redirect for any method.
    app.url_map.strict_slashes = False
    load_config(app, config, f"{service}.db", test_config)
    app.config.update(SWAGGER_UI_SETTINGS)
    app.config["DESCRIPTION"] = description
    app.config["VALIDATION_ERROR_SCHEMA"] = PROBLEM_SCHEMA
    app.config["HTTP_ERROR_SCHEMA"] = PROBLEM_SCHEMA
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    configure_logging(service, app.config["LOG_LEVEL"])
    register_error_handlers(app)
    metrics = Metrics()
    app.extensions["metrics"] = metrics
    install_request_tracking(app, metrics)

    db.init_app(app)
    with app.app_context():
        tune_sqlite(db.engine)
    app.register_blueprint(health_blueprint(lambda: database_answers(db.engine)))
    app.spec_processor(document_bodies_and_errors)
    return app


def no_content() -> Response:
    """204 with no body and so no content type."""
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
    )


def document_bodies_and_errors(spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Say in the OpenAPI document what the code does: every body is JSON or a
    form (urlencoded or multipart), and every error is application/problem+json.
    """
    if isinstance(spec, str):  # only with SPEC_FORMAT yaml, which no service uses
        return spec
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if content:
                schema = next(iter(content.values())).get("schema", {})
                for media_type in ("application/json", *FORM_TYPES):
                    content.setdefault(media_type, {"schema": schema})
            for status, response in operation.get("responses", {}).items():
                body = response.get("content", {})
                if str(status).startswith(("4", "5")) and "application/json" in body:
                    body[PROBLEM_JSON] = body.pop("application/json")
    return spec
