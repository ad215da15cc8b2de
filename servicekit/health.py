"""Liveness, readiness and the Swagger UI assets every service serves."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

from apiflask import APIBlueprint
from flask import Response, send_from_directory

from .errors import problem_response

DOCS_ASSETS = "/api/docs/assets"
SWAGGER_UI_SETTINGS = {
    "SWAGGER_UI_CSS": f"{DOCS_ASSETS}/swagger-ui.css",
    "SWAGGER_UI_BUNDLE_JS": f"{DOCS_ASSETS}/swagger-ui-bundle.js",
    "SWAGGER_UI_STANDALONE_PRESET_JS": f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
    "DOCS_FAVICON": f"{DOCS_ASSETS}/favicon-32x32.png",
}


def health_blueprint(database_answers: Callable[[], bool]) -> APIBlueprint:
    bp = APIBlueprint("health", __name__, enable_openapi=False)
    # Swagger UI's own files, shipped inside the flask-swagger-ui package, so
    # the docs page renders with no internet and no CDN.
    swagger_ui_dist = str(files("flask_swagger_ui") / "dist")

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

    @bp.get(f"{DOCS_ASSETS}/<path:filename>")
    def docs_asset(filename: str) -> Response:
        return send_from_directory(swagger_ui_dist, filename, max_age=86400)

    return bp
