"""Field types two or more services declare their schemas with."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from apiflask import Schema
from marshmallow import RAISE, ValidationError, fields, validate

from .db import CENT

# Patterns are written as JavaScript reads them too (the OpenAPI document shows
# them) and matched whole with FullMatch, so no final newline sneaks past `$`.
SKU_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,64}$"
ASCII_INTEGER = re.compile(r"[+-]?[0-9]{1,100}")
ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
MAX_DIGITS = 15  # more whole digits than any amount of money here
MAX_PAGE = 1000  # items on one page of a list
MAX_OFFSET = 2**31 - 1  # what every database takes as a plain integer


class FullMatch(validate.Regexp):
    """Regexp that must match the whole value: `$` then allows no final newline,
    as in JavaScript, which reads the same pattern in the OpenAPI document."""

    def __call__(self, value: Any) -> Any:  # str, or bytes as Regexp allows
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class BaseSchema(Schema):
    """A field the schema does not declare is a 400 naming it ("Unknown field."),
    never silently dropped: `{"sku": "123456", "qty": 3}` is a mistake to hear
    of, not one beer. (Query parameters are held to the operation's query
    schemas, and a body to an operation that takes none, in servicekit.intake;
    a NUL character in any field is refused there too, before a schema sees it.)"""

    class Meta:
        unknown = RAISE


class WholeNumber(fields.Integer):
    """An integer: a JSON integer, or ASCII digits in a form or query ("٣" and
    "３" are not numbers here); 2.5 and true are refused, not truncated."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        if isinstance(value, str) and not ASCII_INTEGER.fullmatch(value.strip()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Sku(fields.String):
    """A SKU: 1 to 64 of A-Z a-z 0-9 _ . -; a JSON integer is taken as its digits,
    since the demo SKUs are numbers and older clients send them so."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"example": "123456", **kwargs.pop("metadata", {})}
        error = "1 to 64 of the characters A-Z a-z 0-9 _ . - (not . or ..)."
        super().__init__(validate=FullMatch(SKU_PATTERN, error=error), metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Money(fields.Field[Decimal]):
    """A decimal amount with at most two places; read from a string or a number,
    written as a string with exactly two places ("1.19"). Never rounded silently.
    """

    default_error_messages = {
        "invalid": "Not a valid amount of money.",
        "places": "At most two decimal places.",
        "too_large": "Far too large an amount.",
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = {
            "type": "string",
            "format": "decimal",
            "pattern": r"^\d+(\.\d{1,2})?$",
            "example": "1.19",
            "description": "A decimal string with at most two places; "
            "a JSON number is accepted on input too.",
        }
        metadata.update(kwargs.pop("metadata", {}))
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: Decimal | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value.quantize(CENT))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        text = str(value).strip()
        if not ASCII_DECIMAL.fullmatch(text):
            raise self.make_error("invalid")
        whole, _, decimals = text.lstrip("+-").partition(".")
        if len(decimals) > 2:  # "1.190" too: more than two decimals
            raise self.make_error("places")
        if len(whole.lstrip("0")) > MAX_DIGITS:
            raise self.make_error("too_large")
        return Decimal(text).quantize(CENT)


class PageQuery(BaseSchema):
    """Which page of a list in id order: `limit` items after the first `offset`."""

    limit = WholeNumber(
        load_default=100,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"How many on the page (1 to {MAX_PAGE}).", "example": 100},
    )
    offset = WholeNumber(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_OFFSET),
        metadata={"description": "How many to skip, oldest first.", "example": 0},
    )


class UtcTime(fields.DateTime):
    """ISO 8601 in UTC with an offset, to the second: 2026-11-28T02:15:36+00:00."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"example": "2026-11-28T02:15:36+00:00", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="seconds")
