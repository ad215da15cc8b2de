"""The catalogue's rules: SKUs are unique and never change.

Reads that every client makes (a beer, a page of beers) are compiled queries
(servicekit.db.Query) run on the driver's cursor, outside the ORM session,
for speed; a page of chosen SKUs goes through Core instead, since its
expanding IN list cannot be compiled once. Changes, which only administrators
make, go through the ORM session in a write transaction; the unique index on
SKU decides between two adds of one SKU.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from servicekit.db import Query, read, write_transaction
from servicekit.errors import Conflict, NotFound

from .models import Beer, db

DEMO_CATALOGUE = (
    {"sku": "123456", "name": "Бургаско", "price": Decimal("1.19"), "image": None},
    {"sku": "123457", "name": "Загорка", "price": Decimal("2.00"), "image": None},
    {"sku": "123458", "name": "Tuborg", "price": Decimal("1.50"), "image": None},
)


# The reads, built once: building a statement costs more than running it.
BEER_COLUMNS = tuple(Beer.__table__.columns)
BEER_BY_SKU = Query(select(*BEER_COLUMNS).where(Beer.sku == bindparam("sku")))
WITH_SKUS = Beer.sku.in_(bindparam("skus", expanding=True))
# A page counts all that match in the same query (while it has rows at all).
PAGE = (
    select(*BEER_COLUMNS, func.count().over().label("total"))
    .order_by(Beer.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
PAGE_OF_ALL = Query(PAGE)
PAGE_WITH_SKUS = PAGE.where(WITH_SKUS)
COUNT = select(func.count()).select_from(Beer)
COUNT_ALL = Query(COUNT)
COUNT_WITH_SKUS = COUNT.where(WITH_SKUS)


def list_beers(*, limit: int, offset: int, skus: Sequence[str]) -> tuple[list[Any], int]:
    """One page of beers in id order, and how many match in all."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if skus:
        params["skus"] = sorted(set(skus))
    page = read(db.engine, PAGE_WITH_SKUS if skus else PAGE_OF_ALL, params)
    if page:
        return page, page[0].total
    return [], read(db.engine, COUNT_WITH_SKUS if skus else COUNT_ALL, params)[0][0]


def find_beer(sku: str) -> Any:
    """The beer with this SKU, as a row to show; 404 when there is none."""
    found = read(db.engine, BEER_BY_SKU, {"sku": sku})
    if not found:
        raise NotFound(f"No beer has SKU {sku}.")
    return found[0]


def add_beer(fields: dict[str, Any]) -> Beer:
    """Add a beer; 409 when its SKU is taken."""
    try:
        with write_transaction(db.session):
            beer = Beer(**fields)
            db.session.add(beer)
    except IntegrityError as error:
        raise Conflict(
            f"SKU {fields['sku']} is already in the catalogue.",
            errors={"sku": ["Already taken."]},
        ) from error
    return beer


CHANGEABLE = ("name", "price", "image")


def change_beer(sku: str, fields: dict[str, Any]) -> Beer:
    """Set the changeable fields given (PUT gives them all, PATCH some)."""
    with write_transaction(db.session):
        beer = _beer_in_session(sku)
        for name in CHANGEABLE:
            if name in fields:
                setattr(beer, name, fields[name])
    return beer


def delete_beer(sku: str) -> None:
    """Remove the beer with this SKU from the catalogue."""
    with write_transaction(db.session):
        db.session.delete(_beer_in_session(sku))


def _beer_in_session(sku: str) -> Beer:
    """The beer with this SKU, loaded into the session to be changed or deleted
    inside a write transaction; 404 when there is none. To show a beer, use
    find_beer."""
    beer = db.session.scalars(select(Beer).where(Beer.sku == sku)).one_or_none()
    if beer is None:
        raise NotFound(f"No beer has SKU {sku}.")
    return beer


def seed_demo_catalogue() -> int:
    """Add the demo beers whose SKUs are free; returns how many were added."""
    with write_transaction(db.session):
        taken = set(db.session.scalars(select(Beer.sku)))
        new = [Beer(**beer) for beer in DEMO_CATALOGUE if beer["sku"] not in taken]
        db.session.add_all(new)
    return len(new)


def catalogue_is_empty() -> bool:
    return db.session.scalar(select(Beer.id).limit(1)) is None
