"""What the users endpoints read and write; the same schemas validate and document."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from marshmallow import ValidationError, fields, post_load, pre_load, validate, validates_schema

from servicekit.schemas import BaseSchema, FullMatch, PageQuery, UtcTime

from .domain import is_the_username, name_key
from .models import EMAIL_LENGTH, LOGIN_KEY_LENGTH

# The 10000 most used passwords, most used first: the head of the list Django
# ships (django/contrib/auth/common-passwords.txt.gz, made by Royce Williams
# from breached password sets), lowercased.
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(COMMON_PASSWORDS.read_text(encoding="utf-8").split())


def is_common_password(password: str) -> bool:
    """Whatever its case: "Password" is as common as "password"."""
    return password.lower() in _common_passwords()


class FoldedFits(validate.Validator):
    """The value, case-folded as it is stored and compared, fits its column:
    "ß" folds to "ss", so 128 of them need 256 characters."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, value: str) -> str:
        if len(name_key(value)) > self.length:
            raise ValidationError(
                f"Too long once its case is folded: at most {self.length} characters."
            )
        return value


def _not_only_spaces(password: str) -> None:
    if not password.strip():
        raise ValidationError("Must hold something besides spaces.")


def _not_common(password: str) -> None:
    if is_common_password(password):
        raise ValidationError("Too common: one of the 10000 most used passwords.")


USERNAME = FullMatch(r"^[A-Za-z0-9_.-]{3,64}$", error="3 to 64 of the characters A-Z a-z 0-9 _ . -")
NAME = validate.Length(max=255)
EMAIL = [validate.Length(max=EMAIL_LENGTH), FoldedFits(EMAIL_LENGTH)]
# A new password (registration, a password change); not the username either,
# which the schema or the domain checks, knowing it.
NEW_PASSWORD: list[Callable[[str], Any]] = [
    validate.Length(min=8, max=128),
    _not_only_spaces,
    _not_common,
]
NEW_PASSWORD_RULES = (
    "8 to 128 characters, not only spaces; not the username, and not one of the "
    "10000 most used passwords (whatever the case)."
)
# A password to check: any length a client may send, within reason.
PASSWORD_TO_CHECK = validate.Length(max=1024)
PASSWORD_EXAMPLE = "correct horse battery staple"


def new_password_field(example: str = PASSWORD_EXAMPLE) -> fields.String:
    """A password to set, held to NEW_PASSWORD_RULES; never written out."""
    return fields.String(
        required=True,
        load_only=True,
        validate=NEW_PASSWORD,
        metadata={"description": NEW_PASSWORD_RULES, "example": example},
    )


def password_to_check_field(description: str | None = None) -> fields.String:
    """A password to check against the one stored; never written out."""
    described = {"description": description} if description else {}
    return fields.String(
        required=True,
        load_only=True,
        validate=PASSWORD_TO_CHECK,
        metadata={**described, "example": PASSWORD_EXAMPLE},
    )


class RegisterIn(BaseSchema):
    username = fields.String(required=True, validate=USERNAME, metadata={"example": "ivan"})
    email = fields.Email(validate=EMAIL, metadata={"example": "ivan@example.com"})
    mail = fields.Email(
        load_only=True,
        validate=EMAIL,
        metadata={
            "description": "The original name of `email`, accepted as well.",
            "example": "ivan@example.com",
        },
    )
    password = new_password_field()
    first_name = fields.String(
        load_default=None, allow_none=True, validate=NAME, metadata={"example": "Иван"}
    )
    last_name = fields.String(
        load_default=None, allow_none=True, validate=NAME, metadata={"example": "Петров"}
    )

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def check_email_and_password(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        sent = original if hasattr(original, "get") else {}
        if not sent.get("email") and not sent.get("mail"):
            errors["email"] = ["Missing data for required field."]
        username, password = data.get("username"), data.get("password")
        if username and password and is_the_username(password, username):
            errors["password"] = ["Must not be the username."]
        if errors:
            raise ValidationError(errors)

    @post_load
    def one_email(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mail = data.pop("mail", None)
        data["email"] = data.get("email") or mail
        return data


# What a token looks like (secrets.token_urlsafe of 32 bytes); no real one.
TOKEN_EXAMPLE = "q0vLJ2c8h7Jx4mQyTnB6s1fWdR9eKpA3zUoV5gHiC0E"


class ExistsQuery(BaseSchema):
    username = fields.String(
        required=True, validate=validate.Length(min=1, max=255), metadata={"example": "ivan"}
    )


class ExistsOut(BaseSchema):
    username = fields.String(metadata={"example": "ivan"})
    exists = fields.Boolean(metadata={"example": True})


class LoginIn(BaseSchema):
    username = fields.String(
        required=True,
        # Failed logins are counted by the case-folded username.
        validate=[validate.Length(min=1, max=255), FoldedFits(LOGIN_KEY_LENGTH)],
        metadata={"example": "ivan"},
    )
    password = password_to_check_field()


class TokenOut(BaseSchema):
    token = fields.String(
        metadata={
            "description": "Send it as `Authorization: Bearer <token>`.",
            "example": TOKEN_EXAMPLE,
        }
    )
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_at = UtcTime(metadata={"example": "2026-11-29T02:15:36+00:00"})


class TokenIn(BaseSchema):
    token = fields.String(
        metadata={
            "description": "The token, when it is not sent in the Authorization header.",
            "example": TOKEN_EXAMPLE,
        },
    )


class UserOut(BaseSchema):
    id = fields.Integer(metadata={"example": 1})
    username = fields.String(metadata={"example": "ivan"})
    email = fields.String(metadata={"example": "ivan@example.com"})
    first_name = fields.String(allow_none=True, metadata={"example": "Иван"})
    last_name = fields.String(allow_none=True, metadata={"example": "Петров"})
    is_admin = fields.Boolean(metadata={"example": False})
    time_registered = UtcTime()
    time_modified = UtcTime()


class UserPatch(BaseSchema):
    """PATCH /api/users/me: any of these; only those sent change."""

    email = fields.Email(
        validate=EMAIL,
        metadata={
            "description": "Taken by no one else, whatever the case.",
            "example": "ivan.petrov@example.com",
        },
    )
    first_name = fields.String(
        allow_none=True,
        validate=NAME,
        metadata={"description": "Empty or null removes it.", "example": "Иван"},
    )
    last_name = fields.String(
        allow_none=True,
        validate=NAME,
        metadata={"description": "Empty or null removes it.", "example": "Петров"},
    )

    @pre_load
    def empty_name_is_none(self, data: Any, **kwargs: Any) -> Any:
        if not hasattr(data, "get"):
            return data
        empty = {name: None for name in ("first_name", "last_name") if data.get(name) == ""}
        return {**data, **empty} if empty else data

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def something_to_change(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        sent = original if hasattr(original, "keys") else {}
        if not {"email", "first_name", "last_name"} & set(sent.keys()):
            raise ValidationError(
                {"body": ["Send at least one of email, first_name and last_name."]}
            )


class PasswordChangeIn(BaseSchema):
    current_password = password_to_check_field(
        "The password now; a wrong one counts as a failed login."
    )
    new_password = new_password_field("a new and longer passphrase")


class AccountDeletionIn(BaseSchema):
    password = password_to_check_field(
        "The password, to be sure; a wrong one counts as a failed login."
    )


class UserListQuery(PageQuery):
    q = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={
            "description": "Keep the users whose username or email holds this, in any case.",
            "example": "ivan",
        },
    )


class AdminPatch(BaseSchema):
    """PATCH /api/users/<id>: what an administrator changes about a user."""

    is_admin = fields.Boolean(
        required=True,
        metadata={
            "description": "Make the user an administrator, or no longer one (never the last).",
            "example": True,
        },
    )
