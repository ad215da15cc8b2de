"""The users endpoints under /api/users."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response, current_app, request
from marshmallow import fields

from servicekit.apidocs import bearer_auth_doc, invalid_input_doc, problem_doc
from servicekit.app import no_content
from servicekit.auth import TOKEN_NOT_VALID, bearer_token
from servicekit.errors import Conflict, NotFound, Unauthorized
from servicekit.output import ServiceBlueprint

from . import Config, domain
from .models import User
from .schemas import ExistsOut, ExistsQuery, LoginIn, RegisterIn, TokenIn, TokenOut, UserOut
from .throttling import Limits, Quota, client_address

bp = ServiceBlueprint(
    "users",
    __name__,
    url_prefix="/api/users",
    tag={"name": "users", "description": "Registration, login and bearer tokens."},
)

# users checks tokens itself (no neighbour to be down): without a valid one, 401.
TOKEN_WILL_NOT_DO = {
    401: problem_doc(
        "The token is missing, unknown, expired or revoked.",
        Unauthorized(),
        Unauthorized(TOKEN_NOT_VALID),
    )
}
TAKES_TOKEN = bearer_auth_doc(TOKEN_WILL_NOT_DO)
TAKES_TOKEN_OR_BODY_TOKEN = bearer_auth_doc(TOKEN_WILL_NOT_DO, or_in_body=True)
# (Retry-After on 429 and 503 the spec processor adds to every operation.)
PASSWORDS_BUSY = problem_doc(
    "Too many passwords are being checked at once; try again.",
    domain.PasswordsBusy(),
    service={"type": "string", "enum": ["users"]},
)


@bp.post("/register")
@bp.input(RegisterIn, location="json_or_form", arg_name="fields")
@bp.output(UserOut, status_code=201, description="The new user.")
@bp.doc(
    responses={
        400: invalid_input_doc("password", "Too common: one of the 10000 most used passwords."),
        409: problem_doc(
            "The username or email is taken (whatever the case).",
            Conflict("Already taken: username.", errors={"username": ["Already taken."]}),
        ),
        503: PASSWORDS_BUSY,
    }
)
def register(fields: dict[str, Any]) -> User:
    """Register a user."""
    return domain.register(fields, wait_seconds=current_app.config["PASSWORD_WAIT_SECONDS"])


@bp.get("/exists")
@bp.input(ExistsQuery, location="query", arg_name="query")
@bp.output(ExistsOut, description="The username is taken.")
@bp.doc(
    responses={
        400: invalid_input_doc("username", "Missing data for required field."),
        404: problem_doc(
            "No user has this username.",
            NotFound("No user is called petar.", username="petar", exists=False),
            username={"type": "string"},
            exists={"type": "boolean", "enum": [False]},
        ),
    }
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
LOGIN_ERRORS = {
    400: invalid_input_doc("password", "Missing data for required field."),
    401: {
        **problem_doc(
            "Wrong username or password (one answer for both); the failure is counted.",
            Unauthorized("Wrong username or password."),
        ),
        "headers": RATE_LIMIT_HEADERS,
    },
    429: {
        **problem_doc(
            "Too many failed logins of this username from this address (or from this "
            "address at all) within the window: the password was not checked.",
            domain.TooManyFailures(
                Quota(
                    Limits(
                        Config.LOGIN_MAX_FAILURES,
                        Config.LOGIN_MAX_FAILURES_PER_ADDRESS,
                        Config.LOGIN_WINDOW_SECONDS,
                    ),
                    remaining=0,
                    reset_seconds=540,
                    wait_seconds=540,
                )
            ),
        ),
        "headers": RATE_LIMIT_HEADERS,
    },
    503: PASSWORDS_BUSY,
}


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
@TAKES_TOKEN_OR_BODY_TOKEN
@bp.input(TokenIn, location="json_or_form", arg_name="body")
@bp.output({}, status_code=204, description="The token is revoked.")
def logout(body: dict[str, str]) -> Response:
    """Log out: revoke the token presented (header, or body field `token`)."""
    if not domain.revoke(_presented_token(body)):
        raise Unauthorized(TOKEN_NOT_VALID)
    return no_content()


@bp.post("/check_token")
@TAKES_TOKEN_OR_BODY_TOKEN
@bp.input(TokenIn, location="json_or_form", arg_name="body")
@bp.output(UserOut, description="The token's user.")
def check_token(body: dict[str, str]) -> Any:
    """Tell who a token belongs to (header, or body field `token`)."""
    return _token_user(_presented_token(body))


@bp.get("/me")
@TAKES_TOKEN
@bp.output(UserOut, description="The caller.")
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
        raise Unauthorized(TOKEN_NOT_VALID)
    return user
