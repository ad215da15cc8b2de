"""The users endpoints under /api/users."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any

from flask import Response, current_app, request
from marshmallow import fields

from servicekit.apidocs import bearer_auth_doc, invalid_input_doc, path_examples, problem_doc
from servicekit.app import no_content
from servicekit.auth import TOKEN_NOT_VALID, bearer_token
from servicekit.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from servicekit.output import ServiceBlueprint

from . import Config, domain
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
from .throttling import Limits, Quota, client_address

log = logging.getLogger(__name__)
# What administrators change: who did it, and what.
audit = logging.getLogger("users.audit")

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


def _example_quota(*, remaining: int = 0, wait_seconds: int | None = None) -> Quota:
    """Where a username stands, for the documents' examples, with users' default limits."""
    limits = Limits(
        Config.LOGIN_MAX_FAILURES,
        Config.LOGIN_MAX_FAILURES_PER_ADDRESS,
        Config.LOGIN_WINDOW_SECONDS,
    )
    return Quota(limits, remaining=remaining, reset_seconds=540, wait_seconds=wait_seconds)


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
            domain.TooManyFailures(_example_quota(wait_seconds=540)),
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
    username, address = credentials["username"], _client_address()
    logins = users_metrics().logins
    try:
        issued, quota = domain.log_in(
            username,
            credentials["password"],
            ttl_seconds=config["TOKEN_TTL_SECONDS"],
            address=address,
            limits=_login_limits(),
            wait_seconds=config["PASSWORD_WAIT_SECONDS"],
        )
    except domain.TooManyFailures:
        logins.labels("throttled").inc()
        log.info("login of %s from %s throttled", username, address, extra={"username": username})
        raise
    except Unauthorized:
        logins.labels("failed").inc()
        log.info("login of %s from %s failed", username, address, extra={"username": username})
        raise
    logins.labels("ok").inc()
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


def _client_address() -> str:
    return client_address(
        request.remote_addr,
        request.headers.get("X-Forwarded-For"),
        current_app.config["TRUSTED_PROXIES"],
    )


def _login_limits() -> Limits:
    config = current_app.config
    return Limits(
        config["LOGIN_MAX_FAILURES"],
        config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        config["LOGIN_WINDOW_SECONDS"],
    )


def _password_check() -> domain.PasswordCheck:
    """Where a password check comes from, and its limits: as a login's."""
    return domain.PasswordCheck(
        _client_address(), _login_limits(), current_app.config["PASSWORD_WAIT_SECONDS"]
    )


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


# A user's own account, and administrators managing users: the token is checked
# here, in users' own database, before anything about the body is said.


def with_caller(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the token's user to the view as `caller`; 401 (documented) without
    a valid token. Put it under the route and above `input` and `doc`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, caller=_caller(), **kwargs)

    return TAKES_TOKEN(wrapper)


def with_admin_caller(view: Callable[..., Any]) -> Callable[..., Any]:
    """Like `with_caller`, and 403 (documented too) unless the caller is an administrator."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        caller = _caller()
        if not caller.is_admin:
            raise Forbidden(domain.ONLY_ADMINS)
        return view(*args, caller=caller, **kwargs)

    return bearer_auth_doc({**TOKEN_WILL_NOT_DO, 403: ONLY_ADMINS_DOC})(wrapper)


def _caller() -> Any:
    token = bearer_token()
    if token is None:
        raise Unauthorized()
    return _token_user(token)


ONLY_ADMINS_DOC = problem_doc("The caller is not an administrator.", Forbidden(domain.ONLY_ADMINS))
EMAIL_TAKEN = problem_doc(
    "The email is someone else's (whatever the case).",
    Conflict("Already taken: email.", errors={"email": ["Already taken."]}),
)
THROTTLED = LOGIN_ERRORS[429]
WRONG_PASSWORD_HEADERS = {"headers": RATE_LIMIT_HEADERS}
NO_SUCH_USER = problem_doc("No user has this id.", NotFound("No user has id 7."))
USER_ID_IN_PATH = path_examples(user_id=1)


@bp.patch("/me")
@with_caller
@bp.input(UserPatch, location="json_or_form", arg_name="fields")
@bp.output(UserOut, description="The caller, as they are now.")
@bp.doc(
    responses={
        400: problem_doc(
            "Invalid input, or nothing to change.",
            ValidationFailed({"email": ["Not a valid email address."]}),
            ValidationFailed({"body": ["Send at least one of email, first_name and last_name."]}),
        ),
        409: EMAIL_TAKEN,
    }
)
def change_me(fields: dict[str, Any], caller: Any) -> User:
    """Change your own email and names: only the fields sent change; an empty or
    null name removes it."""
    return domain.change_details(caller.id, fields)


@bp.put("/me/password")
@with_caller
@bp.input(PasswordChangeIn, location="json_or_form", arg_name="passwords")
@bp.output(
    {},
    status_code=204,
    description="The password is changed; every other token of "
    "yours is revoked, the one presented still works.",
)
@bp.doc(
    responses={
        400: {
            **problem_doc(
                "Invalid input, or a wrong current password (counted as a failed login).",
                domain.WrongPassword("current_password", _example_quota(remaining=9)),
                ValidationFailed(
                    {"new_password": ["Too common: one of the 10000 most used passwords."]}
                ),
            ),
            **WRONG_PASSWORD_HEADERS,
        },
        429: THROTTLED,
        503: PASSWORDS_BUSY,
    }
)
def change_my_password(passwords: dict[str, str], caller: Any) -> Response:
    """Change your own password, given the current one."""
    domain.change_password(
        caller,
        _presented_token({}),
        passwords["current_password"],
        passwords["new_password"],
        _password_check(),
    )
    return no_content()


@bp.delete("/me")
@with_caller
@bp.input(AccountDeletionIn, location="json_or_form", arg_name="body")
@bp.output(
    {},
    status_code=204,
    description="You and your tokens are gone; your username and email are free again.",
)
@bp.doc(
    responses={
        400: {
            **problem_doc(
                "Invalid input, or a wrong password (counted as a failed login).",
                domain.WrongPassword("password", _example_quota(remaining=9)),
            ),
            **WRONG_PASSWORD_HEADERS,
        },
        409: problem_doc(
            "You are the last administrator.",
            domain.last_admin_leaving(),
        ),
        429: THROTTLED,
        503: PASSWORDS_BUSY,
    }
)
def delete_me(body: dict[str, str], caller: Any) -> Response:
    """Delete your own account, given your password."""
    domain.delete_account(caller, body["password"], _password_check())
    return no_content()


@bp.get("/")
@with_admin_caller
@bp.input(UserListQuery, location="query", arg_name="query")
@bp.output(
    UserOut(many=True),
    description="A page of users in id order.",
    headers={"X-Total-Count": fields.Integer(metadata={"description": "Matches on all pages."})},
)
@bp.doc(
    responses={
        400: invalid_input_doc(
            "limit", "Must be greater than or equal to 1 and less than or equal to 1000."
        )
    }
)
def list_users(query: dict[str, Any], caller: Any) -> tuple[list[User], int, dict[str, str]]:
    """List the users, a page at a time, or those whose username or email holds
    `q` (administrators only)."""
    users, total = domain.list_users(limit=query["limit"], offset=query["offset"], q=query.get("q"))
    return users, 200, {"X-Total-Count": str(total)}


@bp.get("/<int:user_id>")
@with_admin_caller
@bp.output(UserOut, description="The user.")
@bp.doc(responses={404: NO_SUCH_USER}, extensions=USER_ID_IN_PATH)
def get_user(user_id: int, caller: Any) -> User:
    """One user by id (administrators only)."""
    return domain.user_by_id(user_id)


@bp.patch("/<int:user_id>")
@with_admin_caller
@bp.input(AdminPatch, location="json_or_form", arg_name="fields")
@bp.output(UserOut, description="The user, as they are now.")
@bp.doc(
    responses={
        400: invalid_input_doc("is_admin", "Missing data for required field."),
        404: NO_SUCH_USER,
        409: problem_doc("No administrator would be left.", domain.no_admin_left()),
    },
    extensions=USER_ID_IN_PATH,
)
def change_user(user_id: int, fields: dict[str, Any], caller: Any) -> User:
    """Make a user an administrator, or no longer one (administrators only); never
    the last administrator."""
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
