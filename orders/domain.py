"""Orders' rules: a user's orders read, beers added to, set in and removed
from the open order, and checkout.

The database keeps them: a unique index allows one open order per user,
quantities change inside UPDATEs, and the order's row lock lets one checkout
win, at the prices the order showed. Reads are compiled queries, writes Core
statements in `writing` (the README's Developing map).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from servicekit.db import CENT, Query, read, utcnow, writing
from servicekit.errors import Conflict, NotFound

from .beers_client import BeersClient, CatalogueBeer
from .models import Line, Order, db

# A unique index can refuse a write that raced another (a second open order,
# a second line for one SKU); the loser starts over and sees the winner's row.
ATTEMPTS = 5
MAX_ID = 2**31 - 1
MAX_LINE_QUANTITY = 100_000  # of one beer in one order
ORDER_EMPTY = "Your open order is empty: add beers before checking out."


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
    """An order as clients see it."""

    id: int | None  # None only for the empty order shown when none is open
    is_open: bool
    time_created: datetime | None
    time_modified: datetime | None
    time_checked_out: datetime | None
    lines: list[LineView]

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))


@dataclass(frozen=True)
class StoredOrder(OrderView):
    """An order read from the tables: it has an id."""

    id: int


# An order and its lines come back in one query, a row per line (one row with
# no line for an empty order).
ORDERS_WITH_LINES = (
    select(
        Order.id,
        Order.is_open,
        Order.time_created,
        Order.time_modified,
        Order.time_checked_out,
        Line.sku,
        Line.name,
        Line.quantity,
        Line.unit_price,
    )
    .outerjoin(Line, Line.order_id == Order.id)
    .order_by(Order.id, Line.id)
)
# A page of a user's orders counts them all in the same query (while it has rows).
HISTORY_PAGE = (
    select(Order.id.label("page_id"), func.count().over().label("total"))
    .where(Order.user_id == bindparam("user_id"))
    .order_by(Order.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
    .subquery()
)
PAGE_OF_ORDERS = Query(
    ORDERS_WITH_LINES.add_columns(HISTORY_PAGE.c.total).join(
        HISTORY_PAGE, HISTORY_PAGE.c.page_id == Order.id
    )
)
COUNT_ORDERS = Query(select(func.count()).where(Order.user_id == bindparam("user_id")))
ORDER_BY_ID = Query(ORDERS_WITH_LINES.where(Order.id == bindparam("order_id")))
ORDER_OF = Query(
    ORDERS_WITH_LINES.where(
        Order.id == bindparam("order_id"), Order.user_id == bindparam("user_id")
    )
)
OPEN_ORDER_OF = Query(ORDERS_WITH_LINES.where(Order.user_id == bindparam("user_id"), Order.is_open))
PRICES_OF_ORDER = Query(
    select(Line.sku, Line.unit_price).where(Line.order_id == bindparam("order_id"))
)

# Writes. In an UPDATE, SQLAlchemy keeps the table's column names for the SET
# clause, so bind parameters there are named for their role (target_order_id,
# added_quantity); an INSERT takes the columns by name.
#
# Bumping the version is how a request takes an open order's row lock (on
# SQLite, the write lock) until commit: adds, removals and checkouts of one
# order take turns. The lock answers with the order's id, or none if not open.
LOCK = update(Order).where(Order.is_open).values(version=Order.version + 1).returning(Order.id)
LOCK_ORDER = LOCK.where(Order.id == bindparam("target_order_id"))
LOCK_OPEN_ORDER = LOCK.where(Order.user_id == bindparam("owner_id"))
TOUCH_OPEN_ORDER = LOCK_OPEN_ORDER.values(time_modified=bindparam("now"))
OPEN_AN_ORDER = insert(Order).returning(Order.id)
LINE_OF_ORDER = (Line.order_id == bindparam("target_order_id"), Line.sku == bindparam("target_sku"))
GROW_LINE = (
    update(Line)
    .where(*LINE_OF_ORDER, Line.quantity + bindparam("added_quantity") <= MAX_LINE_QUANTITY)
    .values(
        quantity=Line.quantity + bindparam("added_quantity"),
        unit_price=bindparam("catalogue_price"),
        name=bindparam("catalogue_name"),
    )
)
SET_LINE = (
    update(Line)
    .where(*LINE_OF_ORDER)
    .values(
        quantity=bindparam("new_quantity"),
        unit_price=bindparam("catalogue_price"),
        name=bindparam("catalogue_name"),
    )
)
NEW_LINE = insert(Line)
LINE_EXISTS = Query(select(Line.id).where(*LINE_OF_ORDER))
REMOVE_LINE = delete(Line).where(*LINE_OF_ORDER)
MARK_MODIFIED = (
    update(Order)
    .where(Order.id == bindparam("target_order_id"))
    .values(time_modified=bindparam("now"))
)
CLOSE_ORDER = (
    update(Order)
    .where(Order.id == bindparam("target_order_id"))
    .values(
        is_open=False,
        version=Order.version + 1,
        time_checked_out=bindparam("now"),
        time_modified=bindparam("now"),
    )
)
FREEZE_LINE = (
    update(Line)
    .where(*LINE_OF_ORDER)
    .values(unit_price=bindparam("catalogue_price"), name=bindparam("catalogue_name"))
)
REPRICE_LINE = update(Line).where(*LINE_OF_ORDER).values(unit_price=bindparam("catalogue_price"))


class PricesChanged(Conflict):
    """Checkout found catalogue prices other than the ones the order showed: the
    order now shows the catalogue's, and stays open."""

    def __init__(self, changes: list[tuple[str, Decimal, Decimal]]) -> None:
        """changes: (sku, the price the order showed, the catalogue's price now)."""
        skus = ", ".join(sku for sku, _, _ in changes)
        super().__init__(
            f"Prices changed since your order showed them: {skus}. Your order now shows "
            "the current prices; check out again to pay them.",
            errors={
                sku: [f"The price changed from {_money(shown)} to {_money(price)}."]
                for sku, shown, price in changes
            },
            changed=[
                {"sku": sku, "unit_price": _money(shown), "price": _money(price)}
                for sku, shown, price in changes
            ],
        )


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def _orders(rows: list[Any]) -> list[StoredOrder]:
    """Orders with their lines, from the rows of ORDERS_WITH_LINES."""
    orders: dict[int, StoredOrder] = {}
    for row in rows:
        order = orders.get(row.id)
        if order is None:
            order = orders[row.id] = StoredOrder(
                row.id, row.is_open, row.time_created, row.time_modified, row.time_checked_out, []
            )
        if row.sku is not None:
            order.lines.append(LineView(row.sku, row.name, row.quantity, row.unit_price))
    return list(orders.values())


def orders_of(user_id: int, *, limit: int, offset: int) -> tuple[list[StoredOrder], int]:
    """A page of the user's orders, oldest first, with their lines; and how many
    orders the user has in all."""
    params = {"user_id": user_id, "limit": limit, "offset": offset}
    rows = read(db.engine, PAGE_OF_ORDERS, params)
    if rows:
        return _orders(rows), rows[0].total
    return [], read(db.engine, COUNT_ORDERS, params)[0][0]


def order_of(user_id: int, order_id: int, connection: Connection | None = None) -> StoredOrder:
    """One of the user's orders; someone else's is as missing as a made-up one."""
    if 0 < order_id <= MAX_ID:  # else no such id can exist (and the database would refuse it)
        params = {"order_id": order_id, "user_id": user_id}
        found = _orders(read(connection or db.engine, ORDER_OF, params))
        if found:
            return found[0]
    raise NotFound(f"You have no order {order_id}.")


def any_order(order_id: int) -> StoredOrder:
    """Any user's order (what an administrator may read)."""
    if 0 < order_id <= MAX_ID:
        found = _orders(read(db.engine, ORDER_BY_ID, {"order_id": order_id}))
        if found:
            return found[0]
    raise NotFound(f"There is no order {order_id}.")


def open_order(user_id: int) -> StoredOrder | None:
    """The user's open order, if there is one."""
    found = _orders(read(db.engine, OPEN_ORDER_OF, {"user_id": user_id}))
    return found[0] if found else None


def empty_order() -> OrderView:
    """What GET /current shows when the user has no open order; never stored,
    since a GET must not create one."""
    return OrderView(None, True, None, None, None, lines=[])


def add_beer(user_id: int, beer: CatalogueBeer, quantity: int) -> StoredOrder:
    """Add so many of a beer to the user's open order, opening one if needed.

    The line's quantity grows in the database (quantity = quantity + added), and the
    line takes the catalogue's current price and name; a line never holds more
    than MAX_LINE_QUANTITY (409, and nothing changes).
    """
    return _in_open_order(
        user_id, lambda connection, order_id: _grow_line(connection, order_id, beer, quantity)
    )


def set_quantity(user_id: int, beer: CatalogueBeer, quantity: int) -> StoredOrder:
    """Set the user's line of a beer to exactly so many, at the catalogue's current
    price and name, opening an order and adding the line where needed.

    The order's row lock makes concurrent sets of one line take turns: the last
    one wins, and quantities never add up.
    """
    return _in_open_order(
        user_id, lambda connection, order_id: _set_line(connection, order_id, beer, quantity)
    )


def _in_open_order(user_id: int, change: Callable[[Connection, int], None]) -> StoredOrder:
    """Make change(connection, order id) to the user's open order, locked (and
    opened if none is), in one transaction; the order as it then is."""
    for _ in range(ATTEMPTS):
        try:
            with writing(db.engine) as connection:
                order_id = _lock_or_open_order(connection, user_id)
                change(connection, order_id)
                return order_of(user_id, order_id, connection)
        except IntegrityError:
            continue  # a concurrent request opened the order or the line first
    raise Conflict("The order changed too often at once; try again.")


def _grow_line(connection: Connection, order_id: int, beer: CatalogueBeer, quantity: int) -> None:
    which_line = {"target_order_id": order_id, "target_sku": beer.sku}
    grown = connection.execute(
        GROW_LINE,
        {
            **which_line,
            "added_quantity": quantity,
            "catalogue_price": beer.price,
            "catalogue_name": beer.name,
        },
    )
    if grown.rowcount:
        return
    # No line grew: either there is none yet, or it would pass the cap.
    if read(connection, LINE_EXISTS, which_line):
        raise Conflict(
            f"An order holds at most {MAX_LINE_QUANTITY} of a beer.",
            errors={"quantity": [f"The line would pass {MAX_LINE_QUANTITY}."]},
        )
    connection.execute(NEW_LINE, _new_line(order_id, beer, quantity))


def _set_line(connection: Connection, order_id: int, beer: CatalogueBeer, quantity: int) -> None:
    changed = connection.execute(
        SET_LINE,
        {
            "target_order_id": order_id,
            "target_sku": beer.sku,
            "new_quantity": quantity,
            "catalogue_price": beer.price,
            "catalogue_name": beer.name,
        },
    )
    if not changed.rowcount:
        connection.execute(NEW_LINE, _new_line(order_id, beer, quantity))


def _lock_or_open_order(connection: Connection, user_id: int) -> int:
    """The id of the user's open order, locked and marked modified; a new one if
    none is open (a concurrent request opening one too makes this IntegrityError)."""
    now = utcnow()
    order_id = connection.execute(TOUCH_OPEN_ORDER, {"owner_id": user_id, "now": now}).scalar()
    if order_id is None:
        order_id = connection.execute(OPEN_AN_ORDER, _new_order(user_id, now)).scalar_one()
    return int(order_id)


def _new_order(user_id: int, now: datetime) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "is_open": True,
        "version": 1,
        "time_created": now,
        "time_modified": now,
    }


def _new_line(order_id: int, beer: CatalogueBeer, quantity: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "sku": beer.sku,
        "name": beer.name,
        "quantity": quantity,
        "unit_price": beer.price,
    }


def remove_beer(user_id: int, sku: str) -> None:
    """Remove a beer's line from the user's open order, if it is there."""
    with writing(db.engine) as connection:
        order_id = connection.execute(LOCK_OPEN_ORDER, {"owner_id": user_id}).scalar()
        if order_id is None:
            return
        if connection.execute(
            REMOVE_LINE, {"target_order_id": order_id, "target_sku": sku}
        ).rowcount:
            connection.execute(MARK_MODIFIED, {"target_order_id": order_id, "now": utcnow()})


def checkout(user_id: int, catalogue: BeersClient) -> StoredOrder:
    """Close the user's open order at the prices it shows, if they are still the
    catalogue's.

    The prices are fetched with no transaction open. Then, holding the order's
    row lock, the order must still be open (else another checkout won: 409). If
    its lines changed meanwhile (a beer or a price the fetch did not see), the
    prices are fetched again. Where a line's price is not the catalogue's, the
    line takes the catalogue's price, the order stays open, and the answer is
    409 (PricesChanged): nothing is charged that the order did not show.
    """
    first = open_order(user_id)
    if first is None or not first.lines:
        raise Conflict(ORDER_EMPTY)
    order_id = first.id
    shown = {line.sku: line.unit_price for line in first.lines}
    for _ in range(ATTEMPTS):
        prices = _catalogue_beers(catalogue, shown)
        with writing(db.engine) as connection:
            now_shown = _lock_for_checkout(connection, order_id)
            if not now_shown.items() <= shown.items():
                shown = now_shown  # lines changed while the prices were fetched
                continue
            changes = [
                (sku, price, prices[sku].price)
                for sku, price in now_shown.items()
                if price != prices[sku].price
            ]
            if not changes:
                _close(connection, order_id, [prices[sku] for sku in now_shown])
                return order_of(user_id, order_id, connection)
            _reprice(connection, order_id, changes)
        raise PricesChanged(changes)  # once the new prices are committed
    raise Conflict("Beers kept being added during checkout; try again.")


def _catalogue_beers(catalogue: BeersClient, skus: dict[str, Decimal]) -> dict[str, CatalogueBeer]:
    """The catalogue's beers with these SKUs; 409 naming those it no longer has."""
    beers = catalogue.beers(skus)
    gone = sorted(sku for sku in skus if sku not in beers)
    if gone:
        raise Conflict(
            f"These beers have left the catalogue: {', '.join(gone)}. "
            "Remove them from your order and check out again.",
            skus=gone,
        )
    return beers


def _lock_for_checkout(connection: Connection, order_id: int) -> dict[str, Decimal]:
    """The price each line of the order shows, by SKU, with the order's row
    locked; 409 when another request checked it out or emptied it meanwhile."""
    if connection.execute(LOCK_ORDER, {"target_order_id": order_id}).scalar() is None:
        raise Conflict("Your order was just checked out by another request.")
    rows = read(connection, PRICES_OF_ORDER, {"order_id": order_id})
    if not rows:
        raise Conflict(ORDER_EMPTY)
    return {row.sku: row.unit_price for row in rows}


def _reprice(
    connection: Connection, order_id: int, changes: list[tuple[str, Decimal, Decimal]]
) -> None:
    """Give the (locked, open) order's lines these catalogue prices."""
    connection.execute(
        REPRICE_LINE,
        [
            {"target_order_id": order_id, "target_sku": sku, "catalogue_price": price}
            for sku, _, price in changes
        ],
    )
    connection.execute(MARK_MODIFIED, {"target_order_id": order_id, "now": utcnow()})


def _close(connection: Connection, order_id: int, beers: list[CatalogueBeer]) -> None:
    """Close the (locked, open) order and freeze these beers' prices on its lines."""
    connection.execute(CLOSE_ORDER, {"target_order_id": order_id, "now": utcnow()})
    connection.execute(
        FREEZE_LINE,
        [
            {
                "target_order_id": order_id,
                "target_sku": beer.sku,
                "catalogue_price": beer.price,
                "catalogue_name": beer.name,
            }
            for beer in beers
        ],
    )
