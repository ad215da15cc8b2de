"""The orders endpoints under /api/orders."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import Response, current_app
from marshmallow import fields

from servicekit.apidocs import ResponseDoc, path_examples, problem_doc, unavailable_doc
from servicekit.app import no_content
from servicekit.auth import with_user
from servicekit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from servicekit.output import ServiceBlueprint
from servicekit.schemas import SKU_PATTERN
from servicekit.upstream import RemoteUser

from . import domain
from .beers_client import BeersClient, CatalogueBeer
from .idempotency import HEADER, IDEMPOTENT, KeyInUse, KeyReused, idempotent
from .metrics import orders_metrics
from .schemas import (
    AddBeerIn,
    OrderListQuery,
    OrderOut,
    RemoveBeerIn,
    RemoveBeerQuery,
    SetQuantityIn,
)

bp = ServiceBlueprint(
    "orders",
    __name__,
    url_prefix="/api/orders",
    tag={"name": "orders", "description": "Each user's open order and order history."},
)

# (401, and 503 when users is down: with_user documents them.)
CATALOGUE_DOWN = unavailable_doc("users", "beers")
BAD_KEY = ValidationFailed({HEADER: ["1 to 255 printable ASCII characters."]})
KEY_REUSED = problem_doc("This Idempotency-Key was used for a different request.", KeyReused())


def invalid_input_or_key(example: ValidationFailed) -> ResponseDoc:
    """400 of an idempotent operation: its own bad input, or a bad key."""
    return problem_doc(
        "Invalid input, or an Idempotency-Key that is not 1 to 255 printable ASCII characters.",
        example,
        BAD_KEY,
    )


REPLAYED = {
    "Idempotent-Replayed": fields.String(
        metadata={
            "description": "`true` when this is the kept answer of an earlier request "
            "with the same Idempotency-Key."
        }
    )
}


NOT_IN_CATALOGUE = problem_doc(
    "The SKU is not in the catalogue.",
    NotFound("No beer has SKU 999999.", errors={"sku": ["Not in the catalogue."]}),
)
VALID_SKU = re.compile(SKU_PATTERN)
ONLY_ADMINS_LIST_OTHERS = "Only administrators may list another user's orders (user_id)."


def beers_client() -> BeersClient:
    client: BeersClient = current_app.extensions["beers_client"]
    return client


def catalogue_beer(sku: str) -> CatalogueBeer:
    """The beer with this SKU as the catalogue has it now; 404 when it has none
    (without asking beers when no SKU can be spelt so, as in a path)."""
    beer = beers_client().beer(sku) if VALID_SKU.fullmatch(sku) else None
    if beer is None:
        raise NotFound(f"No beer has SKU {sku}.", errors={"sku": ["Not in the catalogue."]})
    return beer


@bp.get("/")
@with_user
@bp.input(OrderListQuery, location="query", arg_name="query")
@bp.output(
    OrderOut(many=True),
    description="A page of the orders, oldest first.",
    headers={
        "X-Total-Count": fields.Integer(
            metadata={"description": "The user's orders on all pages.", "example": 1}
        )
    },
)
@bp.doc(
    responses={
        400: problem_doc(
            "Invalid input",
            ValidationFailed(
                {"limit": ["Must be greater than or equal to 1 and less than or equal to 1000."]}
            ),
        ),
        403: problem_doc(
            "`user_id` was sent by someone who is not an administrator.",
            Forbidden(ONLY_ADMINS_LIST_OTHERS),
        ),
    }
)
def list_orders(
    query: dict[str, Any], user: RemoteUser
) -> tuple[list[domain.StoredOrder], int, dict[str, str]]:
    """The caller's orders (an administrator's: `user_id`'s), the open one included,
    oldest first, a page at a time."""
    owner = query.get("user_id", user.id)
    if "user_id" in query and not user.is_admin:
        raise Forbidden(ONLY_ADMINS_LIST_OTHERS)
    orders, total = domain.orders_of(owner, limit=query["limit"], offset=query["offset"])
    return orders, 200, {"X-Total-Count": str(total)}


@bp.get("/current")
@with_user
@bp.output(OrderOut, description="The open order; an empty one (id null) if none is open.")
def current_order(user: RemoteUser) -> domain.OrderView:
    """The caller's open order."""
    return domain.open_order(user.id) or domain.empty_order()


@bp.put("/current")
@with_user
@bp.input(AddBeerIn, location="json_or_form", arg_name="wanted")
@idempotent(lambda wanted: {"sku": wanted["sku"], "quantity": wanted["quantity"]})
@bp.output(OrderOut, description="The open order after the beers were added.", headers=REPLAYED)
@bp.doc(
    extensions=IDEMPOTENT,
    responses={
        400: invalid_input_or_key(
            ValidationFailed(
                {
                    "quantity": [
                        "Must be greater than or equal to 1 and less than or equal to 10000."
                    ]
                }
            )
        ),
        404: NOT_IN_CATALOGUE,
        409: problem_doc(
            "The line would hold more than 100000 of the beer (the order is unchanged), "
            "or the order changed too often at once (very rare; try again), or the first "
            "request with this Idempotency-Key is still running.",
            Conflict(
                f"An order holds at most {domain.MAX_LINE_QUANTITY} of a beer.",
                errors={"quantity": [f"The line would pass {domain.MAX_LINE_QUANTITY}."]},
            ),
            KeyInUse(),
        ),
        422: KEY_REUSED,
        503: CATALOGUE_DOWN,
    },
)
def add_beer(wanted: dict[str, Any], user: RemoteUser) -> domain.OrderView:
    """Add `quantity` of a beer to the caller's open order (opening one if needed)."""
    return domain.add_beer(user.id, catalogue_beer(wanted["sku"]), wanted["quantity"])


@bp.put("/current/beers/<sku>")
@with_user
@bp.input(SetQuantityIn, location="json_or_form", arg_name="wanted")
@idempotent(lambda sku, wanted: {"sku": sku, "quantity": wanted["quantity"]})
@bp.output(OrderOut, description="The open order with the line set.", headers=REPLAYED)
@bp.doc(
    extensions={**IDEMPOTENT, **path_examples(sku="123456")},
    responses={
        400: invalid_input_or_key(
            ValidationFailed(
                {
                    "quantity": [
                        "Must be greater than or equal to 1 and less than or equal to "
                        f"{domain.MAX_LINE_QUANTITY}."
                    ]
                }
            )
        ),
        404: NOT_IN_CATALOGUE,
        409: problem_doc(
            "The order changed too often at once (very rare; try again), or the first "
            "request with this Idempotency-Key is still running.",
            Conflict("The order changed too often at once; try again."),
            KeyInUse(),
        ),
        422: KEY_REUSED,
        503: CATALOGUE_DOWN,
    },
)
def set_quantity(sku: str, wanted: dict[str, Any], user: RemoteUser) -> domain.OrderView:
    """Set the caller's line of a beer to exactly `quantity`, at the catalogue's
    current price (opening an order and adding the line if needed)."""
    return domain.set_quantity(user.id, catalogue_beer(sku), wanted["quantity"])


@bp.delete("/current")
@with_user
@bp.input(RemoveBeerQuery, location="query", arg_name="query")
@bp.input(RemoveBeerIn, location="json_or_form", arg_name="body")
@idempotent(lambda query, body: {"sku": body.get("sku") or query.get("sku")})
@bp.output(
    {},
    status_code=204,
    description="The beer is not in the open order (any more).",
    headers=REPLAYED,
)
@bp.doc(
    extensions=IDEMPOTENT,
    responses={
        400: invalid_input_or_key(ValidationFailed({"sku": ["Missing data for required field."]})),
        409: problem_doc("The first request with this key is still running.", KeyInUse()),
        422: KEY_REUSED,
    },
)
def remove_beer(query: dict[str, str], body: dict[str, str], user: RemoteUser) -> Response:
    """Remove a beer from the caller's open order; the SKU in the body or the query."""
    sku = body.get("sku") or query.get("sku")
    if not sku:
        raise ValidationFailed({"sku": ["Missing data for required field."]})
    domain.remove_beer(user.id, sku)
    return no_content()


@bp.post("/checkout")
@with_user
@idempotent(lambda: {})
@bp.output(
    OrderOut,
    description="The order, now closed, with the prices that were paid.",
    headers=REPLAYED,
)
@bp.doc(
    extensions=IDEMPOTENT,
    responses={
        400: problem_doc(
            "An Idempotency-Key that is not 1 to 255 printable ASCII characters.", BAD_KEY
        ),
        409: problem_doc(
            "The open order is empty (or another request just checked it out); or some "
            "of its beers left the catalogue: they are named in `skus`, and the order "
            "stays open as it was; or some prices are no longer the ones the order "
            "showed: `errors` names those SKUs, `changed` lists what the order showed "
            "(`unit_price`) and what the catalogue asks now (`price`), and the open "
            "order now shows the catalogue's prices (check out again, with a new "
            "Idempotency-Key, to pay them); or the first request with this "
            "Idempotency-Key is still running.",
            Conflict("Your open order is empty: add beers before checking out."),
            Conflict(
                "These beers have left the catalogue: 123457. "
                "Remove them from your order and check out again.",
                skus=["123457"],
            ),
            domain.PricesChanged([("123456", Decimal("1.19"), Decimal("1.25"))]),
            KeyInUse(),
            skus={"type": "array", "items": {"type": "string"}},
            changed={
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "unit_price": {"type": "string", "format": "decimal"},
                        "price": {"type": "string", "format": "decimal"},
                    },
                },
            },
        ),
        422: KEY_REUSED,
        503: CATALOGUE_DOWN,
    },
)
def checkout(user: RemoteUser) -> domain.OrderView:
    """Check out the open order at the prices it shows, if they are still the catalogue's."""
    order = domain.checkout(user.id, beers_client())
    orders_metrics().checked_out_order(order.total)
    return order


@bp.get("/<int:order_id>")
@with_user
@bp.output(OrderOut, description="The order with its lines.")
@bp.doc(
    responses={
        404: problem_doc(
            "No such order of the caller's (for an administrator: no such order at all).",
            NotFound("You have no order 7."),
            NotFound("There is no order 7."),
        )
    },
    extensions=path_examples(order_id=1),
)
def get_order(order_id: int, user: RemoteUser) -> domain.OrderView:
    """One of the caller's orders; anyone else's is 404, but to administrators, who
    may read any order."""
    if user.is_admin:
        return domain.any_order(order_id)
    return domain.order_of(user.id, order_id)
