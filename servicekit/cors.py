"""Browsers: CORS by flask-cors for the web origins CORS_ORIGINS lists (none by
default: nothing is installed). A preflight is a 204 with its path's own
methods; no credentials, as tokens travel in `Authorization`, not cookies."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_cors import CORS

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID")
EXPOSED_HEADERS = (
    "Location",
    "Retry-After",
    "X-Request-ID",
    "X-Total-Count",
    "Idempotent-Replayed",
    "RateLimit",
    "RateLimit-Policy",
)
PREFLIGHT_MAX_AGE = 600  # seconds a browser may keep a preflight's answer
ALLOW_ORIGIN = "Access-Control-Allow-Origin"


def web_origins(raw: str) -> tuple[str, ...]:
    """Origins separated by commas, each scheme://host[:port] as a browser sends it
    in `Origin` (no path, no trailing slash)."""
    origins = tuple(part.strip() for part in raw.split(",") if part.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or origin != (f"{parts.scheme}://{parts.netloc}")
        ):
            raise ValueError(
                f"{origin!r} is not an origin: scheme://host[:port], like https://shop.example"
            )
    return origins


def allow_browsers(app: Flask) -> None:
    """CORS for the origins app.config["CORS_ORIGINS"] lists (a tuple, or the
    text the environment variable holds)."""
    origins = app.config["CORS_ORIGINS"]
    if isinstance(origins, str):
        origins = web_origins(origins)
    if not origins:
        return
    # Registered before flask-cors's own hook, so it runs after it (Flask runs
    # after_request hooks last registered first) and sees what it added.
    app.after_request(_finish_cors_answer)
    CORS(
        app,
        origins=[_exactly(origin) for origin in origins],
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        supports_credentials=False,
        always_send=False,  # no Origin, no CORS headers
        max_age=PREFLIGHT_MAX_AGE,
    )


def _exactly(origin: str) -> re.Pattern[str]:
    """The origin and nothing else, in any case: flask-cors reads a plain string
    holding `[` (an IPv6 host) as a pattern, and matches patterns at the start
    only."""
    return re.compile(re.escape(origin) + r"\Z", re.IGNORECASE)


def _finish_cors_answer(response: Response) -> Response:
    """Every answer varies by Origin; a preflight allowed is a 204 allowing the
    methods of its path (flask-cors would name every method) and all the
    request headers the API reads (not only those the browser asked about)."""
    response.vary.add("Origin")
    # Flask's own answer to OPTIONS (200, `Allow`: the path's methods); a
    # preflight of a path that is not there stays its 404.
    allowed = response.status_code == 200 and "Allow" in response.headers
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if allowed and ALLOW_ORIGIN in response.headers and preflight:
        response.status_code = 204
        response.set_data(b"")
        response.headers.pop("Content-Type", None)
        response.headers.pop("Content-Length", None)
        response.headers["Access-Control-Allow-Methods"] = response.headers["Allow"]
        response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
    return response
