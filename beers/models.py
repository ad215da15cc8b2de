"""The beers service's own table: the catalogue."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

from servicekit.db import NAMING_CONVENTION, Cents, UTCDateTime, utcnow

NAME_LENGTH = 255
# A character case-folds to at most three ("ΐ" to "ΐ", "ﬃ" to "ffi").
FOLDED_NAME_LENGTH = 3 * NAME_LENGTH


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


class Beer(db.Model):  # type: ignore[name-defined]
    __tablename__ = "beers"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    # The name case-folded, as search compares it: SQLite's LIKE and lower()
    # fold ASCII only, so the folding is Python's, the same on every database.
    name_folded: Mapped[str] = mapped_column(String(FOLDED_NAME_LENGTH))
    price: Mapped[Decimal] = mapped_column(Cents)
    image: Mapped[str | None] = mapped_column(String(255))
    time_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("name")
    def fold_the_name_too(self, key: str, name: str) -> str:
        """Whenever the name is set (add, PUT, PATCH), its folded form follows."""
        self.name_folded = fold(name)
        return name


def fold(text: str) -> str:
    """Text as search compares it: case-folded, in every alphabet ("Straße" is "strasse")."""
    return text.casefold()
