"""The ordering rules, kept by the database: one open order per user, atomic
quantity updates, and a checkout that only one request can win.

Every request here is hot, so the statements are SQLAlchemy Core, built once
with bind parameters, and run outside the ORM session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from servicekit.db import read, utcnow, writing
from servicekit.errors import Conflict, NotFound

from .beers_client import BeersClient, CatalogueBeer
from .models import Line, Order, db

# A unique index can refuse a write that raced another (a second open order,
# a second line for one SKU); the loser starts over and sees the winner's row.
ATTEMPTS = 5
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class LineView:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class OrderView:
    """An order as clients see it, read straight from the tables."""

    id: int | None
    is_open: bool
    time_created: datetime | None
    time_modified: datetime | None
    time_checked_out: datetime | None
    lines: list[LineView]

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))


ORDER_COLUMNS = (
    Order.id,
    Order.is_open,
    Order.time_created,
    Order.time_modified,
    Order.time_checked_out,
)
LINE_COLUMNS = (Line.order_id, Line.sku, Line.name, Line.quantity, Line.unit_price)

ORDERS_OF = select(*ORDER_COLUMNS).where(Order.user_id == bindparam("uid")).order_by(Order.id)
ORDER_OF = select(*ORDER_COLUMNS).where(
    Order.id == bindparam("oid"), Order.user_id == bindparam("uid")
)
OPEN_ORDER_OF = select(*ORDER_COLUMNS).where(Order.user_id == bindparam("uid"), Order.is_open)
LINES_OF = (
    select(*LINE_COLUMNS)
    .where(Line.order_id.in_(bindparam("oids", expanding=True)))
    .order_by(Line.id)
)
# Bumping the version is how a request takes an open order's row lock (on
# SQLite, the write lock) until commit: adds, removals and checkouts of one
# order take turns. The lock answers with the order's id, or none if not open.
LOCK = update(Order).where(Order.is_open).values(version=Order.version + 1).returning(Order.id)
LOCK_ORDER = LOCK.where(Order.id == bindparam("oid"))
LOCK_OPEN_ORDER = LOCK.where(Order.user_id == bindparam("uid"))
TOUCH_OPEN_ORDER = LOCK_OPEN_ORDER.values(time_modified=bindparam("now"))
OPEN_AN_ORDER = (
    insert(Order)
    .values(
        user_id=bindparam("uid"),
        is_open=True,
        version=1,
        time_created=bindparam("now"),
        time_modified=bindparam("now"),
    )
    .returning(Order.id)
)
GROW_LINE = (
    update(Line)
    .where(Line.order_id == bindparam("oid"), Line.sku == bindparam("item"))
    .values(
        quantity=Line.quantity + bindparam("n"),
        unit_price=bindparam("price"),
        name=bindparam("title"),
    )
)
NEW_LINE = insert(Line).values(
    order_id=bindparam("oid"),
    sku=bindparam("item"),
    name=bindparam("title"),
    quantity=bindparam("n"),
    unit_price=bindparam("price"),
)
REMOVE_LINE = delete(Line).where(Line.order_id == bindparam("oid"), Line.sku == bindparam("item"))
MARK_MODIFIED = (
    update(Order).where(Order.id == bindparam("oid")).values(time_modified=bindparam("now"))
)
CLOSE_ORDER = (
    update(Order)
    .where(Order.id == bindparam("oid"))
    .values(
        is_open=False,
        version=Order.version + 1,
        time_checked_out=bindparam("now"),
        time_modified=bindparam("now"),
    )
)
FREEZE_LINE = (
    update(Line)
    .where(Line.order_id == bindparam("oid"), Line.sku == bindparam("item"))
    .values(unit_price=bindparam("price"), name=bindparam("title"))
)


@contextmanager
def _reading(connection: Connection | None) -> Iterator[Connection]:
    """The connection in use, or a pooled one: an order and its lines are read
    on one connection (one checkout, one ping on PostgreSQL)."""
    if connection is not None:
        yield connection
        return
    with db.engine.connect() as pooled:
        yield pooled


def _with_lines(connection: Connection, orders: list[Row[Any]]) -> list[OrderView]:
    """The orders, each with its lines (one more query for all of them)."""
    if not orders:
        return []
    lines: dict[int, list[LineView]] = {order.id: [] for order in orders}
    for line in read(connection, LINES_OF, {"oids": list(lines)}):
        lines[line.order_id].append(LineView(line.sku, line.name, line.quantity, line.unit_price))
    return [OrderView(**order._asdict(), lines=lines[order.id]) for order in orders]


def orders_of(user_id: int) -> list[OrderView]:
    """The user's orders, oldest first, with their lines."""
    with _reading(None) as connection:
        return _with_lines(connection, read(connection, ORDERS_OF, {"uid": user_id}))


def order_of(user_id: int, order_id: int, connection: Connection | None = None) -> OrderView:
    """One of the user's orders; someone else's is as missing as a made-up one."""
    if 0 < order_id <= MAX_ID:  # else no such id can exist (and the database would refuse it)
        with _reading(connection) as reading:
            found = read(reading, ORDER_OF, {"oid": order_id, "uid": user_id})
            for order in _with_lines(reading, found):
                return order
    raise NotFound(f"You have no order {order_id}.")


def open_order(user_id: int) -> OrderView | None:
    with _reading(None) as connection:
        found = _with_lines(connection, read(connection, OPEN_ORDER_OF, {"uid": user_id}))
    return found[0] if found else None


def empty_order() -> OrderView:
    """What GET /current shows when the user has no open order; never stored,
    since a GET must not create one."""
    return OrderView(None, True, None, None, None, lines=[])


def add_beer(user_id: int, beer: CatalogueBeer, quantity: int) -> OrderView:
    """Add so many of a beer to the user's open order, opening one if needed.

    The line's quantity grows in the database (quantity = quantity + n), and the
    line takes the catalogue's current price and name.
    """
    item = {"item": beer.sku, "title": beer.name, "price": beer.price, "n": quantity}
    for _ in range(ATTEMPTS):
        try:
            with writing(db.engine) as connection:
                now = {"uid": user_id, "now": utcnow()}
                order_id = connection.execute(TOUCH_OPEN_ORDER, now).scalar()
                if order_id is None:
                    order_id = connection.execute(OPEN_AN_ORDER, now).scalar_one()
                if not connection.execute(GROW_LINE, {**item, "oid": order_id}).rowcount:
                    connection.execute(NEW_LINE, {**item, "oid": order_id})
                return order_of(user_id, order_id, connection)
        except IntegrityError:
            continue  # a concurrent request opened the order or the line first
    raise Conflict("The order changed too often at once; try again.")


def remove_beer(user_id: int, sku: str) -> None:
    """Remove a beer's line from the user's open order, if it is there."""
    with writing(db.engine) as connection:
        order_id = connection.execute(LOCK_OPEN_ORDER, {"uid": user_id}).scalar()
        if order_id is None:
            return
        if connection.execute(REMOVE_LINE, {"oid": order_id, "item": sku}).rowcount:
            connection.execute(MARK_MODIFIED, {"oid": order_id, "now": utcnow()})


def checkout(user_id: int, catalogue: BeersClient) -> OrderView:
    """Close the user's open order at the catalogue's current prices.

    The prices are fetched with no transaction open. Then, holding the order's
    row lock, the order must still be open (else another checkout won: 409) and
    have no SKU the prices lack (else they are fetched again for the new lines).
    """
    first = open_order(user_id)
    if first is None or first.id is None or not first.lines:  # (stored orders have ids)
        raise Conflict("Your open order is empty: add beers before checking out.")
    order_id, skus = first.id, [line.sku for line in first.lines]
    for _ in range(ATTEMPTS):
        prices = catalogue.beers(skus)
        gone = sorted(sku for sku in skus if sku not in prices)
        if gone:
            raise Conflict(
                f"These beers have left the catalogue: {', '.join(gone)}. "
                "Remove them from your order and check out again.",
                skus=gone,
            )
        with writing(db.engine) as connection:
            if connection.execute(LOCK_ORDER, {"oid": order_id}).scalar() is None:
                raise Conflict("Your order was just checked out by another request.")
            skus = [line.sku for line in read(connection, LINES_OF, {"oids": [order_id]})]
            if not skus:
                raise Conflict("Your open order is empty: add beers before checking out.")
            if all(sku in prices for sku in skus):
                _close(connection, order_id, [prices[sku] for sku in skus])
                return order_of(user_id, order_id, connection)
    raise Conflict("Beers kept being added during checkout; try again.")


def _close(connection: Connection, order_id: int, beers: list[CatalogueBeer]) -> None:
    """Close the (locked, open) order and freeze these beers' prices on its lines."""
    connection.execute(CLOSE_ORDER, {"oid": order_id, "now": utcnow()})
    connection.execute(
        FREEZE_LINE,
        [{"oid": order_id, "item": b.sku, "price": b.price, "title": b.name} for b in beers],
    )
