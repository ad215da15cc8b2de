"""The users endpoints under /api/users."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from flask import Response, current_app, request

from servicekit.app import no_content
from servicekit.auth import ADMIN, TOKEN_NOT_VALID, BearerTokenAuth, bearer_token
from servicekit.errors import NotFound, Unauthorized
from servicekit.output import ServiceBlueprint

from . import docs, domain, throttling
from .metrics import users_metrics
from .models import User
from .schemas import (
    AccountDeletionIn,
    AdminPatch,
    ExistsOut,
    ExistsQuery,
    LoginIn,
    PasswordChangeIn,
    RegisterIn,
    TokenIn,
    TokenOut,
    UserListQuery,
    UserOut,
    UserPatch,
)
from .throttling import Limits, client_address

log = logging.getLogger(__name__)
# What administrators change: who did it, and what.
audit = logging.getLogger("users.audit")

bp = ServiceBlueprint(
    "users",
    __name__,
    url_prefix="/api/users",
    tag={"name": "users", "description": "Registration, login and bearer tokens."},
)
# users checks tokens itself, in its own database, before anything about the body is said.
auth = BearerTokenAuth(domain.user_for_token, domain.ONLY_ADMINS)


@bp.post("/register")
@bp.input(RegisterIn, location="json_or_form", arg_name="fields")
@bp.output(UserOut, status_code=201, description="The new user.")
@bp.doc(responses=docs.REGISTER)
def register(fields: dict[str, Any]) -> User:
    """Register a user."""
    return domain.register(fields, wait_seconds=current_app.config["PASSWORD_WAIT_SECONDS"])


@bp.get("/exists")
@bp.input(ExistsQuery, location="query", arg_name="query")
@bp.output(ExistsOut, description="The username is taken.")
@bp.doc(responses=docs.EXISTS)
def exists(query: dict[str, str]) -> dict[str, Any]:
    """Tell whether a username is taken (whatever the case)."""
    username = query["username"]
    if domain.find_user(username) is None:
        raise NotFound(f"No user is called {username}.", username=username, exists=False)
    return {"username": username, "exists": True}


@bp.post("/login")
@bp.input(LoginIn, location="json_or_form", arg_name="credentials")
@bp.output(TokenOut, description="A new token.", headers=docs.NEW_TOKEN_HEADERS)
@bp.doc(responses=docs.LOGIN)
def login(credentials: dict[str, str]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Log in: trade a username and password for a new bearer token."""
    username, check = credentials["username"], _password_check()
    try:
        issued = domain.log_in(
            username,
            credentials["password"],
            ttl_seconds=current_app.config["TOKEN_TTL_SECONDS"],
            check=check,
        )
    except throttling.TooManyFailures:
        _count_login("throttled", username, check.address)
        raise
    except domain.WrongCredentials:
        _count_login("failed", username, check.address)
        raise
    _count_login("ok", username, check.address)
    # A token is a secret: never cached.
    headers = {"Cache-Control": "no-store", **throttling.headers_after_success(check.limits)}
    return asdict(issued), 200, headers


def _count_login(outcome: str, username: str, address: str) -> None:
    """The login's outcome in the metrics, and in the log unless it succeeded."""
    users_metrics().logins.labels(outcome).inc()
    if outcome != "ok":
        log.info("login of %s from %s %s", username, address, outcome, extra={"username": username})


@bp.post("/logout")
@bp.input(TokenIn, location="json_or_form", arg_name="body")
@bp.output({}, status_code=204, description="The token is revoked.")
@bp.doc(security=docs.TOKEN_IN_HEADER_OR_BODY, responses=docs.TAKES_TOKEN)
def logout(body: dict[str, str]) -> Response:
    """Log out: revoke the token presented (header, or body field `token`)."""
    if not domain.revoke(_presented_token(body)):
        raise Unauthorized(TOKEN_NOT_VALID)
    return no_content()


@bp.post("/check_token")
@bp.input(TokenIn, location="json_or_form", arg_name="body")
@bp.output(UserOut, description="The token's user.")
@bp.doc(security=docs.TOKEN_IN_HEADER_OR_BODY, responses=docs.TAKES_TOKEN)
def check_token(body: dict[str, str]) -> Any:
    """Tell who a token belongs to (header, or body field `token`)."""
    user = domain.user_for_token(_presented_token(body))
    if user is None:
        raise Unauthorized(TOKEN_NOT_VALID)
    return user


@bp.get("/me")
@bp.auth_required(auth)
@bp.output(UserOut, description="The caller.")
@bp.doc(responses=docs.TAKES_TOKEN)
def me() -> Any:
    """The user the token belongs to."""
    return auth.caller()


def _client_address() -> str:
    return client_address(
        request.remote_addr,
        request.headers.get("X-Forwarded-For"),
        current_app.config["TRUSTED_PROXIES"],
    )


def _password_check() -> domain.PasswordCheck:
    """Where a password check comes from, and its limits: a login's."""
    config = current_app.config
    limits = Limits(
        config["LOGIN_MAX_FAILURES"],
        config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        config["LOGIN_WINDOW_SECONDS"],
    )
    return domain.PasswordCheck(_client_address(), limits, config["PASSWORD_WAIT_SECONDS"])


def _presented_token(body: dict[str, str]) -> str:
    token = bearer_token() or body.get("token")
    if not token:
        raise Unauthorized()
    return token


# A user's own account, and administrators managing users.


@bp.patch("/me")
@bp.auth_required(auth)
@bp.input(UserPatch, location="json_or_form", arg_name="fields")
@bp.output(UserOut, description="The caller, as they are now.")
@bp.doc(responses=docs.CHANGE_ME)
def change_me(fields: dict[str, Any]) -> User:
    """Change your own email and names: only the fields sent change; an empty or
    null name removes it."""
    return domain.change_details(auth.caller().id, fields)


@bp.put("/me/password")
@bp.auth_required(auth)
@bp.input(PasswordChangeIn, location="json_or_form", arg_name="passwords")
@bp.output(
    {},
    status_code=204,
    description="The password is changed; every other token of "
    "yours is revoked, the one presented still works.",
)
@bp.doc(responses=docs.CHANGE_MY_PASSWORD)
def change_my_password(passwords: dict[str, str]) -> Response:
    """Change your own password, given the current one."""
    domain.change_password(
        auth.caller(),
        _presented_token({}),
        passwords["current_password"],
        passwords["new_password"],
        _password_check(),
    )
    return no_content()


@bp.delete("/me")
@bp.auth_required(auth)
@bp.input(AccountDeletionIn, location="json_or_form", arg_name="body")
@bp.output(
    {},
    status_code=204,
    description="You and your tokens are gone; your username and email are free again.",
)
@bp.doc(responses=docs.DELETE_ME)
def delete_me(body: dict[str, str]) -> Response:
    """Delete your own account, given your password."""
    domain.delete_account(auth.caller(), body["password"], _password_check())
    return no_content()


@bp.get("/")
@bp.auth_required(auth, roles=[ADMIN])
@bp.input(UserListQuery, location="query", arg_name="query")
@bp.output(UserOut(many=True), description="A page of users in id order.", headers=docs.TOTAL_COUNT)
@bp.doc(responses=docs.LIST_USERS)
def list_users(query: dict[str, Any]) -> tuple[list[User], int, dict[str, str]]:
    """List the users, a page at a time, or those whose username or email holds
    `q` (administrators only)."""
    users, total = domain.list_users(limit=query["limit"], offset=query["offset"], q=query.get("q"))
    return users, 200, {"X-Total-Count": str(total)}


@bp.get("/<int:user_id>")
@bp.auth_required(auth, roles=[ADMIN])
@bp.output(UserOut, description="The user.")
@bp.doc(responses=docs.GET_USER, extensions=docs.USER_ID_IN_PATH)
def get_user(user_id: int) -> User:
    """One user by id (administrators only)."""
    return domain.user_by_id(user_id)


@bp.patch("/<int:user_id>")
@bp.auth_required(auth, roles=[ADMIN])
@bp.input(AdminPatch, location="json_or_form", arg_name="fields")
@bp.output(UserOut, description="The user, as they are now.")
@bp.doc(responses=docs.CHANGE_USER, extensions=docs.USER_ID_IN_PATH)
def change_user(user_id: int, fields: dict[str, Any]) -> User:
    """Make a user an administrator, or no longer one (administrators only); never
    the last administrator."""
    caller = auth.caller()
    user = domain.set_admin(caller.id, user_id, fields["is_admin"])
    audit.info(
        "administrator %d %s user %d (%s)",
        caller.id,
        "promoted" if user.is_admin else "demoted",
        user.id,
        user.username,
        extra={"admin_id": caller.id, "user_id": user.id, "is_admin": user.is_admin},
    )
    return user
