"""The beers endpoints under /api/beers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, url_for

from servicekit.app import no_content
from servicekit.auth import ADMIN, caller, users_auth
from servicekit.output import ServiceBlueprint

from . import docs, domain
from .models import Beer
from .schemas import BeerIn, BeerListQuery, BeerOut, BeerPatch, BeerReplace

# What administrators change: who did it, and what.
audit = logging.getLogger("beers.audit")

bp = ServiceBlueprint(
    "beers",
    __name__,
    url_prefix="/api/beers",
    tag={
        "name": "beers",
        "description": "The catalogue: anyone reads it, administrators change it.",
    },
)


@bp.get("/")
@bp.input(BeerListQuery, location="query", arg_name="query")
@bp.output(
    BeerOut(many=True),
    description="A page of beers in id order.",
    headers=docs.TOTAL_COUNT,
)
@bp.doc(responses=docs.LIST_BEERS)
def list_beers(query: dict[str, Any]) -> tuple[list[Any], int, dict[str, str]]:
    """List the catalogue, a page at a time: all of it, the beers with the SKUs asked
    for, or those whose name contains `q`."""
    beers, total = domain.list_beers(
        limit=query["limit"], offset=query["offset"], skus=query["sku"], name_has=query.get("q")
    )
    return beers, 200, {"X-Total-Count": str(total)}


@bp.get("/<sku>")
@bp.output(BeerOut, description="The beer.")
@bp.doc(responses=docs.GET_BEER, extensions=docs.SKU_IN_PATH)
def get_beer(sku: str) -> Any:
    """One beer by SKU."""
    return domain.find_beer(sku)


@bp.post("/")
@bp.auth_required(users_auth, roles=[ADMIN])
@bp.input(BeerIn, location="json_or_form", arg_name="fields")
@bp.output(BeerOut, status_code=201, description="The new beer.", headers=docs.LOCATION)
@bp.doc(responses=docs.ADD_BEER)
def add_beer(fields: dict[str, Any]) -> tuple[Beer, int, dict[str, str]]:
    """Add a beer to the catalogue (administrators only)."""
    user = caller()
    beer = domain.add_beer(fields)
    audit.info(
        "administrator %d added beer %s: name %s, price %s",
        user.id,
        beer.sku,
        beer.name,
        beer.price,
        extra={"admin_id": user.id, "sku": beer.sku},
    )
    return beer, 201, {"Location": url_for(".get_beer", sku=beer.sku)}


@bp.put("/<sku>")
@bp.auth_required(users_auth, roles=[ADMIN])
@bp.input(BeerReplace, location="json_or_form", arg_name="fields")
@bp.output(BeerOut, description="The beer as it is now.")
@bp.doc(responses=docs.CHANGE_BEER, extensions=docs.SKU_IN_PATH)
def replace_beer(sku: str, fields: dict[str, Any]) -> Beer:
    """Replace a beer's name, price and image (administrators only); SKUs never change."""
    return _audited_change(sku, fields)


@bp.patch("/<sku>")
@bp.auth_required(users_auth, roles=[ADMIN])
@bp.input(BeerPatch, location="json_or_form", arg_name="fields")
@bp.output(BeerOut, description="The beer as it is now.")
@bp.doc(responses=docs.CHANGE_BEER, extensions=docs.SKU_IN_PATH)
def change_beer(sku: str, fields: dict[str, Any]) -> Beer:
    """Change some of a beer's name, price and image (administrators only): only the
    fields sent change; an empty or null image removes it. SKUs never change."""
    return _audited_change(sku, fields)


def _audited_change(sku: str, fields: dict[str, Any]) -> Beer:
    """The change, and an audit line saying what changed from what (as the
    catalogue showed it just before) to what."""
    user = caller()
    before = domain.find_beer(sku)
    beer = domain.change_beer(sku, fields)
    changes = [
        f"{name} from {getattr(before, name)} to {getattr(beer, name)}"
        for name in domain.CHANGEABLE
        if getattr(before, name) != getattr(beer, name)
    ]
    audit.info(
        "administrator %d changed beer %s: %s",
        user.id,
        sku,
        ", ".join(changes) or "nothing",
        extra={"admin_id": user.id, "sku": sku},
    )
    return beer


@bp.delete("/<sku>")
@bp.auth_required(users_auth, roles=[ADMIN])
@bp.output({}, status_code=204, description="The beer has left the catalogue.")
@bp.doc(responses=docs.DELETE_BEER, extensions=docs.SKU_IN_PATH)
def delete_beer(sku: str) -> Response:
    """Remove a beer from the catalogue (administrators only)."""
    user = caller()
    domain.delete_beer(sku)
    audit.info(
        "administrator %d deleted beer %s", user.id, sku, extra={"admin_id": user.id, "sku": sku}
    )
    return no_content()
