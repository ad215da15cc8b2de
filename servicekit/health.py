"""Liveness and readiness, and the service's home: what every service serves
besides its API (the docs page joins them: servicekit.apidocs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app

from .apidocs import DOCS_PATH, SPEC_PATH, serve_docs_page
from .problem_json import problem_response


def health_blueprint(database_answers: Callable[[], bool]) -> APIBlueprint:
    """`/`, `/health`, `/ready` (ready while `database_answers()`) and the docs page."""
    bp = APIBlueprint("health", __name__, enable_openapi=False)

    @bp.get("/")
    def home() -> dict[str, Any]:
        """What this service is, and where to read about it."""
        return {
            "service": current_app.import_name,
            "version": current_app.version,  # type: ignore[attr-defined]
            "links": {
                "docs": DOCS_PATH,
                "openapi": SPEC_PATH,
                "health": "/health",
                "ready": "/ready",
            },
        }

    @bp.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process serves."""
        return {"status": "ok"}

    @bp.get("/ready")
    def ready() -> Response | dict[str, str]:
        """Readiness: the service's own database answers."""
        if database_answers():
            return {"status": "ok"}
        return problem_response(503, "The database does not answer.", headers={"Retry-After": "1"})

    # On this blueprint, so that the page's endpoint is `health.docs`, which
    # servicekit.observability gives the docs page's own Content-Security-Policy.
    serve_docs_page(bp)
    return bp
