"""The orders endpoints under /api/orders."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from marshmallow import fields

from servicekit.app import no_content
from servicekit.auth import with_user
from servicekit.errors import NotFound, ValidationFailed
from servicekit.output import ServiceBlueprint
from servicekit.schemas import ErrorDocs, error_responses, problem_doc, unavailable_doc
from servicekit.upstream import RemoteUser

from . import domain
from .beers_client import BeersClient
from .idempotency import IDEMPOTENT, idempotent
from .schemas import AddBeerIn, OrderOut, RemoveBeerIn, RemoveBeerQuery

bp = ServiceBlueprint("orders", __name__, url_prefix="/api/orders", tag="orders")

AUTH_ERRORS: ErrorDocs = {
    401: "The token is missing, unknown, expired or revoked.",
    503: unavailable_doc("users"),
}
CATALOGUE_ERRORS: ErrorDocs = {
    **AUTH_ERRORS,
    503: unavailable_doc("users", "beers"),
}


KEY_ERRORS: ErrorDocs = {
    400: "Invalid input, or an Idempotency-Key that is not 1 to 255 printable ASCII characters.",
    422: "This Idempotency-Key was used for a different request.",
}
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
@bp.doc(security="BearerAuth", responses=error_responses(AUTH_ERRORS))
def list_orders(user: RemoteUser) -> list[domain.OrderView]:
    """The caller's orders, the open one included, oldest first."""
    return domain.orders_of(user.id)


@bp.get("/current")
@with_user
@bp.output(OrderOut, description="The open order; an empty one (id null) if none is open.")
@bp.doc(security="BearerAuth", responses=error_responses(AUTH_ERRORS))
def current_order(user: RemoteUser) -> domain.OrderView:
    """The caller's open order."""
    return domain.open_order(user.id) or domain.empty_order()


@bp.put("/current")
@with_user
@bp.input(AddBeerIn, location="json_or_form", arg_name="item")
@idempotent(lambda item: {"sku": item["sku"], "quantity": item["quantity"]})
@bp.output(OrderOut, description="The open order after the beers were added.", headers=REPLAYED)
@bp.doc(
    security="BearerAuth",
    extensions=IDEMPOTENT,
    responses=error_responses(
        {
            **CATALOGUE_ERRORS,
            **KEY_ERRORS,
            404: "The SKU is not in the catalogue.",
            409: "The line would hold more than 100000 of the beer (the order is unchanged), "
            "or the order changed too often at once (very rare; try again), or the first "
            "request with this Idempotency-Key is still running.",
        }
    ),
)
def add_beer(item: dict[str, Any], user: RemoteUser) -> domain.OrderView:
    """Add `quantity` of a beer to the caller's open order (opening one if needed)."""
    beer = beers_client().beer(item["sku"])
    if beer is None:
        raise NotFound(f"No beer has SKU {item['sku']}.", errors={"sku": ["Not in the catalogue."]})
    return domain.add_beer(user.id, beer, item["quantity"])


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
    security="BearerAuth",
    extensions=IDEMPOTENT,
    responses=error_responses(
        {**AUTH_ERRORS, **KEY_ERRORS, 409: "The first request with this key is still running."}
    ),
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
    security="BearerAuth",
    extensions=IDEMPOTENT,
    responses=error_responses(
        {
            **CATALOGUE_ERRORS,
            **KEY_ERRORS,
            409: problem_doc(
                "The open order is empty (or another request just checked it out), or some "
                "of its beers left the catalogue: they are named in `skus` and the order "
                "stays open; or the first request with this Idempotency-Key is still running.",
                skus={"type": "array", "items": {"type": "string"}},
            ),
        }
    ),
)
def checkout(user: RemoteUser) -> domain.OrderView:
    """Check out the open order at the catalogue's current prices."""
    return domain.checkout(user.id, beers_client())


@bp.get("/<int:order_id>")
@with_user
@bp.output(OrderOut, description="The order with its lines.")
@bp.doc(
    security="BearerAuth",
    responses=error_responses({**AUTH_ERRORS, 404: "No such order of the caller's."}),
)
def get_order(order_id: int, user: RemoteUser) -> domain.OrderView:
    """One of the caller's orders; anyone else's is 404."""
    return domain.order_of(user.id, order_id)
