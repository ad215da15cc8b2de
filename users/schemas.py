"""What the users endpoints read and write; the same schemas validate and document."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from servicekit.schemas import BaseSchema, FullMatch, UtcTime

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


USERNAME = FullMatch(r"^[A-Za-z0-9_.-]{3,64}$", error="3 to 64 of the characters A-Z a-z 0-9 _ . -")
NAME = validate.Length(max=255)


class RegisterIn(BaseSchema):
    username = fields.String(required=True, validate=USERNAME, metadata={"example": "ivan"})
    email = fields.Email(
        validate=validate.Length(max=255), metadata={"example": "ivan@example.com"}
    )
    mail = fields.Email(
        load_only=True,
        validate=validate.Length(max=255),
        metadata={
            "description": "The original name of `email`, accepted as well.",
            "example": "ivan@example.com",
        },
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=8, max=128),
        metadata={
            "description": "8 to 128 characters; not the username, and not one of the "
            "10000 most used passwords (whatever the case).",
            "example": "correct horse battery staple",
        },
    )
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
        if username and password and username.lower() == password.lower():
            errors["password"] = ["Must not be the username."]
        elif password and is_common_password(password):
            errors["password"] = ["Too common: one of the 10000 most used passwords."]
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
        required=True, validate=validate.Length(min=1, max=255), metadata={"example": "ivan"}
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(max=1024),
        metadata={"example": "correct horse battery staple"},
    )


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
