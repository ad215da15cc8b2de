"""The orders service's own tables: orders, their lines, and idempotency keys.

It keeps only the id of the user an order belongs to; users owns the rest.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, Index, LargeBinary, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.db import NAMING_CONVENTION, Cents, UTCDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


class Order(db.Model):  # type: ignore[name-defined]
    """A user's order: open while beers are added, closed once checked out."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(index=True)
    is_open: Mapped[bool] = mapped_column(default=True)
    # Grows with every change to the order: bumping it is how a request takes
    # the order's row lock (the write lock on SQLite) until it commits.
    version: Mapped[int] = mapped_column(default=0)
    time_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_checked_out: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Line(db.Model):  # type: ignore[name-defined]
    """So many of one beer in an order, at the price it had when last added
    (or, once checked out, the price that was paid)."""

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "sku", name="uq_order_lines_order_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Cents)


# At most one open order per user, ever: the database refuses a second.
Index(
    "uq_orders_one_open_per_user",
    Order.user_id,
    unique=True,
    sqlite_where=Order.is_open,
    postgresql_where=Order.is_open,
)


class IdempotencyKey(db.Model):  # type: ignore[name-defined]
    """A write's Idempotency-Key, claimed by its first request, and that request's
    answer once it has one (see orders.idempotency)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "method", "path", "key", name="uq_idempotency_keys_owner_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request's fields
    status: Mapped[int | None]  # None while the first request runs
    content_type: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    time_created: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
