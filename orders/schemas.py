"""What the orders endpoints read and write; the same schemas validate and document."""

from __future__ import annotations

from marshmallow import fields, validate

from servicekit.schemas import BaseSchema, Money, Sku, UtcTime, WholeNumber


class AddBeerIn(BaseSchema):
    sku = Sku(required=True)
    quantity = WholeNumber(
        load_default=1,
        validate=validate.Range(min=1, max=10000),
        metadata={"description": "How many to add (1 to 10000); 1 when omitted.", "example": 2},
    )


class RemoveBeerIn(BaseSchema):
    sku = Sku(metadata={"description": "The SKU to remove, here or in the query."})


class RemoveBeerQuery(BaseSchema):
    sku = Sku(metadata={"description": "The SKU to remove, here or in the body."})


# The examples show an open order of two Бургаско from the demo catalogue.
class LineOut(BaseSchema):
    sku = fields.String(metadata={"example": "123456"})
    name = fields.String(metadata={"example": "Бургаско"})
    quantity = fields.Integer(metadata={"example": 2})
    unit_price = Money()
    line_total = Money(metadata={"example": "2.38"})


class OrderOut(BaseSchema):
    id = fields.Integer(
        allow_none=True,
        metadata={
            "description": "null for the empty order shown when none is open yet.",
            "example": 1,
        },
    )
    is_open = fields.Boolean(metadata={"example": True})
    time_created = UtcTime(allow_none=True)
    time_modified = UtcTime(allow_none=True)
    time_checked_out = UtcTime(
        allow_none=True, metadata={"description": "null while the order is open.", "example": None}
    )
    total = Money(metadata={"example": "2.38"})
    beers = fields.List(fields.Nested(LineOut), attribute="lines")
