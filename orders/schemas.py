"""What the orders endpoints read and write; the same schemas validate and document."""

from __future__ import annotations

from marshmallow import fields, validate

from servicekit.schemas import BaseSchema, Money, PageQuery, Sku, UtcTime, WholeNumber

from .domain import MAX_ID, MAX_LINE_QUANTITY


class AddBeerIn(BaseSchema):
    sku = Sku(required=True)
    quantity = WholeNumber(
        load_default=1,
        validate=validate.Range(min=1, max=10000),
        metadata={"description": "How many to add (1 to 10000); 1 when omitted.", "example": 2},
    )


class SetQuantityIn(BaseSchema):
    quantity = WholeNumber(
        required=True,
        validate=validate.Range(min=1, max=MAX_LINE_QUANTITY),
        metadata={
            "description": f"How many the line holds from now on (1 to {MAX_LINE_QUANTITY}).",
            "example": 4,
        },
    )


class OrderListQuery(PageQuery):
    """A page of an order history: the caller's, or (administrators only) a user's."""

    user_id = WholeNumber(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={
            "description": "Administrators only: whose orders to list (anyone else: 403).",
            "example": 2,
        },
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
