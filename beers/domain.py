"""The catalogue's rules: SKUs are unique and never change."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from servicekit.db import write_transaction
from servicekit.errors import Conflict, NotFound

from .models import Beer, db

DEMO_CATALOGUE = (
    {"sku": "123456", "name": "Бургаско", "price": Decimal("1.19"), "image": None},
    {"sku": "123457", "name": "Загорка", "price": Decimal("2.00"), "image": None},
    {"sku": "123458", "name": "Tuborg", "price": Decimal("1.50"), "image": None},
)


def list_beers(*, limit: int, offset: int, skus: Sequence[str]) -> tuple[list[Beer], int]:
    """One page of beers in id order, and how many there are in all."""
    query = select(Beer)
    if skus:
        query = query.where(Beer.sku.in_(set(skus)))
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = db.session.scalars(query.order_by(Beer.id).limit(limit).offset(offset)).all()
    return list(page), total


def get_beer(sku: str) -> Beer:
    beer = db.session.scalars(select(Beer).where(Beer.sku == sku)).one_or_none()
    if beer is None:
        raise NotFound(f"No beer has SKU {sku}.")
    return beer


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


def replace_beer(sku: str, fields: dict[str, Any]) -> Beer:
    with write_transaction(db.session):
        beer = get_beer(sku)
        beer.name = fields["name"]
        beer.price = fields["price"]
        beer.image = fields["image"]
    return beer


def delete_beer(sku: str) -> None:
    with write_transaction(db.session):
        db.session.delete(get_beer(sku))


def seed_demo_catalogue() -> int:
    """Add the demo beers whose SKUs are free; returns how many were added."""
    with write_transaction(db.session):
        taken = set(db.session.scalars(select(Beer.sku)))
        new = [Beer(**beer) for beer in DEMO_CATALOGUE if beer["sku"] not in taken]
        db.session.add_all(new)
    return len(new)


def catalogue_is_empty() -> bool:
    return db.session.scalar(select(Beer.id).limit(1)) is None
