"""The users endpoints under /api/users."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response, current_app, request
from marshmallow import fields

from servicekit.app import no_content
from servicekit.auth import bearer_token
from servicekit.errors import NotFound, Unauthorized
from servicekit.output import ServiceBlueprint
from servicekit.schemas import ErrorDocs, error_responses, problem_doc

from . import domain
from .models import User
from .schemas import ExistsOut, ExistsQuery, LoginIn, RegisterIn, TokenIn, TokenOut, UserOut
from .throttling import Limits, client_address

bp = ServiceBlueprint("users", __name__, url_prefix="/api/users", tag="users")

TOKEN_ERRORS: ErrorDocs = {401: "The token is missing, unknown, expired or revoked."}
# (Retry-After on 429 and 503 the spec processor adds to every operation.)
PASSWORDS_BUSY = problem_doc(
    "Too many passwords are being checked at once; try again.",
    service={"type": "string", "enum": ["users"]},
)


@bp.post("/register")
@bp.input(RegisterIn, location="json_or_form", arg_name="fields")
@bp.output(UserOut, status_code=201, description="The new user.")
@bp.doc(
    responses=error_responses(
        {
            409: "The username or email is taken (whatever the case).",
            503: PASSWORDS_BUSY,
        }
    )
)
def register(fields: dict[str, Any]) -> User:
    """Register a user."""
    return domain.register(fields, wait_seconds=current_app.config["PASSWORD_WAIT_SECONDS"])


@bp.get("/exists")
@bp.input(ExistsQuery, location="query", arg_name="query")
@bp.output(ExistsOut, description="The username is taken.")
@bp.doc(
    responses=error_responses(
        {
            404: problem_doc(
                "No user has this username.",
                username={"type": "string"},
                exists={"type": "boolean", "enum": [False]},
            )
        }
    )
)
def exists(query: dict[str, str]) -> dict[str, Any]:
    """Tell whether a username is taken (whatever the case)."""
    username = query["username"]
    if domain.find_user(username) is None:
        raise NotFound(f"No user is called {username}.", username=username, exists=False)
    return {"username": username, "exists": True}


RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "description": 'The per-username login limit: `"login";q=10;w=600` (10 failures '
        "in 600 s), after draft-ietf-httpapi-ratelimit-headers-10.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "Failures this username may still have from this address, and the "
        'seconds until its oldest counted failure is forgotten: `"login";r=7;t=540`.',
        "schema": {"type": "string"},
    },
}
LOGIN_ERRORS = error_responses(
    {
        401: {
            **problem_doc(
                "Wrong username or password (one answer for both); the failure is counted."
            ),
            "headers": dict(RATE_LIMIT_HEADERS),  # each its own: the spec processor adds to it
        },
        429: {
            **problem_doc(
                "Too many failed logins of this username from this address (or from this "
                "address at all) within the window: the password was not checked."
            ),
            "headers": dict(RATE_LIMIT_HEADERS),  # each its own: the spec processor adds to it
        },
        503: PASSWORDS_BUSY,
    }
)


@bp.post("/login")
@bp.input(LoginIn, location="json_or_form", arg_name="credentials")
@bp.output(
    TokenOut,
    description="A new token.",
    headers={
        "Cache-Control": fields.String(metadata={"description": "no-store: it is a secret."}),
        **{
            name: fields.String(metadata={"description": header["description"]})
            for name, header in RATE_LIMIT_HEADERS.items()
        },
    },
)
@bp.doc(responses=LOGIN_ERRORS)
def login(credentials: dict[str, str]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Log in: trade a username and password for a new bearer token."""
    config = current_app.config
    issued, quota = domain.log_in(
        credentials["username"],
        credentials["password"],
        ttl_seconds=config["TOKEN_TTL_SECONDS"],
        address=client_address(
            request.remote_addr, request.headers.get("X-Forwarded-For"), config["TRUSTED_PROXIES"]
        ),
        limits=Limits(
            config["LOGIN_MAX_FAILURES"],
            config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            config["LOGIN_WINDOW_SECONDS"],
        ),
        wait_seconds=config["PASSWORD_WAIT_SECONDS"],
    )
    # A token is a secret: never cached.
    return asdict(issued), 200, {"Cache-Control": "no-store", **quota.headers()}


@bp.post("/logout")
@bp.input(TokenIn, location="json_or_form", arg_name="body")
@bp.output({}, status_code=204, description="The token is revoked.")
@bp.doc(security="BearerAuth", responses=error_responses(TOKEN_ERRORS))
def logout(body: dict[str, str]) -> Response:
    """Log out: revoke the token presented (header, or body field `token`)."""
    if not domain.revoke(_presented_token(body)):
        raise Unauthorized("The token is unknown, expired or revoked.")
    return no_content()


@bp.post("/check_token")
@bp.input(TokenIn, location="json_or_form", arg_name="body")
@bp.output(UserOut, description="The token's user.")
@bp.doc(security="BearerAuth", responses=error_responses(TOKEN_ERRORS))
def check_token(body: dict[str, str]) -> Any:
    """Tell who a token belongs to (header, or body field `token`)."""
    return _token_user(_presented_token(body))


@bp.get("/me")
@bp.output(UserOut, description="The caller.")
@bp.doc(security="BearerAuth", responses=error_responses(TOKEN_ERRORS))
def me() -> Any:
    """The user the token belongs to."""
    token = bearer_token()
    if token is None:
        raise Unauthorized()
    return _token_user(token)


def _presented_token(body: dict[str, str]) -> str:
    token = bearer_token() or body.get("token")
    if not token:
        raise Unauthorized()
    return token


def _token_user(token: str) -> Any:
    user = domain.user_for_token(token)
    if user is None:
        raise Unauthorized("The token is unknown, expired or revoked.")
    return user
