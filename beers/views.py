"""The beers endpoints under /api/beers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, url_for
from marshmallow import fields

from servicekit.apidocs import invalid_input_doc, path_examples, problem_doc
from servicekit.app import no_content
from servicekit.auth import with_admin
from servicekit.errors import Conflict, NotFound
from servicekit.output import ServiceBlueprint
from servicekit.upstream import RemoteUser

from . import domain
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

# (401, 403 and 503 of the administrators' operations: with_admin documents them.)
NO_SUCH_BEER = problem_doc("No beer has this SKU.", NotFound("No beer has SKU 999999."))
SKU_IN_PATH = path_examples(sku="123456")
BAD_PRICE = invalid_input_doc("price", "At most two decimal places.")


@bp.get("/")
@bp.input(BeerListQuery, location="query", arg_name="query")
@bp.output(
    BeerOut(many=True),
    description="A page of beers in id order.",
    headers={"X-Total-Count": fields.Integer(metadata={"description": "Matches on all pages."})},
)
@bp.doc(
    responses={
        400: invalid_input_doc(
            "limit", "Must be greater than or equal to 1 and less than or equal to 1000."
        )
    }
)
def list_beers(query: dict[str, Any]) -> tuple[list[Any], int, dict[str, str]]:
    """List the catalogue, a page at a time: all of it, the beers with the SKUs asked
    for, or those whose name contains `q`."""
    beers, total = domain.list_beers(
        limit=query["limit"], offset=query["offset"], skus=query["sku"], name_has=query.get("q")
    )
    return beers, 200, {"X-Total-Count": str(total)}


@bp.get("/<sku>")
@bp.output(BeerOut, description="The beer.")
@bp.doc(responses={404: NO_SUCH_BEER}, extensions=SKU_IN_PATH)
def get_beer(sku: str) -> Any:
    """One beer by SKU."""
    return domain.find_beer(sku)


@bp.post("/")
@with_admin
@bp.input(BeerIn, location="json_or_form", arg_name="fields")
@bp.output(
    BeerOut,
    status_code=201,
    description="The new beer.",
    headers={"Location": fields.String(metadata={"description": "/api/beers/<sku>"})},
)
@bp.doc(
    responses={
        400: BAD_PRICE,
        409: problem_doc(
            "The SKU is taken.",
            Conflict("SKU 123456 is already in the catalogue.", errors={"sku": ["Already taken."]}),
        ),
    }
)
def add_beer(fields: dict[str, Any], user: RemoteUser) -> tuple[Beer, int, dict[str, str]]:
    """Add a beer to the catalogue (administrators only)."""
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
@with_admin
@bp.input(BeerReplace, location="json_or_form", arg_name="fields")
@bp.output(BeerOut, description="The beer as it is now.")
@bp.doc(responses={400: BAD_PRICE, 404: NO_SUCH_BEER}, extensions=SKU_IN_PATH)
def replace_beer(sku: str, fields: dict[str, Any], user: RemoteUser) -> Beer:
    """Replace a beer's name, price and image (administrators only); SKUs never change."""
    return _audited_change(sku, fields, user)


@bp.patch("/<sku>")
@with_admin
@bp.input(BeerPatch, location="json_or_form", arg_name="fields")
@bp.output(BeerOut, description="The beer as it is now.")
@bp.doc(responses={400: BAD_PRICE, 404: NO_SUCH_BEER}, extensions=SKU_IN_PATH)
def change_beer(sku: str, fields: dict[str, Any], user: RemoteUser) -> Beer:
    """Change some of a beer's name, price and image (administrators only): only the
    fields sent change; an empty or null image removes it. SKUs never change."""
    return _audited_change(sku, fields, user)


def _audited_change(sku: str, fields: dict[str, Any], user: RemoteUser) -> Beer:
    """The change, and an audit line saying what changed from what (as the
    catalogue showed it just before) to what."""
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
@with_admin
@bp.output({}, status_code=204, description="The beer has left the catalogue.")
@bp.doc(responses={404: NO_SUCH_BEER}, extensions=SKU_IN_PATH)
def delete_beer(sku: str, user: RemoteUser) -> Response:
    """Remove a beer from the catalogue (administrators only)."""
    domain.delete_beer(sku)
    audit.info(
        "administrator %d deleted beer %s", user.id, sku, extra={"admin_id": user.id, "sku": sku}
    )
    return no_content()
