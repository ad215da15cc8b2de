"""Who is calling: the bearer token, checked through APIFlask's HTTPTokenAuth
(`BearerTokenAuth`). beers and orders share `users_auth`, which asks the users
service, and document its answers with USER_RESPONSES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from apiflask import HTTPError, HTTPTokenAuth
from flask import current_app, request
from werkzeug.datastructures import Authorization

from .apidocs import BEARER_AUTH, problem_doc, unavailable_doc
from .errors import Forbidden, Unauthorized
from .upstream import RemoteUser, UsersClient

TOKEN_NOT_VALID = "The token is unknown, expired or revoked."
ONLY_ADMINS = "Only administrators may change the catalogue."
ADMIN = "admin"  # the role `auth_required(auth, roles=[ADMIN])` asks for
BEARER_DESCRIPTION = "`Authorization: Bearer <token>`; the bare token is accepted too."
# What a view under users_auth may answer for want of a token, in its OpenAPI document.
TOKEN_WILL_NOT_DO = problem_doc(
    "The token is missing, unknown, expired or revoked.",
    Unauthorized(),
    Unauthorized(TOKEN_NOT_VALID),
)
USER_RESPONSES = {401: TOKEN_WILL_NOT_DO, 503: unavailable_doc("users")}


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


class BearerTokenAuth(HTTPTokenAuth):
    """HTTPTokenAuth that takes the bare token too, finds its user with
    `find_user` (None: no such live token), gives administrators the ADMIN role,
    and refuses as the rest of the service does: 401 and 403 as problem+json."""

    def __init__(self, find_user: Callable[[str], Any | None], only_admins: str) -> None:
        super().__init__(
            scheme="Bearer", description=BEARER_DESCRIPTION, security_scheme_name=BEARER_AUTH
        )
        self.only_admins = only_admins
        self.verify_token(find_user)
        self.get_user_roles(lambda user: [ADMIN] if user.is_admin else [])
        self.error_processor(self.refuse)

    def get_auth(self) -> Authorization | None:
        """The token, bare or after `Bearer` (HTTPTokenAuth's own takes only the latter)."""
        token = bearer_token()
        return None if token is None else Authorization("bearer", token=token)

    def caller(self) -> Any:
        """`current_user` in a view under `auth_required(self)`: never None there."""
        return self.current_user

    def refuse(self, error: HTTPError) -> NoReturn:
        """401 or 403 as the service's own problems, with their details."""
        if error.status_code == Forbidden.status:
            raise Forbidden(self.only_admins)
        raise Unauthorized() if bearer_token() is None else Unauthorized(TOKEN_NOT_VALID)


def users_client() -> UsersClient:
    client: UsersClient = current_app.extensions["users_client"]
    return client


def user_from_users(token: str) -> RemoteUser | None:
    """The token's user, as the users service says (503 when it cannot say);
    None, without asking, for a token that is not ASCII: users issues none,
    and such a token could not be sent on in a header."""
    if not token.isascii():
        return None
    return users_client().user_for_token(token)


users_auth = BearerTokenAuth(user_from_users, ONLY_ADMINS)


def caller() -> RemoteUser:
    """The user whose token the request carries, in a view under `users_auth`."""
    user: RemoteUser = users_auth.caller()
    return user
