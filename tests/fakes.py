"""Stand-ins for the other services, handed to create_app() in service tests.

Each subclasses the Protocol create_app takes, so mypy holds it to the real
client's methods."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from orders.beers_client import BeersClient, CatalogueBeer
from servicekit.errors import ServiceUnavailable
from servicekit.upstream import RemoteUser, UsersClient

ADMIN = RemoteUser(id=1, username="admin", is_admin=True)
ALICE = RemoteUser(id=2, username="alice", is_admin=False)
BOB = RemoteUser(id=3, username="bob", is_admin=False)
TOKENS = {"admin-token": ADMIN, "alice-token": ALICE, "bob-token": BOB}


class FakeUsersClient(UsersClient):
    """Knows a fixed set of tokens; `down` makes it fail like a dead service."""

    def __init__(self, tokens: dict[str, RemoteUser] | None = None) -> None:
        self.tokens = dict(TOKENS if tokens is None else tokens)
        self.down = False
        self.asked: list[str] = []

    def user_for_token(self, token: str) -> RemoteUser | None:
        self.asked.append(token)
        if self.down:
            raise ServiceUnavailable("users", "not reachable")
        return self.tokens.get(token)


class FakeBeersClient(BeersClient):
    """A catalogue in a dict; `down` makes it fail like a dead service;
    `during_lookup`, when set, runs while `beers` answers (after the prices are
    read), as a request racing the caller would."""

    def __init__(self) -> None:
        self.catalogue = {
            "123456": CatalogueBeer("123456", "Бургаско", Decimal("1.19")),
            "123457": CatalogueBeer("123457", "Загорка", Decimal("2.00")),
            "123458": CatalogueBeer("123458", "Tuborg", Decimal("1.50")),
        }
        self.down = False
        self.lookups: list[tuple[str, ...]] = []
        self.during_lookup: Callable[[], None] | None = None

    def beer(self, sku: str) -> CatalogueBeer | None:
        self._fail_if_down()
        return self.catalogue.get(sku)

    def beers(self, skus: Iterable[str]) -> dict[str, CatalogueBeer]:
        self._fail_if_down()
        wanted = tuple(skus)
        self.lookups.append(wanted)
        found = {sku: self.catalogue[sku] for sku in wanted if sku in self.catalogue}
        if self.during_lookup is not None:
            self.during_lookup()
        return found

    def _fail_if_down(self) -> None:
        if self.down:
            raise ServiceUnavailable("beers", "no answer in time")
