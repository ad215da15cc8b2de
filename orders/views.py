"""The orders endpoints under /api/orders."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, current_app

from servicekit.app import no_content
from servicekit.auth import caller, users_auth
from servicekit.errors import Forbidden, NotFound, ValidationFailed
from servicekit.output import ServiceBlueprint
from servicekit.schemas import SKU_PATTERN

from . import docs, domain
from .beers_client import BeersClient, CatalogueBeer
from .idempotency import idempotent
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
VALID_SKU = re.compile(SKU_PATTERN)


def beers_client() -> BeersClient:
    client: BeersClient = current_app.extensions["beers_client"]
    return client


def not_in_catalogue(sku: str) -> NotFound:
    return NotFound(f"No beer has SKU {sku}.", errors={"sku": ["Not in the catalogue."]})


def spelt_as_a_sku(sku: str) -> str:
    """A SKU from a path, or 404 without asking beers when no SKU can be spelt so."""
    if not VALID_SKU.fullmatch(sku):
        raise not_in_catalogue(sku)
    return sku


def catalogue_beer(sku: str) -> CatalogueBeer:
    """The beer with this SKU as the catalogue has it now; 404 when it has none."""
    beer = beers_client().beer(spelt_as_a_sku(sku))
    if beer is None:
        raise not_in_catalogue(sku)
    return beer


def sku_to_remove(query: dict[str, str], body: dict[str, str]) -> str:
    """The SKU a removal names, in its body or its query; 400 when neither has one."""
    sku = body.get("sku") or query.get("sku")
    if not sku:
        raise ValidationFailed({"sku": ["Missing data for required field."]})
    return sku


@bp.get("/")
@bp.auth_required(users_auth)
@bp.input(OrderListQuery, location="query", arg_name="query")
@bp.output(
    OrderOut(many=True),
    description="A page of the orders, oldest first.",
    headers=docs.TOTAL_COUNT,
)
@bp.doc(responses=docs.LIST_ORDERS)
def list_orders(query: dict[str, Any]) -> tuple[list[domain.StoredOrder], int, dict[str, str]]:
    """The caller's orders (an administrator's: `user_id`'s), the open one included,
    oldest first, a page at a time."""
    user = caller()
    owner = query.get("user_id", user.id)
    if "user_id" in query and not user.is_admin:
        raise Forbidden(docs.ONLY_ADMINS_LIST_OTHERS)
    orders, total = domain.orders_of(owner, limit=query["limit"], offset=query["offset"])
    return orders, 200, {"X-Total-Count": str(total)}


@bp.get("/current")
@bp.auth_required(users_auth)
@bp.output(OrderOut, description="The open order; an empty one (id null) if none is open.")
@bp.doc(responses=docs.CURRENT_ORDER)
def current_order() -> domain.OrderView:
    """The caller's open order."""
    return domain.open_order(caller().id) or domain.empty_order()


@bp.put("/current")
@bp.auth_required(users_auth)
@bp.input(AddBeerIn, location="json_or_form", arg_name="wanted")
@idempotent(lambda wanted: {"sku": wanted["sku"], "quantity": wanted["quantity"]})
@bp.output(
    OrderOut, description="The open order after the beers were added.", headers=docs.REPLAYED
)
@bp.doc(extensions=docs.IDEMPOTENT, responses=docs.ADD_BEER)
def add_beer(wanted: dict[str, Any]) -> domain.OrderView:
    """Add `quantity` of a beer to the caller's open order (opening one if needed)."""
    return domain.add_beer(caller().id, catalogue_beer(wanted["sku"]), wanted["quantity"])


@bp.put("/current/beers/<sku>")
@bp.auth_required(users_auth)
@bp.input(SetQuantityIn, location="json_or_form", arg_name="wanted")
@idempotent(lambda sku, wanted: {"sku": spelt_as_a_sku(sku), "quantity": wanted["quantity"]})
@bp.output(OrderOut, description="The open order with the line set.", headers=docs.REPLAYED)
@bp.doc(extensions=docs.SKU_IN_PATH, responses=docs.SET_QUANTITY)
def set_quantity(sku: str, wanted: dict[str, Any]) -> domain.OrderView:
    """Set the caller's line of a beer to exactly `quantity`, at the catalogue's
    current price (opening an order and adding the line if needed)."""
    return domain.set_quantity(caller().id, catalogue_beer(sku), wanted["quantity"])


@bp.delete("/current")
@bp.auth_required(users_auth)
@bp.input(RemoveBeerQuery, location="query", arg_name="query")
@bp.input(RemoveBeerIn, location="json_or_form", arg_name="body")
@idempotent(lambda query, body: {"sku": sku_to_remove(query, body)})
@bp.output(
    {},
    status_code=204,
    description="The beer is not in the open order (any more).",
    headers=docs.REPLAYED,
)
@bp.doc(extensions=docs.IDEMPOTENT, responses=docs.REMOVE_BEER)
def remove_beer(query: dict[str, str], body: dict[str, str]) -> Response:
    """Remove a beer from the caller's open order; the SKU in the body or the query."""
    domain.remove_beer(caller().id, sku_to_remove(query, body))
    return no_content()


@bp.post("/checkout")
@bp.auth_required(users_auth)
@idempotent(lambda: {})
@bp.output(
    OrderOut,
    description="The order, now closed, with the prices that were paid.",
    headers=docs.REPLAYED,
)
@bp.doc(extensions=docs.IDEMPOTENT, responses=docs.CHECKOUT)
def checkout() -> domain.OrderView:
    """Check out the open order at the prices it shows, if they are still the catalogue's."""
    order = domain.checkout(caller().id, beers_client())
    orders_metrics().checked_out_order(order.total)
    return order


@bp.get("/<int:order_id>")
@bp.auth_required(users_auth)
@bp.output(OrderOut, description="The order with its lines.")
@bp.doc(responses=docs.GET_ORDER, extensions=docs.ORDER_ID_IN_PATH)
def get_order(order_id: int) -> domain.OrderView:
    """One of the caller's orders; anyone else's is 404, but to administrators, who
    may read any order."""
    user = caller()
    if user.is_admin:
        return domain.any_order(order_id)
    return domain.order_of(user.id, order_id)
