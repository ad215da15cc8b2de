"""Domain errors: what the services and their clients for the others raise when a
request cannot be done. No Flask here, so the clients (servicekit.upstream)
raise them too; servicekit.problem_json renders them."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

FieldErrors = dict[str, list[str]]


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

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


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
