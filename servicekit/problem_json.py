"""The one rendering of every error a service answers with, ours, Werkzeug's and
unexpected ones: problem+json (RFC 9457), as the OpenAPI examples show it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response
from werkzeug.exceptions import HTTPException

from .errors import FieldErrors, Problem, ValidationFailed
from .output import json_response

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


def problem_response(
    status: int,
    detail: str,
    *,
    errors: FieldErrors | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; the only shape errors leave a service in."""
    return json_response(
        problem_body(status, detail, errors=errors, **extra), status, headers, mimetype=PROBLEM_JSON
    )


def problem_body(
    status: int, detail: str, *, errors: FieldErrors | None = None, **extra: Any
) -> dict[str, Any]:
    """What a problem+json response carries (the OpenAPI examples show the same)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": int(status),
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def body_of(problem: Problem) -> dict[str, Any]:
    """The body a problem is rendered with."""
    return problem_body(problem.status, problem.detail, errors=problem.errors, **problem.extra)


def flatten_validation_detail(detail: Mapping[str, Any]) -> FieldErrors:
    """Merge webargs' {location: {field: [messages]}} into {field: [messages]}."""
    errors: FieldErrors = {}
    for messages_by_field in detail.values():
        if not isinstance(messages_by_field, Mapping):
            errors.setdefault("body", []).extend(_as_messages(messages_by_field))
            continue
        for field, messages in messages_by_field.items():
            name = "body" if field == "_schema" else field
            errors.setdefault(name, []).extend(_as_messages(messages))
    return errors


def _as_messages(messages: Any) -> list[str]:
    if isinstance(messages, Mapping):  # nested fields, e.g. list items by index
        return [msg for inner in messages.values() for msg in _as_messages(inner)]
    if isinstance(messages, list | tuple):
        return [msg for inner in messages for msg in _as_messages(inner)]
    return [str(messages)]


def render_problem(problem: Problem) -> Response:
    return json_response(body_of(problem), problem.status, problem.headers, mimetype=PROBLEM_JSON)


def register_error_handlers(app: APIFlask) -> None:
    """Render every error, ours, Werkzeug's and unexpected ones, as problem+json."""

    app.register_error_handler(Problem, render_problem)

    @app.error_processor
    def render_http_error(error: HTTPError) -> Response:
        if isinstance(error.detail, Mapping):
            errors = flatten_validation_detail(error.detail)
            if errors:
                return render_problem(ValidationFailed(errors))
        headers = {k: str(v) for k, v in dict(error.headers or {}).items() if k != "Content-Type"}
        return problem_response(
            error.status_code, http_error_detail(error.status_code), headers=headers
        )

    @app.errorhandler(Exception)
    def render_unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):  # raised outside APIFlask's handlers
            return problem_response(error.code or 500, error.description or error.name)
        log.exception("unhandled error")
        return problem_response(500, http_error_detail(500))


def http_error_detail(status: int) -> str:
    """What a problem says about an error that Werkzeug, not our code, raised."""
    details = {
        400: "The request body could not be read: send valid JSON or a form.",
        404: "No such resource.",
        405: "This method is not allowed on this resource.",
        413: "The request body is too large.",
        415: "Send the body as JSON (application/json) or as a form "
        "(application/x-www-form-urlencoded or multipart/form-data).",
        500: "The server failed to handle this request.",
    }
    return details.get(status, HTTPStatus(status).description)
