"""The catalogue's rules: beers listed, searched, added, changed and removed;
SKUs are unique and never change.

The reads every client makes are compiled queries (a page of chosen SKUs goes
through Core: its IN list expands); changes go through the ORM session, where
the unique index on SKU decides between two adds of one SKU.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.exc import IntegrityError

from servicekit.db import Query, read, write_transaction
from servicekit.errors import Conflict, NotFound

from .models import Beer, db, fold

DEMO_CATALOGUE = (
    {"sku": "123456", "name": "Бургаско", "price": Decimal("1.19"), "image": None},
    {"sku": "123457", "name": "Загорка", "price": Decimal("2.00"), "image": None},
    {"sku": "123458", "name": "Tuborg", "price": Decimal("1.50"), "image": None},
)


# The reads, built once at import, not on every request. name_folded (the name
# case-folded, what a search's escaped LIKE compares) is never shown.
BEER_COLUMNS = tuple(column for column in Beer.__table__.columns if column.key != "name_folded")
BEER_BY_SKU = Query(select(*BEER_COLUMNS).where(Beer.sku == bindparam("sku")))
WITH_SKUS = Beer.sku.in_(bindparam("skus", expanding=True))
LIKE_ESCAPE = "\\"
NAMED_LIKE = Beer.name_folded.like(bindparam("pattern"), escape=LIKE_ESCAPE)
# A page counts all that match in the same query (while it has rows at all).
PAGE = (
    select(*BEER_COLUMNS, func.count().over().label("total"))
    .order_by(Beer.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
COUNT = select(func.count()).select_from(Beer)
PAGE_OF_ALL = Query(PAGE)
COUNT_ALL = Query(COUNT)
PAGE_NAMED_LIKE = Query(PAGE.where(NAMED_LIKE))
COUNT_NAMED_LIKE = Query(COUNT.where(NAMED_LIKE))


def list_beers(
    *, limit: int, offset: int, skus: Sequence[str], name_has: str | None = None
) -> tuple[list[Any], int]:
    """One page of beers in id order, and how many match in all: those with
    these SKUs (when any are given) whose name contains `name_has`, in any case
    (when given)."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    page_query, count_query = _page_and_count(params, skus, name_has)
    page = read(db.engine, page_query, params)
    if page:
        return page, page[0].total
    return [], read(db.engine, count_query, params)[0][0]


def _page_and_count(
    params: dict[str, Any], skus: Sequence[str], name_has: str | None
) -> tuple[Query | Select[Any], Query | Select[Any]]:
    """The page's read and the count's for this choice; their parameters added to params."""
    if name_has is not None:
        params["pattern"] = f"%{like_escaped(fold(name_has))}%"
    if not skus:
        return (
            (PAGE_NAMED_LIKE, COUNT_NAMED_LIKE)
            if name_has is not None
            else (PAGE_OF_ALL, COUNT_ALL)
        )
    # An expanding IN list cannot be compiled once: through Core.
    params["skus"] = sorted(set(skus))
    page, count = PAGE.where(WITH_SKUS), COUNT.where(WITH_SKUS)
    if name_has is not None:
        page, count = page.where(NAMED_LIKE), count.where(NAMED_LIKE)
    return page, count


def like_escaped(text: str) -> str:
    """Text that LIKE (with LIKE_ESCAPE) matches as it is: `%` and `_` plain."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


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
