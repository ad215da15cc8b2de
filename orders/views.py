"""The orders endpoints under /api/orders."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from marshmallow import fields

from servicekit.apidocs import ResponseDoc, path_examples, problem_doc, unavailable_doc
from servicekit.app import no_content
from servicekit.auth import with_user
from servicekit.errors import Conflict, NotFound, ValidationFailed
from servicekit.output import ServiceBlueprint
from servicekit.upstream import RemoteUser

from . import domain
from .beers_client import BeersClient
from .idempotency import HEADER, IDEMPOTENT, KeyInUse, KeyReused, idempotent
from .schemas import AddBeerIn, OrderOut, RemoveBeerIn, RemoveBeerQuery

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


def beers_client() -> BeersClient:
    client: BeersClient = current_app.extensions["beers_client"]
    return client


@bp.get("/")
@with_user
@bp.output(OrderOut(many=True), description="The caller's orders, oldest first.")
def list_orders(user: RemoteUser) -> list[domain.StoredOrder]:
    """The caller's orders, the open one included, oldest first."""
    return domain.orders_of(user.id)


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
        404: problem_doc(
            "The SKU is not in the catalogue.",
            NotFound("No beer has SKU 999999.", errors={"sku": ["Not in the catalogue."]}),
        ),
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
    beer = beers_client().beer(wanted["sku"])
    if beer is None:
        sku = wanted["sku"]
        raise NotFound(f"No beer has SKU {sku}.", errors={"sku": ["Not in the catalogue."]})
    return domain.add_beer(user.id, beer, wanted["quantity"])


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
            "The open order is empty (or another request just checked it out), or some "
            "of its beers left the catalogue: they are named in `skus` and the order "
            "stays open; or the first request with this Idempotency-Key is still running.",
            Conflict("Your open order is empty: add beers before checking out."),
            Conflict(
                "These beers have left the catalogue: 123457. "
                "Remove them from your order and check out again.",
                skus=["123457"],
            ),
            KeyInUse(),
            skus={"type": "array", "items": {"type": "string"}},
        ),
        422: KEY_REUSED,
        503: CATALOGUE_DOWN,
    },
)
def checkout(user: RemoteUser) -> domain.OrderView:
    """Check out the open order at the catalogue's current prices."""
    return domain.checkout(user.id, beers_client())


@bp.get("/<int:order_id>")
@with_user
@bp.output(OrderOut, description="The order with its lines.")
@bp.doc(
    responses={
        404: problem_doc("No such order of the caller's.", NotFound("You have no order 7."))
    },
    extensions=path_examples(order_id=1),
)
def get_order(order_id: int, user: RemoteUser) -> domain.OrderView:
    """One of the caller's orders; anyone else's is 404."""
    return domain.order_of(user.id, order_id)
