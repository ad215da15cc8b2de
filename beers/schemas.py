"""What the beers endpoints read and write; the same schemas validate and document."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import has_request_context, request
from marshmallow import ValidationError, fields, pre_load, validate, validates_schema

from servicekit.schemas import MAX_PAGE, BaseSchema, Money, PageQuery, Sku, UtcTime

MAX_PRICE = Decimal("999999.99")


def price_field(**kwargs: Any) -> Money:
    """A beer's price: more than 0, at most MAX_PRICE, two decimals at most."""
    return Money(
        validate=validate.Range(
            min=Decimal(0),
            min_inclusive=False,
            max=MAX_PRICE,
            error="Must be more than 0 and at most 999999.99.",
        ),
        **kwargs,
    )


def name_field(**options: Any) -> fields.String:
    """A beer's name: 1 to 255 characters."""
    return fields.String(
        validate=validate.Length(min=1, max=255), metadata={"example": "Бургаско"}, **options
    )


def image_field(description: str, **options: Any) -> fields.URL:
    """A beer's picture: an http(s) URL of at most 255 characters, or none."""
    return fields.URL(
        allow_none=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=255),
        metadata={"format": "uri", "description": description, "example": None},
        **options,
    )


class BeerFields(BaseSchema):
    """A beer's changeable fields, as PUT replaces them."""

    name = name_field(required=True)
    price = price_field(required=True)
    image = image_field("An http(s) URL; empty or omitted means none.", load_default=None)

    @pre_load
    def empty_image_is_none(self, data: Any, **kwargs: Any) -> Any:
        if hasattr(data, "get") and data.get("image") == "":
            return {**data, "image": None}
        return data


class BeerIn(BeerFields):
    sku = Sku(required=True)


class BeerReplace(BeerFields):
    sku = Sku(
        load_only=True,
        metadata={
            "description": "May be sent, but must be the SKU in the path: SKUs never change."
        },
    )

    @validates_schema(skip_on_field_errors=False)
    def sku_is_the_one_in_the_path(self, data: dict[str, Any], **kwargs: Any) -> None:
        path_sku = (request.view_args or {}).get("sku") if has_request_context() else None
        if "sku" in data and data["sku"] != path_sku:
            raise ValidationError({"sku": [f"Must be {path_sku}, the SKU in the path."]})


class BeerPatch(BeerReplace):
    """PATCH: any of the changeable fields; only those sent change."""

    name = name_field()
    price = price_field()
    image = image_field("An http(s) URL; empty or null removes it.")

    @validates_schema(skip_on_field_errors=False)
    def something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not {"name", "price", "image"} & data.keys():
            raise ValidationError({"body": ["Send at least one of name, price and image."]})


class BeerOut(BaseSchema):
    id = fields.Integer(metadata={"example": 1})
    sku = fields.String(metadata={"example": "123456"})
    name = fields.String(metadata={"example": "Бургаско"})
    price = Money()
    image = fields.String(allow_none=True, metadata={"example": None})
    time_created = UtcTime()
    time_modified = UtcTime()


class BeerListQuery(PageQuery):
    sku = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        validate=validate.Length(max=MAX_PAGE),
        metadata={
            "description": "Repeat to fetch several beers at once: `?sku=123456&sku=123457`.",
            "example": ["123456", "123457"],
        },
    )
    q = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={
            "description": "Only the beers whose name contains this, in any case and any "
            "alphabet (`бург` finds `Бургаско`); `%` and `_` are plain characters. "
            "`X-Total-Count` counts the matches.",
            "example": "бург",
        },
    )
