"""Domain errors and their one rendering: problem+json (RFC 9457).

The exception classes import nothing from Flask, so the HTTP clients for the
other services can raise them too; `register_error_handlers` renders them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from apiflask import APIFlask, HTTPError
from flask import Response
from werkzeug.exceptions import HTTPException

from .output import json_response

PROBLEM_JSON = "application/problem+json"
FieldErrors = dict[str, list[str]]

log = logging.getLogger(__name__)


class Problem(Exception):
    """An error a client can act on, rendered as problem+json."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(
        self,
        detail: str,
        *,
        errors: FieldErrors | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = extra


class ValidationFailed(Problem):
    status = HTTPStatus.BAD_REQUEST

    def __init__(self, errors: FieldErrors, detail: str | None = None) -> None:
        fields = ", ".join(sorted(errors))
        super().__init__(detail or f"Invalid input: {fields}.", errors=errors)


class Unauthorized(Problem):
    status = HTTPStatus.UNAUTHORIZED

    def __init__(
        self,
        detail: str = "A valid bearer token is required.",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class Forbidden(Problem):
    status = HTTPStatus.FORBIDDEN


class NotFound(Problem):
    status = HTTPStatus.NOT_FOUND


class Conflict(Problem):
    status = HTTPStatus.CONFLICT


class ServiceUnavailable(Problem):
    """Another service did not answer in time, or answered 5xx."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(
            f"The {service} service is unavailable ({reason}); try again later.",
            service=service,
            headers={"Retry-After": "1"},
        )
        self.service = service


class DatabaseUnavailable(Problem):
    """The service's own database cannot be reached or used right now."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, service: str) -> None:
        super().__init__(
            f"The {service} database is unavailable; try again later.",
            service=f"{service}-database",
            headers={"Retry-After": "1"},
        )


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
    return problem_response(
        problem.status,
        problem.detail,
        errors=problem.errors,
        headers=problem.headers,
        **problem.extra,
    )


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
