"""The users endpoints under /api/users."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Response, current_app

from servicekit.app import no_content
from servicekit.auth import bearer_token
from servicekit.errors import NotFound, Unauthorized
from servicekit.output import ServiceBlueprint
from servicekit.schemas import ErrorDocs, error_responses, problem_doc

from . import domain
from .models import User
from .schemas import ExistsOut, ExistsQuery, LoginIn, RegisterIn, TokenIn, TokenOut, UserOut

bp = ServiceBlueprint("users", __name__, url_prefix="/api/users", tag="users")

TOKEN_ERRORS: ErrorDocs = {401: "The token is missing, unknown, expired or revoked."}


@bp.post("/register")
@bp.input(RegisterIn, location="json_or_form", arg_name="fields")
@bp.output(UserOut, status_code=201, description="The new user.")
@bp.doc(responses=error_responses({409: "The username or email is taken (whatever the case)."}))
def register(fields: dict[str, Any]) -> User:
    """Register a user."""
    return domain.register(fields)


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


@bp.post("/login")
@bp.input(LoginIn, location="json_or_form", arg_name="credentials")
@bp.output(TokenOut, description="A new token.")
@bp.doc(responses=error_responses({401: "Wrong username or password (one answer for both)."}))
def login(credentials: dict[str, str]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Log in: trade a username and password for a new bearer token."""
    issued = domain.log_in(
        credentials["username"], credentials["password"], current_app.config["TOKEN_TTL_SECONDS"]
    )
    return asdict(issued), 200, {"Cache-Control": "no-store"}  # a secret: never cache it


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
