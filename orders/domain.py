"""The ordering rules, kept by the database: one open order per user, atomic
quantity updates, and a checkout that only one request can win.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from servicekit.db import utcnow, write_transaction
from servicekit.errors import Conflict, NotFound

from .beers_client import BeersClient, CatalogueBeer
from .models import Line, Order, db

# A unique index can refuse a write that raced another (a second open order,
# a second line for one SKU); the loser starts over and sees the winner's row.
ATTEMPTS = 5
MAX_ID = 2**31 - 1


def orders_of(user_id: int) -> list[Order]:
    """The user's orders, oldest first, with their lines."""
    return list(
        db.session.scalars(
            select(Order)
            .where(Order.user_id == user_id)
            .options(selectinload(Order.lines))
            .order_by(Order.id)
            .execution_options(populate_existing=True)
        )
    )


def order_of(user_id: int, order_id: int) -> Order:
    """One of the user's orders; someone else's is as missing as a made-up one."""
    if not 0 < order_id <= MAX_ID:  # no such id can exist (and the database would refuse it)
        raise NotFound(f"You have no order {order_id}.")
    order = db.session.scalars(
        select(Order)
        .where(Order.id == order_id, Order.user_id == user_id)
        .options(selectinload(Order.lines))
        .execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise NotFound(f"You have no order {order_id}.")
    return order


def open_order(user_id: int) -> Order | None:
    return db.session.scalars(
        select(Order)
        .where(Order.user_id == user_id, Order.is_open)
        .options(selectinload(Order.lines))
        .execution_options(populate_existing=True)
    ).one_or_none()


def empty_order() -> Order:
    """What GET /current shows when the user has no open order; never stored,
    since a GET must not create one."""
    return Order(is_open=True, lines=[])


def add_beer(user_id: int, beer: CatalogueBeer, quantity: int) -> Order:
    """Add so many of a beer to the user's open order, opening one if needed.

    The line's quantity grows in the database (quantity = quantity + n), and the
    line takes the catalogue's current price and name.
    """
    for _ in range(ATTEMPTS):
        try:
            with write_transaction(db.session):
                order_id = _touch_open_order(user_id) or _insert_open_order(user_id)
                _add_to_line(order_id, beer, quantity)
            return order_of(user_id, order_id)
        except IntegrityError:
            continue  # a concurrent request opened the order or the line first
    raise Conflict("The order changed too often at once; try again.")


def remove_beer(user_id: int, sku: str) -> None:
    """Remove a beer's line from the user's open order, if it is there."""
    with write_transaction(db.session):
        order_id = _touch_open_order(user_id, modified=False)
        if order_id is None:
            return
        removed = db.session.execute(delete(Line).where(Line.order_id == order_id, Line.sku == sku))
        if removed.rowcount:  # type: ignore[attr-defined]
            db.session.execute(
                update(Order).where(Order.id == order_id).values(time_modified=utcnow())
            )


def checkout(user_id: int, catalogue: BeersClient) -> Order:
    """Close the user's open order at the catalogue's current prices.

    The prices are fetched with no transaction open; the order is then closed
    only if no line changed meanwhile (its version), else it starts over. Of two
    concurrent checkouts one closes the order and the other finds none open.
    """
    raced = False
    for _ in range(ATTEMPTS):
        order = open_order(user_id)
        db.session.commit()  # hold no transaction open while waiting for beers
        if order is None and raced:
            raise Conflict("Your order was just checked out by another request.")
        if order is None or not order.lines:
            raise Conflict("Your open order is empty: add beers before checking out.")
        prices = catalogue.beers(line.sku for line in order.lines)
        gone = sorted(line.sku for line in order.lines if line.sku not in prices)
        if gone:
            raise Conflict(
                f"These beers have left the catalogue: {', '.join(gone)}. "
                "Remove them from your order and check out again.",
                skus=gone,
            )
        if _close(order, prices):
            return order_of(user_id, order.id)
        raced = True
    raise Conflict("The order changed too often during checkout; try again.")


def _close(order: Order, prices: dict[str, CatalogueBeer]) -> bool:
    """Close the order at these prices if it is still open and unchanged."""
    now = utcnow()
    with write_transaction(db.session):
        closed = db.session.execute(
            update(Order)
            .where(Order.id == order.id, Order.is_open, Order.version == order.version)
            .values(
                is_open=False,
                version=Order.version + 1,
                time_checked_out=now,
                time_modified=now,
            )
        )
        if not closed.rowcount:  # type: ignore[attr-defined]
            return False
        for line in order.lines:
            beer = prices[line.sku]
            db.session.execute(
                update(Line).where(Line.id == line.id).values(unit_price=beer.price, name=beer.name)
            )
    return True


def _touch_open_order(user_id: int, *, modified: bool = True) -> int | None:
    """Bump the open order's version, which locks its row until commit; its id."""
    values: dict[str, object] = {"version": Order.version + 1}
    if modified:
        values["time_modified"] = utcnow()
    return db.session.scalars(
        update(Order)
        .where(Order.user_id == user_id, Order.is_open)
        .values(values)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    ).one_or_none()


def _insert_open_order(user_id: int) -> int:
    now = utcnow()
    return db.session.scalars(
        insert(Order)
        .values(user_id=user_id, is_open=True, version=1, time_created=now, time_modified=now)
        .returning(Order.id)
    ).one()


def _add_to_line(order_id: int, beer: CatalogueBeer, quantity: int) -> None:
    grown = db.session.execute(
        update(Line)
        .where(Line.order_id == order_id, Line.sku == beer.sku)
        .values(quantity=Line.quantity + quantity, unit_price=beer.price, name=beer.name)
        .execution_options(synchronize_session=False)
    )
    if not grown.rowcount:  # type: ignore[attr-defined]
        db.session.execute(
            insert(Line).values(
                order_id=order_id,
                sku=beer.sku,
                name=beer.name,
                quantity=quantity,
                unit_price=beer.price,
            )
        )
