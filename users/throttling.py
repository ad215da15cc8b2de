"""Login throttling: failed password checks counted per username and client
address in the users database, so that every worker and instance sees the
same counts; and the client's address they are counted by.

`counted` wraps one password check, from its 429 to its RateLimit headers.
Counts are read with compiled queries and written with Core, each write in a
transaction of its own: a failure is counted, or forgiven, whatever the
request does next.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from sqlalchemy import bindparam, delete, func, insert, select

from servicekit.db import Query, read, utcnow, writing
from servicekit.errors import Problem

from .models import LoginFailure, db

POLICY_NAME = "login"
Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Limits:
    """LOGIN_MAX_FAILURES, LOGIN_MAX_FAILURES_PER_ADDRESS and LOGIN_WINDOW_SECONDS."""

    per_username: int
    per_address: int
    window_seconds: int

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)


@dataclass(frozen=True)
class Quota:
    """Where one username from one address stands."""

    limits: Limits
    remaining: int  # failed logins it may still have
    reset_seconds: int  # until its oldest counted failure leaves the window (0: none)
    wait_seconds: int | None = None  # when it may not try now: until it may

    def headers(self) -> dict[str, str]:
        """draft-ietf-httpapi-ratelimit-headers-10, for the per-username limit."""
        return {
            "RateLimit-Policy": (
                f'"{POLICY_NAME}";q={self.limits.per_username};w={self.limits.window_seconds}'
            ),
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_seconds}',
        }

    def after_a_failure(self) -> Quota:
        reset = self.reset_seconds or self.limits.window_seconds
        return Quota(self.limits, max(self.remaining - 1, 0), reset)


FAILURES_OF_USERNAME = Query(
    select(func.count(), func.min(LoginFailure.time)).where(
        LoginFailure.username_key == bindparam("username_key"),
        LoginFailure.address == bindparam("address"),
        LoginFailure.time > bindparam("since"),
    )
)
FAILURES_FROM_ADDRESS = Query(
    select(func.count(), func.min(LoginFailure.time)).where(
        LoginFailure.address == bindparam("address"), LoginFailure.time > bindparam("since")
    )
)
RECORD_FAILURE = insert(LoginFailure)
FORGET_BEFORE = delete(LoginFailure).where(LoginFailure.time <= bindparam("cutoff"))
CLEAR = delete(LoginFailure).where(
    LoginFailure.username_key == bindparam("username_key"),
    LoginFailure.address == bindparam("address"),
)
CLEAR_USERNAME = delete(LoginFailure).where(LoginFailure.username_key == bindparam("username_key"))


class TooManyFailures(Problem):
    status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, quota: Quota) -> None:
        super().__init__(
            f"Too many failed logins; try again in {quota.wait_seconds} seconds.",
            headers={**quota.headers(), "Retry-After": str(quota.wait_seconds)},
        )


class CountedFailure(Problem):
    """A problem that is a failed login (a wrong password): raised inside
    `counted`, it is counted and says where the username now stands."""


@contextmanager
def counted(username_key: str, address: str, limits: Limits) -> Iterator[None]:
    """A password check of this username from this address, throttled: 429
    before it (the password unchecked) while they may not try; a
    CountedFailure inside it is counted and says, in RateLimit headers, where
    the username now stands; success forgives its failures from there."""
    now = _quota(username_key, address, limits)
    if now.wait_seconds is not None:
        raise TooManyFailures(now)
    try:
        yield
    except CountedFailure as failure:
        _record_failure(username_key, address, limits)
        failure.headers.update(now.after_a_failure().headers())
        raise
    _clear(username_key, address)


def headers_after_success(limits: Limits) -> dict[str, str]:
    """Where a username stands once a login has forgiven its failures."""
    return Quota(limits, limits.per_username, 0).headers()


def _quota(username_key: str, address: str, limits: Limits) -> Quota:
    """How many more failures this username may have from this address, and
    whether it must wait: with per_username failures from there within the
    window, or the address with per_address, until the oldest leaves it."""
    now = utcnow()
    params = {"username_key": username_key, "address": address, "since": now - limits.window}
    [(username_failures, username_oldest)] = read(db.engine, FAILURES_OF_USERNAME, params)
    [(address_failures, address_oldest)] = read(db.engine, FAILURES_FROM_ADDRESS, params)
    reset = _seconds_until(username_oldest, limits, now) if username_failures else 0
    remaining = max(limits.per_username - username_failures, 0)
    if username_failures >= limits.per_username:
        return Quota(limits, 0, reset, wait_seconds=reset)
    if address_failures >= limits.per_address:
        return Quota(limits, remaining, reset, _seconds_until(address_oldest, limits, now))
    return Quota(limits, remaining, reset)


def _seconds_until(oldest: datetime, limits: Limits, now: datetime) -> int:
    """Seconds until `oldest` leaves the window: at least 1."""
    if oldest.tzinfo is None:  # SQLite's min() hands back the stored text's datetime
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max(1, math.ceil((oldest + limits.window - now).total_seconds()))


def _record_failure(username_key: str, address: str, limits: Limits) -> None:
    """Count a failed login, and forget those that left the window."""
    now = utcnow()
    with writing(db.engine) as connection:
        connection.execute(FORGET_BEFORE, {"cutoff": now - limits.window})
        connection.execute(
            RECORD_FAILURE, {"username_key": username_key, "address": address, "time": now}
        )


def _clear(username_key: str, address: str) -> None:
    """After a successful login: that username's failures from there are forgiven."""
    with writing(db.engine) as connection:
        connection.execute(CLEAR, {"username_key": username_key, "address": address})


def unthrottle(username_key: str) -> int:
    """Forget every failure of a username, from anywhere; how many there were."""
    with writing(db.engine) as connection:
        return connection.execute(CLEAR_USERNAME, {"username_key": username_key}).rowcount


def trusted_networks(setting: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES: addresses or networks, separated by commas or spaces."""
    return tuple(ip_network(part, strict=False) for part in setting.replace(",", " ").split())


def client_address(
    connected: str | None, forwarded_for: str | None, trusted: Iterable[Network]
) -> str:
    """The client's address: the connection's, unless that is a trusted proxy;
    then the nearest address in X-Forwarded-For that is not one."""
    proxies = tuple(trusted)
    address = connected or "unknown"
    if not proxies or not _is_trusted(address, proxies):
        return address
    for hop in reversed([hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]):
        if not _is_trusted(hop, proxies):
            return hop[:64]
        address = hop
    return address


def _is_trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)
