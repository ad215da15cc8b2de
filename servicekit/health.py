"""Liveness, readiness and the API documentation page every service serves."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app, send_from_directory
from markupsafe import escape

from .errors import problem_response

DOCS_PATH = "/api/docs"
DOCS_ASSETS = f"{DOCS_PATH}/assets"
SPEC_PATH = "/api/openapi.json"
# Swagger UI from files served here, started by a script file too, so that the
# page's Content-Security-Policy allows nothing inline (see observability).
DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{title}}</title>
  <link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png">
  <link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi="{SPEC_PATH}"></div>
  <script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""
DOCS_START = """const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapi,
  domNode: root,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
});
"""


def health_blueprint(database_answers: Callable[[], bool]) -> APIBlueprint:
    bp = APIBlueprint("health", __name__, enable_openapi=False)
    # Swagger UI's own files, shipped inside the flask-swagger-ui package, so
    # the docs page renders with no internet and no CDN.
    swagger_ui_dist = str(files("flask_swagger_ui") / "dist")

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

    @bp.get(DOCS_PATH)
    @bp.get(f"{DOCS_PATH}/")
    def docs() -> Response:
        """Swagger UI for this service's OpenAPI document."""
        title = escape(f"{current_app.title}: API documentation")  # type: ignore[attr-defined]
        return Response(DOCS_PAGE.replace("{title}", title), mimetype="text/html")

    @bp.get(f"{DOCS_PATH}/start.js")
    def docs_start() -> Response:
        return Response(DOCS_START, mimetype="text/javascript")

    @bp.get(f"{DOCS_ASSETS}/<path:filename>")
    def docs_asset(filename: str) -> Response:
        return send_from_directory(swagger_ui_dist, filename, max_age=86400)

    return bp
