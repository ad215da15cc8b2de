"""The users service's own tables: users, their login tokens, and recent failed logins."""

from __future__ import annotations

from datetime import datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from servicekit.db import NAMING_CONVENTION, UTCDateTime, utcnow


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

# Column lengths that input is held to, case-folded: "ß" folds to "ss".
USERNAME_LENGTH = 64
EMAIL_LENGTH = 255
LOGIN_KEY_LENGTH = 255  # a login's username, case-folded, as throttling counts it


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    # An id is never given twice (orders keep only the number): without
    # AUTOINCREMENT, SQLite hands a deleted largest id out again.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH))
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH))
    # The same names case-folded (in Python: SQLite's lower() knows only
    # ASCII): what uniqueness and look-ups go by.
    username_key: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    email_key: Mapped[str] = mapped_column(String(EMAIL_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    time_registered: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tokens: Mapped[list[Token]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class Token(db.Model):  # type: ignore[name-defined]
    """A login token, kept only as the SHA-256 digest of what the client holds."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    time_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginFailure(db.Model):  # type: ignore[name-defined]
    """A login answered 401, kept for the throttling window: the username
    (case-folded, as users are looked up) and the client's address."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_address_time", "username_key", "address", "time"),
        Index("ix_login_failures_address_time", "address", "time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username_key: Mapped[str] = mapped_column(String(LOGIN_KEY_LENGTH))
    address: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
