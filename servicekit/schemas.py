"""Field types two or more services declare their schemas with."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apiflask import Schema
from marshmallow import EXCLUDE, fields, validate

from .db import CENT

SKU_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,64}$"
MAX_PRICE = Decimal("999999.99")

# The shape of an error in the OpenAPI document (RFC 9457 problem details).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Bad Request"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string", "example": "Invalid input: price."},
        "errors": {
            "type": "object",
            "description": "For validation errors: every bad field and what is wrong with it.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "example": {"price": ["At most two decimal places."]},
        },
    },
}


class BaseSchema(Schema):
    """Fields a schema does not declare are ignored, as forms often carry extras."""

    class Meta:
        unknown = EXCLUDE


def sku_field(**kwargs: Any) -> fields.String:
    metadata = {"example": "123456", **kwargs.pop("metadata", {})}
    return fields.String(
        validate=validate.Regexp(
            SKU_PATTERN, error="1 to 64 of the characters A-Z a-z 0-9 _ . - (not . or ..)."
        ),
        metadata=metadata,
        **kwargs,
    )


class Money(fields.Field[Decimal]):
    """A decimal amount with at most two places; read from a string or a number,
    written as a string with exactly two places ("1.19"). Never rounded silently.
    """

    default_error_messages = {
        "invalid": "Not a valid amount of money.",
        "places": "At most two decimal places.",
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "decimal", "example": "1.19"}
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: Decimal | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value.quantize(CENT))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
            raise self.make_error("invalid")
        try:
            amount = Decimal(text)
        except InvalidOperation as error:
            raise self.make_error("invalid") from error
        if amount != amount.quantize(CENT):
            raise self.make_error("places")
        return amount.quantize(CENT)


def price_field(**kwargs: Any) -> Money:
    return Money(
        validate=validate.Range(
            min=Decimal(0),
            min_inclusive=False,
            max=MAX_PRICE,
            error="Must be more than 0 and at most 999999.99.",
        ),
        **kwargs,
    )


class UtcTime(fields.DateTime):
    """ISO 8601 in UTC with an offset, to the second: 2026-11-28T02:15:36+00:00."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="seconds")
