"""Administrators as an operator makes them: `inv users create-admin`."""

from __future__ import annotations

from collections.abc import Callable

from marshmallow import ValidationError

from servicekit.errors import Problem

from .domain import promote_to_admin, register
from .schemas import RegisterIn


class AdminRefused(ValueError):
    """The administrator cannot be created as asked; the message says why."""


def create_admin(username: str, email: str, ask_password: Callable[[], str]) -> str:
    """Promote the user to administrator, or create them as one, asking for a
    password only then; a line saying which, with no secret in it. Runs inside
    the users app's context."""
    user = promote_to_admin(username)
    if user is not None:
        return f"Promoted {user.username} (id {user.id}) to administrator"
    try:
        fields = RegisterIn().load(
            {"username": username, "email": email, "password": ask_password()}
        )
        user = register(fields, is_admin=True)
    except ValidationError as error:
        raise AdminRefused(f"invalid input: {error.messages}") from error
    except Problem as error:
        raise AdminRefused(error.detail) from error
    return f"Created administrator {user.username} (id {user.id})"
