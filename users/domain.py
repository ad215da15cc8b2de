"""The users service's rules: registering, logging in, tokens, a user's own
account, and administrators managing users.

Database work as the README's Developing map says: the hot reads (a login's
user, a token's user) are compiled queries, the writes go through the ORM
session in `write_transaction`. Failed password checks are counted by
`throttling`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from http import HTTPStatus
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from servicekit.auth import TOKEN_NOT_VALID
from servicekit.db import Query, read, utcnow, write_transaction
from servicekit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    Unauthorized,
    ValidationFailed,
)

from . import throttling
from .metrics import users_metrics
from .models import Token, User, db

TOKEN_BYTES = 32  # 256 random bits
MAX_ID = 2**31 - 1  # no user id is larger (and the databases would refuse one that is)
ONLY_ADMINS = "Only administrators may manage users."


# Passwords.


class PasswordsBusy(Problem):
    """This worker has been checking other passwords for too long."""

    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            "Too many passwords are being checked at once; try again in a moment.",
            service="users",
            headers={"Retry-After": "1"},
        )


# Hashing a password is slow on purpose. A worker hashes one at a time, so
# that a flood of logins or registrations cannot starve its other requests; a
# request that waited its turn too long is 503.
_hashing = threading.Semaphore(1)


@contextmanager
def password_turn(wait_seconds: float) -> Iterator[None]:
    if not _hashing.acquire(blocking=False):
        waiting = users_metrics().passwords_waiting
        waiting.inc()
        try:
            turn = _hashing.acquire(timeout=wait_seconds)
        finally:
            waiting.dec()
        if not turn:
            raise PasswordsBusy()
    try:
        yield
    finally:
        _hashing.release()


@cache
def stand_in_hash() -> str:
    """A hash to check wrong passwords against when the username is unknown,
    so that login takes about as long either way (made once, at start-up)."""
    return generate_password_hash(secrets.token_urlsafe(16))


def is_the_username(password: str, username: str) -> bool:
    return password.lower() == username.lower()


@dataclass(frozen=True)
class PasswordCheck:
    """Where a password check comes from, and what it may cost."""

    address: str
    limits: throttling.Limits
    wait_seconds: float


# Registering.


def name_key(name: str) -> str:
    """What a username or email is compared by: its case does not count."""
    return name.casefold()


def find_user(username: str) -> User | None:
    """The user with this username, whatever its case, in the session."""
    return db.session.scalars(
        select(User).where(User.username_key == name_key(username))
    ).one_or_none()


def register(fields: dict[str, Any], *, is_admin: bool = False, wait_seconds: float = 1.0) -> User:
    """Create a user; 409 naming each field that is already taken."""
    # Hashed before the write transaction: no lock waits for the slow hash.
    with password_turn(wait_seconds):
        password_hash = generate_password_hash(fields["password"])
    try:
        with write_transaction(db.session):
            _refuse_taken(fields["username"], fields["email"])
            user = User(
                username=fields["username"],
                email=fields["email"],
                username_key=name_key(fields["username"]),
                email_key=name_key(fields["email"]),
                password_hash=password_hash,
                first_name=fields.get("first_name"),
                last_name=fields.get("last_name"),
                is_admin=is_admin,
            )
            db.session.add(user)
    except IntegrityError as error:  # only if the database is shared in some odd way
        raise Conflict("The username or email is already taken.") from error
    return user


def _refuse_taken(username: str, email: str) -> None:
    taken = []
    if find_user(username) is not None:
        taken.append("username")
    if _email_is_taken(email):
        taken.append("email")
    if taken:
        raise _taken(*taken)


def _email_is_taken(email: str, *, by_other_than: int | None = None) -> bool:
    """Whether a user (other than the one with this id) has this email, whatever its case."""
    owner = select(User.id).where(User.email_key == name_key(email))
    if by_other_than is not None:
        owner = owner.where(User.id != by_other_than)
    return db.session.scalars(owner).first() is not None


def _taken(*fields: str) -> Conflict:
    errors = {field: ["Already taken."] for field in fields}
    return Conflict(f"Already taken: {', '.join(fields)}.", errors=errors)


# Tokens.


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_type: str
    expires_at: datetime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


LOGIN_OF = Query(
    select(User.id, User.password_hash).where(User.username_key == bindparam("username_key"))
)


def log_in(username: str, password: str, *, ttl_seconds: int, check: PasswordCheck) -> IssuedToken:
    """A new token for the right password; one 401 for any wrong pair; 429 for
    a username or address with too many recent failures (see throttling)."""
    username_key = name_key(username)
    with throttling.counted(username_key, check.address, check.limits):
        # Read on a connection given back at once: none is held while the
        # password waits its turn (a flood of logins would empty the pool).
        found = read(db.engine, LOGIN_OF, {"username_key": username_key})
        user = found[0] if found else None
        password_hash = user.password_hash if user else stand_in_hash()
        with password_turn(check.wait_seconds):
            matches = check_password_hash(password_hash, password)
        if not matches or user is None:
            raise WrongCredentials()
    return _new_token(user, ttl_seconds)


class WrongCredentials(throttling.CountedFailure, Unauthorized):
    """The one answer for a wrong username and a wrong password."""

    def __init__(self) -> None:
        super().__init__("Wrong username or password.")


def _new_token(user: Any, ttl_seconds: int) -> IssuedToken:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    with write_transaction(db.session):
        # Expired tokens are of no use to anyone: sweep them all out on the
        # way (an index on expires_at keeps this cheap).
        db.session.execute(delete(Token).where(Token.expires_at <= now))
        db.session.add(Token(digest=token_digest(token), user_id=user.id, expires_at=expires_at))
    return IssuedToken(token=token, token_type="Bearer", expires_at=expires_at)


# Every request to orders and every catalogue change asks this: built once,
# run outside the session.
USER_OF_LIVE_TOKEN = Query(
    select(*User.__table__.columns)
    .join(Token, Token.user_id == User.id)
    .where(Token.digest == bindparam("digest"), Token.expires_at > bindparam("now"))
)


def user_for_token(token: str) -> Any | None:
    """The user a live token belongs to, in one query."""
    found = read(db.engine, USER_OF_LIVE_TOKEN, {"digest": token_digest(token), "now": utcnow()})
    return found[0] if found else None


def revoke(token: str) -> bool:
    """Revoke a live token; False when it was not one."""
    with write_transaction(db.session):
        # Core on the session's own connection, in its transaction: the result
        # counts the rows deleted.
        revoked = db.session.connection().execute(
            delete(Token).where(Token.digest == token_digest(token), Token.expires_at > utcnow())
        )
    return bool(revoked.rowcount)


# A user's own account.


class WrongPassword(throttling.CountedFailure, ValidationFailed):
    """The user's own password, given to confirm a change, is wrong: a 400
    naming the field, counted as a failed login."""

    def __init__(self, field: str) -> None:
        super().__init__({field: ["Wrong password."]})


def change_details(user_id: int, fields: dict[str, Any]) -> User:
    """Change the user's email and names (only those given); 409 when the
    email is someone else's, whatever its case."""
    try:
        with write_transaction(db.session):
            user = _own_row(user_id)
            if "email" in fields:
                if _email_is_taken(fields["email"], by_other_than=user_id):
                    raise _taken("email")
                user.email, user.email_key = fields["email"], name_key(fields["email"])
            for name in ("first_name", "last_name"):
                if name in fields:
                    setattr(user, name, fields[name])
    except IntegrityError as error:  # the same email, given to two users at once
        raise _taken("email") from error
    return user


def change_password(user: Any, token: str, current: str, new: str, check: PasswordCheck) -> None:
    """Set a new password, given the current one; every token of the user but
    the one presented is revoked."""
    if is_the_username(new, user.username):
        raise ValidationFailed({"new_password": ["Must not be the username."]})
    _check_own_password(user, current, "current_password", check)
    with password_turn(check.wait_seconds):
        password_hash = generate_password_hash(new)
    digest = token_digest(token)
    with write_transaction(db.session):
        own = _own_row(user.id)
        if not _is_live(digest, user.id):  # revoked meanwhile: logged out, or another change
            raise Unauthorized(TOKEN_NOT_VALID)
        own.password_hash = password_hash
        db.session.execute(delete(Token).where(Token.user_id == user.id, Token.digest != digest))


def _is_live(digest: str, user_id: int) -> bool:
    found = db.session.scalars(
        select(Token.id).where(
            Token.digest == digest, Token.user_id == user_id, Token.expires_at > utcnow()
        )
    ).first()
    return found is not None


def delete_account(user: Any, password: str, check: PasswordCheck) -> None:
    """Delete the user and their tokens, given their password; 409 for the
    last administrator."""
    _check_own_password(user, password, "password", check)
    with write_transaction(db.session):
        admins = _locked_admins()
        _own_row(user.id)
        if admins == [user.id]:
            raise last_admin_leaving()
        db.session.execute(delete(Token).where(Token.user_id == user.id))
        db.session.execute(delete(User).where(User.id == user.id))


def _check_own_password(user: Any, password: str, field: str, check: PasswordCheck) -> None:
    """Throttled as a login is: 429 while the username may not try from this
    address (the password unchecked); a wrong password counts as a failure."""
    with throttling.counted(user.username_key, check.address, check.limits):
        with password_turn(check.wait_seconds):
            matches = check_password_hash(user.password_hash, password)
        if not matches:
            raise WrongPassword(field)


def _own_row(user_id: int) -> User:
    """The token's user, row locked; gone meanwhile (deleted), the token is no more."""
    user = _locked_user(user_id)
    if user is None:
        raise Unauthorized(TOKEN_NOT_VALID)
    return user


# Administrators. One is never the last to go: whatever would leave none (a
# demotion, a deletion) first takes `_locked_admins`.


def last_admin_leaving() -> Conflict:
    return Conflict(
        "You are the last administrator: make another one before you go.",
        errors={"is_admin": ["The last administrator."]},
    )


def no_admin_left() -> Conflict:
    return Conflict(
        "No administrator would be left: make another one first.",
        errors={"is_admin": ["The last administrator."]},
    )


def promote_to_admin(username: str) -> User | None:
    """Make the user with this username an administrator; None if there is none."""
    with write_transaction(db.session):
        user = find_user(username)
        if user is not None:
            user.is_admin = True
    return user


def list_users(*, limit: int, offset: int, q: str | None) -> tuple[list[User], int]:
    """A page of users in id order, and how many match: those whose username or
    email holds `q`, in any case (case-folded, as the keys are)."""
    matching: list[ColumnElement[bool]] = []
    if q:
        key = name_key(q)
        matching.append(
            or_(
                User.username_key.contains(key, autoescape=True),
                User.email_key.contains(key, autoescape=True),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(User).where(*matching)) or 0
    page = db.session.scalars(
        select(User).where(*matching).order_by(User.id).limit(limit).offset(offset)
    ).all()
    return list(page), total


def user_by_id(user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound(f"No user has id {user_id}.")
    return user


def set_admin(caller_id: int, user_id: int, is_admin: bool) -> User:
    """Make the user an administrator or no longer one; 409 when none would be left."""
    with write_transaction(db.session):
        admins = _locked_admins()
        if caller_id not in admins:  # demoted by another administrator meanwhile
            raise Forbidden(ONLY_ADMINS)
        user = _locked_user(user_id)
        if user is None:
            raise NotFound(f"No user has id {user_id}.")
        if not is_admin and admins == [user.id]:
            raise no_admin_left()
        user.is_admin = is_admin
    return user


def _locked_user(user_id: int) -> User | None:
    """The user with this id, read afresh and row locked till the transaction ends."""
    if not 0 < user_id <= MAX_ID:
        return None
    locked = select(User).where(User.id == user_id).with_for_update()
    return db.session.scalars(locked.execution_options(populate_existing=True)).one_or_none()


def _locked_admins() -> list[int]:
    """Every administrator's id, their rows locked in id order (so that two
    such transactions never wait for each other): who stays an administrator
    is decided one transaction at a time (on PostgreSQL the second waits and
    then sees what the first left; on SQLite writers take turns anyway)."""
    return list(
        db.session.scalars(
            select(User.id).where(User.is_admin == true()).order_by(User.id).with_for_update()
        )
    )
