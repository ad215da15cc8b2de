"""Who is calling: the bearer token, and what the users service says about it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, request

from .apidocs import bearer_auth_doc, problem_doc, unavailable_doc
from .errors import Forbidden, Unauthorized
from .upstream import RemoteUser, UsersClient

TOKEN_NOT_VALID = "The token is unknown, expired or revoked."
ONLY_ADMINS = "Only administrators may change the catalogue."
# What with_user and with_admin answer for the view, in its OpenAPI document.
USER_RESPONSES = {
    401: problem_doc(
        "The token is missing, unknown, expired or revoked.",
        Unauthorized(),
        Unauthorized(TOKEN_NOT_VALID),
    ),
    503: unavailable_doc("users"),
}
ADMIN_RESPONSES = {
    **USER_RESPONSES,
    403: problem_doc("The caller is not an administrator.", Forbidden(ONLY_ADMINS)),
}


def bearer_token() -> str | None:
    """The token from `Authorization: Bearer <t>`, or the bare `Authorization: <t>`."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    if rest:  # another scheme, e.g. Basic: not ours
        return None
    return header


def users_client() -> UsersClient:
    client: UsersClient = current_app.extensions["users_client"]
    return client


def require_user() -> RemoteUser:
    """The caller, as users says; 401 when there is no valid token."""
    token = bearer_token()
    if token is None:
        raise Unauthorized()
    user = users_client().user_for_token(token)
    if user is None:
        raise Unauthorized(TOKEN_NOT_VALID)
    return user


def require_admin() -> RemoteUser:
    """The caller, who must be an administrator; 403 otherwise."""
    user = require_user()
    if not user.is_admin:
        raise Forbidden(ONLY_ADMINS)
    return user


def with_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the caller to the view as `user`; 401 without a valid token. The
    view's OpenAPI operation says so: BearerAuth, 401 and 503 (users down).

    Put it under the route decorator and above `input` and `doc`, so that a
    caller with no valid token hears 401 before any word about the body, and
    the view's own `doc` is there to add to.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, user=require_user(), **kwargs)

    return bearer_auth_doc(USER_RESPONSES)(wrapper)


def with_admin(view: Callable[..., Any]) -> Callable[..., Any]:
    """Like `with_user`, and 403 (documented too) unless the caller is an administrator."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, user=require_admin(), **kwargs)

    return bearer_auth_doc(ADMIN_RESPONSES)(wrapper)
